/* see store/store_lifecycle.h: deploy targets (table deploy_targets) */
#include <stdlib.h>
#include <string.h>

#include "policy/model.h"
#include "store/sql.h"
#include "store/store_lifecycle.h"

kw_rc kwi_store_deploy_target_add(kw_store *s, const kwi_deploy_target_row *r, int *exists)
{
	return kwi_store_named_add(s, "deploy_targets", "deploy target", r, exists);
}

kw_rc kwi_store_deploy_target_remove(kw_store *s, const char *name, int *removed)
{
	return kwi_store_named_remove(s, "deploy_targets", "deploy target", name, removed);
}

kw_rc kwi_store_deploy_target_list(kw_store *s, kwi_deploy_target_row **rows, size_t *n)
{
	return kwi_store_named_list(s, "deploy_targets", "deploy target", rows, n);
}

kw_rc kwi_store_deploy_target_get(kw_store *s, const char *name, kwi_deploy_target_row *out,
                                  int *found)
{
	return kwi_store_named_get(s, "deploy_targets", "deploy target", name, out, found);
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
