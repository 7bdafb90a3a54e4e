/* see keyward/doctor.h: the store's own checks, the report, marking versions failed */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/doctor_internal.h"
#include "store/store_lifecycle.h"
#include "store/store_lock.h"

/* How long doctor --repair waits for commands that make keys (a renewal
 * through ACME can take a while). */
#define DOCTOR_WAIT_MS 60000

kw_rc kwi_doctor_problem(kwi_doctor *d, const char *kind, int repaired, json_t *where,
                         const char *action, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_t *p = where ? where : json_object();
	if (p == NULL || json_object_set_new(p, "kind", json_string(kind)) != 0 ||
	    json_object_set_new(p, "detail", json_string(detail)) != 0 ||
	    json_object_set_new(p, "action", json_string(action)) != 0 ||
	    json_object_set_new(p, "repaired", json_boolean(repaired)) != 0 ||
	    json_array_append_new(d->problems, p) != 0)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	return KW_OK;
}

/* PRAGMA integrity_check / foreign_key_check: "ok" or what they found. */
static kw_rc integrity(kwi_doctor *d, json_t *report)
{
	kwi_doctor_integrity_row row;
	char found[512] = "";
	KW_GUARD(kwi_store_doctor_integrity_check(d->s, &row));
	if (row.problem)
		snprintf(found, sizeof(found), "%s", row.problem);
	else if (row.fk_found)
		snprintf(found, sizeof(found), "table %s row %lld references a missing %s row",
		         row.fk_table, (long long)row.fk_rowid, row.fk_parent);
	kwi_doctor_integrity_row_clear(&row);
	if (json_object_set_new(report, "integrity", json_string(found[0] ? found : "ok")) != 0)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (found[0] == '\0')
		return KW_OK;
	return kwi_doctor_problem(d, "integrity", 0, NULL,
	                          "stop keyward, copy the store aside and restore it from a "
	                          "backup (keyward never rewrites a damaged database)",
	                          "store database %s fails its integrity check: %s", d->s->db_path,
	                          found);
}

static json_t *where_cert(const char *cert, int version)
{
	return version > 0 ? json_pack("{s:s,s:i}", "cert", cert, "version", version)
	                   : json_pack("{s:s}", "cert", cert);
}

/* Certificates whose current version is not in the store. */
static kw_rc current_missing(kwi_doctor *d)
{
	kwi_doctor_version_row *rows = NULL;
	size_t n = 0;
	KW_GUARD(kwi_store_doctor_current_missing_list(d->s, &rows, &n));
	kw_rc rc = KW_OK;
	for (size_t i = 0; rc == KW_OK && i < n; i++) {
		const char *name = rows[i].name;
		int v = rows[i].version;
		rc =
		    kwi_doctor_problem(d, "current_missing", 0, where_cert(name, v),
		                       "restore the store from a backup, or roll back to a version "
		                       "that exists (keyward cert versions / cert rollback)",
		                       "certificate '%s': its current version %d is not in the "
		                       "store",
		                       name, v);
	}
	kwi_doctor_version_rows_free(rows, n);
	return rc;
}

/* The most pending orphans one run looks at (run again for more). */
#define PENDING_ORPHANS_MAX 64

/* Pending versions no merge can ever reach: not the newest pending one, no
 * CSR, or older than the current version. */
static kw_rc pending_orphans(kwi_doctor *d)
{
	kwi_doctor_version_row *rows = NULL;
	size_t n = 0;
	KW_GUARD(kwi_store_doctor_pending_orphan_list(d->s, &rows, &n));
	kw_rc rc = KW_OK;
	for (size_t i = 0; rc == KW_OK && i < n && i < PENDING_ORPHANS_MAX; i++) {
		const kwi_doctor_version_row *r = &rows[i];
		int done = 0;
		if (d->repair)
			rc = kwi_doctor_fail_version(d, r->cert_id, r->name, r->version,
			                             "pending_orphaned", &done);
		if (rc == KW_OK)
			rc = kwi_doctor_problem(
			    d, "pending_orphaned", done, where_cert(r->name, r->version),
			    done ? "marked failed" : "keyward doctor --repair marks it failed",
			    "certificate '%s' version %d is pending but can never be merged (%s)",
			    r->name, r->version, r->why);
	}
	kwi_doctor_version_rows_free(rows, n);
	return rc;
}

kw_rc kwi_doctor_fail_version(kwi_doctor *d, int64_t cert_id, const char *cert, int version,
                              const char *reason, int *done)
{
	*done = 0;
	KW_GUARD(kwi_store_begin(d->s));
	kw_rc rc = kwi_store_doctor_version_fail(d->s, cert_id, version, done);
	if (rc == KW_OK && *done)
		rc = kwi_event_append(d->s, "doctor.version_failed", cert, version,
		                      json_pack("{s:s}", "reason", reason));
	if (rc != KW_OK) {
		kwi_store_rollback(d->s);
		*done = 0;
		return rc;
	}
	return kwi_store_commit(d->s);
}

static kw_rc report_counts(json_t *report, const json_t *problems)
{
	size_t found = json_array_size(problems), repaired = 0;
	for (size_t i = 0; i < found; i++)
		repaired += json_is_true(json_object_get(json_array_get(problems, i), "repaired"));
	if (json_object_set_new(report, "found", json_integer((json_int_t)found)) != 0 ||
	    json_object_set_new(report, "repaired", json_integer((json_int_t)repaired)) != 0 ||
	    json_object_set_new(report, "remaining",
	                        json_integer((json_int_t)(found - repaired))) != 0)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	return KW_OK;
}

kw_rc kw_doctor_run(kw_store *s, int repair, json_t **report)
{
	kw_error_clear();
	*report = NULL;
	json_t *r = json_object();
	kwi_doctor d = {s, repair, json_array()};
	kw_rc rc = r && d.problems ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	/* A key another command has just made is on the device before its row
	 * is committed: repairing (destroying keys no row names) waits until no
	 * other command makes or destroys keys, and keeps them out meanwhile. */
	if (rc == KW_OK && repair)
		rc = kwi_store_keys_alone(s, DOCTOR_WAIT_MS);
	if (rc == KW_OK)
		rc = integrity(&d, r);
	/* A damaged database is not a guide to what the devices should hold:
	 * nothing is repaired on the strength of it. */
	if (rc == KW_OK && json_array_size(d.problems) > 0)
		d.repair = 0;
	if (rc == KW_OK)
		rc = current_missing(&d);
	if (rc == KW_OK)
		rc = pending_orphans(&d);
	if (rc == KW_OK)
		rc = kwi_doctor_devices(&d);
	if (rc == KW_OK)
		rc = report_counts(r, d.problems);
	if (rc == KW_OK && json_object_set(r, "problems", d.problems) != 0)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	json_decref(d.problems);
	if (rc != KW_OK) {
		json_decref(r);
		return rc;
	}
	*report = r;
	return KW_OK;
}
