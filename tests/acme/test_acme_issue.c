/*
 * keyward ACME end to end against Debian's pebble: issue and renew an
 * ec-p256 TPM-key certificate (keyward's own http-01 responder) and an
 * rsa-2048 SoftHSM-key certificate (http-01 through a web server's webroot),
 * account keys in hardware (ES256 in the TPM, RS256 in the token); external
 * account binding; removing an issuer. Pebble's 5% nonce rejection stays on.
 */
#include "acme_test.h"

TestSuite(acme, .init = acme_reap_servers);

/* The facts of an ACME version: issuer, key in the device, chain to pebble. */
static void check_version(const char *store, const char *name, int version, const char *backend,
                          const char *key, const char *host)
{
	json_t *j = cli_show(store, name, version);
	cr_assert_str_eq(cli_js(j, "issuer"), "acme:peb");
	cr_assert_str_eq(cli_js(j, "status"), "active");
	cr_assert_str_eq(cli_js(j, "backend"), backend);
	cr_assert_str_eq(cli_js(json_object_get(j, "key"), "type"), key);
	cli_assert_jbool(json_object_get(j, "key"), "exportable", 0, "ACME key");
	const json_t *sans = json_object_get(j, "sans");
	char want[128];
	snprintf(want, sizeof(want), "DNS:%s", host);
	cr_assert_eq(json_array_size(sans), 1);
	cr_assert_str_eq(json_string_value(json_array_get(sans, 0)), want);
	cr_assert(strstr(cli_js(j, "issuer_dn"), "Pebble Intermediate CA") != NULL);
	char *leaf = acme_check_chain(store, name, version);
	char subject[128];
	snprintf(subject, sizeof(subject), "CN=%s", host);
	cli_expect e = {store, name, version, 1, backend, key, subject, NULL, NULL, 0};
	cli_check_custody(&e, j, leaf); /* read back from the device: the key matches */
	free(leaf);
	json_decref(j);
}

Test(acme, tpm_ec_p256_issue_and_renew_with_own_responder)
{
	char *store = kwt_store_new(1, 0);
	json_t *is = acme_issuer_add(store, "peb", acme_dir(), "tpm", "ec-p256");
	json_decref(is);
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "web", "--backend", "tpm", "--subject", "CN=web.example",
	                "--san", "DNS:web.example", "--issuer", "acme:peb", "--http01-listen",
	                acme_http_listen()));
	cli_assert_has(r.out, "created web version 1: ec-p256 key in backend tpm");
	kwt_result_free(&r);
	check_version(store, "web", 1, "tpm", "ec-p256", "web.example");
	/* the responder's choice stays in the policy for renewals */
	json_t *pol = cli_json(
	    cli_out("'%s' --store '%s' policy show web", kwt_env("KW_TEST_KEYWARD_BIN"), store),
	    "policy show");
	const json_t *h = json_object_get(json_object_get(pol, "issuer"), "http01");
	cr_assert_str_eq(cli_js(h, "listen"), acme_http_listen());
	json_decref(pol);
	/* nothing listens once keyward is done */
	cr_assert_neq(
	    cli_status("ss -Htln '( sport = :%s )' | grep -q .", kwt_env("KW_TEST_ACME_HTTP_PORT")),
	    0, "the http-01 responder is still listening");

	/* renew --due when the policy says so: a new key, a new order */
	time_t due = acme_due(store, "web");
	json_t *res = acme_renew_due(store, due + 3600, "web");
	cr_assert_str_eq(cli_js(res, "action"), "renewed", "renew --due: %s", json_dumps(res, 0));
	cr_assert_eq(json_integer_value(json_object_get(res, "new_version")), 2);
	cli_assert_jbool(res, "new_key", 1, "renewal");
	json_decref(res);
	check_version(store, "web", 2, "tpm", "ec-p256", "web.example");
	char *k1 = cli_version_pubkey(store, "web", 1), *k2 = cli_version_pubkey(store, "web", 2);
	cr_assert_str_neq(k1, k2, "the renewal kept the key");
	free(k1);
	free(k2);
	json_t *v1 = cli_show(store, "web", 1);
	cr_assert_str_eq(cli_js(v1, "status"), "superseded");
	json_decref(v1);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = 'cert.renewed'"
	                                  " AND cert = 'web' AND version = 2"),
	             1);
	/* the provider serves it by its stable name: key in the TPM, pebble's chain */
	char *dir = kwt_tmpdir("tls"), *leaf = cli_path(dir, "leaf.pem"),
	     *full = cli_path(dir, "full.pem"), *chain = cli_path(dir, "chain.pem");
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "web", "--out", leaf));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "web", "--chain", "--out", full));
	kwt_result_free(&r);
	cr_assert_eq(cli_status("awk 'n>0{print} /END CERTIFICATE/{n++}' '%s' > '%s'", full, chain),
	             0);
	char *tls = cli_out("KEYWARD_STORE='%s' '%s/tests/provider/tls-exchange' --chain '%s' '%s'"
	                    " keyward:web -CAfile '%s' -verify_hostname web.example 2>&1",
	                    store, kwt_env("KW_TEST_SOURCE_DIR"), chain, leaf,
	                    kwt_env("KW_TEST_ACME_ROOT"));
	cli_assert_has(tls, "echo=ok");
	free(tls);
	free(chain);
	free(full);
	free(leaf);
	free(dir);
	/* the issuer knows what it issues */
	cli_ok(&r, NULL, store, CLI_ARGS("issuer", "show", "peb", "--json"));
	is = cli_json(r.out, "issuer show");
	cr_assert_eq(json_array_size(json_object_get(is, "certificates")), 1);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(is, "certificates"), 0)),
	                 "web");
	json_decref(is);
	kwt_result_free(&r);
	free(store);
}

Test(acme, softhsm_rsa2048_issue_and_renew_through_a_webroot)
{
	char *store = kwt_store_new(0, 1);
	char *webroot = kwt_tmpdir("webroot");
	json_t *is = acme_issuer_add(store, "peb", acme_dir(), "hsm", "rsa-2048");
	json_decref(is);
	int objects = kwt_p11_object_count();
	pid_t web = acme_webroot_server(webroot);
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "db", "--backend", "hsm", "--key", "rsa-2048",
	                "--subject", "CN=db.example", "--san", "DNS:db.example", "--issuer",
	                "acme:peb", "--http01-webroot", webroot));
	kwt_result_free(&r);
	check_version(store, "db", 1, "hsm", "rsa-2048", "db.example");
	/* the challenge files and the directories keyward made are gone */
	cr_assert_neq(cli_status("test -e '%s/.well-known'", webroot), 0,
	              "keyward left %s/.well-known behind", webroot);
	/* one key pair and its certificate more on the token */
	cr_assert_eq(kwt_p11_object_count(), objects + 3, "%d objects on the token, were %d",
	             kwt_p11_object_count(), objects);

	time_t due = acme_due(store, "db");
	json_t *res = acme_renew_due(store, due + 60, "db");
	cr_assert_str_eq(cli_js(res, "action"), "renewed", "renew --due: %s", json_dumps(res, 0));
	json_decref(res);
	check_version(store, "db", 2, "hsm", "rsa-2048", "db.example");
	cr_assert_neq(cli_status("test -e '%s/.well-known'", webroot), 0);
	acme_kill(web);
	free(webroot);
	free(store);
}

Test(acme, external_account_binding)
{
	cr_assert_eq(cli_status("'%s/tests/harness/pebble-ctl' start eab --eab",
	                        kwt_env("KW_TEST_SOURCE_DIR")),
	             0);
	char *env = cli_out("cat '%s/eab.env'", kwt_env("KW_TEST_TMP"));
	char dir[256], keyfile[512], bad[512];
	cr_assert(sscanf(strstr(env, "ACME_DIRECTORY="), "ACME_DIRECTORY=%255s", dir) == 1);
	cr_assert(sscanf(strstr(env, "ACME_EAB_KEY_FILE="), "ACME_EAB_KEY_FILE=%511s", keyfile) ==
	          1);
	char *ca = NULL;
	cr_assert(asprintf(&ca, "%s/eab/tls-ca.pem", kwt_env("KW_TEST_TMP")) > 0);
	char *store = kwt_store_new(0, 1);
	char src[600], badsrc[600];
	snprintf(src, sizeof(src), "file:%s", keyfile);
	char *tmp = kwt_tmpdir("eab");
	const char *wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
	char *wp = kwt_write_file(tmp, "wrong.key", wrong, strlen(wrong), 0600);
	snprintf(bad, sizeof(bad), "%s", wp);
	snprintf(badsrc, sizeof(badsrc), "file:%s", bad);
	/* the CA requires a binding: refused before any key is made */
	CLI_REFUSED(store, 2, "external account binding", "issuer", "add", "eab", "acme",
	            "--directory", dir, "--backend", "hsm", "--ca-bundle", ca, "--agree-tos");
	/* a binding the CA does not know: the account key made for it is destroyed */
	CLI_REFUSED(store, 1, "ACME server refused", "issuer", "add", "eab", "acme", "--directory",
	            dir, "--backend", "hsm", "--ca-bundle", ca, "--agree-tos", "--eab-kid",
	            "kw-eab", "--eab-key-source", badsrc);
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("issuer", "add", "eab", "acme", "--directory", dir, "--backend", "hsm",
	                "--ca-bundle", ca, "--agree-tos", "--eab-kid", "kw-eab", "--eab-key-source",
	                src, "--json"));
	json_t *j = cli_json(r.out, "issuer add --json");
	cr_assert_str_eq(cli_js(j, "eab_kid"), "kw-eab");
	cr_assert(strstr(r.out, "eab.key") == NULL, "the key's path or bytes are shown");
	json_decref(j);
	kwt_result_free(&r);
	/* the HMAC key is nowhere in the store */
	char *key = cli_out("cat '%s'", keyfile);
	cr_assert_neq(cli_status("grep -qaF '%s' '%s'/keyward.db*", key, store), 0,
	              "the EAB key is in the store");
	free(key);
	free(wp);
	free(tmp);
	free(ca);
	free(env);
	free(store);
}

Test(acme, issuer_remove_waits_for_its_certificates)
{
	char *store = kwt_store_new(0, 1);
	int objects = kwt_p11_object_count();
	json_decref(acme_issuer_add(store, "peb", acme_dir(), "hsm", "ec-p256"));
	cr_assert_eq(kwt_p11_object_count(), objects + 2,
	             "the account key (private and public) is not on the token: %d objects, "
	             "were %d",
	             kwt_p11_object_count(), objects);
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "api", "--backend", "hsm", "--subject", "CN=api.example",
	                "--san", "DNS:api.example", "--issuer", "acme:peb", "--http01-listen",
	                acme_http_listen()));
	kwt_result_free(&r);
	CLI_REFUSED(store, 1, "still issues 1 certificate", "issuer", "remove", "peb");
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "api", "--purge"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("issuer", "remove", "peb"));
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects, "the account key was not destroyed");
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM issuers"), 0);
	/* the CA was told: the account is deactivated */
	cr_assert_eq(
	    cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = "
	                         "'issuer.removed' AND json_extract(details, '$.deactivated') = 1"),
	    1);
	CLI_REFUSED(store, 1, "no ACME issuer 'peb'", "issuer", "show", "peb");
	free(store);
}

/* Let's Encrypt reuses valid authorizations for a while; so can pebble. */
static char *pebble_env_value(const char *name, const char *key)
{
	char *v = cli_out("sed -n 's/^%s=//p' '%s/%s.env'", key, kwt_env("KW_TEST_TMP"), name);
	cr_assert(v[0] != '\0', "%s.env has no %s", name, key);
	return v;
}

Test(acme, a_valid_authorization_is_reused_without_a_challenge)
{
	cr_assert_eq(cli_status("PEBBLE_AUTHZREUSE=100 '%s/tests/harness/pebble-ctl' start reuse",
	                        kwt_env("KW_TEST_SOURCE_DIR")),
	             0);
	char *dir = pebble_env_value("reuse", "ACME_DIRECTORY");
	char *ca = pebble_env_value("reuse", "ACME_CA_BUNDLE");
	char *port = pebble_env_value("reuse", "ACME_HTTP_PORT");
	char listen[64];
	snprintf(listen, sizeof(listen), "127.0.0.1:%s", port);
	char *store = kwt_store_new(1, 0);
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("issuer", "add", "peb", "acme", "--directory", dir, "--backend", "tpm",
	                "--ca-bundle", ca, "--agree-tos"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "one", "--backend", "tpm", "--subject", "CN=same.example",
	                "--san", "DNS:same.example", "--issuer", "acme:peb", "--http01-listen",
	                listen));
	kwt_result_free(&r);
	/* the same name again: the authorization is valid already, so no challenge is
	 * answered (nobody serves this webroot) and nothing is written to it */
	char *webroot = kwt_tmpdir("never-served");
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "two", "--backend", "tpm", "--subject", "CN=same.example",
	                "--san", "DNS:same.example", "--issuer", "acme:peb", "--http01-webroot",
	                webroot));
	kwt_result_free(&r);
	json_t *j = cli_show(store, "two", 0);
	cr_assert_str_eq(cli_js(j, "status"), "active");
	cr_assert_str_eq(cli_js(j, "issuer"), "acme:peb");
	json_decref(j);
	cr_assert_neq(cli_status("test -e '%s/.well-known'", webroot), 0);
	free(webroot);
	free(store);
	free(port);
	free(ca);
	free(dir);
}

Test(acme, revoke_at_the_ca_with_the_account_key)
{
	char *store = kwt_store_new(1, 0);
	json_decref(acme_issuer_add(store, "peb", acme_dir(), "tpm", "ec-p256"));
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "gone", "--backend", "tpm", "--subject",
	                "CN=gone.example", "--san", "DNS:gone.example", "--issuer", "acme:peb",
	                "--http01-listen", acme_http_listen()));
	kwt_result_free(&r);
	json_t *j = cli_show(store, "gone", 0);
	char *serial = strdup(cli_js(j, "serial"));
	json_decref(j);
	char *status =
	    cli_out("curl -s --cacert '%s' '%s/cert-status-by-serial/%s'",
	            kwt_env("KW_TEST_ACME_CA_BUNDLE"), kwt_env("KW_TEST_ACME_MGMT"), serial);
	cr_assert(strstr(status, "\"Valid\"") != NULL, "pebble says: %s", status);
	free(status);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "revoke", "gone", "--reason", "keyCompromise"));
	cli_assert_has(r.out, "revoked the current version of gone at its ACME CA");
	kwt_result_free(&r);
	status = cli_out("curl -s --cacert '%s' '%s/cert-status-by-serial/%s'",
	                 kwt_env("KW_TEST_ACME_CA_BUNDLE"), kwt_env("KW_TEST_ACME_MGMT"), serial);
	cr_assert(strstr(status, "\"Revoked\"") != NULL, "pebble says: %s", status);
	cr_assert(strstr(status, "\"Reason\": 1") != NULL, "pebble says: %s", status);
	free(status);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = 'cert.revoked'"
	                                  " AND cert = 'gone'"),
	             1);
	/* twice: the CA says no, nothing changes */
	CLI_REFUSED(store, 1, "alreadyRevoked", "cert", "revoke", "gone");
	free(serial);
	free(store);
}

/* Let's Encrypt offers alternate chains; certbot's --preferred-chain picks. */
Test(acme, preferred_chain_among_the_alternates)
{
	cr_assert_eq(cli_status("PEBBLE_ALTERNATE_ROOTS=1 '%s/tests/harness/pebble-ctl' start alt",
	                        kwt_env("KW_TEST_SOURCE_DIR")),
	             0);
	char *dir = pebble_env_value("alt", "ACME_DIRECTORY");
	char *ca = pebble_env_value("alt", "ACME_CA_BUNDLE");
	char *mgmt = pebble_env_value("alt", "ACME_MGMT");
	char *port = pebble_env_value("alt", "ACME_HTTP_PORT");
	char *tmp = kwt_tmpdir("alt"), *root0 = cli_path(tmp, "root0.pem"),
	     *root1 = cli_path(tmp, "root1.pem");
	cr_assert_eq(cli_status("curl -sf --cacert '%s' '%s/roots/0' -o '%s' && curl -sf --cacert "
	                        "'%s' '%s/roots/1' -o '%s'",
	                        ca, mgmt, root0, ca, mgmt, root1),
	             0);
	char *cn1 = cli_out("openssl x509 -in '%s' -noout -subject -nameopt multiline | "
	                    "sed -n 's/^ *commonName *= //p'",
	                    root1);
	char listen[64];
	snprintf(listen, sizeof(listen), "127.0.0.1:%s", port);
	char *store = kwt_store_new(1, 0);
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("issuer", "add", "def", "acme", "--directory", dir, "--backend", "tpm",
	                "--ca-bundle", ca, "--agree-tos"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("issuer", "add", "alt", "acme", "--directory", dir, "--backend", "tpm",
	                "--ca-bundle", ca, "--agree-tos", "--preferred-chain", cn1));
	kwt_result_free(&r);
	const char *names[] = {"def", "alt"};
	const char *roots[] = {root0, root1};
	for (int i = 0; i < 2; i++) {
		char issuer[16];
		snprintf(issuer, sizeof(issuer), "acme:%s", names[i]);
		cli_ok(&r, NULL, store,
		       CLI_ARGS("cert", "create", names[i], "--backend", "tpm", "--subject",
		                "CN=chain.example", "--san", "DNS:chain.example", "--issuer",
		                issuer, "--http01-listen", listen));
		kwt_result_free(&r);
		char *full = cli_path(tmp, "full.pem"), *leaf = cli_path(tmp, "leaf.pem");
		cli_ok(&r, NULL, store,
		       CLI_ARGS("cert", "export", names[i], "--chain", "--out", full));
		kwt_result_free(&r);
		cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", names[i], "--out", leaf));
		kwt_result_free(&r);
		/* each verifies against its own root only */
		cr_assert_eq(
		    cli_status("openssl verify -CAfile '%s' -untrusted '%s' '%s' >/dev/null",
		               roots[i], full, leaf),
		    0, "%s: not the chain to root %d", names[i], i);
		cr_assert_neq(cli_status("openssl verify -CAfile '%s' -untrusted '%s' '%s' "
		                         ">/dev/null 2>&1",
		                         roots[1 - i], full, leaf),
		              0, "%s: the chain goes to root %d too", names[i], 1 - i);
		free(full);
		free(leaf);
	}
	free(store);
	free(cn1);
	free(root0);
	free(root1);
	free(tmp);
	free(port);
	free(mgmt);
	free(ca);
	free(dir);
}
