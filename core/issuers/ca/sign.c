/* see keyward/ca.h: a CSR from another host signed by a keyward CA */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "issuers/ca/ca_issuer.h"
#include "cert/issue.h"
#include <keyward/ca.h>

#define DAYS_DEFAULT 365
#define DAYS_MAX     36500

static kw_rc csr_parse(const unsigned char *data, size_t len, X509_REQ **out)
{
	const unsigned char *p = data;
	BIO *b = BIO_new_mem_buf(data, (int)len);
	*out = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (*out == NULL)
		*out = d2i_X509_REQ(NULL, &p, (long)len);
	ERR_clear_error();
	if (*out == NULL)
		return KW_FAIL(KW_ERR_PARSE, "not a CSR (PEM or DER certificate request)");
	EVP_PKEY *pub = X509_REQ_get0_pubkey(*out);
	if (pub == NULL || X509_REQ_verify(*out, pub) != 1) {
		X509_REQ_free(*out);
		*out = NULL;
		ERR_clear_error();
		return KW_FAIL(KW_ERR_PARSE, "the CSR's self-signature does not verify: refused");
	}
	if (!EVP_PKEY_is_a(pub, "EC") && !EVP_PKEY_is_a(pub, "RSA")) {
		X509_REQ_free(*out);
		*out = NULL;
		return KW_FAIL(KW_ERR_UNSUPPORTED, "the CSR's key is neither EC nor RSA");
	}
	return KW_OK;
}

/* Subject and SANs from the CSR (its extension request's SANs only). */
static kw_rc csr_template(X509_REQ *req, int days, int client, time_t now, kwi_cert_template *t,
                          GENERAL_NAMES **sans)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	*sans = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ERR_clear_error();
	memset(t, 0, sizeof(*t));
	t->subject = X509_REQ_get_subject_name(req);
	if (X509_NAME_entry_count(t->subject) == 0 && sk_GENERAL_NAME_num(*sans) <= 0)
		return KW_FAIL(KW_ERR_USAGE, "the CSR names nothing (no subject, no SANs)");
	t->sans = *sans;
	t->is_rsa = EVP_PKEY_is_a(X509_REQ_get0_pubkey(req), "RSA");
	t->not_before = now;
	t->not_after = now + (time_t)(days ? days : DAYS_DEFAULT) * 86400;
	t->key_usage =
	    t->is_rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature";
	t->ext_key_usage = client ? "clientAuth" : "serverAuth";
	t->pathlen = -1;
	return KW_OK;
}

kw_rc kwi_ca_csr_read(const unsigned char *data, size_t len, int days, int client, time_t now,
                      X509_REQ **req, kwi_cert_template *t, GENERAL_NAMES **sans)
{
	*sans = NULL;
	KW_GUARD(csr_parse(data, len, req));
	return csr_template(*req, days, client, now, t, sans);
}

static kw_rc record(kw_store *s, const char *ca, int64_t ca_id, X509 *x, const kwi_issued *v,
                    const char *profile, time_t now)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	json_t *subject = kwi_name_json(X509_get_subject_name(x));
	const char *subj = json_string_value(subject) ? json_string_value(subject) : "";
	kwi_ca_issued_row row = {
	    .ca_cert_id = ca_id,
	    .serial = v->serial,
	    .subject = subj,
	    .not_after = v->not_after,
	    .thumbprint_sha256 = v->sha256,
	    .cert_der = der,
	    .cert_len = n > 0 ? (size_t)n : 0,
	    .created_at = now,
	};
	kw_rc rc = n > 0 ? kwi_store_begin(s) : KW_FAIL(KW_ERR_INTERNAL, "cannot encode");
	if (rc == KW_OK) {
		rc = kwi_store_ca_issued_add(s, &row);
		if (rc == KW_OK)
			rc = kwi_event_append(
			    s, "ca.signed", ca, 0,
			    json_pack("{s:s,s:s,s:I,s:s,s:s}", "serial", v->serial, "subject", subj,
			              "not_after", (json_int_t)v->not_after, "thumbprint_sha256",
			              v->sha256, "profile", profile));
		if (rc == KW_OK)
			rc = kwi_store_commit(s);
		else
			kwi_store_rollback(s);
	}
	json_decref(subject);
	OPENSSL_free(der);
	return rc;
}

static kw_rc to_pem(X509 *x, char **pem)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n = b && PEM_write_bio_X509(b, x) ? BIO_get_mem_data(b, &p) : 0;
	*pem = n > 0 ? strndup(p, (size_t)n) : NULL;
	BIO_free(b);
	return *pem ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kw_ca_sign(kw_store *s, const char *ca, const unsigned char *csr, size_t csr_len, int days,
                 const char *profile, char **pem)
{
	X509_REQ *req = NULL;
	X509 *x = NULL;
	GENERAL_NAMES *sans = NULL;
	unsigned char *chain = NULL;
	size_t chain_len = 0;
	kwi_cert_template t;
	kwi_issued v = {0};
	kwi_device nodev = {0}; /* the CA's device is opened by kwi_ca_issue */
	kwi_ca c;
	time_t now;
	*pem = NULL;
	kw_error_clear();
	if (profile == NULL)
		profile = "server";
	if (strcmp(profile, "server") != 0 && strcmp(profile, "client") != 0)
		return KW_FAIL(KW_ERR_USAGE, "unknown profile '%s' (use server or client)",
		               profile);
	if (days < 0 || days > DAYS_MAX)
		return KW_FAIL(KW_ERR_USAGE, "validity of %d days is out of range (1 to %d)", days,
		               DAYS_MAX);
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_ca_load(s, ca, now, &c)); /* before the CSR: name the CA first */
	int64_t ca_id = c.cert_id;
	kwi_ca_clear(&c);
	kw_rc rc = kwi_ca_csr_read(csr, csr_len, days, strcmp(profile, "client") == 0, now, &req,
	                           &t, &sans);
	if (rc == KW_OK)
		rc = kwi_ca_issue(s, &nodev, ca, X509_REQ_get0_pubkey(req), &t, now, &x, &chain,
		                  &chain_len);
	if (rc == KW_OK)
		rc = kwi_issued_facts(x, &v);
	if (rc == KW_OK)
		rc = record(s, ca, ca_id, x, &v, profile, now);
	if (rc == KW_OK)
		rc = to_pem(x, pem);
	free(chain);
	X509_free(x);
	GENERAL_NAMES_free(sans);
	X509_REQ_free(req);
	kwi_issued_clear(&v);
	return rc;
}
