/* see store/store_access.h: the access lists (table cert_access) */
#include <stdlib.h>

#include "store/sql.h"
#include "store/store_access.h"

kw_rc kwi_store_access_list(kw_store *s, int64_t cert_id, kw_access_entry **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r = SQLITE_DONE;
	*out = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT kind, id FROM cert_access WHERE cert_id = ?"
	                           " ORDER BY kind DESC, id",
	                           &st));
	sqlite3_bind_int64(st, 1, cert_id);
	kw_rc rc = KW_OK;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			kw_access_entry *e = realloc(*out, ncap * sizeof(**out));
			if (e == NULL) {
				rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
				break;
			}
			*out = e;
			cap = ncap;
		}
		const char *k = (const char *)sqlite3_column_text(st, 0);
		(*out)[*n].kind = k && k[0] == 'g' ? KW_ACCESS_GROUP : KW_ACCESS_USER;
		(*out)[(*n)++].id = (uint32_t)sqlite3_column_int64(st, 1);
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading an access list");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

kw_rc kwi_store_access_put(kw_store *s, int64_t cert_id, const kw_access_entry *e, int grant,
                           int *changed)
{
	sqlite3_stmt *st = NULL;
	*changed = 0;
	KW_GUARD(kwi_store_prepare(
	    s,
	    grant ? "INSERT OR IGNORE INTO cert_access (cert_id, kind, id) VALUES (?1, ?2, ?3)"
	          : "DELETE FROM cert_access WHERE cert_id = ?1 AND kind = ?2 AND id = ?3",
	    &st));
	sqlite3_bind_int64(st, 1, cert_id);
	sqlite3_bind_text(st, 2, kw_access_kind_name(e->kind), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->id);
	kw_rc rc = KW_OK;
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "changing an access list");
	else
		*changed = sqlite3_changes(s->db) > 0;
	sqlite3_finalize(st);
	return rc;
}

kw_rc kwi_store_data_version(kw_store *s, int64_t *v)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s, "PRAGMA data_version", &st));
	kw_rc rc = KW_OK;
	if (sqlite3_step(st) == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	else
		rc = KWI_DB_FAIL(s, "reading the store's change counter");
	sqlite3_finalize(st);
	return rc;
}
