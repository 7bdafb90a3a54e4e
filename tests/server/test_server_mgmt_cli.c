/*
 * keyward mgmt init | issue | revoke | list and keyward serve's arguments:
 * what the CLI makes (a CA and a server certificate with keys in hardware,
 * client certificates with the role in the OU and EKU clientAuth) and what it
 * refuses (one-line errors, exit 1 or 2, the store and the token unchanged).
 */
#include "server_test.h"

static char *hsm_store_with_mgmt(void)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	cli_ok(&r, NULL, store, CLI_ARGS("mgmt", "init", "--backend", "hsm"));
	kwt_result_free(&r);
	return store;
}

Test(mgmt_cli, init_makes_a_ca_and_a_server_certificate_in_hardware)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	char *dir = kwt_tmpdir("mgmt");
	/* the store's only backend is the one */
	cli_ok(&r, NULL, store, CLI_ARGS("mgmt", "init"));
	cr_assert(strstr(r.out, "keys in backend hsm") != NULL, "mgmt init: %s", r.out);
	kwt_result_free(&r);
	json_t *ca = cli_show(store, "keyward-mgmt-ca", 0);
	json_t *srv = cli_show(store, "keyward-mgmt-server", 0);
	cli_assert_jbool(json_object_get(ca, "key"), "exportable", 0, "CA key");
	cli_assert_jbool(json_object_get(srv, "key"), "exportable", 0, "server key");
	cr_assert_str_eq(cli_js(srv, "issuer"), "ca:keyward-mgmt-ca");
	json_decref(ca);
	json_decref(srv);
	char *ca_pem = NULL, *srv_pem = NULL;
	cr_assert(asprintf(&ca_pem, "%s/ca.pem", dir) > 0 &&
	          asprintf(&srv_pem, "%s/s.pem", dir) > 0);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "keyward-mgmt-ca", "--out", ca_pem));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "export", "keyward-mgmt-server", "--out", srv_pem));
	kwt_result_free(&r);
	cr_assert_eq(cli_status("openssl verify -purpose sslserver -CAfile '%s' '%s' >/dev/null",
	                        ca_pem, srv_pem),
	             0, "the server certificate does not verify under the management CA");
	char *ext = cli_out("openssl x509 -in '%s' -noout -ext basicConstraints,keyUsage", ca_pem);
	cr_assert(strstr(ext, "CA:TRUE") && strstr(ext, "Certificate Sign"), "CA: %s", ext);
	free(ext);
	/* a second init is refused, nothing changes */
	CLI_REFUSED(store, 1, "already", "mgmt", "init", "--backend", "hsm");
	free(ca_pem);
	free(srv_pem);
	free(dir);
	free(store);
}

Test(mgmt_cli, issue_from_a_csr_carries_name_role_and_client_auth)
{
	kwt_result r;
	char *store = hsm_store_with_mgmt();
	char *dir = kwt_tmpdir("mgmt");
	cr_assert_eq(cli_status("cd '%s' && openssl req -new -newkey ec -pkeyopt "
	                        "ec_paramgen_curve:P-256 -nodes -keyout k.pem -out r.csr "
	                        "-subj '/CN=ignored/OU=admin' >/dev/null 2>&1",
	                        dir),
	             0);
	char *csr = NULL, *crt = NULL, *ca = NULL;
	cr_assert(asprintf(&csr, "%s/r.csr", dir) > 0 && asprintf(&crt, "%s/c.pem", dir) > 0 &&
	          asprintf(&ca, "%s/ca.pem", dir) > 0);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("mgmt", "issue", "ci-bot", "--role", "reader", "--csr", csr, "--out", crt));
	cr_assert(strstr(r.out, "issued ci-bot (role reader)") != NULL, "%s", r.out);
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "keyward-mgmt-ca", "--out", ca));
	kwt_result_free(&r);
	char *subj = cli_out("openssl x509 -in '%s' -noout -subject -nameopt RFC2253", crt);
	cr_assert_str_eq(subj, "subject=CN=ci-bot,OU=reader,O=keyward management");
	free(subj);
	cr_assert_eq(
	    cli_status("openssl verify -purpose sslclient -CAfile '%s' '%s' >/dev/null", ca, crt),
	    0, "the client certificate does not verify for clientAuth");
	/* the CSR's key, which never left its owner */
	char *a = cli_out("openssl x509 -in '%s' -noout -pubkey", crt);
	char *b = cli_out("openssl pkey -in '%s/k.pem' -pubout", dir);
	cr_assert_str_eq(a, b);
	free(a);
	free(b);
	cli_ok(&r, NULL, store, CLI_ARGS("mgmt", "list", "--json"));
	json_t *l = cli_json(r.out, "mgmt list");
	json_t *e = cli_find_named(l, "ci-bot");
	cr_assert(e != NULL);
	cr_assert_str_eq(cli_js(e, "role"), "reader");
	cr_assert_str_eq(cli_js(e, "key_source"), "csr");
	cr_assert_str_eq(cli_js(e, "status"), "active");
	char *fp = cli_out("openssl x509 -in '%s' -noout -fingerprint -sha256 | tr -d ':' | "
	                   "cut -d= -f2 | tr A-F a-f",
	                   crt);
	cr_assert_str_eq(cli_js(e, "thumbprint_sha256"), fp);
	free(fp);
	json_decref(l);
	kwt_result_free(&r);
	free(csr);
	free(crt);
	free(ca);
	free(dir);
	free(store);
}

Test(mgmt_cli, pkcs12_holds_key_certificate_and_ca_under_the_password)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	char *out =
	    cli_out("openssl pkcs12 -in '%s/alice.p12' -passin 'pass:%s' -nodes 2>/dev/null "
	            "| grep -c -e 'BEGIN CERTIFICATE' -e 'BEGIN PRIVATE KEY'",
	            c.dir, SRV_PASSWORD);
	cr_assert_str_eq(out, "3", "alice.p12 should hold her key, her certificate and the CA");
	free(out);
	cr_assert_neq(cli_status("openssl pkcs12 -in '%s/alice.p12' -passin pass:wrong -nodes "
	                         ">/dev/null 2>&1",
	                         c.dir),
	              0, "alice.p12 opens with a wrong password");
	/* keyward kept no key: only the certificate is in the store */
	cr_assert_eq(cli_sql_count(c.store, "SELECT count(*) FROM mgmt_clients WHERE key_source = "
	                                    "'pkcs12'"),
	             2);
	srv_teardown(&c);
}

/* The PKCS#12 file as openssl reads it: every bag under PBES2 (PBKDF2 with
 * HMAC-SHA256, 600,000 iterations, AES-256-CBC) and a SHA-256 MAC whose key
 * takes 1,200,000 iterations of the PKCS#12 KDF (one hash each, where
 * PBKDF2-HMAC takes two), so that a stolen copy's password is as costly to
 * guess offline through the MAC as through the key. */
Test(mgmt_cli, pkcs12_is_encrypted_with_aes256_and_600000_pbkdf2_sha256_iterations)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	char *info = cli_out("openssl pkcs12 -in '%s/alice.p12' -passin 'pass:%s' -info -noout "
	                     "2>&1",
	                     c.dir, SRV_PASSWORD);
	cr_assert(strstr(info, "MAC: sha256, Iteration 1200000\n") != NULL,
	          "alice.p12's MAC is not SHA-256 with 1200000 iterations:\n%s", info);
	const char *bag = "PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256";
	char key[256], certs[256];
	snprintf(key, sizeof(key), "Shrouded Keybag: %s", bag);
	snprintf(certs, sizeof(certs), "PKCS7 Encrypted data: %s", bag);
	cr_assert(strstr(info, key) != NULL, "alice.p12's key bag is not '%s':\n%s", key, info);
	cr_assert(strstr(info, certs) != NULL, "alice.p12's certificates are not '%s':\n%s", certs,
	          info);
	/* and no bag with another count */
	char *counts = cli_out("openssl pkcs12 -in '%s/alice.p12' -passin 'pass:%s' -info -noout "
	                       "2>&1 | grep -v '^MAC:' | grep -o 'Iteration [0-9]*' | sort -u | "
	                       "tr '\\n' ';'",
	                       c.dir, SRV_PASSWORD);
	cr_assert_str_eq(counts, "Iteration 600000;", "alice.p12:\n%s", info);
	free(counts);
	free(info);
	srv_teardown(&c);
}

Test(mgmt_cli, refusals_change_nothing)
{
	kwt_result r;
	char *bare = kwt_store_new(0, 1);
	char *dir = kwt_tmpdir("mgmt");
	free(kwt_write_file(dir, "pw", "pw\n", 3, 0600));
	free(kwt_write_file(dir, "open-pw", "pw\n", 3, 0644));
	free(kwt_write_file(dir, "taken.p12", "x", 1, 0600));
	char pw[4200], openpw[4200], p12[4200], taken[4200];
	snprintf(pw, sizeof(pw), "file:%s/pw", dir);
	snprintf(openpw, sizeof(openpw), "file:%s/open-pw", dir);
	snprintf(p12, sizeof(p12), "%s/new.p12", dir);
	snprintf(taken, sizeof(taken), "%s/taken.p12", dir);
	/* before mgmt init */
	CLI_REFUSED(bare, 1, "mgmt init", "mgmt", "issue", "x", "--role", "admin", "--out-pkcs12",
	            p12, "--password-source", pw);
	cr_assert(access(p12, F_OK) != 0, "a refused issue left %s", p12);
	/* a store without a backend: nowhere to make the keys */
	char *empty = kwt_tmpdir("empty");
	cli_ok(&r, NULL, empty, CLI_ARGS("init"));
	kwt_result_free(&r);
	CLI_REFUSED(empty, 2, "no backend", "mgmt", "init");
	free(empty);
	CLI_REFUSED(bare, 1, "nosuch", "mgmt", "init", "--backend", "nosuch");
	char *store = hsm_store_with_mgmt();
	cli_ok(&r, NULL, store,
	       CLI_ARGS("mgmt", "issue", "alice", "--role", "admin", "--out-pkcs12", p12,
	                "--password-source", pw));
	kwt_result_free(&r);
	unlink(p12);
	CLI_REFUSED(store, 2, "role", "mgmt", "issue", "x", "--role", "root", "--out-pkcs12", p12,
	            "--password-source", pw);
	CLI_REFUSED(store, 2, "--role", "mgmt", "issue", "x", "--out-pkcs12", p12,
	            "--password-source", pw);
	CLI_REFUSED(store, 2, "not both", "mgmt", "issue", "x", "--role", "admin", "--out-pkcs12",
	            p12, "--csr", p12);
	CLI_REFUSED(store, 2, "--password-source goes with", "mgmt", "issue", "x", "--role",
	            "admin", "--csr", p12, "--password-source", pw);
	CLI_REFUSED(store, 2, "bad client name", "mgmt", "issue", "x/y", "--role", "admin",
	            "--out-pkcs12", p12, "--password-source", pw);
	CLI_REFUSED(store, 1, "exists", "mgmt", "issue", "alice", "--role", "reader",
	            "--out-pkcs12", p12, "--password-source", pw);
	CLI_REFUSED(store, 1, "group or others", "mgmt", "issue", "x", "--role", "reader",
	            "--out-pkcs12", p12, "--password-source", openpw);
	/* an existing file is never overwritten */
	CLI_REFUSED(store, 1, "taken.p12", "mgmt", "issue", "x", "--role", "reader", "--out-pkcs12",
	            taken, "--password-source", pw);
	char *kept = kwt_read_file(taken, NULL);
	cr_assert_str_eq(kept, "x", "taken.p12 was overwritten");
	free(kept);
	cr_assert(access(p12, F_OK) != 0, "a refused issue left %s", p12);
	free(kwt_write_file(dir, "bad.csr", "not a csr", 9, 0600));
	char badcsr[4200];
	snprintf(badcsr, sizeof(badcsr), "%s/bad.csr", dir);
	CLI_REFUSED(store, 1, "not a CSR", "mgmt", "issue", "x", "--role", "reader", "--csr",
	            badcsr);
	CLI_REFUSED(store, 1, "unknown management client", "mgmt", "revoke", "nobody");
	cli_ok(&r, NULL, store, CLI_ARGS("mgmt", "revoke", "alice"));
	kwt_result_free(&r);
	CLI_REFUSED(store, 1, "already revoked", "mgmt", "revoke", "alice");
	/* serve: arguments, and a store without management */
	CLI_REFUSED(store, 2, "--listen", "serve");
	CLI_REFUSED(store, 2, "ADDR:PORT", "serve", "--listen", "8443");
	CLI_REFUSED(store, 2, "port", "serve", "--listen", "127.0.0.1:99999");
	CLI_REFUSED(bare, 1, "keyward-mgmt", "serve", "--listen", "127.0.0.1:0");
	free(store);
	free(bare);
	free(dir);
}

Test(mgmt_cli, cmake_install_puts_the_serve_unit_in_lib_systemd_system)
{
	char *bin = strdup(kwt_env("KW_TEST_KEYWARD_BIN"));
	char *build = cli_out("dirname \"$(dirname '%s')\"", bin);
	char *dest = kwt_tmpdir("destdir");
	char *prefix =
	    cli_out("sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' '%s/CMakeCache.txt'", build);
	cr_assert_eq(cli_status("DESTDIR='%s' cmake --install '%s' --component systemd-serve "
	                        ">/dev/null",
	                        dest, build),
	             0);
	char *unit = NULL;
	cr_assert(asprintf(&unit, "%s%s/lib/systemd/system/keyward-serve.service", dest, prefix) >
	          0);
	char *text = kwt_read_file(unit, NULL);
	cr_assert(text != NULL, "%s not installed", unit);
	cr_assert(strstr(text, "/keyward serve --listen ${KEYWARD_LISTEN}\n") &&
	              strstr(text, "\nEnvironment=KEYWARD_LISTEN=127.0.0.1:8443\n") &&
	              strstr(text, "\nProtectSystem=strict\n") &&
	              strstr(text, "\nReadWritePaths=/var/lib/keyward\n") &&
	              strstr(text, "\nWantedBy=multi-user.target\n") &&
	              strstr(text, "PrivateDevices=yes") == NULL,
	          "%s", text);
	char *vdir = kwt_tmpdir("verify");
	cr_assert_eq(cli_status("sed 's#^ExecStart=[^ ]*#ExecStart=%s#' '%s' > "
	                        "'%s/keyward-serve.service'",
	                        bin, unit, vdir),
	             0);
	char *out = cli_out("cd '%s' && systemd-analyze verify keyward-serve.service 2>&1; "
	                    "echo rc=$?",
	                    vdir);
	cr_assert(strstr(out, "rc=0") != NULL && strstr(out, "keyward-serve") == NULL,
	          "systemd-analyze verify: %s", out);
	free(out);
	free(vdir);
	free(text);
	free(unit);
	free(prefix);
	free(dest);
	free(build);
	free(bin);
}

Test(mgmt_cli, issue_without_options_writes_name_p12_and_a_generated_password)
{
	char *store = hsm_store_with_mgmt();
	char *dir = kwt_tmpdir("here");
	cr_assert_eq(cli_status("cd '%s' && '%s' --store '%s' mgmt issue robot --role reader "
	                        "> out.txt 2>&1",
	                        dir, kwt_env("KW_TEST_KEYWARD_BIN"), store),
	             0, "mgmt issue robot --role reader failed");
	char *out = cli_out("cat '%s/out.txt'", dir);
	cr_assert(strstr(out, "key and certificate in robot.p12, password in robot.p12.password"),
	          "%s", out);
	free(out);
	char *modes = cli_out("cd '%s' && stat -c '%%a %%n' robot.p12 robot.p12.password", dir);
	cr_assert_str_eq(modes, "600 robot.p12\n600 robot.p12.password");
	free(modes);
	char *pw = cli_out("cat '%s/robot.p12.password'", dir);
	cr_assert_eq(strlen(pw), 32, "generated password: '%s'", pw);
	char *subj =
	    cli_out("cd '%s' && openssl pkcs12 -in robot.p12 -passin file:robot.p12.password "
	            "-nokeys -clcerts 2>/dev/null | openssl x509 -noout -subject "
	            "-nameopt RFC2253",
	            dir);
	cr_assert_str_eq(subj, "subject=CN=robot,OU=reader,O=keyward management");
	/* a second one does not overwrite either file */
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("mgmt", "revoke", "robot"));
	kwt_result_free(&r);
	char *pw_again = NULL;
	cr_assert_neq(cli_status("cd '%s' && '%s' --store '%s' mgmt issue robot2 --role reader "
	                         "--out-pkcs12 robot.p12 >/dev/null 2>&1",
	                         dir, kwt_env("KW_TEST_KEYWARD_BIN"), store),
	              0);
	pw_again = cli_out("cat '%s/robot.p12.password'", dir);
	cr_assert_str_eq(pw_again, pw, "robot.p12.password was overwritten");
	cr_assert_eq(
	    cli_sql_count(store, "SELECT count(*) FROM mgmt_clients WHERE name = 'robot2'"), 0);
	free(pw_again);
	free(subj);
	free(pw);
	free(dir);
	free(store);
}
