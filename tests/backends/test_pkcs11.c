/*
 * Tests of backends/pkcs11 against the private SoftHSM2 token kw-harness makes.
 *
 * The device checks do not trust the backend: they load the module with
 * p11-kit themselves, log in and read the objects back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include <pthread.h>

#include "backend.h"
#include "pkcs11/p11.h"
#include "kwtest.h"
#include "p11tok.h"

#define KEY_LABEL "kw-test-key"

static CK_ULONG objects_count(const kw_key_blob *ref)
{
	kwt_tok t;
	CK_OBJECT_HANDLE h[256];

	kwt_tok_open(&t, 0);
	CK_ULONG n = kwt_tok_find(&t, ref, NULL, h, 256);
	kwt_tok_close(&t);
	return n;
}

/* The private key must be on the token, non-extractable and its secret unreadable. */
static void device_check(const kw_key_blob *ref, kw_key_type type)
{
	kwt_tok t;
	CK_OBJECT_HANDLE h[4];
	CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY, pub_cls = CKO_PUBLIC_KEY;
	CK_BBOOL v[8];
	char label[64] = {0};
	CK_ATTRIBUTE a[] = {
	    {CKA_EXTRACTABLE, &v[0], 1},
	    {CKA_SENSITIVE, &v[1], 1},
	    {CKA_NEVER_EXTRACTABLE, &v[2], 1},
	    {CKA_ALWAYS_SENSITIVE, &v[3], 1},
	    {CKA_TOKEN, &v[4], 1},
	    {CKA_PRIVATE, &v[5], 1},
	    {CKA_LOCAL, &v[6], 1},
	    {CKA_SIGN, &v[7], 1},
	    {CKA_LABEL, label, sizeof(label) - 1},
	};

	kwt_tok_open(&t, 0);
	cr_assert_eq(kwt_tok_find(&t, ref, &priv_cls, h, 4), 1, "one private key per CKA_ID");
	cr_assert_eq(t.fn->C_GetAttributeValue(t.s, h[0], a, sizeof(a) / sizeof(a[0])), CKR_OK);
	cr_assert_eq(v[0], CK_FALSE, "CKA_EXTRACTABLE");
	cr_assert_eq(v[1], CK_TRUE, "CKA_SENSITIVE");
	cr_assert_eq(v[2], CK_TRUE, "CKA_NEVER_EXTRACTABLE");
	cr_assert_eq(v[3], CK_TRUE, "CKA_ALWAYS_SENSITIVE");
	cr_assert_eq(v[4], CK_TRUE, "CKA_TOKEN");
	cr_assert_eq(v[5], CK_TRUE, "CKA_PRIVATE");
	cr_assert_eq(v[6], CK_TRUE, "CKA_LOCAL");
	cr_assert_eq(v[7], CK_TRUE, "CKA_SIGN");
	cr_assert_str_eq(label, KEY_LABEL);

	/* Nobody renames or copies a keyward key: the attack was pkcs11-tool
	 * --set-id giving the key another CKA_ID. */
	CK_BBOOL mod = CK_TRUE, copy = CK_TRUE;
	CK_ATTRIBUTE lock[] = {{CKA_MODIFIABLE, &mod, 1}, {CKA_COPYABLE, &copy, 1}};
	cr_assert_eq(t.fn->C_GetAttributeValue(t.s, h[0], lock, 2), CKR_OK);
	cr_assert_eq(mod, CK_FALSE, "CKA_MODIFIABLE");
	cr_assert_eq(copy, CK_FALSE, "CKA_COPYABLE");
	unsigned char other_id[] = {0xde, 0xad};
	CK_ATTRIBUTE rename = {CKA_ID, other_id, sizeof(other_id)};
	cr_assert_neq(t.fn->C_SetAttributeValue(t.s, h[0], &rename, 1), CKR_OK,
	              "the token let the private key's CKA_ID be changed");
	CK_OBJECT_HANDLE copied = CK_INVALID_HANDLE;
	cr_assert_neq(t.fn->C_CopyObject(t.s, h[0], &rename, 1, &copied), CKR_OK,
	              "the token let the private key be copied under another CKA_ID");
	cr_assert_eq(kwt_tok_find(&t, ref, &priv_cls, h, 4), 1, "the key kept its CKA_ID");
	CK_OBJECT_HANDLE pubh[2];
	cr_assert_eq(kwt_tok_find(&t, ref, &pub_cls, pubh, 2), 1);
	mod = CK_TRUE;
	cr_assert_eq(t.fn->C_GetAttributeValue(t.s, pubh[0], lock, 1), CKR_OK);
	cr_assert_eq(mod, CK_FALSE, "public key CKA_MODIFIABLE");

	CK_ATTRIBUTE secret = {kw_key_type_is_rsa(type) ? CKA_PRIVATE_EXPONENT : CKA_VALUE, NULL,
	                       0};
	CK_RV rv = t.fn->C_GetAttributeValue(t.s, h[0], &secret, 1);
	cr_assert_eq(rv, CKR_ATTRIBUTE_SENSITIVE, "private value readable? rv 0x%lx", rv);
	cr_assert_eq(secret.ulValueLen, CK_UNAVAILABLE_INFORMATION);

	cr_assert_eq(kwt_tok_find(&t, ref, &pub_cls, h, 4), 1, "one public key per CKA_ID");
	kwt_tok_close(&t);
}

/* ---- backend helpers ---- */

static void *backend_open(const kw_backend_config *cfg)
{
	void *ctx = NULL;

	kw_error_clear();
	kw_rc rc = kwb_p11_ops.open(cfg, &ctx);
	cr_assert_eq(rc, KW_OK, "open: %s (%s)", kw_error_message(), kw_rc_name(rc));
	cr_assert_not_null(ctx);
	return ctx;
}

/* A failing open: no context, a message, and the token untouched. */
static kw_rc open_expect_fail(const kw_backend_config *cfg)
{
	void *ctx = (void *)&ctx;
	CK_ULONG before = objects_count(NULL);

	kw_error_clear();
	kw_rc rc = kwb_p11_ops.open(cfg, &ctx);
	cr_assert_neq(rc, KW_OK, "open succeeded unexpectedly");
	cr_assert_null(ctx, "a failed open must not hand out a context");
	cr_assert_str_neq(kw_error_message(), "", "a failure must say why");
	cr_assert_eq(objects_count(NULL), before, "a failed open changed the token");
	return rc;
}

static kw_key_blob key_make(void *ctx, kw_key_type type)
{
	kw_key_blob ref = {0};
	struct timespec t0, t1;

	kw_error_clear();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	kw_rc rc = kwb_p11_ops.key_generate(ctx, type, KEY_LABEL, &ref);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(rc, KW_OK, "key_generate %s: %s", kw_key_type_name(type), kw_error_message());
	cr_assert_eq(ref.len, 16, "the keyref is the 16-byte CKA_ID");
	cr_log_info("key_generate %s: %.2f s", kw_key_type_name(type),
	            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return ref;
}

static void public_check(EVP_PKEY *pk, kw_key_type type)
{
	static const struct {
		kw_key_type type;
		int base;
		int bits;
		const char *group;
	} want[] = {
	    {KW_KEY_EC_P256, EVP_PKEY_EC, 256, "prime256v1"},
	    {KW_KEY_EC_P384, EVP_PKEY_EC, 384, "secp384r1"},
	    {KW_KEY_RSA_2048, EVP_PKEY_RSA, 2048, NULL},
	    {KW_KEY_RSA_3072, EVP_PKEY_RSA, 3072, NULL},
	    {KW_KEY_RSA_4096, EVP_PKEY_RSA, 4096, NULL},
	};
	char group[64] = "";

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (want[i].type != type)
			continue;
		cr_assert_eq(EVP_PKEY_get_base_id(pk), want[i].base);
		cr_assert_eq(EVP_PKEY_get_bits(pk), want[i].bits);
		if (want[i].group) {
			cr_assert(EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
			                                         group, sizeof(group), NULL));
			cr_assert_str_eq(group, want[i].group);
		}
		return;
	}
	cr_assert_fail("no expectation for key type %d", (int)type);
}

static int verify(EVP_PKEY *pk, const kw_sign_params *sp, const unsigned char *dgst,
                  size_t dgst_len, const unsigned char *sig, size_t sig_len)
{
	const EVP_MD *md = EVP_get_digestbynid(sp->md_nid);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);

	cr_assert_not_null(c);
	cr_assert_eq(EVP_PKEY_verify_init(c), 1);
	cr_assert_gt(EVP_PKEY_CTX_set_signature_md(c, md), 0);
	if (sp->scheme == KW_SIG_RSA_PKCS1)
		cr_assert_gt(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 0);
	if (sp->scheme == KW_SIG_RSA_PSS) {
		cr_assert_gt(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING), 0);
		cr_assert_gt(EVP_PKEY_CTX_set_rsa_mgf1_md(c, md), 0);
		/* Exact salt length: the backend must use what was asked for. */
		cr_assert_gt(EVP_PKEY_CTX_set_rsa_pss_saltlen(c, sp->pss_saltlen == -1
		                                                     ? RSA_PSS_SALTLEN_DIGEST
		                                                     : sp->pss_saltlen),
		             0);
	}
	int r = EVP_PKEY_verify(c, sig, sig_len, dgst, dgst_len);
	ERR_clear_error();
	EVP_PKEY_CTX_free(c);
	return r;
}

static void sign_check(void *ctx, const kw_key_blob *ref, EVP_PKEY *pk, kw_sig_scheme scheme,
                       int md_nid, int saltlen)
{
	static const char msg[] = "keyward pkcs11 test message";
	unsigned char dgst[EVP_MAX_MD_SIZE], sig[1024];
	unsigned int dgst_len = 0;
	size_t sig_len = sizeof(sig);
	kw_sign_params sp = {scheme, md_nid, saltlen};

	cr_assert(
	    EVP_Digest(msg, sizeof(msg) - 1, dgst, &dgst_len, EVP_get_digestbynid(md_nid), NULL));
	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_sign(ctx, ref, &sp, dgst, dgst_len, sig, &sig_len), KW_OK,
	             "key_sign scheme %d %s: %s", (int)scheme, OBJ_nid2sn(md_nid),
	             kw_error_message());
	if (scheme != KW_SIG_ECDSA)
		cr_assert_eq(sig_len, (size_t)EVP_PKEY_get_size(pk),
		             "RSA signature is modulus-sized");
	cr_assert_eq(verify(pk, &sp, dgst, dgst_len, sig, sig_len), 1,
	             "scheme %d %s salt %d does not verify", (int)scheme, OBJ_nid2sn(md_nid),
	             saltlen);
	dgst[dgst_len / 2] ^= 0x01;
	cr_assert_neq(verify(pk, &sp, dgst, dgst_len, sig, sig_len), 1,
	              "a signature verifies against a different digest");
}

static void attrs_check(void *ctx, const kw_key_blob *ref)
{
	kw_key_attrs a = {0};
	char hex[33];

	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_attrs(ctx, ref, &a), KW_OK, "key_attrs: %s",
	             kw_error_message());
	cr_assert_eq(a.exportable, 0);
	cr_assert_eq(a.generated_on_device, 1);
	cr_assert_not_null(a.evidence);
	for (size_t i = 0; i < ref->len; i++)
		snprintf(hex + 2 * i, 3, "%02x", ref->data[i]);
	cr_assert_str_eq(json_string_value(json_object_get(a.evidence, "device")), "pkcs11");
	cr_assert_str_eq(json_string_value(json_object_get(a.evidence, "token")),
	                 kwt_env("KW_TEST_P11_TOKEN"));
	cr_assert_str_eq(json_string_value(json_object_get(a.evidence, "CKA_ID")), hex);
	cr_assert(json_is_false(json_object_get(a.evidence, "CKA_EXTRACTABLE")));
	cr_assert(json_is_false(json_object_get(a.evidence, "CKA_MODIFIABLE")));
	cr_assert(json_is_false(json_object_get(a.evidence, "CKA_COPYABLE")));
	static const char *const yes[] = {"CKA_SENSITIVE",
	                                  "CKA_NEVER_EXTRACTABLE",
	                                  "CKA_ALWAYS_SENSITIVE",
	                                  "CKA_LOCAL",
	                                  "CKA_TOKEN",
	                                  "CKA_PRIVATE"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_assert(json_is_true(json_object_get(a.evidence, yes[i])), "%s", yes[i]);
	kw_key_attrs_clear(&a);
}

/* After destroy: nothing on the token, and every operation says NOT_FOUND. */
static void gone_check(void *ctx, const kw_key_blob *ref)
{
	unsigned char *der = NULL, dgst[32] = {0}, sig[1024];
	size_t der_len = 0, sig_len = sizeof(sig);
	kw_sign_params sp = {KW_SIG_ECDSA, NID_sha256, -1};
	kw_key_attrs a = {0};

	cr_assert_eq(objects_count(ref), 0, "objects left after key_destroy");
	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_public(ctx, ref, &der, &der_len), KW_ERR_NOT_FOUND);
	cr_assert_null(der);
	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_sign(ctx, ref, &sp, dgst, sizeof(dgst), sig, &sig_len),
	             KW_ERR_NOT_FOUND);
	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_attrs(ctx, ref, &a), KW_ERR_NOT_FOUND);
	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_destroy(ctx, ref, NULL), KW_ERR_NOT_FOUND);
}

static void key_lifecycle(kw_key_type type)
{
	kw_backend_config cfg = kwt_p11_config();
	void *ctx = backend_open(&cfg);
	CK_ULONG before = objects_count(NULL);
	kw_key_blob ref = key_make(ctx, type);

	cr_assert_eq(objects_count(&ref), 2, "a private and a public key object");
	EVP_PKEY *pk = kwt_key_public(&kwb_p11_ops, ctx, &ref);
	public_check(pk, type);
	if (kw_key_type_is_rsa(type)) {
		sign_check(ctx, &ref, pk, KW_SIG_RSA_PKCS1, NID_sha256, -1);
		sign_check(ctx, &ref, pk, KW_SIG_RSA_PSS, NID_sha256, -1);
		sign_check(ctx, &ref, pk, KW_SIG_RSA_PKCS1, NID_sha384, -1);
		sign_check(ctx, &ref, pk, KW_SIG_RSA_PSS, NID_sha384, -1);
		sign_check(ctx, &ref, pk, KW_SIG_RSA_PKCS1, NID_sha512, -1);
		sign_check(ctx, &ref, pk, KW_SIG_RSA_PSS, NID_sha256, 20);
	} else {
		sign_check(ctx, &ref, pk, KW_SIG_ECDSA, NID_sha256, -1);
		sign_check(ctx, &ref, pk, KW_SIG_ECDSA, NID_sha384, -1);
	}
	device_check(&ref, type);
	attrs_check(ctx, &ref);
	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_destroy(ctx, &ref, NULL), KW_OK, "key_destroy: %s",
	             kw_error_message());
	gone_check(ctx, &ref);
	cr_assert_eq(objects_count(NULL), before, "the token holds what it held before");
	EVP_PKEY_free(pk);
	kw_key_blob_clear(&ref);
	kwb_p11_ops.close(ctx);
}

/* Deletes the public key object behind the backend's back. */
static void public_object_delete(const kw_key_blob *ref)
{
	kwt_tok t;
	CK_OBJECT_HANDLE h[4];
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;

	kwt_tok_open(&t, CKF_RW_SESSION);
	cr_assert_eq(kwt_tok_find(&t, ref, &cls, h, 4), 1);
	cr_assert_eq(t.fn->C_DestroyObject(t.s, h[0]), CKR_OK);
	kwt_tok_close(&t);
}

static unsigned char *public_der(void *ctx, const kw_key_blob *ref, size_t *len)
{
	unsigned char *der = NULL;

	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_public(ctx, ref, &der, len), KW_OK, "key_public: %s",
	             kw_error_message());
	return der;
}

/* ---- key types ---- */

Test(pkcs11, ec_p256_key_is_made_used_and_destroyed_on_token)
{
	key_lifecycle(KW_KEY_EC_P256);
}

Test(pkcs11, ec_p384_key_is_made_used_and_destroyed_on_token)
{
	key_lifecycle(KW_KEY_EC_P384);
}

Test(pkcs11, rsa_2048_key_is_made_used_and_destroyed_on_token)
{
	key_lifecycle(KW_KEY_RSA_2048);
}

Test(pkcs11, rsa_3072_key_is_made_used_and_destroyed_on_token)
{
	key_lifecycle(KW_KEY_RSA_3072);
}

Test(pkcs11, rsa_4096_key_is_made_used_and_destroyed_on_token)
{
	key_lifecycle(KW_KEY_RSA_4096);
}

Test(pkcs11, rsa_public_key_is_read_from_private_object_when_public_is_gone)
{
	kw_backend_config cfg = kwt_p11_config();
	void *ctx = backend_open(&cfg);
	kw_key_blob ref = key_make(ctx, KW_KEY_RSA_2048);
	size_t len1 = 0, len2 = 0;
	unsigned char *der1 = public_der(ctx, &ref, &len1);

	public_object_delete(&ref);
	cr_assert_eq(objects_count(&ref), 1, "only the private key is left");
	unsigned char *der2 = public_der(ctx, &ref, &len2);
	cr_assert_eq(len1, len2);
	cr_assert_eq(memcmp(der1, der2, len1), 0, "same public key from the private object");
	cr_assert_eq(kwb_p11_ops.key_destroy(ctx, &ref, NULL), KW_OK, "%s", kw_error_message());
	cr_assert_eq(objects_count(&ref), 0);
	free(der1);
	free(der2);
	kw_key_blob_clear(&ref);
	kwb_p11_ops.close(ctx);
}

Test(pkcs11, ec_public_key_without_public_object_is_not_found)
{
	kw_backend_config cfg = kwt_p11_config();
	void *ctx = backend_open(&cfg);
	kw_key_blob ref = key_make(ctx, KW_KEY_EC_P256);
	unsigned char *der = NULL;
	size_t len = 0;

	public_object_delete(&ref);
	kw_error_clear();
	/* SoftHSM keeps no CKA_EC_POINT on the private key: nothing to rebuild from. */
	cr_assert_eq(kwb_p11_ops.key_public(ctx, &ref, &der, &len), KW_ERR_NOT_FOUND, "%s",
	             kw_error_message());
	cr_assert_null(der);
	cr_assert(strstr(kw_error_message(), "CKA_EC_POINT"), "%s", kw_error_message());
	cr_assert_eq(kwb_p11_ops.key_destroy(ctx, &ref, NULL), KW_OK, "%s", kw_error_message());
	cr_assert_eq(objects_count(&ref), 0);
	kw_key_blob_clear(&ref);
	kwb_p11_ops.close(ctx);
}

/* ---- module and token selection ---- */

Test(pkcs11, opens_module_by_p11kit_name)
{
	kw_backend_config cfg = kwt_p11_config();
	cfg.module = "softhsm2";
	void *ctx = backend_open(&cfg);
	kw_key_blob ref = key_make(ctx, KW_KEY_EC_P256);

	/* The key landed on the harness's token, seen through the module path. */
	cr_assert_eq(objects_count(&ref), 2);
	cr_assert_eq(kwb_p11_ops.key_destroy(ctx, &ref, NULL), KW_OK, "%s", kw_error_message());
	cr_assert_eq(objects_count(&ref), 0);
	kw_key_blob_clear(&ref);
	kwb_p11_ops.close(ctx);
}

Test(pkcs11, unknown_module_name_is_not_found_and_lists_registered)
{
	kw_backend_config cfg = kwt_p11_config();
	cfg.module = "kw-no-such-module";

	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(), "kw-no-such-module"), "%s", kw_error_message());
	cr_assert(strstr(kw_error_message(), "softhsm2"), "%s", kw_error_message());
}

Test(pkcs11, missing_module_path_is_not_found)
{
	kw_backend_config cfg = kwt_p11_config();
	cfg.module = "/nonexistent/kw/libnope-pkcs11.so";

	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(), cfg.module), "%s", kw_error_message());
}

Test(pkcs11, module_path_that_is_not_a_module_is_unavailable)
{
	char *dir = kwt_tmpdir("mod");
	char *path = kwt_write_file(dir, "fake.so", "not an ELF", 10, 0600);
	kw_backend_config cfg = kwt_p11_config();
	cfg.module = path;

	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_UNAVAILABLE);
	cr_assert(strstr(kw_error_message(), path), "%s", kw_error_message());
	free(path);
	free(dir);
}

Test(pkcs11, selects_token_by_rfc7512_uri)
{
	kw_backend_config cfg = kwt_p11_config();
	char uri[128];
	snprintf(uri, sizeof(uri), "pkcs11:token=%s", kwt_env("KW_TEST_P11_TOKEN"));
	cfg.token = uri;
	void *ctx = backend_open(&cfg);
	kw_key_blob ref = key_make(ctx, KW_KEY_EC_P256);
	kw_key_attrs a = {0};

	cr_assert_eq(kwb_p11_ops.key_attrs(ctx, &ref, &a), KW_OK, "%s", kw_error_message());
	cr_assert_str_eq(json_string_value(json_object_get(a.evidence, "token")),
	                 kwt_env("KW_TEST_P11_TOKEN"));
	kw_key_attrs_clear(&a);
	cr_assert_eq(objects_count(&ref), 2, "the key is on the harness token");
	cr_assert_eq(kwb_p11_ops.key_destroy(ctx, &ref, NULL), KW_OK, "%s", kw_error_message());
	cr_assert_eq(objects_count(&ref), 0);
	kw_key_blob_clear(&ref);
	kwb_p11_ops.close(ctx);
}

Test(pkcs11, uri_matching_no_token_is_not_found)
{
	kw_backend_config cfg = kwt_p11_config();
	cfg.token = "pkcs11:token=kw-absent";
	CK_ULONG before = objects_count(NULL);

	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(), "pkcs11:token=kw-absent"), "%s", kw_error_message());
	cr_assert_eq(objects_count(NULL), before);
}

Test(pkcs11, malformed_uri_is_parse_error)
{
	kw_backend_config cfg = kwt_p11_config();
	cfg.token = "pkcs11:token=kw%zztest";
	CK_ULONG before = objects_count(NULL);

	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_PARSE);
	cr_assert(strstr(kw_error_message(), "pkcs11:token=kw%zztest"), "%s", kw_error_message());
	cr_assert_eq(objects_count(NULL), before);
}

Test(pkcs11, uri_with_non_token_attributes_is_parse_error)
{
	kw_backend_config cfg = kwt_p11_config();
	cfg.token = "pkcs11:tokn=kw-test";

	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_PARSE);
	kw_error_clear();
	cfg.token = "pkcs11:object=foo;token=kw-test";
	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_PARSE);
}

Test(pkcs11, uri_carrying_a_pin_is_refused_without_echoing_it)
{
	kw_backend_config cfg = kwt_p11_config();
	cfg.token = "pkcs11:token=kw-test?pin-value=13579";

	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_USAGE);
	cr_assert_null(strstr(kw_error_message(), "13579"), "%s", kw_error_message());
}

Test(pkcs11, unknown_token_label_is_not_found_and_lists_labels)
{
	kw_backend_config cfg = kwt_p11_config();
	cfg.token = "kw-no-such-token";
	CK_ULONG before = objects_count(NULL);

	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(), "no PKCS#11 token 'kw-no-such-token' in module"), "%s",
	          kw_error_message());
	cr_assert(strstr(kw_error_message(), kwt_env("KW_TEST_P11_TOKEN")), "%s",
	          kw_error_message());
	cr_assert_eq(objects_count(NULL), before);
}

/* ---- PIN sources ---- */

Test(pkcs11, wrong_pin_is_auth_error_and_not_in_message)
{
	static const char wrong[] = "86420975";
	char *dir = kwt_tmpdir("pin");
	char *path = kwt_write_file(dir, "wrong.pin", wrong, sizeof(wrong) - 1, 0600);
	char source[4200];
	kw_backend_config cfg = kwt_p11_config();
	CK_ULONG before = objects_count(NULL);

	snprintf(source, sizeof(source), "file:%s", path);
	cfg.pin_source = source;
	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_AUTH);
	cr_assert_eq(kw_error_device_code(), CKR_PIN_INCORRECT);
	cr_assert(strstr(kw_error_message(), "wrong PIN for token 'kw-test'"), "%s",
	          kw_error_message());
	cr_assert_null(strstr(kw_error_message(), wrong), "the PIN leaked into the message");
	cr_assert_null(strstr(kw_error_message(), kwt_env("KW_TEST_P11_PIN")));
	/* Logging in with the right PIN here also resets SoftHSM's failure count. */
	cr_assert_eq(objects_count(NULL), before);
	free(path);
	free(dir);
}

Test(pkcs11, group_readable_pin_file_is_refused)
{
	const char *pin = kwt_env("KW_TEST_P11_PIN");
	char *dir = kwt_tmpdir("pin");
	char *path = kwt_write_file(dir, "open.pin", pin, strlen(pin), 0644);
	char source[4200];
	kw_backend_config cfg = kwt_p11_config();
	CK_ULONG before = objects_count(NULL);

	snprintf(source, sizeof(source), "file:%s", path);
	cfg.pin_source = source;
	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_PERM);
	cr_assert(strstr(kw_error_message(), "chmod 600"), "%s", kw_error_message());
	cr_assert_eq(objects_count(NULL), before);
	free(path);
	free(dir);
}

Test(pkcs11, env_pin_source_logs_in)
{
	kw_backend_config cfg = kwt_p11_config();
	cr_assert_eq(setenv("KW_TEST_P11_ENV_PIN", kwt_env("KW_TEST_P11_PIN"), 1), 0);
	cfg.pin_source = "env:KW_TEST_P11_ENV_PIN";
	void *ctx = backend_open(&cfg);
	/* Creating a CKA_PRIVATE object needs the login to have worked. */
	kw_key_blob ref = key_make(ctx, KW_KEY_EC_P256);

	cr_assert_eq(kwb_p11_ops.key_destroy(ctx, &ref, NULL), KW_OK, "%s", kw_error_message());
	kw_key_blob_clear(&ref);
	kwb_p11_ops.close(ctx);
}

Test(pkcs11, unset_env_pin_source_fails)
{
	kw_backend_config cfg = kwt_p11_config();
	CK_ULONG before = objects_count(NULL);

	cr_assert_eq(unsetenv("KW_TEST_P11_UNSET_PIN"), 0);
	cfg.pin_source = "env:KW_TEST_P11_UNSET_PIN";
	cr_assert_eq(open_expect_fail(&cfg), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(), "KW_TEST_P11_UNSET_PIN"), "%s", kw_error_message());
	cr_assert_eq(objects_count(NULL), before);
}

/* ---- keys that are not there, bad arguments ---- */

Test(pkcs11, missing_key_id_is_not_found)
{
	kw_backend_config cfg = kwt_p11_config();
	void *ctx = backend_open(&cfg);
	unsigned char id[16];
	kw_key_blob ref = {id, sizeof(id)};
	CK_ULONG before = objects_count(NULL);

	cr_assert_eq(RAND_bytes(id, sizeof(id)), 1);
	gone_check(ctx, &ref);
	cr_assert(strstr(kw_error_message(), "no private key with CKA_ID"), "%s",
	          kw_error_message());
	cr_assert_eq(objects_count(NULL), before);
	kwb_p11_ops.close(ctx);
}

Test(pkcs11, bad_arguments_are_usage_errors_and_leave_nothing)
{
	kw_backend_config cfg = kwt_p11_config();
	void *ctx = backend_open(&cfg);
	kw_key_blob empty = {NULL, 0}, out = {0};
	unsigned char *der = NULL;
	size_t der_len = 0;
	CK_ULONG before = objects_count(NULL);

	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_public(ctx, &empty, &der, &der_len), KW_ERR_USAGE);
	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_generate(ctx, (kw_key_type)0, KEY_LABEL, &out),
	             KW_ERR_UNSUPPORTED);
	cr_assert_null(out.data);
	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_public(NULL, &empty, &der, &der_len), KW_ERR_USAGE);
	cr_assert_eq(objects_count(NULL), before);
	kwb_p11_ops.close(ctx);
}

Test(pkcs11, sign_rejects_small_buffer_wrong_scheme_and_digest_length)
{
	kw_backend_config cfg = kwt_p11_config();
	void *ctx = backend_open(&cfg);
	CK_ULONG before = objects_count(NULL);
	kw_key_blob ref = key_make(ctx, KW_KEY_EC_P256);
	unsigned char dgst[32] = {1}, sig[256];
	size_t sig_len = 8;
	kw_sign_params ecdsa = {KW_SIG_ECDSA, NID_sha256, -1};
	kw_sign_params pkcs1 = {KW_SIG_RSA_PKCS1, NID_sha256, -1};
	kw_sign_params sha1 = {KW_SIG_ECDSA, NID_sha1, -1};

	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_sign(ctx, &ref, &ecdsa, dgst, 32, sig, &sig_len),
	             KW_ERR_USAGE);
	cr_assert(strstr(kw_error_message(), "too small"), "%s", kw_error_message());
	kw_error_clear();
	sig_len = sizeof(sig);
	cr_assert_eq(kwb_p11_ops.key_sign(ctx, &ref, &pkcs1, dgst, 32, sig, &sig_len),
	             KW_ERR_USAGE);
	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_sign(ctx, &ref, &ecdsa, dgst, 20, sig, &sig_len),
	             KW_ERR_USAGE);
	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_sign(ctx, &ref, &sha1, dgst, 20, sig, &sig_len),
	             KW_ERR_UNSUPPORTED);
	/* The key still works after all that. */
	kw_error_clear();
	cr_assert_eq(kwb_p11_ops.key_sign(ctx, &ref, &ecdsa, dgst, 32, sig, &sig_len), KW_OK, "%s",
	             kw_error_message());
	cr_assert_eq(kwb_p11_ops.key_destroy(ctx, &ref, NULL), KW_OK, "%s", kw_error_message());
	cr_assert_eq(objects_count(NULL), before);
	kw_key_blob_clear(&ref);
	kwb_p11_ops.close(ctx);
}

Test(pkcs11, ops_table_is_complete_and_close_null_is_noop)
{
	const kw_backend_ops *ops = kw_backend_ops_find("pkcs11");

	cr_assert_eq(ops, &kwb_p11_ops);
	cr_assert_str_eq(ops->kind, "pkcs11");
	cr_assert(ops->open && ops->close && ops->key_generate && ops->key_public &&
	          ops->key_sign && ops->key_attrs && ops->key_destroy);
	ops->close(NULL);
}

/* Threads sign at once on one context: each signature takes a session of its
 * own from the pool, so threads do not queue on one session, and every
 * signature is right. */
typedef struct {
	void *ctx;
	const kw_key_blob *ref;
	EVP_PKEY *pk;
	int bad;
} signer_job;

static void *signer_thread(void *arg)
{
	signer_job *j = arg;
	const kw_sign_params sp = {KW_SIG_ECDSA, NID_sha256, -1};
	for (int i = 0; i < 40; i++) {
		unsigned char dgst[32], sig[128];
		size_t len = sizeof(sig);
		RAND_bytes(dgst, sizeof(dgst));
		if (kwb_p11_ops.key_sign(j->ctx, j->ref, &sp, dgst, sizeof(dgst), sig, &len) !=
		        KW_OK ||
		    verify(j->pk, &sp, dgst, sizeof(dgst), sig, len) != 1)
			j->bad++;
	}
	return NULL;
}

Test(pkcs11, eight_threads_sign_at_once_on_a_pool_of_sessions)
{
	kw_backend_config cfg = kwt_p11_config();
	void *ctx = backend_open(&cfg);
	kw_key_blob ref = key_make(ctx, KW_KEY_EC_P256);
	EVP_PKEY *pk = kwt_key_public(&kwb_p11_ops, ctx, &ref);
	pthread_t t[8];
	signer_job jobs[8];
	for (int i = 0; i < 8; i++) {
		jobs[i] = (signer_job){ctx, &ref, pk, 0};
		cr_assert_eq(pthread_create(&t[i], NULL, signer_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(jobs[i].bad, 0, "thread %d: %d bad signatures", i, jobs[i].bad);
	}
	size_t opened = kwb_p11_pool_opened(ctx);
	cr_assert(opened > 1 && opened <= 8, "%zu signing sessions for 8 threads", opened);
	EVP_PKEY_free(pk);
	cr_assert_eq(kwb_p11_ops.key_destroy(ctx, &ref, NULL), KW_OK, "%s", kw_error_message());
	kw_key_blob_clear(&ref);
	kwb_p11_ops.close(ctx);
}
