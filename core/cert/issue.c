/* Issuing one certificate version: key on the device, certificate (or CSR) signed there, row in
 * the store. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

#include "issuers/acme/acme_issuer.h"
#include "issuers/ca/ca_issuer.h"
#include "cert/issue.h"

void kwi_issued_clear(kwi_issued *v)
{
	X509_free(v->cert);
	X509_REQ_free(v->csr);
	free(v->chain);
	kw_key_attrs_clear(&v->attrs);
	memset(v, 0, sizeof(*v));
}

static kw_rc serial_hex(X509 *x, char *out, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	BN_free(bn);
	if (hex == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	size_t i = 0;
	for (; hex[i] && i + 1 < len; i++)
		out[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
	out[i] = '\0';
	OPENSSL_free(hex);
	return KW_OK;
}

static kw_rc asn1_time(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return KW_FAIL(KW_ERR_PARSE, "the certificate has an unreadable validity period");
	*out = timegm(&tm);
	return KW_OK;
}

kw_rc kwi_issued_facts(X509 *x, kwi_issued *out)
{
	KW_GUARD(kwi_x509_thumbprints(x, out->sha1, out->sha256));
	KW_GUARD(serial_hex(x, out->serial, sizeof(out->serial)));
	KW_GUARD(asn1_time(X509_get0_notBefore(x), &out->not_before));
	return asn1_time(X509_get0_notAfter(x), &out->not_after);
}

/* ACME: a CSR signed by the key in its device, the certificate from the CA. */
static kw_rc acme_issue(kw_store *s, const kwi_signer *k, const char *acme_name, EVP_PKEY *pub,
                        const kwi_policy *policy, kwi_cert_template *t, X509 *previous,
                        kwi_issued *out)
{
	X509_REQ *csr = NULL;
	/* this handle's way (kw_store_set_http01), else the policy's */
	const kwi_http01_conf *http01 =
	    s->http01.listen || s->http01.webroot ? &s->http01 : &policy->issuer.http01;
	kw_rc rc = kwi_x509_csr(k, pub, t, &csr);
	if (rc == KW_OK)
		rc = kwi_acme_issue(s, k->dev, acme_name, http01, csr, pub, previous, &out->cert,
		                    &out->chain, &out->chain_len);
	if (rc == KW_OK)
		rc = kwi_issued_facts(out->cert, out);
	X509_REQ_free(csr);
	return rc;
}

kw_rc kwi_issue(kw_store *s, kwi_device *dev, const kw_key_blob *ref, kw_key_type type,
                const kwi_policy *policy, X509 *previous, time_t now, kwi_issued *out)
{
	kw_rc rc = KW_OK;
	kwi_cert_template t;
	EVP_PKEY *pub = NULL;
	kwi_signer k = {dev, ref, type};
	memset(out, 0, sizeof(*out));
	snprintf(out->issuer, sizeof(out->issuer), "%s", policy->issuer.name);
	const char *by = policy->issuer.named;
	kw_issuer_kind kind = policy->issuer.kind;
	if (kind == KW_ISSUER_INVALID)
		return KW_FAIL(KW_ERR_UNSUPPORTED, "issuer '%s' is not one keyward knows",
		               out->issuer);
	KW_GUARD(kwi_policy_template(policy, now, &t));
	if ((rc = kwi_signer_pubkey(&k, &pub)) != KW_OK)
		goto out;
	if (kind == KW_ISSUER_EXTERNAL) /* an external CA issues: the version waits with its CSR */
		rc = kwi_x509_csr(&k, pub, &t, &out->csr);
	else if (kind == KW_ISSUER_ACME)
		rc = acme_issue(s, &k, by, pub, policy, &t, previous, out);
	else if (kind == KW_ISSUER_CA) { /* the CA's key signs, in its own device */
		rc = kwi_ca_issue(s, dev, by, pub, &t, now, &out->cert, &out->chain,
		                  &out->chain_len);
		if (rc == KW_OK)
			rc = kwi_issued_facts(out->cert, out);
	} else if ((rc = kwi_x509_self_signed(&k, pub, &t, &out->cert)) == KW_OK)
		rc = kwi_issued_facts(out->cert, out);
	if (rc == KW_OK)
		rc = kwi_device_key_attrs(dev, ref, &out->attrs);
out:
	EVP_PKEY_free(pub);
	kwi_template_clear(&t);
	if (rc != KW_OK)
		kwi_issued_clear(out);
	return rc;
}

kw_rc kwi_version_insert(kw_store *s, int64_t cert_id, int version, int64_t backend_id,
                         const kw_key_blob *ref, kw_key_type type, const kwi_issued *v, time_t now)
{
	kw_rc rc = KW_OK;
	unsigned char *der = NULL;
	kwi_facts f = {0};
	int der_len = v->cert ? i2d_X509(v->cert, &der) : i2d_X509_REQ(v->csr, &der);
	if (der_len <= 0)
		return KW_FAIL(KW_ERR_INTERNAL, "cannot encode the %s",
		               v->cert ? "certificate" : "CSR");
	kwi_version_row r = {
	    .cert_id = cert_id,
	    .version = version,
	    .status = v->cert ? KWI_VERSION_ACTIVE : KWI_VERSION_PENDING,
	    .backend_id = backend_id,
	    .type = type,
	    .ref = *ref,
	    .key_attrs = v->attrs.evidence,
	    .exportable = v->attrs.exportable,
	    .generated_on_device = v->attrs.generated_on_device,
	    .issuer = v->issuer[0] ? v->issuer : "self",
	    .chain_der = v->chain,
	    .chain_len = v->chain_len,
	    .created_at = now,
	};
	if (v->cert) {
		r.has_cert = 1;
		r.cert_der = der;
		r.cert_len = (size_t)der_len;
		/* pending: serial, validity and thumbprints stay NULL */
		r.serial = v->serial;
		r.has_validity = 1;
		r.not_before = v->not_before;
		r.not_after = v->not_after;
		r.thumbprint_sha1 = v->sha1;
		r.thumbprint_sha256 = v->sha256;
		rc = kwi_facts_make(v->cert, &f);
		kwi_facts_lend(&f, &r);
	} else {
		r.csr_der = der;
		r.csr_len = (size_t)der_len;
	}
	if (rc == KW_OK)
		rc = kwi_store_version_insert(s, &r);
	kwi_facts_clear(&f);
	OPENSSL_free(der);
	return rc;
}

void kwi_cert_mirror(kwi_device *dev, const kw_key_blob *ref, X509 *x)
{
	unsigned char *der = NULL;
	int n = x ? i2d_X509(x, &der) : -1;
	if (n > 0 && kwi_device_cert_attach(dev, ref, der, (size_t)n) != KW_OK)
		kw_error_clear();
	OPENSSL_free(der);
}

/* see cert/issue.h */
kw_rc kwi_version_key_match(kw_store *s, const char *name, int version, kwi_device *dev,
                            const kw_key_blob *ref, kw_key_type type, X509 *cert, EVP_PKEY **pub)
{
	EVP_PKEY *have = NULL;
	kwi_signer k = {dev, ref, type};
	if (pub)
		*pub = NULL;
	KW_GUARD(kwi_signer_pubkey(&k, &have));
	if (cert == NULL || EVP_PKEY_eq(X509_get0_pubkey(cert), have) == 1) {
		if (pub)
			*pub = have;
		else
			EVP_PKEY_free(have);
		return KW_OK;
	}
	EVP_PKEY_free(have);
	if (kwi_event_record(s, "cert.key_mismatch", name, version,
	                     json_pack("{s:s}", "backend", dev->name)) != KW_OK)
		kw_error_clear(); /* the refusal below is what counts */
	return KW_FAIL(
	    KW_ERR_STATE,
	    "certificate '%s' version %d: the key in backend '%s' is not the "
	    "certificate's key (its key blob in the store was changed, or the key on the "
	    "device replaced); nothing was signed with it",
	    name, version, dev->name);
}
