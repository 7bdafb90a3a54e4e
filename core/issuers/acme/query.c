/* ACME issuers: showing, listing and removing them. */
#include <stdlib.h>
#include <string.h>

#include <keyward/issuer.h>

#include "issuers/acme/acme_issuer.h"

/* The certificates issuer name issues, by name: a JSON array (NULL on failure). */
static json_t *users(kw_store *s, const char *name)
{
	char issuer[KWI_ISSUER_NAME_MAX + 8];
	kwi_name_list l = {0};
	snprintf(issuer, sizeof(issuer), "acme:%s", name);
	json_t *a = json_array();
	if (a == NULL || kwi_store_acme_issuer_users(s, issuer, &l) != KW_OK) {
		json_decref(a);
		return NULL;
	}
	for (size_t i = 0; i < l.n; i++)
		json_array_append_new(a, json_string(l.v[i]));
	kwi_name_list_clear(&l);
	return a;
}

static json_t *row_json(kw_store *s, const kwi_acme_issuer_row *r)
{
	char at[32];
	kwi_time_format(r->created_at, at, sizeof(at));
	json_t *o =
	    json_pack("{s:s, s:s, s:s?, s:{s:s}, s:s?, s:s}", "name", r->name, "kind", "acme",
	              "backend", r->backend, "key", "type", kw_key_type_name(r->type),
	              "account_url", r->account_url, "created_at", at);
	if (o && r->config)
		json_object_update(o, r->config);
	if (o)
		json_object_set_new(o, "certificates", users(s, r->name));
	return o;
}

static kw_rc query(kw_store *s, const char *name, json_t **out)
{
	kwi_acme_issuer_row *rows = NULL;
	size_t n = 0;
	KW_GUARD(kwi_store_acme_issuer_list(s, name, &rows, &n));
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, row_json(s, &rows[i]));
	kwi_acme_issuer_rows_free(rows, n);
	if (a == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	*out = a;
	return KW_OK;
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

static kw_rc forget(kw_store *s, const kwi_acme_issuer_row *is, json_t *report)
{
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_acme_issuer_remove(s, is->id);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "issuer.removed", NULL, 0, json_deep_copy(report));
	if (rc == KW_OK)
		return kwi_store_commit(s);
	kwi_store_rollback(s);
	return rc;
}

/* RFC 8555 7.3.6: the CA is told the account is closed. An unreachable CA
 * does not keep the issuer: the report says it was not told. */
static json_t *deactivate(kw_store *s, const kwi_acme_issuer_row *is)
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
	kwi_acme_issuer_row is;
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
	 * would be a broken issuer. The report says which it was. */
	kw_key_end end = KW_KEY_FORGOTTEN;
	if (rc == KW_OK && kwi_device_key_destroy(&dev, &is.ref, &end) != KW_OK) {
		json_object_set_new(rep, "account_key", json_string("left"));
		json_object_set_new(rep, "account_key_error", json_string(kw_error_message()));
		kw_error_clear();
	} else if (rc == KW_OK)
		json_object_set_new(rep, "account_key", json_string(kwi_key_end_name(end)));
	json_decref(u);
	kwi_device_close(&dev);
	kwi_acme_issuer_row_clear(&is);
	if (rc == KW_OK && report)
		*report = rep;
	else
		json_decref(rep);
	return rc;
}

kw_rc kw_store_set_http01(kw_store *s, const char *listen, const char *webroot)
{
	KW_GUARD(kwi_http01_check(listen, webroot));
	char *l = listen ? strdup(listen) : NULL, *w = webroot ? strdup(webroot) : NULL;
	if ((listen && l == NULL) || (webroot && w == NULL)) {
		free(l);
		free(w);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	free(s->http01.listen);
	free(s->http01.webroot);
	s->http01.listen = l;
	s->http01.webroot = w;
	return KW_OK;
}

kw_rc kw_issuer_show(kw_store *s, const char *name, json_t **out)
{
	kw_error_clear();
	return kwi_issuer_show(s, name, out);
}
