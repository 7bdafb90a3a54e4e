/*
 * keyward — error record.
 *
 * Every fallible function returns a kw_rc. Detail goes into a per-thread error
 * record: the code, the device's own code (TSS2_RC or CK_RV) with its decoded
 * name, the place it was raised and a human message saying what failed, on
 * which object, and what to do. The error that happened first sticks: a later
 * kw_error_set() does not overwrite a recorded error until kw_error_clear().
 */
#ifndef KEYWARD_ERROR_H
#define KEYWARD_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KW_MUST_USE __attribute__((warn_unused_result))

typedef enum {
	KW_OK = 0,
	KW_ERR_USAGE,       /* caller passed something invalid */
	KW_ERR_NOT_FOUND,   /* no such certificate/backend/version/key */
	KW_ERR_EXISTS,      /* name already taken */
	KW_ERR_PARSE,       /* malformed input: DN, SAN, PEM, JSON, URI */
	KW_ERR_AUTH,        /* wrong PIN / auth value */
	KW_ERR_BACKEND,     /* the TPM or token failed the operation */
	KW_ERR_UNAVAILABLE, /* the device could not be reached */
	KW_ERR_UNSUPPORTED, /* the operation/key type is not supported */
	KW_ERR_IO,          /* file system error */
	KW_ERR_STORE,       /* database error or corrupt store */
	KW_ERR_STATE,       /* object is in the wrong state for this */
	KW_ERR_PERM,        /* unsafe file permissions */
	KW_ERR_NOMEM,
	KW_ERR_INTERNAL,
} kw_rc;

/* Records an error unless one is already recorded; returns code. */
kw_rc kw_error_set(kw_rc code, unsigned long device_code, const char *file, int line,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
kw_rc kw_error_vset(kw_rc code, unsigned long device_code, const char *file, int line,
                    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

/* Forgets the recorded error (public API entry points call this first). */
void kw_error_clear(void);

/* The recorded code, or KW_OK. */
kw_rc kw_error_code(void);

/* The device's own code (TSS2_RC / CK_RV) or 0. */
unsigned long kw_error_device_code(void);

/* The human message; "" when nothing is recorded. Never contains a secret. */
const char *kw_error_message(void);

/* "file.c:123" of the first error; "" when nothing is recorded. */
const char *kw_error_where(void);

/* A short name for a code, e.g. "not found". */
const char *kw_rc_name(kw_rc rc);

#define KW_FAIL(code, ...)          kw_error_set((code), 0, __FILE__, __LINE__, __VA_ARGS__)
#define KW_FAIL_DEV(code, dev, ...) kw_error_set((code), (dev), __FILE__, __LINE__, __VA_ARGS__)

/* Guard: propagate a failure in functions that own nothing. */
#define KW_GUARD(expr)                                                                             \
	do {                                                                                       \
		kw_rc kw_guard_rc_ = (expr);                                                       \
		if (kw_guard_rc_ != KW_OK)                                                         \
			return kw_guard_rc_;                                                       \
	} while (0)

#ifdef __cplusplus
}
#endif
#endif
