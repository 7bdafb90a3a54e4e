/*
 * keyward.so under an unmodified TLS server: openssl s_server signs its
 * handshakes with a key in the swtpm or the SoftHSM token (keyward:NAME, a
 * reference file, or providers from openssl.cnf), openssl s_client checks
 * them against the certificate and data goes both ways (tests/provider/
 * tls-exchange). Also: KEYWARD_DEBUG tracing on the openssl command line.
 */
#include "provider_test.h"

/* Runs a shell command line; status and output (stdout + stderr) in r. */
static void sh(kwt_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sh(kwt_result *r, const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	char *argv[] = {"/bin/bash", "-c", cmd, NULL};
	kwt_run(r, argv, NULL);
	free(cmd);
}

static void setup(void)
{
	cr_assert(setenv("KEYWARD_STORE", kwpt_store(), 1) == 0);
}

/* A handshake and an echo with key for certificate name; the client
 * negotiates with client_args and must see signature type sigtype. */
static void exchange(const char *cnf, const char *name, const char *key, const char *client_args,
                     const char *proto, const char *sigtype)
{
	kwt_result r;
	char want[128];
	sh(&r, "'%s/tls-exchange' %s%s '%s' '%s' %s", kwt_env("KW_TEST_PROVIDER_SOURCE"),
	   cnf ? "--cnf " : "", cnf ? cnf : "", kwpt_cert_pem(name), key, client_args);
	cr_assert_eq(r.status, 0, "%s %s %s: %s%s", name, key, client_args, r.out, r.err);
	snprintf(want, sizeof(want), "protocol=%s sigtype=%s echo=ok", proto, sigtype);
	cr_assert(strstr(r.out, want), "%s %s %s: want '%s', got: %s", name, key, client_args, want,
	          r.out);
	cr_log_info("%s %s %s: %s", name, key, client_args, r.out);
	kwt_result_free(&r);
}

static void serve_all(const char *backend)
{
	char name[64], uri[80];
	setup();
	for (size_t t = 0; t < 3; t++) {
		int rsa = strncmp(kwpt_types[t], "rsa", 3) == 0;
		snprintf(name, sizeof(name), "%s-%s", backend, kwpt_types[t]);
		snprintf(uri, sizeof(uri), "keyward:%s", name);
		exchange(NULL, name, uri, "-tls1_3", "TLSv1.3", rsa ? "RSA-PSS" : "ECDSA");
		exchange(NULL, name, uri, "-tls1_2", "TLSv1.2", rsa ? "RSA-PSS" : "ECDSA");
		if (!rsa)
			continue;
		exchange(NULL, name, uri, "-tls1_2 -sigalgs RSA+SHA256", "TLSv1.2", "RSA");
		exchange(NULL, name, uri, "-tls1_2 -sigalgs rsa_pss_rsae_sha256", "TLSv1.2",
		         "RSA-PSS");
		exchange(NULL, name, uri, "-tls1_3 -sigalgs rsa_pss_rsae_sha384", "TLSv1.3",
		         "RSA-PSS");
	}
}

Test(provider_tls, tpm_keys_serve_tls13_and_tls12, .timeout = 300)
{
	serve_all("tpm");
}

Test(provider_tls, hsm_keys_serve_tls13_and_tls12, .timeout = 300)
{
	serve_all("hsm");
}

/* -key file.pem: what nginx's ssl_certificate_key and haproxy read. */
Test(provider_tls, reference_files_serve_as_keys, .timeout = 300)
{
	setup();
	cr_assert(unsetenv("KEYWARD_STORE") == 0); /* the reference names its store */
	exchange(NULL, "tpm-ec-p256", kwpt_ref_pem("tpm-ec-p256"), "-tls1_3", "TLSv1.3", "ECDSA");
	exchange(NULL, "hsm-rsa-2048", kwpt_ref_pem("hsm-rsa-2048"), "-tls1_2", "TLSv1.2",
	         "RSA-PSS");
	exchange(NULL, "tpm-rsa-2048", kwpt_ref_pem("tpm-rsa-2048"), "-tls1_2 -sigalgs RSA+SHA256",
	         "TLSv1.2", "RSA");
}

/* openssl.cnf activates keyward (listed first, with its store) and default. */
static char *write_cnf(void)
{
	char *dir = kwt_tmpdir("cnf"), *text = NULL;
	cr_assert(asprintf(&text,
	                   "openssl_conf = openssl_init\n"
	                   "[openssl_init]\nproviders = provider_sect\n"
	                   "[provider_sect]\nkeyward = keyward_sect\ndefault = default_sect\n"
	                   "[keyward_sect]\nactivate = 1\nstore = %s\n"
	                   "[default_sect]\nactivate = 1\n",
	                   kwpt_store()) > 0);
	char *path = kwt_write_file(dir, "openssl.cnf", text, strlen(text), 0644);
	free(text);
	free(dir);
	return path;
}

Test(provider_tls, openssl_cnf_activates_the_provider_with_its_store, .timeout = 300)
{
	kwt_result r;
	char *cnf = write_cnf();
	kwpt_store();
	cr_assert(unsetenv("KEYWARD_STORE") == 0);
	exchange(cnf, "hsm-ec-p384", "keyward:hsm-ec-p384", "-tls1_2", "TLSv1.2", "ECDSA");
	exchange(cnf, "tpm-rsa-2048", "keyward:tpm-rsa-2048", "-tls1_3", "TLSv1.3", "RSA-PSS");
	exchange(cnf, "hsm-ec-p256", kwpt_ref_pem("hsm-ec-p256"), "-tls1_3", "TLSv1.3", "ECDSA");
	/* software keys are still the default provider's business */
	sh(&r,
	   "OPENSSL_MODULES='%s' OPENSSL_CONF='%s' openssl genpkey -algorithm EC -pkeyopt "
	   "ec_paramgen_curve:P-256 | OPENSSL_CONF='%s' openssl pkey -noout -text",
	   kwt_env("KW_TEST_PROVIDER_DIR"), cnf, cnf);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "Private-Key: (256 bit)"), "%s", r.out);
	kwt_result_free(&r);
	free(cnf);
}

/* A handshake fails cleanly when the key cannot be loaded. */
Test(provider_tls, a_server_with_an_unknown_key_fails_with_its_name, .timeout = 120)
{
	kwt_result r;
	setup();
	sh(&r, "'%s/tls-exchange' '%s' keyward:nope -tls1_3", kwt_env("KW_TEST_PROVIDER_SOURCE"),
	   kwpt_cert_pem("hsm-ec-p256"));
	cr_assert_eq(r.status, 1, "%s", r.out);
	cr_assert(strstr(r.out, "unknown certificate 'nope'"), "%s", r.out);
	kwt_result_free(&r);
}

static void pkey_pubout(kwt_result *r, const char *debug, const char *uri)
{
	sh(r,
	   "%s OPENSSL_MODULES='%s' openssl pkey -provider keyward -provider default -in '%s' "
	   "-pubout",
	   debug, kwt_env("KW_TEST_PROVIDER_DIR"), uri);
}

static int count_prefixed(const char *text, const char *prefix)
{
	int n = 0;
	size_t len = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		n += strncmp(p, prefix, len) == 0;
	return n;
}

Test(provider_tls, keyward_debug_traces_each_call_and_is_silent_otherwise)
{
	kwt_result r;
	setup();
	pkey_pubout(&r, "KEYWARD_DEBUG=1", "keyward:hsm-ec-p256");
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "BEGIN PUBLIC KEY"));
	cr_assert(strstr(r.err, "keyward: provider_init"), "%s", r.err);
	cr_assert(strstr(r.err, "keyward: store_open keyward:hsm-ec-p256\n"), "%s", r.err);
	cr_assert(strstr(r.err, "keyward: keymgmt_load hsm-ec-p256\n"), "%s", r.err);
	cr_assert(strstr(r.err, "keyward: keymgmt_export"), "%s", r.err);
	/* every line of ours is one "keyward: " line */
	cr_assert_eq(count_prefixed(r.err, "keyward: "), kwt_count_lines(r.err), "%s", r.err);
	kwt_result_free(&r);

	pkey_pubout(&r, "KEYWARD_DEBUG=1", "keyward:nope");
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "keyward: error: unknown certificate 'nope'"), "%s", r.err);
	kwt_result_free(&r);

	pkey_pubout(&r, "", "keyward:hsm-ec-p256");
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "BEGIN PUBLIC KEY"));
	cr_assert_str_eq(r.err, "", "printed without KEYWARD_DEBUG: %s", r.err);
	kwt_result_free(&r);

	pkey_pubout(&r, "KEYWARD_DEBUG=0", "keyward:tpm-ec-p256");
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(count_prefixed(r.err, "keyward:"), 0, "%s", r.err);
	kwt_result_free(&r);
}

/*
 * nginx 1.22 reads ssl_certificate_key with PEM_read_bio_PrivateKey in its
 * master, and its workers (forked) sign the handshakes. The token only: on
 * this program's TPM (swtpm without a resource manager) several processes
 * cannot keep keys loaded, and over tpm2-abrmd core refuses children of a
 * process that used it (see test_provider_concurrency).
 */
Test(provider_tls, nginx_workers_serve_with_a_reference_file, .timeout = 300)
{
	kwt_result r;
	char *cnf = write_cnf();
	kwpt_store();
	cr_assert(unsetenv("KEYWARD_STORE") == 0);
	sh(&r, "'%s/nginx-serve' '%s' '%s' '%s' 9", kwt_env("KW_TEST_PROVIDER_SOURCE"), cnf,
	   kwpt_cert_pem("hsm-ec-p256"), kwpt_ref_pem("hsm-ec-p256"));
	if (r.status == 77)
		kwt_skip("nginx or curl is not installed");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "ok 9"), "%s", r.out);
	kwt_result_free(&r);
	free(cnf);
}

static void swtpm_back(void)
{
	kwt_swtpm_start();
}

/* KEYWARD_DEBUG shows a device's own error, decoded (here tpm2-tss's). */
Test(provider_tls, keyward_debug_shows_the_decoded_device_error, .fini = swtpm_back)
{
	kwt_result r;
	setup();
	kwt_swtpm_stop();
	pkey_pubout(&r, "KEYWARD_DEBUG=1", "keyward:tpm-ec-p256");
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "keyward: error: cannot reach the TPM through TCTI") != NULL, "%s",
	          r.err);
	cr_assert(strstr(r.err, "tcti:") != NULL, "no decoded TSS2 response code: %s", r.err);
	kwt_result_free(&r);
}
