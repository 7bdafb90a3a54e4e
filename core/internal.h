/* libkeyward internals: not installed, not for the CLI or provider. */
#ifndef KEYWARD_INTERNAL_H
#define KEYWARD_INTERNAL_H

#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <keyward/issuer.h>
#include <keyward/keyward.h>

#include "backend.h"

/* see KW_SOFTWARE_PROPQ in backend.h */
#define KWI_SOFTWARE_PROPQ KW_SOFTWARE_PROPQ

/* The certificate policy as core reads it: policy/model.h. */
typedef struct kwi_policy kwi_policy;

/* How ACME http-01 challenges are answered: a responder of keyward's own
 * (listen "ADDR:PORT") or files in a web server's webroot (an absolute
 * directory); one of the two, both NULL when nothing was said. */
typedef struct {
	char *listen;
	char *webroot;
} kwi_http01_conf;

struct kw_store {
	struct sqlite3 *db; /* only core/store/ touches it (store/sql.h) */
	char *dir;
	char *db_path;
	char actor[128];        /* who makes changes, for the event log ("cli" by default) */
	kwi_http01_conf http01; /* ACME http-01 settings of this handle (kw_store_set_http01) */
	struct kwi_devices *devices; /* a run's open devices (device.c) or NULL */
	char anchor_due[128];        /* "SEQ HASH": the event log head to anchor at commit */
	int lock_fd;                 /* STORE/keyward.lock (store/lock.c), -1: not open */
	enum { KWI_LOCK_NONE, KWI_LOCK_SHARED, KWI_LOCK_ALONE } lock_mode;
};

/* ---- store/store.c ---- */
/* The store for reading only (the provider, in a TLS server): the file is
 * never written, and a store whose schema is not this build's is refused
 * rather than migrated. */
kw_rc kwi_store_open_reader(const char *dir, kw_store **out) KW_MUST_USE;
/* The store for changes, as kw_store_open opens it (the agent's events). */
kw_rc kwi_store_open_writer(const char *dir, kw_store **out) KW_MUST_USE;
kw_rc kwi_store_begin(kw_store *s) KW_MUST_USE;
kw_rc kwi_store_commit(kw_store *s) KW_MUST_USE;
void kwi_store_rollback(kw_store *s);

/* ---- audit/events.c: the append-only, BLAKE2b-chained event log ---- */
/* Appends an event inside the caller's transaction. details (may be NULL) is
 * stolen. cert may be NULL, version 0 when none. */
kw_rc kwi_event_append(kw_store *s, const char *type, const char *cert, int version,
                       json_t *details) KW_MUST_USE;
/* The same in a transaction of its own (for changes outside the store, e.g.
 * a hook that ran). */
kw_rc kwi_event_record(kw_store *s, const char *type, const char *cert, int version,
                       json_t *details) KW_MUST_USE;

/* ---- issuers/acme/account.c ---- */
/* A policy whose issuer is acme:NAME: NAME exists and the policy, this
 * handle (kw_store_set_http01, then copied into the policy) or the issuer
 * says how to answer http-01. Other issuers pass. */
kw_rc kwi_issuer_policy_check(kw_store *s, kwi_policy *policy) KW_MUST_USE;

/* ---- issuers/issuers.c: the table of issuer kinds ---- */
/* The most characters of a NAME in "ca:NAME" / "acme:NAME". */
#define KWI_ISSUER_NAME_MAX 64
/* What text (a policy's issuer.name; NULL: "self") names: its kind and, for
 * ca:NAME and acme:NAME, *name (may be NULL) at NAME inside text.
 * KW_ISSUER_INVALID for anything else, a bad NAME included. */
kw_issuer_kind kwi_issuer_parse(const char *text, const char **name);

/* ---- the public entry points' own work ----
 * Each kw_X in the public headers clears the error record and calls kwi_X; core calls
 * kwi_X, so an error a caller already holds is never wiped on the way. */
kw_rc kwi_backend_list(kw_store *s, json_t **out) KW_MUST_USE;
kw_rc kwi_cert_create(kw_store *s, const kw_cert_request *req, kw_version_info *made) KW_MUST_USE;
kw_rc kwi_cert_export(kw_store *s, const char *name, int version, int with_chain,
                      char **pem) KW_MUST_USE;
kw_rc kwi_cert_key_ref(kw_store *s, const char *name, const char *format, char **out) KW_MUST_USE;
kw_rc kwi_cert_list_deleted(kw_store *s, json_t **out) KW_MUST_USE;
kw_rc kwi_cert_purge(kw_store *s, const char *name, kw_keys_gone *gone) KW_MUST_USE;
kw_rc kwi_cert_renew(kw_store *s, const char *name, kw_renew_key key,
                     kw_version_info *made) KW_MUST_USE;
kw_rc kwi_cert_show(kw_store *s, const char *name, int version, json_t **out) KW_MUST_USE;
kw_rc kwi_issuer_show(kw_store *s, const char *name, json_t **out) KW_MUST_USE;
kw_rc kwi_policy_validate(const json_t *in, json_t **out) KW_MUST_USE;

/* ---- common/clock.c ---- */
/* Now, or KEYWARD_NOW (RFC 3339) when set. */
kw_rc kwi_now(time_t *out) KW_MUST_USE;
/* "2026-11-27T05:13:00Z" into buf (>= 21 bytes). */
void kwi_time_format(time_t t, char *buf, size_t len);
kw_rc kwi_time_parse(const char *s, time_t *out) KW_MUST_USE;

/* ---- device/backends.c ---- */
/* The store's one backend (malloc'd name) for what ("the account key");
 * none, or several: a usage error saying to name one. */
kw_rc kwi_backend_only(kw_store *s, const char *what, char **out) KW_MUST_USE;

/* ---- device/device.c: a backend opened from its stored configuration ---- */
typedef struct kwi_run_device kwi_run_device;
typedef struct {
	int64_t id;
	char *name;
	char *kind;
	const kw_backend_ops *ops;
	void *ctx;
	kwi_run_device *run; /* the run's connection this borrows, or NULL: its own */
	kw_store *store;     /* the store it was opened from (key making locks it) */
} kwi_device;

/* Outside a run: opens a connection of its own, which close closes. In a run:
 * borrows the run's connection to that backend (opened on first use), which
 * close only gives back. */
kw_rc kwi_device_open(kw_store *s, const char *name, kwi_device *out) KW_MUST_USE;
kw_rc kwi_device_open_id(kw_store *s, int64_t id, kwi_device *out) KW_MUST_USE;
void kwi_device_close(kwi_device *d);

/* A run (renew --due; the agent's connections later): from kwi_devices_begin
 * to kwi_devices_end every open on this store handle shares one connection
 * per backend, keyed by backend id, so a run of N certificates logs in to a
 * token once, not N times (plus once per prune). A failed open is not kept:
 * the next use tries again. Runs nest (the outermost end closes). The handle
 * is single-threaded, like its database connection. */
kw_rc kwi_devices_begin(kw_store *s) KW_MUST_USE;
void kwi_devices_end(kw_store *s);
/* Drops the run's connections (closed now, or when the last borrower lets
 * go); the next open reconnects. Called after a step failed (a device that
 * went away must not fail every certificate after it) and before running an
 * outside command (a TPM simulator serves one connection at a time: a hook
 * that uses the same TPM would wait for ours). No run: nothing. */
void kwi_devices_reset(kw_store *s);
/* Backend connections this process opened (backend opens that succeeded): what
 * tests count. */
unsigned long kwi_device_opens(void);

/* ---- device/calls.c: every backend operation core makes ----
 * Each is the backend table's operation of the same name (backends/backend.h),
 * on d's connection; an operation the backend lacks fails KW_ERR_UNSUPPORTED
 * naming the backend, except where the table gives NULL a meaning:
 * cert_attach (the device keeps no certificates), key_destroy (nothing of the
 * key lives on the device) and key_list (no keys of ours on the device: an
 * empty list) succeed. */
/* The backend's KW_CAP_* that hold whatever its configuration. */
unsigned kwi_device_caps(const kwi_device *d);
/* revocable: a key that kwi_device_key_destroy can end for good, copies of
 * its reference included (key_generate_revocable, or key_generate on a
 * device whose every destroy is final: KW_CAP_DESTROY_REAL). */
kw_rc kwi_device_key_generate(kwi_device *d, kw_key_type type, const char *label, int revocable,
                              kw_key_blob *out) KW_MUST_USE;
kw_rc kwi_device_key_import(kwi_device *d, EVP_PKEY *key, kw_key_type type, const char *label,
                            kw_key_blob *out) KW_MUST_USE;
kw_rc kwi_device_key_public(kwi_device *d, const kw_key_blob *ref, unsigned char **der,
                            size_t *len) KW_MUST_USE;
kw_rc kwi_device_key_sign(kwi_device *d, const kw_key_blob *ref, const kw_sign_params *p,
                          const unsigned char *dgst, size_t dgst_len, unsigned char *sig,
                          size_t *sig_len) KW_MUST_USE;
kw_rc kwi_device_key_attrs(kwi_device *d, const kw_key_blob *ref, kw_key_attrs *out) KW_MUST_USE;
kw_rc kwi_device_key_ref_export(kwi_device *d, const kw_key_blob *ref, const char *format,
                                char **out) KW_MUST_USE;
kw_rc kwi_device_cert_attach(kwi_device *d, const kw_key_blob *ref, const unsigned char *der,
                             size_t len) KW_MUST_USE;
/* *end (may be NULL): what the device did (backend.h); a backend without
 * key_destroy holds nothing of its keys: KW_KEY_FORGOTTEN. */
kw_rc kwi_device_key_destroy(kwi_device *d, const kw_key_blob *ref, kw_key_end *end) KW_MUST_USE;
/* "destroyed", "revoked" or "forgotten": the word events use for an end. */
const char *kwi_key_end_name(kw_key_end end);
/* Counts end in g. */
void kwi_keys_gone_add(kw_keys_gone *g, kw_key_end end);
/* {"destroyed": n, "revoked": n, "forgotten": n} (NULL when out of memory). */
json_t *kwi_keys_gone_json(const kw_keys_gone *g);
/* Best effort: a key made for a change that did not happen. The error record
 * keeps the failure that led here. */
void kwi_device_key_discard(kwi_device *d, const kw_key_blob *ref);
kw_rc kwi_device_key_resolve(kwi_device *d, const char *spec, kw_key_blob *out,
                             unsigned char **cert_der, size_t *cert_len) KW_MUST_USE;
/* 1 when the device can attest to its keys (kwi_device_key_certify). */
int kwi_device_can_certify(const kwi_device *d);
kw_rc kwi_device_key_certify(kwi_device *d, const kw_key_blob *ref, const unsigned char *nonce,
                             size_t nonce_len, json_t **evidence) KW_MUST_USE;
kw_rc kwi_device_key_list(kwi_device *d, kw_device_key **out, size_t *n) KW_MUST_USE;

/* A hardware key that signs. */
typedef struct {
	kwi_device *dev;
	const kw_key_blob *ref;
	kw_key_type type;
} kwi_signer;

/* The key's public half as an EVP_PKEY read from the device. */
kw_rc kwi_signer_pubkey(const kwi_signer *k, EVP_PKEY **out) KW_MUST_USE;

/* ---- x509/names.c: DN and SAN parsing ---- */
kw_rc kwi_dn_parse(const char *text, X509_NAME **out) KW_MUST_USE;
/* "DNS:x" / "IP:y" → GENERAL_NAMES (appends). */
kw_rc kwi_san_parse(const char *text, GENERAL_NAMES *names) KW_MUST_USE;
int kwi_dns_name_valid(const char *name);
/* A name keyward gives things (channels, issuers): 1 to max letters, digits,
 * '.', '_' or '-', starting with a letter or digit. what: "channel". */
kw_rc kwi_name_check(const char *what, const char *name, size_t max) KW_MUST_USE;
/* The same rule without an error: 1 when name follows it. */
int kwi_name_valid(const char *name, size_t max);
/* A name in RFC 2253 form, and SANs as ["DNS:x", "IP:y"] (new references;
 * NULL / an empty array for nothing). */
json_t *kwi_name_json(const X509_NAME *name);
json_t *kwi_sans_json(const GENERAL_NAMES *gens);
/* The SANs a CSR asks for (its extension request). */
json_t *kwi_req_sans_json(X509_REQ *req);

/* ---- x509/build.c: certificates and CSRs signed by a hardware key ---- */
typedef struct {
	const X509_NAME *subject;
	const GENERAL_NAMES *sans; /* may be NULL */
	time_t not_before;
	time_t not_after;
	int is_rsa;
	char *key_usage;     /* OpenSSL extension syntax, e.g. "critical,digitalSignature"; NULL =
	                        default */
	char *ext_key_usage; /* e.g. "serverAuth,clientAuth"; NULL = serverAuth, "" = none */
	int ca;              /* basicConstraints CA:TRUE */
	int pathlen;         /* with ca: the path length constraint, -1 = none */
} kwi_cert_template;

/* A certificate for pub signed by signer (whose public key is signer_pub) as
 * issuer (its subject becomes the issuer name, its key id the AKI); issuer
 * NULL: self-signed. The signature is checked before it is returned. */
kw_rc kwi_x509_issue(const kwi_signer *signer, EVP_PKEY *signer_pub, X509 *issuer, EVP_PKEY *pub,
                     const kwi_cert_template *t, X509 **out) KW_MUST_USE;

kw_rc kwi_x509_self_signed(const kwi_signer *key, EVP_PKEY *pub, const kwi_cert_template *t,
                           X509 **out) KW_MUST_USE;
/* One revoked serial on a CRL: lowercase hex, when, RFC 5280 reason code (0:
 * unspecified, left out). */
typedef struct {
	const char *serial;
	time_t revoked_at;
	int reason;
} kwi_crl_entry;
/* A v2 CRL issued by issuer (CRL number, AKI, thisUpdate/nextUpdate, every
 * entry), signed in hardware by signer and checked with signer_pub. */
kw_rc kwi_x509_crl_sign(const kwi_signer *signer, EVP_PKEY *signer_pub, X509 *issuer,
                        const kwi_crl_entry *entries, size_t n, time_t this_update,
                        time_t next_update, long number, X509_CRL **out) KW_MUST_USE;
kw_rc kwi_x509_csr(const kwi_signer *key, EVP_PKEY *pub, const kwi_cert_template *t,
                   X509_REQ **out) KW_MUST_USE;
/* Lowercase hex digest of DER (SHA-1: 41 bytes, SHA-256: 65 bytes buffers). */
void kwi_hex(const unsigned char *p, size_t n, char *out);
kw_rc kwi_x509_thumbprints(X509 *x, char sha1[41], char sha256[65]) KW_MUST_USE;

/* ---- x509/chain.c: what a CA sends back (cert merge) ---- */
/* Every certificate in data, in order: PEM (CERTIFICATE, TRUSTED CERTIFICATE
 * or PKCS7 blocks, text around them ignored), DER certificates back to back
 * or a DER PKCS#7 bundle. source names the input in errors; empty, truncated
 * or corrupt input and other PEM blocks (a key) are refused. */
kw_rc kwi_certs_parse(const char *source, const unsigned char *data, size_t len,
                      STACK_OF(X509) * *out) KW_MUST_USE;
/* leaf's issuers among certs, in order up to a self-signed root or as far as
 * certs go: each matches by name and key identifier and verifies the
 * signature below it. *chain: a new stack holding references (free with
 * sk_X509_pop_free). dropped (may be NULL) gets {subject, reason} for every
 * other certificate (duplicates, strangers). */
kw_rc kwi_chain_order(X509 *leaf, STACK_OF(X509) * certs, STACK_OF(X509) * *chain,
                      json_t *dropped) KW_MUST_USE;
/* The chain as the store keeps it: DER certificates back to back (malloc'd;
 * NULL and 0 for an empty chain). */
kw_rc kwi_chain_der(STACK_OF(X509) * chain, unsigned char **out, size_t *len) KW_MUST_USE;

/* ---- policy/policy.c (the document itself: keyward/lifecycle.h; the model
 * core reads, its checks and its template: policy/model.h) ---- */
/* json_object_set_new / json_array_append_new that report running out of memory. */
kw_rc kwi_json_put(json_t *o, const char *k, json_t *v) KW_MUST_USE;
kw_rc kwi_json_append(json_t *a, json_t *v) KW_MUST_USE;
/* Frees what a template (kwi_policy_template) holds. */
void kwi_template_clear(kwi_cert_template *t);

#endif
