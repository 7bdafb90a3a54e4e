/* see store/store_named.h: the tables of named things the admin defines on
 * the host (channels, deploy targets): name, kind, config, created_at. The
 * table names come from the callers' code, never from input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sql.h"
#include "store/store_lifecycle.h"

/* head TABLE tail */
static kw_rc prepare(kw_store *s, const char *head, const char *table, const char *tail,
                     sqlite3_stmt **st)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "%s%s%s", head, table, tail);
	return kwi_store_prepare(s, sql, st);
}

kw_rc kwi_store_named_add(kw_store *s, const char *table, const char *what, const kwi_named_row *r,
                          int *exists)
{
	sqlite3_stmt *st = NULL;
	*exists = 0;
	char *text = json_dumps(r->config, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = prepare(s, "INSERT INTO ", table,
	                   " (name, kind, config, created_at) VALUES (?,?,?,?)", &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, r->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)r->created_at);
		int step = sqlite3_step(st);
		if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE)
			*exists = 1;
		else if (step != SQLITE_DONE) {
			char msg[64];
			snprintf(msg, sizeof(msg), "adding a %s", what);
			rc = KWI_DB_FAIL(s, msg);
		}
	}
	sqlite3_finalize(st);
	free(text);
	return rc;
}

kw_rc kwi_store_named_remove(kw_store *s, const char *table, const char *what, const char *name,
                             int *removed)
{
	sqlite3_stmt *st = NULL;
	*removed = 0;
	KW_GUARD(prepare(s, "DELETE FROM ", table, " WHERE name = ?", &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	kw_rc rc = KW_OK;
	if (sqlite3_step(st) != SQLITE_DONE) {
		char msg[64];
		snprintf(msg, sizeof(msg), "removing a %s", what);
		rc = KWI_DB_FAIL(s, msg);
	} else
		*removed = sqlite3_changes(s->db) > 0;
	sqlite3_finalize(st);
	return rc;
}

/* One row of SELECT name, kind, config, created_at. */
static kw_rc row_read(sqlite3_stmt *st, kwi_named_row *r)
{
	const char *cfg = (const char *)sqlite3_column_text(st, 2);
	r->name = kwi_col_dup(st, 0);
	r->kind = kwi_col_dup(st, 1);
	r->config = cfg ? json_loads(cfg, 0, NULL) : NULL;
	r->created_at = (time_t)sqlite3_column_int64(st, 3);
	return r->name && r->kind ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kwi_store_named_list(kw_store *s, const char *table, const char *what, kwi_named_row **rows,
                           size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r = SQLITE_DONE;
	*rows = NULL;
	*n = 0;
	KW_GUARD(prepare(s, "SELECT name, kind, config, created_at FROM ", table, " ORDER BY name",
	                 &st));
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		kwi_named_row *t = kwi_row_next((void **)rows, *n, &cap, sizeof(**rows));
		if (t == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		(*n)++;
		rc = row_read(st, t);
	}
	if (rc == KW_OK && r != SQLITE_DONE) {
		char msg[64];
		snprintf(msg, sizeof(msg), "listing %ss", what);
		rc = KWI_DB_FAIL(s, msg);
	}
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_named_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

kw_rc kwi_store_named_get(kw_store *s, const char *table, const char *what, const char *name,
                          kwi_named_row *out, int *found)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	*found = 0;
	KW_GUARD(prepare(s, "SELECT name, kind, config, created_at FROM ", table, " WHERE name = ?",
	                 &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	kw_rc rc = KW_OK;
	if (r == SQLITE_ROW) {
		*found = 1;
		rc = row_read(st, out);
	} else if (r != SQLITE_DONE) {
		char msg[64];
		snprintf(msg, sizeof(msg), "reading a %s", what);
		rc = KWI_DB_FAIL(s, msg);
	}
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_named_row_clear(out);
		*found = 0;
	}
	return rc;
}
