/* libkeyward internals: what the store keeps for the lifecycle (channels,
 * contacts, notices, deploys), the event log and keyward doctor, as typed
 * rows. Only core/store/ runs SQL; lifecycle/, audit/events.c and doctor/
 * call these functions and never see a statement.
 *
 * Rows follow store/store_issuers.h: a row a function fills owns its strings,
 * blobs and JSON (free them with the row's _clear, which accepts a zeroed row
 * and leaves one); a row a caller fills for an _add, or a store function lends
 * to a callback, owns nothing. Getters say with *found whether the row exists;
 * the caller words "not found", the store words its own failures ("store:
 * listing channels failed: ..."). Transactions stay with the callers. */
#ifndef KEYWARD_CORE_STORE_LIFECYCLE_H
#define KEYWARD_CORE_STORE_LIFECYCLE_H

#include "internal.h"
#include "store/store_named.h"

/* For core/store/ only: room for row n in *rows (size bytes each, *cap of
 * them, grown as needed), zeroed. NULL when out of memory (*rows unchanged). */
void *kwi_row_next(void **rows, size_t n, size_t *cap, size_t size);

/* 1 inside a transaction (deploy and notify refuse to run there). */
int kwi_store_in_transaction(kw_store *s);

/* ---- store/lifecycle.c: notification channels (table channels) ---- */
/* kind: sendmail, webhook, command; config: the channel's settings. */
typedef kwi_named_row kwi_channel_row;

/* Inserts r (lent; config stored as compact sorted JSON); *exists 1: a
 * channel of that name is there already (nothing added). */
kw_rc kwi_store_channel_add(kw_store *s, const kwi_channel_row *r, int *exists) KW_MUST_USE;
/* *removed 0: no channel of that name. */
kw_rc kwi_store_channel_remove(kw_store *s, const char *name, int *removed) KW_MUST_USE;
/* Every channel by name. Free with kwi_named_rows_free. */
kw_rc kwi_store_channel_list(kw_store *s, kwi_channel_row **rows, size_t *n) KW_MUST_USE;
/* *any 1: at least one channel is configured. */
kw_rc kwi_store_channel_any(kw_store *s, int *any) KW_MUST_USE;

/* ---- store/deploy_targets.c: deploy targets (table deploy_targets) ---- */
/* kind: files; config: the target's settings (policy/model.h's
 * kwi_deploy_conf_check wrote them; kwi_deploy_conf_from_json reads them). */
typedef kwi_named_row kwi_deploy_target_row;

/* Inserts r (lent; config stored as compact sorted JSON); *exists 1: a
 * target of that name is there already (nothing added). */
kw_rc kwi_store_deploy_target_add(kw_store *s, const kwi_deploy_target_row *r,
                                  int *exists) KW_MUST_USE;
/* *removed 0: no target of that name. */
kw_rc kwi_store_deploy_target_remove(kw_store *s, const char *name, int *removed) KW_MUST_USE;
/* Every target by name. Free with kwi_named_rows_free. */
kw_rc kwi_store_deploy_target_list(kw_store *s, kwi_deploy_target_row **rows,
                                   size_t *n) KW_MUST_USE;
/* The target called name (clear with kwi_named_row_clear); *found 0: none. */
kw_rc kwi_store_deploy_target_get(kw_store *s, const char *name, kwi_deploy_target_row *out,
                                  int *found) KW_MUST_USE;
/* How many certificates (deleted ones too: they can be recovered) have a
 * policy naming target name; *cert: the first of them by name (malloc'd),
 * NULL when none. */
kw_rc kwi_store_deploy_target_user(kw_store *s, const char *name, char **cert,
                                   size_t *users) KW_MUST_USE;

/* For the schema 6 → 7 migration only (policy/deploy_migrate.c): every
 * certificate's policy as the text the store keeps, and that text replaced. */
typedef struct {
	int64_t id;
	const char *name;
	const char *policy;
} kwi_legacy_policy_row;

void kwi_legacy_policy_rows_free(kwi_legacy_policy_row *rows, size_t n);
kw_rc kwi_store_legacy_policy_list(kw_store *s, kwi_legacy_policy_row **rows,
                                   size_t *n) KW_MUST_USE;
kw_rc kwi_store_legacy_policy_put(kw_store *s, int64_t id, const char *policy) KW_MUST_USE;

/* ---- store/lifecycle.c: contacts (table contacts) ---- */
typedef struct {
	int64_t cert_id;  /* 0: store-wide */
	const char *cert; /* the certificate's name (kwi_store_contact_list; NULL: store-wide) */
	const char *email;
	const char *name; /* NULL: none (_add: NULL or "" stores none) */
	time_t created_at;
} kwi_contact_row;

void kwi_contact_row_clear(kwi_contact_row *r);
void kwi_contact_rows_free(kwi_contact_row *rows, size_t n);
/* The id of the (not deleted) certificate called name. */
kw_rc kwi_store_contact_cert_find(kw_store *s, const char *name, int64_t *id,
                                  int *found) KW_MUST_USE;
/* Inserts r (lent) unless its certificate (or the store, cert_id 0) has that
 * email already, compared without case; *added 0: it had. */
kw_rc kwi_store_contact_add(kw_store *s, const kwi_contact_row *r, int *added) KW_MUST_USE;
/* *removed 0: cert_id (0: store-wide) has no such email (compared without case). */
kw_rc kwi_store_contact_remove(kw_store *s, int64_t cert_id, const char *email,
                               int *removed) KW_MUST_USE;
/* cert_id 0: every contact; else the certificate's own and the store-wide
 * ones. Store-wide first, then by certificate name and email. Free with
 * kwi_contact_rows_free. */
kw_rc kwi_store_contact_list(kw_store *s, int64_t cert_id, kwi_contact_row **rows,
                             size_t *n) KW_MUST_USE;
/* Who is told about cert_id: its own contacts, then the store-wide ones, each
 * list by email without case (an address may be on both). */
kw_rc kwi_store_contact_recipients(kw_store *s, int64_t cert_id, kwi_contact_row **rows,
                                   size_t *n) KW_MUST_USE;

/* ---- store/lifecycle.c: notices sent (table notices, notify's dedup) ---- */
typedef struct {
	int64_t cert_id;
	int version;
	const char *kind;
	const char *threshold;
	time_t sent_at;
} kwi_notice_row;

/* The id of the certificate called name (deleted or not). */
kw_rc kwi_store_notice_cert_find(kw_store *s, const char *name, int64_t *id,
                                 int *found) KW_MUST_USE;
/* Records r (lent) unless that (cert, version, kind, threshold) was; *fresh
 * 1: it is new. */
kw_rc kwi_store_notice_add(kw_store *s, const kwi_notice_row *r, int *fresh) KW_MUST_USE;
/* *sent 1: r's (cert, version, kind, threshold) was recorded (sent_at unused). */
kw_rc kwi_store_notice_sent(kw_store *s, const kwi_notice_row *r, int *sent) KW_MUST_USE;

/* ---- store/lifecycle.c: what a deploy starts from ---- */
typedef struct {
	int has_current;    /* 0: the certificate has no current version */
	int version;        /* the current version */
	kwi_policy *policy; /* NULL: the policy does not read (kwi_policy_from_text) */
	const char *sha256; /* the current version's thumbprint; NULL: none */
} kwi_deploy_cert_row;

void kwi_deploy_cert_row_clear(kwi_deploy_cert_row *r);
/* The (not deleted) certificate called name, its policy and current version. */
kw_rc kwi_store_deploy_cert_get(kw_store *s, const char *name, kwi_deploy_cert_row *out,
                                int *found) KW_MUST_USE;
/* *failed 1: the last deploy of certificate name (by its deploy.done and
 * deploy.failed events since it was created, imported or adopted) failed,
 * and was of version. renew --due deploys such a version again. */
kw_rc kwi_store_deploy_last_failed(kw_store *s, const char *name, int version,
                                   int *failed) KW_MUST_USE;

/* ---- store/settings.c (declared in lifecycle/notify_internal.h) ----
 * kwi_setting_seconds: an integer setting in 1..86400, or its default. */

/* ---- store/events.c: the event log's rows (table events, settings' event_head) ----
 * The chain (what a hash covers, how a record follows the last) is
 * audit/events.c's; the store keeps the fields exactly as given. */
typedef struct {
	int64_t seq;
	time_t at;
	const char *type;
	const char *cert; /* NULL: none */
	int version;
	int has_version; /* 0: the column is NULL (version 0) */
	const char *actor;
	const char *details; /* the details document as hashed (compact JSON text) */
	const char *prev_hash;
	const char *hash;
} kwi_event_row;

/* The newest record's seq and hash (hash: 64 hex digits and a NUL); *found 0:
 * the log is empty. */
kw_rc kwi_store_event_last_get(kw_store *s, int64_t *seq, char hash[65], int *found) KW_MUST_USE;
/* Appends r (lent; has_version 0 stores no version) in the caller's transaction. */
kw_rc kwi_store_event_add(kw_store *s, const kwi_event_row *r) KW_MUST_USE;
/* Calls fn with every record (cert NULL) or cert's, by seq; the row is lent
 * for the call. fn returns 0 to go on, anything else to stop (then KW_OK). */
kw_rc kwi_store_event_each(kw_store *s, const char *cert,
                           int (*fn)(void *ctx, const kwi_event_row *r), void *ctx) KW_MUST_USE;
/* The same for the records after seq after (about cert, or about no
 * certificate) whose type ends in ".failed": what went wrong around a
 * renewal (deploy, prune, notify). */
kw_rc kwi_store_event_failed_each(kw_store *s, const char *cert, int64_t after,
                                  int (*fn)(void *ctx, const kwi_event_row *r),
                                  void *ctx) KW_MUST_USE;
/* The head the log keeps beside it ("SEQ:HASH"), written in the caller's transaction. */
kw_rc kwi_store_event_head_put(kw_store *s, const char *head) KW_MUST_USE;
/* *head malloc'd; NULL with *found 0 when none is kept. */
kw_rc kwi_store_event_head_get(kw_store *s, char **head, int *found) KW_MUST_USE;
/* The event log's anchor outside the database: the file STORE/audit.anchor
 * ("keyward audit anchor v1", then "SEQ HASH"), replaced (temp file, fsync,
 * rename) after every commit that appended events, so that someone who can
 * write keyward.db but not the store directory cannot cut, drop or rebuild
 * the chain unseen. kwi_store_event_head_put schedules it (written at once
 * outside a transaction); a rollback drops it. *found 0: no anchor file.
 * *marked 1: the database says one was written (settings audit_anchor). */
kw_rc kwi_store_anchor_get(kw_store *s, int64_t *seq, char hash[65], int *found,
                           int *marked) KW_MUST_USE;
/* Writes the scheduled anchor now (kwi_store_commit calls it). */
kw_rc kwi_store_anchor_flush(kw_store *s) KW_MUST_USE;
/* The anchor file's path (malloc'd), for messages. */
char *kwi_store_anchor_path(const kw_store *s);

/* ---- store/doctor.c: the queries keyward doctor runs ----
 * The lists keep what SQLite could read: a row it fails on ends the list
 * quietly, since a damaged database is what the integrity check reports. */
typedef struct {
	const char *problem; /* the first line of PRAGMA integrity_check other than "ok" */
	int fk_found;        /* PRAGMA foreign_key_check found a row: */
	const char *fk_table;
	int64_t fk_rowid;
	const char *fk_parent;
} kwi_doctor_integrity_row;

void kwi_doctor_integrity_row_clear(kwi_doctor_integrity_row *r);
kw_rc kwi_store_doctor_integrity_check(kw_store *s, kwi_doctor_integrity_row *out) KW_MUST_USE;

typedef struct {
	int64_t cert_id;
	const char *name;
	int version;
	const char *why; /* pending orphans: why no merge can reach it */
} kwi_doctor_version_row;

void kwi_doctor_version_row_clear(kwi_doctor_version_row *r);
void kwi_doctor_version_rows_free(kwi_doctor_version_row *rows, size_t n);
/* Certificates whose current version is not in the store, by name. */
kw_rc kwi_store_doctor_current_missing_list(kw_store *s, kwi_doctor_version_row **rows,
                                            size_t *n) KW_MUST_USE;
/* Pending versions no merge can ever reach: not the newest pending one, no
 * CSR, or older than the current version; by name and version. */
kw_rc kwi_store_doctor_pending_orphan_list(kw_store *s, kwi_doctor_version_row **rows,
                                           size_t *n) KW_MUST_USE;
/* Marks a version failed unless it is current (or failed already) in the
 * caller's transaction; *done 1: it changed. */
kw_rc kwi_store_doctor_version_fail(kw_store *s, int64_t cert_id, int version,
                                    int *done) KW_MUST_USE;

/* A version whose key should still be on its backend. */
typedef struct {
	int64_t cert_id;
	const char *name;
	int version, current, deleted;
	kw_key_blob ref;
	const unsigned char *cert; /* NULL: no certificate */
	size_t cert_len;
} kwi_doctor_key_row;

void kwi_doctor_key_row_clear(kwi_doctor_key_row *r);
void kwi_doctor_key_rows_free(kwi_doctor_key_row *rows, size_t n);
/* The versions on backend_id not failed, by certificate name and version. */
kw_rc kwi_store_doctor_key_list(kw_store *s, int64_t backend_id, kwi_doctor_key_row **rows,
                                size_t *n) KW_MUST_USE;
/* Whether any version or issuer (of any backend) references ref. */
kw_rc kwi_store_doctor_key_used(kw_store *s, const kw_key_blob *ref, int *used) KW_MUST_USE;

typedef struct {
	int64_t id;
	const char *name;
} kwi_doctor_backend_row;

void kwi_doctor_backend_row_clear(kwi_doctor_backend_row *r);
void kwi_doctor_backend_rows_free(kwi_doctor_backend_row *rows, size_t n);
/* Every backend by name. */
kw_rc kwi_store_doctor_backend_list(kw_store *s, kwi_doctor_backend_row **rows,
                                    size_t *n) KW_MUST_USE;

#endif
