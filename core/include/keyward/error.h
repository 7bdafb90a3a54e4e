/*
 * keyward — error record.
 *
 * Every fallible function returns a kw_rc. Detail goes into a per-thread error
 * record: the code, the device's own code (TSS2_RC or CK_RV) with its decoded
 * name, the place it was raised, a human message saying what failed, on which
 * object and why, and optionally a hint: what the user can do next, as a
 * kw_hint the caller turns into its own words (the CLI names a command or a
 * flag; the management API has neither). The error that happened first
 * sticks, hint included: a later kw_error_set() does not overwrite a recorded
 * error until kw_error_clear().
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
	KW_ERR_PERM,        /* unsafe file permissions; a caller the agent refuses */
	KW_ERR_NOMEM,
	KW_ERR_INTERNAL,
	KW_ERR_DEPLOY, /* the change was made and stands (a renewal, a merge, a
	                  rollback); the deploy that followed it failed (recorded as
	                  a deploy.failed event; the message names the certificate,
	                  its deploy target and what failed) */
} kw_rc;

/* What the user can do about a recorded error, named by that action. Core's
 * messages never say it themselves: the CLI and the server word it. Hints
 * marked (NAME) carry the object's name in kw_error_hint_arg(). */
typedef enum {
	KW_HINT_NONE = 0,
	KW_HINT_STORE_INIT,           /* create or migrate the store */
	KW_HINT_GIVE_STORE,           /* say where the store is */
	KW_HINT_CERT_LIST,            /* see which certificates exist */
	KW_HINT_CERT_VERSIONS,        /* (NAME) see the certificate's versions */
	KW_HINT_CERT_RECOVER,         /* (NAME) recover the deleted certificate */
	KW_HINT_CERT_RECOVER_PURGE,   /* (NAME) recover it, or purge it for good */
	KW_HINT_CERT_ENABLE,          /* (NAME) enable the certificate */
	KW_HINT_CERT_RENEW,           /* (NAME) renew the certificate */
	KW_HINT_CERT_RENEW_NEW_KEY,   /* renew with a new key instead */
	KW_HINT_CERT_CSR,             /* (NAME) get (again) the CSR to have signed */
	KW_HINT_CERT_MERGE,           /* (NAME) merge the certificate the CA issued */
	KW_HINT_PENDING_RESOLVE,      /* (NAME) merge or cancel the pending version */
	KW_HINT_CA_CREATE,            /* create a CA certificate */
	KW_HINT_BACKEND_LIST,         /* see which backends exist */
	KW_HINT_BACKEND_ADD,          /* add a backend to the store */
	KW_HINT_GIVE_BACKEND,         /* name a backend for the new key */
	KW_HINT_GIVE_SUBJECT,         /* give a subject DN */
	KW_HINT_GIVE_PEM_OR_PKCS12,   /* give exactly one PEM or PKCS#12 file */
	KW_HINT_GIVE_KEY_URI_OR_TSS2, /* give exactly one key URI or TSS2 file */
	KW_HINT_GIVE_CERT_FILE,       /* give the certificate as a file */
	KW_HINT_PASSWORD_SOURCE,      /* give the file's password from a source */
	KW_HINT_GIVE_MODULE,          /* give the PKCS#11 module */
	KW_HINT_GIVE_TOKEN,           /* give the PKCS#11 token */
	KW_HINT_ISSUER_LIST,          /* see which issuers exist */
	KW_HINT_GIVE_EAB,             /* give external account binding */
	KW_HINT_GIVE_HTTP01,          /* (NAME, optional) say how to answer http-01 */
	KW_HINT_HTTP01_WEBROOT,       /* answer http-01 from a webroot instead */
	KW_HINT_GIVE_DNS_SAN,         /* give a DNS name */
	KW_HINT_CHANNEL_LIST,         /* see which channels exist */
	KW_HINT_GIVE_URL,             /* give the webhook's URL */
	KW_HINT_GIVE_COMMAND,         /* give the command to run */
	KW_HINT_CA_BUNDLE_ABSOLUTE,   /* give the CA bundle as an absolute path */
	KW_HINT_CONTACT_LIST,         /* see a certificate's contacts */
	KW_HINT_MGMT_LIST,            /* see the management clients */
	KW_HINT_MGMT_ISSUE,           /* issue a management client certificate */
	KW_HINT_MGMT_INIT,            /* set up management in the store */
	KW_HINT_DEPLOY_TARGET_LIST,   /* see which deploy targets exist */
	KW_HINT_CERT_DEPLOY,          /* (NAME) deploy the certificate again */
} kw_hint;

/* Records an error unless one is already recorded; returns code. */
kw_rc kw_error_set(kw_rc code, unsigned long device_code, const char *file, int line,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
kw_rc kw_error_vset(kw_rc code, unsigned long device_code, const char *file, int line,
                    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

/* Records an error with a hint; hint_arg (NULL for none) is the object's name
 * the hint needs. Same rules as kw_error_set(). */
kw_rc kw_error_set_hint(kw_rc code, kw_hint hint, const char *hint_arg, const char *file, int line,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Forgets the recorded error (public API entry points call this first). */
void kw_error_clear(void);

/* The recorded code, or KW_OK. */
kw_rc kw_error_code(void);

/* The device's own code (TSS2_RC / CK_RV) or 0. */
unsigned long kw_error_device_code(void);

/* The human message; "" when nothing is recorded. Never contains a secret. */
const char *kw_error_message(void);

/* The recorded error's hint, or KW_HINT_NONE. */
kw_hint kw_error_hint(void);

/* The object's name the hint needs; "" when it needs none. */
const char *kw_error_hint_arg(void);

/* "file.c:123" of the first error; "" when nothing is recorded. */
const char *kw_error_where(void);

/* A short name for a code, e.g. "not found". */
const char *kw_rc_name(kw_rc rc);

#define KW_FAIL(code, ...)          kw_error_set((code), 0, __FILE__, __LINE__, __VA_ARGS__)
#define KW_FAIL_DEV(code, dev, ...) kw_error_set((code), (dev), __FILE__, __LINE__, __VA_ARGS__)
#define KW_FAIL_HINT(code, hint, ...)                                                              \
	kw_error_set_hint((code), (hint), NULL, __FILE__, __LINE__, __VA_ARGS__)
/* A hint that names an object: KW_FAIL_HINT_ON(KW_ERR_STATE, KW_HINT_CERT_RECOVER, name, ...) */
#define KW_FAIL_HINT_ON(code, hint, arg, ...)                                                      \
	kw_error_set_hint((code), (hint), (arg), __FILE__, __LINE__, __VA_ARGS__)

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
