/*
 * keyward — PKCS#11 backend: the public key of a key pair as DER
 * SubjectPublicKeyInfo, rebuilt with OpenSSL from the token's attributes.
 * see p11.h
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "p11.h"

typedef struct {
	int nid;
	const char *group; /* OSSL_PKEY_PARAM_GROUP_NAME */
	size_t field;      /* bytes of a coordinate */
} curve;

static const curve curves[] = {
    {NID_X9_62_prime256v1, "prime256v1", 32},
    {NID_secp384r1, "secp384r1", 48},
    {NID_secp521r1, "secp521r1", 66},
};

static const curve *curve_from_params(const unsigned char *der, size_t len)
{
	const unsigned char *q = der;
	ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &q, (long)len);
	int nid = obj && q == der + len ? OBJ_obj2nid(obj) : NID_undef;

	ASN1_OBJECT_free(obj);
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (curves[i].nid == nid)
			return &curves[i];
	return NULL;
}

/* CKA_EC_POINT is a DER OCTET STRING per PKCS#11 2.40 (SoftHSM does that), but
 * some tokens return the bare X9.62 point: accept both. An uncompressed point
 * of the curve's exact size is taken as bare; anything else starting with the
 * OCTET STRING tag must unwrap completely. */
static kw_rc point_unwrap(const kwb_p11 *p, const curve *c, const unsigned char *buf, size_t len,
                          ASN1_OCTET_STRING **os, const unsigned char **pt, size_t *pt_len)
{
	const unsigned char *q = buf;

	*pt = buf;
	*pt_len = len;
	if (len == 0 || buf[0] != 0x04 || len == 2 * c->field + 1)
		return KW_OK;
	*os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)len);
	if (*os == NULL || q != buf + len) {
		ERR_clear_error();
		return KW_FAIL(KW_ERR_BACKEND,
		               "token '%s' returned a CKA_EC_POINT of %zu bytes that is neither a "
		               "point on %s nor a DER OCTET STRING",
		               p->token, len, c->group);
	}
	*pt = ASN1_STRING_get0_data(*os);
	*pt_len = (size_t)ASN1_STRING_length(*os);
	return KW_OK;
}

static kw_rc pkey_fromdata(const kwb_p11 *p, const char *alg, OSSL_PARAM_BLD *bld, EVP_PKEY **out)
{
	kw_rc rc = KW_OK;
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, alg, KW_SOFTWARE_PROPQ);

	if (params == NULL || pc == NULL || EVP_PKEY_fromdata_init(pc) <= 0 ||
	    EVP_PKEY_fromdata(pc, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		unsigned long e = ERR_peek_last_error();
		rc = KW_FAIL(KW_ERR_BACKEND,
		             "token '%s' returned an %s public key OpenSSL rejects: %s", p->token,
		             alg, e ? ERR_reason_error_string(e) : "out of memory");
		ERR_clear_error();
	}
	EVP_PKEY_CTX_free(pc);
	OSSL_PARAM_free(params);
	return rc;
}

static kw_rc attr_fail(const kwb_p11 *p, CK_RV rv, const char *attr)
{
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
		return KW_FAIL_DEV(KW_ERR_NOT_FOUND, rv,
		                   "reading public key: token '%s' has no public key object and "
		                   "the private key carries no %s; re-create the key",
		                   p->token, attr);
	return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
	                   "reading public key: cannot read %s from token '%s': %s", attr, p->token,
	                   kwb_p11_rv_name(rv));
}

static kw_rc ec_pkey(kwb_p11 *p, CK_OBJECT_HANDLE h, EVP_PKEY **out)
{
	kw_rc rc = KW_OK;
	unsigned char *params = NULL, *point = NULL;
	size_t params_len = 0, point_len = 0, pt_len = 0;
	const unsigned char *pt = NULL;
	ASN1_OCTET_STRING *os = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	const curve *c = NULL;
	CK_RV rv = kwb_p11_attr_alloc(p, h, CKA_EC_PARAMS, &params, &params_len);

	if (rv == CKR_OK)
		rv = kwb_p11_attr_alloc(p, h, CKA_EC_POINT, &point, &point_len);
	if (rv != CKR_OK) {
		rc = attr_fail(p, rv, params ? "CKA_EC_POINT" : "CKA_EC_PARAMS");
		goto out;
	}
	c = curve_from_params(params, params_len);
	if (c == NULL) {
		rc = KW_FAIL(KW_ERR_UNSUPPORTED,
		             "reading public key: the key on token '%s' uses an EC curve keyward "
		             "does not support (P-256, P-384, P-521 are)",
		             p->token);
		goto out;
	}
	rc = point_unwrap(p, c, point, point_len, &os, &pt, &pt_len);
	if (rc != KW_OK)
		goto out;
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, c->group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, pt_len)) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory building an EC public key");
		goto out;
	}
	rc = pkey_fromdata(p, "EC", bld, out);
out:
	OSSL_PARAM_BLD_free(bld);
	ASN1_OCTET_STRING_free(os);
	free(params);
	free(point);
	return rc;
}

static kw_rc rsa_pkey(kwb_p11 *p, CK_OBJECT_HANDLE h, EVP_PKEY **out)
{
	kw_rc rc = KW_OK;
	unsigned char *mod = NULL, *exp = NULL;
	size_t mod_len = 0, exp_len = 0;
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	CK_RV rv = kwb_p11_attr_alloc(p, h, CKA_MODULUS, &mod, &mod_len);

	if (rv == CKR_OK)
		rv = kwb_p11_attr_alloc(p, h, CKA_PUBLIC_EXPONENT, &exp, &exp_len);
	if (rv != CKR_OK) {
		rc = attr_fail(p, rv, mod ? "CKA_PUBLIC_EXPONENT" : "CKA_MODULUS");
		goto out;
	}
	n = BN_bin2bn(mod, (int)mod_len, NULL);
	e = BN_bin2bn(exp, (int)exp_len, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (n == NULL || e == NULL || bld == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory building an RSA public key");
		goto out;
	}
	rc = pkey_fromdata(p, "RSA", bld, out);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(mod);
	free(exp);
	return rc;
}

/* i2d into a malloc'd buffer, so the caller can free() it. */
static kw_rc spki_der(EVP_PKEY *pkey, unsigned char **der, size_t *der_len)
{
	int n = i2d_PUBKEY(pkey, NULL);

	if (n <= 0)
		return KW_FAIL(KW_ERR_INTERNAL, "cannot encode a public key as DER");
	unsigned char *buf = malloc((size_t)n);
	if (buf == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory encoding a public key");
	unsigned char *q = buf;
	if (i2d_PUBKEY(pkey, &q) != n) {
		free(buf);
		return KW_FAIL(KW_ERR_INTERNAL, "cannot encode a public key as DER");
	}
	*der = buf;
	*der_len = (size_t)n;
	return KW_OK;
}

/* 1 when handle h is still this key's public object (CKA_ID, CKA_CLASS). */
static int public_still(kwb_p11 *p, const kw_key_blob *ref, CK_OBJECT_HANDLE h)
{
	unsigned char id[KWB_P11_CACHE_ID_MAX];
	CK_OBJECT_CLASS cls = 0;
	CK_ATTRIBUTE a[] = {{CKA_ID, id, sizeof(id)}, {CKA_CLASS, &cls, sizeof(cls)}};

	if (ref->len > sizeof(id) || p->fn->C_GetAttributeValue(p->session, h, a, 2) != CKR_OK)
		return 0;
	return a[0].ulValueLen == ref->len && memcmp(id, ref->data, ref->len) == 0 &&
	       a[1].ulValueLen == sizeof(cls) && cls == CKO_PUBLIC_KEY;
}

kw_rc kwb_p11_key_public(void *ctx, const kw_key_blob *ref, unsigned char **der, size_t *der_len)
{
	kw_rc rc = KW_OK;
	kwb_p11 *p = ctx;
	CK_OBJECT_HANDLE priv, src;
	CK_ULONG n = 0;
	CK_KEY_TYPE kt = 0;
	EVP_PKEY *pkey = NULL;
	static const char op[] = "reading public key";

	if (der == NULL || der_len == NULL)
		return KW_FAIL(KW_ERR_USAGE, "%s: no output given", op);
	*der = NULL;
	*der_len = 0;
	KW_GUARD(kwb_p11_find_private(p, ref, op, &priv));
	CK_RV rv = kwb_p11_attr_ulong(p, priv, CKA_KEY_TYPE, &kt);
	if (rv != CKR_OK)
		return attr_fail(p, rv, "CKA_KEY_TYPE");
	/* The public object when there is one, else the private key's public part. */
	if (kwb_p11_is_fresh(p, ref) && public_still(p, ref, p->fresh_pub))
		src = p->fresh_pub, n = 1;
	else
		KW_GUARD(kwb_p11_find(p, CKO_PUBLIC_KEY, ref->data, ref->len, &src, 1, &n));
	if (n == 0)
		src = priv;
	if (kt == CKK_EC)
		rc = ec_pkey(p, src, &pkey);
	else if (kt == CKK_RSA)
		rc = rsa_pkey(p, src, &pkey);
	else
		rc = KW_FAIL(KW_ERR_UNSUPPORTED,
		             "%s: key type 0x%lx on token '%s' is neither EC "
		             "nor RSA",
		             op, (unsigned long)kt, p->token);
	if (rc == KW_OK)
		rc = spki_der(pkey, der, der_len);
	EVP_PKEY_free(pkey);
	return rc;
}
