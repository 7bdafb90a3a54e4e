/* see internal.h: a backend opened from the configuration kept in the store */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/store_certs.h"

static atomic_ulong opens; /* backend connections opened by this process */

/* One backend's connection, kept open for a run (kwi_devices_begin). */
struct kwi_run_device {
	kwi_device dev; /* owned here */
	int users;      /* kwi_device handles borrowing it now */
	int stale;      /* reset while in use: closed when the last user lets go */
};

struct kwi_devices {
	int depth; /* nested begins: the outermost end closes */
	kwi_run_device **v;
	size_t n;
};

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static kw_rc device_open_row(kw_store *s, const kwi_backend_row *b, kwi_device *d)
{
	kw_rc rc = KW_OK;
	const json_t *cfg = b->config;
	d->id = b->id;
	d->name = strdup(b->name);
	d->kind = strdup(b->kind);
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
	if (rc == KW_OK)
		atomic_fetch_add(&opens, 1);
out:
	return rc;
}

/* ---- a run's devices ---- */

static void run_device_free(kwi_run_device *e)
{
	if (e == NULL)
		return;
	kwi_device_close(&e->dev);
	free(e);
}

/* The run's connection to backend id, or NULL (stale ones have left the set). */
static kwi_run_device *run_find(const struct kwi_devices *set, int64_t id)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i]->dev.id == id)
			return set->v[i];
	return NULL;
}

/* *out borrows the run's connection to the backend of row st, opened now
 * when the run has none (a failed open is not kept: the next use tries
 * again and fails clearly again). */
static kw_rc run_borrow(kw_store *s, const kwi_backend_row *b, kwi_device *out)
{
	struct kwi_devices *set = s->devices;
	kwi_run_device *e = run_find(set, b->id);
	if (e == NULL) {
		kwi_run_device **v = realloc(set->v, (set->n + 1) * sizeof(*v));
		if (v == NULL)
			return KW_FAIL(KW_ERR_NOMEM, "out of memory");
		set->v = v;
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return KW_FAIL(KW_ERR_NOMEM, "out of memory");
		kw_rc rc = device_open_row(s, b, &e->dev);
		if (rc != KW_OK) {
			run_device_free(e);
			return rc;
		}
		set->v[set->n++] = e;
	}
	*out = e->dev;
	out->run = e;
	e->users++;
	return KW_OK;
}

/* A borrower lets go; a stale connection goes with its last user. */
static void run_release(kwi_run_device *e)
{
	if (--e->users == 0 && e->stale)
		run_device_free(e);
}

/* Closes the connections nobody uses now, marks the others stale; either
 * way the next open gets a fresh connection. */
static void run_drop(struct kwi_devices *set)
{
	for (size_t i = 0; i < set->n; i++) {
		if (set->v[i]->users == 0)
			run_device_free(set->v[i]);
		else
			set->v[i]->stale = 1;
	}
	set->n = 0;
}

kw_rc kwi_devices_begin(kw_store *s)
{
	if (s->devices == NULL && (s->devices = calloc(1, sizeof(*s->devices))) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	s->devices->depth++;
	return KW_OK;
}

void kwi_devices_end(kw_store *s)
{
	if (s == NULL || s->devices == NULL || --s->devices->depth > 0)
		return;
	run_drop(s->devices);
	free(s->devices->v);
	free(s->devices);
	s->devices = NULL;
}

void kwi_devices_reset(kw_store *s)
{
	if (s->devices)
		run_drop(s->devices);
}

unsigned long kwi_device_opens(void)
{
	return atomic_load(&opens);
}

static kw_rc device_open_where(kw_store *s, const char *name, int64_t id, kwi_device *out)
{
	kwi_backend_row b;
	int found = 0;
	memset(out, 0, sizeof(*out));
	KW_GUARD(kwi_store_backend_get(s, name, id, &b, &found));
	kw_rc rc = KW_OK;
	if (found && s->devices)
		rc = run_borrow(s, &b, out);
	else if (found)
		rc = device_open_row(s, &b, out);
	else if (name)
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_BACKEND_LIST, "unknown backend '%s'",
		                  name);
	else
		rc = KW_FAIL(KW_ERR_STORE, "store %s references a missing backend (id %lld)",
		             s->dir, (long long)id);
	kwi_named_row_clear(&b);
	if (rc != KW_OK)
		kwi_device_close(out);
	else
		out->store = s;
	return rc;
}

kw_rc kwi_device_open(kw_store *s, const char *name, kwi_device *out)
{
	return device_open_where(s, name, 0, out);
}

kw_rc kwi_device_open_id(kw_store *s, int64_t id, kwi_device *out)
{
	return device_open_where(s, NULL, id, out);
}

void kwi_device_close(kwi_device *d)
{
	if (d == NULL)
		return;
	if (d->run) {
		run_release(d->run);
		memset(d, 0, sizeof(*d));
		return;
	}
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
