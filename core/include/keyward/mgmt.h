/*
 * keyward — management certificates: who may call the management API
 * (keyward serve).
 *
 * The store's management CA is a keyward CA certificate named
 * KW_MGMT_CA_NAME whose key lives in a backend's device; the API server's
 * own certificate (KW_MGMT_SERVER_NAME) is issued by it with its key in
 * hardware too. The management CA issues one client certificate per remote
 * admin (EKU clientAuth), recorded in the store with its role:
 *
 *   subject  CN=<client name>, OU=<role>, O=keyward management
 *
 * The role (reader | admin) is the subject's OU; the server accepts a
 * client only when its certificate is one the store recorded (matched by
 * SHA-256 thumbprint of the whole certificate), not revoked, valid now
 * (KEYWARD_NOW honoured) and its OU equals the recorded role. Readers may
 * only read.
 */
#ifndef KEYWARD_MGMT_H
#define KEYWARD_MGMT_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include <keyward/keyward.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KW_MGMT_CA_NAME     "keyward-mgmt-ca"
#define KW_MGMT_SERVER_NAME "keyward-mgmt-server"
#define KW_MGMT_ORG         "keyward management"

typedef struct {
	const char *backend;     /* where both keys are made; NULL: the store's only one */
	const char *key_type;    /* NULL: ec-p256 */
	const char *server_cn;   /* the server certificate's CN; NULL: "localhost" */
	const char *const *sans; /* "DNS:x" / "IP:y"; NULL: DNS:localhost, IP:127.0.0.1 */
	size_t n_sans;
	int server_days; /* 0: 365 */
} kw_mgmt_init_request;

/* Creates the management CA (a CA certificate, key in hardware) and the
 * server certificate it issues (EKU serverAuth, key in hardware). Refuses a
 * store that has either already (KW_ERR_EXISTS). When the server certificate
 * cannot be made, the CA just made is deleted again. *out (may be NULL):
 * {ca, server, backend, ca_thumbprint_sha256, server_thumbprint_sha256}. */
kw_rc kw_mgmt_init(kw_store *s, const kw_mgmt_init_request *req, json_t **out) KW_MUST_USE;

typedef struct {
	const char *name; /* the client's name: the CN, unique in the store */
	const char *role; /* "reader" | "admin" */
	int days;         /* 0: 365 (clipped to the CA's validity) */
	/* exactly one of: a CSR (PEM or DER) holding the client's own key ... */
	const unsigned char *csr;
	size_t csr_len;
	/* ... or a PKCS#12 file to write: a key made in software for the remote
	 * admin (theirs to keep, not ours: it is wiped from memory once written),
	 * the certificate and the management CA, encrypted with the password
	 * read from password_source (file:PATH | env:VAR); password_source
	 * NULL: a random password, written to "<pkcs12_path>.password" (mode
	 * 0600, never overwriting) for the admin. */
	const char *pkcs12_path;
	const char *password_source;
} kw_mgmt_issue_request;

/* Issues a client certificate signed in hardware by the management CA and
 * records it (and the event "mgmt.issued") in one transaction. A PKCS#12 file
 * (and a generated password's file) is created (mode 0600, never
 * overwriting) before that transaction commits; a failed commit removes it. *cert_pem (may be
 * NULL): the certificate; *out (may be NULL): the client as kw_mgmt_list shows it. */
kw_rc kw_mgmt_issue(kw_store *s, const kw_mgmt_issue_request *req, char **cert_pem,
                    json_t **out) KW_MUST_USE;

/* Revokes client name: the server refuses it from now on, and its serial
 * goes onto the management CA's CRL. Event "mgmt.revoked". */
kw_rc kw_mgmt_revoke(kw_store *s, const char *name) KW_MUST_USE;

/* JSON array of clients: name, role, serial, subject, not_before, not_after,
 * thumbprint_sha256, key_source ("pkcs12" | "csr"), created, revoked (RFC
 * 3339 or null), status ("active" | "revoked" | "expired"). */
kw_rc kw_mgmt_list(kw_store *s, json_t **out) KW_MUST_USE;

typedef struct {
	char name[128];
	char role[16];   /* "reader" | "admin" */
	char sha256[65]; /* thumbprint of the certificate presented */
} kw_mgmt_caller;

/* Decides whether the DER certificate a TLS client presented may call the
 * API: KW_ERR_AUTH (with the reason: unknown, revoked, expired, not yet
 * valid, role mismatch) or KW_OK and *caller filled. caller->sha256 is set
 * whenever der parses, so refusals can be logged with it. */
kw_rc kw_mgmt_authorize(kw_store *s, const unsigned char *der, size_t len,
                        kw_mgmt_caller *caller) KW_MUST_USE;

/* Appends the event "api.request" {method, path, status, thumbprint_sha256,
 * client, peer} in a transaction of its own; sha256 NULL: no certificate;
 * peer: the caller's "ip:port" ("[ip]:port" for IPv6). */
kw_rc kw_mgmt_log_request(kw_store *s, const char *method, const char *path, int status,
                          const char *sha256, const char *client, const char *peer) KW_MUST_USE;

/* What the API server counted of one kind of refusal: a peer that did not
 * authenticate (no client certificate, one refused, a limit, a handshake or
 * request not done in time, malformed HTTP). */
typedef struct {
	const char *address; /* the peer's IP address */
	const char *sha256;  /* the certificate it presented; NULL: none */
	const char *reason;  /* why it was refused, one line */
	const char *request; /* the last refused request, "METHOD /path"; NULL: none */
	const char *peer;    /* the last one's "ip:port"; NULL: not known */
	long count;          /* how many times */
	time_t first, last;  /* when the first and the last happened */
} kw_mgmt_refusal;

/* Appends one event "api.refused" {total, refusals: [{address,
 * thumbprint_sha256, reason, request, last_peer, count, first, last}]} in a transaction
 * of its own: refusals cost one write per summary, not one each. */
kw_rc kw_mgmt_log_refusals(kw_store *s, const kw_mgmt_refusal *rows, size_t n) KW_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
