/* see store/store_issuers.h: ACME issuers and the renewal information kept per version */
#include <stdlib.h>
#include <string.h>

#include "store/sql.h"
#include "store/store_issuers.h"

void kwi_name_list_clear(kwi_name_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

void kwi_acme_issuer_row_clear(kwi_acme_issuer_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->name);
	json_decref(r->config);
	free((char *)r->backend);
	kw_key_blob_clear(&r->ref);
	free((char *)r->account_url);
	memset(r, 0, sizeof(*r));
}

void kwi_acme_issuer_rows_free(kwi_acme_issuer_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		kwi_acme_issuer_row_clear(&rows[i]);
	free(rows);
}

#define ISSUER_COLUMNS                                                                             \
	"i.id, i.name, i.config, i.backend_id, b.name, i.key_type, i.key_ref, i.account_url,"      \
	" i.created_at"

/* The row's columns as they are; 0 when one could not be copied (out of memory). */
static int issuer_read(sqlite3_stmt *st, kwi_acme_issuer_row *r)
{
	const char *cfg = (const char *)sqlite3_column_text(st, 2);
	r->id = sqlite3_column_int64(st, 0);
	r->name = kwi_col_dup(st, 1);
	r->config = cfg ? json_loads(cfg, 0, NULL) : NULL;
	r->backend_id = sqlite3_column_int64(st, 3);
	r->backend = kwi_col_dup(st, 4);
	r->type = kw_key_type_from_name((const char *)sqlite3_column_text(st, 5));
	int ok = kwi_col_blob_dup(st, 6, &r->ref.data, &r->ref.len) == KW_OK && r->ref.data;
	r->account_url = kwi_col_dup(st, 7);
	r->created_at = (time_t)sqlite3_column_int64(st, 8);
	return ok;
}

kw_rc kwi_store_acme_issuer_get(kw_store *s, const char *name, kwi_acme_issuer_row *out, int *found)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	*found = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT " ISSUER_COLUMNS " FROM issuers i LEFT JOIN backends b"
	                           " ON b.id = i.backend_id WHERE i.name = ?1",
	                           &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	kw_rc rc = KW_OK;
	if (r == SQLITE_ROW) {
		*found = 1;
		if (!issuer_read(st, out) || out->name == NULL || out->config == NULL)
			rc = KW_FAIL(KW_ERR_STORE, "issuer '%s' has an unreadable record", name);
	} else if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading an issuer");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_acme_issuer_row_clear(out);
		*found = 0;
	}
	return rc;
}

kw_rc kwi_store_acme_issuer_exists(kw_store *s, const char *name, int *exists)
{
	sqlite3_stmt *st = NULL;
	*exists = 0;
	KW_GUARD(kwi_store_prepare(s, "SELECT 1 FROM issuers WHERE name = ?1", &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	*exists = r == SQLITE_ROW;
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "looking up an issuer");
}

kw_rc kwi_store_acme_issuer_list(kw_store *s, const char *name, kwi_acme_issuer_row **rows,
                                 size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r = SQLITE_DONE;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT " ISSUER_COLUMNS " FROM issuers i JOIN backends b"
	                           " ON b.id = i.backend_id WHERE ?1 IS NULL OR i.name = ?1"
	                           " ORDER BY i.name",
	                           &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			kwi_acme_issuer_row *more = realloc(*rows, cap * sizeof(*more));
			if (more == NULL) {
				rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
				break;
			}
			*rows = more;
		}
		memset(&(*rows)[*n], 0, sizeof(**rows));
		if (!issuer_read(st, &(*rows)[(*n)++]))
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing issuers");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_acme_issuer_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

kw_rc kwi_store_acme_issuer_add(kw_store *s, const kwi_acme_issuer_row *r, time_t now)
{
	sqlite3_stmt *st = NULL;
	char *text = json_dumps(r->config, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = kwi_store_prepare(
	    s,
	    "INSERT INTO issuers (name, kind, config, backend_id, key_type, "
	    "key_ref, account_url, created_at) VALUES (?1,'acme',?2,?3,?4,?5,?6,?7)",
	    &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, r->backend_id);
		sqlite3_bind_text(st, 4, kw_key_type_name(r->type), -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, r->ref.data, (int)r->ref.len, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, r->account_url, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, (sqlite3_int64)now);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = KWI_DB_FAIL(s, "recording the issuer");
	}
	sqlite3_finalize(st);
	free(text);
	return rc;
}

kw_rc kwi_store_acme_issuer_remove(kw_store *s, int64_t id)
{
	return KWI_STORE_EXEC(s, "removing the issuer", "DELETE FROM issuers WHERE id = ?1", id);
}

kw_rc kwi_store_acme_issuer_users(kw_store *s, const char *issuer, kwi_name_list *out)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r = SQLITE_DONE;
	memset(out, 0, sizeof(*out));
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT name FROM certs WHERE "
	                           "json_extract(policy, '$.issuer.name') = ?1 ORDER BY name",
	                           &st));
	sqlite3_bind_text(st, 1, issuer, -1, SQLITE_STATIC);
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (out->n == cap) {
			cap = cap ? 2 * cap : 8;
			char **more = realloc(out->v, cap * sizeof(*more));
			if (more == NULL) {
				rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
				break;
			}
			out->v = more;
		}
		if ((out->v[out->n] = kwi_col_dup(st, 0)) == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		else
			out->n++;
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing an issuer's certificates");
	sqlite3_finalize(st);
	if (rc != KW_OK)
		kwi_name_list_clear(out);
	return rc;
}

/* ---- renewal information ---- */

void kwi_acme_ari_row_clear(kwi_acme_ari_row *r)
{
	if (r)
		memset(r, 0, sizeof(*r));
}

kw_rc kwi_store_acme_ari_get(kw_store *s, int64_t cert_id, int version, kwi_acme_ari_row *out,
                             int *found)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	out->cert_id = cert_id;
	out->version = version;
	*found = 0;
	KW_GUARD(
	    kwi_store_prepare(s,
	                      "SELECT window_start, window_end, explanation_url, next_check FROM "
	                      "acme_renewal_info WHERE cert_id = ?1 AND version = ?2",
	                      &st));
	sqlite3_bind_int64(st, 1, cert_id);
	sqlite3_bind_int(st, 2, version);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*found = 1;
		out->window_start = (time_t)sqlite3_column_int64(st, 0);
		out->window_end = (time_t)sqlite3_column_int64(st, 1);
		const unsigned char *e = sqlite3_column_text(st, 2);
		snprintf(out->explanation_url, sizeof(out->explanation_url), "%s",
		         e ? (const char *)e : "");
		out->next_check = (time_t)sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK
	                                           : KWI_DB_FAIL(s, "reading renewal information");
}

kw_rc kwi_store_acme_ari_put(kw_store *s, const kwi_acme_ari_row *r)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "INSERT OR REPLACE INTO acme_renewal_info (cert_id, version, "
	                           "window_start, window_end, explanation_url, next_check) "
	                           "VALUES (?1,?2,?3,?4,?5,?6)",
	                           &st));
	sqlite3_bind_int64(st, 1, r->cert_id);
	sqlite3_bind_int(st, 2, r->version);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->window_start);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)r->window_end);
	if (r->explanation_url[0])
		sqlite3_bind_text(st, 5, r->explanation_url, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)r->next_check);
	int rv = sqlite3_step(st);
	sqlite3_finalize(st);
	return rv == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "recording renewal information");
}

kw_rc kwi_store_acme_version_cert_get(kw_store *s, int64_t cert_id, int version,
                                      unsigned char **der, size_t *len)
{
	sqlite3_stmt *st = NULL;
	*der = NULL;
	*len = 0;
	KW_GUARD(kwi_store_prepare(
	    s, "SELECT cert_der FROM versions WHERE cert_id = ?1 AND version = ?2", &st));
	sqlite3_bind_int64(st, 1, cert_id);
	sqlite3_bind_int(st, 2, version);
	int r = sqlite3_step(st);
	kw_rc rc = KW_OK;
	if (r == SQLITE_ROW)
		rc = kwi_col_blob_dup(st, 0, der, len);
	else if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading a version's certificate");
	sqlite3_finalize(st);
	return rc;
}
