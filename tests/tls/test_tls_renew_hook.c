/*
 * The renewal story of issue 4 as a timer runs it, end to end: a certificate
 * whose policy deploys {cert, fullchain, key_ref} next to nginx's
 * configuration and whose deploy hook reloads that nginx; `keyward renew
 * --due` renews it once its trigger is reached, writes the files, runs the
 * hook, and nginx (Debian's, unmodified, keyward's provider through
 * OPENSSL_CONF) serves the new certificate, with a new key in the TPM or the
 * SoftHSM token, without any change to its configuration.
 *
 * Time: the certificate is made "23 hours ago" (KEYWARD_NOW) and lives one
 * day, so it is valid now (until in an hour) and its trigger (50 % of its
 * lifetime) lies 11 hours back. `renew --due` at an injected time a minute
 * before the trigger does nothing; at an injected time that is the real
 * time it renews, and the new certificate starts then: curl at real time
 * accepts both certificates.
 *
 * The hook is a script: it appends one line with what keyward gave it
 * (KEYWARD_* variables, the SHA-256 of the fullchain file it finds in place)
 * to hook.log, then runs `nginx -s reload` when nginx is up. Its environment
 * holds only PATH and KEYWARD_*: it names the provider's configuration and
 * the devices' (SoftHSM, tpm2-abrmd's D-Bus) itself, as an operator's would.
 * See tls_server.h for the server side and its cleanup.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "tls_server.h"

TestSuite(renew_hook, .fini = tls_teardown, .timeout = 120);

#define VALIDITY 86400L /* validity_days 1 */
#define TRIGGER  50     /* lifetime_percentage: due at half the lifetime */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *fmt(const char *f, ...)
{
	char *p = NULL;
	va_list ap;
	va_start(ap, f);
	cr_assert(vasprintf(&p, f, ap) > 0);
	va_end(ap);
	return p;
}

static char *rfc3339(time_t t)
{
	char buf[32];
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return strdup(buf);
}

/* The SHA-256 fingerprint of the (first) certificate in a PEM file, as
 * keyward writes thumbprints; "" if there is none. */
static char *file_sha256(const char *path)
{
	char *out = kwt_sh_out("openssl x509 -in '%s' -noout -fingerprint -sha256 2>/dev/null | "
	                       "sed 's/.*=//; s/://g' | tr A-F a-f",
	                       path);
	out[strcspn(out, "\n")] = '\0';
	return out;
}

/* `keyward --store S ARGS...` with KEYWARD_NOW = now (NULL: the real clock). */
static void kw_at(kwt_result *r, const tls_server *s, const char *now, const char *const *args)
{
	char *argv[16], *env[2] = {NULL, NULL};
	size_t n = 0;
	argv[n++] = (char *)kwt_env("KW_TEST_KEYWARD_BIN");
	argv[n++] = "--store";
	argv[n++] = s->store;
	for (; *args; args++) {
		cr_assert(n < 15);
		argv[n++] = (char *)*args;
	}
	argv[n] = NULL;
	if (now)
		env[0] = fmt("KEYWARD_NOW=%s", now);
	kwt_run(r, argv, env);
	free(env[0]); /* the child had its copy */
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- files that must not change ---- */

typedef struct {
	char *path;
	char *text;
	struct timespec mtime;
} snap;

static snap snap_take(const char *path)
{
	snap f = {strdup(path), kwt_read_file(path, NULL), {0, 0}};
	struct stat st;
	cr_assert(f.text != NULL && stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	f.mtime = st.st_mtim;
	return f;
}

static void snap_assert_same(const snap *f, const char *when)
{
	snap now = snap_take(f->path);
	cr_assert_str_eq(now.text, f->text, "%s: %s changed:\n%s", when, f->path, now.text);
	cr_assert(now.mtime.tv_sec == f->mtime.tv_sec && now.mtime.tv_nsec == f->mtime.tv_nsec,
	          "%s: %s was rewritten (mtime changed)", when, f->path);
	free(now.path);
	free(now.text);
}

static void snap_free(snap *f)
{
	free(f->path);
	free(f->text);
}

/* ---- the deployment ---- */

typedef struct {
	char *cert, *fullchain, *key_ref; /* the deploy targets */
	char *hook, *hook_log, *policy;
} deployment;

/* The hook script (see the top of this file). */
static void write_hook(const tls_server *s, const deployment *d)
{
	const char *hsm = getenv("SOFTHSM2_CONF"), *bus = getenv("DBUS_SESSION_BUS_ADDRESS");
	char *text = fmt(
	    "#!/bin/sh\n"
	    "# keyward's deploy hook: what it was given, then nginx's reload\n"
	    "reload=no\n"
	    "[ -s '%s/nginx.pid' ] && reload=yes\n"
	    "served=$(openssl x509 -in \"$KEYWARD_FULLCHAIN_PATH\" -noout -fingerprint -sha256 "
	    "| sed 's/.*=//; s/://g' | tr A-F a-f)\n"
	    "printf 'hook=%%s name=%%s version=%%s sha256=%%s cert=%%s fullchain=%%s key_ref=%%s "
	    "file_sha256=%%s reload=%%s\\n' \"$KEYWARD_HOOK\" \"$KEYWARD_NAME\" "
	    "\"$KEYWARD_VERSION\" \"$KEYWARD_THUMBPRINT_SHA256\" \"$KEYWARD_CERT_PATH\" "
	    "\"$KEYWARD_FULLCHAIN_PATH\" \"$KEYWARD_KEY_REF_PATH\" \"$served\" \"$reload\" "
	    ">>'%s'\n"
	    "[ $reload = yes ] || exit 0\n"
	    "export OPENSSL_CONF='%s' SOFTHSM2_CONF='%s' DBUS_SESSION_BUS_ADDRESS='%s'\n"
	    "exec '%s' -p '%s/' -c '%s' -s reload\n",
	    s->dir, d->hook_log, s->ossl_cnf, hsm ? hsm : "", bus ? bus : "",
	    tls_server_bin(TLS_NGINX), s->dir, s->conf);
	free(kwt_write_file(s->dir, "reload-hook.sh", text, strlen(text), 0700));
	free(text);
}

/* Validity one day, renewal at TRIGGER % of it, a new key each time, the
 * three files and the hook. */
static void write_policy(const tls_server *s, deployment *d, const char *backend,
                         const char *key_type)
{
	json_t *p =
	    json_pack("{s:{s:s,s:s,s:b},s:{s:s,s:[s,s],s:i},s:[{s:{s:i},s:s}],s:{s:s}}", "key",
	              "type", key_type, "backend", backend, "reuse_key", 0, "x509", "subject",
	              "CN=localhost", "sans", "DNS:localhost", "IP:127.0.0.1", "validity_days", 1,
	              "lifetime_actions", "trigger", "lifetime_percentage", TRIGGER, "action",
	              "auto_renew", "deploy", "target", "web-files");
	cr_assert_not_null(p);
	char *text = json_dumps(p, JSON_INDENT(2));
	d->policy = kwt_write_file(s->dir, "policy.json", text, strlen(text), 0600);
	free(text);
	json_decref(p);
}

static deployment deployment_new(tls_server *s, const char *backend, const char *key_type)
{
	deployment d;
	d.cert = fmt("%s/web.crt", s->dir);
	d.fullchain = fmt("%s/web-fullchain.pem", s->dir);
	d.key_ref = fmt("%s/web.key", s->dir);
	d.hook_log = fmt("%s/hook.log", s->dir);
	d.hook = fmt("%s/reload-hook.sh", s->dir);
	write_hook(s, &d);
	write_policy(s, &d, backend, key_type);
	/* nginx reads what keyward deploys */
	free(s->cert);
	free(s->key);
	s->cert = strdup(d.fullchain);
	s->key = strdup(d.key_ref);
	return d;
}

static void deployment_free(deployment *d)
{
	free(d->cert);
	free(d->fullchain);
	free(d->key_ref);
	free(d->hook);
	free(d->hook_log);
	free(d->policy);
}

/* The hook's line for a version, as the script prints it. */
static char *hook_line(const deployment *d, int version, const char *sha256, const char *reload)
{
	return fmt("hook=deploy name=web version=%d sha256=%s cert=%s fullchain=%s key_ref=%s "
	           "file_sha256=%s reload=%s",
	           version, sha256, d->cert, d->fullchain, d->key_ref, sha256, reload);
}

/* hook.log holds exactly the lines want[0..n-1] (each run of the hook adds one). */
static void assert_hook_log(const deployment *d, const char *const *want, int n, const char *when)
{
	char *log = kwt_read_file(d->hook_log, NULL);
	cr_assert_not_null(log, "%s: the deploy hook never ran (no %s)", when, d->hook_log);
	cr_assert_eq(kwt_count_lines(log), n, "%s: the deploy hook ran %d time(s), not %d; %s:\n%s",
	             when, kwt_count_lines(log), n, d->hook_log, log);
	char *line = log;
	for (int i = 0; i < n; i++) {
		char *end = strchr(line, '\n');
		cr_assert_not_null(end, "%s: %s ends without a newline:\n%s", when, d->hook_log,
		                   log);
		*end = '\0';
		cr_assert_str_eq(line, want[i],
		                 "%s: run %d of the deploy hook saw\n  %s\nnot\n  %s", when, i + 1,
		                 line, want[i]);
		line = end + 1;
	}
	free(log);
}

static json_t *cert_show(const tls_server *s)
{
	kwt_result r;
	kw_at(&r, s, NULL, ARGS("cert", "show", "web", "--json"));
	cr_assert_eq(r.status, 0, "keyward cert show failed: %s", r.err);
	json_t *j = json_loads(r.out, 0, NULL);
	cr_assert_not_null(j, "cert show --json printed no JSON: %s", r.out);
	kwt_result_free(&r);
	return j;
}

static void assert_show(const tls_server *s, int version, const char *not_before,
                        const char *not_after, const char *when)
{
	json_t *j = cert_show(s);
	const char *nb = json_string_value(json_object_get(j, "not_before"));
	const char *na = json_string_value(json_object_get(j, "not_after"));
	cr_assert_eq(json_integer_value(json_object_get(j, "version")), version,
	             "%s: the current version is %lld, not %d", when,
	             (long long)json_integer_value(json_object_get(j, "version")), version);
	cr_assert(nb && na && strcmp(nb, not_before) == 0 && strcmp(na, not_after) == 0,
	          "%s: version %d is valid from %s to %s, not from %s to %s", when, version,
	          nb ? nb : "?", na ? na : "?", not_before, not_after);
	json_decref(j);
}

/* ---- the story ---- */

static void renew_due_reaches_nginx_through_hook(const char *backend, const char *key_type)
{
	tls_server *s = tls_keyward_store(TLS_NGINX, backend);
	deployment d = deployment_new(s, backend, key_type);
	kwt_result r;

	/* a certificate made 23 hours ago: valid for one more hour, due 11 hours ago */
	time_t t0 = time(NULL) - 23 * 3600;
	char *created = rfc3339(t0), *expires = rfc3339(t0 + VALIDITY);
	char *due = rfc3339(t0 + VALIDITY * TRIGGER / 100);
	char *before_due = rfc3339(t0 + VALIDITY * TRIGGER / 100 - 60);
	/* the files and the hook are the host's: a deploy target the policy names */
	kw_at(&r, s, created,
	      ARGS("deploy-target", "add", "web-files", "--cert", d.cert, "--fullchain",
	           d.fullchain, "--key-ref", d.key_ref, "--deploy", d.hook));
	cr_assert_eq(r.status, 0, "keyward deploy-target add failed (exit %d): %s", r.status,
	             r.err);
	kwt_result_free(&r);
	kw_at(&r, s, created, ARGS("cert", "create", "web", "--policy", d.policy));
	cr_assert_eq(r.status, 0, "keyward cert create --policy failed (exit %d): %s", r.status,
	             r.err);
	kwt_result_free(&r);
	assert_show(s, 1, created, expires, "after cert create");
	char *tp_a = tls_thumbprint(s);

	/* the first deployment, by hand: nginx is not up yet, the hook only reports */
	kw_at(&r, s, NULL, ARGS("cert", "deploy", "web"));
	cr_assert_eq(r.status, 0, "keyward cert deploy failed (exit %d): %s%s", r.status, r.out,
	             r.err);
	kwt_result_free(&r);
	char *line1 = hook_line(&d, 1, tp_a, "no");
	assert_hook_log(&d, (const char *const[]){line1}, 1, "after cert deploy");
	char *got = file_sha256(d.cert);
	cr_assert_str_eq(got, tp_a, "deploy.cert %s holds %s, not version 1 (%s)", d.cert, got,
	                 tp_a);
	free(got);
	char *ref = kwt_read_file(d.key_ref, NULL);
	cr_assert(ref && strncmp(ref, "-----BEGIN KEYWARD KEY REFERENCE-----\n", 38) == 0,
	          "deploy.key_ref %s is not a keyward key reference:\n%s", d.key_ref,
	          ref ? ref : "(missing)");
	free(ref);

	tls_start(s);
	tls_assert_served(s, tp_a, "after the first deployment");
	tls_assert_serves(s, d.cert, "1.3", 3, 4);
	char *old_cert = fmt("%s/old.crt", s->dir);
	cr_assert_eq(kwt_sh("cp '%s' '%s'", d.cert, old_cert), 0);

	snap files[] = {snap_take(d.cert),     snap_take(d.fullchain), snap_take(d.key_ref),
	                snap_take(d.hook_log), snap_take(s->conf),     snap_take(s->ossl_cnf)};
	const size_t n_files = sizeof(files) / sizeof(files[0]);

	/* a minute before the trigger: nothing happens */
	kw_at(&r, s, before_due, ARGS("renew", "--due"));
	char *want = fmt("web: not due (renews at %s)\n", due);
	cr_assert(r.status == 0 && strcmp(r.out, want) == 0,
	          "renew --due at %s (exit %d) printed\n%s\nnot\n%s(stderr: %s)", before_due,
	          r.status, r.out, want, r.err);
	kwt_result_free(&r);
	free(want);
	for (size_t i = 0; i < n_files; i++)
		snap_assert_same(&files[i], "renew --due before the trigger");
	assert_show(s, 1, created, expires, "renew --due before the trigger");
	tls_assert_served(s, tp_a, "after renew --due before the trigger");

	/* now, past the trigger: renewed, deployed, the hook reloads nginx */
	pid_t old[4];
	int n_old = tls_workers(s, old, 4);
	time_t t1 = time(NULL);
	char *now = rfc3339(t1), *now_expires = rfc3339(t1 + VALIDITY);
	kw_at(&r, s, now, ARGS("renew", "--due"));
	want = strdup("web: renewed \xe2\x86\x92 version 2 (new key)\n");
	cr_assert(r.status == 0 && strcmp(r.out, want) == 0,
	          "renew --due at %s (exit %d) printed\n%s\nnot\n%s(stderr: %s)\n"
	          "--- server log (tail):\n%s",
	          now, r.status, r.out, want, r.err, tls_logs(s));
	kwt_result_free(&r);
	free(want);
	assert_show(s, 2, now, now_expires, "renew --due past the trigger");
	char *tp_b = tls_thumbprint(s);
	cr_assert_str_neq(tp_b, tp_a, "renew --due kept the thumbprint");
	char *line2 = hook_line(&d, 2, tp_b, "yes");
	assert_hook_log(&d, (const char *const[]){line1, line2}, 2, "after renew --due");
	got = file_sha256(d.cert);
	cr_assert_str_eq(got, tp_b, "deploy.cert %s holds %s, not version 2 (%s)", d.cert, got,
	                 tp_b);
	free(got);

	tls_wait_reloaded(s, old, n_old);
	tls_assert_served(s, tp_b, "after renew --due and its deploy hook");
	tls_assert_serves(s, d.cert, "1.3", 3, 4);
	tls_assert_serves(s, d.cert, "1.2", 3, 4);
	char *out =
	    kwt_sh_out("'%s' seq 1 %d '%s' 1.3", kwt_env("KW_TEST_TLS_CLIENT"), s->port, old_cert);
	cr_assert(strncmp(out, "code=000 exit=60 ", 17) == 0,
	          "trusting only version 1 should fail verification now: %s", out);
	free(out);
	/* the reference names the certificate, not a key: the same text, rewritten */
	ref = kwt_read_file(d.key_ref, NULL);
	cr_assert_str_eq(ref, files[2].text, "deploy.key_ref changed with the renewal:\n%s", ref);
	free(ref);
	snap_assert_same(&files[4], "after renew --due");
	snap_assert_same(&files[5], "after renew --due");
	tls_stop(s);

	for (size_t i = 0; i < n_files; i++)
		snap_free(&files[i]);
	free(line1);
	free(line2);
	free(tp_a);
	free(tp_b);
	free(now);
	free(now_expires);
	free(old_cert);
	free(created);
	free(expires);
	free(due);
	free(before_due);
	deployment_free(&d);
}

Test(renew_hook, tpm_key_behind_abrmd_renewed_when_due_and_reloaded_by_hook)
{
	renew_due_reaches_nginx_through_hook("tpm", "ec-p256");
}

Test(renew_hook, softhsm_key_renewed_when_due_and_reloaded_by_hook)
{
	renew_due_reaches_nginx_through_hook("hsm", "rsa-2048");
}
