/*
 * keyward.so in-process: keys and certificates through OSSL_STORE and
 * reference files, signatures made in the device and checked by the default
 * provider against the certificate, what keymgmt tells OpenSSL, and the
 * failures (unknown, disabled, device gone) it must report clearly.
 */
#include "provider_test.h"

static const unsigned char msg[] = "keyward provider test message";

/* Loads the provider with the program's store as KEYWARD_STORE. */
static void setup(void)
{
	cr_assert(setenv("KEYWARD_STORE", kwpt_store(), 1) == 0);
	kwpt_load_provider();
}

static EVP_PKEY *load_key(const char *name, X509 **cert)
{
	char uri[128];
	EVP_PKEY *key = NULL;
	snprintf(uri, sizeof(uri), "keyward:%s", name);
	int opened = kwpt_store_load(uri, &key, cert);
	char *err = kwpt_errors();
	cr_assert(opened && key != NULL, "%s: no key: %s", uri, err);
	free(err);
	cr_assert_str_eq(kwpt_key_provider(key), "keyward");
	return key;
}

static const char *md_for(const char *type)
{
	return strcmp(type, "ec-p384") == 0 ? "SHA384" : "SHA256";
}

/* The key signs, the certificate's public key (default provider) verifies. */
static void sign_and_verify(EVP_PKEY *key, EVP_PKEY *pub, const char *md, kwpt_scheme s,
                            const char *salt)
{
	unsigned char *sig = NULL;
	size_t len = 0;
	cr_assert(kwpt_sign(key, md, s, salt, msg, sizeof(msg), &sig, &len), "sign %s: %s", md,
	          kwpt_errors());
	cr_assert_eq(ERR_peek_error(), 0, "signing left an error: %s", kwpt_errors());
	cr_assert(kwpt_verify(pub, md, s, salt, msg, sizeof(msg), sig, len),
	          "the certificate's key does not verify the %s signature", md);
	cr_assert(!kwpt_verify(pub, md, s, salt, msg, sizeof(msg) - 1, sig, len),
	          "a different message verified");
	ERR_clear_error();
	free(sig);
}

static void check_backend(const char *backend)
{
	setup();
	for (size_t t = 0; t < 3; t++) {
		char name[64];
		X509 *cert = NULL;
		snprintf(name, sizeof(name), "%s-%s", backend, kwpt_types[t]);
		EVP_PKEY *key = load_key(name, &cert);
		cr_assert(cert != NULL, "%s: the store gave no certificate", name);
		X509 *exported = kwpt_read_cert(kwpt_cert_pem(name));
		cr_assert_eq(X509_cmp(cert, exported), 0, "%s: not the certificate exported", name);
		ERR_clear_error();
		cr_assert_eq(X509_check_private_key(cert, key), 1, "%s: key and certificate differ",
		             name);
		/* a success leaves no error behind (SSL_get_error() reads the queue) */
		cr_assert_eq(ERR_peek_error(), 0, "%s: %s", name, kwpt_errors());
		EVP_PKEY *pub = X509_get0_pubkey(cert);
		cr_assert_str_eq(kwpt_key_provider(pub), "default");
		cr_assert_eq(EVP_PKEY_eq(key, pub), 1);
		if (t < 2) {
			sign_and_verify(key, pub, md_for(kwpt_types[t]), KWPT_ECDSA, NULL);
		} else {
			sign_and_verify(key, pub, "SHA256", KWPT_PKCS1, NULL);
			sign_and_verify(key, pub, "SHA256", KWPT_PSS, "digest");
			sign_and_verify(key, pub, "SHA384", KWPT_PSS, "digest");
		}
		X509_free(exported);
		X509_free(cert);
		EVP_PKEY_free(key);
	}
}

Test(provider_store, tpm_keys_sign_what_their_certificates_verify)
{
	check_backend("tpm");
}

Test(provider_store, hsm_keys_sign_what_their_certificates_verify)
{
	check_backend("hsm");
}

Test(provider_store, keymgmt_answers_what_libssl_asks)
{
	static const struct {
		const char *name, *group, *type, *digest;
		int bits, secbits, size;
	} want[] = {
	    {"tpm-ec-p256", "prime256v1", "EC", "SHA256", 256, 128, 72},
	    {"hsm-ec-p384", "secp384r1", "EC", "SHA384", 384, 192, 104},
	    {"hsm-rsa-2048", NULL, "RSA", "SHA256", 2048, 112, 256},
	};
	setup();
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		X509 *cert = NULL;
		EVP_PKEY *key = load_key(want[i].name, &cert);
		char group[64] = "", digest[64] = "";
		cr_assert(EVP_PKEY_is_a(key, want[i].type), "%s is not %s", want[i].name,
		          want[i].type);
		cr_assert_eq(EVP_PKEY_get_bits(key), want[i].bits);
		cr_assert_eq(EVP_PKEY_get_security_bits(key), want[i].secbits);
		cr_assert_eq(EVP_PKEY_get_size(key), want[i].size);
		cr_assert_gt(EVP_PKEY_get_default_digest_name(key, digest, sizeof(digest)), 0);
		cr_assert_str_eq(digest, want[i].digest);
		if (want[i].group) {
			cr_assert(EVP_PKEY_get_group_name(key, group, sizeof(group), NULL));
			cr_assert_str_eq(group, want[i].group);
			cr_assert_eq(EVP_PKEY_get_ec_point_conv_form(key),
			             POINT_CONVERSION_UNCOMPRESSED);
		} else {
			BIGNUM *n = NULL, *n2 = NULL;
			cr_assert(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n));
			cr_assert(EVP_PKEY_get_bn_param(X509_get0_pubkey(cert),
			                                OSSL_PKEY_PARAM_RSA_N, &n2));
			cr_assert_eq(BN_cmp(n, n2), 0);
			BN_free(n);
			BN_free(n2);
		}
		cr_assert(EVP_PKEY_can_sign(key));
		X509_free(cert);
		EVP_PKEY_free(key);
	}
}

Test(provider_store, a_key_does_not_match_another_certificate)
{
	setup();
	EVP_PKEY *key = load_key("tpm-ec-p256", NULL);
	X509 *other = kwpt_read_cert(kwpt_cert_pem("hsm-ec-p256"));
	cr_assert_neq(X509_check_private_key(other, key), 1);
	cr_assert_neq(EVP_PKEY_eq(key, X509_get0_pubkey(other)), 1);
	ERR_clear_error();
	X509_free(other);
	EVP_PKEY_free(key);
}

Test(provider_store, only_the_public_half_can_be_exported)
{
	setup();
	for (int i = 0; i < 2; i++) {
		const char *name = i == 0 ? "tpm-rsa-2048" : "hsm-ec-p256";
		X509 *cert = NULL;
		EVP_PKEY *key = load_key(name, &cert);
		OSSL_PARAM *params = NULL;
		cr_assert_neq(EVP_PKEY_todata(key, EVP_PKEY_KEYPAIR, &params), 1);
		char *err = kwpt_errors();
		cr_assert(strstr(err, "cannot leave the device") != NULL, "%s: %s", name, err);
		free(err);
		BIO *b = BIO_new(BIO_s_mem());
		cr_assert_eq(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 0);
		cr_assert_eq(BIO_pending(b), 0, "%s: private key bytes were written", name);
		BIO_free(b);
		ERR_clear_error();
		/* the public half comes out, and it is the certificate's */
		cr_assert_eq(EVP_PKEY_todata(key, EVP_PKEY_PUBLIC_KEY, &params), 1);
		OSSL_PARAM_free(params);
		unsigned char *a = NULL, *c = NULL;
		int la = i2d_PUBKEY(key, &a), lc = i2d_PUBKEY(X509_get0_pubkey(cert), &c);
		cr_assert(la > 0 && la == lc && memcmp(a, c, (size_t)la) == 0);
		OPENSSL_free(a);
		OPENSSL_free(c);
		X509_free(cert);
		EVP_PKEY_free(key);
	}
}

Test(provider_store, unknown_name_fails_with_the_name_in_the_error)
{
	EVP_PKEY *key = NULL;
	setup();
	cr_assert_eq(kwpt_store_load("keyward:unknown", &key, NULL), 0);
	char *err = kwpt_errors();
	cr_assert(strstr(err, "keyward") && strstr(err, "'unknown'"), "error: %s", err);
	free(err);
	cr_assert_eq(kwpt_store_load("keyward:bad name!", &key, NULL), 0);
	err = kwpt_errors();
	cr_assert(strstr(err, "bad name!") && strstr(err, "keyward:NAME"), "error: %s", err);
	free(err);
}

Test(provider_store, versions_are_selected_by_the_uri)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL, *current = NULL;
	setup();
	EVP_PKEY *cur = load_key("hsm-ec-p256", &current);
	cr_assert_eq(kwpt_store_load("keyward:hsm-ec-p256?version=1", &key, &cert), 1);
	cr_assert(key != NULL && cert != NULL);
	cr_assert_eq(X509_cmp(cert, current), 0);
	EVP_PKEY_free(key);
	X509_free(cert);
	cr_assert_eq(kwpt_store_load("keyward:hsm-ec-p256?version=7", &key, NULL), 0);
	char *err = kwpt_errors();
	cr_assert(strstr(err, "no version 7"), "error: %s", err);
	free(err);
	EVP_PKEY_free(cur);
	X509_free(current);
}

/* OSSL_STORE_expect(): only what the caller asked for comes out. */
Test(provider_store, expected_type_filters_the_objects)
{
	setup();
	OSSL_STORE_CTX *s = OSSL_STORE_open("keyward:tpm-ec-p384", NULL, NULL, NULL, NULL);
	cr_assert(s != NULL, "%s", kwpt_errors());
	cr_assert(OSSL_STORE_expect(s, OSSL_STORE_INFO_CERT));
	int certs = 0, keys = 0;
	while (!OSSL_STORE_eof(s)) {
		OSSL_STORE_INFO *i = OSSL_STORE_load(s);
		if (i == NULL)
			break;
		certs += OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_CERT;
		keys += OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_PKEY;
		OSSL_STORE_INFO_free(i);
	}
	OSSL_STORE_close(s);
	cr_assert_eq(certs, 1);
	cr_assert_eq(keys, 0);
	s = OSSL_STORE_open("keyward:tpm-ec-p384", NULL, NULL, NULL, NULL);
	cr_assert(OSSL_STORE_expect(s, OSSL_STORE_INFO_PUBKEY));
	OSSL_STORE_INFO *i = OSSL_STORE_load(s);
	cr_assert(i != NULL && OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_PUBKEY);
	cr_assert_str_eq(kwpt_key_provider(OSSL_STORE_INFO_get0_PUBKEY(i)), "default");
	OSSL_STORE_INFO_free(i);
	OSSL_STORE_close(s);
}

static void disable(const char *store, const char *name)
{
	kwt_result r;
	kwt_kw(&r, store, "cert", "set", name, "--enabled", "false", NULL);
	cr_assert_eq(r.status, 0, "cert set: %s", r.err);
	kwt_result_free(&r);
}

Test(provider_store, a_disabled_certificate_fails_clearly)
{
	kwt_result r;
	EVP_PKEY *key = NULL;
	setup();
	const char *store = kwpt_store();
	kwt_kw(&r, store, "cert", "create", "off", "--backend", "hsm", "--subject", "CN=off", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	EVP_PKEY *before = load_key("off", NULL);
	EVP_PKEY_free(before);
	disable(store, "off");
	cr_assert_eq(kwpt_store_load("keyward:off", &key, NULL), 0);
	char *err = kwpt_errors();
	cr_assert(strstr(err, "'off'") && strstr(err, "disabled"), "error: %s", err);
	free(err);
}

static void swtpm_back(void)
{
	kwt_swtpm_start();
}

Test(provider_store, no_tpm_loads_the_provider_and_fails_the_key_then_recovers, .fini = swtpm_back)
{
	const char *store = kwpt_store();
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	cr_assert(setenv("KEYWARD_STORE", store, 1) == 0);
	kwt_swtpm_stop();
	kwpt_load_provider();
	cr_assert_eq(kwpt_store_load("keyward:tpm-ec-p256", &key, NULL), 0);
	char *err = kwpt_errors();
	cr_assert(strstr(err, "keyward") && (strstr(err, "TPM") || strstr(err, "tpm")), "error: %s",
	          err);
	cr_log_info("key load without a TPM: %s", err);
	free(err);
	/* the software side of OpenSSL is unaffected */
	EVP_PKEY *soft = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	cr_assert(soft != NULL);
	EVP_PKEY_free(soft);
	kwt_swtpm_start();
	key = load_key("tpm-ec-p256", &cert);
	sign_and_verify(key, X509_get0_pubkey(cert), "SHA256", KWPT_ECDSA, NULL);
	EVP_PKEY_free(key);
	X509_free(cert);
}

/* The path nginx's ssl_certificate_key takes: PEM_read_bio_PrivateKey. */
Test(provider_store, reference_file_reads_as_the_hardware_key)
{
	setup();
	cr_assert(unsetenv("KEYWARD_STORE") == 0); /* the reference names its store */
	for (int i = 0; i < 2; i++) {
		const char *name = i == 0 ? "tpm-rsa-2048" : "hsm-ec-p384";
		BIO *in = BIO_new_file(kwpt_ref_pem(name), "r");
		EVP_PKEY *key = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
		BIO_free(in);
		cr_assert(key != NULL, "%s: %s", name, kwpt_errors());
		cr_assert_str_eq(kwpt_key_provider(key), "keyward");
		X509 *cert = kwpt_read_cert(kwpt_cert_pem(name));
		cr_assert_eq(X509_check_private_key(cert, key), 1);
		if (i == 0)
			sign_and_verify(key, X509_get0_pubkey(cert), "SHA256", KWPT_PSS, "digest");
		else
			sign_and_verify(key, X509_get0_pubkey(cert), "SHA384", KWPT_ECDSA, NULL);
		EVP_PKEY_free(key);
		/* and through OSSL_STORE's file: loader, as openssl s_server -key does */
		cr_assert(kwpt_store_load(kwpt_ref_pem(name), &key, NULL) && key != NULL, "%s",
		          kwpt_errors());
		cr_assert_eq(X509_check_private_key(cert, key), 1);
		EVP_PKEY_free(key);
		X509_free(cert);
	}
}

Test(provider_store, other_pem_files_still_load_and_bad_references_fail)
{
	char *dir = kwt_tmpdir("pem");
	setup();
	/* a software key file: decoded by the default provider as before */
	EVP_PKEY *soft = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *back = NULL;
	BIO *b = BIO_new(BIO_s_mem());
	cr_assert(PEM_write_bio_PrivateKey(b, soft, NULL, NULL, 0, NULL, NULL));
	back = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	cr_assert(back != NULL, "software key: %s", kwpt_errors());
	cr_assert_str_eq(kwpt_key_provider(back), "default");
	cr_assert_eq(EVP_PKEY_eq(soft, back), 1);
	BIO_free(b);
	EVP_PKEY_free(back);
	EVP_PKEY_free(soft);
	/* a certificate is not a private key */
	b = BIO_new_file(kwpt_cert_pem("hsm-ec-p256"), "r");
	cr_assert_null(PEM_read_bio_PrivateKey(b, NULL, NULL, NULL));
	BIO_free(b);
	ERR_clear_error();
	/* a reference to nothing says what is missing */
	unsigned char *der = NULL;
	size_t len = 0;
	cr_assert_eq(kw_keyref_encode("ghost", kwpt_store(), 0, &der, &len), KW_OK);
	char *path = NULL;
	cr_assert(asprintf(&path, "%s/ghost.pem", dir) > 0);
	b = BIO_new_file(path, "w");
	cr_assert(PEM_write_bio(b, KW_KEYREF_PEM_NAME, "", der, (long)len));
	BIO_free(b);
	b = BIO_new_file(path, "r");
	cr_assert_null(PEM_read_bio_PrivateKey(b, NULL, NULL, NULL));
	BIO_free(b);
	char *err = kwpt_errors();
	cr_assert(strstr(err, "'ghost'"), "error: %s", err);
	free(err);
	free(der);
	free(path);
	free(dir);
}

/* ALGORITHM_ID: OpenSSL signs X.509 objects with the key. */
Test(provider_store, certificate_requests_signed_through_openssl_verify)
{
	static const struct {
		const char *name, *md;
		kwpt_scheme scheme;
		int sig_nid;
	} cases[] = {
	    {"tpm-ec-p256", "SHA256", KWPT_ECDSA, NID_ecdsa_with_SHA256},
	    {"hsm-ec-p384", "SHA384", KWPT_ECDSA, NID_ecdsa_with_SHA384},
	    {"tpm-rsa-2048", "SHA256", KWPT_PKCS1, NID_sha256WithRSAEncryption},
	    {"hsm-rsa-2048", "SHA256", KWPT_PSS, NID_rsassaPss},
	    {"tpm-rsa-2048", "SHA384", KWPT_PSS, NID_rsassaPss},
	};
	setup();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		X509 *cert = NULL;
		EVP_PKEY *key = load_key(cases[i].name, &cert);
		X509_REQ *req = X509_REQ_new();
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pc = NULL;
		cr_assert(X509_REQ_set_subject_name(req, X509_get_subject_name(cert)));
		cr_assert(X509_REQ_set_pubkey(req, X509_get0_pubkey(cert)));
		cr_assert(EVP_DigestSignInit_ex(c, &pc, cases[i].md, NULL, NULL, key, NULL) == 1);
		cr_assert(kwpt_set_scheme(pc, cases[i].scheme, "digest"));
		cr_assert_gt(X509_REQ_sign_ctx(req, c), 0, "%s: %s", cases[i].name, kwpt_errors());
		cr_assert_eq(X509_REQ_get_signature_nid(req), cases[i].sig_nid);
		cr_assert_eq(X509_REQ_verify(req, X509_get0_pubkey(cert)), 1, "%s %s",
		             cases[i].name, kwpt_errors());
		EVP_MD_CTX_free(c);
		X509_REQ_free(req);
		X509_free(cert);
		EVP_PKEY_free(key);
	}
}

/* EVP_PKEY_sign: the input is already a digest. */
Test(provider_store, prehashed_input_signs_with_evp_pkey_sign)
{
	setup();
	for (int i = 0; i < 2; i++) {
		const char *name = i == 0 ? "hsm-ec-p256" : "tpm-rsa-2048";
		X509 *cert = NULL;
		EVP_PKEY *key = load_key(name, &cert);
		unsigned char dgst[32], sig[512];
		size_t len = sizeof(sig);
		cr_assert(EVP_Digest(msg, sizeof(msg), dgst, NULL, EVP_sha256(), NULL));
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
		cr_assert(EVP_PKEY_sign_init(pc) == 1);
		cr_assert(EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1);
		cr_assert(EVP_PKEY_sign(pc, sig, &len, dgst, sizeof(dgst)) == 1, "%s: %s", name,
		          kwpt_errors());
		EVP_PKEY_CTX_free(pc);
		pc = EVP_PKEY_CTX_new_from_pkey(NULL, X509_get0_pubkey(cert), NULL);
		cr_assert(EVP_PKEY_verify_init(pc) == 1);
		cr_assert(EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1);
		cr_assert_eq(EVP_PKEY_verify(pc, sig, len, dgst, sizeof(dgst)), 1, "%s", name);
		dgst[0] ^= 1;
		cr_assert_neq(EVP_PKEY_verify(pc, sig, len, dgst, sizeof(dgst)), 1);
		ERR_clear_error();
		EVP_PKEY_CTX_free(pc);
		X509_free(cert);
		EVP_PKEY_free(key);
	}
}

/* PSS salts: the TPM makes digest-length salts only and says so; the token
 * makes any. */
Test(provider_store, pss_salt_lengths_follow_what_the_device_can_do)
{
	unsigned char *sig = NULL;
	size_t len = 0;
	setup();
	X509 *cert = NULL;
	EVP_PKEY *tpm = load_key("tpm-rsa-2048", NULL);
	cr_assert_eq(kwpt_sign(tpm, "SHA256", KWPT_PSS, "max", msg, sizeof(msg), &sig, &len), 0);
	char *err = kwpt_errors();
	cr_assert(strstr(err, "tpm-rsa-2048") && strstr(err, "salt"), "error: %s", err);
	free(err);
	EVP_PKEY *hsm = load_key("hsm-rsa-2048", &cert);
	sign_and_verify(hsm, X509_get0_pubkey(cert), "SHA256", KWPT_PSS, "max");
	/* a max-length salt is not a digest-length one */
	cr_assert(kwpt_sign(hsm, "SHA256", KWPT_PSS, "max", msg, sizeof(msg), &sig, &len));
	cr_assert(!kwpt_verify(X509_get0_pubkey(cert), "SHA256", KWPT_PSS, "digest", msg,
	                       sizeof(msg), sig, len));
	ERR_clear_error();
	free(sig);
	X509_free(cert);
	EVP_PKEY_free(hsm);
	EVP_PKEY_free(tpm);
}

/* Verification is handed to the default provider with the public half. */
Test(provider_store, the_hardware_key_verifies_its_own_signatures)
{
	setup();
	EVP_PKEY *key = load_key("hsm-rsa-2048", NULL);
	unsigned char *sig = NULL;
	size_t len = 0;
	cr_assert(kwpt_sign(key, "SHA256", KWPT_PKCS1, NULL, msg, sizeof(msg), &sig, &len));
	cr_assert(kwpt_verify(key, "SHA256", KWPT_PKCS1, NULL, msg, sizeof(msg), sig, len));
	sig[len / 2] ^= 0x40;
	cr_assert(!kwpt_verify(key, "SHA256", KWPT_PKCS1, NULL, msg, sizeof(msg), sig, len));
	ERR_clear_error();
	free(sig);
	EVP_PKEY_free(key);
}

/* keymgmt only loads: key generation and imports stay with the default
 * provider even though keyward was loaded first. */
Test(provider_store, software_keys_keep_using_the_default_provider)
{
	setup();
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	cr_assert(ec != NULL && rsa != NULL, "%s", kwpt_errors());
	cr_assert_str_eq(kwpt_key_provider(ec), "default");
	cr_assert_str_eq(kwpt_key_provider(rsa), "default");
	EVP_KEYMGMT *km = EVP_KEYMGMT_fetch(NULL, "EC", NULL);
	cr_assert_str_eq(OSSL_PROVIDER_get0_name(EVP_KEYMGMT_get0_provider(km)), "default");
	EVP_KEYMGMT_free(km);
	unsigned char *sig = NULL;
	size_t len = 0;
	cr_assert(kwpt_sign(ec, "SHA256", KWPT_ECDSA, NULL, msg, sizeof(msg), &sig, &len));
	cr_assert(kwpt_verify(ec, "SHA256", KWPT_ECDSA, NULL, msg, sizeof(msg), sig, len));
	free(sig);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

/* After a renewal with a new key, keyward:NAME is version 2 and
 * keyward:NAME?version=1 is still the old key with its own certificate. */
Test(provider_store, an_older_version_is_served_by_its_uri_after_renewal)
{
	kwt_result r;
	setup();
	/* a certificate of its own: the program's store is shared by its tests */
	kwt_kw(&r, kwpt_store(), "cert", "create", "renewed", "--backend", "hsm", "--subject",
	       "CN=renewed", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	kwt_kw(&r, kwpt_store(), "cert", "renew", "renewed", "--new-key", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	X509 *cur_cert = NULL, *old_cert = NULL;
	EVP_PKEY *cur = load_key("renewed", &cur_cert);
	EVP_PKEY *old = NULL;
	cr_assert_eq(kwpt_store_load("keyward:renewed?version=1", &old, &old_cert), 1, "%s",
	             kwpt_errors());
	cr_assert(old != NULL && old_cert != NULL);
	cr_assert_neq(X509_cmp(old_cert, cur_cert), 0, "?version=1 gave the current certificate");
	cr_assert_neq(EVP_PKEY_eq(X509_get0_pubkey(old_cert), X509_get0_pubkey(cur_cert)), 1,
	              "the renewal made a new key");
	cr_assert_eq(X509_check_private_key(old_cert, old), 1);
	cr_assert_eq(X509_check_private_key(cur_cert, cur), 1);
	sign_and_verify(old, X509_get0_pubkey(old_cert), "SHA256", KWPT_ECDSA, NULL);
	sign_and_verify(cur, X509_get0_pubkey(cur_cert), "SHA256", KWPT_ECDSA, NULL);
	EVP_PKEY_free(old);
	EVP_PKEY_free(cur);
	X509_free(old_cert);
	X509_free(cur_cert);
}
