/* see tls_server.h: the servers' keys, configurations and processes */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tls_server.h"
#include "tls_proc.h"

/* The server of the running test, for tls_teardown. */
static tls_server *current;

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static const char *kind_name(tls_kind kind)
{
	return kind == TLS_NGINX ? "nginx" : "haproxy";
}

const char *tls_server_bin(tls_kind kind)
{
	static char path[2][4096];
	const char *shims = getenv("KW_TEST_EXEC_SHIMS");
	int i = kind == TLS_NGINX ? 0 : 1;
	snprintf(path[i], sizeof(path[i]), "%s/%s", shims && shims[0] ? shims : "/usr/sbin",
	         kind_name(kind));
	return path[i];
}

static tls_server *server_new(tls_kind kind)
{
	tls_server *s = calloc(1, sizeof(*s));
	cr_assert_not_null(s);
	s->kind = kind;
	s->dir = kwt_tmpdir(kind_name(kind));
	s->cert = path_in(s->dir, "cert.pem");
	/* nginx names its key file; haproxy finds "<crt>.key" (ssl-load-extra-files key) */
	s->key = path_in(s->dir, kind == TLS_NGINX ? "ref.pem" : "cert.pem.key");
	s->ossl_cnf = path_in(s->dir, "openssl.cnf");
	s->conf = path_in(s->dir, kind == TLS_NGINX ? "nginx.conf" : "haproxy.cfg");
	s->log = path_in(s->dir, "server.log");
	s->sock = path_in(s->dir, "master.sock");
	current = s;
	return s;
}

static void kw_ok(const char *store, const char *what, const char *const *args)
{
	char *argv[32];
	size_t n = 0;
	argv[n++] = (char *)kwt_env("KW_TEST_KEYWARD_BIN");
	argv[n++] = "--store";
	argv[n++] = (char *)store;
	for (; *args != NULL; args++) {
		cr_assert(n < 31);
		argv[n++] = (char *)*args;
	}
	argv[n] = NULL;
	kwt_result r;
	kwt_run(&r, argv, NULL);
	cr_assert_eq(r.status, 0, "keyward %s failed (exit %d): %s", what, r.status, r.err);
	kwt_result_free(&r);
}

#define KW_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

tls_server *tls_keyward_store(tls_kind kind, const char *backend)
{
	tls_server *s = server_new(kind);
	s->tpm = strcmp(backend, "tpm") == 0;
	s->store = kwt_store_new(s->tpm, !s->tpm);
	s->name = "web";
	return s;
}

tls_server *tls_keyward(tls_kind kind, const char *backend, const char *key_type)
{
	tls_server *s = tls_keyward_store(kind, backend);
	kw_ok(s->store, "cert create",
	      KW_ARGS("cert", "create", s->name, "--backend", backend, "--subject", "CN=localhost",
	              "--san", "DNS:localhost", "--san", "IP:127.0.0.1", "--key", key_type));
	kw_ok(s->store, "cert export", KW_ARGS("cert", "export", s->name, "--out", s->cert));
	kw_ok(s->store, "cert key-ref", KW_ARGS("cert", "key-ref", s->name, "--out", s->key));
	char *ref = kwt_read_file(s->key, NULL);
	cr_assert(ref != NULL && strstr(ref, "-----BEGIN KEYWARD KEY REFERENCE-----") == ref,
	          "%s is not a keyward key reference:\n%s", s->key, ref ? ref : "(missing)");
	free(ref);
	return s;
}

tls_server *tls_agent(tls_kind kind, const char *backend, const char *key_type)
{
	tls_server *s = tls_keyward(kind, backend, key_type);
	const char *tmp = kwt_env("KW_TEST_TMP");
	s->user = "www-data";
	s->agent_sock = path_in(s->dir, "run/agent.sock");
	/* www-data may pass through the test's directory into the server's,
	 * and read its certificate and reference; the token directory stays
	 * root's, as Debian ships /var/lib/softhsm/tokens */
	char *hsm = path_in(tmp, "softhsm");
	cr_assert(chmod(tmp, 0711) == 0 && chmod(s->dir, 0755) == 0 && chmod(hsm, 0700) == 0 &&
	              chmod(s->cert, 0644) == 0 && chmod(s->key, 0644) == 0,
	          "chmod: %s", strerror(errno));
	free(hsm);
	return s;
}

tls_server *tls_software(tls_kind kind)
{
	tls_server *s = server_new(kind);
	cr_assert_eq(kwt_sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	                    "-keyout '%s' -out '%s' -subj /CN=localhost -days 2 "
	                    "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null",
	                    s->key, s->cert),
	             0, "openssl req failed");
	return s;
}

/* ---- configurations ---- */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert(fputs(text, f) >= 0 && fclose(f) == 0, "%s: %s", path, strerror(errno));
}

/* The openssl.cnf of README's "Unprivileged servers" as written there (the
 * block after the marker "<!-- agent-openssl-cnf -->"), its socket moved into
 * the server's directory; keyward.so is found through OPENSSL_MODULES. */
static void write_agent_cnf(const tls_server *s)
{
	char *readme = path_in(kwt_env("KW_TEST_SOURCE_DIR"), "README.md");
	char *text = kwt_read_file(readme, NULL);
	cr_assert_not_null(text, "%s: %s", readme, strerror(errno));
	char *mark = strstr(text, "<!-- agent-openssl-cnf -->");
	cr_assert_not_null(mark, "README.md lacks the agent's openssl.cnf");
	char *start = strstr(mark, "```ini\n");
	cr_assert_not_null(start);
	start += 7;
	char *end = strstr(start, "```");
	cr_assert_not_null(end);
	*end = '\0';
	const char *sock = "/run/keyward/agent.sock";
	char *at = strstr(start, sock);
	cr_assert_not_null(at, "README's agent openssl.cnf does not name %s", sock);
	*at = '\0';
	FILE *f = fopen(s->ossl_cnf, "w");
	cr_assert_not_null(f, "%s: %s", s->ossl_cnf, strerror(errno));
	cr_assert(fprintf(f, "%s%s%s", start, s->agent_sock, at + strlen(sock)) > 0 &&
	          fclose(f) == 0);
	cr_assert(chmod(s->ossl_cnf, 0644) == 0);
	free(text);
	free(readme);
}

static void write_openssl_cnf(const tls_server *s)
{
	if (s->agent_sock) {
		write_agent_cnf(s);
		return;
	}
	char *text = NULL;
	cr_assert(asprintf(&text,
	                   "openssl_conf = openssl_init\n"
	                   "[openssl_init]\n"
	                   "providers = provider_sect\n"
	                   "[provider_sect]\n"
	                   "keyward = keyward_sect\n"
	                   "default = default_sect\n"
	                   "[keyward_sect]\n"
	                   "module = %s/keyward.so\n"
	                   "activate = 1\n"
	                   "[default_sect]\n"
	                   "activate = 1\n",
	                   kwt_env("KW_TEST_PROVIDER_DIR")) > 0);
	write_text(s->ossl_cnf, text);
	free(text);
}

/*
 * nginx clears its workers' environment but for the `env` variables: the
 * provider, the store, the token's configuration and tabrmd's D-Bus address
 * are needed there, where the signing happens. `user root`: the workers
 * read the store, the PIN file and the token, all private to root here —
 * unless they sign through keyward agent (tls_agent): then `user www-data`,
 * and nothing but OPENSSL_CONF is theirs.
 * reuseport spreads the connections over both workers, so both sign.
 * Sessions are neither cached nor ticketed: every handshake is signed.
 */
static void write_nginx_conf(const tls_server *s)
{
	char *text = NULL;
	cr_assert(
	    asprintf(
	        &text,
	        "%s"
	        "worker_processes 2;\n"
	        "daemon off;\n"
	        "master_process on;\n"
	        "pid %s/nginx.pid;\n"
	        "error_log %s %s;\n"
	        "env OPENSSL_CONF;\nenv KEYWARD_STORE;\nenv KEYWARD_DEBUG;\n"
	        "env SOFTHSM2_CONF;\nenv DBUS_SESSION_BUS_ADDRESS;\n"
	        "events { worker_connections 256; }\n"
	        "http {\n"
	        "  log_format served '$pid $ssl_protocol $status';\n"
	        "  access_log %s/access.log served;\n"
	        "  client_body_temp_path %s/tmp/body;\n  proxy_temp_path %s/tmp/proxy;\n"
	        "  fastcgi_temp_path %s/tmp/fastcgi;\n  uwsgi_temp_path %s/tmp/uwsgi;\n"
	        "  scgi_temp_path %s/tmp/scgi;\n"
	        "  server {\n"
	        "    listen 127.0.0.1:%d ssl reuseport;\n"
	        "    server_name localhost;\n"
	        "    ssl_certificate %s;\n"
	        "    ssl_certificate_key %s;\n"
	        "    ssl_protocols TLSv1.2 TLSv1.3;\n"
	        "    ssl_session_cache off;\n"
	        "    ssl_session_tickets off;\n"
	        "    location / { default_type text/plain; return 200 \"ok $ssl_protocol\\n\"; }\n"
	        "  }\n"
	        "}\n",
	        s->user          ? "user www-data;\n"
	        : geteuid() == 0 ? "user root;\n"
	                         : "",
	        s->dir, s->log, getenv("KW_TEST_TLS_DEBUG") ? "debug" : "info", s->dir, s->dir,
	        s->dir, s->dir, s->dir, s->dir, s->port, s->cert, s->key) > 0);
	write_text(s->conf, text);
	free(text);
	char *tmp = path_in(s->dir, "tmp");
	cr_assert(mkdir(tmp, s->user ? 0711 : 0700) == 0 || errno == EEXIST, "%s: %s", tmp,
	          strerror(errno));
	free(tmp);
}

/*
 * haproxy 2.6 reads the key from the `crt` file, or, when that holds only
 * the certificate, from "<crt>.key" (ssl-load-extra-files key): there the
 * keyward reference goes. One worker (master-worker mode) with two threads;
 * through keyward agent (tls_agent) the worker runs as www-data.
 */
static void write_haproxy_cfg(const tls_server *s)
{
	char *text = NULL;
	cr_assert(asprintf(&text,
	                   "global\n"
	                   "%s"
	                   "  nbthread 2\n"
	                   "  ssl-load-extra-files key\n"
	                   "  tune.ssl.cachesize 0\n"
	                   "  log stderr format raw local0 notice\n"
	                   "defaults\n"
	                   "  mode http\n"
	                   "  log global\n"
	                   "  timeout connect 5s\n"
	                   "  timeout client 20s\n"
	                   "  timeout server 20s\n"
	                   "frontend tls\n"
	                   "  bind 127.0.0.1:%d ssl crt %s ssl-min-ver TLSv1.2 no-tls-tickets\n"
	                   "  http-request return status 200 content-type text/plain "
	                   "lf-string \"ok %%[ssl_fc_protocol]\"\n",
	                   s->user ? "  user www-data\n  group www-data\n" : "", s->port,
	                   s->cert) > 0);
	write_text(s->conf, text);
	free(text);
}

/* ---- processes ---- */

/* A loopback port nobody listens on or is connected from, as bind() says. */
static int free_port(void)
{
	static int seeded;
	if (!seeded) {
		srand((unsigned)time(NULL) ^ (unsigned)getpid());
		seeded = 1;
	}
	for (int i = 0; i < 200; i++) {
		int port = 20000 + rand() % 40000;
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert(fd >= 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	cr_assert_fail("no free loopback port found");
	return 0;
}

static int port_accepts(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* The server's environment: keyward's provider through OPENSSL_CONF, the
 * store; the harness's SOFTHSM2_CONF and D-Bus address are inherited (but
 * for a server that signs through the agent). */
static void server_env(const tls_server *s)
{
	setenv("OPENSSL_CONF", s->ossl_cnf, 1);
	if (s->agent_sock) {
		/* through the agent: nothing of the store's or the devices' */
		unsetenv("KEYWARD_STORE");
		unsetenv("SOFTHSM2_CONF");
		unsetenv("DBUS_SESSION_BUS_ADDRESS");
		setenv("OPENSSL_MODULES", kwt_env("KW_TEST_PROVIDER_DIR"), 1);
	} else if (s->store)
		setenv("KEYWARD_STORE", s->store, 1);
	if (getenv("KW_TEST_TLS_DEBUG"))
		setenv("KEYWARD_DEBUG", "1", 1);
}

/* Runs argv in its own process group, output appended to the log. */
static pid_t spawn(const tls_server *s, char *const argv[])
{
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid > 0)
		return pid;
	setsid();
	int log = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	int null = open("/dev/null", O_RDONLY);
	if (log < 0 || null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
		_exit(126);
	/* nothing of the test runner's (its pipes) may outlive the test in the server */
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	server_env(s);
	execv(argv[0], argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void write_group_file(tls_server *s)
{
	char name[64], text[32];
	snprintf(name, sizeof(name), "tls-%d.pid", (int)s->master);
	snprintf(text, sizeof(text), "-%d\n", (int)s->master);
	free(s->group_file);
	s->group_file = kwt_write_file(kwt_env("KW_TEST_TMP"), name, text, strlen(text), 0600);
}

static int expected_workers(const tls_server *s)
{
	return s->kind == TLS_NGINX ? 2 : 1;
}

/* 1: up with its workers; 0: it exited because the port was taken. */
static int wait_ready(tls_server *s)
{
	for (int i = 0; i < 300; i++) {
		int st = 0;
		if (waitpid(s->master, &st, WNOHANG) == s->master) {
			s->master = 0;
			char *log = kwt_read_file(s->log, NULL);
			int taken = log && strstr(log, "Address already in use");
			cr_assert(taken, "%s exited at start (status 0x%x):\n%s",
			          kind_name(s->kind), st, log ? log : "(no log)");
			free(log);
			return 0;
		}
		pid_t w[4];
		if (port_accepts(s->port) && tls_workers(s, w, 4) == expected_workers(s))
			return 1;
		usleep(100 * 1000);
	}
	cr_assert_fail("%s is not up on port %d after 30 s:\n%s", kind_name(s->kind), s->port,
	               tls_logs(s));
	return 0;
}

void tls_start(tls_server *s)
{
	write_openssl_cnf(s);
	for (int attempt = 0; attempt < 5; attempt++) {
		s->port = free_port();
		if (s->kind == TLS_NGINX)
			write_nginx_conf(s);
		else
			write_haproxy_cfg(s);
		char *prefix = NULL;
		cr_assert(asprintf(&prefix, "%s/", s->dir) > 0);
		char *nginx[] = {
		    (char *)tls_server_bin(TLS_NGINX), "-p", prefix, "-c", s->conf, NULL};
		char *haproxy[] = {
		    (char *)tls_server_bin(TLS_HAPROXY), "-W", "-f", s->conf, "-S", s->sock, NULL};
		s->master = spawn(s, s->kind == TLS_NGINX ? nginx : haproxy);
		write_group_file(s);
		int up = wait_ready(s);
		free(prefix);
		if (up)
			return;
	}
	cr_assert_fail("%s: every port tried was taken", kind_name(s->kind));
}

/* ---- keyward agent, as its units run it ---- */

/* The value of the first "key=" line of a unit file (malloc'd). */
static char *unit_value(const char *unit, const char *key)
{
	char *text = kwt_read_file(unit, NULL);
	cr_assert_not_null(text, "%s: %s", unit, strerror(errno));
	size_t klen = strlen(key);
	char *val = NULL;
	for (char *line = strtok(text, "\n"); line && !val; line = strtok(NULL, "\n"))
		if (strncmp(line, key, klen) == 0 && line[klen] == '=')
			val = strdup(line + klen + 1);
	cr_assert_not_null(val, "%s has no %s=", unit, key);
	free(text);
	return val;
}

static mode_t unit_mode(const char *unit, const char *key)
{
	char *v = unit_value(unit, key), *end = NULL;
	long m = strtol(v, &end, 8);
	cr_assert(end && *end == '\0' && m > 0 && m <= 07777, "%s: %s=%s", unit, key, v);
	free(v);
	return (mode_t)m;
}

static void agent_env(char **argv, int *n, char *const *slot, const char *var)
{
	const char *v = getenv(var);
	if (v == NULL)
		return;
	argv[(*n)++] = "-E";
	cr_assert(asprintf((char **)slot, "%s=%s", var, v) > 0);
	argv[(*n)++] = *slot;
}

void tls_agent_start(tls_server *s)
{
	const char *units = kwt_env("KW_TEST_UNIT_DIR");
	char *svc = path_in(units, "keyward-agent.service"),
	     *sock = path_in(units, "keyward-agent.socket");
	char *exec = unit_value(svc, "ExecStart"), *listen = unit_value(sock, "ListenStream");
	mode_t smode = unit_mode(sock, "SocketMode"), dmode = unit_mode(sock, "DirectoryMode");
	/* the shipped socket, moved into this server's directory */
	cr_assert_str_eq(listen, "/run/keyward/agent.sock");
	/* ExecStart: the installed keyward (here: this build's) and its arguments */
	char *args[8];
	int nargs = 0;
	char *prog = strtok(exec, " ");
	cr_assert(prog && strlen(prog) >= 8 && strcmp(prog + strlen(prog) - 8, "/keyward") == 0,
	          "%s: ExecStart is not keyward: %s", svc, exec);
	for (char *a = strtok(NULL, " "); a; a = strtok(NULL, " ")) {
		cr_assert(nargs < 7);
		args[nargs++] = a;
	}
	char *rundir = path_in(s->dir, "run");
	cr_assert(mkdir(rundir, dmode) == 0 || errno == EEXIST, "%s: %s", rundir, strerror(errno));
	cr_assert(chmod(rundir, dmode) == 0);
	unlink(s->agent_sock);

	char store[4200], *envs[4] = {NULL, NULL, NULL, NULL};
	char *argv[32];
	int n = 0;
	argv[n++] = "systemd-socket-activate";
	argv[n++] = "-l";
	argv[n++] = s->agent_sock;
	/* systemd gives the service a clean environment; here also the test's
	 * store and devices (the unit's defaults are /var/lib/keyward and
	 * Debian's SoftHSM configuration) */
	snprintf(store, sizeof(store), "KEYWARD_STORE=%s", s->store);
	argv[n++] = "-E";
	argv[n++] = store;
	agent_env(argv, &n, &envs[0], "SOFTHSM2_CONF");
	agent_env(argv, &n, &envs[1], "DBUS_SESSION_BUS_ADDRESS");
	agent_env(argv, &n, &envs[2], "KEYWARD_DEBUG");
	argv[n++] = (char *)kwt_env("KW_TEST_KEYWARD_BIN");
	for (int i = 0; i < nargs; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	char *log = path_in(s->dir, "agent.log");
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		setsid();
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int null = open("/dev/null", O_RDONLY);
		if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		for (int f = 3; f < 1024; f++)
			close(f);
		execvp(argv[0], argv);
		_exit(127);
	}
	s->agent = pid;
	char name[64], text[32];
	snprintf(name, sizeof(name), "tls-agent-%d.pid", (int)pid);
	snprintf(text, sizeof(text), "-%d\n", (int)pid);
	free(kwt_write_file(kwt_env("KW_TEST_TMP"), name, text, strlen(text), 0600));
	/* listening: then the socket unit's mode, as systemd sets it */
	struct stat st;
	for (int i = 0; i < 100 && stat(s->agent_sock, &st) != 0; i++)
		usleep(50 * 1000);
	cr_assert(stat(s->agent_sock, &st) == 0 && S_ISSOCK(st.st_mode),
	          "the agent's socket %s did not appear:\n%s", s->agent_sock,
	          kwt_read_file(log, NULL));
	cr_assert(chmod(s->agent_sock, smode) == 0);
	for (int i = 0; i < 3; i++)
		free(envs[i]);
	free(log);
	free(rundir);
	free(exec);
	free(listen);
	free(svc);
	free(sock);
}

void tls_agent_stop(tls_server *s, int sig)
{
	if (s == NULL || s->agent <= 0)
		return;
	pid_t pid = s->agent;
	int st;
	kill(-pid, sig);
	for (int i = 0; i < 200 && waitpid(pid, &st, WNOHANG) != pid; i++)
		usleep(50 * 1000);
	if (tls_proc_alive(pid)) {
		kill(-pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	s->agent = 0;
	char name[64];
	snprintf(name, sizeof(name), "%s/tls-agent-%d.pid", kwt_env("KW_TEST_TMP"), (int)pid);
	unlink(name);
}

void tls_stop(tls_server *s)
{
	if (s == NULL || s->master <= 0)
		return;
	pid_t group = s->master;
	int st;
	kill(-group, SIGTERM);
	int gone = 0;
	for (int i = 0; i < 100 && !gone; i++) {
		if (waitpid(group, &st, WNOHANG) == group)
			s->master = 0;
		gone = s->master == 0 && !tls_proc_group_alive(group);
		if (!gone)
			usleep(50 * 1000);
	}
	if (!gone) {
		kill(-group, SIGKILL);
		if (s->master > 0)
			waitpid(group, &st, 0);
		for (int i = 0; i < 100 && tls_proc_group_alive(group); i++)
			usleep(50 * 1000);
	}
	s->master = 0;
	if (s->group_file)
		unlink(s->group_file);
}

void tls_teardown(void)
{
	tls_stop(current);
	tls_agent_stop(current, SIGKILL);
}

/* The last keep bytes of a file (malloc'd), or what says it is missing. */
static char *log_tail(const char *path, const char *missing, size_t keep)
{
	size_t len = 0;
	char *log = kwt_read_file(path, &len);
	if (log == NULL)
		return strdup(missing);
	if (len > keep)
		memmove(log, log + len - keep, keep + 1);
	return log;
}

char *tls_logs(const tls_server *s)
{
	char *log = log_tail(s->log, "(no server log)", 6000);
	if (s->agent_sock == NULL)
		return log;
	char *path = path_in(s->dir, "agent.log"), *agent = log_tail(path, "(no agent log)", 3000),
	     *both = NULL;
	cr_assert(asprintf(&both, "%s\n--- keyward agent:\n%s", log, agent) > 0);
	free(path);
	free(agent);
	free(log);
	return both;
}

/* ---- workers ---- */

/* haproxy's master CLI: the answer to one command (malloc'd; NULL if none).
 * The end of our input tells the master to answer and close. */
/* A master that closes the socket early (still starting, under load) must
 * not kill the test with SIGPIPE: send, not write. */
static char *master_cli(const tls_server *s, const char *cmd)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", s->sock);
	struct timeval tv = {5, 0};
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) != (ssize_t)strlen(cmd) ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1 || shutdown(fd, SHUT_WR) != 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);
	ssize_t n;
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

/* "show proc": the pids under "# workers" (old workers are listed apart). */
static int haproxy_workers(const tls_server *s, pid_t *out, int max)
{
	char *text = master_cli(s, "show proc");
	int n = 0, in_workers = 0;
	for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
		if (line[0] == '#') {
			in_workers = strncmp(line, "# workers", 9) == 0;
			continue;
		}
		int pid = 0;
		char type[16];
		if (in_workers && sscanf(line, "%d %15s", &pid, type) == 2 &&
		    strcmp(type, "worker") == 0 && n < max && tls_proc_alive(pid))
			out[n++] = pid;
	}
	free(text);
	return n;
}

int tls_workers(const tls_server *s, pid_t *out, int max)
{
	if (s->master <= 0)
		return 0;
	if (s->kind == TLS_HAPROXY)
		return haproxy_workers(s, out, max);
	/* nginx titles them; a worker that was told to quit says "is shutting down" */
	return tls_proc_children(s->master, "nginx: worker process", out, max);
}
