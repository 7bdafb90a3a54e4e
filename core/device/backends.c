/* see keyward/keyward.h: configuring backends */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static kw_rc check_spec(const kw_backend_spec *b)
{
	size_t n = b->name ? strlen(b->name) : 0;
	if (n == 0 || n > 64 || !isalnum((unsigned char)b->name[0]))
		return KW_FAIL(KW_ERR_USAGE,
		               "bad backend name '%s': 1 to 64 characters, starting "
		               "with a letter or digit",
		               b->name ? b->name : "");
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)b->name[i]) && !strchr("._-", b->name[i]))
			return KW_FAIL(KW_ERR_USAGE,
			               "bad backend name '%s': use letters, digits, "
			               "'.', '_' and '-'",
			               b->name);
	const kw_backend_ops *ops = b->kind ? kw_backend_ops_find(b->kind) : NULL;
	if (ops == NULL)
		return KW_FAIL(KW_ERR_USAGE, "unknown backend kind '%s' (use tpm2 or pkcs11)",
		               b->kind ? b->kind : "");
	unsigned caps = kw_backend_caps(ops, NULL);
	if (caps & KW_CAP_CONF_TOKEN) {
		if (b->module == NULL || b->module[0] == '\0')
			return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_MODULE,
			                    "a %s backend needs a PKCS#11 module", b->kind);
		if (b->token == NULL || b->token[0] == '\0')
			return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_TOKEN,
			                    "a %s backend needs a token label or a pkcs11: URI",
			                    b->kind);
		/* no pin source: fine for a token that needs no login (checked by probe) */
		if (b->pin_source)
			KW_GUARD(kw_secret_source_check(b->pin_source));
	} else if (b->module || b->token || b->pin_source)
		return KW_FAIL(KW_ERR_USAGE,
		               "a module, a token and a PIN source are for pkcs11 backends");
	if ((caps & KW_CAP_CONF_TCTI) && b->tcti && b->tcti[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE, "empty TCTI");
	return KW_OK;
}

static json_t *spec_json(const kw_backend_spec *b)
{
	json_t *j = json_object();
	if (b->tcti)
		json_object_set_new(j, "tcti", json_string(b->tcti));
	if (b->module)
		json_object_set_new(j, "module", json_string(b->module));
	if (b->token)
		json_object_set_new(j, "token", json_string(b->token));
	if (b->pin_source)
		json_object_set_new(j, "pin_source", json_string(b->pin_source));
	return j;
}

/* Proves the configuration works: reach the device (and log in). */
static kw_rc probe(const kw_backend_spec *b)
{
	void *ctx = NULL;
	const kw_backend_ops *ops = kw_backend_ops_find(b->kind);
	kw_backend_config c = {b->name, b->tcti, b->module, b->token, b->pin_source, NULL};
	if (ops->open == NULL)
		return KW_FAIL(KW_ERR_UNSUPPORTED, "backend kind '%s' is not available", b->kind);
	KW_GUARD(ops->open(&c, &ctx));
	ops->close(ctx);
	return KW_OK;
}

kw_rc kw_backend_add(kw_store *s, const kw_backend_spec *b)
{
	sqlite3_stmt *st = NULL;
	time_t now;
	kw_error_clear();
	KW_GUARD(check_spec(b));
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_store_prepare(s, "SELECT 1 FROM backends WHERE name = ?", &st));
	sqlite3_bind_text(st, 1, b->name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r == SQLITE_ROW)
		return KW_FAIL(KW_ERR_EXISTS, "backend '%s' already exists", b->name);
	if (r != SQLITE_DONE)
		return KWI_DB_FAIL(s, "looking up a backend");
	KW_GUARD(probe(b));
	json_t *cfg = spec_json(b);
	char *text = cfg ? json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(cfg);
	if (text == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = kwi_store_begin(s);
	if (rc == KW_OK)
		rc = kwi_store_prepare(s,
		                       "INSERT INTO backends (name, kind, config, created_at)"
		                       " VALUES (?, ?, ?, ?)",
		                       &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, b->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, b->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = KWI_DB_FAIL(s, "recording the backend");
	}
	if (rc == KW_OK)
		rc = kwi_event_append(s, "backend.added", NULL, 0,
		                      json_pack("{s:s,s:s}", "backend", b->name, "kind", b->kind));
	if (rc == KW_OK)
		rc = kwi_store_commit(s);
	else
		kwi_store_rollback(s);
	sqlite3_finalize(st);
	free(text);
	return rc;
}

kw_rc kwi_backend_list(kw_store *s, json_t **out)
{
	sqlite3_stmt *st = NULL;
	*out = json_array();
	kw_rc rc = kwi_store_prepare(s,
	                             "SELECT b.name, b.kind, b.config,"
	                             " (SELECT COUNT(DISTINCT v.cert_id) FROM versions v"
	                             "  WHERE v.backend_id = b.id) FROM backends b ORDER BY b.name",
	                             &st);
	int r = SQLITE_DONE;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *j = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
		if (j == NULL)
			j = json_object();
		json_object_set_new(j, "name",
		                    json_string((const char *)sqlite3_column_text(st, 0)));
		json_object_set_new(j, "kind",
		                    json_string((const char *)sqlite3_column_text(st, 1)));
		json_object_set_new(j, "certificates", json_integer(sqlite3_column_int(st, 3)));
		json_array_append_new(*out, j);
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing backends");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* see internal.h */
kw_rc kwi_backend_only(kw_store *s, const char *what, char **out)
{
	json_t *l = NULL;
	*out = NULL;
	KW_GUARD(kwi_backend_list(s, &l));
	size_t n = json_array_size(l);
	const char *name = json_string_value(json_object_get(json_array_get(l, 0), "name"));
	if (n == 1 && name)
		*out = strdup(name);
	json_decref(l);
	if (n == 0)
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_BACKEND_ADD, "the store has no backend");
	if (n > 1)
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_BACKEND,
		                    "the store has %zu backends: say which holds %s", n, what);
	return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kw_backend_list(kw_store *s, json_t **out)
{
	kw_error_clear();
	return kwi_backend_list(s, out);
}
