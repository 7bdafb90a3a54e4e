/* What listings print about a version's certificate, kept as columns of versions (subject_dn,
 * issuer_dn, spki_sha256: the text; sans: JSON text) so that cert list and metrics decode no
 * certificate per row. A NULL column means "not recorded": readers decode the certificate then. */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "cert/issue.h"

void kwi_facts_clear(kwi_facts *f)
{
	free(f->subject);
	free(f->issuer_dn);
	free(f->sans);
	free(f->spki);
	memset(f, 0, sizeof(*f));
}

/* SHA-256 of the DER SubjectPublicKeyInfo: names the key across versions
 * (the same after a renewal that kept the key), as pinning uses it. */
json_t *kwi_spki_sha256(X509_PUBKEY *key)
{
	unsigned char *der = NULL, d[32];
	char hex[65];
	int n = key ? i2d_X509_PUBKEY(key, &der) : -1;
	if (n <= 0)
		return json_null();
	EVP_Digest(der, (size_t)n, d, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
	kwi_hex(d, sizeof(d), hex);
	return json_string(hex);
}

json_t *kwi_cert_sans(X509 *x)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	json_t *arr = kwi_sans_json(gens);
	GENERAL_NAMES_free(gens);
	return arr;
}

/* The text of j (taken): a string's value, else its JSON text; NULL when j is
 * NULL or JSON null (nothing to record) or out of memory. */
static char *text_of(json_t *j, int as_json)
{
	char *t = NULL;
	if (as_json && j)
		t = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	else if (json_is_string(j))
		t = strdup(json_string_value(j));
	json_decref(j);
	return t;
}

kw_rc kwi_facts_make(X509 *x, kwi_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->subject = text_of(kwi_name_json(X509_get_subject_name(x)), 0);
	f->issuer_dn = text_of(kwi_name_json(X509_get_issuer_name(x)), 0);
	f->sans = text_of(kwi_cert_sans(x), 1);
	/* an unencodable key has no SHA-256 (null): left unrecorded, readers decode */
	f->spki = text_of(kwi_spki_sha256(X509_get_X509_PUBKEY(x)), 0);
	if (f->subject && f->issuer_dn && f->sans)
		return KW_OK;
	kwi_facts_clear(f);
	return KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

void kwi_facts_lend(const kwi_facts *f, kwi_version_row *r)
{
	r->subject_dn = f->subject;
	r->issuer_dn = f->issuer_dn;
	r->sans = f->sans;
	r->spki_sha256 = f->spki;
}

/* Records the facts of one version the migration found without them. */
static kw_rc fill_one(const kwi_cert_row *c, const kwi_version_row *v, void *arg)
{
	kw_store *s = arg;
	const unsigned char *p = v->cert_der;
	X509 *x = d2i_X509(NULL, &p, (long)v->cert_len);
	kwi_facts f;
	(void)c;
	if (x == NULL)
		return KW_OK; /* unreadable: readers decode (and fail) as before */
	kw_rc rc = kwi_facts_make(x, &f);
	X509_free(x);
	if (rc != KW_OK)
		return rc;
	kwi_version_row r = {.cert_id = v->cert_id, .version = v->version};
	kwi_facts_lend(&f, &r);
	rc = kwi_store_version_facts_set(s, &r);
	kwi_facts_clear(&f);
	return rc;
}

kw_rc kwi_facts_backfill(kw_store *s)
{
	return kwi_store_version_facts_missing_each(s, fill_one, s);
}
