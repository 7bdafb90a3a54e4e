/* see internal.h: one request: who calls, the body, the reply, the log */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>

#include <keyward/lifecycle.h>

#include "internal.h"

#define PATH_LOG_MAX 512
/* what a file path on the host reads as in a reply, and what ends one */
#define HOST_PATH "<host path>"
#define PATH_END  " \t'\"(),;:"

static void send_body(kws_req *r, int status, const char *type, const char *data, size_t len)
{
	kws_conn_reply(r->http->conn, status, type, data, len, status == 405 ? r->allow : NULL);
	r->status = status;
}

void kws_reply_text(kws_req *r, int status, const char *content_type, const char *text)
{
	send_body(r, status, content_type, text, strlen(text));
}

void kws_reply_json(kws_req *r, int status, json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(doc);
	if (text == NULL) {
		kws_reply_error(r, 500, "InternalError", "out of memory");
		return;
	}
	send_body(r, status, "application/json", text, strlen(text));
	free(text);
}

/* Does an absolute path start at p: a '/' after a separator, not a URL's
 * "//", with a name after it? */
static int path_starts(const char *msg, const char *p)
{
	return p[0] == '/' && p[1] != '/' && p[1] != '\0' && !strchr(PATH_END, p[1]) &&
	       (p == msg || strchr(" \t'\"(=:,[", p[-1]));
}

/* Core's messages are worded for the admin at the host, and may name a file
 * there (a pin file, a PKCS#11 module, a deploy target): a remote client
 * learns what failed, not where the host keeps things. */
static void redact_paths(const char *in, char *out, size_t size)
{
	size_t o = 0;
	for (const char *p = in; *p && o + 1 < size;) {
		if (!path_starts(in, p)) {
			out[o++] = *p++;
			continue;
		}
		size_t n = strlen(HOST_PATH);
		if (o + n >= size)
			break;
		memcpy(out + o, HOST_PATH, n);
		o += n;
		while (*p && !strchr(PATH_END, *p))
			p++;
	}
	out[o] = '\0';
}

char *kws_redacted(const char *message)
{
	char out[1024];
	redact_paths(message, out, sizeof(out));
	return strdup(out);
}

char *kws_error_body(const char *code, const char *message)
{
	json_t *doc = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
	char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	json_decref(doc);
	return text;
}

void kws_reply_error(kws_req *r, int status, const char *code, const char *fmt, ...)
{
	char raw[1024], msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	redact_paths(raw, msg, sizeof(msg));
	char *text = kws_error_body(code, msg);
	const char *out = text ? text : "{\"error\":{\"code\":\"InternalError\",\"message\":\"\"}}";
	send_body(r, status, "application/json", out, strlen(out));
	free(text);
}

/* Core's message says what failed, on what and why. Its hint (kw_error_hint)
 * is worded by each caller; the CLI's words name commands and flags a remote
 * client does not have, and the status and code here already say what kind of
 * failure it is, so the API adds none. */
void kws_reply_rc(kws_req *r, kw_rc rc)
{
	const char *msg = kw_error_message()[0] ? kw_error_message() : kw_rc_name(rc);
	switch (rc) {
	case KW_ERR_USAGE:
	case KW_ERR_PARSE:
	case KW_ERR_UNSUPPORTED: kws_reply_error(r, 400, "BadParameter", "%s", msg); break;
	case KW_ERR_NOT_FOUND: kws_reply_error(r, 404, "NotFound", "%s", msg); break;
	case KW_ERR_EXISTS:
	case KW_ERR_STATE: kws_reply_error(r, 409, "Conflict", "%s", msg); break;
	case KW_ERR_AUTH:
	case KW_ERR_BACKEND:
	case KW_ERR_UNAVAILABLE: kws_reply_error(r, 502, "BackendError", "%s", msg); break;
	default: kws_reply_error(r, 500, "InternalError", "%s", msg); break;
	}
}

int kws_body_object(kws_req *r, const char *const *known, int empty_ok)
{
	struct evbuffer *in = r->http->body;
	size_t len = evbuffer_get_length(in);
	json_error_t e;
	if (len == 0 && empty_ok) {
		r->body = json_object();
		return r->body != NULL;
	}
	const char *data = (const char *)evbuffer_pullup(in, -1);
	r->body = data ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &e) : NULL;
	if (r->body == NULL) {
		kws_reply_error(r, 400, "BadParameter", "malformed JSON body: %s (line %d)",
		                len ? e.text : "empty body", e.line);
		return 0;
	}
	if (!json_is_object(r->body)) {
		kws_reply_error(r, 400, "BadParameter", "the body must be a JSON object");
		return 0;
	}
	const char *k;
	json_t *v;
	if (known == NULL)
		return 1;
	json_object_foreach(r->body, k, v)
	{
		int ok = 0;
		for (const char *const *p = known; *p && !ok; p++)
			ok = strcmp(*p, k) == 0;
		if (!ok) {
			kws_reply_error(r, 400, "BadParameter", "unknown field '%s' in the body",
			                k);
			return 0;
		}
	}
	return 1;
}

const char *kws_query(kws_req *r, const char *key)
{
	return r->has_query ? evhttp_find_header(&r->query, key) : NULL;
}

/* The methods libevent names; any other is refused (501). */
static int method_id(const char *m)
{
	static const struct {
		const char *name;
		int id;
	} known[] = {
	    {"GET", EVHTTP_REQ_GET},         {"POST", EVHTTP_REQ_POST},
	    {"PUT", EVHTTP_REQ_PUT},         {"DELETE", EVHTTP_REQ_DELETE},
	    {"HEAD", EVHTTP_REQ_HEAD},       {"OPTIONS", EVHTTP_REQ_OPTIONS},
	    {"PATCH", EVHTTP_REQ_PATCH},     {"TRACE", EVHTTP_REQ_TRACE},
	    {"CONNECT", EVHTTP_REQ_CONNECT},
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(known[i].name, m) == 0)
			return known[i].id;
	return 0;
}

/* Who is calling: kw_mgmt_authorize on the certificate TLS verified. */
static kw_rc authenticate(kws_req *r)
{
	X509 *peer = SSL_get0_peer_certificate(r->http->ssl);
	unsigned char *der = NULL;
	int n = peer ? i2d_X509(peer, &der) : 0;
	kw_rc rc = kw_mgmt_authorize(r->store, der, n > 0 ? (size_t)n : 0, &r->caller);
	OPENSSL_free(der);
	return rc;
}

static int seg_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._-@", *s)))
			return 0;
	return 1;
}

/* "/certificates/web01/versions" → segments; 0 after replying 400. */
static int parse_target(kws_req *r)
{
	struct evhttp_uri *u = evhttp_uri_parse_with_flags(r->http->head->target, 0);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	const char *q = u ? evhttp_uri_get_query(u) : NULL;
	if (u == NULL) {
		kws_reply_error(r, 400, "BadParameter", "malformed request target");
		return 0;
	}
	if (q && evhttp_parse_query_str(q, &r->query) == 0)
		r->has_query = 1;
	else if (q) {
		evhttp_uri_free(u);
		kws_reply_error(r, 400, "BadParameter", "malformed query string");
		return 0;
	}
	char *copy = strdup(path && path[0] ? path : "/");
	char *save = NULL;
	evhttp_uri_free(u);
	for (char *t = copy ? strtok_r(copy, "/", &save) : NULL; t;
	     t = strtok_r(NULL, "/", &save)) {
		if (!seg_ok(t) || r->nsegs >= (int)(sizeof(r->segs) / sizeof(r->segs[0]))) {
			free(copy);
			kws_reply_error(r, 400, "BadParameter",
			                "bad path (names are letters, digits, '.', '_', '-', '@')");
			return 0;
		}
		if ((r->segs[r->nsegs] = strdup(t)) == NULL) {
			free(copy);
			kws_reply_error(r, 500, "InternalError", "out of memory");
			return 0;
		}
		r->nsegs++;
	}
	free(copy);
	return 1;
}

static void log_path(const kws_http_request *hr, char out[PATH_LOG_MAX])
{
	const char *uri = hr->head->target;
	size_t i = 0;
	for (; uri && uri[i] && i < PATH_LOG_MAX - 1; i++)
		out[i] = uri[i] >= 0x20 && uri[i] < 0x7f ? uri[i] : '?';
	out[i] = '\0';
}

static void record(kws_req *r, int authed)
{
	char path[PATH_LOG_MAX], request[160];
	const char *method = r->http->head->method;
	log_path(r->http, path);
	if (!authed) {
		snprintf(request, sizeof(request), "%s %.140s", method, path);
		kws_refusal_note(r->http->peer, r->caller.sha256[0] ? r->caller.sha256 : NULL,
		                 r->refusal, request);
		return;
	}
	kw_rc rc = kw_mgmt_log_request(r->store, method, path, r->status,
	                               r->caller.sha256[0] ? r->caller.sha256 : NULL,
	                               r->caller.name, r->http->peer);
	if (rc != KW_OK)
		fprintf(stderr, "keyward: cannot log %s %s: %s\n", method, path,
		        kw_error_message());
}

/* Replies; returns whether the caller got in. */
static int serve(kws_req *r)
{
	kw_rc rc = authenticate(r);
	char actor[96];
	snprintf(actor, sizeof(actor), "api:%s",
	         r->caller.sha256[0] ? r->caller.sha256 : "anonymous");
	kw_store_set_actor(r->store, actor);
	if (rc != KW_OK) {
		snprintf(r->refusal, sizeof(r->refusal), "HTTP 401: %s", kw_error_message());
		kws_reply_error(r, 401, "Unauthorized", "%s", kw_error_message());
		return 0;
	}
	if (r->method == 0)
		kws_reply_error(r, 501, "NotImplemented", "method %s is not supported",
		                r->http->head->method);
	else if (parse_target(r))
		kws_route(r);
	return 1;
}

void kws_request_handle(const kws_http_request *hr, kw_store *s, const kws_config *cfg)
{
	kws_req r;
	memset(&r, 0, sizeof(r));
	r.http = hr;
	r.store = s;
	r.cfg = cfg;
	r.method = method_id(hr->head->method);
	int authed = serve(&r);
	if (r.status == 0) /* a handler that forgot to reply */
		kws_reply_error(&r, 500, "InternalError", "no reply");
	record(&r, authed);
	for (int i = 0; i < r.nsegs; i++)
		free(r.segs[i]);
	if (r.has_query)
		evhttp_clear_headers(&r.query);
	json_decref(r.body);
	kw_store_set_actor(s, "");
}
