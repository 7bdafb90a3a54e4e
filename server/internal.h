/* keyward serve internals: TLS, requests, routes. */
#ifndef KEYWARD_SERVER_INTERNAL_H
#define KEYWARD_SERVER_INTERNAL_H

#include <event2/http.h>
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
int kws_tls_new(kw_store *s, const char *cert_name, int max_connections, SSL_CTX **out);
/* Frees the context and unloads the providers kws_tls_new loaded. */
void kws_tls_free(SSL_CTX *ctx);
/* Counts a new connection until its SSL object is freed. */
void kws_tls_track(SSL *ssl);

/* ---- request.c ---- */
/* Serves one request: authentication, limits, routing, reply, event log. */
void kws_request_handle(struct evhttp_request *req, kw_store *s, const kws_config *cfg);

typedef struct {
	struct evhttp_request *req;
	kw_store *store;
	const kws_config *cfg;
	kw_mgmt_caller caller;
	int method;    /* EVHTTP_REQ_GET ... */
	char *segs[6]; /* path segments, decoded-free (names only) */
	int nsegs;
	struct evkeyvalq query;
	int has_query;
	json_t *body; /* parsed JSON object, or NULL */
	int status;   /* what was sent */
} kws_req;

/* Replies: JSON document (stolen), plain text, and the JSON error
 * {"error": {"code": code, "message": message}}. */
void kws_reply_json(kws_req *r, int status, json_t *doc);
void kws_reply_text(kws_req *r, int status, const char *content_type, const char *text);
void kws_reply_error(kws_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
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
