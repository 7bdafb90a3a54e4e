/*
 * keyward CLI end to end: cert adopt (a key pkcs11-tool made on the SoftHSM
 * token "hsm", its certificate self-signed through the libp11 engine). The
 * token's objects are counted before and after: adopt creates and destroys
 * nothing.
 */
#include "cli_devices.h"

/* pkcs11-tool on the test token, logged in. */
static int p11(const char *args)
{
	return kwt_sh("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' %s "
	              ">/dev/null 2>&1",
	              kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	              kwt_env("KW_TEST_P11_PIN"), args);
}

/* An EC P-256 key pair made by pkcs11-tool (sensitive unless extractable). */
static void keygen(const char *id, const char *label, int extractable)
{
	char args[512];
	snprintf(args, sizeof(args), "--keypairgen --key-type EC:prime256v1 --id %s --label %s %s",
	         id, label, extractable ? "--extractable" : "--sensitive");
	cr_assert_eq(p11(args), 0, "pkcs11-tool makes key %s", id);
}

static char *key_uri(const char *id_pct, const char *label)
{
	char *uri = NULL;
	cr_assert(asprintf(&uri, "pkcs11:token=%s;id=%s;object=%s;type=private",
	                   kwt_env("KW_TEST_P11_TOKEN"), id_pct, label) > 0);
	return uri;
}

/* A self-signed certificate for the token key (dir/cert.pem), signed on the
 * token through the libp11 engine. */
static char *cert_for(const char *id_pct, const char *cn)
{
	char *dir = kwt_tmpdir("adopt");
	cr_assert_eq(
	    kwt_sh("cd '%s' && PKCS11_MODULE_PATH='%s' openssl req -new -x509 -engine pkcs11 "
	           "-keyform engine -key 'pkcs11:token=%s;id=%s;type=private;pin-value=%s' "
	           "-subj /CN=%s/O=Adopt -days 30 -addext subjectAltName=DNS:%s "
	           "-out cert.pem >/dev/null 2>&1",
	           dir, kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"), id_pct,
	           kwt_env("KW_TEST_P11_PIN"), cn, cn),
	    0, "openssl signs a certificate with token key %s", id_pct);
	return dir;
}

Test(adopt, hsm_pkcs11_tool_key_with_cert_file, .timeout = 120)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	keygen("a1b2c3", "adopt1", 0);
	char *dir = cert_for("%a1%b2%c3", "adopt1.example");
	char *uri = key_uri("%a1%b2%c3", "adopt1");
	char cert[600];
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	int objects0 = kwt_p11_object_count();

	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "adopt", "ad", "--backend", "hsm", "--key-uri", uri, "--cert", cert,
	                "--json"));
	json_t *res = cli_json(r.out, "cert adopt --json");
	cr_assert_str_eq(cli_js(res, "key_type"), "ec-p256");
	cr_assert_str_eq(cli_js(res, "certificate_source"), "file");
	cr_assert_str_eq(cli_js(res, "issuer"), "self");
	cli_assert_jbool(res, "exportable", 0, "adopt");
	cli_assert_jbool(res, "generated_on_device", 1, "adopt: pkcs11-tool made it on the token");
	json_decref(res);
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects0, "adopt changed the token");

	json_t *show = cli_show(store, "ad", 0);
	char *fp = cli_out("openssl x509 -in '%s' -noout -fingerprint -sha256", cert);
	cr_assert_str_eq(cli_js(show, "thumbprint_sha256"), cli_hex_norm(fp));
	cr_assert_str_eq(cli_js(show, "subject"), "O=Adopt,CN=adopt1.example");
	json_decref(show);
	free(fp);
	char *dump = kwt_store_dump(store);
	cr_assert(strstr(dump, "cert.adopted") != NULL, "no cert.adopted event");
	free(dump);

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "verify", "ad", "--json"));
	json_t *ver = cli_json(r.out, "cert verify --json");
	cli_assert_jbool(ver, "exportable", 0, "verify");
	cli_assert_jbool(ver, "generated_on_device", 1, "verify: CKA_LOCAL");
	json_decref(ver);
	kwt_result_free(&r);

	cli_assert_device_signs_for(store, "ad", dir);
	cr_assert_eq(kwt_p11_object_count(), objects0, "signing changed the token");
	free(uri);
	free(dir);
	free(store);
}

Test(adopt, hsm_certificate_from_the_token, .timeout = 120)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	keygen("a2b2c3", "adopt2", 0);
	char *dir = cert_for("%a2%b2%c3", "adopt2.example");
	char args[700];
	snprintf(args, sizeof(args),
	         "--write-object '%s/cert.der' --type cert --id a2b2c3 --label adopt2", dir);
	cr_assert_eq(
	    kwt_sh("openssl x509 -in '%s/cert.pem' -outform DER -out '%s/cert.der'", dir, dir), 0);
	cr_assert_eq(p11(args), 0, "pkcs11-tool writes the certificate");
	char *uri = key_uri("%a2%b2%c3", "adopt2");
	int objects0 = kwt_p11_object_count();

	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "adopt", "ad2", "--backend", "hsm", "--key-uri", uri, "--json"));
	json_t *res = cli_json(r.out, "cert adopt --json");
	cr_assert_str_eq(cli_js(res, "certificate_source"), "device");
	json_decref(res);
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects0, "adopt changed the token");
	cli_assert_device_signs_for(store, "ad2", dir);
	free(uri);
	free(dir);
	free(store);
}

Test(adopt, hsm_refusals, .timeout = 120)
{
	char *store = kwt_store_new(0, 1);
	keygen("a3b2c3", "adopt3", 0);
	keygen("a4b2c3", "adopt3", 0); /* same label: object=adopt3 names two */
	keygen("a5b2c3", "adopt5", 1); /* extractable */
	char *dir = cert_for("%a3%b2%c3", "adopt3.example");
	char *other = cert_for("%a4%b2%c3", "adopt4.example");
	char cert[600], wrong[600], garbage[600];
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(wrong, sizeof(wrong), "%s/cert.pem", other);
	snprintf(garbage, sizeof(garbage), "%s/garbage", dir);
	cr_assert_eq(kwt_sh("head -c 2000 /dev/urandom > '%s'", garbage), 0);
	char *good = key_uri("%a3%b2%c3", "adopt3");
	char *missing = key_uri("%ff%ee", "nothere");
	char *extractable = key_uri("%a5%b2%c3", "adopt5");
	char two[300];
	snprintf(two, sizeof(two), "pkcs11:token=%s;object=adopt3;type=private",
	         kwt_env("KW_TEST_P11_TOKEN"));

	CLI_REFUSED(store, 2, "bad PKCS#11 URI", "cert", "adopt", "x", "--backend", "hsm",
	            "--key-uri", "file:/nothing", "--cert", cert);
	CLI_REFUSED(store, 1, "no private key matching", "cert", "adopt", "x", "--backend", "hsm",
	            "--key-uri", missing, "--cert", cert);
	CLI_REFUSED(store, 1, "names another token", "cert", "adopt", "x", "--backend", "hsm",
	            "--key-uri", "pkcs11:token=elsewhere;id=%a3%b2%c3;type=private", "--cert",
	            cert);
	CLI_REFUSED(store, 1, "several private keys", "cert", "adopt", "x", "--backend", "hsm",
	            "--key-uri", two, "--cert", cert);
	CLI_REFUSED(store, 1, "does not match", "cert", "adopt", "x", "--backend", "hsm",
	            "--key-uri", good, "--cert", wrong);
	CLI_REFUSED(store, 1, "no PEM certificate", "cert", "adopt", "x", "--backend", "hsm",
	            "--key-uri", good, "--cert", garbage);
	CLI_REFUSED(store, 1, "keeps no certificate", "cert", "adopt", "x", "--backend", "hsm",
	            "--key-uri", good);
	CLI_REFUSED(store, 1, "can leave the device", "cert", "adopt", "x", "--backend", "hsm",
	            "--key-uri", extractable, "--cert", cert);
	CLI_REFUSED(store, 2, "but backend 'hsm' is pkcs11", "cert", "adopt", "x", "--backend",
	            "hsm", "--tss2", garbage, "--cert", cert);
	CLI_REFUSED(store, 2, "exactly one of", "cert", "adopt", "x", "--backend", "hsm", "--cert",
	            cert);
	free(good);
	free(missing);
	free(extractable);
	free(dir);
	free(other);
	free(store);
}

/* ---- TPM: a key tpm2-openssl made (a TSS2 PRIVATE KEY file) ---- */

/* dir/key.tss2 and its self-signed dir/cert.pem, both by tpm2-openssl. */
static char *tpm2_openssl_key(const char *cn)
{
	char *dir = kwt_tmpdir("adopt-tpm");
	cr_assert_eq(kwt_sh("cd '%s' && export TPM2OPENSSL_TCTI='%s' && "
	                    "openssl genpkey -provider tpm2 -provider default -algorithm EC "
	                    "-pkeyopt group:P-256 -out key.tss2 >/dev/null 2>&1 && "
	                    "openssl req -provider tpm2 -provider default -propquery "
	                    "'?provider=tpm2' -new -x509 -key key.tss2 -subj /CN=%s/O=Adopt "
	                    "-days 30 -out cert.pem >/dev/null 2>&1",
	                    dir, kwt_env("KW_TEST_TCTI"), cn),
	             0, "tpm2-openssl makes a key and its certificate");
	return dir;
}

Test(adopt, tpm_tpm2_openssl_key, .timeout = 120)
{
	kwt_result r;
	char *store = kwt_store_new(1, 0);
	char *dir = tpm2_openssl_key("tpm.example");
	char key[600], cert[600];
	snprintf(key, sizeof(key), "%s/key.tss2", dir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	size_t len0 = 0, len1 = 0;
	char *before = kwt_read_file(key, &len0);

	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "adopt", "tk", "--backend", "tpm", "--tss2", key, "--cert", cert,
	                "--json"));
	json_t *res = cli_json(r.out, "cert adopt --json");
	cr_assert_str_eq(cli_js(res, "key_type"), "ec-p256");
	cli_assert_jbool(res, "exportable", 0, "adopt");
	cli_assert_jbool(res, "generated_on_device", 1, "adopt: made in the TPM");
	json_decref(res);
	kwt_result_free(&r);
	char *after = kwt_read_file(key, &len1);
	cr_assert(after != NULL && len0 == len1 && memcmp(before, after, len0) == 0,
	          "adopt changed the key file");
	char *dump = kwt_store_dump(store);
	cr_assert(strstr(dump, "cert.adopted") != NULL, "no cert.adopted event");
	free(dump);
	cli_assert_device_signs_for(store, "tk", dir);
	free(before);
	free(after);
	free(dir);
	free(store);
}

Test(adopt, tpm_refusals, .timeout = 120)
{
	char *store = kwt_store_new(1, 0);
	char *dir = tpm2_openssl_key("tpm3.example");
	char *other = tpm2_openssl_key("tpm4.example");
	char key[600], cert[600], wrong[600], garbage[600], foreign[600];
	snprintf(key, sizeof(key), "%s/key.tss2", dir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(wrong, sizeof(wrong), "%s/cert.pem", other);
	snprintf(garbage, sizeof(garbage), "%s/garbage", dir);
	snprintf(foreign, sizeof(foreign), "%s/foreign.tss2", dir);
	cr_assert_eq(kwt_sh("head -c 2000 /dev/urandom > '%s'", garbage), 0);
	/* the same file with its private area damaged: what another TPM's
	 * wrapping looks like to this one */
	cr_assert_eq(kwt_sh("cd '%s' && openssl asn1parse -in key.tss2 -out k.der >/dev/null && "
	                    "python3 -c \"import sys; d=bytearray(open('k.der','rb').read()); "
	                    "d[-8]^=0xff; open('k2.der','wb').write(d)\" && "
	                    "(echo '-----BEGIN TSS2 PRIVATE KEY-----'; base64 k2.der; "
	                    "echo '-----END TSS2 PRIVATE KEY-----') > foreign.tss2",
	                    dir),
	             0);

	CLI_REFUSED(store, 1, "not a 'TSS2 PRIVATE KEY'", "cert", "adopt", "x", "--backend", "tpm",
	            "--tss2", garbage, "--cert", cert);
	CLI_REFUSED(store, 1, "does not load", "cert", "adopt", "x", "--backend", "tpm", "--tss2",
	            foreign, "--cert", cert);
	CLI_REFUSED(store, 1, "does not match", "cert", "adopt", "x", "--backend", "tpm", "--tss2",
	            key, "--cert", wrong);
	CLI_REFUSED(store, 2, "give --cert", "cert", "adopt", "x", "--backend", "tpm", "--tss2",
	            key);
	free(dir);
	free(other);
	free(store);
}
