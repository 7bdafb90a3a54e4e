/*
 * keyward ACME end to end: what goes wrong. A challenge nobody answers, a
 * directory nobody serves, server errors, badNonce, Retry-After and rate
 * limits (acme-proxy in front of pebble), renewal information (ARI) the
 * proxy adds, and bad input. Every failure is one clear line, leaves the
 * store, the token and the current version as they were, and renewal is
 * retried later.
 */
#include "acme_test.h"

TestSuite(acme_faults, .init = acme_reap_servers);

/* A store with issuer "peb" (account key in the token) at directory. */
static char *store_with_issuer(const char *directory)
{
	char *store = kwt_store_new(0, 1);
	json_decref(acme_issuer_add(store, "peb", directory, "hsm", "ec-p256"));
	return store;
}

static void create_web(const char *store)
{
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "web", "--backend", "hsm", "--subject", "CN=web.example",
	                "--san", "DNS:web.example", "--issuer", "acme:peb", "--http01-listen",
	                acme_http_listen()));
	kwt_result_free(&r);
}

static char *current_sha256(const char *store)
{
	json_t *j = cli_show(store, "web", 0);
	char *s = strdup(cli_js(j, "thumbprint_sha256"));
	json_decref(j);
	return s;
}

Test(acme_faults, a_challenge_nobody_answers_changes_nothing)
{
	char *store = store_with_issuer(acme_dir());
	char *webroot = kwt_tmpdir("unserved");
	/* the webroot exists, but no web server serves it */
	kwt_result r;
	cli_refused(store, NULL, 1, "validating web.example failed",
	            CLI_ARGS("cert", "create", "web", "--backend", "hsm", "--subject",
	                     "CN=web.example", "--san", "DNS:web.example", "--issuer", "acme:peb",
	                     "--http01-webroot", webroot),
	            &r);
	cli_assert_err_has(&r, "connection refused", "failed challenge");
	kwt_result_free(&r);
	cr_assert_neq(cli_status("test -e '%s/.well-known'", webroot), 0);
	free(webroot);
	free(store);
}

Test(acme_faults, a_failed_renewal_keeps_the_current_version_and_is_retried_later)
{
	char *store = store_with_issuer(acme_dir());
	create_web(store);
	char *before = current_sha256(store);
	time_t due = acme_due(store, "web");
	/* something else holds the http-01 port: the order fails */
	pid_t squatter = acme_http_server("squatter", NULL);
	int objects = kwt_p11_object_count();
	json_t *res = acme_renew_due(store, due + 60, "web");
	cr_assert_str_eq(cli_js(res, "action"), "failed", "%s", json_dumps(res, 0));
	cr_assert(strstr(cli_js(res, "error"), "cannot listen on") != NULL, "%s",
	          cli_js(res, "error"));
	cr_assert_eq(json_integer_value(json_object_get(res, "failures")), 1);
	cr_assert_eq(cli_time_parse(cli_js(res, "next_attempt")), due + 60 + 300);
	json_decref(res);
	char *after = current_sha256(store);
	cr_assert_str_eq(after, before, "the current version changed");
	free(after);
	cr_assert_eq(kwt_p11_object_count(), objects, "the new key was left on the token");
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions"), 1);
	/* before the backoff: skipped; after it, with the port free: renewed */
	res = acme_renew_due(store, due + 120, "web");
	cr_assert_str_eq(cli_js(res, "action"), "skipped");
	cr_assert_str_eq(cli_js(res, "reason"), "backoff");
	json_decref(res);
	acme_kill(squatter);
	res = acme_renew_due(store, due + 60 + 301, "web");
	cr_assert_str_eq(cli_js(res, "action"), "renewed", "%s", json_dumps(res, 0));
	json_decref(res);
	after = current_sha256(store);
	cr_assert_str_neq(after, before);
	free(after);
	free(before);
	free(store);
}

Test(acme_faults, an_unreachable_directory_is_refused_cleanly)
{
	char *store = kwt_store_new(0, 1);
	char *port = acme_free_port();
	char dir[128];
	snprintf(dir, sizeof(dir), "https://127.0.0.1:%s/dir", port);
	CLI_REFUSED(store, 1, "cannot reach the ACME server", "issuer", "add", "peb", "acme",
	            "--directory", dir, "--backend", "hsm", "--agree-tos");
	/* a server whose TLS certificate nobody vouches for */
	CLI_REFUSED(store, 1, "cannot reach the ACME server", "issuer", "add", "peb", "acme",
	            "--directory", acme_dir(), "--backend", "hsm", "--agree-tos");
	free(port);

	/* the directory goes away after the certificate was issued */
	acme_proxy p = acme_proxy_start("{}");
	free(store);
	store = store_with_issuer(p.directory);
	create_web(store);
	char *before = current_sha256(store);
	time_t due = acme_due(store, "web");
	acme_proxy_stop(&p);
	json_t *res = acme_renew_due(store, due + 60, "web");
	cr_assert_str_eq(cli_js(res, "action"), "failed");
	cr_assert(strstr(cli_js(res, "error"), "cannot reach the ACME server") != NULL);
	json_decref(res);
	char *after = current_sha256(store);
	cr_assert_str_eq(after, before);
	free(after);
	/* an issuer whose CA is gone can still be removed; the account key goes */
	int objects = kwt_p11_object_count();
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "web", "--purge"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("issuer", "remove", "peb"));
	cli_assert_has(r.out, "the CA was not told (cannot reach the ACME server");
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects - 5, "%d objects left of %d",
	             kwt_p11_object_count(), objects);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = "
	                                  "'issuer.removed' AND json_extract(details, "
	                                  "'$.deactivated') = 0"),
	             1);
	free(before);
	free(store);
}

/* New orders the server made (HTTP 201 from /order-plz). */
static int orders_made(const acme_proxy *p)
{
	char *n = cli_out("grep -F '\"path\": \"/order-plz\"' '%s' | grep -cF '\"status\": 201' "
	                  "|| true",
	                  p->log);
	int c = atoi(n);
	free(n);
	return c;
}

Test(acme_faults, server_errors_bad_nonces_and_retry_after)
{
	acme_proxy p = acme_proxy_start("{}");
	char *store = store_with_issuer(p.directory);
	int objects = kwt_p11_object_count();
	/* a server error while finalizing: refused, the new key destroyed */
	acme_proxy_control(&p, "{\"fail\": [{\"path\": \"/finalize-order/\", \"status\": 500, "
	                       "\"type\": \"serverInternal\", \"detail\": \"database on fire\"}]}");
	kwt_result r;
	cli_refused(store, NULL, 1, "database on fire",
	            CLI_ARGS("cert", "create", "web", "--backend", "hsm", "--subject",
	                     "CN=web.example", "--san", "DNS:web.example", "--issuer", "acme:peb",
	                     "--http01-listen", acme_http_listen()),
	            &r);
	cli_assert_err_has(&r, "HTTP 500, serverInternal", "server error");
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects);

	/* two rejected nonces and a short 503 on the way: retried, issued */
	acme_proxy_control(&p, "{\"fail\": [{\"path\": \"/order-plz\", \"status\": 400, "
	                       "\"type\": \"badNonce\", \"count\": 2}, {\"path\": \"/order-plz\", "
	                       "\"status\": 503, \"retry_after\": 1, \"count\": 1}]}");
	int orders = orders_made(&p);
	create_web(store);
	cr_assert_eq(acme_proxy_count(&p, "/order-plz", 1), 3, "injected failures not all seen");
	/* one order made (pebble's own 5% nonce rejection may add refused tries) */
	cr_assert_eq(orders_made(&p), orders + 1);
	char *before = current_sha256(store);

	/* rate limited for three days: renew --due comes back then, not in 5 minutes */
	time_t due = acme_due(store, "web");
	acme_proxy_control(&p, "{\"fail\": [{\"path\": \"/order-plz\", \"status\": 429, "
	                       "\"type\": \"rateLimited\", \"retry_after\": 259200}]}");
	json_t *res = acme_renew_due(store, due + 60, "web");
	cr_assert_str_eq(cli_js(res, "action"), "failed");
	cr_assert(strstr(cli_js(res, "error"), "rateLimited") != NULL, "%s", cli_js(res, "error"));
	cr_assert_eq(cli_time_parse(cli_js(res, "next_attempt")), due + 60 + 259200);
	json_decref(res);
	char *after = current_sha256(store);
	cr_assert_str_eq(after, before);
	free(after);
	res = acme_renew_due(store, due + 60 + 86400, "web");
	cr_assert_str_eq(cli_js(res, "action"), "skipped");
	json_decref(res);
	res = acme_renew_due(store, due + 60 + 259200, "web");
	cr_assert_str_eq(cli_js(res, "action"), "renewed", "%s", json_dumps(res, 0));
	json_decref(res);
	acme_proxy_stop(&p);
	free(before);
	free(store);
}

/* The ARI certificate id of the current version, computed with openssl. */
static char *ari_id(const char *store)
{
	char *dir = kwt_tmpdir("ari"), *pem = cli_path(dir, "c.pem");
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "web", "--out", pem));
	kwt_result_free(&r);
	char *id = cli_out(
	    "b64u() { base64 -w0 | tr '+/' '-_' | tr -d '='; }; "
	    "aki=$(openssl x509 -in '%s' -noout -ext authorityKeyIdentifier | tail -1 | "
	    "sed 's/^ *//; s/keyid://' | tr -d ':\\n'); "
	    "ser=$(openssl x509 -in '%s' -noout -serial | cut -d= -f2); "
	    "[ $((${#ser} %% 2)) = 1 ] && ser=0$ser; "
	    "case $ser in [89A-Fa-f]*) ser=00$ser;; esac; "
	    "echo \"$(printf %%s \"$aki\" | xxd -r -p | b64u).$(printf %%s \"$ser\" | xxd -r -p | "
	    "b64u)\"",
	    pem, pem);
	free(pem);
	free(dir);
	return id;
}

Test(acme_faults, renewal_information_moves_the_renewal)
{
	acme_proxy p = acme_proxy_start("{}");
	char *store = store_with_issuer(p.directory);
	create_web(store);
	char *id = ari_id(store);
	time_t due = acme_due(store, "web");
	/* a window long before the policy's time: the CA wants it renewed early */
	acme_proxy_control(&p, "{\"ari\": {\"start\": \"2026-01-01T00:00:00Z\", \"end\": "
	                       "\"2026-01-01T06:00:00Z\", \"retry_after\": 3600, \"explanation\": "
	                       "\"https://ca.example/incident\"}}");
	/* before the window: not due, and the window is shown */
	json_t *res = acme_renew_due(store, cli_time_parse("2025-12-31T00:00:00Z"), "web");
	cr_assert_str_eq(cli_js(res, "action"), "not-due", "%s", json_dumps(res, 0));
	const json_t *ari = json_object_get(res, "ari");
	cr_assert_str_eq(cli_js(ari, "window_start"), "2026-01-01T00:00:00Z");
	cr_assert_str_eq(cli_js(ari, "explanation_url"), "https://ca.example/incident");
	time_t at = cli_time_parse(cli_js(ari, "renew_at"));
	cr_assert(at >= cli_time_parse("2026-01-01T00:00:00Z") &&
	          at < cli_time_parse("2026-01-01T06:00:00Z"));
	json_decref(res);
	char path[160];
	snprintf(path, sizeof(path), "/renewal-info/%s", id);
	cr_assert_eq(acme_proxy_count(&p, path, 0), 1, "renewal information not asked for %s", id);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM acme_renewal_info"), 1);
	/* within its Retry-After the kept window answers */
	res = acme_renew_due(store, cli_time_parse("2025-12-31T00:30:00Z"), "web");
	json_decref(res);
	cr_assert_eq(acme_proxy_count(&p, path, 0), 1, "asked again within Retry-After");
	/* at the end of the window: renewed, long before the policy's due time */
	time_t end = cli_time_parse("2026-01-01T06:00:00Z");
	cr_assert(end < due);
	res = acme_renew_due(store, end, "web");
	cr_assert_str_eq(cli_js(res, "action"), "renewed", "%s", json_dumps(res, 0));
	json_decref(res);
	/* the new order named the certificate it replaces (RFC 9773) */
	char *payload = cli_out("grep -F '/order-plz' '%s' | grep -F 'replaces' | tail -1", p.log);
	cr_assert(strstr(payload, id) != NULL, "newOrder did not say replaces %s: %s", id, payload);
	free(payload);
	acme_proxy_stop(&p);
	free(id);
	free(store);
}

Test(acme_faults, bad_input_is_refused_and_changes_nothing)
{
	char *store = store_with_issuer(acme_dir());
	const char *ca = kwt_env("KW_TEST_ACME_CA_BUNDLE");
	CLI_REFUSED(store, 2, "bad issuer name", "issuer", "add", "bad/name", "acme", "--directory",
	            acme_dir(), "--backend", "hsm");
	CLI_REFUSED(store, 2, "https://", "issuer", "add", "x", "acme", "--directory",
	            "http://127.0.0.1/dir", "--backend", "hsm");
	CLI_REFUSED(store, 2, "not an e-mail address", "issuer", "add", "x", "acme", "--directory",
	            acme_dir(), "--backend", "hsm", "--email", "nobody");
	CLI_REFUSED(store, 2, "go together", "issuer", "add", "x", "acme", "--directory",
	            acme_dir(), "--backend", "hsm", "--eab-kid", "k");
	CLI_REFUSED(store, 2, "unknown key type", "issuer", "add", "x", "acme", "--directory",
	            acme_dir(), "--backend", "hsm", "--key", "dsa-1024");
	CLI_REFUSED(store, 2, "ADDR:PORT", "issuer", "add", "x", "acme", "--directory", acme_dir(),
	            "--backend", "hsm", "--http01-listen", "127.0.0.1");
	/* the contract's short form: the only backend, terms agreed and shown */
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("issuer", "add", "short", "acme", "--directory", acme_dir(), "--ca-bundle",
	                ca));
	cli_assert_has(r.out, "agreed to the CA's terms of service: data:text/plain,");
	cli_assert_has(r.out, "in backend hsm");
	kwt_result_free(&r);
	/* with two backends, which one holds the account key must be said */
	char src[600];
	snprintf(src, sizeof(src), "file:%s", kwt_env("KW_TEST_P11_PIN_FILE"));
	cli_ok(&r, NULL, store,
	       CLI_ARGS("backend", "add", "hsm2", "pkcs11", "--module",
	                kwt_env("KW_TEST_P11_MODULE"), "--token", kwt_env("KW_TEST_P11_TOKEN"),
	                "--pin-source", src));
	kwt_result_free(&r);
	CLI_REFUSED(store, 2, "the store has 2 backends: say which holds the account key", "issuer",
	            "add", "x", "acme", "--directory", acme_dir(), "--ca-bundle", ca);
	CLI_REFUSED(store, 1, "unknown backend", "issuer", "add", "x", "acme", "--directory",
	            acme_dir(), "--backend", "nope", "--ca-bundle", ca, "--agree-tos");
	CLI_REFUSED(store, 1, "already exists", "issuer", "add", "peb", "acme", "--directory",
	            acme_dir(), "--backend", "hsm", "--ca-bundle", ca, "--agree-tos");
	CLI_REFUSED(store, 2, "NAME acme", "issuer", "add", "x", "step", "--directory", acme_dir(),
	            "--backend", "hsm");
	/* certificates */
	CLI_REFUSED(store, 1, "no ACME issuer 'nope'", "cert", "create", "web", "--backend", "hsm",
	            "--subject", "CN=web.example", "--san", "DNS:web.example", "--issuer",
	            "acme:nope", "--http01-listen", acme_http_listen());
	CLI_REFUSED(store, 2, "need --issuer acme:NAME", "cert", "create", "web", "--backend",
	            "hsm", "--subject", "CN=web.example", "--http01-listen", acme_http_listen());
	CLI_REFUSED(store, 2, "not both", "cert", "create", "web", "--backend", "hsm", "--subject",
	            "CN=web.example", "--san", "DNS:web.example", "--issuer", "acme:peb",
	            "--http01-listen", acme_http_listen(), "--http01-webroot", "/tmp");
	CLI_REFUSED(store, 2, "no way to answer http-01", "cert", "create", "web", "--backend",
	            "hsm", "--subject", "CN=web.example", "--san", "DNS:web.example", "--issuer",
	            "acme:peb");
	CLI_REFUSED(store, 2, "needs at least one name", "cert", "create", "web", "--backend",
	            "hsm", "--subject", "CN=Web Team", "--issuer", "acme:peb", "--http01-listen",
	            acme_http_listen());
	/* a policy asking a non-ACME issuer to answer http-01 */
	char *dir = kwt_tmpdir("pol");
	const char *pol = "{\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\": "
	                  "\"CN=a\"}, \"issuer\": {\"name\": \"self\", \"http01\": "
	                  "{\"listen\": \"127.0.0.1:80\"}}}";
	char *pf = kwt_write_file(dir, "p.json", pol, strlen(pol), 0600);
	CLI_REFUSED(store, 2, "issuer.http01", "cert", "create", "a", "--policy", pf);
	free(pf);
	free(dir);
	free(store);
}
