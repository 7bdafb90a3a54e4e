/* see keyward/lifecycle.h: the renewal engine (renew --due); what follows
 * every renewal is lifecycle/after_renewal.c */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "issuers/acme/acme_issuer.h"
#include "lifecycle/lifecycle_internal.h"
#include "cert/issue.h"
#include "policy/model.h"
#include "store/store_lifecycle.h"
#include "store/store_lock.h"
#include "store/store_renewal.h"

#define BACKOFF_BASE 300   /* 5 min after the first failure, doubling */
#define BACKOFF_MAX  86400 /* never more than a day between attempts */

/* ---- the engine ---- */

/* The first store failure of a run: it stops nothing, it is reported at the end. */
typedef struct {
	kw_rc rc;
	char msg[512];
} run_err;

static void run_fail(run_err *e, kw_rc rc)
{
	if (e->rc == KW_OK) {
		e->rc = rc;
		snprintf(e->msg, sizeof(e->msg), "%s",
		         kw_error_message()[0] ? kw_error_message() : kw_rc_name(rc));
	}
	kw_error_clear();
}

typedef kwi_renewal_due_row due_cert;

static kw_rc due_load(kw_store *s, due_cert **out, size_t *n)
{
	KW_GUARD(kwi_store_renewal_due_list(s, out, n));
	for (size_t i = 0; i < *n; i++)
		if ((*out)[i].policy == NULL) {
			kw_rc rc =
			    KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable record",
			            (*out)[i].name);
			kwi_renewal_due_rows_free(*out, *n);
			*out = NULL;
			*n = 0;
			return rc;
		}
	return KW_OK;
}

static void set_time(json_t *o, const char *key, time_t t)
{
	char buf[32];
	kwi_time_format(t, buf, sizeof(buf));
	json_object_set_new(o, key, json_string(buf));
}

/* ---- notices ---- */

/* 1 when the notice was sent already (or the store fails: do not spam). */
static int notice_sent(kw_store *s, const due_cert *c, const char *kind, const char *threshold)
{
	kwi_notice_row n = {
	    .cert_id = c->id, .version = c->version, .kind = kind, .threshold = threshold};
	int sent = 1;
	if (kwi_store_notice_sent(s, &n, &sent) != KW_OK) {
		kw_error_clear();
		return 1;
	}
	return sent;
}

static int have_channels(kw_store *s)
{
	int any = 0;
	if (kwi_store_channel_any(s, &any) != KW_OK)
		kw_error_clear();
	return any;
}

/* Appends {kind, threshold} for every notice due on the current version. */
static void notices_due(const due_cert *c, time_t now, json_t *out)
{
	if (now >= c->not_after) {
		json_array_append_new(
		    out, json_pack("{s:s,s:s}", "kind", "expired", "threshold", "expired"));
		return;
	}
	for (size_t i = 0; i < c->policy->n_actions; i++) {
		const kwi_trigger *trig = &c->policy->actions[i].trigger;
		char threshold[64];
		if (c->policy->actions[i].action != KWI_ACTION_NOTIFY)
			continue;
		snprintf(threshold, sizeof(threshold), "%s=%d", kwi_trigger_name(trig->kind),
		         trig->value);
		time_t at = kwi_policy_trigger_at(trig, c->not_before, c->not_after);
		if (now >= at)
			json_array_append_new(out, json_pack("{s:s,s:s}", "kind", "near-expiry",
			                                     "threshold", threshold));
	}
}

/* Sends the due notices not sent yet (dry run: only lists them); returns how
 * many; a store failure is returned through *rc. */
static int notices_send(kw_store *s, const due_cert *c, time_t now, int dry_run, json_t *result,
                        run_err *err)
{
	json_t *due = json_array(), *sent = json_array();
	size_t i;
	json_t *n;
	notices_due(c, now, due);
	json_array_foreach(due, i, n)
	{
		const char *kind = json_string_value(json_object_get(n, "kind"));
		const char *threshold = json_string_value(json_object_get(n, "threshold"));
		if (notice_sent(s, c, kind, threshold))
			continue;
		if (!dry_run) {
			json_t *details =
			    json_pack("{s:s,s:i}", "threshold", threshold, "days_left",
			              (int)((c->not_after - now) / 86400));
			set_time(details, "not_after", c->not_after);
			kw_rc r = kwi_notify(s, kind, c->name, c->version, threshold, details);
			json_decref(details);
			if (r != KW_OK) {
				run_fail(err, r);
				break;
			}
			/* without a channel nothing is sent or recorded: a channel
			 * added later still gets it */
			if (!notice_sent(s, c, kind, threshold))
				continue;
		} else if (!have_channels(s))
			continue;
		json_array_append(sent, n);
	}
	int count = (int)json_array_size(sent);
	if (count)
		json_object_set(result, dry_run ? "would_notify" : "notified", sent);
	json_decref(sent);
	json_decref(due);
	return count;
}

/* ---- one certificate ---- */

static time_t backoff(int failures)
{
	time_t d = BACKOFF_BASE;
	for (int i = 1; i < failures && d < BACKOFF_MAX; i++)
		d *= 2;
	return d < BACKOFF_MAX ? d : BACKOFF_MAX;
}

static kw_rc failure_record(kw_store *s, const due_cert *c, const char *error, time_t now,
                            time_t next)
{
	char when[32];
	kwi_time_format(next, when, sizeof(when));
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_renewal_failed(s, c->id, error, now, next);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "renew.failed", c->name, c->version,
		                      json_pack("{s:s,s:i,s:s}", "error", error, "failures",
		                                c->failures + 1, "next_attempt", when));
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

static int wants_new_key(const due_cert *c)
{
	return !c->policy->key.reuse_key;
}

static kw_rc last_seq(kw_store *s, int64_t *seq)
{
	char hash[65];
	int found = 0;
	return kwi_store_event_last_get(s, seq, hash, &found);
}

static int warning_add(void *ctx, const kwi_event_row *e)
{
	/* a failed deploy is the result's deploy_error, not a warning */
	if (strcmp(e->type, "deploy.failed") == 0)
		return 0;
	json_t *d = e->details ? json_loads(e->details, 0, NULL) : NULL;
	const char *err = json_string_value(json_object_get(d, "error"));
	char *text = NULL;
	if (asprintf(&text, "%s%s%s", e->type, err ? ": " : "", err ? err : "") > 0)
		json_array_append_new((json_t *)ctx, json_string(text));
	free(text);
	json_decref(d);
	return 0;
}

/* What went wrong after the renewal itself (prune, notify), as the events
 * recorded since seq say. */
static void warnings_since(kw_store *s, const char *cert, int64_t seq, json_t *result)
{
	json_t *w = json_array();
	if (kwi_store_event_failed_each(s, cert, seq, warning_add, w) != KW_OK)
		kw_error_clear();
	if (json_array_size(w))
		json_object_set(result, "warnings", w);
	json_decref(w);
}

/* A step the device failed (its own code recorded) on connections from
 * earlier in the run (none opened since opens) may have met one the device
 * dropped meanwhile (swtpm restarted: its handles are gone; a token
 * re-plugged): 1 after dropping the run's connections, so the caller tries
 * once more on fresh ones. A failed renewal or purge changed nothing, so the
 * retry is what the next run would do; a fault that stays fails the retry
 * with its own message. Not for what others refused (an ACME server). */
static int stale_suspect(kw_store *s, kw_rc rc, unsigned long opens)
{
	if ((rc != KW_ERR_UNAVAILABLE && rc != KW_ERR_BACKEND && rc != KW_ERR_NOT_FOUND) ||
	    kw_error_device_code() == 0 || kwi_device_opens() != opens)
		return 0;
	kwi_devices_reset(s);
	kw_error_clear();
	return 1;
}

static void renew_one(kw_store *s, const due_cert *c, time_t now, kwi_renew_outcome *o,
                      run_err *err)
{
	kw_version_info made;
	int64_t seq = 0;
	if (last_seq(s, &seq) != KW_OK)
		kw_error_clear();
	unsigned long opens = kwi_device_opens();
	kw_rc rc = kwi_cert_renew(s, c->name, KW_RENEW_POLICY, &made);
	if (stale_suspect(s, rc, opens))
		rc = kwi_cert_renew(s, c->name, KW_RENEW_POLICY, &made);
	if (rc == KW_ERR_DEPLOY) {
		/* renewed all the same; the next run deploys it again */
		kwi_renew_outcome_deploy_error(o, kw_error_message());
		kw_error_clear();
		rc = KW_OK;
	}
	if (rc == KW_OK) {
		/* issuer unknown: a CSR waits for the admin, who has been told */
		o->r.action = made.pending ? KW_RENEW_PENDING : KW_RENEW_RENEWED;
		o->r.new_version = made.version;
		o->r.new_key = made.new_key;
		warnings_since(s, c->name, seq, o->warnings);
		return;
	}
	kwi_renew_outcome_error(o, kw_error_message()[0] ? kw_error_message() : kw_rc_name(rc));
	kw_error_clear();
	kwi_devices_reset(s); /* the next certificate reconnects */
	time_t next = now + backoff(c->failures + 1);
	/* an ACME server that asked us to come back later (Retry-After) */
	if (kwi_acme_retry_at() > next)
		next = kwi_acme_retry_at();
	o->r.action = KW_RENEW_FAILED;
	o->r.failures = c->failures + 1;
	o->r.next_attempt = next;
	rc = failure_record(s, c, o->error, now, next);
	if (rc == KW_OK) {
		json_t *details =
		    json_pack("{s:s,s:i}", "error", o->error, "failures", c->failures + 1);
		set_time(details, "next_attempt", next);
		rc = kwi_notify(s, "renewal-failed", c->name, c->version, NULL, details);
		json_decref(details);
	}
	if (rc != KW_OK)
		run_fail(err, rc);
}

/* The right to renew c in this run (issue 14: two renew --due at once both
 * renewed a certificate: two keys, deploys, notices, ACME orders). *mine 0:
 * another run holds it now, or renewed c since this run read it. */
static kw_rc lease_take(kw_store *s, const due_cert *c, int *mine)
{
	kwi_cert_row now;
	int found = 0;
	KW_GUARD(kwi_store_cert_lease(s, c->id, 0, mine));
	if (!*mine)
		return KW_OK;
	kw_rc rc = kwi_store_cert_get(s, c->name, 0, &now, &found);
	if (rc == KW_OK && (!found || now.current_version != c->version))
		*mine = 0;
	kwi_cert_row_clear(&now);
	if (rc != KW_OK || !*mine)
		kwi_store_cert_release(s, c->id);
	return rc;
}

/* c's current version's last deploy failed (a hook, a file, its target:
 * the deploy.failed event is its last deploy event): it is deployed again,
 * without a new version, once per run until it succeeds. Under c's lease, as
 * a renewal: two runs never deploy it at once. */
static void deploy_retry(kw_store *s, const due_cert *c, int dry_run, kwi_renew_outcome *o,
                         run_err *err)
{
	int failed = 0, mine = 0;
	json_t *report = NULL;
	if (c->policy->deploy.target == NULL)
		return;
	kw_rc rc = kwi_store_deploy_last_failed(s, c->name, c->version, &failed);
	if (rc != KW_OK) {
		run_fail(err, rc);
		return;
	}
	if (!failed)
		return;
	if (dry_run) {
		o->r.deploy_retried = 2;
		return;
	}
	if ((rc = lease_take(s, c, &mine)) != KW_OK) {
		run_fail(err, rc);
		return;
	}
	if (!mine)
		return; /* another run has it, or renewed it (and so deployed) */
	o->r.deploy_retried = 1;
	if (kwi_deploy(s, c->name, &report) != KW_OK) {
		kwi_renew_outcome_deploy_error(o, kw_error_message()[0] ? kw_error_message()
		                                                        : "the deploy failed");
		kw_error_clear();
	}
	json_decref(report);
	kwi_store_cert_release(s, c->id);
}

/* Decides what to do with c and does it; o->r.action says what happened. */
static void consider(kw_store *s, const due_cert *c, time_t now, int dry_run, kwi_renew_outcome *o,
                     run_err *err)
{
	kw_renew_result *r = &o->r;
	r->action = KW_RENEW_SKIPPED;
	if (!c->enabled) {
		r->reason = KW_RENEW_REASON_DISABLED;
		return;
	}
	if (!c->has_cert) {
		r->reason = KW_RENEW_REASON_NO_CERTIFICATE;
		return;
	}
	time_t due = kwi_policy_renew_at(c->policy, c->not_before, c->not_after);
	if (c->policy->issuer.kind == KW_ISSUER_ACME) {
		const char *acme = c->policy->issuer.named;
		/* the CA may ask for an earlier renewal (RFC 9773) */
		time_t ari = kwi_ari_renew_at(s, acme, c->id, c->version, now, dry_run, o->ari);
		if (ari && ari < due)
			due = ari;
	}
	r->due = due;
	r->not_after = c->not_after;
	if (now < due) {
		int sent = notices_send(s, c, now, dry_run, o->notices, err);
		r->action = sent && !dry_run ? KW_RENEW_NOTIFIED : KW_RENEW_NOT_DUE;
		deploy_retry(s, c, dry_run, o, err);
		return;
	}
	if (c->pending_version) {
		/* one CSR at a time: the admin has it (and was told once) */
		r->reason = KW_RENEW_REASON_PENDING;
		r->pending_version = c->pending_version;
		kw_rc rc = dry_run ? KW_OK : kwi_pending_notify(s, c->name, c->pending_version);
		if (rc != KW_OK)
			run_fail(err, rc);
	} else if (c->failures > 0 && c->next_attempt > now) {
		r->reason = KW_RENEW_REASON_BACKOFF;
		r->failures = c->failures;
		r->next_attempt = c->next_attempt;
		r->error = c->last_error;
	} else if (dry_run) {
		r->action = KW_RENEW_WOULD_RENEW;
		r->new_key = wants_new_key(c);
	} else {
		int mine = 0;
		kw_rc rc = lease_take(s, c, &mine);
		if (rc != KW_OK || !mine) {
			if (rc != KW_OK)
				run_fail(err, rc);
			r->reason = KW_RENEW_REASON_CONCURRENT;
			return;
		}
		renew_one(s, c, now, o, err);
		if (r->action == KW_RENEW_FAILED)
			notices_send(s, c, now, dry_run, o->notices, err);
		kwi_store_cert_release(s, c->id);
		return;
	}
	notices_send(s, c, now, dry_run, o->notices, err);
	/* pending, backoff: the current version serves on */
	if (r->action == KW_RENEW_SKIPPED)
		deploy_retry(s, c, dry_run, o, err);
}

/* The run: what each result goes to. */
typedef struct {
	const kw_renew_options *opts;
	json_t *results;
	size_t counts[KWI_RENEW_ACTIONS];
	size_t deploy_failed; /* results whose deploy failed */
	run_err err;
} run;

/* Hands a decided result to the progress callback and the report. */
static void run_add(run *u, kwi_renew_outcome *o)
{
	kw_rc rc = kwi_renew_outcome_finish(o);
	if (rc != KW_OK) {
		run_fail(&u->err, rc);
		return;
	}
	u->counts[o->r.action]++;
	u->deploy_failed += o->r.deploy_error != NULL;
	if (u->opts->progress)
		u->opts->progress(&o->r, u->opts->arg);
	if (json_array_append(u->results, o->json) != 0)
		run_fail(&u->err, KW_FAIL(KW_ERR_NOMEM, "out of memory"));
}

/* One soft-deleted certificate d past its retention (purge_after). */
static void purge_one(kw_store *s, const char *name, time_t deleted, time_t after, run *u)
{
	kwi_renew_outcome o;
	kw_rc rc = kwi_renew_outcome_init(&o, name, 0);
	if (rc != KW_OK) {
		run_fail(&u->err, rc);
		return;
	}
	o.r.deleted = deleted;
	o.r.purge_after = after;
	unsigned long opens = kwi_device_opens();
	if (u->opts->dry_run)
		o.r.action = KW_RENEW_WOULD_PURGE;
	else if ((rc = kwi_cert_purge(s, name, NULL)) == KW_OK ||
	         (stale_suspect(s, rc, opens) && kwi_cert_purge(s, name, NULL) == KW_OK))
		o.r.action = KW_RENEW_PURGED;
	else {
		o.r.action = KW_RENEW_FAILED;
		kwi_renew_outcome_error(&o, kw_error_message());
		kwi_devices_reset(s);
	}
	kw_error_clear();
	run_add(u, &o);
	kwi_renew_outcome_clear(&o);
}

/* Soft-deleted certificates past the retention period go for good. */
static void purge_expired(kw_store *s, time_t now, run *u)
{
	json_t *deleted = NULL;
	size_t i;
	json_t *d;
	kw_rc rc = kwi_cert_list_deleted(s, &deleted);
	if (rc != KW_OK) {
		run_fail(&u->err, rc);
		return;
	}
	json_array_foreach(deleted, i, d)
	{
		time_t when = 0, after = 0;
		if (kwi_time_parse(json_string_value(json_object_get(d, "purge_after")), &after) !=
		        KW_OK ||
		    kwi_time_parse(json_string_value(json_object_get(d, "deleted")), &when) !=
		        KW_OK ||
		    now < after)
			continue;
		purge_one(s, json_string_value(json_object_get(d, "name")), when, after, u);
	}
	json_decref(deleted);
}

static int jitter(int seconds)
{
	if (seconds <= 0 || sodium_init() < 0)
		return 0;
	uint32_t ms = randombytes_uniform((uint32_t)seconds * 1000u + 1u);
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
	return (int)ms;
}

kw_rc kw_renew_due(kw_store *s, const kw_renew_options *o, json_t **report)
{
	kw_renew_options none = {0};
	due_cert *certs = NULL;
	size_t n = 0;
	time_t now;
	kw_error_clear();
	*report = NULL;
	if (o == NULL)
		o = &none;
	if (o->jitter_seconds < 0)
		return KW_FAIL(KW_ERR_USAGE, "jitter of %d seconds: must be 0 or more",
		               o->jitter_seconds);
	int slept = jitter(o->jitter_seconds);
	KW_GUARD(kwi_now(&now));
	KW_GUARD(due_load(s, &certs, &n));
	/* every step below opens each backend once: its first use */
	kw_rc rc = kwi_devices_begin(s);
	if (rc != KW_OK) {
		kwi_renewal_due_rows_free(certs, n);
		return rc;
	}
	run u = {.opts = o, .results = json_array(), .err = {KW_OK, ""}};
	for (size_t i = 0; i < n; i++) {
		kwi_renew_outcome res;
		if ((rc = kwi_renew_outcome_init(&res, certs[i].name, certs[i].version)) != KW_OK) {
			run_fail(&u.err, rc);
			break;
		}
		consider(s, &certs[i], now, o->dry_run, &res, &u.err);
		run_add(&u, &res);
		kwi_renew_outcome_clear(&res);
	}
	kwi_renewal_due_rows_free(certs, n);
	purge_expired(s, now, &u);
	kwi_devices_end(s);
	*report = json_pack("{s:b,s:i,s:o}", "dry_run", o->dry_run, "jitter_ms", slept, "results",
	                    u.results);
	if (*report) {
		set_time(*report, "now", now);
		if ((rc = kwi_renew_counts_put(*report, u.counts)) != KW_OK)
			run_fail(&u.err, rc);
		else if (json_object_set_new(*report, "deploy_failed",
		                             json_integer((json_int_t)u.deploy_failed)) != 0)
			run_fail(&u.err, KW_FAIL(KW_ERR_NOMEM, "out of memory"));
	}
	/* a store that fails is everyone's failure, not one certificate's */
	if (u.err.rc != KW_OK) {
		json_decref(*report);
		*report = NULL;
		kw_error_clear();
		return KW_FAIL(u.err.rc, "%s", u.err.msg);
	}
	return *report ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}
