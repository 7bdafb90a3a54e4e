/* see tpm2_internal.h: key generation (TPM2_Create under the SRK) and what destroy can do */
#include <string.h>

#include <tss2/tss2_rc.h>

#include "tpm2_internal.h"

/* Non-exportable (fixedTPM|fixedParent), made inside the TPM, usable with an
 * empty password, for signing only. No scheme is fixed: each TPM2_Sign picks
 * ECDSA / RSASSA / RSAPSS and the hash. noDA: an empty password has nothing
 * for dictionary-attack protection to protect, and with it a few power losses
 * (each counts as a failure) would lock a server's key out. */
#define SIGNING_KEY_ATTRS                                                                          \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |        \
	 TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_NODA)
/* A revocable key (revoke.c): the same without userWithAuth, so that only its
 * policy (PolicyNV on its counter) authorises a signature. adminWithPolicy
 * stays clear: TPM2_Certify (cert verify) still takes the empty password for
 * the admin role, and fixedParent keeps TPM2_Duplicate impossible whatever
 * the policy says. */
#define REVOCABLE_KEY_ATTRS (SIGNING_KEY_ATTRS & ~TPMA_OBJECT_USERWITHAUTH)

/* see tpm2_internal.h */
kw_rc kwb_tpm2_key_template(kw_key_type type, TPMA_OBJECT attrs, TPM2B_PUBLIC *t)
{
	TPMT_PUBLIC *p = &t->publicArea;

	memset(t, 0, sizeof(*t));
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = attrs;
	switch (type) {
	case KW_KEY_EC_P256:
	case KW_KEY_EC_P384:
		p->type = TPM2_ALG_ECC;
		p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
		p->parameters.eccDetail.curveID =
		    type == KW_KEY_EC_P256 ? TPM2_ECC_NIST_P256 : TPM2_ECC_NIST_P384;
		p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
		return KW_OK;
	case KW_KEY_RSA_2048:
	case KW_KEY_RSA_3072:
	case KW_KEY_RSA_4096:
		p->type = TPM2_ALG_RSA;
		p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
		p->parameters.rsaDetail.keyBits = type == KW_KEY_RSA_2048   ? 2048
		                                  : type == KW_KEY_RSA_3072 ? 3072
		                                                            : 4096;
		p->parameters.rsaDetail.exponent = 0; /* 65537 */
		return KW_OK;
	default: return KW_FAIL(KW_ERR_USAGE, "tpm2: unknown key type %d", (int)type);
	}
}

/* The TPM's answer to unsupported key parameters (curve, key size...). */
static int is_unsupported(TSS2_RC trc)
{
	TSS2_RC layer = trc & TSS2_RC_LAYER_MASK;
	TSS2_RC base = kwb_tpm2_rc_base(trc);

	if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER)
		return 0;
	return base == TPM2_RC_VALUE || base == TPM2_RC_KEY_SIZE || base == TPM2_RC_CURVE ||
	       base == TPM2_RC_ASYMMETRIC || base == TPM2_RC_SCHEME || base == TPM2_RC_TYPE;
}

static kw_rc unsupported(kw_key_type type, TSS2_RC trc)
{
	return KW_FAIL_DEV(KW_ERR_UNSUPPORTED, trc,
	                   "the TPM does not support %s keys (%s); choose another key type",
	                   kw_key_type_name(type), Tss2_RC_Decode(trc));
}

/* TPM2_TestParms: asks before a (slow) key generation whether the TPM can do it. */
static kw_rc params_test(kwb_tpm2_ctx *c, kw_key_type type, const TPM2B_PUBLIC *t)
{
	TPMT_PUBLIC_PARMS parms = {.type = t->publicArea.type,
	                           .parameters = t->publicArea.parameters};
	TSS2_RC trc = Esys_TestParms(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &parms);

	if (trc == TSS2_RC_SUCCESS)
		return KW_OK;
	if (is_unsupported(trc))
		return unsupported(type, trc);
	return KWB_TPM2_FAIL(c, trc, "checking the key parameters (TestParms)", NULL);
}

/* TPM2_Create under the SRK; the reference names counter ctr when given. */
static kw_rc key_create(kwb_tpm2_ctx *c, kw_key_type type, const TPM2B_PUBLIC *t,
                        const kwb_tpm2_counter *ctr, kw_key_blob *out)
{
	const TPM2B_SENSITIVE_CREATE sens = {0};
	const TPM2B_DATA outside = {0};
	const TPML_PCR_SELECTION pcrs = {0};
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC *pub = NULL;
	ESYS_TR srk = ESYS_TR_NONE;
	kw_rc rc = KW_OK;
	TSS2_RC trc;

	rc = kwb_tpm2_srk_get(c, &srk);
	if (rc != KW_OK)
		goto out;
	for (int tries = 0; tries < 3; tries++) {
		trc = Esys_Create(c->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
		                  t, &outside, &pcrs, &priv, &pub, NULL, NULL, NULL);
		if (!kwb_tpm2_make_room(c, trc))
			break;
	}
	if (trc != TSS2_RC_SUCCESS) {
		rc = is_unsupported(trc)
		         ? unsupported(type, trc)
		         : KWB_TPM2_FAIL(c, trc, "generating the key (Create)", NULL);
		goto out;
	}
	rc = ctr ? kwb_tpm2_blob_encode_revocable(pub, priv, ctr->index, ctr->value, out)
	         : kwb_tpm2_blob_encode(pub, priv, out);
out:
	Esys_Free(priv);
	Esys_Free(pub);
	return rc;
}

kw_rc kwb_tpm2_key_generate(void *ctx, kw_key_type type, const char *label, kw_key_blob *out)
{
	kwb_tpm2_ctx *c = ctx;
	TPM2B_PUBLIC t;

	(void)label; /* a TPM key has no label: the store names it */
	if (c == NULL || out == NULL)
		return KW_FAIL(KW_ERR_USAGE, "tpm2 key_generate: no context or output given");
	out->data = NULL;
	out->len = 0;
	KW_GUARD(kwb_tpm2_key_template(type, SIGNING_KEY_ATTRS, &t));
	KW_GUARD(kwb_tpm2_ready(c));
	KW_GUARD(params_test(c, type, &t));
	return key_create(c, type, &t, NULL, out);
}

kw_rc kwb_tpm2_key_generate_revocable(void *ctx, kw_key_type type, const char *label,
                                      kw_key_blob *out)
{
	kwb_tpm2_ctx *c = ctx;
	kwb_tpm2_counter ctr;
	TPM2B_PUBLIC t;

	(void)label;
	if (c == NULL || out == NULL)
		return KW_FAIL(KW_ERR_USAGE, "tpm2 key_generate: no context or output given");
	out->data = NULL;
	out->len = 0;
	KW_GUARD(kwb_tpm2_key_template(type, REVOCABLE_KEY_ATTRS, &t));
	KW_GUARD(kwb_tpm2_ready(c));
	KW_GUARD(params_test(c, type, &t));
	KW_GUARD(kwb_tpm2_nv_counter_new(c, &ctr));
	kw_rc rc = kwb_tpm2_nv_policy(&ctr.name, ctr.value, &t.publicArea.authPolicy);
	if (rc == KW_OK)
		rc = key_create(c, type, &t, &ctr, out);
	if (rc != KW_OK) /* no key: its counter goes too */
		kwb_tpm2_nv_counter_drop(c, ctr.index);
	return rc;
}

kw_rc kwb_tpm2_key_destroy(void *ctx, const kw_key_blob *ref, kw_key_end *end)
{
	kwb_tpm2_blob blob;

	if (end != NULL)
		*end = KW_KEY_FORGOTTEN;
	KW_GUARD(kwb_tpm2_blob_parse(ref, &blob));
	/* Nothing of a key lives on the TPM, and no TPM command can make a
	 * wrapped blob unloadable: for an ordinary key the caller drops its
	 * copy, and any other copy still loads under this TPM's SRK and signs.
	 * A revocable key's counter moves on instead: no copy signs again. */
	if (!kwb_tpm2_blob_revocable(&blob))
		return KW_OK;
	if (end != NULL)
		*end = KW_KEY_REVOKED;
	return kwb_tpm2_nv_revoke(ctx, &blob);
}
