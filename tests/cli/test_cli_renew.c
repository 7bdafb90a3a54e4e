/* keyward renew --due: what an admin (or a timer) sees. */
#include "cli_devices.h"

static int tpm_down;

/* Brings the swtpm back after a test stopped it (see kwt_swtpm_back). */
static void tpm_back(void)
{
	kwt_swtpm_back(&tpm_down);
}

static void renew_at(kwt_result *r, const char *now, const char *store, const char *const *args)
{
	char e[64];
	snprintf(e, sizeof(e), "KEYWARD_NOW=%s", now);
	char *env[] = {e, NULL};
	cli_runv(r, env, store, args);
}

/* The stdout line starting with "name: " (malloc'd), or NULL. */
static char *line_of(const char *out, const char *name)
{
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s: ", name);
	for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			return strndup(p, strcspn(p, "\n"));
	return NULL;
}

static void assert_line(const char *out, const char *name, const char *want)
{
	char *l = line_of(out, name);
	cr_assert_not_null(l, "no line for %s in: %s", name, out);
	cr_assert_str_eq(l, want);
	free(l);
}

Test(cli_renew, one_line_per_certificate_and_exit_zero)
{
	char *store = kwt_store_new(1, 1);
	kwt_result r;
	cli_create(store, CLI_NOW, "web01", "tpm", "ec-p256", "CN=web01.example", 30, NULL);
	cli_create(store, CLI_NOW, "api", "hsm", "ec-p256", "CN=api.example", 90, NULL);
	renew_at(&r, "2030-01-21T00:00:00Z", store, CLI_ARGS("renew", "--due"));
	cli_assert_ok(&r, "renew --due");
	cr_assert_eq(kwt_count_lines(r.out), 2, "%s", r.out);
	assert_line(r.out, "web01", "web01: renewed \u2192 version 2 (new key)");
	assert_line(r.out, "api", "api: not due (renews at 2030-03-02T00:00:00Z)");
	kwt_result_free(&r);
	json_t *j = cli_show(store, "web01", 0);
	cr_assert_eq(json_integer_value(json_object_get(j, "version")), 2);
	json_decref(j);
	/* made by the engine */
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = 'cert.renewed'"
	                                  " AND actor = 'renew' AND cert = 'web01'"),
	             1);
	free(store);
}

Test(cli_renew, failures_exit_one_and_back_off, .fini = tpm_back)
{
	char *store = kwt_store_new(1, 1);
	kwt_result r;
	cli_create(store, CLI_NOW, "db", "tpm", "ec-p256", "CN=db.example", 30, NULL);
	cli_create(store, CLI_NOW, "web", "hsm", "ec-p256", "CN=web.example", 30, NULL);
	kwt_swtpm_stop();
	tpm_down = 1;
	renew_at(&r, "2030-01-21T00:00:00Z", store, CLI_ARGS("renew", "--due"));
	cr_assert_eq(r.status, 1, "exit %d: %s", r.status, r.err);
	cr_assert_str_eq(r.err, "keyward: 1 of 2 certificate(s) failed\n");
	char *l = line_of(r.out, "db");
	cr_assert_not_null(l, "%s", r.out);
	cr_assert(strncmp(l, "db: FAILED: ", 12) == 0, "%s", l);
	cr_assert(strstr(l, "cannot reach the TPM") != NULL, "%s", l);
	cr_assert(strstr(l, " (next attempt 2030-01-21T00:05:00Z)") != NULL, "%s", l);
	free(l);
	assert_line(r.out, "web", "web: renewed \u2192 version 2 (new key)");
	kwt_result_free(&r);

	renew_at(&r, "2030-01-21T00:01:00Z", store, CLI_ARGS("renew", "--due", "--json"));
	cr_assert_eq(r.status, 0, "a skipped certificate is no failure: %s", r.err);
	json_t *rep = cli_json(r.out, "renew --due --json");
	kwt_result_free(&r);
	json_t *db = cli_find_named(json_object_get(rep, "results"), "db");
	cr_assert_str_eq(cli_js(db, "action"), "skipped");
	cr_assert_str_eq(cli_js(db, "next_attempt"), "2030-01-21T00:05:00Z");
	cr_assert_eq(json_integer_value(json_object_get(db, "failures")), 1);
	cr_assert_eq(json_integer_value(json_object_get(rep, "failed")), 0);
	json_decref(rep);
	renew_at(&r, "2030-01-21T00:01:00Z", store, CLI_ARGS("renew", "--due"));
	l = line_of(r.out, "db");
	const char *want = "db: skipped: 1 failed attempt(s), next attempt "
	                   "2030-01-21T00:05:00Z (last error: ";
	cr_assert(l && strncmp(l, want, strlen(want)) == 0, "%s", l ? l : r.out);
	free(l);
	kwt_result_free(&r);

	tpm_back();
	renew_at(&r, "2030-01-21T00:05:00Z", store, CLI_ARGS("renew", "--due"));
	cli_assert_ok(&r, "renew --due after the TPM is back");
	assert_line(r.out, "db", "db: renewed \u2192 version 2 (new key)");
	kwt_result_free(&r);
	cr_assert_eq(cli_sql_count(store, "SELECT failures FROM renewal_state r JOIN certs c"
	                                  " ON c.id = r.cert_id WHERE c.name = 'db'"),
	             0);
	free(store);
}

Test(cli_renew, json_is_one_document_with_every_result)
{
	char *store = kwt_store_new(1, 0);
	kwt_result r;
	cli_create(store, CLI_NOW, "a", "tpm", "ec-p256", "CN=a.example", 30, NULL);
	cli_create(store, CLI_NOW, "b", "tpm", "ec-p256", "CN=b.example", 300, NULL);
	renew_at(&r, "2030-01-25T00:00:00Z", store, CLI_ARGS("renew", "--due", "--json"));
	cli_assert_ok(&r, "renew --due --json");
	json_t *rep = cli_json(r.out, "renew --due --json");
	kwt_result_free(&r);
	json_t *res = json_object_get(rep, "results");
	cr_assert_eq(json_array_size(res), 2);
	cr_assert_str_eq(cli_js(cli_find_named(res, "a"), "action"), "renewed");
	cr_assert_eq(json_integer_value(json_object_get(cli_find_named(res, "a"), "new_version")),
	             2);
	cr_assert_str_eq(cli_js(cli_find_named(res, "b"), "action"), "not-due");
	cr_assert_str_eq(cli_js(cli_find_named(res, "b"), "due"), "2030-07-20T00:00:00Z");
	cr_assert_eq(json_integer_value(json_object_get(rep, "renewed")), 1);
	cr_assert_eq(json_integer_value(json_object_get(rep, "failed")), 0);
	cr_assert_str_eq(cli_js(rep, "now"), "2030-01-25T00:00:00Z");
	json_decref(rep);
	free(store);
}

Test(cli_renew, dry_run_reports_and_changes_nothing)
{
	char *store = kwt_store_new(1, 1);
	kwt_result r;
	cli_create(store, CLI_NOW, "h", "hsm", "ec-p256", "CN=h.example", 30, NULL);
	cli_create(store, CLI_NOW, "t", "tpm", "ec-p256", "CN=t.example", 30, NULL);
	cli_create(store, CLI_NOW, "old", "hsm", "ec-p256", "CN=old.example", 30, NULL);
	cli_ok(&r, NULL, store, CLI_ARGS("config", "set", "retention_days", "0"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "old"));
	kwt_result_free(&r);
	cli_snap before = cli_snap_take(store);
	renew_at(&r, "2030-01-25T00:00:00Z", store, CLI_ARGS("renew", "--due", "--dry-run"));
	cli_assert_ok(&r, "renew --due --dry-run");
	assert_line(r.out, "h", "h: would renew (due since 2030-01-21T00:00:00Z) with a new key");
	assert_line(r.out, "t", "t: would renew (due since 2030-01-21T00:00:00Z) with a new key");
	char *l = line_of(r.out, "old");
	cr_assert(l && strncmp(l, "old: would purge (deleted ", 26) == 0, "%s", r.out);
	free(l);
	kwt_result_free(&r);
	cli_snap_assert_same(&before, store, "renew --due --dry-run");
	renew_at(&r, "2030-01-25T00:00:00Z", store, CLI_ARGS("renew", "--due"));
	cli_assert_ok(&r, "renew --due");
	cr_assert(strstr(r.out, "h: renewed") && strstr(r.out, "t: renewed") &&
	              strstr(r.out, "old: purged"),
	          "%s", r.out);
	kwt_result_free(&r);
	free(store);
}

Test(cli_renew, jitter_waits_a_little_and_bad_options_are_refused)
{
	char *store = kwt_store_new(0, 0);
	kwt_result r;
	time_t t0 = time(NULL);
	renew_at(&r, CLI_NOW, store, CLI_ARGS("renew", "--due", "--jitter", "0", "--json"));
	cli_assert_ok(&r, "--jitter 0");
	json_t *rep = cli_json(r.out, "renew --json");
	cr_assert_eq(json_integer_value(json_object_get(rep, "jitter_ms")), 0);
	json_decref(rep);
	kwt_result_free(&r);
	renew_at(&r, CLI_NOW, store, CLI_ARGS("renew", "--due", "--jitter", "1", "--json"));
	cli_assert_ok(&r, "--jitter 1");
	rep = cli_json(r.out, "renew --json");
	json_int_t ms = json_integer_value(json_object_get(rep, "jitter_ms"));
	cr_assert(ms >= 0 && ms <= 1000, "%lld ms", (long long)ms);
	json_decref(rep);
	kwt_result_free(&r);
	/* under valgrind (KEYWARD_VALGRIND) each keyward run takes seconds by itself */
	long slack = getenv("KW_VALGRIND_BIN") ? 20 : 0;
	cr_assert(time(NULL) - t0 <= 3 + slack, "jitter 0 and 1 took %lld s",
	          (long long)(time(NULL) - t0));
	CLI_REFUSED(store, 2, "--due", "renew");
	CLI_REFUSED(store, 2, "--jitter", "renew", "--due", "--jitter", "-1");
	CLI_REFUSED(store, 2, "--jitter", "renew", "--due", "--jitter", "soon");
	CLI_REFUSED(store, 2, "unexpected argument", "renew", "--due", "web");
	CLI_REFUSED(store, 2, "--bogus", "renew", "--due", "--bogus");
	free(store);
}
