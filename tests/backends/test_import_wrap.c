/*
 * backends/tpm2/wrap.c: the outer wrapper of TPM2_Import, checked on the wire
 * and by the TPM itself.
 *
 * - Every TPM command and response of an import is recorded by tpm2-tss's pcap
 *   TCTI between keyward and swtpm: the private key (EC scalar d, RSA prime p)
 *   is nowhere in the capture, while the capture does hold the key's public
 *   part and the wrapped duplicate (so it recorded the import), and the same
 *   search finds d in a capture where the key is sent in the clear (so the
 *   search can fail).
 * - The TPM refuses a duplicate with a flipped bit in its HMAC or ciphertext,
 *   or with a public area altered after wrapping (TPM_RC_INTEGRITY), and takes
 *   the untouched one, whose key then signs.
 * - Both SRK kinds: keyward's transient ECC P-256 primary (ECDH seed) and a
 *   persistent RSA 2048 SRK at 0x81000001 (RSA-OAEP seed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>

#include "kwtest.h"
#include "tpm2/tpm2_internal.h"

static EVP_PKEY *key_new(kw_key_type type)
{
	cr_assert_geq(sodium_init(), 0); /* before any sodium_malloc */
	EVP_PKEY *k = type == KW_KEY_EC_P256 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
	                                     : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	cr_assert_not_null(k, "openssl makes the key to import");
	return k;
}

/* One BIGNUM parameter of key, big-endian, padded to len (in out). */
static void key_bytes(EVP_PKEY *key, const char *param, unsigned char *out, size_t len)
{
	BIGNUM *bn = NULL;
	cr_assert_eq(EVP_PKEY_get_bn_param(key, param, &bn), 1, "%s", param);
	cr_assert_eq(BN_bn2binpad(bn, out, (int)len), (int)len);
	BN_clear_free(bn);
}

static kwb_tpm2_ctx *tpm_open(const char *tcti)
{
	kw_backend_config cfg = kwt_tpm2_config();
	void *ctx = NULL;
	if (tcti != NULL)
		cfg.tcti = tcti;
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_ops.open(&cfg, &ctx), KW_OK, "open: %s", kw_error_message());
	return ctx;
}

/* The TPM signs with the imported key; the software key verifies it. */
static void signs_as(kwb_tpm2_ctx *c, const kw_key_blob *ref, EVP_PKEY *key, kw_key_type type)
{
	unsigned char dgst[32], sig[512];
	size_t sig_len = sizeof(sig);
	kw_sign_params p = {kw_key_type_is_rsa(type) ? KW_SIG_RSA_PKCS1 : KW_SIG_ECDSA, NID_sha256,
	                    -1};

	memset(dgst, 0xa5, sizeof(dgst));
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_ops.key_sign(c, ref, &p, dgst, sizeof(dgst), sig, &sig_len), KW_OK,
	             "sign: %s", kw_error_message());
	EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(key, NULL);
	cr_assert(v != NULL && EVP_PKEY_verify_init(v) == 1 &&
	          EVP_PKEY_CTX_set_signature_md(v, EVP_sha256()) == 1);
	cr_assert_eq(EVP_PKEY_verify(v, sig, sig_len, dgst, sizeof(dgst)), 1,
	             "the TPM's signature verifies with the imported key");
	EVP_PKEY_CTX_free(v);
}

static int contains(const char *hay, size_t hay_len, const void *needle, size_t len)
{
	return hay != NULL && memmem(hay, hay_len, needle, len) != NULL;
}

/* A capture file of its own, for the pcap TCTI stacked on this test's swtpm. */
static char *capture_start(const char *name, char **tcti)
{
	char *path = NULL;
	cr_assert(asprintf(&path, "%s/%s.pcap", kwt_env("KW_TEST_TMP"), name) > 0);
	cr_assert(asprintf(tcti, "pcap:%s", kwt_env("KW_TEST_TCTI")) > 0);
	remove(path);
	cr_assert_eq(setenv("TCTI_PCAP_FILE", path, 1), 0);
	return path;
}

/* Imports a fresh key through the recorder and searches the capture. */
static void import_on_the_wire(kw_key_type type, const char *name)
{
	int rsa = kw_key_type_is_rsa(type);
	size_t secret_len = rsa ? 128 : 32, public_len = rsa ? 256 : 32, cap_len = 0;
	EVP_PKEY *key = key_new(type);
	unsigned char *secret = sodium_malloc(secret_len), public[256];
	TPM2B_PUBLIC pub;
	TPM2B_ENCRYPTED_SECRET seed;
	TPM2B_PRIVATE *dup = sodium_malloc(sizeof(*dup));
	kw_key_blob ref = {0};
	char *tcti = NULL, *path = capture_start(name, &tcti);

	cr_assert(secret != NULL && dup != NULL);
	key_bytes(key, rsa ? OSSL_PKEY_PARAM_RSA_FACTOR1 : OSSL_PKEY_PARAM_PRIV_KEY, secret,
	          secret_len);
	key_bytes(key, rsa ? OSSL_PKEY_PARAM_RSA_N : OSSL_PKEY_PARAM_EC_PUB_X, public, public_len);
	kwb_tpm2_ctx *c = tpm_open(tcti);
	cr_assert_eq(kwb_tpm2_import_wrap(c, key, type, &pub, dup, &seed), KW_OK, "wrap: %s",
	             kw_error_message());
	cr_assert_eq(kwb_tpm2_import_wrapped(c, &pub, dup, &seed, &ref), KW_OK, "import: %s",
	             kw_error_message());
	signs_as(c, &ref, key, type);
	kwb_tpm2_ops.close(c);
	char *cap = kwt_read_file(path, &cap_len);
	cr_assert(cap != NULL && cap_len > 0, "the pcap TCTI recorded nothing");
	/* the capture holds the import command: the public key and the duplicate */
	cr_assert(contains(cap, cap_len, public, public_len), "no public key in the capture");
	cr_assert(contains(cap, cap_len, dup->buffer, dup->size), "no duplicate in the capture");
	cr_assert(contains(cap, cap_len, seed.secret, seed.size), "no seed in the capture");
	cr_assert_not(contains(cap, cap_len, secret, secret_len),
	              "the private key crossed the TPM interface in the clear");
	sodium_free(secret);
	sodium_free(dup);
	free(cap);
	free(tcti);
	free(path);
	kw_key_blob_clear(&ref);
	EVP_PKEY_free(key);
}

Test(import_wrap, the_ec_private_scalar_is_not_on_the_wire)
{
	import_on_the_wire(KW_KEY_EC_P256, "ec");
}

Test(import_wrap, the_rsa_prime_is_not_on_the_wire)
{
	import_on_the_wire(KW_KEY_RSA_2048, "rsa");
}

/* The control: the same search finds the scalar in a capture where it is sent
 * in the clear (TPM2_LoadExternal with the sensitive area, into the NULL
 * hierarchy), so "not in the capture" above means something. */
Test(import_wrap, the_search_finds_a_key_sent_in_the_clear)
{
	EVP_PKEY *key = key_new(KW_KEY_EC_P256);
	TPM2B_PUBLIC pub;
	TPM2B_ENCRYPTED_SECRET seed;
	TPM2B_PRIVATE dup;
	TPM2B_SENSITIVE sens = {0};
	ESYS_TR h = ESYS_TR_NONE;
	size_t cap_len = 0;
	char *tcti = NULL, *path = capture_start("clear", &tcti);

	kwb_tpm2_ctx *c = tpm_open(tcti);
	cr_assert_eq(kwb_tpm2_import_wrap(c, key, KW_KEY_EC_P256, &pub, &dup, &seed), KW_OK);
	sens.sensitiveArea.sensitiveType = TPM2_ALG_ECC;
	sens.sensitiveArea.sensitive.ecc.size = 32;
	key_bytes(key, OSSL_PKEY_PARAM_PRIV_KEY, sens.sensitiveArea.sensitive.ecc.buffer, 32);
	TSS2_RC trc = Esys_LoadExternal(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
	                                &pub, ESYS_TR_RH_NULL, &h);
	cr_assert_eq(trc, TSS2_RC_SUCCESS, "LoadExternal: %s", Tss2_RC_Decode(trc));
	cr_assert_eq(Esys_FlushContext(c->esys, h), TSS2_RC_SUCCESS);
	kwb_tpm2_ops.close(c);
	char *cap = kwt_read_file(path, &cap_len);
	cr_assert(contains(cap, cap_len, sens.sensitiveArea.sensitive.ecc.buffer, 32),
	          "the search misses a scalar sent in the clear");
	sodium_memzero(&sens, sizeof(sens));
	free(cap);
	free(tcti);
	free(path);
	EVP_PKEY_free(key);
}

/* The user's path: `keyward cert import` through a backend whose TCTI is
 * the recorder. */
Test(import_wrap, cert_import_keeps_the_scalar_off_the_wire)
{
	char *store = kwt_store_new(0, 0), *dir = kwt_tmpdir("cli"), *tcti = NULL;
	char *path = capture_start("cli", &tcti), in[600], *cap = NULL;
	unsigned char x[32];
	unsigned char *d = sodium_init() >= 0 ? sodium_malloc(32) : NULL;
	size_t cap_len = 0;
	kwt_result r;

	cr_assert_not_null(d);
	cr_assert_eq(kwt_sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
	                    "ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -subj "
	                    "/CN=wire.example -days 30 >/dev/null 2>&1 && cat cert.pem key.pem > "
	                    "in.pem",
	                    dir),
	             0);
	snprintf(in, sizeof(in), "%s/key.pem", dir);
	FILE *f = fopen(in, "r");
	cr_assert_not_null(f);
	EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert_not_null(key);
	key_bytes(key, OSSL_PKEY_PARAM_PRIV_KEY, d, 32);
	key_bytes(key, OSSL_PKEY_PARAM_EC_PUB_X, x, 32);
	EVP_PKEY_free(key);
	kwt_kw(&r, store, "backend", "add", "tpm", "tpm2", "--tcti", tcti, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	snprintf(in, sizeof(in), "%s/in.pem", dir);
	kwt_kw(&r, store, "cert", "import", "wire", "--backend", "tpm", "--pem", in, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	cap = kwt_read_file(path, &cap_len);
	cr_assert(contains(cap, cap_len, x, sizeof(x)), "the capture missed the import");
	cr_assert_not(contains(cap, cap_len, d, 32),
	              "the private key crossed the TPM interface in the clear");
	sodium_free(d);
	free(cap);
	free(tcti);
	free(path);
	free(dir);
	free(store);
}

/* Import of a tampered copy: refused by the TPM, TPM_RC_INTEGRITY, nothing out. */
static void refused(kwb_tpm2_ctx *c, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *dup,
                    const TPM2B_ENCRYPTED_SECRET *seed, const char *what)
{
	kw_key_blob ref = {0};
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_import_wrapped(c, pub, dup, seed, &ref), KW_ERR_BACKEND,
	             "%s: imported anyway", what);
	cr_assert_eq(kwb_tpm2_rc_base((TSS2_RC)kw_error_device_code()), TPM2_RC_INTEGRITY, "%s: %s",
	             what, kw_error_message());
	cr_assert_not_null(strstr(kw_error_message(), "TPM_RC_INTEGRITY"), "%s", what);
	cr_assert_eq(ref.len, 0, "%s: a key blob came out", what);
}

static void tamper_check(kw_key_type type, const char *want_srk)
{
	EVP_PKEY *key = key_new(type);
	TPM2B_PUBLIC pub, bad_pub;
	TPM2B_ENCRYPTED_SECRET seed;
	TPM2B_PRIVATE *dup = sodium_malloc(sizeof(*dup)), *bad = sodium_malloc(sizeof(*dup));
	kw_key_blob ref = {0};
	kwb_tpm2_ctx *c = tpm_open(NULL);

	cr_assert(dup != NULL && bad != NULL);
	cr_assert_eq(kwb_tpm2_import_wrap(c, key, type, &pub, dup, &seed), KW_OK, "wrap: %s",
	             kw_error_message());
	cr_assert_str_eq(kwb_tpm2_srk_describe(c), want_srk);
	/* dup = u16 size (32) || HMAC || encrypted sensitive area */
	cr_assert(dup->size > 2 + 32 + 32 && dup->buffer[0] == 0 && dup->buffer[1] == 32);
	*bad = *dup;
	bad->buffer[2 + 7] ^= 0x01;
	refused(c, &pub, bad, &seed, "a bit of the outer HMAC flipped");
	*bad = *dup;
	bad->buffer[dup->size - 1] ^= 0x80;
	refused(c, &pub, bad, &seed, "a bit of the encrypted sensitive area flipped");
	*bad = *dup;
	bad->buffer[2 + 32] ^= 0x10;
	refused(c, &pub, bad, &seed, "a bit of the encrypted size prefix flipped");
	bad_pub = pub;
	bad_pub.publicArea.objectAttributes &= ~TPMA_OBJECT_NODA;
	refused(c, &bad_pub, dup, &seed, "the public area changed after wrapping");
	/* the untouched duplicate imports and its key signs */
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_import_wrapped(c, &pub, dup, &seed, &ref), KW_OK, "import: %s",
	             kw_error_message());
	signs_as(c, &ref, key, type);
	kwb_tpm2_ops.close(c);
	sodium_free(dup);
	sodium_free(bad);
	kw_key_blob_clear(&ref);
	EVP_PKEY_free(key);
}

Test(import_wrap, a_tampered_duplicate_fails_the_tpm_integrity_check)
{
	tamper_check(KW_KEY_EC_P256, "transient-primary");
}

/* ---- a persistent RSA SRK: the seed is RSA-OAEP encrypted ---- */

static TPM2B_PUBLIC rsa_srk_template(void)
{
	TPM2B_PUBLIC t = {0};
	TPMS_RSA_PARMS *r = &t.publicArea.parameters.rsaDetail;
	t.publicArea.type = TPM2_ALG_RSA;
	t.publicArea.nameAlg = TPM2_ALG_SHA256;
	t.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                                TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
	                                TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
	                                TPMA_OBJECT_DECRYPT;
	r->symmetric.algorithm = TPM2_ALG_AES;
	r->symmetric.keyBits.aes = 128;
	r->symmetric.mode.aes = TPM2_ALG_CFB;
	r->scheme.scheme = TPM2_ALG_NULL;
	r->keyBits = 2048;
	return t;
}

/* Removes whatever sits at 0x81000001. */
static void srk_evict(void)
{
	kwb_tpm2_ctx *c = tpm_open(NULL);
	ESYS_TR tr = ESYS_TR_NONE, none = ESYS_TR_NONE;
	if (Esys_TR_FromTPMPublic(c->esys, KWB_TPM2_SRK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE,
	                          ESYS_TR_NONE, &tr) == TSS2_RC_SUCCESS) {
		TSS2_RC trc =
		    Esys_EvictControl(c->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		                      ESYS_TR_NONE, KWB_TPM2_SRK_HANDLE, &none);
		cr_assert_eq(trc, TSS2_RC_SUCCESS, "EvictControl: %s", Tss2_RC_Decode(trc));
	}
	kwb_tpm2_ops.close(c);
}

static void rsa_srk_provision(void)
{
	const TPM2B_SENSITIVE_CREATE sens = {0};
	const TPM2B_DATA outside = {0};
	const TPML_PCR_SELECTION pcrs = {0};
	const TPM2B_PUBLIC tmpl = rsa_srk_template();
	ESYS_TR h = ESYS_TR_NONE, persistent = ESYS_TR_NONE;

	srk_evict();
	kwb_tpm2_ctx *c = tpm_open(NULL);
	TSS2_RC trc = Esys_CreatePrimary(c->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                                 ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, &h, NULL,
	                                 NULL, NULL, NULL);
	cr_assert_eq(trc, TSS2_RC_SUCCESS, "CreatePrimary: %s", Tss2_RC_Decode(trc));
	trc = Esys_EvictControl(c->esys, ESYS_TR_RH_OWNER, h, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                        ESYS_TR_NONE, KWB_TPM2_SRK_HANDLE, &persistent);
	cr_assert_eq(trc, TSS2_RC_SUCCESS, "EvictControl: %s", Tss2_RC_Decode(trc));
	cr_assert_eq(Esys_FlushContext(c->esys, h), TSS2_RC_SUCCESS);
	kwb_tpm2_ops.close(c);
}

Test(import_wrap, rsa_srk_ec_key_is_not_on_the_wire, .init = rsa_srk_provision, .fini = srk_evict)
{
	import_on_the_wire(KW_KEY_EC_P256, "rsa-srk-ec");
}

Test(import_wrap, rsa_srk_rsa_key_is_not_on_the_wire, .init = rsa_srk_provision, .fini = srk_evict)
{
	import_on_the_wire(KW_KEY_RSA_2048, "rsa-srk-rsa");
}

Test(import_wrap, rsa_srk_tampered_duplicate_fails_the_tpm_integrity_check,
     .init = rsa_srk_provision, .fini = srk_evict)
{
	tamper_check(KW_KEY_EC_P256, "0x81000001");
}

/* The wrapper refuses, before anything reaches the TPM, a parent it cannot
 * wrap for (here: nameAlg SHA-384). */
Test(import_wrap, an_unsupported_parent_is_refused)
{
	TPM2B_PUBLIC parent = rsa_srk_template(), pub = {0};
	TPM2B_SENSITIVE sens = {0};
	TPM2B_PRIVATE dup;
	TPM2B_ENCRYPTED_SECRET seed;

	parent.publicArea.nameAlg = TPM2_ALG_SHA384;
	parent.publicArea.unique.rsa.size = 256;
	pub.publicArea.nameAlg = TPM2_ALG_SHA256;
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_wrap_outer(&parent.publicArea, &pub, &sens, &dup, &seed),
	             KW_ERR_UNSUPPORTED);
	cr_assert_not_null(strstr(kw_error_message(), "SRK"), "%s", kw_error_message());
	cr_assert_eq(seed.size, 0);
	cr_assert_eq(dup.size, 0);
}
