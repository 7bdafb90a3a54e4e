/*
 * keyward — ACME issuers (RFC 8555): a certificate whose policy says issuer
 * "acme:NAME" is issued and renewed by ACME issuer NAME. The account key is
 * generated in a backend and signs every request (JWS) there; the
 * certificate's own key signs its CSR in its device. http-01 challenges are
 * answered by a responder of keyward's own (listen ADDR:PORT) or by files in
 * a web server's webroot.
 */
#ifndef KEYWARD_ISSUER_H
#define KEYWARD_ISSUER_H

#include <jansson.h>

#include <keyward/keyward.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Who issues a certificate: a policy's issuer.name. */
typedef enum {
	KW_ISSUER_INVALID = 0,
	KW_ISSUER_SELF,     /* "self": the certificate's own key signs it */
	KW_ISSUER_EXTERNAL, /* "unknown": a CSR for a CA outside keyward (kw_cert_merge) */
	KW_ISSUER_CA,       /* "ca:NAME": keyward CA certificate NAME signs, in its device */
	KW_ISSUER_ACME,     /* "acme:NAME": ACME issuer NAME */
} kw_issuer_kind;

/* The kind text names (NULL: self) and, for ca:NAME and acme:NAME, *name (may
 * be NULL) pointing at NAME inside text. KW_ISSUER_INVALID for anything else,
 * a NAME that is not 1 to 64 letters, digits, '.', '_' or '-' included. */
kw_issuer_kind kw_issuer_parse(const char *text, const char **name);

typedef struct {
	const char *name;
	const char *directory;       /* the ACME directory URL (https) */
	const char *backend;         /* where the account key is generated */
	const char *key_type;        /* ec-p256 (default), ec-p384, rsa-2048/3072/4096 */
	const char *email;           /* account contact (mailto:); may be NULL */
	const char *ca_bundle;       /* CAs for the server's TLS certificate; NULL: system */
	const char *eab_kid;         /* external account binding: key id ... */
	const char *eab_key_source;  /* ... and the pin source of its base64url HMAC key */
	const char *http01_listen;   /* default http-01 responder "ADDR:PORT" */
	const char *http01_webroot;  /* or default webroot DIR */
	const char *preferred_chain; /* of the chains the CA offers, the one whose topmost
	                                certificate this issuer CN signed (else the default) */
	int agree_tos;               /* the admin agrees to the CA's terms of service */
} kw_issuer_spec;

/*
 * Adds an ACME issuer: checks the directory, generates the account key in
 * the backend, registers the account (with EAB when given or required) and
 * records it. Nothing stays behind on failure: the key is destroyed.
 * Registering agrees to the CA's terms of service; their URL is kept
 * (terms_of_service). *report: the issuer (kw_issuer_show).
 */
kw_rc kw_issuer_add(kw_store *s, const kw_issuer_spec *spec, json_t **report) KW_MUST_USE;

/* {name, kind, directory, email, ca_bundle, eab_kid, http01, backend, key
 * {type}, account_url, created_at, certificates (names using it)}. */
kw_rc kw_issuer_show(kw_store *s, const char *name, json_t **out) KW_MUST_USE;
/* An array of kw_issuer_show objects. */
kw_rc kw_issuer_list(kw_store *s, json_t **out) KW_MUST_USE;

/* Removes an issuer no certificate uses (deleted ones count until purged):
 * the CA is told the account is closed (deactivated), then the account key is
 * ended as far as its device can. A CA that cannot be reached does not stop
 * it. *report: {issuer, deactivated, deactivate_error, account_key:
 * "destroyed" | "revoked" | "forgotten" (see kw_keys_gone) | "left" (the
 * device refused: account_key_error)}. */
kw_rc kw_issuer_remove(kw_store *s, const char *name, json_t **report) KW_MUST_USE;

/*
 * How this handle answers http-01 challenges (one of the two, or both NULL to
 * fall back to the policy's issuer.http01, then the issuer's default). A
 * certificate created with one set keeps it in its policy for renewals.
 */
kw_rc kw_store_set_http01(kw_store *s, const char *listen, const char *webroot) KW_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif
