/* see cert/issue.h and keyward/keyward.h: versions waiting for a certificate from an external CA
 * (issuer "unknown"): finding them, telling the contacts, cancelling them */
#include <stdlib.h>
#include <string.h>

#include "lifecycle/lifecycle_internal.h"
#include "cert/issue.h"

void kwi_pending_clear(kwi_pending *p)
{
	kw_key_blob_clear(&p->ref);
	free(p->csr_der);
	memset(p, 0, sizeof(*p));
}

/* The pending version's key and CSR, taken from v. */
static kw_rc pending_take(const char *name, kwi_version_row *v, kwi_pending *p)
{
	p->backend_id = v->backend_id;
	p->type = v->type;
	p->ref = v->ref;
	p->csr_der = (unsigned char *)v->csr_der;
	p->csr_len = v->csr_len;
	v->ref = (kw_key_blob){0};
	v->csr_der = NULL;
	if (p->csr_der == NULL && (p->csr_der = malloc(1)) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (p->type == 0 || p->csr_len == 0)
		return KW_FAIL(KW_ERR_STORE, "certificate '%s' version %d is unreadable", name,
		               p->version);
	return KW_OK;
}

kw_rc kwi_pending_load(kw_store *s, const char *name, kwi_pending *p)
{
	kwi_cert_row c;
	kwi_version_row v = {0};
	int found = 0;
	memset(p, 0, sizeof(*p));
	kw_rc rc = kwi_cert_live_get(s, name, 0, &c);
	p->cert_id = c.id;
	p->current = c.current_version;
	/* the version read next is still pending unless it changed meanwhile:
	 * then there is nothing pending to act on */
	if (rc == KW_OK && c.pending_version &&
	    (rc = kwi_store_version_get(s, name, c.pending_version, KWI_LOAD_DER, NULL, &v,
	                                &found)) == KW_OK &&
	    found && v.status == KWI_VERSION_PENDING) {
		p->version = v.version;
		rc = pending_take(name, &v, p);
	}
	kwi_version_row_clear(&v);
	kwi_cert_row_clear(&c);
	if (rc != KW_OK)
		kwi_pending_clear(p);
	return rc;
}

kw_rc kwi_pending_refuse(kw_store *s, const char *name)
{
	kwi_pending p;
	KW_GUARD(kwi_pending_load(s, name, &p));
	int version = p.version;
	kwi_pending_clear(&p);
	if (version == 0)
		return KW_OK;
	return KW_FAIL_HINT_ON(KW_ERR_STATE, KW_HINT_PENDING_RESOLVE, name,
	                       "certificate '%s' has version %d pending, its CSR waiting for a "
	                       "certificate: merge it or cancel it first",
	                       name, version);
}

kw_rc kwi_pending_notify(kw_store *s, const char *name, int version)
{
	char threshold[16], todo[512];
	json_t *cur = NULL;
	snprintf(threshold, sizeof(threshold), "%d", version);
	snprintf(todo, sizeof(todo),
	         "get the CSR signed (keyward cert csr %s), then bring the certificate back "
	         "(keyward cert merge %s FILE)",
	         name, name);
	if (kwi_cert_show(s, name, 0, &cur) != KW_OK)
		kw_error_clear();
	/* the version that serves until the merge, if there is one */
	const char *status = json_string_value(json_object_get(cur, "status"));
	json_t *current = status && strcmp(status, "pending") != 0 ? cur : NULL;
	json_t *details = json_pack("{s:i,s:s,s:O?,s:O?}", "pending_version", version, "what_to_do",
	                            todo, "current_version", json_object_get(current, "version"),
	                            "current_not_after", json_object_get(current, "not_after"));
	json_decref(cur);
	kw_rc rc = kwi_notify(s, "pending-action", name, version, threshold, details);
	json_decref(details);
	return rc;
}

/* ---- cancelling ---- */

/* Whether another version (of any certificate) still uses the pending key. */
static kw_rc key_shared(kw_store *s, const kwi_pending *p, int *shared)
{
	kwi_version_row v = {.cert_id = p->cert_id,
	                     .version = p->version,
	                     .backend_id = p->backend_id,
	                     .ref = p->ref};
	return kwi_store_version_key_shared(s, &v, shared);
}

static kw_rc key_destroy(kw_store *s, const kwi_pending *p, kw_key_end *end)
{
	kwi_device dev = {0};
	KW_GUARD(kwi_device_open_id(s, p->backend_id, &dev));
	kw_rc rc = kwi_device_key_destroy(&dev, &p->ref, end);
	if (rc == KW_ERR_NOT_FOUND) { /* already gone: what we wanted */
		kw_error_clear();
		rc = KW_OK;
	}
	kwi_device_close(&dev);
	return rc;
}

/* A certificate that never had one (its current version is the pending one)
 * goes altogether; otherwise only the pending version goes. key: what became
 * of its key ("kept" when another version uses it, else kwi_key_end_name). */
static kw_rc cancel_record(kw_store *s, const char *name, const kwi_pending *p, const char *key)
{
	int whole = p->current == p->version;
	KW_GUARD(kwi_store_begin(s));
	int removed = 0;
	kw_rc rc = whole ? kwi_store_cert_remove(s, p->cert_id, &removed)
	                 : kwi_store_version_remove(s, p->cert_id, p->version, 1, &removed);
	if (rc == KW_OK && !removed)
		rc = KW_FAIL(KW_ERR_STATE, "certificate '%s' changed while it was cancelled; retry",
		             name);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "cert.pending_cancelled", name, p->version,
		                      json_pack("{s:s,s:b,s:b}", "key", key, "key_destroyed",
		                                strcmp(key, "destroyed") == 0,
		                                "certificate_removed", whole));
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

kw_rc kw_cert_pending_cancel(kw_store *s, const char *name, json_t **report)
{
	kwi_pending p;
	int shared = 0;
	kw_key_end end = KW_KEY_FORGOTTEN;
	kw_error_clear();
	*report = NULL;
	KW_GUARD(kwi_pending_load(s, name, &p));
	kw_rc rc = KW_OK;
	if (p.version == 0)
		rc = KW_FAIL(KW_ERR_STATE,
		             "certificate '%s' has no pending version: nothing to cancel", name);
	/* The key first, as purge does: if the device fails nothing changes, and a
	 * retry finishes the job (a key already gone counts as done). */
	if (rc == KW_OK && (rc = key_shared(s, &p, &shared)) == KW_OK && !shared)
		rc = key_destroy(s, &p, &end);
	const char *key = shared ? "kept" : kwi_key_end_name(end);
	if (rc == KW_OK)
		rc = cancel_record(s, name, &p, key);
	if (rc == KW_OK) {
		*report = json_pack("{s:s,s:i,s:s,s:b,s:b}", "name", name, "version", p.version,
		                    "key", key, "key_destroyed", strcmp(key, "destroyed") == 0,
		                    "certificate_removed", p.current == p.version);
		if (*report == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	kwi_pending_clear(&p);
	return rc;
}
