/*
 * keyward — public API of libkeyward (the keystore library).
 *
 * The CLI and the OpenSSL provider use only this header (and error.h,
 * secret.h). Read results are jansson objects: the same document the CLI
 * prints with --json, so every consumer sees one shape.
 */
#ifndef KEYWARD_KEYWARD_H
#define KEYWARD_KEYWARD_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include <keyward/error.h>
#include <keyward/secret.h>
#include <keyward/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kw_store kw_store;

/* The store directory to use when none is given (malloc'd):
 * KEYWARD_STORE, else /var/lib/keyward for root, else $XDG_DATA_HOME/keyward
 * (~/.local/share/keyward). */
kw_rc kw_store_default_dir(char **out) KW_MUST_USE;

/* Creates the store directory (0700) and database (0600) if missing and
 * brings the schema up to date. *created is 1 if a new store was made. */
kw_rc kw_store_init(const char *dir, int *created) KW_MUST_USE;

/* Opens an existing store. Refuses a missing store (KW_ERR_NOT_FOUND), a
 * directory or database that group or others can reach (KW_ERR_PERM), a file
 * that is not a keyward store or is corrupt (KW_ERR_STORE), and a schema
 * newer than this build knows. Older schemas are migrated forward. */
kw_rc kw_store_open(const char *dir, kw_store **out) KW_MUST_USE;
void kw_store_close(kw_store *s);
/* Between operations of a long-lived process (keyward serve): gives up the
 * store's lock that a key-making operation took (doctor --repair waits for
 * it), which otherwise lasts until kw_store_close. */
void kw_store_idle(kw_store *s);

/* The schema version this build writes. */
int kw_store_schema_version(void);

/* ---- backends ---- */

typedef struct {
	const char *name;
	const char *kind;       /* "tpm2" | "pkcs11" */
	const char *tcti;       /* tpm2 */
	const char *module;     /* pkcs11 */
	const char *token;      /* pkcs11: label or pkcs11: URI */
	const char *pin_source; /* pkcs11: file:PATH | env:VAR (the PIN itself is never stored) */
} kw_backend_spec;

/* Adds a backend after proving it works: the device is reached and (PKCS#11)
 * the token found and logged in to. Nothing is stored on failure. */
kw_rc kw_backend_add(kw_store *s, const kw_backend_spec *spec) KW_MUST_USE;

/* JSON array of {name, kind, tcti | module, token, pin_source, certificates}. */
kw_rc kw_backend_list(kw_store *s, json_t **out) KW_MUST_USE;

/* ---- certificates ---- */

typedef struct {
	const char *name;
	const char *backend;
	const char *subject;     /* "CN=web01,O=Example" or "/CN=web01/O=Example" */
	const char *const *sans; /* "DNS:x", "IP:y"; may be NULL */
	size_t n_sans;
	const char *key_type; /* ec-p256 (default) | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096 */
	int days;             /* validity; 0 = 365 */
	const char *issuer;   /* "self" (default) | "unknown" (an external CA: a pending CSR)
	                         | "ca:NAME" (signed by keyward certificate NAME, a CA) */
	int ca;               /* a CA certificate: basicConstraints CA:TRUE, keyCertSign|cRLSign */
	int has_pathlen;      /* with ca: pathlen below is set */
	int pathlen;          /* with ca: the path length constraint (0 to 16) */
	int revocable;        /* policy key.revocable: keys a purge revokes for good, copies
	                         included (TPM: bound to an NV counter; see kw_keys_gone) */
	const json_t
	    *policy; /* a policy to start from (may be NULL); fields set above override it */
} kw_cert_request;

/* What kw_cert_create and kw_cert_renew made: the new version's facts, so a
 * caller need not read back what was just written. */
typedef struct {
	int version;
	int pending;          /* waits for kw_cert_merge: a CSR, no certificate yet */
	int previous_version; /* the current version before a renewal; 0 for a create */
	int new_key;          /* a key generated for this version (always for a create) */
	kw_key_type key_type;
	int exportable; /* as the device reports it (a key keyward made: 0) */
	char backend[64];
	char subject[512];            /* RFC 2253 (of the certificate, or of the CSR) */
	time_t not_before, not_after; /* 0 while pending */
	char serial[80];              /* lowercase hex; "" while pending */
	char thumbprint_sha256[65];   /* lowercase hex; "" while pending */
} kw_version_info;

/* Creates a certificate: a new key in the backend, a certificate signed in
 * hardware, version 1 current. Validates everything before touching the device.
 * With issuer "unknown", version 1 is pending instead: no certificate, a CSR
 * signed in hardware for an external CA (kw_cert_csr, then kw_cert_merge).
 * made (may be NULL): the version's facts. */
kw_rc kw_cert_create(kw_store *s, const kw_cert_request *req, kw_version_info *made) KW_MUST_USE;

/* JSON array of the current versions of all certificates (see kw_cert_show). */
kw_rc kw_cert_list(kw_store *s, json_t **out) KW_MUST_USE;
/* The same rows one at a time, in name order, without holding them all:
 * fn gets each row (borrowed: json_incref to keep it); a result other than
 * KW_OK stops the walk and is returned. */
typedef kw_rc (*kw_cert_row_fn)(json_t *row, void *arg);
kw_rc kw_cert_list_each(kw_store *s, kw_cert_row_fn fn, void *arg) KW_MUST_USE;

/* One version (0 = current) as JSON: name, version, status, subject, sans,
 * serial, not_before, not_after, thumbprint_sha1, thumbprint_sha256, issuer,
 * backend, key {type, exportable, generated_on_device, attributes}, ... */
kw_rc kw_cert_show(kw_store *s, const char *name, int version, json_t **out) KW_MUST_USE;

/* PEM of a version's certificate (with_chain: followed by its chain). */
kw_rc kw_cert_export(kw_store *s, const char *name, int version, int with_chain,
                     char **pem) KW_MUST_USE;

/* PEM CSR for the current key: the pending CSR if there is one, else a new
 * CSR from the certificate's policy, signed in hardware. */
kw_rc kw_cert_csr(kw_store *s, const char *name, char **pem) KW_MUST_USE;

typedef enum {
	KW_RENEW_POLICY = 0, /* as the policy says (reuse_key) */
	KW_RENEW_NEW_KEY,
	KW_RENEW_REUSE_KEY,
} kw_renew_key;

/* Adds a version (new or reused key) and makes it current atomically.
 * made (may be NULL) receives the new version's facts. With issuer "unknown" the
 * new version is pending (a CSR for an external CA; the contacts are told)
 * and the current one serves until kw_cert_merge. Refused while a version is
 * pending: one CSR at a time. Then prune, deploy and notify: a deploy that
 * fails (files or a hook; a deploy.failed event) gives KW_ERR_DEPLOY with made
 * filled in: the new version is current all the same. */
kw_rc kw_cert_renew(kw_store *s, const char *name, kw_renew_key key,
                    kw_version_info *made) KW_MUST_USE;

/*
 * Brings back the certificate an external CA issued for the pending version.
 * data (len bytes; source names it in messages) holds it alone or with its
 * chain in any order: PEM certificates or PKCS#7, DER certificate(s) or
 * PKCS#7. Exactly one certificate must hold the device's key; it must be an
 * end-entity certificate valid now. Its issuers found in data are ordered up
 * to the root and kept as its chain; the rest is dropped. The pending version
 * becomes active and current (the old current one superseded) in one
 * transaction; replacing a version counts as a renewal (prune, deploy,
 * notify). Any refusal changes nothing. *report: name, version,
 * previous_version, subject, issuer_dn, not_after, thumbprint_sha256, chain
 * (subjects, in order), dropped [{subject, reason}], notes (what the CA
 * changed from the CSR: subject, SANs). A deploy after it that fails gives
 * KW_ERR_DEPLOY with *report set: the merge stands.
 */
kw_rc kw_cert_merge(kw_store *s, const char *name, const char *source, const unsigned char *data,
                    size_t len, json_t **report) KW_MUST_USE;

/* Gives up the pending version: its key is ended as far as its device can
 * (unless another version uses it) and the version removed; a certificate
 * that never had one goes altogether. *report: name, version, key ("destroyed",
 * "revoked", "forgotten": see kw_keys_gone; "kept": another version uses it),
 * key_destroyed (key is "destroyed"), certificate_removed. */
kw_rc kw_cert_pending_cancel(kw_store *s, const char *name, json_t **report) KW_MUST_USE;

/* What became of the keys a purge let go: one count per outcome, as each
 * device reported it (what may be said about a key: DESIGN.md, invariant 7). */
typedef struct {
	int destroyed; /* destroyed on their device (PKCS#11): they cannot sign again */
	int revoked;   /* revocable TPM keys: the TPM will never authorise them again,
	                  whoever kept a copy of their wrapped blobs */
	int forgotten; /* other TPM keys: the store dropped their wrapped blobs and the TPM
	                  holds no copy, but any copy of a blob (a tss2 key-ref file, a
	                  backup of the store) still loads and signs on that TPM */
} kw_keys_gone;

/* Ends the hardware key of every version as far as its device can (see
 * kw_keys_gone), then removes the certificate. gone (may be NULL): what
 * became of the keys. */
kw_rc kw_cert_delete(kw_store *s, const char *name, kw_keys_gone *gone) KW_MUST_USE;

/* A reference to the current key for other software (malloc'd text):
 *   "keyward"    (default) a PEM naming the certificate: follows renewals;
 *                OpenSSL with the keyward provider turns it into the key
 *   "tss2"       TPM keys: the standard "TSS2 PRIVATE KEY" PEM (tpm2-openssl)
 *   "pkcs11-uri" PKCS#11 keys: the RFC 7512 URI of the key on its token
 * The last two name the current version's key and go stale on a renewal
 * with a new key. None holds a secret. */
kw_rc kw_cert_key_ref(kw_store *s, const char *name, const char *format, char **out) KW_MUST_USE;

/* Reads the custody attributes of a version's key from its device (JSON).
 * TPM keys are also certified (TPM2_Certify with a fresh nonce, "certify");
 * the evidence is stored with the version (event "cert.certified"). Without
 * an attestation key: "certify": {"available": false, "reason": ...}. */
kw_rc kw_cert_verify(kw_store *s, const char *name, int version, json_t **out) KW_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
