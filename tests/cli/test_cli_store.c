/*
 * keyward CLI end to end: init, global options, --help everywhere, the store's
 * protections (missing, corrupt, foreign, too open) and secrets kept out of it.
 */
#include <errno.h>
#include <fcntl.h>

#include "cli_test.h"

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void assert_mode(const char *path, int dir, unsigned mode)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	cr_assert(dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode), "%s has the wrong type", path);
	cr_assert_eq(st.st_mode & 07777, mode, "%s has mode %04o, expected %04o", path,
	             (unsigned)(st.st_mode & 07777), mode);
}

static void assert_absent(const char *path)
{
	cr_assert(access(path, F_OK) != 0 && errno == ENOENT, "%s exists", path);
}

/* ---- init ---- */

Test(store, init_creates_a_private_directory_and_database)
{
	kwt_result r;
	char *dir = kwt_tmpdir("init");
	char *store = path_in(dir, "s");
	char *db = path_in(store, "keyward.db");
	char want[4200];
	cli_ok(&r, NULL, store, CLI_ARGS("init"));
	snprintf(want, sizeof(want), "initialized store %s\n", store);
	cr_assert_str_eq(r.out, want);
	kwt_result_free(&r);
	assert_mode(store, 1, 0700);
	assert_mode(db, 0, 0600);
	/* a keyward database: application id "KWRD", a schema, no rows */
	char *id = cli_out("sqlite3 '%s' 'PRAGMA application_id'", db);
	cr_assert_str_eq(id, "1264013892"); /* 0x4b575244, "KWRD" */
	free(id);
	cr_assert(cli_sql_count(store, "PRAGMA user_version") >= 1);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM certs"), 0);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM backends"), 0);
	json_t *l = cli_list(store, "cert list");
	cr_assert_eq(json_array_size(l), 0);
	json_decref(l);

	/* the modes do not depend on the caller's umask */
	char *store2 = path_in(dir, "s2");
	char *db2 = path_in(store2, "keyward.db");
	cr_assert_eq(cli_status("umask 000 && '%s' --store '%s' init >/dev/null",
	                        kwt_env("KW_TEST_KEYWARD_BIN"), store2),
	             0);
	assert_mode(store2, 1, 0700);
	assert_mode(db2, 0, 0600);
	free(db2);
	free(store2);
	free(db);
	free(store);
	free(dir);
}

Test(store, init_on_an_existing_store_changes_nothing)
{
	kwt_result r;
	char *store = kwt_store_new(1, 1);
	char *db = path_in(store, "keyward.db");
	char want[4200];
	cli_create(store, CLI_NOW, "kept", "hsm", "ec-p256", "CN=kept", 30, NULL);
	json_t *before = cli_show(store, "kept", 0);
	for (int i = 0; i < 2; i++) {
		cli_snap snap = cli_snap_take(store);
		cli_ok(&r, NULL, store, CLI_ARGS("init"));
		snprintf(want, sizeof(want), "store %s is already initialized\n", store);
		cr_assert_str_eq(r.out, want);
		kwt_result_free(&r);
		cli_snap_assert_same(&snap, store, "init on an existing store");
	}
	assert_mode(store, 1, 0700);
	assert_mode(db, 0, 0600);
	json_t *after = cli_show(store, "kept", 0);
	cr_assert(json_equal(before, after), "init changed a certificate");
	json_decref(before);
	json_decref(after);
	free(db);
	free(store);
}

Test(store, init_where_the_parent_is_missing_fails_cleanly)
{
	kwt_result r;
	char *dir = kwt_tmpdir("init");
	char *parent = path_in(dir, "no");
	char *store = path_in(dir, "no/such/store");
	cli_runv(&r, NULL, store, CLI_ARGS("init"));
	cli_assert_error(&r, 1, "init below a missing directory");
	cli_assert_err_has(&r, store, "init below a missing directory");
	kwt_result_free(&r);
	assert_absent(parent);
	free(store);
	free(parent);
	free(dir);
}

/* ---- a store that cannot be used ---- */

Test(store, missing_store_is_refused_by_every_command)
{
	kwt_result r;
	char *dir = kwt_tmpdir("missing");
	char *store = path_in(dir, "nostore");
	const char *const cmds[][10] = {
	    {"cert", "list", NULL},
	    {"cert", "list", "--json", NULL},
	    {"cert", "show", "x", NULL},
	    {"cert", "create", "x", "--backend", "hsm", "--subject", "CN=x", NULL},
	    {"cert", "delete", "x", NULL},
	    {"backend", "list", NULL},
	    {"backend", "add", "t", "tpm2", "--tcti", kwt_env("KW_TEST_TCTI"), NULL},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cli_runv(&r, NULL, store, cmds[i]);
		cli_assert_error(&r, 1, cli_args_str(cmds[i]));
		cli_assert_err_has(&r, "no keyward store", cli_args_str(cmds[i]));
		cli_assert_err_has(&r, store, cli_args_str(cmds[i]));
		cli_assert_err_has(&r, "keyward init", cli_args_str(cmds[i]));
		kwt_result_free(&r);
		assert_absent(store);
	}
	/* a directory without the database is not a store either */
	cr_assert_eq(mkdir(store, 0700), 0);
	cli_runv(&r, NULL, store, CLI_ARGS("cert", "list"));
	cli_assert_error(&r, 1, "cert list in an empty directory");
	cli_assert_err_has(&r, "no keyward store", "cert list in an empty directory");
	kwt_result_free(&r);
	char *db = path_in(store, "keyward.db");
	assert_absent(db);
	free(db);
	free(store);
	free(dir);
}

/* Runs cmds on store: each refused (exit 1, one line, needle), db byte-identical. */
static void refused_leaving_db(const char *store, const char *needle)
{
	kwt_result r;
	size_t len0 = 0, len1 = 0;
	char *db = path_in(store, "keyward.db");
	char *before = kwt_read_file(db, &len0);
	int objects = kwt_p11_object_count();
	const char *const cmds[][8] = {
	    {"cert", "list", NULL},
	    {"cert", "show", "x", NULL},
	    {"backend", "list", NULL},
	    {"cert", "create", "x", "--backend", "hsm", "--subject", "CN=x", NULL},
	    {"init", NULL},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cli_runv(&r, NULL, store, cmds[i]);
		cli_assert_error(&r, 1, cli_args_str(cmds[i]));
		cli_assert_err_has(&r, needle, cli_args_str(cmds[i]));
		cli_assert_err_has(&r, db, cli_args_str(cmds[i]));
		kwt_result_free(&r);
		char *after = kwt_read_file(db, &len1);
		cr_assert(len1 == len0 && memcmp(after, before, len0) == 0,
		          "%s modified %s (%zu bytes, was %zu)", cli_args_str(cmds[i]), db, len1,
		          len0);
		cr_assert_eq(kwt_p11_object_count(), objects, "%s changed the token",
		             cli_args_str(cmds[i]));
		free(after);
	}
	free(before);
	free(db);
}

Test(store, corrupt_database_is_refused_and_left_alone)
{
	char *store = kwt_store_new(0, 1);
	cli_create(store, CLI_NOW, "c", "hsm", "ec-p256", "CN=c", 30, NULL);
	char *db = path_in(store, "keyward.db");
	size_t len = 0;
	char *good = kwt_read_file(db, &len);
	cr_assert(len > 4096);

	/* garbage over the whole file */
	char junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 13);
	free(kwt_write_file(store, "keyward.db", junk, sizeof(junk), 0600));
	refused_leaving_db(store, "corrupt");

	/* a truncated copy of the real database */
	free(kwt_write_file(store, "keyward.db", good, 4096, 0600));
	refused_leaving_db(store, "corrupt");

	/* the good copy back: everything is there */
	free(kwt_write_file(store, "keyward.db", good, len, 0600));
	json_decref(cli_show(store, "c", 0));
	free(good);
	free(db);
	free(store);
}

Test(store, foreign_sqlite_database_is_refused_untouched)
{
	char *dir = kwt_tmpdir("foreign");
	char *store = path_in(dir, "s");
	cr_assert_eq(mkdir(store, 0700), 0);
	/* another application's database, in SQLite's default rollback-journal mode */
	cr_assert_eq(cli_status("sqlite3 '%s/keyward.db' \"CREATE TABLE notes (t TEXT); "
	                        "INSERT INTO notes VALUES ('not yours');\" && chmod 600 "
	                        "'%s/keyward.db'",
	                        store, store),
	             0);
	refused_leaving_db(store, "not a keyward store");
	char *mode = cli_out("sqlite3 '%s/keyward.db' 'PRAGMA journal_mode'", store);
	cr_assert_str_eq(mode, "delete", "keyward switched a foreign database to %s", mode);
	free(mode);
	free(store);
	free(dir);
}

Test(store, store_open_to_others_is_refused_with_chmod_advice)
{
	kwt_result r;
	char *store = kwt_store_new(1, 1);
	char *db = path_in(store, "keyward.db");
	cli_create(store, CLI_NOW, "c", "hsm", "ec-p256", "CN=c", 30, NULL);
	const char *const cmds[][8] = {
	    {"cert", "list", NULL},
	    {"cert", "show", "c", NULL},
	    {"backend", "list", NULL},
	    {"cert", "create", "x", "--backend", "hsm", "--subject", "CN=x", NULL},
	    {"init", NULL},
	};
	const struct {
		const char *path;
		unsigned bad, good;
		const char *advice;
	} cases[] = {
	    {store, 0755, 0700, "chmod 700"},
	    {store, 0710, 0700, "chmod 700"},
	    {db, 0644, 0600, "chmod 600"},
	    {db, 0660, 0600, "chmod 600"},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		cr_assert_eq(chmod(cases[c].path, cases[c].bad), 0);
		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			cli_refused(store, NULL, 1, cases[c].advice, cmds[i], &r);
			cli_assert_err_has(&r, cases[c].path, cli_args_str(cmds[i]));
			kwt_result_free(&r);
		}
		/* init must not "fix" the mode silently either */
		assert_mode(cases[c].path, cases[c].path == store, cases[c].bad);
		cr_assert_eq(chmod(cases[c].path, cases[c].good), 0);
	}
	json_decref(cli_show(store, "c", 0));
	free(db);
	free(store);
}

/* Issue 14, item 6: a store owned by someone else could carry their hooks,
 * which root would run. Refused, with the chown that fixes it, the store as
 * it was. */
Test(store, store_owned_by_another_user_is_refused_with_chown_advice)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	char *db = path_in(store, "keyward.db");
	cli_create(store, CLI_NOW, "c", "hsm", "ec-p256", "CN=c", 30, NULL);
	const char *const cmds[][8] = {
	    {"cert", "list", NULL},
	    {"cert", "renew", "c", NULL},
	    {"init", NULL},
	};
	const char *const paths[] = {store, db};
	for (size_t p = 0; p < 2; p++) {
		cr_assert_eq(chown(paths[p], 65534, 65534), 0);
		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			cli_refused(store, NULL, 1, "chown -R root", cmds[i], &r);
			cli_assert_err_has(&r, paths[p], cli_args_str(cmds[i]));
			cli_assert_err_has(&r, "uid 65534", cli_args_str(cmds[i]));
			kwt_result_free(&r);
		}
		cr_assert_eq(chown(paths[p], 0, 0), 0);
	}
	json_decref(cli_show(store, "c", 0));
	free(db);
	free(store);
}

/* A store below a symbolic link (a linked /var/lib) opens; a failed init
 * leaves no database file behind that would block the next one. */
Test(store, store_below_a_linked_directory_works_and_failed_init_leaves_nothing)
{
	kwt_result r;
	char *dir = kwt_tmpdir("linked");
	char *real = path_in(dir, "real");
	char *link = path_in(dir, "link");
	char *store = path_in(dir, "link/store");
	cr_assert_eq(mkdir(real, 0700), 0);
	cr_assert_eq(symlink(real, link), 0);
	cli_ok(&r, NULL, store, CLI_ARGS("init"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "list", "--json"));
	cr_assert_str_eq(cli_trim(r.out), "[]");
	kwt_result_free(&r);
	char *db = path_in(store, "keyward.db");
	assert_mode(db, 0, 0600);

	/* SQLite cannot make its WAL file here: init fails after creating the db */
	char *bad = path_in(dir, "bad");
	char *bad_db = path_in(dir, "bad/keyward.db");
	char *wal = path_in(dir, "bad/keyward.db-wal");
	cr_assert_eq(mkdir(bad, 0700), 0);
	cr_assert_eq(mkdir(wal, 0700), 0);
	cli_runv(&r, NULL, bad, CLI_ARGS("init"));
	cli_assert_error(&r, 1, "init where the WAL cannot be made");
	kwt_result_free(&r);
	assert_absent(bad_db);
	cr_assert_eq(rmdir(wal), 0);
	cli_ok(&r, NULL, bad, CLI_ARGS("init"));
	kwt_result_free(&r);
	assert_mode(bad_db, 0, 0600);
	free(bad);
	free(bad_db);
	free(wal);
	free(db);
	free(store);
	free(link);
	free(real);
	free(dir);
}

/* ---- global options ---- */

Test(store, store_is_chosen_by_option_then_environment)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	char *dir = kwt_tmpdir("env");
	char *other = path_in(dir, "nostore");
	cli_create(store, CLI_NOW, "here", "hsm", "ec-p256", "CN=here", 30, NULL);
	char envstore[4200], envother[4200], opt[4200];
	snprintf(envstore, sizeof(envstore), "KEYWARD_STORE=%s", store);
	snprintf(envother, sizeof(envother), "KEYWARD_STORE=%s", other);
	snprintf(opt, sizeof(opt), "--store=%s", store);
	char *env1[] = {envstore, NULL};
	char *env2[] = {envother, NULL};

	/* KEYWARD_STORE without --store */
	cli_ok(&r, env1, NULL, CLI_ARGS("cert", "show", "here", "--json"));
	kwt_result_free(&r);
	/* --store wins over KEYWARD_STORE */
	cli_ok(&r, env2, store, CLI_ARGS("cert", "show", "here", "--json"));
	kwt_result_free(&r);
	cli_runv(&r, env2, NULL, CLI_ARGS("cert", "show", "here"));
	cli_assert_error(&r, 1, "KEYWARD_STORE pointing nowhere");
	cli_assert_err_has(&r, other, "KEYWARD_STORE pointing nowhere");
	kwt_result_free(&r);
	/* --store=DIR */
	cli_ok(&r, env2, NULL, CLI_ARGS(opt, "cert", "show", "here", "--json"));
	kwt_result_free(&r);
	/* --store without a directory */
	cli_runv(&r, NULL, NULL, CLI_ARGS("--store"));
	cli_assert_error(&r, 2, "--store without a value");
	kwt_result_free(&r);
	cli_runv(&r, NULL, NULL, CLI_ARGS("--store", "", "cert", "list"));
	cli_assert_error(&r, 2, "--store ''");
	kwt_result_free(&r);
	assert_absent(other);
	free(other);
	free(dir);
	free(store);
}

Test(store, help_works_for_every_command_without_a_store)
{
	kwt_result r;
	char *dir = kwt_tmpdir("help");
	char *nowhere = path_in(dir, "nostore");
	char envs[4200];
	snprintf(envs, sizeof(envs), "KEYWARD_STORE=%s", nowhere);
	char *env[] = {envs, NULL};
	const char *const cmds[][5] = {
	    {"--help", NULL},
	    {"-h", NULL},
	    {"init", "--help", NULL},
	    {"backend", "--help", NULL},
	    {"backend", "add", "--help", NULL},
	    {"backend", "list", "--help", NULL},
	    {"cert", "--help", NULL},
	    {"cert", "create", "--help", NULL},
	    {"cert", "list", "--help", NULL},
	    {"cert", "show", "--help", NULL},
	    {"cert", "export", "--help", NULL},
	    {"cert", "csr", "--help", NULL},
	    {"cert", "renew", "--help", NULL},
	    {"cert", "delete", "--help", NULL},
	    {"cert", "verify", "--help", NULL},
	    {"cert", "show", "-h", NULL},
	    {"audit", "verify", "--help", NULL},
	    {"events", "--help", NULL},
	    {"renew", "--due", "--help", NULL},
	    {"metrics", "--help", NULL},
	    /* --help anywhere after the subcommand */
	    {"cert", "create", "web", "--help", NULL},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *what = cli_args_str(cmds[i]);
		char want[128];
		cli_runv(&r, env, NULL, cmds[i]);
		cr_assert_eq(r.status, 0, "%s: exit %d (%s)", what, r.status, r.err);
		cr_assert_str_empty(r.err, "%s wrote to stderr: %s", what, r.err);
		cr_assert(strstr(r.out, "Usage: keyward") != NULL, "%s: %s", what, r.out);
		/* a subcommand's help shows its own usage line */
		if (cmds[i][1] && cmds[i][1][0] != '-' && cmds[i][0][0] != '-') {
			snprintf(want, sizeof(want), "Usage: keyward %s %s", cmds[i][0],
			         cmds[i][1]);
			cr_assert(strstr(r.out, want) != NULL, "%s: no '%s' in: %s", what, want,
			          r.out);
		}
		kwt_result_free(&r);
	}
	/* the group help lists every subcommand */
	cli_runv(&r, env, NULL, CLI_ARGS("cert", "--help"));
	const char *const subs[] = {"create", "list",  "show",   "export",
	                            "csr",    "renew", "delete", "verify"};
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		char want[32];
		snprintf(want, sizeof(want), "  %s ", subs[i]);
		cr_assert(strstr(r.out, want) != NULL, "cert --help lacks %s: %s", subs[i], r.out);
	}
	kwt_result_free(&r);
	assert_absent(nowhere);
	free(nowhere);
	free(dir);
}

Test(store, version_is_printed)
{
	kwt_result r;
	cli_ok(&r, NULL, NULL, CLI_ARGS("--version"));
	cr_assert(strncmp(r.out, "keyward ", 8) == 0 && kwt_count_lines(r.out) == 1, "%s", r.out);
	kwt_result_free(&r);
}

Test(store, unknown_command_or_option_is_a_usage_error)
{
	kwt_result r;
	char *store = kwt_store_new(0, 0);
	const struct {
		const char *const args[4];
		const char *needle;
	} cases[] = {
	    {{"frob", NULL}, "'frob'"},
	    {{"--frob", NULL}, "'--frob'"},
	    {{"-x", "cert", "list", NULL}, "'-x'"},
	    {{"cert", "frob", NULL}, "frob"},
	    {{"backend", "frob", NULL}, "frob"},
	    {{"cert", "list", "--frob", NULL}, "--frob"},
	    {{"init", "--frob", NULL}, "--frob"},
	    {{"init", "extra", NULL}, "extra"},
	    {{"CERT", "list", NULL}, "CERT"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cli_refused(store, NULL, 2, cases[i].needle, cases[i].args, &r);
		kwt_result_free(&r);
	}
	free(store);
}

Test(store, missing_command_is_a_one_line_usage_error)
{
	kwt_result r;
	char *store = kwt_store_new(0, 0);
	const char *const cmds[][2] = {{NULL}, {"cert", NULL}, {"backend", NULL}};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cli_runv(&r, NULL, store, cmds[i]);
		cli_assert_error(&r, 2, i == 0 ? "keyward with no command" : cli_args_str(cmds[i]));
		kwt_result_free(&r);
	}
	free(store);
}

/* ---- secrets ---- */

/* Neither the store's files nor its dump hold secret, in text or hex. */
static void assert_not_in_store(const char *store, const char *secret)
{
	char hex[512] = "";
	for (size_t i = 0; secret[i] && strlen(hex) + 3 < sizeof(hex); i++)
		snprintf(hex + strlen(hex), sizeof(hex) - strlen(hex), "%02x",
		         (unsigned char)secret[i]);
	cr_assert_eq(cli_status("grep -r -a -q -F -e '%s' '%s'", secret, store), 1,
	             "the store's files hold the PIN");
	cr_assert_eq(cli_status("grep -r -a -q -i -F -e '%s' '%s'", hex, store), 1,
	             "the store's files hold the PIN in hex");
	char *dump = kwt_store_dump(store);
	cr_assert(strstr(dump, "CREATE TABLE") != NULL);
	cr_assert(strstr(dump, secret) == NULL, "the store's rows hold the PIN");
	cr_assert(strcasestr(dump, hex) == NULL, "the store's rows hold the PIN in hex");
	free(dump);
}

Test(store, pin_never_reaches_the_store_or_the_output)
{
	/* a token of its own with a PIN that cannot turn up by chance */
	static const char pin[] = "Kw-cli-PIN-5f3a9c0e";
	kwt_result r;
	cr_assert_eq(cli_status("softhsm2-util --init-token --free --label kw-pin-test "
	                        "--so-pin 87654321 --pin '%s' >/dev/null",
	                        pin),
	             0);
	char *store = kwt_store_new(0, 0);
	char *dir = kwt_tmpdir("pin");
	char line[64], src[4200], envpin[128];
	snprintf(line, sizeof(line), "%s\n", pin);
	char *file = kwt_write_file(dir, "pin", line, strlen(line), 0600);
	snprintf(src, sizeof(src), "file:%s", file);
	snprintf(envpin, sizeof(envpin), "KW_CLI_SECRET=%s", pin);
	char *env[] = {envpin, NULL};
	const char *m = kwt_env("KW_TEST_P11_MODULE");
	struct {
		char *const *env;
		const char *const *args;
	} steps[] = {
	    {NULL, CLI_ARGS("backend", "add", "pf", "pkcs11", "--module", m, "--token",
	                    "kw-pin-test", "--pin-source", src)},
	    {env, CLI_ARGS("backend", "add", "pe", "pkcs11", "--module", m, "--token",
	                   "pkcs11:token=kw-pin-test", "--pin-source", "env:KW_CLI_SECRET")},
	    {NULL, CLI_ARGS("cert", "create", "a", "--backend", "pf", "--subject", "CN=a")},
	    {env, CLI_ARGS("cert", "create", "b", "--backend", "pe", "--subject", "CN=b", "--key",
	                   "rsa-2048")},
	    {NULL, CLI_ARGS("cert", "renew", "a")},
	    {env, CLI_ARGS("cert", "renew", "b", "--reuse-key")},
	    {NULL, CLI_ARGS("cert", "csr", "a")},
	    {NULL, CLI_ARGS("cert", "verify", "a", "--json")},
	    {env, CLI_ARGS("cert", "verify", "b")},
	    {NULL, CLI_ARGS("cert", "show", "a", "--json")},
	    {NULL, CLI_ARGS("cert", "list", "--json")},
	    {NULL, CLI_ARGS("cert", "list")},
	    {NULL, CLI_ARGS("backend", "list", "--json")},
	    {NULL, CLI_ARGS("backend", "list")},
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		cli_ok(&r, steps[i].env, store, steps[i].args);
		cli_assert_err_lacks(&r, pin, cli_args_str(steps[i].args));
		kwt_result_free(&r);
	}
	/* nor in an error: a wrong PIN in the file, the right one elsewhere */
	free(kwt_write_file(dir, "pin", "Kw-wrong-PIN-77\n", 16, 0600));
	cli_runv(&r, env, store, CLI_ARGS("cert", "renew", "a"));
	cli_assert_error(&r, 1, "renew with a wrong PIN");
	cli_assert_err_lacks(&r, "Kw-wrong-PIN-77", "renew with a wrong PIN");
	cli_assert_err_lacks(&r, pin, "renew with a wrong PIN");
	kwt_result_free(&r);
	cli_ok(&r, env, store, CLI_ARGS("cert", "delete", "b", "--purge"));
	kwt_result_free(&r);
	assert_not_in_store(store, pin);
	assert_not_in_store(store, "Kw-wrong-PIN-77");
	free(file);
	free(dir);
	free(store);
}

Test(store, harness_pin_is_not_in_the_store)
{
	/* KW_TEST_P11_PIN is short (1234): only rows without random hex are
	 * searched here — the pin test above covers certificates */
	kwt_result r;
	char *dir = kwt_tmpdir("pin");
	char *store = path_in(dir, "s");
	char envpin[128], now[] = "KEYWARD_NOW=" CLI_NOW, src[4200];
	snprintf(envpin, sizeof(envpin), "KW_CLI_SECRET=%s", kwt_env("KW_TEST_P11_PIN"));
	snprintf(src, sizeof(src), "file:%s", kwt_env("KW_TEST_P11_PIN_FILE"));
	char *env[] = {envpin, now, NULL};
	cli_ok(&r, env, store, CLI_ARGS("init"));
	kwt_result_free(&r);
	cli_ok(&r, env, store,
	       CLI_ARGS("backend", "add", "pf", "pkcs11", "--module", kwt_env("KW_TEST_P11_MODULE"),
	                "--token", kwt_env("KW_TEST_P11_TOKEN"), "--pin-source", src));
	kwt_result_free(&r);
	cli_ok(&r, env, store,
	       CLI_ARGS("backend", "add", "pe", "pkcs11", "--module", kwt_env("KW_TEST_P11_MODULE"),
	                "--token", kwt_env("KW_TEST_P11_TOKEN"), "--pin-source",
	                "env:KW_CLI_SECRET"));
	kwt_result_free(&r);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM backends"), 2);
	assert_not_in_store(store, kwt_env("KW_TEST_P11_PIN"));
	free(store);
	free(dir);
}

/* Every command `keyward --help` lists, and every subcommand each group lists,
 * answers --help with its usage: found by reading the listings, so a command
 * added later is covered without touching this test. */
Test(store, help_works_for_every_listed_command_and_subcommand)
{
	kwt_result top, r;
	cli_runv(&top, NULL, NULL, CLI_ARGS("--help"));
	cr_assert_eq(top.status, 0);
	char *cmds = strstr(top.out, "Commands:\n");
	cr_assert_not_null(cmds);
	int n_cmds = 0, n_subs = 0;
	for (char *line = strtok(cmds + 10, "\n"); line && line[0] == ' ';
	     line = strtok(NULL, "\n")) {
		char cmd[32];
		cr_assert_eq(sscanf(line, " %31s", cmd), 1);
		n_cmds++;
		kwt_result g;
		const char *args[] = {cmd, "--help", NULL};
		cli_runv(&g, NULL, NULL, args);
		cr_assert_eq(g.status, 0, "%s --help: exit %d: %s", cmd, g.status, g.err);
		cr_assert_str_empty(g.err, "%s --help wrote to stderr", cmd);
		cr_assert(strstr(g.out, "Usage: keyward") != NULL, "%s --help: %s", cmd, g.out);
		char *subs = strstr(g.out, "Subcommands:\n");
		char *save = NULL;
		for (char *sl = subs ? strtok_r(subs + 13, "\n", &save) : NULL; sl && sl[0] == ' ';
		     sl = strtok_r(NULL, "\n", &save)) {
			char sub[32], want[96];
			cr_assert_eq(sscanf(sl, " %31s", sub), 1);
			const char *sargs[] = {cmd, sub, "--help", NULL};
			cli_runv(&r, NULL, NULL, sargs);
			cr_assert_eq(r.status, 0, "%s %s --help: exit %d: %s", cmd, sub, r.status,
			             r.err);
			snprintf(want, sizeof(want), "Usage: keyward %s %s", cmd, sub);
			cr_assert(strstr(r.out, want) != NULL, "%s %s --help: %s", cmd, sub, r.out);
			kwt_result_free(&r);
			n_subs++;
		}
		kwt_result_free(&g);
	}
	cr_assert(n_cmds >= 11, "only %d commands listed", n_cmds);
	cr_assert(n_subs >= 30, "only %d subcommands listed", n_subs);
	kwt_result_free(&top);
}
