/* see tpm2_internal.h: loading a key for one operation */
#include <string.h>

#include <tss2/tss2_rc.h>

#include "tpm2_internal.h"

static kw_rc load_fail(kw_tpm2_ctx *c, TSS2_RC trc)
{
	TSS2_RC base = kw_tpm2_rc_base(trc);

	/* The wrapped private part does not verify under this parent: it was made
	 * under another storage key or TPM, or the TPM was cleared since. For the
	 * caller that key is gone. */
	if (base == TPM2_RC_INTEGRITY || base == TPM2_RC_BINDING)
		return KW_FAIL_DEV(
		    KW_ERR_NOT_FOUND, trc,
		    "the TPM cannot load this key (Load): %s; it was created on another "
		    "TPM or under another storage key (parent now %s), or the TPM has "
		    "been cleared since: the key is gone",
		    Tss2_RC_Decode(trc), kw_tpm2_srk_describe(c));
	return KW_TPM2_FAIL(
	    c, trc, "loading the key under the storage key (Load)",
	    "the key reference may be damaged, or the TPM is out of object slots "
	    "(another client left objects loaded: flush them with tpm2_flushcontext -t)");
}

kw_rc kw_tpm2_key_load(kw_tpm2_ctx *c, const kw_tpm2_blob *blob, int read_public,
                       kw_tpm2_loaded *out)
{
	kw_rc rc = KW_OK;
	ESYS_TR srk = ESYS_TR_NONE;
	TSS2_RC trc;

	memset(out, 0, sizeof(*out));
	out->handle = ESYS_TR_NONE;
	rc = kw_tpm2_ready(c);
	if (rc == KW_OK)
		rc = kw_tpm2_srk_get(c, &srk);
	if (rc != KW_OK)
		goto out;
	trc = Esys_Load(c->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &blob->priv,
	                &blob->pub, &out->handle);
	if (trc != TSS2_RC_SUCCESS) {
		out->handle = ESYS_TR_NONE;
		rc = load_fail(c, trc);
		goto out;
	}
	if (!read_public)
		goto out;
	trc = Esys_ReadPublic(c->esys, out->handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                      &out->pub, &out->name, NULL);
	if (trc != TSS2_RC_SUCCESS)
		rc = KW_TPM2_FAIL(c, trc, "reading the loaded key back (ReadPublic)", NULL);
out:
	if (rc != KW_OK)
		kw_tpm2_key_unload(c, out);
	return rc;
}

void kw_tpm2_key_unload(kw_tpm2_ctx *c, kw_tpm2_loaded *k)
{
	if (k->handle != ESYS_TR_NONE) {
		/* the slot is freed on every path; a lost TPM cannot be reached */
		if (!c->lost)
			(void)Esys_FlushContext(c->esys, k->handle);
		k->handle = ESYS_TR_NONE;
	}
	Esys_Free(k->pub);
	Esys_Free(k->name);
	k->pub = NULL;
	k->name = NULL;
}
