/*
 * keyward CLI end to end: certificate commands on the TPM backend ("tpm", this
 * program's swtpm), checked against openssl and tpm2-tools.
 */
#include "cli_cert_check.h"

static void create_and_check(const char *name, const char *key_type, const char *subject,
                             const char *shown_subject, const char *const *sans,
                             const char *const *shown_sans, int days)
{
	char *store = kwt_store_new(1, 0);
	cli_create(store, CLI_NOW, name, "tpm", key_type, subject, days, sans);
	cli_expect e = {store,    name,          1,          1,       "tpm",
	                key_type, shown_subject, shown_sans, CLI_NOW, days};
	json_t *j = cli_check_cert(&e);
	cr_assert_str_eq(cli_js(json_object_get(json_object_get(j, "key"), "attributes"), "device"),
	                 "tpm2");
	json_decref(j);
	free(store);
}

Test(cert_tpm, ec_p256_with_sans_matches_the_tpm)
{
	const char *const sans[] = {"DNS:tpm01.example.com", "DNS:*.tpm01.example.com",
	                            "IP:198.51.100.4", "IP:2001:db8:0:1::4", NULL};
	create_and_check("tpm01", "ec-p256", "CN=tpm01.example.com,OU=Ops,O=Example Inc",
	                 "CN=tpm01.example.com,OU=Ops,O=Example Inc", sans, sans, 30);
}

Test(cert_tpm, ec_p384_matches_the_tpm)
{
	const char *const shown[] = {"DNS:p384.example", NULL};
	create_and_check("p384", "ec-p384", "/O=Example/CN=p384.example",
	                 "CN=p384.example,O=Example", NULL, shown, 90);
}

Test(cert_tpm, rsa_2048_matches_the_tpm)
{
	const char *const sans[] = {"DNS:rsa.example", NULL};
	/* a CN that is no host name gives no SAN of its own */
	create_and_check("r2048", "rsa-2048", "CN=Example RSA Server", "CN=Example RSA Server",
	                 sans, sans, 365);
}

Test(cert_tpm, rsa_3072_matches_the_tpm)
{
	const char *const shown[] = {"DNS:r3072.example", NULL};
	create_and_check("r3072", "rsa-3072", "CN=r3072.example", "CN=r3072.example", NULL, shown,
	                 7);
}

Test(cert_tpm, rsa_4096_is_refused_clearly_and_nothing_is_stored)
{
	kwt_result r;
	char *store = kwt_store_new(1, 0);
	cli_refused(store, NULL, 1, "rsa-4096",
	            CLI_ARGS("cert", "create", "big", "--backend", "tpm", "--subject", "CN=big",
	                     "--key", "rsa-4096"),
	            &r);
	cli_assert_err_has(&r, "not support", "rsa-4096 on the TPM");
	kwt_result_free(&r);
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "show", "big");
	/* the name was not taken by the failed attempt */
	cli_create(store, CLI_NOW, "big", "tpm", "rsa-2048", "CN=big", 30, NULL);
	free(store);
}

Test(cert_tpm, renew_new_key_then_reuse_key)
{
	char *store = kwt_store_new(1, 0);
	cli_create(store, CLI_NOW, "bystander", "tpm", "ec-p256", "CN=bystander", 30, NULL);
	cli_scenario_renew(store, "tpm", "renewed", "ec-p256");
	free(store);
}

Test(cert_tpm, delete_forgets_the_keys_and_the_certificate)
{
	char *store = kwt_store_new(1, 0);
	cli_create(store, CLI_NOW, "keeper", "tpm", "ec-p256", "CN=keeper", 30, NULL);
	cli_scenario_delete(store, "tpm", "doomed");
	/* a TPM key lives only as its wrapped blob in the store: no row, no key */
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions"), 1);
	json_decref(cli_show(store, "keeper", 0));
	free(store);
}

/* After a test that stops the swtpm, whatever happened: bring it back. */
static void swtpm_back(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/swtpm.pid", kwt_env("KW_TEST_TMP"));
	if (access(path, F_OK) != 0)
		kwt_swtpm_start();
}

Test(cert_tpm, unreachable_tpm_fails_cleanly_then_recovers, .fini = swtpm_back)
{
	kwt_result r;
	char *store = kwt_store_new(1, 0);
	cli_create(store, CLI_NOW, "t1", "tpm", "ec-p256", "CN=t1.example", 30, NULL);

	kwt_swtpm_stop();
	const char *const cmds[][8] = {
	    {"cert", "create", "t2", "--backend", "tpm", "--subject", "CN=t2.example", NULL},
	    {"cert", "renew", "t1", NULL},
	    {"cert", "renew", "t1", "--reuse-key", NULL},
	    {"cert", "delete", "t1", "--purge", NULL},
	    {"cert", "csr", "t1", NULL},
	    {"cert", "verify", "t1", NULL},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cli_refused(store, NULL, 1, "cannot reach the TPM", cmds[i], &r);
		cli_assert_err_has(&r, kwt_env("KW_TEST_TCTI"), cli_args_str(cmds[i]));
		kwt_result_free(&r);
	}
	/* what only the store holds stays readable */
	json_decref(cli_show(store, "t1", 0));
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "t1"));
	kwt_result_free(&r);

	kwt_swtpm_start();
	/* the same commands work once the TPM is back */
	cli_create(store, CLI_NOW, "t2", "tpm", "ec-p256", "CN=t2.example", 30, NULL);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "t1"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "csr", "t1"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "verify", "t1"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "t1", "--purge"));
	kwt_result_free(&r);
	const char *const sans[] = {"DNS:t2.example", NULL};
	cli_expect e = {store, "t2", 1, 1, "tpm", "ec-p256", "CN=t2.example", sans, CLI_NOW, 30};
	json_decref(cli_check_cert(&e));
	free(store);
}

/* The human output says what --json says. */
Test(cert_tpm, text_output_agrees_with_json)
{
	kwt_result r;
	char want[256];
	char now[] = "KEYWARD_NOW=" CLI_NOW;
	char *env[] = {now, NULL};
	char *store = kwt_store_new(1, 0);
	cli_ok(&r, env, store,
	       CLI_ARGS("cert", "create", "txt", "--backend", "tpm", "--subject", "CN=txt.example",
	                "--key", "ec-p384", "--days", "10"));
	cr_assert(strstr(r.out, "created txt version 1: ec-p384 key in backend tpm, not "
	                        "exportable: yes") != NULL,
	          "create said: %s", r.out);
	cr_assert(strstr(r.out, "expires 2030-01-11T00:00:00Z") != NULL, "create said: %s", r.out);
	kwt_result_free(&r);
	json_t *j = cli_show(store, "txt", 0);

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "show", "txt"));
	const char *const lines[] = {"name:               txt\n",
	                             "version:            1 (current)\n",
	                             "status:             active\n",
	                             "subject:            CN=txt.example\n",
	                             "sans:               DNS:txt.example\n",
	                             "not_before:         2030-01-01T00:00:00Z\n",
	                             "not_after:          2030-01-11T00:00:00Z\n",
	                             "backend:            tpm\n",
	                             "key:                ec-p384, exportable: no, generated on "
	                             "device: yes\n"};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		cr_assert(strstr(r.out, lines[i]) != NULL, "cert show lacks '%s': %s", lines[i],
		          r.out);
	snprintf(want, sizeof(want), "thumbprint_sha256:  %s\n", cli_js(j, "thumbprint_sha256"));
	cr_assert(strstr(r.out, want) != NULL, "cert show: %s", r.out);
	snprintf(want, sizeof(want), "serial:             %s\n", cli_js(j, "serial"));
	cr_assert(strstr(r.out, want) != NULL, "cert show: %s", r.out);
	kwt_result_free(&r);

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "list"));
	cr_assert_eq(kwt_count_lines(r.out), 2, "cert list: %s", r.out);
	cr_assert(strncmp(r.out, "NAME", 4) == 0, "cert list: %s", r.out);
	cr_assert(strstr(r.out, "\ntxt ") && strstr(r.out, " ec-p384 ") &&
	              strstr(r.out, " 2030-01-11T00:00:00Z ") && strstr(r.out, "CN=txt.example"),
	          "cert list: %s", r.out);
	kwt_result_free(&r);

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "verify", "txt"));
	cr_assert(strstr(r.out, "exportable:          no\n") &&
	              strstr(r.out, "generated on device: yes\n") &&
	              strstr(r.out, "certificate matches: yes\n") && strstr(r.out, "fixedTPM"),
	          "cert verify: %s", r.out);
	kwt_result_free(&r);

	/* a self-signed certificate has no chain: --chain adds nothing */
	kwt_result chain;
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "txt"));
	cli_ok(&chain, NULL, store, CLI_ARGS("cert", "export", "txt", "--chain"));
	cr_assert_str_eq(chain.out, r.out);
	kwt_result_free(&r);
	kwt_result_free(&chain);
	json_decref(j);
	free(store);
}

/* cert verify has the TPM certify the key and keeps the evidence with the version. */
Test(cert_tpm, verify_certifies_the_key_and_stores_the_evidence)
{
	kwt_result r;
	char *store = kwt_store_new(1, 0);
	cli_create(store, CLI_NOW, "att", "tpm", "ec-p256", "CN=att.example", 30, NULL);
	json_t *before = cli_show(store, "att", 0);
	const json_t *attrs0 = json_object_get(json_object_get(before, "key"), "attributes");
	cr_assert_null(json_object_get(attrs0, "certify"), "nothing certified before verify");
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = "
	                                  "'cert.certified'"),
	             0);

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "verify", "att", "--json"));
	json_t *v = cli_json(r.out, "cert verify --json");
	kwt_result_free(&r);
	const json_t *c = json_object_get(v, "certify");
	cr_assert(json_is_object(c), "cert verify --json has certify");
	cli_assert_jbool(c, "verified", 1, "certify");
	cr_assert_str_eq(cli_js(c, "certified_name"),
	                 cli_js(json_object_get(v, "attributes"), "name"));
	cr_assert_eq(strlen(cli_js(c, "nonce")), 64, "a 32-byte nonce");
	cr_assert(strlen(cli_js(c, "attest")) > 0 && strlen(cli_js(c, "ak_public")) > 0);

	json_t *after = cli_show(store, "att", 0);
	const json_t *stored = json_object_get(
	    json_object_get(json_object_get(after, "key"), "attributes"), "certify");
	cr_assert(json_is_object(stored), "cert show --json has the stored certify object");
	cr_assert(json_equal(stored, c), "the stored evidence is what verify reported");
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = "
	                                  "'cert.certified'"),
	             1);

	/* each verify uses a fresh nonce */
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "verify", "att", "--json"));
	json_t *v2 = cli_json(r.out, "cert verify --json");
	kwt_result_free(&r);
	cr_assert_str_neq(cli_js(json_object_get(v2, "certify"), "nonce"), cli_js(c, "nonce"));

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "verify", "att"));
	cr_assert(strstr(r.out, "TPM2_Certify:        verified") != NULL, "cert verify: %s", r.out);
	kwt_result_free(&r);
	json_decref(v2);
	json_decref(after);
	json_decref(v);
	json_decref(before);
	free(store);
}
