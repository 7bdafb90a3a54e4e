/*
 * keyward — secrets (PINs, TPM auth values, transient private key bytes).
 *
 * A kw_secret lives in libsodium guarded memory (sodium_malloc: guard pages,
 * mlock'd, canary) and is wiped and freed by kw_secret_free(). Secrets never
 * travel through argv: they come from a pin source.
 */
#ifndef KEYWARD_SECRET_H
#define KEYWARD_SECRET_H

#include <stddef.h>

#include <keyward/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kw_secret kw_secret;

/* Initialises libsodium; every other call does it on demand too. */
kw_rc kw_secret_lib_init(void) KW_MUST_USE;

/* A zeroed secret of len bytes (len may be 0). */
kw_rc kw_secret_new(size_t len, kw_secret **out) KW_MUST_USE;

/* A copy of len bytes of data. The caller still wipes its own copy. */
kw_rc kw_secret_from_bytes(const void *data, size_t len, kw_secret **out) KW_MUST_USE;

/*
 * Reads a secret from a pin source:
 *   file:PATH  the file's content, one trailing newline removed; refused when
 *              the file is readable or writable by group or others
 *   env:VAR    the variable's value
 * The error message names the source, never the secret.
 */
kw_rc kw_secret_from_source(const char *source, kw_secret **out) KW_MUST_USE;

/* Checks a pin source's syntax (and for file: that it exists with safe mode). */
kw_rc kw_secret_source_check(const char *source) KW_MUST_USE;

const unsigned char *kw_secret_data(const kw_secret *s);
size_t kw_secret_len(const kw_secret *s);

/* Shrinks the visible length (e.g. after reading fewer bytes). */
void kw_secret_truncate(kw_secret *s, size_t len);

/* Wipes and frees; NULL is a no-op. */
void kw_secret_free(kw_secret *s);

#ifdef __cplusplus
}
#endif
#endif
