/* see internal.h: connections — who may connect, for how long, and the
 * HTTP/1.1 framing of their requests */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "internal.h"

/* A body refused for its size is read and dropped, up to this much, before
 * the connection closes: closing on unread bytes resets the connection, and
 * the client may lose the reply. Bigger ones are cut off. */
#define DRAIN_MAX (1024 * 1024)

typedef enum {
	C_HANDSHAKE, /* TLS handshake under way */
	C_HEAD,      /* waiting for a request's head (idle while nothing came) */
	C_BODY,      /* reading its body */
	C_DRAIN,     /* refused: the body is dropped, the reply flushed, then closed */
	C_CLOSING,   /* the reply is flushed, then closed */
} conn_state;

struct kws_conn {
	kws_conn *prev, *next;
	struct bufferevent *bev;
	SSL *ssl;
	struct event *deadline;
	conn_state state;
	int reading;
	char peer[KWS_PEER_MAX]; /* "ip:port", "[ip]:port" */
	char addr[KWS_PEER_MAX]; /* what --max-connections-per-address counts */
	kws_http_head head;      /* target NULL: none read */
	size_t drain_left;
	char tls_refusal[160]; /* why the TLS layer refused the client */
	char tls_sha256[65];
};

static struct {
	struct event_base *base;
	SSL_CTX *ssl;
	kw_store *store;
	const kws_config *cfg;
	kws_conn *list;
	int count;
	int index; /* SSL ex_data: the connection */
} srv = {.index = -1};

static void process(kws_conn *c);

/* peer: the address and port; addr: the IPv4 address, or the IPv6 /64 (one
 * host's share of a network, usually). */
static void peer_names(const struct sockaddr *sa, char peer[KWS_PEER_MAX], char addr[KWS_PEER_MAX])
{
	char ip[INET6_ADDRSTRLEN] = "?";
	snprintf(peer, KWS_PEER_MAX, "unknown");
	snprintf(addr, KWS_PEER_MAX, "unknown");
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(peer, KWS_PEER_MAX, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
		snprintf(addr, KWS_PEER_MAX, "%s", ip);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		struct in6_addr net = in6->sin6_addr;
		inet_ntop(AF_INET6, &net, ip, sizeof(ip));
		snprintf(peer, KWS_PEER_MAX, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
		if (IN6_IS_ADDR_V4MAPPED(&net)) {
			inet_ntop(AF_INET, &net.s6_addr[12], ip, sizeof(ip));
			snprintf(addr, KWS_PEER_MAX, "%s", ip);
		} else {
			memset(&net.s6_addr[8], 0, 8);
			inet_ntop(AF_INET6, &net, ip, sizeof(ip));
			snprintf(addr, KWS_PEER_MAX, "%s/64", ip);
		}
	}
}

static void deadline_in(kws_conn *c, int seconds)
{
	struct timeval tv = {seconds, 0};
	evtimer_add(c->deadline, &tv);
}

static void reading(kws_conn *c, int on)
{
	if (on)
		bufferevent_enable(c->bev, EV_READ);
	else
		bufferevent_disable(c->bev, EV_READ);
	c->reading = on;
}

static void conn_free(kws_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		srv.list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv.count--;
	if (c->deadline)
		event_free(c->deadline);
	if (c->bev)
		bufferevent_free(c->bev); /* frees the SSL object, closes the socket */
	kws_http_head_clear(&c->head);
	free(c);
}

/* After a reply, or idle: close_notify (best effort), then gone. */
static void conn_close(kws_conn *c)
{
	if (SSL_is_init_finished(c->ssl))
		SSL_shutdown(c->ssl);
	ERR_clear_error();
	conn_free(c);
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 505: return "HTTP Version Not Supported";
	default: return status < 400 ? "OK" : "Error";
	}
}

void kws_conn_reply(kws_conn *c, int status, const char *type, const char *body, size_t len,
                    const char *allow)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	/* a request served keeps the connection when it asked to; a refused one
	 * never does */
	int close = c->state != C_BODY || !c->head.keep_alive;
	int head_only = c->head.target && strcmp(c->head.method, "HEAD") == 0;
	evbuffer_add_printf(out,
	                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	                    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
	                    "%s%s%s%s\r\n",
	                    status, reason_phrase(status), type, len, allow ? "Allow: " : "",
	                    allow ? allow : "", allow ? "\r\n" : "",
	                    close ? "Connection: close\r\n" : "");
	if (!head_only)
		evbuffer_add(out, body, len);
}

static const char *error_code(int status)
{
	switch (status) {
	case 408: return "RequestTimeout";
	case 413: return "PayloadTooLarge";
	case 417: return "ExpectationFailed";
	case 431: return "RequestHeaderFieldsTooLarge";
	case 500: return "InternalError";
	case 501: return "NotImplemented";
	case 505: return "HTTPVersionNotSupported";
	default: return "BadRequest";
	}
}

/* A request refused before it reached the API (malformed, too large, too
 * slow): a JSON error, the refusal noted, then closed once the reply is out
 * (and the body dropped, when drain). */
static void refuse(kws_conn *c, int status, const char *why, size_t drain)
{
	char sha[65], request[160] = "", reason[200];
	kws_tls_peer_sha256(c->ssl, sha);
	if (c->head.target)
		snprintf(request, sizeof(request), "%s %.140s", c->head.method, c->head.target);
	snprintf(reason, sizeof(reason), "HTTP %d: %s", status, why);
	char *body = kws_error_body(error_code(status), why);
	c->state = drain ? C_DRAIN : C_CLOSING;
	c->drain_left = drain;
	kws_conn_reply(c, status, "application/json", body ? body : "", body ? strlen(body) : 0,
	               NULL);
	free(body);
	kws_refusal_note(c->peer, sha[0] ? sha : NULL, reason, request[0] ? request : NULL);
	if (!drain)
		reading(c, 0);
	deadline_in(c, srv.cfg->timeout_seconds);
}

/* The head in the input: 1 when the body is next, 0 to wait (or refused). */
static int head_read(kws_conn *c, struct evbuffer *in)
{
	const unsigned char *p;
	/* RFC 9112 2.2: empty lines before a request line are ignored */
	while (evbuffer_get_length(in) >= 2 && (p = evbuffer_pullup(in, 2)) != NULL &&
	       p[0] == '\r' && p[1] == '\n')
		evbuffer_drain(in, 2);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0 || (size_t)end.pos + 4 > KWS_HEAD_MAX) {
		if (evbuffer_get_length(in) > KWS_HEAD_MAX)
			refuse(c, 431, "the request line and headers are larger than 16 KiB", 0);
		return 0;
	}
	size_t n = (size_t)end.pos + 4;
	const char *why = "out of memory";
	const char *head = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
	int status = head ? kws_http_head_parse(head, n, &c->head, &why) : 500;
	evbuffer_drain(in, n);
	if (status) {
		refuse(c, status, why, 0);
		return 0;
	}
	long long len = c->head.content_length;
	if (len > (long long)srv.cfg->max_body) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the body is larger than %zu bytes", srv.cfg->max_body);
		/* a client that waits for "100 Continue" sends no body */
		refuse(c, 413, msg,
		       c->head.expect_continue ? 0
		       : len > DRAIN_MAX       ? DRAIN_MAX
		                               : (size_t)len);
		return 0;
	}
	if (c->head.expect_continue && len > 0)
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		                    "HTTP/1.1 100 Continue\r\n\r\n");
	c->state = C_BODY;
	return 1;
}

/* The body in the input: the request is served, and the connection waits for
 * the reply to go out before it reads the next one. */
static void body_read(kws_conn *c, struct evbuffer *in)
{
	size_t need = c->head.content_length > 0 ? (size_t)c->head.content_length : 0;
	if (evbuffer_get_length(in) < need)
		return;
	struct evbuffer *body = evbuffer_new();
	if (body == NULL || evbuffer_remove_buffer(in, body, need) != (int)need) {
		if (body)
			evbuffer_free(body);
		refuse(c, 500, "out of memory", 0);
		return;
	}
	kws_http_request hr = {c, &c->head, body, c->peer, c->ssl};
	kws_request_handle(&hr, srv.store, srv.cfg);
	kw_store_idle(srv.store); /* a request that made a key is over */
	evbuffer_free(body);
	int keep = c->head.keep_alive;
	kws_http_head_clear(&c->head);
	c->state = keep ? C_HEAD : C_CLOSING;
	reading(c, 0);
	deadline_in(c, srv.cfg->timeout_seconds);
}

static void drain(kws_conn *c, struct evbuffer *in)
{
	size_t n = evbuffer_get_length(in);
	if (n > c->drain_left)
		n = c->drain_left;
	evbuffer_drain(in, n);
	c->drain_left -= n;
	if (c->drain_left > 0)
		return;
	c->state = C_CLOSING;
	reading(c, 0);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_close(c);
}

static void process(kws_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	if (c->state == C_DRAIN)
		drain(c, in);
	else if (c->state == C_HEAD && head_read(c, in))
		body_read(c, in);
	else if (c->state == C_BODY)
		body_read(c, in);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	process(arg);
}

/* The output went out. */
static void on_write(struct bufferevent *bev, void *arg)
{
	kws_conn *c = arg;
	(void)bev;
	if (c->state == C_CLOSING)
		conn_close(c);
	else if (c->state == C_HEAD && !c->reading) {
		reading(c, 1);
		process(c); /* a request pipelined behind the last one */
	}
}

static void handshake_failed(kws_conn *c, short what)
{
	char reason[200];
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	if (c->tls_refusal[0])
		snprintf(reason, sizeof(reason), "%s", c->tls_refusal);
	else if (e)
		snprintf(reason, sizeof(reason), "TLS handshake failed: %s",
		         ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error");
	else if (what & BEV_EVENT_EOF)
		snprintf(reason, sizeof(reason), "closed during the TLS handshake");
	else
		snprintf(reason, sizeof(reason), "TLS handshake failed");
	while (bufferevent_get_openssl_error(c->bev))
		;
	kws_refusal_note(c->peer, c->tls_sha256[0] ? c->tls_sha256 : NULL, reason, NULL);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	kws_conn *c = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->state = C_HEAD;
		deadline_in(c, srv.cfg->timeout_seconds);
		process(c); /* a request that came with the handshake's end */
		return;
	}
	if (c->state == C_HANDSHAKE)
		handshake_failed(c, what);
	else if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	         evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
		/* the client is done sending: its last reply still goes out */
		c->state = C_CLOSING;
		reading(c, 0);
		return;
	}
	conn_free(c);
}

static const char *msg_timeout(char *buf, size_t len)
{
	snprintf(buf, len, "the request did not arrive whole within %d s",
	         srv.cfg->timeout_seconds);
	return buf;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	kws_conn *c = arg;
	char msg[96];
	(void)fd, (void)what;
	switch (c->state) {
	case C_HANDSHAKE:
		snprintf(msg, sizeof(msg), "TLS handshake not done within %d s",
		         srv.cfg->handshake_seconds);
		kws_refusal_note(c->peer, NULL, msg, NULL);
		conn_free(c);
		return;
	case C_HEAD:
		if (c->reading && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
			conn_close(c); /* idle */
			return;
		}
		if (!c->reading) { /* the last reply was not taken */
			conn_free(c);
			return;
		}
		/* part of a request came */
		refuse(c, 408, msg_timeout(msg, sizeof(msg)), 0);
		return;
	case C_BODY: refuse(c, 408, msg_timeout(msg, sizeof(msg)), 0); return;
	default: conn_free(c);
	}
}

/* Why a connection from addr is refused now (static text), or NULL. */
static const char *admit(const char *addr)
{
	static char why[160];
	int same = 0;
	if (srv.count >= srv.cfg->max_connections) {
		snprintf(why, sizeof(why), "connection limit reached (%d)",
		         srv.cfg->max_connections);
		return why;
	}
	for (const kws_conn *c = srv.list; c; c = c->next)
		same += strcmp(c->addr, addr) == 0;
	if (same >= srv.cfg->max_per_address) {
		snprintf(why, sizeof(why), "per-address connection limit reached (%d from %s)",
		         srv.cfg->max_per_address, addr);
		return why;
	}
	return NULL;
}

static kws_conn *conn_new(evutil_socket_t fd, const char *peer, const char *addr)
{
	kws_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	TAILQ_INIT(&c->head.headers);
	c->head.content_length = -1;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->ssl = SSL_new(srv.ssl);
	c->deadline = evtimer_new(srv.base, on_deadline, c);
	if (c->ssl && c->deadline && SSL_set_ex_data(c->ssl, srv.index, c) == 1)
		/* deferred: a callback never runs inside a call of ours (a reply
		 * written cannot free the connection under its writer) */
		c->bev =
		    bufferevent_openssl_socket_new(srv.base, fd, c->ssl, BUFFEREVENT_SSL_ACCEPTING,
		                                   BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL) {
		SSL_free(c->ssl);
		if (c->deadline)
			event_free(c->deadline);
		free(c);
		return NULL;
	}
	c->next = srv.list;
	if (srv.list)
		srv.list->prev = c;
	srv.list = c;
	srv.count++;
	return c;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
	char peer[KWS_PEER_MAX], addr[KWS_PEER_MAX];
	(void)l, (void)len, (void)arg;
	peer_names(sa, peer, addr);
	const char *why = admit(addr);
	kws_conn *c = why ? NULL : conn_new(fd, peer, addr);
	if (c == NULL) {
		evutil_closesocket(fd);
		kws_refusal_note(peer, NULL, why ? why : "out of memory", NULL);
		return;
	}
	struct timeval wt = {srv.cfg->timeout_seconds, 0};
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	/* the most a connection buffers: a head and a body */
	bufferevent_setwatermark(c->bev, EV_READ, 0, KWS_HEAD_MAX + srv.cfg->max_body + 4);
	bufferevent_set_timeouts(c->bev, NULL, &wt);
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	reading(c, 1);
	deadline_in(c, srv.cfg->handshake_seconds);
}

struct evconnlistener *kws_conn_listen(struct event_base *base, SSL_CTX *ssl, kw_store *s,
                                       const kws_config *cfg)
{
	struct evutil_addrinfo hints, *ai = NULL;
	struct evconnlistener *l = NULL;
	char port[16];
	srv.base = base;
	srv.ssl = ssl;
	srv.store = s;
	srv.cfg = cfg;
	if (srv.index < 0)
		srv.index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", cfg->port);
	if (srv.index < 0 || evutil_getaddrinfo(cfg->host, port, &hints, &ai) != 0)
		ai = NULL;
	for (struct evutil_addrinfo *p = ai; p && l == NULL; p = p->ai_next)
		l = evconnlistener_new_bind(base, on_accept, NULL,
		                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		                                LEV_OPT_CLOSE_ON_EXEC,
		                            128, p->ai_addr, (int)p->ai_addrlen);
	if (ai)
		evutil_freeaddrinfo(ai);
	if (l == NULL)
		fprintf(stderr, "keyward: cannot listen on %s:%d\n", cfg->host, cfg->port);
	return l;
}

void kws_conn_close_all(void)
{
	while (srv.list)
		conn_free(srv.list);
}

const char *kws_conn_peer(SSL *ssl)
{
	const kws_conn *c = srv.index >= 0 ? SSL_get_ex_data(ssl, srv.index) : NULL;
	return c ? c->peer : "";
}

void kws_conn_tls_refusal(SSL *ssl, const char *reason, const char *sha256)
{
	kws_conn *c = srv.index >= 0 ? SSL_get_ex_data(ssl, srv.index) : NULL;
	if (c == NULL)
		return;
	snprintf(c->tls_refusal, sizeof(c->tls_refusal), "%s", reason);
	snprintf(c->tls_sha256, sizeof(c->tls_sha256), "%s", sha256 ? sha256 : "");
}
