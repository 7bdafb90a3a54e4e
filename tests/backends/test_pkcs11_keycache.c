/*
 * keyward — PKCS#11 backend: the signing key cache (CKA_ID -> handle, key
 * type). A signature must search the token once per key, not per signature,
 * and a cached handle must never sign with a key other than the one the
 * reference names: keys destroyed or recreated behind keyward's back, and a
 * handle number the token gave to another object, are all covered here on a
 * real SoftHSM2 token.
 */
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include "backend.h"
#include "pkcs11/p11.h"
#include "kwtest.h"
#include "p11tok.h"

static const char msg[] = "keyward pkcs11 key cache test";

/* ---- what another program does on the token (see p11tok.h) ---- */

/* Destroys every object with this CKA_ID; returns how many went. */
static CK_ULONG destroy_behind_back(const kw_key_blob *ref)
{
	kwt_tok t;
	CK_OBJECT_HANDLE h[8];

	kwt_tok_open(&t, CKF_RW_SESSION);
	CK_ULONG n = kwt_tok_find(&t, ref, NULL, h, 8);
	for (CK_ULONG i = 0; i < n; i++)
		cr_assert_eq(t.fn->C_DestroyObject(t.s, h[i]), CKR_OK);
	kwt_tok_close(&t);
	return n;
}

/* Puts a software-made P-256 private key on the token under this CKA_ID, as
 * another program importing a key would; returns the key (public part used). */
static EVP_PKEY *create_behind_back(const kw_key_blob *ref)
{
	static const unsigned char p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
	                                         0xce, 0x3d, 0x03, 0x01, 0x07};
	EVP_PKEY *k = EVP_EC_gen("P-256");
	BIGNUM *d = NULL;
	unsigned char value[32];
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = CKK_EC;
	CK_BBOOL yes = CK_TRUE;
	CK_OBJECT_HANDLE h;
	kwt_tok t;

	cr_assert_not_null(k);
	cr_assert(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &d));
	cr_assert_eq(BN_bn2binpad(d, value, sizeof(value)), (int)sizeof(value));
	BN_clear_free(d);
	CK_ATTRIBUTE a[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_KEY_TYPE, &kt, sizeof(kt)},
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &yes, sizeof(yes)},
	    {CKA_SIGN, &yes, sizeof(yes)},
	    {CKA_ID, ref->data, ref->len},
	    {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
	    {CKA_VALUE, value, sizeof(value)},
	};
	kwt_tok_open(&t, CKF_RW_SESSION);
	CK_RV rv = t.fn->C_CreateObject(t.s, a, sizeof(a) / sizeof(a[0]), &h);
	cr_assert_eq(rv, CKR_OK, "C_CreateObject: 0x%lx", rv);
	kwt_tok_close(&t);
	OPENSSL_cleanse(value, sizeof(value));
	return k;
}

/* ---- backend helpers ---- */

static void *backend_open(void)
{
	kw_backend_config cfg = kwt_p11_config();
	void *ctx = NULL;

	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.open(&cfg, &ctx), KW_OK, "open: %s", kw_error_message());
	return ctx;
}

static kw_key_blob key_make(void *ctx)
{
	kw_key_blob ref = {0};

	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_generate(ctx, KW_KEY_EC_P256, "kw-cache-test", &ref), KW_OK,
	             "key_generate: %s", kw_error_message());
	return ref;
}

/* Signs msg with ref: the kw_rc, the DER signature in sig, its length in *len. */
static kw_rc sign(void *ctx, const kw_key_blob *ref, unsigned char *sig, size_t *len)
{
	unsigned char dgst[32];
	unsigned int dlen = 0;
	kw_sign_params sp = {KW_SIG_ECDSA, NID_sha256, -1};

	cr_assert(EVP_Digest(msg, sizeof(msg) - 1, dgst, &dlen, EVP_sha256(), NULL));
	*len = 256;
	kw_error_clear();
	return kwb_p11_ops.key_sign(ctx, ref, &sp, dgst, dlen, sig, len);
}

static int verifies(EVP_PKEY *pk, const unsigned char *sig, size_t len)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();

	cr_assert_not_null(m);
	cr_assert_eq(EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, pk), 1);
	int r = EVP_DigestVerify(m, sig, len, (const unsigned char *)msg, sizeof(msg) - 1);
	EVP_MD_CTX_free(m);
	ERR_clear_error();
	return r == 1;
}

/* A signature by ref that verifies under pk (and not under other, if given). */
static void sign_by(void *ctx, const kw_key_blob *ref, EVP_PKEY *pk, EVP_PKEY *other)
{
	unsigned char sig[256];
	size_t len;

	cr_assert_eq(sign(ctx, ref, sig, &len), KW_OK, "key_sign: %s", kw_error_message());
	cr_assert(verifies(pk, sig, len), "the signature is not by the referenced key");
	if (other != NULL)
		cr_assert_not(verifies(other, sig, len), "the signature is by another key");
}

static size_t searches(void *ctx)
{
	return kwb_p11_keycache_searches(ctx);
}

/* ---- tests ---- */

Test(pkcs11_keycache, the_token_is_searched_once_per_key_not_per_signature)
{
	void *ctx = backend_open();
	kw_key_blob a = key_make(ctx), b = key_make(ctx);
	EVP_PKEY *pa = kwt_key_public(&kwb_p11_ops, ctx, &a),
	         *pb = kwt_key_public(&kwb_p11_ops, ctx, &b);
	/* keys this context made are cached from their generation: forget
	 * them, as for keys made elsewhere */
	kwb_p11_keycache_drop(ctx, a.data, a.len);
	kwb_p11_keycache_drop(ctx, b.data, b.len);
	size_t before = searches(ctx);

	for (int i = 0; i < 5; i++)
		sign_by(ctx, &a, pa, pb);
	cr_assert_eq(searches(ctx), before + 1, "five signatures searched %zu times",
	             searches(ctx) - before);
	for (int i = 0; i < 3; i++) {
		sign_by(ctx, &b, pb, pa);
		sign_by(ctx, &a, pa, pb);
	}
	cr_assert_eq(searches(ctx), before + 2, "two keys, %zu searches", searches(ctx) - before);
	cr_assert_eq(kwb_p11_ops.key_destroy(ctx, &a, NULL), KW_OK);
	cr_assert_eq(kwb_p11_ops.key_destroy(ctx, &b, NULL), KW_OK);
	EVP_PKEY_free(pa);
	EVP_PKEY_free(pb);
	kw_key_blob_clear(&a);
	kw_key_blob_clear(&b);
	kwb_p11_ops.close(ctx);
}

Test(pkcs11_keycache, key_destroyed_and_recreated_behind_keywards_back)
{
	void *ctx = backend_open();
	kw_key_blob a = key_make(ctx);
	EVP_PKEY *pa = kwt_key_public(&kwb_p11_ops, ctx, &a);
	unsigned char sig[256];
	size_t len;

	sign_by(ctx, &a, pa, NULL); /* its handle is cached now */
	cr_assert_eq(destroy_behind_back(&a), 2, "a private and a public key object");
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(sign(ctx, &a, sig, &len), KW_ERR_NOT_FOUND, "destroyed key: %s",
		             kw_error_message());
		cr_assert(strstr(kw_error_message(), "no private key with CKA_ID") != NULL, "%s",
		          kw_error_message());
	}
	/* Another program puts a different key under the same CKA_ID: the
	 * reference names that key now, and the old handle must not be used. */
	EVP_PKEY *pn = create_behind_back(&a);
	sign_by(ctx, &a, pn, pa);
	sign_by(ctx, &a, pn, pa);
	cr_assert_eq(destroy_behind_back(&a), 1);
	cr_assert_eq(sign(ctx, &a, sig, &len), KW_ERR_NOT_FOUND);
	EVP_PKEY_free(pa);
	EVP_PKEY_free(pn);
	kw_key_blob_clear(&a);
	kwb_p11_ops.close(ctx);
}

/* Two keys A and B on one context, with their public halves. */
typedef struct {
	kwb_p11 *ctx;
	kw_key_blob a, b;
	EVP_PKEY *pa, *pb;
} two_keys;

static two_keys two_keys_make(void)
{
	two_keys t = {.ctx = backend_open()};
	t.a = key_make(t.ctx);
	t.b = key_make(t.ctx);
	t.pa = kwt_key_public(&kwb_p11_ops, t.ctx, &t.a);
	t.pb = kwt_key_public(&kwb_p11_ops, t.ctx, &t.b);
	return t;
}

/* Destroys both keys on the token and closes the context. */
static void two_keys_end(two_keys *t)
{
	cr_assert_eq(kwb_p11_ops.key_destroy(t->ctx, &t->a, NULL), KW_OK);
	cr_assert_eq(kwb_p11_ops.key_destroy(t->ctx, &t->b, NULL), KW_OK);
	EVP_PKEY_free(t->pa);
	EVP_PKEY_free(t->pb);
	kw_key_blob_clear(&t->a);
	kw_key_blob_clear(&t->b);
	kwb_p11_ops.close(t->ctx);
}

/* SoftHSM never hands a destroyed object's handle number to a new object,
 * other tokens may: the cache is made to point at other objects' handles, as
 * a reused handle would, and every signature must still be by the key the
 * reference names. */
Test(pkcs11_keycache, a_handle_now_naming_another_object_never_signs)
{
	two_keys t = two_keys_make();
	CK_OBJECT_HANDLE hb, ha_pub;
	CK_ULONG n = 0;

	sign_by(t.ctx, &t.a, t.pa, t.pb);
	sign_by(t.ctx, &t.b, t.pb, t.pa);
	cr_assert_eq(kwb_p11_find_private(t.ctx, &t.b, "test", &hb), KW_OK);
	cr_assert_eq(kwb_p11_find(t.ctx, CKO_PUBLIC_KEY, t.a.data, t.a.len, &ha_pub, 1, &n), KW_OK);
	cr_assert_eq(n, 1);
	const CK_OBJECT_HANDLE wrong[] = {hb, ha_pub, hb + 100000};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		kwb_p11_keycache_put(t.ctx, t.a.data, t.a.len, wrong[i], CKK_EC, 0);
		size_t before = searches(t.ctx);
		sign_by(t.ctx, &t.a, t.pa, t.pb);
		cr_assert_eq(searches(t.ctx), before + 1,
		             "a stale handle %zu was not searched again", i);
		sign_by(t.ctx, &t.a, t.pa, t.pb); /* and the cache is right again */
		cr_assert_eq(searches(t.ctx), before + 1);
	}
	/* B itself is untouched by A's wrong entries. */
	sign_by(t.ctx, &t.b, t.pb, t.pa);
	two_keys_end(&t);
}

/* A handle confirmed by a search is trusted for KWB_P11_RECHECK_MS only (see
 * backends/pkcs11/sign.c): an entry confirmed for another object's handle, as
 * a reused handle number would leave it, is checked again once that time has
 * passed, and no signature after that is by the other key. */
Test(pkcs11_keycache, a_confirmed_handle_is_checked_again_after_the_recheck_time)
{
	two_keys t = two_keys_make();
	CK_OBJECT_HANDLE hb;

	sign_by(t.ctx, &t.a, t.pa, t.pb);
	cr_assert_eq(kwb_p11_find_private(t.ctx, &t.b, "test", &hb), KW_OK);
	kwb_p11_keycache_put(t.ctx, t.a.data, t.a.len, hb, CKK_EC, 1); /* confirmed now */
	struct timespec wait = {0, (long)(KWB_P11_RECHECK_MS + 50) * 1000000L};
	nanosleep(&wait, NULL);
	size_t before = searches(t.ctx);
	sign_by(t.ctx, &t.a, t.pa, t.pb);
	cr_assert_eq(searches(t.ctx), before + 1, "a stale confirmed handle was not checked again");
	sign_by(t.ctx, &t.a, t.pa, t.pb);
	two_keys_end(&t);
}

/* More keys than the cache holds: old entries go, signatures stay right. */
Test(pkcs11_keycache, more_keys_than_the_cache_holds, .timeout = 120)
{
	enum { N = 70 };
	kwb_p11 *ctx = backend_open();
	kw_key_blob k[N];
	EVP_PKEY *pk[N];

	for (int i = 0; i < N; i++) {
		k[i] = key_make(ctx);
		pk[i] = kwt_key_public(&kwb_p11_ops, ctx, &k[i]);
		sign_by(ctx, &k[i], pk[i], i > 0 ? pk[i - 1] : NULL);
	}
	size_t before = searches(ctx);
	sign_by(ctx, &k[N - 1], pk[N - 1], pk[0]); /* recent: cached */
	cr_assert_eq(searches(ctx), before);
	sign_by(ctx, &k[0], pk[0], pk[N - 1]); /* least recent: evicted */
	cr_assert_eq(searches(ctx), before + 1);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(kwb_p11_ops.key_destroy(ctx, &k[i], NULL), KW_OK);
		EVP_PKEY_free(pk[i]);
		kw_key_blob_clear(&k[i]);
	}
	kwb_p11_ops.close(ctx);
}
