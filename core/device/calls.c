/* see internal.h: every backend operation core makes, in one place. Each call
 * checks that the backend has the operation and names the backend when it
 * does not; the backend's own error record is left as it set it. */
#include "internal.h"
#include "store/store_lock.h"

static kw_rc lacks(const kwi_device *d, const char *what)
{
	return KW_FAIL(KW_ERR_UNSUPPORTED, "backend '%s' (%s) cannot %s", d->name, d->kind, what);
}

unsigned kwi_device_caps(const kwi_device *d)
{
	return kw_backend_caps(d->ops, NULL);
}

kw_rc kwi_device_key_generate(kwi_device *d, kw_key_type type, const char *label, int revocable,
                              kw_key_blob *out)
{
	if (revocable && d->ops->key_generate_revocable != NULL)
		return d->ops->key_generate_revocable(d->ctx, type, label, out);
	if (revocable && !(kwi_device_caps(d) & KW_CAP_DESTROY_REAL))
		return lacks(d, "make keys that a purge can revoke (policy key.revocable)");
	if (d->ops->key_generate == NULL)
		return lacks(d, "generate keys");
	KW_GUARD(kwi_store_keys_busy(d->store));
	return d->ops->key_generate(d->ctx, type, label, out);
}

kw_rc kwi_device_key_import(kwi_device *d, EVP_PKEY *key, kw_key_type type, const char *label,
                            kw_key_blob *out)
{
	if (d->ops->key_import == NULL)
		return lacks(d, "import keys");
	KW_GUARD(kwi_store_keys_busy(d->store));
	return d->ops->key_import(d->ctx, key, type, label, out);
}

kw_rc kwi_device_key_public(kwi_device *d, const kw_key_blob *ref, unsigned char **der, size_t *len)
{
	if (d->ops->key_public == NULL)
		return lacks(d, "read public keys");
	return d->ops->key_public(d->ctx, ref, der, len);
}

kw_rc kwi_device_key_sign(kwi_device *d, const kw_key_blob *ref, const kw_sign_params *p,
                          const unsigned char *dgst, size_t dgst_len, unsigned char *sig,
                          size_t *sig_len)
{
	if (d->ops->key_sign == NULL)
		return lacks(d, "sign");
	return d->ops->key_sign(d->ctx, ref, p, dgst, dgst_len, sig, sig_len);
}

kw_rc kwi_device_key_attrs(kwi_device *d, const kw_key_blob *ref, kw_key_attrs *out)
{
	if (d->ops->key_attrs == NULL)
		return lacks(d, "read key attributes");
	return d->ops->key_attrs(d->ctx, ref, out);
}

kw_rc kwi_device_key_ref_export(kwi_device *d, const kw_key_blob *ref, const char *format,
                                char **out)
{
	if (d->ops->key_ref_export == NULL)
		return lacks(d, "write key blobs for other software");
	return d->ops->key_ref_export(d->ctx, ref, format, out);
}

kw_rc kwi_device_cert_attach(kwi_device *d, const kw_key_blob *ref, const unsigned char *der,
                             size_t len)
{
	if (d->ops->cert_attach == NULL)
		return KW_OK; /* the device keeps no certificates */
	return d->ops->cert_attach(d->ctx, ref, der, len);
}

kw_rc kwi_device_key_destroy(kwi_device *d, const kw_key_blob *ref, kw_key_end *end)
{
	kw_key_end ignored;
	if (end == NULL)
		end = &ignored;
	*end = KW_KEY_FORGOTTEN;
	if (d->ops->key_destroy == NULL)
		return KW_OK; /* nothing of the key lives on the device */
	KW_GUARD(kwi_store_keys_busy(d->store));
	return d->ops->key_destroy(d->ctx, ref, end);
}

const char *kwi_key_end_name(kw_key_end end)
{
	switch (end) {
	case KW_KEY_DESTROYED: return "destroyed";
	case KW_KEY_REVOKED: return "revoked";
	case KW_KEY_FORGOTTEN: break;
	}
	return "forgotten";
}

void kwi_keys_gone_add(kw_keys_gone *g, kw_key_end end)
{
	switch (end) {
	case KW_KEY_DESTROYED: g->destroyed++; return;
	case KW_KEY_REVOKED: g->revoked++; return;
	case KW_KEY_FORGOTTEN: break;
	}
	g->forgotten++; /* never claim more than was done */
}

json_t *kwi_keys_gone_json(const kw_keys_gone *g)
{
	return json_pack("{s:i,s:i,s:i}", "destroyed", g->destroyed, "revoked", g->revoked,
	                 "forgotten", g->forgotten);
}

kw_rc kwi_device_key_resolve(kwi_device *d, const char *spec, kw_key_blob *out,
                             unsigned char **cert_der, size_t *cert_len)
{
	if (d->ops->key_resolve == NULL)
		return lacks(d, "adopt keys");
	return d->ops->key_resolve(d->ctx, spec, out, cert_der, cert_len);
}

int kwi_device_can_certify(const kwi_device *d)
{
	return d->ops->key_certify != NULL;
}

kw_rc kwi_device_key_certify(kwi_device *d, const kw_key_blob *ref, const unsigned char *nonce,
                             size_t nonce_len, json_t **evidence)
{
	if (d->ops->key_certify == NULL)
		return lacks(d, "attest its keys");
	return d->ops->key_certify(d->ctx, ref, nonce, nonce_len, evidence);
}

kw_rc kwi_device_key_list(kwi_device *d, kw_device_key **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (d->ops->key_list == NULL)
		return KW_OK; /* keys are wrapped blobs in the store: none of ours on the device */
	return d->ops->key_list(d->ctx, out, n);
}

void kwi_device_key_discard(kwi_device *d, const kw_key_blob *ref)
{
	kw_rc ignored = kwi_device_key_destroy(d, ref, NULL);
	(void)ignored; /* the failure that led here is the one to report */
}
