/* see p11.h: the certificate next to the key, and RFC 7512 URIs of both */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <p11-kit/uri.h>

#include "p11.h"

/* The key's label (CKA_LABEL of its private object), malloc'd, or NULL. */
static char *key_label(kwb_p11 *p, CK_OBJECT_HANDLE h)
{
	unsigned char *v = NULL;
	size_t len = 0;
	if (kwb_p11_attr_alloc(p, h, CKA_LABEL, &v, &len) != CKR_OK)
		return NULL;
	char *s = malloc(len + 1);
	if (s) {
		memcpy(s, v, len);
		s[len] = '\0';
	}
	free(v);
	return s;
}

static CK_RV cert_create(kwb_p11 *p, const kw_key_blob *ref, const char *label, X509 *x,
                         const unsigned char *der, size_t len)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE type = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	unsigned char *subject = NULL;
	int nsub = i2d_X509_NAME(X509_get_subject_name(x), &subject);
	if (nsub <= 0)
		return CKR_HOST_MEMORY;
	CK_ATTRIBUTE t[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_CERTIFICATE_TYPE, &type, sizeof(type)},
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &no, sizeof(no)},
	    {CKA_ID, ref->data, ref->len},
	    {CKA_VALUE, (void *)der, len},
	    {CKA_SUBJECT, subject, (CK_ULONG)nsub},
	    {CKA_LABEL, (void *)(label ? label : ""), label ? strlen(label) : 0},
	};
	CK_OBJECT_HANDLE h;
	CK_RV rv = p->fn->C_CreateObject(p->session, t, sizeof(t) / sizeof(t[0]), &h);
	OPENSSL_free(subject);
	return rv;
}

kw_rc kwb_p11_cert_attach(void *ctx, const kw_key_blob *ref, const unsigned char *der, size_t len)
{
	kwb_p11 *p = ctx;
	CK_OBJECT_HANDLE key, old[8];
	CK_ULONG n_old = 0;
	char hex[72];
	const unsigned char *q = der;
	X509 *x = d2i_X509(NULL, &q, (long)len);
	if (x == NULL)
		return KW_FAIL(KW_ERR_PARSE, "not a DER certificate");
	kw_rc rc = kwb_p11_find_private(p, ref, "storing the certificate", &key);
	int fresh = kwb_p11_is_fresh(p, ref) && !p->fresh_has_cert;
	if (rc == KW_OK && !fresh)
		rc = kwb_p11_find(p, CKO_CERTIFICATE, ref->data, ref->len, old, 8, &n_old);
	if (rc != KW_OK)
		goto out;
	char *label = key_label(p, key);
	/* The new one first: a failure leaves the old certificate in place. */
	CK_RV rv = cert_create(p, ref, label, x, der, len);
	free(label);
	if (rv != CKR_OK) {
		rc = KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                 "cannot store the certificate of key %s on token '%s': %s",
		                 kwb_p11_id_hex(ref, hex, sizeof(hex)), p->token,
		                 kwb_p11_rv_name(rv));
		goto out;
	}
	for (CK_ULONG i = 0; i < n_old; i++)
		(void)p->fn->C_DestroyObject(p->session, old[i]);
	if (kwb_p11_is_fresh(p, ref))
		p->fresh_has_cert = 1;
out:
	X509_free(x);
	return rc;
}

static kw_rc token_into(kwb_p11 *p, P11KitUri *uri)
{
	CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(uri);
	CK_RV rv = p->fn->C_GetTokenInfo(p->slot, ti);
	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv, "cannot read token '%s': %s", p->token,
		                   kwb_p11_rv_name(rv));
	return KW_OK;
}

kw_rc kwb_p11_key_ref_export(void *ctx, const kw_key_blob *ref, const char *format, char **out)
{
	kwb_p11 *p = ctx;
	CK_OBJECT_HANDLE key;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	*out = NULL;
	if (format == NULL || strcmp(format, "pkcs11-uri") != 0)
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "a PKCS#11 key has no '%s' reference (formats: keyward, pkcs11-uri)",
		               format ? format : "");
	KW_GUARD(kwb_p11_find_private(p, ref, "naming the key", &key));
	P11KitUri *uri = p11_kit_uri_new();
	if (uri == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	char *label = key_label(p, key);
	CK_ATTRIBUTE id = {CKA_ID, ref->data, ref->len};
	CK_ATTRIBUTE lab = {CKA_LABEL, label, label ? strlen(label) : 0};
	CK_ATTRIBUTE type = {CKA_CLASS, &cls, sizeof(cls)};
	kw_rc rc = token_into(p, uri);
	if (rc == KW_OK &&
	    (p11_kit_uri_set_attribute(uri, &id) != P11_KIT_URI_OK ||
	     (label && p11_kit_uri_set_attribute(uri, &lab) != P11_KIT_URI_OK) ||
	     p11_kit_uri_set_attribute(uri, &type) != P11_KIT_URI_OK ||
	     p11_kit_uri_format(uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, out) != P11_KIT_URI_OK))
		rc = KW_FAIL(KW_ERR_INTERNAL, "cannot format the PKCS#11 URI of the key");
	free(label);
	p11_kit_uri_free(uri);
	return rc;
}
