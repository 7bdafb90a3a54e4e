/*
 * keyward OpenSSL 3 provider — internals shared by the operation files.
 *
 * provider.c   entry point, provider context, dispatch tables
 * debug.c      KEYWARD_DEBUG tracing and error reporting (kw_error → ERR)
 * key.c        kwp_key: a hardware key as keymgmt key data (public half decoded once)
 * keymgmt.c    key management for EC and RSA keys (load, has, match, export, params)
 * signature.c  ECDSA / RSA signature contexts: hash in software, sign in the device
 * sigparams.c  signature context parameters and the AlgorithmIdentifier
 * store.c      OSSL_STORE loader for keyward:NAME[?version=N]
 * decoder.c    "KEYWARD KEY REFERENCE" PEM files → hardware keys
 *
 * No device state lives here: kw_key (core) owns the connections, reopens them
 * after fork() and serializes what must be serialized.
 */
#ifndef KEYWARD_PROVIDER_H
#define KEYWARD_PROVIDER_H

#include <stdatomic.h>
#include <stddef.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/bn.h>

#include <keyward/key.h>

#define KWP_NAME  "keyward"
#define KWP_PROPS "provider=keyward"

/* Algorithm names: the same aliases as OpenSSL's default provider. */
#define KWP_NAMES_EC    "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define KWP_NAMES_RSA   "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define KWP_NAMES_ECDSA "ECDSA"

/* Data structure name our PEM decoder gives a reference's DER body. */
#define KWP_REF_STRUCTURE "KeywardKeyRef"

/* Reason codes (get_reason_strings in provider.c). */
enum {
	KWP_R_KEY_UNAVAILABLE = 1, /* kw_key_open failed: see the message */
	KWP_R_SIGN_FAILED,         /* kw_key_sign failed: see the message */
	KWP_R_BAD_URI,
	KWP_R_BAD_REFERENCE,
	KWP_R_UNSUPPORTED, /* a signature the device cannot make */
	KWP_R_PRIVATE_KEY_NOT_EXPORTABLE,
	KWP_R_INVALID_ARGUMENT,
	KWP_R_INTERNAL,
};

typedef struct kwp_ctx {
	const OSSL_CORE_HANDLE *handle;
	OSSL_LIB_CTX *libctx;      /* a child of the application's library context */
	OSSL_LIB_CTX *core_libctx; /* libkeyward's own: the default provider only */
	OSSL_PROVIDER *core_default;
	OSSL_PROVIDER *app_default; /* our activation of the application's default provider */
	char *store_dir;            /* the config parameter "store", or NULL */
	char *agent;                /* the config parameter "agent" (a socket), or NULL */
	OSSL_FUNC_core_new_error_fn *new_error;
	OSSL_FUNC_core_set_error_debug_fn *set_error_debug;
	OSSL_FUNC_core_vset_error_fn *vset_error;
} kwp_ctx;

/* ---- debug.c ---- */

/* Whether KEYWARD_DEBUG is set to a non-empty value other than "0". */
int kwp_debug_enabled(void);
/* One line "keyward: <text>" on stderr when debugging. */
void kwp_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define KWP_TRACE(...)                                                                             \
	do {                                                                                       \
		if (kwp_debug_enabled())                                                           \
			kwp_debug(__VA_ARGS__);                                                    \
	} while (0)

/* Raises an OpenSSL error (and logs it when debugging). */
void kwp_raise_at(const kwp_ctx *prov, int reason, const char *file, int line, const char *func,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define kwp_raise(prov, reason, ...)                                                               \
	kwp_raise_at((prov), (reason), __FILE__, __LINE__, __func__, __VA_ARGS__)
/* Raises the recorded core error (kw_error_message) under the given reason. */
#define kwp_raise_kw(prov, reason) kwp_raise((prov), (reason), "%s", kwp_kw_message())
/* kw_error_message(), or a placeholder when core recorded nothing. */
const char *kwp_kw_message(void);

/* ---- provider.c ---- */

/*
 * libkeyward uses OpenSSL with the default library context (NULL). Inside the
 * provider that would be the application's, where keyward's own algorithms
 * may be found before the default provider's (a keymgmt that cannot import
 * or generate). Every call into core that may use OpenSSL runs between
 * kwp_core_enter and kwp_core_leave, which make core_libctx the default for
 * this thread.
 */
OSSL_LIB_CTX *kwp_core_enter(const kwp_ctx *prov);
void kwp_core_leave(OSSL_LIB_CTX *previous);

/* The store directory to use for a key (malloc'd): the config parameter, else
 * KEYWARD_STORE, else keyward's default. NULL (with an error raised) if none. */
char *kwp_store_dir(const kwp_ctx *prov);

/* ---- key.c ---- */

typedef struct kwp_key {
	atomic_int refs;
	kwp_ctx *prov;
	kw_key *key;
	kw_key_type type;
	int is_rsa;
	int bits, security_bits;
	/* EC: curve short name and uncompressed point; RSA: n and e. */
	const char *group;
	unsigned char *point;
	size_t point_len;
	BIGNUM *n, *e;
} kwp_key;

/* Wraps an opened key (takes over the caller's reference to k). */
kwp_key *kwp_key_new(kwp_ctx *prov, kw_key *k);
/* Opens certificate `name` (version 0 = current) from store_dir (NULL = the
 * provider's store) and wraps it; raises the core's error on failure. */
kwp_key *kwp_key_open(kwp_ctx *prov, const char *store_dir, const char *name, int version);
kwp_key *kwp_key_up_ref(kwp_key *k);
void kwp_key_free(kwp_key *k);
/* Digest length for PSS "digest" salt and the RSA modulus in bytes. */
size_t kwp_key_modulus_bytes(const kwp_key *k);

/*
 * Keys travel from the store loader and the decoder to keymgmt's load() as
 * this object reference (not a bare pointer: its size tells our reference
 * from another provider's). load() takes its own reference to the key; the
 * sender keeps and frees its own.
 */
typedef struct {
	char magic[8];
	kwp_key *key;
} kwp_key_ref;
#define KWP_KEY_REF_MAGIC "kwpkey1"
void kwp_key_ref_init(kwp_key_ref *r, kwp_key *k);
/* The key the reference names, or NULL if it is not one of ours. */
kwp_key *kwp_key_ref_get0(const void *reference, size_t reference_sz);

#endif
