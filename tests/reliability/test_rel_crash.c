/*
 * Crash consistency: `keyward` is killed with SIGKILL at a random moment of
 * cert create, renew, import, delete and purge, on the TPM (behind
 * tpm2-abrmd, as /dev/tpmrm0 would be: a dead client's objects are flushed)
 * and on the SoftHSM token. After every trial: the database passes PRAGMA
 * integrity_check; every certificate that was current is still there with its
 * version and thumbprint (the one it operated on: the old state or the new
 * one, never a third); every current certificate signs through the provider
 * with its own key; keyward doctor lists nothing worse than keys left on the
 * token and versions of deleted certificates. Now and then (and at the end)
 * interrupted purges are finished and doctor --repair must leave it clean.
 *
 * KW_REL_TRIALS (default 100) trials; KW_REL_SEED replays a run (the seed is
 * printed). A kill lands uniformly in [0, 1.3 x the operation's measured time].
 */
#include "rel_test.h"

enum { OP_CREATE, OP_RENEW, OP_IMPORT, OP_DELETE, OP_PURGE, OP_N };
static const char *const op_names[OP_N] = {"create", "renew", "import", "delete", "purge"};

#define MAX_CERTS 64

typedef struct {
	char name[32];
	int version;
	char thumb[65];
} cur;

typedef struct {
	cur v[MAX_CERTS];
	int n;
} state;

typedef struct {
	const char *store;
	char *pem[2];          /* per backend: a certificate and key to import */
	char *pem_thumb[2];    /* its SHA-256 */
	long took_us[2][OP_N]; /* calibration: how long each operation takes */
	int next_name;
	int trials, killed, orphans, missing, per_op[OP_N];
} crash_run;

static const char *const backends[2] = {"hsm", "tpm"};

static void state_read(const char *store, state *s, const char *what)
{
	json_t *list = rel_list(store, what);
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < json_array_size(list) && s->n < MAX_CERTS; i++) {
		json_t *c = json_array_get(list, i);
		cur *e = &s->v[s->n++];
		snprintf(e->name, sizeof(e->name), "%s", cli_js(c, "name"));
		e->version = (int)json_integer_value(json_object_get(c, "version"));
		snprintf(e->thumb, sizeof(e->thumb), "%s", cli_js(c, "thumbprint_sha256"));
	}
	json_decref(list);
}

static const cur *state_find(const state *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0)
			return &s->v[i];
	return NULL;
}

/* Names of one backend's live (or deleted) certificates: "h3 h7" (malloc'd). */
static char *names_of(const char *store, const char *prefix, int deleted)
{
	return cli_out("sqlite3 '%s/keyward.db' \"SELECT group_concat(name, ' ') FROM certs "
	               "WHERE name LIKE '%s%%' AND deleted_at IS %s NULL\"",
	               store, prefix, deleted ? "NOT" : "");
}

/* The n-th word of a space separated list (static buffer), or NULL. */
static const char *word(const char *list, long n)
{
	static char buf[32];
	const char *p = list;
	for (long i = 0;; i++) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return NULL;
		size_t len = strcspn(p, " ");
		if (i == n) {
			snprintf(buf, sizeof(buf), "%.*s", (int)len, p);
			return buf;
		}
		p += len;
	}
}

static int words(const char *list)
{
	int n = 0;
	while (word(list, n))
		n++;
	return n;
}

typedef struct {
	int op, backend;
	char target[32];
} plan;

static void plan_pick(crash_run *r, int b, plan *p)
{
	const char *prefix = b ? "t" : "h";
	char *live = names_of(r->store, prefix, 0), *gone = names_of(r->store, prefix, 1);
	int nl = words(live), nd = words(gone);
	p->backend = b;
	long x = rel_rand_below(100);
	if (nl < 2 || (nl < 5 && x < 20))
		p->op = OP_CREATE;
	else if (x < 50)
		p->op = OP_RENEW;
	else if (x < 65 && nl < 6)
		p->op = OP_IMPORT;
	else if (x < 85 || nd == 0)
		p->op = OP_DELETE;
	else
		p->op = OP_PURGE;
	if (p->op == OP_CREATE || p->op == OP_IMPORT)
		snprintf(p->target, sizeof(p->target), "%s%d", prefix, ++r->next_name);
	else
		snprintf(p->target, sizeof(p->target), "%s",
		         p->op == OP_PURGE ? word(gone, rel_rand_below(nd))
		                           : word(live, rel_rand_below(nl)));
	free(live);
	free(gone);
}

static const char *const *plan_args(const crash_run *r, const plan *p)
{
	static const char *a[16];
	const char *b = backends[p->backend];
	int n = 0;
	a[n++] = "cert";
	switch (p->op) {
	case OP_CREATE:
		a[n++] = "create", a[n++] = p->target, a[n++] = "--backend", a[n++] = b;
		a[n++] = "--subject", a[n++] = "CN=crash.example", a[n++] = "--days", a[n++] = "30";
		break;
	case OP_RENEW: a[n++] = "renew", a[n++] = p->target, a[n++] = "--new-key"; break;
	case OP_IMPORT:
		a[n++] = "import", a[n++] = p->target, a[n++] = "--backend", a[n++] = b;
		a[n++] = "--pem", a[n++] = r->pem[p->backend];
		break;
	case OP_DELETE: a[n++] = "delete", a[n++] = p->target; break;
	case OP_PURGE: a[n++] = "purge", a[n++] = p->target; break;
	}
	a[n] = NULL;
	return a;
}

/* Runs the plan, killed after delay_us (< 0: never). Returns 1 if killed. */
static int plan_run(const crash_run *r, const plan *p, long delay_us, long *took)
{
	char *err = kwt_tmpdir("err");
	char *errf = NULL;
	cr_assert(asprintf(&errf, "%s/stderr", err) > 0);
	long t0 = rel_now_us();
	pid_t pid = rel_spawn(rel_kw_argv(r->store, plan_args(r, p)), NULL, NULL, errf);
	if (delay_us >= 0) {
		struct timespec d = {delay_us / 1000000, (delay_us % 1000000) * 1000};
		nanosleep(&d, NULL);
		kill(pid, SIGKILL);
	}
	int st = rel_wait(pid);
	*took = rel_now_us() - t0;
	char *msg = kwt_read_file(errf, NULL);
	cr_assert(st == 0 || st == 128 + SIGKILL, "cert %s %s (%s) failed with %d: %s",
	          op_names[p->op], p->target, backends[p->backend], st, msg ? msg : "");
	free(msg);
	free(errf);
	free(err);
	return st != 0;
}

/* The operated certificate is in its old state or its new one. */
static void check_target(const crash_run *r, const plan *p, const state *before, const state *after,
                         int killed, const char *what)
{
	const cur *b = state_find(before, p->target), *a = state_find(after, p->target);
	switch (p->op) {
	case OP_CREATE:
	case OP_IMPORT:
		cr_assert(a != NULL || killed, "%s: finished but %s is not listed", what,
		          p->target);
		cr_assert(a == NULL || a->version == 1, "%s: %s has version %d", what, p->target,
		          a ? a->version : 0);
		if (a && p->op == OP_IMPORT)
			cr_assert_str_eq(a->thumb, r->pem_thumb[p->backend],
			                 "%s: imported %s is not the given certificate", what,
			                 p->target);
		break;
	case OP_RENEW:
		cr_assert(a != NULL, "%s: renewing %s lost it", what, p->target);
		int old = a->version == b->version && strcmp(a->thumb, b->thumb) == 0;
		int new = a->version == b->version + 1 && strcmp(a->thumb, b->thumb) != 0;
		cr_assert(old || new, "%s: %s is version %d %s, was %d %s", what, p->target,
		          a->version, a->thumb, b->version, b->thumb);
		cr_assert(new || killed, "%s: renew finished but %s is still version %d", what,
		          p->target, a->version);
		break;
	case OP_DELETE:
		cr_assert(a == NULL || (a->version == b->version && !strcmp(a->thumb, b->thumb)),
		          "%s: deleting %s changed it", what, p->target);
		cr_assert(a == NULL || killed, "%s: delete finished but %s is listed", what,
		          p->target);
		break;
	default: break;
	}
}

/* Every other certificate is exactly as it was; nothing new but the target. */
static void check_others(const plan *p, const state *before, const state *after, const char *what)
{
	for (int i = 0; i < before->n; i++) {
		const cur *b = &before->v[i], *a = state_find(after, b->name);
		if (strcmp(b->name, p->target) == 0)
			continue;
		cr_assert(a != NULL, "%s: %s was current and is gone", what, b->name);
		cr_assert(a->version == b->version && strcmp(a->thumb, b->thumb) == 0,
		          "%s: %s changed from version %d %s to %d %s", what, b->name, b->version,
		          b->thumb, a->version, a->thumb);
	}
	for (int i = 0; i < after->n; i++)
		cr_assert(state_find(before, after->v[i].name) != NULL ||
		              strcmp(after->v[i].name, p->target) == 0,
		          "%s: %s appeared from nowhere", what, after->v[i].name);
}

/* Every current certificate signs through the provider, with its own key. */
static void check_signing(const char *store, const state *after, const char *what)
{
	char names[2048] = "";
	for (int i = 0; i < after->n; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), " %s",
		         after->v[i].name);
	char *out = rel_sign_all(store, names, what);
	for (int i = 0; i < after->n; i++) {
		char line[128];
		snprintf(line, sizeof(line), "%s %s ok", after->v[i].name, after->v[i].thumb);
		cr_assert(strstr(out, line) != NULL,
		          "%s: %s did not sign as its current certificate %s:\n%s", what,
		          after->v[i].name, after->v[i].thumb, out);
	}
	free(out);
}

/* doctor may find keys left on the token and keys gone from versions that
 * are not current (or of deleted certificates): nothing else. */
static void check_doctor(crash_run *r, const char *what)
{
	json_t *rep = NULL;
	(void)rel_doctor(r->store, 0, &rep);
	const json_t *ps = json_object_get(rep, "problems");
	for (size_t i = 0; i < json_array_size(ps); i++) {
		const json_t *pr = json_array_get(ps, i);
		const char *kind = cli_js(pr, "kind");
		int current = json_is_true(json_object_get(pr, "current"));
		const char *cert = json_string_value(json_object_get(pr, "cert"));
		char *deleted = cert ? cli_out("sqlite3 '%s/keyward.db' \"SELECT count(*) FROM "
		                               "certs WHERE name = '%s' AND deleted_at IS NOT "
		                               "NULL\"",
		                               r->store, cert)
		                     : strdup("0");
		int ok = strcmp(kind, "orphan_key") == 0 ||
		         (strcmp(kind, "key_missing") == 0 && (!current || atoi(deleted) == 1));
		free(deleted);
		cr_assert(ok, "%s: doctor found: %s", what, json_dumps(pr, 0));
	}
	json_decref(rep);
}

/* Interrupted purges are finished; then doctor --repair leaves nothing. */
static void settle(crash_run *r, const char *what)
{
	for (int b = 0; b < 2; b++) {
		char *gone = names_of(r->store, b ? "t" : "h", 1);
		for (int i = 0; word(gone, i); i++) {
			kwt_result res;
			cli_ok(&res, NULL, r->store, CLI_ARGS("cert", "purge", word(gone, i)));
			kwt_result_free(&res);
		}
		free(gone);
	}
	json_t *rep = NULL;
	(void)rel_doctor(r->store, 1, &rep);
	r->missing += rel_problems(rep, "key_missing");
	r->orphans += rel_problems(rep, "orphan_key");
	cr_assert_eq(json_integer_value(json_object_get(rep, "remaining")), 0,
	             "%s: doctor --repair left problems: %s", what, json_dumps(rep, 0));
	json_decref(rep);
	cr_assert_eq(rel_doctor(r->store, 0, &rep), 0, "%s: not clean after repair: %s", what,
	             json_dumps(rep, 0));
	json_decref(rep);
}

static void trial(crash_run *r, int t)
{
	plan p;
	state before, after;
	char what[128];
	long took = 0;
	plan_pick(r, t % 2, &p);
	long delay = rel_rand_below(r->took_us[p.backend][p.op] * 13 / 10 + 1);
	snprintf(what, sizeof(what), "trial %d: cert %s %s on %s killed at %ld us", t,
	         op_names[p.op], p.target, backends[p.backend], delay);
	state_read(r->store, &before, what);
	int killed = plan_run(r, &p, delay, &took);
	r->killed += killed;
	r->per_op[p.op]++;
	rel_assert_integrity(r->store, what);
	state_read(r->store, &after, what);
	check_target(r, &p, &before, &after, killed, what);
	check_others(&p, &before, &after, what);
	check_signing(r->store, &after, what);
	check_doctor(r, what);
}

/* Times one uninterrupted run of each operation per backend (and leaves
 * two certificates each to work on). */
static void calibrate(crash_run *r)
{
	for (int b = 0; b < 2; b++) {
		const char *prefix = b ? "t" : "h";
		int ops[] = {OP_CREATE, OP_CREATE, OP_CREATE, OP_RENEW,
		             OP_IMPORT, OP_DELETE, OP_PURGE};
		char first[32] = "", third[32] = "";
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			plan p = {ops[i], b, ""};
			if (p.op == OP_CREATE || p.op == OP_IMPORT)
				snprintf(p.target, sizeof(p.target), "%s%d", prefix,
				         ++r->next_name);
			else
				snprintf(p.target, sizeof(p.target), "%s",
				         p.op == OP_RENEW ? first : third);
			long took = 0;
			cr_assert_eq(plan_run(r, &p, -1, &took), 0);
			r->took_us[b][p.op] = took;
			if (i == 0)
				snprintf(first, sizeof(first), "%s", p.target);
			if (i == 2)
				snprintf(third, sizeof(third), "%s", p.target);
		}
		fprintf(stderr,
		        "crash: %s takes create %ld, renew %ld, import %ld, delete %ld, "
		        "purge %ld us\n",
		        backends[b], r->took_us[b][OP_CREATE], r->took_us[b][OP_RENEW],
		        r->took_us[b][OP_IMPORT], r->took_us[b][OP_DELETE],
		        r->took_us[b][OP_PURGE]);
	}
}

Test(crash, sigkill_anywhere_loses_nothing, .timeout = 900)
{
	crash_run r;
	memset(&r, 0, sizeof(r));
	uint64_t seed = rel_seed_init();
	r.trials = (int)rel_env_long("KW_REL_TRIALS", 100);
	fprintf(stderr, "crash: seed %llu (KW_REL_SEED=%llu replays it), %d trials\n",
	        (unsigned long long)seed, (unsigned long long)seed, r.trials);
	rel_softhsm_pin_token_object();
	char *store = kwt_store_new(1, 1);
	r.store = store;
	char *dir = kwt_tmpdir("pem");
	for (int b = 0; b < 2; b++) {
		r.pem[b] = rel_pem_make(dir, backends[b]);
		r.pem_thumb[b] = rel_pem_sha256(r.pem[b]);
	}
	calibrate(&r);
	for (int t = 0; t < r.trials; t++) {
		trial(&r, t);
		if (t % 25 == 24)
			settle(&r, "settling");
	}
	settle(&r, "at the end");
	fprintf(stderr,
	        "crash: %d trials (create %d, renew %d, import %d, delete %d, purge %d): %d "
	        "killed mid-operation; doctor --repair destroyed %d key(s) left on the "
	        "token and failed %d version(s) whose key was gone\n",
	        r.trials, r.per_op[OP_CREATE], r.per_op[OP_RENEW], r.per_op[OP_IMPORT],
	        r.per_op[OP_DELETE], r.per_op[OP_PURGE], r.killed, r.orphans, r.missing);
	/* the kills must really land inside operations, or this proves nothing */
	cr_assert(r.killed >= r.trials / 5, "only %d of %d trials were killed mid-operation",
	          r.killed, r.trials);
	for (int b = 0; b < 2; b++) {
		free(r.pem[b]);
		free(r.pem_thumb[b]);
	}
	free(dir);
	free(store);
}
