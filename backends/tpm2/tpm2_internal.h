/*
 * keyward — TPM 2.0 backend internals (tpm2-tss ESYS).
 *
 * One kwb_tpm2_ctx per open(): a TCTI, an ESYS context and the storage parent
 * (SRK) under which keys are created and loaded. swtpm without a resource
 * manager has only three transient object slots shared by every client, so a
 * key is loaded for one operation and flushed right after it on every path;
 * the SRK is the only object left loaded, and close() flushes it.
 *
 * Key reference formats (see blob.c):
 *   version 1: u8 1 | TPM2B_PUBLIC (TSS marshalling) | TPM2B_PRIVATE (TPM-wrapped)
 *   version 2, a revocable key (revoke.c): u8 2 | TPM2B_PUBLIC | TPM2B_PRIVATE |
 *              u32 NV index | u64 counter value (big-endian): the key's authPolicy
 *              is TPM2_PolicyNV(index == value) and userWithAuth is clear.
 */
#ifndef KWB_TPM2_INTERNAL_H
#define KWB_TPM2_INTERNAL_H

#include <signal.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <tss2/tss2_esys.h>

#include "backend.h"

#define KWB_TPM2_BLOB_VERSION           1
#define KWB_TPM2_BLOB_VERSION_REVOCABLE 2
#define KWB_TPM2_SRK_HANDLE             0x81000001u
/* The NV indexes of revocable keys' counters: a block of the owner's range
 * (TCG handle registry: 0x01800000-0x01BFFFFF, for the owner's own use). */
#define KWB_TPM2_NV_FIRST 0x01815000u
#define KWB_TPM2_NV_LAST  0x01815fffu

typedef struct {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	char *tcti_conf;    /* as configured; NULL = tctildr default */
	ESYS_TR srk;        /* ESYS_TR_NONE until first needed */
	int srk_persistent; /* 1: 0x81000001, 0: transient primary we created */
	int lost;           /* the TPM went away: ESYS is unusable, only close() helps */
	/* The last signing key stays loaded so that a signature costs one TPM
	 * command; it is the first object flushed when the TPM runs out of slots. */
	ESYS_TR signer;            /* ESYS_TR_NONE when nothing is cached */
	TPM2B_PRIVATE signer_priv; /* identifies the cached key */
	EVP_PKEY *signer_pkey;     /* its public key, built once when it is loaded */
	int signer_checked;        /* a signature of it verified since it was loaded */
	/* A revocable signer's NV counter, found once (TPM2_NV_ReadPublic). */
	ESYS_TR signer_nv;                /* ESYS_TR_NONE when none */
	TPMI_RH_NV_INDEX signer_nv_index; /* its handle */
} kwb_tpm2_ctx;

/* A key blob, parsed. */
typedef struct {
	TPM2B_PUBLIC pub;
	TPM2B_PRIVATE priv;
	TPMI_RH_NV_INDEX nv_index; /* a revocable key's counter; 0 for other keys */
	UINT64 nv_value;           /* the value its policy requires */
} kwb_tpm2_blob;

/* A key loaded under the SRK for one operation. */
typedef struct {
	ESYS_TR handle;    /* ESYS_TR_NONE when not loaded */
	TPM2B_PUBLIC *pub; /* from TPM2_ReadPublic, when asked for */
	TPM2B_NAME *name;  /* idem */
} kwb_tpm2_loaded;

#define KWB_TPM2_LOADED_INIT                                                                       \
	{                                                                                          \
		ESYS_TR_NONE, NULL, NULL                                                           \
	}

/* The signing key for blob, loaded (or reused from the cache). Also sets
 * c->signer_pkey, its public key for checking signatures. */
kw_rc kwb_tpm2_signer_get(kwb_tpm2_ctx *c, const kwb_tpm2_blob *blob, ESYS_TR *out) KW_MUST_USE;
/* Flushes the cached signing key, if any, and frees its public key. */
void kwb_tpm2_signer_drop(kwb_tpm2_ctx *c);

/* ---- tss2.c: "TSS2 PRIVATE KEY" files ---- */
kw_rc kwb_tpm2_key_ref_export(void *ctx, const kw_key_blob *ref, const char *format,
                              char **out) KW_MUST_USE;
/* cert adopt: spec is the path of a TSS2 PRIVATE KEY file (see backend.h). */
kw_rc kwb_tpm2_key_resolve(void *ctx, const char *spec, kw_key_blob *out, unsigned char **cert_der,
                           size_t *cert_len) KW_MUST_USE;

/* ---- tpm2.c: the function table and open/close ---- */
kw_rc kwb_tpm2_open(const kw_backend_config *cfg, void **ctx) KW_MUST_USE;
void kwb_tpm2_close(void *ctx);
/* The configured TCTI string, or "(default)", for messages. */
const char *kwb_tpm2_tcti_name(const kwb_tpm2_ctx *c);
/* KW_ERR_UNAVAILABLE once the connection was lost (ESYS cannot recover). */
kw_rc kwb_tpm2_ready(const kwb_tpm2_ctx *c) KW_MUST_USE;

/* ---- error.c ---- */
/* Classifies a TSS2_RC: KW_ERR_AUTH, KW_ERR_UNAVAILABLE or KW_ERR_BACKEND. */
kw_rc kwb_tpm2_rc_code(TSS2_RC rc) KW_MUST_USE;
/* The TPM response code without the handle/parameter/session number. */
TSS2_RC kwb_tpm2_rc_base(TSS2_RC rc);
/* Records a TPM failure of operation op with the decoded rc; advice is used
 * for device errors (connection and auth errors get their own). A connection
 * error marks the context lost. */
kw_rc kwb_tpm2_fail_at(kwb_tpm2_ctx *c, TSS2_RC rc, const char *op, const char *advice,
                       const char *file, int line) KW_MUST_USE;
#define KWB_TPM2_FAIL(c, rc, op, advice)                                                           \
	kwb_tpm2_fail_at((c), (rc), (op), (advice), __FILE__, __LINE__)

/* ---- sigpipe.c ---- */
/* tcti-swtpm/mssim write() to their socket: once the TPM end has gone a write
 * raises SIGPIPE, which would kill the caller. Every entry point blocks it for
 * the calling thread and discards one raised meanwhile (the libpq technique). */
typedef struct {
	sigset_t old;
	int was_pending;
} kwb_tpm2_sigpipe;
void kwb_tpm2_sigpipe_block(kwb_tpm2_sigpipe *g);
void kwb_tpm2_sigpipe_restore(kwb_tpm2_sigpipe *g);

/* ---- srk.c ---- */
/* The storage parent, set up on first use and kept for the context's life. */
kw_rc kwb_tpm2_srk_get(kwb_tpm2_ctx *c, ESYS_TR *srk) KW_MUST_USE;
/* Flushes a transient SRK (errors ignored: the TPM may be gone). */
void kwb_tpm2_srk_release(kwb_tpm2_ctx *c);
/* "0x81000001" or "transient-primary"; NULL before first use. */
const char *kwb_tpm2_srk_describe(const kwb_tpm2_ctx *c);

/* ---- leftover.c ---- */
/* 1 when the TCTI reaches the TPM without a resource manager (swtpm:,
 * mssim:, device:/dev/tpm0), where a killed client's objects stay loaded. */
int kwb_tpm2_unmanaged(const kwb_tpm2_ctx *c);
/* On such a TPM: flushes the transient objects that are not this context's
 * (left by clients that died); returns how many. 0 on a managed TCTI. */
int kwb_tpm2_flush_leftovers(kwb_tpm2_ctx *c);
/* After trc: when it is TPM_RC_OBJECT_MEMORY, frees a slot (our cached
 * signing key, else what dead clients left) and returns 1: try again. */
int kwb_tpm2_make_room(kwb_tpm2_ctx *c, TSS2_RC trc);

/* ---- blob.c ---- */
kw_rc kwb_tpm2_blob_parse(const kw_key_blob *ref, kwb_tpm2_blob *out) KW_MUST_USE;
/* A version 1 reference. */
kw_rc kwb_tpm2_blob_encode(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv,
                           kw_key_blob *out) KW_MUST_USE;
/* A version 2 reference: a revocable key bound to counter nv_index == nv_value. */
kw_rc kwb_tpm2_blob_encode_revocable(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv,
                                     TPMI_RH_NV_INDEX nv_index, UINT64 nv_value,
                                     kw_key_blob *out) KW_MUST_USE;
/* 1 for a revocable key's reference. */
int kwb_tpm2_blob_revocable(const kwb_tpm2_blob *b);

/* ---- revoke.c: revocable keys ----
 * A revocable key has an NV counter of its own (owner range, see
 * KWB_TPM2_NV_FIRST) and the authPolicy TPM2_PolicyNV(counter == the value
 * it had when the key was made), with userWithAuth clear: each signature
 * runs a policy session (StartAuthSession, PolicyNV, then Sign). Purging it
 * increments the counter (no copy of the blob satisfies the policy again)
 * and removes the index (a counter defined later at that handle starts
 * above every value a counter had, so it cannot be brought back). */
typedef struct {
	TPMI_RH_NV_INDEX index;
	UINT64 value;    /* its value after the first increment */
	TPM2B_NAME name; /* as the TPM computes it (written) */
} kwb_tpm2_counter;
/* Defines, starts and reads a new counter (owner authorization); on failure
 * nothing is left on the TPM. */
kw_rc kwb_tpm2_nv_counter_new(kwb_tpm2_ctx *c, kwb_tpm2_counter *out) KW_MUST_USE;
/* Removes a counter made for a key that was not made (errors ignored). */
void kwb_tpm2_nv_counter_drop(kwb_tpm2_ctx *c, TPMI_RH_NV_INDEX index);
/* The policy digest (SHA-256) of TPM2_PolicyNV(nv_name == value, offset 0). */
kw_rc kwb_tpm2_nv_policy(const TPM2B_NAME *nv_name, UINT64 value, TPM2B_DIGEST *policy) KW_MUST_USE;
/* A policy session that satisfies b's policy (its counter found once and kept
 * in c->signer_nv), for one command: TPM2_Sign. KW_ERR_NOT_FOUND when the key
 * is revoked. On failure no session is left. */
kw_rc kwb_tpm2_policy_session(kwb_tpm2_ctx *c, const kwb_tpm2_blob *b,
                              ESYS_TR *session) KW_MUST_USE;
/* Frees the session: used (the command it authorised succeeded, so the TPM
 * flushed it) or flushed here. */
void kwb_tpm2_policy_session_end(kwb_tpm2_ctx *c, ESYS_TR *session, int used);
/* Revokes b: increments its counter, then removes it. KW_ERR_NOT_FOUND when
 * the counter is gone already (revoked). */
kw_rc kwb_tpm2_nv_revoke(kwb_tpm2_ctx *c, const kwb_tpm2_blob *b) KW_MUST_USE;
/* *live = 1 when b's counter exists and still holds the value b requires. */
kw_rc kwb_tpm2_nv_live(kwb_tpm2_ctx *c, const kwb_tpm2_blob *b, int *live) KW_MUST_USE;
/* The keyward key type of a public area; 0 when it is none of ours. */
kw_key_type kwb_tpm2_public_key_type(const TPMT_PUBLIC *pub);

/* ---- keygen.c ---- */
/* A key's public template: SHA-256 names, attrs, the type's curve or RSA size
 * (exponent 65537), no scheme (the signature picks it), empty authPolicy. */
kw_rc kwb_tpm2_key_template(kw_key_type type, TPMA_OBJECT attrs, TPM2B_PUBLIC *t) KW_MUST_USE;

/* ---- load.c ---- */
/* Loads the blob under the SRK; with read_public also TPM2_ReadPublic. */
kw_rc kwb_tpm2_key_load(kwb_tpm2_ctx *c, const kwb_tpm2_blob *blob, int read_public,
                        kwb_tpm2_loaded *out) KW_MUST_USE;
/* kwb_tpm2_blob_parse of ref, then kwb_tpm2_key_load with TPM2_ReadPublic. */
kw_rc kwb_tpm2_key_load_ref(kwb_tpm2_ctx *c, const kw_key_blob *ref,
                            kwb_tpm2_loaded *out) KW_MUST_USE;
/* Flushes and frees; safe on KWB_TPM2_LOADED_INIT and after a failed load. */
void kwb_tpm2_key_unload(kwb_tpm2_ctx *c, kwb_tpm2_loaded *k);

/* ---- pubkey.c ---- */
kw_rc kwb_tpm2_public_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **out) KW_MUST_USE;

/* ---- verify.c ---- */
/* The largest signature we make: RSA-4096. */
#define KWB_TPM2_SIG_MAX 512
/* Verifies a signature the TPM made against the key's public key (the
 * cached signer's c->signer_pkey) before it is handed out. A PSS signature
 * whose salt is not the digest length gives KW_ERR_UNSUPPORTED; any other
 * mismatch KW_ERR_BACKEND. */
kw_rc kwb_tpm2_sig_check(EVP_PKEY *pkey, const kw_sign_params *p, const unsigned char *dgst,
                         size_t dgst_len, const unsigned char *sig, size_t sig_len) KW_MUST_USE;

/* Lowercase hex of n bytes (malloc'd; NULL when out of memory): attrs.c. */
char *kwb_tpm2_hex(const unsigned char *b, size_t n);

/* ---- the operations (keygen.c, pubkey.c, sign.c, attrs.c) ---- */
kw_rc kwb_tpm2_key_generate(void *ctx, kw_key_type type, const char *label,
                            kw_key_blob *out) KW_MUST_USE;
/* A revocable key (revoke.c): a counter of its own, then TPM2_Create with
 * userWithAuth clear and the counter's PolicyNV as authPolicy. */
kw_rc kwb_tpm2_key_generate_revocable(void *ctx, kw_key_type type, const char *label,
                                      kw_key_blob *out) KW_MUST_USE;
kw_rc kwb_tpm2_key_destroy(void *ctx, const kw_key_blob *ref, kw_key_end *end) KW_MUST_USE;
/* import.c */
kw_rc kwb_tpm2_key_import(void *ctx, EVP_PKEY *key, kw_key_type type, const char *label,
                          kw_key_blob *out) KW_MUST_USE;
/* key_import's two halves, apart so that a test can tamper between them.
 * First the key's public area and its sensitive area wrapped for the SRK
 * (kwb_tpm2_wrap_outer; dup is guarded memory the caller provides), */
kw_rc kwb_tpm2_import_wrap(kwb_tpm2_ctx *c, EVP_PKEY *key, kw_key_type type, TPM2B_PUBLIC *pub,
                           TPM2B_PRIVATE *dup, TPM2B_ENCRYPTED_SECRET *seed) KW_MUST_USE;
/* then TPM2_Import under the SRK, proved by loading the result. A duplicate
 * the TPM finds altered (TPM_RC_INTEGRITY) gives KW_ERR_BACKEND, the TPM's
 * code as the device code. */
kw_rc kwb_tpm2_import_wrapped(kwb_tpm2_ctx *c, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *dup,
                              const TPM2B_ENCRYPTED_SECRET *seed, kw_key_blob *out) KW_MUST_USE;

/* ---- wrap.c: the outer wrapper for TPM2_Import (TPM 2.0 Part 1, duplication) ---- */
/* Wraps sens, the sensitive area of the object whose public area is pub, so
 * that only parent (the SRK's public area: ECC P-256/P-384 or RSA, nameAlg
 * SHA-256, AES-CFB) can open it: seed gets TPM2_Import's inSymSeed (ECC: an
 * ephemeral point; RSA: the OAEP-encrypted seed) and dup the duplicate,
 * TPM2B_DIGEST(outer HMAC) || AES-CFB(marshalled TPM2B_SENSITIVE). The seed,
 * the ECDH secret, the derived keys and the marshalled plaintext live in
 * guarded memory and are wiped on every path. KW_ERR_UNSUPPORTED for another
 * kind of parent. */
kw_rc kwb_tpm2_wrap_outer(const TPMT_PUBLIC *parent, const TPM2B_PUBLIC *pub,
                          const TPM2B_SENSITIVE *sens, TPM2B_PRIVATE *dup,
                          TPM2B_ENCRYPTED_SECRET *seed) KW_MUST_USE;
kw_rc kwb_tpm2_key_public(void *ctx, const kw_key_blob *ref, unsigned char **der,
                          size_t *der_len) KW_MUST_USE;
kw_rc kwb_tpm2_key_sign(void *ctx, const kw_key_blob *ref, const kw_sign_params *p,
                        const unsigned char *dgst, size_t dgst_len, unsigned char *sig,
                        size_t *sig_len) KW_MUST_USE;
kw_rc kwb_tpm2_key_attrs(void *ctx, const kw_key_blob *ref, kw_key_attrs *out) KW_MUST_USE;
/* certify.c */
kw_rc kwb_tpm2_key_certify(void *ctx, const kw_key_blob *ref, const unsigned char *nonce,
                           size_t nonce_len, json_t **evidence) KW_MUST_USE;

#endif
