/*
 * keyward CLI end to end: issuer "unknown" (an external CA). cert create
 * --issuer unknown leaves a pending version with a CSR signed in the device;
 * openssl plays the CA (root + intermediate); cert merge brings the
 * certificate back with its chain in any order; the OpenSSL provider then
 * serves key, certificate and chain to openssl s_client. Every refusal is one
 * stderr line and leaves store and token exactly as they were.
 */
#include "cli_ca.h"

static void create_pending(const char *store, const char *name, const char *backend,
                           const char *key)
{
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", name, "--backend", backend, "--subject", "CN=localhost",
	                "--san", "DNS:localhost", "--san", "IP:127.0.0.1", "--key", key, "--issuer",
	                "unknown"));
	char want[128];
	snprintf(want, sizeof(want), "created %s version 1, pending: %s key in backend %s", name,
	         key, backend);
	cli_assert_has(r.out, want);
	kwt_result_free(&r);
}

/* What keyward shows of the pending version: the CSR's facts, no certificate. */
static void assert_pending_shown(const char *store, const char *name)
{
	json_t *j = cli_show(store, name, 0);
	cr_assert_str_eq(cli_js(j, "status"), "pending");
	cli_assert_jbool(j, "current", 1, "pending version 1");
	cr_assert_eq(json_integer_value(json_object_get(j, "version")), 1);
	cr_assert_eq(json_integer_value(json_object_get(j, "pending_version")), 1);
	cr_assert_str_eq(cli_js(j, "subject"), "CN=localhost");
	cr_assert_str_eq(cli_js(j, "issuer"), "unknown");
	const json_t *sans = json_object_get(j, "sans");
	cr_assert_eq(json_array_size(sans), 2);
	cr_assert_str_eq(json_string_value(json_array_get(sans, 0)), "DNS:localhost");
	cr_assert_str_eq(json_string_value(json_array_get(sans, 1)), "IP:127.0.0.1");
	cr_assert(json_is_null(json_object_get(j, "not_after")));
	cr_assert(json_is_null(json_object_get(j, "thumbprint_sha256")));
	cli_assert_jbool(json_object_get(j, "key"), "exportable", 0, "pending key");
	json_decref(j);
	json_t *list = cli_list(store, "cert list");
	const json_t *c = cli_find_named(list, name);
	cr_assert_not_null(c, "cert list lacks the pending certificate");
	cr_assert_str_eq(cli_js(c, "status"), "pending");
	json_decref(list);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions WHERE status = 'pending'"
	                                  " AND cert_der IS NULL AND csr_der IS NOT NULL"),
	             1);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type ="
	                                  " 'cert.pending' AND version = 1"),
	             1);
}

/* The CSR is the stored one every time, signed by the device's key. */
static char *assert_csr(const char *store, const char *dir, const char *name, const char *backend)
{
	char *a = cli_csr_file(store, dir, name, "a.csr"),
	     *b = cli_csr_file(store, dir, name, "b.csr");
	char *ta = kwt_read_file(a, NULL), *tb = kwt_read_file(b, NULL);
	cr_assert_str_eq(ta, tb, "cert csr gave two different CSRs");
	char *der = cli_out("openssl req -in '%s' -outform DER | od -An -v -tx1 | tr -d ' \\n'", a);
	char *stored = cli_out("sqlite3 '%s/keyward.db' \"SELECT lower(hex(csr_der)) FROM versions"
	                       " WHERE status = 'pending'\"",
	                       store);
	cr_assert_str_eq(der, stored, "cert csr is not the stored CSR");
	cr_assert_eq(cli_status("openssl req -in '%s' -noout -verify >/dev/null 2>&1", a), 0);
	char *text = cli_out("openssl req -in '%s' -noout -text", a);
	cli_assert_has(text, "DNS:localhost, IP Address:127.0.0.1");
	cli_assert_has(text, "TLS Web Server Authentication");
	cli_assert_has(text, "Digital Signature");
	char *csr_key = cli_out("openssl req -in '%s' -noout -pubkey", a), *dev_key;
	if (strcmp(backend, "tpm") == 0)
		dev_key = cli_tpm_pubkey(store, name, 1, NULL);
	else {
		json_t *j = cli_show(store, name, 0);
		dev_key = cli_pkcs11tool_pubkey(
		    cli_js(json_object_get(json_object_get(j, "key"), "attributes"), "CKA_ID"));
		json_decref(j);
	}
	cr_assert_str_eq(csr_key, dev_key, "the CSR's key is not the device's");
	free(csr_key);
	free(dev_key);
	free(text);
	free(der);
	free(stored);
	free(ta);
	free(tb);
	free(b);
	return a;
}

static json_t *verify_json(const char *store, const char *name)
{
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "verify", name, "--json"));
	json_t *j = cli_json(r.out, "cert verify --json");
	kwt_result_free(&r);
	return j;
}

static void flow(const char *backend, const char *key)
{
	char *store = kwt_store_new(1, 1), *dir = kwt_tmpdir("merge");
	cli_ca ca = cli_ca_new();
	kwt_result r;
	int version;
	create_pending(store, "web", backend, key);
	assert_pending_shown(store, "web");
	char *csr = assert_csr(store, dir, "web", backend);

	/* custody is read from the device already; there is nothing to match yet */
	json_t *v = verify_json(store, "web");
	cr_assert(json_is_null(json_object_get(v, "certificate_matches_key")));
	cli_assert_jbool(v, "exportable", 0, "cert verify of the pending key");
	json_decref(v);

	/* nothing serves a version without a certificate */
	CLI_REFUSED(store, 1, "version 1 is pending: it has no certificate", "cert", "export",
	            "web");
	CLI_REFUSED(store, 1, "version 1 is pending: it has no certificate", "cert", "key-ref",
	            "web");
	cr_assert_eq(cli_key_open(store, "web", 0, &version), KW_ERR_STATE);
	cli_assert_has(kw_error_message(), "has no certificate");

	/* the CA signs; the admin hands back everything in any order, with a
	 * stranger and a duplicate in it */
	char *leaf = cli_ca_sign(&ca, csr, "leaf.pem", 90, NULL);
	char *stranger = cli_path(ca.dir, "stranger.pem");
	cr_assert_eq(cli_status("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256"
	                        " -nodes -keyout /dev/null -subj /CN=stranger -out '%s'"
	                        " >/dev/null 2>&1",
	                        stranger),
	             0);
	const char *const parts[] = {ca.root, leaf, stranger, ca.inter, ca.inter, NULL};
	char *bundle = cli_cat(dir, "bundle.pem", parts);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "merge", "web", bundle));
	cli_assert_has(r.out, "merged web: version 1 is current\n");
	cli_assert_has(r.out, "chain: " CLI_CA_INTER ", " CLI_CA_ROOT "\n");
	cli_assert_has(r.out, "CN=stranger: not part of the certificate's chain\n");
	cli_assert_has(r.out, CLI_CA_INTER ": a duplicate\n");
	kwt_result_free(&r);

	json_t *j = cli_show(store, "web", 0);
	char *sha = cli_x509_hex(leaf, "sha256"), *serial = cli_x509_hex(leaf, "serial");
	cr_assert_str_eq(cli_js(j, "status"), "active");
	cli_assert_jbool(j, "current", 1, "merged version");
	cr_assert_str_eq(cli_js(j, "issuer_dn"), CLI_CA_INTER);
	cr_assert_str_eq(cli_js(j, "thumbprint_sha256"), sha);
	cr_assert_str_eq(cli_js(j, "serial"), serial);
	cr_assert(json_is_null(json_object_get(j, "pending_version")));
	json_decref(j);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = 'cert.merged'"
	                                  " AND cert = 'web' AND version = 1"),
	             1);

	/* the chain: leaf, intermediate, root, as openssl wrote them */
	const char *const ordered[] = {leaf, ca.inter, ca.root, NULL};
	char *want = cli_cat(dir, "want.pem", ordered), *full = cli_path(dir, "full.pem");
	char *cert = cli_path(dir, "cert.pem"), *chain = cli_path(dir, "chain.pem");
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "web", "--chain", "--out", full));
	kwt_result_free(&r);
	char *tw = kwt_read_file(want, NULL), *tf = kwt_read_file(full, NULL);
	cr_assert_str_eq(tf, tw, "export --chain is not leaf, intermediate, root");
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "web", "--out", cert));
	kwt_result_free(&r);
	cr_assert_eq(cli_status("cat '%s' '%s' > '%s'", ca.inter, ca.root, chain), 0);
	cr_assert_eq(cli_status("openssl verify -CAfile '%s' -untrusted '%s' '%s' >/dev/null",
	                        ca.root, ca.inter, cert),
	             0);

	/* the provider serves it: key in the device, certificate and chain */
	cr_assert_eq(cli_key_open(store, "web", 0, &version), KW_OK, "%s", kw_error_message());
	cr_assert_eq(version, 1);
	char *tls = cli_out("KEYWARD_STORE='%s' '%s/tests/provider/tls-exchange' --chain '%s' '%s'"
	                    " keyward:web -CAfile '%s' 2>&1",
	                    store, kwt_env("KW_TEST_SOURCE_DIR"), chain, cert, ca.root);
	cli_assert_has(tls, "echo=ok");
	free(tls);
	/* and the chain is what lets the client verify: without it, no */
	tls = cli_out("KEYWARD_STORE='%s' '%s/tests/provider/tls-exchange' '%s' keyward:web"
	              " -CAfile '%s' 2>&1",
	              store, kwt_env("KW_TEST_SOURCE_DIR"), cert, ca.root);
	cr_assert(strstr(tls, "echo=ok") == NULL, "verified without the intermediate: %s", tls);
	free(tls);

	v = verify_json(store, "web");
	cli_assert_jbool(v, "certificate_matches_key", 1, "cert verify after the merge");
	json_decref(v);
	cli_ok(&r, NULL, store, CLI_ARGS("audit", "verify"));
	kwt_result_free(&r);
	free(tw);
	free(tf);
	free(want);
	free(full);
	free(cert);
	free(chain);
	free(sha);
	free(serial);
	free(bundle);
	free(stranger);
	free(leaf);
	free(csr);
	cli_ca_free(&ca);
	free(dir);
	free(store);
}

Test(merge, tpm_key_pending_csr_merged_with_its_chain_and_served)
{
	flow("tpm", "ec-p256");
}

Test(merge, softhsm_key_pending_csr_merged_with_its_chain_and_served)
{
	flow("hsm", "rsa-2048");
}

static void refused_at(const char *store, const char *now, const char *needle, const char *file)
{
	char e[64];
	snprintf(e, sizeof(e), "KEYWARD_NOW=%s", now);
	char *env[] = {e, NULL};
	cli_refused(store, env, 1, needle, CLI_ARGS("cert", "merge", "web", file), NULL);
}

static void refusals(const char *backend)
{
	char *store = kwt_store_new(1, 1), *dir = kwt_tmpdir("refuse");
	cli_ca ca = cli_ca_new();
	create_pending(store, "web", backend, "ec-p256");
	char *csr = cli_csr_file(store, dir, "web", "web.csr");
	char *good = cli_ca_sign(&ca, csr, "good.pem", 90, NULL);
	char *foreign = cli_ca_foreign_csr(&ca, "CN=localhost");
	char *other = cli_ca_sign(&ca, foreign, "other.pem", 90, NULL);
	char *ca_leaf =
	    cli_ca_sign(&ca, csr, "ca-leaf.pem", 90,
	                "basicConstraints=critical,CA:TRUE\nsubjectAltName=DNS:localhost\n");
	char *text = kwt_read_file(good, NULL);
	char *half = kwt_write_file(dir, "half.pem", text, strlen(text) / 2, 0644);
	char *garbage = kwt_write_file(dir, "garbage.txt", "not a certificate\n", 18, 0644);
	char *empty = kwt_write_file(dir, "empty.pem", "", 0, 0644);
	char *key = cli_path(ca.dir, "inter.key"), *missing = cli_path(dir, "missing.pem");

	CLI_REFUSED(store, 1, "for the pending key of 'web' version 1", "cert", "merge", "web",
	            other);
	CLI_REFUSED(store, 1, "for the pending key", "cert", "merge", "web", ca.root);
	refused_at(store, "2099-01-01T00:00:00Z", "the certificate expired at", good);
	refused_at(store, "2001-01-01T00:00:00Z", "the certificate is not valid yet", good);
	CLI_REFUSED(store, 1, "is a CA certificate", "cert", "merge", "web", ca_leaf);
	CLI_REFUSED(store, 1, "garbage.txt: not a certificate", "cert", "merge", "web", garbage);
	CLI_REFUSED(store, 1, "half.pem: truncated or corrupt PEM", "cert", "merge", "web", half);
	CLI_REFUSED(store, 1, "empty.pem: empty", "cert", "merge", "web", empty);
	CLI_REFUSED(store, 1, "holds a CSR", "cert", "merge", "web", csr);
	CLI_REFUSED(store, 1, "'PRIVATE KEY' PEM block", "cert", "merge", "web", key);
	CLI_REFUSED(store, 1, "cannot read", "cert", "merge", "web", missing);
	CLI_REFUSED(store, 1, "unknown certificate 'nosuch'", "cert", "merge", "nosuch", good);
	CLI_REFUSED(store, 2, "give NAME and FILE", "cert", "merge", "web");
	CLI_REFUSED(store, 2, "--bogus", "cert", "merge", "web", good, "--bogus");

	/* the pending version is intact: the right certificate still goes in */
	json_t *j = cli_show(store, "web", 0);
	cr_assert_str_eq(cli_js(j, "status"), "pending");
	json_decref(j);
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "merge", "web", good));
	cli_assert_has(r.out, "chain: no issuer certificate in");
	kwt_result_free(&r);
	CLI_REFUSED(store, 1, "has no pending version: nothing to merge", "cert", "merge", "web",
	            good);
	free(text);
	free(half);
	free(garbage);
	free(empty);
	free(key);
	free(missing);
	free(ca_leaf);
	free(other);
	free(foreign);
	free(good);
	free(csr);
	cli_ca_free(&ca);
	free(dir);
	free(store);
}

Test(merge, refusals_leave_a_softhsm_pending_version_intact)
{
	refusals("hsm");
}

Test(merge, refusals_leave_a_tpm_pending_version_intact)
{
	refusals("tpm");
}

Test(merge, pkcs7_bundles_and_der_certificates_are_taken)
{
	char *store = kwt_store_new(0, 1), *dir = kwt_tmpdir("formats");
	cli_ca ca = cli_ca_new();
	kwt_result r;
	create_pending(store, "p7", "hsm", "ec-p384");
	create_pending(store, "der", "hsm", "ec-p256");
	char *csr = cli_csr_file(store, dir, "p7", "p7.csr");
	char *leaf = cli_ca_sign(&ca, csr, "p7.pem", 30, NULL);
	char *p7b = cli_path(dir, "chain.p7b");
	cr_assert_eq(cli_status("openssl crl2pkcs7 -nocrl -certfile '%s' -certfile '%s'"
	                        " -certfile '%s' -outform DER -out '%s'",
	                        ca.root, leaf, ca.inter, p7b),
	             0);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "merge", "p7", p7b));
	cli_assert_has(r.out, "chain: " CLI_CA_INTER ", " CLI_CA_ROOT "\n");
	kwt_result_free(&r);
	free(csr);
	csr = cli_csr_file(store, dir, "der", "der.csr");
	char *dleaf = cli_ca_sign(&ca, csr, "der.pem", 30, NULL), *der = cli_path(dir, "der.cer");
	cr_assert_eq(cli_status("openssl x509 -in '%s' -outform DER -out '%s'", dleaf, der), 0);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "merge", "der", der, "--json"));
	json_t *rep = cli_json(r.out, "cert merge --json");
	cr_assert_eq(json_integer_value(json_object_get(rep, "version")), 1);
	cr_assert_eq(json_array_size(json_object_get(rep, "chain")), 0);
	cr_assert_str_eq(cli_js(rep, "issuer_dn"), CLI_CA_INTER);
	json_decref(rep);
	kwt_result_free(&r);
	char *sha = cli_x509_hex(dleaf, "sha256");
	json_t *j = cli_show(store, "der", 0);
	cr_assert_str_eq(cli_js(j, "thumbprint_sha256"), sha);
	json_decref(j);
	free(sha);
	free(der);
	free(dleaf);
	free(p7b);
	free(leaf);
	free(csr);
	cli_ca_free(&ca);
	free(dir);
	free(store);
}

/* A merge that replaces a version is a renewal: when its deploy fails, the
 * merge stands (the new version is current), the exit code is 3 and the one
 * stderr line names the certificate, its deploy target and the hook. */
Test(merge, a_merge_whose_deploy_fails_stands_and_exits_3)
{
	char *store = kwt_store_new(0, 1), *dir = kwt_tmpdir("deploy");
	cli_ca ca = cli_ca_new();
	kwt_result r;
	create_pending(store, "web", "hsm", "ec-p256");
	char *csr = cli_csr_file(store, dir, "web", "v1.csr");
	char *leaf = cli_ca_sign(&ca, csr, "v1.pem", 30, NULL);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "merge", "web", leaf));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("deploy-target", "add", "web-files", "--deploy",
	                "echo 'reload failed' >&2; exit 3"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("policy", "show", "web"));
	json_t *p = cli_json(r.out, "policy show");
	kwt_result_free(&r);
	json_object_set_new(p, "deploy", json_pack("{s:s}", "target", "web-files"));
	char *text = json_dumps(p, 0);
	char *pf = kwt_write_file(dir, "policy.json", text, strlen(text), 0600);
	cli_ok(&r, NULL, store, CLI_ARGS("policy", "set", "web", pf));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "web"));
	kwt_result_free(&r);
	free(csr);
	free(leaf);
	csr = cli_csr_file(store, dir, "web", "v2.csr");
	leaf = cli_ca_sign(&ca, csr, "v2.pem", 30, NULL);
	cli_runv(&r, NULL, store, CLI_ARGS("cert", "merge", "web", leaf, "--json"));
	cr_assert_eq(r.status, 3, "exit %d: %s%s", r.status, r.out, r.err);
	cr_assert_str_eq(r.err, "keyward: certificate 'web': deploy target 'web-files': the deploy "
	                        "hook failed (exit status 3): reload failed (once fixed: keyward "
	                        "cert deploy web)\n");
	json_t *rep = cli_json(r.out, "cert merge --json");
	cr_assert_eq(json_integer_value(json_object_get(rep, "version")), 2);
	cr_assert(strstr(cli_js(rep, "deploy_error"), "the deploy hook failed") != NULL);
	json_decref(rep);
	kwt_result_free(&r);
	json_t *j = cli_show(store, "web", 0);
	cr_assert_eq(json_integer_value(json_object_get(j, "version")), 2);
	cr_assert_str_eq(cli_js(j, "status"), "active");
	json_decref(j);
	cr_assert_eq(cli_sql_count(store, "SELECT count(*) FROM events WHERE type = 'deploy.failed'"
	                                  " AND cert = 'web' AND version = 2"),
	             1);
	json_decref(p);
	free(text);
	free(pf);
	free(csr);
	free(leaf);
	cli_ca_free(&ca);
	free(dir);
	free(store);
}
