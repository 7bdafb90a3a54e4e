/* see store/store_renewal.h: the due list and the renewal state */
#include <stdlib.h>
#include <string.h>

#include "policy/model.h"
#include "store/sql.h"
#include "store/store_lifecycle.h"
#include "store/store_renewal.h"

void kwi_renewal_due_row_clear(kwi_renewal_due_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->name);
	free((char *)r->last_error);
	kwi_policy_free(r->policy);
	memset(r, 0, sizeof(*r));
}

void kwi_renewal_due_rows_free(kwi_renewal_due_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		kwi_renewal_due_row_clear(&rows[i]);
	free(rows);
}

static kw_rc due_read(sqlite3_stmt *st, kwi_renewal_due_row *c)
{
	const char *policy = (const char *)sqlite3_column_text(st, 7);
	c->name = kwi_col_dup(st, 0);
	c->id = sqlite3_column_int64(st, 1);
	c->enabled = sqlite3_column_int(st, 2);
	c->version = sqlite3_column_int(st, 3);
	c->has_cert = sqlite3_column_int(st, 4);
	c->not_before = (time_t)sqlite3_column_int64(st, 5);
	c->not_after = (time_t)sqlite3_column_int64(st, 6);
	c->policy = kwi_policy_from_text(policy);
	c->failures = sqlite3_column_int(st, 8);
	c->next_attempt = (time_t)sqlite3_column_int64(st, 9);
	c->last_error = kwi_col_dup(st, 10);
	c->pending_version = sqlite3_column_int(st, 11);
	if (c->name == NULL || (sqlite3_column_type(st, 10) != SQLITE_NULL && !c->last_error))
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	return KW_OK;
}

kw_rc kwi_store_renewal_due_list(kw_store *s, kwi_renewal_due_row **rows, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r = SQLITE_DONE;
	*rows = NULL;
	*n = 0;
	/* validity only: the facts columns, never the certificate's DER */
	KW_GUARD(kwi_store_prepare(
	    s,
	    "SELECT c.name, c.id, c.enabled, c.current_version, v.cert_der IS NOT NULL,"
	    " v.not_before, v.not_after, c.policy, COALESCE(r.failures, 0),"
	    " COALESCE(r.next_attempt, 0), r.last_error, (SELECT MAX(p.version) FROM versions p"
	    " WHERE p.cert_id = c.id AND p.status = 'pending') FROM certs c"
	    " JOIN versions v ON v.cert_id = c.id AND v.version = c.current_version"
	    " LEFT JOIN renewal_state r ON r.cert_id = c.id"
	    " WHERE c.deleted_at IS NULL ORDER BY c.name",
	    &st));
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		kwi_renewal_due_row *c = kwi_row_next((void **)rows, *n, &cap, sizeof(**rows));
		if (c == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		(*n)++;
		rc = due_read(st, c);
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing certificates");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_renewal_due_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

kw_rc kwi_store_renewal_succeeded(kw_store *s, const char *name, time_t now)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(
	    s,
	    "INSERT INTO renewal_state (cert_id, failures, next_attempt, last_attempt,"
	    " last_success, last_error) SELECT id, 0, NULL, ?2, ?2, NULL FROM certs"
	    " WHERE name = ?1 ON CONFLICT (cert_id) DO UPDATE SET failures = 0,"
	    " next_attempt = NULL, last_attempt = ?2, last_success = ?2, last_error = NULL",
	    &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "recording the renewal");
}

kw_rc kwi_store_renewal_failed(kw_store *s, int64_t cert_id, const char *error, time_t now,
                               time_t next)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(
	    s,
	    "INSERT INTO renewal_state (cert_id, failures, next_attempt, last_attempt,"
	    " last_error) VALUES (?1, 1, ?2, ?3, ?4) ON CONFLICT (cert_id) DO UPDATE SET"
	    " failures = failures + 1, next_attempt = ?2, last_attempt = ?3, last_error = ?4",
	    &st));
	sqlite3_bind_int64(st, 1, cert_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)next);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
	sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "recording a failed renewal");
}
