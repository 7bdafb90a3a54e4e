/* see store/store_issuers.h: a keyward CA's records (what it signed, revoked, its CRL numbers) */
#include <stdlib.h>
#include <string.h>

#include "store/sql.h"
#include "store/store_issuers.h"

/* ---- a CA certificate's current version ---- */

void kwi_ca_current_row_clear(kwi_ca_current_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->status);
	free((unsigned char *)r->cert_der);
	free((unsigned char *)r->chain_der);
	kw_key_blob_clear(&r->ref);
	memset(r, 0, sizeof(*r));
}

static kw_rc current_read(sqlite3_stmt *st, kwi_ca_current_row *r)
{
	r->enabled = sqlite3_column_int(st, 0);
	r->deleted = sqlite3_column_int(st, 1);
	r->status = kwi_col_dup(st, 2);
	r->backend_id = sqlite3_column_int64(st, 5);
	r->type = kw_key_type_from_name((const char *)sqlite3_column_text(st, 6));
	r->cert_id = sqlite3_column_int64(st, 8);
	r->version = sqlite3_column_int(st, 9);
	if (r->status == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	KW_GUARD(kwi_col_blob_dup_const(st, 3, &r->cert_der, &r->cert_len));
	KW_GUARD(kwi_col_blob_dup_const(st, 4, &r->chain_der, &r->chain_len));
	return kwi_col_blob_dup(st, 7, &r->ref.data, &r->ref.len);
}

kw_rc kwi_store_ca_current_get(kw_store *s, const char *name, kwi_ca_current_row *out, int *found)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	*found = 0;
	KW_GUARD(kwi_store_prepare(
	    s,
	    "SELECT c.enabled, c.deleted_at IS NOT NULL, v.status, v.cert_der, v.chain_der,"
	    " v.backend_id, v.key_type, v.key_ref, c.id, v.version FROM certs c"
	    " JOIN versions v ON v.cert_id = c.id AND v.version = c.current_version"
	    " WHERE c.name = ?",
	    &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	kw_rc rc = KW_OK;
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*found = 1;
		rc = current_read(st, out);
	} else if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading a CA");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_ca_current_row_clear(out);
		*found = 0;
	}
	return rc;
}

kw_rc kwi_store_ca_id_get(kw_store *s, const char *name, int64_t *id, int *found)
{
	sqlite3_stmt *st = NULL;
	*id = 0;
	*found = 0;
	KW_GUARD(kwi_store_prepare(s, "SELECT id FROM certs WHERE name = ?", &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	*found = r == SQLITE_ROW;
	*id = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "looking up a CA");
}

/* ---- what a certificate's revocation needs ---- */

void kwi_ca_revocable_row_clear(kwi_ca_revocable_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->issuer);
	free((char *)r->serial);
	free((unsigned char *)r->cert_der);
	memset(r, 0, sizeof(*r));
}

kw_rc kwi_store_ca_revocable_get(kw_store *s, const char *name, kwi_ca_revocable_row *out,
                                 int *found)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	*found = 0;
	KW_GUARD(
	    kwi_store_prepare(s,
	                      "SELECT v.issuer, v.serial, v.version, v.cert_der FROM certs c JOIN"
	                      " versions v"
	                      " ON v.cert_id = c.id AND v.version = c.current_version"
	                      " WHERE c.name = ? AND c.deleted_at IS NULL",
	                      &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	kw_rc rc = KW_OK;
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*found = 1;
		out->issuer = kwi_col_dup(st, 0);
		out->serial = kwi_col_dup(st, 1);
		out->version = sqlite3_column_int(st, 2);
		if (out->issuer == NULL ||
		    (out->serial == NULL && sqlite3_column_type(st, 1) != SQLITE_NULL))
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		if (rc == KW_OK)
			rc = kwi_col_blob_dup_const(st, 3, &out->cert_der, &out->cert_len);
	} else if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading a certificate");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_ca_revocable_row_clear(out);
		*found = 0;
	}
	return rc;
}

/* ---- certificates signed from CSRs ---- */

kw_rc kwi_store_ca_issued_add(kw_store *s, const kwi_ca_issued_row *r)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "INSERT INTO ca_issued (ca_cert_id, serial, subject, not_after,"
	                           " thumbprint_sha256, cert_der, created_at)"
	                           " VALUES (?, ?, ?, ?, ?, ?, ?)",
	                           &st));
	sqlite3_bind_int64(st, 1, r->ca_cert_id);
	sqlite3_bind_text(st, 2, r->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)r->not_after);
	sqlite3_bind_text(st, 5, r->thumbprint_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, r->cert_der, (int)r->cert_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)r->created_at);
	int rv = sqlite3_step(st);
	sqlite3_finalize(st);
	return rv == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "recording the signed certificate");
}

kw_rc kwi_store_ca_issued_find(kw_store *s, int64_t ca_id, const char *issuer, const char *serial,
                               int *found)
{
	sqlite3_stmt *st = NULL;
	*found = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT 1 FROM ca_issued WHERE ca_cert_id = ?1 AND serial = ?2"
	                           " UNION ALL SELECT 1 FROM versions WHERE issuer = ?3"
	                           " AND serial = ?2",
	                           &st));
	sqlite3_bind_int64(st, 1, ca_id);
	sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, issuer, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	*found = r == SQLITE_ROW;
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "looking up a serial");
}

/* ---- revocations ---- */

void kwi_ca_revocation_row_clear(kwi_ca_revocation_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->serial);
	memset(r, 0, sizeof(*r));
}

void kwi_ca_revocation_rows_free(kwi_ca_revocation_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		kwi_ca_revocation_row_clear(&rows[i]);
	free(rows);
}

kw_rc kwi_store_ca_revocation_add(kw_store *s, const kwi_ca_revocation_row *r, int *added)
{
	sqlite3_stmt *st = NULL;
	*added = 0;
	KW_GUARD(
	    kwi_store_prepare(s,
	                      "INSERT INTO revocations (ca_cert_id, serial, revoked_at, reason)"
	                      " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
	                      &st));
	sqlite3_bind_int64(st, 1, r->ca_cert_id);
	sqlite3_bind_text(st, 2, r->serial, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->revoked_at);
	sqlite3_bind_int(st, 4, r->reason);
	kw_rc rc = KW_OK;
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "recording the revocation");
	else
		*added = sqlite3_changes(s->db) != 0;
	sqlite3_finalize(st);
	return rc;
}

kw_rc kwi_store_ca_revocation_list(kw_store *s, int64_t ca_id, kwi_ca_revocation_row **rows,
                                   size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r = SQLITE_DONE;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT serial, revoked_at, reason FROM revocations"
	                           " WHERE ca_cert_id = ? ORDER BY revoked_at, serial",
	                           &st));
	sqlite3_bind_int64(st, 1, ca_id);
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			kwi_ca_revocation_row *more = realloc(*rows, cap * sizeof(*more));
			if (more == NULL) {
				rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
				break;
			}
			*rows = more;
		}
		kwi_ca_revocation_row *e = &(*rows)[(*n)++];
		e->ca_cert_id = ca_id;
		e->serial = kwi_col_dup(st, 0);
		e->revoked_at = (time_t)sqlite3_column_int64(st, 1);
		e->reason = sqlite3_column_int(st, 2);
		if (e->serial == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading the revocations");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_ca_revocation_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

/* ---- CRL numbers ---- */

void kwi_ca_crl_row_clear(kwi_ca_crl_row *r)
{
	if (r)
		memset(r, 0, sizeof(*r));
}

kw_rc kwi_store_ca_crl_get(kw_store *s, int64_t ca_id, kwi_ca_crl_row *out, int *found)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	out->ca_cert_id = ca_id;
	*found = 0;
	KW_GUARD(kwi_store_prepare(
	    s, "SELECT crl_number, issued_at FROM ca_crls WHERE ca_cert_id = ?", &st));
	sqlite3_bind_int64(st, 1, ca_id);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*found = 1;
		out->crl_number = (long)sqlite3_column_int64(st, 0);
		out->issued_at = (time_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK
	                                           : KWI_DB_FAIL(s, "reading the CRL number");
}

kw_rc kwi_store_ca_crl_put(kw_store *s, const kwi_ca_crl_row *r)
{
	return KWI_STORE_EXEC(s, "recording the CRL number",
	                      "INSERT OR REPLACE INTO ca_crls (ca_cert_id, crl_number, issued_at)"
	                      " VALUES (?1, ?2, ?3)",
	                      r->ca_cert_id, (int64_t)r->crl_number, (int64_t)r->issued_at);
}
