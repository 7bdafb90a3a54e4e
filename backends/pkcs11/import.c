/*
 * keyward — PKCS#11 backend: importing an existing private key
 * (C_CreateObject, CKA_SENSITIVE=TRUE, CKA_EXTRACTABLE=FALSE). see p11.h
 *
 * Every private component is copied into one guarded buffer that the
 * template points into, and that buffer is wiped and freed before returning,
 * on every path. The token marks the object CKA_LOCAL=FALSE (it was not
 * generated there) and CKA_NEVER_EXTRACTABLE / CKA_ALWAYS_SENSITIVE as it
 * sees fit; key_attrs reports what it says.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <sodium.h>

#include "p11.h"

#define IMPORT_ID_LEN 16
#define NATTR         32
#define NPARTS        8

/* Everything the templates point into; parts (guarded) hold secrets. */
typedef struct {
	CK_OBJECT_CLASS priv_cls, pub_cls;
	CK_KEY_TYPE kt;
	CK_BBOOL yes, no;
	unsigned char id[IMPORT_ID_LEN];
	unsigned char *ec_params; /* OPENSSL_malloc'd */
	size_t ec_params_len;
	unsigned char *point; /* public: DER OCTET STRING of the EC point */
	size_t point_len;
	unsigned char *parts; /* guarded: big-endian components back to back */
	size_t parts_cap, parts_used;
	CK_ATTRIBUTE priv[NATTR], pub[NATTR];
	CK_ULONG npriv, npub;
} import_req;

static void add(CK_ATTRIBUTE *t, CK_ULONG *n, CK_ATTRIBUTE_TYPE type, void *val, size_t len)
{
	t[*n] = (CK_ATTRIBUTE){type, val, (CK_ULONG)len};
	(*n)++;
}

/* A BIGNUM parameter into the guarded buffer, then onto the template(s). */
static kw_rc part_add(import_req *r, EVP_PKEY *key, const char *param, CK_ATTRIBUTE_TYPE type,
                      int public_too, size_t pad)
{
	BIGNUM *bn = NULL;
	kw_rc rc = KW_OK;

	if (EVP_PKEY_get_bn_param(key, param, &bn) != 1)
		return KW_FAIL(KW_ERR_PARSE, "pkcs11 import: the key has no %s", param);
	size_t n = pad ? pad : (size_t)BN_num_bytes(bn);
	if (n == 0)
		n = 1;
	if (r->parts_used + n > r->parts_cap ||
	    BN_bn2binpad(bn, r->parts + r->parts_used, (int)n) != (int)n) {
		rc = KW_FAIL(KW_ERR_INTERNAL, "pkcs11 import: the key's %s does not fit", param);
		goto out;
	}
	add(r->priv, &r->npriv, type, r->parts + r->parts_used, n);
	if (public_too)
		add(r->pub, &r->npub, type, r->parts + r->parts_used, n);
	r->parts_used += n;
out:
	BN_clear_free(bn);
	return rc;
}

static kw_rc ec_public(import_req *r, EVP_PKEY *key)
{
	unsigned char pt[133];
	size_t pt_len = 0;
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	char group[32];
	kw_rc rc = KW_OK;

	if (os == NULL ||
	    EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt),
	                                    &pt_len) != 1 ||
	    EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) != 1 ||
	    ASN1_OCTET_STRING_set(os, pt, (int)pt_len) != 1) {
		rc = KW_FAIL(KW_ERR_PARSE, "pkcs11 import: cannot read the EC public key");
		goto out;
	}
	int n = i2d_ASN1_OCTET_STRING(os, &r->point);
	const ASN1_OBJECT *obj = OBJ_nid2obj(OBJ_txt2nid(group));
	int m = obj ? i2d_ASN1_OBJECT(obj, &r->ec_params) : -1;
	if (n <= 0 || m <= 0) {
		rc = KW_FAIL(KW_ERR_INTERNAL, "pkcs11 import: cannot encode the EC parameters");
		goto out;
	}
	r->point_len = (size_t)n;
	r->ec_params_len = (size_t)m;
	add(r->priv, &r->npriv, CKA_EC_PARAMS, r->ec_params, r->ec_params_len);
	add(r->pub, &r->npub, CKA_EC_PARAMS, r->ec_params, r->ec_params_len);
	add(r->pub, &r->npub, CKA_EC_POINT, r->point, r->point_len);
out:
	ASN1_OCTET_STRING_free(os);
	return rc;
}

static kw_rc components_add(import_req *r, EVP_PKEY *key, kw_key_type type)
{
	if (!kw_key_type_is_rsa(type)) {
		r->kt = CKK_EC;
		KW_GUARD(ec_public(r, key));
		return part_add(r, key, OSSL_PKEY_PARAM_PRIV_KEY, CKA_VALUE, 0,
		                type == KW_KEY_EC_P256 ? 32 : 48);
	}
	static const struct {
		const char *param;
		CK_ATTRIBUTE_TYPE type;
		int pub;
	} rsa[] = {
	    {OSSL_PKEY_PARAM_RSA_N, CKA_MODULUS, 1},
	    {OSSL_PKEY_PARAM_RSA_E, CKA_PUBLIC_EXPONENT, 1},
	    {OSSL_PKEY_PARAM_RSA_D, CKA_PRIVATE_EXPONENT, 0},
	    {OSSL_PKEY_PARAM_RSA_FACTOR1, CKA_PRIME_1, 0},
	    {OSSL_PKEY_PARAM_RSA_FACTOR2, CKA_PRIME_2, 0},
	    {OSSL_PKEY_PARAM_RSA_EXPONENT1, CKA_EXPONENT_1, 0},
	    {OSSL_PKEY_PARAM_RSA_EXPONENT2, CKA_EXPONENT_2, 0},
	    {OSSL_PKEY_PARAM_RSA_COEFFICIENT1, CKA_COEFFICIENT, 0},
	};
	r->kt = CKK_RSA;
	for (size_t i = 0; i < sizeof(rsa) / sizeof(rsa[0]); i++)
		KW_GUARD(part_add(r, key, rsa[i].param, rsa[i].type, rsa[i].pub, 0));
	return KW_OK;
}

static void common_build(import_req *r, const char *label)
{
	r->priv_cls = CKO_PRIVATE_KEY;
	r->pub_cls = CKO_PUBLIC_KEY;
	r->yes = CK_TRUE;
	r->no = CK_FALSE;
	add(r->priv, &r->npriv, CKA_CLASS, &r->priv_cls, sizeof(r->priv_cls));
	add(r->priv, &r->npriv, CKA_KEY_TYPE, &r->kt, sizeof(r->kt));
	add(r->priv, &r->npriv, CKA_TOKEN, &r->yes, sizeof(r->yes));
	add(r->priv, &r->npriv, CKA_PRIVATE, &r->yes, sizeof(r->yes));
	add(r->priv, &r->npriv, CKA_SENSITIVE, &r->yes, sizeof(r->yes));
	add(r->priv, &r->npriv, CKA_EXTRACTABLE, &r->no, sizeof(r->no));
	add(r->priv, &r->npriv, CKA_SIGN, &r->yes, sizeof(r->yes));
	add(r->priv, &r->npriv, CKA_DECRYPT, &r->no, sizeof(r->no));
	add(r->priv, &r->npriv, CKA_UNWRAP, &r->no, sizeof(r->no));
	add(r->priv, &r->npriv, CKA_SIGN_RECOVER, &r->no, sizeof(r->no));
	add(r->priv, &r->npriv, CKA_ID, r->id, sizeof(r->id));
	add(r->pub, &r->npub, CKA_CLASS, &r->pub_cls, sizeof(r->pub_cls));
	add(r->pub, &r->npub, CKA_KEY_TYPE, &r->kt, sizeof(r->kt));
	add(r->pub, &r->npub, CKA_TOKEN, &r->yes, sizeof(r->yes));
	add(r->pub, &r->npub, CKA_PRIVATE, &r->no, sizeof(r->no));
	add(r->pub, &r->npub, CKA_VERIFY, &r->yes, sizeof(r->yes));
	add(r->pub, &r->npub, CKA_ID, r->id, sizeof(r->id));
	if (label != NULL) {
		add(r->priv, &r->npriv, CKA_LABEL, (void *)label, strlen(label));
		add(r->pub, &r->npub, CKA_LABEL, (void *)label, strlen(label));
	}
}

static kw_rc create_fail(const kwb_p11 *p, CK_RV rv)
{
	if (rv == CKR_DEVICE_MEMORY || rv == CKR_DEVICE_ERROR || rv == CKR_FUNCTION_FAILED)
		return KW_FAIL_DEV(KW_ERR_BACKEND, rv,
		                   "token '%s' is full (or failing): cannot store the imported key "
		                   "(%s); destroy keys it no longer needs or use another token",
		                   p->token, kwb_p11_rv_name(rv));
	return KW_FAIL_DEV(rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT ||
	                           rv == CKR_CURVE_NOT_SUPPORTED
	                       ? KW_ERR_UNSUPPORTED
	                       : kwb_p11_rv_code(rv),
	                   rv, "token '%s' refused the imported key: %s", p->token,
	                   kwb_p11_rv_name(rv));
}

static kw_rc custody_check(kwb_p11 *p, CK_OBJECT_HANDLE h)
{
	int v[KWB_P11_CUSTODY_N];

	KW_GUARD(kwb_p11_custody_read(p, h, "importing a key", v));
	if (v[KWB_P11_EXTRACTABLE] != 0 || v[KWB_P11_SENSITIVE] != 1 || v[KWB_P11_TOKEN] != 1 ||
	    v[KWB_P11_PRIVATE] != 1)
		return KW_FAIL(KW_ERR_BACKEND,
		               "token '%s' did not honour the template of the imported key "
		               "(sensitive, not extractable); it was destroyed",
		               p->token);
	return KW_OK;
}

kw_rc kwb_p11_key_import(void *ctx, EVP_PKEY *key, kw_key_type type, const char *label,
                         kw_key_blob *out)
{
	kwb_p11 *p = ctx;
	import_req r;
	CK_OBJECT_HANDLE hpriv = CK_INVALID_HANDLE, hpub = CK_INVALID_HANDLE;
	int attempted = 0;
	kw_rc rc = KW_OK;

	if (p == NULL || p->fn == NULL || !p->have_session || key == NULL || out == NULL)
		return KW_FAIL(KW_ERR_USAGE, "importing a key: the PKCS#11 backend is not open");
	out->data = NULL;
	out->len = 0;
	memset(&r, 0, sizeof(r));
	if (sodium_init() < 0)
		return KW_FAIL(KW_ERR_INTERNAL, "pkcs11 import: libsodium failed to initialise");
	r.parts_cap = 4 * 1024;
	r.parts = sodium_malloc(r.parts_cap);
	out->data = malloc(IMPORT_ID_LEN);
	if (r.parts == NULL || out->data == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "pkcs11 import: out of memory");
		goto out;
	}
	if (RAND_bytes(r.id, sizeof(r.id)) != 1) {
		rc = KW_FAIL(KW_ERR_INTERNAL, "pkcs11 import: no random bytes for the CKA_ID");
		goto out;
	}
	common_build(&r, label);
	if ((rc = components_add(&r, key, type)) != KW_OK)
		goto out;
	kwb_p11_lock_attrs(r.pub, &r.npub, &r.no, 0); /* last: see p11.h */
	kwb_p11_lock_attrs(r.priv, &r.npriv, &r.no, 1);
	attempted = 1;
	/* the public object first: its RSA template points into parts too */
	CK_RV rv = p->fn->C_CreateObject(p->session, r.pub, r.npub, &hpub);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID) /* a token without CKA_COPYABLE: see p11.h */
		rv = p->fn->C_CreateObject(p->session, r.pub, r.npub - KWB_P11_LOCK_ATTRS_PUB,
		                           &hpub);
	if (rv == CKR_OK)
		rv = p->fn->C_CreateObject(p->session, r.priv, r.npriv, &hpriv);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
		rv = p->fn->C_CreateObject(p->session, r.priv, r.npriv - KWB_P11_LOCK_ATTRS_PRIV,
		                           &hpriv);
	sodium_memzero(r.parts, r.parts_cap); /* the token holds it now (or refused it) */
	if (rv != CKR_OK) {
		rc = create_fail(p, rv);
		goto out;
	}
	if ((rc = custody_check(p, hpriv)) != KW_OK)
		goto out;
	memcpy(out->data, r.id, sizeof(r.id));
	out->len = sizeof(r.id);
out:
	if (rc != KW_OK && attempted) {
		int n = 0;
		(void)kwb_p11_destroy_id(p, r.id, sizeof(r.id), &n);
	}
	if (rc != KW_OK)
		kw_key_blob_clear(out);
	if (r.parts != NULL)
		sodium_memzero(r.parts, r.parts_cap);
	sodium_free(r.parts);
	OPENSSL_free(r.ec_params);
	OPENSSL_free(r.point);
	return rc;
}
