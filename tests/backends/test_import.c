/*
 * Backends: key_import into the TPM (TPM2_Import) and the SoftHSM token
 * (C_CreateObject), checked from the device itself: the token refuses to give
 * the private value out and says CKA_LOCAL=FALSE; the TPM object has no
 * authPolicy (so TPM2_Duplicate can never be authorised) and
 * sensitiveDataOrigin clear; and signatures made by the device verify against
 * the key that was imported.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include "backend.h"
#include "kwtest.h"

static EVP_PKEY *key_new(kw_key_type type)
{
	EVP_PKEY *k = NULL;
	if (type == KW_KEY_EC_P256)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (type == KW_KEY_EC_P384)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	cr_assert_not_null(k, "openssl makes the key to import");
	return k;
}

/* The device signs; the imported key's public half verifies. */
static void sign_check(const kw_backend_ops *ops, void *ctx, const kw_key_blob *ref, EVP_PKEY *pub,
                       kw_key_type type)
{
	unsigned char dgst[32], sig[512];
	size_t sig_len = sizeof(sig);
	kw_sign_params p = {kw_key_type_is_rsa(type) ? KW_SIG_RSA_PKCS1 : KW_SIG_ECDSA, NID_sha256,
	                    -1};

	memset(dgst, 0x5a, sizeof(dgst));
	cr_assert_eq(ops->key_sign(ctx, ref, &p, dgst, sizeof(dgst), sig, &sig_len), KW_OK,
	             "device signs with the imported key: %s", kw_error_message());
	EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(pub, NULL);
	cr_assert(v != NULL && EVP_PKEY_verify_init(v) == 1 &&
	          EVP_PKEY_CTX_set_signature_md(v, EVP_sha256()) == 1);
	cr_assert_eq(EVP_PKEY_verify(v, sig, sig_len, dgst, sizeof(dgst)), 1,
	             "the device's signature verifies against the imported key");
	/* and not for another digest: the check can fail */
	dgst[0] ^= 1;
	cr_assert_neq(EVP_PKEY_verify(v, sig, sig_len, dgst, sizeof(dgst)), 1);
	EVP_PKEY_CTX_free(v);
}

/* ---- PKCS#11: an independent client reads the object back ---- */

static void p11_secret_unreadable(const kw_key_blob *ref, kw_key_type type)
{
	CK_FUNCTION_LIST *fn = p11_kit_module_load(kwt_env("KW_TEST_P11_MODULE"), 0);
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, found = 0;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	const char *pin = kwt_env("KW_TEST_P11_PIN"), *want = kwt_env("KW_TEST_P11_TOKEN");
	CK_SLOT_ID slot = (CK_SLOT_ID)-1;

	cr_assert_not_null(fn);
	cr_assert_eq(p11_kit_module_initialize(fn), CKR_OK);
	cr_assert_eq(fn->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;
		cr_assert_eq(fn->C_GetTokenInfo(slots[i], &info), CKR_OK);
		if (memcmp(info.label, want, strlen(want)) == 0)
			slot = slots[i];
	}
	cr_assert_neq(slot, (CK_SLOT_ID)-1);
	cr_assert_eq(fn->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
	CK_RV rv = fn->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	cr_assert(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
	CK_ATTRIBUTE t[] = {{CKA_ID, ref->data, ref->len}, {CKA_CLASS, &cls, sizeof(cls)}};
	cr_assert_eq(fn->C_FindObjectsInit(s, t, 2), CKR_OK);
	cr_assert_eq(fn->C_FindObjects(s, &h, 1, &found), CKR_OK);
	cr_assert_eq(fn->C_FindObjectsFinal(s), CKR_OK);
	cr_assert_eq(found, 1, "the imported private key is on the token");
	CK_BBOOL v[3];
	CK_ATTRIBUTE a[] = {
	    {CKA_EXTRACTABLE, &v[0], 1}, {CKA_SENSITIVE, &v[1], 1}, {CKA_LOCAL, &v[2], 1}};
	cr_assert_eq(fn->C_GetAttributeValue(s, h, a, 3), CKR_OK);
	cr_assert_eq(v[0], CK_FALSE, "CKA_EXTRACTABLE");
	cr_assert_eq(v[1], CK_TRUE, "CKA_SENSITIVE");
	cr_assert_eq(v[2], CK_FALSE, "CKA_LOCAL: imported, not generated on the token");
	CK_ATTRIBUTE secret = {kw_key_type_is_rsa(type) ? CKA_PRIVATE_EXPONENT : CKA_VALUE, NULL,
	                       0};
	rv = fn->C_GetAttributeValue(s, h, &secret, 1);
	cr_assert_eq(rv, CKR_ATTRIBUTE_SENSITIVE, "private value readable? rv 0x%lx", rv);
	cr_assert_eq(fn->C_CloseSession(s), CKR_OK);
	cr_assert_eq(p11_kit_module_finalize(fn), CKR_OK);
	p11_kit_module_release(fn);
}

static void import_check(const kw_backend_ops *ops, kw_backend_config cfg, kw_key_type type)
{
	void *ctx = NULL;
	kw_key_blob ref = {0};
	kw_key_attrs a = {0};
	EVP_PKEY *key = key_new(type);

	cr_assert_eq(ops->open(&cfg, &ctx), KW_OK, "open: %s", kw_error_message());
	cr_assert_not_null(ops->key_import, "%s has key_import", ops->kind);
	cr_assert_eq(ops->key_import(ctx, key, type, "keyward:import-test", &ref), KW_OK,
	             "key_import: %s", kw_error_message());
	cr_assert(ref.len > 0);
	cr_assert_eq(ops->key_attrs(ctx, &ref, &a), KW_OK, "key_attrs: %s", kw_error_message());
	cr_assert_eq(a.exportable, 0, "the device says the imported key cannot leave it");
	cr_assert_eq(a.generated_on_device, 0, "the device says the key was imported");
	if (strcmp(ops->kind, "tpm2") == 0) {
		cr_assert(json_is_false(json_object_get(a.evidence, "fixedTPM")));
		cr_assert(json_is_false(json_object_get(a.evidence, "sensitiveDataOrigin")));
		cr_assert(json_is_true(json_object_get(a.evidence, "auth_policy_empty")));
		cr_assert(json_is_false(json_object_get(a.evidence, "duplicable")));
	} else {
		p11_secret_unreadable(&ref, type);
	}
	/* the device's public key is the imported key's */
	unsigned char *der = NULL;
	size_t der_len = 0;
	cr_assert_eq(ops->key_public(ctx, &ref, &der, &der_len), KW_OK, "key_public: %s",
	             kw_error_message());
	const unsigned char *q = der;
	EVP_PKEY *dev_pub = d2i_PUBKEY(NULL, &q, (long)der_len);
	cr_assert_not_null(dev_pub);
	cr_assert_eq(EVP_PKEY_eq(dev_pub, key), 1, "the device holds the public key imported");
	EVP_PKEY_free(dev_pub);
	free(der);
	sign_check(ops, ctx, &ref, key, type);
	cr_assert_eq(ops->key_destroy(ctx, &ref, NULL), KW_OK);
	kw_key_attrs_clear(&a);
	kw_key_blob_clear(&ref);
	EVP_PKEY_free(key);
	ops->close(ctx);
}

Test(import, tpm2_ec_p256)
{
	import_check(&kwb_tpm2_ops, kwt_tpm2_config(), KW_KEY_EC_P256);
}

Test(import, tpm2_ec_p384)
{
	import_check(&kwb_tpm2_ops, kwt_tpm2_config(), KW_KEY_EC_P384);
}

Test(import, tpm2_rsa_2048)
{
	import_check(&kwb_tpm2_ops, kwt_tpm2_config(), KW_KEY_RSA_2048);
}

Test(import, p11_ec_p256)
{
	import_check(&kwb_p11_ops, kwt_p11_config(), KW_KEY_EC_P256);
}

Test(import, p11_rsa_2048)
{
	import_check(&kwb_p11_ops, kwt_p11_config(), KW_KEY_RSA_2048);
}

/* A key type the device cannot hold as asked leaves nothing behind. */
Test(import, p11_refused_key_leaves_no_object)
{
	void *ctx = NULL;
	kw_key_blob ref = {0};
	kw_backend_config cfg = kwt_p11_config();
	EVP_PKEY *key = key_new(KW_KEY_EC_P256);
	int n0 = kwt_p11_object_count();

	cr_assert_eq(kwb_p11_ops.open(&cfg, &ctx), KW_OK);
	/* told it is RSA: the EC key has none of the RSA parts */
	cr_assert_neq(kwb_p11_ops.key_import(ctx, key, KW_KEY_RSA_2048, "x", &ref), KW_OK);
	cr_assert_eq(ref.len, 0);
	kwb_p11_ops.close(ctx);
	cr_assert_eq(kwt_p11_object_count(), n0, "an object was left on the token");
	EVP_PKEY_free(key);
}
