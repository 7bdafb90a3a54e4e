/* see issuers/ca/ca_issuer.h: issuing under a keyward CA whose key stays in its device */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "issuers/ca/ca_issuer.h"

void kwi_ca_clear(kwi_ca *ca)
{
	X509_free(ca->cert);
	free(ca->chain);
	kw_key_blob_clear(&ca->ref);
	memset(ca, 0, sizeof(*ca));
}

/* The row's state, as refusals name it. */
static kw_rc check_row(const kwi_ca_current_row *r, const char *name)
{
	if (r->deleted)
		return KW_FAIL(KW_ERR_NOT_FOUND, "CA '%s' is deleted", name);
	if (!r->enabled)
		return KW_FAIL_HINT_ON(KW_ERR_STATE, KW_HINT_CERT_ENABLE, name,
		                       "CA '%s' is disabled", name);
	if (r->cert_der == NULL)
		return KW_FAIL(KW_ERR_STATE, "CA '%s' has no certificate yet (its version is %s)",
		               name, r->status);
	return KW_OK;
}

/* Takes the row's chain and key blob. */
static kw_rc read_row(kwi_ca_current_row *r, const char *name, kwi_ca *ca)
{
	const unsigned char *p = r->cert_der;
	KW_GUARD(check_row(r, name));
	ca->cert = d2i_X509(NULL, &p, (long)r->cert_len);
	if (ca->cert == NULL)
		return KW_FAIL(KW_ERR_STORE, "CA '%s' has an unreadable certificate", name);
	ca->chain_len = r->chain_len;
	if (r->chain_len) {
		ca->chain = (unsigned char *)r->chain_der;
		r->chain_der = NULL;
	}
	ca->backend_id = r->backend_id;
	ca->type = r->type;
	if (r->ref.len) {
		ca->ref = r->ref;
		memset(&r->ref, 0, sizeof(r->ref));
	}
	ca->cert_id = r->cert_id;
	ca->version = r->version;
	if (ca->type == 0 || ca->ref.data == NULL)
		return KW_FAIL(KW_ERR_STORE, "CA '%s' has an unreadable record", name);
	return KW_OK;
}

static kw_rc check_usable(const kwi_ca *ca, const char *name, time_t now)
{
	if (X509_check_ca(ca->cert) != 1 || !(X509_get_extension_flags(ca->cert) & EXFLAG_BCONS) ||
	    (X509_get_key_usage(ca->cert) & KU_KEY_CERT_SIGN) == 0)
		return KW_FAIL_HINT(
		    KW_ERR_STATE, KW_HINT_CA_CREATE,
		    "certificate '%s' is not a CA (no basicConstraints CA:TRUE with keyCertSign)",
		    name);
	if (X509_cmp_time(X509_get0_notAfter(ca->cert), &now) <= 0)
		return KW_FAIL_HINT_ON(KW_ERR_STATE, KW_HINT_CERT_RENEW, name,
		                       "CA '%s' has expired", name);
	if (X509_cmp_time(X509_get0_notBefore(ca->cert), &now) > 0)
		return KW_FAIL(KW_ERR_STATE, "CA '%s' is not valid yet", name);
	return KW_OK;
}

kw_rc kwi_ca_load(kw_store *s, const char *name, time_t now, kwi_ca *ca)
{
	kwi_ca_current_row row;
	int found = 0;
	memset(ca, 0, sizeof(*ca));
	KW_GUARD(kwi_store_ca_current_get(s, name, &row, &found));
	kw_rc rc = found
	               ? read_row(&row, name, ca)
	               : KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown CA '%s'", name);
	kwi_ca_current_row_clear(&row);
	if (rc == KW_OK)
		rc = check_usable(ca, name, now);
	if (rc != KW_OK)
		kwi_ca_clear(ca);
	return rc;
}

/* The CA's certificate followed by its own chain. */
static kw_rc chain_of(const kwi_ca *ca, unsigned char **out, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_X509(ca->cert, &der);
	*out = n > 0 ? malloc((size_t)n + ca->chain_len) : NULL;
	if (*out == NULL) {
		OPENSSL_free(der);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	memcpy(*out, der, (size_t)n);
	if (ca->chain_len)
		memcpy(*out + n, ca->chain, ca->chain_len);
	*len = (size_t)n + ca->chain_len;
	OPENSSL_free(der);
	return KW_OK;
}

static kw_rc check_path(const kwi_ca *ca, const char *name, kwi_cert_template *t)
{
	long limit = X509_get_pathlen(ca->cert); /* -1: none */
	if (!t->ca || limit < 0)
		return KW_OK;
	if (limit == 0)
		return KW_FAIL(KW_ERR_STATE,
		               "CA '%s' has pathlen 0: it cannot sign another CA (its path length "
		               "is exhausted)",
		               name);
	if (t->pathlen > limit - 1)
		return KW_FAIL(KW_ERR_STATE,
		               "a CA with pathlen %d cannot be issued by CA '%s' (pathlen %ld): at "
		               "most %ld",
		               t->pathlen, name, limit, limit - 1);
	if (t->pathlen < 0)
		t->pathlen = (int)(limit - 1); /* none asked: the most the parent allows */
	return KW_OK;
}

static void clip_validity(const kwi_ca *ca, kwi_cert_template *t)
{
	struct tm tm;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(ca->cert), &tm)) {
		time_t end = timegm(&tm);
		if (t->not_after > end)
			t->not_after = end;
	}
}

kw_rc kwi_ca_issue(kw_store *s, kwi_device *dev, const char *name, EVP_PKEY *pub,
                   kwi_cert_template *t, time_t now, X509 **out, unsigned char **chain,
                   size_t *chain_len)
{
	kwi_ca ca;
	kwi_device own = {0};
	EVP_PKEY *ca_pub = NULL;
	*out = NULL;
	*chain = NULL;
	KW_GUARD(kwi_ca_load(s, name, now, &ca));
	kw_rc rc = check_path(&ca, name, t);
	kwi_device *cdev = dev;
	if (rc == KW_OK && ca.backend_id != dev->id) {
		rc = kwi_device_open_id(s, ca.backend_id, &own);
		cdev = &own;
	}
	kwi_signer k = {cdev, &ca.ref, ca.type};
	clip_validity(&ca, t);
	if (rc == KW_OK)
		rc = kwi_signer_pubkey(&k, &ca_pub);
	if (rc == KW_OK && EVP_PKEY_eq(X509_get0_pubkey(ca.cert), ca_pub) != 1)
		rc = KW_FAIL(KW_ERR_BACKEND,
		             "CA '%s': the device's key does not match its certificate", name);
	if (rc == KW_OK)
		rc = kwi_x509_issue(&k, ca_pub, ca.cert, pub, t, out);
	if (rc == KW_OK && (rc = chain_of(&ca, chain, chain_len)) != KW_OK) {
		X509_free(*out);
		*out = NULL;
	}
	EVP_PKEY_free(ca_pub);
	kwi_device_close(&own);
	kwi_ca_clear(&ca);
	ERR_clear_error();
	return rc;
}
