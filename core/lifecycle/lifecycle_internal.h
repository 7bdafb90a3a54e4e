/* libkeyward internals shared by the lifecycle modules (policy, lifecycle,
 * renew, deploy, notify, metrics). */
#ifndef KEYWARD_LIFECYCLE_INTERNAL_H
#define KEYWARD_LIFECYCLE_INTERNAL_H

#include <keyward/lifecycle.h>

#include "internal.h"

/* ---- lifecycle/notify.c ----
 * Tells the certificate's contacts (and the store-wide ones) through every
 * configured channel. kind: "near-expiry", "expired", "renewed",
 * "renewal-failed", "pending-action". When threshold is not NULL the notice
 * is sent once per (certificate, version, kind, threshold), never again: a
 * second call is a no-op. A channel that fails is recorded as an event
 * ("notify.failed"), not returned: a dead mail server must not stop renewals.
 * Returns an error only when the store itself fails (or an unknown cert/kind).
 * Call it outside any transaction (every channel has a timeout, default 10 s,
 * setting "notify_timeout"); without any channel configured it does nothing
 * and records nothing. The caller's recorded error (kw_error_*) is kept. */
kw_rc kwi_notify(kw_store *s, const char *kind, const char *cert, int version,
                 const char *threshold, const json_t *details) KW_MUST_USE;

/* ---- lifecycle/deploy.c ----
 * Deploys the current version of cert if its policy names a deploy target (see
 * kw_cert_deploy); records "deploy.done" / "deploy.failed" events. Call it
 * outside any transaction (hooks run up to 60 s each, setting
 * "deploy_hook_timeout"). *report is set (caller frees) whenever the deploy
 * ran, also when it failed (then it says what was done and has "error");
 * NULL when it failed before starting (unknown certificate, bad policy). */
kw_rc kwi_deploy(kw_store *s, const char *cert, json_t **report) KW_MUST_USE;
/* kwi_deploy after a change that stands whatever the deploy does (a renewal,
 * a merge, a rollback): any failure becomes KW_ERR_DEPLOY with the deploy's
 * message (and a hint to deploy again). report may be NULL. */
kw_rc kwi_deploy_after_change(kw_store *s, const char *cert, json_t **report) KW_MUST_USE;

/* ---- lifecycle/deploy_targets.c ----
 * A policy may name only a deploy target that exists (cert create, policy
 * set): KW_ERR_NOT_FOUND naming deploy.target otherwise; and one this host
 * can deploy now: its owner and group resolve (KW_ERR_NOT_FOUND), the
 * directory of each file exists (KW_ERR_NOT_FOUND) and no file is a directory
 * (KW_ERR_STATE); the message names the field ("deploy.target: deploy target
 * 'web': group: no such group 'www' on this host"). */
kw_rc kwi_deploy_target_policy_check(kw_store *s, const kwi_policy *p) KW_MUST_USE;

/* ---- lifecycle/after_renewal.c ----
 * What follows every successful renewal (manual or by the engine): prune
 * versions beyond the policy's history_limit (destroying keys no remaining
 * version uses), deploy, notify "renewed". Failures of prune and notify are
 * recorded, not returned; a failed deploy (recorded too) is returned as
 * KW_ERR_DEPLOY once the rest is done: the renewal stands. *report (may be
 * NULL) receives what happened. */
kw_rc kwi_after_renewal(kw_store *s, const char *cert, int version, json_t **report) KW_MUST_USE;

/* ---- lifecycle/renew_result.c ----
 * One certificate's result while renew --due decides it: the typed result
 * and the parts that stay JSON (lists only shown), which
 * kwi_renew_outcome_finish turns into the report's document (r.json). */
#define KWI_RENEW_ACTIONS (KW_RENEW_WOULD_PURGE + 1)
typedef struct {
	kw_renew_result r; /* r.name is lent; r.error points at error or is lent */
	json_t *ari;       /* "ari" / "ari_error" (kwi_ari_renew_at) or nothing */
	json_t *notices;   /* "notified" / "would_notify" or nothing */
	json_t *warnings;  /* "warnings" or nothing */
	json_t *json;      /* after _finish */
	char error[1024];
	char deploy_error[1024];
} kwi_renew_outcome;

kw_rc kwi_renew_outcome_init(kwi_renew_outcome *o, const char *name, int version) KW_MUST_USE;
void kwi_renew_outcome_clear(kwi_renew_outcome *o);
/* r.error becomes a copy of error. */
void kwi_renew_outcome_error(kwi_renew_outcome *o, const char *error);
/* r.deploy_error becomes a copy of error. */
void kwi_renew_outcome_deploy_error(kwi_renew_outcome *o, const char *error);
/* Builds o->json (and r.json) from the fields as they are. */
kw_rc kwi_renew_outcome_finish(kwi_renew_outcome *o) KW_MUST_USE;
/* The report's counts ("renewed", "failed", ... "would_purge") from counts
 * indexed by action. */
kw_rc kwi_renew_counts_put(json_t *report, const size_t counts[KWI_RENEW_ACTIONS]) KW_MUST_USE;

/* ---- cert/versions.c ---- */
/* Removes versions beyond history_limit (oldest superseded first), destroying
 * keys no remaining version uses. */
kw_rc kwi_versions_prune(kw_store *s, const char *cert) KW_MUST_USE;

/* ---- store/settings.c ---- */
/* Days a soft-deleted certificate keeps its keys (setting retention_days). */
kw_rc kwi_retention_days(kw_store *s, int *days) KW_MUST_USE;

#endif
