/* see keyward/lifecycle.h: versions (list, rollback, prune) and attributes
 * (enabled, soft delete, recover, purge); settings are in store/settings.c */
#include <stdlib.h>
#include <string.h>

#include "lifecycle/lifecycle_internal.h"
#include "lifecycle/notify_internal.h"
#include "policy/model.h"
#include "store/store_certs.h"

enum { LIVE, DELETED, ANY };

typedef struct {
	int64_t id;
	int current;
	int enabled;
	int deleted;
	time_t deleted_at;
	kwi_policy *policy;
} cert_row;

static void cert_row_clear(cert_row *c)
{
	kwi_policy_free(c->policy);
	memset(c, 0, sizeof(*c));
}

/* Finds the certificate called name; which: LIVE, DELETED or ANY. */
static kw_rc cert_find(kw_store *s, const char *name, int which, cert_row *c)
{
	kwi_cert_row row;
	int found = 0;
	memset(c, 0, sizeof(*c));
	if (name == NULL || name[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE, "no certificate name given");
	KW_GUARD(kwi_store_cert_get(s, name, KWI_LOAD_POLICY, &row, &found));
	kw_rc rc = KW_OK;
	if (found) {
		c->id = row.id;
		c->current = row.current_version;
		c->enabled = row.enabled;
		c->deleted = row.deleted;
		c->deleted_at = row.deleted_at;
		c->policy = row.policy;
		row.policy = NULL;
		if (c->policy == NULL)
			rc = KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable policy",
			             name);
	} else
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'",
		                  name);
	kwi_cert_row_clear(&row);
	if (rc == KW_OK && which == LIVE && c->deleted)
		rc = KW_FAIL_HINT_ON(KW_ERR_NOT_FOUND, KW_HINT_CERT_RECOVER, name,
		                     "certificate '%s' is deleted", name);
	else if (rc == KW_OK && which == DELETED && !c->deleted)
		rc = KW_FAIL(KW_ERR_STATE, "certificate '%s' is not deleted", name);
	if (rc != KW_OK)
		cert_row_clear(c);
	return rc;
}

/* Ends the transaction a change began (rc: how the change went) with its
 * event; details is stolen. */
static kw_rc change_end(kw_store *s, kw_rc rc, const char *event, const char *name, int version,
                        json_t *details)
{
	if (rc == KW_OK)
		rc = kwi_event_append(s, event, name, version, details);
	else
		json_decref(details);
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

/* ---- versions ---- */

kw_rc kw_cert_versions(kw_store *s, const char *name, json_t **out)
{
	cert_row c;
	kwi_version_row *rows = NULL;
	size_t n = 0;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(cert_find(s, name, LIVE, &c));
	json_t *list = json_array();
	kw_rc rc = list ? kwi_store_version_list(s, c.id, 0, &rows, &n)
	                : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	/* kw_cert_show gives each version the one shape every reader sees. */
	for (size_t i = 0; rc == KW_OK && i < n; i++) {
		json_t *v = NULL;
		rc = kwi_cert_show(s, name, rows[i].version, &v);
		if (rc == KW_OK && json_array_append_new(list, v) != 0)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	kwi_version_rows_free(rows, n);
	cert_row_clear(&c);
	if (rc != KW_OK) {
		json_decref(list);
		return rc;
	}
	*out = list;
	return KW_OK;
}

typedef struct {
	kwi_version_row row;
	X509 *cert;
} version_row;

static void version_row_clear(version_row *v)
{
	kwi_version_row_clear(&v->row);
	X509_free(v->cert);
	memset(v, 0, sizeof(*v));
}

static kw_rc version_load(kw_store *s, const char *name, int version, version_row *v)
{
	int found = 0;
	memset(v, 0, sizeof(*v));
	KW_GUARD(kwi_store_version_get(s, name, version, KWI_LOAD_DER, NULL, &v->row, &found));
	kw_rc rc = KW_OK;
	if (!found)
		rc = KW_FAIL_HINT_ON(KW_ERR_NOT_FOUND, KW_HINT_CERT_VERSIONS, name,
		                     "certificate '%s' has no version %d", name, version);
	else {
		const unsigned char *p = v->row.cert_der;
		if (v->row.has_cert)
			v->cert = d2i_X509(NULL, &p, (long)v->row.cert_len);
		if (v->row.type == 0 || (v->row.has_cert && v->cert == NULL))
			rc = KW_FAIL(KW_ERR_STORE, "certificate '%s' version %d is unreadable",
			             name, version);
	}
	if (rc != KW_OK)
		version_row_clear(v);
	return rc;
}

/* The version's key must still be on its device and be the certificate's. */
static kw_rc key_present(kwi_device *dev, const char *name, int version, const version_row *v)
{
	EVP_PKEY *pub = NULL;
	kwi_signer k = {dev, &v->row.ref, v->row.type};
	kw_rc rc = kwi_signer_pubkey(&k, &pub);
	if (rc == KW_ERR_NOT_FOUND) {
		char first[512];
		snprintf(first, sizeof(first), "%s", kw_error_message());
		kw_error_clear();
		return KW_FAIL(KW_ERR_STATE,
		               "cannot roll back '%s' to version %d: its key is gone from backend "
		               "'%s' (%s)",
		               name, version, dev->name, first);
	}
	KW_GUARD(rc);
	int same = EVP_PKEY_eq(X509_get0_pubkey(v->cert), pub) == 1;
	EVP_PKEY_free(pub);
	if (!same)
		return KW_FAIL(KW_ERR_STATE,
		               "cannot roll back '%s' to version %d: the key on backend '%s' does "
		               "not match that version's certificate",
		               name, version, dev->name);
	return KW_OK;
}

static kw_rc rollback_check(const char *name, int version, const cert_row *c, const version_row *v,
                            time_t now)
{
	char when[32];
	if (version == c->current)
		return KW_FAIL(KW_ERR_STATE, "version %d of '%s' is already current", version,
		               name);
	if (!v->row.has_cert)
		return KW_FAIL(KW_ERR_STATE,
		               "cannot roll back '%s' to version %d: it is %s and has no "
		               "certificate",
		               name, version, kwi_version_status_name(v->row.status));
	kwi_time_format(v->row.not_after, when, sizeof(when));
	if (v->row.not_after <= now)
		return KW_FAIL(KW_ERR_STATE,
		               "cannot roll back '%s' to version %d: it expired at %s", name,
		               version, when);
	return KW_OK;
}

static kw_rc rollback_record(kw_store *s, const char *name, const cert_row *c, int version,
                             const version_row *v, time_t now)
{
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_version_make_current(s, c->id, version, now);
	if (rc == KW_OK)
		rc = kwi_event_append(
		    s, "cert.rolled_back", name, version,
		    json_pack("{s:i,s:i,s:s}", "previous_version", c->current, "version", version,
		              "thumbprint_sha256",
		              v->row.thumbprint_sha256 ? v->row.thumbprint_sha256 : ""));
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

/* Best effort, after the commit: the token holds the current certificate next
 * to its key for other PKCS#11 software; the store stays the truth. */
static void mirror_cert(kwi_device *dev, const version_row *v)
{
	unsigned char *der = NULL;
	int n = i2d_X509(v->cert, &der);
	if (n > 0 && kwi_device_cert_attach(dev, &v->row.ref, der, (size_t)n) != KW_OK)
		kw_error_clear();
	OPENSSL_free(der);
}

kw_rc kw_cert_rollback(kw_store *s, const char *name, int version)
{
	cert_row c;
	version_row v;
	kwi_device dev = {0};
	time_t now;
	kw_error_clear();
	if (version < 1)
		return KW_FAIL(KW_ERR_USAGE, "bad version %d: versions count from 1", version);
	KW_GUARD(kwi_now(&now));
	KW_GUARD(cert_find(s, name, LIVE, &c));
	kw_rc rc = version_load(s, name, version, &v);
	if (rc != KW_OK) {
		cert_row_clear(&c);
		return rc;
	}
	if ((rc = rollback_check(name, version, &c, &v, now)) == KW_OK &&
	    (rc = kwi_device_open_id(s, v.row.backend_id, &dev)) == KW_OK &&
	    (rc = key_present(&dev, name, version, &v)) == KW_OK &&
	    (rc = rollback_record(s, name, &c, version, &v, now)) == KW_OK)
		mirror_cert(&dev, &v);
	kwi_device_close(&dev);
	version_row_clear(&v);
	cert_row_clear(&c);
	/* the files on disk follow the current version; a failed deploy is
	 * recorded by deploy and returned (KW_ERR_DEPLOY): the rollback stands */
	if (rc == KW_OK)
		rc = kwi_deploy_after_change(s, name, NULL);
	return rc;
}

/* ---- pruning ---- */

typedef struct {
	int version;
	int keep;
	int64_t backend_id;
	kw_key_blob ref;
} prune_row;

typedef struct {
	prune_row *v;
	size_t n;
} prune_set;

static void prune_set_clear(prune_set *p)
{
	for (size_t i = 0; i < p->n; i++)
		kw_key_blob_clear(&p->v[i].ref);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

static int same_key(const prune_row *a, const prune_row *b)
{
	return a->backend_id == b->backend_id && a->ref.len == b->ref.len &&
	       memcmp(a->ref.data, b->ref.data, a->ref.len) == 0;
}

/* Newest first; marks what history_limit keeps: the current version, active
 * and pending ones, and the newest others up to the limit. */
static kw_rc prune_plan(kw_store *s, const cert_row *c, int limit, prune_set *p)
{
	kwi_version_row *rows = NULL;
	size_t n = 0;
	KW_GUARD(kwi_store_version_list(s, c->id, 0, &rows, &n));
	int kept = 1; /* the current version */
	kw_rc rc = KW_OK;
	p->v = n ? calloc(n, sizeof(*p->v)) : NULL;
	if (n && p->v == NULL)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	for (size_t i = n; rc == KW_OK && i-- > 0;) {
		kwi_version_row *v = &rows[i];
		prune_row *row = &p->v[p->n++];
		row->version = v->version;
		row->backend_id = v->backend_id;
		row->ref = v->ref; /* taken */
		v->ref = (kw_key_blob){0};
		if (row->version == c->current || v->status == KWI_VERSION_ACTIVE ||
		    v->status == KWI_VERSION_PENDING)
			row->keep = 1;
		else if (kept < limit) {
			row->keep = 1;
			kept++;
		}
	}
	kwi_version_rows_free(rows, n);
	return rc;
}

/* Ends the keys of pruned versions that no kept version uses. */
static kw_rc prune_keys(kw_store *s, const prune_set *p, kw_keys_gone *gone)
{
	kw_rc rc = KW_OK;
	kwi_device dev = {0};
	kw_key_end end;
	for (size_t i = 0; rc == KW_OK && i < p->n; i++) {
		int used = p->v[i].keep;
		for (size_t j = 0; !used && j < p->n; j++)
			used = (p->v[j].keep || j < i) && j != i && same_key(&p->v[i], &p->v[j]);
		if (used)
			continue;
		if (dev.ctx == NULL || dev.id != p->v[i].backend_id) {
			kwi_device_close(&dev);
			if ((rc = kwi_device_open_id(s, p->v[i].backend_id, &dev)) != KW_OK)
				break;
		}
		rc = kwi_device_key_destroy(&dev, &p->v[i].ref, &end);
		if (rc == KW_ERR_NOT_FOUND) { /* already gone: what we wanted */
			kw_error_clear();
			rc = KW_OK;
		}
		if (rc == KW_OK)
			kwi_keys_gone_add(gone, end);
	}
	kwi_device_close(&dev);
	return rc;
}

static kw_rc prune_record(kw_store *s, const char *name, const cert_row *c, const prune_set *p,
                          int limit, const kw_keys_gone *gone)
{
	json_t *versions = json_array();
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = versions ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	for (size_t i = 0; rc == KW_OK && i < p->n; i++) {
		if (p->v[i].keep)
			continue;
		int removed = 0;
		rc = kwi_store_version_remove(s, c->id, p->v[i].version, 0, &removed);
		json_array_append_new(versions, json_integer(p->v[i].version));
	}
	if (rc == KW_OK)
		rc = kwi_event_append(s, "cert.pruned", name, c->current,
		                      json_pack("{s:O,s:i,s:o*}", "versions", versions,
		                                "history_limit", limit, "keys",
		                                kwi_keys_gone_json(gone)));
	json_decref(versions);
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

kw_rc kwi_versions_prune(kw_store *s, const char *name)
{
	cert_row c;
	prune_set p = {0};
	kw_keys_gone gone = {0};
	KW_GUARD(cert_find(s, name, ANY, &c));
	int limit = c.policy->history_limit;
	kw_rc rc = KW_OK;
	if (limit <= 0) /* no limit: keep every version */
		goto out;
	if ((rc = prune_plan(s, &c, limit, &p)) != KW_OK)
		goto out;
	size_t n_gone = 0;
	for (size_t i = 0; i < p.n; i++)
		n_gone += !p.v[i].keep;
	if (n_gone == 0)
		goto out;
	/* Keys first: if a device fails the store still has every version, and
	 * the next prune finishes the job (a key already gone counts as done). */
	if ((rc = prune_keys(s, &p, &gone)) == KW_OK)
		rc = prune_record(s, name, &c, &p, limit, &gone);
out:
	prune_set_clear(&p);
	cert_row_clear(&c);
	return rc;
}

/* ---- attributes ---- */

kw_rc kw_cert_set_enabled(kw_store *s, const char *name, int enabled)
{
	cert_row c;
	time_t now;
	kw_error_clear();
	KW_GUARD(kwi_now(&now));
	KW_GUARD(cert_find(s, name, LIVE, &c));
	kw_rc rc = KW_OK;
	if (!c.enabled != !enabled && (rc = kwi_store_begin(s)) == KW_OK)
		rc = change_end(s, kwi_store_cert_enabled_set(s, c.id, enabled, now),
		                enabled ? "cert.enabled" : "cert.disabled", name, c.current, NULL);
	cert_row_clear(&c);
	return rc;
}

kw_rc kw_cert_soft_delete(kw_store *s, const char *name)
{
	cert_row c;
	time_t now;
	int days;
	char until[32];
	kw_error_clear();
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_retention_days(s, &days));
	kw_rc rc = cert_find(s, name, ANY, &c);
	if (rc == KW_OK && c.deleted)
		rc = KW_FAIL_HINT_ON(KW_ERR_STATE, KW_HINT_CERT_RECOVER_PURGE, name,
		                     "certificate '%s' is already deleted", name);
	if (rc == KW_OK && (rc = kwi_store_begin(s)) == KW_OK) {
		kwi_time_format(now + (time_t)days * 86400, until, sizeof(until));
		rc = change_end(
		    s, kwi_store_cert_deleted_set(s, c.id, &now, &now), "cert.deleted", name,
		    c.current,
		    json_pack("{s:s,s:i}", "purge_after", until, "retention_days", days));
	}
	cert_row_clear(&c);
	return rc;
}

kw_rc kw_cert_recover(kw_store *s, const char *name)
{
	cert_row c;
	time_t now;
	kw_error_clear();
	KW_GUARD(kwi_now(&now));
	kw_rc rc = cert_find(s, name, DELETED, &c);
	if (rc == KW_ERR_STATE) {
		kw_error_clear();
		rc = KW_FAIL(KW_ERR_STATE, "certificate '%s' is not deleted: nothing to recover",
		             name);
	}
	KW_GUARD(rc);
	if ((rc = kwi_store_begin(s)) == KW_OK)
		rc = change_end(s, kwi_store_cert_deleted_set(s, c.id, NULL, &now),
		                "cert.recovered", name, c.current, NULL);
	cert_row_clear(&c);
	return rc;
}

/* Ends the distinct keys of every version of the certificate, device by
 * device, counting what each device did in gone. */
static kw_rc destroy_all_keys(kw_store *s, int64_t cert_id, kw_keys_gone *gone)
{
	kwi_version_row *keys = NULL;
	size_t n = 0;
	kwi_device dev = {0};
	kw_key_end end;
	KW_GUARD(kwi_store_version_keys(s, cert_id, &keys, &n));
	kw_rc rc = KW_OK;
	for (size_t i = 0; rc == KW_OK && i < n; i++) {
		int64_t bid = keys[i].backend_id;
		if (dev.ctx == NULL || dev.id != bid) {
			kwi_device_close(&dev);
			if ((rc = kwi_device_open_id(s, bid, &dev)) != KW_OK)
				break;
		}
		rc = kwi_device_key_destroy(&dev, &keys[i].ref, &end);
		if (rc == KW_ERR_NOT_FOUND) { /* already gone: what we wanted */
			kw_error_clear();
			rc = KW_OK;
		}
		if (rc == KW_OK)
			kwi_keys_gone_add(gone, end);
	}
	kwi_version_rows_free(keys, n);
	kwi_device_close(&dev);
	return rc;
}

kw_rc kwi_cert_purge(kw_store *s, const char *name, kw_keys_gone *gone)
{
	cert_row c;
	kw_keys_gone done = {0};
	if (gone != NULL)
		*gone = done;
	KW_GUARD(cert_find(s, name, ANY, &c));
	/* A live certificate is hidden first (deleted_at, no event yet), so that a
	 * kill while its keys are being destroyed leaves a deleted certificate
	 * that cert purge finishes, never a live one without its key. Keys next:
	 * if a device is unreachable it is shown again and nothing has changed; a
	 * retry after a partial failure finishes the job (a key already gone
	 * counts as done). */
	time_t now;
	kw_rc rc = c.deleted ? KW_OK : kwi_now(&now);
	if (rc == KW_OK && !c.deleted)
		rc = kwi_store_cert_deleted_set(s, c.id, &now, NULL);
	if (rc == KW_OK && (rc = destroy_all_keys(s, c.id, &done)) != KW_OK && !c.deleted) {
		/* the first error stays the one reported */
		kw_rc shown = kwi_store_cert_deleted_set(s, c.id, NULL, NULL);
		(void)shown;
	}
	if (rc == KW_OK)
		rc = kwi_store_begin(s);
	if (rc == KW_OK) {
		/* versions, renewal state, notices and contacts go with the row */
		int removed = 0;
		rc = kwi_store_cert_remove(s, c.id, &removed);
		if (rc == KW_OK)
			rc = kwi_event_append(s, "cert.purged", name, 0,
			                      json_pack("{s:i,s:b,s:o*}", "current_version",
			                                c.current, "was_deleted", c.deleted, "keys",
			                                kwi_keys_gone_json(&done)));
		rc = rc == KW_OK ? kwi_store_commit(s) : (kwi_store_rollback(s), rc);
	}
	if (rc == KW_OK && gone != NULL)
		*gone = done;
	cert_row_clear(&c);
	return rc;
}

typedef struct {
	int days;
	json_t *list;
} deleted_job;

static kw_rc deleted_one(const kwi_cert_row *c, const kwi_version_row *v, void *arg)
{
	deleted_job *d = arg;
	char deleted[32], purge[32];
	kwi_time_format(c->deleted_at, deleted, sizeof(deleted));
	kwi_time_format(c->deleted_at + (time_t)d->days * 86400, purge, sizeof(purge));
	json_t *j =
	    json_pack("{s:s,s:s,s:s,s:i,s:s?}", "name", c->name, "deleted", deleted, "purge_after",
	              purge, "current_version", c->current_version, "backend", v->backend);
	if (j == NULL || json_array_append_new(d->list, j) != 0)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	return KW_OK;
}

kw_rc kwi_cert_list_deleted(kw_store *s, json_t **out)
{
	deleted_job d = {0};
	*out = NULL;
	KW_GUARD(kwi_retention_days(s, &d.days));
	if ((d.list = json_array()) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = kwi_store_deleted_each(s, 0, deleted_one, &d);
	if (rc != KW_OK) {
		json_decref(d.list);
		return rc;
	}
	*out = d.list;
	return KW_OK;
}

kw_rc kw_cert_list_deleted(kw_store *s, json_t **out)
{
	kw_error_clear();
	return kwi_cert_list_deleted(s, out);
}

kw_rc kw_cert_purge(kw_store *s, const char *name, kw_keys_gone *gone)
{
	kw_error_clear();
	return kwi_cert_purge(s, name, gone);
}
