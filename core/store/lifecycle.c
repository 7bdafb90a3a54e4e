/* see store/store_lifecycle.h: channels, contacts, notices and what a deploy starts from */
#include <stdlib.h>
#include <string.h>

#include "policy/model.h"
#include "store/sql.h"
#include "store/store_issuers.h"
#include "store/store_lifecycle.h"

int kwi_store_in_transaction(kw_store *s)
{
	return !sqlite3_get_autocommit(s->db);
}

/* see store/store_lifecycle.h */
void *kwi_row_next(void **rows, size_t n, size_t *cap, size_t size)
{
	if (n == *cap) {
		size_t more = *cap ? 2 * *cap : 8;
		void *p = realloc(*rows, more * size);
		if (p == NULL)
			return NULL;
		*rows = p;
		*cap = more;
	}
	char *row = (char *)*rows + n * size;
	memset(row, 0, size);
	return row;
}

/* ---- channels ---- */

kw_rc kwi_store_channel_add(kw_store *s, const kwi_channel_row *r, int *exists)
{
	return kwi_store_named_add(s, "channels", "channel", r, exists);
}

kw_rc kwi_store_channel_remove(kw_store *s, const char *name, int *removed)
{
	return kwi_store_named_remove(s, "channels", "channel", name, removed);
}

kw_rc kwi_store_channel_list(kw_store *s, kwi_channel_row **rows, size_t *n)
{
	return kwi_store_named_list(s, "channels", "channel", rows, n);
}

kw_rc kwi_store_channel_any(kw_store *s, int *any)
{
	sqlite3_stmt *st = NULL;
	*any = 0;
	KW_GUARD(kwi_store_prepare(s, "SELECT 1 FROM channels LIMIT 1", &st));
	int step = sqlite3_step(st);
	sqlite3_finalize(st);
	*any = step == SQLITE_ROW;
	return step == SQLITE_ROW || step == SQLITE_DONE ? KW_OK
	                                                 : KWI_DB_FAIL(s, "listing channels");
}

/* ---- contacts ---- */

void kwi_contact_row_clear(kwi_contact_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->cert);
	free((char *)r->email);
	free((char *)r->name);
	memset(r, 0, sizeof(*r));
}

void kwi_contact_rows_free(kwi_contact_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		kwi_contact_row_clear(&rows[i]);
	free(rows);
}

/* The id of the certificate called name, with sql's filter. */
static kw_rc cert_find(kw_store *s, const char *sql, const char *name, int64_t *id, int *found)
{
	sqlite3_stmt *st = NULL;
	*id = 0;
	*found = 0;
	KW_GUARD(kwi_store_prepare(s, sql, &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		*found = 1;
	}
	sqlite3_finalize(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK
	                                           : KWI_DB_FAIL(s, "looking up a certificate");
}

kw_rc kwi_store_contact_cert_find(kw_store *s, const char *name, int64_t *id, int *found)
{
	return cert_find(s, "SELECT id FROM certs WHERE name = ? AND deleted_at IS NULL", name, id,
	                 found);
}

/* cert_id, or NULL for 0 (store-wide). */
static void bind_cert(sqlite3_stmt *st, int col, int64_t id)
{
	if (id)
		sqlite3_bind_int64(st, col, id);
	else
		sqlite3_bind_null(st, col);
}

/* Runs sql with (cert_id, email[, name, created_at]) bound; *changed: rows changed. */
static kw_rc contact_exec(kw_store *s, const char *sql, const kwi_contact_row *r, int *changed)
{
	sqlite3_stmt *st = NULL;
	*changed = 0;
	KW_GUARD(kwi_store_prepare(s, sql, &st));
	bind_cert(st, 1, r->cert_id);
	sqlite3_bind_text(st, 2, r->email, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 4) {
		if (r->name && r->name[0])
			sqlite3_bind_text(st, 3, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)r->created_at);
	}
	int step = sqlite3_step(st);
	sqlite3_finalize(st);
	*changed = sqlite3_changes(s->db);
	return step == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "changing contacts");
}

kw_rc kwi_store_contact_add(kw_store *s, const kwi_contact_row *r, int *added)
{
	int changed = 0;
	/* NULLs are distinct in a UNIQUE constraint: the store-wide duplicate
	 * check is the NOT EXISTS */
	kw_rc rc = contact_exec(s,
	                        "INSERT INTO contacts (cert_id, email, name, created_at)"
	                        " SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM contacts"
	                        " WHERE cert_id IS ?1 AND email = ?2 COLLATE NOCASE)",
	                        r, &changed);
	*added = rc == KW_OK && changed > 0;
	return rc;
}

kw_rc kwi_store_contact_remove(kw_store *s, int64_t cert_id, const char *email, int *removed)
{
	int changed = 0;
	kwi_contact_row r = {.cert_id = cert_id, .email = email};
	kw_rc rc = contact_exec(s,
	                        "DELETE FROM contacts WHERE cert_id IS ?1 AND email = ?2 COLLATE "
	                        "NOCASE",
	                        &r, &changed);
	*removed = rc == KW_OK && changed > 0;
	return rc;
}

/* The rows of st (email, name[, cert]) bound already; what names a failure. */
static kw_rc contacts_read(kw_store *s, sqlite3_stmt *st, const char *what, kwi_contact_row **rows,
                           size_t *n)
{
	size_t cap = 0;
	int r = SQLITE_DONE;
	kw_rc rc = KW_OK;
	int with_cert = sqlite3_column_count(st) > 2;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		kwi_contact_row *c = kwi_row_next((void **)rows, *n, &cap, sizeof(**rows));
		if (c == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		(*n)++;
		c->email = kwi_col_dup(st, 0);
		c->name = kwi_col_dup(st, 1);
		c->cert = with_cert ? kwi_col_dup(st, 2) : NULL;
		if (c->email == NULL ||
		    (c->name == NULL && sqlite3_column_type(st, 1) != SQLITE_NULL) ||
		    (with_cert && c->cert == NULL && sqlite3_column_type(st, 2) != SQLITE_NULL))
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, what);
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_contact_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

kw_rc kwi_store_contact_list(kw_store *s, int64_t cert_id, kwi_contact_row **rows, size_t *n)
{
	sqlite3_stmt *st = NULL;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT ct.email, ct.name, c.name FROM contacts ct LEFT JOIN"
	                           " certs c ON c.id = ct.cert_id WHERE ?1 IS NULL OR ct.cert_id"
	                           " = ?1 OR ct.cert_id IS NULL ORDER BY c.name IS NOT NULL,"
	                           " c.name, ct.email",
	                           &st));
	bind_cert(st, 1, cert_id);
	return contacts_read(s, st, "listing contacts", rows, n);
}

kw_rc kwi_store_contact_recipients(kw_store *s, int64_t cert_id, kwi_contact_row **rows, size_t *n)
{
	sqlite3_stmt *st = NULL;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT email, name FROM contacts WHERE cert_id = ? OR cert_id"
	                           " IS NULL ORDER BY cert_id IS NULL, email COLLATE NOCASE",
	                           &st));
	sqlite3_bind_int64(st, 1, cert_id);
	return contacts_read(s, st, "reading contacts", rows, n);
}

/* ---- notices ---- */

kw_rc kwi_store_notice_cert_find(kw_store *s, const char *name, int64_t *id, int *found)
{
	return cert_find(s, "SELECT id FROM certs WHERE name = ?", name, id, found);
}

kw_rc kwi_store_notice_add(kw_store *s, const kwi_notice_row *r, int *fresh)
{
	sqlite3_stmt *st = NULL;
	*fresh = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "INSERT OR IGNORE INTO notices (cert_id, version, kind,"
	                           " threshold, sent_at) VALUES (?,?,?,?,?)",
	                           &st));
	sqlite3_bind_int64(st, 1, r->cert_id);
	sqlite3_bind_int(st, 2, r->version);
	sqlite3_bind_text(st, 3, r->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->threshold, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)r->sent_at);
	kw_rc rc = KW_OK;
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "recording a notice");
	else
		*fresh = sqlite3_changes(s->db) > 0;
	sqlite3_finalize(st);
	return rc;
}

kw_rc kwi_store_notice_sent(kw_store *s, const kwi_notice_row *r, int *sent)
{
	sqlite3_stmt *st = NULL;
	*sent = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT 1 FROM notices WHERE cert_id = ? AND version = ?"
	                           " AND kind = ? AND threshold = ?",
	                           &st));
	sqlite3_bind_int64(st, 1, r->cert_id);
	sqlite3_bind_int(st, 2, r->version);
	sqlite3_bind_text(st, 3, r->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->threshold, -1, SQLITE_STATIC);
	int step = sqlite3_step(st);
	sqlite3_finalize(st);
	*sent = step == SQLITE_ROW;
	return step == SQLITE_ROW || step == SQLITE_DONE ? KW_OK
	                                                 : KWI_DB_FAIL(s, "looking up a notice");
}

/* ---- deploy ---- */

void kwi_deploy_cert_row_clear(kwi_deploy_cert_row *r)
{
	if (r == NULL)
		return;
	kwi_policy_free(r->policy);
	free((char *)r->sha256);
	memset(r, 0, sizeof(*r));
}

kw_rc kwi_store_deploy_cert_get(kw_store *s, const char *name, kwi_deploy_cert_row *out, int *found)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	*found = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT c.current_version, c.policy, v.thumbprint_sha256"
	                           " FROM certs c LEFT JOIN versions v ON v.cert_id = c.id"
	                           " AND v.version = c.current_version"
	                           " WHERE c.name = ? AND c.deleted_at IS NULL",
	                           &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	kw_rc rc = KW_OK;
	if (r == SQLITE_ROW) {
		const char *policy = (const char *)sqlite3_column_text(st, 1);
		*found = 1;
		out->has_current = sqlite3_column_type(st, 0) != SQLITE_NULL;
		out->version = sqlite3_column_int(st, 0);
		out->policy = kwi_policy_from_text(policy);
		out->sha256 = kwi_col_dup(st, 2);
		if (out->sha256 == NULL && sqlite3_column_type(st, 2) != SQLITE_NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	} else if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading a certificate");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_deploy_cert_row_clear(out);
		*found = 0;
	}
	return rc;
}

/* see store/store_lifecycle.h: the newest deploy event of name since it was
 * made (the events of a purged certificate of the same name do not count) */
kw_rc kwi_store_deploy_last_failed(kw_store *s, const char *name, int version, int *failed)
{
	sqlite3_stmt *st = NULL;
	*failed = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT type, version FROM events WHERE cert = ?1 AND type IN"
	                           " ('deploy.done', 'deploy.failed', 'cert.created',"
	                           " 'cert.imported', 'cert.adopted', 'cert.purged')"
	                           " ORDER BY seq DESC LIMIT 1",
	                           &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(st, 0);
		*failed = type && strcmp(type, "deploy.failed") == 0 &&
		          sqlite3_column_type(st, 1) != SQLITE_NULL &&
		          sqlite3_column_int(st, 1) == version;
	}
	sqlite3_finalize(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK
	                                           : KWI_DB_FAIL(s, "reading the last deploy");
}
