/* The renewal engine (kw_renew_due): triggers, notices, backoff, dry run,
 * retention, jitter — deterministic through KEYWARD_NOW, on real devices. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include <keyward/lifecycle.h>

#include "internal.h"
#include "store/sql.h"
#include "fixtures.h"
#include "kwtest.h"

#define T0_EPOCH 1893456000L /* 2030-01-01T00:00:00Z */
#define DAY      86400L

static int tpm_down;

/* Brings the swtpm back after a test stopped it (see kwt_swtpm_back). */
static void tpm_up_again(void)
{
	kwt_swtpm_back(&tpm_down);
}

static void tpm_stop(void)
{
	kwt_swtpm_stop();
	tpm_down = 1;
}

static void fmt(time_t t, char *buf, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void at(time_t t)
{
	char buf[32];
	fmt(t, buf, sizeof(buf));
	cr_assert_eq(setenv("KEYWARD_NOW", buf, 1), 0);
}

static kw_store *store_new(char **dir)
{
	kw_store *s = kwt_store_open_new(dir);
	kw_store_set_actor(s, "renew");
	return s;
}

static void create(const char *dir, const char *name, const char *backend, int days)
{
	kwt_cert_create_now(dir, name, backend, days);
}

static void policy_patch(kw_store *s, const char *name, const char *patch)
{
	kwt_policy_patch(s, name, patch);
}

/* A time field of a result: the JSON string is the typed time, formatted;
 * absent exactly when the time is 0. */
static void time_matches(const kw_renew_result *r, const char *key, time_t t)
{
	const char *j = json_string_value(json_object_get(r->json, key));
	if (t == 0) {
		cr_assert_null(j, "%s: %s is %s in JSON, 0 typed", r->name, key, j);
		return;
	}
	char buf[32];
	fmt(t, buf, sizeof(buf));
	cr_assert_not_null(j, "%s: %s typed, absent in JSON", r->name, key);
	cr_assert_str_eq(j, buf, "%s: %s", r->name, key);
}

static void int_matches(const kw_renew_result *r, const char *key, int v)
{
	json_t *j = json_object_get(r->json, key);
	cr_assert_eq(j ? (int)json_integer_value(j) : 0, v, "%s: %s", r->name, key);
}

/* The typed result says what its JSON document says, field by field. */
static void typed_matches_json(const kw_renew_result *r)
{
	const json_t *j = r->json;
	cr_assert_not_null(j);
	cr_assert_str_eq(r->name, json_string_value(json_object_get(j, "name")));
	cr_assert_str_eq(kw_renew_action_name(r->action),
	                 json_string_value(json_object_get(j, "action")), "%s", r->name);
	const char *reason = json_string_value(json_object_get(j, "reason"));
	if (reason)
		cr_assert_str_eq(kw_renew_reason_name(r->reason), reason, "%s", r->name);
	else
		cr_assert_eq(r->reason, KW_RENEW_REASON_NONE, "%s", r->name);
	int_matches(r, "version", r->version);
	int_matches(r, "new_version", r->new_version);
	int_matches(r, "pending_version", r->pending_version);
	int_matches(r, "failures", r->failures);
	cr_assert_eq(json_is_true(json_object_get(j, "new_key")), r->new_key != 0, "%s", r->name);
	time_matches(r, "due", r->due);
	time_matches(r, "not_after", r->not_after);
	time_matches(r, "next_attempt", r->next_attempt);
	time_matches(r, "deleted", r->deleted);
	time_matches(r, "purge_after", r->purge_after);
	const char *error = json_string_value(json_object_get(j, "error"));
	if (error)
		cr_assert_str_eq(r->error, error, "%s", r->name);
	else
		cr_assert_null(r->error, "%s", r->name);
}

/* Every progress call is checked: its typed fields against its document. */
static void collect(const kw_renew_result *result, void *arg)
{
	typed_matches_json(result);
	json_array_append((json_t *)arg, (json_t *)result->json);
}

/* Runs the engine; the report, with the progress calls checked against it. */
static json_t *run_opts(kw_store *s, int dry_run, int jitter)
{
	json_t *seen = json_array(), *report = NULL;
	kw_renew_options o = {
	    .dry_run = dry_run, .jitter_seconds = jitter, .progress = collect, .arg = seen};
	cr_assert_eq(kw_renew_due(s, &o, &report), KW_OK, "%s", kw_error_message());
	cr_assert(json_equal(seen, json_object_get(report, "results")),
	          "progress saw other results than the report holds");
	json_decref(seen);
	return report;
}

static json_t *run(kw_store *s)
{
	return run_opts(s, 0, 0);
}

/* The result for name (borrowed), or NULL. */
static json_t *result_of(const json_t *report, const char *name)
{
	json_t *results = json_object_get(report, "results");
	for (size_t i = 0; i < json_array_size(results); i++) {
		json_t *r = json_array_get(results, i);
		if (strcmp(json_string_value(json_object_get(r, "name")), name) == 0)
			return r;
	}
	return NULL;
}

static const char *action_of(const json_t *report, const char *name)
{
	json_t *r = result_of(report, name);
	cr_assert_not_null(r, "no result for %s", name);
	return json_string_value(json_object_get(r, "action"));
}

static const char *field(const json_t *report, const char *name, const char *key)
{
	const char *v = json_string_value(json_object_get(result_of(report, name), key));
	cr_assert_not_null(v, "result for %s lacks %s", name, key);
	return v;
}

static int sql_int(kw_store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	cr_assert_eq(sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
	int r = sqlite3_step(st);
	cr_assert(r == SQLITE_ROW, "%s: no row", sql);
	int n = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static long long sql_ll(kw_store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	cr_assert_eq(sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: no row", sql);
	long long n = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int current_of(kw_store *s, const char *name)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT current_version FROM certs WHERE name = '%s'", name);
	return sql_int(s, sql);
}

static int events_of(kw_store *s, const char *cert, const char *type)
{
	return kwt_events_count(s, cert, type);
}

/* A command channel that appends "EVENT NAME VERSION THRESHOLD" to a file. */
static char *channel_log(kw_store *s)
{
	char *dir = kwt_tmpdir("notices"), *log = NULL, *cmd = NULL;
	cr_assert(asprintf(&log, "%s/log", dir) > 0);
	cr_assert(asprintf(&cmd,
	                   "echo \"$KEYWARD_EVENT $KEYWARD_NAME $KEYWARD_VERSION "
	                   "$KEYWARD_THRESHOLD\" >> '%s'",
	                   log) > 0);
	json_t *cfg = json_pack("{s:s}", "command", cmd);
	cr_assert_eq(kw_channel_add(s, "log", "command", cfg), KW_OK, "%s", kw_error_message());
	json_decref(cfg);
	free(cmd);
	free(dir);
	return log;
}

static char *log_text(const char *log)
{
	char *t = kwt_read_file(log, NULL);
	return t ? t : strdup("");
}

/* ---- triggers ---- */

Test(renew, default_policy_renews_at_two_thirds_of_the_lifetime, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	create(dir, "a", "tpm", 90);
	at(T0_EPOCH + 60 * DAY - 1);
	json_t *rep = run(s);
	cr_assert_str_eq(action_of(rep, "a"), "not-due");
	cr_assert_str_eq(field(rep, "a", "due"), "2030-03-02T00:00:00Z");
	cr_assert_eq(json_integer_value(json_object_get(rep, "renewed")), 0);
	cr_assert_eq(current_of(s, "a"), 1);
	json_decref(rep);

	at(T0_EPOCH + 60 * DAY);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "a"), "renewed");
	cr_assert_eq(json_integer_value(json_object_get(result_of(rep, "a"), "new_version")), 2);
	cr_assert(json_is_true(json_object_get(result_of(rep, "a"), "new_key")));
	cr_assert_eq(json_integer_value(json_object_get(rep, "renewed")), 1);
	cr_assert_eq(json_integer_value(json_object_get(rep, "failed")), 0);
	cr_assert_eq(current_of(s, "a"), 2);
	cr_assert_eq(sql_int(s, "SELECT COUNT(DISTINCT key_ref) FROM versions"), 2);
	cr_assert_eq(sql_ll(s, "SELECT last_success FROM renewal_state"), T0_EPOCH + 60 * DAY);
	cr_assert_eq(sql_int(s, "SELECT failures FROM renewal_state"), 0);
	json_decref(rep);

	/* the new version is not due: its own 2/3 lies ahead */
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "a"), "not-due");
	cr_assert_str_eq(field(rep, "a", "due"), "2030-05-01T00:00:00Z");
	json_decref(rep);
	kw_store_close(s);
	free(dir);
}

Test(renew, lifetime_percentage_trigger_and_reuse_key_follow_the_policy, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	create(dir, "half", "hsm", 100);
	policy_patch(s, "half",
	             "{\"key\": {\"type\": \"ec-p256\", \"backend\": \"hsm\", \"reuse_key\": true},"
	             " \"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 50},"
	             " \"action\": \"auto_renew\"}]}");
	int objects = kwt_p11_object_count();
	at(T0_EPOCH + 50 * DAY - 1);
	json_t *rep = run(s);
	cr_assert_str_eq(action_of(rep, "half"), "not-due");
	cr_assert_str_eq(field(rep, "half", "due"), "2030-02-20T00:00:00Z");
	json_decref(rep);
	at(T0_EPOCH + 50 * DAY);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "half"), "renewed");
	cr_assert(json_is_false(json_object_get(result_of(rep, "half"), "new_key")));
	json_decref(rep);
	/* the same key: one key ref, no new key pair on the token */
	cr_assert_eq(sql_int(s, "SELECT COUNT(DISTINCT key_ref) FROM versions"), 1);
	cr_assert_eq(kwt_p11_object_count(), objects);
	kw_store_close(s);
	free(dir);
}

Test(renew, days_before_expiry_trigger, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	create(dir, "d", "tpm", 60);
	policy_patch(s, "d",
	             "{\"lifetime_actions\": [{\"trigger\": {\"days_before_expiry\": 10},"
	             " \"action\": \"auto_renew\"}]}");
	at(T0_EPOCH + 50 * DAY - 1);
	json_t *rep = run(s);
	cr_assert_str_eq(action_of(rep, "d"), "not-due");
	cr_assert_str_eq(field(rep, "d", "due"), "2030-02-20T00:00:00Z");
	json_decref(rep);
	at(T0_EPOCH + 50 * DAY);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "d"), "renewed");
	json_decref(rep);
	kw_store_close(s);
	free(dir);
}

/* ---- notices ---- */

Test(renew, notify_actions_send_each_threshold_once_per_version, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	create(dir, "n", "tpm", 100);
	policy_patch(s, "n",
	             "{\"lifetime_actions\": ["
	             "{\"trigger\": {\"lifetime_percentage\": 80}, \"action\": \"notify\"},"
	             "{\"trigger\": {\"days_before_expiry\": 30}, \"action\": \"notify\"},"
	             "{\"trigger\": {\"lifetime_percentage\": 95}, \"action\": \"auto_renew\"}]}");
	char *log = channel_log(s);
	at(T0_EPOCH + 70 * DAY - 1);
	json_t *rep = run(s);
	cr_assert_str_eq(action_of(rep, "n"), "not-due");
	json_decref(rep);
	char *t = log_text(log);
	cr_assert_str_empty(t, "a notice before any threshold: %s", t);
	free(t);

	at(T0_EPOCH + 70 * DAY); /* 30 days before expiry */
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "n"), "notified");
	json_t *sent = json_object_get(result_of(rep, "n"), "notified");
	cr_assert_eq(json_array_size(sent), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(sent, 0), "threshold")),
	                 "days_before_expiry=30");
	json_decref(rep);
	t = log_text(log);
	cr_assert_str_eq(t, "near-expiry n 1 days_before_expiry=30\n");
	free(t);

	at(T0_EPOCH + 75 * DAY); /* nothing new */
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "n"), "not-due");
	json_decref(rep);
	at(T0_EPOCH + 80 * DAY);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "n"), "notified");
	json_decref(rep);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "n"), "not-due");
	json_decref(rep);
	t = log_text(log);
	cr_assert_str_eq(t, "near-expiry n 1 days_before_expiry=30\n"
	                    "near-expiry n 1 lifetime_percentage=80\n");
	free(t);

	/* the auto_renew trigger: renewed (and told so); the new version starts over */
	at(T0_EPOCH + 95 * DAY);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "n"), "renewed");
	json_decref(rep);
	t = log_text(log);
	cr_assert(strstr(t, "renewed n 2 \n") != NULL, "%s", t);
	cr_assert_eq(kwt_count_lines(t), 3, "%s", t);
	free(t);
	free(log);
	kw_store_close(s);
	free(dir);
}

/* ---- failures ---- */

Test(renew, a_failure_backs_off_and_never_stops_the_others, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	create(dir, "a-tpm", "tpm", 90);
	create(dir, "b-hsm", "hsm", 90);
	char *log = channel_log(s);
	time_t t1 = T0_EPOCH + 61 * DAY;
	at(t1);
	tpm_stop();
	json_t *rep = run(s);
	cr_assert_str_eq(action_of(rep, "a-tpm"), "failed");
	cr_assert_str_eq(action_of(rep, "b-hsm"), "renewed");
	cr_assert_eq(json_integer_value(json_object_get(rep, "failed")), 1);
	cr_assert_eq(json_integer_value(json_object_get(rep, "renewed")), 1);
	cr_assert_str_eq(field(rep, "a-tpm", "next_attempt"), "2030-03-03T00:05:00Z");
	cr_assert(strlen(field(rep, "a-tpm", "error")) > 10);
	json_decref(rep);
	cr_assert_eq(sql_int(s, "SELECT failures FROM renewal_state r JOIN certs c ON"
	                        " c.id = r.cert_id WHERE c.name = 'a-tpm'"),
	             1);
	cr_assert_eq(sql_ll(s, "SELECT next_attempt FROM renewal_state r JOIN certs c ON"
	                       " c.id = r.cert_id WHERE c.name = 'a-tpm'"),
	             t1 + 300);
	cr_assert_eq(sql_int(s, "SELECT COUNT(*) FROM renewal_state WHERE last_error LIKE '%tpm%'"
	                        " OR last_error LIKE '%TPM%'"),
	             1);
	cr_assert_eq(events_of(s, "a-tpm", "renew.failed"), 1);
	char *t = log_text(log);
	cr_assert(strstr(t, "renewal-failed a-tpm 1") != NULL, "%s", t);
	cr_assert(strstr(t, "renewed b-hsm 2") != NULL, "%s", t);
	free(t);

	/* before next_attempt: skipped, nothing tried */
	at(t1 + 299);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "a-tpm"), "skipped");
	cr_assert_str_eq(field(rep, "a-tpm", "next_attempt"), "2030-03-03T00:05:00Z");
	cr_assert_str_eq(action_of(rep, "b-hsm"), "not-due");
	cr_assert_eq(json_integer_value(json_object_get(rep, "failed")), 0);
	json_decref(rep);
	cr_assert_eq(events_of(s, "a-tpm", "renew.failed"), 1);

	/* second failure: the wait doubles */
	at(t1 + 300);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "a-tpm"), "failed");
	cr_assert_str_eq(field(rep, "a-tpm", "next_attempt"), "2030-03-03T00:15:00Z");
	json_decref(rep);
	cr_assert_eq(sql_int(s, "SELECT MAX(failures) FROM renewal_state"), 2);
	/* and the metrics say so, for alerting */
	char *text = NULL;
	cr_assert_eq(kw_metrics_text(s, &text), KW_OK, "%s", kw_error_message());
	cr_assert(strstr(text, "keyward_certificate_renewal_failures{name=\"a-tpm\"") != NULL, "%s",
	          text);
	char *line = strstr(text, "keyward_certificate_renewal_failures{name=\"a-tpm\"");
	cr_assert(line && strstr(line, "} 2\n") == strchr(line, '}'), "failures of a-tpm: %.120s",
	          line);
	free(text);

	/* the TPM is back, but the wait holds */
	tpm_up_again();
	at(t1 + 899);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "a-tpm"), "skipped");
	json_decref(rep);
	at(t1 + 900);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "a-tpm"), "renewed");
	json_decref(rep);
	cr_assert_eq(current_of(s, "a-tpm"), 2);
	cr_assert_eq(sql_int(s, "SELECT failures FROM renewal_state r JOIN certs c ON"
	                        " c.id = r.cert_id WHERE c.name = 'a-tpm'"),
	             0);
	cr_assert_eq(sql_int(s, "SELECT next_attempt FROM renewal_state r JOIN certs c ON"
	                        " c.id = r.cert_id WHERE c.name = 'a-tpm'"),
	             -1);
	cr_assert_eq(sql_ll(s, "SELECT last_success FROM renewal_state r JOIN certs c ON"
	                       " c.id = r.cert_id WHERE c.name = 'a-tpm'"),
	             t1 + 900);
	free(log);
	kw_store_close(s);
	free(dir);
}

/* The token refuses: the PIN file no longer holds the PIN. */
static char *pin_break(void)
{
	char *pin = kwt_read_file(kwt_env("KW_TEST_P11_PIN_FILE"), NULL);
	cr_assert_not_null(pin);
	free(kwt_write_file(kwt_env("KW_TEST_TMP"), "user.pin", "999999\n", 7, 0600));
	return pin;
}

static void pin_fix(char *pin)
{
	free(kwt_write_file(kwt_env("KW_TEST_TMP"), "user.pin", pin, strlen(pin), 0600));
	free(pin);
}

Test(renew, backoff_is_capped_at_a_day, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	create(dir, "cap", "hsm", 365);
	time_t t = T0_EPOCH + 300 * DAY;
	char *pin = pin_break();
	long long want[] = {300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 76800, 86400, 86400};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		at(t);
		json_t *rep = run(s);
		cr_assert_str_eq(action_of(rep, "cap"), "failed");
		cr_assert(strstr(field(rep, "cap", "error"), "PIN") != NULL, "%s",
		          field(rep, "cap", "error"));
		json_decref(rep);
		long long next = sql_ll(s, "SELECT next_attempt FROM renewal_state");
		cr_assert_eq(next - t, want[i], "failure %zu: waits %lld s, expected %lld", i + 1,
		             next - t, want[i]);
		t = (time_t)next;
	}
	cr_assert_eq(sql_int(s, "SELECT failures FROM renewal_state"), 11);
	pin_fix(pin);
	at(t);
	json_t *rep = run(s);
	cr_assert_str_eq(action_of(rep, "cap"), "renewed");
	json_decref(rep);
	cr_assert_eq(sql_int(s, "SELECT failures FROM renewal_state"), 0);
	kw_store_close(s);
	free(dir);
}

Test(renew, an_expired_version_that_cannot_renew_is_reported_expired, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	create(dir, "late", "tpm", 30);
	char *log = channel_log(s);
	tpm_stop();
	at(T0_EPOCH + 31 * DAY);
	json_t *rep = run(s);
	cr_assert_str_eq(action_of(rep, "late"), "failed");
	json_t *sent = json_object_get(result_of(rep, "late"), "notified");
	cr_assert_eq(json_array_size(sent), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(sent, 0), "kind")),
	                 "expired");
	json_decref(rep);
	char *t = log_text(log);
	cr_assert(strstr(t, "expired late 1 expired\n") != NULL, "%s", t);
	free(t);
	free(log);
	kw_store_close(s);
	free(dir);
}

/* ---- what is not renewed ---- */

Test(renew, disabled_certificates_are_skipped, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	create(dir, "off", "tpm", 30);
	cr_assert_eq(kw_cert_set_enabled(s, "off", 0), KW_OK);
	at(T0_EPOCH + 29 * DAY);
	json_t *rep = run(s);
	cr_assert_str_eq(action_of(rep, "off"), "skipped");
	cr_assert_str_eq(field(rep, "off", "reason"), "disabled");
	json_decref(rep);
	cr_assert_eq(current_of(s, "off"), 1);
	kw_store_close(s);
	free(dir);
}

/* What progress saw of one certificate, typed (the pointers are the call's only). */
typedef struct {
	char name[32];
	kw_renew_action action;
	kw_renew_reason reason;
	int version, new_version, new_key, failures;
	time_t due, not_after, next_attempt;
	int has_error;
} seen_result;

typedef struct {
	seen_result r[8];
	size_t n;
	json_t *docs;
} seen_results;

static void keep_typed(const kw_renew_result *r, void *arg)
{
	seen_results *k = arg;
	collect(r, k->docs);
	cr_assert_lt(k->n, 8);
	seen_result *t = &k->r[k->n++];
	snprintf(t->name, sizeof(t->name), "%s", r->name);
	t->action = r->action;
	t->reason = r->reason;
	t->version = r->version;
	t->new_version = r->new_version;
	t->new_key = r->new_key;
	t->failures = r->failures;
	t->due = r->due;
	t->not_after = r->not_after;
	t->next_attempt = r->next_attempt;
	t->has_error = r->error != NULL;
}

static const seen_result *seen_of(const seen_results *k, const char *name)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->r[i].name, name) == 0)
			return &k->r[i];
	cr_assert_fail("progress never saw %s", name);
	return NULL;
}

Test(renew, progress_gets_the_typed_result_that_the_report_holds, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	create(dir, "a-fails", "tpm", 90);
	create(dir, "b-renews", "hsm", 90);
	create(dir, "c-later", "hsm", 365);
	create(dir, "d-off", "hsm", 90);
	cr_assert_eq(kw_cert_set_enabled(s, "d-off", 0), KW_OK);
	time_t t1 = T0_EPOCH + 61 * DAY;
	at(t1);
	tpm_stop();
	seen_results k = {.docs = json_array()};
	json_t *rep = NULL;
	kw_renew_options o = {.progress = keep_typed, .arg = &k};
	cr_assert_eq(kw_renew_due(s, &o, &rep), KW_OK, "%s", kw_error_message());
	cr_assert(json_equal(k.docs, json_object_get(rep, "results")));
	cr_assert_eq(k.n, 4);

	const seen_result *f = seen_of(&k, "a-fails");
	cr_assert_eq(f->action, KW_RENEW_FAILED);
	cr_assert_eq(f->reason, KW_RENEW_REASON_NONE);
	cr_assert_eq(f->version, 1);
	cr_assert_eq(f->failures, 1);
	cr_assert_eq(f->next_attempt, t1 + 300);
	cr_assert_eq(f->due, T0_EPOCH + 60 * DAY);
	cr_assert(f->has_error);
	cr_assert_str_eq(action_of(rep, "a-fails"), "failed");

	const seen_result *r = seen_of(&k, "b-renews");
	cr_assert_eq(r->action, KW_RENEW_RENEWED);
	cr_assert_eq(r->new_version, 2);
	cr_assert(r->new_key);
	cr_assert_not(r->has_error);
	cr_assert_eq(r->next_attempt, 0);
	cr_assert_str_eq(action_of(rep, "b-renews"), "renewed");

	const seen_result *l = seen_of(&k, "c-later");
	cr_assert_eq(l->action, KW_RENEW_NOT_DUE);
	cr_assert_eq(l->new_version, 0);
	cr_assert_eq(l->not_after, T0_EPOCH + 365 * DAY);
	cr_assert_gt(l->due, t1);
	cr_assert_str_eq(action_of(rep, "c-later"), "not-due");

	const seen_result *d = seen_of(&k, "d-off");
	cr_assert_eq(d->action, KW_RENEW_SKIPPED);
	cr_assert_eq(d->reason, KW_RENEW_REASON_DISABLED);
	cr_assert_eq(d->due, 0);
	cr_assert_eq(d->not_after, 0);
	cr_assert_str_eq(field(rep, "d-off", "reason"), "disabled");

	/* the counts come from the same actions */
	cr_assert_eq(json_integer_value(json_object_get(rep, "failed")), 1);
	cr_assert_eq(json_integer_value(json_object_get(rep, "renewed")), 1);
	cr_assert_eq(json_integer_value(json_object_get(rep, "skipped")), 1);
	json_decref(rep);
	json_decref(k.docs);
	kw_store_close(s);
	free(dir);
}

Test(renew, dry_run_changes_nothing_at_all, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	create(dir, "x", "hsm", 90);
	create(dir, "y", "tpm", 90);
	create(dir, "z", "hsm", 90);
	policy_patch(s, "x",
	             "{\"lifetime_actions\": [{\"trigger\": {\"days_before_expiry\": 40},"
	             " \"action\": \"notify\"}]}");
	cr_assert_eq(kw_cert_soft_delete(s, "z"), KW_OK);
	char *log = channel_log(s);
	at(T0_EPOCH + 91 * DAY);
	char *before = kwt_store_dump(dir);
	int objects = kwt_p11_object_count();
	json_t *rep = run_opts(s, 1, 0);
	cr_assert_str_eq(action_of(rep, "x"), "would-renew");
	cr_assert_str_eq(action_of(rep, "y"), "would-renew");
	cr_assert_str_eq(action_of(rep, "z"), "would-purge");
	cr_assert(json_is_true(json_object_get(rep, "dry_run")));
	cr_assert_eq(json_integer_value(json_object_get(rep, "would_renew")), 2);
	cr_assert_eq(json_array_size(json_object_get(result_of(rep, "x"), "would_notify")), 1);
	json_decref(rep);
	char *after = kwt_store_dump(dir);
	cr_assert_str_eq(before, after, "dry run changed the store");
	cr_assert_eq(kwt_p11_object_count(), objects, "dry run changed the token");
	char *t = log_text(log);
	cr_assert_str_empty(t, "dry run sent: %s", t);
	free(t);
	/* the real run does what the dry run said */
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "x"), "renewed");
	cr_assert_str_eq(action_of(rep, "y"), "renewed");
	cr_assert_str_eq(action_of(rep, "z"), "purged");
	json_decref(rep);
	free(before);
	free(after);
	free(log);
	kw_store_close(s);
	free(dir);
}

Test(renew, soft_deleted_certificates_are_purged_after_the_retention, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	int objects0 = kwt_p11_object_count();
	create(dir, "old", "hsm", 365);
	create(dir, "old-tpm", "tpm", 365);
	create(dir, "keep", "tpm", 365);
	cr_assert_eq(kw_cert_soft_delete(s, "old"), KW_OK);
	at(T0_EPOCH + 10 * DAY);
	cr_assert_eq(kw_cert_soft_delete(s, "old-tpm"), KW_OK);
	at(T0_EPOCH + 90 * DAY - 1);
	json_t *rep = run(s);
	cr_assert_null(result_of(rep, "old"), "purged before the retention ended");
	cr_assert_str_eq(action_of(rep, "keep"), "not-due");
	json_decref(rep);
	cr_assert_eq(kwt_p11_object_count(), objects0 + 3);
	at(T0_EPOCH + 90 * DAY);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "old"), "purged");
	cr_assert_null(result_of(rep, "old-tpm"));
	cr_assert_eq(json_integer_value(json_object_get(rep, "purged")), 1);
	json_decref(rep);
	cr_assert_eq(kwt_p11_object_count(), objects0, "the purged key is still on the token");
	cr_assert_eq(sql_int(s, "SELECT COUNT(*) FROM certs WHERE name = 'old'"), 0);
	cr_assert_eq(events_of(s, "old", "cert.purged"), 1);
	/* a shorter retention applies to what is deleted already */
	cr_assert_eq(kw_setting_set(s, "retention_days", "30"), KW_OK);
	rep = run(s);
	cr_assert_str_eq(action_of(rep, "old-tpm"), "purged");
	json_decref(rep);
	cr_assert_eq(sql_int(s, "SELECT COUNT(*) FROM versions v JOIN certs c ON c.id = v.cert_id"
	                        " WHERE c.name = 'old-tpm'"),
	             0);
	cr_assert_eq(sql_int(s, "SELECT COUNT(*) FROM certs"), 1);
	kw_store_close(s);
	free(dir);
}

/* ---- one connection per backend ---- */

Test(renew, a_run_opens_each_backend_once_however_many_certificates, .fini = tpm_up_again)
{
	static const char *const hsm[] = {"h1", "h2", "h3", "h4"}, *const tpm[] = {"t1", "t2"};
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	int per_key = kwt_p11_object_count();
	for (size_t i = 0; i < 4; i++)
		create(dir, hsm[i], "hsm", 90);
	per_key = (kwt_p11_object_count() - per_key) / 4;
	for (size_t i = 0; i < 2; i++)
		create(dir, tpm[i], "tpm", 90);
	create(dir, "gone", "hsm", 90);
	/* every step that touches a device: issue, prune (history_limit 1
	 * destroys the old key), purge */
	policy_patch(s, "h1", "{\"history_limit\": 1}");
	policy_patch(s, "t1", "{\"history_limit\": 1}");
	cr_assert_eq(kw_setting_set(s, "retention_days", "30"), KW_OK);
	cr_assert_eq(kw_cert_soft_delete(s, "gone"), KW_OK);
	int objects = kwt_p11_object_count();
	at(T0_EPOCH + 61 * DAY);
	unsigned long opens = kwi_device_opens();
	json_t *rep = run(s);
	unsigned long used = kwi_device_opens() - opens;
	cr_assert_eq(json_integer_value(json_object_get(rep, "renewed")), 6);
	cr_assert_str_eq(action_of(rep, "gone"), "purged");
	json_decref(rep);
	cr_assert_eq(events_of(s, "h1", "cert.pruned"), 1);
	cr_assert_eq(events_of(s, "t1", "cert.pruned"), 1);
	/* four new keys; h1's old key and gone's destroyed */
	cr_assert_eq(kwt_p11_object_count(), objects + 2 * per_key, "%d objects, %d before",
	             kwt_p11_object_count(), objects);
	cr_assert_eq(used, 2, "renew --due over 6 certificates on 2 backends opened them %lu times",
	             used);
	/* a single renewal is a run of its own: issue and prune share one open */
	opens = kwi_device_opens();
	cr_assert_eq(kw_cert_renew(s, "h1", KW_RENEW_POLICY, NULL), KW_OK, "%s",
	             kw_error_message());
	cr_assert_eq(kwi_device_opens() - opens, 1);
	cr_assert_eq(events_of(s, "h1", "cert.pruned"), 2);
	kw_store_close(s);
	free(dir);
}

/* After t1, the swtpm restarts: the run's connection to it is dead. */
static void restart_tpm_after_t1(const kw_renew_result *result, void *arg)
{
	collect(result, arg);
	if (strcmp(result->name, "t1") == 0) {
		tpm_stop();
		tpm_up_again();
	}
}

Test(renew, a_device_that_restarts_mid_run_is_reopened_for_the_next_certificate,
     .fini = tpm_up_again)
{
	static const char *const names[] = {"t1", "t2", "t3"};
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	for (size_t i = 0; i < 3; i++)
		create(dir, names[i], "tpm", 90);
	at(T0_EPOCH + 61 * DAY);
	json_t *seen = json_array(), *rep = NULL;
	kw_renew_options o = {.progress = restart_tpm_after_t1, .arg = seen};
	unsigned long opens = kwi_device_opens();
	cr_assert_eq(kw_renew_due(s, &o, &rep), KW_OK, "%s", kw_error_message());
	for (size_t i = 0; i < 3; i++)
		cr_assert_str_eq(
		    action_of(rep, names[i]), "renewed", "%s: %s", names[i],
		    json_string_value(json_object_get(result_of(rep, names[i]), "error")));
	cr_assert_eq(kwi_device_opens() - opens, 2, "opened the TPM %lu times",
	             kwi_device_opens() - opens);
	json_decref(rep);
	json_decref(seen);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(current_of(s, names[i]), 2);
	kw_store_close(s);
	free(dir);
}

/* ---- options ---- */

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(renew, jitter_sleeps_at_most_the_given_seconds, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	json_t *rep = run_opts(s, 0, 0);
	cr_assert_eq(json_integer_value(json_object_get(rep, "jitter_ms")), 0);
	json_decref(rep);
	/* three runs: each sleeps what it reports; at least one sleeps at all (all
	 * three drawing 0 of 0..1000 ms has a chance of one in a billion) */
	json_int_t most = 0;
	for (int i = 0; i < 3; i++) {
		double start = mono();
		rep = run_opts(s, 1, 1);
		double took = mono() - start;
		json_int_t ms = json_integer_value(json_object_get(rep, "jitter_ms"));
		cr_assert(ms >= 0 && ms <= 1000, "slept %lld ms", (long long)ms);
		cr_assert(took * 1000.0 >= (double)ms - 1.0, "reported %lld ms, took %.3f s",
		          (long long)ms, took);
		cr_assert(took < 3.0, "took %.3f s", took);
		most = ms > most ? ms : most;
		json_decref(rep);
	}
	cr_assert_gt(most, 0, "--jitter never slept");
	kw_renew_options bad = {.jitter_seconds = -1};
	cr_assert_eq(kw_renew_due(s, &bad, &rep), KW_ERR_USAGE);
	cr_assert_null(rep);
	kw_store_close(s);
	free(dir);
}

Test(renew, a_manual_renewal_clears_the_backoff, .fini = tpm_up_again)
{
	char *dir;
	kw_store *s = store_new(&dir);
	at(T0_EPOCH);
	create(dir, "m", "tpm", 30);
	at(T0_EPOCH + 25 * DAY);
	tpm_stop();
	json_decref(run(s));
	cr_assert_eq(sql_int(s, "SELECT failures FROM renewal_state"), 1);
	tpm_up_again();
	cr_assert_eq(kw_cert_renew(s, "m", KW_RENEW_POLICY, NULL), KW_OK, "%s", kw_error_message());
	cr_assert_eq(sql_int(s, "SELECT failures FROM renewal_state"), 0);
	cr_assert_eq(sql_int(s, "SELECT next_attempt FROM renewal_state"), -1);
	json_t *rep = run(s);
	cr_assert_str_eq(action_of(rep, "m"), "not-due");
	json_decref(rep);
	kw_store_close(s);
	free(dir);
}
