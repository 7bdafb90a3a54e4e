/* libkeyward internals: the ACME (RFC 8555) client behind issuer "acme:NAME". */
#ifndef KEYWARD_CORE_ACME_H
#define KEYWARD_CORE_ACME_H

#include <curl/curl.h>

#include "internal.h"
#include "store/store_issuers.h"

/* ---- issuers/acme/account.c: an ACME issuer as the store keeps it ---- */
/* Issuer name's row (store/store_issuers.h); an unknown one fails
 * KW_ERR_NOT_FOUND. out is zeroed on failure: free it with
 * kwi_acme_issuer_row_clear. */
kw_rc kwi_issuer_load(kw_store *s, const char *name, kwi_acme_issuer_row *out) KW_MUST_USE;

/* ---- issuers/acme/jws.c: JWK, thumbprints, JWS signed in hardware ---- */
/* base64url without padding (malloc'd, NULL when out of memory). */
char *kwi_b64url(const unsigned char *p, size_t n);
/* The account key's JWK (EC: crv, x, y; RSA: n, e) and its JWS algorithm. */
kw_rc kwi_jwk_of(EVP_PKEY *pub, json_t **jwk, const char **alg) KW_MUST_USE;
/* RFC 7638 thumbprint of jwk, base64url (43 characters + NUL). */
kw_rc kwi_jwk_thumbprint(const json_t *jwk, char out[48]) KW_MUST_USE;
/* A flattened JWS: protected header hdr (alg added), payload text ("" for
 * POST-as-GET), signed by k in its device. */
kw_rc kwi_jws_sign(const kwi_signer *k, const char *alg, json_t *hdr, const char *payload,
                   json_t **out) KW_MUST_USE;
/* RFC 8555 7.3.4 external account binding: the account JWK signed with the
 * CA's HMAC key (HS256) for url. */
kw_rc kwi_jws_eab(const kw_secret *mac_key, const char *kid, const char *url, const json_t *jwk,
                  json_t **out) KW_MUST_USE;

/* ---- issuers/acme/client.c: transport (libcurl), nonces, problems, retries ---- */
typedef struct {
	long status;
	char *body;
	size_t len;
	char *location;
	char content_type[128];
	long retry_after;  /* seconds; -1 when absent */
	json_t *alternate; /* Link: <URL>;rel="alternate" URLs (RFC 8555 7.4.2), or NULL */
} kwi_acme_resp;

void kwi_acme_resp_clear(kwi_acme_resp *r);

typedef struct {
	CURL *curl;
	char *ca_bundle;
	char *directory_url;
	json_t *dir;
	char nonce[256];
	kwi_signer key;
	EVP_PKEY *pub;
	const char *alg;
	json_t *jwk;
	char thumbprint[48];
	char *kid;         /* the account URL once known */
	time_t not_before; /* a Retry-After the server asked for (wall clock) */
} kwi_acme_client;

/* Fetches the directory (ca_bundle: the CAs that vouch for the server's TLS
 * certificate; NULL: the system's). */
kw_rc kwi_acme_open(kwi_acme_client *c, const char *directory, const char *ca_bundle) KW_MUST_USE;
/* The account key, in its device, that signs every request from now on. */
kw_rc kwi_acme_use_key(kwi_acme_client *c, kwi_device *dev, const kw_key_blob *ref,
                       kw_key_type type) KW_MUST_USE;
void kwi_acme_close(kwi_acme_client *c);
/* A directory entry ("newOrder") or NULL. */
const char *kwi_acme_endpoint(const kwi_acme_client *c, const char *name);
/* Unauthenticated GET. Error statuses become errors (problem detail). */
kw_rc kwi_acme_get(kwi_acme_client *c, const char *url, kwi_acme_resp *r) KW_MUST_USE;
/* Signed POST (payload NULL: POST-as-GET) with kid, or with the JWK when
 * use_jwk. Retries badNonce; waits out short Retry-After on 429/503. */
kw_rc kwi_acme_post(kwi_acme_client *c, const char *url, const json_t *payload, int use_jwk,
                    kwi_acme_resp *r) KW_MUST_USE;
/* The response body as JSON. */
kw_rc kwi_acme_json(const kwi_acme_resp *r, json_t **out) KW_MUST_USE;
/* What the client takes from one response header line ("Name: value\r\n",
 * len bytes, not NUL-terminated): the replay nonce into c, Location,
 * Content-Type, Link rel="alternate" and Retry-After (seconds or an HTTP
 * date) into r. The fuzz target tests/fuzz/fuzz_acme.c feeds these. */
void kwi_acme_header(kwi_acme_client *c, kwi_acme_resp *r, const char *line, size_t len);
/* The error for an error response: its problem document's type and detail. */
kw_rc kwi_acme_problem(const char *url, const kwi_acme_resp *r) KW_MUST_USE;
/* 1 when r is a 400 whose problem type is badNonce. */
int kwi_acme_bad_nonce(const kwi_acme_resp *r);
/* Sleeps (wall clock) as the server asked, within [1, cap] seconds. */
void kwi_acme_pause(long retry_after, long cap);

/* When the last failed ACME exchange of this thread was told to come back
 * (Retry-After on a rate limit or unavailable server; 0: not told). */
time_t kwi_acme_retry_at(void);
void kwi_acme_retry_set(time_t at);

/* ---- issuers/acme/http01.c: answering http-01 challenges ---- */
typedef struct kwi_http01 kwi_http01;
/* listen "ADDR:PORT" (a responder of our own) or webroot DIR (files under
 * DIR/.well-known/acme-challenge/ for a web server that is already there). */
kw_rc kwi_http01_start(const char *listen, const char *webroot, kwi_http01 **out) KW_MUST_USE;
kw_rc kwi_http01_add(kwi_http01 *h, const char *token, const char *key_authorization) KW_MUST_USE;
/* Stops the responder and removes every file it wrote; NULL is a no-op. */
void kwi_http01_stop(kwi_http01 *h);
/* Checks listen "ADDR:PORT" or webroot DIR (absolute); both NULL pass, both
 * set is refused. */
kw_rc kwi_http01_check(const char *listen, const char *webroot) KW_MUST_USE;
/* The same as {"listen": ADDR:PORT} or {"webroot": DIR} (an ACME issuer's
 * stored default; *out NULL when both are NULL). */
kw_rc kwi_http01_settings(const char *listen, const char *webroot, json_t **out) KW_MUST_USE;
/* Checks "ADDR:PORT" ([v6]:port too). */
kw_rc kwi_http01_listen_parse(const char *listen, char *addr, size_t addr_len,
                              unsigned short *port) KW_MUST_USE;

/* ---- issuers/acme/order.c: orders ---- */
/* Has ACME issuer name issue a certificate for csr (signed in hardware by the
 * key whose public half is pub, on dev): account key in its device (dev
 * reused when it lives there), http-01 as http01 says (NULL, or neither set:
 * the issuer's default). *cert and *chain (DER back to back) on success.
 * previous: the certificate this one renews (NULL: none), named in the order
 * ("replaces") when the server offers renewal information. */
kw_rc kwi_acme_issue(kw_store *s, kwi_device *dev, const char *name, const kwi_http01_conf *http01,
                     X509_REQ *csr, EVP_PKEY *pub, X509 *previous, X509 **cert,
                     unsigned char **chain, size_t *chain_len) KW_MUST_USE;

/* Revokes cert at ACME issuer name (RFC 8555 7.6), signed by the account key;
 * reason: RFC 5280 code (0: unspecified, left out). */
kw_rc kwi_acme_revoke(kw_store *s, const char *name, X509 *cert, int reason) KW_MUST_USE;
/* Tells the CA the account is closed (RFC 8555 7.3.6). */
kw_rc kwi_acme_deactivate(kw_store *s, const kwi_acme_issuer_row *is) KW_MUST_USE;

/* ---- issuers/acme/ari.c: ACME Renewal Information (RFC 9773) ---- */
/* The ARI certificate identifier of x: base64url(AKI keyIdentifier) "."
 * base64url(serial) (malloc'd). */
kw_rc kwi_ari_cert_id(X509 *x, char **out) KW_MUST_USE;
/* A renewalInfo response: its suggestedWindow (start <= end), explanation
 * URL and, from Retry-After within keyward's bounds, when to ask again. */
kw_rc kwi_ari_parse_window(const kwi_acme_resp *r, time_t now, kwi_acme_ari_row *w) KW_MUST_USE;
/* When the ACME issuer's renewal information says to renew version of
 * cert_id (0: it offers none or could not be asked; the policy decides).
 * The window is kept until the server's Retry-After (dry_run: not kept);
 * res gets "ari" {window_start, window_end, renew_at, explanation_url} or
 * "ari_error". Never fails. */
time_t kwi_ari_renew_at(kw_store *s, const char *issuer, int64_t cert_id, int version, time_t now,
                        int dry_run, json_t *res);

#endif
