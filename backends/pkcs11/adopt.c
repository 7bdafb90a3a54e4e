/* see p11.h: naming a key other software made on the token (cert adopt) */
#include <stdlib.h>
#include <string.h>

#include <p11-kit/uri.h>

#include "p11.h"

/* How many private keys we look at to tell "one" from "several". */
#define MATCH_MAX 2

static kw_rc uri_parse(const char *spec, P11KitUri **uri)
{
	*uri = p11_kit_uri_new();
	if (*uri == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	int r = spec && strncmp(spec, "pkcs11:", 7) == 0
	            ? p11_kit_uri_parse(spec, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, *uri)
	            : P11_KIT_URI_BAD_SCHEME;
	if (r != P11_KIT_URI_OK)
		return KW_FAIL(KW_ERR_USAGE, "bad PKCS#11 URI '%s': %s", spec ? spec : "",
		               p11_kit_uri_message(r));
	CK_ATTRIBUTE *cls = p11_kit_uri_get_attribute(*uri, CKA_CLASS);
	if (cls && (cls->ulValueLen != sizeof(CK_OBJECT_CLASS) ||
	            *(CK_OBJECT_CLASS *)cls->pValue != CKO_PRIVATE_KEY))
		return KW_FAIL(KW_ERR_USAGE,
		               "the PKCS#11 URI '%s' names no private key (use "
		               "type=private)",
		               spec);
	if (p11_kit_uri_get_attribute(*uri, CKA_ID) == NULL &&
	    p11_kit_uri_get_attribute(*uri, CKA_LABEL) == NULL)
		return KW_FAIL(KW_ERR_USAGE,
		               "the PKCS#11 URI '%s' names no key: give id= or object=", spec);
	return KW_OK;
}

static kw_rc find_one(kwb_p11 *p, P11KitUri *uri, const char *spec, CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[3];
	CK_ULONG nt = 0, n = 0;
	CK_OBJECT_HANDLE found[MATCH_MAX];
	CK_ATTRIBUTE *a;

	t[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
	if ((a = p11_kit_uri_get_attribute(uri, CKA_ID)) != NULL)
		t[nt++] = *a;
	if ((a = p11_kit_uri_get_attribute(uri, CKA_LABEL)) != NULL)
		t[nt++] = *a;
	CK_RV rv = p->fn->C_FindObjectsInit(p->session, t, nt);
	if (rv == CKR_OK) {
		rv = p->fn->C_FindObjects(p->session, found, MATCH_MAX, &n);
		CK_RV frv = p->fn->C_FindObjectsFinal(p->session);
		if (rv == CKR_OK)
			rv = frv;
	}
	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv, "cannot search token '%s': %s",
		                   p->token, kwb_p11_rv_name(rv));
	if (n == 0)
		return KW_FAIL(KW_ERR_NOT_FOUND, "no private key matching '%s' on token '%s'", spec,
		               p->token);
	if (n > 1)
		return KW_FAIL(KW_ERR_STATE,
		               "several private keys match '%s' on token '%s': give a URI that "
		               "names one (id= and object=)",
		               spec, p->token);
	*h = found[0];
	return KW_OK;
}

/* The certificate object with the key's CKA_ID, when the token keeps one. */
static void cert_read(kwb_p11 *p, const kw_key_blob *ref, unsigned char **der, size_t *len)
{
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n = 0;

	if (kwb_p11_find(p, CKO_CERTIFICATE, ref->data, ref->len, h, 2, &n) != KW_OK || n != 1 ||
	    kwb_p11_attr_alloc(p, h[0], CKA_VALUE, der, len) != CKR_OK) {
		kw_error_clear();
		*der = NULL;
		*len = 0;
	}
}

kw_rc kwb_p11_key_resolve(void *ctx, const char *spec, kw_key_blob *out, unsigned char **cert_der,
                          size_t *cert_len)
{
	kwb_p11 *p = ctx;
	P11KitUri *uri = NULL;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	unsigned char *id = NULL;
	size_t id_len = 0;

	*out = (kw_key_blob){0};
	*cert_der = NULL;
	*cert_len = 0;
	if (p == NULL || p->fn == NULL || !p->have_session)
		return KW_FAIL(KW_ERR_USAGE, "adopting a key: the PKCS#11 backend is not open");
	kw_rc rc = uri_parse(spec, &uri);
	CK_TOKEN_INFO ti;
	if (rc == KW_OK && p->fn->C_GetTokenInfo(p->slot, &ti) == CKR_OK &&
	    p11_kit_uri_match_token_info(uri, &ti) != 1)
		rc = KW_FAIL(KW_ERR_NOT_FOUND, "the PKCS#11 URI '%s' names another token than '%s'",
		             spec, p->token);
	if (rc == KW_OK)
		rc = find_one(p, uri, spec, &h);
	p11_kit_uri_free(uri);
	if (rc != KW_OK)
		return rc;
	CK_RV rv = kwb_p11_attr_alloc(p, h, CKA_ID, &id, &id_len);
	if (rv != CKR_OK || id_len == 0) {
		free(id);
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "the key '%s' on token '%s' has no CKA_ID: keyward names keys by "
		               "CKA_ID; set one (pkcs11-tool --set-id) and try again",
		               spec, p->token);
	}
	out->data = id;
	out->len = id_len;
	if ((rc = kwb_p11_ref_check(out, "adopting a key")) != KW_OK) {
		kw_key_blob_clear(out);
		return rc;
	}
	CK_OBJECT_HANDLE check;
	if ((rc = kwb_p11_find_private(p, out, "adopting a key", &check)) != KW_OK) {
		kw_key_blob_clear(out);
		return rc;
	}
	cert_read(p, out, cert_der, cert_len);
	return KW_OK;
}
