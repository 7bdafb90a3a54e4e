/*
 * keyward CLI end to end: the local CA (issuer ca:NAME). A CA certificate
 * whose key stays in SoftHSM signs a server certificate whose key is in the
 * TPM; openssl verifies it, the CA's key read from the token verifies the
 * signature, an intermediate under the root carries its chain, the provider
 * serves leaf + chain, and every refusal leaves store and token as they were.
 */
#include "cli_ca.h"

#define ROOT_DN  "CN=Keyward Test Root,O=Example"
#define INTER_DN "CN=Keyward Test Intermediate,O=Example"

/* cert export NAME [--chain] into dir/file (malloc'd path). */
static char *export_to(const char *store, const char *dir, const char *name, int chain,
                       const char *file)
{
	kwt_result r;
	char *path = cli_path(dir, file);
	if (chain)
		cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", name, "--chain", "--out", path));
	else
		cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", name, "--out", path));
	kwt_result_free(&r);
	return path;
}

static void create_ca(const char *store, const char *name, const char *backend, const char *dn,
                      const char *pathlen, const char *issuer)
{
	kwt_result r;
	if (issuer)
		cli_ok(&r, NULL, store,
		       CLI_ARGS("cert", "create", name, "--backend", backend, "--subject", dn,
		                "--ca", "--pathlen", pathlen, "--issuer", issuer));
	else
		cli_ok(&r, NULL, store,
		       CLI_ARGS("cert", "create", name, "--backend", backend, "--subject", dn,
		                "--ca", "--pathlen", pathlen));
	kwt_result_free(&r);
}

static void create_leaf(const char *store, const char *name, const char *backend,
                        const char *issuer, const char *days)
{
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", name, "--backend", backend, "--subject", "CN=localhost",
	                "--san", "DNS:localhost", "--san", "IP:127.0.0.1", "--issuer", issuer,
	                "--days", days));
	kwt_result_free(&r);
}

/* The CA's certificate says what a CA's must. */
static void assert_ca_cert(const char *pem, const char *pathlen)
{
	char *text = cli_out("openssl x509 -in '%s' -noout -text", pem);
	char want[64];
	snprintf(want, sizeof(want), "CA:TRUE, pathlen:%s", pathlen);
	cli_assert_has(text, "X509v3 Basic Constraints: critical");
	cli_assert_has(text, want);
	cli_assert_has(text, "X509v3 Key Usage: critical");
	cli_assert_has(text, "Digital Signature, Certificate Sign, CRL Sign");
	cli_assert_has(text, "X509v3 Subject Key Identifier");
	cr_assert(strstr(text, "Extended Key Usage") == NULL, "a CA with an EKU: %s", text);
	free(text);
}

/* The leaf names the CA as its issuer: issuer DN = CA's subject, AKI = CA's SKI. */
static void assert_issued_by(const char *leaf, const char *ca)
{
	char *issuer = cli_out("openssl x509 -in '%s' -noout -issuer -nameopt RFC2253", leaf);
	char *subject = cli_out("openssl x509 -in '%s' -noout -subject -nameopt RFC2253", ca);
	cr_assert_str_eq(issuer + strlen("issuer="), subject + strlen("subject="));
	char *lt = cli_out("openssl x509 -in '%s' -noout -text", leaf);
	char *ct = cli_out("openssl x509 -in '%s' -noout -text", ca);
	char *aki = cli_line_after(lt, "X509v3 Authority Key Identifier");
	char *ski = cli_line_after(ct, "X509v3 Subject Key Identifier");
	cr_assert(aki && ski);
	cr_assert_str_eq(aki + (strncmp(aki, "keyid:", 6) == 0 ? 6 : 0), ski,
	                 "AKI %s is not the CA's SKI %s", aki, ski);
	cli_assert_has(lt, "CA:FALSE");
	cli_assert_has(lt, "TLS Web Server Authentication");
	cli_assert_has(lt, "DNS:localhost, IP Address:127.0.0.1");
	free(aki);
	free(ski);
	free(lt);
	free(ct);
	free(issuer);
	free(subject);
}

/* Issuer DN and AKI only (the CSR decides SANs and the profile the EKU). */
static void assert_issued_by_dn(const char *cert, const char *ca)
{
	char *issuer = cli_out("openssl x509 -in '%s' -noout -issuer -nameopt RFC2253", cert);
	char *subject = cli_out("openssl x509 -in '%s' -noout -subject -nameopt RFC2253", ca);
	cr_assert_str_eq(issuer + strlen("issuer="), subject + strlen("subject="));
	char *lt = cli_out("openssl x509 -in '%s' -noout -text", cert);
	char *ct = cli_out("openssl x509 -in '%s' -noout -text", ca);
	char *aki = cli_line_after(lt, "X509v3 Authority Key Identifier");
	char *ski = cli_line_after(ct, "X509v3 Subject Key Identifier");
	cr_assert(aki && ski);
	cr_assert_str_eq(aki + (strncmp(aki, "keyid:", 6) == 0 ? 6 : 0), ski);
	free(aki);
	free(ski);
	free(lt);
	free(ct);
	free(issuer);
	free(subject);
}

/* Whether the signature on cert verifies with the public key in pub (PEM). */
static int signature_verifies(const char *dir, const char *cert, const char *pub)
{
	return cli_status(
	    "cd '%s' && openssl x509 -in '%s' -outform DER -out sig-leaf.der &&"
	    " openssl asn1parse -inform DER -in sig-leaf.der -strparse 4 -noout -out sig-tbs.der"
	    " >/dev/null && off=$(openssl asn1parse -inform DER -in sig-leaf.der |"
	    " awk -F: '/BIT STRING/ {o=$1} END {print o+0}') &&"
	    " openssl asn1parse -inform DER -in sig-leaf.der -strparse $off -noout -out sig.der"
	    " >/dev/null && printf '%%s\\n' '%s' > sig-pub.pem &&"
	    " openssl dgst -sha256 -verify sig-pub.pem -signature sig.der sig-tbs.der"
	    " >/dev/null 2>&1",
	    dir, cert, pub);
}

/* The CA's public key as its device holds it (SoftHSM: by CKA_ID). */
static char *device_pubkey(const char *store, const char *name)
{
	json_t *j = cli_show(store, name, 0);
	char *pub = cli_pkcs11tool_pubkey(
	    cli_js(json_object_get(json_object_get(j, "key"), "attributes"), "CKA_ID"));
	json_decref(j);
	return pub;
}

static void assert_files_equal(const char *a, const char *b, const char *what)
{
	char *ta = kwt_read_file(a, NULL), *tb = kwt_read_file(b, NULL);
	cr_assert_str_eq(ta, tb, "%s", what);
	free(ta);
	free(tb);
}

static void assert_served(const char *store, const char *name, const char *cert, const char *chain,
                          const char *root)
{
	char *tls = cli_out("KEYWARD_STORE='%s' '%s/tests/provider/tls-exchange' --chain '%s' '%s'"
	                    " keyward:%s -CAfile '%s' 2>&1",
	                    store, kwt_env("KW_TEST_SOURCE_DIR"), chain, cert, name, root);
	cli_assert_has(tls, "echo=ok");
	free(tls);
}

Test(local_ca, softhsm_root_issues_tpm_server_certificate)
{
	char *store = kwt_store_new(1, 1), *dir = kwt_tmpdir("localca");
	kwt_result r;
	create_ca(store, "root", "hsm", ROOT_DN, "1", NULL);
	char *ca = export_to(store, dir, "root", 0, "ca.pem");
	assert_ca_cert(ca, "1");
	json_t *j = cli_show(store, "root", 0);
	cr_assert_str_eq(cli_js(j, "issuer"), "self");
	/* a CA lives ten years by default */
	time_t nb = cli_time_parse(cli_js(j, "not_before")),
	       na = cli_time_parse(cli_js(j, "not_after"));
	cr_assert_eq(na - nb, 3650L * 86400, "CA validity %ld s", (long)(na - nb));
	json_decref(j);

	create_leaf(store, "web", "tpm", "ca:root", "90");
	char *leaf = export_to(store, dir, "web", 0, "leaf.pem");
	cr_assert_eq(cli_status("openssl verify -CAfile '%s' '%s' >/dev/null 2>&1", ca, leaf), 0);
	assert_issued_by(leaf, ca);
	j = cli_show(store, "web", 0);
	cr_assert_str_eq(cli_js(j, "issuer"), "ca:root");
	cr_assert_str_eq(cli_js(j, "backend"), "tpm");
	json_decref(j);

	/* the CA's key in the token made the signature; the leaf's own key did not */
	char *ca_pub = device_pubkey(store, "root");
	char *leaf_pub = cli_tpm_pubkey(store, "web", 1, NULL);
	cr_assert_eq(signature_verifies(dir, leaf, ca_pub), 0,
	             "the CA's device key does not "
	             "verify the leaf");
	cr_assert_neq(signature_verifies(dir, leaf, leaf_pub), 0, "the check cannot fail");

	/* the chain: leaf, then the CA */
	const char *const parts[] = {leaf, ca, NULL};
	char *want = cli_cat(dir, "want.pem", parts);
	char *full = export_to(store, dir, "web", 1, "full.pem");
	assert_files_equal(full, want, "export --chain is not leaf, CA");
	assert_served(store, "web", leaf, ca, ca);

	/* renewal re-issues from the CA, with a new serial and the same chain */
	char *serial1 = cli_out("openssl x509 -in '%s' -noout -serial", leaf);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "web"));
	kwt_result_free(&r);
	char *leaf2 = export_to(store, dir, "web", 0, "leaf2.pem");
	char *serial2 = cli_out("openssl x509 -in '%s' -noout -serial", leaf2);
	cr_assert_str_neq(serial1, serial2);
	cr_assert_eq(cli_status("openssl verify -CAfile '%s' '%s' >/dev/null 2>&1", ca, leaf2), 0);
	assert_issued_by(leaf2, ca);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions v JOIN certs c ON"
	                                  " c.id = v.cert_id WHERE c.name = 'web' AND"
	                                  " v.issuer = 'ca:root' AND v.chain_der IS NOT NULL"),
	             2);
	cli_ok(&r, NULL, store, CLI_ARGS("audit", "verify"));
	kwt_result_free(&r);
	free(serial1);
	free(serial2);
	free(leaf2);
	free(full);
	free(want);
	free(ca_pub);
	free(leaf_pub);
	free(leaf);
	free(ca);
	free(dir);
	free(store);
}

Test(local_ca, intermediate_under_root_carries_the_chain)
{
	char *store = kwt_store_new(1, 1), *dir = kwt_tmpdir("localca");
	create_ca(store, "root", "hsm", ROOT_DN, "1", NULL);
	create_ca(store, "inter", "hsm", INTER_DN, "0", "ca:root");
	create_leaf(store, "web", "tpm", "ca:inter", "30");
	char *root = export_to(store, dir, "root", 0, "root.pem");
	char *inter = export_to(store, dir, "inter", 0, "inter.pem");
	char *leaf = export_to(store, dir, "web", 0, "leaf.pem");
	assert_ca_cert(inter, "0");
	assert_issued_by(leaf, inter);
	cr_assert_eq(cli_status("openssl verify -CAfile '%s' -untrusted '%s' '%s' >/dev/null 2>&1",
	                        root, inter, leaf),
	             0);
	/* without the intermediate, the leaf does not verify under the root */
	cr_assert_neq(cli_status("openssl verify -CAfile '%s' '%s' >/dev/null 2>&1", root, leaf),
	              0);
	cr_assert_eq(cli_status("openssl verify -CAfile '%s' '%s' >/dev/null 2>&1", root, inter),
	             0);

	/* export --chain: leaf, intermediate, root */
	const char *const parts[] = {leaf, inter, root, NULL};
	char *want = cli_cat(dir, "want.pem", parts);
	char *full = export_to(store, dir, "web", 1, "full.pem");
	assert_files_equal(full, want, "export --chain is not leaf, intermediate, root");
	const char *const cparts[] = {inter, root, NULL};
	char *chain = cli_cat(dir, "chain.pem", cparts);
	assert_served(store, "web", leaf, chain, root);

	/* renew --due re-issues from the intermediate when the leaf is due */
	time_t due = time(NULL) + 25 * 86400;
	char when[32], env_now[64], attime[32];
	cli_time_format(due, when, sizeof(when));
	snprintf(env_now, sizeof(env_now), "KEYWARD_NOW=%s", when);
	snprintf(attime, sizeof(attime), "%ld", (long)due + 60);
	char *env[] = {env_now, NULL};
	kwt_result r;
	cli_ok(&r, env, store, CLI_ARGS("renew", "--due"));
	kwt_result_free(&r);
	json_t *j = cli_show(store, "web", 0);
	cr_assert_eq(json_integer_value(json_object_get(j, "version")), 2,
	             "renew --due did not renew");
	cr_assert_str_eq(cli_js(j, "issuer"), "ca:inter");
	json_decref(j);
	char *leaf2 = export_to(store, dir, "web", 0, "leaf2.pem");
	cr_assert_eq(cli_status("openssl verify -attime %s -CAfile '%s' -untrusted '%s' '%s'"
	                        " >/dev/null 2>&1",
	                        attime, root, inter, leaf2),
	             0);
	assert_issued_by(leaf2, inter);
	free(leaf2);

	/* a sub-CA may not ask for more path than its parent leaves */
	CLI_REFUSED(store, 1, "cannot be issued by CA 'root' (pathlen 1): at most 0", "cert",
	            "create", "wide", "--backend", "hsm", "--subject", "CN=wide", "--ca",
	            "--pathlen", "1", "--issuer", "ca:root");
	/* pathlen 0: no CA under the intermediate */
	CLI_REFUSED(store, 1, "pathlen 0", "cert", "create", "sub", "--backend", "hsm", "--subject",
	            "CN=sub", "--ca", "--issuer", "ca:inter");
	free(chain);
	free(full);
	free(want);
	free(leaf);
	free(inter);
	free(root);
	free(dir);
	free(store);
}

Test(local_ca, refuses_unusable_issuers)
{
	char *store = kwt_store_new(1, 1);
	kwt_result r;
	create_leaf(store, "plain", "hsm", "self", "30");
	CLI_REFUSED(store, 1, "unknown CA 'nosuch'", "cert", "create", "a", "--backend", "tpm",
	            "--subject", "CN=a", "--issuer", "ca:nosuch");
	CLI_REFUSED(store, 1, "'plain' is not a CA", "cert", "create", "a", "--backend", "tpm",
	            "--subject", "CN=a", "--issuer", "ca:plain");
	CLI_REFUSED(store, 2, "--pathlen needs --ca", "cert", "create", "a", "--backend", "tpm",
	            "--subject", "CN=a", "--pathlen", "1");

	/* deleted (soft: it can still be recovered) */
	cli_ok(
	    &r, NULL, store,
	    CLI_ARGS("cert", "create", "gone", "--backend", "hsm", "--subject", "CN=gone", "--ca"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "gone"));
	kwt_result_free(&r);
	CLI_REFUSED(store, 1, "CA 'gone' is deleted", "cert", "create", "a", "--backend", "tpm",
	            "--subject", "CN=a", "--issuer", "ca:gone");

	/* disabled, expired */
	char *then[] = {"KEYWARD_NOW=" CLI_NOW, NULL};
	cli_ok(&r, then, store,
	       CLI_ARGS("cert", "create", "old", "--backend", "hsm", "--subject", "CN=old", "--ca",
	                "--days", "10"));
	kwt_result_free(&r);
	cli_ok(&r, then, store, CLI_ARGS("cert", "set", "old", "--enabled", "false"));
	kwt_result_free(&r);
	cli_snap snap = cli_snap_take(store);
	cli_runv(&r, then, store,
	         CLI_ARGS("cert", "create", "a", "--backend", "tpm", "--subject", "CN=a",
	                  "--issuer", "ca:old"));
	cli_assert_error(&r, 1, "issuing under a disabled CA");
	cli_assert_err_has(&r, "CA 'old' is disabled", "disabled CA");
	kwt_result_free(&r);
	cli_snap_assert_same(&snap, store, "issuing under a disabled CA");
	cli_ok(&r, then, store, CLI_ARGS("cert", "set", "old", "--enabled", "true"));
	kwt_result_free(&r);
	/* still valid: the leaf's validity is clipped to the CA's */
	cli_ok(&r, then, store,
	       CLI_ARGS("cert", "create", "a", "--backend", "hsm", "--subject", "CN=a", "--issuer",
	                "ca:old", "--days", "365"));
	kwt_result_free(&r);
	json_t *ja = cli_show(store, "a", 0), *jo = cli_show(store, "old", 0);
	cr_assert_str_eq(cli_js(ja, "not_after"), cli_js(jo, "not_after"));
	json_decref(ja);
	json_decref(jo);
	char *later[] = {"KEYWARD_NOW=" CLI_LATER, NULL};
	snap = cli_snap_take(store);
	cli_runv(&r, later, store,
	         CLI_ARGS("cert", "create", "b", "--backend", "tpm", "--subject", "CN=b",
	                  "--issuer", "ca:old"));
	cli_assert_error(&r, 1, "issuing under an expired CA");
	cli_assert_err_has(&r, "CA 'old' has expired", "expired CA");
	kwt_result_free(&r);
	cli_snap_assert_same(&snap, store, "issuing under an expired CA");
	free(store);
}

/* A CSR made by openssl on "another host", asking for more than it gets. */
static char *foreign_csr(const char *dir, const char *file)
{
	char *csr = cli_path(dir, file);
	cr_assert_eq(cli_status("cd '%s' && openssl req -new -newkey ec -pkeyopt"
	                        " ec_paramgen_curve:P-256 -nodes -keyout other.key"
	                        " -subj '/O=Other/CN=other.example'"
	                        " -addext 'subjectAltName=DNS:other.example,IP:10.0.0.5'"
	                        " -addext 'basicConstraints=critical,CA:TRUE'"
	                        " -addext 'extendedKeyUsage=codeSigning' -out '%s' 2>/dev/null",
	                        dir, csr),
	             0);
	return csr;
}

Test(local_ca, signs_a_csr_from_another_host)
{
	char *store = kwt_store_new(1, 1), *dir = kwt_tmpdir("localca");
	kwt_result r;
	create_ca(store, "root", "hsm", ROOT_DN, "0", NULL);
	char *ca = export_to(store, dir, "root", 0, "ca.pem");
	char *csr = foreign_csr(dir, "other.csr");
	char *client = cli_path(dir, "client.pem"), *server = cli_path(dir, "server.pem");
	cli_ok(&r, NULL, store,
	       CLI_ARGS("ca", "sign", "root", csr, "--profile", "client", "--days", "30", "--out",
	                client));
	kwt_result_free(&r);
	cr_assert_eq(cli_status("openssl verify -CAfile '%s' '%s' >/dev/null 2>&1", ca, client), 0);
	char *want = cli_out("openssl req -in '%s' -noout -subject -nameopt RFC2253", csr);
	char *got = cli_out("openssl x509 -in '%s' -noout -subject -nameopt RFC2253", client);
	cr_assert_str_eq(got, want);
	char *text = cli_out("openssl x509 -in '%s' -noout -text", client);
	cli_assert_has(text, "DNS:other.example, IP Address:10.0.0.5");
	cli_assert_has(text, "TLS Web Client Authentication");
	cli_assert_has(text, "CA:FALSE");
	cr_assert(strstr(text, "CA:TRUE") == NULL && strstr(text, "Code Signing") == NULL &&
	              strstr(text, "Server Authentication") == NULL,
	          "requested extensions were copied: %s", text);
	assert_issued_by_dn(client, ca);
	/* the default profile is server */
	cli_ok(&r, NULL, store, CLI_ARGS("ca", "sign", "root", csr));
	cr_assert(strstr(r.out, "BEGIN CERTIFICATE") != NULL);
	cr_assert_eq(cli_status("printf '%%s' '%s' > '%s'", r.out, server), 0);
	kwt_result_free(&r);
	char *text2 = cli_out("openssl x509 -in '%s' -noout -text", server);
	cli_assert_has(text2, "TLS Web Server Authentication");
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM ca_issued"), 2);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = 'ca.signed'"
	                                  " AND cert = 'root'"),
	             2);

	/* a CSR whose self-signature is broken, garbage, a bad profile: refused */
	char *bad = cli_path(dir, "bad.der");
	cr_assert_eq(
	    cli_status("openssl req -in '%s' -outform DER -out '%s' && n=$(stat -c%%s '%s')"
	               " && b=$(od -An -tu1 -j$((n-1)) -N1 '%s' | tr -d ' ') &&"
	               " printf \"\\\\$(printf %%03o $((b ^ 1)))\" |"
	               " dd of='%s' bs=1 seek=$((n-1)) conv=notrunc 2>/dev/null",
	               csr, bad, bad, bad, bad),
	    0);
	/* (openssl 3.0's req -verify exits 0 either way: read what it says) */
	cr_assert_neq(cli_status("openssl req -in '%s' -inform DER -noout -verify 2>&1 |"
	                         " grep -q 'verify OK'",
	                         bad),
	              0, "the tampered CSR still verifies");
	cr_assert_eq(
	    cli_status("openssl req -in '%s' -noout -verify 2>&1 | grep -q 'verify OK'", csr), 0);
	CLI_REFUSED(store, 1, "self-signature does not verify", "ca", "sign", "root", bad);
	CLI_REFUSED(store, 1, "not a CSR", "ca", "sign", "root", ca);
	CLI_REFUSED(store, 2, "--profile is server or client", "ca", "sign", "root", csr,
	            "--profile", "email");
	CLI_REFUSED(store, 1, "unknown CA 'nosuch'", "ca", "sign", "nosuch", csr);
	free(bad);
	free(text2);
	free(text);
	free(got);
	free(want);
	free(server);
	free(client);
	free(csr);
	free(ca);
	free(dir);
	free(store);
}

static char *serial_of(const char *pem)
{
	char *s = cli_out("openssl x509 -in '%s' -noout -serial", pem);
	cr_assert(strncmp(s, "serial=", 7) == 0);
	memmove(s, s + 7, strlen(s + 7) + 1);
	return s;
}

static char *crl_to(const char *store, const char *dir, const char *file, const char *number)
{
	kwt_result r;
	char *crl = cli_path(dir, file), want[128];
	cli_ok(&r, NULL, store, CLI_ARGS("ca", "crl", "root", "--out", crl));
	snprintf(want, sizeof(want), "wrote CRL number %s of CA root", number);
	cli_assert_has(r.out, want);
	kwt_result_free(&r);
	char *text = cli_out("openssl crl -in '%s' -noout -text", crl);
	char *n = cli_line_after(text, "X509v3 CRL Number");
	cr_assert(n && strcmp(n, number) == 0, "CRL number %s, expected %s", n, number);
	free(n);
	free(text);
	return crl;
}

Test(local_ca, revoked_serials_are_on_the_crl_signed_in_hardware)
{
	char *store = kwt_store_new(1, 1), *dir = kwt_tmpdir("localca");
	kwt_result r;
	create_ca(store, "root", "hsm", ROOT_DN, "0", NULL);
	create_leaf(store, "web1", "tpm", "ca:root", "90");
	create_leaf(store, "web2", "tpm", "ca:root", "90");
	create_leaf(store, "plain", "hsm", "self", "90");
	char *ca = export_to(store, dir, "root", 0, "ca.pem");
	char *l1 = export_to(store, dir, "web1", 0, "l1.pem");
	char *l2 = export_to(store, dir, "web2", 0, "l2.pem");
	char *s1 = serial_of(l1), *s2 = serial_of(l2);

	/* nothing revoked yet: CRL number 1, empty, and both leaves pass -crl_check */
	char *crl0 = crl_to(store, dir, "crl0.pem", "1");
	cr_assert_eq(
	    cli_status("openssl crl -in '%s' -CAfile '%s' -noout 2>&1 | grep -q 'verify OK'", crl0,
	               ca),
	    0);
	cr_assert_eq(
	    cli_status("openssl verify -crl_check -CRLfile '%s' -CAfile '%s' '%s' >/dev/null"
	               " 2>&1",
	               crl0, ca, l1),
	    0);

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "revoke", "web1", "--reason", "keyCompromise"));
	kwt_result_free(&r);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = 'cert.revoked'"
	                                  " AND cert = 'web1'"),
	             1);
	CLI_REFUSED(store, 1, "already revoked", "cert", "revoke", "web1");
	CLI_REFUSED(store, 1, "not issued by a keyward CA", "cert", "revoke", "plain");
	CLI_REFUSED(store, 2, "unknown revocation reason", "cert", "revoke", "web2", "--reason",
	            "because");

	char *crl1 = crl_to(store, dir, "crl1.pem", "2");
	cr_assert_eq(
	    cli_status("openssl crl -in '%s' -CAfile '%s' -noout 2>&1 | grep -q 'verify OK'", crl1,
	               ca),
	    0);
	char *text = cli_out("openssl crl -in '%s' -noout -text", crl1);
	char want[160];
	snprintf(want, sizeof(want), "Serial Number: %s", s1);
	cli_assert_has(text, want);
	cli_assert_has(text, "Key Compromise");
	cli_assert_has(text, "X509v3 Authority Key Identifier");
	snprintf(want, sizeof(want), "Serial Number: %s", s2);
	cr_assert(strstr(text, want) == NULL, "the CRL lists a serial not revoked: %s", text);
	char *v1 = cli_out("openssl verify -crl_check -CRLfile '%s' -CAfile '%s' '%s' 2>&1; echo "
	                   "rc=$?",
	                   crl1, ca, l1);
	cli_assert_has(v1, "certificate revoked");
	cr_assert(strstr(v1, "rc=0") == NULL, "a revoked certificate verifies: %s", v1);
	cr_assert_eq(
	    cli_status("openssl verify -crl_check -CRLfile '%s' -CAfile '%s' '%s' >/dev/null"
	               " 2>&1",
	               crl1, ca, l2),
	    0);

	/* a CSR-signed certificate, revoked by serial (colon form) */
	char *csr = foreign_csr(dir, "other.csr"), *other = cli_path(dir, "other.pem");
	cli_ok(&r, NULL, store, CLI_ARGS("ca", "sign", "root", csr, "--out", other));
	kwt_result_free(&r);
	char *so = serial_of(other);
	char colons[256] = "";
	for (size_t i = 0; so[i]; i++)
		snprintf(colons + strlen(colons), sizeof(colons) - strlen(colons), "%s%c",
		         i && i % 2 == 0 ? ":" : "", so[i]);
	CLI_REFUSED(store, 1, "issued no certificate with serial", "ca", "revoke", "root", "0abc");
	cli_ok(&r, NULL, store, CLI_ARGS("ca", "revoke", "root", colons, "--reason", "superseded"));
	kwt_result_free(&r);
	char *crl2 = crl_to(store, dir, "crl2.pem", "3");
	char *text2 = cli_out("openssl crl -in '%s' -noout -text", crl2);
	snprintf(want, sizeof(want), "Serial Number: %s", so);
	cli_assert_has(text2, want);
	snprintf(want, sizeof(want), "Serial Number: %s", s1);
	cli_assert_has(text2, want);
	cli_assert_has(text2, "Superseded");
	char *v2 = cli_out("openssl verify -crl_check -CRLfile '%s' -CAfile '%s' '%s' 2>&1", crl2,
	                   ca, other);
	cli_assert_has(v2, "certificate revoked");
	cr_assert_eq(cli_sql_count(store, "SELECT crl_number FROM ca_crls"), 3);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = 'ca.crl'"), 3);
	cli_ok(&r, NULL, store, CLI_ARGS("audit", "verify"));
	kwt_result_free(&r);
	free(v2);
	free(text2);
	free(crl2);
	free(so);
	free(other);
	free(csr);
	free(v1);
	free(text);
	free(crl1);
	free(crl0);
	free(s1);
	free(s2);
	free(l1);
	free(l2);
	free(ca);
	free(dir);
	free(store);
}

/* The external root signs csr with the extensions in ext (an extfile's text). */
static char *root_signs(const cli_ca *ca, const char *csr, const char *out, const char *ext)
{
	char *path = cli_path(ca->dir, out);
	char *extfile = kwt_write_file(ca->dir, "x.ext", ext, strlen(ext), 0600);
	cr_assert_eq(cli_status("openssl x509 -req -in '%s' -CA '%s' -CAkey '%s/root.key' "
	                        "-CAcreateserial -days 1000 -extfile '%s' -out '%s' 2>/dev/null",
	                        csr, ca->root, ca->dir, extfile, path),
	             0);
	free(extfile);
	return path;
}

Test(local_ca, an_intermediate_in_hardware_under_an_external_root)
{
	char *store = kwt_store_new(1, 1);
	cli_ca ca = cli_ca_new();
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "corp", "--backend", "hsm", "--subject",
	                "CN=Keyward Issuing CA,O=Example", "--ca", "--pathlen", "0", "--issuer",
	                "unknown"));
	kwt_result_free(&r);
	char *csr = cli_csr_file(store, ca.dir, "corp", "corp.csr");
	char *text = cli_out("openssl req -in '%s' -noout -text", csr);
	cli_assert_has(text, "CA:TRUE, pathlen:0");
	cli_assert_has(text, "Certificate Sign");
	free(text);
	/* what a CA must not send back for it: an end-entity certificate, a CA
	 * certificate that may not sign */
	char *ee = root_signs(&ca, csr, "ee.pem", "basicConstraints=critical,CA:FALSE\n");
	CLI_REFUSED(store, 1, "asked for a CA certificate", "cert", "merge", "corp", ee);
	char *nosign = root_signs(&ca, csr, "nosign.pem",
	                          "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,"
	                          "digitalSignature\n");
	CLI_REFUSED(store, 1, "no keyCertSign", "cert", "merge", "corp", nosign);
	char *good = root_signs(&ca, csr, "corp.pem",
	                        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,"
	                        "keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
	                        "authorityKeyIdentifier=keyid:always\n");
	const char *parts[] = {good, ca.root, NULL};
	char *bundle = cli_cat(ca.dir, "bundle.pem", parts);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "merge", "corp", bundle));
	kwt_result_free(&r);
	/* it issues, its key in the token, to a TPM key; the chain reaches the root */
	create_leaf(store, "web", "tpm", "ca:corp", "90");
	char *leaf = export_to(store, ca.dir, "web", 0, "web.pem");
	char *full = export_to(store, ca.dir, "web", 1, "web-full.pem");
	cr_assert_eq(cli_status("openssl verify -CAfile '%s' -untrusted '%s' '%s' >/dev/null",
	                        ca.root, full, leaf),
	             0, "the leaf does not verify up to the external root");
	cr_assert_eq(cli_status("grep -c 'BEGIN CERTIFICATE' '%s' | grep -qx 3", full), 0,
	             "export --chain is not leaf, keyward CA, root");
	free(full);
	free(leaf);
	free(bundle);
	free(good);
	free(nosign);
	free(ee);
	free(csr);
	cli_ca_free(&ca);
	free(store);
}
