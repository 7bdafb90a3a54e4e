/* see server.h: the event loop, the listener and signals */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "internal.h"

typedef struct {
	SSL_CTX *ssl;
	kw_store *store;
	const kws_config *cfg;
} server;

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	event_base_loopexit(arg, NULL);
}

static int bound_port(struct evconnlistener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int run(struct event_base *base, server *sv)
{
	struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
	struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	int ex = 1;
	struct evconnlistener *l = kws_conn_listen(base, sv->ssl, sv->store, sv->cfg);
	if (kws_refusals_start(base, sv->store) != 0)
		fprintf(stderr, "keyward: cannot start counting refusals\n");
	else if (l && sigint && sigterm && event_add(sigint, NULL) == 0 &&
	         event_add(sigterm, NULL) == 0) {
		printf("listening on %s:%d\n", sv->cfg->host, bound_port(l));
		fflush(stdout);
		ex = event_base_dispatch(base) < 0;
	}
	if (l)
		evconnlistener_free(l);
	kws_conn_close_all();
	kws_refusals_stop();
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
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
	int ex = kws_tls_new(sv.store, cfg->tls_cert, &sv.ssl);
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
