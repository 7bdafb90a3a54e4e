/*
 * keyward CLI end to end: deploys fail loudly and whole (issue 14, item 5).
 * The files of one deploy are all replaced or none is; a deploy that fails
 * after a renewal, a rollback or by hand exits 3 with one stderr line naming
 * the certificate, its target and what failed, and records deploy.failed;
 * renew --due exits 3 (1 when a renewal failed too) and deploys again on its
 * next run without renewing again; policy set refuses a target this host
 * cannot deploy.
 */
#include "cli_test.h"

#define EXIT_DEPLOY 3
#define RENEW_AT    "2030-02-01T00:00:00Z"

static void run_at(kwt_result *r, const char *now, const char *store, const char *const *args)
{
	char e[64];
	snprintf(e, sizeof(e), "KEYWARD_NOW=%s", now);
	char *env[] = {e, NULL};
	cli_runv(r, env, store, args);
}

static void ok_at(const char *now, const char *store, const char *const *args)
{
	kwt_result r;
	run_at(&r, now, store, args);
	cli_assert_ok(&r, cli_args_str(args));
	kwt_result_free(&r);
}

/* A store with certificate web01 (SoftHSM, days days from CLI_NOW). */
static char *store_with_cert(int days)
{
	char *store = kwt_store_new(0, 1);
	cli_create_repeat(store, CLI_NOW, "web01", "hsm", "ec-p256", "CN=web01.example", days,
	                  NULL);
	return store;
}

/* Has cert's policy name target, through `policy set` (what an admin runs). */
static void name_target(const char *store, const char *cert, const char *target)
{
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("policy", "show", cert));
	json_t *p = cli_json(r.out, "policy show");
	kwt_result_free(&r);
	json_object_set_new(p, "deploy", json_pack("{s:s}", "target", target));
	char *text = json_dumps(p, 0), *dir = kwt_tmpdir("policy");
	char *file = kwt_write_file(dir, "p.json", text, strlen(text), 0600);
	cli_ok(&r, NULL, store, CLI_ARGS("policy", "set", cert, file));
	kwt_result_free(&r);
	free(file);
	free(dir);
	free(text);
	json_decref(p);
}

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/* The names in dir, sorted, joined by spaces. */
static char *listing(const char *dir)
{
	return cli_out("ls -A '%s' | sort | tr '\\n' ' '", dir);
}

static char *inode_of(const char *path)
{
	return cli_out("stat -c %%i '%s'", path);
}

static int current_version(const char *store)
{
	json_t *j = cli_show(store, "web01", 0);
	int v = (int)json_integer_value(json_object_get(j, "version"));
	json_decref(j);
	return v;
}

static int events(const char *store, const char *type, int version)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM events WHERE cert = 'web01' AND type = '%s'%s", type,
	         version ? " AND version = " : "");
	if (version)
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), "%d", version);
	return cli_sql_count(store, sql);
}

/* The one stderr line of a failed deploy: names the certificate and target. */
static void assert_deploy_line(const kwt_result *r, const char *what)
{
	size_t n = strlen(r->err);
	cr_assert(n > 0 && kwt_count_lines(r->err) == 1 && r->err[n - 1] == '\n',
	          "%s: expected one stderr line, got <<%s>>", what, r->err);
	const char *start = "keyward: certificate 'web01': deploy target 'web-files': ";
	cr_assert(strncmp(r->err, start, strlen(start)) == 0, "%s: %s", what, r->err);
}

/* ---- all or nothing ---- */

Test(cli_deploy_files, a_file_that_cannot_be_replaced_leaves_every_other_one_as_it_was)
{
	char *store = store_with_cert(90);
	char *dir = kwt_tmpdir("deploy");
	char *crt = path_in(dir, "web.crt"), *chain = path_in(dir, "web.chain");
	char *full = path_in(dir, "web.pem"), *key = path_in(dir, "web.key");
	char *ran = path_in(dir, "hook-ran"), hook[4200];
	snprintf(hook, sizeof(hook), "echo $KEYWARD_VERSION >> '%s'", ran);
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("deploy-target", "add", "web-files", "--cert", crt, "--chain", chain,
	                "--fullchain", full, "--key-ref", key, "--deploy", hook));
	kwt_result_free(&r);
	name_target(store, "web01", "web-files");
	ok_at(RENEW_AT, store, CLI_ARGS("cert", "deploy", "web01"));
	char *old_crt = kwt_read_file(crt, NULL);
	char *ino[3] = {inode_of(crt), inode_of(chain), inode_of(key)};
	/* the fullchain can no longer be replaced: a directory took its place */
	cr_assert_eq(cli_status("rm '%s' && mkdir '%s'", full, full), 0);

	run_at(&r, RENEW_AT, store, CLI_ARGS("cert", "renew", "web01"));
	cr_assert_eq(r.status, EXIT_DEPLOY, "exit %d: %s%s", r.status, r.out, r.err);
	cr_assert_str_eq(r.out, "renewed web01: version 2 is current (new key)\n");
	assert_deploy_line(&r, "cert renew");
	cli_assert_err_has(&r, "cannot replace deploy.fullchain", "cert renew");
	cli_assert_err_has(&r, "no file was changed", "cert renew");
	kwt_result_free(&r);

	/* every other file is the old one, the very same inode; nothing left over */
	char *got = kwt_read_file(crt, NULL);
	cr_assert_str_eq(got, old_crt, "the certificate file was replaced");
	free(got);
	char *now_ino[3] = {inode_of(crt), inode_of(chain), inode_of(key)};
	for (int i = 0; i < 3; i++)
		cr_assert_str_eq(now_ino[i], ino[i], "file %d was replaced", i);
	char *names = listing(dir);
	cr_assert_str_eq(names, "hook-ran web.chain web.crt web.key web.pem");
	free(names);
	names = listing(full);
	cr_assert_str_eq(names, "");
	free(names);
	/* the deploy hook did not run: the files were not in place */
	got = cli_out("cat '%s'", ran);
	cr_assert_str_eq(got, "1");
	free(got);
	/* the renewal stands; the failure is recorded against the new version */
	cr_assert_eq(current_version(store), 2);
	cr_assert_eq(events(store, "deploy.failed", 2), 1);
	cr_assert_eq(events(store, "deploy.done", 2), 0);

	/* the obstacle gone, a deploy by hand replaces them all */
	cr_assert_eq(cli_status("rmdir '%s'", full), 0);
	ok_at(RENEW_AT, store, CLI_ARGS("cert", "deploy", "web01"));
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "web01"));
	got = kwt_read_file(crt, NULL);
	cr_assert_str_eq(cli_trim(got), cli_trim(r.out));
	cr_assert_str_neq(got, old_crt);
	free(got);
	kwt_result_free(&r);
	names = listing(dir);
	cr_assert_str_eq(names, "hook-ran web.chain web.crt web.key web.pem");
	free(names);
	cr_assert_eq(events(store, "deploy.done", 2), 1);
	for (int i = 0; i < 3; i++) {
		free(ino[i]);
		free(now_ino[i]);
	}
	free(old_crt);
	free(ran);
	free(crt);
	free(chain);
	free(full);
	free(key);
	free(dir);
	free(store);
}

Test(cli_deploy_files, with_no_old_files_a_failed_deploy_leaves_none)
{
	char *store = store_with_cert(90);
	char *dir = kwt_tmpdir("deploy");
	char *crt = path_in(dir, "web.crt"), *chain = path_in(dir, "web.chain");
	char *full = path_in(dir, "web.pem"), *key = path_in(dir, "web.key");
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("deploy-target", "add", "web-files", "--cert", crt, "--chain", chain,
	                "--fullchain", full, "--key-ref", key));
	kwt_result_free(&r);
	name_target(store, "web01", "web-files");
	cr_assert_eq(cli_status("mkdir '%s'", full), 0);
	char *before = cli_out("sqlite3 '%s/keyward.db' 'SELECT * FROM certs; SELECT * FROM "
	                       "versions'",
	                       store);

	cli_runv(&r, NULL, store, CLI_ARGS("cert", "deploy", "web01"));
	cli_assert_error(&r, EXIT_DEPLOY, "cert deploy onto a directory");
	assert_deploy_line(&r, "cert deploy");
	cli_assert_err_has(&r, "cannot replace deploy.fullchain", "cert deploy");
	kwt_result_free(&r);
	char *names = listing(dir);
	cr_assert_str_eq(names, "web.pem", "files left behind: %s", names);
	free(names);
	names = listing(full);
	cr_assert_str_eq(names, "");
	free(names);

	/* --json: the report says it failed and why, nothing was written */
	cli_runv(&r, NULL, store, CLI_ARGS("cert", "deploy", "web01", "--json"));
	cr_assert_eq(r.status, EXIT_DEPLOY, "exit %d: %s", r.status, r.err);
	json_t *rep = cli_json(r.out, "cert deploy --json");
	cli_assert_jbool(rep, "ok", 0, "cert deploy --json");
	cr_assert(strstr(cli_js(rep, "error"), "deploy.fullchain") != NULL, "%s", r.out);
	cr_assert_eq(json_array_size(json_object_get(rep, "files")), 0);
	json_decref(rep);
	kwt_result_free(&r);
	names = listing(dir);
	cr_assert_str_eq(names, "web.pem", "files left behind: %s", names);
	free(names);

	char *after = cli_out("sqlite3 '%s/keyward.db' 'SELECT * FROM certs; SELECT * FROM "
	                      "versions'",
	                      store);
	cr_assert_str_eq(before, after);
	cr_assert_eq(events(store, "deploy.failed", 1), 2);
	free(before);
	free(after);
	free(crt);
	free(chain);
	free(full);
	free(key);
	free(dir);
	free(store);
}

/* ---- exit codes ---- */

Test(cli_deploy_exit, a_failing_hook_exits_3_after_renew_rollback_and_deploy)
{
	char *store = store_with_cert(90);
	char *dir = kwt_tmpdir("deploy");
	char *crt = path_in(dir, "web.crt");
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("deploy-target", "add", "web-files", "--cert", crt, "--deploy",
	                "echo 'nginx: bad config' >&2; exit 3"));
	kwt_result_free(&r);
	name_target(store, "web01", "web-files");

	run_at(&r, RENEW_AT, store, CLI_ARGS("cert", "renew", "web01"));
	cr_assert_eq(r.status, EXIT_DEPLOY, "exit %d: %s%s", r.status, r.out, r.err);
	cr_assert_str_eq(r.out, "renewed web01: version 2 is current (new key)\n");
	assert_deploy_line(&r, "cert renew");
	cr_assert_str_eq(r.err, "keyward: certificate 'web01': deploy target 'web-files': the "
	                        "deploy hook failed (exit status 3): nginx: bad config (once "
	                        "fixed: keyward cert deploy web01)\n");
	kwt_result_free(&r);
	/* the renewal stands, its files were written, the failure is recorded */
	cr_assert_eq(current_version(store), 2);
	cr_assert_eq(events(store, "cert.renewed", 0), 1);
	cr_assert_eq(events(store, "deploy.failed", 2), 1);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "web01"));
	char *got = kwt_read_file(crt, NULL);
	cr_assert_str_eq(cli_trim(got), cli_trim(r.out));
	free(got);
	kwt_result_free(&r);
	cr_assert_eq(cli_sql_count(store, "SELECT count(*) FROM events WHERE type = "
	                                  "'deploy.failed' AND json_extract(details, '$.hook') ="
	                                  " 'deploy' AND json_extract(details, '$.status') ="
	                                  " 'exit status 3'"),
	             1);

	run_at(&r, RENEW_AT, store, CLI_ARGS("cert", "rollback", "web01", "1"));
	cr_assert_eq(r.status, EXIT_DEPLOY, "exit %d: %s%s", r.status, r.out, r.err);
	cr_assert_str_eq(r.out, "rolled back web01: version 1 is current\n");
	assert_deploy_line(&r, "cert rollback");
	cli_assert_err_has(&r, "deploy hook failed", "cert rollback");
	kwt_result_free(&r);
	cr_assert_eq(current_version(store), 1);
	cr_assert_eq(events(store, "deploy.failed", 1), 1);

	cli_runv(&r, NULL, store, CLI_ARGS("cert", "deploy", "web01"));
	cr_assert_eq(r.status, EXIT_DEPLOY, "exit %d: %s%s", r.status, r.out, r.err);
	assert_deploy_line(&r, "cert deploy");
	kwt_result_free(&r);
	cr_assert_eq(events(store, "deploy.failed", 1), 2);
	/* a deploy that cannot start is a plain failure */
	CLI_REFUSED(store, 1, "unknown certificate 'nosuch'", "cert", "deploy", "nosuch");
	free(crt);
	free(dir);
	free(store);
}

/* The target's settings changed behind keyward (a group gone from the host):
 * the deploy fails, loudly and recorded, instead of being skipped. */
Test(cli_deploy_exit, settings_the_host_cannot_apply_fail_the_deploy_with_an_event)
{
	char *store = store_with_cert(90);
	char *dir = kwt_tmpdir("deploy");
	char *crt = path_in(dir, "web.crt");
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("deploy-target", "add", "web-files", "--cert", crt, "--group", "0"));
	kwt_result_free(&r);
	name_target(store, "web01", "web-files");
	cr_assert_eq(cli_status("sqlite3 '%s/keyward.db' \"UPDATE deploy_targets SET config ="
	                        " json_set(config, '$.group', 'no-such-group-kw')\"",
	                        store),
	             0);
	run_at(&r, RENEW_AT, store, CLI_ARGS("cert", "renew", "web01"));
	cr_assert_eq(r.status, EXIT_DEPLOY, "exit %d: %s%s", r.status, r.out, r.err);
	assert_deploy_line(&r, "cert renew");
	cli_assert_err_has(&r, "group: no such group 'no-such-group-kw' on this host",
	                   "cert renew");
	kwt_result_free(&r);
	cr_assert_eq(current_version(store), 2);
	cr_assert_eq(events(store, "deploy.failed", 2), 1);
	cr_assert_eq(access(crt, F_OK), -1, "a file was written");
	free(crt);
	free(dir);
	free(store);
}

/* ---- renew --due ---- */

/* The renew --due stdout line of name (malloc'd). */
static char *line_of(const char *out, const char *name)
{
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s: ", name);
	for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			return strndup(p, strcspn(p, "\n"));
	cr_assert_fail("no line for %s in: %s", name, out);
	return NULL;
}

static json_t *result_of(const json_t *report, const char *name)
{
	json_t *res = cli_find_named(json_object_get(report, "results"), name);
	cr_assert_not_null(res, "no result for %s", name);
	return res;
}

Test(cli_deploy_due, a_failed_deploy_exits_3_and_the_next_run_deploys_again_without_renewing)
{
	char *store = store_with_cert(30);
	char *dir = kwt_tmpdir("deploy");
	char *crt = path_in(dir, "web.crt"), *fixed = path_in(dir, "fixed"), hook[4200];
	snprintf(hook, sizeof(hook), "test -e '%s' || { echo 'reload failed' >&2; exit 1; }",
	         fixed);
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("deploy-target", "add", "web-files", "--cert", crt, "--deploy", hook));
	kwt_result_free(&r);
	name_target(store, "web01", "web-files");
	const char *err = "certificate 'web01': deploy target 'web-files': the deploy hook "
	                  "failed (exit status 1): reload failed";
	char want[1024];

	run_at(&r, "2030-01-21T00:00:00Z", store, CLI_ARGS("renew", "--due"));
	cr_assert_eq(r.status, EXIT_DEPLOY, "exit %d: %s%s", r.status, r.out, r.err);
	char *l = line_of(r.out, "web01");
	snprintf(want, sizeof(want), "web01: renewed \u2192 version 2 (new key); deploy FAILED: %s",
	         err);
	cr_assert_str_eq(l, want);
	free(l);
	snprintf(want, sizeof(want), "keyward: %s\n", err);
	cr_assert_str_eq(r.err, want);
	kwt_result_free(&r);
	cr_assert_eq(current_version(store), 2);
	cr_assert_eq(events(store, "deploy.failed", 2), 1);

	/* the next run does not renew again: it deploys version 2 again */
	run_at(&r, "2030-01-22T00:00:00Z", store, CLI_ARGS("renew", "--due", "--json"));
	cr_assert_eq(r.status, EXIT_DEPLOY, "exit %d: %s%s", r.status, r.out, r.err);
	cr_assert_str_eq(r.err, want);
	json_t *rep = cli_json(r.out, "renew --due --json");
	json_t *res = result_of(rep, "web01");
	cr_assert_str_eq(cli_js(res, "action"), "not-due");
	cli_assert_jbool(res, "deploy_retried", 1, "renew --due --json");
	cr_assert_str_eq(cli_js(res, "deploy_error"), err);
	cr_assert_eq(json_integer_value(json_object_get(rep, "deploy_failed")), 1);
	cr_assert_eq(json_integer_value(json_object_get(rep, "failed")), 0);
	json_decref(rep);
	kwt_result_free(&r);
	cr_assert_eq(current_version(store), 2);
	cr_assert_eq(events(store, "cert.renewed", 0), 1);
	cr_assert_eq(events(store, "deploy.failed", 2), 2);

	/* a dry run says so and runs nothing */
	run_at(&r, "2030-01-22T00:00:00Z", store,
	       CLI_ARGS("renew", "--due", "--dry-run", "--json"));
	cli_assert_ok(&r, "renew --due --dry-run");
	rep = cli_json(r.out, "renew --due --dry-run --json");
	cli_assert_jbool(result_of(rep, "web01"), "would_retry_deploy", 1, "dry run");
	json_decref(rep);
	kwt_result_free(&r);
	cr_assert_eq(events(store, "deploy.failed", 2), 2);

	/* fixed: the next run deploys and says so, the one after leaves it be */
	cr_assert_eq(cli_status("touch '%s'", fixed), 0);
	run_at(&r, "2030-01-23T00:00:00Z", store, CLI_ARGS("renew", "--due"));
	cli_assert_ok(&r, "renew --due after the fix");
	l = line_of(r.out, "web01");
	cr_assert(strstr(l, "web01: not due (renews at ") == l, "%s", l);
	cr_assert(strstr(l, "; its last deploy had failed: deployed again") != NULL, "%s", l);
	cr_assert(strstr(l, "FAILED") == NULL, "%s", l);
	free(l);
	kwt_result_free(&r);
	cr_assert_eq(events(store, "deploy.done", 2), 1);
	run_at(&r, "2030-01-24T00:00:00Z", store, CLI_ARGS("renew", "--due"));
	cli_assert_ok(&r, "renew --due once deployed");
	cr_assert(strstr(r.out, "deployed again") == NULL, "%s", r.out);
	kwt_result_free(&r);
	cr_assert_eq(events(store, "deploy.done", 2), 1);
	cr_assert_eq(events(store, "deploy.failed", 2), 2);
	cr_assert_eq(events(store, "cert.renewed", 0), 1);
	cr_assert_eq(current_version(store), 2);
	free(crt);
	free(fixed);
	free(dir);
	free(store);
}

Test(cli_deploy_due, a_failed_renewal_outweighs_a_failed_deploy)
{
	char *store = store_with_cert(30);
	cli_create(store, CLI_NOW, "db", "hsm", "ec-p256", "CN=db.example", 30, NULL);
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("deploy-target", "add", "web-files", "--deploy",
	                "echo 'reload failed' >&2; exit 1"));
	kwt_result_free(&r);
	name_target(store, "web01", "web-files");
	/* db's renewal cannot work: its policy names a backend that is gone */
	cr_assert_eq(cli_status("sqlite3 '%s/keyward.db' \"UPDATE certs SET policy ="
	                        " json_set(policy, '$.key.backend', 'gone') WHERE name = 'db'\"",
	                        store),
	             0);
	run_at(&r, "2030-01-21T00:00:00Z", store, CLI_ARGS("renew", "--due"));
	cr_assert_eq(r.status, 1, "exit %d: %s%s", r.status, r.out, r.err);
	cr_assert_str_eq(r.err, "keyward: certificate 'web01': deploy target 'web-files': the "
	                        "deploy hook failed (exit status 1): reload failed\n"
	                        "keyward: 1 of 2 certificate(s) failed\n");
	char *l = line_of(r.out, "db");
	cr_assert(strncmp(l, "db: FAILED: ", 12) == 0, "%s", l);
	free(l);
	kwt_result_free(&r);
	cr_assert_eq(current_version(store), 2);
	free(store);
}

/* ---- policy set ---- */

Test(cli_deploy_policy, policy_set_and_cert_create_refuse_a_target_the_host_cannot_deploy)
{
	char *store = store_with_cert(90);
	char *dir = kwt_tmpdir("deploy");
	char *taken = path_in(dir, "taken.pem");
	cr_assert_eq(cli_status("mkdir '%s'", taken), 0);
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("deploy-target", "add", "no-dir", "--cert", "/no-such-dir-kw/web.crt"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("deploy-target", "add", "a-dir", "--fullchain", taken));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("deploy-target", "add", "no-group", "--chain", "/tmp/kw-web.chain",
	                "--group", "0"));
	kwt_result_free(&r);
	cr_assert_eq(cli_status("sqlite3 '%s/keyward.db' \"UPDATE deploy_targets SET config ="
	                        " json_set(config, '$.group', 'no-such-group-kw') WHERE name ="
	                        " 'no-group'\"",
	                        store),
	             0);
	cli_ok(&r, NULL, store, CLI_ARGS("policy", "show", "web01"));
	json_t *p = cli_json(r.out, "policy show");
	kwt_result_free(&r);
	char a_dir[4200];
	snprintf(a_dir, sizeof(a_dir),
	         "deploy.target: deploy target 'a-dir': fullchain: %s is a directory, not a file",
	         taken);
	const struct {
		const char *target, *says;
	} cases[] = {
	    {"no-dir",
	     "deploy.target: deploy target 'no-dir': cert: directory /no-such-dir-kw does not "
	     "exist on this host"},
	    {"a-dir", a_dir},
	    {"no-group", "deploy.target: deploy target 'no-group': group: no such group "
	                 "'no-such-group-kw' on this host"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_object_set_new(p, "deploy", json_pack("{s:s}", "target", cases[i].target));
		char *text = json_dumps(p, 0), name[32];
		snprintf(name, sizeof(name), "p%zu.json", i);
		char *file = kwt_write_file(dir, name, text, strlen(text), 0600);
		CLI_REFUSED(store, 1, cases[i].says, "policy", "set", "web01", file);
		CLI_REFUSED(store, 1, cases[i].says, "cert", "create", "web02", "--policy", file);
		free(file);
		free(text);
	}
	/* what can be deployed is accepted */
	cr_assert_eq(cli_status("rmdir '%s'", taken), 0);
	json_object_set_new(p, "deploy", json_pack("{s:s}", "target", "a-dir"));
	char *text = json_dumps(p, 0);
	char *file = kwt_write_file(dir, "ok.json", text, strlen(text), 0600);
	cli_ok(&r, NULL, store, CLI_ARGS("policy", "set", "web01", file));
	kwt_result_free(&r);
	free(file);
	free(text);
	json_decref(p);
	free(taken);
	free(dir);
	free(store);
}
