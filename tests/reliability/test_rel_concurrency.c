/*
 * Concurrency: 8 processes against one store, one SoftHSM token and one TPM
 * (behind tpm2-abrmd) for KW_REL_DURATION seconds (default 30): two renewing
 * the same certificate, one renewing a TPM certificate, one each running
 * `cert show`, `cert list` and `metrics`, and two signing through the
 * provider (each signature loads keyward:NAME afresh, so it follows the
 * renewals, and is checked against the certificate it came with).
 * Afterwards: every command succeeded and wrote nothing on stderr (no
 * "database is locked" reached anyone), every renewal that said so is a
 * version (no lost update), each certificate has exactly one active version
 * and it is the newest, the event log's chain verifies, and doctor finds
 * nothing.
 */
#include "rel_test.h"

#define WORKERS 6

typedef struct {
	const char *what;
	const char *const *args[2]; /* alternated */
} job;

/* In a child: runs the job's commands until the deadline, then writes
 * "OK FAILED" to DIR/wN.count. Never returns. */
static void worker(const char *store, const job *j, const char *dir, int id, long deadline)
{
	char err[1024], count[1024];
	long ok = 0, failed = 0;
	snprintf(err, sizeof(err), "%s/w%d.err", dir, id);
	snprintf(count, sizeof(count), "%s/w%d.count", dir, id);
	for (long i = 0; rel_now_us() < deadline; i++) {
		const char *const *args = j->args[i % 2] ? j->args[i % 2] : j->args[0];
		pid_t pid = rel_spawn(rel_kw_argv(store, args), NULL, NULL, err);
		if (rel_wait(pid) == 0)
			ok++;
		else
			failed++;
	}
	FILE *f = fopen(count, "w");
	if (f) {
		fprintf(f, "%ld %ld\n", ok, failed);
		fclose(f);
	}
	_exit(0);
}

static pid_t signer_start(const char *store, const char *dir, int id, long seconds,
                          const char *const names[4])
{
	char out[1024], err[1024], secs[32], env[1024];
	snprintf(out, sizeof(out), "%s/s%d.out", dir, id);
	snprintf(err, sizeof(err), "%s/s%d.err", dir, id);
	snprintf(secs, sizeof(secs), "%ld", seconds);
	snprintf(env, sizeof(env), "KEYWARD_STORE=%s", store);
	char *argv[] = {
	    (char *)rel_signer_bin(), "--loop",         secs, (char *)names[0], (char *)names[1],
	    (char *)names[2],         (char *)names[3], NULL};
	char *envv[] = {env, NULL};
	return rel_spawn(argv, envv, out, err);
}

static void counts(const char *dir, int id, long *ok, long *failed)
{
	char *path = NULL;
	cr_assert(asprintf(&path, "%s/w%d.count", dir, id) > 0);
	char *text = kwt_read_file(path, NULL);
	cr_assert(text != NULL && sscanf(text, "%ld %ld", ok, failed) == 2,
	          "worker %d left no count", id);
	free(text);
	free(path);
}

static char *file_text(const char *dir, const char *name)
{
	char *path = NULL;
	cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
	char *t = kwt_read_file(path, NULL);
	free(path);
	return t ? t : strdup("");
}

/* Exactly one active version, the current one, which is the newest; every
 * renewal has its own version number in the event log. Returns the current
 * version (the policy's history_limit prunes old rows, never numbers). */
static int versions_check(const char *store, const char *name, long renewals)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(*) FROM versions v JOIN certs c ON c.id = v.cert_id WHERE c.name = "
	         "'%s' AND v.status = 'active'",
	         name);
	cr_assert_eq(cli_sql_count(store, sql), 1, "%s has not exactly one active version", name);
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(*) FROM certs c JOIN versions v ON v.cert_id = c.id AND v.version = "
	         "c.current_version WHERE c.name = '%s' AND v.status = 'active' AND v.version = "
	         "(SELECT MAX(version) FROM versions WHERE cert_id = c.id)",
	         name);
	cr_assert_eq(cli_sql_count(store, sql), 1, "%s: the current version is not the newest",
	             name);
	snprintf(
	    sql, sizeof(sql),
	    "SELECT COUNT(DISTINCT version) FROM events WHERE type = 'cert.renewed' AND cert = "
	    "'%s'",
	    name);
	cr_assert_eq(cli_sql_count(store, sql), renewals,
	             "%s: %ld renewals succeeded, the log has %d distinct renewed versions", name,
	             renewals, cli_sql_count(store, sql));
	snprintf(sql, sizeof(sql), "SELECT current_version FROM certs WHERE name = '%s'", name);
	return cli_sql_count(store, sql);
}

static const job jobs[WORKERS] = {
    {"renew hr", {CLI_ARGS("cert", "renew", "hr", "--new-key"), NULL}},
    {"renew hr", {CLI_ARGS("cert", "renew", "hr", "--new-key"), NULL}},
    {"renew tr", {CLI_ARGS("cert", "renew", "tr", "--new-key"), NULL}},
    {"show", {CLI_ARGS("cert", "show", "hr", "--json"), CLI_ARGS("cert", "show", "tr", "--json")}},
    {"list", {CLI_ARGS("cert", "list", "--json"), NULL}},
    {"metrics", {CLI_ARGS("metrics"), NULL}},
};

/* All 8 at once until the deadline; waits for them. Signers must exit 0. */
static void run_all(const char *store, const char *dir, long seconds)
{
	const char *const order1[4] = {"hr", "tr", "hs", "ts"};
	const char *const order2[4] = {"ts", "hs", "tr", "hr"};
	long deadline = rel_now_us() + seconds * 1000000L;
	pid_t pids[WORKERS + 2];
	for (int i = 0; i < WORKERS; i++) {
		pids[i] = fork();
		cr_assert(pids[i] >= 0);
		if (pids[i] == 0)
			worker(store, &jobs[i], dir, i, deadline);
	}
	pids[WORKERS] = signer_start(store, dir, 0, seconds, order1);
	pids[WORKERS + 1] = signer_start(store, dir, 1, seconds, order2);
	for (int i = 0; i < WORKERS + 2; i++) {
		int st = rel_wait(pids[i]);
		if (i < WORKERS)
			continue;
		char name[16];
		snprintf(name, sizeof(name), "s%d.err", i - WORKERS);
		char *err = file_text(dir, name);
		cr_assert_eq(st, 0, "signer %d: %s", i - WORKERS, err);
		free(err);
	}
}

/* Every command succeeded, silently: nothing was ever "locked" or "busy". */
static void check_workers(const char *dir, long ok[WORKERS])
{
	long failed[WORKERS];
	for (int i = 0; i < WORKERS; i++) {
		char name[16];
		counts(dir, i, &ok[i], &failed[i]);
		snprintf(name, sizeof(name), "w%d.err", i);
		char *err = file_text(dir, name);
		cr_assert(strcasestr(err, "locked") == NULL && strcasestr(err, "busy") == NULL,
		          "%s: the store was locked: %s", jobs[i].what, err);
		cr_assert_eq(failed[i], 0, "%s: %ld of %ld failed: %s", jobs[i].what, failed[i],
		             ok[i] + failed[i], err);
		cr_assert_str_empty(err, "%s wrote on stderr: %s", jobs[i].what, err);
		cr_assert(ok[i] > 0, "%s never ran", jobs[i].what);
		free(err);
	}
}

/* Every signature verified against the certificate it was loaded with. */
static void check_signers(const char *dir)
{
	for (int i = 0; i < 2; i++) {
		char name[16];
		long sigs = 0, bad = -1;
		snprintf(name, sizeof(name), "s%d.out", i);
		char *out = file_text(dir, name);
		cr_assert(sscanf(out, "signatures=%ld failed=%ld", &sigs, &bad) == 2, "%s", out);
		cr_assert(sigs > 0 && bad == 0, "signer %d: %s", i, out);
		fprintf(stderr, "concurrency: signer %d: %s", i, out);
		free(out);
	}
}

Test(concurrency, eight_processes_one_store_one_token, .timeout = 900)
{
	long seconds = rel_env_long("KW_REL_DURATION", 30), ok[WORKERS];
	char *store = kwt_store_new(1, 1);
	char *dir = kwt_tmpdir("conc");
	cli_create(store, NULL, "hr", "hsm", "ec-p256", "CN=hr", 30, NULL);
	cli_create(store, NULL, "tr", "tpm", "ec-p256", "CN=tr", 30, NULL);
	cli_create(store, NULL, "hs", "hsm", "rsa-2048", "CN=hs", 30, NULL);
	cli_create(store, NULL, "ts", "tpm", "ec-p256", "CN=ts", 30, NULL);
	run_all(store, dir, seconds);
	check_workers(dir, ok);
	check_signers(dir);
	/* no lost update: every renewal that succeeded is a version of its own */
	cr_assert_eq(versions_check(store, "hr", ok[0] + ok[1]), 1 + ok[0] + ok[1],
	             "hr: %ld + %ld renewals", ok[0], ok[1]);
	cr_assert_eq(versions_check(store, "tr", ok[2]), 1 + ok[2], "tr: %ld renewals", ok[2]);
	cr_assert_eq(
	    cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = 'cert.renewed'"),
	    ok[0] + ok[1] + ok[2]);
	fprintf(stderr,
	        "concurrency: %lds: renewals hr %ld+%ld tr %ld, show %ld, list %ld, metrics %ld\n",
	        seconds, ok[0], ok[1], ok[2], ok[3], ok[4], ok[5]);
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("audit", "verify"));
	kwt_result_free(&r);
	json_t *rep = NULL;
	cr_assert_eq(rel_doctor(store, 0, &rep), 0, "%s", json_dumps(rep, 0));
	json_decref(rep);
	free(rel_sign_all(store, "hr tr hs ts", "afterwards"));
	free(dir);
	free(store);
}
