/* see keyward/doctor.h: what the devices hold against what the store says */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/doctor_internal.h"

/* One version whose key is checked on its device. */
typedef struct {
	int64_t cert_id;
	char *name;
	int version, current, deleted;
	kw_keyref ref;
	unsigned char *cert;
	size_t cert_len;
} vrow;

static void vrows_free(vrow *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].name);
		kw_keyref_clear(&v[i].ref);
		free(v[i].cert);
	}
	free(v);
}

static unsigned char *blob_dup(sqlite3_stmt *st, int col, size_t *len)
{
	*len = (size_t)sqlite3_column_bytes(st, col);
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return NULL;
	unsigned char *p = malloc(*len ? *len : 1);
	if (p && *len)
		memcpy(p, sqlite3_column_blob(st, col), *len);
	return p;
}

/* The versions on this backend that should still have their key. */
static kw_rc vrows_load(kw_store *s, int64_t backend_id, vrow **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	vrow *v = NULL;
	size_t cnt = 0;
	kw_rc rc = KW_OK;
	*out = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(
	    s,
	    "SELECT c.id, c.name, v.version, c.current_version, c.deleted_at IS NOT NULL,"
	    " v.key_ref, v.cert_der FROM versions v JOIN certs c ON c.id = v.cert_id"
	    " WHERE v.backend_id = ? AND v.status != 'failed' ORDER BY c.name, v.version",
	    &st));
	sqlite3_bind_int64(st, 1, backend_id);
	while (rc == KW_OK && sqlite3_step(st) == SQLITE_ROW) {
		vrow *g = realloc(v, (cnt + 1) * sizeof(*v));
		if (g == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		v = g;
		vrow *r = &v[cnt++];
		memset(r, 0, sizeof(*r));
		r->cert_id = sqlite3_column_int64(st, 0);
		r->name = strdup((const char *)sqlite3_column_text(st, 1));
		r->version = sqlite3_column_int(st, 2);
		r->current = r->version == sqlite3_column_int(st, 3);
		r->deleted = sqlite3_column_int(st, 4);
		r->ref.data = blob_dup(st, 5, &r->ref.len);
		r->cert = blob_dup(st, 6, &r->cert_len);
		if (r->name == NULL || r->ref.data == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		vrows_free(v, cnt);
		return rc;
	}
	*out = v;
	*n = cnt;
	return KW_OK;
}

/* 1 when the device's public key (SPKI DER) is the certificate's. */
static int same_key(const unsigned char *spki, size_t len, const unsigned char *cert, size_t clen)
{
	const unsigned char *a = spki, *b = cert;
	EVP_PKEY *dev = d2i_PUBKEY_ex(NULL, &a, (long)len, NULL, KWI_SOFTWARE_PROPQ);
	X509 *x = d2i_X509(NULL, &b, (long)clen);
	int same = dev && x && EVP_PKEY_eq(dev, X509_get0_pubkey(x)) == 1;
	EVP_PKEY_free(dev);
	X509_free(x);
	return same;
}

/* A version whose key is gone or wrong: a current one is only reported. */
static kw_rc bad_version(kwi_doctor *d, const kwi_device *dev, const vrow *r, const char *kind,
                         const char *why)
{
	char action[256];
	int done = 0;
	if (!r->current && d->repair)
		KW_GUARD(kwi_doctor_fail_version(d, r->cert_id, r->name, r->version, kind, &done));
	if (done)
		snprintf(action, sizeof(action), "marked failed");
	else if (r->current && r->deleted)
		snprintf(action, sizeof(action),
		         "the certificate is deleted: finish with keyward cert purge %s", r->name);
	else if (r->current)
		snprintf(
		    action, sizeof(action),
		    "the current version cannot sign: renew with a new key (keyward cert renew "
		    "%s --new-key) or roll back (keyward cert rollback %s N)",
		    r->name, r->name);
	else
		snprintf(action, sizeof(action), "keyward doctor --repair marks it failed");
	json_t *where = json_pack("{s:s,s:s,s:i,s:b}", "backend", dev->name, "cert", r->name,
	                          "version", r->version, "current", r->current);
	return kwi_doctor_problem(d, kind, done, where, action,
	                          "certificate '%s' version %d%s on backend '%s': %s", r->name,
	                          r->version, r->current ? " (current)" : "", dev->name, why);
}

/* *stop = 1 when the device itself failed (the other keys are not checked). */
static kw_rc check_version(kwi_doctor *d, kwi_device *dev, const vrow *r, int *stop)
{
	unsigned char *der = NULL;
	size_t len = 0;
	kw_rc rc = kwi_device_key_public(dev, &r->ref, &der, &len);
	if (rc == KW_OK) {
		int same = r->cert == NULL || same_key(der, len, r->cert, r->cert_len);
		free(der);
		return same ? KW_OK
		            : bad_version(d, dev, r, "key_mismatch",
		                          "the device's key is not the certificate's key");
	}
	char msg[560], why[600];
	snprintf(msg, sizeof(msg), "%s", kw_error_message());
	kw_error_clear();
	snprintf(why, sizeof(why), "the key is missing from the device (%s)", msg);
	if (rc == KW_ERR_NOT_FOUND || rc == KW_ERR_PARSE || rc == KW_ERR_USAGE)
		return bad_version(d, dev, r, "key_missing", why);
	if (rc == KW_ERR_NOMEM)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	*stop = 1;
	return kwi_doctor_problem(
	    d, "backend_unreachable", 0, json_pack("{s:s}", "backend", dev->name),
	    "bring the device back and run keyward doctor again",
	    "backend '%s' failed while its keys were checked: %s", dev->name, msg);
}

static kw_rc check_versions(kwi_doctor *d, kwi_device *dev, int *stop)
{
	vrow *v = NULL;
	size_t n = 0;
	KW_GUARD(vrows_load(d->s, dev->id, &v, &n));
	kw_rc rc = KW_OK;
	for (size_t i = 0; rc == KW_OK && !*stop && i < n; i++)
		rc = check_version(d, dev, &v[i], stop);
	vrows_free(v, n);
	return rc;
}

/* Whether any version or issuer (of any backend) references the key. */
static kw_rc referenced(kw_store *s, const kw_keyref *ref, int *yes)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT (SELECT count(*) FROM versions WHERE key_ref = ?1) +"
	                           " (SELECT count(*) FROM issuers WHERE key_ref = ?1)",
	                           &st));
	sqlite3_bind_blob(st, 1, ref->data, (int)ref->len, SQLITE_STATIC);
	kw_rc rc = KW_OK;
	if (sqlite3_step(st) == SQLITE_ROW)
		*yes = sqlite3_column_int(st, 0) > 0;
	else
		rc = KWI_DB_FAIL(s, "looking up a key reference");
	sqlite3_finalize(st);
	return rc;
}

/* Destroys an orphan under the store's write lock, so that a version that
 * references it cannot be committed in between. *done: destroyed (or gone). */
static kw_rc orphan_destroy(kwi_doctor *d, kwi_device *dev, const kw_device_key *k, const char *hex,
                            int *done, char *why, size_t why_len)
{
	int yes = 0;
	*done = 0;
	KW_GUARD(kwi_store_begin(d->s));
	kw_rc rc = referenced(d->s, &k->ref, &yes);
	if (rc == KW_OK && !yes) {
		kw_rc drc = kwi_device_key_destroy(dev, &k->ref);
		if (drc == KW_OK || drc == KW_ERR_NOT_FOUND) {
			kw_error_clear();
			*done = 1;
			rc = kwi_event_append(d->s, "doctor.key_destroyed", NULL, 0,
			                      json_pack("{s:s,s:s,s:s}", "backend", dev->name,
			                                "key_id", hex, "label", k->label));
		} else {
			snprintf(why, why_len, "destroying it failed: %s", kw_error_message());
			kw_error_clear();
		}
	}
	if (rc != KW_OK) {
		kwi_store_rollback(d->s);
		return rc;
	}
	return kwi_store_commit(d->s);
}

static kw_rc check_orphan(kwi_doctor *d, kwi_device *dev, const kw_device_key *k)
{
	char hex[2 * 64 + 1] = "", why[600] = "keyward doctor --repair destroys it";
	int yes = 0, done = 0;
	KW_GUARD(referenced(d->s, &k->ref, &yes));
	if (yes)
		return KW_OK;
	if (k->ref.len <= 64)
		kwi_hex(k->ref.data, k->ref.len, hex);
	if (d->repair)
		KW_GUARD(orphan_destroy(d, dev, k, hex, &done, why, sizeof(why)));
	json_t *where =
	    json_pack("{s:s,s:s,s:s}", "backend", dev->name, "key_id", hex, "label", k->label);
	return kwi_doctor_problem(d, "orphan_key", done, where, done ? "destroyed" : why,
	                          "backend '%s' holds key '%s' (CKA_ID %s) that no version of "
	                          "the store references (left by an interrupted command)",
	                          dev->name, k->label, hex);
}

static kw_rc check_orphans(kwi_doctor *d, kwi_device *dev)
{
	kw_device_key *keys = NULL;
	size_t n = 0;
	kw_rc rc = kwi_device_key_list(dev, &keys, &n);
	if (rc != KW_OK && rc != KW_ERR_NOMEM) {
		char why[600];
		snprintf(why, sizeof(why), "%s", kw_error_message());
		kw_error_clear();
		return kwi_doctor_problem(
		    d, "backend_unreachable", 0, json_pack("{s:s}", "backend", dev->name),
		    "bring the device back and run keyward doctor again",
		    "backend '%s' could not list its keys: %s", dev->name, why);
	}
	for (size_t i = 0; rc == KW_OK && i < n; i++)
		rc = check_orphan(d, dev, &keys[i]);
	kw_device_keys_free(keys, n);
	return rc;
}

static kw_rc check_backend(kwi_doctor *d, int64_t id, const char *name)
{
	kwi_device dev = {0};
	int stop = 0;
	kw_rc rc = kwi_device_open_id(d->s, id, &dev);
	if (rc != KW_OK) {
		char why[600];
		snprintf(why, sizeof(why), "%s", kw_error_message());
		kw_error_clear();
		if (rc == KW_ERR_NOMEM || rc == KW_ERR_STORE)
			return KW_FAIL(rc, "%s", why);
		return kwi_doctor_problem(
		    d, "backend_unreachable", 0, json_pack("{s:s}", "backend", name),
		    "bring the device back (or fix the PIN source) and run keyward doctor again",
		    "backend '%s' cannot be opened, its keys were not checked: %s", name, why);
	}
	rc = check_versions(d, &dev, &stop);
	if (rc == KW_OK && !stop)
		rc = check_orphans(d, &dev);
	kwi_device_close(&dev);
	return rc;
}

kw_rc kwi_doctor_devices(kwi_doctor *d)
{
	sqlite3_stmt *st = NULL;
	int64_t ids[64];
	char names[64][80];
	int n = 0;
	KW_GUARD(kwi_store_prepare(d->s, "SELECT id, name FROM backends ORDER BY name", &st));
	while (n < 64 && sqlite3_step(st) == SQLITE_ROW) {
		ids[n] = sqlite3_column_int64(st, 0);
		snprintf(names[n], sizeof(names[n]), "%s", sqlite3_column_text(st, 1));
		n++;
	}
	sqlite3_finalize(st);
	kw_rc rc = KW_OK;
	for (int i = 0; rc == KW_OK && i < n; i++)
		rc = check_backend(d, ids[i], names[i]);
	return rc;
}
