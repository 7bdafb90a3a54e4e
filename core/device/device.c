/* see internal.h: a backend opened from the configuration kept in the store */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static kw_rc device_open_row(kw_store *s, sqlite3_stmt *st, kwi_device *d)
{
	kw_rc rc = KW_OK;
	json_error_t jerr;
	d->id = sqlite3_column_int64(st, 0);
	d->name = strdup((const char *)sqlite3_column_text(st, 1));
	d->kind = strdup((const char *)sqlite3_column_text(st, 2));
	json_t *cfg = json_loads((const char *)sqlite3_column_text(st, 3), 0, &jerr);
	if (d->name == NULL || d->kind == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (cfg == NULL)
		return KW_FAIL(KW_ERR_STORE,
		               "store %s: backend '%s' has an unreadable configuration", s->dir,
		               d->name);
	d->ops = kw_backend_ops_find(d->kind);
	if (d->ops == NULL || d->ops->open == NULL) {
		rc =
		    KW_FAIL(KW_ERR_UNSUPPORTED,
		            "backend '%s' has kind '%s', which this build lacks", d->name, d->kind);
		goto out;
	}
	kw_backend_config c = {
	    .name = d->name,
	    .tcti = jstr(cfg, "tcti"),
	    .module = jstr(cfg, "module"),
	    .token = jstr(cfg, "token"),
	    .pin_source = jstr(cfg, "pin_source"),
	};
	rc = d->ops->open(&c, &d->ctx);
out:
	json_decref(cfg);
	return rc;
}

static kw_rc device_open_where(kw_store *s, const char *sql, const char *name, int64_t id,
                               kwi_device *out)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	KW_GUARD(kwi_store_prepare(s, sql, &st));
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	int r = sqlite3_step(st);
	kw_rc rc = KW_OK;
	if (r == SQLITE_ROW)
		rc = device_open_row(s, st, out);
	else if (r == SQLITE_DONE && name)
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_BACKEND_LIST, "unknown backend '%s'",
		                  name);
	else if (r == SQLITE_DONE)
		rc = KW_FAIL(KW_ERR_STORE, "store %s references a missing backend (id %lld)",
		             s->dir, (long long)id);
	else
		rc = KWI_DB_FAIL(s, "reading a backend");
	sqlite3_finalize(st);
	if (rc != KW_OK)
		kwi_device_close(out);
	return rc;
}

kw_rc kwi_device_open(kw_store *s, const char *name, kwi_device *out)
{
	return device_open_where(s, "SELECT id, name, kind, config FROM backends WHERE name = ?",
	                         name, 0, out);
}

kw_rc kwi_device_open_id(kw_store *s, int64_t id, kwi_device *out)
{
	return device_open_where(s, "SELECT id, name, kind, config FROM backends WHERE id = ?",
	                         NULL, id, out);
}

void kwi_device_close(kwi_device *d)
{
	if (d == NULL)
		return;
	if (d->ctx && d->ops && d->ops->close)
		d->ops->close(d->ctx);
	free(d->name);
	free(d->kind);
	memset(d, 0, sizeof(*d));
}

kw_rc kwi_signer_pubkey(const kwi_signer *k, EVP_PKEY **out)
{
	unsigned char *der = NULL;
	size_t len = 0;
	*out = NULL;
	KW_GUARD(kwi_device_key_public(k->dev, k->ref, &der, &len));
	const unsigned char *p = der;
	*out = d2i_PUBKEY_ex(NULL, &p, (long)len, NULL, KWI_SOFTWARE_PROPQ);
	free(der);
	if (*out == NULL)
		return KW_FAIL(KW_ERR_BACKEND, "backend '%s' returned an unreadable public key",
		               k->dev->name);
	return KW_OK;
}
