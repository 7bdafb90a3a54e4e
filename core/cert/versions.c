/* see keyward/lifecycle.h: versions (list, rollback, prune) and attributes
 * (enabled, soft delete, recover, purge); settings are in store/settings.c */
#include <stdlib.h>
#include <string.h>

#include "lifecycle/lifecycle_internal.h"
#include "lifecycle/notify_internal.h"

enum { LIVE, DELETED, ANY };

typedef struct {
	int64_t id;
	int current;
	int enabled;
	int deleted;
	time_t deleted_at;
	json_t *policy;
} cert_row;

static void cert_row_clear(cert_row *c)
{
	json_decref(c->policy);
	memset(c, 0, sizeof(*c));
}

/* Finds the certificate called name; which: LIVE, DELETED or ANY. */
static kw_rc cert_find(kw_store *s, const char *name, int which, cert_row *c)
{
	sqlite3_stmt *st = NULL;
	memset(c, 0, sizeof(*c));
	if (name == NULL || name[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE, "no certificate name given");
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT id, current_version, enabled, deleted_at, policy"
	                           " FROM certs WHERE name = ?",
	                           &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	kw_rc rc = KW_OK;
	if (r == SQLITE_ROW) {
		c->id = sqlite3_column_int64(st, 0);
		c->current = sqlite3_column_int(st, 1);
		c->enabled = sqlite3_column_int(st, 2);
		c->deleted = sqlite3_column_type(st, 3) != SQLITE_NULL;
		c->deleted_at = (time_t)sqlite3_column_int64(st, 3);
		c->policy = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);
		if (c->policy == NULL)
			rc = KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable policy",
			             name);
	} else if (r == SQLITE_DONE)
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'",
		                  name);
	else
		rc = KWI_DB_FAIL(s, "reading a certificate");
	sqlite3_finalize(st);
	if (rc == KW_OK && which == LIVE && c->deleted)
		rc = KW_FAIL_HINT_ON(KW_ERR_NOT_FOUND, KW_HINT_CERT_RECOVER, name,
		                     "certificate '%s' is deleted", name);
	else if (rc == KW_OK && which == DELETED && !c->deleted)
		rc = KW_FAIL(KW_ERR_STATE, "certificate '%s' is not deleted", name);
	if (rc != KW_OK)
		cert_row_clear(c);
	return rc;
}

/* Runs one change (the n integers of v bound) and its event in one
 * transaction; details is stolen. */
static kw_rc change(kw_store *s, const char *sql, const int64_t *v, size_t n, const char *event,
                    const char *name, int version, json_t *details)
{
	kw_rc rc = kwi_store_begin(s);
	if (rc != KW_OK) {
		json_decref(details);
		return rc;
	}
	rc = kwi_store_exec_ints(s, event, sql, v, n);
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
	sqlite3_stmt *st = NULL;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(cert_find(s, name, LIVE, &c));
	json_t *list = json_array();
	kw_rc rc = list ? kwi_store_prepare(s,
	                                    "SELECT version FROM versions WHERE cert_id = ?"
	                                    " ORDER BY version",
	                                    &st)
	                : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	int r = SQLITE_DONE, n = 0, *nums = NULL;
	if (rc == KW_OK) {
		sqlite3_bind_int64(st, 1, c.id);
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			int *p = realloc(nums, (size_t)(n + 1) * sizeof(int));
			if (p == NULL)
				break;
			nums = p;
			nums[n++] = sqlite3_column_int(st, 0);
		}
		if (r != SQLITE_DONE)
			rc = r == SQLITE_ROW ? KW_FAIL(KW_ERR_NOMEM, "out of memory")
			                     : KWI_DB_FAIL(s, "listing versions");
		sqlite3_finalize(st);
	}
	/* kw_cert_show gives each version the one shape every reader sees. */
	for (int i = 0; rc == KW_OK && i < n; i++) {
		json_t *v = NULL;
		rc = kwi_cert_show(s, name, nums[i], &v);
		if (rc == KW_OK && json_array_append_new(list, v) != 0)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	free(nums);
	cert_row_clear(&c);
	if (rc != KW_OK) {
		json_decref(list);
		return rc;
	}
	*out = list;
	return KW_OK;
}

typedef struct {
	char status[16];
	int has_cert;
	time_t not_after;
	int64_t backend_id;
	kw_key_type type;
	kw_keyref ref;
	X509 *cert;
	char sha256[65];
} version_row;

static void version_row_clear(version_row *v)
{
	kw_keyref_clear(&v->ref);
	X509_free(v->cert);
	memset(v, 0, sizeof(*v));
}

static kw_rc version_load(kw_store *s, const char *name, int64_t cert_id, int version,
                          version_row *v)
{
	sqlite3_stmt *st = NULL;
	memset(v, 0, sizeof(*v));
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT status, not_after, backend_id, key_type, key_ref,"
	                           " cert_der, thumbprint_sha256 FROM versions"
	                           " WHERE cert_id = ? AND version = ?",
	                           &st));
	sqlite3_bind_int64(st, 1, cert_id);
	sqlite3_bind_int(st, 2, version);
	int r = sqlite3_step(st);
	kw_rc rc = KW_OK;
	if (r == SQLITE_DONE)
		rc = KW_FAIL_HINT_ON(KW_ERR_NOT_FOUND, KW_HINT_CERT_VERSIONS, name,
		                     "certificate '%s' has no version %d", name, version);
	else if (r != SQLITE_ROW)
		rc = KWI_DB_FAIL(s, "reading a version");
	else {
		snprintf(v->status, sizeof(v->status), "%s",
		         (const char *)sqlite3_column_text(st, 0));
		v->has_cert = sqlite3_column_type(st, 5) != SQLITE_NULL;
		v->not_after = (time_t)sqlite3_column_int64(st, 1);
		v->backend_id = sqlite3_column_int64(st, 2);
		v->type = kw_key_type_from_name((const char *)sqlite3_column_text(st, 3));
		v->ref.len = (size_t)sqlite3_column_bytes(st, 4);
		v->ref.data = malloc(v->ref.len ? v->ref.len : 1);
		if (v->ref.data)
			memcpy(v->ref.data, sqlite3_column_blob(st, 4), v->ref.len);
		const unsigned char *p = sqlite3_column_blob(st, 5);
		if (v->has_cert)
			v->cert = d2i_X509(NULL, &p, sqlite3_column_bytes(st, 5));
		snprintf(v->sha256, sizeof(v->sha256), "%s",
		         sqlite3_column_text(st, 6) ? (const char *)sqlite3_column_text(st, 6)
		                                    : "");
		if (v->ref.data == NULL || v->type == 0 || (v->has_cert && v->cert == NULL))
			rc = KW_FAIL(KW_ERR_STORE, "certificate '%s' version %d is unreadable",
			             name, version);
	}
	sqlite3_finalize(st);
	if (rc != KW_OK)
		version_row_clear(v);
	return rc;
}

/* The version's key must still be on its device and be the certificate's. */
static kw_rc key_present(kwi_device *dev, const char *name, int version, const version_row *v)
{
	EVP_PKEY *pub = NULL;
	kwi_signer k = {dev, &v->ref, v->type};
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
	if (!v->has_cert)
		return KW_FAIL(KW_ERR_STATE,
		               "cannot roll back '%s' to version %d: it is %s and has no "
		               "certificate",
		               name, version, v->status);
	kwi_time_format(v->not_after, when, sizeof(when));
	if (v->not_after <= now)
		return KW_FAIL(KW_ERR_STATE,
		               "cannot roll back '%s' to version %d: it expired at %s", name,
		               version, when);
	return KW_OK;
}

static kw_rc rollback_record(kw_store *s, const char *name, const cert_row *c, int version,
                             const version_row *v, time_t now)
{
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = KWI_STORE_EXEC(s, "superseding the current version",
	                          "UPDATE versions SET status = 'superseded' WHERE cert_id = ?1"
	                          " AND status = 'active' AND version <> ?2",
	                          c->id, version);
	if (rc == KW_OK)
		rc = KWI_STORE_EXEC(s, "activating the version",
		                    "UPDATE versions SET status = 'active' WHERE cert_id = ?1"
		                    " AND version = ?2",
		                    c->id, version);
	if (rc == KW_OK)
		rc = KWI_STORE_EXEC(
		    s, "moving the current version",
		    "UPDATE certs SET current_version = ?2, updated_at = ?3 WHERE id = ?1", c->id,
		    version, (int64_t)now);
	if (rc == KW_OK)
		rc =
		    kwi_event_append(s, "cert.rolled_back", name, version,
		                     json_pack("{s:i,s:i,s:s}", "previous_version", c->current,
		                               "version", version, "thumbprint_sha256", v->sha256));
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
	if (n > 0 && kwi_device_cert_store(dev, &v->ref, der, (size_t)n) != KW_OK)
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
	kw_rc rc = version_load(s, name, c.id, version, &v);
	if (rc != KW_OK) {
		cert_row_clear(&c);
		return rc;
	}
	if ((rc = rollback_check(name, version, &c, &v, now)) == KW_OK &&
	    (rc = kwi_device_open_id(s, v.backend_id, &dev)) == KW_OK &&
	    (rc = key_present(&dev, name, version, &v)) == KW_OK &&
	    (rc = rollback_record(s, name, &c, version, &v, now)) == KW_OK)
		mirror_cert(&dev, &v);
	kwi_device_close(&dev);
	version_row_clear(&v);
	cert_row_clear(&c);
	if (rc == KW_OK) {
		/* the files on disk follow the current version; a failing hook is
		 * recorded by deploy, the rollback stands */
		json_t *report = NULL;
		if (kwi_deploy(s, name, &report) != KW_OK)
			kw_error_clear();
		json_decref(report);
	}
	return rc;
}

/* ---- pruning ---- */

typedef struct {
	int version;
	int keep;
	int64_t backend_id;
	kw_keyref ref;
} prune_row;

typedef struct {
	prune_row *v;
	size_t n;
} prune_set;

static void prune_set_clear(prune_set *p)
{
	for (size_t i = 0; i < p->n; i++)
		kw_keyref_clear(&p->v[i].ref);
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
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT version, status, backend_id, key_ref FROM versions"
	                           " WHERE cert_id = ? ORDER BY version DESC",
	                           &st));
	sqlite3_bind_int64(st, 1, c->id);
	int r, kept = 1; /* the current version */
	kw_rc rc = KW_OK;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		prune_row *n = realloc(p->v, (p->n + 1) * sizeof(*n));
		if (n == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		p->v = n;
		prune_row *row = &p->v[p->n++];
		memset(row, 0, sizeof(*row));
		row->version = sqlite3_column_int(st, 0);
		const char *status = (const char *)sqlite3_column_text(st, 1);
		row->backend_id = sqlite3_column_int64(st, 2);
		row->ref.len = (size_t)sqlite3_column_bytes(st, 3);
		row->ref.data = malloc(row->ref.len ? row->ref.len : 1);
		if (row->ref.data == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		memcpy(row->ref.data, sqlite3_column_blob(st, 3), row->ref.len);
		if (row->version == c->current || strcmp(status, "active") == 0 ||
		    strcmp(status, "pending") == 0)
			row->keep = 1;
		else if (kept < limit) {
			row->keep = 1;
			kept++;
		}
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing versions");
	sqlite3_finalize(st);
	return rc;
}

/* Destroys the keys of pruned versions that no kept version uses. */
static kw_rc prune_keys(kw_store *s, const prune_set *p, int *destroyed)
{
	kw_rc rc = KW_OK;
	kwi_device dev = {0};
	*destroyed = 0;
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
		rc = kwi_device_key_destroy(&dev, &p->v[i].ref);
		if (rc == KW_ERR_NOT_FOUND) { /* already gone: what we wanted */
			kw_error_clear();
			rc = KW_OK;
		}
		if (rc == KW_OK)
			(*destroyed)++;
	}
	kwi_device_close(&dev);
	return rc;
}

static kw_rc prune_record(kw_store *s, const char *name, const cert_row *c, const prune_set *p,
                          int limit, int destroyed)
{
	json_t *gone = json_array();
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = gone ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	for (size_t i = 0; rc == KW_OK && i < p->n; i++) {
		if (p->v[i].keep)
			continue;
		rc = KWI_STORE_EXEC(s, "deleting a pruned version",
		                    "DELETE FROM versions WHERE cert_id = ?1 AND version = ?2",
		                    c->id, p->v[i].version);
		if (rc == KW_OK)
			rc = KWI_STORE_EXEC(
			    s, "forgetting a pruned version's notices",
			    "DELETE FROM notices WHERE cert_id = ?1 AND version = ?2", c->id,
			    p->v[i].version);
		json_array_append_new(gone, json_integer(p->v[i].version));
	}
	if (rc == KW_OK)
		rc = kwi_event_append(s, "cert.pruned", name, c->current,
		                      json_pack("{s:O,s:i,s:i}", "versions", gone, "history_limit",
		                                limit, "keys_destroyed", destroyed));
	json_decref(gone);
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
	int destroyed = 0;
	KW_GUARD(cert_find(s, name, ANY, &c));
	json_int_t limit = json_integer_value(json_object_get(c.policy, "history_limit"));
	kw_rc rc = KW_OK;
	if (limit <= 0) /* no limit: keep every version */
		goto out;
	if ((rc = prune_plan(s, &c, (int)limit, &p)) != KW_OK)
		goto out;
	size_t n_gone = 0;
	for (size_t i = 0; i < p.n; i++)
		n_gone += !p.v[i].keep;
	if (n_gone == 0)
		goto out;
	/* Keys first: if a device fails nothing is forgotten, and the next prune
	 * finishes the job (a key already gone counts as destroyed). */
	if ((rc = prune_keys(s, &p, &destroyed)) == KW_OK)
		rc = prune_record(s, name, &c, &p, (int)limit, destroyed);
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
	if (!c.enabled != !enabled)
		rc = change(s, "UPDATE certs SET enabled = ?2, updated_at = ?3 WHERE id = ?1",
		            (const int64_t[]){c.id, enabled ? 1 : 0, (int64_t)now}, 3,
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
	if (rc == KW_OK) {
		kwi_time_format(now + (time_t)days * 86400, until, sizeof(until));
		rc = change(s, "UPDATE certs SET deleted_at = ?2, updated_at = ?2 WHERE id = ?1",
		            (const int64_t[]){c.id, (int64_t)now}, 2, "cert.deleted", name,
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
	rc = change(s, "UPDATE certs SET deleted_at = NULL, updated_at = ?2 WHERE id = ?1",
	            (const int64_t[]){c.id, (int64_t)now}, 2, "cert.recovered", name, c.current,
	            NULL);
	cert_row_clear(&c);
	return rc;
}

/* Destroys the distinct keys of every version of the certificate, device by device. */
static kw_rc destroy_all_keys(kw_store *s, int64_t cert_id)
{
	kw_rc rc = KW_OK;
	sqlite3_stmt *st = NULL;
	kwi_device dev = {0};
	KW_GUARD(
	    kwi_store_prepare(s,
	                      "SELECT DISTINCT backend_id, key_ref FROM versions WHERE cert_id = ?"
	                      " ORDER BY backend_id",
	                      &st));
	sqlite3_bind_int64(st, 1, cert_id);
	int r = SQLITE_DONE;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t bid = sqlite3_column_int64(st, 0);
		kw_keyref ref = {(unsigned char *)sqlite3_column_blob(st, 1),
		                 (size_t)sqlite3_column_bytes(st, 1)};
		if (dev.ctx == NULL || dev.id != bid) {
			kwi_device_close(&dev);
			if ((rc = kwi_device_open_id(s, bid, &dev)) != KW_OK)
				break;
		}
		rc = kwi_device_key_destroy(&dev, &ref);
		if (rc == KW_ERR_NOT_FOUND) { /* already gone: what we wanted */
			kw_error_clear();
			rc = KW_OK;
		}
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing the keys to destroy");
	sqlite3_finalize(st);
	kwi_device_close(&dev);
	return rc;
}

kw_rc kwi_cert_purge(kw_store *s, const char *name)
{
	cert_row c;
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
		rc = KWI_STORE_EXEC(s, "hiding the certificate",
		                    "UPDATE certs SET deleted_at = ?2 WHERE id = ?1", c.id,
		                    (int64_t)now);
	if (rc == KW_OK && (rc = destroy_all_keys(s, c.id)) != KW_OK && !c.deleted) {
		/* the first error stays the one reported */
		kw_rc shown =
		    KWI_STORE_EXEC(s, "showing the certificate again",
		                   "UPDATE certs SET deleted_at = NULL WHERE id = ?1", c.id);
		(void)shown;
	}
	if (rc == KW_OK)
		rc = kwi_store_begin(s);
	if (rc == KW_OK) {
		/* versions, renewal state, notices and contacts go with the row */
		rc = KWI_STORE_EXEC(s, "deleting the certificate",
		                    "DELETE FROM certs WHERE id = ?1", c.id);
		if (rc == KW_OK)
			rc = kwi_event_append(s, "cert.purged", name, 0,
			                      json_pack("{s:i,s:b}", "current_version", c.current,
			                                "was_deleted", c.deleted));
		rc = rc == KW_OK ? kwi_store_commit(s) : (kwi_store_rollback(s), rc);
	}
	cert_row_clear(&c);
	return rc;
}

kw_rc kwi_cert_list_deleted(kw_store *s, json_t **out)
{
	sqlite3_stmt *st = NULL;
	int days;
	*out = NULL;
	KW_GUARD(kwi_retention_days(s, &days));
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT c.name, c.deleted_at, c.current_version, b.name"
	                           " FROM certs c LEFT JOIN versions v ON v.cert_id = c.id"
	                           " AND v.version = c.current_version"
	                           " LEFT JOIN backends b ON b.id = v.backend_id"
	                           " WHERE c.deleted_at IS NOT NULL ORDER BY c.name",
	                           &st));
	json_t *list = json_array();
	kw_rc rc = list ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	int r = SQLITE_DONE;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		char deleted[32], purge[32];
		time_t at = (time_t)sqlite3_column_int64(st, 1);
		kwi_time_format(at, deleted, sizeof(deleted));
		kwi_time_format(at + (time_t)days * 86400, purge, sizeof(purge));
		const char *backend = (const char *)sqlite3_column_text(st, 3);
		json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:s?}", "name",
		                      (const char *)sqlite3_column_text(st, 0), "deleted", deleted,
		                      "purge_after", purge, "current_version",
		                      sqlite3_column_int(st, 2), "backend", backend);
		if (j == NULL || json_array_append_new(list, j) != 0)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing deleted certificates");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		json_decref(list);
		return rc;
	}
	*out = list;
	return KW_OK;
}

kw_rc kw_cert_list_deleted(kw_store *s, json_t **out)
{
	kw_error_clear();
	return kwi_cert_list_deleted(s, out);
}

kw_rc kw_cert_purge(kw_store *s, const char *name)
{
	kw_error_clear();
	return kwi_cert_purge(s, name);
}
