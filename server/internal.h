/* keyward serve internals, a section per file: TLS, connections and their
 * HTTP framing, refusals, requests, routes. */
#ifndef KEYWARD_SERVER_INTERNAL_H
#define KEYWARD_SERVER_INTERNAL_H

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include <keyward/keyward.h>
#include <keyward/mgmt.h>

#include "server.h"

/* ---- tls.c ---- */
/* The server's TLS context: key and certificate (and chain) of keyward
 * certificate cert_name through the keyward provider (key in hardware);
 * clients verified against the management CA only. */
int kws_tls_new(kw_store *s, const char *cert_name, SSL_CTX **out);
/* Frees the context and unloads the providers kws_tls_new loaded. */
void kws_tls_free(SSL_CTX *ctx);
/* The SHA-256 thumbprint (hex) of the certificate the peer presented, or ""
 * when it presented none. */
void kws_tls_peer_sha256(SSL *ssl, char out[65]);

/* ---- http_parse.c ---- */
#define KWS_HEAD_MAX    (16 * 1024) /* request line and header fields */
#define KWS_HEADERS_MAX 64

typedef struct {
	char method[16];          /* as sent (a token) */
	char *target;             /* "/path?query" */
	int minor;                /* HTTP/1.minor */
	struct evkeyvalq headers; /* evhttp_find_header: names case-insensitive */
	long long content_length; /* -1: none given */
	int keep_alive;           /* the connection is kept after the reply */
	int expect_continue;      /* Expect: 100-continue */
} kws_http_head;

/* Parses a request head: the request line, the header fields and the empty
 * line, len bytes with CRLF line ends. Returns 0, or the status to refuse it
 * with (400, 417, 431, 501, 505; 500 out of memory) and *why (static text).
 * The caller kws_http_head_clear's *h either way. Strict: no line folding, no bare
 * CR or LF, one Content-Length, no Transfer-Encoding (bodies are small and
 * always sent whole). The fuzz target tests/fuzz/fuzz_http_head.c. */
int kws_http_head_parse(const char *buf, size_t len, kws_http_head *h, const char **why);
void kws_http_head_clear(kws_http_head *h);

/* ---- conn.c ---- */
#define KWS_PEER_MAX 64 /* "[ipv6]:port" */

/* One TLS connection: accepted within the limits (--max-connections, and
 * --max-connections-per-address for one IPv4 address or IPv6 /64), closed
 * when its handshake is not done within --handshake-timeout, when no whole
 * request arrives within --timeout of the handshake or of the last reply
 * (a slow request gets 408), or when it does not take its reply in that
 * time. Requests are read whole (head at most KWS_HEAD_MAX, body at most
 * --max-body) and served one at a time, in order. */
typedef struct kws_conn kws_conn;

/* Listens on cfg's address; NULL after printing why. */
struct evconnlistener *kws_conn_listen(struct event_base *base, SSL_CTX *ssl, kw_store *s,
                                       const kws_config *cfg);
/* Closes every connection (the server stops). */
void kws_conn_close_all(void);
/* "ip:port" of the peer of a connection's SSL object ("" when unknown). */
const char *kws_conn_peer(SSL *ssl);
/* Why the TLS layer refuses the peer of ssl (its certificate, sha256 or
 * NULL): noted as the refusal when the handshake fails. */
void kws_conn_tls_refusal(SSL *ssl, const char *reason, const char *sha256);
/* Writes a reply on c: status, Content-Type type, body (len bytes; none to a
 * HEAD request) and, when allow is not NULL, an Allow header. */
void kws_conn_reply(kws_conn *c, int status, const char *type, const char *body, size_t len,
                    const char *allow);

/* ---- refusals.c ---- */
/* A peer that did not authenticate costs no write of its own: its refusal
 * (no certificate or one refused, 401, a limit, a handshake or request not
 * done in time, malformed HTTP) is counted in memory by (address,
 * certificate presented, reason), and the counts go to the event log as one
 * "api.refused" event (kw_mgmt_log_refusals) every KWS_REFUSALS_SECONDS, when
 * KWS_REFUSALS_MAX kinds are counted, before GET /events and when the server
 * stops. Authenticated requests are logged one by one (kw_mgmt_log_request). */
#define KWS_REFUSALS_SECONDS 60
#define KWS_REFUSALS_MAX     64

int kws_refusals_start(struct event_base *base, kw_store *s);
/* Counts a refusal: peer "ip:port", sha256 of the certificate presented or
 * NULL, reason one line, request "METHOD /path" or NULL. */
void kws_refusal_note(const char *peer, const char *sha256, const char *reason,
                      const char *request);
/* Writes what is counted (nothing when nothing is). */
void kws_refusals_flush(void);
/* Flushes and stops. */
void kws_refusals_stop(void);

/* ---- request.c ---- */
/* A request conn.c read whole. */
typedef struct {
	kws_conn *conn;
	const kws_http_head *head;
	struct evbuffer *body;
	const char *peer; /* "ip:port" */
	SSL *ssl;
} kws_http_request;

/* Serves one request: authentication, limits, routing, reply, event log. */
void kws_request_handle(const kws_http_request *hr, kw_store *s, const kws_config *cfg);

typedef struct {
	const kws_http_request *http;
	kw_store *store;
	const kws_config *cfg;
	kw_mgmt_caller caller;
	int method;    /* EVHTTP_REQ_GET ...; 0: a method libevent does not name */
	char *segs[6]; /* path segments, decoded-free (names only) */
	int nsegs;
	struct evkeyvalq query;
	int has_query;
	json_t *body;      /* parsed JSON object, or NULL */
	int status;        /* what was sent */
	const char *allow; /* the methods the path has, for a 405 */
	char refusal[200]; /* why an unauthenticated caller was refused */
} kws_req;

/* The JSON error body {"error": {"code": code, "message": message}}
 * (malloc'd; NULL out of memory). */
char *kws_error_body(const char *code, const char *message);
/* Replies: JSON document (stolen), plain text, and the JSON error
 * (kws_error_body; absolute paths read "<host path>"). */
void kws_reply_json(kws_req *r, int status, json_t *doc);
void kws_reply_text(kws_req *r, int status, const char *content_type, const char *text);
void kws_reply_error(kws_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* message with its absolute paths read "<host path>" (malloc'd; NULL out of
 * memory), for text from core that goes into a successful reply. */
char *kws_redacted(const char *message);
/* The error libkeyward recorded for rc, as HTTP (400, 404, 409, 502, 500). */
void kws_reply_rc(kws_req *r, kw_rc rc);

/* The request body as a JSON object whose fields are all among known (NULL: any)
 * (NULL-terminated); replies 400 and returns 0 otherwise. An empty body is
 * {} when empty_ok. */
int kws_body_object(kws_req *r, const char *const *known, int empty_ok);
/* A query parameter (NULL when absent). */
const char *kws_query(kws_req *r, const char *key);

/* ---- routes.c ---- */
/* Finds and runs the handler of the request; replies 404/405 otherwise.
 * Readers are refused (403) anything but GET before a handler runs. */
void kws_route(kws_req *r);

/* ---- routes_cert.c / routes_more.c ---- */
void kws_cert_list(kws_req *r);
void kws_cert_get(kws_req *r);
void kws_cert_versions(kws_req *r);
void kws_cert_create(kws_req *r);
void kws_cert_renew(kws_req *r);
void kws_cert_import(kws_req *r); /* routes_import.c */
void kws_cert_delete(kws_req *r);
void kws_cert_pending_get(kws_req *r);
void kws_cert_pending_merge(kws_req *r);
void kws_cert_pending_cancel(kws_req *r);
void kws_cert_policy_get(kws_req *r);
void kws_cert_policy_put(kws_req *r);
void kws_deleted_list(kws_req *r);
void kws_deleted_recover(kws_req *r);
void kws_deleted_purge(kws_req *r);
void kws_contacts_list(kws_req *r);
void kws_contacts_add(kws_req *r);
void kws_contacts_remove(kws_req *r);
void kws_metrics(kws_req *r);
void kws_events(kws_req *r);

#endif
