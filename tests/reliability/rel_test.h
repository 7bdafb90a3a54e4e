/*
 * keyward reliability tests: shared helpers (static, header only).
 *
 * The programs drive the real `keyward` binary and kw-rel-sign (the provider
 * in a separate process, as a server uses it) against the harness's swtpm /
 * tpm2-abrmd and SoftHSM token, and check outcomes with independent tools.
 */
#ifndef KW_REL_TEST_H
#define KW_REL_TEST_H

#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "../cli/cli_devices.h"

/* ---- SoftHSM's token.object ----
 *
 * SoftHSM2's file object store rewrites <token>/token.object in place
 * (truncate, then write) on every successful C_Login, to reset its PIN
 * counter flags: a PKCS#11 client killed at that moment leaves it empty and
 * the token is gone ("no initialised token"), whatever the client was doing.
 * That is SoftHSM's own crash hazard (Debian's build has no SQLite object
 * store), not keyward's. (It also races: a process that reads token.object
 * while another one logs in finds it empty; keyward's token selection
 * retries briefly for that.) Tests that SIGKILL clients pin the file
 * read-only
 * in a private mount namespace: SoftHSM then keeps its flags in memory (a
 * failed store is ignored by C_Login) and keyward's own crash behaviour is
 * what is measured. Needs root, as the harness does. */
static inline void rel_softhsm_pin_token_object(void)
{
	char *path = cli_out("ls %s/softhsm/tokens/*/token.object", kwt_env("KW_TEST_TMP"));
	cr_assert(path[0] == '/' && strchr(path, '\n') == NULL, "no single token.object: %s", path);
	cr_assert(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
	cr_assert(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "mount private: %s",
	          strerror(errno));
	cr_assert(mount(path, path, NULL, MS_BIND, NULL) == 0, "bind %s: %s", path,
	          strerror(errno));
	cr_assert(mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) == 0,
	          "remount %s read-only: %s", path, strerror(errno));
	free(path);
}

/* ---- a seeded PRNG (xorshift64*), so that a run can be replayed ---- */

static uint64_t rel_rng_state;

static inline uint64_t rel_seed_init(void)
{
	const char *e = getenv("KW_REL_SEED");
	uint64_t seed =
	    e && e[0] ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	if (seed == 0)
		seed = 1;
	rel_rng_state = seed;
	return seed;
}

static inline uint64_t rel_rand(void)
{
	rel_rng_state ^= rel_rng_state >> 12;
	rel_rng_state ^= rel_rng_state << 25;
	rel_rng_state ^= rel_rng_state >> 27;
	return rel_rng_state * 2685821657736338717ULL;
}

/* Uniform in [0, n). */
static inline long rel_rand_below(long n)
{
	return n > 0 ? (long)(rel_rand() % (uint64_t)n) : 0;
}

static inline long rel_env_long(const char *name, long dflt)
{
	const char *e = getenv(name);
	return e && e[0] ? strtol(e, NULL, 10) : dflt;
}

static inline long rel_now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

/* ---- processes ---- */

/* Starts argv with stdout/stderr into files (or /dev/null when NULL) and
 * extra env entries; returns the pid. */
static inline pid_t rel_spawn(char *const argv[], char *const env[], const char *out,
                              const char *err)
{
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
		int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		for (size_t i = 0; env && env[i]; i++)
			putenv(env[i]);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Waits for pid: exit code, or 128+signal. */
static inline int rel_wait(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* "keyward --store S args..." as an argv (static storage, valid until the next call). */
static inline char *const *rel_kw_argv(const char *store, const char *const *args)
{
	static char *argv[64];
	int n = 0;
	argv[n++] = (char *)kwt_env("KW_TEST_KEYWARD_BIN");
	argv[n++] = "--store";
	argv[n++] = (char *)store;
	for (; *args && n < 63; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	return argv;
}

/* Path of the kw-rel-sign helper (next to the test program). */
static inline const char *rel_signer_bin(void)
{
	return kwt_env("KW_TEST_REL_SIGNER");
}

/* kw-rel-sign NAMES (space separated) on store: asserts every key loaded,
 * signed and verified, and returns "NAME SHA256" lines (malloc'd). */
static inline char *rel_sign_all(const char *store, const char *names, const char *what)
{
	if (names[0] == '\0')
		return strdup("");
	char *out = kwt_sh_out("KEYWARD_STORE='%s' '%s' %s 2>&1; echo \"exit=$?\"", store,
	                       rel_signer_bin(), names);
	cr_assert(strstr(out, "FAIL") == NULL && strstr(out, "exit=0") != NULL,
	          "%s: signing through the provider failed:\n%s", what, out);
	return out;
}

/* kw-rel-sign --serve: a long-running process that loaded its keys once and
 * signs with them on demand, as a TLS server does. */
typedef struct {
	pid_t pid;
	FILE *in, *out;
} rel_signer;

static inline void rel_signer_start(rel_signer *s, const char *store, const char *name)
{
	int to[2], from[2];
	/* close-on-exec: a daemon the test starts meanwhile (swtpm) must not
	 * inherit them, or the signer would never see the end of its input */
	cr_assert(pipe2(to, O_CLOEXEC) == 0 && pipe2(from, O_CLOEXEC) == 0);
	s->pid = fork();
	cr_assert(s->pid >= 0);
	if (s->pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		dup2(from[1], 2);
		setenv("KEYWARD_STORE", store, 1);
		execl(rel_signer_bin(), rel_signer_bin(), "--serve", name, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	s->in = fdopen(to[1], "w");
	s->out = fdopen(from[0], "r");
	char line[2048] = "";
	cr_assert(fgets(line, sizeof(line), s->out) != NULL, "kw-rel-sign said nothing");
	cr_assert(strncmp(line, "ready", 5) == 0, "kw-rel-sign could not load %s: %s", name, line);
}

/* One signature: "ok" or "fail: why" (malloc'd, trimmed). */
static inline char *rel_signer_sign(rel_signer *s)
{
	char line[4096] = "";
	fprintf(s->in, "sign\n");
	fflush(s->in);
	cr_assert(fgets(line, sizeof(line), s->out) != NULL, "kw-rel-sign died");
	return cli_trim(strdup(line));
}

static inline void rel_signer_assert_ok(rel_signer *s, const char *what)
{
	char *r = rel_signer_sign(s);
	cr_assert_str_eq(r, "ok", "%s: the running signer failed: %s", what, r);
	free(r);
}

/* Ends it; it must still be the process that was started (never restarted). */
static inline void rel_signer_stop(rel_signer *s)
{
	fclose(s->in);
	int st = rel_wait(s->pid);
	fclose(s->out);
	cr_assert_eq(st, 0, "kw-rel-sign --serve exited %d", st);
}

/* Holds the store's write lock (an open BEGIN IMMEDIATE in sqlite3) until
 * db_unlock: a command that made its key waits at its commit. */
static inline FILE *rel_db_lock(const char *store)
{
	char *cmd = NULL;
	cr_assert(asprintf(&cmd, "sqlite3 '%s/keyward.db' >/dev/null 2>&1", store) > 0);
	FILE *f = popen(cmd, "w");
	free(cmd);
	cr_assert(f != NULL);
	fprintf(f, "BEGIN IMMEDIATE;\n");
	fflush(f);
	for (int i = 0; i < 100; i++) {
		if (cli_status("sqlite3 '%s/keyward.db' 'PRAGMA busy_timeout=0; BEGIN IMMEDIATE; "
		               "ROLLBACK;' >/dev/null 2>&1",
		               store) != 0)
			return f;
		usleep(20000);
	}
	cr_assert_fail("could not take the store's write lock");
	return NULL;
}

static inline void rel_db_unlock(FILE *f)
{
	fprintf(f, "ROLLBACK;\n.quit\n");
	pclose(f);
}

/* ---- the store, as the CLI reports it ---- */

/* `cert list --json` of store (asserting success). */
static inline json_t *rel_list(const char *store, const char *what)
{
	kwt_result r;
	cli_runv(&r, NULL, store, CLI_ARGS("cert", "list", "--json"));
	cr_assert_eq(r.status, 0, "%s: cert list failed (%d): %s", what, r.status, r.err);
	json_t *j = cli_json(r.out, "cert list --json");
	kwt_result_free(&r);
	return j;
}

/* PRAGMA integrity_check, as sqlite3 says it. */
static inline void rel_assert_integrity(const char *store, const char *what)
{
	char *out = cli_out("sqlite3 '%s/keyward.db' 'PRAGMA integrity_check' 2>&1", store);
	cr_assert_str_eq(out, "ok", "%s: the database fails its integrity check: %s", what, out);
	free(out);
}

/* keyward doctor [--repair] --json: exit status; *report gets the JSON. */
static inline int rel_doctor(const char *store, int repair, json_t **report)
{
	kwt_result r;
	cli_runv(&r, NULL, store,
	         repair ? CLI_ARGS("doctor", "--repair", "--json") : CLI_ARGS("doctor", "--json"));
	cr_assert(r.status == 0 || r.status == 1, "doctor exited %d: %s", r.status, r.err);
	*report = cli_json(r.out, "doctor --json");
	int st = r.status;
	cr_assert_eq(st == 0, json_integer_value(json_object_get(*report, "remaining")) == 0,
	             "doctor's exit code %d disagrees with its report: %s", st, r.out);
	kwt_result_free(&r);
	return st;
}

/* How many problems of kind the report lists (repaired or not). */
static inline int rel_problems(const json_t *report, const char *kind)
{
	const json_t *ps = json_object_get(report, "problems");
	int n = 0;
	for (size_t i = 0; i < json_array_size(ps); i++)
		n += strcmp(json_string_value(json_object_get(json_array_get(ps, i), "kind")),
		            kind) == 0;
	return n;
}

/* How many objects on this program's SoftHSM token carry this CKA_LABEL. */
static inline int rel_p11_label_count(const char *label)
{
	char *out = cli_out("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                    "--list-objects 2>/dev/null | grep -c '^  label: *%s$'",
	                    kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                    kwt_env("KW_TEST_P11_PIN"), label);
	int n = atoi(out);
	free(out);
	return n;
}

/* A new SoftHSM token of this label in the harness's SoftHSM (same PINs),
 * which this test then uses as "the token" (KW_TEST_P11_TOKEN): doctor sees
 * every keyward key on a token, so tests that share the harness's devices
 * keep their keys apart. */
static inline void rel_own_token(const char *label)
{
	int st = cli_status("softhsm2-util --init-token --free --label '%s' --so-pin '%s' "
	                    "--pin '%s' >/dev/null 2>&1",
	                    label, kwt_env("KW_TEST_P11_SO_PIN"), kwt_env("KW_TEST_P11_PIN"));
	cr_assert_eq(st, 0, "softhsm2-util could not make token %s", label);
	cr_assert(setenv("KW_TEST_P11_TOKEN", label, 1) == 0);
}

/* A self-signed EC P-256 certificate and its key in one PEM file under dir. */
static inline char *rel_pem_make(const char *dir, const char *cn)
{
	char *path = NULL;
	cr_assert(asprintf(&path, "%s/%s.pem", dir, cn) > 0);
	int st =
	    cli_status("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	               "-nodes -subj '/CN=%s' -days 30 -keyout k.pem -out c.pem 2>/dev/null "
	               "&& cat c.pem k.pem > '%s' && rm -f k.pem c.pem",
	               dir, cn, path);
	cr_assert_eq(st, 0, "openssl could not make a test certificate");
	return path;
}

/* SHA-256 of the certificate in a PEM file (lowercase hex, malloc'd). */
static inline char *rel_pem_sha256(const char *path)
{
	char *fp = cli_out("openssl x509 -in '%s' -noout -fingerprint -sha256", path);
	return cli_hex_norm(fp);
}

#endif
