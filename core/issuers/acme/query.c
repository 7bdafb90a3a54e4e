/* ACME issuers: showing, listing and removing them. */
#include <string.h>

#include <keyward/issuer.h>

#include "issuers/acme/acme_issuer.h"

static json_t *users(kw_store *s, const char *name)
{
	sqlite3_stmt *st = NULL;
	json_t *a = json_array();
	if (a == NULL || kwi_store_prepare(s,
	                                   "SELECT name FROM certs WHERE "
	                                   "json_extract(policy, '$.issuer.name') = 'acme:' || ?1 "
	                                   "ORDER BY name",
	                                   &st) != KW_OK) {
		json_decref(a);
		return NULL;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, json_string((const char *)sqlite3_column_text(st, 0)));
	sqlite3_finalize(st);
	return a;
}

static json_t *row_json(kw_store *s, sqlite3_stmt *st)
{
	char at[32];
	json_t *cfg = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
	const char *name = (const char *)sqlite3_column_text(st, 0);
	kwi_time_format((time_t)sqlite3_column_int64(st, 5), at, sizeof(at));
	json_t *o = json_pack("{s:s, s:s, s:s?, s:{s:s}, s:s?, s:s}", "name", name, "kind", "acme",
	                      "backend", (const char *)sqlite3_column_text(st, 2), "key", "type",
	                      (const char *)sqlite3_column_text(st, 3), "account_url",
	                      (const char *)sqlite3_column_text(st, 4), "created_at", at);
	if (o && cfg)
		json_object_update(o, cfg);
	if (o)
		json_object_set_new(o, "certificates", users(s, name));
	json_decref(cfg);
	return o;
}

static kw_rc query(kw_store *s, const char *name, json_t **out)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT i.name, i.config, b.name, i.key_type, i.account_url, "
	                           "i.created_at FROM issuers i JOIN backends b ON b.id = "
	                           "i.backend_id WHERE ?1 IS NULL OR i.name = ?1 ORDER BY i.name",
	                           &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	json_t *a = json_array();
	int r;
	while (a && (r = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(a, row_json(s, st));
	kw_rc rc = a == NULL          ? KW_FAIL(KW_ERR_NOMEM, "out of memory")
	           : r != SQLITE_DONE ? KWI_DB_FAIL(s, "listing issuers")
	                              : KW_OK;
	sqlite3_finalize(st);
	if (rc != KW_OK)
		json_decref(a);
	else
		*out = a;
	return rc;
}

kw_rc kw_issuer_list(kw_store *s, json_t **out)
{
	kw_error_clear();
	return query(s, NULL, out);
}

kw_rc kwi_issuer_show(kw_store *s, const char *name, json_t **out)
{
	json_t *a = NULL;
	KW_GUARD(query(s, name, &a));
	if (json_array_size(a) == 0) {
		json_decref(a);
		return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_ISSUER_LIST, "no ACME issuer '%s'",
		                    name);
	}
	*out = json_incref(json_array_get(a, 0));
	json_decref(a);
	return KW_OK;
}

static kw_rc forget(kw_store *s, const kwi_issuer *is, json_t *report)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_prepare(s, "DELETE FROM issuers WHERE id = ?1", &st);
	if (rc == KW_OK) {
		sqlite3_bind_int64(st, 1, is->id);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = KWI_DB_FAIL(s, "removing the issuer");
	}
	sqlite3_finalize(st);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "issuer.removed", NULL, 0, json_deep_copy(report));
	if (rc == KW_OK)
		return kwi_store_commit(s);
	kwi_store_rollback(s);
	return rc;
}

/* RFC 8555 7.3.6: the CA is told the account is closed. An unreachable CA
 * does not keep the issuer: the report says it was not told. */
static json_t *deactivate(kw_store *s, kwi_issuer *is)
{
	kw_rc rc = kwi_acme_deactivate(s, is);
	json_t *r = json_pack("{s:s, s:b}", "issuer", is->name, "deactivated", rc == KW_OK);
	if (rc != KW_OK && r)
		json_object_set_new(r, "deactivate_error", json_string(kw_error_message()));
	kw_error_clear();
	return r;
}

kw_rc kw_issuer_remove(kw_store *s, const char *name, json_t **report)
{
	kwi_issuer is;
	kwi_device dev = {0};
	json_t *rep = NULL;
	kw_error_clear();
	KW_GUARD(kwi_issuer_load(s, name, &is));
	json_t *u = users(s, name);
	kw_rc rc = u ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK && json_array_size(u) > 0)
		rc = KW_FAIL(KW_ERR_STATE,
		             "issuer '%s' still issues %zu certificate(s), e.g. '%s' (change their "
		             "policy or purge them first)",
		             name, json_array_size(u), json_string_value(json_array_get(u, 0)));
	if (rc == KW_OK && (rep = deactivate(s, &is)) == NULL)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK)
		rc = kwi_device_open_id(s, is.backend_id, &dev);
	if (rc == KW_OK)
		rc = forget(s, &is, rep);
	/* After the commit: a key left behind is waste, a record without its key
	 * would be a broken issuer. */
	if (rc == KW_OK && kwi_device_key_destroy(&dev, &is.ref) != KW_OK)
		kw_error_clear();
	json_decref(u);
	kwi_device_close(&dev);
	kwi_issuer_clear(&is);
	if (rc == KW_OK && report)
		*report = rep;
	else
		json_decref(rep);
	return rc;
}

kw_rc kw_store_set_http01(kw_store *s, const char *listen, const char *webroot)
{
	json_t *h = NULL;
	KW_GUARD(kwi_http01_settings(listen, webroot, &h));
	json_decref(s->http01);
	s->http01 = h;
	return KW_OK;
}

kw_rc kw_issuer_show(kw_store *s, const char *name, json_t **out)
{
	kw_error_clear();
	return kwi_issuer_show(s, name, out);
}
