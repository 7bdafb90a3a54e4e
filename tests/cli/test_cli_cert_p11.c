/*
 * keyward CLI end to end: certificate commands on the PKCS#11 backend ("hsm",
 * this program's SoftHSM token), checked against openssl, pkcs11-tool and
 * p11tool.
 */
#include "cli_cert_check.h"

#define WRONG_PIN "wrong-pin-7731"

/* Creates one certificate on "hsm" in a fresh store and checks everything. */
static void create_and_check(const char *name, const char *key_type, const char *subject,
                             const char *shown_subject, const char *const *sans,
                             const char *const *shown_sans, int days)
{
	char label[128];
	char *store = kwt_store_new(0, 1);
	int objects0 = kwt_p11_object_count();
	snprintf(label, sizeof(label), "keyward:%s", name);
	cli_create(store, CLI_NOW, name, "hsm", key_type, subject, days, sans);
	cr_assert_eq(kwt_p11_object_count(), objects0 + 3,
	             "a new key adds a private key, a public key and its certificate to the token");
	cr_assert_eq(cli_p11_label_count(label), 3, "objects labelled %s", label);
	cli_expect e = {store,    name,          1,          1,       "hsm",
	                key_type, shown_subject, shown_sans, CLI_NOW, days};
	json_decref(cli_check_cert(&e));
	free(store);
}

Test(cert_p11, ec_p256_with_sans_matches_the_token)
{
	const char *const sans[] = {"DNS:web01.example.com", "DNS:www.example.com", "IP:192.0.2.10",
	                            "IP:2001:db8::1", NULL};
	create_and_check("web01", "ec-p256", "CN=web01.example.com,O=Example Inc,C=US",
	                 "CN=web01.example.com,O=Example Inc,C=US", sans, sans, 30);
}

Test(cert_p11, ec_p384_slash_subject_and_san_from_cn)
{
	/* OpenSSL's slash form is written most significant first */
	const char *const shown[] = {"DNS:api.example.de", NULL};
	create_and_check("api", "ec-p384", "/C=DE/O=Beispiel GmbH/CN=api.example.de",
	                 "CN=api.example.de,O=Beispiel GmbH,C=DE", NULL, shown, 397);
}

Test(cert_p11, rsa_2048_with_ip_cn_matches_the_token)
{
	const char *const shown[] = {"IP:192.0.2.7", NULL};
	create_and_check("r2048", "rsa-2048", "CN=192.0.2.7", "CN=192.0.2.7", NULL, shown, 1);
}

Test(cert_p11, rsa_4096_matches_the_token)
{
	const char *const sans[] = {"DNS:big.example", NULL};
	create_and_check("r4096", "rsa-4096", "CN=big.example", "CN=big.example", sans, sans, 365);
}

Test(cert_p11, rsa_3072_matches_the_token)
{
	const char *const sans[] = {"DNS:mid.example", "IP:192.0.2.7", NULL};
	create_and_check("r3072", "rsa-3072", "CN=mid.example", "CN=mid.example", sans, sans, 90);
}

Test(cert_p11, renew_new_key_then_reuse_key)
{
	char *store = kwt_store_new(0, 1);
	/* another certificate, so that list has to pick */
	cli_create(store, CLI_NOW, "bystander", "hsm", "ec-p256", "CN=bystander", 30, NULL);
	cli_scenario_renew(store, "hsm", "renewed", "ec-p256");
	free(store);
}

Test(cert_p11, delete_destroys_the_keys_on_the_token)
{
	char *store = kwt_store_new(0, 1);
	cli_create(store, CLI_NOW, "keeper", "hsm", "ec-p256", "CN=keeper", 30, NULL);
	cli_scenario_delete(store, "hsm", "doomed");
	/* the other certificate and its key are untouched */
	json_t *j = cli_show(store, "keeper", 0);
	cr_assert_eq(cli_p11_label_count("keyward:keeper"), 3);
	json_decref(j);
	free(store);
}

/* backend add NAME pkcs11 ... --pin-source SRC (with env entries). */
static void add_hsm(const char *store, const char *name, const char *source, char *const env[])
{
	kwt_result r;
	cli_ok(&r, env, store,
	       CLI_ARGS("backend", "add", name, "pkcs11", "--module", kwt_env("KW_TEST_P11_MODULE"),
	                "--token", kwt_env("KW_TEST_P11_TOKEN"), "--pin-source", source));
	kwt_result_free(&r);
}

/* The failure names the token, says PIN, and shows no PIN. */
static void assert_pin_refusal(kwt_result *r, const char *what)
{
	char token[128];
	snprintf(token, sizeof(token), "'%s'", kwt_env("KW_TEST_P11_TOKEN"));
	cli_assert_err_has(r, token, what);
	cli_assert_err_has(r, "PIN", what);
	cli_assert_err_lacks(r, WRONG_PIN, what);
	cli_assert_err_lacks(r, kwt_env("KW_TEST_P11_PIN"), what);
	kwt_result_free(r);
}

Test(cert_p11, wrong_pin_in_pin_file_fails_naming_the_token)
{
	char *store = kwt_store_new(0, 1);
	char *dir = kwt_tmpdir("pin");
	char pin[128], source[4096];
	kwt_result r;
	snprintf(pin, sizeof(pin), "%s\n", kwt_env("KW_TEST_P11_PIN"));
	char *file = kwt_write_file(dir, "user.pin", pin, strlen(pin), 0600);
	snprintf(source, sizeof(source), "file:%s", file);
	add_hsm(store, "hsm2", source, NULL);
	cli_create(store, CLI_NOW, "pinned", "hsm2", "ec-p256", "CN=pinned", 30, NULL);

	/* the admin (or an attacker) rewrites the pin file */
	free(kwt_write_file(dir, "user.pin", WRONG_PIN "\n", strlen(WRONG_PIN) + 1, 0600));
	const char *const cmds[][8] = {
	    {"cert", "create", "other", "--backend", "hsm2", "--subject", "CN=other", NULL},
	    {"cert", "renew", "pinned", NULL},
	    {"cert", "renew", "pinned", "--reuse-key", NULL},
	    {"cert", "csr", "pinned", NULL},
	    {"cert", "verify", "pinned", NULL},
	    {"cert", "delete", "pinned", "--purge", NULL},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cli_refused(store, NULL, 1, "wrong PIN", cmds[i], &r);
		assert_pin_refusal(&r, cli_args_str(cmds[i]));
	}
	/* reading from the store needs no PIN */
	json_decref(cli_show(store, "pinned", 0));

	/* fixed: everything works again */
	free(kwt_write_file(dir, "user.pin", pin, strlen(pin), 0600));
	int objects = kwt_p11_object_count();
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "pinned", "--purge"));
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects - 3);
	free(file);
	free(dir);
	free(store);
}

Test(cert_p11, wrong_pin_from_env_fails_naming_the_token)
{
	char *store = kwt_store_new(0, 1);
	char good[256];
	char bad[] = "KW_CLI_TEST_PIN=" WRONG_PIN;
	kwt_result r;
	snprintf(good, sizeof(good), "KW_CLI_TEST_PIN=%s", kwt_env("KW_TEST_P11_PIN"));
	char *good_env[] = {good, NULL};
	char *bad_env[] = {bad, NULL};
	add_hsm(store, "hsm-env", "env:KW_CLI_TEST_PIN", good_env);

	cli_refused(store, bad_env, 1, "wrong PIN",
	            CLI_ARGS("cert", "create", "e1", "--backend", "hsm-env", "--subject", "CN=e1"),
	            &r);
	assert_pin_refusal(&r, "create with a wrong env PIN");

	/* unset: says which variable */
	cli_refused(store, NULL, 1, "KW_CLI_TEST_PIN",
	            CLI_ARGS("cert", "create", "e1", "--backend", "hsm-env", "--subject", "CN=e1"),
	            &r);
	cli_assert_err_has(&r, "not set", "create with the PIN variable unset");
	kwt_result_free(&r);

	int objects = kwt_p11_object_count();
	cli_ok(&r, good_env, store,
	       CLI_ARGS("cert", "create", "e1", "--backend", "hsm-env", "--subject", "CN=e1"));
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects + 3);
	free(store);
}

Test(cert_p11, pin_file_opened_to_others_is_refused_with_chmod_advice)
{
	char *store = kwt_store_new(0, 1);
	char *dir = kwt_tmpdir("pin");
	char pin[128], source[4096];
	kwt_result r;
	snprintf(pin, sizeof(pin), "%s\n", kwt_env("KW_TEST_P11_PIN"));
	char *file = kwt_write_file(dir, "user.pin", pin, strlen(pin), 0600);
	snprintf(source, sizeof(source), "file:%s", file);
	add_hsm(store, "hsm-perm", source, NULL);
	cli_create(store, CLI_NOW, "perm", "hsm-perm", "ec-p256", "CN=perm", 30, NULL);

	cr_assert_eq(chmod(file, 0644), 0);
	const char *const cmds[][8] = {
	    {"cert", "create", "perm2", "--backend", "hsm-perm", "--subject", "CN=perm2", NULL},
	    {"cert", "renew", "perm", NULL},
	    {"cert", "delete", "perm", "--purge", NULL},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cli_refused(store, NULL, 1, "chmod 600", cmds[i], &r);
		cli_assert_err_has(&r, file, cli_args_str(cmds[i]));
		cli_assert_err_lacks(&r, kwt_env("KW_TEST_P11_PIN"), cli_args_str(cmds[i]));
		kwt_result_free(&r);
	}
	cr_assert_eq(chmod(file, 0600), 0);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "perm"));
	kwt_result_free(&r);
	free(file);
	free(dir);
	free(store);
}

Test(cert_p11, key_destroyed_outside_keyward_is_reported_and_delete_still_works)
{
	char *store = kwt_store_new(0, 1);
	kwt_result r;
	cli_create(store, CLI_NOW, "gone", "hsm", "ec-p256", "CN=gone", 30, NULL);
	json_t *j = cli_show(store, "gone", 0);
	const char *id = cli_js(json_object_get(json_object_get(j, "key"), "attributes"), "CKA_ID");
	int objects = kwt_p11_object_count();
	cr_assert_eq(cli_status("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                        "--delete-object --type privkey --id %s >/dev/null 2>&1",
	                        kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                        kwt_env("KW_TEST_P11_PIN"), id),
	             0);
	cr_assert_eq(kwt_p11_object_count(), objects - 1);

	/* verify reads custody from the device: it must not vouch for a missing key */
	CLI_REFUSED(store, 1, id, "cert", "verify", "gone");
	CLI_REFUSED(store, 1, id, "cert", "csr", "gone");
	/* purging finishes the job: the public half goes too, the certificate goes */
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "gone", "--purge"));
	kwt_result_free(&r);
	cr_assert_eq(cli_p11_label_count("keyward:gone"), 0,
	             "cert delete left the public key object of a key whose private half was "
	             "already gone (%d objects on the token, expected %d)",
	             kwt_p11_object_count(), objects - 2);
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "show", "gone");
	json_decref(j);
	free(store);
}

/* A PKCS#11 token has no TPM2_Certify: verify reports none and stores none. */
Test(cert_p11, verify_has_no_certify)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	cli_create(store, CLI_NOW, "nocert", "hsm", "ec-p256", "CN=nocert", 30, NULL);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "verify", "nocert", "--json"));
	json_t *v = cli_json(r.out, "cert verify --json");
	kwt_result_free(&r);
	cr_assert_str_eq(cli_js(v, "backend"), "hsm");
	cr_assert_null(json_object_get(v, "certify"), "no certify for a PKCS#11 key");
	json_t *j = cli_show(store, "nocert", 0);
	cr_assert_null(
	    json_object_get(json_object_get(json_object_get(j, "key"), "attributes"), "certify"));
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = "
	                                  "'cert.certified'"),
	             0);
	json_decref(j);
	json_decref(v);
	free(store);
}
