/*
 * keyward CLI end-to-end tests: shared helpers (static, header only).
 *
 * The tests drive the real `keyward` binary (KW_TEST_KEYWARD_BIN) the way an
 * admin would, then check what it says against independent tools: openssl for
 * the certificates and CSRs, sqlite3 for the store, pkcs11-tool / p11tool for
 * the SoftHSM token and tpm2-tools for the swtpm.
 */
#ifndef KW_CLI_TEST_H
#define KW_CLI_TEST_H

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "kwtest.h"

/* The injected clock most tests create certificates at, and its epoch. */
#define CLI_NOW       "2030-01-01T00:00:00Z"
#define CLI_NOW_EPOCH 1893456000L
/* A later time for renewals. */
#define CLI_LATER "2030-06-01T00:00:00Z"

#define CLI_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- running things ---- */

/* Runs the CLI with args (NULL-terminated), extra env entries (or NULL). */
static inline void cli_runv(kwt_result *r, char *const env[], const char *store,
                            const char *const *args)
{
	kwt_kw_args(r, env, store, args);
}

/* "cert create a --backend hsm" for messages (static buffer). */
static inline const char *cli_args_str(const char *const *args)
{
	static char buf[2048];
	size_t used = 0;
	buf[0] = '\0';
	for (; *args && used < sizeof(buf) - 1; args++) {
		int n = snprintf(buf + used, sizeof(buf) - used, "%s%s", used ? " " : "", *args);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

/* Drops trailing white space in place. */
static inline char *cli_trim(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* A shell command's trimmed stdout (malloc'd). */
static inline __attribute__((format(printf, 1, 2))) char *cli_out(const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	char *out = kwt_sh_out("%s", cmd);
	free(cmd);
	return cli_trim(out);
}

/* A shell command's exit status. */
static inline __attribute__((format(printf, 1, 2))) int cli_status(const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	int st = kwt_sh("%s", cmd);
	free(cmd);
	return st;
}

/* ---- outcome assertions ---- */

/* Exit 0, nothing on stderr. */
static inline void cli_assert_ok(const kwt_result *r, const char *what)
{
	cr_assert_eq(r->status, 0, "%s: exit %d, stderr: %s", what, r->status, r->err);
	cr_assert_str_empty(r->err, "%s: succeeded but wrote to stderr: %s", what, r->err);
}

/* The error contract: exit code, exactly one stderr line "keyward: ...", no stdout. */
static inline void cli_assert_error(const kwt_result *r, int code, const char *what)
{
	cr_assert_eq(r->status, code, "%s: expected exit %d, got %d (stdout: %s; stderr: %s)", what,
	             code, r->status, r->out, r->err);
	size_t n = strlen(r->err);
	cr_assert(n > 0 && r->err[n - 1] == '\n' && kwt_count_lines(r->err) == 1,
	          "%s: expected exactly one stderr line, got: <<%s>>", what, r->err);
	cr_assert(strncmp(r->err, "keyward: ", 9) == 0 && n > 10,
	          "%s: stderr does not start with 'keyward: ': %s", what, r->err);
	cr_assert_str_empty(r->out, "%s: failed but printed on stdout: %s", what, r->out);
}

static inline void cli_assert_err_has(const kwt_result *r, const char *needle, const char *what)
{
	cr_assert(strcasestr(r->err, needle) != NULL, "%s: stderr lacks '%s': %s", what, needle,
	          r->err);
}

static inline void cli_assert_err_lacks(const kwt_result *r, const char *needle, const char *what)
{
	cr_assert(strstr(r->err, needle) == NULL && strstr(r->out, needle) == NULL,
	          "%s: output shows '%s': %s%s", what, needle, r->out, r->err);
}

/* Runs args and asserts success (stdout kept in r). */
static inline void cli_ok(kwt_result *r, char *const env[], const char *store,
                          const char *const *args)
{
	cli_runv(r, env, store, args);
	cli_assert_ok(r, cli_args_str(args));
}

/* ---- JSON ---- */

static inline json_t *cli_json(const char *text, const char *what)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	cr_assert(j != NULL, "%s: stdout is not one JSON document (%s): %s", what, e.text, text);
	return j;
}

/* The string at key (the test fails when missing or not a string). */
static inline const char *cli_js(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	cr_assert(s != NULL, "JSON lacks string '%s'", key);
	return s;
}

static inline void cli_assert_jbool(const json_t *o, const char *key, int want, const char *what)
{
	const json_t *v = json_object_get(o, key);
	cr_assert(json_is_boolean(v), "%s: '%s' is not a boolean", what, key);
	cr_assert_eq(json_is_true(v), want, "%s: '%s' is %s, expected %s", what, key,
	             json_is_true(v) ? "true" : "false", want ? "true" : "false");
}

static inline json_t *cli_show(const char *store, const char *name, int version)
{
	kwt_result r;
	char v[16];
	snprintf(v, sizeof(v), "%d", version);
	if (version > 0)
		cli_ok(&r, NULL, store, CLI_ARGS("cert", "show", name, "--version", v, "--json"));
	else
		cli_ok(&r, NULL, store, CLI_ARGS("cert", "show", name, "--json"));
	json_t *j = cli_json(r.out, "cert show --json");
	kwt_result_free(&r);
	return j;
}

static inline json_t *cli_list(const char *store, const char *what)
{
	kwt_result r;
	cli_ok(&r, NULL, store,
	       what[0] == 'b' ? CLI_ARGS("backend", "list", "--json")
	                      : CLI_ARGS("cert", "list", "--json"));
	json_t *j = cli_json(r.out, what);
	cr_assert(json_is_array(j), "%s --json is not an array", what);
	kwt_result_free(&r);
	return j;
}

/* The element of array whose "name" is name, or NULL (borrowed). */
static inline json_t *cli_find_named(const json_t *array, const char *name)
{
	for (size_t i = 0; i < json_array_size(array); i++) {
		json_t *v = json_array_get(array, i);
		const char *n = json_string_value(json_object_get(v, "name"));
		if (n != NULL && strcmp(n, name) == 0)
			return v;
	}
	return NULL;
}

/* ---- store and token snapshots ---- */

static inline int cli_have_p11(void)
{
	const char *m = getenv("KW_TEST_P11_MODULE");
	return m != NULL && m[0] != '\0';
}

typedef struct {
	char *dump;
	int objects; /* -1 without a token */
} cli_snap;

static inline cli_snap cli_snap_take(const char *store)
{
	cli_snap s;
	s.dump = kwt_store_dump(store);
	cr_assert(strstr(s.dump, "CREATE TABLE") != NULL, "cannot dump the store %s", store);
	s.objects = cli_have_p11() ? kwt_p11_object_count() : -1;
	return s;
}

/* The store's rows and the token's objects are what they were. */
static inline void cli_snap_assert_same(cli_snap *before, const char *store, const char *what)
{
	cli_snap after = cli_snap_take(store);
	cr_assert_str_eq(after.dump, before->dump, "%s changed the store", what);
	cr_assert_eq(after.objects, before->objects, "%s changed the token: %d objects, was %d",
	             what, after.objects, before->objects);
	free(after.dump);
	free(before->dump);
	before->dump = NULL;
}

/* A refused command: one-line error, exit code, needle in it, store and token
 * unchanged. The result goes to *keep when keep is not NULL. */
static inline void cli_refused(const char *store, char *const env[], int code, const char *needle,
                               const char *const *args, kwt_result *keep)
{
	kwt_result r;
	char what[2048];
	snprintf(what, sizeof(what), "%s", cli_args_str(args));
	cli_snap before = cli_snap_take(store);
	cli_runv(&r, env, store, args);
	cli_assert_error(&r, code, what);
	if (needle)
		cli_assert_err_has(&r, needle, what);
	cli_snap_assert_same(&before, store, what);
	if (keep)
		*keep = r;
	else
		kwt_result_free(&r);
}

#define CLI_REFUSED(store, code, needle, ...)                                                      \
	cli_refused((store), NULL, (code), (needle), CLI_ARGS(__VA_ARGS__), NULL)

/* Number of rows a SQL query on the store counts. */
static inline int cli_sql_count(const char *store, const char *sql)
{
	char *out = cli_out("sqlite3 '%s/keyward.db' \"%s\"", store, sql);
	int n = atoi(out);
	free(out);
	return n;
}

/* ---- creating ---- */

/* cert create NAME --backend B --subject DN --key K --days N [--san ...] at now (or real time);
 * through kwt_kw_repeat when repeat is set. */
static inline void cli_create_run(int repeat, const char *store, const char *now, const char *name,
                                  const char *backend, const char *key, const char *subject,
                                  int days, const char *const *sans)
{
	const char *args[64];
	char d[16];
	char envnow[64];
	int n = 0;
	snprintf(d, sizeof(d), "%d", days);
	args[n++] = "cert";
	args[n++] = "create";
	args[n++] = name;
	args[n++] = "--backend";
	args[n++] = backend;
	args[n++] = "--subject";
	args[n++] = subject;
	args[n++] = "--key";
	args[n++] = key;
	args[n++] = "--days";
	args[n++] = d;
	for (; sans && *sans && n < 60; sans++) {
		args[n++] = "--san";
		args[n++] = *sans;
	}
	args[n] = NULL;
	snprintf(envnow, sizeof(envnow), "KEYWARD_NOW=%s", now ? now : "");
	char *env[] = {envnow, NULL};
	kwt_result r;
	if (repeat)
		kwt_kw_repeat(&r, now ? env : NULL, store, args);
	else
		cli_runv(&r, now ? env : NULL, store, args);
	cli_assert_ok(&r, cli_args_str(args));
	cr_assert(strstr(r.out, "created ") != NULL && strstr(r.out, name) != NULL,
	          "cert create said: %s", r.out);
	kwt_result_free(&r);
}

static inline void cli_create(const char *store, const char *now, const char *name,
                              const char *backend, const char *key, const char *subject, int days,
                              const char *const *sans)
{
	cli_create_run(0, store, now, name, backend, key, subject, days, sans);
}

/* cli_create for a test's starting state, built the same way by every test
 * that wants it (a new store from kwt_store_new, the same certificates in the
 * same order): under valgrind memcheck checks the program's first such run
 * (kwt_kw_repeat). */
static inline void cli_create_repeat(const char *store, const char *now, const char *name,
                                     const char *backend, const char *key, const char *subject,
                                     int days, const char *const *sans)
{
	cli_create_run(1, store, now, name, backend, key, subject, days, sans);
}

/* ---- time ---- */

static inline time_t cli_time_parse(const char *rfc3339)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ", &tm);
	cr_assert(end != NULL && *end == '\0', "not a UTC RFC 3339 time: %s", rfc3339);
	return timegm(&tm);
}

static inline void cli_time_format(time_t t, char *buf, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#endif
