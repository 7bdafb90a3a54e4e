/* libkeyward internals: issuing and recording certificate versions. */
#ifndef KEYWARD_VERSION_H
#define KEYWARD_VERSION_H

#include "policy/model.h"
#include "store/store_certs.h"

typedef struct {
	X509 *cert;           /* NULL while pending: an external CA has the CSR */
	X509_REQ *csr;        /* issuer "unknown": the CSR the version waits on */
	unsigned char *chain; /* issuer "ca:NAME": the CA's certificate and chain (DER) */
	size_t chain_len;
	char issuer[80]; /* the policy's issuer.name when it was issued */
	kw_key_attrs attrs;
	char sha1[41];
	char sha256[65];
	char serial[80];
	time_t not_before;
	time_t not_after;
} kwi_issued;

void kwi_issued_clear(kwi_issued *v);

/* Issues for the key ref as the policy's issuer says, attributes read back:
 * "self" signs the certificate with the key itself; "unknown" makes a CSR
 * signed in hardware and leaves out->cert NULL (the version is pending);
 * "ca:NAME" has keyward CA NAME sign it in its device (out->chain: the CA's
 * chain); "acme:NAME" has ACME issuer NAME issue it for a CSR signed in
 * hardware (out->chain: the chain the server sent). previous: the version
 * being renewed (NULL for a new certificate). */
kw_rc kwi_issue(kw_store *s, kwi_device *dev, const kw_key_blob *ref, kw_key_type type,
                const kwi_policy *policy, X509 *previous, time_t now, kwi_issued *out) KW_MUST_USE;

/* Fills thumbprints, serial and validity from x (not taken). */
kw_rc kwi_issued_facts(X509 *x, kwi_issued *out) KW_MUST_USE;

/* Inserts a version row (inside the caller's transaction): active with its
 * certificate, or pending with its CSR when v->cert is NULL. */
kw_rc kwi_version_insert(kw_store *s, int64_t cert_id, int version, int64_t backend_id,
                         const kw_key_blob *ref, kw_key_type type, const kwi_issued *v,
                         time_t now) KW_MUST_USE;

/* Best effort, after the commit: the certificate next to its key on the
 * device for other software (PKCS#11 tools find both by CKA_ID). */
void kwi_cert_mirror(kwi_device *dev, const kw_key_blob *ref, X509 *x);

/* Before a version's key signs for the certificate again (cert csr, renew
 * with the same key): the device's public key must be the one cert carries
 * (issue 14: an edited key blob made CSRs and certificates for CN=tp on
 * another certificate's key). A mismatch is recorded (event
 * cert.key_mismatch) and refused. cert NULL (nothing issued yet): nothing to
 * compare. *pub (may be NULL) gets the device's key. */
kw_rc kwi_version_key_match(kw_store *s, const char *name, int version, kwi_device *dev,
                            const kw_key_blob *ref, kw_key_type type, X509 *cert,
                            EVP_PKEY **pub) KW_MUST_USE;

/* ---- cert/pending.c: a version waiting for its certificate (issuer "unknown") ---- */
typedef struct {
	int64_t cert_id;
	int current; /* the certificate's current version */
	int version; /* the pending version; 0: none */
	int64_t backend_id;
	kw_key_type type;
	kw_key_blob ref;
	unsigned char *csr_der;
	size_t csr_len;
} kwi_pending;

/* The live certificate name's row (flags: KWI_LOAD_*); an unknown or
 * deleted certificate is refused, as every command names them ("unknown
 * certificate", "is deleted" with the recover hint). *row is cleared by the
 * caller either way. */
kw_rc kwi_cert_live_get(kw_store *s, const char *name, unsigned flags,
                        kwi_cert_row *row) KW_MUST_USE;

/* The live certificate's pending version (p->version 0 when there is none;
 * an unknown or deleted certificate is an error). */
kw_rc kwi_pending_load(kw_store *s, const char *name, kwi_pending *p) KW_MUST_USE;
void kwi_pending_clear(kwi_pending *p);

/* Refuses a second pending version: one CSR at a time. */
kw_rc kwi_pending_refuse(kw_store *s, const char *name) KW_MUST_USE;

/* Tells the contacts once ("pending-action", threshold: the version) that
 * version waits for a certificate. Outside any transaction. */
kw_rc kwi_pending_notify(kw_store *s, const char *name, int version) KW_MUST_USE;

/* ---- cert/facts.c: what listings print, kept with the version ---- */
typedef struct {
	char *subject;   /* the subject as cert show prints it (RFC 2253) */
	char *issuer_dn; /* the issuer's DN, the same way */
	char *sans;      /* JSON text of the SAN array */
	char *spki;      /* the SubjectPublicKeyInfo's SHA-256 (hex); NULL: none */
} kwi_facts;

kw_rc kwi_facts_make(X509 *x, kwi_facts *f) KW_MUST_USE;
void kwi_facts_clear(kwi_facts *f);
/* Lends f's four texts to r's facts (f outlives r). */
void kwi_facts_lend(const kwi_facts *f, kwi_version_row *r);
/* Records the facts of every version with a certificate and none recorded
 * (schema migration 5 -> 6; inside the caller's transaction). */
kw_rc kwi_facts_backfill(kw_store *s) KW_MUST_USE;
json_t *kwi_spki_sha256(X509_PUBKEY *key);
json_t *kwi_cert_sans(X509 *x);

#endif
