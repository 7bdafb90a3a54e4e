/* see keyward/lifecycle.h: Prometheus text exposition of the current versions
 * (for node_exporter's textfile collector) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle/lifecycle_internal.h"
#include "cert/issue.h"

typedef struct {
	char *labels; /* name="...",subject="...",backend="...",issuer="..." */
	int has_cert;
	time_t not_before, not_after, due;
	int failures;
	int has_success;
	time_t last_success;
	int exportable;
	int enabled;
	int pending; /* a version waits for its certificate (issuer unknown) */
	time_t pending_since;
} series;

/* Label values per the exposition format: backslash, double quote and line
 * feed are escaped. */
static void label(FILE *f, const char *key, const char *value, int first)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", key);
	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p == '"')
			fputs("\\\"", f);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* The subject as cert show prints it (RFC 2253): the certificate's, or
 * the CSR's while version 1 is pending. */
static char *subject_text(sqlite3_stmt *st, int col, int csr_col, int facts_col)
{
	const unsigned char *p = sqlite3_column_blob(st, col),
	                    *q = sqlite3_column_blob(st, csr_col);
	/* the subject recorded with the version (cert/facts.c), else decoded */
	json_t *known = p ? kwi_facts_text(st, facts_col) : NULL;
	X509 *x = !known && p ? d2i_X509(NULL, &p, sqlite3_column_bytes(st, col)) : NULL;
	X509_REQ *req =
	    !known && !x && q ? d2i_X509_REQ(NULL, &q, sqlite3_column_bytes(st, csr_col)) : NULL;
	json_t *name = known ? known
	               : x   ? kwi_name_json(X509_get_subject_name(x))
	               : req ? kwi_name_json(X509_REQ_get_subject_name(req))
	                     : NULL;
	char *out = strdup(json_string_value(name) ? json_string_value(name) : "");
	json_decref(name);
	X509_REQ_free(req);
	X509_free(x);
	return out;
}

static kw_rc series_read(sqlite3_stmt *st, series *m)
{
	char *subject = subject_text(st, 3, 11, 13), *buf = NULL;
	size_t len = 0;
	FILE *f = subject ? open_memstream(&buf, &len) : NULL;
	if (f == NULL) {
		free(subject);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	label(f, "name", (const char *)sqlite3_column_text(st, 0), 1);
	label(f, "subject", subject, 0);
	label(f, "backend", (const char *)sqlite3_column_text(st, 1), 0);
	label(f, "issuer", (const char *)sqlite3_column_text(st, 2), 0);
	fclose(f);
	free(subject);
	m->labels = buf;
	m->has_cert = sqlite3_column_type(st, 3) != SQLITE_NULL;
	m->not_before = (time_t)sqlite3_column_int64(st, 4);
	m->not_after = (time_t)sqlite3_column_int64(st, 5);
	m->exportable = sqlite3_column_int(st, 6) != 0;
	m->enabled = sqlite3_column_int(st, 7) != 0;
	m->failures = sqlite3_column_int(st, 9);
	m->has_success = sqlite3_column_type(st, 10) != SQLITE_NULL;
	m->last_success = (time_t)sqlite3_column_int64(st, 10);
	m->pending = sqlite3_column_type(st, 12) != SQLITE_NULL;
	m->pending_since = (time_t)sqlite3_column_int64(st, 12);
	json_t *policy = json_loads((const char *)sqlite3_column_text(st, 8), 0, NULL);
	if (m->has_cert && policy)
		m->due = kwi_policy_renew_at(policy, m->not_before, m->not_after);
	json_decref(policy);
	return KW_OK;
}

static void series_free(series *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].labels);
	free(m);
}

static kw_rc series_load(kw_store *s, series **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	*out = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(
	    s,
	    "SELECT c.name, b.name, v.issuer, v.cert_der, v.not_before, v.not_after,"
	    " v.exportable, c.enabled, c.policy, COALESCE(r.failures, 0), r.last_success,"
	    " v.csr_der, (SELECT MIN(p.created_at) FROM versions p WHERE p.cert_id = c.id"
	    " AND p.status = 'pending'), v.subject_dn"
	    " FROM certs c JOIN versions v ON v.cert_id = c.id AND v.version = c.current_version"
	    " JOIN backends b ON b.id = v.backend_id"
	    " LEFT JOIN renewal_state r ON r.cert_id = c.id"
	    " WHERE c.deleted_at IS NULL ORDER BY c.name",
	    &st));
	kw_rc rc = KW_OK;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		series *p = realloc(*out, (*n + 1) * sizeof(*p));
		if (p == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			break;
		}
		*out = p;
		memset(&p[*n], 0, sizeof(p[*n]));
		if ((rc = series_read(st, &p[(*n)++])) != KW_OK)
			break;
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading certificates for metrics");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		series_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

enum {
	M_NOT_BEFORE,
	M_NOT_AFTER,
	M_DUE,
	M_FAILURES,
	M_SUCCESS,
	M_EXPORTABLE,
	M_ENABLED,
	M_PENDING
};

static const struct {
	const char *name;
	const char *help;
} families[] = {
    [M_NOT_BEFORE] = {"keyward_certificate_not_before_seconds",
                      "Start of the current version's validity (Unix time)."},
    [M_NOT_AFTER] = {"keyward_certificate_not_after_seconds",
                     "End of the current version's validity (Unix time)."},
    [M_DUE] = {"keyward_certificate_renewal_due_seconds",
               "When the policy has the current version renewed (Unix time)."},
    [M_FAILURES] = {"keyward_certificate_renewal_failures",
                    "Consecutive failed renewal attempts (0 after a success)."},
    [M_SUCCESS] = {"keyward_certificate_last_renewal_success_seconds",
                   "Last successful renewal (Unix time), when there was one."},
    [M_EXPORTABLE] = {"keyward_certificate_key_exportable",
                      "1 if the device would let the key out (read from the device)."},
    [M_ENABLED] = {"keyward_certificate_enabled", "1 if the certificate is enabled."},
    [M_PENDING] = {"keyward_certificate_pending_since_seconds",
                   "Since when a CSR waits for its certificate from the external CA (Unix "
                   "time), when one does."},
};

/* The sample of family k for m; 0 when m has none. */
static int sample(int k, const series *m, long long *v)
{
	switch (k) {
	case M_NOT_BEFORE: *v = (long long)m->not_before; return m->has_cert;
	case M_NOT_AFTER: *v = (long long)m->not_after; return m->has_cert;
	case M_DUE: *v = (long long)m->due; return m->has_cert;
	case M_FAILURES: *v = m->failures; return 1;
	case M_SUCCESS: *v = (long long)m->last_success; return m->has_success;
	case M_EXPORTABLE: *v = m->exportable; return m->has_cert;
	case M_ENABLED: *v = m->enabled; return 1;
	case M_PENDING: *v = (long long)m->pending_since; return m->pending;
	}
	return 0;
}

kw_rc kw_metrics_text(kw_store *s, char **out)
{
	series *m = NULL;
	size_t n = 0, len = 0;
	char *buf = NULL;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(series_load(s, &m, &n));
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) {
		series_free(m, n);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	fprintf(f,
	        "# HELP keyward_certificates Certificates in the store (not deleted).\n"
	        "# TYPE keyward_certificates gauge\nkeyward_certificates %zu\n",
	        n);
	for (int k = 0; k < (int)(sizeof(families) / sizeof(families[0])); k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", families[k].name, families[k].help,
		        families[k].name);
		for (size_t i = 0; i < n; i++) {
			long long v = 0;
			if (sample(k, &m[i], &v))
				fprintf(f, "%s{%s} %lld\n", families[k].name, m[i].labels, v);
		}
	}
	series_free(m, n);
	if (fclose(f) != 0 || buf == NULL) {
		free(buf);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	*out = buf;
	return KW_OK;
}
