/*
 * keyward — the one backend function table.
 *
 * core talks to hardware only through this header. Two implementations:
 * backends/tpm2 (tpm2-tss ESYS) and backends/pkcs11 (p11-kit). A NULL entry in
 * the table means "unsupported". Every function records detail in the error
 * record (keyward/error.h), with the device's own code decoded by name.
 *
 * Private key material never leaves through this interface: keys are
 * generated on the device (or imported into it once, key_import), the caller
 * gets an opaque key blob (TPM: the marshalled TPM2B_PUBLIC followed by
 * the TPM-wrapped TPM2B_PRIVATE; PKCS#11: CKA_ID),
 * the public key as DER SubjectPublicKeyInfo, and signatures over digests.
 */
#ifndef KEYWARD_BACKEND_H
#define KEYWARD_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/types.h>

#include <keyward/error.h>
#include <keyward/secret.h>
#include <keyward/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Property query for public-key objects built from device data: prefer the
 * default provider, so a process that loaded keyward's own provider never
 * resolves them back to it. */
#define KW_SOFTWARE_PROPQ "?provider=default"

/* The device's own identifier of a key, opaque to core: a TPM key's wrapped
 * private blob (with its public area), a PKCS#11 key's CKA_ID. data is
 * malloc'd and holds no secret. (A "key reference" is something else: what
 * other software is given to find the key, `cert key-ref`.) */
typedef struct {
	unsigned char *data;
	size_t len;
} kw_key_blob;

void kw_key_blob_clear(kw_key_blob *ref);

/* What the device says about a key, read back from it. */
typedef struct {
	int exportable;          /* 1 if the device would let the private key out */
	int generated_on_device; /* TPM sensitiveDataOrigin / PKCS#11 CKA_LOCAL */
	json_t *evidence;        /* device attributes by their own names; caller owns */
} kw_key_attrs;

void kw_key_attrs_clear(kw_key_attrs *a);

/*
 * What key_destroy did to a key: what core may say about it (DESIGN.md,
 * custody invariant 7: never "destroyed" where a copy can still be used).
 */
typedef enum {
	/* The device destroyed the key (PKCS#11 C_DestroyObject): it cannot
	 * sign again. Only a copy of the token itself (a backup of its files, a
	 * cloned HSM) would still hold it. */
	KW_KEY_DESTROYED = 1,
	/* The device will never authorise the key again, whoever holds a copy
	 * of it (TPM: the NV counter its authPolicy names has moved past the
	 * value the policy requires, and the counter is gone; a copy of the
	 * wrapped blob still loads but cannot sign). */
	KW_KEY_REVOKED,
	/* Nothing of the key lives on the device and nothing there changed:
	 * only the caller's reference goes (TPM: the wrapped blob). Any copy of
	 * the reference — a "TSS2 PRIVATE KEY" file from key_ref_export, a
	 * backup of the store — still loads and signs on that device. */
	KW_KEY_FORGOTTEN,
} kw_key_end;

/* A key keyward made, as found on the device (key_list). */
typedef struct {
	kw_key_blob ref;
	char label[80]; /* its CKA_LABEL, e.g. "keyward:web01" (cut to fit) */
} kw_device_key;

/* Configuration of one backend as stored in the store (no secret in here). */
typedef struct {
	const char *name; /* the admin's name for it */
	const char
	    *tcti; /* tpm2: TCTI config, e.g. "swtpm:host=127.0.0.1,port=2321"; NULL = default */
	const char *module;     /* pkcs11: p11-kit module name or path of the .so */
	const char *token;      /* pkcs11: token label or RFC 7512 "pkcs11:" URI */
	const char *pin_source; /* pkcs11: "file:PATH" or "env:VAR" */
	/* pkcs11: the PIN already read from pin_source (guarded memory), used
	 * instead of reading it again: a server's workers may not be allowed to
	 * read the pin file their master read. NULL: read pin_source. */
	const kw_secret *pin;
} kw_backend_config;

/*
 * Capabilities: what core may count on from a backend, as a mask beside the
 * function table (curl's vtls "supports" bits), so that core asks "can it?"
 * and never "which backend is this?". Outside kw_backend_ops_find no code
 * compares a backend's kind.
 */
/* key_sign may run on one ctx from several threads at once (the other calls
 * are always serialised by the caller). Without it every call on a ctx is
 * serialised. */
#define KW_CAP_PARALLEL_SIGN 0x01u
/* A connection opened in a process leaves its forked children able to open
 * their own. Not so for tpm2-abrmd's TCTI (GDBus does not survive fork):
 * a child of a process that used it hangs. */
#define KW_CAP_FORK_SAFE 0x02u
/* RSA-PSS signatures with any salt length. Without it only a salt as long
 * as the digest: a TPM picks the salt length itself (TPM 2.0 Part 1, B.7),
 * so a TLS peer's other salt length cannot be honoured. */
#define KW_CAP_PSS_ANY_SALT 0x04u
/* key_resolve takes an RFC 7512 "pkcs11:" URI (cert adopt --key-uri). */
#define KW_CAP_RESOLVE_URI 0x08u
/* key_resolve takes the path of a "TSS2 PRIVATE KEY" file (cert adopt --tss2). */
#define KW_CAP_RESOLVE_TSS2 0x10u
/* Configured by module and token (both required) and a pin source
 * (optional): kw_backend_config.module, .token, .pin_source. */
#define KW_CAP_CONF_TOKEN 0x20u
/* Configured by a TCTI string (optional): kw_backend_config.tcti. */
#define KW_CAP_CONF_TCTI 0x40u
/* key_destroy always destroys the key on the device (KW_KEY_DESTROYED): every
 * key it makes is as good as a revocable one. */
#define KW_CAP_DESTROY_REAL 0x80u

typedef struct kw_backend_ops {
	const char *kind; /* "tpm2" or "pkcs11": the name in the store, never compared outside
	                     kw_backend_ops_find */

	/* KW_CAP_* that hold for every configuration. */
	unsigned caps;

	/* KW_CAP_* that hold for this configuration beyond caps (only
	 * KW_CAP_FORK_SAFE depends on one today: the tpm2 TCTI). Only cfg->name
	 * and the device fields are read; no device is contacted. NULL: none.
	 * Callers use kw_backend_caps. */
	unsigned (*caps_config)(const kw_backend_config *cfg);

	/* Connects to the device (and logs in). Fails with KW_ERR_UNAVAILABLE when
	 * it cannot be reached, KW_ERR_NOT_FOUND for a missing token, KW_ERR_AUTH for a
	 * wrong PIN. */
	kw_rc (*open)(const kw_backend_config *cfg, void **ctx) KW_MUST_USE;
	void (*close)(void *ctx);

	/* Generates a non-exportable signing key on the device. label is a hint
	 * (PKCS#11 CKA_LABEL). */
	kw_rc (*key_generate)(void *ctx, kw_key_type type, const char *label,
	                      kw_key_blob *out) KW_MUST_USE;

	/* Generates a non-exportable signing key that key_destroy can revoke
	 * for good, copies of its reference included (KW_KEY_REVOKED). tpm2: a
	 * key whose authPolicy is TPM2_PolicyNV on an NV counter of its own
	 * (userWithAuth clear: each signature runs the policy). Costs the device
	 * a little of its NV space per key, given back when it is revoked. NULL:
	 * unsupported (see KW_CAP_DESTROY_REAL for a device whose every key_destroy
	 * is final). */
	kw_rc (*key_generate_revocable)(void *ctx, kw_key_type type, const char *label,
	                                kw_key_blob *out) KW_MUST_USE;

	/* Imports an existing private key into the device as a non-exportable
	 * signing key (TPM: TPM2_Import under the SRK, with an outer wrapper; PKCS#11:
	 * C_CreateObject with CKA_SENSITIVE, !CKA_EXTRACTABLE). type is the key's checked keyward
	 * type. The backend copies the private components only into guarded memory and wipes them
	 * before it returns, on every path; the caller frees key (whose own BIGNUMs OpenSSL clears
	 * on free) right after. The only interface that carries private key material in: it never
	 * goes out. NULL: unsupported. */
	kw_rc (*key_import)(void *ctx, EVP_PKEY *key, kw_key_type type, const char *label,
	                    kw_key_blob *out) KW_MUST_USE;

	/* DER SubjectPublicKeyInfo of the key, read from the device (malloc'd).
	 * KW_ERR_NOT_FOUND when the key is gone. */
	kw_rc (*key_public)(void *ctx, const kw_key_blob *ref, unsigned char **der,
	                    size_t *der_len) KW_MUST_USE;

	/* Signs a digest computed in software. *sig_len is the buffer size on
	 * entry and the signature length on return. */
	kw_rc (*key_sign)(void *ctx, const kw_key_blob *ref, const kw_sign_params *p,
	                  const unsigned char *dgst, size_t dgst_len, unsigned char *sig,
	                  size_t *sig_len) KW_MUST_USE;

	/* Reads the key's custody attributes back from the device. */
	kw_rc (*key_attrs)(void *ctx, const kw_key_blob *ref, kw_key_attrs *out) KW_MUST_USE;

	/* A reference to the key in a format other tools read (malloc'd text):
	 * tpm2 "tss2" (a "TSS2 PRIVATE KEY" PEM: the wrapped blob and its parent,
	 * as tpm2-openssl and tpm2-tools read it); pkcs11 "pkcs11-uri" (RFC 7512).
	 * KW_ERR_UNSUPPORTED for a format the backend does not have. */
	kw_rc (*key_ref_export)(void *ctx, const kw_key_blob *ref, const char *format,
	                        char **out) KW_MUST_USE;

	/* Attaches the key's certificate on the device, replacing an older one of
	 * the same key (PKCS#11: a CKO_CERTIFICATE with the key's CKA_ID, so
	 * other PKCS#11 software finds it). NULL: the device keeps none. */
	kw_rc (*cert_attach)(void *ctx, const kw_key_blob *ref, const unsigned char *der,
	                     size_t len) KW_MUST_USE;

	/* Ends the key as far as the device can (see kw_key_end): PKCS#11
	 * destroys the object; a TPM key made revocable (key_generate_revocable)
	 * is revoked; any other TPM key has nothing on the device to end. *end
	 * (may be NULL) says which happened, also with KW_ERR_NOT_FOUND (already
	 * gone: the end it had). The caller drops the reference afterwards. */
	kw_rc (*key_destroy)(void *ctx, const kw_key_blob *ref, kw_key_end *end) KW_MUST_USE;

	/* Names a key other software made on the device, without touching it
	 * (cert adopt). pkcs11: spec is an RFC 7512 URI (id= and/or object=) that
	 * must match exactly one private key, which must have a CKA_ID (the
	 * reference). tpm2: spec is the path of a "TSS2 PRIVATE KEY" file
	 * (parent 0x40000001 or 0x81000001) whose key must load under the SRK;
	 * the reference is its blob. *cert_der (malloc'd, may be NULL): the certificate the
	 * device keeps for that key. NULL: unsupported. */
	kw_rc (*key_resolve)(void *ctx, const char *spec, kw_key_blob *out,
	                     unsigned char **cert_der, size_t *cert_len) KW_MUST_USE;

	/* Has the device attest to the key (TPM: TPM2_Certify by a transient
	 * attestation key in the endorsement hierarchy, checked in software)
	 * with nonce as qualifying data. *evidence (caller owns):
	 * {"certify": {...}}. KW_ERR_UNSUPPORTED when no attestation key is
	 * available. NULL: unsupported. */
	kw_rc (*key_certify)(void *ctx, const kw_key_blob *ref, const unsigned char *nonce,
	                     size_t nonce_len, json_t **evidence) KW_MUST_USE;

	/* Lists the keys keyward made on the device, whether the store knows
	 * them or not (keyward doctor). pkcs11: every object labelled
	 * "keyward:..." with a 16-byte CKA_ID, one entry per CKA_ID; objects
	 * other software made never appear. *out is malloc'd (free with
	 * kw_device_keys_free). NULL: the device holds no objects of keyward's
	 * own (tpm2: keys are wrapped blobs kept in the store). */
	kw_rc (*key_list)(void *ctx, kw_device_key **out, size_t *n) KW_MUST_USE;
} kw_backend_ops;

void kw_device_keys_free(kw_device_key *keys, size_t n);

/* The implementation for a kind, or NULL. */
const kw_backend_ops *kw_backend_ops_find(const char *kind);

/* The capabilities of ops configured as cfg: ops->caps and what
 * ops->caps_config adds. cfg NULL: ops->caps only. */
unsigned kw_backend_caps(const kw_backend_ops *ops, const kw_backend_config *cfg);

extern const kw_backend_ops kwb_tpm2_ops;
extern const kw_backend_ops kwb_p11_ops;

#ifdef __cplusplus
}
#endif
#endif
