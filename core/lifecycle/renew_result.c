/* see lifecycle/lifecycle_internal.h: renew --due's result per certificate,
 * typed, and the JSON document it becomes at the edge */
#include <string.h>

#include "lifecycle/lifecycle_internal.h"

static const char *const action_names[] = {
    [KW_RENEW_RENEWED] = "renewed",         [KW_RENEW_PENDING] = "pending",
    [KW_RENEW_NOT_DUE] = "not-due",         [KW_RENEW_NOTIFIED] = "notified",
    [KW_RENEW_FAILED] = "failed",           [KW_RENEW_SKIPPED] = "skipped",
    [KW_RENEW_WOULD_RENEW] = "would-renew", [KW_RENEW_PURGED] = "purged",
    [KW_RENEW_WOULD_PURGE] = "would-purge",
};

/* see keyward/lifecycle.h */
const char *kw_renew_action_name(kw_renew_action a)
{
	return (unsigned)a < KWI_RENEW_ACTIONS ? action_names[a] : "?";
}

/* see keyward/lifecycle.h */
const char *kw_renew_reason_name(kw_renew_reason r)
{
	switch (r) {
	case KW_RENEW_REASON_NONE: return NULL;
	case KW_RENEW_REASON_DISABLED: return "disabled";
	case KW_RENEW_REASON_NO_CERTIFICATE:
		return "pending: the current version has no certificate";
	case KW_RENEW_REASON_PENDING: return "pending";
	case KW_RENEW_REASON_BACKOFF: return "backoff";
	case KW_RENEW_REASON_CONCURRENT: return "concurrent";
	}
	return NULL;
}

kw_rc kwi_renew_outcome_init(kwi_renew_outcome *o, const char *name, int version)
{
	memset(o, 0, sizeof(*o));
	o->r.name = name;
	o->r.version = version;
	o->ari = json_object();
	o->notices = json_object();
	o->warnings = json_object();
	if (o->ari == NULL || o->notices == NULL || o->warnings == NULL) {
		kwi_renew_outcome_clear(o);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	return KW_OK;
}

void kwi_renew_outcome_clear(kwi_renew_outcome *o)
{
	json_decref(o->ari);
	json_decref(o->notices);
	json_decref(o->warnings);
	json_decref(o->json);
	memset(o, 0, sizeof(*o));
}

void kwi_renew_outcome_error(kwi_renew_outcome *o, const char *error)
{
	snprintf(o->error, sizeof(o->error), "%s", error);
	o->r.error = o->error;
}

void kwi_renew_outcome_deploy_error(kwi_renew_outcome *o, const char *error)
{
	snprintf(o->deploy_error, sizeof(o->deploy_error), "%s", error);
	o->r.deploy_error = o->deploy_error;
}

static int put_time(json_t *j, const char *key, time_t t)
{
	char buf[32];
	if (t == 0)
		return 0;
	kwi_time_format(t, buf, sizeof(buf));
	return json_object_set_new(j, key, json_string(buf));
}

static int put_int(json_t *j, const char *key, int v, int when)
{
	return when ? json_object_set_new(j, key, json_integer(v)) : 0;
}

/* The keys in the order the report has always had them: the notices of a
 * certificate that is not due come before its action, everyone else's last;
 * a failure's error comes before its count, a backoff's after. */
kw_rc kwi_renew_outcome_finish(kwi_renew_outcome *o)
{
	const kw_renew_result *r = &o->r;
	const int quiet = r->action == KW_RENEW_NOT_DUE || r->action == KW_RENEW_NOTIFIED;
	const int made = r->action == KW_RENEW_RENEWED || r->action == KW_RENEW_PENDING;
	const int failed = r->action == KW_RENEW_FAILED;
	const char *reason = kw_renew_reason_name(r->reason);
	json_t *j = json_object();
	int bad = j == NULL || json_object_set_new(j, "name", json_string(r->name)) ||
	          put_int(j, "version", r->version, r->version != 0) ||
	          put_time(j, "deleted", r->deleted) ||
	          put_time(j, "purge_after", r->deleted ? r->purge_after : 0) ||
	          json_object_update(j, o->ari) || put_time(j, "due", r->due) ||
	          put_time(j, "not_after", r->not_after) ||
	          (quiet && json_object_update(j, o->notices)) ||
	          json_object_set_new(j, "action", json_string(kw_renew_action_name(r->action))) ||
	          (reason && json_object_set_new(j, "reason", json_string(reason))) ||
	          put_int(j, "pending_version", r->pending_version, r->pending_version != 0) ||
	          (failed && r->error && json_object_set_new(j, "error", json_string(r->error))) ||
	          put_int(j, "new_version", r->new_version, made) ||
	          ((made || r->action == KW_RENEW_WOULD_RENEW) &&
	           json_object_set_new(j, "new_key", json_boolean(r->new_key))) ||
	          put_int(j, "failures", r->failures, r->failures != 0) ||
	          put_time(j, "next_attempt", r->next_attempt) ||
	          (!failed && r->error && json_object_set_new(j, "error", json_string(r->error))) ||
	          json_object_update(j, o->warnings) ||
	          (r->deploy_retried &&
	           json_object_set_new(
	               j, r->deploy_retried == 1 ? "deploy_retried" : "would_retry_deploy",
	               json_true())) ||
	          (r->deploy_error &&
	           json_object_set_new(j, "deploy_error", json_string(r->deploy_error))) ||
	          (!quiet && json_object_update(j, o->notices));
	if (bad) {
		json_decref(j);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	json_decref(o->json);
	o->json = j;
	o->r.json = j;
	return KW_OK;
}

kw_rc kwi_renew_counts_put(json_t *report, const size_t counts[KWI_RENEW_ACTIONS])
{
	static const struct {
		kw_renew_action action;
		const char *key;
	} keys[] = {{KW_RENEW_RENEWED, "renewed"},        {KW_RENEW_FAILED, "failed"},
	            {KW_RENEW_PURGED, "purged"},          {KW_RENEW_PENDING, "pending"},
	            {KW_RENEW_SKIPPED, "skipped"},        {KW_RENEW_WOULD_RENEW, "would_renew"},
	            {KW_RENEW_WOULD_PURGE, "would_purge"}};
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if (json_object_set_new(report, keys[k].key,
		                        json_integer((json_int_t)counts[keys[k].action])) != 0)
			return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	return KW_OK;
}
