/* see store/store_certs.h: the backends table */
#include <stdlib.h>
#include <string.h>

#include "store/sql.h"
#include "store/store_certs.h"

kw_rc kwi_store_backend_exists(kw_store *s, const char *name, int *exists)
{
	sqlite3_stmt *st = NULL;
	*exists = 0;
	KW_GUARD(kwi_store_prepare(s, "SELECT 1 FROM backends WHERE name = ?", &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	*exists = r == SQLITE_ROW;
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "looking up a backend");
}

kw_rc kwi_store_backend_get(kw_store *s, const char *name, int64_t id, kwi_backend_row *out,
                            int *found)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	*found = 0;
	KW_GUARD(
	    kwi_store_prepare(s,
	                      name ? "SELECT id, name, kind, config FROM backends WHERE name = ?"
	                           : "SELECT id, name, kind, config FROM backends WHERE id = ?",
	                      &st));
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	kw_rc rc = KW_OK;
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*found = 1;
		out->id = sqlite3_column_int64(st, 0);
		out->name = kwi_col_dup(st, 1);
		out->kind = kwi_col_dup(st, 2);
		out->config = json_loads((const char *)sqlite3_column_text(st, 3), 0, NULL);
		if (out->name == NULL || out->kind == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	} else if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading a backend");
	sqlite3_finalize(st);
	if (rc != KW_OK)
		kwi_named_row_clear(out);
	return rc;
}

kw_rc kwi_store_backend_insert(kw_store *s, const kwi_backend_row *r)
{
	sqlite3_stmt *st = NULL;
	char *text = json_dumps(r->config, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = kwi_store_prepare(s,
	                             "INSERT INTO backends (name, kind, config, created_at)"
	                             " VALUES (?, ?, ?, ?)",
	                             &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, r->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)r->created_at);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = KWI_DB_FAIL(s, "recording the backend");
	}
	sqlite3_finalize(st);
	free(text);
	return rc;
}

kw_rc kwi_store_backend_list(kw_store *s, kwi_backend_row **rows, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT b.id, b.name, b.kind, b.config, b.created_at,"
	                           " (SELECT COUNT(DISTINCT v.cert_id) FROM versions v"
	                           "  WHERE v.backend_id = b.id) FROM backends b ORDER BY b.name",
	                           &st));
	int r = SQLITE_DONE;
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			kwi_backend_row *more = realloc(*rows, cap * sizeof(*more));
			if (more == NULL) {
				rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
				break;
			}
			*rows = more;
		}
		kwi_backend_row *b = &(*rows)[(*n)++];
		memset(b, 0, sizeof(*b));
		const char *cfg = (const char *)sqlite3_column_text(st, 3);
		b->id = sqlite3_column_int64(st, 0);
		b->name = kwi_col_dup(st, 1);
		b->kind = kwi_col_dup(st, 2);
		b->config = cfg ? json_loads(cfg, 0, NULL) : NULL;
		b->created_at = (time_t)sqlite3_column_int64(st, 4);
		b->uses = sqlite3_column_int(st, 5);
		if (b->name == NULL || b->kind == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing backends");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_named_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}
