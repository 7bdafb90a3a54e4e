/*
 * keyward — PKCS#11 backend internals (p11-kit).
 *
 * One context = one p11-kit module, one token, one R/W session logged in as
 * CKU_USER, plus a pool of sessions for signing. Key references are the CKA_ID
 * of the key pair. key_sign is thread safe (KW_CAP_PARALLEL_SIGN): each
 * signature takes a session of its own from the pool, the key cache and the
 * pool are behind one mutex, the error record is per thread, and p11-kit
 * initialises the module with CKF_OS_LOCKING_OK (tests/backends/
 * test_pkcs11_parallel.c checks both). The other calls share the main
 * session and must be serialised by the caller.
 */
#ifndef KEYWARD_BACKENDS_P11_H
#define KEYWARD_BACKENDS_P11_H

#include <stddef.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include "backend.h"

/* CK_TOKEN_INFO.label is 32 bytes, space padded, not NUL terminated. */
#define KWB_P11_LABEL_MAX 32
/* the longest CKA_ID the key cache and the fresh key keep */
#define KWB_P11_CACHE_ID_MAX 64

/* Spare sessions for signing, so threads do not queue on one session. */
typedef struct kwb_p11_pool kwb_p11_pool;

typedef struct kwb_p11 {
	CK_FUNCTION_LIST *fn; /* the p11-kit managed module */
	int initialized;      /* p11_kit_module_initialize succeeded */
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE session;
	int have_session;
	int logged_in;                     /* our C_Login succeeded (we log out on close) */
	char module[256];                  /* module name or path, for messages */
	char token[KWB_P11_LABEL_MAX + 1]; /* token label, trailing spaces removed */
	kwb_p11_pool *pool;                /* shared by copies made for pooled signing */
	/* The key this connection generated last, which no one else knows yet:
	 * its public object, and whether we stored a certificate for it (if not,
	 * there is no old one to search for and replace). SoftHSM re-reads every
	 * object file of the token per search. */
	unsigned char fresh_id[KWB_P11_CACHE_ID_MAX];
	size_t fresh_len;
	CK_OBJECT_HANDLE fresh_pub;
	int fresh_has_cert;
} kwb_p11;

/* ---- cert.c: the certificate on the token, URIs ---- */
kw_rc kwb_p11_cert_attach(void *ctx, const kw_key_blob *ref, const unsigned char *der,
                          size_t len) KW_MUST_USE;
kw_rc kwb_p11_key_ref_export(void *ctx, const kw_key_blob *ref, const char *format,
                             char **out) KW_MUST_USE;

/* ---- adopt.c: a key other software made (see backend.h key_resolve) ---- */
kw_rc kwb_p11_key_resolve(void *ctx, const char *spec, kw_key_blob *out, unsigned char **cert_der,
                          size_t *cert_len) KW_MUST_USE;

/* ---- pool.c: signing sessions ---- */

kw_rc kwb_p11_pool_new(kwb_p11 *p) KW_MUST_USE;
/* A session for one signature: an idle one, or a new one. */
kw_rc kwb_p11_session_take(kwb_p11 *p, CK_SESSION_HANDLE *s) KW_MUST_USE;
/* Gives it back; a session the token broke (broken != 0) is closed instead. */
void kwb_p11_session_give(kwb_p11 *p, CK_SESSION_HANDLE s, int broken);
/* How many sessions the pool has opened so far (diagnostics and tests). */
size_t kwb_p11_pool_opened(const kwb_p11 *p);
/* Closes the idle sessions and frees the pool. */
void kwb_p11_pool_free(kwb_p11 *p);

/* The signing key cache, shared (thread safe) by every signature on this
 * context: CKA_ID -> (private key handle, CKA_KEY_TYPE), so a signature does
 * not search the token (SoftHSM re-reads its object files on each search).
 * At most 64 keys (least recently used evicted); IDs longer than
 * KWB_P11_CACHE_ID_MAX are never cached. A hit is only a hint: a user checks
 * the handle still names that key (kwb_p11_key_still) unless the entry was
 * confirmed less than KWB_P11_RECHECK_MS ago (signing only; see sign.c).
 * Filled by the searches of kwb_p11_find_private (confirmed) and by key
 * generation (the new handle, not confirmed yet). */
#define KWB_P11_RECHECK_MS 100u
/* 1 and the entry on a hit, 0 on a miss; *recent (may be NULL) is 1 when the
 * handle was confirmed less than KWB_P11_RECHECK_MS ago. */
int kwb_p11_keycache_get(kwb_p11 *p, const unsigned char *id, size_t len, CK_OBJECT_HANDLE *h,
                         CK_KEY_TYPE *kt, int *recent);
/* Records a key's handle (counted as a search, and confirmed, when searched
 * is 1). */
void kwb_p11_keycache_put(kwb_p11 *p, const unsigned char *id, size_t len, CK_OBJECT_HANDLE h,
                          CK_KEY_TYPE kt, int searched);
/* Marks the entry for this CKA_ID confirmed now, if it still holds handle h. */
void kwb_p11_keycache_confirm(kwb_p11 *p, const unsigned char *id, size_t len, CK_OBJECT_HANDLE h);
/* 1 when ref is the key this connection generated last (p->fresh_id). */
int kwb_p11_is_fresh(const kwb_p11 *p, const kw_key_blob *ref);
/* Forgets the entry for this CKA_ID, if any. */
void kwb_p11_keycache_drop(kwb_p11 *p, const unsigned char *id, size_t len);
/* How many signing key searches went to the token so far (tests). */
size_t kwb_p11_keycache_searches(const kwb_p11 *p);

/* ---- module.c: loading and token selection ---- */

/* Loads (and initialises) the module: a path when spec contains '/', else a
 * p11-kit registered module name. Sets p->fn, p->initialized, p->module. */
kw_rc kwb_p11_module_load(kwb_p11 *p, const char *spec) KW_MUST_USE;

/* Finds the one initialised token matching spec (label or "pkcs11:" URI).
 * Sets p->slot and p->token. */
kw_rc kwb_p11_token_select(kwb_p11 *p, const char *spec) KW_MUST_USE;

/* Finalises and releases the module; NULL-safe on p->fn. */
void kwb_p11_module_unload(kwb_p11 *p);

/* Copies a space-padded PKCS#11 string into a NUL-terminated buffer of
 * size n+1, dropping the padding. */
void kwb_p11_str_trim(char *dst, const unsigned char *src, size_t n);

/* ---- rv.c: CK_RV names ---- */

/* "CKR_PIN_INCORRECT", or "CKR_0x%08lx" for an unknown value (per-thread buffer). */
const char *kwb_p11_rv_name(CK_RV rv);

/* The kw_rc a CK_RV usually maps to (callers may pick a more precise one). */
kw_rc kwb_p11_rv_code(CK_RV rv) KW_MUST_USE;

/* ---- object.c: finding objects and reading attributes ---- */

/* Checks a key blob has a usable CKA_ID; records KW_ERR_USAGE if not. */
kw_rc kwb_p11_ref_check(const kw_key_blob *ref, const char *op) KW_MUST_USE;

/* Lower-case hex of the first bytes of a CKA_ID, for messages ("..." if cut). */
const char *kwb_p11_id_hex(const kw_key_blob *ref, char *buf, size_t size);

/* Objects with the given CKA_ID (and CKA_CLASS when cls != KWB_P11_ANY_CLASS).
 * Up to max handles; *n receives how many were found (0 is not an error). */
#define KWB_P11_ANY_CLASS ((CK_OBJECT_CLASS)-1)
kw_rc kwb_p11_find(kwb_p11 *p, CK_OBJECT_CLASS cls, const unsigned char *id, size_t id_len,
                   CK_OBJECT_HANDLE *h, CK_ULONG max, CK_ULONG *n) KW_MUST_USE;

/* The private key with this CKA_ID; records KW_ERR_NOT_FOUND naming op.
 * From the key cache when its handle still names the key, else searched
 * (and cached): SoftHSM re-reads every object file of the token per search. */
kw_rc kwb_p11_find_private(kwb_p11 *p, const kw_key_blob *ref, const char *op,
                           CK_OBJECT_HANDLE *h) KW_MUST_USE;

/* 1 when handle h still names this key: a private key with this CKA_ID and
 * key type (a token may give a destroyed key's handle number to a new
 * object). One C_GetAttributeValue. */
int kwb_p11_key_still(kwb_p11 *p, const kw_key_blob *ref, CK_OBJECT_HANDLE h, CK_KEY_TYPE kt);

/* Reads one attribute into a malloc'd buffer (C_GetAttributeValue twice).
 * Returns the CK_RV; records nothing. */
CK_RV kwb_p11_attr_alloc(kwb_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
                         unsigned char **val, size_t *len);

/* Reads one CK_ULONG attribute (CKA_KEY_TYPE, CKA_MODULUS_BITS...). */
CK_RV kwb_p11_attr_ulong(kwb_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, CK_ULONG *val);

/* Reads n CK_BBOOL attributes in one call: vals[i] is 1, 0, or -1 when the
 * token cannot tell (attribute unknown to it). */
CK_RV kwb_p11_attr_bools(kwb_p11 *p, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE_TYPE *types, int *vals,
                         size_t n);

/* Destroys every object with this CKA_ID among the private key, public key
 * and certificate classes (best effort: the first failing CK_RV is returned,
 * CKR_OK when all went). *destroyed counts the objects removed. */
CK_RV kwb_p11_destroy_id(kwb_p11 *p, const unsigned char *id, size_t id_len, int *destroyed);

/* ---- attrs.c: custody attributes ---- */

/* The custody attributes, in this order, read back after generation and by
 * key_attrs. */
enum {
	KWB_P11_EXTRACTABLE,
	KWB_P11_SENSITIVE,
	KWB_P11_NEVER_EXTRACTABLE,
	KWB_P11_ALWAYS_SENSITIVE,
	KWB_P11_LOCAL,
	KWB_P11_TOKEN,
	KWB_P11_PRIVATE,
	KWB_P11_MODIFIABLE,
	KWB_P11_COPYABLE,
	KWB_P11_CUSTODY_N
};

/* Reads the custody attributes of a private key object; records the error. */
kw_rc kwb_p11_custody_read(kwb_p11 *p, CK_OBJECT_HANDLE h, const char *op,
                           int vals[KWB_P11_CUSTODY_N]) KW_MUST_USE;
/* Appends CKA_MODIFIABLE=FALSE and CKA_COPYABLE=FALSE (priv) or
 * CKA_MODIFIABLE=FALSE (pub) to a key template: nobody renames a keyward key
 * (CKA_ID) or copies it with other attributes. A token that does not know
 * them (CKR_ATTRIBUTE_TYPE_INVALID) gets the template without them
 * (KWB_P11_LOCK_ATTRS fewer, at the end), and cert verify shows what it kept.
 * no is a CK_BBOOL holding CK_FALSE that outlives the template. */
#define KWB_P11_LOCK_ATTRS_PRIV 2
#define KWB_P11_LOCK_ATTRS_PUB  1
void kwb_p11_lock_attrs(CK_ATTRIBUTE *t, CK_ULONG *n, CK_BBOOL *no, int priv);

kw_rc kwb_p11_key_attrs(void *ctx, const kw_key_blob *ref, kw_key_attrs *out) KW_MUST_USE;

/* ---- keygen.c / public.c / sign.c / object.c: the remaining operations ---- */

kw_rc kwb_p11_key_generate(void *ctx, kw_key_type type, const char *label,
                           kw_key_blob *out) KW_MUST_USE;
kw_rc kwb_p11_key_public(void *ctx, const kw_key_blob *ref, unsigned char **der,
                         size_t *der_len) KW_MUST_USE;
kw_rc kwb_p11_key_sign(void *ctx, const kw_key_blob *ref, const kw_sign_params *params,
                       const unsigned char *dgst, size_t dgst_len, unsigned char *sig,
                       size_t *sig_len) KW_MUST_USE;
kw_rc kwb_p11_key_destroy(void *ctx, const kw_key_blob *ref, kw_key_end *end) KW_MUST_USE;
/* list.c: the keys keyward made on the token (see backend.h key_list) */
kw_rc kwb_p11_key_list(void *ctx, kw_device_key **out, size_t *n) KW_MUST_USE;
/* import.c */
kw_rc kwb_p11_key_import(void *ctx, EVP_PKEY *key, kw_key_type type, const char *label,
                         kw_key_blob *out) KW_MUST_USE;

#endif
