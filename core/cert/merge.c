/* see keyward/keyward.h: kw_cert_merge, the certificate an external CA issued for a pending
 * version (issuer "unknown") */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "lifecycle/lifecycle_internal.h"
#include "cert/issue.h"

typedef struct {
	const char *source; /* the input's name, for messages */
	const char *name;
	kwi_pending p;
	kwi_device dev;
	STACK_OF(X509) * certs;
	STACK_OF(X509) * chain; /* the leaf's issuers, in order */
	X509 *leaf;             /* borrowed from certs */
	kwi_issued v;           /* the leaf's facts (v.cert stays NULL) */
	json_t *dropped;
	json_t *notes;
} merge_job;

static void job_clear(merge_job *j)
{
	kwi_pending_clear(&j->p);
	kwi_device_close(&j->dev);
	sk_X509_pop_free(j->certs, X509_free);
	sk_X509_pop_free(j->chain, X509_free);
	kwi_issued_clear(&j->v);
	json_decref(j->dropped);
	json_decref(j->notes);
}

static const char *subject_of(X509 *x, char *buf, size_t len)
{
	json_t *n = kwi_name_json(X509_get_subject_name(x));
	snprintf(buf, len, "%s", json_string_value(n) ? json_string_value(n) : "?");
	json_decref(n);
	return buf;
}

/* Exactly one certificate (duplicates aside) whose key is the device's. */
static kw_rc pick_leaf(merge_job *j, EVP_PKEY *pub)
{
	int other = 0;
	char first[256];
	for (int i = 0; i < sk_X509_num(j->certs); i++) {
		X509 *x = sk_X509_value(j->certs, i);
		if (EVP_PKEY_eq(X509_get0_pubkey(x), pub) != 1)
			continue;
		if (j->leaf == NULL)
			j->leaf = x;
		other |= X509_cmp(x, j->leaf) != 0;
	}
	ERR_clear_error();
	if (j->leaf == NULL)
		return KW_FAIL_HINT_ON(
		    KW_ERR_STATE, KW_HINT_CERT_CSR, j->name,
		    "%s: no certificate in it is for the pending key of '%s' version %d (it holds "
		    "%d, the first for %s): was it issued for another CSR?",
		    j->source, j->name, j->p.version, sk_X509_num(j->certs),
		    subject_of(sk_X509_value(j->certs, 0), first, sizeof(first)));
	if (other)
		return KW_FAIL(KW_ERR_STATE,
		               "%s: holds more than one certificate for the pending key of '%s'; "
		               "give the one to use",
		               j->source, j->name);
	return KW_OK;
}

/* Whether the pending CSR asks for a CA certificate (cert create --ca
 * --issuer unknown: an intermediate in hardware under someone else's root). */
static int csr_wants_ca(const merge_job *j)
{
	const unsigned char *p = j->p.csr_der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)j->p.csr_len);
	STACK_OF(X509_EXTENSION) *exts = req ? X509_REQ_get_extensions(req) : NULL;
	BASIC_CONSTRAINTS *bc =
	    exts ? X509V3_get_d2i(exts, NID_basic_constraints, NULL, NULL) : NULL;
	int ca = bc && bc->ca;
	BASIC_CONSTRAINTS_free(bc);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	ERR_clear_error();
	return ca;
}

/* What the CSR asked for (an end-entity or a CA certificate), valid now. */
static kw_rc check_leaf(merge_job *j, time_t now)
{
	char at[32], nowt[32];
	uint32_t flags = X509_get_extension_flags(j->leaf);
	int want_ca = csr_wants_ca(j);
	if (flags & EXFLAG_INVALID)
		return KW_FAIL(KW_ERR_PARSE, "%s: the certificate has malformed extensions",
		               j->source);
	if ((flags & EXFLAG_CA) && !want_ca)
		return KW_FAIL(KW_ERR_STATE,
		               "%s: the certificate for the pending key is a CA certificate "
		               "(basicConstraints CA:TRUE); keyward takes end-entity certificates "
		               "here",
		               j->source);
	if (want_ca && !(flags & EXFLAG_CA))
		return KW_FAIL(
		    KW_ERR_STATE,
		    "%s: the CSR asked for a CA certificate, the CA issued an end-entity "
		    "one (no basicConstraints CA:TRUE)",
		    j->source);
	if (want_ca && !(X509_get_key_usage(j->leaf) & KU_KEY_CERT_SIGN))
		return KW_FAIL(
		    KW_ERR_STATE,
		    "%s: the CA certificate may not sign certificates (no keyCertSign in "
		    "its key usage)",
		    j->source);
	KW_GUARD(kwi_issued_facts(j->leaf, &j->v));
	kwi_time_format(now, nowt, sizeof(nowt));
	if (now < j->v.not_before) {
		kwi_time_format(j->v.not_before, at, sizeof(at));
		return KW_FAIL(KW_ERR_STATE,
		               "%s: the certificate is not valid yet: from %s on (now %s); check "
		               "the CA's clock and merge it then",
		               j->source, at, nowt);
	}
	if (now >= j->v.not_after) {
		kwi_time_format(j->v.not_after, at, sizeof(at));
		return KW_FAIL_HINT_ON(
		    KW_ERR_STATE, KW_HINT_CERT_CSR, j->name,
		    "%s: the certificate expired at %s (now %s); have the CSR signed again",
		    j->source, at, nowt);
	}
	return KW_OK;
}

/* Every string of a in b. */
static int contains_all(const json_t *a, const json_t *b)
{
	size_t i, k;
	json_t *x, *y;
	json_array_foreach(a, i, x)
	{
		int found = 0;
		json_array_foreach(b, k, y) found |= json_equal(x, y);
		if (!found)
			return 0;
	}
	return 1;
}

static char *joined(const json_t *arr)
{
	char *s = json_dumps(arr, JSON_COMPACT | JSON_ENCODE_ANY);
	return s ? s : strdup("?");
}

/* What the CA changed from the request: a CA may, Key Vault accepts it;
 * the admin hears of it on stdout. */
static kw_rc compare_request(merge_job *j)
{
	const unsigned char *p = j->p.csr_der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)j->p.csr_len);
	if (req == NULL)
		return KW_FAIL(KW_ERR_STORE, "certificate '%s' version %d has an unreadable CSR",
		               j->name, j->p.version);
	kw_rc rc = KW_OK;
	char *note = NULL;
	json_t *cs = kwi_name_json(X509_get_subject_name(j->leaf));
	json_t *rs = kwi_name_json(X509_REQ_get_subject_name(req));
	if (X509_NAME_cmp(X509_get_subject_name(j->leaf), X509_REQ_get_subject_name(req)) != 0 &&
	    asprintf(&note, "the certificate's subject %s differs from the CSR's %s",
	             json_string_value(cs), json_string_value(rs)) > 0)
		rc = kwi_json_append(j->notes, json_string(note));
	free(note);
	note = NULL;
	GENERAL_NAMES *gens = X509_get_ext_d2i(j->leaf, NID_subject_alt_name, NULL, NULL);
	json_t *csans = kwi_sans_json(gens), *rsans = kwi_req_sans_json(req);
	char *a = joined(csans), *b = joined(rsans);
	if (rc == KW_OK && !(contains_all(csans, rsans) && contains_all(rsans, csans)) &&
	    asprintf(&note, "the certificate's SANs %s differ from the CSR's %s", a, b) > 0)
		rc = kwi_json_append(j->notes, json_string(note));
	free(note);
	free(a);
	free(b);
	GENERAL_NAMES_free(gens);
	json_decref(csans);
	json_decref(rsans);
	json_decref(cs);
	json_decref(rs);
	X509_REQ_free(req);
	return rc;
}

static kw_rc activate(kw_store *s, const merge_job *j, const unsigned char *chain, size_t chain_len)
{
	unsigned char *der = NULL;
	kwi_facts f;
	int activated = 0;
	int n = i2d_X509(j->leaf, &der);
	if (n <= 0)
		return KW_FAIL(KW_ERR_INTERNAL, "cannot encode the certificate");
	kw_rc rc = kwi_facts_make(j->leaf, &f);
	if (rc != KW_OK) {
		OPENSSL_free(der);
		return rc;
	}
	kwi_version_row r = {
	    .cert_id = j->p.cert_id,
	    .version = j->p.version,
	    .cert_der = der,
	    .cert_len = (size_t)n,
	    .chain_der = chain,
	    .chain_len = chain_len,
	    .serial = j->v.serial,
	    .has_validity = 1,
	    .not_before = j->v.not_before,
	    .not_after = j->v.not_after,
	    .thumbprint_sha1 = j->v.sha1,
	    .thumbprint_sha256 = j->v.sha256,
	};
	kwi_facts_lend(&f, &r);
	rc = kwi_store_version_activate(s, &r, &activated);
	if (rc == KW_OK && !activated)
		rc = KW_FAIL_HINT_ON(
		    KW_ERR_STATE, KW_HINT_CERT_VERSIONS, j->name,
		    "certificate '%s' version %d stopped being pending while it was merged",
		    j->name, j->p.version);
	kwi_facts_clear(&f);
	OPENSSL_free(der);
	return rc;
}

/* One transaction: the pending version becomes active and current, the
 * old current one superseded. */
static kw_rc record(kw_store *s, const merge_job *j, int previous, time_t now)
{
	unsigned char *chain = NULL;
	size_t chain_len = 0;
	KW_GUARD(kwi_chain_der(j->chain, &chain, &chain_len));
	kw_rc rc = kwi_store_begin(s);
	if (rc == KW_OK)
		rc = activate(s, j, chain, chain_len);
	if (rc == KW_OK)
		rc = kwi_store_version_make_current(s, j->p.cert_id, j->p.version, now);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "cert.merged", j->name, j->p.version,
		                      json_pack("{s:o,s:s,s:s,s:o,s:i}", "previous_version",
		                                previous ? json_integer(previous) : json_null(),
		                                "thumbprint_sha256", j->v.sha256, "serial",
		                                j->v.serial, "issuer_dn",
		                                kwi_name_json(X509_get_issuer_name(j->leaf)),
		                                "chain_length", sk_X509_num(j->chain)));
	free(chain);
	if (rc == KW_OK)
		return kwi_store_commit(s);
	kwi_store_rollback(s);
	return rc;
}

static json_t *report_of(const merge_job *j, int previous)
{
	json_t *chain = json_array();
	for (int i = 0; i < sk_X509_num(j->chain); i++)
		json_array_append_new(
		    chain, kwi_name_json(X509_get_subject_name(sk_X509_value(j->chain, i))));
	char until[32];
	kwi_time_format(j->v.not_after, until, sizeof(until));
	return json_pack(
	    "{s:s,s:i,s:o,s:o,s:o,s:s,s:s,s:o,s:O,s:O}", "name", j->name, "version", j->p.version,
	    "previous_version", previous ? json_integer(previous) : json_null(), "subject",
	    kwi_name_json(X509_get_subject_name(j->leaf)), "issuer_dn",
	    kwi_name_json(X509_get_issuer_name(j->leaf)), "not_after", until, "thumbprint_sha256",
	    j->v.sha256, "chain", chain, "dropped", j->dropped, "notes", j->notes);
}

/* Everything that can refuse the input, before anything changes. */
static kw_rc prepare(kw_store *s, merge_job *j, const unsigned char *data, size_t len, time_t now)
{
	EVP_PKEY *pub = NULL;
	KW_GUARD(kwi_pending_load(s, j->name, &j->p));
	if (j->p.version == 0)
		return KW_FAIL(KW_ERR_STATE,
		               "certificate '%s' has no pending version: nothing to merge (one "
		               "waits after a creation or a renewal with issuer unknown)",
		               j->name);
	KW_GUARD(kwi_certs_parse(j->source, data, len, &j->certs));
	/* the key as the device has it, not as the CSR says */
	KW_GUARD(kwi_device_open_id(s, j->p.backend_id, &j->dev));
	kwi_signer k = {&j->dev, &j->p.ref, j->p.type};
	KW_GUARD(kwi_signer_pubkey(&k, &pub));
	kw_rc rc = pick_leaf(j, pub);
	EVP_PKEY_free(pub);
	KW_GUARD(rc);
	KW_GUARD(check_leaf(j, now));
	KW_GUARD(kwi_chain_order(j->leaf, j->certs, &j->chain, j->dropped));
	return compare_request(j);
}

kw_rc kw_cert_merge(kw_store *s, const char *name, const char *source, const unsigned char *data,
                    size_t len, json_t **report)
{
	merge_job j = {.source = source ? source : "the input", .name = name};
	time_t now;
	kw_error_clear();
	*report = NULL;
	KW_GUARD(kwi_now(&now));
	j.dropped = json_array();
	j.notes = json_array();
	kw_rc rc = j.dropped && j.notes ? prepare(s, &j, data, len, now)
	                                : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	int previous = j.p.current != j.p.version ? j.p.current : 0;
	if (rc == KW_OK)
		rc = record(s, &j, previous, now);
	if (rc == KW_OK) {
		kwi_cert_mirror(&j.dev, &j.p.ref, j.leaf);
		*report = report_of(&j, previous);
		if (*report == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	int version = j.p.version;
	job_clear(&j);
	/* After the device is closed. A merge that replaces a version is a
	 * renewal: prune, deploy and notify record their own failures, and a
	 * failed deploy is returned (KW_ERR_DEPLOY, *report set). */
	if (rc == KW_OK && previous) {
		kw_rc after = kwi_after_renewal(s, name, version, NULL);
		if (after == KW_ERR_DEPLOY)
			rc = after;
		else if (after != KW_OK)
			kw_error_clear();
	}
	return rc;
}
