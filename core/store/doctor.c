/* see store/store_lifecycle.h: the queries keyward doctor runs */
#include <stdlib.h>
#include <string.h>

#include "store/sql.h"
#include "store/store_issuers.h"
#include "store/store_lifecycle.h"

/* ---- integrity ---- */

void kwi_doctor_integrity_row_clear(kwi_doctor_integrity_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->problem);
	free((char *)r->fk_table);
	free((char *)r->fk_parent);
	memset(r, 0, sizeof(*r));
}

kw_rc kwi_store_doctor_integrity_check(kw_store *s, kwi_doctor_integrity_row *out)
{
	sqlite3_stmt *st = NULL;
	kw_rc rc = KW_OK;
	memset(out, 0, sizeof(*out));
	KW_GUARD(kwi_store_prepare(s, "PRAGMA integrity_check", &st));
	while (rc == KW_OK && sqlite3_step(st) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		if (t && strcmp(t, "ok") != 0 && out->problem == NULL &&
		    (out->problem = strdup(t)) == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc == KW_OK)
		rc = kwi_store_prepare(s, "PRAGMA foreign_key_check", &st);
	if (rc == KW_OK && sqlite3_step(st) == SQLITE_ROW) {
		out->fk_found = 1;
		out->fk_table = kwi_col_dup(st, 0);
		out->fk_rowid = sqlite3_column_int64(st, 1);
		out->fk_parent = kwi_col_dup(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != KW_OK)
		kwi_doctor_integrity_row_clear(out);
	return rc;
}

/* ---- versions ---- */

void kwi_doctor_version_row_clear(kwi_doctor_version_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->name);
	free((char *)r->why);
	memset(r, 0, sizeof(*r));
}

void kwi_doctor_version_rows_free(kwi_doctor_version_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		kwi_doctor_version_row_clear(&rows[i]);
	free(rows);
}

/* The rows of sql: (cert_id, name, version[, why]); a row SQLite fails on
 * ends the list (see store/store_lifecycle.h). */
static kw_rc versions_read(kw_store *s, const char *sql, kwi_doctor_version_row **rows, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	kw_rc rc = KW_OK;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(s, sql, &st));
	int with_why = sqlite3_column_count(st) > 3;
	while (rc == KW_OK && sqlite3_step(st) == SQLITE_ROW) {
		kwi_doctor_version_row *v = kwi_row_next((void **)rows, *n, &cap, sizeof(**rows));
		if (v == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		(*n)++;
		v->cert_id = sqlite3_column_int64(st, 0);
		v->name = kwi_col_dup(st, 1);
		v->version = sqlite3_column_int(st, 2);
		v->why = with_why ? kwi_col_dup(st, 3) : NULL;
		if (v->name == NULL || (with_why && v->why == NULL))
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_doctor_version_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

kw_rc kwi_store_doctor_current_missing_list(kw_store *s, kwi_doctor_version_row **rows, size_t *n)
{
	return versions_read(s,
	                     "SELECT c.id, c.name, c.current_version FROM certs c WHERE NOT EXISTS"
	                     " (SELECT 1 FROM versions v WHERE v.cert_id = c.id"
	                     " AND v.version = c.current_version) ORDER BY c.name",
	                     rows, n);
}

kw_rc kwi_store_doctor_pending_orphan_list(kw_store *s, kwi_doctor_version_row **rows, size_t *n)
{
	return versions_read(
	    s,
	    "SELECT c.id, c.name, v.version, CASE"
	    " WHEN v.csr_der IS NULL OR length(v.csr_der) = 0 THEN 'it has no CSR'"
	    " WHEN v.version < c.current_version THEN 'a newer version is current'"
	    " ELSE 'a newer version is pending' END"
	    " FROM versions v JOIN certs c ON c.id = v.cert_id WHERE v.status = 'pending'"
	    " AND v.version != c.current_version AND (v.csr_der IS NULL OR length(v.csr_der) = 0"
	    " OR v.version < c.current_version OR EXISTS (SELECT 1 FROM versions w"
	    " WHERE w.cert_id = v.cert_id AND w.status = 'pending' AND w.version > v.version))"
	    " ORDER BY c.name, v.version",
	    rows, n);
}

kw_rc kwi_store_doctor_version_fail(kw_store *s, int64_t cert_id, int version, int *done)
{
	sqlite3_stmt *st = NULL;
	*done = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "UPDATE versions SET status = 'failed' WHERE cert_id = ?1"
	                           " AND version = ?2 AND status != 'failed' AND version !="
	                           " (SELECT current_version FROM certs WHERE id = ?1)",
	                           &st));
	sqlite3_bind_int64(st, 1, cert_id);
	sqlite3_bind_int(st, 2, version);
	kw_rc rc = KW_OK;
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "marking a version failed");
	else
		*done = sqlite3_changes(s->db) == 1;
	sqlite3_finalize(st);
	return rc;
}

/* ---- keys ---- */

void kwi_doctor_key_row_clear(kwi_doctor_key_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->name);
	kw_key_blob_clear(&r->ref);
	free((unsigned char *)r->cert);
	memset(r, 0, sizeof(*r));
}

void kwi_doctor_key_rows_free(kwi_doctor_key_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		kwi_doctor_key_row_clear(&rows[i]);
	free(rows);
}

/* One row of kwi_store_doctor_key_list's query. */
static kw_rc key_read(sqlite3_stmt *st, kwi_doctor_key_row *r)
{
	unsigned char *cert = NULL;
	r->cert_id = sqlite3_column_int64(st, 0);
	r->name = kwi_col_dup(st, 1);
	r->version = sqlite3_column_int(st, 2);
	r->current = r->version == sqlite3_column_int(st, 3);
	r->deleted = sqlite3_column_int(st, 4);
	KW_GUARD(kwi_col_blob_dup(st, 5, &r->ref.data, &r->ref.len));
	KW_GUARD(kwi_col_blob_dup(st, 6, &cert, &r->cert_len));
	r->cert = cert;
	if (r->name == NULL || r->ref.data == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	return KW_OK;
}

kw_rc kwi_store_doctor_key_list(kw_store *s, int64_t backend_id, kwi_doctor_key_row **rows,
                                size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	kw_rc rc = KW_OK;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(
	    s,
	    "SELECT c.id, c.name, v.version, c.current_version, c.deleted_at IS NOT NULL,"
	    " v.key_ref, v.cert_der FROM versions v JOIN certs c ON c.id = v.cert_id"
	    " WHERE v.backend_id = ? AND v.status != 'failed' ORDER BY c.name, v.version",
	    &st));
	sqlite3_bind_int64(st, 1, backend_id);
	while (rc == KW_OK && sqlite3_step(st) == SQLITE_ROW) {
		kwi_doctor_key_row *r = kwi_row_next((void **)rows, *n, &cap, sizeof(**rows));
		if (r == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		(*n)++;
		rc = key_read(st, r);
	}
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_doctor_key_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

kw_rc kwi_store_doctor_key_used(kw_store *s, const kw_key_blob *ref, int *used)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT (SELECT count(*) FROM versions WHERE key_ref = ?1) +"
	                           " (SELECT count(*) FROM issuers WHERE key_ref = ?1)",
	                           &st));
	sqlite3_bind_blob(st, 1, ref->data, (int)ref->len, SQLITE_STATIC);
	kw_rc rc = KW_OK;
	if (sqlite3_step(st) == SQLITE_ROW)
		*used = sqlite3_column_int(st, 0) > 0;
	else
		rc = KWI_DB_FAIL(s, "looking up a key reference");
	sqlite3_finalize(st);
	return rc;
}

/* ---- backends ---- */

void kwi_doctor_backend_row_clear(kwi_doctor_backend_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->name);
	memset(r, 0, sizeof(*r));
}

void kwi_doctor_backend_rows_free(kwi_doctor_backend_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		kwi_doctor_backend_row_clear(&rows[i]);
	free(rows);
}

kw_rc kwi_store_doctor_backend_list(kw_store *s, kwi_doctor_backend_row **rows, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	kw_rc rc = KW_OK;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(s, "SELECT id, name FROM backends ORDER BY name", &st));
	while (rc == KW_OK && sqlite3_step(st) == SQLITE_ROW) {
		kwi_doctor_backend_row *b = kwi_row_next((void **)rows, *n, &cap, sizeof(**rows));
		if (b == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		(*n)++;
		b->id = sqlite3_column_int64(st, 0);
		if ((b->name = kwi_col_dup(st, 1)) == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_doctor_backend_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}
