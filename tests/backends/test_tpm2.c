/*
 * Tests of backends/tpm2 against the harness's private swtpm.
 *
 * swtpm serves one connection at a time and has no resource manager: the
 * backend context is closed before the test opens its own ESYS context to
 * check the device, and objects left loaded by anyone stay loaded across
 * connections, which is what the "no transient object left" checks see.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "esys_dev.h"
#include "kwtest.h"
#include "tpm2/tpm2_internal.h"

#define SRK_HANDLE 0x81000001u
/* tpm2-tss's TPM2_TRANSIENT_FIRST / TPM2_PERSISTENT_FIRST shift 0x80 into an
 * int's sign bit (UBSan flags it) */
#define TRANSIENT_FIRST  0x80000000u
#define PERSISTENT_FIRST 0x81000000u
#define SIGNING_ATTRS                                                                              \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |        \
	 TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_NODA)

/* ------------------------------------------------------------------ */
/* The test's own view of the TPM (independent of the backend's code)  */
/* ------------------------------------------------------------------ */

/* dev, dev_open, dev_close: support/esys_dev.h */

static TPML_HANDLE dev_handles(dev *d, TPM2_HANDLE first)
{
	TPMI_YES_NO more = 0;
	TPMS_CAPABILITY_DATA *cap = NULL;
	TSS2_RC rc = Esys_GetCapability(d->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                                TPM2_CAP_HANDLES, first, TPM2_MAX_CAP_HANDLES, &more, &cap);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "GetCapability: %s", Tss2_RC_Decode(rc));
	TPML_HANDLE h = cap->data.handles;
	Esys_Free(cap);
	return h;
}

static int dev_transient_count(dev *d)
{
	return (int)dev_handles(d, TRANSIENT_FIRST).count;
}

static int dev_has_persistent_srk(dev *d)
{
	TPML_HANDLE h = dev_handles(d, PERSISTENT_FIRST);
	for (UINT32 i = 0; i < h.count; i++)
		if (h.handle[i] == SRK_HANDLE)
			return 1;
	return 0;
}

/* The test's own copy of the TCG ECC P-256 storage key template. */
static TPM2B_PUBLIC storage_template(void)
{
	TPM2B_PUBLIC t = {0};
	t.publicArea.type = TPM2_ALG_ECC;
	t.publicArea.nameAlg = TPM2_ALG_SHA256;
	t.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                                TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
	                                TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
	                                TPMA_OBJECT_DECRYPT;
	t.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	t.publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
	t.publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	t.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	t.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	t.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	return t;
}

static ESYS_TR dev_primary(dev *d, const TPM2B_PUBLIC *tmpl)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION pcrs = {0};
	ESYS_TR h = ESYS_TR_NONE;
	TSS2_RC rc = Esys_CreatePrimary(d->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                                ESYS_TR_NONE, &sens, tmpl, &outside, &pcrs, &h, NULL, NULL,
	                                NULL, NULL);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "CreatePrimary: %s", Tss2_RC_Decode(rc));
	return h;
}

/* Makes tmpl's primary persistent at 0x81000001. */
static void dev_persist_primary(const TPM2B_PUBLIC *tmpl)
{
	dev d;
	ESYS_TR persistent = ESYS_TR_NONE;
	dev_open(&d);
	ESYS_TR h = dev_primary(&d, tmpl);
	TSS2_RC rc = Esys_EvictControl(d.esys, ESYS_TR_RH_OWNER, h, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                               ESYS_TR_NONE, SRK_HANDLE, &persistent);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "EvictControl: %s", Tss2_RC_Decode(rc));
	cr_assert_eq(Esys_FlushContext(d.esys, h), TSS2_RC_SUCCESS);
	cr_assert(dev_has_persistent_srk(&d));
	dev_close(&d);
}

static void dev_evict_srk(dev *d)
{
	ESYS_TR tr = ESYS_TR_NONE, none = ESYS_TR_NONE;
	if (!dev_has_persistent_srk(d))
		return;
	cr_assert_eq(Esys_TR_FromTPMPublic(d->esys, SRK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE,
	                                   ESYS_TR_NONE, &tr),
	             TSS2_RC_SUCCESS);
	TSS2_RC rc = Esys_EvictControl(d->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD,
	                               ESYS_TR_NONE, ESYS_TR_NONE, SRK_HANDLE, &none);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "EvictControl: %s", Tss2_RC_Decode(rc));
}

/* Every test starts from a TPM with nothing loaded and no persistent SRK,
 * whatever an earlier failed test left behind. */
static void fresh_tpm(void)
{
	dev d;
	dev_open(&d);
	TPML_HANDLE h = dev_handles(&d, TRANSIENT_FIRST);
	for (UINT32 i = 0; i < h.count; i++) {
		ESYS_TR tr = ESYS_TR_NONE;
		if (Esys_TR_FromTPMPublic(d.esys, h.handle[i], ESYS_TR_NONE, ESYS_TR_NONE,
		                          ESYS_TR_NONE, &tr) == TSS2_RC_SUCCESS)
			Esys_FlushContext(d.esys, tr);
	}
	dev_evict_srk(&d);
	cr_assert_eq(dev_transient_count(&d), 0);
	dev_close(&d);
}

static void evict_srk_after(void)
{
	dev d;
	dev_open(&d);
	dev_evict_srk(&d);
	dev_close(&d);
}

static void assert_no_object_left(void)
{
	dev d;
	dev_open(&d);
	cr_assert_eq(dev_transient_count(&d), 0, "the backend left objects loaded in the TPM");
	dev_close(&d);
}

/* Splits a version-1 key reference the way the backend documents it. */
static void blob_split(const kw_key_blob *ref, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv)
{
	size_t off = 1;
	memset(pub, 0, sizeof(*pub));
	memset(priv, 0, sizeof(*priv));
	cr_assert(ref->len > 1);
	cr_assert_eq(ref->data[0], 1, "key reference format version");
	cr_assert_eq(Tss2_MU_TPM2B_PUBLIC_Unmarshal(ref->data, ref->len, &off, pub),
	             TSS2_RC_SUCCESS);
	cr_assert_eq(Tss2_MU_TPM2B_PRIVATE_Unmarshal(ref->data, ref->len, &off, priv),
	             TSS2_RC_SUCCESS);
	cr_assert_eq(off, ref->len, "trailing bytes in the key blob");
	cr_assert(priv->size > 0);
}

/* Loads the stored blob with the test's own ESYS context and asserts what the
 * TPM itself says about it. The backend must be closed. */
static void dev_prove_attrs(const kw_key_blob *ref)
{
	TPM2B_PUBLIC pub, *read = NULL;
	TPM2B_PRIVATE priv;
	dev d;

	blob_split(ref, &pub, &priv);
	dev_open(&d);
	cr_assert_eq(dev_transient_count(&d), 0, "the backend left objects loaded in the TPM");
	TPM2B_PUBLIC tmpl = storage_template();
	ESYS_TR parent = dev_primary(&d, &tmpl), key = ESYS_TR_NONE;
	TSS2_RC rc = Esys_Load(d.esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv,
	                       &pub, &key);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "Load of the stored blob: %s", Tss2_RC_Decode(rc));
	rc = Esys_ReadPublic(d.esys, key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &read, NULL,
	                     NULL);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "ReadPublic: %s", Tss2_RC_Decode(rc));
	TPMA_OBJECT a = read->publicArea.objectAttributes;
	cr_assert(a & TPMA_OBJECT_FIXEDTPM);
	cr_assert(a & TPMA_OBJECT_FIXEDPARENT);
	cr_assert(a & TPMA_OBJECT_SENSITIVEDATAORIGIN);
	cr_assert(a & TPMA_OBJECT_USERWITHAUTH);
	cr_assert(a & TPMA_OBJECT_SIGN_ENCRYPT);
	cr_assert(a & TPMA_OBJECT_NODA, "a power loss would count against the key");
	cr_assert_not(a & TPMA_OBJECT_DECRYPT);
	cr_assert_not(a & TPMA_OBJECT_RESTRICTED);
	cr_assert_eq(a, SIGNING_ATTRS, "objectAttributes 0x%08x", (unsigned)a);
	cr_assert_eq(read->publicArea.nameAlg, TPM2_ALG_SHA256);
	Esys_Free(read);
	cr_assert_eq(Esys_FlushContext(d.esys, key), TSS2_RC_SUCCESS);
	cr_assert_eq(Esys_FlushContext(d.esys, parent), TSS2_RC_SUCCESS);
	cr_assert_eq(dev_transient_count(&d), 0);
	dev_close(&d);
}

/* ------------------------------------------------------------------ */
/* Backend helpers                                                     */
/* ------------------------------------------------------------------ */

static void *tpm_open(void)
{
	kw_backend_config cfg = kwt_tpm2_config();
	void *ctx = NULL;
	kw_error_clear();
	kw_rc rc = kwb_tpm2_ops.open(&cfg, &ctx);
	cr_assert_eq(rc, KW_OK, "open: %s", kw_error_message());
	cr_assert_not_null(ctx);
	return ctx;
}

static kw_key_blob generate(void *ctx, kw_key_type type)
{
	kw_key_blob ref = {0};
	kw_error_clear();
	kw_rc rc = kwb_tpm2_ops.key_generate(ctx, type, "test", &ref);
	cr_assert_eq(rc, KW_OK, "key_generate %s: %s", kw_key_type_name(type), kw_error_message());
	cr_assert(ref.data != NULL && ref.len > 100);
	return ref;
}

static EVP_PKEY *public_key(void *ctx, const kw_key_blob *ref, unsigned char **der_out,
                            size_t *der_len_out)
{
	unsigned char *der = NULL;
	size_t der_len = 0;
	kw_error_clear();
	kw_rc rc = kwb_tpm2_ops.key_public(ctx, ref, &der, &der_len);
	cr_assert_eq(rc, KW_OK, "key_public: %s", kw_error_message());
	const unsigned char *p = der;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)der_len);
	cr_assert_not_null(pk, "key_public did not return DER SubjectPublicKeyInfo");
	cr_assert_eq(p, der + der_len, "trailing bytes after the SubjectPublicKeyInfo");
	if (der_out != NULL) {
		*der_out = der;
		*der_len_out = der_len;
	} else {
		free(der);
	}
	return pk;
}

static void check_key_shape(EVP_PKEY *pk, kw_key_type type)
{
	char group[64] = "";
	switch (type) {
	case KW_KEY_EC_P256:
	case KW_KEY_EC_P384:
		cr_assert_eq(EVP_PKEY_get_base_id(pk), EVP_PKEY_EC);
		cr_assert(EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                         sizeof(group), NULL));
		cr_assert_str_eq(group, type == KW_KEY_EC_P256 ? "prime256v1" : "secp384r1");
		cr_assert_eq(EVP_PKEY_get_bits(pk), type == KW_KEY_EC_P256 ? 256 : 384);
		break;
	default:
		cr_assert_eq(EVP_PKEY_get_base_id(pk), EVP_PKEY_RSA);
		cr_assert_eq(EVP_PKEY_get_bits(pk), type == KW_KEY_RSA_2048   ? 2048
		                                    : type == KW_KEY_RSA_3072 ? 3072
		                                                              : 4096);
		break;
	}
}

static size_t digest(int nid, const char *msg, unsigned char *out)
{
	unsigned int len = 0;
	cr_assert(EVP_Digest(msg, strlen(msg), out, &len, EVP_get_digestbynid(nid), NULL));
	return len;
}

/* 1 when sig verifies over dgst with OpenSSL, else 0. */
static int ossl_verify(EVP_PKEY *pk, kw_sig_scheme scheme, int nid, int saltlen,
                       const unsigned char *dgst, size_t dlen, const unsigned char *sig,
                       size_t slen)
{
	EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(pk, NULL);
	const EVP_MD *md = EVP_get_digestbynid(nid);
	cr_assert(v != NULL && EVP_PKEY_verify_init(v) == 1);
	cr_assert(EVP_PKEY_CTX_set_signature_md(v, md) == 1);
	if (scheme == KW_SIG_RSA_PKCS1)
		cr_assert(EVP_PKEY_CTX_set_rsa_padding(v, RSA_PKCS1_PADDING) == 1);
	if (scheme == KW_SIG_RSA_PSS) {
		cr_assert(EVP_PKEY_CTX_set_rsa_padding(v, RSA_PKCS1_PSS_PADDING) == 1);
		cr_assert(EVP_PKEY_CTX_set_rsa_mgf1_md(v, md) == 1);
		cr_assert(EVP_PKEY_CTX_set_rsa_pss_saltlen(v, saltlen) == 1);
	}
	int ok = EVP_PKEY_verify(v, sig, slen, dgst, dlen) == 1;
	EVP_PKEY_CTX_free(v);
	return ok;
}

static kw_rc sign(void *ctx, const kw_key_blob *ref, kw_sig_scheme scheme, int nid, int saltlen,
                  const unsigned char *dgst, size_t dlen, unsigned char *sig, size_t *slen)
{
	kw_sign_params p = {scheme, nid, saltlen};
	kw_error_clear();
	return kwb_tpm2_ops.key_sign(ctx, ref, &p, dgst, dlen, sig, slen);
}

/* Signs a digest on the TPM; the signature verifies with OpenSSL against
 * key_public's key, and not over a digest with one bit flipped. */
static void sign_verifies(void *ctx, const kw_key_blob *ref, EVP_PKEY *pk, kw_sig_scheme scheme,
                          int nid)
{
	unsigned char dgst[64], sig[1024];
	size_t dlen = digest(nid, "keyward tpm2 test message", dgst), slen = sizeof(sig);
	kw_rc rc = sign(ctx, ref, scheme, nid, -1, dgst, dlen, sig, &slen);
	cr_assert_eq(rc, KW_OK, "key_sign: %s", kw_error_message());
	if (scheme == KW_SIG_ECDSA) {
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
		cr_assert_not_null(es, "ECDSA signature is not DER ECDSA-Sig-Value");
		cr_assert_eq(p, sig + slen);
		ECDSA_SIG_free(es);
	} else {
		cr_assert_eq(slen, (size_t)EVP_PKEY_get_size(pk),
		             "RSA signature is not modulus-sized");
	}
	/* PSS: the salt is the digest length (RSA_PSS_SALTLEN_DIGEST) */
	cr_assert(ossl_verify(pk, scheme, nid, RSA_PSS_SALTLEN_DIGEST, dgst, dlen, sig, slen),
	          "the TPM's signature does not verify");
	dgst[dlen / 2] ^= 0x01;
	cr_assert_not(ossl_verify(pk, scheme, nid, RSA_PSS_SALTLEN_DIGEST, dgst, dlen, sig, slen),
	              "a signature verified over a different digest");
}

static void attrs_are_device_bound(void *ctx, const kw_key_blob *ref, const char *parent)
{
	kw_key_attrs a = {0};
	kw_error_clear();
	kw_rc rc = kwb_tpm2_ops.key_attrs(ctx, ref, &a);
	cr_assert_eq(rc, KW_OK, "key_attrs: %s", kw_error_message());
	cr_assert_eq(a.exportable, 0);
	cr_assert_eq(a.generated_on_device, 1);
	cr_assert(json_is_object(a.evidence));
	cr_assert_str_eq(json_string_value(json_object_get(a.evidence, "device")), "tpm2");
	cr_assert(json_is_true(json_object_get(a.evidence, "fixedTPM")));
	cr_assert(json_is_true(json_object_get(a.evidence, "fixedParent")));
	cr_assert(json_is_true(json_object_get(a.evidence, "sensitiveDataOrigin")));
	cr_assert(json_is_true(json_object_get(a.evidence, "userWithAuth")));
	cr_assert(json_is_true(json_object_get(a.evidence, "sign")));
	cr_assert(json_is_false(json_object_get(a.evidence, "decrypt")));
	cr_assert(json_is_false(json_object_get(a.evidence, "restricted")));
	cr_assert(json_is_true(json_object_get(a.evidence, "noDA")));
	cr_assert_str_eq(json_string_value(json_object_get(a.evidence, "object_attributes")),
	                 "0x00040472");
	cr_assert_str_eq(json_string_value(json_object_get(a.evidence, "parent")), parent);
	const char *name = json_string_value(json_object_get(a.evidence, "name"));
	cr_assert_not_null(name);
	cr_assert_eq(strlen(name), 68, "name is nameAlg (2 bytes) + SHA-256 (32 bytes) in hex");
	cr_assert_eq(strncmp(name, "000b", 4), 0, "name starts with TPM2_ALG_SHA256");
	kw_key_attrs_clear(&a);
}

/* The whole life of one key type. */
static void key_round_trip(kw_key_type type)
{
	void *ctx = tpm_open();
	kw_key_blob ref = generate(ctx, type);
	EVP_PKEY *pk = public_key(ctx, &ref, NULL, NULL);
	check_key_shape(pk, type);
	if (kw_key_type_is_rsa(type)) {
		sign_verifies(ctx, &ref, pk, KW_SIG_RSA_PKCS1, NID_sha256);
		sign_verifies(ctx, &ref, pk, KW_SIG_RSA_PSS, NID_sha256);
		sign_verifies(ctx, &ref, pk, KW_SIG_RSA_PSS, NID_sha384);
	} else {
		sign_verifies(ctx, &ref, pk, KW_SIG_ECDSA, NID_sha256);
		if (type == KW_KEY_EC_P384)
			sign_verifies(ctx, &ref, pk, KW_SIG_ECDSA, NID_sha384);
	}
	attrs_are_device_bound(ctx, &ref, "transient-primary");
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_ops.key_destroy(ctx, &ref, NULL), KW_OK, "%s", kw_error_message());
	kwb_tpm2_ops.close(ctx);
	dev_prove_attrs(&ref);
	EVP_PKEY_free(pk);
	kw_key_blob_clear(&ref);
}

TestSuite(tpm2, .init = fresh_tpm, .timeout = 180);

/* ------------------------------------------------------------------ */
/* Key types                                                           */
/* ------------------------------------------------------------------ */

Test(tpm2, ec_p256_key_signs_ecdsa_and_is_bound_to_the_tpm)
{
	key_round_trip(KW_KEY_EC_P256);
}

Test(tpm2, ec_p384_key_signs_ecdsa_sha256_and_sha384_and_is_bound_to_the_tpm)
{
	key_round_trip(KW_KEY_EC_P384);
}

Test(tpm2, rsa_2048_key_signs_pkcs1_and_pss_and_is_bound_to_the_tpm)
{
	key_round_trip(KW_KEY_RSA_2048);
}

Test(tpm2, rsa_3072_key_signs_pkcs1_and_pss_and_is_bound_to_the_tpm)
{
	key_round_trip(KW_KEY_RSA_3072);
}

Test(tpm2, rsa_4096_works_or_is_refused_as_unsupported)
{
	void *ctx = tpm_open();
	kw_key_blob ref = {0};
	kw_error_clear();
	kw_rc rc = kwb_tpm2_ops.key_generate(ctx, KW_KEY_RSA_4096, "big", &ref);
	if (rc == KW_OK) {
		EVP_PKEY *pk = public_key(ctx, &ref, NULL, NULL);
		check_key_shape(pk, KW_KEY_RSA_4096);
		sign_verifies(ctx, &ref, pk, KW_SIG_RSA_PKCS1, NID_sha256);
		EVP_PKEY_free(pk);
	} else {
		cr_assert_eq(rc, KW_ERR_UNSUPPORTED, "rc %d: %s", rc, kw_error_message());
		cr_assert(strstr(kw_error_message(), "the TPM does not support rsa-4096 keys") !=
		              NULL,
		          "%s", kw_error_message());
		cr_assert_null(ref.data);
	}
	kw_key_blob_clear(&ref);
	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
}

Test(tpm2, ten_keys_in_one_context_leave_no_object_loaded)
{
	static const kw_key_type types[] = {KW_KEY_EC_P256, KW_KEY_EC_P384, KW_KEY_EC_P256,
	                                    KW_KEY_EC_P384, KW_KEY_RSA_2048};
	void *ctx = tpm_open();
	kw_key_blob refs[10];
	EVP_PKEY *pks[10];
	for (int i = 0; i < 10; i++) {
		kw_key_type t = types[i % 5];
		refs[i] = generate(ctx, t);
		pks[i] = public_key(ctx, &refs[i], NULL, NULL);
		check_key_shape(pks[i], t);
		sign_verifies(ctx, &refs[i], pks[i],
		              kw_key_type_is_rsa(t) ? KW_SIG_RSA_PSS : KW_SIG_ECDSA, NID_sha256);
		attrs_are_device_bound(ctx, &refs[i], "transient-primary");
	}
	/* every key still works after all the others */
	for (int i = 0; i < 10; i++)
		sign_verifies(ctx, &refs[i], pks[i],
		              kw_key_type_is_rsa(types[i % 5]) ? KW_SIG_RSA_PKCS1 : KW_SIG_ECDSA,
		              NID_sha384);
	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
	for (int i = 0; i < 10; i++) {
		EVP_PKEY_free(pks[i]);
		kw_key_blob_clear(&refs[i]);
	}
}

Test(tpm2, keys_survive_close_and_open)
{
	unsigned char *der1 = NULL, *der2 = NULL;
	size_t len1 = 0, len2 = 0;
	void *ctx = tpm_open();
	kw_key_blob ref = generate(ctx, KW_KEY_EC_P256);
	EVP_PKEY *pk1 = public_key(ctx, &ref, &der1, &len1);
	kwb_tpm2_ops.close(ctx);

	ctx = tpm_open();
	EVP_PKEY *pk2 = public_key(ctx, &ref, &der2, &len2);
	cr_assert_eq(len1, len2);
	cr_assert_eq(memcmp(der1, der2, len1), 0, "the public key changed across open/close");
	sign_verifies(ctx, &ref, pk1, KW_SIG_ECDSA, NID_sha256);
	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
	EVP_PKEY_free(pk1);
	EVP_PKEY_free(pk2);
	free(der1);
	free(der2);
	kw_key_blob_clear(&ref);
}

/* ------------------------------------------------------------------ */
/* The storage parent                                                  */
/* ------------------------------------------------------------------ */

Test(tpm2, persistent_srk_is_used_when_present, .fini = evict_srk_after)
{
	/* a key made under the transient primary ... */
	void *ctx = tpm_open();
	kw_key_blob old = generate(ctx, KW_KEY_EC_P256);
	EVP_PKEY *old_pk = public_key(ctx, &old, NULL, NULL);
	kwb_tpm2_ops.close(ctx);

	TPM2B_PUBLIC tmpl = storage_template();
	dev_persist_primary(&tmpl);

	ctx = tpm_open();
	kw_key_blob ref = generate(ctx, KW_KEY_RSA_2048);
	EVP_PKEY *pk = public_key(ctx, &ref, NULL, NULL);
	sign_verifies(ctx, &ref, pk, KW_SIG_RSA_PKCS1, NID_sha256);
	attrs_are_device_bound(ctx, &ref, "0x81000001");
	/* ... still loads: the persistent SRK is the same template's key */
	sign_verifies(ctx, &old, old_pk, KW_SIG_ECDSA, NID_sha256);
	attrs_are_device_bound(ctx, &old, "0x81000001");
	kwb_tpm2_ops.close(ctx);
	dev_prove_attrs(&ref);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(old_pk);
	kw_key_blob_clear(&ref);
	kw_key_blob_clear(&old);
}

Test(tpm2, persistent_signing_key_at_srk_handle_is_not_used_as_parent, .fini = evict_srk_after)
{
	TPM2B_PUBLIC tmpl = storage_template();
	tmpl.publicArea.objectAttributes &= ~(TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT);
	tmpl.publicArea.objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT;
	tmpl.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	dev_persist_primary(&tmpl);

	void *ctx = tpm_open();
	kw_key_blob ref = generate(ctx, KW_KEY_EC_P256);
	attrs_are_device_bound(ctx, &ref, "transient-primary");
	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
	kw_key_blob_clear(&ref);
}

/* ------------------------------------------------------------------ */
/* Unreachable and vanishing TPMs                                      */
/* ------------------------------------------------------------------ */

/* A loopback port nothing listens on (bound, then released). */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t alen = sizeof(a);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(s >= 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &alen), 0);
	close(s);
	return ntohs(a.sin_port);
}

/* Its own suite without fresh_tpm: the test's own tpm2-tss calls would fix
 * tpm2-tss's log levels before the backend could silence them. */
Test(tpm2_unreachable, open_is_unavailable_names_the_tcti_and_prints_nothing, .timeout = 60)
{
	char tcti[128], *errfile = NULL;
	snprintf(tcti, sizeof(tcti), "swtpm:host=127.0.0.1,port=%d", closed_port());
	kw_backend_config cfg = {.name = "tpm", .tcti = tcti};
	void *ctx = (void *)&cfg; /* must be reset to NULL */
	int quiet = getenv("TSS2_LOG") == NULL && getenv("KEYWARD_DEBUG") == NULL;

	/* tpm2-tss must not write its own log lines to stderr */
	cr_assert(asprintf(&errfile, "%s/stderr.txt", kwt_env("KW_TEST_TMP")) > 0);
	fflush(stderr);
	int saved = dup(2), fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	kw_error_clear();
	kw_rc rc = kwb_tpm2_ops.open(&cfg, &ctx);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);

	cr_assert_eq(rc, KW_ERR_UNAVAILABLE, "rc %d: %s", rc, kw_error_message());
	cr_assert_null(ctx);
	cr_assert(strstr(kw_error_message(), tcti) != NULL, "message does not name the TCTI: %s",
	          kw_error_message());
	cr_assert(strstr(kw_error_message(), "cannot reach the TPM") != NULL, "%s",
	          kw_error_message());
	cr_assert_neq(kw_error_device_code(), 0);
	size_t n = 0;
	char *out = kwt_read_file(errfile, &n);
	if (quiet)
		cr_assert_eq(n, 0, "tpm2-tss printed to stderr: %s", out);
	free(out);
	free(errfile);
}

/* Whatever happened, the next test gets a running swtpm. */
static void swtpm_running_after(void)
{
	kwt_swtpm_stop();
	kwt_swtpm_start();
}

Test(tpm2, stopped_swtpm_fails_sign_cleanly_and_a_new_open_signs_again, .fini = swtpm_running_after)
{
	unsigned char dgst[32], sig[256];
	size_t dlen = digest(NID_sha256, "before and after", dgst), slen = sizeof(sig);
	void *ctx = tpm_open();
	kw_key_blob ref = generate(ctx, KW_KEY_EC_P256);
	EVP_PKEY *pk = public_key(ctx, &ref, NULL, NULL);
	cr_assert_eq(sign(ctx, &ref, KW_SIG_ECDSA, NID_sha256, -1, dgst, dlen, sig, &slen), KW_OK,
	             "%s", kw_error_message());

	kwt_swtpm_stop();
	for (int i = 0; i < 2; i++) { /* the first and a later call after the loss */
		slen = sizeof(sig);
		kw_rc rc = sign(ctx, &ref, KW_SIG_ECDSA, NID_sha256, -1, dgst, dlen, sig, &slen);
		cr_assert_eq(rc, KW_ERR_UNAVAILABLE, "sign #%d after stop: rc %d: %s", i, rc,
		             kw_error_message());
		cr_assert(strstr(kw_error_message(), kwt_env("KW_TEST_TCTI")) != NULL, "%s",
		          kw_error_message());
		/* the first names the TPM's own error, later ones the lost connection */
		if (i == 0)
			cr_assert_neq(kw_error_device_code(), 0);
		else
			cr_assert(strstr(kw_error_message(), "open it again") != NULL, "%s",
			          kw_error_message());
		cr_assert_eq(slen, sizeof(sig));
	}
	unsigned char *der = NULL;
	size_t der_len = 0;
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_ops.key_public(ctx, &ref, &der, &der_len), KW_ERR_UNAVAILABLE);
	cr_assert_null(der);
	kwb_tpm2_ops.close(ctx); /* must not die of SIGPIPE or hang */

	kwt_swtpm_start();
	ctx = tpm_open();
	slen = sizeof(sig);
	cr_assert_eq(sign(ctx, &ref, KW_SIG_ECDSA, NID_sha256, -1, dgst, dlen, sig, &slen), KW_OK,
	             "sign after restart: %s", kw_error_message());
	cr_assert(ossl_verify(pk, KW_SIG_ECDSA, NID_sha256, 0, dgst, dlen, sig, slen));
	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
	EVP_PKEY_free(pk);
	kw_key_blob_clear(&ref);
}

/* ------------------------------------------------------------------ */
/* Malformed and foreign key blobs                                */
/* ------------------------------------------------------------------ */

/* key_public, key_sign, key_attrs and key_destroy all give code for ref. */
static void all_ops_fail(void *ctx, const kw_key_blob *ref, kw_rc code, const char *what)
{
	unsigned char *der = NULL, dgst[32] = {1}, sig[512];
	size_t der_len = 0, slen = sizeof(sig);
	kw_key_attrs a = {0};
	kw_rc rc;

	kw_error_clear();
	rc = kwb_tpm2_ops.key_public(ctx, ref, &der, &der_len);
	cr_assert_eq(rc, code, "key_public(%s): rc %d: %s", what, rc, kw_error_message());
	cr_assert_null(der);
	rc = sign(ctx, ref, KW_SIG_ECDSA, NID_sha256, -1, dgst, sizeof(dgst), sig, &slen);
	cr_assert_eq(rc, code, "key_sign(%s): rc %d: %s", what, rc, kw_error_message());
	cr_assert_eq(slen, sizeof(sig));
	kw_error_clear();
	rc = kwb_tpm2_ops.key_attrs(ctx, ref, &a);
	cr_assert_eq(rc, code, "key_attrs(%s): rc %d: %s", what, rc, kw_error_message());
	cr_assert_null(a.evidence);
	if (code == KW_ERR_PARSE) {
		kw_error_clear();
		rc = kwb_tpm2_ops.key_destroy(ctx, ref, NULL);
		cr_assert_eq(rc, KW_ERR_PARSE, "key_destroy(%s): rc %d", what, rc);
	}
}

Test(tpm2, garbage_keyref_is_a_parse_error)
{
	unsigned char zero[1] = {0}, v2[64], ff[300], text[] = "-----BEGIN TSS2 PRIVATE KEY-----";
	memset(v2, 0, sizeof(v2));
	v2[0] = 2;
	memset(ff, 0xff, sizeof(ff));
	ff[0] = 1;
	struct {
		const char *what;
		kw_key_blob ref;
	} cases[] = {
	    {"empty", {NULL, 0}},
	    {"one zero byte", {zero, 1}},
	    {"version 2", {v2, sizeof(v2)}},
	    {"0xff filler", {ff, sizeof(ff)}},
	    {"PEM text", {text, sizeof(text) - 1}},
	};
	void *ctx = tpm_open();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		all_ops_fail(ctx, &cases[i].ref, KW_ERR_PARSE, cases[i].what);
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_ops.key_public(ctx, NULL, &(unsigned char *){NULL}, &(size_t){0}),
	             KW_ERR_USAGE);
	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
}

Test(tpm2, truncated_or_extended_keyref_is_a_parse_error)
{
	void *ctx = tpm_open();
	kw_key_blob ref = generate(ctx, KW_KEY_EC_P256);
	char what[64];
	for (size_t n = 0; n < ref.len; n++) {
		kw_key_blob cut = {ref.data, n};
		snprintf(what, sizeof(what), "first %zu of %zu bytes", n, ref.len);
		all_ops_fail(ctx, &cut, KW_ERR_PARSE, what);
	}
	unsigned char *longer = malloc(ref.len + 1);
	memcpy(longer, ref.data, ref.len);
	longer[ref.len] = 0;
	kw_key_blob ext = {longer, ref.len + 1};
	all_ops_fail(ctx, &ext, KW_ERR_PARSE, "one trailing byte");
	/* the original still works */
	EVP_PKEY *pk = public_key(ctx, &ref, NULL, NULL);
	sign_verifies(ctx, &ref, pk, KW_SIG_ECDSA, NID_sha256);
	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
	EVP_PKEY_free(pk);
	free(longer);
	kw_key_blob_clear(&ref);
}

/* A well-formed blob the TPM refuses: the key is gone as far as we can tell. */
Test(tpm2, tampered_blob_is_refused_by_the_tpm_as_not_found)
{
	void *ctx = tpm_open();
	kw_key_blob ref = generate(ctx, KW_KEY_EC_P256);
	TPM2B_PUBLIC pub;
	TPM2B_PRIVATE priv;
	blob_split(&ref, &pub, &priv);

	/* a byte inside the wrapped private part (after its integrity HMAC's size) */
	unsigned char *bad = malloc(ref.len);
	memcpy(bad, ref.data, ref.len);
	bad[ref.len - priv.size / 2] ^= 0x40;
	kw_key_blob bad_priv = {bad, ref.len};
	all_ops_fail(ctx, &bad_priv, KW_ERR_NOT_FOUND, "tampered private part");
	cr_assert(strstr(kw_error_message(), "TPM cannot load this key") != NULL, "%s",
	          kw_error_message());

	/* a bit of the public key: the object's name no longer matches the private part */
	memcpy(bad, ref.data, ref.len);
	/* version, size, type, nameAlg, attributes, authPolicy.size, symmetric, scheme,
	 * curveID, kdf, x.size */
	size_t x_at = 1 + 2 + 2 + 2 + 4 + 2 + 2 + 2 + 2 + 2 + 2;
	cr_assert_eq(bad[x_at - 2] * 256 + bad[x_at - 1], 32, "x coordinate size");
	bad[x_at + 5] ^= 0x01;
	kw_key_blob bad_pub = {bad, ref.len};
	all_ops_fail(ctx, &bad_pub, KW_ERR_NOT_FOUND, "tampered public key");

	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
	free(bad);
	kw_key_blob_clear(&ref);
}

/* ------------------------------------------------------------------ */
/* Signing parameters                                                  */
/* ------------------------------------------------------------------ */

Test(tpm2, sign_rejects_wrong_scheme_digest_length_and_small_buffer)
{
	unsigned char dgst[64], sig[1024];
	size_t dlen = digest(NID_sha256, "m", dgst), slen;
	void *ctx = tpm_open();
	kw_key_blob ec = generate(ctx, KW_KEY_EC_P256);
	kw_key_blob rsa = generate(ctx, KW_KEY_RSA_2048);

	slen = sizeof(sig);
	cr_assert_eq(sign(ctx, &ec, KW_SIG_RSA_PKCS1, NID_sha256, -1, dgst, dlen, sig, &slen),
	             KW_ERR_USAGE);
	cr_assert_eq(sign(ctx, &rsa, KW_SIG_ECDSA, NID_sha256, -1, dgst, dlen, sig, &slen),
	             KW_ERR_USAGE);
	cr_assert_eq(sign(ctx, &ec, KW_SIG_ECDSA, NID_sha384, -1, dgst, dlen, sig, &slen),
	             KW_ERR_USAGE, "a 32-byte digest passed as SHA-384");
	cr_assert_eq(sign(ctx, &ec, KW_SIG_ECDSA, NID_md5, -1, dgst, 16, sig, &slen),
	             KW_ERR_UNSUPPORTED);
	cr_assert_eq(slen, sizeof(sig), "sig_len changed on failure");

	slen = 255; /* an RSA-2048 signature is 256 bytes */
	cr_assert_eq(sign(ctx, &rsa, KW_SIG_RSA_PKCS1, NID_sha256, -1, dgst, dlen, sig, &slen),
	             KW_ERR_USAGE);
	slen = 256;
	cr_assert_eq(sign(ctx, &rsa, KW_SIG_RSA_PKCS1, NID_sha256, -1, dgst, dlen, sig, &slen),
	             KW_OK, "%s", kw_error_message());
	cr_assert_eq(slen, 256);
	slen = 71; /* a P-256 DER signature can take 72 bytes */
	cr_assert_eq(sign(ctx, &ec, KW_SIG_ECDSA, NID_sha256, -1, dgst, dlen, sig, &slen),
	             KW_ERR_USAGE);
	slen = 72;
	cr_assert_eq(sign(ctx, &ec, KW_SIG_ECDSA, NID_sha256, -1, dgst, dlen, sig, &slen), KW_OK,
	             "%s", kw_error_message());
	cr_assert(slen >= 8 && slen <= 72);

	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
	kw_key_blob_clear(&ec);
	kw_key_blob_clear(&rsa);
}

/* TPM2_Sign has no salt length parameter: the TPM (libtpms in swtpm) salts
 * with the digest length, verified here independently with OpenSSL. */
Test(tpm2, pss_salt_is_the_digest_length_and_other_lengths_are_unsupported)
{
	unsigned char dgst[64], sig[512];
	size_t dlen = digest(NID_sha256, "salt", dgst), slen = sizeof(sig);
	void *ctx = tpm_open();
	kw_key_blob ref = generate(ctx, KW_KEY_RSA_2048);
	EVP_PKEY *pk = public_key(ctx, &ref, NULL, NULL);

	cr_assert_eq(sign(ctx, &ref, KW_SIG_RSA_PSS, NID_sha256, 32, dgst, dlen, sig, &slen), KW_OK,
	             "%s", kw_error_message());
	cr_assert(ossl_verify(pk, KW_SIG_RSA_PSS, NID_sha256, 32, dgst, dlen, sig, slen));
	cr_assert_not(ossl_verify(pk, KW_SIG_RSA_PSS, NID_sha256, 222, dgst, dlen, sig, slen),
	              "the salt is not the maximum length");
	cr_assert_not(ossl_verify(pk, KW_SIG_RSA_PSS, NID_sha256, 0, dgst, dlen, sig, slen));

	int bad[] = {0, 20, 64, 222, -2};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		slen = sizeof(sig);
		kw_rc rc =
		    sign(ctx, &ref, KW_SIG_RSA_PSS, NID_sha256, bad[i], dgst, dlen, sig, &slen);
		cr_assert_eq(rc, KW_ERR_UNSUPPORTED, "salt %d: rc %d", bad[i], rc);
		cr_assert(strstr(kw_error_message(), "salt") != NULL, "%s", kw_error_message());
	}
	/* SHA-512: salt 64 */
	dlen = digest(NID_sha512, "salt", dgst);
	slen = sizeof(sig);
	cr_assert_eq(sign(ctx, &ref, KW_SIG_RSA_PSS, NID_sha512, 64, dgst, dlen, sig, &slen), KW_OK,
	             "%s", kw_error_message());
	cr_assert(ossl_verify(pk, KW_SIG_RSA_PSS, NID_sha512, 64, dgst, dlen, sig, slen));

	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
	EVP_PKEY_free(pk);
	kw_key_blob_clear(&ref);
}

/* ------------------------------------------------------------------ */
/* Table and lifecycle                                                 */
/* ------------------------------------------------------------------ */

Test(tpm2, ops_table_is_complete_and_close_null_is_a_noop)
{
	cr_assert_str_eq(kwb_tpm2_ops.kind, "tpm2");
	cr_assert_eq(kw_backend_ops_find("tpm2"), &kwb_tpm2_ops);
	cr_assert(kwb_tpm2_ops.open && kwb_tpm2_ops.close && kwb_tpm2_ops.key_generate &&
	          kwb_tpm2_ops.key_public && kwb_tpm2_ops.key_sign && kwb_tpm2_ops.key_attrs &&
	          kwb_tpm2_ops.key_destroy);
	kwb_tpm2_ops.close(NULL);
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_ops.open(NULL, &(void *){NULL}), KW_ERR_USAGE);
}

/* ------------------------------------------------------------------ */
/* SIGPIPE guard (tcti-swtpm/mssim write() to sockets)                 */
/* ------------------------------------------------------------------ */

static int sigpipe_pending(void)
{
	sigset_t s;
	cr_assert_eq(sigpending(&s), 0);
	return sigismember(&s, SIGPIPE) == 1;
}

static int sigpipe_blocked(void)
{
	sigset_t s;
	cr_assert_eq(pthread_sigmask(SIG_SETMASK, NULL, &s), 0);
	return sigismember(&s, SIGPIPE) == 1;
}

Test(tpm2_sigpipe, write_to_a_closed_socket_inside_the_guard_does_not_kill)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	errno = 0;
	cr_assert_eq(write(sv[0], "x", 1), -1);
	cr_assert_eq(errno, EPIPE);
	kwb_tpm2_sigpipe_restore(&g);
	/* still alive (the default action would have ended this process) */
	cr_assert_not(sigpipe_pending(), "the guard's own SIGPIPE was left pending");
	cr_assert_not(sigpipe_blocked(), "the guard did not restore the signal mask");
	close(sv[0]);
}

Test(tpm2_sigpipe, a_sigpipe_pending_before_the_guard_stays_the_callers)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	cr_assert_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
	cr_assert_eq(raise(SIGPIPE), 0);
	cr_assert(sigpipe_pending());
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kwb_tpm2_sigpipe_restore(&g);
	cr_assert(sigpipe_pending(), "the guard swallowed the caller's SIGPIPE");
	cr_assert(sigpipe_blocked(), "the guard unblocked what the caller had blocked");
	const struct timespec zero = {0, 0};
	cr_assert_eq(sigtimedwait(&set, NULL, &zero), SIGPIPE);
}

/* The TPM out of object slots (swtpm has three, shared by everyone): the
 * context gives up its own idle cached signing key and retries, rather
 * than failing the signature. */
Test(tpm2, object_memory_is_recovered_by_flushing_our_idle_key)
{
	void *ctx = tpm_open();
	kwb_tpm2_ctx *c = ctx;
	kw_key_blob a = generate(ctx, KW_KEY_EC_P256), b = generate(ctx, KW_KEY_EC_P256);
	EVP_PKEY *pa = public_key(ctx, &a, NULL, NULL), *pb = public_key(ctx, &b, NULL, NULL);
	sign_verifies(ctx, &a, pa, KW_SIG_ECDSA, NID_sha256);
	cr_assert_neq(c->signer, ESYS_TR_NONE, "key a stays loaded for the next signature");
	/* another client's object takes the last slot: SRK + a + this = 3 */
	dev d = {.esys = c->esys};
	TPM2B_PUBLIC t = storage_template();
	ESYS_TR other = dev_primary(&d, &t);
	cr_assert_eq(dev_transient_count(&d), 3, "the TPM's three object slots are all taken");
	/* reading b's public area loads b: TPM_RC_OBJECT_MEMORY, and a must make room */
	EVP_PKEY *again = public_key(ctx, &b, NULL, NULL);
	cr_assert_eq(EVP_PKEY_eq(again, pb), 1);
	cr_assert_eq(c->signer, ESYS_TR_NONE, "the idle cached key was flushed to make room");
	EVP_PKEY_free(again);
	Esys_FlushContext(c->esys, other);
	sign_verifies(ctx, &a, pa, KW_SIG_ECDSA, NID_sha256);
	sign_verifies(ctx, &b, pb, KW_SIG_ECDSA, NID_sha256);
	EVP_PKEY_free(pa);
	EVP_PKEY_free(pb);
	kw_key_blob_clear(&a);
	kw_key_blob_clear(&b);
	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
}

/* ------------------------------------------------------------------ */
/* TPM2_Certify by a transient attestation key                          */
/* ------------------------------------------------------------------ */

static size_t unhex(const char *h, unsigned char *out, size_t cap)
{
	size_t n = strlen(h) / 2;
	cr_assert(n <= cap && strlen(h) % 2 == 0, "hex of %zu chars", strlen(h));
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(sscanf(h + 2 * i, "%2hhx", &out[i]), 1);
	return n;
}

static unsigned char *unb64(const char *s, size_t *len)
{
	size_t n = strlen(s);
	unsigned char *b = malloc(n);
	cr_assert_not_null(b);
	int r = EVP_DecodeBlock(b, (const unsigned char *)s, (int)n);
	cr_assert(r > 0, "base64 decodes");
	while (n > 0 && s[n - 1] == '=') {
		n--;
		r--;
	}
	*len = (size_t)r;
	return b;
}

static int ak_verifies(EVP_PKEY *ak, const unsigned char *msg, size_t len, const unsigned char *sig,
                       size_t sig_len)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	cr_assert_not_null(m);
	cr_assert_eq(EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, ak), 1);
	int ok = EVP_DigestVerify(m, sig, sig_len, msg, len);
	EVP_MD_CTX_free(m);
	return ok == 1;
}

Test(tpm2, certify_is_signed_by_an_attestation_key_over_the_keys_name_and_nonce)
{
	void *ctx = tpm_open();
	kw_key_blob ref = generate(ctx, KW_KEY_EC_P256);
	kw_key_attrs a = {0};
	cr_assert_eq(kwb_tpm2_ops.key_attrs(ctx, &ref, &a), KW_OK, "%s", kw_error_message());
	const char *key_name = json_string_value(json_object_get(a.evidence, "name"));
	cr_assert_not_null(key_name);

	unsigned char nonce[32];
	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (unsigned char)(0xA5 ^ i);
	json_t *ev = NULL;
	cr_assert_not_null(kwb_tpm2_ops.key_certify);
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_ops.key_certify(ctx, &ref, nonce, sizeof(nonce), &ev), KW_OK, "%s",
	             kw_error_message());
	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();

	json_t *c = json_object_get(ev, "certify");
	cr_assert(json_is_object(c));
	cr_assert(json_is_true(json_object_get(c, "verified")));
	cr_assert_str_eq(json_string_value(json_object_get(c, "certified_name")), key_name);
	unsigned char n2[32];
	cr_assert_eq(unhex(json_string_value(json_object_get(c, "nonce")), n2, sizeof(n2)), 32);
	cr_assert_eq(memcmp(n2, nonce, 32), 0);

	/* the attest parses as a TPM2_Certify of this key for this nonce */
	size_t att_len, sig_len, ak_len;
	unsigned char *att = unb64(json_string_value(json_object_get(c, "attest")), &att_len);
	unsigned char *sig = unb64(json_string_value(json_object_get(c, "signature")), &sig_len);
	unsigned char *akd = unb64(json_string_value(json_object_get(c, "ak_public")), &ak_len);
	TPMS_ATTEST at = {0};
	size_t off = 0;
	cr_assert_eq(Tss2_MU_TPMS_ATTEST_Unmarshal(att, att_len, &off, &at), TSS2_RC_SUCCESS);
	cr_assert_eq(off, att_len);
	cr_assert_eq(at.magic, TPM2_GENERATED_VALUE);
	cr_assert_eq(at.type, TPM2_ST_ATTEST_CERTIFY);
	cr_assert_eq(at.extraData.size, sizeof(nonce));
	cr_assert_eq(memcmp(at.extraData.buffer, nonce, sizeof(nonce)), 0);
	unsigned char kn[64];
	size_t kn_len = unhex(key_name, kn, sizeof(kn));
	cr_assert_eq(at.attested.certify.name.size, kn_len);
	cr_assert_eq(memcmp(at.attested.certify.name.name, kn, kn_len), 0);

	/* the signature verifies with ak_public, independently, and not over a changed attest */
	const unsigned char *p = akd;
	EVP_PKEY *ak = d2i_PUBKEY(NULL, &p, (long)ak_len);
	cr_assert_not_null(ak);
	cr_assert_eq(EVP_PKEY_get_base_id(ak), EVP_PKEY_EC);
	cr_assert(ak_verifies(ak, att, att_len, sig, sig_len));
	att[att_len / 2] ^= 1;
	cr_assert_not(ak_verifies(ak, att, att_len, sig, sig_len));
	att[att_len / 2] ^= 1;
	cr_assert(ak_verifies(ak, att, att_len, sig, sig_len));

	EVP_PKEY_free(ak);
	free(att);
	free(sig);
	free(akd);
	json_decref(ev);
	kw_key_attrs_clear(&a);
	kw_key_blob_clear(&ref);
}

Test(tpm2, certify_with_another_nonce_gives_another_attest)
{
	void *ctx = tpm_open();
	kw_key_blob ref = generate(ctx, KW_KEY_RSA_2048);
	json_t *e1 = NULL, *e2 = NULL;
	const unsigned char n1[] = "nonce-one", n2[] = "nonce-two";
	cr_assert_eq(kwb_tpm2_ops.key_certify(ctx, &ref, n1, sizeof(n1) - 1, &e1), KW_OK, "%s",
	             kw_error_message());
	cr_assert_eq(kwb_tpm2_ops.key_certify(ctx, &ref, n2, sizeof(n2) - 1, &e2), KW_OK, "%s",
	             kw_error_message());
	const json_t *c1 = json_object_get(e1, "certify"), *c2 = json_object_get(e2, "certify");
	cr_assert_str_eq(json_string_value(json_object_get(c1, "nonce")), "6e6f6e63652d6f6e65");
	cr_assert_str_eq(json_string_value(json_object_get(c2, "nonce")), "6e6f6e63652d74776f");
	cr_assert_str_neq(json_string_value(json_object_get(c1, "attest")),
	                  json_string_value(json_object_get(c2, "attest")));
	cr_assert_str_eq(json_string_value(json_object_get(c1, "certified_name")),
	                 json_string_value(json_object_get(c2, "certified_name")));
	json_decref(e1);
	json_decref(e2);
	kw_key_blob_clear(&ref);
	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
}

#define EH_AUTH "endorsement-secret"

static void endorsement_auth_set(const char *from, const char *to)
{
	dev d;
	TPM2B_AUTH old = {.size = (UINT16)strlen(from)}, new = {.size = (UINT16)strlen(to)};
	memcpy(old.buffer, from, old.size);
	memcpy(new.buffer, to, new.size);
	dev_open(&d);
	cr_assert_eq(Esys_TR_SetAuth(d.esys, ESYS_TR_RH_ENDORSEMENT, &old), TSS2_RC_SUCCESS);
	TSS2_RC rc = Esys_HierarchyChangeAuth(d.esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
	                                      ESYS_TR_NONE, ESYS_TR_NONE, &new);
	dev_close(&d);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "HierarchyChangeAuth: %s", Tss2_RC_Decode(rc));
}

static void endorsement_auth_empty_after(void)
{
	dev d;
	TPM2B_AUTH old = {.size = sizeof(EH_AUTH) - 1}, new = {0};
	memcpy(old.buffer, EH_AUTH, old.size);
	dev_open(&d);
	Esys_TR_SetAuth(d.esys, ESYS_TR_RH_ENDORSEMENT, &old);
	(void)Esys_HierarchyChangeAuth(d.esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
	                               ESYS_TR_NONE, ESYS_TR_NONE, &new);
	dev_close(&d);
}

Test(tpm2, certify_without_endorsement_access_is_unsupported, .fini = endorsement_auth_empty_after)
{
	endorsement_auth_set("", EH_AUTH);
	void *ctx = tpm_open();
	kw_key_blob ref = generate(ctx, KW_KEY_EC_P256);
	json_t *ev = NULL;
	unsigned char nonce[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_ops.key_certify(ctx, &ref, nonce, sizeof(nonce), &ev),
	             KW_ERR_UNSUPPORTED, "%s", kw_error_message());
	cr_assert_null(ev);
	cr_assert(strstr(kw_error_message(), "no attestation key available") != NULL, "%s",
	          kw_error_message());
	kwb_tpm2_ops.close(ctx);
	assert_no_object_left();
	endorsement_auth_set(EH_AUTH, "");
	ctx = tpm_open();
	cr_assert_eq(kwb_tpm2_ops.key_certify(ctx, &ref, nonce, sizeof(nonce), &ev), KW_OK, "%s",
	             kw_error_message());
	json_decref(ev);
	kwb_tpm2_ops.close(ctx);
	kw_key_blob_clear(&ref);
}
