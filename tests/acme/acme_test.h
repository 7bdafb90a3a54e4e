/*
 * keyward ACME end-to-end tests: shared helpers (static, header only).
 *
 * kw-harness --pebble starts Debian's pebble (with pebble-challtestsrv as its
 * DNS: every name is 127.0.0.1) and hands its settings over as KW_TEST_ACME_*.
 * Pebble validates http-01 on 127.0.0.1:KW_TEST_ACME_HTTP_PORT, where the test
 * puts keyward's own responder (--http01-listen) or a plain web server over a
 * webroot (--http01-webroot). tests/acme/acme-proxy sits in front of pebble
 * when a test needs what pebble 2.4 does not do: server errors, Retry-After,
 * renewal information.
 */
#ifndef KW_ACME_TEST_H
#define KW_ACME_TEST_H

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "../cli/cli_ca.h"
#include "../cli/cli_cert_check.h"

static inline const char *acme_dir(void)
{
	return kwt_env("KW_TEST_ACME_DIRECTORY");
}

/* 127.0.0.1:PORT where pebble looks for http-01 answers (static buffer). */
static inline const char *acme_http_listen(void)
{
	static char buf[64];
	snprintf(buf, sizeof(buf), "127.0.0.1:%s", kwt_env("KW_TEST_ACME_HTTP_PORT"));
	return buf;
}

/* issuer add NAME acme on backend with pebble's TLS CA; asserts success. */
static inline json_t *acme_issuer_add(const char *store, const char *name, const char *directory,
                                      const char *backend, const char *key)
{
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("issuer", "add", name, "acme", "--directory", directory, "--backend",
	                backend, "--key", key, "--email", "ops@example.com", "--ca-bundle",
	                kwt_env("KW_TEST_ACME_CA_BUNDLE"), "--agree-tos", "--json"));
	json_t *j = cli_json(r.out, "issuer add --json");
	kwt_result_free(&r);
	cr_assert_str_eq(cli_js(j, "name"), name);
	cr_assert_str_eq(cli_js(j, "backend"), backend);
	cr_assert_str_eq(cli_js(json_object_get(j, "key"), "type"), key);
	/* the account URL the server gave, on the same server */
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "%.*s", (int)(strstr(directory, "/dir") - directory),
	         directory);
	cr_assert(strncmp(cli_js(j, "account_url"), prefix, strlen(prefix)) == 0,
	          "account URL %s not on %s", cli_js(j, "account_url"), prefix);
	return j;
}

/* Exports version's certificate and chain; the chain verifies against
 * pebble's root and the leaf is for the version's key. Returns the leaf PEM
 * path (malloc'd). */
static inline char *acme_check_chain(const char *store, const char *name, int version)
{
	char *dir = kwt_tmpdir("chain"), *leaf = cli_path(dir, "leaf.pem"),
	     *full = cli_path(dir, "full.pem");
	char v[16];
	kwt_result r;
	snprintf(v, sizeof(v), "%d", version);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", name, "--version", v, "--out", leaf));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "export", name, "--version", v, "--chain", "--out", full));
	kwt_result_free(&r);
	cr_assert_eq(cli_status("openssl verify -CAfile '%s' -untrusted '%s' '%s' >/dev/null",
	                        kwt_env("KW_TEST_ACME_ROOT"), full, leaf),
	             0, "%s version %d does not verify against pebble's root", name, version);
	/* pebble's intermediate is in the chain, the root is not needed */
	char *issuer = cli_out("openssl x509 -in '%s' -noout -issuer", leaf);
	cr_assert(strstr(issuer, "Pebble Intermediate CA") != NULL, "issuer: %s", issuer);
	free(issuer);
	free(full);
	free(dir);
	return leaf;
}

/* The policy's default due time for the current version, from a dry run. */
static inline time_t acme_due(const char *store, const char *name)
{
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("renew", "--due", "--dry-run", "--json"));
	json_t *j = cli_json(r.out, "renew --due --dry-run");
	kwt_result_free(&r);
	const json_t *res = cli_find_named(json_object_get(j, "results"), name);
	cr_assert_not_null(res, "renew --due --dry-run does not list %s", name);
	time_t due = cli_time_parse(cli_js(res, "due"));
	json_decref(j);
	return due;
}

/* renew --due --json at now; returns the result for name (new reference). */
static inline json_t *acme_renew_due(const char *store, time_t now, const char *name)
{
	char at[32], env[64];
	kwt_result r;
	cli_time_format(now, at, sizeof(at));
	snprintf(env, sizeof(env), "KEYWARD_NOW=%s", at);
	char *e[] = {env, NULL};
	cli_runv(&r, e, store, CLI_ARGS("renew", "--due", "--json"));
	json_t *j = cli_json(r.out, "renew --due --json");
	json_t *res = json_incref(cli_find_named(json_object_get(j, "results"), name));
	cr_assert_not_null(res, "renew --due does not list %s: %s %s", name, r.out, r.err);
	json_decref(j);
	kwt_result_free(&r);
	return res;
}

/* ---- background servers (killed by kw-harness through $KW_TEST_TMP/NAME.pid) ---- */

/* Kills what an earlier (failed) test left running under pidname. */
static inline void acme_reap(const char *pidname)
{
	char *f = NULL;
	cr_assert(asprintf(&f, "%s/%s.pid", kwt_env("KW_TEST_TMP"), pidname) > 0);
	FILE *p = fopen(f, "r");
	int pid = 0;
	if (p && fscanf(p, "%d", &pid) == 1 && pid > 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (p)
		fclose(p);
	unlink(f);
	free(f);
}

/* Suite init: no server of an earlier test holds the http-01 port. */
static inline void acme_reap_servers(void)
{
	acme_reap("squatter");
	acme_reap("webroot-http");
	acme_reap("acme-proxy");
}

static inline pid_t acme_spawn(const char *pidname, char *const argv[])
{
	acme_reap(pidname);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	char *f = NULL, *log = NULL;
	cr_assert(asprintf(&log, "%s/%s.log", kwt_env("KW_TEST_TMP"), pidname) > 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR),
		    lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 0);
		dup2(lf, 1);
		dup2(lf, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	free(log);
	cr_assert(asprintf(&f, "%s/%s.pid", kwt_env("KW_TEST_TMP"), pidname) > 0);
	FILE *p = fopen(f, "w");
	cr_assert_not_null(p);
	fprintf(p, "%d\n", (int)pid);
	fclose(p);
	free(f);
	return pid;
}

static inline void acme_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Waits until something accepts connections on 127.0.0.1:port (pidname's
 * log in the failure message). */
static inline void acme_wait_port(const char *port, const char *pidname)
{
	for (int i = 0; i < 400; i++) {
		if (cli_status("ss -Htln '( sport = :%s )' | grep -q .", port) == 0)
			return;
		usleep(50000);
	}
	char *log = cli_out("cat '%s/%s.log' 2>&1; ss -Htanp '( sport = :%s )'",
	                    kwt_env("KW_TEST_TMP"), pidname, port);
	cr_assert_fail("nothing listens on port %s after 20 s: %s", port, log);
}

/* A plain web server (python3 http.server) on pebble's http-01 port, over
 * dir (NULL: the current directory), its pid file and log named pidname. */
static inline pid_t acme_http_server(const char *pidname, const char *dir)
{
	char *argv[] = {"/usr/bin/python3",
	                "-m",
	                "http.server",
	                (char *)kwt_env("KW_TEST_ACME_HTTP_PORT"),
	                "--bind",
	                "127.0.0.1",
	                dir ? "--directory" : NULL,
	                (char *)dir,
	                NULL};
	pid_t pid = acme_spawn(pidname, argv);
	acme_wait_port(kwt_env("KW_TEST_ACME_HTTP_PORT"), pidname);
	return pid;
}

/* The web server over dir on pebble's http-01 port. */
static inline pid_t acme_webroot_server(const char *dir)
{
	return acme_http_server("webroot-http", dir);
}

/* A loopback port nothing listens on right now (malloc'd text). */
static inline char *acme_free_port(void)
{
	return cli_out("/usr/bin/python3 -c 'import socket; s=socket.socket(); "
	               "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'");
}

typedef struct {
	pid_t pid;
	char port[16];
	char directory[128];
	char *control;
	char *log;
} acme_proxy;

/* acme-proxy in front of pebble, behaving as control_json says. */
static inline acme_proxy acme_proxy_start(const char *control_json)
{
	acme_proxy p;
	char *dir = kwt_tmpdir("proxy");
	p.control = kwt_write_file(dir, "control.json", control_json, strlen(control_json), 0600);
	p.log = cli_path(dir, "log.jsonl");
	free(kwt_write_file(dir, "log.jsonl", "", 0, 0600));
	char *script = NULL, *upstream = NULL;
	cr_assert(asprintf(&script, "%s/tests/acme/acme-proxy", kwt_env("KW_TEST_SOURCE_DIR")) > 0);
	cr_assert(asprintf(&upstream, "127.0.0.1:%s", kwt_env("KW_TEST_ACME_DIR_PORT")) > 0);
	for (int attempt = 0; attempt < 5; attempt++) {
		char *port = acme_free_port();
		snprintf(p.port, sizeof(p.port), "%s", port);
		free(port);
		char *argv[] = {script,
		                p.port,
		                upstream,
		                (char *)kwt_env("KW_TEST_ACME_TLS_CERT"),
		                (char *)kwt_env("KW_TEST_ACME_TLS_KEY"),
		                p.control,
		                p.log,
		                NULL};
		p.pid = acme_spawn("acme-proxy", argv);
		for (int i = 0; i < 100; i++) {
			if (cli_status("ss -Htln '( sport = :%s )' | grep -q .", p.port) == 0)
				goto up;
			if (waitpid(p.pid, NULL, WNOHANG) == p.pid)
				break;
			usleep(50000);
		}
		acme_kill(p.pid);
	}
	cr_assert_fail("acme-proxy did not start");
up:
	snprintf(p.directory, sizeof(p.directory), "https://127.0.0.1:%s/dir", p.port);
	free(script);
	free(upstream);
	free(dir);
	return p;
}

static inline void acme_proxy_control(const acme_proxy *p, const char *json)
{
	char *tmp = NULL;
	cr_assert(asprintf(&tmp, "%s.new", p->control) > 0);
	FILE *f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fputs(json, f);
	fclose(f);
	cr_assert_eq(rename(tmp, p->control), 0);
	free(tmp);
}

/* The proxy's log lines whose path contains needle (and are not injected
 * when real_only): their number. */
static inline int acme_proxy_count(const acme_proxy *p, const char *needle, int injected)
{
	char *n = cli_out("grep -F '\"path\": \"' '%s' | grep -F '%s' | grep -c%s -F "
	                  "'\"injected\": true' || true",
	                  p->log, needle, injected ? "" : "v");
	int c = atoi(n);
	free(n);
	return c;
}

static inline void acme_proxy_stop(acme_proxy *p)
{
	acme_kill(p->pid);
	free(p->control);
	free(p->log);
}

#endif
