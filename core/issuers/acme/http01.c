/* http-01 challenges (RFC 8555 8.3): the key authorization served at
 * /.well-known/acme-challenge/TOKEN, by a responder of our own (libevent's
 * evhttp on a thread of its own) or as files in a web server's webroot. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <event2/buffer.h>

#include "issuers/acme/acme_issuer.h"

#define PREFIX     "/.well-known/acme-challenge/"
#define TOKENS_MAX 64

struct kwi_http01 {
	char *webroot;
	int made_dirs; /* bit 0: .well-known, bit 1: acme-challenge */
	struct event_base *base;
	struct evhttp *http;
	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	size_t n;
	char *token[TOKENS_MAX];
	char *answer[TOKENS_MAX];
};

kw_rc kwi_http01_listen_parse(const char *listen, char *addr, size_t addr_len, unsigned short *port)
{
	const char *colon = strrchr(listen, ':');
	const char *host = listen, *host_end = colon;
	if (listen[0] == '[') { /* [v6]:port */
		host = listen + 1;
		host_end = strchr(listen, ']');
		if (host_end == NULL || host_end[1] != ':')
			host_end = NULL;
	}
	char *end;
	long p = colon ? strtol(colon + 1, &end, 10) : 0;
	if (host_end == NULL || host_end == host || colon[1] == '\0' || *end != '\0' || p < 1 ||
	    p > 65535 || (size_t)(host_end - host) >= addr_len)
		return KW_FAIL(KW_ERR_USAGE,
		               "http-01 listen address '%s' is not ADDR:PORT (e.g. 0.0.0.0:80, "
		               "[::]:80)",
		               listen);
	memcpy(addr, host, (size_t)(host_end - host));
	addr[host_end - host] = '\0';
	*port = (unsigned short)p;
	return KW_OK;
}

/* A token is base64url (RFC 8555 8.1): nothing else may reach a path. */
static int token_ok(const char *t)
{
	size_t n = strlen(t);
	return n > 0 && n <= 256 &&
	       strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static void on_request(struct evhttp_request *req, void *ud)
{
	kwi_http01 *h = ud;
	const char *uri = evhttp_request_get_uri(req);
	const char *answer = NULL;
	struct evbuffer *out = evbuffer_new();
	pthread_mutex_lock(&h->lock);
	if (uri && strncmp(uri, PREFIX, strlen(PREFIX)) == 0)
		for (size_t i = 0; i < h->n; i++)
			if (strcmp(uri + strlen(PREFIX), h->token[i]) == 0)
				answer = h->answer[i];
	if (answer && out) {
		evbuffer_add(out, answer, strlen(answer));
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
		                  "application/octet-stream");
	}
	pthread_mutex_unlock(&h->lock);
	if (answer && out)
		evhttp_send_reply(req, HTTP_OK, "OK", out);
	else
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
	if (out)
		evbuffer_free(out);
}

static void *serve(void *ud)
{
	kwi_http01 *h = ud;
	event_base_loop(h->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static kw_rc responder_start(kwi_http01 *h, const char *listen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	char addr[128];
	unsigned short port;
	KW_GUARD(kwi_http01_listen_parse(listen, addr, sizeof(addr), &port));
	pthread_once(&once, (void (*)(void))evthread_use_pthreads);
	if ((h->base = event_base_new()) == NULL || (h->http = evhttp_new(h->base)) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "cannot start the http-01 responder");
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_body_size(h->http, 0);
	evhttp_set_timeout(h->http, 10);
	evhttp_set_gencb(h->http, on_request, h);
	if (evhttp_bind_socket_with_handle(h->http, addr, port) == NULL)
		return KW_FAIL_HINT(KW_ERR_UNAVAILABLE, KW_HINT_HTTP01_WEBROOT,
		                    "cannot listen on %s for http-01 challenges: %s (is another "
		                    "server on that port?)",
		                    listen, strerror(errno ? errno : EADDRINUSE));
	if (pthread_create(&h->thread, NULL, serve, h) != 0)
		return KW_FAIL(KW_ERR_INTERNAL, "cannot start the http-01 responder thread");
	h->running = 1;
	return KW_OK;
}

static kw_rc dir_ensure(const char *path, int bit, int *made)
{
	if (mkdir(path, 0755) == 0) {
		*made |= bit;
		return KW_OK;
	}
	struct stat st;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return KW_OK;
	return KW_FAIL(KW_ERR_IO, "http-01 webroot: cannot create %s: %s", path, strerror(errno));
}

static kw_rc webroot_start(kwi_http01 *h, const char *webroot)
{
	struct stat st;
	char path[4096];
	if (webroot[0] != '/' || stat(webroot, &st) != 0 || !S_ISDIR(st.st_mode))
		return KW_FAIL(KW_ERR_USAGE,
		               "http-01 webroot '%s' is not an existing directory "
		               "(an absolute path)",
		               webroot);
	if ((h->webroot = strdup(webroot)) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/.well-known", webroot);
	KW_GUARD(dir_ensure(path, 1, &h->made_dirs));
	snprintf(path, sizeof(path), "%s" PREFIX, webroot);
	path[strlen(path) - 1] = '\0';
	return dir_ensure(path, 2, &h->made_dirs);
}

kw_rc kwi_http01_start(const char *listen, const char *webroot, kwi_http01 **out)
{
	kwi_http01 *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&h->lock, NULL);
	kw_rc rc = listen && listen[0] ? responder_start(h, listen)
	           : webroot && webroot[0]
	               ? webroot_start(h, webroot)
	               : KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_HTTP01,
	                              "no way to answer http-01 challenges: no listen address or "
	                              "webroot was given, and the issuer sets none");
	if (rc != KW_OK) {
		kwi_http01_stop(h);
		return rc;
	}
	*out = h;
	return KW_OK;
}

static kw_rc webroot_write(const kwi_http01 *h, const char *token, const char *answer)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s" PREFIX "%s", h->webroot, token);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return KW_FAIL(KW_ERR_IO, "http-01 webroot: cannot write %s: %s", path,
		               strerror(errno));
	int ok = fputs(answer, f) >= 0;
	ok &= fchmod(fileno(f), 0644) == 0;
	ok &= fclose(f) == 0;
	return ok ? KW_OK : KW_FAIL(KW_ERR_IO, "http-01 webroot: cannot write %s", path);
}

kw_rc kwi_http01_add(kwi_http01 *h, const char *token, const char *key_authorization)
{
	if (!token_ok(token))
		return KW_FAIL(KW_ERR_PARSE, "the ACME server sent an http-01 token that is not "
		                             "base64url");
	if (h->n == TOKENS_MAX)
		return KW_FAIL(KW_ERR_USAGE, "more than %d http-01 challenges in one order",
		               TOKENS_MAX);
	char *t = strdup(token), *a = strdup(key_authorization);
	if (t == NULL || a == NULL) {
		free(t);
		free(a);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	pthread_mutex_lock(&h->lock);
	h->token[h->n] = t;
	h->answer[h->n++] = a;
	pthread_mutex_unlock(&h->lock);
	return h->webroot ? webroot_write(h, token, key_authorization) : KW_OK;
}

void kwi_http01_stop(kwi_http01 *h)
{
	char path[4096];
	if (h == NULL)
		return;
	if (h->running) {
		event_base_loopbreak(h->base);
		pthread_join(h->thread, NULL);
	}
	if (h->http)
		evhttp_free(h->http);
	if (h->base)
		event_base_free(h->base);
	for (size_t i = 0; i < h->n; i++) {
		if (h->webroot) {
			snprintf(path, sizeof(path), "%s" PREFIX "%s", h->webroot, h->token[i]);
			(void)unlink(path);
		}
		free(h->token[i]);
		free(h->answer[i]);
	}
	if (h->webroot && (h->made_dirs & 2)) {
		snprintf(path, sizeof(path), "%s" PREFIX, h->webroot);
		(void)rmdir(path);
	}
	if (h->webroot && (h->made_dirs & 1)) {
		snprintf(path, sizeof(path), "%s/.well-known", h->webroot);
		(void)rmdir(path);
	}
	pthread_mutex_destroy(&h->lock);
	free(h->webroot);
	free(h);
}

kw_rc kwi_http01_check(const char *listen, const char *webroot)
{
	char addr[128];
	unsigned short port;
	if (listen && webroot)
		return KW_FAIL(KW_ERR_USAGE, "give an http-01 listen address or webroot, not both");
	if (listen)
		KW_GUARD(kwi_http01_listen_parse(listen, addr, sizeof(addr), &port));
	if (webroot && webroot[0] != '/')
		return KW_FAIL(KW_ERR_USAGE, "http-01 webroot '%s' is not an absolute path",
		               webroot);
	return KW_OK;
}

kw_rc kwi_http01_settings(const char *listen, const char *webroot, json_t **out)
{
	*out = NULL;
	KW_GUARD(kwi_http01_check(listen, webroot));
	if (listen == NULL && webroot == NULL)
		return KW_OK;
	*out = json_pack("{s:s}", listen ? "listen" : "webroot", listen ? listen : webroot);
	return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}
