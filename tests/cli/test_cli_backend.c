/*
 * keyward CLI end to end: backend add | list against this program's swtpm and
 * SoftHSM token. A backend is only stored once it has proven it works.
 */
#include "cli_test.h"

static char *pin_source(void)
{
	char *s = NULL;
	cr_assert(asprintf(&s, "file:%s", kwt_env("KW_TEST_P11_PIN_FILE")) > 0);
	return s;
}

Test(backend, add_both_kinds_then_list_json_and_text)
{
	kwt_result r;
	char *store = kwt_store_new(0, 0);
	char *src = pin_source();
	cli_ok(&r, NULL, store,
	       CLI_ARGS("backend", "add", "tpm", "tpm2", "--tcti", kwt_env("KW_TEST_TCTI")));
	cr_assert_str_eq(r.out, "added tpm2 backend tpm\n");
	kwt_result_free(&r);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("backend", "add", "hsm", "pkcs11", "--module",
	                kwt_env("KW_TEST_P11_MODULE"), "--token", kwt_env("KW_TEST_P11_TOKEN"),
	                "--pin-source", src));
	cr_assert_str_eq(r.out, "added pkcs11 backend hsm\n");
	kwt_result_free(&r);

	json_t *list = cli_list(store, "backend list");
	cr_assert_eq(json_array_size(list), 2);
	/* sorted by name */
	cr_assert_str_eq(cli_js(json_array_get(list, 0), "name"), "hsm");
	cr_assert_str_eq(cli_js(json_array_get(list, 1), "name"), "tpm");
	json_t *hsm = cli_find_named(list, "hsm"), *tpm = cli_find_named(list, "tpm");
	cr_assert_str_eq(cli_js(hsm, "kind"), "pkcs11");
	cr_assert_str_eq(cli_js(hsm, "module"), kwt_env("KW_TEST_P11_MODULE"));
	cr_assert_str_eq(cli_js(hsm, "token"), kwt_env("KW_TEST_P11_TOKEN"));
	cr_assert_str_eq(cli_js(hsm, "pin_source"), src);
	cr_assert_eq(json_integer_value(json_object_get(hsm, "certificates")), 0);
	cr_assert_str_eq(cli_js(tpm, "kind"), "tpm2");
	cr_assert_str_eq(cli_js(tpm, "tcti"), kwt_env("KW_TEST_TCTI"));
	cr_assert_eq(json_integer_value(json_object_get(tpm, "certificates")), 0);
	cr_assert(json_object_get(tpm, "pin_source") == NULL);

	/* the store rows say the same */
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM backends WHERE "
	                                  "(name = 'tpm' AND kind = 'tpm2') OR "
	                                  "(name = 'hsm' AND kind = 'pkcs11')"),
	             2);

	/* certificates are counted per backend */
	cli_create(store, CLI_NOW, "c1", "hsm", "ec-p256", "CN=c1", 30, NULL);
	cli_create(store, CLI_NOW, "c2", "hsm", "ec-p256", "CN=c2", 30, NULL);
	cli_create(store, CLI_NOW, "c3", "tpm", "ec-p256", "CN=c3", 30, NULL);
	json_decref(list);
	list = cli_list(store, "backend list");
	cr_assert_eq(
	    json_integer_value(json_object_get(cli_find_named(list, "hsm"), "certificates")), 2);
	cr_assert_eq(
	    json_integer_value(json_object_get(cli_find_named(list, "tpm"), "certificates")), 1);

	/* text: a header and one line per backend */
	cli_ok(&r, NULL, store, CLI_ARGS("backend", "list"));
	cr_assert_eq(kwt_count_lines(r.out), 3, "backend list: %s", r.out);
	cr_assert(strncmp(r.out, "NAME", 4) == 0, "backend list header: %s", r.out);
	cr_assert(strstr(r.out, "\nhsm ") && strstr(r.out, "pkcs11") &&
	              strstr(r.out, kwt_env("KW_TEST_P11_TOKEN")),
	          "backend list: %s", r.out);
	cr_assert(strstr(r.out, "\ntpm ") && strstr(r.out, kwt_env("KW_TEST_TCTI")),
	          "backend list: %s", r.out);
	kwt_result_free(&r);
	json_decref(list);
	free(src);
	free(store);
}

Test(backend, pkcs11_by_uri_and_module_name_with_env_pin)
{
	kwt_result r;
	char *store = kwt_store_new(0, 0);
	char uri[256], pin[256];
	snprintf(uri, sizeof(uri), "pkcs11:token=%s", kwt_env("KW_TEST_P11_TOKEN"));
	snprintf(pin, sizeof(pin), "KW_CLI_PIN=%s", kwt_env("KW_TEST_P11_PIN"));
	char *env[] = {pin, NULL};
	/* softhsm2 is SoftHSM's p11-kit module name */
	cli_ok(&r, env, store,
	       CLI_ARGS("backend", "add", "uri", "pkcs11", "--module", "softhsm2", "--token", uri,
	                "--pin-source", "env:KW_CLI_PIN"));
	kwt_result_free(&r);
	json_t *list = cli_list(store, "backend list");
	json_t *b = cli_find_named(list, "uri");
	cr_assert(b != NULL);
	cr_assert_str_eq(cli_js(b, "token"), uri);
	cr_assert_str_eq(cli_js(b, "module"), "softhsm2");
	cr_assert_str_eq(cli_js(b, "pin_source"), "env:KW_CLI_PIN");
	/* it works: a key is made on that token */
	int objects = kwt_p11_object_count();
	cli_ok(&r, env, store,
	       CLI_ARGS("cert", "create", "viauri", "--backend", "uri", "--subject", "CN=viauri"));
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects + 3);
	cli_ok(&r, env, store, CLI_ARGS("cert", "delete", "viauri", "--purge"));
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects);
	json_decref(list);
	free(store);
}

Test(backend, duplicate_name_is_refused)
{
	char *store = kwt_store_new(1, 1);
	char *src = pin_source();
	CLI_REFUSED(store, 1, "already exists", "backend", "add", "tpm", "tpm2", "--tcti",
	            kwt_env("KW_TEST_TCTI"));
	CLI_REFUSED(store, 1, "already exists", "backend", "add", "hsm", "pkcs11", "--module",
	            kwt_env("KW_TEST_P11_MODULE"), "--token", kwt_env("KW_TEST_P11_TOKEN"),
	            "--pin-source", src);
	free(src);
	free(store);
}

/* backend list --json before and after: unchanged. The list before is the
 * same run on the same store as the list after (cli_refused checks that the
 * store is unchanged), so it goes through kwt_kw_repeat: under valgrind the
 * list after is checked every time, the one before only once. */
static void refused_and_unlisted(const char *store, int code, const char *needle,
                                 const char *const *args, kwt_result *keep)
{
	kwt_result r;
	kwt_kw_repeat(&r, NULL, store, CLI_ARGS("backend", "list", "--json"));
	cli_assert_ok(&r, "backend list --json");
	json_t *before = cli_json(r.out, "backend list --json");
	kwt_result_free(&r);
	cli_refused(store, NULL, code, needle, args, keep);
	json_t *after = cli_list(store, "backend list");
	cr_assert(json_equal(before, after), "%s changed backend list", cli_args_str(args));
	json_decref(before);
	json_decref(after);
}

Test(backend, missing_token_is_refused_and_not_listed)
{
	kwt_result r;
	char *store = kwt_store_new(1, 1);
	char *src = pin_source();
	refused_and_unlisted(store, 1, "nosuchtoken",
	                     CLI_ARGS("backend", "add", "ghost", "pkcs11", "--module",
	                              kwt_env("KW_TEST_P11_MODULE"), "--token", "nosuchtoken",
	                              "--pin-source", src),
	                     &r);
	/* and it says which tokens there are */
	cli_assert_err_has(&r, kwt_env("KW_TEST_P11_TOKEN"), "missing token");
	kwt_result_free(&r);
	refused_and_unlisted(store, 1, "nosuchtoken",
	                     CLI_ARGS("backend", "add", "ghost", "pkcs11", "--module",
	                              kwt_env("KW_TEST_P11_MODULE"), "--token",
	                              "pkcs11:token=nosuchtoken", "--pin-source", src),
	                     NULL);
	refused_and_unlisted(store, 1, "token URI",
	                     CLI_ARGS("backend", "add", "ghost", "pkcs11", "--module",
	                              kwt_env("KW_TEST_P11_MODULE"), "--token",
	                              "pkcs11:token=x;bogus-attr=1", "--pin-source", src),
	                     NULL);
	free(src);
	free(store);
}

Test(backend, wrong_pin_is_refused_naming_the_token)
{
	kwt_result r;
	char *store = kwt_store_new(1, 0);
	char *dir = kwt_tmpdir("pin");
	char *file = kwt_write_file(dir, "bad.pin", "pin-9876-wrong\n", 15, 0600);
	char src[4096], token[128];
	snprintf(src, sizeof(src), "file:%s", file);
	snprintf(token, sizeof(token), "'%s'", kwt_env("KW_TEST_P11_TOKEN"));
	refused_and_unlisted(store, 1, "wrong PIN",
	                     CLI_ARGS("backend", "add", "h", "pkcs11", "--module",
	                              kwt_env("KW_TEST_P11_MODULE"), "--token",
	                              kwt_env("KW_TEST_P11_TOKEN"), "--pin-source", src),
	                     &r);
	cli_assert_err_has(&r, token, "wrong PIN at add");
	cli_assert_err_lacks(&r, "pin-9876-wrong", "wrong PIN at add");
	kwt_result_free(&r);
	free(file);
	free(dir);
	free(store);
}

Test(backend, pin_file_open_to_others_is_refused_with_chmod_advice)
{
	kwt_result r;
	char *store = kwt_store_new(1, 0);
	char *dir = kwt_tmpdir("pin");
	char pin[64], src[4096];
	snprintf(pin, sizeof(pin), "%s\n", kwt_env("KW_TEST_P11_PIN"));
	char *file = kwt_write_file(dir, "user.pin", pin, strlen(pin), 0644);
	snprintf(src, sizeof(src), "file:%s", file);
	refused_and_unlisted(store, 1, "chmod 600",
	                     CLI_ARGS("backend", "add", "h", "pkcs11", "--module",
	                              kwt_env("KW_TEST_P11_MODULE"), "--token",
	                              kwt_env("KW_TEST_P11_TOKEN"), "--pin-source", src),
	                     &r);
	cli_assert_err_has(&r, file, "pin file 0644");
	kwt_result_free(&r);
	cr_assert_eq(chmod(file, 0640), 0);
	refused_and_unlisted(store, 1, "chmod 600",
	                     CLI_ARGS("backend", "add", "h", "pkcs11", "--module",
	                              kwt_env("KW_TEST_P11_MODULE"), "--token",
	                              kwt_env("KW_TEST_P11_TOKEN"), "--pin-source", src),
	                     NULL);
	/* once private it is accepted */
	cr_assert_eq(chmod(file, 0600), 0);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("backend", "add", "h", "pkcs11", "--module", kwt_env("KW_TEST_P11_MODULE"),
	                "--token", kwt_env("KW_TEST_P11_TOKEN"), "--pin-source", src));
	kwt_result_free(&r);
	free(file);
	free(dir);
	free(store);
}

Test(backend, unusable_pin_sources_are_refused)
{
	char *store = kwt_store_new(1, 0);
	char *dir = kwt_tmpdir("pin");
	char missing[4096];
	snprintf(missing, sizeof(missing), "file:%s/no-such.pin", dir);
	const char *m = kwt_env("KW_TEST_P11_MODULE"), *t = kwt_env("KW_TEST_P11_TOKEN");
	refused_and_unlisted(store, 1, "no-such.pin",
	                     CLI_ARGS("backend", "add", "h", "pkcs11", "--module", m, "--token", t,
	                              "--pin-source", missing),
	                     NULL);
	refused_and_unlisted(store, 1, "KW_CLI_UNSET_PIN",
	                     CLI_ARGS("backend", "add", "h", "pkcs11", "--module", m, "--token", t,
	                              "--pin-source", "env:KW_CLI_UNSET_PIN"),
	                     NULL);
	refused_and_unlisted(store, 2, "pin source",
	                     CLI_ARGS("backend", "add", "h", "pkcs11", "--module", m, "--token", t,
	                              "--pin-source", "stdin"),
	                     NULL);
	free(dir);
	free(store);
}

Test(backend, unreachable_devices_are_refused)
{
	char *store = kwt_store_new(0, 0);
	char *src = pin_source();
	/* nothing listens on port 1 */
	refused_and_unlisted(
	    store, 1, "cannot reach the TPM",
	    CLI_ARGS("backend", "add", "t", "tpm2", "--tcti", "swtpm:host=127.0.0.1,port=1"), NULL);
	refused_and_unlisted(store, 1, "/nonexistent/libnope.so",
	                     CLI_ARGS("backend", "add", "h", "pkcs11", "--module",
	                              "/nonexistent/libnope.so", "--token",
	                              kwt_env("KW_TEST_P11_TOKEN"), "--pin-source", src),
	                     NULL);
	refused_and_unlisted(store, 1, "no-such-module",
	                     CLI_ARGS("backend", "add", "h", "pkcs11", "--module", "no-such-module",
	                              "--token", kwt_env("KW_TEST_P11_TOKEN"), "--pin-source", src),
	                     NULL);
	free(src);
	free(store);
}

Test(backend, bad_arguments_are_usage_errors)
{
	char *store = kwt_store_new(1, 1);
	char *src = pin_source();
	const char *m = kwt_env("KW_TEST_P11_MODULE"), *t = kwt_env("KW_TEST_P11_TOKEN");
	refused_and_unlisted(store, 2, "tpm3", CLI_ARGS("backend", "add", "x", "tpm3"), NULL);
	refused_and_unlisted(store, 2, "NAME", CLI_ARGS("backend", "add", "x"), NULL);
	refused_and_unlisted(store, 2, "NAME", CLI_ARGS("backend", "add"), NULL);
	refused_and_unlisted(store, 2, "NAME", CLI_ARGS("backend", "add", "x", "tpm2", "extra"),
	                     NULL);
	refused_and_unlisted(
	    store, 2, "--module",
	    CLI_ARGS("backend", "add", "x", "pkcs11", "--token", t, "--pin-source", src), NULL);
	refused_and_unlisted(
	    store, 2, "--token",
	    CLI_ARGS("backend", "add", "x", "pkcs11", "--module", m, "--pin-source", src), NULL);
	/* no pin source for a token that requires a login: refused at the token */
	refused_and_unlisted(store, 1, "requires a user PIN: give --pin-source",
	                     CLI_ARGS("backend", "add", "x", "pkcs11", "--module", m, "--token", t),
	                     NULL);
	refused_and_unlisted(store, 2, "pkcs11",
	                     CLI_ARGS("backend", "add", "x", "tpm2", "--module", m), NULL);
	refused_and_unlisted(store, 2, "--bogus",
	                     CLI_ARGS("backend", "add", "x", "tpm2", "--bogus"), NULL);
	refused_and_unlisted(
	    store, 2, "bad backend name",
	    CLI_ARGS("backend", "add", "a/b", "tpm2", "--tcti", kwt_env("KW_TEST_TCTI")), NULL);
	refused_and_unlisted(store, 2, "unexpected", CLI_ARGS("backend", "list", "extra"), NULL);
	refused_and_unlisted(store, 2, "--bogus", CLI_ARGS("backend", "list", "--bogus"), NULL);
	refused_and_unlisted(store, 2, "frob", CLI_ARGS("backend", "frob"), NULL);
	free(src);
	free(store);
}

Test(backend, option_missing_its_value_is_named_as_typed)
{
	char *store = kwt_store_new(1, 1);
	/* not "option '-t'": there is no such option */
	refused_and_unlisted(store, 2, "--tcti", CLI_ARGS("backend", "add", "x", "tpm2", "--tcti"),
	                     NULL);
	refused_and_unlisted(store, 2, "--pin-source",
	                     CLI_ARGS("backend", "add", "x", "pkcs11", "--pin-source"), NULL);
	free(store);
}

/* tpm2-abrmd's TCTI speaks D-Bus through GLib, which prints "** CRITICAL **"
 * lines of its own when there is no bus: the user still sees one line. */
Test(backend, an_unreachable_tpm2_abrmd_gives_one_error_line)
{
	char *store = kwt_store_new(0, 0);
	char *env[] = {"DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/kw-bus", NULL};
	kwt_result r;
	json_t *before = cli_list(store, "backend list");
	cli_refused(store, env, 1, "cannot reach the TPM",
	            CLI_ARGS("backend", "add", "t", "tpm2", "--tcti", "tabrmd:bus_type=session"),
	            &r);
	cr_assert(strstr(r.err, "CRITICAL") == NULL, "GLib's own line leaked: %s", r.err);
	kwt_result_free(&r);
	json_t *after = cli_list(store, "backend list");
	cr_assert(json_equal(before, after));
	json_decref(before);
	json_decref(after);
	/* with KEYWARD_DEBUG the library's own diagnostics are let through */
	char *dbg[] = {"DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/kw-bus", "KEYWARD_DEBUG=1",
	               NULL};
	cli_runv(&r, dbg, store,
	         CLI_ARGS("backend", "add", "t", "tpm2", "--tcti", "tabrmd:bus_type=session"));
	cr_assert_eq(r.status, 1);
	cr_assert(kwt_count_lines(r.err) > 1, "debug output expected: %s", r.err);
	kwt_result_free(&r);
	free(store);
}

/* Issue 14, item 6: a relative file: pin source is stored as an absolute
 * path, so the backend works from any directory. */
Test(backend, relative_pin_file_is_stored_absolute_and_works_elsewhere)
{
	kwt_result r;
	char *store = kwt_store_new(0, 0);
	char *dir = kwt_tmpdir("relpin");
	char *pin = kwt_read_file(kwt_env("KW_TEST_P11_PIN_FILE"), NULL);
	cr_assert_not_null(pin);
	free(kwt_write_file(dir, "user.pin", pin, strlen(pin), 0600));
	char want[4200], *cwd = getcwd(NULL, 0);
	snprintf(want, sizeof(want), "file:%s/user.pin", dir);
	cr_assert_eq(chdir(dir), 0);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("backend", "add", "hsm", "pkcs11", "--module",
	                kwt_env("KW_TEST_P11_MODULE"), "--token", kwt_env("KW_TEST_P11_TOKEN"),
	                "--pin-source", "file:./user.pin"));
	kwt_result_free(&r);
	cr_assert_eq(chdir("/"), 0);
	json_t *list = cli_list(store, "backend list");
	cr_assert_str_eq(cli_js(cli_find_named(list, "hsm"), "pin_source"), want);
	json_decref(list);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "c", "--backend", "hsm", "--subject", "CN=c"));
	kwt_result_free(&r);
	cr_assert_eq(chdir(cwd), 0);
	free(cwd);
	free(pin);
	free(dir);
	free(store);
}
