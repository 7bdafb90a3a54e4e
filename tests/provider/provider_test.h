/*
 * keyward OpenSSL provider tests: shared helpers (static, header only).
 *
 * Each test program gets one store (created by the first test that needs it,
 * kept under KW_TEST_TMP for the program's other tests) with backends "tpm"
 * and "hsm" and one certificate per backend and key type, named
 * "<backend>-<type>" (tpm-ec-p256, hsm-rsa-2048, ...), and the certificates
 * exported as "<name>.pem" next to it. ctest gives KW_TEST_PROVIDER_DIR (where
 * keyward.so is) and KW_TEST_PROVIDER_SOURCE (tests/provider).
 */
#ifndef KW_PROVIDER_TEST_H
#define KW_PROVIDER_TEST_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include <keyward/key.h>

#include "kwtest.h"

static const char *const kwpt_types[] = {"ec-p256", "ec-p384", "rsa-2048"};

/* Creates backends and certificates in a new store at dir/s. */
static inline void kwpt_store_fill(const char *dir, int tpm, int hsm)
{
	char store[4096];
	kwt_result r;
	snprintf(store, sizeof(store), "%s/s", dir);
	kwt_kw(&r, store, "init", NULL);
	cr_assert_eq(r.status, 0, "init: %s", r.err);
	kwt_result_free(&r);
	if (tpm) {
		kwt_kw(&r, store, "backend", "add", "tpm", "tpm2", "--tcti",
		       kwt_env("KW_TEST_TCTI"), NULL);
		cr_assert_eq(r.status, 0, "backend add tpm: %s", r.err);
		kwt_result_free(&r);
	}
	if (hsm) {
		char src[4096];
		snprintf(src, sizeof(src), "file:%s", kwt_env("KW_TEST_P11_PIN_FILE"));
		kwt_kw(&r, store, "backend", "add", "hsm", "pkcs11", "--module",
		       kwt_env("KW_TEST_P11_MODULE"), "--token", kwt_env("KW_TEST_P11_TOKEN"),
		       "--pin-source", src, NULL);
		cr_assert_eq(r.status, 0, "backend add hsm: %s", r.err);
		kwt_result_free(&r);
	}
	for (int b = 0; b < 2; b++) {
		const char *backend = b == 0 ? "tpm" : "hsm";
		if ((b == 0 && !tpm) || (b == 1 && !hsm))
			continue;
		for (size_t t = 0; t < sizeof(kwpt_types) / sizeof(kwpt_types[0]); t++) {
			char name[64], out[4096];
			snprintf(name, sizeof(name), "%s-%s", backend, kwpt_types[t]);
			snprintf(out, sizeof(out), "%s/%s.pem", dir, name);
			kwt_kw(&r, store, "cert", "create", name, "--backend", backend, "--subject",
			       "CN=localhost", "--key", kwpt_types[t], NULL);
			cr_assert_eq(r.status, 0, "cert create %s: %s", name, r.err);
			kwt_result_free(&r);
			kwt_kw(&r, store, "cert", "export", name, "--out", out, NULL);
			cr_assert_eq(r.status, 0, "cert export %s: %s", name, r.err);
			kwt_result_free(&r);
		}
	}
}

/* The program's store: "tpm" and/or "hsm" backends and their certificates,
 * made by the first test that asks (in a scratch directory renamed into
 * place once complete, so that a failed attempt leaves nothing behind). */
static inline const char *kwpt_store(void)
{
	static char path[4200];
	char dir[4096];
	const char *tmp = kwt_env("KW_TEST_TMP");
	snprintf(dir, sizeof(dir), "%s/pstore", tmp);
	snprintf(path, sizeof(path), "%s/s", dir);
	if (access(path, F_OK) == 0)
		return path;
	char *scratch = kwt_tmpdir("pstore-new");
	kwpt_store_fill(scratch, getenv("KW_TEST_TCTI") != NULL,
	                getenv("KW_TEST_P11_MODULE") != NULL);
	cr_assert(rename(scratch, dir) == 0, "rename %s: %s", scratch, strerror(errno));
	free(scratch);
	return path;
}

/* "<KW_TEST_TMP>/pstore/<name>.pem" (static buffer). */
static inline const char *kwpt_cert_pem(const char *name)
{
	static char path[4096];
	kwpt_store();
	snprintf(path, sizeof(path), "%s/pstore/%s.pem", kwt_env("KW_TEST_TMP"), name);
	return path;
}

/* Writes `keyward cert key-ref NAME` to "<pstore>/<name>.ref.pem" (static buffer). */
static inline const char *kwpt_ref_pem(const char *name)
{
	static char path[4096];
	kwt_result r;
	const char *store = kwpt_store();
	snprintf(path, sizeof(path), "%s/pstore/%s.ref.pem", kwt_env("KW_TEST_TMP"), name);
	kwt_kw(&r, store, "cert", "key-ref", name, "--out", path, NULL);
	cr_assert_eq(r.status, 0, "cert key-ref %s: %s", name, r.err);
	kwt_result_free(&r);
	return path;
}

/* Loads keyward (from KW_TEST_PROVIDER_DIR) before default, as a server would
 * with -provider keyward -provider default. */
static inline OSSL_PROVIDER *kwpt_load_provider(void)
{
	const char *dir = kwt_env("KW_TEST_PROVIDER_DIR");
	cr_assert(OSSL_PROVIDER_set_default_search_path(NULL, dir) == 1);
	OSSL_PROVIDER *p = OSSL_PROVIDER_load(NULL, "keyward");
	cr_assert(p != NULL, "cannot load keyward.so from %s", dir);
	cr_assert(OSSL_PROVIDER_load(NULL, "default") != NULL);
	return p;
}

/* The OpenSSL error queue as text (malloc'd), emptied. */
static inline char *kwpt_errors(void)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL;
	ERR_print_errors(b);
	long n = BIO_get_mem_data(b, &data);
	char *out = strndup(n > 0 ? data : "", n > 0 ? (size_t)n : 0);
	BIO_free(b);
	return out;
}

/* Loads "keyward:..." (or a file) through OSSL_STORE: the key and/or the first
 * certificate. Returns 0 if opening failed (errors left on the queue). */
static inline int kwpt_store_load(const char *uri, EVP_PKEY **key, X509 **cert)
{
	OSSL_STORE_CTX *s = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
	if (key)
		*key = NULL;
	if (cert)
		*cert = NULL;
	if (s == NULL)
		return 0;
	while (!OSSL_STORE_eof(s)) {
		OSSL_STORE_INFO *i = OSSL_STORE_load(s);
		if (i == NULL)
			break;
		if (key && *key == NULL && OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_PKEY)
			*key = OSSL_STORE_INFO_get1_PKEY(i);
		if (cert && *cert == NULL && OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_CERT)
			*cert = OSSL_STORE_INFO_get1_CERT(i);
		OSSL_STORE_INFO_free(i);
	}
	OSSL_STORE_close(s);
	return 1;
}

static inline X509 *kwpt_read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert(f != NULL, "%s: %s", path, strerror(errno));
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert(x != NULL, "%s: not a PEM certificate", path);
	return x;
}

typedef enum { KWPT_ECDSA, KWPT_PKCS1, KWPT_PSS } kwpt_scheme;

/* Sets the RSA padding and PSS salt ("digest", "max", ...) on a sign or verify context. */
static inline int kwpt_set_scheme(EVP_PKEY_CTX *pc, kwpt_scheme s, const char *salt)
{
	if (s == KWPT_ECDSA)
		return 1;
	if (EVP_PKEY_CTX_set_rsa_padding(pc, s == KWPT_PSS ? RSA_PKCS1_PSS_PADDING
	                                                   : RSA_PKCS1_PADDING) <= 0)
		return 0;
	if (s != KWPT_PSS)
		return 1;
	OSSL_PARAM p[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, (char *)salt, 0),
	    OSSL_PARAM_END};
	return EVP_PKEY_CTX_set_params(pc, p) > 0;
}

/* EVP_DigestSign with key; *sig malloc'd. 0 if signing failed. */
static inline int kwpt_sign(EVP_PKEY *key, const char *md, kwpt_scheme s, const char *salt,
                            const void *msg, size_t len, unsigned char **sig, size_t *siglen)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	int ok = EVP_DigestSignInit_ex(c, &pc, md, NULL, NULL, key, NULL) == 1 &&
	         kwpt_set_scheme(pc, s, salt) && EVP_DigestSign(c, NULL, siglen, msg, len) == 1 &&
	         (*sig = malloc(*siglen)) != NULL && EVP_DigestSign(c, *sig, siglen, msg, len) == 1;
	EVP_MD_CTX_free(c);
	return ok;
}

/* EVP_DigestVerify with pub (1 = good signature). */
static inline int kwpt_verify(EVP_PKEY *pub, const char *md, kwpt_scheme s, const char *salt,
                              const void *msg, size_t len, const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	int ok = EVP_DigestVerifyInit_ex(c, &pc, md, NULL, NULL, pub, NULL) == 1 &&
	         kwpt_set_scheme(pc, s, salt) && EVP_DigestVerify(c, sig, siglen, msg, len) == 1;
	EVP_MD_CTX_free(c);
	return ok;
}

/* The provider that holds a key's data ("keyward", "default"). */
static inline const char *kwpt_key_provider(const EVP_PKEY *k)
{
	const OSSL_PROVIDER *p = EVP_PKEY_get0_provider(k);
	return p ? OSSL_PROVIDER_get0_name(p) : "(legacy)";
}

#endif
