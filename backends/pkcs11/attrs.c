/*
 * keyward — PKCS#11 backend: the custody attributes of a key and key_attrs.
 * see p11.h
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11.h"

static const CK_ATTRIBUTE_TYPE custody_types[KWB_P11_CUSTODY_N] = {
    [KWB_P11_EXTRACTABLE] = CKA_EXTRACTABLE,
    [KWB_P11_SENSITIVE] = CKA_SENSITIVE,
    [KWB_P11_NEVER_EXTRACTABLE] = CKA_NEVER_EXTRACTABLE,
    [KWB_P11_ALWAYS_SENSITIVE] = CKA_ALWAYS_SENSITIVE,
    [KWB_P11_LOCAL] = CKA_LOCAL,
    [KWB_P11_TOKEN] = CKA_TOKEN,
    [KWB_P11_PRIVATE] = CKA_PRIVATE,
    [KWB_P11_MODIFIABLE] = CKA_MODIFIABLE,
    [KWB_P11_COPYABLE] = CKA_COPYABLE,
};

static const char *const custody_names[KWB_P11_CUSTODY_N] = {
    [KWB_P11_EXTRACTABLE] = "CKA_EXTRACTABLE",
    [KWB_P11_SENSITIVE] = "CKA_SENSITIVE",
    [KWB_P11_NEVER_EXTRACTABLE] = "CKA_NEVER_EXTRACTABLE",
    [KWB_P11_ALWAYS_SENSITIVE] = "CKA_ALWAYS_SENSITIVE",
    [KWB_P11_LOCAL] = "CKA_LOCAL",
    [KWB_P11_TOKEN] = "CKA_TOKEN",
    [KWB_P11_PRIVATE] = "CKA_PRIVATE",
    [KWB_P11_MODIFIABLE] = "CKA_MODIFIABLE",
    [KWB_P11_COPYABLE] = "CKA_COPYABLE",
};

kw_rc kwb_p11_custody_read(kwb_p11 *p, CK_OBJECT_HANDLE h, const char *op,
                           int vals[KWB_P11_CUSTODY_N])
{
	CK_RV rv = kwb_p11_attr_bools(p, h, custody_types, vals, KWB_P11_CUSTODY_N);

	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "%s: cannot read the key's attributes from token '%s': %s", op,
		                   p->token, kwb_p11_rv_name(rv));
	return KW_OK;
}

void kwb_p11_lock_attrs(CK_ATTRIBUTE *t, CK_ULONG *n, CK_BBOOL *no, int priv)
{
	t[(*n)++] = (CK_ATTRIBUTE){CKA_MODIFIABLE, no, sizeof(*no)};
	if (priv)
		t[(*n)++] = (CK_ATTRIBUTE){CKA_COPYABLE, no, sizeof(*no)};
}

static json_t *bool_json(int v)
{
	return v < 0 ? json_null() : json_boolean(v);
}

static json_t *key_type_json(CK_KEY_TYPE kt)
{
	char buf[32];

	if (kt == CKK_EC)
		return json_string("CKK_EC");
	if (kt == CKK_RSA)
		return json_string("CKK_RSA");
	snprintf(buf, sizeof(buf), "CKK_0x%08lx", (unsigned long)kt);
	return json_string(buf);
}

static kw_rc evidence_build(const kwb_p11 *p, const kw_key_blob *ref, const int *vals,
                            CK_KEY_TYPE kt, json_t **out)
{
	kw_rc rc = KW_OK;
	json_t *o = json_object();
	char *hex = malloc(ref->len * 2 + 1);
	int bad = o == NULL || hex == NULL;

	if (!bad) {
		kwb_p11_id_hex(ref, hex, ref->len * 2 + 1);
		bad |= json_object_set_new(o, "device", json_string("pkcs11"));
		bad |= json_object_set_new(o, "token", json_string(p->token));
		for (int i = 0; i < KWB_P11_CUSTODY_N; i++)
			bad |= json_object_set_new(o, custody_names[i], bool_json(vals[i]));
		bad |= json_object_set_new(o, "CKA_KEY_TYPE", key_type_json(kt));
		bad |= json_object_set_new(o, "CKA_ID", json_string(hex));
	}
	if (bad) {
		rc =
		    KW_FAIL(KW_ERR_NOMEM, "out of memory describing a key of token '%s'", p->token);
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_decref(o);
	free(hex);
	return rc;
}

kw_rc kwb_p11_key_attrs(void *ctx, const kw_key_blob *ref, kw_key_attrs *out)
{
	kwb_p11 *p = ctx;
	CK_OBJECT_HANDLE h;
	CK_KEY_TYPE kt = 0;
	int v[KWB_P11_CUSTODY_N];
	static const char op[] = "reading key attributes";

	if (out == NULL)
		return KW_FAIL(KW_ERR_USAGE, "%s: no output given", op);
	memset(out, 0, sizeof(*out));
	KW_GUARD(kwb_p11_find_private(p, ref, op, &h));
	KW_GUARD(kwb_p11_custody_read(p, h, op, v));
	CK_RV rv = kwb_p11_attr_ulong(p, h, CKA_KEY_TYPE, &kt);
	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "%s: cannot read CKA_KEY_TYPE from token '%s': %s", op, p->token,
		                   kwb_p11_rv_name(rv));
	KW_GUARD(evidence_build(p, ref, v, kt, &out->evidence));
	/* Unknown (-1) counts against the key: exportable unless proven otherwise. */
	out->exportable = !(v[KWB_P11_EXTRACTABLE] == 0 && v[KWB_P11_SENSITIVE] == 1);
	out->generated_on_device = v[KWB_P11_LOCAL] == 1;
	return KW_OK;
}
