/* see tpm2_internal.h: loading a key for one operation */
#include <string.h>
#include <time.h>

#include <tss2/tss2_rc.h>

#include "tpm2_internal.h"

static kw_rc load_fail(kwb_tpm2_ctx *c, TSS2_RC trc)
{
	TSS2_RC base = kwb_tpm2_rc_base(trc);

	/* The wrapped private part does not verify under this parent: it was made
	 * under another storage key or TPM, or the TPM was cleared since. For the
	 * caller that key is gone. */
	if (base == TPM2_RC_INTEGRITY || base == TPM2_RC_BINDING)
		return KW_FAIL_DEV(
		    KW_ERR_NOT_FOUND, trc,
		    "the TPM cannot load this key (Load): %s; it was created on another "
		    "TPM or under another storage key (parent now %s), or the TPM has "
		    "been cleared since: the key is gone",
		    Tss2_RC_Decode(trc), kwb_tpm2_srk_describe(c));
	return KWB_TPM2_FAIL(
	    c, trc, "loading the key under the storage key (Load)",
	    "the key blob may be damaged, or the TPM is out of object slots "
	    "(another client left objects loaded: flush them with tpm2_flushcontext -t)");
}

/* Tries and retries for up to a second while the TPM is out of object
 * memory (other clients' objects come and go) or asks to retry; our own
 * idle cached key is flushed first, then (without a resource manager) what
 * dead clients left loaded. */
static TSS2_RC load_retrying(kwb_tpm2_ctx *c, ESYS_TR srk, const kwb_tpm2_blob *blob, ESYS_TR *h)
{
	const struct timespec pause = {0, 10 * 1000 * 1000};
	TSS2_RC trc = TSS2_RC_SUCCESS;
	int swept = 0;

	for (int i = 0; i < 100; i++) {
		trc = Esys_Load(c->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		                &blob->priv, &blob->pub, h);
		TSS2_RC base = kwb_tpm2_rc_base(trc);
		if (base != TPM2_RC_OBJECT_MEMORY && base != TPM2_RC_RETRY &&
		    base != TPM2_RC_YIELDED && base != TPM2_RC_TESTING)
			break;
		if (base == TPM2_RC_OBJECT_MEMORY && c->signer != ESYS_TR_NONE) {
			kwb_tpm2_signer_drop(c);
			continue;
		}
		/* no resource manager: slots held by a killed client free up never */
		if (base == TPM2_RC_OBJECT_MEMORY && !swept++ && kwb_tpm2_flush_leftovers(c) > 0)
			continue;
		nanosleep(&pause, NULL);
	}
	return trc;
}

kw_rc kwb_tpm2_key_load(kwb_tpm2_ctx *c, const kwb_tpm2_blob *blob, int read_public,
                        kwb_tpm2_loaded *out)
{
	kw_rc rc = KW_OK;
	ESYS_TR srk = ESYS_TR_NONE;
	TSS2_RC trc;

	memset(out, 0, sizeof(*out));
	out->handle = ESYS_TR_NONE;
	rc = kwb_tpm2_ready(c);
	if (rc == KW_OK)
		rc = kwb_tpm2_srk_get(c, &srk);
	if (rc != KW_OK)
		goto out;
	trc = load_retrying(c, srk, blob, &out->handle);
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
		rc = KWB_TPM2_FAIL(c, trc, "reading the loaded key back (ReadPublic)", NULL);
out:
	if (rc != KW_OK)
		kwb_tpm2_key_unload(c, out);
	return rc;
}

void kwb_tpm2_key_unload(kwb_tpm2_ctx *c, kwb_tpm2_loaded *k)
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

kw_rc kwb_tpm2_signer_get(kwb_tpm2_ctx *c, const kwb_tpm2_blob *blob, ESYS_TR *out)
{
	kwb_tpm2_loaded key = KWB_TPM2_LOADED_INIT;

	if (c->signer != ESYS_TR_NONE && c->signer_priv.size == blob->priv.size &&
	    memcmp(c->signer_priv.buffer, blob->priv.buffer, blob->priv.size) == 0) {
		*out = c->signer;
		return KW_OK;
	}
	kwb_tpm2_signer_drop(c);
	KW_GUARD(kwb_tpm2_key_load(c, blob, 0, &key));
	c->signer = key.handle;
	c->signer_priv = blob->priv;
	/* Built once per load, not per signature (it cost 16 % of a signature). */
	kw_rc rc = kwb_tpm2_public_to_pkey(&blob->pub.publicArea, &c->signer_pkey);
	if (rc != KW_OK) {
		kwb_tpm2_signer_drop(c);
		return rc;
	}
	*out = c->signer;
	return KW_OK;
}

void kwb_tpm2_signer_drop(kwb_tpm2_ctx *c)
{
	EVP_PKEY_free(c->signer_pkey);
	c->signer_pkey = NULL;
	c->signer_checked = 0;
	if (c->signer_nv != ESYS_TR_NONE) /* ESYS's record only: an NV index is not flushed */
		(void)Esys_TR_Close(c->esys, &c->signer_nv);
	c->signer_nv = ESYS_TR_NONE;
	c->signer_nv_index = 0;
	if (c->signer == ESYS_TR_NONE)
		return;
	if (!c->lost)
		(void)Esys_FlushContext(c->esys, c->signer);
	c->signer = ESYS_TR_NONE;
	c->signer_priv.size = 0;
}

/* see tpm2_internal.h */
kw_rc kwb_tpm2_key_load_ref(kwb_tpm2_ctx *c, const kw_key_blob *ref, kwb_tpm2_loaded *out)
{
	kwb_tpm2_blob blob;
	KW_GUARD(kwb_tpm2_blob_parse(ref, &blob));
	return kwb_tpm2_key_load(c, &blob, 1, out);
}
