/* libkeyward internals: what the renewal engine (lifecycle/renew.c) and the
 * metrics (audit/metrics.c) read and keep, as typed rows. Only core/store/
 * runs SQL. Both lists read the facts recorded per version (validity, the
 * subject): 100k certificates list without decoding a certificate.
 *
 * Rows follow store/store_lifecycle.h: a row a function fills owns its
 * strings and JSON (free them with the row's _clear); a row lent to a
 * callback owns nothing and lives for the call. The store words its own
 * failures; transactions stay with the callers. */
#ifndef KEYWARD_CORE_STORE_RENEWAL_H
#define KEYWARD_CORE_STORE_RENEWAL_H

#include "internal.h"

/* ---- store/renewal.c: the due list and the renewal state (table renewal_state) ---- */
typedef struct {
	int64_t id;
	const char *name;
	int enabled;
	int version; /* the current version */
	int has_cert;
	time_t not_before, not_after;
	kwi_policy *policy;     /* NULL: the policy does not read (kwi_policy_from_text) */
	int failures;           /* consecutive failed attempts */
	time_t next_attempt;    /* 0: none */
	const char *last_error; /* NULL: none */
	int pending_version;    /* the newest pending version; 0: none */
} kwi_renewal_due_row;

void kwi_renewal_due_row_clear(kwi_renewal_due_row *r);
void kwi_renewal_due_rows_free(kwi_renewal_due_row *rows, size_t n);
/* Every live certificate with its current version and renewal state, by
 * name. Free with kwi_renewal_due_rows_free. */
kw_rc kwi_store_renewal_due_list(kw_store *s, kwi_renewal_due_row **rows, size_t *n) KW_MUST_USE;
/* The certificate called name renewed at now: no failures, no next attempt. */
kw_rc kwi_store_renewal_succeeded(kw_store *s, const char *name, time_t now) KW_MUST_USE;
/* Certificate cert_id failed to renew at now (one failure more) with error;
 * the next attempt at next. */
kw_rc kwi_store_renewal_failed(kw_store *s, int64_t cert_id, const char *error, time_t now,
                               time_t next) KW_MUST_USE;

/* ---- store/metrics.c: a series per live certificate ---- */
typedef struct {
	const char *name, *backend, *issuer;
	int has_cert;
	time_t not_before, not_after;
	int exportable, enabled;
	const kwi_policy *policy; /* NULL: the policy does not read (kwi_policy_from_text) */
	int failures;
	int has_success;
	time_t last_success;
	int pending; /* a version waits for its certificate (issuer unknown) */
	time_t pending_since;
	/* the subject recorded with the version (cert/facts.c) when it has a
	 * certificate; NULL: decode cert_der, else csr_der (only then loaded) */
	const char *subject_dn;
	const unsigned char *cert_der, *csr_der;
	size_t cert_len, csr_len;
} kwi_metrics_row;

/* Calls fn with every live certificate's current version, by name (the row
 * lent for the call). A result other than KW_OK stops with it. */
kw_rc kwi_store_metrics_each(kw_store *s, kw_rc (*fn)(const kwi_metrics_row *r, void *arg),
                             void *arg) KW_MUST_USE;

#endif
