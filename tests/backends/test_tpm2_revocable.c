/*
 * Revocable TPM keys (backends/tpm2/revoke.c) against the harness's private
 * swtpm: a key whose authPolicy is TPM2_PolicyNV on an NV counter of its own
 * signs only through that policy, and once key_destroy has revoked it no
 * copy of its wrapped blob signs again, not even after the counter is
 * defined anew at its handle. Every check of the device is made with the
 * test's own ESYS context (swtpm serves one connection at a time: the
 * backend is closed first).
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "esys_dev.h"
#include "kwtest.h"
#include "tpm2/tpm2_internal.h"

#define TRANSIENT_FIRST      0x80000000u
#define LOADED_SESSION_FIRST 0x02000000u

/* ---- the test's own view of the TPM ---- */

/* dev, dev_open, dev_close: support/esys_dev.h */

/* How many handles of first's type, from first up to (not including) last,
 * the TPM lists (loaded sessions are listed from 0x02000000 whatever their
 * own handle says). */
static int dev_count(dev *d, TPM2_HANDLE first, TPM2_HANDLE last)
{
	TPMI_YES_NO more = 0;
	TPMS_CAPABILITY_DATA *cap = NULL;
	TSS2_RC rc = Esys_GetCapability(d->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                                TPM2_CAP_HANDLES, first, TPM2_MAX_CAP_HANDLES, &more, &cap);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "GetCapability: %s", Tss2_RC_Decode(rc));
	int n = 0;
	for (UINT32 i = 0; i < cap->data.handles.count; i++)
		n += cap->data.handles.handle[i] < last;
	Esys_Free(cap);
	return n;
}

/* Nothing loaded (objects or sessions) and no NV index in keyward's range. */
static void assert_tpm_clean(const char *when)
{
	dev d;
	dev_open(&d);
	cr_assert_eq(dev_count(&d, TRANSIENT_FIRST, 0x81000000u), 0, "%s: objects left loaded",
	             when);
	cr_assert_eq(dev_count(&d, LOADED_SESSION_FIRST, 0xffffffffu), 0,
	             "%s: sessions left loaded", when);
	cr_assert_eq(dev_count(&d, KWB_TPM2_NV_FIRST, KWB_TPM2_NV_LAST + 1), 0,
	             "%s: NV indexes left in keyward's range", when);
	dev_close(&d);
}

static TPM2B_NV_PUBLIC *dev_nv_public(dev *d, TPM2_HANDLE index, ESYS_TR *tr)
{
	TPM2B_NV_PUBLIC *pub = NULL;
	*tr = ESYS_TR_NONE;
	if (Esys_TR_FromTPMPublic(d->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, tr) !=
	    TSS2_RC_SUCCESS)
		return NULL;
	cr_assert_eq(
	    Esys_NV_ReadPublic(d->esys, *tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL),
	    TSS2_RC_SUCCESS);
	return pub;
}

static UINT64 dev_nv_read(dev *d, ESYS_TR tr)
{
	TPM2B_MAX_NV_BUFFER *data = NULL;
	TSS2_RC rc = Esys_NV_Read(d->esys, tr, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8,
	                          0, &data);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "NV_Read: %s", Tss2_RC_Decode(rc));
	UINT64 v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | data->buffer[i];
	Esys_Free(data);
	return v;
}

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

/* What anyone holding a copy of the blob can do: load it under the owner's
 * primary and ask for a signature, with the password (ESYS_TR_PASSWORD) or
 * after running TPM2_PolicyNV(index == value) itself. Returns the Sign's
 * response code (or the PolicyNV's when that fails). */
static TSS2_RC dev_sign_with_copy(const kwb_tpm2_blob *b, int with_policy)
{
	dev d;
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION pcrs = {0};
	TPM2B_PUBLIC tmpl = storage_template();
	ESYS_TR parent = ESYS_TR_NONE, key = ESYS_TR_NONE, auth = ESYS_TR_PASSWORD;
	ESYS_TR nv = ESYS_TR_NONE;
	TSS2_RC rc;
	dev_open(&d);
	rc = Esys_CreatePrimary(d.esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                        ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, &parent, NULL, NULL,
	                        NULL, NULL);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "CreatePrimary: %s", Tss2_RC_Decode(rc));
	rc = Esys_Load(d.esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &b->priv,
	               &b->pub, &key);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "the copy does not even load: %s", Tss2_RC_Decode(rc));
	if (with_policy) {
		const TPMT_SYM_DEF none = {.algorithm = TPM2_ALG_NULL};
		TPM2B_OPERAND op = {.size = 8};
		for (int i = 0; i < 8; i++)
			op.buffer[i] = (BYTE)(b->nv_value >> (8 * (7 - i)));
		rc = Esys_StartAuthSession(d.esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
		                           ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &none,
		                           TPM2_ALG_SHA256, &auth);
		cr_assert_eq(rc, TSS2_RC_SUCCESS);
		rc = Esys_TR_FromTPMPublic(d.esys, b->nv_index, ESYS_TR_NONE, ESYS_TR_NONE,
		                           ESYS_TR_NONE, &nv);
		if (rc == TSS2_RC_SUCCESS)
			rc = Esys_PolicyNV(d.esys, nv, nv, auth, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			                   ESYS_TR_NONE, &op, 0, TPM2_EO_EQ);
	}
	if (rc == TSS2_RC_SUCCESS) {
		TPM2B_DIGEST digest = {.size = 32};
		TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_ECDSA,
		                          .details.ecdsa.hashAlg = TPM2_ALG_SHA256};
		const TPMT_TK_HASHCHECK check = {.tag = TPM2_ST_HASHCHECK,
		                                 .hierarchy = TPM2_RH_NULL};
		TPMT_SIGNATURE *sig = NULL;
		rc = Esys_Sign(d.esys, key, auth, ESYS_TR_NONE, ESYS_TR_NONE, &digest, &scheme,
		               &check, &sig);
		Esys_Free(sig);
	}
	if (auth != ESYS_TR_PASSWORD)
		(void)Esys_FlushContext(d.esys, auth);
	if (nv != ESYS_TR_NONE)
		(void)Esys_TR_Close(d.esys, &nv);
	cr_assert_eq(Esys_FlushContext(d.esys, key), TSS2_RC_SUCCESS);
	cr_assert_eq(Esys_FlushContext(d.esys, parent), TSS2_RC_SUCCESS);
	dev_close(&d);
	return rc;
}

/* ---- the backend ---- */

static void *tpm_open(void)
{
	kw_backend_config cfg = kwt_tpm2_config();
	void *ctx = NULL;
	kw_error_clear();
	cr_assert_eq(kwb_tpm2_ops.open(&cfg, &ctx), KW_OK, "open: %s", kw_error_message());
	return ctx;
}

static kw_key_blob revocable(void *ctx)
{
	kw_key_blob ref = {0};
	kw_error_clear();
	kw_rc rc = kwb_tpm2_ops.key_generate_revocable(ctx, KW_KEY_EC_P256, "test", &ref);
	cr_assert_eq(rc, KW_OK, "key_generate_revocable: %s", kw_error_message());
	return ref;
}

static kw_key_blob ref_copy(const kw_key_blob *ref)
{
	kw_key_blob c = {malloc(ref->len), ref->len};
	cr_assert_not_null(c.data);
	memcpy(c.data, ref->data, ref->len);
	return c;
}

static kwb_tpm2_blob blob_of(const kw_key_blob *ref)
{
	kwb_tpm2_blob b;
	cr_assert_eq(kwb_tpm2_blob_parse(ref, &b), KW_OK, "%s", kw_error_message());
	return b;
}

static kw_rc sign(void *ctx, const kw_key_blob *ref, EVP_PKEY *pub)
{
	static const unsigned char msg[] = "keyward revocable key";
	unsigned char dgst[32], sig[128];
	size_t slen = sizeof(sig);
	kw_sign_params p = {KW_SIG_ECDSA, NID_sha256, -1};
	SHA256(msg, sizeof(msg), dgst);
	kw_error_clear();
	kw_rc rc = kwb_tpm2_ops.key_sign(ctx, ref, &p, dgst, sizeof(dgst), sig, &slen);
	if (rc == KW_OK && pub != NULL) {
		EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(pub, NULL);
		cr_assert(v && EVP_PKEY_verify_init(v) == 1 &&
		          EVP_PKEY_CTX_set_signature_md(v, EVP_sha256()) == 1);
		cr_assert_eq(EVP_PKEY_verify(v, sig, slen, dgst, sizeof(dgst)), 1,
		             "the signature does not verify");
		EVP_PKEY_CTX_free(v);
	}
	return rc;
}

static EVP_PKEY *public_key(void *ctx, const kw_key_blob *ref)
{
	unsigned char *der = NULL;
	size_t len = 0;
	cr_assert_eq(kwb_tpm2_ops.key_public(ctx, ref, &der, &len), KW_OK, "%s",
	             kw_error_message());
	const unsigned char *p = der;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
	cr_assert_not_null(k);
	free(der);
	return k;
}

static void assert_revoked(kw_rc rc, const char *what)
{
	cr_assert_eq(rc, KW_ERR_NOT_FOUND, "%s: rc %d (%s)", what, rc, kw_error_message());
	cr_assert(strstr(kw_error_message(), "revoked") != NULL, "%s: %s", what,
	          kw_error_message());
}

TestSuite(tpm2_revocable, .timeout = 120);

Test(tpm2_revocable, signs_only_through_its_counter_policy)
{
	assert_tpm_clean("before");
	void *ctx = tpm_open();
	kw_key_blob ref = revocable(ctx);
	kwb_tpm2_blob b = blob_of(&ref);
	cr_assert_eq(ref.data[0], KWB_TPM2_BLOB_VERSION_REVOCABLE);
	cr_assert(b.nv_index >= KWB_TPM2_NV_FIRST && b.nv_index <= KWB_TPM2_NV_LAST, "0x%08x",
	          b.nv_index);
	cr_assert_not(b.pub.publicArea.objectAttributes & TPMA_OBJECT_USERWITHAUTH);
	cr_assert(b.pub.publicArea.objectAttributes & TPMA_OBJECT_FIXEDTPM);
	cr_assert(b.pub.publicArea.objectAttributes & TPMA_OBJECT_FIXEDPARENT);
	EVP_PKEY *pub = public_key(ctx, &ref);
	for (int i = 0; i < 3; i++) /* the first loads the key; the others reuse it */
		cr_assert_eq(sign(ctx, &ref, pub), KW_OK, "sign %d: %s", i, kw_error_message());
	kw_key_attrs a = {0};
	cr_assert_eq(kwb_tpm2_ops.key_attrs(ctx, &ref, &a), KW_OK, "%s", kw_error_message());
	cr_assert_eq(a.exportable, 0);
	cr_assert(json_is_true(json_object_get(a.evidence, "revocable")));
	cr_assert(json_is_false(json_object_get(a.evidence, "userWithAuth")));
	json_t *r = json_object_get(a.evidence, "revocation");
	cr_assert(json_is_true(json_object_get(r, "live")));
	cr_assert_eq((UINT64)json_integer_value(json_object_get(r, "required_value")), b.nv_value);
	kw_key_attrs_clear(&a);
	kwb_tpm2_ops.close(ctx);

	/* the TPM's own account of the counter */
	dev d;
	ESYS_TR tr;
	dev_open(&d);
	TPM2B_NV_PUBLIC *np = dev_nv_public(&d, b.nv_index, &tr);
	cr_assert_not_null(np, "no NV index 0x%08x", b.nv_index);
	TPMA_NV at = np->nvPublic.attributes;
	cr_assert_eq((at & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT, TPM2_NT_COUNTER);
	cr_assert(at & TPMA_NV_WRITTEN);
	cr_assert(at & TPMA_NV_OWNERWRITE);
	cr_assert_not(at & (TPMA_NV_AUTHWRITE | TPMA_NV_POLICYWRITE | TPMA_NV_PPWRITE),
	              "only owner authorization may move the counter: 0x%08x", (unsigned)at);
	cr_assert_not(at & TPMA_NV_ORDERLY, "an orderly counter jumps after a power loss");
	cr_assert_eq(np->nvPublic.dataSize, 8);
	cr_assert_eq(dev_nv_read(&d, tr), b.nv_value);
	Esys_Free(np);
	(void)Esys_TR_Close(d.esys, &tr);
	dev_close(&d);

	/* anyone with the blob: the password is refused, the policy works */
	TSS2_RC rc = dev_sign_with_copy(&b, 0);
	cr_assert_eq(kwb_tpm2_rc_base(rc), TPM2_RC_AUTH_UNAVAILABLE, "password sign: %s",
	             Tss2_RC_Decode(rc));
	rc = dev_sign_with_copy(&b, 1);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "policy sign (positive control): %s", Tss2_RC_Decode(rc));

	/* and the backend leaves nothing loaded between signatures */
	dev_open(&d);
	cr_assert_eq(dev_count(&d, TRANSIENT_FIRST, 0x81000000u), 0);
	cr_assert_eq(dev_count(&d, LOADED_SESSION_FIRST, 0xffffffffu), 0);
	dev_close(&d);
	ctx = tpm_open();
	kw_key_end end = 0;
	cr_assert_eq(kwb_tpm2_ops.key_destroy(ctx, &ref, &end), KW_OK, "%s", kw_error_message());
	cr_assert_eq(end, KW_KEY_REVOKED);
	kwb_tpm2_ops.close(ctx);
	assert_tpm_clean("after the purge");
	EVP_PKEY_free(pub);
	kw_key_blob_clear(&ref);
}

Test(tpm2_revocable, purge_ends_every_copy_of_the_blob)
{
	void *ctx = tpm_open();
	kw_key_blob ref = revocable(ctx), copy = ref_copy(&ref);
	EVP_PKEY *pub = public_key(ctx, &ref);
	cr_assert_eq(sign(ctx, &copy, pub), KW_OK, "%s", kw_error_message());
	kw_key_end end = 0;
	cr_assert_eq(kwb_tpm2_ops.key_destroy(ctx, &ref, &end), KW_OK, "%s", kw_error_message());
	cr_assert_eq(end, KW_KEY_REVOKED);
	kw_key_blob_clear(&ref);
	/* the same connection (whose cached key is dropped) and a new one */
	assert_revoked(sign(ctx, &copy, NULL), "sign after the purge");
	kwb_tpm2_ops.close(ctx);
	ctx = tpm_open();
	assert_revoked(sign(ctx, &copy, NULL), "sign from a new connection");
	/* purging again: already revoked */
	end = 0;
	cr_assert_eq(kwb_tpm2_ops.key_destroy(ctx, &copy, &end), KW_ERR_NOT_FOUND);
	cr_assert_eq(end, KW_KEY_REVOKED);
	kw_key_attrs a = {0};
	cr_assert_eq(kwb_tpm2_ops.key_attrs(ctx, &copy, &a), KW_OK, "%s", kw_error_message());
	cr_assert(
	    json_is_false(json_object_get(json_object_get(a.evidence, "revocation"), "live")));
	kw_key_attrs_clear(&a);
	kwb_tpm2_ops.close(ctx);
	assert_tpm_clean("after signing with a revoked copy");

	/* the copy still loads, but neither the password nor the policy signs */
	kwb_tpm2_blob b = blob_of(&copy);
	cr_assert_eq(kwb_tpm2_rc_base(dev_sign_with_copy(&b, 0)), TPM2_RC_AUTH_UNAVAILABLE);
	cr_assert_eq(kwb_tpm2_rc_base(dev_sign_with_copy(&b, 1)), TPM2_RC_HANDLE,
	             "PolicyNV on a counter that is gone");
	assert_tpm_clean("after the test's own attempts");
	EVP_PKEY_free(pub);
	kw_key_blob_clear(&copy);
}

/* Owner authorization (empty on most machines) can delete an index and
 * define it again with the same attributes, hence the same Name: a counter
 * comes back above every value a counter had, never at the key's value. */
Test(tpm2_revocable, a_counter_defined_again_at_its_handle_does_not_bring_the_key_back)
{
	void *ctx = tpm_open();
	kw_key_blob ref = revocable(ctx), copy = ref_copy(&ref);
	kwb_tpm2_blob b = blob_of(&ref);
	cr_assert_eq(kwb_tpm2_ops.key_destroy(ctx, &ref, NULL), KW_OK, "%s", kw_error_message());
	kw_key_blob_clear(&ref);
	kwb_tpm2_ops.close(ctx);

	dev d;
	ESYS_TR tr = ESYS_TR_NONE;
	TPM2B_AUTH empty = {0};
	TPM2B_NV_PUBLIC pub = {
	    .nvPublic = {.nvIndex = b.nv_index,
	                 .nameAlg = TPM2_ALG_SHA256,
	                 .attributes = (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) |
	                               TPMA_NV_AUTHREAD | TPMA_NV_OWNERWRITE | TPMA_NV_NO_DA,
	                 .dataSize = 8}};
	dev_open(&d);
	cr_assert_eq(Esys_NV_DefineSpace(d.esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                                 ESYS_TR_NONE, &empty, &pub, &tr),
	             TSS2_RC_SUCCESS);
	cr_assert_eq(Esys_NV_Increment(d.esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                               ESYS_TR_NONE),
	             TSS2_RC_SUCCESS);
	/* the very Name the key's policy names... */
	TPM2B_NAME *name = NULL;
	TPM2B_DIGEST policy;
	cr_assert_eq(
	    Esys_NV_ReadPublic(d.esys, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, &name),
	    TSS2_RC_SUCCESS);
	cr_assert_eq(kwb_tpm2_nv_policy(name, b.nv_value, &policy), KW_OK);
	cr_assert_eq(memcmp(policy.buffer, b.pub.publicArea.authPolicy.buffer, 32), 0,
	             "the redefined index should have the key's counter's Name");
	Esys_Free(name);
	/* ...but a value above the key's */
	UINT64 now = dev_nv_read(&d, tr);
	cr_assert_gt(now, b.nv_value, "the counter came back at %llu", (unsigned long long)now);
	dev_close(&d);

	ctx = tpm_open();
	assert_revoked(sign(ctx, &copy, NULL), "sign with the counter defined again");
	kwb_tpm2_ops.close(ctx);
	cr_assert_eq(kwb_tpm2_rc_base(dev_sign_with_copy(&b, 1)), TPM2_RC_POLICY,
	             "PolicyNV against the new counter");

	dev_open(&d);
	tr = ESYS_TR_NONE;
	cr_assert_eq(Esys_TR_FromTPMPublic(d.esys, b.nv_index, ESYS_TR_NONE, ESYS_TR_NONE,
	                                   ESYS_TR_NONE, &tr),
	             TSS2_RC_SUCCESS);
	cr_assert_eq(Esys_NV_UndefineSpace(d.esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD,
	                                   ESYS_TR_NONE, ESYS_TR_NONE),
	             TSS2_RC_SUCCESS);
	dev_close(&d);
	assert_tpm_clean("after");
	kw_key_blob_clear(&copy);
}

/* An index at the handle that is not the key's counter (another Name) is
 * someone else's: a purge of a copy leaves it alone. */
Test(tpm2_revocable, an_index_that_is_not_the_keys_counter_is_never_touched)
{
	void *ctx = tpm_open();
	kw_key_blob ref = revocable(ctx), copy = ref_copy(&ref);
	kwb_tpm2_blob b = blob_of(&ref);
	cr_assert_eq(kwb_tpm2_ops.key_destroy(ctx, &ref, NULL), KW_OK, "%s", kw_error_message());
	kw_key_blob_clear(&ref);
	kwb_tpm2_ops.close(ctx);

	dev d;
	ESYS_TR tr = ESYS_TR_NONE;
	TPM2B_AUTH empty = {0};
	TPM2B_NV_PUBLIC pub = {
	    .nvPublic = {.nvIndex = b.nv_index,
	                 .nameAlg = TPM2_ALG_SHA256,
	                 .attributes = TPMA_NV_AUTHREAD | TPMA_NV_AUTHWRITE | TPMA_NV_NO_DA,
	                 .dataSize = 8}};
	TPM2B_MAX_NV_BUFFER data = {.size = 8};
	memcpy(data.buffer, &b.nv_value, 8);
	dev_open(&d);
	cr_assert_eq(Esys_NV_DefineSpace(d.esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                                 ESYS_TR_NONE, &empty, &pub, &tr),
	             TSS2_RC_SUCCESS);
	cr_assert_eq(
	    Esys_NV_Write(d.esys, tr, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &data, 0),
	    TSS2_RC_SUCCESS);
	(void)Esys_TR_Close(d.esys, &tr);
	dev_close(&d);

	ctx = tpm_open();
	kw_key_end end = 0;
	cr_assert_eq(kwb_tpm2_ops.key_destroy(ctx, &copy, &end), KW_ERR_NOT_FOUND, "%s",
	             kw_error_message());
	cr_assert_eq(end, KW_KEY_REVOKED);
	assert_revoked(sign(ctx, &copy, NULL), "sign with another index at the handle");
	kwb_tpm2_ops.close(ctx);

	dev_open(&d);
	TPM2B_NV_PUBLIC *still = dev_nv_public(&d, b.nv_index, &tr);
	cr_assert_not_null(still, "the purge removed an index that was not the key's");
	cr_assert_eq(still->nvPublic.attributes & TPMA_NV_TPM2_NT_MASK, 0, "not a counter");
	Esys_Free(still);
	cr_assert_eq(Esys_NV_UndefineSpace(d.esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD,
	                                   ESYS_TR_NONE, ESYS_TR_NONE),
	             TSS2_RC_SUCCESS);
	dev_close(&d);
	assert_tpm_clean("after");
	kw_key_blob_clear(&copy);
}

Test(tpm2_revocable, each_key_has_its_own_counter)
{
	void *ctx = tpm_open();
	kw_key_blob a = revocable(ctx), b = revocable(ctx);
	cr_assert_neq(blob_of(&a).nv_index, blob_of(&b).nv_index);
	EVP_PKEY *pa = public_key(ctx, &a), *pb = public_key(ctx, &b);
	cr_assert_eq(sign(ctx, &a, pa), KW_OK, "%s", kw_error_message());
	cr_assert_eq(sign(ctx, &b, pb), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kwb_tpm2_ops.key_destroy(ctx, &a, NULL), KW_OK, "%s", kw_error_message());
	assert_revoked(sign(ctx, &a, NULL), "the purged key");
	cr_assert_eq(sign(ctx, &b, pb), KW_OK, "the other key: %s", kw_error_message());
	cr_assert_eq(kwb_tpm2_ops.key_destroy(ctx, &b, NULL), KW_OK, "%s", kw_error_message());
	kwb_tpm2_ops.close(ctx);
	assert_tpm_clean("after both purges");
	EVP_PKEY_free(pa);
	EVP_PKEY_free(pb);
	kw_key_blob_clear(&a);
	kw_key_blob_clear(&b);
}

static void owner_auth_set(const char *from, const char *to)
{
	dev d;
	TPM2B_AUTH new_auth = {.size = (UINT16)strlen(to)}, old = {.size = (UINT16)strlen(from)};
	memcpy(new_auth.buffer, to, new_auth.size);
	memcpy(old.buffer, from, old.size);
	dev_open(&d);
	cr_assert_eq(Esys_TR_SetAuth(d.esys, ESYS_TR_RH_OWNER, &old), TSS2_RC_SUCCESS);
	TSS2_RC rc = Esys_HierarchyChangeAuth(d.esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
	                                      ESYS_TR_NONE, ESYS_TR_NONE, &new_auth);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "HierarchyChangeAuth: %s", Tss2_RC_Decode(rc));
	dev_close(&d);
}

/* keyward defines the counter with the owner's (empty) authorization: an
 * owner hierarchy with a password refuses it, and nothing stays behind. */
Test(tpm2_revocable, without_owner_authorization_nothing_is_left_behind)
{
	owner_auth_set("", "owner-secret");
	void *ctx = tpm_open();
	kw_key_blob ref = {0};
	kw_error_clear();
	kw_rc rc = kwb_tpm2_ops.key_generate_revocable(ctx, KW_KEY_EC_P256, "test", &ref);
	kwb_tpm2_ops.close(ctx);
	owner_auth_set("owner-secret", "");
	cr_assert_neq(rc, KW_OK, "a revocable key without owner authorization");
	cr_assert_null(ref.data);
	cr_assert(strstr(kw_error_message(), "owner") != NULL, "%s", kw_error_message());
	assert_tpm_clean("after the refusal");
}

/* A key type the TPM lacks is refused before any counter is made. */
Test(tpm2_revocable, an_unsupported_key_type_leaves_no_counter)
{
	void *ctx = tpm_open();
	kw_key_blob ref = {0};
	kw_error_clear();
	kw_rc rc = kwb_tpm2_ops.key_generate_revocable(ctx, KW_KEY_RSA_4096, "test", &ref);
	kwb_tpm2_ops.close(ctx);
	cr_assert_eq(rc, KW_ERR_UNSUPPORTED, "rc %d: %s", rc, kw_error_message());
	assert_tpm_clean("after the refusal");
}
