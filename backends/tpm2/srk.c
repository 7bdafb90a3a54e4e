/* see tpm2_internal.h: the storage parent (SRK) */
#include <tss2/tss2_rc.h>

#include "tpm2_internal.h"

#define STORAGE_ATTRS                                                                              \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |        \
	 TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |                    \
	 TPMA_OBJECT_DECRYPT)

/* TCG "TPM v2.0 Provisioning Guidance": the ECC NIST P-256 storage root key
 * template (AES-128-CFB, empty auth and policy, zero-length unique). The same
 * template under the same owner seed always gives the same key, so keys made
 * under one context's transient primary load under the next one's. */
static TPM2B_PUBLIC srk_template(void)
{
	TPM2B_PUBLIC t = {0};
	TPMS_ECC_PARMS *ecc = &t.publicArea.parameters.eccDetail;

	t.publicArea.type = TPM2_ALG_ECC;
	t.publicArea.nameAlg = TPM2_ALG_SHA256;
	t.publicArea.objectAttributes = STORAGE_ATTRS;
	ecc->symmetric.algorithm = TPM2_ALG_AES;
	ecc->symmetric.keyBits.aes = 128;
	ecc->symmetric.mode.aes = TPM2_ALG_CFB;
	ecc->scheme.scheme = TPM2_ALG_NULL;
	ecc->curveID = TPM2_ECC_NIST_P256;
	ecc->kdf.scheme = TPM2_ALG_NULL;
	return t;
}

/* A restricted decryption key of the TPM's own (fixedTPM: its seed cannot be
 * known outside, so neither can the keys it wraps) that takes our empty password. */
static int is_storage_key(const TPMT_PUBLIC *p)
{
	TPMA_OBJECT a = p->objectAttributes;

	return (p->type == TPM2_ALG_ECC || p->type == TPM2_ALG_RSA) && (a & TPMA_OBJECT_FIXEDTPM) &&
	       (a & TPMA_OBJECT_FIXEDPARENT) && (a & TPMA_OBJECT_RESTRICTED) &&
	       (a & TPMA_OBJECT_DECRYPT) && !(a & TPMA_OBJECT_SIGN_ENCRYPT) &&
	       (a & TPMA_OBJECT_USERWITHAUTH);
}

/* *found = 1 with c->srk set when 0x81000001 holds a usable storage key. */
static kw_rc persistent_find(kwb_tpm2_ctx *c, int *found)
{
	kw_rc rc = KW_OK;
	ESYS_TR tr = ESYS_TR_NONE;
	TPM2B_PUBLIC *pub = NULL;
	TSS2_RC trc;

	*found = 0;
	/* reading a persistent object takes an object slot too: a killed
	 * client's leftovers on a TPM without resource manager are flushed */
	for (int sweep = 0; sweep < 2; sweep++) {
		trc = Esys_TR_FromTPMPublic(c->esys, KWB_TPM2_SRK_HANDLE, ESYS_TR_NONE,
		                            ESYS_TR_NONE, ESYS_TR_NONE, &tr);
		if (sweep || !kwb_tpm2_make_room(c, trc))
			break;
	}
	if (trc != TSS2_RC_SUCCESS) {
		/* not there: TPM_RC_HANDLE; anything else is a real failure */
		if (kwb_tpm2_rc_base(trc) != TPM2_RC_HANDLE)
			rc = KWB_TPM2_FAIL(c, trc, "looking for the SRK at 0x81000001 (ReadPublic)",
			                   NULL);
		goto out;
	}
	trc = Esys_ReadPublic(c->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL,
	                      NULL);
	if (trc != TSS2_RC_SUCCESS) {
		rc = KWB_TPM2_FAIL(c, trc, "reading the SRK at 0x81000001 (ReadPublic)", NULL);
		goto out;
	}
	if (is_storage_key(&pub->publicArea)) {
		c->srk = tr;
		c->srk_persistent = 1;
		tr = ESYS_TR_NONE;
		*found = 1;
	}
out:
	if (tr != ESYS_TR_NONE)
		Esys_TR_Close(c->esys, &tr);
	Esys_Free(pub);
	return rc;
}

static kw_rc primary_create(kwb_tpm2_ctx *c)
{
	const TPM2B_SENSITIVE_CREATE sens = {0};
	const TPM2B_DATA outside = {0};
	const TPML_PCR_SELECTION pcrs = {0};
	const TPM2B_PUBLIC tmpl = srk_template();
	ESYS_TR tr = ESYS_TR_NONE;
	TSS2_RC trc;

	for (int sweep = 0; sweep < 2; sweep++) {
		trc = Esys_CreatePrimary(c->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		                         ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, &tr, NULL,
		                         NULL, NULL, NULL);
		if (sweep || !kwb_tpm2_make_room(c, trc))
			break;
	}
	if (trc != TSS2_RC_SUCCESS)
		return KWB_TPM2_FAIL(
		    c, trc,
		    "creating the storage primary key in the owner hierarchy "
		    "(CreatePrimary)",
		    "if the owner hierarchy has an auth value, provision a persistent "
		    "SRK at 0x81000001 (tpm2_createprimary + tpm2_evictcontrol)");
	c->srk = tr;
	c->srk_persistent = 0;
	return KW_OK;
}

kw_rc kwb_tpm2_srk_get(kwb_tpm2_ctx *c, ESYS_TR *srk)
{
	int found = 0;

	if (c->srk == ESYS_TR_NONE) {
		KW_GUARD(persistent_find(c, &found));
		if (!found)
			KW_GUARD(primary_create(c));
	}
	*srk = c->srk;
	return KW_OK;
}

void kwb_tpm2_srk_release(kwb_tpm2_ctx *c)
{
	if (c == NULL || c->esys == NULL || c->srk == ESYS_TR_NONE)
		return;
	/* a lost TPM cannot be reached (writing would only fail); Esys_Finalize
	 * frees our side */
	if (c->lost)
		return;
	if (c->srk_persistent)
		(void)Esys_TR_Close(c->esys, &c->srk);
	else
		(void)Esys_FlushContext(c->esys, c->srk);
	c->srk = ESYS_TR_NONE;
}

const char *kwb_tpm2_srk_describe(const kwb_tpm2_ctx *c)
{
	if (c->srk == ESYS_TR_NONE)
		return NULL;
	return c->srk_persistent ? "0x81000001" : "transient-primary";
}
