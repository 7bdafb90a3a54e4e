/* see tpm2_internal.h: revocable keys, each bound to an NV counter of its own
 * by TPM2_PolicyNV */
#include <string.h>

#include <openssl/evp.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "tpm2_internal.h"

/*
 * Why a counter per key, and these attributes:
 * - A counter cannot go back. When a counter index is deleted the TPM keeps
 *   its value as the floor for every counter defined later (a new counter
 *   starts above the largest value any counter had), so whoever holds owner
 *   authorization can delete and redefine the index at the same handle with
 *   the same attributes (same Name) but never make it read the value a
 *   purged key's policy requires. A bits or ordinary index has no such
 *   floor: deleted and defined again it reads zero, and every key bound to
 *   it would sign again.
 * - One counter per key: incrementing it ends that key alone.
 * - Not orderly: an orderly counter jumps forward after a power loss, which
 *   would end every live key bound to it. A counter is written twice in its
 *   life (made, purged): no wear to save.
 * - AUTHREAD with an empty auth value: PolicyNV reads it, anyone may (the
 *   value is no secret). OWNERWRITE: only owner authorization moves it (and
 *   keyward defines it with owner authorization anyway); an owner who moves
 *   it can only end a key, never bring one back. NO_DA: an empty auth value
 *   has nothing for dictionary-attack protection to protect.
 */
#define NV_ATTRS                                                                                   \
	((TPMA_NV)(TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_AUTHREAD |                  \
	 TPMA_NV_OWNERWRITE | TPMA_NV_NO_DA)
#define NV_SIZE 8u

static TPM2B_OPERAND operand(UINT64 value)
{
	TPM2B_OPERAND o = {.size = NV_SIZE};
	for (unsigned i = 0; i < NV_SIZE; i++)
		o.buffer[i] = (BYTE)(value >> (8 * (NV_SIZE - 1 - i)));
	return o;
}

/* see tpm2_internal.h */
kw_rc kwb_tpm2_nv_policy(const TPM2B_NAME *nv_name, UINT64 value, TPM2B_DIGEST *policy)
{
	/* TPM 2.0 Part 3, TPM2_PolicyNV, from an empty (all-zero) policy:
	 *   args      = SHA-256(operandB || offset || operation)
	 *   policyNew = SHA-256(policyOld || TPM_CC_PolicyNV || args || nvIndex Name) */
	unsigned char buf[32 + 4 + 32 + sizeof(nv_name->name)], args[32];
	const TPM2B_OPERAND b = operand(value);
	unsigned char tail[4] = {0, 0, (BYTE)(TPM2_EO_EQ >> 8), (BYTE)TPM2_EO_EQ}; /* offset 0 */
	unsigned char a[NV_SIZE + 4];
	size_t off = 0;
	unsigned int n = 0;

	memcpy(a, b.buffer, NV_SIZE);
	memcpy(a + NV_SIZE, tail, 4);
	if (!EVP_Digest(a, sizeof(a), args, &n, EVP_sha256(), NULL) || n != 32)
		return KW_FAIL(KW_ERR_INTERNAL, "tpm2: cannot hash the PolicyNV arguments");
	memset(buf, 0, 32);
	off = 32;
	buf[off++] = (BYTE)(TPM2_CC_PolicyNV >> 24);
	buf[off++] = (BYTE)(TPM2_CC_PolicyNV >> 16);
	buf[off++] = (BYTE)(TPM2_CC_PolicyNV >> 8);
	buf[off++] = (BYTE)TPM2_CC_PolicyNV;
	memcpy(buf + off, args, 32);
	off += 32;
	memcpy(buf + off, nv_name->name, nv_name->size);
	off += nv_name->size;
	policy->size = 32;
	if (!EVP_Digest(buf, off, policy->buffer, &n, EVP_sha256(), NULL) || n != 32)
		return KW_FAIL(KW_ERR_INTERNAL, "tpm2: cannot compute the PolicyNV digest");
	return KW_OK;
}

/* A failure of a command keyward authorises as the owner (an empty
 * password), with what to do when the owner hierarchy has a password. */
static kw_rc owner_fail(kwb_tpm2_ctx *c, TSS2_RC trc, const char *op)
{
	if (kwb_tpm2_rc_code(trc) == KW_ERR_AUTH)
		return KW_FAIL_DEV(KW_ERR_AUTH, trc,
		                   "the TPM refused owner authorization while %s: %s; keyward "
		                   "authorises the NV counters of revocable keys as the owner with "
		                   "an empty password: clear the owner hierarchy's auth value, or "
		                   "make keys without --revocable",
		                   op, Tss2_RC_Decode(trc));
	return KWB_TPM2_FAIL(c, trc, op, NULL);
}

/* The first handle in keyward's NV range that no index holds, in *h. */
static kw_rc first_free(kwb_tpm2_ctx *c, TPMI_RH_NV_INDEX *h)
{
	TPM2_HANDLE want = KWB_TPM2_NV_FIRST;
	TPMI_YES_NO more = 1;

	while (more && want <= KWB_TPM2_NV_LAST) {
		TPMS_CAPABILITY_DATA *cap = NULL;
		TSS2_RC trc =
		    Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
		                       TPM2_CAP_HANDLES, want, TPM2_MAX_CAP_HANDLES, &more, &cap);
		if (trc != TSS2_RC_SUCCESS)
			return KWB_TPM2_FAIL(c, trc, "listing NV indexes (GetCapability)", NULL);
		const TPML_HANDLE *l = &cap->data.handles;
		UINT32 i = 0;
		/* the list is sorted: the first gap at or after want is free */
		for (; i < l->count && l->handle[i] == want; i++)
			want++;
		if (i < l->count || l->count == 0)
			more = 0;
		Esys_Free(cap);
	}
	if (want > KWB_TPM2_NV_LAST)
		return KW_FAIL(KW_ERR_BACKEND,
		               "every NV index keyward uses for revocable keys (0x%08x to 0x%08x) "
		               "is taken; purge revocable keys that are no longer needed",
		               KWB_TPM2_NV_FIRST, KWB_TPM2_NV_LAST);
	*h = want;
	return KW_OK;
}

/* TPM2_NV_DefineSpace at the first free handle; another client may take it
 * first (TPM_RC_NV_DEFINED): the next one is tried. */
static kw_rc counter_define(kwb_tpm2_ctx *c, ESYS_TR *tr, TPMI_RH_NV_INDEX *index)
{
	const TPM2B_AUTH empty = {0};
	TSS2_RC trc = TSS2_RC_SUCCESS;

	for (int tries = 0; tries < 8; tries++) {
		KW_GUARD(first_free(c, index));
		TPM2B_NV_PUBLIC pub = {.nvPublic = {.nvIndex = *index,
		                                    .nameAlg = TPM2_ALG_SHA256,
		                                    .attributes = NV_ATTRS,
		                                    .dataSize = NV_SIZE}};
		trc = Esys_NV_DefineSpace(c->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		                          ESYS_TR_NONE, &empty, &pub, tr);
		if (kwb_tpm2_rc_base(trc) != TPM2_RC_NV_DEFINED)
			break;
	}
	if (trc == TSS2_RC_SUCCESS)
		return KW_OK;
	*tr = ESYS_TR_NONE;
	if (kwb_tpm2_rc_base(trc) == TPM2_RC_NV_SPACE)
		return KW_FAIL_DEV(KW_ERR_BACKEND, trc,
		                   "the TPM has no NV space left for the counter of a revocable "
		                   "key (NV_DefineSpace): %s; purge revocable keys that are no "
		                   "longer needed, or make this key without --revocable",
		                   Tss2_RC_Decode(trc));
	return owner_fail(c, trc, "defining the NV counter of a revocable key (NV_DefineSpace)");
}

/* The counter's value (TPM2_NV_Read with the index's empty auth value). */
static kw_rc counter_read(kwb_tpm2_ctx *c, ESYS_TR tr, UINT64 *value)
{
	TPM2B_MAX_NV_BUFFER *data = NULL;
	TSS2_RC trc = Esys_NV_Read(c->esys, tr, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	                           NV_SIZE, 0, &data);
	if (trc != TSS2_RC_SUCCESS)
		return KWB_TPM2_FAIL(c, trc, "reading a revocable key's NV counter (NV_Read)",
		                     NULL);
	kw_rc rc = KW_OK;
	if (data->size != NV_SIZE)
		rc = KW_FAIL(KW_ERR_BACKEND, "the TPM read %u bytes of an 8-byte NV counter",
		             data->size);
	*value = 0;
	for (unsigned i = 0; rc == KW_OK && i < NV_SIZE; i++)
		*value = *value << 8 | data->buffer[i];
	Esys_Free(data);
	return rc;
}

/* Removes an index (owner authorization). ESYS forgets tr either way. */
static TSS2_RC counter_undefine(kwb_tpm2_ctx *c, ESYS_TR *tr)
{
	TSS2_RC trc = Esys_NV_UndefineSpace(c->esys, ESYS_TR_RH_OWNER, *tr, ESYS_TR_PASSWORD,
	                                    ESYS_TR_NONE, ESYS_TR_NONE);
	if (trc != TSS2_RC_SUCCESS)
		(void)Esys_TR_Close(c->esys, tr);
	*tr = ESYS_TR_NONE;
	return trc;
}

/* see tpm2_internal.h */
kw_rc kwb_tpm2_nv_counter_new(kwb_tpm2_ctx *c, kwb_tpm2_counter *out)
{
	ESYS_TR tr = ESYS_TR_NONE;
	TPM2B_NV_PUBLIC *pub = NULL;
	TPM2B_NAME *name = NULL;
	TSS2_RC trc;

	memset(out, 0, sizeof(*out));
	KW_GUARD(counter_define(c, &tr, &out->index));
	/* written once: the TPM starts it above every value a counter had */
	trc = Esys_NV_Increment(c->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                        ESYS_TR_NONE);
	kw_rc rc = trc == TSS2_RC_SUCCESS
	               ? KW_OK
	               : owner_fail(c, trc, "starting a revocable key's NV counter (NV_Increment)");
	if (rc == KW_OK)
		rc = counter_read(c, tr, &out->value);
	/* the Name as the TPM computes it (written: TPMA_NV_WRITTEN is in it) */
	if (rc == KW_OK && (trc = Esys_NV_ReadPublic(c->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE,
	                                             ESYS_TR_NONE, &pub, &name)) != TSS2_RC_SUCCESS)
		rc = KWB_TPM2_FAIL(c, trc, "reading a revocable key's NV counter (NV_ReadPublic)",
		                   NULL);
	if (rc == KW_OK)
		out->name = *name;
	Esys_Free(pub);
	Esys_Free(name);
	if (rc != KW_OK && !c->lost)
		(void)counter_undefine(c, &tr); /* the TPM as it was */
	else
		(void)Esys_TR_Close(c->esys, &tr);
	return rc;
}

/* see tpm2_internal.h */
void kwb_tpm2_nv_counter_drop(kwb_tpm2_ctx *c, TPMI_RH_NV_INDEX index)
{
	ESYS_TR tr = ESYS_TR_NONE;
	if (c->lost || Esys_TR_FromTPMPublic(c->esys, index, ESYS_TR_NONE, ESYS_TR_NONE,
	                                     ESYS_TR_NONE, &tr) != TSS2_RC_SUCCESS)
		return;
	(void)counter_undefine(c, &tr);
}

static kw_rc revoked(const kwb_tpm2_blob *b, const char *why)
{
	return KW_FAIL(KW_ERR_NOT_FOUND,
	               "the TPM key was revoked: its NV counter 0x%08x %s (keyward purged it); "
	               "no copy of the key can sign again",
	               b->nv_index, why);
}

/* An ESYS object for the key's counter, when the index at its handle is the
 * one its policy names; KW_ERR_NOT_FOUND when it is gone (revoked). */
static kw_rc counter_open(kwb_tpm2_ctx *c, const kwb_tpm2_blob *b, ESYS_TR *tr)
{
	TPM2B_NAME *name = NULL;
	TPM2B_DIGEST want = {0};
	TSS2_RC trc = Esys_TR_FromTPMPublic(c->esys, b->nv_index, ESYS_TR_NONE, ESYS_TR_NONE,
	                                    ESYS_TR_NONE, tr);

	if (trc != TSS2_RC_SUCCESS) {
		*tr = ESYS_TR_NONE;
		if (kwb_tpm2_rc_base(trc) == TPM2_RC_HANDLE)
			return revoked(b, "no longer exists");
		return KWB_TPM2_FAIL(c, trc, "finding a revocable key's NV counter (NV_ReadPublic)",
		                     NULL);
	}
	/* Another index at that handle (ours was removed, someone defined one)
	 * gives another Name, so another policy: not the key's counter. */
	kw_rc rc = Esys_TR_GetName(c->esys, *tr, &name) == TSS2_RC_SUCCESS
	               ? kwb_tpm2_nv_policy(name, b->nv_value, &want)
	               : KW_FAIL(KW_ERR_INTERNAL, "tpm2: cannot read an NV index's Name");
	if (rc == KW_OK && (want.size != b->pub.publicArea.authPolicy.size ||
	                    memcmp(want.buffer, b->pub.publicArea.authPolicy.buffer, want.size)))
		rc = revoked(b, "was removed (the index now at that handle is another one)");
	Esys_Free(name);
	if (rc != KW_OK)
		(void)Esys_TR_Close(c->esys, tr);
	return rc;
}

/* see tpm2_internal.h */
void kwb_tpm2_policy_session_end(kwb_tpm2_ctx *c, ESYS_TR *session, int used)
{
	if (*session == ESYS_TR_NONE)
		return;
	/* A command that succeeded with continueSession clear made the TPM flush
	 * the session; otherwise it is still loaded and takes a session slot. */
	if (used || c->lost || Esys_FlushContext(c->esys, *session) != TSS2_RC_SUCCESS)
		(void)Esys_TR_Close(c->esys, session);
	*session = ESYS_TR_NONE;
}

/* see tpm2_internal.h */
kw_rc kwb_tpm2_policy_session(kwb_tpm2_ctx *c, const kwb_tpm2_blob *b, ESYS_TR *session)
{
	const TPMT_SYM_DEF none = {.algorithm = TPM2_ALG_NULL};
	const TPM2B_OPERAND value = operand(b->nv_value);
	TSS2_RC trc;

	*session = ESYS_TR_NONE;
	if (c->signer_nv == ESYS_TR_NONE || c->signer_nv_index != b->nv_index) {
		if (c->signer_nv != ESYS_TR_NONE)
			(void)Esys_TR_Close(c->esys, &c->signer_nv);
		c->signer_nv = ESYS_TR_NONE;
		KW_GUARD(counter_open(c, b, &c->signer_nv));
		c->signer_nv_index = b->nv_index;
	}
	trc = Esys_StartAuthSession(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                            ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &none, TPM2_ALG_SHA256,
	                            session);
	if (trc != TSS2_RC_SUCCESS) {
		*session = ESYS_TR_NONE;
		return KWB_TPM2_FAIL(c, trc, "starting a policy session (StartAuthSession)", NULL);
	}
	/* one command: the TPM flushes the session after the signature */
	trc = Esys_TRSess_SetAttributes(c->esys, *session, 0, TPMA_SESSION_CONTINUESESSION);
	if (trc == TSS2_RC_SUCCESS)
		trc = Esys_PolicyNV(c->esys, c->signer_nv, c->signer_nv, *session, ESYS_TR_PASSWORD,
		                    ESYS_TR_NONE, ESYS_TR_NONE, &value, 0, TPM2_EO_EQ);
	if (trc == TSS2_RC_SUCCESS)
		return KW_OK;
	kwb_tpm2_policy_session_end(c, session, 0);
	if (kwb_tpm2_rc_base(trc) == TPM2_RC_POLICY)
		return revoked(b, "has moved past the value the key requires");
	if (kwb_tpm2_rc_base(trc) == TPM2_RC_HANDLE) {
		(void)Esys_TR_Close(c->esys, &c->signer_nv);
		c->signer_nv = ESYS_TR_NONE;
		return revoked(b, "no longer exists");
	}
	return KWB_TPM2_FAIL(c, trc, "satisfying the key's policy (PolicyNV)", NULL);
}

/* see tpm2_internal.h */
kw_rc kwb_tpm2_nv_revoke(kwb_tpm2_ctx *c, const kwb_tpm2_blob *b)
{
	ESYS_TR tr = ESYS_TR_NONE;
	TSS2_RC trc;

	KW_GUARD(kwb_tpm2_ready(c));
	if (c->signer_nv != ESYS_TR_NONE && c->signer_nv_index == b->nv_index)
		kwb_tpm2_signer_drop(c);
	KW_GUARD(counter_open(c, b, &tr));
	/* First the counter moves past the key's value: from here no copy of the
	 * key signs, even if removing the index fails. */
	trc = Esys_NV_Increment(c->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                        ESYS_TR_NONE);
	if (trc != TSS2_RC_SUCCESS) {
		(void)Esys_TR_Close(c->esys, &tr);
		return owner_fail(c, trc, "revoking the key: moving its NV counter (NV_Increment)");
	}
	/* Then the NV space goes back; the TPM keeps the counter's value as the
	 * floor of every counter defined later. */
	trc = counter_undefine(c, &tr);
	if (trc != TSS2_RC_SUCCESS)
		return owner_fail(
		    c, trc,
		    "removing a revoked key's NV counter (NV_UndefineSpace; the key is "
		    "revoked already: a purge run again frees the index)");
	return KW_OK;
}

/* see tpm2_internal.h */
kw_rc kwb_tpm2_nv_live(kwb_tpm2_ctx *c, const kwb_tpm2_blob *b, int *live)
{
	ESYS_TR tr = ESYS_TR_NONE;
	UINT64 now = 0;
	*live = 0;
	kw_rc rc = counter_open(c, b, &tr);
	if (rc == KW_ERR_NOT_FOUND) {
		kw_error_clear();
		return KW_OK;
	}
	KW_GUARD(rc);
	rc = counter_read(c, tr, &now);
	(void)Esys_TR_Close(c->esys, &tr);
	*live = rc == KW_OK && now == b->nv_value;
	return rc;
}
