/*
 * keyward — a certificate version's hardware key, opened for signing.
 *
 * This is the OpenSSL provider's view of the store: it names a certificate
 * (stable across renewals), reads what it needs from the store once, and
 * signs digests in the device. The store is not kept open.
 *
 * Devices are shared: every kw_key of one backend in a process uses one
 * connection (a TPM socket serves one client at a time). The connection is
 * opened on first use, re-opened in a child after fork() (the parent's is
 * abandoned, never closed from the child), and re-opened once when the device
 * went away and came back. A TPM connection is used by one thread at a time;
 * PKCS#11 signing runs in parallel on a pool of sessions.
 */
#ifndef KEYWARD_KEY_H
#define KEYWARD_KEY_H

#include <stddef.h>

#include <keyward/error.h>
#include <keyward/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kw_key kw_key;

/*
 * Opens the key of certificate `name` in the store at store_dir, version 0 =
 * the current one. Refuses an unknown or disabled certificate, a version
 * without an issued certificate, and a device that cannot be reached (the
 * device is contacted once, to prove the key is there).
 */
kw_rc kw_key_open(const char *store_dir, const char *name, int version, kw_key **out) KW_MUST_USE;

/* A new reference to the same key (kw_key objects are reference counted). */
kw_key *kw_key_up_ref(kw_key *k);
/* Drops a reference; NULL is a no-op. */
void kw_key_free(kw_key *k);

const char *kw_key_name(const kw_key *k);
int kw_key_version(const kw_key *k);
kw_key_type kw_key_get_type(const kw_key *k);
/* "tpm2" or "pkcs11". */
const char *kw_key_backend_kind(const kw_key *k);

/* DER SubjectPublicKeyInfo, certificate, and chain certificates (borrowed). */
const unsigned char *kw_key_spki(const kw_key *k, size_t *len);
const unsigned char *kw_key_cert(const kw_key *k, size_t *len);
size_t kw_key_chain_count(const kw_key *k);
const unsigned char *kw_key_chain_cert(const kw_key *k, size_t i, size_t *len);

/* Largest signature this key makes (RSA: modulus bytes; ECDSA: DER maximum). */
size_t kw_key_sig_max(const kw_key *k);

/* Whether the device can make this kind of signature (e.g. the TPM does
 * PSS only with a salt as long as the digest). */
int kw_key_can_sign(const kw_key *k, const kw_sign_params *p);

/* Signs a digest computed in software; thread safe and fork safe.
 * *sig_len: buffer size in, signature length out. */
kw_rc kw_key_sign(kw_key *k, const kw_sign_params *p, const unsigned char *dgst, size_t dgst_len,
                  unsigned char *sig, size_t *sig_len) KW_MUST_USE;

/* ---- key reference files (keyward cert key-ref) ---- */

/* PEM type of keyward's reference file: no secret, no key material. */
#define KW_KEYREF_PEM_NAME "KEYWARD KEY REFERENCE"

/* Encodes / decodes the DER body of a reference: certificate name, store
 * directory (may be NULL = the provider's configured store), version (0 = current). */
kw_rc kw_keyref_encode(const char *name, const char *store_dir, int version, unsigned char **der,
                       size_t *len) KW_MUST_USE;
kw_rc kw_keyref_decode(const unsigned char *der, size_t len, char **name, char **store_dir,
                       int *version) KW_MUST_USE;

/* Parses "keyward:NAME" or "keyward:NAME?version=N" (name and version out;
 * name malloc'd). KW_ERR_PARSE with the reason otherwise. */
kw_rc kw_uri_parse(const char *uri, char **name, int *version) KW_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
