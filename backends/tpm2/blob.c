/* see tpm2_internal.h: the key blob (version byte, TPM2B_PUBLIC, TPM2B_PRIVATE
 * and, for a revocable key, its NV counter) */
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "tpm2_internal.h"

kw_key_type kwb_tpm2_public_key_type(const TPMT_PUBLIC *pub)
{
	if (pub->type == TPM2_ALG_ECC) {
		switch (pub->parameters.eccDetail.curveID) {
		case TPM2_ECC_NIST_P256: return KW_KEY_EC_P256;
		case TPM2_ECC_NIST_P384: return KW_KEY_EC_P384;
		default: return 0;
		}
	}
	if (pub->type == TPM2_ALG_RSA) {
		switch (pub->parameters.rsaDetail.keyBits) {
		case 2048: return KW_KEY_RSA_2048;
		case 3072: return KW_KEY_RSA_3072;
		case 4096: return KW_KEY_RSA_4096;
		default: return 0;
		}
	}
	return 0;
}

/* The public area must re-marshal to exactly the bytes it came from: a
 * lenient unmarshaller must not let two encodings name one key. */
static int public_is_canonical(const TPM2B_PUBLIC *pub, const unsigned char *in, size_t len)
{
	unsigned char buf[sizeof(TPM2B_PUBLIC)];
	size_t off = 0;

	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
		return 0;
	return off == len && memcmp(buf, in, len) == 0;
}

static kw_rc blob_check(const kwb_tpm2_blob *b)
{
	const TPMT_PUBLIC *p = &b->pub.publicArea;

	if (kwb_tpm2_public_key_type(p) == 0)
		return KW_FAIL(KW_ERR_PARSE,
		               "TPM key blob: the public area (type 0x%04x) is not an "
		               "EC P-256/P-384 or RSA 2048/3072/4096 key",
		               p->type);
	if (!(p->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT))
		return KW_FAIL(KW_ERR_PARSE, "TPM key blob: the key is not a signing key");
	if (b->priv.size == 0)
		return KW_FAIL(KW_ERR_PARSE, "TPM key blob: the wrapped private part is empty");
	if (!kwb_tpm2_blob_revocable(b))
		return KW_OK;
	/* what keygen makes: only the policy authorises it, SHA-256 policy */
	if (b->nv_index < KWB_TPM2_NV_FIRST || b->nv_index > KWB_TPM2_NV_LAST)
		return KW_FAIL(KW_ERR_PARSE,
		               "TPM key blob: NV counter 0x%08x is outside keyward's range",
		               b->nv_index);
	if ((p->objectAttributes & TPMA_OBJECT_USERWITHAUTH) || p->nameAlg != TPM2_ALG_SHA256 ||
	    p->authPolicy.size != 32)
		return KW_FAIL(KW_ERR_PARSE,
		               "TPM key blob: a revocable key must be authorised by its "
		               "SHA-256 policy only");
	return KW_OK;
}

int kwb_tpm2_blob_revocable(const kwb_tpm2_blob *b)
{
	return b->nv_index != 0;
}

/* The counter after the private part: u32 index, u64 value, big-endian. */
static kw_rc counter_parse(const kw_key_blob *ref, size_t *off, kwb_tpm2_blob *out)
{
	if (Tss2_MU_UINT32_Unmarshal(ref->data, ref->len, off, &out->nv_index) != TSS2_RC_SUCCESS ||
	    Tss2_MU_UINT64_Unmarshal(ref->data, ref->len, off, &out->nv_value) != TSS2_RC_SUCCESS ||
	    out->nv_index == 0)
		return KW_FAIL(KW_ERR_PARSE,
		               "TPM key blob: the revocable key's NV counter is truncated or "
		               "malformed (%zu bytes)",
		               ref->len);
	return KW_OK;
}

kw_rc kwb_tpm2_blob_parse(const kw_key_blob *ref, kwb_tpm2_blob *out)
{
	size_t off = 1, pub_off;

	if (ref == NULL || out == NULL)
		return KW_FAIL(KW_ERR_USAGE, "TPM key blob: none given");
	memset(out, 0, sizeof(*out));
	if (ref->data == NULL || ref->len == 0)
		return KW_FAIL(KW_ERR_PARSE, "TPM key blob is empty");
	if (ref->data[0] != KWB_TPM2_BLOB_VERSION &&
	    ref->data[0] != KWB_TPM2_BLOB_VERSION_REVOCABLE)
		return KW_FAIL(KW_ERR_PARSE,
		               "TPM key blob has format version %u; this keyward reads "
		               "versions %u and %u",
		               ref->data[0], KWB_TPM2_BLOB_VERSION,
		               KWB_TPM2_BLOB_VERSION_REVOCABLE);
	pub_off = off;
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(ref->data, ref->len, &off, &out->pub) !=
	        TSS2_RC_SUCCESS ||
	    !public_is_canonical(&out->pub, ref->data + pub_off, off - pub_off))
		return KW_FAIL(
		    KW_ERR_PARSE,
		    "TPM key blob: the public area is truncated or malformed (%zu bytes)",
		    ref->len);
	if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(ref->data, ref->len, &off, &out->priv) !=
	    TSS2_RC_SUCCESS)
		return KW_FAIL(KW_ERR_PARSE,
		               "TPM key blob: the wrapped private part is truncated or malformed "
		               "(%zu bytes)",
		               ref->len);
	if (ref->data[0] == KWB_TPM2_BLOB_VERSION_REVOCABLE)
		KW_GUARD(counter_parse(ref, &off, out));
	if (off != ref->len)
		return KW_FAIL(KW_ERR_PARSE, "TPM key blob: %zu unexpected bytes after the key",
		               ref->len - off);
	return blob_check(out);
}

static kw_rc encode(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, TPMI_RH_NV_INDEX nv_index,
                    UINT64 nv_value, kw_key_blob *out)
{
	size_t cap = 1 + sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE) + 12, off = 1;
	unsigned char *buf = malloc(cap);

	if (buf == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "TPM key blob: out of memory");
	buf[0] = nv_index ? KWB_TPM2_BLOB_VERSION_REVOCABLE : KWB_TPM2_BLOB_VERSION;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, cap, &off) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, cap, &off) != TSS2_RC_SUCCESS ||
	    (nv_index && (Tss2_MU_UINT32_Marshal(nv_index, buf, cap, &off) != TSS2_RC_SUCCESS ||
	                  Tss2_MU_UINT64_Marshal(nv_value, buf, cap, &off) != TSS2_RC_SUCCESS))) {
		free(buf);
		return KW_FAIL(KW_ERR_INTERNAL, "TPM key blob: cannot marshal the TPM's key");
	}
	out->data = buf;
	out->len = off;
	return KW_OK;
}

kw_rc kwb_tpm2_blob_encode(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, kw_key_blob *out)
{
	return encode(pub, priv, 0, 0, out);
}

kw_rc kwb_tpm2_blob_encode_revocable(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv,
                                     TPMI_RH_NV_INDEX nv_index, UINT64 nv_value, kw_key_blob *out)
{
	if (nv_index == 0)
		return KW_FAIL(KW_ERR_INTERNAL, "TPM key blob: a revocable key needs a counter");
	return encode(pub, priv, nv_index, nv_value, out);
}
