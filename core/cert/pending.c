/* see cert/issue.h and keyward/keyward.h: versions waiting for a certificate from an external CA
 * (issuer "unknown"): finding them, telling the contacts, cancelling them */
#include <stdlib.h>
#include <string.h>

#include "lifecycle/lifecycle_internal.h"
#include "cert/issue.h"

void kwi_pending_clear(kwi_pending *p)
{
	kw_keyref_clear(&p->ref);
	free(p->csr_der);
	memset(p, 0, sizeof(*p));
}

static unsigned char *blob_dup(sqlite3_stmt *st, int col, size_t *len)
{
	*len = (size_t)sqlite3_column_bytes(st, col);
	unsigned char *p = malloc(*len ? *len : 1);
	if (p && *len)
		memcpy(p, sqlite3_column_blob(st, col), *len);
	return p;
}

static kw_rc pending_row(sqlite3_stmt *st, const char *name, kwi_pending *p)
{
	p->cert_id = sqlite3_column_int64(st, 0);
	p->current = sqlite3_column_int(st, 1);
	if (sqlite3_column_int(st, 2))
		return KW_FAIL_HINT_ON(KW_ERR_NOT_FOUND, KW_HINT_CERT_RECOVER, name,
		                       "certificate '%s' is deleted", name);
	if (sqlite3_column_type(st, 3) == SQLITE_NULL)
		return KW_OK; /* nothing pending */
	p->version = sqlite3_column_int(st, 3);
	p->backend_id = sqlite3_column_int64(st, 4);
	p->type = kw_key_type_from_name((const char *)sqlite3_column_text(st, 5));
	p->ref.data = blob_dup(st, 6, &p->ref.len);
	p->csr_der = blob_dup(st, 7, &p->csr_len);
	if (p->ref.data == NULL || p->csr_der == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (p->type == 0 || p->csr_len == 0)
		return KW_FAIL(KW_ERR_STORE, "certificate '%s' version %d is unreadable", name,
		               p->version);
	return KW_OK;
}

kw_rc kwi_pending_load(kw_store *s, const char *name, kwi_pending *p)
{
	sqlite3_stmt *st = NULL;
	memset(p, 0, sizeof(*p));
	KW_GUARD(kwi_store_prepare(
	    s,
	    "SELECT c.id, c.current_version, c.deleted_at IS NOT NULL, v.version, v.backend_id,"
	    " v.key_type, v.key_ref, v.csr_der FROM certs c LEFT JOIN versions v"
	    " ON v.cert_id = c.id AND v.status = 'pending' WHERE c.name = ?"
	    " ORDER BY v.version DESC LIMIT 1",
	    &st));
	sqlite3_bind_text(st, 1, name ? name : "", -1, SQLITE_STATIC);
	kw_rc rc = KW_OK;
	int r = sqlite3_step(st);
	if (r == SQLITE_DONE)
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'",
		                  name ? name : "");
	else if (r != SQLITE_ROW)
		rc = KWI_DB_FAIL(s, "reading a certificate");
	else
		rc = pending_row(st, name, p);
	sqlite3_finalize(st);
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
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT COUNT(*) FROM versions WHERE backend_id = ? AND"
	                           " key_ref = ? AND NOT (cert_id = ? AND version = ?)",
	                           &st));
	sqlite3_bind_int64(st, 1, p->backend_id);
	sqlite3_bind_blob(st, 2, p->ref.data, (int)p->ref.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, p->cert_id);
	sqlite3_bind_int(st, 4, p->version);
	int r = sqlite3_step(st);
	*shared = r == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? KW_OK : KWI_DB_FAIL(s, "looking for the key's other versions");
}

static kw_rc key_destroy(kw_store *s, const kwi_pending *p)
{
	kwi_device dev = {0};
	KW_GUARD(kwi_device_open_id(s, p->backend_id, &dev));
	kw_rc rc = kwi_device_key_destroy(&dev, &p->ref);
	if (rc == KW_ERR_NOT_FOUND) { /* already gone: what we wanted */
		kw_error_clear();
		rc = KW_OK;
	}
	kwi_device_close(&dev);
	return rc;
}

/* A certificate that never had one (its current version is the pending one)
 * goes altogether; otherwise only the pending version goes. */
static kw_rc cancel_record(kw_store *s, const char *name, const kwi_pending *p, int destroyed)
{
	int whole = p->current == p->version;
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = whole ? KWI_STORE_EXEC(s, "removing the certificate",
	                                  "DELETE FROM certs WHERE id = ?1", p->cert_id)
	                 : KWI_STORE_EXEC(s, "removing the pending version",
	                                  "DELETE FROM versions WHERE cert_id = ?1 AND version = ?2"
	                                  " AND status = 'pending'",
	                                  p->cert_id, p->version);
	if (rc == KW_OK && sqlite3_changes(s->db) != 1)
		rc = KW_FAIL(KW_ERR_STATE, "certificate '%s' changed while it was cancelled; retry",
		             name);
	if (rc == KW_OK && !whole)
		rc = KWI_STORE_EXEC(s, "forgetting the pending version's notices",
		                    "DELETE FROM notices WHERE cert_id = ?1 AND version = ?2",
		                    p->cert_id, p->version);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "cert.pending_cancelled", name, p->version,
		                      json_pack("{s:b,s:b}", "key_destroyed", destroyed,
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
	kw_error_clear();
	*report = NULL;
	KW_GUARD(kwi_pending_load(s, name, &p));
	kw_rc rc = KW_OK;
	if (p.version == 0)
		rc = KW_FAIL(KW_ERR_STATE,
		             "certificate '%s' has no pending version: nothing to cancel", name);
	/* The key first, as purge does: if the device fails nothing changes, and a
	 * retry finishes the job (a key already gone counts as destroyed). */
	if (rc == KW_OK && (rc = key_shared(s, &p, &shared)) == KW_OK && !shared)
		rc = key_destroy(s, &p);
	if (rc == KW_OK)
		rc = cancel_record(s, name, &p, !shared);
	if (rc == KW_OK) {
		*report = json_pack("{s:s,s:i,s:b,s:b}", "name", name, "version", p.version,
		                    "key_destroyed", !shared, "certificate_removed",
		                    p.current == p.version);
		if (*report == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	kwi_pending_clear(&p);
	return rc;
}
