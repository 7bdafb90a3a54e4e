/* see store/store_certs.h: changes to certificates and their versions */
#include <stdlib.h>
#include <string.h>

#include "policy/model.h"
#include "store/sql.h"
#include "store/store_certs.h"
#include "store/store_issuers.h"

/* A text (NULL: SQL NULL) / a blob (NULL or empty: SQL NULL) to parameter i. */
static void bind_text(sqlite3_stmt *st, int i, const char *t)
{
	if (t)
		sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
}

static void bind_blob(sqlite3_stmt *st, int i, const unsigned char *p, size_t len)
{
	if (p && len)
		sqlite3_bind_blob(st, i, p, (int)len, SQLITE_STATIC);
}

/* The four facts to parameters first .. first+3. */
static void bind_facts(sqlite3_stmt *st, int first, const kwi_version_row *r)
{
	const char *v[] = {r->subject_dn, r->issuer_dn, r->sans, r->spki_sha256};
	for (int i = 0; i < 4; i++)
		bind_text(st, first + i, v[i]);
}

static void bind_validity(sqlite3_stmt *st, int first, const kwi_version_row *r)
{
	if (!r->has_validity)
		return;
	sqlite3_bind_int64(st, first, (sqlite3_int64)r->not_before);
	sqlite3_bind_int64(st, first + 1, (sqlite3_int64)r->not_after);
}

/* Steps st once; *changed (may be NULL): whether exactly one row changed. */
static kw_rc step_done(kw_store *s, sqlite3_stmt *st, const char *what, int *changed)
{
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return KWI_DB_FAIL(s, what);
	if (changed)
		*changed = sqlite3_changes(s->db) == 1;
	return KW_OK;
}

kw_rc kwi_store_version_insert(kw_store *s, const kwi_version_row *r)
{
	sqlite3_stmt *st = NULL;
	char *attrs = r->key_attrs ? json_dumps(r->key_attrs, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	kw_rc rc = kwi_store_prepare(
	    s,
	    "INSERT INTO versions (cert_id, version, status, backend_id, key_type,"
	    " key_ref, key_attrs, exportable, generated_on_device, issuer,"
	    " cert_der, csr_der, serial, not_before, not_after, thumbprint_sha1,"
	    " thumbprint_sha256, created_at, chain_der, subject_dn, issuer_dn, sans, spki_sha256)"
	    " VALUES (?1,?2,?17,?3,?4,?5,?6,?7,?8,?16,?9,?10,?11,?12,?13,?14,?15,?18,?19,"
	    "?20,?21,?22,?23)",
	    &st);
	if (rc != KW_OK) {
		free(attrs);
		return rc;
	}
	sqlite3_bind_int64(st, 1, r->cert_id);
	sqlite3_bind_int(st, 2, r->version);
	sqlite3_bind_int64(st, 3, r->backend_id);
	sqlite3_bind_text(st, 4, kw_key_type_name(r->type), -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, r->ref.data, (int)r->ref.len, SQLITE_STATIC);
	bind_text(st, 6, attrs);
	sqlite3_bind_int(st, 7, r->exportable);
	sqlite3_bind_int(st, 8, r->generated_on_device);
	bind_blob(st, 9, r->cert_der, r->cert_len);
	bind_blob(st, 10, r->csr_der, r->csr_len);
	bind_text(st, 11, r->serial);
	bind_validity(st, 12, r);
	bind_text(st, 14, r->thumbprint_sha1);
	bind_text(st, 15, r->thumbprint_sha256);
	bind_text(st, 16, r->issuer);
	sqlite3_bind_text(st, 17, kwi_version_status_name(r->status), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 18, (sqlite3_int64)r->created_at);
	bind_blob(st, 19, r->chain_der, r->chain_len);
	bind_facts(st, 20, r);
	rc = step_done(s, st, "recording the new version", NULL);
	free(attrs);
	return rc;
}

kw_rc kwi_store_version_activate(kw_store *s, const kwi_version_row *r, int *activated)
{
	sqlite3_stmt *st = NULL;
	*activated = 0;
	KW_GUARD(kwi_store_prepare(
	    s,
	    "UPDATE versions SET status = 'active', cert_der = ?1, chain_der = ?2, serial = ?3,"
	    " not_before = ?4, not_after = ?5, thumbprint_sha1 = ?6, thumbprint_sha256 = ?7,"
	    " subject_dn = ?10, issuer_dn = ?11, sans = ?12, spki_sha256 = ?13"
	    " WHERE cert_id = ?8 AND version = ?9 AND status = 'pending'",
	    &st));
	bind_facts(st, 10, r);
	bind_blob(st, 1, r->cert_der, r->cert_len);
	bind_blob(st, 2, r->chain_der, r->chain_len);
	bind_text(st, 3, r->serial);
	bind_validity(st, 4, r);
	bind_text(st, 6, r->thumbprint_sha1);
	bind_text(st, 7, r->thumbprint_sha256);
	sqlite3_bind_int64(st, 8, r->cert_id);
	sqlite3_bind_int(st, 9, r->version);
	return step_done(s, st, "recording the merged certificate", activated);
}

/* The text the store keeps for a policy: its normalised document, sorted and
 * compact (malloc'd). */
static kw_rc policy_text(const kwi_policy *p, char **out)
{
	json_t *doc = NULL;
	*out = NULL;
	KW_GUARD(kwi_policy_to_json(p, &doc));
	*out = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kwi_store_cert_insert(kw_store *s, const char *name, const kwi_policy *policy, time_t now,
                            int64_t *cert_id)
{
	sqlite3_stmt *st = NULL;
	char *text = NULL;
	KW_GUARD(policy_text(policy, &text));
	kw_rc rc = kwi_store_prepare(s,
	                             "INSERT INTO certs (name, policy, current_version, created_at,"
	                             " updated_at) VALUES (?, ?, 1, ?, ?)",
	                             &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
		rc = step_done(s, st, "recording the certificate", NULL);
		*cert_id = sqlite3_last_insert_rowid(s->db);
	}
	free(text);
	return rc;
}

kw_rc kwi_store_version_next(kw_store *s, int64_t cert_id, int *next)
{
	sqlite3_stmt *st = NULL;
	*next = 0;
	KW_GUARD(kwi_store_prepare(s, "SELECT MAX(version) FROM versions WHERE cert_id = ?", &st));
	sqlite3_bind_int64(st, 1, cert_id);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*next = sqlite3_column_int(st, 0) + 1;
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? KW_OK : KWI_DB_FAIL(s, "numbering the new version");
}

kw_rc kwi_store_version_make_current(kw_store *s, int64_t cert_id, int version, time_t now)
{
	KW_GUARD(KWI_STORE_EXEC(s, "superseding the current version",
	                        "UPDATE versions SET status = 'superseded' WHERE cert_id = ?1"
	                        " AND status = 'active' AND version <> ?2",
	                        cert_id, version));
	KW_GUARD(KWI_STORE_EXEC(s, "activating the version",
	                        "UPDATE versions SET status = 'active' WHERE cert_id = ?1"
	                        " AND version = ?2",
	                        cert_id, version));
	KW_GUARD(
	    KWI_STORE_EXEC(s, "moving the current version",
	                   "UPDATE certs SET current_version = ?2, updated_at = ?3 WHERE id = ?1",
	                   cert_id, version, (int64_t)now));
	if (sqlite3_changes(s->db) != 1)
		return KW_FAIL(KW_ERR_STORE, "the certificate vanished while it was changed");
	return KW_OK;
}

kw_rc kwi_store_version_key_attrs_set(kw_store *s, int64_t cert_id, int version,
                                      const json_t *attrs)
{
	sqlite3_stmt *st = NULL;
	char *t = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
	if (t == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = kwi_store_prepare(
	    s, "UPDATE versions SET key_attrs = ?1 WHERE cert_id = ?2 AND version = ?3", &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, t, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, cert_id);
		sqlite3_bind_int(st, 3, version);
		rc = step_done(s, st, "storing the certify evidence", NULL);
	}
	free(t);
	return rc;
}

kw_rc kwi_store_version_facts_set(kw_store *s, const kwi_version_row *r)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "UPDATE versions SET subject_dn = ?1, issuer_dn = ?2, sans = ?3,"
	                           " spki_sha256 = ?4 WHERE cert_id = ?5 AND version = ?6",
	                           &st));
	bind_facts(st, 1, r);
	sqlite3_bind_int64(st, 5, r->cert_id);
	sqlite3_bind_int(st, 6, r->version);
	return step_done(s, st, "recording certificate facts", NULL);
}

kw_rc kwi_store_version_facts_missing_each(kw_store *s, kwi_version_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT cert_id, version, cert_der FROM versions"
	                           " WHERE cert_der IS NOT NULL AND subject_dn IS NULL",
	                           &st));
	int r = SQLITE_DONE;
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		kwi_cert_row c = {0};
		kwi_version_row v = {.cert_id = sqlite3_column_int64(st, 0),
		                     .version = sqlite3_column_int(st, 1),
		                     .has_cert = 1};
		unsigned char *der = NULL;
		rc = kwi_col_blob_dup(st, 2, &der, &v.cert_len);
		v.cert_der = der;
		if (rc == KW_OK)
			rc = fn(&c, &v, arg);
		kwi_version_row_clear(&v);
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading certificates to record their facts");
	sqlite3_finalize(st);
	return rc;
}

kw_rc kwi_store_version_remove(kw_store *s, int64_t cert_id, int version, int pending_only,
                               int *removed)
{
	sqlite3_stmt *st = NULL;
	*removed = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "DELETE FROM versions WHERE cert_id = ?1 AND version = ?2"
	                           " AND (?3 = 0 OR status = 'pending')",
	                           &st));
	sqlite3_bind_int64(st, 1, cert_id);
	sqlite3_bind_int(st, 2, version);
	sqlite3_bind_int(st, 3, pending_only);
	KW_GUARD(step_done(s, st, "removing a version", removed));
	return KWI_STORE_EXEC(s, "forgetting a version's notices",
	                      "DELETE FROM notices WHERE cert_id = ?1 AND version = ?2", cert_id,
	                      version);
}

/* ---- certificates ---- */

kw_rc kwi_store_cert_enabled_set(kw_store *s, int64_t id, int enabled, time_t now)
{
	return KWI_STORE_EXEC(s, "enabling or disabling the certificate",
	                      "UPDATE certs SET enabled = ?2, updated_at = ?3 WHERE id = ?1", id,
	                      enabled ? 1 : 0, (int64_t)now);
}

kw_rc kwi_store_cert_deleted_set(kw_store *s, int64_t id, const time_t *deleted_at,
                                 const time_t *updated_at)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "UPDATE certs SET deleted_at = ?2,"
	                           " updated_at = COALESCE(?3, updated_at) WHERE id = ?1",
	                           &st));
	sqlite3_bind_int64(st, 1, id);
	if (deleted_at)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)*deleted_at);
	if (updated_at)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)*updated_at);
	return step_done(s, st, deleted_at ? "deleting the certificate" : "showing the certificate",
	                 NULL);
}

kw_rc kwi_store_cert_policy_set(kw_store *s, const char *name, const kwi_policy *policy, time_t now,
                                int *changed)
{
	sqlite3_stmt *st = NULL;
	char *t = NULL;
	*changed = 0;
	KW_GUARD(policy_text(policy, &t));
	kw_rc rc = kwi_store_prepare(s,
	                             "UPDATE certs SET policy = ?, updated_at = ?"
	                             " WHERE name = ? AND deleted_at IS NULL",
	                             &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, t, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
		sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
		rc = step_done(s, st, "recording the policy", changed);
	}
	free(t);
	return rc;
}

kw_rc kwi_store_cert_remove(kw_store *s, int64_t id, int *removed)
{
	sqlite3_stmt *st = NULL;
	*removed = 0;
	KW_GUARD(kwi_store_prepare(s, "DELETE FROM certs WHERE id = ?1", &st));
	sqlite3_bind_int64(st, 1, id);
	return step_done(s, st, "deleting the certificate", removed);
}
