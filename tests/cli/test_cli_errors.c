/*
 * keyward CLI end to end: bad input. Every refusal is one stderr line starting
 * "keyward: ", exit 2 for usage and 1 for a failed operation, and leaves the
 * store rows and the token's objects exactly as they were.
 */
#include "cli_test.h"

/* A store with both backends and one certificate "exists" on each device kind
 * (built the same way by every test here: under valgrind, checked once). */
static char *store_with_certs(void)
{
	char *store = kwt_store_new(1, 1);
	cli_create_repeat(store, CLI_NOW, "exists", "hsm", "ec-p256", "CN=exists.example", 30,
	                  NULL);
	cli_create_repeat(store, CLI_NOW, "exists-tpm", "tpm", "ec-p256", "CN=exists-tpm.example",
	                  30, NULL);
	return store;
}

static const char *const backends[] = {"hsm", "tpm"};

Test(errors, malformed_subjects_are_refused)
{
	char *store = store_with_certs();
	const char *const bad[] = {"CN", "FOO=bar", "CN=a,=b", "",      "CN=a,",
	                           "=x", "CN=",     "/CN",     "C=USA", "CN=a,O"};
	for (size_t b = 0; b < 2; b++)
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			CLI_REFUSED(store, 1, "subject", "cert", "create", "newcert", "--backend",
			            backends[b], "--subject", bad[i]);
	free(store);
}

Test(errors, bad_sans_are_refused)
{
	char *store = store_with_certs();
	const char *const bad[] = {
	    "DNS:-bad-",   "IP:999.1.1.1", "URL:x",         "DNS:",     "IP:",        "DNS:a..b",
	    "DNS:a b.com", "email:a@b.c",  "DNS:trailing.", "IP:1.2.3", "web.example"};
	for (size_t b = 0; b < 2; b++)
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			CLI_REFUSED(store, 1, "SAN", "cert", "create", "newcert", "--backend",
			            backends[b], "--subject", "CN=newcert", "--san",
			            "DNS:ok.example", "--san", bad[i]);
	/* the message quotes the offending SAN */
	CLI_REFUSED(store, 1, "IP:999.1.1.1", "cert", "create", "newcert", "--backend", "hsm",
	            "--subject", "CN=newcert", "--san", "IP:999.1.1.1");
	free(store);
}

Test(errors, unknown_key_type_is_a_usage_error)
{
	char *store = store_with_certs();
	const char *const bad[] = {"ec-p999", "RSA-2048", "rsa-1024", "", "ed25519"};
	for (size_t b = 0; b < 2; b++)
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			CLI_REFUSED(store, 2, "unknown key type", "cert", "create", "newcert",
			            "--backend", backends[b], "--subject", "CN=newcert", "--key",
			            bad[i]);
	free(store);
}

Test(errors, unknown_backend_is_refused)
{
	char *store = store_with_certs();
	CLI_REFUSED(store, 1, "unknown backend 'nope'", "cert", "create", "newcert", "--backend",
	            "nope", "--subject", "CN=newcert");
	CLI_REFUSED(store, 2, "backend", "cert", "create", "newcert", "--backend", "", "--subject",
	            "CN=newcert");
	free(store);
}

Test(errors, duplicate_name_is_refused_before_touching_a_device)
{
	char *store = store_with_certs();
	for (size_t b = 0; b < 2; b++) {
		CLI_REFUSED(store, 1, "already exists", "cert", "create", "exists", "--backend",
		            backends[b], "--subject", "CN=exists.example");
		CLI_REFUSED(store, 1, "already exists", "cert", "create", "exists-tpm", "--backend",
		            backends[b], "--subject", "CN=other", "--key", "rsa-2048");
	}
	free(store);
}

Test(errors, unknown_certificate_for_every_command)
{
	char *store = store_with_certs();
	const char *const cmds[][5] = {
	    {"show", "nope", NULL},
	    {"show", "nope", "--json", NULL},
	    {"export", "nope", NULL},
	    {"csr", "nope", NULL},
	    {"renew", "nope", NULL},
	    {"renew", "nope", "--reuse-key", NULL},
	    {"delete", "nope", NULL},
	    {"verify", "nope", NULL},
	    {"verify", "nope", "--json", NULL},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *args[8] = {"cert"};
		for (size_t k = 0; cmds[i][k]; k++)
			args[k + 1] = cmds[i][k];
		cli_refused(store, NULL, 1, "unknown certificate 'nope'", args, NULL);
	}
	free(store);
}

Test(errors, unknown_version_is_refused)
{
	char *store = store_with_certs();
	const char *const names[] = {"exists", "exists-tpm"};
	for (size_t n = 0; n < 2; n++) {
		CLI_REFUSED(store, 1, "no version 7", "cert", "show", names[n], "--version", "7");
		CLI_REFUSED(store, 1, "no version 7", "cert", "show", names[n], "--version", "7",
		            "--json");
		CLI_REFUSED(store, 1, "no version 7", "cert", "export", names[n], "--version", "7");
		CLI_REFUSED(store, 1, "no version 2", "cert", "verify", names[n], "--version", "2");
	}
	free(store);
}

Test(errors, bad_arguments_are_usage_errors)
{
	char *store = store_with_certs();
	/* options */
	CLI_REFUSED(store, 2, "--bogus", "cert", "create", "n", "--backend", "hsm", "--subject",
	            "CN=n", "--bogus");
	CLI_REFUSED(store, 2, "--bogus", "cert", "show", "exists", "--bogus");
	CLI_REFUSED(store, 2, "--bogus", "cert", "list", "--bogus");
	CLI_REFUSED(store, 2, "--json", "cert", "export", "exists", "--json");
	CLI_REFUSED(store, 2, "--chain", "cert", "csr", "exists", "--chain");
	CLI_REFUSED(store, 2, "exclude", "cert", "renew", "exists", "--new-key", "--reuse-key");
	CLI_REFUSED(store, 2, "--force", "cert", "delete", "exists", "--force");
	/* NAME */
	CLI_REFUSED(store, 2, "NAME", "cert", "create", "--backend", "hsm", "--subject", "CN=n");
	CLI_REFUSED(store, 2, "NAME", "cert", "create", "a", "b", "--backend", "hsm", "--subject",
	            "CN=n");
	CLI_REFUSED(store, 2, "NAME", "cert", "show");
	CLI_REFUSED(store, 2, "NAME", "cert", "show", "exists", "exists-tpm");
	CLI_REFUSED(store, 2, "NAME", "cert", "export");
	CLI_REFUSED(store, 2, "NAME", "cert", "csr");
	CLI_REFUSED(store, 2, "NAME", "cert", "renew");
	CLI_REFUSED(store, 2, "NAME", "cert", "delete");
	CLI_REFUSED(store, 2, "NAME", "cert", "verify");
	CLI_REFUSED(store, 2, "unexpected", "cert", "list", "exists");
	CLI_REFUSED(store, 2, "bad certificate name", "cert", "create", "bad/name", "--backend",
	            "hsm", "--subject", "CN=n");
	CLI_REFUSED(store, 2, "bad certificate name", "cert", "create",
	            "a123456789012345678901234567890123456789012345678901234567890123456789",
	            "--backend", "hsm", "--subject", "CN=n");
	/* required options */
	CLI_REFUSED(store, 2, "--backend", "cert", "create", "n", "--subject", "CN=n");
	CLI_REFUSED(store, 2, "--subject", "cert", "create", "n", "--backend", "hsm");
	/* numbers */
	const char *const days[] = {"abc", "0", "-5", "12x", "36501", ""};
	for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++)
		CLI_REFUSED(store, 2, "--days", "cert", "create", "n", "--backend", "hsm",
		            "--subject", "CN=n", "--days", days[i]);
	const char *const versions[] = {"abc", "0", "-1", "1000001"};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		CLI_REFUSED(store, 2, "--version", "cert", "show", "exists", "--version",
		            versions[i]);
		CLI_REFUSED(store, 2, "--version", "cert", "export", "exists", "--version",
		            versions[i]);
		CLI_REFUSED(store, 2, "--version", "cert", "verify", "exists", "--version",
		            versions[i]);
	}
	free(store);
}

Test(errors, option_missing_its_value_is_named_as_typed)
{
	char *store = store_with_certs();
	/* the user typed --version / --days / --out: the message must not talk about
	 * an option '-v' that does not exist */
	CLI_REFUSED(store, 2, "--version", "cert", "show", "exists", "--version");
	CLI_REFUSED(store, 2, "--days", "cert", "create", "n", "--backend", "hsm", "--subject",
	            "CN=n", "--days");
	CLI_REFUSED(store, 2, "--out", "cert", "export", "exists", "--out");
	free(store);
}

Test(errors, option_that_does_not_apply_is_named_as_typed)
{
	char *store = store_with_certs();
	/* an option with a value: the message must name the option, not its value */
	CLI_REFUSED(store, 2, "--out", "cert", "show", "exists", "--out", "x.pem");
	CLI_REFUSED(store, 2, "--version", "cert", "csr", "exists", "--version", "1");
	free(store);
}

Test(errors, malformed_keyward_now_is_a_usage_error)
{
	char *store = store_with_certs();
	char bad[] = "KEYWARD_NOW=yesterday";
	char *env[] = {bad, NULL};
	cli_refused(store, env, 2, "KEYWARD_NOW",
	            CLI_ARGS("cert", "create", "n", "--backend", "hsm", "--subject", "CN=n"), NULL);
	cli_refused(store, env, 2, "KEYWARD_NOW", CLI_ARGS("cert", "renew", "exists"), NULL);
	free(store);
}

Test(errors, unknown_acme_issuer_is_refused)
{
	char *store = store_with_certs();
	CLI_REFUSED(store, 1, "no ACME issuer 'le'", "cert", "create", "n", "--backend", "hsm",
	            "--subject", "CN=n", "--issuer", "acme:le");
	free(store);
}

Test(errors, export_to_an_unwritable_place_fails_without_leftovers)
{
	kwt_result r;
	char *store = store_with_certs();
	char *dir = kwt_tmpdir("out");
	char path[4096];
	snprintf(path, sizeof(path), "%s/missing/c.pem", dir);
	CLI_REFUSED(store, 1, "cannot write", "cert", "export", "exists", "--out", path);
	snprintf(path, sizeof(path), "%s/missing/c.csr", dir);
	CLI_REFUSED(store, 1, "cannot write", "cert", "csr", "exists", "--out", path);
	/* and nothing half-written in a writable place either: a good export replaces
	 * the file whole */
	snprintf(path, sizeof(path), "%s/c.pem", dir);
	free(kwt_write_file(dir, "c.pem", "old\n", 4, 0644));
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "exists", "--out", path));
	kwt_result_free(&r);
	char *pem = kwt_read_file(path, NULL);
	cr_assert(strncmp(pem, "-----BEGIN CERTIFICATE-----", 27) == 0);
	free(pem);
	cr_assert_eq(cli_status("test $(ls -A '%s' | wc -l) -eq 1", dir), 0,
	             "export left temporary files in %s", dir);
	free(dir);
	free(store);
}
