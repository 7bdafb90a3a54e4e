/* see server.h: the event loop, the listener and signals */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "internal.h"

/* The transport's own ceiling on bodies sits well above --max-body, so that
 * an oversized body gets keyward's JSON 413 rather than libevent's page. */
#define TRANSPORT_BODY_FACTOR 4

typedef struct {
	SSL_CTX *ssl;
	kw_store *store;
	const kws_config *cfg;
} server;

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
	server *sv = arg;
	SSL *ssl = SSL_new(sv->ssl);
	if (ssl == NULL)
		return NULL;
	kws_tls_track(ssl);
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                      BEV_OPT_CLOSE_ON_FREE);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	server *sv = arg;
	kws_request_handle(req, sv->store, sv->cfg);
	kw_store_idle(sv->store); /* a request that made a key is over */
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	event_base_loopexit(arg, NULL);
}

static int bound_port(struct evhttp_bound_socket *h)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static struct evhttp *http_new(struct event_base *base, server *sv)
{
	struct evhttp *http = evhttp_new(base);
	if (http == NULL)
		return NULL;
	evhttp_set_bevcb(http, tls_bev, sv);
	evhttp_set_gencb(http, on_request, sv);
	evhttp_set_timeout(http, sv->cfg->timeout_seconds);
	evhttp_set_max_headers_size(http, 16 * 1024);
	evhttp_set_max_body_size(http, (ev_ssize_t)(sv->cfg->max_body * TRANSPORT_BODY_FACTOR));
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	                                     EVHTTP_REQ_DELETE);
	evhttp_set_default_content_type(http, "application/json");
	return http;
}

static int run(struct event_base *base, server *sv)
{
	struct evhttp *http = http_new(base, sv);
	struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
	struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	int ex = 1;
	struct evhttp_bound_socket *h =
	    http ? evhttp_bind_socket_with_handle(http, sv->cfg->host, (ev_uint16_t)sv->cfg->port)
	         : NULL;
	if (h == NULL)
		fprintf(stderr, "keyward: cannot listen on %s:%d\n", sv->cfg->host, sv->cfg->port);
	else if (sigint && sigterm && event_add(sigint, NULL) == 0 &&
	         event_add(sigterm, NULL) == 0) {
		printf("listening on %s:%d\n", sv->cfg->host, bound_port(h));
		fflush(stdout);
		ex = event_base_dispatch(base) < 0;
	}
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	if (http)
		evhttp_free(http);
	return ex;
}

int kws_serve(const kws_config *cfg)
{
	server sv = {NULL, NULL, cfg};
	/* the provider finds the store through KEYWARD_STORE */
	if (setenv("KEYWARD_STORE", cfg->store_dir, 1) != 0) {
		fprintf(stderr, "keyward: cannot set KEYWARD_STORE\n");
		return 1;
	}
	kw_rc rc = kw_store_open(cfg->store_dir, &sv.store);
	if (rc != KW_OK) {
		fprintf(stderr, "keyward: %s\n", kw_error_message());
		return rc == KW_ERR_USAGE ? 2 : 1;
	}
	signal(SIGPIPE, SIG_IGN);
	int ex = kws_tls_new(sv.store, cfg->tls_cert, cfg->max_connections, &sv.ssl);
	struct event_base *base = ex == 0 ? event_base_new() : NULL;
	if (ex == 0 && base == NULL) {
		fprintf(stderr, "keyward: cannot start the event loop\n");
		ex = 1;
	}
	if (ex == 0)
		ex = run(base, &sv);
	if (base)
		event_base_free(base);
	kws_tls_free(sv.ssl);
	kw_store_close(sv.store);
	return ex;
}
