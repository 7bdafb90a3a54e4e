/* libkeyward internals: certificates, their versions and the backends, as
 * typed rows. Only core/store/ runs SQL; cert/, device/ and policy/ call
 * these functions and never see a statement.
 *
 * Rows follow store_issuers.h: a row a function fills owns its strings,
 * blobs, JSON and policy (free them with the row's _clear, which accepts a
 * zeroed row and leaves one); a row a caller fills for an _insert / _set
 * only lends them. Getters say with *found whether the row exists; the
 * caller words "not found" (and its hint), the store words its own failures
 * ("store: reading a certificate failed: ..."). A policy is read where the
 * row is (policy/model.h, kwi_policy_from_text) and written as its
 * normalised document. */
#ifndef KEYWARD_CORE_STORE_CERTS_H
#define KEYWARD_CORE_STORE_CERTS_H

#include "internal.h"
#include "store/store_named.h"

/* ---- store/certs.c: certificates (table certs) and versions ---- */
typedef struct {
	int64_t id;
	const char *name;
	kwi_policy *policy; /* with KWI_LOAD_POLICY; NULL: not asked for, or unreadable */
	json_t *policy_doc; /* with KWI_LOAD_POLICY_DOC: the document as stored (policy show
	                       checks it again); NULL: not asked for, or not JSON */
	int enabled;
	int current_version;
	int deleted; /* soft-deleted at deleted_at */
	time_t deleted_at;
	time_t created_at, updated_at;
	int pending_version; /* the newest pending version (cert merge waits on it); 0: none */
} kwi_cert_row;

void kwi_cert_row_clear(kwi_cert_row *r);

typedef enum {
	KWI_VERSION_UNKNOWN = 0, /* a status this build does not know */
	KWI_VERSION_PENDING,
	KWI_VERSION_ACTIVE,
	KWI_VERSION_SUPERSEDED,
	KWI_VERSION_FAILED
} kwi_version_status;

/* "pending", "active", ... as the store keeps them ("unknown" for 0). */
const char *kwi_version_status_name(kwi_version_status s);

typedef struct {
	int64_t cert_id;
	int version;
	kwi_version_status status;
	int64_t backend_id;
	const char *backend;        /* the backend's name (read only) */
	const char *backend_kind;   /* its kind (read only) */
	const char *backend_config; /* its settings, JSON text (read only) */
	kw_key_type type;           /* 0: unreadable */
	kw_key_blob ref;
	json_t *key_attrs; /* the key's attributes as the device gave them; NULL: none */
	int exportable;
	int generated_on_device;
	const char *issuer; /* the policy's issuer.name when it was issued */
	int has_cert;       /* a certificate is recorded (whether or not cert_der was loaded) */
	const unsigned char *cert_der;
	size_t cert_len;
	const unsigned char *chain_der; /* the issuers, DER back to back; NULL: none */
	size_t chain_len;
	const unsigned char *csr_der; /* the CSR a pending (or merged) version was made with */
	size_t csr_len;
	const char *serial; /* lowercase hex; NULL: no certificate */
	int has_validity;   /* not_before and not_after are recorded */
	time_t not_before, not_after;
	const char *thumbprint_sha1, *thumbprint_sha256; /* NULL: no certificate */
	/* the certificate's facts (cert/facts.c); NULL: not recorded, decode cert_der */
	const char *subject_dn, *issuer_dn;
	const char *sans; /* JSON text of the SAN array */
	const char *spki_sha256;
	time_t created_at;
} kwi_version_row;

void kwi_version_row_clear(kwi_version_row *r);
void kwi_version_rows_free(kwi_version_row *rows, size_t n);

/* What a loader fills beyond the scalar columns (which are always there). */
enum {
	KWI_LOAD_POLICY = 1 << 0, /* kwi_cert_row.policy, read (kwi_policy_from_text) */
	KWI_LOAD_DER = 1 << 1,    /* cert_der, chain_der and csr_der */
	/* cert_der and csr_der only for a version whose four facts are not all
	 * recorded (a pending one included): what a listing decodes instead, so
	 * that listing many certificates copies and decodes no DER */
	KWI_LOAD_DER_FOR_FACTS = 1 << 2,
	KWI_LOAD_POLICY_DOC = 1 << 3, /* kwi_cert_row.policy_doc */
};

/* The live (not soft-deleted) certificate called name and its current
 * version / its version n (n >= 1). *found 0: no such certificate or no such
 * version (cert and ver zeroed; kwi_store_cert_get tells which). cert may be
 * NULL when only the version is wanted. Both rows are zeroed on failure. */
kw_rc kwi_store_version_current(kw_store *s, const char *name, unsigned flags, kwi_cert_row *cert,
                                kwi_version_row *ver, int *found) KW_MUST_USE;
kw_rc kwi_store_version_get(kw_store *s, const char *name, int n, unsigned flags,
                            kwi_cert_row *cert, kwi_version_row *ver, int *found) KW_MUST_USE;

/* Called for each row of an iteration; the rows are the store's, valid for
 * the call only. A result other than KW_OK stops the iteration with it. */
typedef kw_rc (*kwi_version_fn)(const kwi_cert_row *cert, const kwi_version_row *ver, void *arg);
/* Every live certificate that has a current version, by name, with it (a
 * current version missing from the store: ver->version 0). */
kw_rc kwi_store_current_each(kw_store *s, unsigned flags, kwi_version_fn fn, void *arg) KW_MUST_USE;
/* Every soft-deleted certificate, by name, with its current version (when
 * it has none: ver->version 0, ver->backend NULL). */
kw_rc kwi_store_deleted_each(kw_store *s, unsigned flags, kwi_version_fn fn, void *arg) KW_MUST_USE;
/* Every version of certificate cert_id, oldest first. Free with
 * kwi_version_rows_free. */
kw_rc kwi_store_version_list(kw_store *s, int64_t cert_id, unsigned flags, kwi_version_row **rows,
                             size_t *n) KW_MUST_USE;
/* The distinct keys of certificate cert_id's versions, by backend: rows with
 * backend_id and ref only. */
kw_rc kwi_store_version_keys(kw_store *s, int64_t cert_id, kwi_version_row **rows,
                             size_t *n) KW_MUST_USE;
/* Whether a version other than v (of any certificate) uses v's key
 * (backend_id, ref). */
kw_rc kwi_store_version_key_shared(kw_store *s, const kwi_version_row *v, int *shared) KW_MUST_USE;

/* The certificate called name, deleted or not (policy with KWI_LOAD_POLICY,
 * policy_doc with KWI_LOAD_POLICY_DOC). */
kw_rc kwi_store_cert_get(kw_store *s, const char *name, unsigned flags, kwi_cert_row *out,
                         int *found) KW_MUST_USE;
/* Whether a certificate (deleted or not) is called name. */
kw_rc kwi_store_cert_exists(kw_store *s, const char *name, int *exists) KW_MUST_USE;

/* Writes, inside the caller's transaction when it has one. */
/* Inserts r (lent): every column of the row but the backend's name, kind
 * and config; key_attrs are kept as JSON text. */
kw_rc kwi_store_version_insert(kw_store *s, const kwi_version_row *r) KW_MUST_USE;
/* The pending version r->cert_id / r->version becomes active with r's
 * certificate, chain, serial, validity, thumbprints and facts; *activated 0:
 * it was not pending (nothing changed). */
kw_rc kwi_store_version_activate(kw_store *s, const kwi_version_row *r, int *activated) KW_MUST_USE;
/* Inserts a certificate row called name (current version 1, policy kept as
 * for kwi_store_cert_policy_set) and gives its id. */
kw_rc kwi_store_cert_insert(kw_store *s, const char *name, const kwi_policy *policy, time_t now,
                            int64_t *cert_id) KW_MUST_USE;
/* The number certificate cert_id's next version gets (one more than its highest). */
kw_rc kwi_store_version_next(kw_store *s, int64_t cert_id, int *next) KW_MUST_USE;
/* Version becomes certificate cert_id's current one: active, the other
 * active versions superseded, certs.current_version moved (updated at now). */
kw_rc kwi_store_version_make_current(kw_store *s, int64_t cert_id, int version,
                                     time_t now) KW_MUST_USE;
/* Replaces the version's key attributes (JSON kept as text). */
kw_rc kwi_store_version_key_attrs_set(kw_store *s, int64_t cert_id, int version,
                                      const json_t *attrs) KW_MUST_USE;
/* Records r's four facts for r->cert_id / r->version. */
kw_rc kwi_store_version_facts_set(kw_store *s, const kwi_version_row *r) KW_MUST_USE;
/* Every version with a certificate and no facts recorded: rows with cert_id,
 * version and cert_der. fn may record the facts as it goes. */
kw_rc kwi_store_version_facts_missing_each(kw_store *s, kwi_version_fn fn, void *arg) KW_MUST_USE;
/* Deletes the version and the notices sent about it; pending_only: only if
 * it is still pending. *removed: whether the version went. */
kw_rc kwi_store_version_remove(kw_store *s, int64_t cert_id, int version, int pending_only,
                               int *removed) KW_MUST_USE;

kw_rc kwi_store_cert_enabled_set(kw_store *s, int64_t id, int enabled, time_t now) KW_MUST_USE;
/* Soft deletion: deleted_at NULL: not deleted; updated_at NULL: left as it is. */
kw_rc kwi_store_cert_deleted_set(kw_store *s, int64_t id, const time_t *deleted_at,
                                 const time_t *updated_at) KW_MUST_USE;
/* The live certificate name's policy (kept as its normalised document,
 * sorted, compact JSON text); *changed 0: no live certificate has that name. */
kw_rc kwi_store_cert_policy_set(kw_store *s, const char *name, const kwi_policy *policy, time_t now,
                                int *changed) KW_MUST_USE;
/* Deletes the certificate with its versions, renewal state, notices and
 * contacts; *removed 0: there was no such row. */
kw_rc kwi_store_cert_remove(kw_store *s, int64_t id, int *removed) KW_MUST_USE;

/* ---- store/backends.c: the backends table ---- */
/* config: tcti, module, token, pin_source; uses: certificates on it (list). */
typedef kwi_named_row kwi_backend_row;

kw_rc kwi_store_backend_exists(kw_store *s, const char *name, int *exists) KW_MUST_USE;
/* The backend called name, or (name NULL) the one with this id; *found 0: none. */
kw_rc kwi_store_backend_get(kw_store *s, const char *name, int64_t id, kwi_backend_row *out,
                            int *found) KW_MUST_USE;
/* Inserts r (lent: name, kind, config kept as sorted compact JSON text, created_at). */
kw_rc kwi_store_backend_insert(kw_store *s, const kwi_backend_row *r) KW_MUST_USE;
/* Every backend by name. Free with kwi_named_rows_free. */
kw_rc kwi_store_backend_list(kw_store *s, kwi_backend_row **rows, size_t *n) KW_MUST_USE;

#endif
