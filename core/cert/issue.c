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
                        const json_t *policy, kwi_cert_template *t, X509 *previous, kwi_issued *out)
{
	X509_REQ *csr = NULL;
	const json_t *iss = json_object_get(policy, "issuer");
	const json_t *http01 = s->http01 ? s->http01 : json_object_get(iss, "http01");
	kw_rc rc = kwi_x509_csr(k, pub, t, &csr);
	if (rc == KW_OK)
		rc = kwi_acme_issue(s, k->dev, acme_name, http01, csr, pub, previous, &out->cert,
		                    &out->chain, &out->chain_len);
	if (rc == KW_OK)
		rc = kwi_issued_facts(out->cert, out);
	X509_REQ_free(csr);
	return rc;
}

kw_rc kwi_issue(kw_store *s, kwi_device *dev, const kw_keyref *ref, kw_key_type type,
                const json_t *policy, X509 *previous, time_t now, kwi_issued *out)
{
	kw_rc rc = KW_OK;
	kwi_cert_template t;
	EVP_PKEY *pub = NULL;
	kwi_signer k = {dev, ref, type};
	const char *issuer =
	    json_string_value(json_object_get(json_object_get(policy, "issuer"), "name"));
	memset(out, 0, sizeof(*out));
	snprintf(out->issuer, sizeof(out->issuer), "%s", issuer ? issuer : "self");
	const char *by = NULL;
	kw_issuer_kind kind = kwi_issuer_parse(out->issuer, &by);
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

static void bind_issued(sqlite3_stmt *st, const kwi_issued *v)
{
	if (v->cert == NULL)
		return; /* pending: serial, validity and thumbprints stay NULL */
	sqlite3_bind_text(st, 11, v->serial, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)v->not_before);
	sqlite3_bind_int64(st, 13, (sqlite3_int64)v->not_after);
	sqlite3_bind_text(st, 14, v->sha1, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 15, v->sha256, -1, SQLITE_STATIC);
}

kw_rc kwi_version_insert(kw_store *s, int64_t cert_id, int version, int64_t backend_id,
                         const kw_keyref *ref, kw_key_type type, const kwi_issued *v, time_t now)
{
	kw_rc rc = KW_OK;
	sqlite3_stmt *st = NULL;
	unsigned char *der = NULL;
	kwi_facts f = {0};
	char *attrs =
	    v->attrs.evidence ? json_dumps(v->attrs.evidence, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int der_len = v->cert ? i2d_X509(v->cert, &der) : i2d_X509_REQ(v->csr, &der);
	if (der_len <= 0) {
		rc = KW_FAIL(KW_ERR_INTERNAL, "cannot encode the %s",
		             v->cert ? "certificate" : "CSR");
		goto out;
	}
	if (v->cert && (rc = kwi_facts_make(v->cert, &f)) != KW_OK)
		goto out;
	rc = kwi_store_prepare(
	    s,
	    "INSERT INTO versions (cert_id, version, status, backend_id, key_type,"
	    " key_ref, key_attrs, exportable, generated_on_device, issuer,"
	    " cert_der, csr_der, serial, not_before, not_after, thumbprint_sha1,"
	    " thumbprint_sha256, created_at, chain_der, subject_dn, issuer_dn, sans, spki_sha256)"
	    " VALUES (?1,?2,?17,?3,?4,?5,?6,?7,?8,?16,?9,?10,?11,?12,?13,?14,?15,?18,?19,"
	    "?20,?21,?22,?23)",
	    &st);
	if (rc != KW_OK)
		goto out;
	sqlite3_bind_int64(st, 1, cert_id);
	sqlite3_bind_int(st, 2, version);
	sqlite3_bind_int64(st, 3, backend_id);
	sqlite3_bind_text(st, 4, kw_key_type_name(type), -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, ref->data, (int)ref->len, SQLITE_STATIC);
	if (attrs)
		sqlite3_bind_text(st, 6, attrs, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, v->attrs.exportable);
	sqlite3_bind_int(st, 8, v->attrs.generated_on_device);
	sqlite3_bind_blob(st, v->cert ? 9 : 10, der, der_len, SQLITE_STATIC);
	bind_issued(st, v);
	sqlite3_bind_text(st, 16, v->issuer[0] ? v->issuer : "self", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 17, v->cert ? "active" : "pending", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 18, (sqlite3_int64)now);
	if (v->chain_len)
		sqlite3_bind_blob(st, 19, v->chain, (int)v->chain_len, SQLITE_STATIC);
	kwi_facts_bind(st, 20, &f);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "recording the new version");
out:
	kwi_facts_clear(&f);
	sqlite3_finalize(st);
	OPENSSL_free(der);
	free(attrs);
	return rc;
}

void kwi_cert_mirror(kwi_device *dev, const kw_keyref *ref, X509 *x)
{
	unsigned char *der = NULL;
	int n = x ? i2d_X509(x, &der) : -1;
	if (n > 0 && kwi_device_cert_store(dev, ref, der, (size_t)n) != KW_OK)
		kw_error_clear();
	OPENSSL_free(der);
}
