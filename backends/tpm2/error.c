/* see tpm2_internal.h: TSS2_RC classification and messages */
#include <tss2/tss2_rc.h>

#include "tpm2_internal.h"

#define BASE_RC_MASK 0xffffu

TSS2_RC kwb_tpm2_rc_base(TSS2_RC rc)
{
	TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
	TSS2_RC tpm = rc & ~TSS2_RC_LAYER_MASK;

	if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER)
		return rc & BASE_RC_MASK;
	/* format 1 carries a handle/session/parameter number in bits 6..11 */
	if (tpm & TPM2_RC_FMT1)
		return tpm & (TPM2_RC_FMT1 | 0x3fu);
	return tpm & 0xfffu;
}

static int is_tpm_layer(TSS2_RC rc)
{
	TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
	return layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER;
}

kw_rc kwb_tpm2_rc_code(TSS2_RC rc)
{
	TSS2_RC base = kwb_tpm2_rc_base(rc);

	if (is_tpm_layer(rc)) {
		if (base == TPM2_RC_AUTH_FAIL || base == TPM2_RC_BAD_AUTH ||
		    base == TPM2_RC_LOCKOUT)
			return KW_ERR_AUTH;
		return KW_ERR_BACKEND;
	}
	if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER)
		return KW_ERR_UNAVAILABLE;
	switch (base) {
	case TSS2_BASE_RC_IO_ERROR:
	case TSS2_BASE_RC_NO_CONNECTION:
	case TSS2_BASE_RC_INSUFFICIENT_RESPONSE: return KW_ERR_UNAVAILABLE;
	default: return KW_ERR_BACKEND;
	}
}

kw_rc kwb_tpm2_fail_at(kwb_tpm2_ctx *c, TSS2_RC rc, const char *op, const char *advice,
                       const char *file, int line)
{
	kw_rc code = kwb_tpm2_rc_code(rc);
	const char *decoded = Tss2_RC_Decode(rc);

	switch (code) {
	case KW_ERR_UNAVAILABLE:
		if (c != NULL)
			c->lost = 1;
		return kw_error_set(
		    code, rc, file, line,
		    "lost the TPM while %s (TCTI '%s'): %s; is the TPM (or "
		    "swtpm/tpm2-abrmd) still running? open the backend again once it is",
		    op, kwb_tpm2_tcti_name(c), decoded);
	case KW_ERR_AUTH:
		return kw_error_set(
		    code, rc, file, line,
		    "the TPM refused the authorization while %s: %s; check the auth value, "
		    "or wait for the dictionary-attack lockout to end",
		    op, decoded);
	default:
		return kw_error_set(code, rc, file, line, "the TPM failed while %s: %s; %s", op,
		                    decoded,
		                    advice != NULL ? advice : "see the TPM response code above");
	}
}
