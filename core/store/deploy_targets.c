/* see store/store_lifecycle.h: deploy targets (table deploy_targets) */
#include <stdlib.h>
#include <string.h>

#include "policy/model.h"
#include "store/sql.h"
#include "store/store_lifecycle.h"

kw_rc kwi_store_deploy_target_add(kw_store *s, const kwi_deploy_target_row *r, int *exists)
{
	sqlite3_stmt *st = NULL;
	*exists = 0;
	char *text = json_dumps(r->config, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = kwi_store_prepare(s,
	                             "INSERT INTO deploy_targets (name, kind, config, created_at)"
	                             " VALUES (?,?,?,?)",
	                             &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, r->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)r->created_at);
		int step = sqlite3_step(st);
		if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE)
			*exists = 1;
		else if (step != SQLITE_DONE)
			rc = KWI_DB_FAIL(s, "adding a deploy target");
	}
	sqlite3_finalize(st);
	free(text);
	return rc;
}

kw_rc kwi_store_deploy_target_remove(kw_store *s, const char *name, int *removed)
{
	sqlite3_stmt *st = NULL;
	*removed = 0;
	KW_GUARD(kwi_store_prepare(s, "DELETE FROM deploy_targets WHERE name = ?", &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	kw_rc rc = KW_OK;
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "removing a deploy target");
	else
		*removed = sqlite3_changes(s->db) > 0;
	sqlite3_finalize(st);
	return rc;
}

/* One row of SELECT name, kind, config, created_at. */
static kw_rc row_read(sqlite3_stmt *st, kwi_deploy_target_row *r)
{
	const char *cfg = (const char *)sqlite3_column_text(st, 2);
	r->name = kwi_col_dup(st, 0);
	r->kind = kwi_col_dup(st, 1);
	r->config = cfg ? json_loads(cfg, 0, NULL) : NULL;
	r->created_at = (time_t)sqlite3_column_int64(st, 3);
	return r->name && r->kind ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kwi_store_deploy_target_list(kw_store *s, kwi_deploy_target_row **rows, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r = SQLITE_DONE;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(
	    s, "SELECT name, kind, config, created_at FROM deploy_targets ORDER BY name", &st));
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		kwi_deploy_target_row *t = kwi_row_next((void **)rows, *n, &cap, sizeof(**rows));
		if (t == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		(*n)++;
		rc = row_read(st, t);
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing deploy targets");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_named_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

kw_rc kwi_store_deploy_target_get(kw_store *s, const char *name, kwi_deploy_target_row *out,
                                  int *found)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	*found = 0;
	KW_GUARD(kwi_store_prepare(
	    s, "SELECT name, kind, config, created_at FROM deploy_targets WHERE name = ?", &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	kw_rc rc = KW_OK;
	if (r == SQLITE_ROW) {
		*found = 1;
		rc = row_read(st, out);
	} else if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading a deploy target");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_named_row_clear(out);
		*found = 0;
	}
	return rc;
}

/* Every certificate's policy is read through the model (the rows carry it
 * parsed): a removal is rare, a scan is fine. */
kw_rc kwi_store_deploy_target_user(kw_store *s, const char *name, char **cert, size_t *users)
{
	sqlite3_stmt *st = NULL;
	int r;
	*cert = NULL;
	*users = 0;
	KW_GUARD(kwi_store_prepare(s, "SELECT name, policy FROM certs ORDER BY name", &st));
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		kwi_policy *p = kwi_policy_from_text((const char *)sqlite3_column_text(st, 1));
		int uses = p && p->deploy.target && strcmp(p->deploy.target, name) == 0;
		kwi_policy_free(p);
		if (!uses)
			continue;
		if ((*users)++ == 0 && (*cert = kwi_col_dup(st, 0)) == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing the certificates' deploy targets");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		free(*cert);
		*cert = NULL;
		*users = 0;
	}
	return rc;
}

/* ---- the migration of inline deploy sections (schema 6 → 7) ---- */

void kwi_legacy_policy_rows_free(kwi_legacy_policy_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++) {
		free((char *)rows[i].name);
		free((char *)rows[i].policy);
	}
	free(rows);
}

kw_rc kwi_store_legacy_policy_list(kw_store *s, kwi_legacy_policy_row **rows, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r = SQLITE_DONE;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(s, "SELECT id, name, policy FROM certs ORDER BY id", &st));
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		kwi_legacy_policy_row *c = kwi_row_next((void **)rows, *n, &cap, sizeof(**rows));
		if (c == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		(*n)++;
		c->id = sqlite3_column_int64(st, 0);
		c->name = kwi_col_dup(st, 1);
		c->policy = kwi_col_dup(st, 2);
		if (c->name == NULL || c->policy == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing the certificates' policies");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_legacy_policy_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

kw_rc kwi_store_legacy_policy_put(kw_store *s, int64_t id, const char *policy)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s, "UPDATE certs SET policy = ? WHERE id = ?", &st));
	sqlite3_bind_text(st, 1, policy, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, id);
	kw_rc rc = sqlite3_step(st) == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "rewriting a policy");
	sqlite3_finalize(st);
	return rc;
}
