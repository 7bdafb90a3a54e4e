/* see tls_server.h: what clients see, what the processes hold, renewals */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tls_proc.h"
#include "tls_server.h"

/* tests/tls/tls-client */
static const char *client(void)
{
	return kwt_env("KW_TEST_TLS_CLIENT");
}

/* Lines of out other than want (at most 20 of them, malloc'd) and the
 * number of lines equal to want. */
static char *other_lines(const char *out, const char *want, int *good)
{
	char *copy = strdup(out), *save = NULL, *bad = calloc(1, 1);
	int shown = 0;
	*good = 0;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strcmp(l, want) == 0) {
			(*good)++;
		} else if (shown++ < 20) {
			char *more = NULL;
			cr_assert(asprintf(&more, "%s  %s\n", bad, l) > 0);
			free(bad);
			bad = more;
		}
	}
	free(copy);
	return bad;
}

static void assert_requests(const tls_server *s, const char *mode, const char *cacert,
                            const char *proto, int count)
{
	char *want = NULL;
	cr_assert(asprintf(&want, "code=200 exit=0 connects=1 body=ok TLSv%s", proto) > 0);
	char *out =
	    kwt_sh_out("'%s' %s %d %d '%s' %s 2>&1", client(), mode, count, s->port, cacert, proto);
	int good = 0;
	char *bad = other_lines(out, want, &good);
	cr_assert(good == count && bad[0] == '\0',
	          "%s: %d of %d %s requests over TLS %s (trusting %s) gave \"%s\"; the others:\n"
	          "%s--- server log (tail):\n%s",
	          s->kind == TLS_NGINX ? "nginx" : "haproxy", good, count,
	          strcmp(mode, "seq") == 0 ? "sequential" : "concurrent", proto, cacert, want, bad,
	          tls_logs(s));
	free(bad);
	free(out);
	free(want);
}

void tls_assert_serves(const tls_server *s, const char *cacert, const char *proto, int seq, int par)
{
	if (seq > 0)
		assert_requests(s, "seq", cacert, proto, seq);
	if (par > 0)
		assert_requests(s, "par", cacert, proto, par);
}

void tls_assert_serves_both(const tls_server *s)
{
	tls_assert_serves(s, s->cert, "1.3", 50, 20);
	tls_assert_serves(s, s->cert, "1.2", 50, 20);
}

void tls_assert_software_control(tls_kind kind)
{
	tls_server *s = tls_software(kind);
	tls_start(s);
	tls_assert_serves_both(s);
	char *want = kwt_sh_out("openssl x509 -in '%s' -noout -fingerprint -sha256 | "
	                        "sed 's/.*=//; s/://g' | tr A-F a-f | tr -d '\\n'",
	                        s->cert);
	char *got = tls_served_sha256(s, "curl", "1.3");
	cr_assert_str_eq(got, want);
	tls_stop(s);
	free(got);
	free(want);
}

char *tls_served_sha256(const tls_server *s, const char *tool, const char *proto)
{
	char *out =
	    kwt_sh_out("'%s' %s %d %s", client(),
	               strcmp(tool, "curl") == 0 ? "curl-sha256" : "sha256", s->port, proto);
	out[strcspn(out, "\n")] = '\0';
	return out;
}

void tls_assert_tls12_sigalgs(const tls_server *s, const char *sigalgs)
{
	char *want = tls_thumbprint(s);
	char *got = kwt_sh_out("'%s' sha256 %d 1.2 '%s'", client(), s->port, sigalgs);
	got[strcspn(got, "\n")] = '\0';
	cr_assert_str_eq(got, want,
	                 "TLS 1.2 offering only %s: the client sees the certificate with SHA-256 "
	                 "%s; keyward's is %s\n--- server log (tail):\n%s",
	                 sigalgs, got[0] ? got : "(no handshake)", want, tls_logs(s));
	free(got);
	free(want);
}

char *tls_thumbprint(const tls_server *s)
{
	kwt_result r;
	char *argv[] = {(char *)kwt_env("KW_TEST_KEYWARD_BIN"),
	                "--store",
	                s->store,
	                "cert",
	                "show",
	                (char *)s->name,
	                "--json",
	                NULL};
	kwt_run(&r, argv, NULL);
	cr_assert_eq(r.status, 0, "keyward cert show failed: %s", r.err);
	json_t *j = json_loads(r.out, 0, NULL);
	const char *tp = json_string_value(json_object_get(j, "thumbprint_sha256"));
	cr_assert(tp != NULL && strlen(tp) == 64, "no thumbprint_sha256 in: %s", r.out);
	char *copy = strdup(tp);
	json_decref(j);
	kwt_result_free(&r);
	return copy;
}

/* ---- the TPM connection stays out of the master ---- */

#define TABRMD_TCTI "libtss2-tcti-tabrmd"

/* nginx's access log names the worker of each request ("$pid ..."). */
static int nginx_served_by(const tls_server *s, pid_t pid)
{
	char *path = NULL, want[32];
	cr_assert(asprintf(&path, "%s/access.log", s->dir) > 0);
	char *log = kwt_read_file(path, NULL);
	snprintf(want, sizeof(want), "\n%d ", (int)pid);
	int found = log && (strncmp(log, want + 1, strlen(want + 1)) == 0 || strstr(log, want));
	free(log);
	free(path);
	return found;
}

void tls_assert_tabrmd_only_in_workers(const tls_server *s)
{
	pid_t w[4];
	int n = tls_workers(s, w, 4);
	cr_assert_eq(tls_proc_maps(s->master, TABRMD_TCTI), 0,
	             "the master (pid %d) loaded the tabrmd TCTI itself: its children cannot use "
	             "it after fork",
	             (int)s->master);
	cr_assert_gt(n, 0, "no workers");
	for (int i = 0; i < n; i++)
		/* reuseport spreads nginx's connections: each worker signed some */
		cr_assert(s->kind != TLS_NGINX || nginx_served_by(s, w[i]),
		          "nginx worker %d did not serve any request", (int)w[i]);
	for (int i = 0; i < n; i++)
		cr_assert_eq(tls_proc_maps(w[i], TABRMD_TCTI), 1,
		             "worker %d of %d (pid %d) has no tabrmd TCTI loaded: it did not sign "
		             "with its own TPM connection\n%s",
		             i + 1, n, (int)w[i], tls_logs(s));
}

/* ---- renewal ---- */

typedef struct {
	char *path;
	char *text;
	struct timespec mtime;
} file_state;

static file_state file_state_get(const char *path)
{
	file_state f = {strdup(path), kwt_read_file(path, NULL), {0, 0}};
	struct stat st;
	cr_assert(f.text != NULL && stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	f.mtime = st.st_mtim;
	return f;
}

static void assert_unchanged(file_state *f)
{
	file_state now = file_state_get(f->path);
	cr_assert_str_eq(now.text, f->text, "%s changed:\n%s", f->path, now.text);
	cr_assert(now.mtime.tv_sec == f->mtime.tv_sec && now.mtime.tv_nsec == f->mtime.tv_nsec,
	          "%s was rewritten (mtime changed)", f->path);
	free(now.path);
	free(now.text);
	free(f->path);
	free(f->text);
}

/* see tls_server.h */
void tls_assert_served(const tls_server *s, const char *want, const char *when)
{
	const char *clients[] = {"s_client", "curl"}, *protos[] = {"1.3", "1.2"};
	for (int i = 0; i < 4; i++) {
		char *got = tls_served_sha256(s, clients[i / 2], protos[i % 2]);
		cr_assert_str_eq(
		    got, want,
		    "%s, %s over TLS %s sees the certificate with SHA-256 %s; keyward's "
		    "is %s\n--- server log (tail):\n%s",
		    when, clients[i / 2], protos[i % 2], got[0] ? got : "(no handshake)", want,
		    tls_logs(s));
		free(got);
	}
}

static void reload(tls_server *s)
{
	if (s->kind == TLS_HAPROXY) {
		cr_assert_eq(kill(s->master, SIGUSR2), 0, "kill -USR2 %d: %s", (int)s->master,
		             strerror(errno));
		return;
	}
	/* what operators (and nginx.service) run: it reads the configuration,
	 * keys included, then signals the master named in the pid file; through
	 * the agent, with the server's environment only (keyward.so is found
	 * through OPENSSL_MODULES, the key through the agent) */
	if (s->agent_sock)
		cr_assert_eq(
		    kwt_sh("env -u KEYWARD_STORE -u SOFTHSM2_CONF -u "
		           "DBUS_SESSION_BUS_ADDRESS OPENSSL_CONF='%s' OPENSSL_MODULES='%s' "
		           "'%s' -p '%s/' -c '%s' -s reload >>'%s' 2>&1",
		           s->ossl_cnf, kwt_env("KW_TEST_PROVIDER_DIR"), tls_server_bin(TLS_NGINX),
		           s->dir, s->conf, s->log),
		    0, "nginx -s reload failed:\n%s", tls_logs(s));
	else
		cr_assert_eq(kwt_sh("OPENSSL_CONF='%s' KEYWARD_STORE='%s' '%s' -p '%s/' "
		                    "-c '%s' -s reload >>'%s' 2>&1",
		                    s->ossl_cnf, s->store, tls_server_bin(TLS_NGINX), s->dir,
		                    s->conf, s->log),
		             0, "nginx -s reload failed:\n%s", tls_logs(s));
}

static int contains(const pid_t *set, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (set[i] == pid)
			return 1;
	return 0;
}

/* Until a full set of new workers runs and every old one has exited. */
void tls_wait_reloaded(const tls_server *s, const pid_t *old, int n_old)
{
	int want = s->kind == TLS_NGINX ? 2 : 1;
	for (int i = 0; i < 300; i++) {
		pid_t w[4];
		int n = tls_workers(s, w, 4), done = n == want;
		for (int k = 0; k < n; k++)
			done = done && !contains(old, n_old, w[k]);
		for (int k = 0; k < n_old; k++)
			done = done && !tls_proc_alive(old[k]);
		if (done)
			return;
		usleep(100 * 1000);
	}
	cr_assert_fail("no reload after 30 s: the old workers still run or no new ones do\n"
	               "--- server log (tail):\n%s",
	               tls_logs(s));
}

void tls_assert_renewal_seen_after_reload(tls_server *s)
{
	char *old_tp = tls_thumbprint(s), *old_cert = NULL;
	tls_assert_served(s, old_tp, "before the renewal");
	cr_assert(asprintf(&old_cert, "%s/old-cert.pem", s->dir) > 0);
	cr_assert_eq(kwt_sh("cp '%s' '%s'", s->cert, old_cert), 0);
	file_state conf = file_state_get(s->conf), cnf = file_state_get(s->ossl_cnf);
	file_state key = file_state_get(s->key);

	kwt_result r;
	char *renew[] = {(char *)kwt_env("KW_TEST_KEYWARD_BIN"),
	                 "--store",
	                 s->store,
	                 "cert",
	                 "renew",
	                 (char *)s->name,
	                 NULL};
	kwt_run(&r, renew, NULL);
	cr_assert_eq(r.status, 0, "keyward cert renew failed: %s", r.err);
	kwt_result_free(&r);
	char *new_tp = tls_thumbprint(s);
	cr_assert_str_neq(new_tp, old_tp, "the renewal kept the thumbprint");
	/* the running workers keep the key they loaded: the old one still signs */
	tls_assert_served(s, old_tp, "after the renewal, before the reload");
	tls_assert_serves(s, old_cert, "1.3", 3, 5);

	char *export[] = {(char *)kwt_env("KW_TEST_KEYWARD_BIN"),
	                  "--store",
	                  s->store,
	                  "cert",
	                  "export",
	                  (char *)s->name,
	                  "--out",
	                  s->cert,
	                  NULL};
	kwt_run(&r, export, NULL);
	cr_assert_eq(r.status, 0, "keyward cert export failed: %s", r.err);
	kwt_result_free(&r);
	pid_t old[4];
	int n_old = tls_workers(s, old, 4);
	reload(s);
	tls_wait_reloaded(s, old, n_old);

	tls_assert_served(s, new_tp, "after the reload");
	tls_assert_serves(s, s->cert, "1.3", 10, 20);
	tls_assert_serves(s, s->cert, "1.2", 10, 20);
	/* and the old certificate is not what anyone gets any more */
	char *out = kwt_sh_out("'%s' seq 1 %d '%s' 1.3", client(), s->port, old_cert);
	cr_assert(strncmp(out, "code=000 exit=60 ", 17) == 0,
	          "trusting only the old certificate should fail verification: %s", out);
	assert_unchanged(&conf);
	assert_unchanged(&cnf);
	assert_unchanged(&key);
	free(out);
	free(new_tp);
	free(old_tp);
	free(old_cert);
}
