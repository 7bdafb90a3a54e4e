/* libkeyward internals: what the store keeps for issuers and the management
 * API, as typed rows. Only core/store/ runs SQL; issuers/ and mgmt/ call
 * these functions and never see a statement.
 *
 * Rows: a row a function fills owns its strings and blobs (malloc'd; free
 * them with the row's _clear, which accepts a zeroed row and leaves one). A
 * row a caller fills for an _add / _put only lends them: nothing to clear.
 * Getters say with *found whether the row exists; the caller words "not
 * found", the store words its own failures ("store: reading a CA failed: ..."). */
#ifndef KEYWARD_CORE_STORE_ISSUERS_H
#define KEYWARD_CORE_STORE_ISSUERS_H

#include "internal.h"

/* Names (certificates), malloc'd, in the order a query gave them. */
typedef struct {
	char **v;
	size_t n;
} kwi_name_list;

void kwi_name_list_clear(kwi_name_list *l);

/* For core/store/ only: a blob column's copy (malloc'd; *out NULL for SQL
 * NULL, a byte allocated for an empty blob). */

/* ---- store/acme.c: ACME issuers (table issuers) and renewal information ---- */
typedef struct {
	int64_t id;
	const char *name;
	json_t *config; /* the issuer's settings document: directory, email, ca_bundle, eab_kid,
	                   preferred_chain, terms_of_service, http01 {listen|webroot} */
	int64_t backend_id;
	const char *backend; /* the backend's name (filled by get and list; _add ignores it) */
	kw_key_type type;
	kw_key_blob ref;         /* the account key, in its device */
	const char *account_url; /* NULL: no account */
	time_t created_at;
} kwi_acme_issuer_row;

void kwi_acme_issuer_row_clear(kwi_acme_issuer_row *r);
/* Issuer name. *found 0: none (out zeroed). A row whose name, settings or key
 * cannot be read fails KW_ERR_STORE. out is zeroed on every failure. */
kw_rc kwi_store_acme_issuer_get(kw_store *s, const char *name, kwi_acme_issuer_row *out,
                                int *found) KW_MUST_USE;
kw_rc kwi_store_acme_issuer_exists(kw_store *s, const char *name, int *exists) KW_MUST_USE;
/* Every issuer by name, or only name (NULL: all). A row's config is NULL when
 * its settings do not parse. Free with kwi_acme_issuer_rows_free. */
kw_rc kwi_store_acme_issuer_list(kw_store *s, const char *name, kwi_acme_issuer_row **rows,
                                 size_t *n) KW_MUST_USE;
void kwi_acme_issuer_rows_free(kwi_acme_issuer_row *rows, size_t n);
/* Inserts r (name, config, backend_id, type, ref, account_url) created at now,
 * in the caller's transaction. */
kw_rc kwi_store_acme_issuer_add(kw_store *s, const kwi_acme_issuer_row *r, time_t now) KW_MUST_USE;
kw_rc kwi_store_acme_issuer_remove(kw_store *s, int64_t id) KW_MUST_USE;
/* The certificates whose policy's issuer is issuer ("acme:NAME"), by name. */
kw_rc kwi_store_acme_issuer_users(kw_store *s, const char *issuer, kwi_name_list *out) KW_MUST_USE;

/* The renewal information (RFC 9773) kept for one version. */
typedef struct {
	int64_t cert_id;
	int version;
	time_t window_start, window_end;
	char explanation_url[512]; /* "": none */
	time_t next_check;         /* ask again from then on */
} kwi_acme_ari_row;

void kwi_acme_ari_row_clear(kwi_acme_ari_row *r);
/* The window kept for cert_id's version (out's key fields set); *found 0: none. */
kw_rc kwi_store_acme_ari_get(kw_store *s, int64_t cert_id, int version, kwi_acme_ari_row *out,
                             int *found) KW_MUST_USE;
/* Keeps r's window for r's version, replacing any. */
kw_rc kwi_store_acme_ari_put(kw_store *s, const kwi_acme_ari_row *r) KW_MUST_USE;
/* A version's certificate DER (malloc'd; NULL, 0: no such version, or none yet). */
kw_rc kwi_store_acme_version_cert_get(kw_store *s, int64_t cert_id, int version,
                                      unsigned char **der, size_t *len) KW_MUST_USE;

/* ---- store/ca.c: a keyward CA's records (ca_issued, revocations, ca_crls) ---- */
/* A certificate's current version as its CA role needs it (certs joined with
 * versions; deleted ones too: the caller says why it refuses them). */
typedef struct {
	int64_t cert_id;
	int version;
	int enabled;
	int deleted;
	const char *status;            /* pending, active, ... */
	const unsigned char *cert_der; /* NULL: no certificate yet */
	size_t cert_len;
	const unsigned char *chain_der; /* the CA's own chain, DER back to back; may be NULL */
	size_t chain_len;
	int64_t backend_id;
	kw_key_type type; /* 0: unreadable */
	kw_key_blob ref;
} kwi_ca_current_row;

void kwi_ca_current_row_clear(kwi_ca_current_row *r);
kw_rc kwi_store_ca_current_get(kw_store *s, const char *name, kwi_ca_current_row *out,
                               int *found) KW_MUST_USE;
/* The id of the certificate called name (deleted or not). */
kw_rc kwi_store_ca_id_get(kw_store *s, const char *name, int64_t *id, int *found) KW_MUST_USE;

/* What kw_cert_revoke needs of a (not deleted) certificate's current version. */
typedef struct {
	const char *issuer; /* the policy's issuer when issued: "ca:NAME", "acme:NAME", ... */
	const char *serial; /* NULL: no certificate */
	int version;
	const unsigned char *cert_der; /* NULL: none */
	size_t cert_len;
} kwi_ca_revocable_row;

void kwi_ca_revocable_row_clear(kwi_ca_revocable_row *r);
kw_rc kwi_store_ca_revocable_get(kw_store *s, const char *name, kwi_ca_revocable_row *out,
                                 int *found) KW_MUST_USE;

/* A certificate a CA signed from a CSR (keyward ca sign, management clients). */
typedef struct {
	int64_t ca_cert_id;
	const char *serial; /* lowercase hex */
	const char *subject;
	time_t not_after;
	const char *thumbprint_sha256;
	const unsigned char *cert_der;
	size_t cert_len;
	time_t created_at;
} kwi_ca_issued_row;

/* Inserts r (lent) in the caller's transaction. */
kw_rc kwi_store_ca_issued_add(kw_store *s, const kwi_ca_issued_row *r) KW_MUST_USE;
/* Whether CA ca_id signed serial: from a CSR, or as a version whose issuer
 * is issuer ("ca:NAME"). */
kw_rc kwi_store_ca_issued_find(kw_store *s, int64_t ca_id, const char *issuer, const char *serial,
                               int *found) KW_MUST_USE;

typedef struct {
	int64_t ca_cert_id;
	const char *serial; /* lowercase hex */
	time_t revoked_at;
	int reason; /* RFC 5280 CRLReason */
} kwi_ca_revocation_row;

void kwi_ca_revocation_row_clear(kwi_ca_revocation_row *r);
/* Records r (lent); *added 0: the serial was already revoked (nothing changed). */
kw_rc kwi_store_ca_revocation_add(kw_store *s, const kwi_ca_revocation_row *r,
                                  int *added) KW_MUST_USE;
/* CA ca_id's revocations, oldest first (then by serial). Free with
 * kwi_ca_revocation_rows_free. */
kw_rc kwi_store_ca_revocation_list(kw_store *s, int64_t ca_id, kwi_ca_revocation_row **rows,
                                   size_t *n) KW_MUST_USE;
void kwi_ca_revocation_rows_free(kwi_ca_revocation_row *rows, size_t n);

/* The last CRL a CA issued. */
typedef struct {
	int64_t ca_cert_id;
	long crl_number;
	time_t issued_at;
} kwi_ca_crl_row;

void kwi_ca_crl_row_clear(kwi_ca_crl_row *r);
/* *found 0: the CA never issued a CRL (out's crl_number 0). */
kw_rc kwi_store_ca_crl_get(kw_store *s, int64_t ca_id, kwi_ca_crl_row *out, int *found) KW_MUST_USE;
kw_rc kwi_store_ca_crl_put(kw_store *s, const kwi_ca_crl_row *r) KW_MUST_USE;

/* ---- store/mgmt.c: management API clients (mgmt_clients) ---- */
typedef struct {
	int64_t ca_cert_id;
	const char *name;
	const char *role; /* reader, admin */
	const char *serial;
	const char *subject;
	time_t not_before, not_after;
	const char *thumbprint_sha256;
	const char *key_source;        /* pkcs12, csr */
	const unsigned char *cert_der; /* _add only: rows read back leave it NULL */
	size_t cert_len;
	time_t created_at;
	int revoked; /* revoked_at is set */
	time_t revoked_at;
	int on_crl; /* kwi_store_mgmt_client_find only: its serial is on the CA's revocations */
} kwi_mgmt_client_row;

void kwi_mgmt_client_row_clear(kwi_mgmt_client_row *r);
kw_rc kwi_store_mgmt_client_get(kw_store *s, const char *name, kwi_mgmt_client_row *out,
                                int *found) KW_MUST_USE;
/* The client with this certificate thumbprint under the management CA ca
 * (not deleted). */
kw_rc kwi_store_mgmt_client_find(kw_store *s, const char *ca, const char *sha256,
                                 kwi_mgmt_client_row *out, int *found) KW_MUST_USE;
/* Every client, oldest first. Free with kwi_mgmt_client_rows_free. */
kw_rc kwi_store_mgmt_client_list(kw_store *s, kwi_mgmt_client_row **rows, size_t *n) KW_MUST_USE;
void kwi_mgmt_client_rows_free(kwi_mgmt_client_row *rows, size_t n);
kw_rc kwi_store_mgmt_client_exists(kw_store *s, const char *name, int *exists) KW_MUST_USE;
/* Inserts r (lent) in the caller's transaction. */
kw_rc kwi_store_mgmt_client_add(kw_store *s, const kwi_mgmt_client_row *r) KW_MUST_USE;
/* Marks client name revoked at now and puts its serial on its CA's
 * revocations with reason (inside the caller's transaction); *revoked 0: it
 * already was (nothing changed). */
kw_rc kwi_store_mgmt_client_revoke(kw_store *s, const char *name, time_t now, int reason,
                                   int *revoked) KW_MUST_USE;
/* Whether a certificate (deleted or not) is called name. */
kw_rc kwi_store_mgmt_cert_exists(kw_store *s, const char *name, int *exists) KW_MUST_USE;

#endif
