/*
 * keyward CLI end to end: what happens around a pending version (issuer
 * "unknown"): cert pending cancel destroys its key on the device, and
 * renewal (cert renew, renew --due) makes a new pending CSR, tells the
 * contacts once and keeps the current version serving until cert merge.
 */
#include "cli_ca.h"

static void run_at(kwt_result *r, const char *now, const char *store, const char *const *args)
{
	char e[64];
	snprintf(e, sizeof(e), "KEYWARD_NOW=%s", now);
	char *env[] = {e, NULL};
	cli_runv(r, env, store, args);
}

static void create_pending(const char *store, const char *name, const char *backend)
{
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", name, "--backend", backend, "--subject", "CN=localhost",
	                "--issuer", "unknown"));
	cli_assert_has(r.out, "version 1, pending");
	kwt_result_free(&r);
}

/* create --issuer unknown, then the CA's certificate merged: version 1 current. */
static void create_issued(const char *store, const cli_ca *ca, const char *dir, const char *name,
                          const char *backend, int days)
{
	kwt_result r;
	create_pending(store, name, backend);
	char *csr = cli_csr_file(store, dir, name, "v1.csr");
	char *leaf = cli_ca_sign(ca, csr, "v1.pem", days, NULL);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "merge", name, leaf));
	kwt_result_free(&r);
	free(leaf);
	free(csr);
}

static const char *pubkey_of(const json_t *show)
{
	return cli_js(show, "public_key_sha256");
}

static int key_version(const char *store, const char *name)
{
	int version = 0;
	cr_assert_eq(cli_key_open(store, name, 0, &version), KW_OK, "%s", kw_error_message());
	return version;
}

Test(pending, cancel_destroys_the_key_and_a_certificate_that_never_had_one)
{
	char *store = kwt_store_new(0, 1);
	kwt_result r;
	int objects = kwt_p11_object_count();
	create_pending(store, "never", "hsm");
	cr_assert_eq(kwt_p11_object_count(), objects + 2, "no key pair on the token");
	cr_assert_eq(cli_p11_label_count("keyward:never"), 2);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "pending", "cancel", "never"));
	cr_assert_str_eq(r.out, "cancelled never version 1: its key was destroyed in the device;"
	                        " never is gone: it never had a certificate\n");
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects, "the pending key is still on the token");
	cr_assert_eq(cli_p11_label_count("keyward:never"), 0);
	CLI_REFUSED(store, 1, "unknown certificate 'never'", "cert", "show", "never");
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions"), 0);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type ="
	                                  " 'cert.pending_cancelled' AND cert = 'never' AND"
	                                  " json_extract(details, '$.certificate_removed')"),
	             1);
	cli_ok(&r, NULL, store, CLI_ARGS("audit", "verify"));
	kwt_result_free(&r);
	CLI_REFUSED(store, 1, "unknown certificate 'never'", "cert", "pending", "cancel", "never");
	CLI_REFUSED(store, 2, "give exactly one NAME", "cert", "pending", "cancel");
	CLI_REFUSED(store, 2, "unknown command 'cert pending nope'", "cert", "pending", "nope",
	            "x");
	free(store);
}

Test(pending, cancelling_a_renewal_keeps_the_version_that_serves)
{
	char *store = kwt_store_new(0, 1), *dir = kwt_tmpdir("cancel");
	cli_ca ca = cli_ca_new();
	kwt_result r;
	int version;
	create_issued(store, &ca, dir, "web", "hsm", 90);
	int objects = kwt_p11_object_count();
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "web"));
	cli_assert_has(r.out, "renewing web: version 2 is pending (new key)");
	cli_assert_has(r.out, "version 1 serves until then");
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects + 2, "the renewal made no new key");
	json_t *v1 = cli_show(store, "web", 0), *v2 = cli_show(store, "web", 2);
	cr_assert_eq(json_integer_value(json_object_get(v1, "version")), 1);
	cr_assert_eq(json_integer_value(json_object_get(v1, "pending_version")), 2);
	cr_assert_str_eq(cli_js(v1, "status"), "active");
	cr_assert_str_eq(cli_js(v2, "status"), "pending");
	cr_assert_str_neq(pubkey_of(v1), pubkey_of(v2));
	/* the provider serves version 1 and never the pending one */
	cr_assert_eq(key_version(store, "web"), 1);
	cr_assert_eq(cli_key_open(store, "web", 2, &version), KW_ERR_STATE);
	CLI_REFUSED(store, 1, "has version 2 pending", "cert", "renew", "web");
	CLI_REFUSED(store, 1, "has version 2 pending", "cert", "renew", "web", "--reuse-key");

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "pending", "cancel", "web"));
	cr_assert_str_eq(r.out, "cancelled web version 2: its key was destroyed in the device\n");
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects, "the cancelled key is still on the token");
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions"), 1);
	cr_assert_eq(key_version(store, "web"), 1);
	json_t *after = cli_show(store, "web", 0);
	cr_assert(json_is_null(json_object_get(after, "pending_version")));
	cr_assert_str_eq(cli_js(after, "thumbprint_sha256"), cli_js(v1, "thumbprint_sha256"));
	CLI_REFUSED(store, 1, "has no pending version: nothing to cancel", "cert", "pending",
	            "cancel", "web");

	/* a pending renewal that kept the key: cancelling it keeps the key */
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "web", "--reuse-key"));
	cli_assert_has(r.out, "version 2 is pending (same key)");
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "pending", "cancel", "web"));
	cr_assert_str_eq(r.out,
	                 "cancelled web version 2: its key stays: another version uses it\n");
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects);
	cr_assert_eq(key_version(store, "web"), 1);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type ="
	                                  " 'cert.pending_cancelled' AND cert = 'web'"),
	             2);
	json_decref(after);
	json_decref(v1);
	json_decref(v2);
	cli_ca_free(&ca);
	free(dir);
	free(store);
}

/* The notices the command channel received, one JSON document a line, of event kind. */
static int notices_of(const char *file, const char *kind)
{
	char *text = kwt_read_file(file, NULL);
	char needle[64];
	int n = 0;
	snprintf(needle, sizeof(needle), "\"event\":\"%s\"", kind);
	for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	free(text);
	return n;
}

/* The sample of keyward_certificate_pending_since_seconds for web; -1 when none. */
static long long pending_since(const char *store)
{
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("metrics"));
	const char *p = strstr(r.out, "\nkeyward_certificate_pending_since_seconds{name=\"web\"");
	long long v = p ? atoll(strchr(p, '}') + 1) : -1;
	kwt_result_free(&r);
	return v;
}

Test(pending, renew_due_asks_for_one_csr_tells_once_and_merge_moves_current)
{
	char *store = kwt_store_new(1, 1), *dir = kwt_tmpdir("due");
	cli_ca ca = cli_ca_new();
	kwt_result r;
	char *log = kwt_write_file(dir, "notices.jsonl", "", 0, 0600), *cmd = NULL;
	cr_assert(asprintf(&cmd, "{ cat; echo; } >> '%s'", log) > 0);
	cli_ok(&r, NULL, store, CLI_ARGS("channel", "add", "log", "command", "--command", cmd));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("contact", "add", "ops@example.com"));
	kwt_result_free(&r);
	create_issued(store, &ca, dir, "web", "tpm", 30);
	json_t *v1 = cli_show(store, "web", 0);
	cr_assert_eq(pending_since(store), -1);
	char at[32];
	cli_time_format(cli_time_parse(cli_js(v1, "not_after")) - 2 * 86400, at, sizeof(at));

	/* due: a new pending version with a CSR for a new key; version 1 serves */
	run_at(&r, at, store, CLI_ARGS("renew", "--due"));
	cli_assert_ok(&r, "renew --due");
	cr_assert_str_eq(r.out, "web: renewal pending \u2192 version 2 (new key) waits for its"
	                        " certificate (keyward cert csr web, then keyward cert merge web"
	                        " FILE)\n");
	kwt_result_free(&r);
	json_t *cur = cli_show(store, "web", 0), *v2 = cli_show(store, "web", 2);
	cr_assert_eq(json_integer_value(json_object_get(cur, "version")), 1);
	cr_assert_eq(json_integer_value(json_object_get(cur, "pending_version")), 2);
	cr_assert_str_eq(cli_js(v2, "status"), "pending");
	cr_assert_str_neq(pubkey_of(v2), pubkey_of(v1));
	cr_assert_eq(key_version(store, "web"), 1);
	cr_assert_eq(notices_of(log, "pending-action"), 1);
	cr_assert_eq(pending_since(store), (long long)cli_time_parse(at));
	char *text = kwt_read_file(log, NULL);
	cli_assert_has(text, "\"threshold\":\"2\"");
	cli_assert_has(text, "\"contacts\":[\"ops@example.com\"]");
	cli_assert_has(text, "keyward cert merge web FILE");
	free(text);

	/* again: nothing new is stacked, nobody is told twice */
	run_at(&r, at, store, CLI_ARGS("renew", "--due"));
	cli_assert_ok(&r, "renew --due again");
	cr_assert_str_eq(r.out, "web: skipped: version 2 is pending, its CSR waiting for a"
	                        " certificate (keyward cert merge web FILE)\n");
	kwt_result_free(&r);
	cr_assert_eq(notices_of(log, "pending-action"), 1);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions"), 2);
	CLI_REFUSED(store, 1, "has version 2 pending", "cert", "renew", "web");

	/* the CSR is for version 2's key, the TPM's own account of it */
	char *csr = cli_csr_file(store, dir, "web", "v2.csr");
	char *csr_key = cli_out("openssl req -in '%s' -noout -pubkey", csr);
	char *tpm_key = cli_tpm_pubkey(store, "web", 2, NULL);
	cr_assert_str_eq(csr_key, tpm_key);
	char *leaf = cli_ca_sign(&ca, csr, "v2.pem", 365, NULL);
	run_at(&r, at, store, CLI_ARGS("cert", "merge", "web", leaf));
	cli_assert_ok(&r, "cert merge of the renewal");
	cli_assert_has(r.out, "merged web: version 2 is current (version 1 superseded)\n");
	kwt_result_free(&r);
	json_t *now = cli_show(store, "web", 0), *old = cli_show(store, "web", 1);
	cr_assert_eq(json_integer_value(json_object_get(now, "version")), 2);
	cr_assert_str_eq(cli_js(now, "status"), "active");
	cr_assert_str_eq(cli_js(old, "status"), "superseded");
	cr_assert_eq(key_version(store, "web"), 2);
	cr_assert_eq(pending_since(store), -1);
	cr_assert_eq(notices_of(log, "renewed"), 1, "a merge that replaces a version is a renewal");
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = 'cert.merged'"
	                                  " AND version = 2 AND"
	                                  " json_extract(details, '$.previous_version') = 1"),
	             1);
	json_decref(now);
	json_decref(old);
	free(leaf);
	free(tpm_key);
	free(csr_key);
	free(csr);
	json_decref(cur);
	json_decref(v2);
	json_decref(v1);
	free(cmd);
	free(log);
	cli_ca_free(&ca);
	free(dir);
	free(store);
}
