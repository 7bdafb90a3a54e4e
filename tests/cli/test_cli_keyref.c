/* keyward cert key-ref: references other software can use, never key material. */
#include "cli_cert_check.h"

#include <keyward/key.h>

static char *tmpfile_in(const char *store, const char *name)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/../%s", store, name) > 0);
	return p;
}

static char *create(const char *backend, const char *name, const char *type)
{
	char *store = kwt_store_new(1, 1);
	cli_create(store, CLI_NOW, name, backend, type, "CN=ref.test", 30, NULL);
	return store;
}

Test(keyref, keyward_format_names_the_certificate_and_store_only)
{
	char *store = create("tpm", "web", "ec-p256");
	char *path = tmpfile_in(store, "web.ref");
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "key-ref", "web", "--out", path));
	kwt_result_free(&r);
	size_t len = 0;
	char *pem = kwt_read_file(path, &len);
	cr_assert_not_null(pem);
	cr_assert(strncmp(pem, "-----BEGIN " KW_KEYREF_PEM_NAME "-----\n", 38) == 0, "%s", pem);
	cr_assert(len < 400, "a reference is small: %zu bytes", len);
	/* decode it the way the provider will */
	char *der_hex = cli_out("openssl base64 -d -in '%s' | od -An -tx1 | tr -d ' \\n'", path);
	size_t n = strlen(der_hex) / 2;
	unsigned char *der = malloc(n);
	for (size_t i = 0; i < n; i++)
		der[i] = (unsigned char)(cli_hexval(der_hex[2 * i]) << 4 |
		                         cli_hexval(der_hex[2 * i + 1]));
	char *name = NULL, *dir = NULL;
	int version = -1;
	cr_assert_eq(kw_keyref_decode(der, n, &name, &dir, &version), KW_OK, "%s",
	             kw_error_message());
	cr_assert_str_eq(name, "web");
	char *real = realpath(store, NULL);
	cr_assert_str_eq(dir, real);
	cr_assert_eq(version, 0, "follows renewals: no version pinned");
	/* no key material: the TPM blob is not in it */
	json_t *show = cli_show(store, "web", 0);
	cr_assert_eq(cli_status("grep -q PRIVATE '%s'", path), 1);
	json_decref(show);
	struct stat st;
	cr_assert(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
	free(real);
	free(name);
	free(dir);
	free(der);
	free(der_hex);
	free(pem);
	free(path);
	free(store);
}

Test(keyref, tss2_file_loads_in_tpm2_openssl_and_signs)
{
	char *store = create("tpm", "web", "ec-p256");
	char *ref = tmpfile_in(store, "web.tss2"), *cert = tmpfile_in(store, "web.pem");
	char *msg = tmpfile_in(store, "msg"), *sig = tmpfile_in(store, "sig");
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "key-ref", "web", "--format", "tss2", "--out", ref));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "web", "--out", cert));
	kwt_result_free(&r);
	struct stat st;
	cr_assert(stat(ref, &st) == 0 && (st.st_mode & 0777) == 0600);
	cr_assert_eq(cli_status("grep -q 'BEGIN TSS2 PRIVATE KEY' '%s'", ref), 0);
	cr_assert_eq(cli_status("echo payload > '%s'", msg), 0);
	const char *tcti = kwt_env("KW_TEST_TCTI");
	cr_assert_eq(
	    cli_status("TPM2OPENSSL_TCTI='%s' openssl dgst -provider tpm2 -provider default "
	               "-propquery '?provider=tpm2' -sha256 -sign '%s' -out '%s' '%s'",
	               tcti, ref, sig, msg),
	    0, "tpm2-openssl could not sign with the TSS2 file");
	cr_assert_eq(cli_status("openssl x509 -in '%s' -pubkey -noout > '%s.pub' && "
	                        "openssl dgst -sha256 -verify '%s.pub' -signature '%s' '%s' "
	                        ">/dev/null",
	                        cert, cert, cert, sig, msg),
	             0, "tpm2-openssl's signature does not verify with keyward's certificate");
	char *pub = cli_out("TPM2OPENSSL_TCTI='%s' openssl pkey -provider tpm2 -provider default "
	                    "-propquery '?provider=tpm2' -in '%s' -pubout",
	                    tcti, ref);
	char *want = cli_out("cat '%s.pub'", cert);
	cr_assert_str_eq(pub, want);
	free(pub);
	free(want);
	free(ref);
	free(cert);
	free(msg);
	free(sig);
	free(store);
}

Test(keyref, pkcs11_uri_finds_key_and_certificate_with_standard_tools)
{
	char *store = create("hsm", "web", "ec-p256");
	char *cert = tmpfile_in(store, "web.pem");
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "key-ref", "web", "--format", "pkcs11-uri"));
	char *uri = cli_trim(strdup(r.out));
	kwt_result_free(&r);
	cr_assert(strncmp(uri, "pkcs11:", 7) == 0, "%s", uri);
	cr_assert(strstr(uri, "token=kw-test") != NULL, "%s", uri);
	cr_assert(strstr(uri, "object=keyward%3Aweb") != NULL, "%s", uri);
	cr_assert(strstr(uri, "type=private") != NULL, "%s", uri);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "web", "--out", cert));
	kwt_result_free(&r);
	/* p11tool finds the private key by the URI, and the certificate and public key by it
	 * without the type */
	char *priv = cli_out("p11tool --provider '%s' --login --set-pin='%s' --list-all '%s' 2>&1",
	                     kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_PIN"), uri);
	cr_assert(strstr(priv, "Type: Private key") != NULL, "%s", priv);
	char *any = strdup(uri);
	*strstr(any, ";type=private") = '\0';
	char *all = cli_out("p11tool --provider '%s' --login --set-pin='%s' --list-all '%s' 2>&1",
	                    kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_PIN"), any);
	cr_assert(strstr(all, "Type: X.509 Certificate") != NULL, "%s", all);
	cr_assert(strstr(all, "Type: Public key") != NULL, "%s", all);
	/* the certificate on the token is keyward's current one, byte for byte */
	char *onp11 = cli_out("p11tool --provider '%s' --export '%s;type=cert' 2>/dev/null | "
	                      "openssl x509 -outform DER | sha256sum",
	                      kwt_env("KW_TEST_P11_MODULE"), any);
	char *ours = cli_out("openssl x509 -in '%s' -outform DER | sha256sum", cert);
	cr_assert_str_eq(onp11, ours);
	free(onp11);
	free(ours);
	/* after a renewal that keeps the key, the token holds the new certificate only */
	int objects = kwt_p11_object_count();
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "web", "--reuse-key"));
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects, "the certificate object was replaced");
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "web", "--out", cert));
	kwt_result_free(&r);
	onp11 = cli_out("p11tool --provider '%s' --export '%s;type=cert' 2>/dev/null | "
	                "openssl x509 -outform DER | sha256sum",
	                kwt_env("KW_TEST_P11_MODULE"), any);
	ours = cli_out("openssl x509 -in '%s' -outform DER | sha256sum", cert);
	cr_assert_str_eq(onp11, ours, "the token still has the old certificate");
	free(onp11);
	free(ours);
	free(priv);
	free(all);
	free(any);
	free(uri);
	free(cert);
	free(store);
}

Test(keyref, formats_the_backend_lacks_and_unknown_formats_are_refused)
{
	char *store = create("tpm", "t", "ec-p256");
	cli_create(store, CLI_NOW, "h", "hsm", "ec-p256", "CN=h", 30, NULL);
	cli_refused(store, NULL, 1, "no 'pkcs11-uri' reference",
	            CLI_ARGS("cert", "key-ref", "t", "--format", "pkcs11-uri"), NULL);
	cli_refused(store, NULL, 1, "no 'tss2' reference",
	            CLI_ARGS("cert", "key-ref", "h", "--format", "tss2"), NULL);
	cli_refused(store, NULL, 2, "unknown key reference format",
	            CLI_ARGS("cert", "key-ref", "t", "--format", "pem"), NULL);
	cli_refused(store, NULL, 1, "unknown certificate", CLI_ARGS("cert", "key-ref", "nope"),
	            NULL);
	free(store);
}
