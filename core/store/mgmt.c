/* see store/store_issuers.h: the management API's clients */
#include <stdlib.h>
#include <string.h>

#include "store/sql.h"
#include "store/store_issuers.h"

void kwi_mgmt_client_row_clear(kwi_mgmt_client_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->name);
	free((char *)r->role);
	free((char *)r->serial);
	free((char *)r->subject);
	free((char *)r->thumbprint_sha256);
	free((char *)r->key_source);
	free((unsigned char *)r->cert_der);
	memset(r, 0, sizeof(*r));
}

void kwi_mgmt_client_rows_free(kwi_mgmt_client_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		kwi_mgmt_client_row_clear(&rows[i]);
	free(rows);
}

/* Every query reads these columns, in this order, and then one more: whether
 * the client's serial is on its CA's revocations (only _find asks: 0 elsewhere). */
#define CLIENT_COLUMNS                                                                             \
	"m.ca_cert_id, m.name, m.role, m.serial, m.subject, m.not_before, m.not_after,"            \
	" m.thumbprint_sha256, m.key_source, m.created_at, m.revoked_at"

static kw_rc client_read(sqlite3_stmt *st, kwi_mgmt_client_row *r)
{
	r->ca_cert_id = sqlite3_column_int64(st, 0);
	r->name = kwi_col_dup(st, 1);
	r->role = kwi_col_dup(st, 2);
	r->serial = kwi_col_dup(st, 3);
	r->subject = kwi_col_dup(st, 4);
	r->not_before = (time_t)sqlite3_column_int64(st, 5);
	r->not_after = (time_t)sqlite3_column_int64(st, 6);
	r->thumbprint_sha256 = kwi_col_dup(st, 7);
	r->key_source = kwi_col_dup(st, 8);
	r->created_at = (time_t)sqlite3_column_int64(st, 9);
	r->revoked = sqlite3_column_type(st, 10) != SQLITE_NULL;
	r->revoked_at = r->revoked ? (time_t)sqlite3_column_int64(st, 10) : 0;
	r->on_crl = sqlite3_column_int(st, 11);
	if (!r->name || !r->role || !r->serial || !r->subject || !r->thumbprint_sha256 ||
	    !r->key_source)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	return KW_OK;
}

/* One row by the text bound to ?1; what names the read in a failure. */
static kw_rc client_one(kw_store *s, const char *sql, const char *key, const char *key2,
                        const char *what, kwi_mgmt_client_row *out, int *found)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	*found = 0;
	KW_GUARD(kwi_store_prepare(s, sql, &st));
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (key2)
		sqlite3_bind_text(st, 2, key2, -1, SQLITE_STATIC);
	kw_rc rc = KW_OK;
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*found = 1;
		rc = client_read(st, out);
	} else if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, what);
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_mgmt_client_row_clear(out);
		*found = 0;
	}
	return rc;
}

kw_rc kwi_store_mgmt_client_get(kw_store *s, const char *name, kwi_mgmt_client_row *out, int *found)
{
	return client_one(s, "SELECT " CLIENT_COLUMNS ", 0 FROM mgmt_clients m WHERE m.name = ?1",
	                  name, NULL, "reading a management client", out, found);
}

kw_rc kwi_store_mgmt_client_find(kw_store *s, const char *ca, const char *sha256,
                                 kwi_mgmt_client_row *out, int *found)
{
	return client_one(s,
	                  "SELECT " CLIENT_COLUMNS ", EXISTS (SELECT 1 FROM revocations r"
	                  " WHERE r.ca_cert_id = m.ca_cert_id AND r.serial = m.serial)"
	                  " FROM mgmt_clients m JOIN certs c ON c.id = m.ca_cert_id"
	                  " WHERE m.thumbprint_sha256 = ?1 AND c.name = ?2"
	                  " AND c.deleted_at IS NULL",
	                  sha256, ca, "looking up a client", out, found);
}

kw_rc kwi_store_mgmt_client_list(kw_store *s, kwi_mgmt_client_row **rows, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r = SQLITE_DONE;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(
	    s, "SELECT " CLIENT_COLUMNS ", 0 FROM mgmt_clients m ORDER BY m.id", &st));
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			kwi_mgmt_client_row *more = realloc(*rows, cap * sizeof(*more));
			if (more == NULL) {
				rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
				break;
			}
			*rows = more;
		}
		memset(&(*rows)[*n], 0, sizeof(**rows));
		rc = client_read(st, &(*rows)[(*n)++]);
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing management clients");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_mgmt_client_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

/* A row by text key exists: SELECT 1 ... WHERE x = ?. */
static kw_rc exists_by(kw_store *s, const char *sql, const char *key, const char *what, int *exists)
{
	sqlite3_stmt *st = NULL;
	*exists = 0;
	KW_GUARD(kwi_store_prepare(s, sql, &st));
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	*exists = r == SQLITE_ROW;
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, what);
}

kw_rc kwi_store_mgmt_client_exists(kw_store *s, const char *name, int *exists)
{
	return exists_by(s, "SELECT 1 FROM mgmt_clients WHERE name = ?", name,
	                 "looking up a client", exists);
}

kw_rc kwi_store_mgmt_cert_exists(kw_store *s, const char *name, int *exists)
{
	return exists_by(s, "SELECT 1 FROM certs WHERE name = ?", name, "looking up a name",
	                 exists);
}

kw_rc kwi_store_mgmt_client_add(kw_store *s, const kwi_mgmt_client_row *r)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(
	    s,
	    "INSERT INTO mgmt_clients (name, role, ca_cert_id, serial, subject, not_before,"
	    " not_after, thumbprint_sha256, key_source, cert_der, created_at)"
	    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    &st));
	sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->role, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, r->ca_cert_id);
	sqlite3_bind_text(st, 4, r->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)r->not_before);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)r->not_after);
	sqlite3_bind_text(st, 8, r->thumbprint_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, r->key_source, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 10, r->cert_der, (int)r->cert_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)r->created_at);
	int rv = sqlite3_step(st);
	sqlite3_finalize(st);
	return rv == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "recording the management client");
}

kw_rc kwi_store_mgmt_client_revoke(kw_store *s, const char *name, time_t now, int reason,
                                   int *revoked)
{
	sqlite3_stmt *st = NULL;
	*revoked = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "UPDATE mgmt_clients SET revoked_at = ? WHERE name = ?"
	                           " AND revoked_at IS NULL",
	                           &st));
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	int changed = sqlite3_changes(s->db);
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return KWI_DB_FAIL(s, "revoking a management client");
	if (changed == 0)
		return KW_OK;
	KW_GUARD(
	    kwi_store_prepare(s,
	                      "INSERT INTO revocations (ca_cert_id, serial, revoked_at, reason)"
	                      " SELECT ca_cert_id, serial, ?, ? FROM mgmt_clients"
	                      " WHERE name = ? ON CONFLICT DO NOTHING",
	                      &st));
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_int(st, 2, reason);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return KWI_DB_FAIL(s, "recording the revocation");
	*revoked = 1;
	return KW_OK;
}
