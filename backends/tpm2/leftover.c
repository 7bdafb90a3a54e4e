/* see tpm2_internal.h: transient objects a killed client left in a TPM that
 * has no resource manager */
#include <string.h>

#include "tpm2_internal.h"

int kwb_tpm2_unmanaged(const kwb_tpm2_ctx *c)
{
	const char *t = c->tcti_conf;
	/* tabrmd and /dev/tpmrm0 flush a dead client's objects themselves; the
	 * loader's default may pick either, so it counts as managed */
	if (t == NULL)
		return 0;
	return strncmp(t, "swtpm", 5) == 0 || strncmp(t, "mssim", 5) == 0 ||
	       (strncmp(t, "device:", 7) == 0 && strstr(t, "tpmrm") == NULL);
}

static int ours(kwb_tpm2_ctx *c, TPM2_HANDLE h)
{
	ESYS_TR mine[2] = {c->srk_persistent ? ESYS_TR_NONE : c->srk, c->signer};
	for (size_t i = 0; i < 2; i++) {
		TPM2_HANDLE t = 0;
		if (mine[i] != ESYS_TR_NONE &&
		    Esys_TR_GetTpmHandle(c->esys, mine[i], &t) == TSS2_RC_SUCCESS && t == h)
			return 1;
	}
	return 0;
}

/* TPM2_TRANSIENT_FIRST, spelled unsigned: the header's macro shifts 0x80 as
 * an int by 24, which UBSan rightly calls undefined. */
#define TRANSIENT_FIRST ((TPM2_HANDLE)0x80000000u)

int kwb_tpm2_flush_leftovers(kwb_tpm2_ctx *c)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = 0;
	int flushed = 0;
	if (!kwb_tpm2_unmanaged(c) || c->lost ||
	    Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
	                       TRANSIENT_FIRST, TPM2_MAX_CAP_HANDLES, &more,
	                       &cap) != TSS2_RC_SUCCESS)
		return 0;
	/* Without a resource manager the TPM serves one connection at a time
	 * (swtpm, mssim, the exclusive /dev/tpm0): whatever is loaded and not
	 * ours was left by a client that is gone. */
	for (UINT32 i = 0; i < cap->data.handles.count; i++) {
		TPM2_HANDLE h = cap->data.handles.handle[i];
		ESYS_TR tr = ESYS_TR_NONE;
		if (ours(c, h) || Esys_TR_FromTPMPublic(c->esys, h, ESYS_TR_NONE, ESYS_TR_NONE,
		                                        ESYS_TR_NONE, &tr) != TSS2_RC_SUCCESS)
			continue;
		if (Esys_FlushContext(c->esys, tr) == TSS2_RC_SUCCESS)
			flushed++;
		else
			(void)Esys_TR_Close(c->esys, &tr);
	}
	Esys_Free(cap);
	return flushed;
}

int kwb_tpm2_make_room(kwb_tpm2_ctx *c, TSS2_RC trc)
{
	if (kwb_tpm2_rc_base(trc) != TPM2_RC_OBJECT_MEMORY)
		return 0;
	if (c->signer != ESYS_TR_NONE) {
		kwb_tpm2_signer_drop(c);
		return 1;
	}
	return kwb_tpm2_flush_leftovers(c) > 0;
}
