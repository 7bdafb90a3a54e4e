/*
 * keyward — PKCS#11 backend: finding objects by CKA_ID, reading attributes,
 * destroying keys. see p11.h
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11.h"

/* Longest CKA_ID we accept in a key blob (ours are 16 bytes). */
#define KEY_BLOB_MAX 255
/* Objects of one class sharing a CKA_ID that destroy removes in one pass. */
#define DESTROY_MAX 16

static kw_rc ctx_check(const kwb_p11 *p, const char *op)
{
	if (p == NULL || p->fn == NULL || !p->have_session)
		return KW_FAIL(KW_ERR_USAGE, "%s: the PKCS#11 backend is not open", op);
	return KW_OK;
}

kw_rc kwb_p11_ref_check(const kw_key_blob *ref, const char *op)
{
	if (ref == NULL || ref->data == NULL || ref->len == 0)
		return KW_FAIL(KW_ERR_USAGE, "%s: empty PKCS#11 key blob", op);
	if (ref->len > KEY_BLOB_MAX)
		return KW_FAIL(KW_ERR_USAGE,
		               "%s: PKCS#11 key blob of %zu bytes is not a CKA_ID keyward made", op,
		               ref->len);
	return KW_OK;
}

const char *kwb_p11_id_hex(const kw_key_blob *ref, char *buf, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	size_t len = ref ? ref->len : 0;
	size_t fit = (size - 1) / 2;
	int cut = len > fit;
	size_t o = 0;

	if (cut)
		fit = (size - 4) / 2;
	for (size_t i = 0; i < len && i < fit; i++) {
		buf[o++] = digits[ref->data[i] >> 4];
		buf[o++] = digits[ref->data[i] & 0xf];
	}
	if (cut) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static CK_RV find_raw(kwb_p11 *p, CK_OBJECT_CLASS cls, const unsigned char *id, size_t id_len,
                      CK_OBJECT_HANDLE *h, CK_ULONG max, CK_ULONG *n)
{
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_ID, (void *)id, (CK_ULONG)id_len},
	    {CKA_CLASS, &cls, sizeof(cls)},
	};
	CK_ULONG count = cls == KWB_P11_ANY_CLASS ? 1 : 2;

	*n = 0;
	CK_RV rv = p->fn->C_FindObjectsInit(p->session, tmpl, count);
	if (rv != CKR_OK)
		return rv;
	rv = p->fn->C_FindObjects(p->session, h, max, n);
	CK_RV frv = p->fn->C_FindObjectsFinal(p->session);
	return rv != CKR_OK ? rv : frv;
}

kw_rc kwb_p11_find(kwb_p11 *p, CK_OBJECT_CLASS cls, const unsigned char *id, size_t id_len,
                   CK_OBJECT_HANDLE *h, CK_ULONG max, CK_ULONG *n)
{
	CK_RV rv = find_raw(p, cls, id, id_len, h, max, n);

	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "cannot search token '%s' for a key: %s; check that the token "
		                   "is still present and reopen the backend",
		                   p->token, kwb_p11_rv_name(rv));
	return KW_OK;
}

int kwb_p11_key_still(kwb_p11 *p, const kw_key_blob *ref, CK_OBJECT_HANDLE h, CK_KEY_TYPE kt)
{
	unsigned char id[KWB_P11_CACHE_ID_MAX];
	CK_OBJECT_CLASS cls = 0;
	CK_KEY_TYPE t = 0;
	CK_ATTRIBUTE a[] = {
	    {CKA_ID, id, sizeof(id)},
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_KEY_TYPE, &t, sizeof(t)},
	};

	if (ref->len > sizeof(id) || p->fn->C_GetAttributeValue(p->session, h, a, 3) != CKR_OK)
		return 0;
	return a[0].ulValueLen == ref->len && memcmp(id, ref->data, ref->len) == 0 &&
	       a[1].ulValueLen == sizeof(cls) && cls == CKO_PRIVATE_KEY &&
	       a[2].ulValueLen == sizeof(t) && t == kt;
}

kw_rc kwb_p11_find_private(kwb_p11 *p, const kw_key_blob *ref, const char *op, CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;
	CK_KEY_TYPE kt = 0;
	char hex[72];

	KW_GUARD(ctx_check(p, op));
	KW_GUARD(kwb_p11_ref_check(ref, op));
	if (kwb_p11_keycache_get(p, ref->data, ref->len, h, &kt, NULL) &&
	    kwb_p11_key_still(p, ref, *h, kt))
		return KW_OK;
	kwb_p11_keycache_drop(p, ref->data, ref->len);
	KW_GUARD(kwb_p11_find(p, CKO_PRIVATE_KEY, ref->data, ref->len, found, 2, &n));
	if (n == 0)
		return KW_FAIL(KW_ERR_NOT_FOUND,
		               "%s: no private key with CKA_ID %s on token '%s'; it was destroyed "
		               "or lives on another token",
		               op, kwb_p11_id_hex(ref, hex, sizeof(hex)), p->token);
	if (n > 1)
		return KW_FAIL(KW_ERR_STATE,
		               "%s: several private keys share CKA_ID %s on token '%s'; remove "
		               "the duplicates (e.g. with pkcs11-tool --delete-object)",
		               op, kwb_p11_id_hex(ref, hex, sizeof(hex)), p->token);
	*h = found[0];
	if (kwb_p11_attr_ulong(p, *h, CKA_KEY_TYPE, &kt) == CKR_OK)
		kwb_p11_keycache_put(p, ref->data, ref->len, *h, kt, 1);
	return KW_OK;
}

CK_RV kwb_p11_attr_alloc(kwb_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
                         unsigned char **val, size_t *len)
{
	CK_ATTRIBUTE a = {type, NULL, 0};

	*val = NULL;
	*len = 0;
	CK_RV rv = p->fn->C_GetAttributeValue(p->session, h, &a, 1);
	if (rv != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
	if (a.pValue == NULL)
		return CKR_HOST_MEMORY;
	rv = p->fn->C_GetAttributeValue(p->session, h, &a, 1);
	if (rv != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	*val = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

CK_RV kwb_p11_attr_ulong(kwb_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, CK_ULONG *val)
{
	CK_ATTRIBUTE a = {type, val, sizeof(*val)};
	CK_RV rv = p->fn->C_GetAttributeValue(p->session, h, &a, 1);

	if (rv == CKR_OK && a.ulValueLen != sizeof(*val))
		rv = CKR_ATTRIBUTE_VALUE_INVALID;
	return rv;
}

CK_RV kwb_p11_attr_bools(kwb_p11 *p, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE_TYPE *types, int *vals,
                         size_t n)
{
	CK_ATTRIBUTE a[16];
	CK_BBOOL b[16];

	if (n > sizeof(b))
		return CKR_ARGUMENTS_BAD;
	for (size_t i = 0; i < n; i++) {
		b[i] = CK_FALSE;
		a[i] = (CK_ATTRIBUTE){types[i], &b[i], sizeof(b[i])};
	}
	/* TYPE_INVALID/SENSITIVE still fill in the others (PKCS#11 2.40 5.7). */
	CK_RV rv = p->fn->C_GetAttributeValue(p->session, h, a, (CK_ULONG)n);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
		return rv;
	for (size_t i = 0; i < n; i++)
		vals[i] = a[i].ulValueLen == sizeof(CK_BBOOL) ? b[i] != CK_FALSE : -1;
	return CKR_OK;
}

CK_RV kwb_p11_destroy_id(kwb_p11 *p, const unsigned char *id, size_t id_len, int *destroyed)
{
	/* The private key first: once it is gone the key is unusable. */
	static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE};
	CK_RV first = CKR_OK;

	*destroyed = 0;
	for (size_t c = 0; c < sizeof(classes) / sizeof(classes[0]); c++) {
		CK_OBJECT_HANDLE h[DESTROY_MAX];
		CK_ULONG n = 0;
		CK_RV rv = find_raw(p, classes[c], id, id_len, h, DESTROY_MAX, &n);
		if (rv != CKR_OK && first == CKR_OK)
			first = rv;
		for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
			CK_RV drv = p->fn->C_DestroyObject(p->session, h[i]);
			if (drv == CKR_OK)
				(*destroyed)++;
			else if (first == CKR_OK)
				first = drv;
		}
	}
	return first;
}

kw_rc kwb_p11_key_destroy(void *ctx, const kw_key_blob *ref, kw_key_end *end)
{
	kwb_p11 *p = ctx;
	CK_OBJECT_HANDLE h;
	int destroyed = 0;
	char hex[72];

	/* C_DestroyObject: the token holds no copy afterwards (nor when the
	 * key was gone already) */
	if (end != NULL)
		*end = KW_KEY_DESTROYED;

	/* Every object of the key goes, even when its private half is already
	 * gone (deleted by another tool); only when nothing is left is it
	 * "not found". */
	kw_rc found = kwb_p11_find_private(p, ref, "destroying key", &h);
	if (found != KW_OK && found != KW_ERR_NOT_FOUND)
		return found;
	CK_RV rv = kwb_p11_destroy_id(p, ref->data, ref->len, &destroyed);
	kwb_p11_keycache_drop(p, ref->data, ref->len);
	if (kwb_p11_is_fresh(p, ref))
		p->fresh_len = 0;
	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "destroying key %s on token '%s' failed after %d object(s): %s; "
		                   "run the command again or delete the objects with pkcs11-tool",
		                   kwb_p11_id_hex(ref, hex, sizeof(hex)), p->token, destroyed,
		                   kwb_p11_rv_name(rv));
	if (found == KW_ERR_NOT_FOUND && destroyed > 0)
		kw_error_clear(); /* the rest of the key is gone now: done */
	return destroyed > 0 || found == KW_OK ? KW_OK : found;
}
