/*
 * keyward — importing an existing certificate and its private key into
 * hardware (keyward cert import).
 */
#ifndef KEYWARD_IMPORT_H
#define KEYWARD_IMPORT_H

#include <jansson.h>

#include <keyward/error.h>
#include <keyward/keyward.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
	const char *name;
	const char *backend;
	const char *pem_path;        /* PEM: certificate(s) and one private key, or ... */
	const char *pkcs12_path;     /* ... a PKCS#12 (PFX) file; exactly one of the two */
	const char *password_source; /* file:PATH | env:VAR for an encrypted key; may be NULL */
	int shred_input;             /* after success: overwrite the input, fsync, unlink */
	const char *input_name;      /* how messages name the input; NULL: by its path */
} kw_cert_import_request;

/*
 * Reads the certificate, its chain and its private key (PKCS#8, traditional
 * RSA/EC PEM, encrypted PEM, PKCS#12), checks the key matches the certificate
 * and is EC P-256/P-384 or RSA 2048/3072/4096, imports the key into the
 * backend's device as non-exportable, wipes every software copy keyward made
 * (guarded memory) and records version 1 with a policy derived from the
 * certificate and the event "cert.imported". Any refusal leaves the store and
 * the device as they were. *out (may be NULL): {name, version, backend,
 * key_type, generated_on_device, exportable, issuer, shredded}.
 */
kw_rc kw_cert_import(kw_store *s, const kw_cert_import_request *req, json_t **out) KW_MUST_USE;

typedef struct {
	const char *name;
	const char *backend;
	const char *key_uri;   /* pkcs11: RFC 7512 URI of one private key on the token */
	const char *tss2_path; /* tpm2: a "TSS2 PRIVATE KEY" file; needs cert_path */
	const char *cert_path; /* PEM certificate (and chain); pkcs11 default: the token's */
} kw_cert_adopt_request;

/*
 * Brings a key other software made on the backend's device under management
 * without touching the device: resolves it (key_resolve), reads its public
 * key and custody attributes back, refuses an exportable key or a key type
 * keyward does not keep, checks the certificate (cert_path, else the one the
 * device keeps with the key) matches, and records version 1 with a policy
 * derived from the certificate and the event "cert.adopted". Any refusal
 * leaves the store and the device as they were. *out (may be NULL): {name,
 * version, backend, key_type, generated_on_device, exportable, issuer,
 * certificate_source}.
 */
kw_rc kw_cert_adopt(kw_store *s, const kw_cert_adopt_request *req, json_t **out) KW_MUST_USE;

/* Makes OpenSSL wipe every block it frees (its ASN.1 decoder frees some key
 * bytes uncleansed). Call first thing in main(), before any OpenSSL use:
 * returns 0 when it is too late (OpenSSL already allocated), 1 when set. */
int kw_openssl_wipe_on_free(void);

/* Keeps this process's memory out of core dumps and debuggers: no core file
 * (RLIMIT_CORE 0) and not dumpable (PR_SET_DUMPABLE 0: no core, no ptrace
 * attach by the same user, /proc/PID/mem closed to others). Call in main()
 * before reading any secret (PIN, password, imported key). The commands
 * keyward runs (hooks, channel commands) get the core limit back. Returns 0
 * when either setting failed, 1 when both hold. */
int kw_process_protect(void);

#ifdef __cplusplus
}
#endif
#endif
