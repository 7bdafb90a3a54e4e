/*
 * kwbench-sign: signatures per second through one signing path.
 *
 * Every path signs the same 64-byte message (SHA-256) with one key, from
 * one or more threads, for a fixed time. Each thread's last signature is
 * verified in software against the key's certificate: a path that signs
 * garbage fails instead of reporting a rate.
 */
#ifndef KWBENCH_SIGN_H
#define KWBENCH_SIGN_H

#include <stddef.h>

#include <openssl/evp.h>

#define SIG_MAX 512

typedef struct {
	const char *mode;   /* provider | tpm2 | engine | esys | p11 */
	const char *key;    /* keyward:NAME, a TSS2 file, a pkcs11: URI, or a cert name */
	const char *store;  /* esys: the keyward store directory */
	const char *module; /* engine, p11: the PKCS#11 module path */
	const char *pin;    /* engine, p11: the user PIN (read from a file) */
	int rsa;            /* the key is RSA (PKCS#1 v1.5), else ECDSA */
} sign_opts;

/* One signing path: set up once, then sign from any thread. */
typedef struct sign_path {
	/* signs msg (SHA-256 and the key's scheme); *len: buffer in, signature out */
	int (*sign)(struct sign_path *p, int thread, const unsigned char *msg, size_t msg_len,
	            unsigned char *sig, size_t *len);
	void (*free)(struct sign_path *p);
	void *ctx;
} sign_path;

/* Each returns 0 and fills p, or prints why on stderr and returns -1. */
int sign_evp_open(const sign_opts *o, sign_path *p);
int sign_esys_open(const sign_opts *o, sign_path *p);
int sign_p11_open(const sign_opts *o, sign_path *p, int threads);

/* DER ECDSA-Sig-Value from big-endian r and s (each n bytes); -1 on error. */
int sign_ecdsa_der(const unsigned char *r, size_t rn, const unsigned char *s, size_t sn,
                   unsigned char *out, size_t *len);

/* SHA-256 DigestInfo prefix for RSA PKCS#1 v1.5 (19 bytes). */
extern const unsigned char sign_sha256_prefix[19];

#endif
