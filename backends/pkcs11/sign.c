/*
 * keyward — PKCS#11 backend: signing a digest (ECDSA, RSASSA-PKCS1-v1_5,
 * RSASSA-PSS). see p11.h
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/objects.h>

#include "p11.h"

/* Room for the raw signature of an RSA key up to 8192 bits. */
#define RAW_SIG_MAX 1024
/* Longest DigestInfo prefix below. */
#define DIGEST_INFO_PREFIX 19
#define DIGEST_MAX         64

/* DER DigestInfo up to the digest (RFC 8017 section 9.2, note 1). */
static const unsigned char prefix_sha256[DIGEST_INFO_PREFIX] = {
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
};
static const unsigned char prefix_sha384[DIGEST_INFO_PREFIX] = {
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30,
};
static const unsigned char prefix_sha512[DIGEST_INFO_PREFIX] = {
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40,
};

typedef struct {
	int nid;
	size_t len;
	CK_MECHANISM_TYPE hash;
	CK_RSA_PKCS_MGF_TYPE mgf;
	const unsigned char *prefix;
} digest_spec;

static const digest_spec digests[] = {
    {NID_sha256, 32, CKM_SHA256, CKG_MGF1_SHA256, prefix_sha256},
    {NID_sha384, 48, CKM_SHA384, CKG_MGF1_SHA384, prefix_sha384},
    {NID_sha512, 64, CKM_SHA512, CKG_MGF1_SHA512, prefix_sha512},
};

static const digest_spec *digest_find(int nid)
{
	for (size_t i = 0; i < sizeof(digests) / sizeof(digests[0]); i++)
		if (digests[i].nid == nid)
			return &digests[i];
	return NULL;
}

static const char *scheme_name(kw_sig_scheme s)
{
	switch (s) {
	case KW_SIG_ECDSA: return "ECDSA";
	case KW_SIG_RSA_PKCS1: return "RSA PKCS#1 v1.5";
	case KW_SIG_RSA_PSS: return "RSA-PSS";
	}
	return "unknown scheme";
}

static kw_rc sign_fail(const kwb_p11 *p, CK_RV rv, const kw_sign_params *sp, const char *hex)
{
	const char *what = scheme_name(sp->scheme);

	switch (rv) {
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
		return KW_FAIL_DEV(KW_ERR_UNSUPPORTED, rv,
		                   "token '%s' cannot sign with %s/%s (%s); use another signature "
		                   "scheme or salt length",
		                   p->token, what, OBJ_nid2sn(sp->md_nid), kwb_p11_rv_name(rv));
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
		return KW_FAIL_DEV(KW_ERR_BACKEND, rv,
		                   "key %s on token '%s' is not allowed to sign (%s); it was not "
		                   "made by keyward",
		                   hex, p->token, kwb_p11_rv_name(rv));
	default:
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "signing with key %s (%s) on token '%s' failed: %s", hex, what,
		                   p->token, kwb_p11_rv_name(rv));
	}
}

static CK_RV sign_raw(kwb_p11 *p, CK_OBJECT_HANDLE h, CK_MECHANISM *m, const unsigned char *in,
                      size_t in_len, unsigned char *out, size_t *out_len)
{
	CK_ULONG n = (CK_ULONG)*out_len;
	CK_RV rv = p->fn->C_SignInit(p->session, m, h);

	if (rv == CKR_OK)
		rv = p->fn->C_Sign(p->session, (CK_BYTE_PTR)in, (CK_ULONG)in_len, out, &n);
	*out_len = n;
	return rv;
}

static kw_rc sig_too_small(size_t have, size_t need)
{
	return KW_FAIL(KW_ERR_USAGE,
	               "signature buffer of %zu bytes is too small: the signature needs %zu", have,
	               need);
}

/* PKCS#11 gives r||s; X.509 and TLS want DER ECDSA-Sig-Value. */
static kw_rc ecdsa_der(const kwb_p11 *p, const unsigned char *rs, size_t len, unsigned char *sig,
                       size_t *sig_len)
{
	kw_rc rc = KW_OK;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = NULL, *s = NULL;

	if (len == 0 || len % 2 != 0) {
		rc = KW_FAIL(KW_ERR_BACKEND, "token '%s' returned a %zu-byte ECDSA signature",
		             p->token, len);
		goto out;
	}
	r = BN_bin2bn(rs, (int)(len / 2), NULL);
	s = BN_bin2bn(rs + len / 2, (int)(len / 2), NULL);
	if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory encoding an ECDSA signature");
		goto out;
	}
	r = s = NULL; /* owned by es now */
	int n = i2d_ECDSA_SIG(es, NULL);
	if (n <= 0) {
		rc = KW_FAIL(KW_ERR_INTERNAL, "cannot encode an ECDSA signature");
		goto out;
	}
	if ((size_t)n > *sig_len) {
		rc = sig_too_small(*sig_len, (size_t)n);
		goto out;
	}
	unsigned char *q = sig;
	*sig_len = (size_t)i2d_ECDSA_SIG(es, &q);
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return rc;
}

static kw_rc params_check(const kwb_p11 *p, const kw_sign_params *sp, CK_KEY_TYPE kt,
                          size_t dgst_len, const digest_spec *d, const char *hex)
{
	int want_ec = sp->scheme == KW_SIG_ECDSA;

	if (sp->scheme != KW_SIG_ECDSA && sp->scheme != KW_SIG_RSA_PKCS1 &&
	    sp->scheme != KW_SIG_RSA_PSS)
		return KW_FAIL(KW_ERR_USAGE, "signing: unknown signature scheme %d",
		               (int)sp->scheme);
	if (d == NULL)
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "signing: digest %s is not supported (use SHA-256, SHA-384 or "
		               "SHA-512)",
		               OBJ_nid2sn(sp->md_nid));
	if (dgst_len != d->len)
		return KW_FAIL(KW_ERR_USAGE, "signing: a %s digest has %zu bytes, not %zu",
		               OBJ_nid2sn(sp->md_nid), d->len, dgst_len);
	if ((want_ec && kt != CKK_EC) || (!want_ec && kt != CKK_RSA))
		return KW_FAIL(KW_ERR_USAGE,
		               "signing: key %s on token '%s' is %s, not usable for %s", hex,
		               p->token, kt == CKK_EC ? "an EC key" : "not an EC key",
		               scheme_name(sp->scheme));
	if (sp->scheme == KW_SIG_RSA_PSS && sp->pss_saltlen < -1)
		return KW_FAIL(KW_ERR_USAGE,
		               "signing: PSS salt length %d is invalid (bytes, or -1 for the "
		               "digest length)",
		               sp->pss_saltlen);
	return KW_OK;
}

static CK_RV sign_dispatch(kwb_p11 *p, CK_OBJECT_HANDLE h, const kw_sign_params *sp,
                           const digest_spec *d, const unsigned char *dgst, unsigned char *raw,
                           size_t *raw_len)
{
	unsigned char info[DIGEST_INFO_PREFIX + DIGEST_MAX];
	CK_RSA_PKCS_PSS_PARAMS pss = {d->hash, d->mgf, 0};
	CK_MECHANISM m = {CKM_ECDSA, NULL, 0};

	switch (sp->scheme) {
	case KW_SIG_RSA_PKCS1:
		memcpy(info, d->prefix, DIGEST_INFO_PREFIX);
		memcpy(info + DIGEST_INFO_PREFIX, dgst, d->len);
		m.mechanism = CKM_RSA_PKCS;
		return sign_raw(p, h, &m, info, DIGEST_INFO_PREFIX + d->len, raw, raw_len);
	case KW_SIG_RSA_PSS:
		pss.sLen = sp->pss_saltlen == -1 ? d->len : (CK_ULONG)sp->pss_saltlen;
		m = (CK_MECHANISM){CKM_RSA_PKCS_PSS, &pss, sizeof(pss)};
		return sign_raw(p, h, &m, dgst, d->len, raw, raw_len);
	case KW_SIG_ECDSA:
	default: return sign_raw(p, h, &m, dgst, d->len, raw, raw_len);
	}
}

/* Searches the token for the private key (kwb_p11_find_private caches what
 * it found). A cached handle is not trusted on errors alone: a token may give
 * a destroyed key's handle number to a new object, and C_Sign with that other
 * private key would succeed. So a signature checks that the handle still
 * names the key (kwb_p11_key_still: one C_GetAttributeValue of CKA_ID, class
 * and type) unless that was confirmed less than KWB_P11_RECHECK_MS ago on
 * this context. Checked before every signature, the attribute read cost a
 * third of SoftHSM's P-256 rate and most of its 2-thread scaling (SoftHSM
 * re-opens and locks the object's file for it, as C_SignInit does); bounded
 * to one read per key per 100 ms it costs nothing measurable. What the bound
 * leaves: a key destroyed and a new private key given its handle number by a
 * token that reuses numbers (SoftHSM never does), both within 100 ms of the
 * last check, signs once or more by that other key. Such a signature does
 * not verify with the certificate's public key, so a TLS peer refuses it;
 * SECURITY.md lists it. */
static kw_rc key_search(kwb_p11 *p, const kw_key_blob *ref, const char *hex, CK_OBJECT_HANDLE *h,
                        CK_KEY_TYPE *kt)
{
	kwb_p11_keycache_drop(p, ref->data, ref->len);
	KW_GUARD(kwb_p11_find_private(p, ref, "signing", h));
	if (kwb_p11_keycache_get(p, ref->data, ref->len, h, kt, NULL))
		return KW_OK;
	CK_RV rv = kwb_p11_attr_ulong(p, *h, CKA_KEY_TYPE, kt);
	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "signing: cannot read CKA_KEY_TYPE of key %s on token '%s': %s",
		                   hex, p->token, kwb_p11_rv_name(rv));
	return KW_OK;
}

/* The key's handle and type: from the cache when confirmed recently or still
 * valid, else searched. *cached tells which. */
static kw_rc key_get(kwb_p11 *p, const kw_key_blob *ref, const char *hex, CK_OBJECT_HANDLE *h,
                     CK_KEY_TYPE *kt, int *cached)
{
	int recent = 0;

	*cached = kwb_p11_keycache_get(p, ref->data, ref->len, h, kt, &recent);
	if (*cached && recent)
		return KW_OK;
	if (*cached && kwb_p11_key_still(p, ref, *h, *kt)) {
		kwb_p11_keycache_confirm(p, ref->data, ref->len, *h);
		return KW_OK;
	}
	*cached = 0;
	return key_search(p, ref, hex, h, kt);
}

static int handle_gone(CK_RV rv)
{
	return rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID;
}

static kw_rc sign_on(kwb_p11 *p, const kw_key_blob *ref, const kw_sign_params *sp,
                     const unsigned char *dgst, size_t dgst_len, unsigned char *sig,
                     size_t *sig_len)
{
	CK_OBJECT_HANDLE h;
	CK_KEY_TYPE kt = 0;
	unsigned char raw[RAW_SIG_MAX];
	size_t raw_len = sizeof(raw);
	char hex[72];
	int cached = 0;

	if (sp == NULL || dgst == NULL || sig == NULL || sig_len == NULL)
		return KW_FAIL(KW_ERR_USAGE, "signing: missing parameters, digest or output");
	KW_GUARD(kwb_p11_ref_check(ref, "signing"));
	kwb_p11_id_hex(ref, hex, sizeof(hex));
	KW_GUARD(key_get(p, ref, hex, &h, &kt, &cached));
	const digest_spec *d = digest_find(sp->md_nid);
	KW_GUARD(params_check(p, sp, kt, dgst_len, d, hex));
	CK_RV rv = sign_dispatch(p, h, sp, d, dgst, raw, &raw_len);
	if (cached && handle_gone(rv)) {
		/* Destroyed since the check: search once more. */
		KW_GUARD(key_search(p, ref, hex, &h, &kt));
		KW_GUARD(params_check(p, sp, kt, dgst_len, d, hex));
		raw_len = sizeof(raw);
		rv = sign_dispatch(p, h, sp, d, dgst, raw, &raw_len);
	}
	if (handle_gone(rv))
		kwb_p11_keycache_drop(p, ref->data, ref->len);
	if (rv != CKR_OK)
		return sign_fail(p, rv, sp, hex);
	if (kt == CKK_EC)
		return ecdsa_der(p, raw, raw_len, sig, sig_len);
	if (raw_len > *sig_len)
		return sig_too_small(*sig_len, raw_len);
	memcpy(sig, raw, raw_len);
	*sig_len = raw_len;
	return KW_OK;
}

kw_rc kwb_p11_key_sign(void *ctx, const kw_key_blob *ref, const kw_sign_params *sp,
                       const unsigned char *dgst, size_t dgst_len, unsigned char *sig,
                       size_t *sig_len)
{
	kwb_p11 *p = ctx;
	CK_SESSION_HANDLE s;

	if (p == NULL)
		return KW_FAIL(KW_ERR_USAGE, "signing: no PKCS#11 context");
	KW_GUARD(kwb_p11_session_take(p, &s));
	/* The same token and login, on a session of this signature's own. */
	kwb_p11 view = *p;
	view.session = s;
	kw_rc rc = sign_on(&view, ref, sp, dgst, dgst_len, sig, sig_len);
	CK_RV dev = (CK_RV)kw_error_device_code();
	int broken = rc != KW_OK && (dev == CKR_SESSION_HANDLE_INVALID ||
	                             dev == CKR_SESSION_CLOSED || dev == CKR_DEVICE_REMOVED ||
	                             dev == CKR_TOKEN_NOT_PRESENT || dev == CKR_DEVICE_ERROR);
	kwb_p11_session_give(p, s, broken);
	return rc;
}
