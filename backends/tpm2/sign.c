/* see tpm2_internal.h: signing a digest with TPM2_Sign */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>

#include <tss2/tss2_rc.h>

#include "tpm2_internal.h"

static kw_rc hash_from_nid(int nid, TPMI_ALG_HASH *alg, size_t *len)
{
	switch (nid) {
	case NID_sha256:
		*alg = TPM2_ALG_SHA256;
		*len = 32;
		return KW_OK;
	case NID_sha384:
		*alg = TPM2_ALG_SHA384;
		*len = 48;
		return KW_OK;
	case NID_sha512:
		*alg = TPM2_ALG_SHA512;
		*len = 64;
		return KW_OK;
	default:
		return KW_FAIL(
		    KW_ERR_UNSUPPORTED,
		    "tpm2 key_sign: digest NID %d is not supported; use SHA-256, SHA-384 or "
		    "SHA-512",
		    nid);
	}
}

/* The largest signature this key makes: DER ECDSA-Sig-Value with both
 * integers one byte longer than the field, or the RSA modulus size. */
static size_t sig_max_len(const TPMT_PUBLIC *pub)
{
	size_t n, content;

	if (pub->type == TPM2_ALG_RSA)
		return pub->parameters.rsaDetail.keyBits / 8u;
	n = pub->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 ? 32 : 48;
	content = 2 * (2 + n + 1);
	return content + (content < 128 ? 2 : 3);
}

static kw_rc scheme_choose(const TPMT_PUBLIC *pub, const kw_sign_params *p, TPMI_ALG_HASH alg,
                           size_t hlen, TPMT_SIG_SCHEME *s)
{
	int rsa = pub->type == TPM2_ALG_RSA;

	memset(s, 0, sizeof(*s));
	if ((p->scheme == KW_SIG_ECDSA) == rsa)
		return KW_FAIL(KW_ERR_USAGE, "tpm2 key_sign: scheme %d does not fit a%s key",
		               (int)p->scheme, rsa ? "n RSA" : "n EC");
	switch (p->scheme) {
	case KW_SIG_ECDSA:
		s->scheme = TPM2_ALG_ECDSA;
		s->details.ecdsa.hashAlg = alg;
		return KW_OK;
	case KW_SIG_RSA_PKCS1:
		s->scheme = TPM2_ALG_RSASSA;
		s->details.rsassa.hashAlg = alg;
		return KW_OK;
	case KW_SIG_RSA_PSS:
		/* TPM2_Sign has no salt length: the TPM uses the digest length */
		if (p->pss_saltlen != -1 && p->pss_saltlen != (int)hlen)
			return KW_FAIL(
			    KW_ERR_UNSUPPORTED,
			    "the TPM makes RSA-PSS signatures with a salt as long as the "
			    "digest (%zu bytes), not %d bytes; ask for salt length %zu (or -1)",
			    hlen, p->pss_saltlen, hlen);
		s->scheme = TPM2_ALG_RSAPSS;
		s->details.rsapss.hashAlg = alg;
		return KW_OK;
	default:
		return KW_FAIL(KW_ERR_USAGE, "tpm2 key_sign: unknown signature scheme %d",
		               (int)p->scheme);
	}
}

static kw_rc tpm_sign(kwb_tpm2_ctx *c, const kwb_tpm2_blob *blob, const TPMT_SIG_SCHEME *scheme,
                      const unsigned char *dgst, size_t dgst_len, TPMT_SIGNATURE **sig)
{
	const TPMT_TK_HASHCHECK check = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
	TPM2B_DIGEST digest = {.size = (UINT16)dgst_len};
	ESYS_TR key = ESYS_TR_NONE;
	TSS2_RC trc;

	ESYS_TR auth = ESYS_TR_PASSWORD;

	memcpy(digest.buffer, dgst, dgst_len);
	KW_GUARD(kwb_tpm2_signer_get(c, blob, &key));
	/* a revocable key: its policy (PolicyNV on its counter) in a session of
	 * its own for this one signature */
	if (kwb_tpm2_blob_revocable(blob))
		KW_GUARD(kwb_tpm2_policy_session(c, blob, &auth));
	trc =
	    Esys_Sign(c->esys, key, auth, ESYS_TR_NONE, ESYS_TR_NONE, &digest, scheme, &check, sig);
	if (auth != ESYS_TR_PASSWORD)
		kwb_tpm2_policy_session_end(c, &auth, trc == TSS2_RC_SUCCESS);
	if (trc == TSS2_RC_SUCCESS)
		return KW_OK;
	/* Whatever went wrong, do not trust the cached handle again. */
	kwb_tpm2_signer_drop(c);
	return KWB_TPM2_FAIL(c, trc, "signing the digest (Sign)", NULL);
}

static kw_rc ecdsa_der(const TPMS_SIGNATURE_ECDSA *e, unsigned char *out, size_t *len)
{
	kw_rc rc = KW_OK;
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
	BIGNUM *ss = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
	unsigned char *p = out;
	int n;

	if (s == NULL || r == NULL || ss == NULL || !ECDSA_SIG_set0(s, r, ss)) {
		BN_free(r);
		BN_free(ss);
		rc = KW_FAIL(KW_ERR_NOMEM, "tpm2 key_sign: out of memory");
		goto out;
	}
	/* *len was checked against the largest possible encoding */
	n = i2d_ECDSA_SIG(s, NULL);
	if (n <= 0 || (size_t)n > *len || i2d_ECDSA_SIG(s, &p) != n) {
		rc = KW_FAIL(KW_ERR_INTERNAL,
		             "tpm2 key_sign: cannot DER-encode the TPM's signature");
		goto out;
	}
	*len = (size_t)n;
out:
	ECDSA_SIG_free(s);
	return rc;
}

/* RSA: the modulus-sized signature, left-padded should the TPM drop zeros. */
static kw_rc rsa_raw(const TPM2B_PUBLIC_KEY_RSA *sig, size_t mod_len, unsigned char *out,
                     size_t *len)
{
	if (sig->size > mod_len || mod_len > *len)
		return KW_FAIL(KW_ERR_BACKEND,
		               "the TPM returned a %u-byte signature for a %zu-byte "
		               "RSA key",
		               sig->size, mod_len);
	memset(out, 0, mod_len - sig->size);
	memcpy(out + mod_len - sig->size, sig->buffer, sig->size);
	*len = mod_len;
	return KW_OK;
}

static kw_rc sig_encode(const TPMT_PUBLIC *pub, const TPMT_SIGNATURE *s, unsigned char *out,
                        size_t *len)
{
	switch (s->sigAlg) {
	case TPM2_ALG_ECDSA: return ecdsa_der(&s->signature.ecdsa, out, len);
	case TPM2_ALG_RSASSA: return rsa_raw(&s->signature.rsassa.sig, sig_max_len(pub), out, len);
	case TPM2_ALG_RSAPSS: return rsa_raw(&s->signature.rsapss.sig, sig_max_len(pub), out, len);
	default:
		return KW_FAIL(KW_ERR_BACKEND, "the TPM returned a signature of type 0x%04x",
		               s->sigAlg);
	}
}

/*
 * Which signatures are verified before they leave, with the public key built
 * once per loaded key (c->signer_pkey):
 * - RSA, every signature. A TPM computes RSA with the CRT; a fault in one
 *   half (glitch, bit flip) gives a signature s with gcd(s^e - m, n) = p, so
 *   a single faulty PKCS#1 v1.5 signature of a known message factors the key
 *   (Boneh-DeMillo-Lipton, Lenstra). PSS hides m behind a random salt, but
 *   partially known encodings are attackable too, and the check also finds a
 *   TPM whose PSS salt is not the digest length. A verify with e = 65537 is
 *   a few microseconds against milliseconds for the TPM's signature.
 * - ECDSA, the first signature after each load only. A wrong ECDSA signature
 *   made with a fresh random nonce gives no such key-recovery equation (the
 *   fault attacks on ECDSA bias or reuse the nonce, and those signatures
 *   verify, so a check would not stop them). The one check per load keeps
 *   the sanity check that the loaded object is the key the reference names;
 *   per signature it was half the client CPU of an ECDSA signature.
 * A failed check drops the signer, so the next signature reloads and checks.
 */
static kw_rc sig_check(kwb_tpm2_ctx *c, const kw_sign_params *p, const unsigned char *dgst,
                       size_t dgst_len, const unsigned char *sig, size_t sig_len)
{
	if (p->scheme == KW_SIG_ECDSA && c->signer_checked)
		return KW_OK;
	kw_rc rc = kwb_tpm2_sig_check(c->signer_pkey, p, dgst, dgst_len, sig, sig_len);
	if (rc != KW_OK)
		kwb_tpm2_signer_drop(c);
	else
		c->signer_checked = 1;
	return rc;
}

static kw_rc sign_args_check(const kwb_tpm2_ctx *c, const kw_sign_params *p,
                             const unsigned char *dgst, const unsigned char *sig,
                             const size_t *sig_len)
{
	if (c == NULL || p == NULL || dgst == NULL || sig == NULL || sig_len == NULL)
		return KW_FAIL(
		    KW_ERR_USAGE,
		    "tpm2 key_sign: no context, parameters, digest or signature buffer given");
	return KW_OK;
}

kw_rc kwb_tpm2_key_sign(void *ctx, const kw_key_blob *ref, const kw_sign_params *p,
                        const unsigned char *dgst, size_t dgst_len, unsigned char *sig,
                        size_t *sig_len)
{
	kw_rc rc = KW_OK;
	kwb_tpm2_ctx *c = ctx;
	kwb_tpm2_blob blob;
	TPMT_SIGNATURE *s = NULL;
	TPMT_SIG_SCHEME scheme;
	TPMI_ALG_HASH alg = TPM2_ALG_NULL;
	unsigned char tmp[KWB_TPM2_SIG_MAX];
	size_t hlen = 0, need, len = sizeof(tmp);

	KW_GUARD(sign_args_check(c, p, dgst, sig, sig_len));
	KW_GUARD(kwb_tpm2_blob_parse(ref, &blob));
	KW_GUARD(hash_from_nid(p->md_nid, &alg, &hlen));
	if (dgst_len != hlen)
		return KW_FAIL(KW_ERR_USAGE,
		               "tpm2 key_sign: the digest is %zu bytes, the hash makes %zu",
		               dgst_len, hlen);
	KW_GUARD(scheme_choose(&blob.pub.publicArea, p, alg, hlen, &scheme));
	need = sig_max_len(&blob.pub.publicArea);
	if (*sig_len < need)
		return KW_FAIL(KW_ERR_USAGE,
		               "tpm2 key_sign: the signature buffer holds %zu bytes, "
		               "this key needs up to %zu",
		               *sig_len, need);
	rc = tpm_sign(c, &blob, &scheme, dgst, dgst_len, &s);
	if (rc != KW_OK)
		goto out;
	rc = sig_encode(&blob.pub.publicArea, s, tmp, &len);
	if (rc != KW_OK)
		goto out;
	rc = sig_check(c, p, dgst, dgst_len, tmp, len);
	if (rc != KW_OK)
		goto out;
	memcpy(sig, tmp, len);
	*sig_len = len;
out:
	Esys_Free(s);
	return rc;
}
