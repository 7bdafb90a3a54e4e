/* see keyward/keyward.h: configuring backends */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_certs.h"

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

static kw_rc backend_add(kw_store *s, const kw_backend_spec *b);

/* file:PATH as an absolute path: a relative one would name another file
 * (or none) when keyward runs from another directory. *abs is malloc'd or
 * NULL (nothing to change). */
static kw_rc pin_source_absolute(const char *source, char **abs)
{
	char cwd[4096];
	*abs = NULL;
	if (source == NULL || strncmp(source, "file:", 5) != 0 || source[5] == '/' ||
	    source[5] == '\0')
		return KW_OK;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return KW_FAIL(KW_ERR_IO, "pin source %s: cannot tell the current directory: %s",
		               source, strerror(errno));
	const char *rel = source + 5;
	while (strncmp(rel, "./", 2) == 0)
		rel += 2;
	if (asprintf(abs, "file:%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", rel) < 0) {
		*abs = NULL;
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	return KW_OK;
}

kw_rc kw_backend_add(kw_store *s, const kw_backend_spec *given)
{
	char *pin_abs = NULL;
	kw_error_clear();
	KW_GUARD(pin_source_absolute(given->pin_source, &pin_abs));
	kw_backend_spec spec = *given;
	if (pin_abs)
		spec.pin_source = pin_abs;
	kw_rc rc = backend_add(s, &spec);
	free(pin_abs);
	return rc;
}

static kw_rc backend_add(kw_store *s, const kw_backend_spec *b)
{
	time_t now;
	int exists = 0;
	KW_GUARD(check_spec(b));
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_store_backend_exists(s, b->name, &exists));
	if (exists)
		return KW_FAIL(KW_ERR_EXISTS, "backend '%s' already exists", b->name);
	KW_GUARD(probe(b));
	kwi_backend_row row = {
	    .name = b->name, .kind = b->kind, .config = spec_json(b), .created_at = now};
	if (row.config == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = kwi_store_begin(s);
	if (rc == KW_OK)
		rc = kwi_store_backend_insert(s, &row);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "backend.added", NULL, 0,
		                      json_pack("{s:s,s:s}", "backend", b->name, "kind", b->kind));
	if (rc == KW_OK)
		rc = kwi_store_commit(s);
	else
		kwi_store_rollback(s);
	json_decref(row.config);
	return rc;
}

kw_rc kwi_backend_list(kw_store *s, json_t **out)
{
	kwi_backend_row *rows = NULL;
	size_t n = 0;
	*out = NULL;
	KW_GUARD(kwi_store_backend_list(s, &rows, &n));
	*out = json_array();
	for (size_t i = 0; *out && i < n; i++) {
		json_t *j = rows[i].config ? rows[i].config : json_object();
		rows[i].config = NULL; /* taken */
		json_object_set_new(j, "name", json_string(rows[i].name));
		json_object_set_new(j, "kind", json_string(rows[i].kind));
		json_object_set_new(j, "certificates", json_integer(rows[i].uses));
		json_array_append_new(*out, j);
	}
	kwi_named_rows_free(rows, n);
	return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
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
