/* see keyward/lifecycle.h: Prometheus text exposition of the current versions
 * (for node_exporter's textfile collector) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle/lifecycle_internal.h"
#include "cert/issue.h"
#include "policy/model.h"
#include "store/store_renewal.h"

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

/* The subject as cert show prints it (RFC 2253): the one recorded with the
 * version (cert/facts.c), else the certificate's, or the CSR's while
 * version 1 is pending. */
static char *subject_text(const kwi_metrics_row *r)
{
	const unsigned char *p = r->cert_der, *q = r->csr_der;
	X509 *x = !r->subject_dn && p ? d2i_X509(NULL, &p, (long)r->cert_len) : NULL;
	X509_REQ *req = !r->subject_dn && !x && q ? d2i_X509_REQ(NULL, &q, (long)r->csr_len) : NULL;
	json_t *name = x     ? kwi_name_json(X509_get_subject_name(x))
	               : req ? kwi_name_json(X509_REQ_get_subject_name(req))
	                     : NULL;
	const char *text = r->subject_dn ? r->subject_dn : json_string_value(name);
	char *out = strdup(text ? text : "");
	json_decref(name);
	X509_REQ_free(req);
	X509_free(x);
	return out;
}

typedef struct {
	series *m;
	size_t n, cap;
} series_list;

static kw_rc series_add(const kwi_metrics_row *r, void *arg)
{
	series_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		series *p = realloc(l->m, cap * sizeof(*p));
		if (p == NULL)
			return KW_FAIL(KW_ERR_NOMEM, "out of memory");
		l->m = p;
		l->cap = cap;
	}
	series *m = &l->m[l->n];
	memset(m, 0, sizeof(*m));
	char *subject = subject_text(r), *buf = NULL;
	size_t len = 0;
	FILE *f = subject ? open_memstream(&buf, &len) : NULL;
	if (f == NULL) {
		free(subject);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	label(f, "name", r->name, 1);
	label(f, "subject", subject, 0);
	label(f, "backend", r->backend, 0);
	label(f, "issuer", r->issuer, 0);
	fclose(f);
	free(subject);
	l->n++;
	m->labels = buf;
	m->has_cert = r->has_cert;
	m->not_before = r->not_before;
	m->not_after = r->not_after;
	m->exportable = r->exportable;
	m->enabled = r->enabled;
	m->failures = r->failures;
	m->has_success = r->has_success;
	m->last_success = r->last_success;
	m->pending = r->pending;
	m->pending_since = r->pending_since;
	if (m->has_cert && r->policy)
		m->due = kwi_policy_renew_at(r->policy, m->not_before, m->not_after);
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
	series_list l = {0};
	kw_rc rc = kwi_store_metrics_each(s, series_add, &l);
	if (rc != KW_OK) {
		series_free(l.m, l.n);
		l.m = NULL;
		l.n = 0;
	}
	*out = l.m;
	*n = l.n;
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
