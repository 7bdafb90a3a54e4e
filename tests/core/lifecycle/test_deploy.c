/* Deploy: files written atomically with the policy's owner/group/mode, hooks
 * run pre → files → deploy → post with a built environment (no PIN), failures
 * reported and recorded, the store untouched by hooks. */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <keyward/lifecycle.h>

#include "fixtures.h"
#include "kwtest.h"
#include "store/sql.h"
#include "lifecycle/lifecycle_internal.h"

typedef kwt_store_fixture fixture;

/* A store with a SoftHSM backend whose PIN comes from the environment (so
 * the PIN is in this process's environment: hooks must not get it) and a
 * certificate web01. */
static void setup(fixture *f)
{
	kwt_fixture_dirs(f, "deploy");
	kwt_fixture_store(f, "web01", "CN=web01");
	/* a secret-looking variable of our own that must not reach a hook */
	setenv("KEYWARD_PIN", "do-not-leak-4711", 1);
}

static void teardown(fixture *f)
{
	kwt_fixture_close(f);
}

/* Runs sql with text bound to ?1. */
static void sql_text(fixture *f, const char *sql, const char *text)
{
	sqlite3_stmt *st = NULL;
	cr_assert_eq(sqlite3_prepare_v2(f->s->db, sql, -1, &st, NULL), SQLITE_OK, "%s",
	             sqlite3_errmsg(f->s->db));
	if (text)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(f->s->db));
	sqlite3_finalize(st);
}

/* Makes deploy (JSON text, %s = the out dir) the settings of deploy target
 * web01-files, and web01's policy name it. Written into the store directly,
 * so that deploy's own checks of what it reads are what is tested
 * (deploy-target add refuses much of this). */
static void set_deploy(fixture *f, const char *fmt)
{
	/* every %s becomes the out dir (by hand: fmt is not a literal) */
	size_t cap = strlen(fmt) + 16 * strlen(f->out) + 1, used = 0;
	char *text = malloc(cap);
	cr_assert(text != NULL);
	for (const char *p = fmt; *p; p++) {
		if (p[0] == '%' && p[1] == 's') {
			cr_assert(used + strlen(f->out) < cap);
			memcpy(text + used, f->out, strlen(f->out));
			used += strlen(f->out);
			p++;
		} else if (used + 1 < cap)
			text[used++] = *p;
	}
	text[used] = '\0';
	json_error_t e;
	json_t *deploy = json_loads(text, 0, &e);
	cr_assert(deploy != NULL, "bad test JSON %s: %s", text, e.text);
	json_decref(deploy);
	sql_text(f,
	         "INSERT OR REPLACE INTO deploy_targets (name, kind, config, created_at)"
	         " VALUES ('web01-files', 'files', ?1, 0)",
	         text);
	sql_text(f,
	         "UPDATE certs SET policy = json_set(policy, '$.deploy',"
	         " json('{\"target\":\"web01-files\"}')) WHERE name = 'web01'",
	         NULL);
	free(text);
}

static char *out_path(fixture *f, const char *name)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s", f->out, name) > 0);
	return p;
}

static char *read_out(fixture *f, const char *name)
{
	char *p = out_path(f, name);
	char *text = kwt_read_file(p, NULL);
	free(p);
	return text;
}

/* Names in the out dir, sorted, joined by spaces. */
static char *listing(fixture *f)
{
	return kwt_sh_out("ls -A '%s' | sort | tr '\\n' ' '", f->out);
}

/* The store dump without the event log (rows and its head). */
static char *dump_without_events(fixture *f)
{
	return kwt_sh_out("sqlite3 '%s/keyward.db' .dump | grep -v -e '^INSERT INTO events ' -e "
	                  "\"^INSERT INTO settings VALUES('event_head'\"",
	                  f->dir);
}

#define ALL_FILES                                                                                  \
	"{\"cert\": \"%s/cert.pem\", \"chain\": \"%s/chain.pem\", \"fullchain\": "                 \
	"\"%s/fullchain.pem\", \"key_ref\": \"%s/key.pem\""

TestSuite(deploy, .timeout = 120);

Test(deploy, writes_every_file_with_the_exported_content_and_default_modes)
{
	fixture f;
	setup(&f);
	set_deploy(&f, ALL_FILES "}");
	json_t *report = NULL;
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_OK, "%s", kw_error_message());
	char *cert = NULL, *full = NULL, *ref = NULL;
	cr_assert_eq(kw_cert_export(f.s, "web01", 0, 0, &cert), KW_OK);
	cr_assert_eq(kw_cert_export(f.s, "web01", 0, 1, &full), KW_OK);
	cr_assert_eq(kw_cert_key_ref(f.s, "web01", "keyward", &ref), KW_OK);
	char *got = read_out(&f, "cert.pem");
	cr_assert_str_eq(got, cert);
	free(got);
	got = read_out(&f, "fullchain.pem");
	cr_assert_str_eq(got, full);
	free(got);
	got = read_out(&f, "chain.pem"); /* self-signed: no chain */
	cr_assert_str_eq(got, full + strlen(cert));
	free(got);
	got = read_out(&f, "key.pem");
	cr_assert_str_eq(got, ref);
	cr_assert(strstr(got, "PRIVATE KEY") == NULL || strstr(got, "KEYWARD") != NULL);
	free(got);
	const char *names[] = {"cert.pem", "chain.pem", "fullchain.pem", "key.pem"};
	const int modes[] = {0644, 0644, 0644, 0640};
	for (int i = 0; i < 4; i++) {
		struct stat st;
		char *p = out_path(&f, names[i]);
		cr_assert_eq(stat(p, &st), 0, "%s missing", p);
		cr_assert_eq(st.st_mode & 07777, (unsigned)modes[i], "%s mode %o", names[i],
		             st.st_mode & 07777);
		cr_assert_eq(st.st_uid, geteuid());
		cr_assert_eq(st.st_gid, getegid());
		free(p);
	}
	char *ls = listing(&f);
	cr_assert_str_eq(ls, "cert.pem chain.pem fullchain.pem key.pem ", "left over: %s", ls);
	free(ls);
	cr_assert_eq(json_array_size(json_object_get(report, "files")), 4);
	cr_assert(json_is_true(json_object_get(report, "ok")));
	json_t *ev = kwt_events_of(f.s, NULL, "deploy.done");
	cr_assert_eq(json_array_size(ev), 1);
	json_t *files = json_object_get(json_object_get(json_array_get(ev, 0), "details"), "files");
	cr_assert_eq(json_array_size(files), 4);
	json_decref(ev);
	json_decref(report);
	free(cert);
	free(full);
	free(ref);
	teardown(&f);
}

/* A group other than our own: a second one we belong to, or (root) any. */
static gid_t second_group(void)
{
	gid_t groups[64];
	int n = getgroups(64, groups);
	for (int i = 0; i < n; i++)
		if (groups[i] != getegid())
			return groups[i];
	return geteuid() == 0 ? 33 : getegid();
}

Test(deploy, applies_the_policys_owner_group_and_mode)
{
	fixture f;
	setup(&f);
	gid_t g = second_group();
	struct passwd *pw = getpwuid(geteuid());
	cr_assert(pw != NULL);
	char fmt[1024];
	/* owner by name, group by number */
	snprintf(fmt, sizeof(fmt),
	         "{\"cert\": \"%%s/c.pem\", \"key_ref\": \"%%s/k.pem\", \"owner\": \"%s\", "
	         "\"group\": \"%ld\", \"mode\": \"0600\"}",
	         pw->pw_name, (long)g);
	set_deploy(&f, fmt);
	json_t *report = NULL;
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_OK, "%s", kw_error_message());
	for (int i = 0; i < 2; i++) {
		struct stat st;
		char *p = out_path(&f, i ? "k.pem" : "c.pem");
		cr_assert_eq(stat(p, &st), 0);
		cr_assert_eq(st.st_mode & 07777, 0600u, "%s mode %o", p, st.st_mode & 07777);
		cr_assert_eq(st.st_uid, geteuid());
		cr_assert_eq(st.st_gid, g, "%s gid %ld, want %ld", p, (long)st.st_gid, (long)g);
		free(p);
	}
	json_decref(report);
	teardown(&f);
}

Test(deploy, an_unknown_owner_or_a_bad_mode_is_refused_before_anything_runs)
{
	fixture f;
	setup(&f);
	json_t *report = NULL;
	set_deploy(&f, "{\"cert\": \"%s/c.pem\", \"owner\": \"no-such-user-kw\", "
	               "\"hooks\": {\"pre\": \"touch %s/pre-ran\"}}");
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(), "deploy target 'web01-files': owner") != NULL, "%s",
	          kw_error_message());
	json_decref(report);
	set_deploy(&f, "{\"cert\": \"%s/c.pem\", \"mode\": \"0999\"}");
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_ERR_PARSE);
	cr_assert(strstr(kw_error_message(), "deploy target 'web01-files': mode") != NULL, "%s",
	          kw_error_message());
	json_decref(report);
	set_deploy(&f, "{\"cert\": \"relative/c.pem\"}");
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_ERR_PARSE);
	cr_assert(strstr(kw_error_message(), "deploy target 'web01-files': cert") != NULL, "%s",
	          kw_error_message());
	json_decref(report);
	char *ls = listing(&f);
	cr_assert_str_eq(ls, "", "something was written or run: %s", ls);
	free(ls);
	teardown(&f);
}

Test(deploy, an_unwritable_target_changes_no_file_and_leaves_no_temp_file)
{
	fixture f;
	setup(&f);
	char *cert = out_path(&f, "cert.pem");
	cr_assert(kwt_write_file(f.out, "cert.pem", "old\n", 4, 0644) != NULL);
	/* cert is writable, fullchain's directory does not exist: all or nothing */
	set_deploy(&f, "{\"cert\": \"%s/cert.pem\", \"fullchain\": \"%s/missing/full.pem\"}");
	char *before = dump_without_events(&f);
	json_t *report = NULL;
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_ERR_IO);
	cr_assert(strstr(kw_error_message(), "missing/full.pem") != NULL, "%s", kw_error_message());
	char *got = kwt_read_file(cert, NULL);
	cr_assert_str_eq(got, "old\n", "cert.pem was replaced although the deploy failed");
	free(got);
	char *ls = listing(&f);
	cr_assert_str_eq(ls, "cert.pem ", "left over: %s", ls);
	free(ls);
	json_t *ev = kwt_events_of(f.s, NULL, "deploy.failed");
	cr_assert_eq(json_array_size(ev), 1);
	json_decref(ev);
	char *after = dump_without_events(&f);
	cr_assert_str_eq(before, after);
	free(before);
	free(after);
	json_decref(report);
	free(cert);
	teardown(&f);
}

/* The staging works but a rename fails midway (fullchain is a directory, and
 * cert and chain come before it): the files renamed already are put back,
 * the very same inodes, and a file that had no predecessor is removed. */
Test(deploy, a_rename_that_fails_midway_puts_back_the_files_before_it)
{
	fixture f;
	setup(&f);
	cr_assert(kwt_write_file(f.out, "cert.pem", "old cert\n", 9, 0600) != NULL);
	cr_assert(kwt_write_file(f.out, "key.pem", "old key\n", 8, 0600) != NULL);
	char *full = out_path(&f, "fullchain.pem");
	cr_assert_eq(mkdir(full, 0700), 0);
	set_deploy(&f, ALL_FILES "}");
	char *cert = out_path(&f, "cert.pem");
	struct stat before, after;
	cr_assert_eq(stat(cert, &before), 0);
	json_t *report = NULL;
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_ERR_IO);
	cr_assert(strstr(kw_error_message(), "cannot replace deploy.fullchain") != NULL &&
	              strstr(kw_error_message(), "no file was changed") != NULL,
	          "%s", kw_error_message());
	cr_assert_eq(json_array_size(json_object_get(report, "files")), 0);
	char *got = read_out(&f, "cert.pem");
	cr_assert_str_eq(got, "old cert\n", "cert.pem was replaced although the deploy failed");
	free(got);
	cr_assert_eq(stat(cert, &after), 0);
	cr_assert_eq(after.st_ino, before.st_ino);
	cr_assert_eq(after.st_mode & 0777, 0600);
	got = read_out(&f, "key.pem");
	cr_assert_str_eq(got, "old key\n");
	free(got);
	/* chain.pem had no predecessor: gone again; no temp or backup file */
	char *ls = listing(&f);
	cr_assert_str_eq(ls, "cert.pem fullchain.pem key.pem ", "left over: %s", ls);
	free(ls);
	json_t *ev = kwt_events_of(f.s, NULL, "deploy.failed");
	cr_assert_eq(json_array_size(ev), 1);
	json_decref(ev);
	json_decref(report);
	free(cert);
	free(full);
	teardown(&f);
}

/* Each hook appends its name; deploy also dumps its environment and says
 * whether the file was there when it ran. */
#define ORDER_HOOKS                                                                                \
	"\"hooks\": {\"pre\": \"echo pre:$(test -e $KEYWARD_CERT_PATH && echo present || echo "    \
	"absent) >> %s/order\", \"deploy\": \"echo deploy:$(test -e $KEYWARD_CERT_PATH && echo "   \
	"present || echo absent) >> %s/order; env > %s/env\", \"post\": \"echo post >> "           \
	"%s/order\"}}"

Test(deploy, hooks_run_pre_files_deploy_post_with_a_built_environment)
{
	fixture f;
	setup(&f);
	/* paths: cert and key inside out/out (created here), hook files in out */
	char *sub = out_path(&f, "out");
	cr_assert_eq(mkdir(sub, 0755), 0);
	set_deploy(&f,
	           "{\"cert\": \"%s/out/cert.pem\", \"key_ref\": \"%s/out/key.pem\", " ORDER_HOOKS);
	json_t *report = NULL;
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_OK, "%s", kw_error_message());
	char *order = read_out(&f, "order");
	cr_assert_str_eq(order, "pre:absent\ndeploy:present\npost\n");
	free(order);
	char *env = read_out(&f, "env");
	json_t *show = NULL;
	cr_assert_eq(kw_cert_show(f.s, "web01", 0, &show), KW_OK);
	char want[512];
	snprintf(want, sizeof(want), "KEYWARD_THUMBPRINT_SHA256=%s\n",
	         json_string_value(json_object_get(show, "thumbprint_sha256")));
	cr_assert(strstr(env, want) != NULL, "%s not in %s", want, env);
	cr_assert(strstr(env, "KEYWARD_NAME=web01\n") != NULL, "%s", env);
	cr_assert(strstr(env, "KEYWARD_VERSION=1\n") != NULL, "%s", env);
	cr_assert(strstr(env, "KEYWARD_HOOK=deploy\n") != NULL, "%s", env);
	snprintf(want, sizeof(want), "KEYWARD_CERT_PATH=%s/cert.pem\n", sub);
	cr_assert(strstr(env, want) != NULL, "%s not in %s", want, env);
	snprintf(want, sizeof(want), "KEYWARD_KEY_REF_PATH=%s/key.pem\n", sub);
	cr_assert(strstr(env, want) != NULL, "%s not in %s", want, env);
	cr_assert(strstr(env, "\nPATH=") != NULL || strncmp(env, "PATH=", 5) == 0, "%s", env);
	/* nothing of ours leaks: not the PIN, not its variable, not our secrets */
	cr_assert(strstr(env, kwt_env("KW_TEST_P11_PIN")) == NULL, "the PIN reached a hook");
	cr_assert(strstr(env, "KW_TEST_P11_PIN") == NULL, "%s", env);
	cr_assert(strstr(env, "do-not-leak-4711") == NULL, "%s", env);
	cr_assert(strstr(env, "SOFTHSM2_CONF") == NULL, "environment inherited: %s", env);
	json_t *hooks = json_object_get(report, "hooks");
	cr_assert_eq(json_array_size(hooks), 3);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(hooks, 2), "hook")),
	                 "post");
	json_decref(show);
	json_decref(report);
	free(env);
	free(sub);
	teardown(&f);
}

Test(deploy, a_failing_hook_is_reported_recorded_and_leaves_the_store_alone)
{
	fixture f;
	setup(&f);
	set_deploy(&f, "{\"cert\": \"%s/cert.pem\", \"hooks\": {\"deploy\": \"echo first >&2; "
	               "echo 'nginx: bad config' >&2; exit 3\", \"post\": \"touch %s/post-ran\"}}");
	char *before = dump_without_events(&f);
	json_t *report = NULL;
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_ERR_STATE);
	const char *msg = kw_error_message();
	cr_assert(strstr(msg, "deploy hook") != NULL, "%s", msg);
	cr_assert(strstr(msg, "exit status 3") != NULL, "%s", msg);
	cr_assert(strstr(msg, "nginx: bad config") != NULL, "%s", msg);
	cr_assert(strchr(msg, '\n') == NULL, "the error is not one line: %s", msg);
	json_t *hook = json_array_get(json_object_get(report, "hooks"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(hook, "stderr")),
	                 "first\nnginx: bad config");
	cr_assert(json_is_false(json_object_get(report, "ok")));
	/* post runs even so (it may restart what pre stopped); the file is in place */
	char *p = out_path(&f, "post-ran");
	cr_assert_eq(access(p, F_OK), 0, "post hook did not run");
	free(p);
	p = out_path(&f, "cert.pem");
	cr_assert_eq(access(p, F_OK), 0);
	free(p);
	json_t *ev = kwt_events_of(f.s, NULL, "deploy.failed");
	cr_assert_eq(json_array_size(ev), 1);
	json_t *det = json_object_get(json_array_get(ev, 0), "details");
	cr_assert_str_eq(json_string_value(json_object_get(det, "hook")), "deploy");
	cr_assert_str_eq(json_string_value(json_object_get(det, "status")), "exit status 3");
	json_decref(ev);
	ev = kwt_events_of(f.s, NULL, "deploy.done");
	cr_assert_eq(json_array_size(ev), 0);
	json_decref(ev);
	char *after = dump_without_events(&f);
	cr_assert_str_eq(before, after, "a failed hook changed the store");
	json_t *audit = NULL;
	cr_assert_eq(kw_audit_verify(f.s, &audit), KW_OK);
	cr_assert(json_is_true(json_object_get(audit, "ok")));
	json_decref(audit);
	free(before);
	free(after);
	json_decref(report);
	teardown(&f);
}

Test(deploy, a_failing_pre_hook_stops_before_any_file_or_later_hook)
{
	fixture f;
	setup(&f);
	set_deploy(&f, "{\"cert\": \"%s/cert.pem\", \"hooks\": {\"pre\": \"exit 1\", \"deploy\": "
	               "\"touch %s/deploy-ran\", \"post\": \"touch %s/post-ran\"}}");
	json_t *report = NULL;
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_ERR_STATE);
	cr_assert(strstr(kw_error_message(), "pre hook") != NULL, "%s", kw_error_message());
	char *ls = listing(&f);
	cr_assert_str_eq(ls, "", "pre failed, yet: %s", ls);
	free(ls);
	json_decref(report);
	teardown(&f);
}

Test(deploy, a_hook_killed_by_a_signal_is_a_failure)
{
	fixture f;
	setup(&f);
	set_deploy(&f, "{\"hooks\": {\"deploy\": \"kill -TERM $$\"}}");
	json_t *report = NULL;
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_ERR_STATE);
	cr_assert(strstr(kw_error_message(), "signal 15") != NULL, "%s", kw_error_message());
	json_decref(report);
	teardown(&f);
}

static int alive(long pid)
{
	char path[64], *stat = NULL;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	stat = kwt_read_file(path, NULL);
	if (stat == NULL)
		return 0;
	const char *close = strrchr(stat, ')');
	int zombie = close && close[1] == ' ' && close[2] == 'Z';
	free(stat);
	return !zombie;
}

Test(deploy, a_hook_that_hangs_is_killed_with_its_children_after_the_timeout)
{
	fixture f;
	setup(&f);
	cr_assert_eq(sqlite3_exec(f.s->db,
	                          "INSERT INTO settings VALUES ('deploy_hook_timeout', '1')", NULL,
	                          NULL, NULL),
	             SQLITE_OK);
	set_deploy(&f, "{\"hooks\": {\"deploy\": \"sleep 60 & echo $! > %s/child; sleep 60\"}}");
	json_t *report = NULL;
	time_t t0 = time(NULL);
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_ERR_STATE);
	cr_assert(time(NULL) - t0 < 10, "the timeout did not stop the hook");
	cr_assert(strstr(kw_error_message(), "timed out") != NULL, "%s", kw_error_message());
	char *child = read_out(&f, "child");
	cr_assert(child != NULL);
	long pid = atol(child);
	for (int i = 0; i < 50 && alive(pid); i++)
		usleep(100000);
	cr_assert(!alive(pid), "the hook's background child %ld survived", pid);
	free(child);
	json_decref(report);
	teardown(&f);
}

Test(deploy, without_targets_or_hooks_nothing_happens)
{
	fixture f;
	setup(&f);
	json_t *report = NULL, *before = NULL, *after = NULL;
	cr_assert_eq(kw_events_list(f.s, NULL, &before), KW_OK);
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_OK, "%s", kw_error_message());
	cr_assert(json_is_object(report) && json_object_size(report) == 0);
	cr_assert_eq(kw_events_list(f.s, NULL, &after), KW_OK);
	cr_assert_eq(json_array_size(after), json_array_size(before));
	json_decref(report);
	json_decref(before);
	json_decref(after);
	teardown(&f);
}

/* A target removed behind keyward's back (the store edited: deploy-target
 * remove refuses while a policy names it) is a clear failure, recorded. */
Test(deploy, a_target_gone_from_the_store_fails_the_deploy_and_is_recorded)
{
	fixture f;
	setup(&f);
	set_deploy(&f, "{\"cert\": \"%s/cert.pem\", \"hooks\": {\"pre\": \"touch %s/pre-ran\"}}");
	cr_assert_eq(kw_deploy_target_remove(f.s, "web01-files"), KW_ERR_STATE);
	cr_assert(strstr(kw_error_message(), "named by the policy of certificate 'web01'") != NULL,
	          "%s", kw_error_message());
	sql_text(&f, "DELETE FROM deploy_targets WHERE name = 'web01-files'", NULL);
	json_t *report = NULL;
	cr_assert_eq(kw_cert_deploy(f.s, "web01", &report), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(),
	                 "certificate 'web01': deploy target 'web01-files' does not exist") != NULL,
	          "%s", kw_error_message());
	cr_assert_null(strchr(kw_error_message(), '\n'));
	cr_assert_not_null(report);
	cr_assert(json_is_false(json_object_get(report, "ok")));
	json_t *ev = kwt_events_of(f.s, NULL, "deploy.failed");
	cr_assert_eq(json_array_size(ev), 1);
	json_decref(ev);
	json_decref(report);
	char *ls = listing(&f);
	cr_assert_str_eq(ls, "", "something was written or run: %s", ls);
	free(ls);
	teardown(&f);
}

Test(deploy, an_unknown_certificate_is_not_found)
{
	fixture f;
	setup(&f);
	json_t *report = NULL;
	cr_assert_eq(kw_cert_deploy(f.s, "nosuch", &report), KW_ERR_NOT_FOUND);
	cr_assert(report == NULL);
	cr_assert(strstr(kw_error_message(), "nosuch") != NULL);
	teardown(&f);
}

Test(deploy, kwi_deploy_refuses_to_run_inside_a_transaction)
{
	fixture f;
	setup(&f);
	json_t *report = NULL;
	set_deploy(&f, "{\"cert\": \"%s/cert.pem\"}");
	cr_assert_eq(kwi_store_begin(f.s), KW_OK);
	kw_error_clear();
	cr_assert_eq(kwi_deploy(f.s, "web01", &report), KW_ERR_INTERNAL);
	kwi_store_rollback(f.s);
	char *ls = listing(&f);
	cr_assert_str_eq(ls, "");
	free(ls);
	teardown(&f);
}
