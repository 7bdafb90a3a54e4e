/* libkeyward internals: running an outside command (deploy hooks, the
 * sendmail and command notification channels). */
#ifndef KEYWARD_PROCESS_H
#define KEYWARD_PROCESS_H

#include <stddef.h>

#include <keyward/error.h>

typedef struct {
	const char *command; /* a shell command line, run as /bin/sh -c COMMAND */
	char *const *env;    /* the child's whole environment (NULL-terminated); nothing
	                        else is inherited, so no PIN can leak through it */
	const char *input;   /* written to the child's stdin; NULL: stdin is /dev/null */
	size_t input_len;
	int timeout_ms; /* the child's process group is killed after this */
} kwi_process;

typedef struct {
	int exited; /* 1: exit_code is valid */
	int exit_code;
	int signal; /* the signal that ended it, 0 if none */
	int timed_out;
	char *err_tail; /* the last lines of its stderr (malloc'd, may be "") */
} kwi_process_result;

/*
 * Runs p->command in its own process group with stdout on /dev/null and stderr
 * captured (the tail is kept). Returns KW_OK whenever the command ran, however
 * it ended (see r); an error only when it could not be started.
 */
kw_rc kwi_process_run(const kwi_process *p, kwi_process_result *r) KW_MUST_USE;

/* 1 if the command exited with status 0. */
int kwi_process_ok(const kwi_process_result *r);

/* "exit status 3", "killed by signal 9", "timed out after 60 s" into buf. */
void kwi_process_describe(const kwi_process *p, const kwi_process_result *r, char *buf, size_t len);

void kwi_process_result_clear(kwi_process_result *r);

/* A small growable NULL-terminated environment ("NAME=value" strings). */
typedef struct {
	char **vars;
	size_t n, cap;
	int failed; /* out of memory at some point */
} kwi_env;

/* Adds NAME=value (value NULL: nothing added). */
void kwi_env_add(kwi_env *e, const char *name, const char *value);
/* Adds PATH from this process (or a safe default): the only inherited variable. */
void kwi_env_add_path(kwi_env *e);
void kwi_env_clear(kwi_env *e);

#endif
