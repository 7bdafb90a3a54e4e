/*
 * keyward serve end-to-end tests: shared helpers (static, header only).
 *
 * A test makes a store on this program's devices, sets up management with
 * the CLI (`keyward mgmt init`, `mgmt issue ... --out-pkcs12`), starts the
 * real `keyward serve --listen 127.0.0.1:0` (the kernel picks a free port;
 * the server prints it) and talks to it with curl, presenting the PKCS#12
 * files the CLI wrote. ctest gives KW_TEST_PROVIDER_DIR (keyward.so) and
 * KW_TEST_KEYWARD_BIN.
 */
#ifndef KW_SERVER_TEST_H
#define KW_SERVER_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "../cli/cli_test.h"

#define SRV_PASSWORD "correct horse"

typedef struct {
	char *dir;   /* scratch: PKCS#12 files, CA certificate, logs */
	char *store; /* the store */
	char ca[4096];
	char pwfile[4096];
	pid_t pid;
	int port;
	char out[4096]; /* the server's stdout and stderr */
	char err[4096];
} srv_ctx;

typedef struct {
	int curl_exit;  /* 0: an HTTP reply came back */
	int status;     /* HTTP status, 0 without a reply */
	char *headers;  /* the reply's status line and header fields */
	char *body;     /* the reply body */
	json_t *json;   /* the body parsed, or NULL */
	char *curl_err; /* curl's stderr */
} srv_reply;

static inline void srv_reply_free(srv_reply *r)
{
	free(r->headers);
	free(r->body);
	free(r->curl_err);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

/* "<dir>/<name>.p12" (static buffer per call site is not needed: malloc'd). */
static inline char *srv_path(const srv_ctx *c, const char *name, const char *ext)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s%s", c->dir, name, ext) > 0);
	return p;
}

/* mgmt issue NAME --role ROLE --out-pkcs12 <dir>/NAME.p12 (extra env, days 0 = default). */
static inline void srv_issue(srv_ctx *c, const char *name, const char *role, int days,
                             char *const env[])
{
	char *p12 = srv_path(c, name, ".p12");
	char src[4200], d[16];
	kwt_result r;
	snprintf(src, sizeof(src), "file:%s", c->pwfile);
	snprintf(d, sizeof(d), "%d", days ? days : 365);
	cli_runv(&r, env, c->store,
	         CLI_ARGS("mgmt", "issue", name, "--role", role, "--days", d, "--out-pkcs12", p12,
	                  "--password-source", src));
	cli_assert_ok(&r, "mgmt issue");
	cr_assert(strstr(r.out, "issued ") != NULL, "mgmt issue said: %s", r.out);
	kwt_result_free(&r);
	struct stat st;
	cr_assert(stat(p12, &st) == 0 && (st.st_mode & 0777) == 0600,
	          "%s: missing or not mode 0600", p12);
	/* its key and certificate in PEM for srv_curl: each load of the PKCS#12
	 * file costs 3 x 600,000 hash iterations, hundreds of loads a suite */
	cr_assert_eq(cli_status("cd '%s' && umask 077 && openssl pkcs12 -in '%s.p12' -passin "
	                        "'file:%s' -nodes -out '%s.pem' 2>/dev/null",
	                        c->dir, name, c->pwfile, name),
	             0, "cannot read %s with its password", p12);
	free(p12);
}

/* A store with backends (tpm: this program's TPM, hsm: its token), the
 * management CA and server certificate in backend mgmt_backend, admin
 * "alice" and reader "bob". */
static inline void srv_setup(srv_ctx *c, int tpm, int hsm, const char *mgmt_backend)
{
	kwt_result r;
	memset(c, 0, sizeof(*c));
	c->dir = kwt_tmpdir("srv");
	c->store = kwt_store_new(tpm, hsm);
	cli_ok(&r, NULL, c->store, CLI_ARGS("mgmt", "init", "--backend", mgmt_backend));
	cr_assert(strstr(r.out, "management CA keyward-mgmt-ca") != NULL, "mgmt init: %s", r.out);
	kwt_result_free(&r);
	snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", c->dir);
	cli_ok(&r, NULL, c->store, CLI_ARGS("cert", "export", "keyward-mgmt-ca", "--out", c->ca));
	kwt_result_free(&r);
	free(kwt_write_file(c->dir, "pw", SRV_PASSWORD "\n", strlen(SRV_PASSWORD) + 1, 0600));
	snprintf(c->pwfile, sizeof(c->pwfile), "%s/pw", c->dir);
	srv_issue(c, "alice", "admin", 0, NULL);
	srv_issue(c, "bob", "reader", 0, NULL);
}

/* Starts keyward serve (extra args and env may be NULL) and waits for its
 * "listening on" line. Its pid file lets the harness kill it if the test dies. */
static inline void srv_start_with(srv_ctx *c, const char *const *extra, char *const env[])
{
	char *argv[32];
	int n = 0;
	snprintf(c->out, sizeof(c->out), "%s/serve.out", c->dir);
	snprintf(c->err, sizeof(c->err), "%s/serve.err", c->dir);
	/* a restart must not read the last server's "listening on" line */
	unlink(c->out);
	unlink(c->err);
	c->port = 0;
	argv[n++] = (char *)kwt_env("KW_TEST_KEYWARD_BIN");
	argv[n++] = "--store";
	argv[n++] = c->store;
	argv[n++] = "serve";
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	for (; extra && *extra && n < 30; extra++)
		argv[n++] = (char *)*extra;
	argv[n] = NULL;
	const char *modules = kwt_env("KW_TEST_PROVIDER_DIR");
	c->pid = fork();
	cr_assert(c->pid >= 0);
	if (c->pid == 0) {
		int o = open(c->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(c->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(o, 1);
		dup2(e, 2);
		setenv("OPENSSL_MODULES", modules, 1);
		for (size_t i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	char pidfile[4200], pid[32];
	snprintf(pidfile, sizeof(pidfile), "%s/serve-%d.pid", kwt_env("KW_TEST_TMP"), (int)c->pid);
	snprintf(pid, sizeof(pid), "%d", (int)c->pid);
	free(kwt_write_file(kwt_env("KW_TEST_TMP"), strrchr(pidfile, '/') + 1, pid, strlen(pid),
	                    0600));
	for (int i = 0; i < 600 && c->port == 0; i++) {
		char *text = kwt_read_file(c->out, NULL);
		const char *l = text ? strstr(text, "listening on 127.0.0.1:") : NULL;
		if (l)
			c->port = atoi(l + strlen("listening on 127.0.0.1:"));
		free(text);
		int st;
		if (c->port == 0 && waitpid(c->pid, &st, WNOHANG) == c->pid) {
			char *e = kwt_read_file(c->err, NULL);
			cr_assert_fail("keyward serve exited (status %d): %s", st, e ? e : "");
		}
		if (c->port == 0)
			usleep(50 * 1000);
	}
	cr_assert(c->port > 0, "keyward serve did not say where it listens");
}

static inline void srv_start(srv_ctx *c)
{
	srv_start_with(c, NULL, NULL);
}

/* SIGTERM: the server stops cleanly (exit 0). */
static inline void srv_stop(srv_ctx *c)
{
	int st = 0;
	if (c->pid <= 0)
		return;
	cr_assert_eq(waitpid(c->pid, &st, WNOHANG), 0, "keyward serve died on its own (%d)", st);
	cr_assert(kill(c->pid, SIGTERM) == 0);
	while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
		;
	char *e = kwt_read_file(c->err, NULL);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "keyward serve ended with %d: %s", st,
	          e ? e : "");
	free(e);
	char pidfile[4200];
	snprintf(pidfile, sizeof(pidfile), "%s/serve-%d.pid", kwt_env("KW_TEST_TMP"), (int)c->pid);
	unlink(pidfile);
	c->pid = 0;
	c->port = 0;
}

/* curl METHOD https://127.0.0.1:PORT/path with a client certificate (NULL:
 * none; a path with '/' is used as is, PKCS#12 when it ends in .p12, else the
 * PEM form of <dir>/<cert>.p12 srv_issue wrote), body (NULL: none) sent as
 * content_type (NULL: no Content-Type). HEAD is curl -I. */
static inline void srv_curl_as(srv_ctx *c, srv_reply *out, const char *cert, const char *method,
                               const char *path, const char *body, const char *content_type)
{
	char url[512], certarg[4300], bodyarg[4300], outfile[4200], hdrfile[4200], ctype[256];
	kwt_result r;
	const char *argv[32];
	int n = 0;
	memset(out, 0, sizeof(*out));
	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", c->port, path);
	snprintf(outfile, sizeof(outfile), "%s/reply.body", c->dir);
	snprintf(hdrfile, sizeof(hdrfile), "%s/reply.headers", c->dir);
	unlink(outfile);
	unlink(hdrfile);
	argv[n++] = "curl";
	argv[n++] = "-sS";
	argv[n++] = "--max-time";
	argv[n++] = "60";
	argv[n++] = "--cacert";
	argv[n++] = c->ca;
	argv[n++] = strcmp(method, "HEAD") == 0 ? "-I" : "-X";
	if (strcmp(method, "HEAD") != 0)
		argv[n++] = method;
	argv[n++] = "-D";
	argv[n++] = hdrfile;
	argv[n++] = "-o";
	argv[n++] = outfile;
	argv[n++] = "-w";
	argv[n++] = "%{http_code}";
	if (cert) {
		if (strchr(cert, '/'))
			snprintf(certarg, sizeof(certarg), "%s:" SRV_PASSWORD, cert);
		else
			snprintf(certarg, sizeof(certarg), "%s/%s.pem", c->dir, cert);
		argv[n++] = "--cert-type";
		argv[n++] = strstr(certarg, ".p12:") ? "P12" : "PEM";
		argv[n++] = "--cert";
		argv[n++] = certarg;
	}
	/* curl sends its own Content-Type with a body unless told none */
	snprintf(ctype, sizeof(ctype), "Content-Type:%s%s", content_type ? " " : "",
	         content_type ? content_type : "");
	if (body || content_type) {
		argv[n++] = "-H";
		argv[n++] = ctype;
	}
	if (body) {
		free(kwt_write_file(c->dir, "request.body", body, strlen(body), 0600));
		snprintf(bodyarg, sizeof(bodyarg), "@%s/request.body", c->dir);
		argv[n++] = "--data-binary";
		argv[n++] = bodyarg;
	}
	argv[n++] = url;
	argv[n] = NULL;
	kwt_run(&r, (char *const *)argv, NULL);
	out->curl_exit = r.status;
	out->status = atoi(r.out);
	out->curl_err = strdup(r.err);
	kwt_result_free(&r);
	out->body = kwt_read_file(outfile, NULL);
	if (out->body == NULL)
		out->body = strdup("");
	out->headers = kwt_read_file(hdrfile, NULL);
	if (out->headers == NULL)
		out->headers = strdup("");
	out->json = json_loads(out->body, 0, NULL);
}

/* The same as a client of the API does it: with Content-Type
 * application/json on a body and on every POST. */
static inline void srv_curl(srv_ctx *c, srv_reply *out, const char *cert, const char *method,
                            const char *path, const char *body)
{
	int json = body || strcmp(method, "POST") == 0;
	srv_curl_as(c, out, cert, method, path, body, json ? "application/json" : NULL);
}

/* The value of header field name in a reply's headers (static buffer; "" when
 * absent). */
static inline const char *srv_header(const char *headers, const char *name)
{
	static char value[512];
	size_t n = strlen(name);
	value[0] = '\0';
	for (const char *l = headers; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
			const char *v = l + n + 1;
			v += strspn(v, " \t");
			snprintf(value, sizeof(value), "%.*s", (int)strcspn(v, "\r\n"), v);
			break;
		}
	return value;
}

/* The reply is status with a JSON body; for errors, {"error": {"code", "message"}}. */
static inline void srv_assert_status(const srv_reply *r, int status, const char *what)
{
	cr_assert_eq(r->curl_exit, 0, "%s: curl failed (%d): %s", what, r->curl_exit, r->curl_err);
	cr_assert_eq(r->status, status, "%s: HTTP %d, expected %d: %s", what, r->status, status,
	             r->body);
	if (status >= 400) {
		const char *type = srv_header(r->headers, "Content-Type");
		cr_assert_str_eq(type, "application/json", "%s: HTTP %d with Content-Type '%s': %s",
		                 what, status, type, r->body);
		json_t *e = json_object_get(r->json, "error");
		cr_assert(json_is_string(json_object_get(e, "code")) &&
		              json_is_string(json_object_get(e, "message")),
		          "%s: error body is not {\"error\":{\"code\",\"message\"}}: %s", what,
		          r->body);
	} else if (strcmp(what, "metrics") != 0)
		cr_assert(r->json != NULL, "%s: body is not JSON: %s", what, r->body);
}

/* bytes sent as they are over TLS (openssl s_client; cert a client name for
 * its PEM, or NULL), and what came back until the server closed (malloc'd). */
static inline char *srv_raw(const srv_ctx *c, const char *cert, const char *bytes, size_t len)
{
	char certarg[4200] = "";
	free(kwt_write_file(c->dir, "raw.in", bytes, len, 0600));
	if (cert)
		snprintf(certarg, sizeof(certarg), "-cert '%s/%s.pem'", c->dir, cert);
	return kwt_sh_out("cd '%s' && timeout 60 openssl s_client -quiet -connect 127.0.0.1:%d "
	                  "-CAfile ca.pem %s < raw.in 2>/dev/null",
	                  c->dir, c->port, certarg);
}

/* A raw reply: status, the Content-Type and the body parsed. */
static inline void srv_raw_assert_json_error(const char *reply, int status, const char *what)
{
	int got = 0;
	const char *end = strstr(reply, "\r\n\r\n");
	cr_assert(sscanf(reply, "HTTP/1.1 %d ", &got) == 1 && end != NULL, "%s: no HTTP reply: %s",
	          what, reply);
	cr_assert_eq(got, status, "%s: HTTP %d, expected %d: %s", what, got, status, reply);
	char *head = strndup(reply, (size_t)(end - reply));
	const char *type = srv_header(strchr(head, '\n') + 1, "Content-Type");
	cr_assert_str_eq(type, "application/json", "%s: Content-Type '%s': %s", what, type, reply);
	free(head);
	json_t *j = json_loads(end + 4, 0, NULL);
	json_t *e = json_object_get(j, "error");
	cr_assert(json_is_string(json_object_get(e, "code")) &&
	              json_is_string(json_object_get(e, "message")),
	          "%s: error body is not {\"error\":{\"code\",\"message\"}}: %s", what, reply);
	json_decref(j);
}

/* A TCP connection to the server from the loopback address from (its own
 * peer address: 127.0.0.2 is not 127.0.0.1), sending nothing. */
static inline int srv_tcp(const srv_ctx *c, const char *from)
{
	struct sockaddr_in a, to;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	cr_assert(inet_pton(AF_INET, from, &a.sin_addr) == 1);
	cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind %s: %s", from,
	          strerror(errno));
	to = a;
	to.sin_port = htons((uint16_t)c->port);
	cr_assert(inet_pton(AF_INET, "127.0.0.1", &to.sin_addr) == 1);
	cr_assert(connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0, "connect: %s",
	          strerror(errno));
	return fd;
}

/* Whether the server closed fd: a read returns 0 (FIN) or ECONNRESET (RST);
 * 0 while nothing arrived. */
static inline int srv_tcp_closed(int fd)
{
	char b[64];
	struct pollfd p = {fd, POLLIN, 0};
	if (poll(&p, 1, 0) != 1)
		return 0;
	ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Waits until want of the n sockets are closed by the server, or 20 s passed
 * (the bound of a test that failed, not a measure of anything); returns how
 * many are closed. closed[i] is set for each. */
static inline int srv_tcp_wait_closed(const int *fds, int *closed, int n, int want)
{
	int count = 0;
	for (int round = 0; round < 200 && count < want; round++) {
		for (int i = 0; i < n; i++)
			if (!closed[i] && srv_tcp_closed(fds[i])) {
				closed[i] = 1;
				count++;
			}
		if (count < want)
			usleep(100 * 1000);
	}
	return count;
}

/* The TLS handshake was refused: no HTTP reply at all. */
static inline void srv_assert_refused(const srv_reply *r, const char *what)
{
	cr_assert_neq(r->curl_exit, 0, "%s: curl got HTTP %d, expected no connection: %s", what,
	              r->status, r->body);
	cr_assert_eq(r->status, 0, "%s: HTTP %d", what, r->status);
}

/* The store without its event log (each request appends to it). */
static inline char *srv_dump_no_events(const srv_ctx *c)
{
	return kwt_sh_out("sqlite3 '%s/keyward.db' .dump | grep -v -e '^INSERT INTO events ' "
	                  "-e \"^INSERT INTO settings VALUES('event_head'\"",
	                  c->store);
}

/* The last event: type and details (malloc'd, "type|details"). */
static inline char *srv_last_event(const srv_ctx *c)
{
	return cli_out("sqlite3 '%s/keyward.db' \"SELECT type || '|' || actor || '|' || details "
	               "FROM events ORDER BY seq DESC LIMIT 1\"",
	               c->store);
}

/* The entries of every api.refused event, in one array; *events: how many
 * such events there are (NULL: not wanted). */
static inline json_t *srv_refusals(const srv_ctx *c, int *events)
{
	char *out = cli_out("sqlite3 '%s/keyward.db' \"SELECT details FROM events WHERE type = "
	                    "'api.refused' ORDER BY seq\"",
	                    c->store);
	json_t *all = json_array();
	int n = 0;
	char *save = NULL;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *d = json_loads(line, 0, NULL);
		json_t *list = json_object_get(d, "refusals");
		cr_assert(json_is_array(list), "api.refused without refusals: %s", line);
		json_int_t total = 0;
		for (size_t i = 0; i < json_array_size(list); i++) {
			total +=
			    json_integer_value(json_object_get(json_array_get(list, i), "count"));
			json_array_append(all, json_array_get(list, i));
		}
		cr_assert_eq(json_integer_value(json_object_get(d, "total")), total,
		             "api.refused total is not the sum of its counts: %s", line);
		json_decref(d);
		n++;
	}
	free(out);
	if (events)
		*events = n;
	return all;
}

/* How many refusals of address the entries count, with certificate sha256
 * (NULL: none presented; "*": any) and a reason containing why. */
static inline long srv_refused(const json_t *all, const char *address, const char *sha256,
                               const char *why)
{
	long n = 0;
	for (size_t i = 0; i < json_array_size(all); i++) {
		const json_t *e = json_array_get(all, i);
		const char *a = json_string_value(json_object_get(e, "address"));
		const char *t = json_string_value(json_object_get(e, "thumbprint_sha256"));
		const char *r = json_string_value(json_object_get(e, "reason"));
		int sha_ok = sha256 == NULL   ? t == NULL
		             : *sha256 == '*' ? 1
		                              : t && strcmp(t, sha256) == 0;
		if (a && strcmp(a, address) == 0 && sha_ok && r && strstr(r, why))
			n += (long)json_integer_value(json_object_get(e, "count"));
	}
	return n;
}

static inline void srv_teardown(srv_ctx *c)
{
	srv_stop(c);
	free(c->dir);
	free(c->store);
}

#endif
