/* see store/store_renewal.h: the metrics series */
#include "policy/model.h"
#include "store/sql.h"
#include "store/store_renewal.h"

/* A blob column (NULL: the column is NULL). */
static const unsigned char *blob(sqlite3_stmt *st, int col, size_t *len)
{
	const unsigned char *p = sqlite3_column_blob(st, col);
	*len = (size_t)sqlite3_column_bytes(st, col);
	return p;
}

kw_rc kwi_store_metrics_each(kw_store *s, kw_rc (*fn)(const kwi_metrics_row *r, void *arg),
                             void *arg)
{
	sqlite3_stmt *st = NULL;
	/* the subject is a facts column: DER is read only where it is missing */
	KW_GUARD(kwi_store_prepare(
	    s,
	    "SELECT c.name, b.name, v.issuer, v.cert_der IS NOT NULL, v.not_before, v.not_after,"
	    " v.exportable, c.enabled, c.policy, COALESCE(r.failures, 0), r.last_success,"
	    " (SELECT MIN(p.created_at) FROM versions p WHERE p.cert_id = c.id"
	    " AND p.status = 'pending'), CASE WHEN v.cert_der IS NOT NULL THEN v.subject_dn END,"
	    " CASE WHEN v.subject_dn IS NULL THEN v.cert_der END,"
	    " CASE WHEN v.cert_der IS NULL OR v.subject_dn IS NULL THEN v.csr_der END"
	    " FROM certs c JOIN versions v ON v.cert_id = c.id AND v.version = c.current_version"
	    " JOIN backends b ON b.id = v.backend_id"
	    " LEFT JOIN renewal_state r ON r.cert_id = c.id"
	    " WHERE c.deleted_at IS NULL ORDER BY c.name",
	    &st));
	kw_rc rc = KW_OK;
	int r = SQLITE_DONE;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		kwi_metrics_row m = {
		    .name = (const char *)sqlite3_column_text(st, 0),
		    .backend = (const char *)sqlite3_column_text(st, 1),
		    .issuer = (const char *)sqlite3_column_text(st, 2),
		    .has_cert = sqlite3_column_int(st, 3) != 0,
		    .not_before = (time_t)sqlite3_column_int64(st, 4),
		    .not_after = (time_t)sqlite3_column_int64(st, 5),
		    .exportable = sqlite3_column_int(st, 6) != 0,
		    .enabled = sqlite3_column_int(st, 7) != 0,
		    .failures = sqlite3_column_int(st, 9),
		    .has_success = sqlite3_column_type(st, 10) != SQLITE_NULL,
		    .last_success = (time_t)sqlite3_column_int64(st, 10),
		    .pending = sqlite3_column_type(st, 11) != SQLITE_NULL,
		    .pending_since = (time_t)sqlite3_column_int64(st, 11),
		    .subject_dn = (const char *)sqlite3_column_text(st, 12),
		};
		m.cert_der = blob(st, 13, &m.cert_len);
		m.csr_der = blob(st, 14, &m.csr_len);
		kwi_policy *policy = kwi_policy_from_text((const char *)sqlite3_column_text(st, 8));
		m.policy = policy;
		rc = fn(&m, arg);
		kwi_policy_free(policy);
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading certificates for metrics");
	sqlite3_finalize(st);
	return rc;
}
