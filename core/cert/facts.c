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

void kwi_facts_bind(sqlite3_stmt *st, int first, const kwi_facts *f)
{
	const char *v[] = {f->subject, f->issuer_dn, f->sans, f->spki};
	for (int i = 0; i < 4; i++)
		if (v[i])
			sqlite3_bind_text(st, first + i, v[i], -1, SQLITE_STATIC);
}

json_t *kwi_facts_text(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	return t ? json_stringn(t, (size_t)sqlite3_column_bytes(st, col)) : NULL;
}

json_t *kwi_facts_json(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	return t ? json_loads(t, JSON_ALLOW_NUL, NULL) : NULL;
}

static kw_rc fill_one(kw_store *s, sqlite3_stmt *up, sqlite3_stmt *sel)
{
	const unsigned char *p = sqlite3_column_blob(sel, 1);
	X509 *x = d2i_X509(NULL, &p, sqlite3_column_bytes(sel, 1));
	kwi_facts f;
	if (x == NULL)
		return KW_OK; /* unreadable: readers decode (and fail) as before */
	kw_rc rc = kwi_facts_make(x, &f);
	X509_free(x);
	if (rc != KW_OK)
		return rc;
	sqlite3_reset(up);
	sqlite3_clear_bindings(up);
	kwi_facts_bind(up, 1, &f);
	sqlite3_bind_int64(up, 5, sqlite3_column_int64(sel, 0));
	if (sqlite3_step(up) != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "recording certificate facts");
	kwi_facts_clear(&f);
	return rc;
}

kw_rc kwi_facts_backfill(kw_store *s)
{
	sqlite3_stmt *sel = NULL, *up = NULL;
	kw_rc rc = kwi_store_prepare(s,
	                             "SELECT id, cert_der FROM versions WHERE cert_der IS NOT NULL"
	                             " AND subject_dn IS NULL",
	                             &sel);
	if (rc == KW_OK)
		rc = kwi_store_prepare(
		    s,
		    "UPDATE versions SET subject_dn = ?1, issuer_dn = ?2, sans = ?3,"
		    " spki_sha256 = ?4 WHERE id = ?5",
		    &up);
	int r = SQLITE_DONE;
	while (rc == KW_OK && (r = sqlite3_step(sel)) == SQLITE_ROW)
		rc = fill_one(s, up, sel);
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading certificates to record their facts");
	sqlite3_finalize(up);
	sqlite3_finalize(sel);
	return rc;
}
