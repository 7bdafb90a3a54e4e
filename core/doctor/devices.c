/* see keyward/doctor.h: what the devices hold against what the store says */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/doctor_internal.h"
#include "store/store_lifecycle.h"

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
static kw_rc bad_version(kwi_doctor *d, const kwi_device *dev, const kwi_doctor_key_row *r,
                         const char *kind, const char *why)
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
static kw_rc check_version(kwi_doctor *d, kwi_device *dev, const kwi_doctor_key_row *r, int *stop)
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
	kwi_doctor_key_row *v = NULL;
	size_t n = 0;
	KW_GUARD(kwi_store_doctor_key_list(d->s, dev->id, &v, &n));
	kw_rc rc = KW_OK;
	for (size_t i = 0; rc == KW_OK && !*stop && i < n; i++)
		rc = check_version(d, dev, &v[i], stop);
	kwi_doctor_key_rows_free(v, n);
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
	kw_rc rc = kwi_store_doctor_key_used(d->s, &k->ref, &yes);
	if (rc == KW_OK && !yes) {
		kw_rc drc = kwi_device_key_destroy(dev, &k->ref, NULL);
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
	KW_GUARD(kwi_store_doctor_key_used(d->s, &k->ref, &yes));
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

/* The most backends one run checks. */
#define BACKENDS_MAX 64

kw_rc kwi_doctor_devices(kwi_doctor *d)
{
	kwi_doctor_backend_row *rows = NULL;
	size_t n = 0;
	KW_GUARD(kwi_store_doctor_backend_list(d->s, &rows, &n));
	kw_rc rc = KW_OK;
	for (size_t i = 0; rc == KW_OK && i < n && i < BACKENDS_MAX; i++)
		rc = check_backend(d, rows[i].id, rows[i].name);
	kwi_doctor_backend_rows_free(rows, n);
	return rc;
}
