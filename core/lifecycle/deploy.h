/* libkeyward internals: one deploy run (lifecycle/deploy.c drives it, deploy_files.c
 * writes the files). */
#ifndef KEYWARD_DEPLOY_H
#define KEYWARD_DEPLOY_H

#include <sys/types.h>

#include <jansson.h>

#include "internal.h"
#include "common/process.h"
#include "policy/model.h"

#define KWI_DEPLOY_TARGETS KWI_DEPLOY_FILES /* cert, chain, fullchain, key_ref */

typedef struct {
	const char *kind; /* NULL: not configured */
	const char *path;
	char *data; /* what goes into it (malloc'd) */
	size_t len;
	int mode;
	char *tmp;  /* staged temp file, until renamed */
	char *bak;  /* a hard link to the file it replaces, until the deploy is over */
	int placed; /* renamed into place (put back if a later one fails) */
} kwi_deploy_target;

typedef struct {
	kw_store *s;
	const char *name;
	int version;
	char sha256[65];
	kwi_policy *policy;   /* the certificate's policy: which deploy target it names */
	kwi_deploy_conf conf; /* that target's settings, read from the store */
	char who[200];        /* "certificate 'NAME': deploy target 'T'", for messages */
	kwi_deploy_target t[KWI_DEPLOY_TARGETS];
	size_t n_targets, n_hooks;
	const char *hooks[3]; /* pre, deploy, post (NULL: none) */
	uid_t uid;
	gid_t gid;
	int mode; /* -1: the defaults (0644 certificates, 0640 key reference) */
	kwi_env env;
	json_t *report;
	const char *failed_hook;
	char failed_status[96];
	char *failed_stderr;
} kwi_deploy_job;

/* Resolves c's owner, group (names or numbers, on this host) and mode;
 * absent: keyward's own uid and gid, mode -1. who starts the messages
 * ("deploy target 'web': group: no such group 'x' on this host"). */
kw_rc kwi_deploy_ids(const char *who, const kwi_deploy_conf *c, uid_t *uid, gid_t *gid,
                     int *mode) KW_MUST_USE;
/* Gets the PEMs of every configured target from the store. */
kw_rc kwi_deploy_files_prepare(kwi_deploy_job *d) KW_MUST_USE;
/* Stages every file, keeps a hard link to each file it replaces, then renames
 * them all into place: all or none (a rename that fails puts the old files
 * back and removes new ones that had none before). No temp or backup file
 * is left behind. */
kw_rc kwi_deploy_files_write(kwi_deploy_job *d) KW_MUST_USE;
void kwi_deploy_job_clear(kwi_deploy_job *d);

#endif
