/*
 * keyward CLI end to end: contact, channel and cert deploy, and the systemd
 * units `cmake --install` ships. Refusals are one stderr line, the right exit
 * code, and the store exactly as it was.
 */
#include <libgen.h>

#include "cli_test.h"

static char *store_with_cert(void)
{
	char *store = kwt_store_new(0, 1);
	cli_create_repeat(store, CLI_NOW, "web01", "hsm", "ec-p256", "CN=web01.example", 90, NULL);
	return store;
}

static json_t *cli_json_of(const char *store, const char *const *args)
{
	kwt_result r;
	cli_ok(&r, NULL, store, args);
	json_t *j = cli_json(r.out, cli_args_str(args));
	kwt_result_free(&r);
	return j;
}

Test(cli_contact, add_list_remove_store_wide_and_per_certificate)
{
	char *store = store_with_cert();
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("contact", "add", "ops@example.com", "--name", "Ops"));
	cr_assert(strstr(r.out, "ops@example.com") != NULL, "%s", r.out);
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("contact", "add", "alice@example.com", "--cert", "web01"));
	kwt_result_free(&r);
	json_t *all = cli_json_of(store, CLI_ARGS("contact", "list", "--json"));
	cr_assert_eq(json_array_size(all), 2);
	json_t *ops = json_array_get(all, 0), *alice = json_array_get(all, 1);
	cr_assert_str_eq(cli_js(ops, "email"), "ops@example.com");
	cr_assert_str_eq(cli_js(ops, "name"), "Ops");
	cr_assert(json_is_null(json_object_get(ops, "cert")));
	cr_assert_str_eq(cli_js(alice, "cert"), "web01");
	json_decref(all);
	cli_ok(&r, NULL, store, CLI_ARGS("contact", "list"));
	cr_assert(strstr(r.out, "alice@example.com") && strstr(r.out, "(all)"), "%s", r.out);
	kwt_result_free(&r);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("contact", "remove", "alice@example.com", "--cert", "web01"));
	kwt_result_free(&r);
	all = cli_json_of(store, CLI_ARGS("contact", "list", "--cert", "web01", "--json"));
	cr_assert_eq(json_array_size(all), 1);
	json_decref(all);
	cr_assert_eq(
	    cli_sql_count(store, "SELECT count(*) FROM events WHERE type LIKE 'contact.%'"), 3);
	free(store);
}

Test(cli_contact, bad_input_is_refused_with_one_line_and_no_change)
{
	char *store = store_with_cert();
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("contact", "add", "ops@example.com"));
	kwt_result_free(&r);
	CLI_REFUSED(store, 2, "bad email address", "contact", "add", "not-an-address");
	CLI_REFUSED(store, 2, "bad email address", "contact", "add", "a@example.com\nBcc: x@y.z");
	CLI_REFUSED(store, 2, "bad email address", "contact", "add", "Ops <ops@example.com>");
	CLI_REFUSED(store, 2, "control characters", "contact", "add", "b@example.com", "--name",
	            "B\r\nBcc: x@y.z");
	CLI_REFUSED(store, 1, "unknown certificate", "contact", "add", "b@example.com", "--cert",
	            "nosuch");
	CLI_REFUSED(store, 1, "already", "contact", "add", "ops@example.com");
	CLI_REFUSED(store, 1, "not a contact", "contact", "remove", "b@example.com");
	CLI_REFUSED(store, 2, "EMAIL", "contact", "add");
	CLI_REFUSED(store, 2, "--name", "contact", "remove", "ops@example.com", "--name", "x");
	CLI_REFUSED(store, 2, "--bogus", "contact", "list", "--bogus");
	free(store);
}

Test(cli_channel, add_list_remove_each_kind)
{
	char *store = store_with_cert();
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("channel", "add", "mail", "sendmail"));
	cr_assert(strstr(r.out, "mail") != NULL);
	kwt_result_free(&r);
	char *dir = kwt_tmpdir("ca");
	char *ca = kwt_write_file(dir, "ca.pem", "x", 1, 0644);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("channel", "add", "hook", "webhook", "--url", "https://hooks.example/x",
	                "--ca-bundle", ca));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("channel", "add", "cmd", "command", "--command", "logger"));
	kwt_result_free(&r);
	json_t *list = cli_json_of(store, CLI_ARGS("channel", "list", "--json"));
	cr_assert_eq(json_array_size(list), 3);
	json_t *hook = cli_find_named(list, "hook"), *mail = cli_find_named(list, "mail");
	cr_assert(hook && mail);
	cr_assert_str_eq(cli_js(hook, "kind"), "webhook");
	cr_assert_str_eq(cli_js(json_object_get(hook, "config"), "url"), "https://hooks.example/x");
	cr_assert_str_eq(cli_js(json_object_get(hook, "config"), "ca_bundle"), ca);
	cr_assert_str_eq(cli_js(json_object_get(mail, "config"), "command"),
	                 "/usr/sbin/sendmail -t -i");
	json_decref(list);
	cli_ok(&r, NULL, store, CLI_ARGS("channel", "list"));
	cr_assert(strstr(r.out, "https://hooks.example/x") && strstr(r.out, "logger"), "%s", r.out);
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("channel", "remove", "cmd"));
	kwt_result_free(&r);
	cr_assert_eq(cli_sql_count(store, "SELECT count(*) FROM channels"), 2);
	free(ca);
	free(dir);
	free(store);
}

Test(cli_channel, bad_input_is_refused_with_one_line_and_no_change)
{
	char *store = store_with_cert();
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("channel", "add", "mail", "sendmail"));
	kwt_result_free(&r);
	CLI_REFUSED(store, 2, "unknown channel kind", "channel", "add", "p", "pigeon");
	CLI_REFUSED(store, 2, "--url", "channel", "add", "h", "webhook");
	CLI_REFUSED(store, 2, "http", "channel", "add", "h", "webhook", "--url",
	            "ftp://x.example/");
	CLI_REFUSED(store, 2, "--command", "channel", "add", "c", "command");
	CLI_REFUSED(store, 2, "url", "channel", "add", "m2", "sendmail", "--url",
	            "https://x.example/");
	CLI_REFUSED(store, 2, "--ca-bundle", "channel", "add", "h", "webhook", "--url",
	            "https://x.example/", "--ca-bundle", "/no/such/ca.pem");
	CLI_REFUSED(store, 1, "exists", "channel", "add", "mail", "sendmail");
	CLI_REFUSED(store, 1, "unknown channel", "channel", "remove", "nosuch");
	CLI_REFUSED(store, 2, "NAME and KIND", "channel", "add", "only-name");
	free(store);
}

/* Runs sql on the store's database (from a file: no shell quoting). */
static void run_sql(const char *store, const char *sql)
{
	char *dir = kwt_tmpdir("sql");
	char *file = kwt_write_file(dir, "run.sql", sql, strlen(sql), 0600);
	cr_assert_eq(cli_status("sqlite3 '%s/keyward.db' < '%s'", store, file), 0);
	free(file);
	free(dir);
}

/* Defines deploy target web01-files (keyward deploy-target add with args)
 * and has web01's policy name it (as `policy set` would). */
#define SET_DEPLOY(store, ...)                                                                     \
	set_deploy((store), CLI_ARGS("deploy-target", "add", "web01-files", __VA_ARGS__))

static void set_deploy(const char *store, const char *const *add)
{
	kwt_result r;
	cli_ok(&r, NULL, store, add);
	kwt_result_free(&r);
	run_sql(store, "UPDATE certs SET policy = json_set(policy, '$.deploy',"
	               " json('{\"target\": \"web01-files\"}')) WHERE name = 'web01';\n");
	cr_assert_eq(cli_sql_count(store,
	                           "SELECT count(*) FROM certs WHERE"
	                           " json_extract(policy, '$.deploy.target') = 'web01-files'"),
	             1);
}

Test(cli_deploy, writes_the_exported_files_and_runs_the_hooks)
{
	char *store = store_with_cert();
	char *dir = kwt_tmpdir("deploy");
	char cert[4096], full[4096], key[4096], hook[4096];
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(full, sizeof(full), "%s/full.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(hook, sizeof(hook), "echo $KEYWARD_NAME:$KEYWARD_VERSION > %s/reloaded", dir);
	SET_DEPLOY(store, "--cert", cert, "--fullchain", full, "--key-ref", key, "--mode", "0640",
	           "--deploy", hook);
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "deploy", "web01"));
	cr_assert(strstr(r.out, "cert.pem") && strstr(r.out, "deploy hook"), "%s", r.out);
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "web01"));
	char *got = cli_out("cat '%s/cert.pem'", dir);
	cr_assert_str_eq(got, cli_trim(r.out));
	free(got);
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "key-ref", "web01"));
	got = cli_out("cat '%s/key.pem'", dir);
	cr_assert_str_eq(got, cli_trim(r.out));
	free(got);
	kwt_result_free(&r);
	got = cli_out("stat -c %%a '%s/cert.pem' '%s/key.pem' | tr '\\n' ' '", dir, dir);
	cr_assert_str_eq(got, "640 640");
	free(got);
	got = cli_out("cat '%s/reloaded'", dir);
	cr_assert_str_eq(got, "web01:1");
	free(got);
	json_t *rep = cli_json_of(store, CLI_ARGS("cert", "deploy", "web01", "--json"));
	cr_assert_eq(json_array_size(json_object_get(rep, "files")), 3);
	cli_assert_jbool(rep, "ok", 1, "cert deploy --json");
	json_decref(rep);
	cr_assert_eq(cli_sql_count(store, "SELECT count(*) FROM events WHERE type = 'deploy.done'"),
	             2);
	free(dir);
	free(store);
}

Test(cli_deploy, failures_are_one_line_and_leave_the_store_alone)
{
	char *store = store_with_cert();
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "deploy", "nosuch");
	CLI_REFUSED(store, 2, "NAME", "cert", "deploy");
	char *dir = kwt_tmpdir("deploy");
	char cert[4096];
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	SET_DEPLOY(store, "--cert", cert, "--post", "echo reload failed >&2; exit 4");
	char *before = cli_out("sqlite3 '%s/keyward.db' 'SELECT * FROM certs; SELECT * FROM "
	                       "versions'",
	                       store);
	kwt_result r;
	cli_runv(&r, NULL, store, CLI_ARGS("cert", "deploy", "web01"));
	cli_assert_error(&r, 3, "cert deploy with a failing hook");
	cli_assert_err_has(&r, "post hook", "cert deploy");
	cli_assert_err_has(&r, "exit status 4", "cert deploy");
	cli_assert_err_has(&r, "reload failed", "cert deploy");
	kwt_result_free(&r);
	char *after = cli_out("sqlite3 '%s/keyward.db' 'SELECT * FROM certs; SELECT * FROM "
	                      "versions'",
	                      store);
	cr_assert_str_eq(before, after);
	cr_assert_eq(
	    cli_sql_count(store, "SELECT count(*) FROM events WHERE type = 'deploy.failed'"), 1);
	free(before);
	free(after);
	free(dir);
	free(store);
}

/* ---- deploy targets (issue 14, item 1) ---- */

Test(cli_deploy_target, add_list_show_remove_and_their_events)
{
	char *store = store_with_cert();
	kwt_result r;
	cli_ok(&r, NULL, store,
	       CLI_ARGS("deploy-target", "add", "web", "--cert", "/srv/tls/web.pem", "--key-ref",
	                "/srv/tls/web.key", "--group", "0", "--mode", "640", "--pre", "true",
	                "--deploy", "systemctl reload nginx"));
	cr_assert(strstr(r.out, "added deploy target web") != NULL, "%s", r.out);
	kwt_result_free(&r);
	json_t *l = cli_json_of(store, CLI_ARGS("deploy-target", "list", "--json"));
	cr_assert_eq(json_array_size(l), 1);
	json_t *cfg = json_object_get(json_array_get(l, 0), "config");
	cr_assert_str_eq(cli_js(cfg, "cert"), "/srv/tls/web.pem");
	cr_assert_str_eq(cli_js(cfg, "key_ref"), "/srv/tls/web.key");
	cr_assert_str_eq(cli_js(cfg, "mode"), "0640");
	cr_assert_str_eq(cli_js(json_object_get(cfg, "hooks"), "deploy"), "systemctl reload nginx");
	json_decref(l);
	cli_ok(&r, NULL, store, CLI_ARGS("deploy-target", "list"));
	cr_assert(strstr(r.out, "web") && strstr(r.out, "cert=/srv/tls/web.pem"), "%s", r.out);
	kwt_result_free(&r);
	/* named by a policy: show says so, remove refuses */
	run_sql(store, "UPDATE certs SET policy = json_set(policy, '$.deploy',"
	               " json('{\"target\": \"web\"}')) WHERE name = 'web01';\n");
	json_t *one = cli_json_of(store, CLI_ARGS("deploy-target", "show", "web", "--json"));
	cr_assert_eq(json_integer_value(json_object_get(one, "used_by")), 1);
	cr_assert_str_eq(cli_js(one, "first_user"), "web01");
	json_decref(one);
	CLI_REFUSED(store, 1, "named by the policy of certificate 'web01'", "deploy-target",
	            "remove", "web");
	run_sql(store, "UPDATE certs SET policy = json_remove(policy, '$.deploy');\n");
	cli_ok(&r, NULL, store, CLI_ARGS("deploy-target", "remove", "web"));
	kwt_result_free(&r);
	cr_assert_eq(cli_sql_count(store, "SELECT count(*) FROM deploy_targets"), 0);
	cr_assert_eq(cli_sql_count(store, "SELECT count(*) FROM events WHERE type IN"
	                                  " ('deploy_target.added', 'deploy_target.removed')"),
	             2);
	free(store);
}

Test(cli_deploy_target, bad_input_is_one_line_and_leaves_the_store_alone)
{
	char *store = store_with_cert();
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("deploy-target", "add", "web", "--cert", "/srv/a.pem"));
	kwt_result_free(&r);
	CLI_REFUSED(store, 1, "exists already", "deploy-target", "add", "web", "--cert", "/b.pem");
	CLI_REFUSED(store, 2, "cert: must be an absolute file path", "deploy-target", "add", "x",
	            "--cert", "relative.pem");
	CLI_REFUSED(store, 2, "fullchain: '/a.pem' is also cert", "deploy-target", "add", "x",
	            "--cert", "/a.pem", "--fullchain", "/a.pem");
	CLI_REFUSED(store, 2, "mode: \"0666\" lets anyone rewrite", "deploy-target", "add", "x",
	            "--cert", "/a.pem", "--mode", "0666");
	CLI_REFUSED(store, 2, "mode: must be an octal mode", "deploy-target", "add", "x", "--cert",
	            "/a.pem", "--mode", "u=rw");
	CLI_REFUSED(store, 2, "owner: must be a user name or number", "deploy-target", "add", "x",
	            "--cert", "/a.pem", "--owner", "web admin");
	/* the host must be able to deploy it: owner and group exist here */
	CLI_REFUSED(store, 1, "group: no such group 'no-such-group-kw' on this host",
	            "deploy-target", "add", "x", "--cert", "/a.pem", "--group", "no-such-group-kw");
	CLI_REFUSED(store, 1, "owner: no such user 'no-such-user-kw' on this host", "deploy-target",
	            "add", "x", "--cert", "/a.pem", "--owner", "no-such-user-kw");
	CLI_REFUSED(store, 2, "hooks.pre: must be a shell command", "deploy-target", "add", "x",
	            "--pre", "");
	CLI_REFUSED(store, 2, "needs a file", "deploy-target", "add", "x", "--mode", "0640");
	CLI_REFUSED(store, 2, "bad deploy target name", "deploy-target", "add", "../x", "--cert",
	            "/a.pem");
	CLI_REFUSED(store, 2, "NAME", "deploy-target", "add");
	CLI_REFUSED(store, 1, "unknown deploy target 'nosuch'", "deploy-target", "remove",
	            "nosuch");
	CLI_REFUSED(store, 1, "unknown deploy target 'nosuch'", "deploy-target", "show", "nosuch");
	free(store);
}

/* policy set and cert create take a target that exists, never inline files
 * or commands. */
Test(cli_deploy_target, policies_name_a_target_and_cannot_hold_commands)
{
	char *store = store_with_cert();
	char *dir = kwt_tmpdir("pol");
	const char *good = "{\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\":"
	                   " \"CN=web01.example\"}, \"deploy\": {\"target\": \"web\"}}";
	const char *bad =
	    "{\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\":"
	    " \"CN=web01.example\"}, \"deploy\": {\"hooks\": {\"pre\": \"id > /tmp/x\"}}}";
	char *good_f = kwt_write_file(dir, "good.json", good, strlen(good), 0600);
	char *bad_f = kwt_write_file(dir, "bad.json", bad, strlen(bad), 0600);
	CLI_REFUSED(store, 1, "deploy.target: unknown deploy target 'web'", "policy", "set",
	            "web01", good_f);
	CLI_REFUSED(store, 1, "deploy.target: unknown deploy target 'web'", "cert", "create", "w2",
	            "--policy", good_f);
	CLI_REFUSED(store, 2, "keyward deploy-target add", "policy", "set", "web01", bad_f);
	CLI_REFUSED(store, 2, "a policy cannot set hooks", "cert", "create", "w2", "--policy",
	            bad_f);
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("deploy-target", "add", "web", "--cert", "/srv/a.pem"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("policy", "set", "web01", good_f));
	kwt_result_free(&r);
	json_t *p = cli_json_of(store, CLI_ARGS("policy", "show", "web01"));
	cr_assert_str_eq(cli_js(json_object_get(p, "deploy"), "target"), "web");
	json_decref(p);
	free(good_f);
	free(bad_f);
	free(dir);
	free(store);
}

/* A store from before deploy targets (schema 6) whose policies hold inline
 * deploy sections: each becomes a target cert-NAME and deploys as before. */
Test(cli_deploy_target, an_old_store_with_inline_deploy_policies_migrates_to_targets)
{
	char *store = store_with_cert();
	char *dir = kwt_tmpdir("mig");
	kwt_result r;
	cli_create(store, CLI_NOW, "web02", "hsm", "ec-p256", "CN=web02.example", 90, NULL);
	char *sql = NULL;
	cr_assert(
	    asprintf(&sql,
	             "DROP TABLE deploy_targets; DROP TABLE cert_access;"
	             " UPDATE certs SET policy = json_set(policy, '$.deploy', json('{\"cert\":"
	             " \"%s/cert.pem\", \"mode\": \"0600\", \"hooks\": {\"deploy\": \"echo"
	             " $KEYWARD_NAME > %s/ran\"}}')) WHERE name = 'web01';"
	             " UPDATE certs SET policy = json_set(policy, '$.deploy',"
	             " json('{\"mode\": \"0640\"}')) WHERE name = 'web02';"
	             " PRAGMA user_version = 6;\n",
	             dir, dir) > 0);
	run_sql(store, sql);
	free(sql);
	cr_assert_eq(cli_sql_count(store, "PRAGMA user_version"), 6);
	/* any command opens (and so migrates) the store */
	json_t *p = cli_json_of(store, CLI_ARGS("policy", "show", "web01"));
	cr_assert_eq(cli_sql_count(store, "PRAGMA user_version"), 8);
	json_t *want = json_pack("{s:s}", "target", "cert-web01");
	cr_assert(json_equal(json_object_get(p, "deploy"), want),
	          "web01's deploy is not the target");
	json_decref(want);
	json_decref(p);
	json_t *t = cli_json_of(store, CLI_ARGS("deploy-target", "show", "cert-web01", "--json"));
	json_t *cfg = json_object_get(t, "config");
	char path[4096];
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	cr_assert_str_eq(cli_js(cfg, "cert"), path);
	cr_assert_str_eq(cli_js(cfg, "mode"), "0600");
	cr_assert_not_null(
	    strstr(cli_js(json_object_get(cfg, "hooks"), "deploy"), "$KEYWARD_NAME"));
	cr_assert_eq(json_integer_value(json_object_get(t, "used_by")), 1);
	json_decref(t);
	/* a section that deployed nothing is dropped, no target for it */
	p = cli_json_of(store, CLI_ARGS("policy", "show", "web02"));
	cr_assert_null(json_object_get(p, "deploy"));
	json_decref(p);
	cr_assert_eq(cli_sql_count(store, "SELECT count(*) FROM deploy_targets"), 1);
	/* behaviour unchanged: the file is written with its mode, the hook runs */
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "deploy", "web01"));
	kwt_result_free(&r);
	char *got = cli_out("stat -c %%a '%s/cert.pem'; cat '%s/ran'", dir, dir);
	cr_assert_str_eq(got, "600\nweb01");
	free(got);
	free(dir);
	free(store);
}

/* ---- systemd units ---- */

/* The build directory: the CLI is <build>/cli/keyward (under KEYWARD_VALGRIND
 * KW_TEST_KEYWARD_BIN is the valgrind wrapper and KW_VALGRIND_BIN the CLI). */
static char *build_dir(void)
{
	const char *vg = getenv("KW_VALGRIND_BIN");
	char *bin = strdup(vg && vg[0] ? vg : kwt_env("KW_TEST_KEYWARD_BIN"));
	char *d = strdup(dirname(dirname(bin)));
	free(bin);
	return d;
}

static char *cache_value(const char *build, const char *key)
{
	return cli_out("sed -n 's/^%s:[A-Z]*=//p' '%s/CMakeCache.txt'", key, build);
}

/* systemd-analyze verify of a service and the unit that starts it (a timer
 * or a socket), from copies in a directory of their own: the service's
 * ExecStart must exist, so the copy runs the keyward just built. */
static void units_verify(const char *service, const char *service_name, const char *other,
                         const char *other_name)
{
	char *vdir = kwt_tmpdir("verify");
	cr_assert_eq(cli_status("command -v systemd-analyze >/dev/null"), 0,
	             "systemd-analyze is not installed (ci/install-deps installs systemd)");
	cr_assert_eq(cli_status("sed 's#^ExecStart=[^ ]*#ExecStart=%s#' '%s' > '%s/%s' && "
	                        "cp '%s' '%s/%s'",
	                        kwt_env("KW_TEST_KEYWARD_BIN"), service, vdir, service_name, other,
	                        vdir, other_name),
	             0);
	char *out = cli_out("cd '%s' && systemd-analyze verify %s %s 2>&1; echo rc=$?", vdir,
	                    service_name, other_name);
	cr_assert(strstr(out, "rc=0") != NULL && strstr(out, "keyward-") == NULL,
	          "systemd-analyze verify: %s", out);
	free(out);
	free(vdir);
}

Test(systemd, cmake_install_puts_both_units_in_lib_systemd_system)
{
	char *build = build_dir();
	char *dest = kwt_tmpdir("destdir");
	char *prefix = cache_value(build, "CMAKE_INSTALL_PREFIX");
	char *bindir = cache_value(build, "CMAKE_INSTALL_BINDIR");
	cr_assert(prefix[0] == '/', "no install prefix in %s/CMakeCache.txt", build);
	cr_assert_eq(cli_status("DESTDIR='%s' cmake --install '%s' --component systemd "
	                        ">/dev/null",
	                        dest, build),
	             0);
	char *units = cli_out("ls '%s%s/lib/systemd/system' | tr '\\n' ' '", dest, prefix);
	cr_assert_str_eq(units, "keyward-renew.service keyward-renew.timer");
	char *service = NULL, *timer = NULL, want[4096];
	cr_assert(
	    asprintf(&service, "%s%s/lib/systemd/system/keyward-renew.service", dest, prefix) > 0);
	cr_assert(asprintf(&timer, "%s%s/lib/systemd/system/keyward-renew.timer", dest, prefix) >
	          0);
	char *text = kwt_read_file(service, NULL);
	snprintf(want, sizeof(want), "\nExecStart=%s%s%s/keyward renew --due\n",
	         bindir[0] == '/' ? "" : prefix, bindir[0] == '/' ? "" : "/", bindir);
	cr_assert(strstr(text, want) != NULL, "%s lacks %s", service, want);
	cr_assert(strstr(text, "\nType=oneshot\n") && strstr(text, "\nProtectSystem=strict\n") &&
	              strstr(text, "\nReadWritePaths=/var/lib/keyward\n") &&
	              strstr(text, "\nNoNewPrivileges=yes\n") && strstr(text, "\nPrivateTmp=yes\n"),
	          "%s", text);
	/* the TPM must stay reachable */
	cr_assert(strstr(text, "PrivateDevices=yes") == NULL, "%s", text);
	free(text);
	text = kwt_read_file(timer, NULL);
	cr_assert(strstr(text, "\nOnCalendar=*-*-* 00,12:00:00\n") &&
	              strstr(text, "\nRandomizedDelaySec=1h\n") &&
	              strstr(text, "\nPersistent=true\n") &&
	              strstr(text, "\nWantedBy=timers.target\n"),
	          "%s", text);
	free(text);
	units_verify(service, "keyward-renew.service", timer, "keyward-renew.timer");
	free(service);
	free(timer);
	free(units);
	free(prefix);
	free(bindir);
	free(dest);
	free(build);
}

Test(systemd, an_explicit_unit_dir_is_honoured)
{
	char *build = build_dir();
	char *tmp = kwt_tmpdir("unitdir");
	/* a separate configure of the dist directory alone would need the whole
	 * project: use cmake --install's component with a cache override copy */
	char *copy = NULL;
	cr_assert(asprintf(&copy, "%s/build", tmp) > 0);
	cr_assert_eq(cli_status("cmake -S '%s' -B '%s' -DKEYWARD_TESTS=OFF "
	                        "-DKEYWARD_SYSTEMD_UNITDIR=/etc/systemd/system >/dev/null 2>&1",
	                        kwt_env("KW_TEST_SOURCE_DIR"), copy),
	             0);
	cr_assert_eq(cli_status("DESTDIR='%s/dest' cmake --install '%s' --component systemd "
	                        ">/dev/null",
	                        tmp, copy),
	             0);
	char *units = cli_out("ls '%s/dest/etc/systemd/system' | tr '\\n' ' '", tmp);
	cr_assert_str_eq(units, "keyward-renew.service keyward-renew.timer");
	free(units);
	free(copy);
	free(tmp);
	free(build);
}

/* keyward agent's units: its own install component, the socket under
 * /run/keyward that anyone may connect to (the agent decides per
 * certificate), the service sandboxed with the TPM device nodes only. */
Test(systemd, the_agent_units_install_verify_and_are_sandboxed)
{
	char *build = build_dir();
	char *dest = kwt_tmpdir("destdir");
	char *prefix = cache_value(build, "CMAKE_INSTALL_PREFIX");
	char *bindir = cache_value(build, "CMAKE_INSTALL_BINDIR");
	cr_assert_eq(cli_status("DESTDIR='%s' cmake --install '%s' --component systemd-agent "
	                        ">/dev/null",
	                        dest, build),
	             0);
	char *units = cli_out("ls '%s%s/lib/systemd/system' | tr '\\n' ' '", dest, prefix);
	cr_assert_str_eq(units, "keyward-agent.service keyward-agent.socket");
	char *service = NULL, *socket = NULL, want[4096];
	cr_assert(
	    asprintf(&service, "%s%s/lib/systemd/system/keyward-agent.service", dest, prefix) > 0);
	cr_assert(asprintf(&socket, "%s%s/lib/systemd/system/keyward-agent.socket", dest, prefix) >
	          0);
	char *text = kwt_read_file(service, NULL);
	snprintf(want, sizeof(want), "\nExecStart=%s%s%s/keyward agent\n",
	         bindir[0] == '/' ? "" : prefix, bindir[0] == '/' ? "" : "/", bindir);
	cr_assert(strstr(text, want) != NULL, "%s lacks %s", service, want);
	static const char *const sandbox[] = {"\nNoNewPrivileges=yes\n",
	                                      "\nPrivateTmp=yes\n",
	                                      "\nProtectSystem=strict\n",
	                                      "\nReadWritePaths=/var/lib/keyward\n",
	                                      "\nDevicePolicy=closed\n",
	                                      "\nDeviceAllow=/dev/tpmrm0 rw\n",
	                                      "\nProtectHome=yes\n",
	                                      "\nRequires=keyward-agent.socket\n",
	                                      "\nUMask=0077\n"};
	for (size_t i = 0; i < sizeof(sandbox) / sizeof(sandbox[0]); i++)
		cr_assert(strstr(text, sandbox[i]) != NULL, "%s lacks %s", service, sandbox[i]);
	free(text);
	text = kwt_read_file(socket, NULL);
	cr_assert(strstr(text, "\nListenStream=/run/keyward/agent.sock\n") &&
	              strstr(text, "\nSocketMode=0666\n") &&
	              strstr(text, "\nDirectoryMode=0755\n") &&
	              strstr(text, "\nWantedBy=sockets.target\n"),
	          "%s", text);
	free(text);
	units_verify(service, "keyward-agent.service", socket, "keyward-agent.socket");
	free(service);
	free(socket);
	free(units);
	free(prefix);
	free(bindir);
	free(dest);
	free(build);
}
