/* libkeyward internals: reading what keyward cert import brings in. */
#ifndef KEYWARD_CORE_IMPORT_H
#define KEYWARD_CORE_IMPORT_H

#include "internal.h"

typedef struct {
	EVP_PKEY *key;         /* the private key: freed (OpenSSL clears it) by _clear */
	X509 *leaf;            /* the certificate whose public key is key's */
	STACK_OF(X509) * rest; /* the other certificates in the input */
	kw_key_type type;
} kwi_import_input;

/* Reads path (PEM or, with pkcs12, PKCS#12) through guarded memory; the
 * password (when password_source is given) too. One clear error for a
 * missing key or certificate, a wrong password, a mismatch, a key type
 * keyward does not keep, and truncated or foreign input; messages call the
 * input name (NULL: path). */
kw_rc kwi_import_read(const char *path, const char *name, int pkcs12, const char *password_source,
                      kwi_import_input *out) KW_MUST_USE;
/* The parsing step of kwi_import_read, on bytes in memory (path names them in
 * messages; pw may be NULL). The fuzz target tests/fuzz/fuzz_import.c. */
kw_rc kwi_import_parse(const char *path, const unsigned char *buf, size_t len, int pkcs12,
                       const kw_secret *pw, kwi_import_input *out) KW_MUST_USE;
void kwi_import_input_clear(kwi_import_input *in);

/* The keyward type of key (EC P-256/P-384, RSA 2048/3072/4096); one clear
 * KW_ERR_UNSUPPORTED naming path for any other. */
kw_rc kwi_key_type_check(const char *path, EVP_PKEY *key, kw_key_type *type) KW_MUST_USE;

/* Overwrites a file with random bytes then zeros (fsync after each) and
 * unlinks it. */
kw_rc kwi_file_shred(const char *path) KW_MUST_USE;

#endif
