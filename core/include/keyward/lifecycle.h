/*
 * keyward — certificate lifecycle: policy, versions, renewal, deployment,
 * contacts and notifications, metrics, and the event log.
 *
 * Every change goes through one transaction and appends one or more events
 * (keyward events) chained with BLAKE2b (keyward audit verify). Results of
 * read calls are jansson documents, the same the CLI prints with --json.
 */
#ifndef KEYWARD_LIFECYCLE_H
#define KEYWARD_LIFECYCLE_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include <keyward/keyward.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Who makes the changes that follow ("cli", "renew", "api:<sha256>"): recorded
 * with every event. */
void kw_store_set_actor(kw_store *s, const char *actor);

/* ---- policy (core/policy.c) ---- */

/*
 * The policy document (Key Vault's certificate policy, in keyward's words):
 * {
 *   "key":   {"type": "ec-p256", "backend": "tpm", "reuse_key": false},
 *   "x509":  {"subject": "CN=web01", "sans": ["DNS:web01"], "ekus": ["serverAuth"],
 *             "key_usage": ["digitalSignature"], "validity_days": 365},
 *   "lifetime_actions": [{"trigger": {"lifetime_percentage": 80}, "action": "auto_renew"},
 *                        {"trigger": {"days_before_expiry": 30}, "action": "notify"}],
 *   "issuer": {"name": "self"},
 *   "deploy": {"target": NAME},   (a deploy target, kw_deploy_target_add: files
 *                                  and hooks are never in a policy)
 *   "history_limit": 10
 * }
 * Validation errors name the field path ("x509.validity_days: must be 1 to 36500").
 */

/* The default policy (a new reference). */
json_t *kw_policy_default(void);

/* Validates a policy document and fills defaults; *out is the normalised
 * policy (new reference). On failure the error names the field. */
kw_rc kw_policy_validate(const json_t *in, json_t **out) KW_MUST_USE;

/* Parses and validates JSON text (a file's content). */
kw_rc kw_policy_parse(const char *text, json_t **out) KW_MUST_USE;

kw_rc kw_policy_show(kw_store *s, const char *name, json_t **out) KW_MUST_USE;

/* Replaces a certificate's policy (applies from the next renewal). */
kw_rc kw_policy_set(kw_store *s, const char *name, const json_t *policy) KW_MUST_USE;

/* Maps an Azure Key Vault policy (az keyvault certificate get-default-policy;
 * camelCase or snake_case) to keyward's. *unmapped lists what could not be
 * carried over, one string each ("keyProperties.exportable=true: keyward keys
 * never leave the device"). */
kw_rc kw_policy_import_azure(const char *text, json_t **policy, json_t **unmapped) KW_MUST_USE;

/* When the policy wants the version valid from not_before to not_after
 * renewed: the earliest auto_renew trigger, else at 2/3 of the lifetime. */
time_t kw_policy_renew_at(const json_t *policy, time_t not_before, time_t not_after);

/* ---- versions and attributes (core/lifecycle.c) ---- */

/* JSON array of every version (same objects as kw_cert_show), oldest first. */
kw_rc kw_cert_versions(kw_store *s, const char *name, json_t **out) KW_MUST_USE;

/* Makes an older version current again if it has not expired and its key is
 * still on its device, then deploys it: a deploy that fails gives
 * KW_ERR_DEPLOY (the rollback stands). */
kw_rc kw_cert_rollback(kw_store *s, const char *name, int version) KW_MUST_USE;

/* Disabled certificates are refused by the provider and skipped by renewal. */
kw_rc kw_cert_set_enabled(kw_store *s, const char *name, int enabled) KW_MUST_USE;

/* Soft delete: the certificate disappears from list/show/provider but keeps
 * its keys until purged (by hand, or by renew --due after the retention
 * period, setting "retention_days", default 90). */
kw_rc kw_cert_soft_delete(kw_store *s, const char *name) KW_MUST_USE;
kw_rc kw_cert_recover(kw_store *s, const char *name) KW_MUST_USE;
/* Ends the key of every version as far as its device can and forgets the
 * certificate (see kw_cert_delete). gone (may be NULL): what became of the keys. */
kw_rc kw_cert_purge(kw_store *s, const char *name, kw_keys_gone *gone) KW_MUST_USE;
/* JSON array of deleted certificates: name, deleted, purge_after. */
kw_rc kw_cert_list_deleted(kw_store *s, json_t **out) KW_MUST_USE;

/* ---- store-wide settings (core/lifecycle.c) ---- */

/* {"retention_days": 90, "deploy_hook_timeout": 60, "notify_timeout": 10}: every
 * known setting with its value or default. */
kw_rc kw_settings_list(kw_store *s, json_t **out) KW_MUST_USE;
/* Validates the key and the value, records a "setting.changed" event. */
kw_rc kw_setting_set(kw_store *s, const char *key, const char *value) KW_MUST_USE;

/* ---- renewal engine (core/renew.c) ---- */

/* What renew --due did with one certificate (the JSON "action"). */
typedef enum {
	KW_RENEW_RENEWED,     /* a new version is current */
	KW_RENEW_PENDING,     /* issuer unknown: new_version waits for kw_cert_merge */
	KW_RENEW_NOT_DUE,     /* nothing to do yet */
	KW_RENEW_NOTIFIED,    /* not due, and due notices were sent */
	KW_RENEW_FAILED,      /* the renewal (or a purge) failed: error */
	KW_RENEW_SKIPPED,     /* not tried: reason */
	KW_RENEW_WOULD_RENEW, /* dry run: due */
	KW_RENEW_PURGED,      /* soft-deleted past the retention: gone for good */
	KW_RENEW_WOULD_PURGE  /* dry run: would be purged */
} kw_renew_action;

/* "renewed", "pending", "not-due", "notified", "failed", "skipped",
 * "would-renew", "purged", "would-purge" ("?" for anything else). */
const char *kw_renew_action_name(kw_renew_action a);

/* Why a certificate was skipped (the JSON "reason"). */
typedef enum {
	KW_RENEW_REASON_NONE = 0,
	KW_RENEW_REASON_DISABLED,       /* kw_cert_set_enabled false */
	KW_RENEW_REASON_NO_CERTIFICATE, /* the current version has no certificate yet */
	KW_RENEW_REASON_PENDING,        /* a renewal's CSR waits: pending_version */
	KW_RENEW_REASON_BACKOFF,        /* failed lately: next_attempt, error */
	KW_RENEW_REASON_CONCURRENT      /* another run renews it, or just did */
} kw_renew_reason;

/* "disabled", "pending: the current version has no certificate", "pending",
 * "backoff"; NULL for KW_RENEW_REASON_NONE. */
const char *kw_renew_reason_name(kw_renew_reason r);

/* One certificate's result; every pointer is valid for the progress call
 * only. Times are Unix times, 0 where the result has none. */
typedef struct {
	const char *name;
	kw_renew_action action;
	kw_renew_reason reason; /* skipped: why; else NONE */
	int version;            /* the current version considered; 0: a purge */
	int new_version;        /* renewed, pending: the version made */
	int new_key;            /* renewed, pending, would-renew: a new key (else the same) */
	int pending_version;    /* skipped (pending): the version whose CSR waits */
	int failures;           /* failed, skipped (backoff): consecutive failures */
	time_t due;             /* when the policy (or the CA, ARI) has it renewed */
	time_t not_after;       /* the current version's end */
	time_t next_attempt;    /* failed (a renewal), skipped (backoff) */
	time_t deleted;         /* purged, would-purge, failed (a purge): when deleted */
	time_t purge_after;     /* ... and when its retention ended */
	const char *error;      /* failed: what failed; backoff: the last error; NULL: none */
	/* the deploy: after a renewal; or, for a certificate not renewed now
	 * whose current version's last deploy failed, run again (no new
	 * version): deploy_retried 1 (dry run: 2, it would be) */
	int deploy_retried;
	const char *deploy_error; /* that deploy failed: what failed (names the
	                             certificate, its deploy target, the step) */
	/* the whole result as the report holds it (what --json prints): the
	 * fields above by their JSON names (times in RFC 3339) and the lists:
	 * "notified" / "would_notify" [{kind, threshold}], "warnings" [text]
	 * (after a renewal: prune or notify failed), "deploy_error",
	 * "deploy_retried" / "would_retry_deploy" (true), "ari" / "ari_error"
	 * (an ACME issuer's renewal information) */
	const json_t *json;
} kw_renew_result;

typedef struct {
	int dry_run;        /* report what would happen, change nothing */
	int jitter_seconds; /* sleep a random 0..N s before starting (fleets) */
	/* one call per certificate considered, and per soft-deleted one past
	 * its retention, in the report's order */
	void (*progress)(const kw_renew_result *result, void *arg);
	void *arg;
} kw_renew_options;

/* Renews every certificate whose trigger is reached, deploys again the
 * current version of those whose last deploy failed, sends due notices,
 * purges expired soft-deletions. One failure never stops the others: *report
 * = {"results": [...], "renewed": n, "failed": n, "deploy_failed": n}; KW_OK
 * even when some failed (the caller looks at "failed": renewals or purges,
 * and "deploy_failed": deploys, after a renewal or run again). */
kw_rc kw_renew_due(kw_store *s, const kw_renew_options *o, json_t **report) KW_MUST_USE;

/* ---- deployment (core/deploy.c) ---- */

/* Writes the deploy files of the current version atomically and runs the
 * pre/deploy/post hooks of the deploy target its policy names; *report says
 * what was written and how hooks ended. A failing hook gives KW_ERR_STATE
 * naming the hook, a target that no longer exists KW_ERR_NOT_FOUND (both
 * recorded as a deploy.failed event); a hook never changes the store.
 * Without a deploy target: KW_OK and an empty report. A deploy that ran and
 * failed has a report with "ok": false and "error"; its "files" are all the
 * target's or none: a file that cannot be replaced puts the others back. */
kw_rc kw_cert_deploy(kw_store *s, const char *name, json_t **report) KW_MUST_USE;

/* ---- deploy targets (core/lifecycle/deploy_targets.c) ----
 * Where a deploy writes and what it runs are defined on the host, by name;
 * a policy (and so the management API) can only name a target. config:
 * {"cert", "chain", "fullchain", "key_ref": absolute paths, "owner",
 * "group": names or numbers that exist on this host, "mode": "0640",
 * "hooks": {"pre", "deploy", "post": shell commands}}; at least one file or
 * hook. Event deploy_target.added (with the settings). */
kw_rc kw_deploy_target_add(kw_store *s, const char *name, const json_t *config) KW_MUST_USE;
/* Refused (KW_ERR_STATE) while a certificate's policy names it, deleted
 * certificates included. Event deploy_target.removed. */
kw_rc kw_deploy_target_remove(kw_store *s, const char *name) KW_MUST_USE;
/* JSON array by name: {name, kind ("files"), config, created}. */
kw_rc kw_deploy_target_list(kw_store *s, json_t **out) KW_MUST_USE;
/* One of them, the same object with "used_by": how many certificates'
 * policies name it, and "first_user": the first of them by name (or null). */
kw_rc kw_deploy_target_show(kw_store *s, const char *name, json_t **out) KW_MUST_USE;

/* ---- contacts and notification channels (core/notify.c) ---- */

/* cert NULL: a store-wide contact. */
kw_rc kw_contact_add(kw_store *s, const char *cert, const char *email,
                     const char *name) KW_MUST_USE;
kw_rc kw_contact_remove(kw_store *s, const char *cert, const char *email) KW_MUST_USE;
/* JSON array: {email, name, cert (null = store-wide)}; cert NULL: all. */
kw_rc kw_contact_list(kw_store *s, const char *cert, json_t **out) KW_MUST_USE;

/* kind "sendmail" {"command": "/usr/sbin/sendmail -t -i"}, "webhook" {"url": ...,
 * "ca_bundle": optional}, "command" {"command": ...}. */
kw_rc kw_channel_add(kw_store *s, const char *name, const char *kind,
                     const json_t *config) KW_MUST_USE;
kw_rc kw_channel_remove(kw_store *s, const char *name) KW_MUST_USE;
kw_rc kw_channel_list(kw_store *s, json_t **out) KW_MUST_USE;

/* ---- metrics (core/metrics.c) ---- */

/* Prometheus text exposition of the current versions (malloc'd). */
kw_rc kw_metrics_text(kw_store *s, char **out) KW_MUST_USE;

/* ---- event log (core/events.c) ---- */

/* JSON array of events (seq, at, type, actor, cert, version, details, hash);
 * cert NULL: all. */
kw_rc kw_events_list(kw_store *s, const char *cert, json_t **out) KW_MUST_USE;

/* {"ok": true, "records": n} or {"ok": false, "first_broken_seq": n, "reason": ...}. */
kw_rc kw_audit_verify(kw_store *s, json_t **report) KW_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
