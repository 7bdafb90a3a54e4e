/*
 * keyward — PKCS#11 backend: generating a non-exportable signing key pair.
 * see p11.h
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/rand.h>

#include "p11.h"

/* CKA_ID length of the keys we make: random, so collisions do not happen. */
#define KEY_ID_LEN   16
#define TEMPLATE_MAX 16

typedef struct {
	kw_key_type type;
	CK_KEY_TYPE ck_type;
	int curve_nid; /* EC */
	CK_ULONG bits; /* RSA */
} key_spec;

static const key_spec key_specs[] = {
    {KW_KEY_EC_P256, CKK_EC, NID_X9_62_prime256v1, 0},
    {KW_KEY_EC_P384, CKK_EC, NID_secp384r1, 0},
    {KW_KEY_RSA_2048, CKK_RSA, 0, 2048},
    {KW_KEY_RSA_3072, CKK_RSA, 0, 3072},
    {KW_KEY_RSA_4096, CKK_RSA, 0, 4096},
};

/* Everything the two templates point into lives here. */
typedef struct {
	const key_spec *spec;
	CK_BBOOL yes, no;
	CK_ULONG bits;
	unsigned char exponent[3];
	unsigned char id[KEY_ID_LEN];
	unsigned char *ec_params;
	size_t ec_params_len;
	CK_ATTRIBUTE pub[TEMPLATE_MAX];
	CK_ULONG npub;
	CK_ATTRIBUTE priv[TEMPLATE_MAX];
	CK_ULONG npriv;
} gen_request;

static const key_spec *spec_find(kw_key_type type)
{
	for (size_t i = 0; i < sizeof(key_specs) / sizeof(key_specs[0]); i++)
		if (key_specs[i].type == type)
			return &key_specs[i];
	return NULL;
}

/* CKA_EC_PARAMS: the DER OID of the named curve. */
static kw_rc ec_params_der(int nid, unsigned char **der, size_t *len)
{
	const ASN1_OBJECT *obj = OBJ_nid2obj(nid);
	int n = obj ? i2d_ASN1_OBJECT(obj, NULL) : 0;

	if (n <= 0)
		return KW_FAIL(KW_ERR_INTERNAL, "cannot encode the OID of curve %s",
		               OBJ_nid2sn(nid));
	*der = malloc((size_t)n);
	if (*der == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory encoding curve parameters");
	unsigned char *q = *der;
	i2d_ASN1_OBJECT(obj, &q);
	*len = (size_t)n;
	return KW_OK;
}

static void add(CK_ATTRIBUTE *t, CK_ULONG *n, CK_ATTRIBUTE_TYPE type, void *val, size_t len)
{
	t[*n] = (CK_ATTRIBUTE){type, val, (CK_ULONG)len};
	(*n)++;
}

static void templates_build(gen_request *g, const char *label)
{
	void *lab = (void *)label;
	size_t lab_len = label ? strlen(label) : 0;

	add(g->pub, &g->npub, CKA_TOKEN, &g->yes, sizeof(g->yes));
	add(g->pub, &g->npub, CKA_PRIVATE, &g->no, sizeof(g->no));
	add(g->pub, &g->npub, CKA_VERIFY, &g->yes, sizeof(g->yes));
	add(g->pub, &g->npub, CKA_ID, g->id, sizeof(g->id));
	add(g->priv, &g->npriv, CKA_TOKEN, &g->yes, sizeof(g->yes));
	add(g->priv, &g->npriv, CKA_PRIVATE, &g->yes, sizeof(g->yes));
	add(g->priv, &g->npriv, CKA_SENSITIVE, &g->yes, sizeof(g->yes));
	add(g->priv, &g->npriv, CKA_EXTRACTABLE, &g->no, sizeof(g->no));
	add(g->priv, &g->npriv, CKA_SIGN, &g->yes, sizeof(g->yes));
	add(g->priv, &g->npriv, CKA_ID, g->id, sizeof(g->id));
	/* A signing key and nothing else: tokens default the other uses to TRUE. */
	add(g->priv, &g->npriv, CKA_DECRYPT, &g->no, sizeof(g->no));
	add(g->priv, &g->npriv, CKA_UNWRAP, &g->no, sizeof(g->no));
	add(g->priv, &g->npriv, CKA_SIGN_RECOVER, &g->no, sizeof(g->no));
	add(g->pub, &g->npub, CKA_ENCRYPT, &g->no, sizeof(g->no));
	add(g->pub, &g->npub, CKA_WRAP, &g->no, sizeof(g->no));
	add(g->pub, &g->npub, CKA_VERIFY_RECOVER, &g->no, sizeof(g->no));
	if (label != NULL) {
		add(g->pub, &g->npub, CKA_LABEL, lab, lab_len);
		add(g->priv, &g->npriv, CKA_LABEL, lab, lab_len);
	}
	if (g->spec->ck_type == CKK_EC) {
		add(g->pub, &g->npub, CKA_EC_PARAMS, g->ec_params, g->ec_params_len);
		/* A signing key: no ECDH with it either. */
		add(g->priv, &g->npriv, CKA_DERIVE, &g->no, sizeof(g->no));
	} else {
		add(g->pub, &g->npub, CKA_MODULUS_BITS, &g->bits, sizeof(g->bits));
		add(g->pub, &g->npub, CKA_PUBLIC_EXPONENT, g->exponent, sizeof(g->exponent));
	}
	kwb_p11_lock_attrs(g->pub, &g->npub, &g->no, 0); /* last: see p11.h */
	kwb_p11_lock_attrs(g->priv, &g->npriv, &g->no, 1);
}

static kw_rc request_init(gen_request *g, const key_spec *spec, const char *label)
{
	static const unsigned char f4[3] = {0x01, 0x00, 0x01}; /* 65537 */

	memset(g, 0, sizeof(*g));
	g->spec = spec;
	g->yes = CK_TRUE;
	g->no = CK_FALSE;
	g->bits = spec->bits;
	memcpy(g->exponent, f4, sizeof(f4));
	if (RAND_bytes(g->id, sizeof(g->id)) != 1)
		return KW_FAIL(KW_ERR_INTERNAL, "cannot draw random bytes for a key's CKA_ID");
	if (spec->ck_type == CKK_EC)
		KW_GUARD(ec_params_der(spec->curve_nid, &g->ec_params, &g->ec_params_len));
	templates_build(g, label);
	return KW_OK;
}

static kw_rc generate_fail(const kwb_p11 *p, CK_RV rv, const char *tname)
{
	switch (rv) {
	case CKR_DEVICE_MEMORY:
	case CKR_DEVICE_ERROR:
	/* what a token whose storage is full says (SoftHSM: its token directory's
	 * file system is full) */
	case CKR_FUNCTION_FAILED:
		return KW_FAIL_DEV(KW_ERR_BACKEND, rv,
		                   "token '%s' is full (or failing): cannot store a new %s key "
		                   "(%s); destroy keys it no longer needs or use another token",
		                   p->token, tname, kwb_p11_rv_name(rv));
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
	case CKR_KEY_SIZE_RANGE:
	case CKR_CURVE_NOT_SUPPORTED:
	case CKR_DOMAIN_PARAMS_INVALID:
	case CKR_TEMPLATE_INCONSISTENT:
	case CKR_ATTRIBUTE_VALUE_INVALID:
		return KW_FAIL_DEV(KW_ERR_UNSUPPORTED, rv,
		                   "token '%s' cannot generate a non-exportable %s signing key "
		                   "(%s); choose another key type",
		                   p->token, tname, kwb_p11_rv_name(rv));
	default:
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "generating a %s key on token '%s' failed: %s", tname, p->token,
		                   kwb_p11_rv_name(rv));
	}
}

static const char *bool_name(int v)
{
	return v < 0 ? "unknown" : v ? "TRUE" : "FALSE";
}

/* A token that quietly ignores CKA_EXTRACTABLE=FALSE must not hold our keys. */
static kw_rc custody_check(kwb_p11 *p, CK_OBJECT_HANDLE priv, const char *tname)
{
	int v[KWB_P11_CUSTODY_N];

	KW_GUARD(kwb_p11_custody_read(p, priv, "generating a key", v));
	if (v[KWB_P11_EXTRACTABLE] != 0 || v[KWB_P11_SENSITIVE] != 1 || v[KWB_P11_TOKEN] != 1 ||
	    v[KWB_P11_PRIVATE] != 1)
		return KW_FAIL(KW_ERR_BACKEND,
		               "token '%s' did not honour the template of a new %s key "
		               "(CKA_EXTRACTABLE=%s CKA_SENSITIVE=%s CKA_TOKEN=%s CKA_PRIVATE=%s); "
		               "the key was destroyed: this token cannot hold keyward keys",
		               p->token, tname, bool_name(v[KWB_P11_EXTRACTABLE]),
		               bool_name(v[KWB_P11_SENSITIVE]), bool_name(v[KWB_P11_TOKEN]),
		               bool_name(v[KWB_P11_PRIVATE]));
	return KW_OK;
}

kw_rc kwb_p11_key_generate(void *ctx, kw_key_type type, const char *label, kw_key_blob *out)
{
	kw_rc rc = KW_OK;
	kwb_p11 *p = ctx;
	gen_request g;
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	int attempted = 0;
	const key_spec *spec = spec_find(type);
	const char *tname = kw_key_type_name(type);

	if (p == NULL || p->fn == NULL || !p->have_session || out == NULL)
		return KW_FAIL(KW_ERR_USAGE, "generating a key: the PKCS#11 backend is not open");
	out->data = NULL;
	out->len = 0;
	if (spec == NULL)
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "the PKCS#11 backend cannot generate key type %d", (int)type);
	rc = request_init(&g, spec, label);
	if (rc != KW_OK)
		goto out;
	out->data = malloc(sizeof(g.id));
	if (out->data == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory generating a key");
		goto out;
	}
	CK_MECHANISM mech = {
	    spec->ck_type == CKK_EC ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	attempted = 1;
	CK_RV rv = p->fn->C_GenerateKeyPair(p->session, &mech, g.pub, g.npub, g.priv, g.npriv, &pub,
	                                    &priv);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID) /* a token without CKA_COPYABLE */
		rv = p->fn->C_GenerateKeyPair(p->session, &mech, g.pub,
		                              g.npub - KWB_P11_LOCK_ATTRS_PUB, g.priv,
		                              g.npriv - KWB_P11_LOCK_ATTRS_PRIV, &pub, &priv);
	if (rv != CKR_OK) {
		rc = generate_fail(p, rv, tname);
		goto out;
	}
	rc = custody_check(p, priv, tname);
	if (rc != KW_OK)
		goto out;
	memcpy(out->data, g.id, sizeof(g.id));
	out->len = sizeof(g.id);
	/* what follows (public key, certificate, attributes) finds it without a search */
	kwb_p11_keycache_put(p, g.id, sizeof(g.id), priv, spec->ck_type, 0);
	memcpy(p->fresh_id, g.id, sizeof(g.id));
	p->fresh_len = sizeof(g.id);
	p->fresh_pub = pub;
	p->fresh_has_cert = 0;
out:
	/* Leave nothing half-made behind: whatever carries our fresh CKA_ID goes. */
	if (rc != KW_OK && attempted) {
		int n = 0;
		(void)kwb_p11_destroy_id(p, g.id, sizeof(g.id), &n);
	}
	if (rc != KW_OK)
		kw_key_blob_clear(out);
	free(g.ec_params);
	return rc;
}
