/*
 * keyward doctor [--repair] [--json]: it finds keys a killed command left on
 * the token, versions whose key is gone (a token edited by hand, a TPM that
 * was cleared), pending versions nothing can merge, a damaged database and an
 * unreachable device; --repair destroys only keyward's own leftovers (objects
 * pkcs11-tool made stay), fails old versions and never touches a current one.
 */
#include "rel_test.h"

/* ---- a kill between the device and the database ---- */

/* Runs `cert create NAME --backend hsm` until its key is on the token, then
 * SIGKILLs it while it waits to record the key: the key stays, unknown. */
static void create_killed_after_keygen(const char *store, const char *name)
{
	char label[64];
	snprintf(label, sizeof(label), "keyward:%s", name);
	FILE *lock = rel_db_lock(store);
	pid_t pid = rel_spawn(rel_kw_argv(store, CLI_ARGS("cert", "create", name, "--backend",
	                                                  "hsm", "--subject", "CN=killed")),
	                      NULL, NULL, NULL);
	int seen = 0;
	for (int i = 0; i < 200 && !seen; i++) {
		seen = rel_p11_label_count(label) >= 2;
		if (!seen)
			usleep(25000);
	}
	usleep(200000); /* the certificate is signed; the commit waits for the lock */
	kill(pid, SIGKILL);
	int st = rel_wait(pid);
	rel_db_unlock(lock);
	cr_assert(seen, "the killed create never made its key on the token");
	cr_assert_eq(st, 128 + SIGKILL, "cert create was not killed mid-way (status %d)", st);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM certs WHERE name = 'lost'"), 0,
	             "the killed create recorded something");
}

static void pkcs11_tool_keypair(const char *label, const char *id_hex)
{
	int st = cli_status("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                    "--keypairgen --key-type EC:prime256v1 --label '%s' --id %s "
	                    ">/dev/null 2>&1",
	                    kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                    kwt_env("KW_TEST_P11_PIN"), label, id_hex);
	cr_assert_eq(st, 0, "pkcs11-tool could not make key %s", label);
}

static char *key_id_hex(const char *store, const char *name, int version)
{
	return cli_out(
	    "sqlite3 '%s/keyward.db' \"SELECT lower(hex(v.key_ref)) FROM versions v JOIN "
	    "certs c ON c.id = v.cert_id WHERE c.name = '%s' AND v.version = %d\"",
	    store, name, version);
}

static void p11_delete_private(const char *id_hex)
{
	int st = cli_status("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                    "--delete-object --type privkey --id %s >/dev/null 2>&1",
	                    kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                    kwt_env("KW_TEST_P11_PIN"), id_hex);
	cr_assert_eq(st, 0, "pkcs11-tool could not delete private key %s", id_hex);
}

static const char *version_status(const char *store, const char *name, int version)
{
	static char buf[32];
	char *s =
	    cli_out("sqlite3 '%s/keyward.db' \"SELECT v.status FROM versions v JOIN certs c ON "
	            "c.id = v.cert_id WHERE c.name = '%s' AND v.version = %d\"",
	            store, name, version);
	snprintf(buf, sizeof(buf), "%s", s);
	free(s);
	return buf;
}

/* doctor (no repair) changes neither the store nor the token. */
static json_t *doctor_read_only(const char *store, int want_status)
{
	json_t *rep = NULL;
	cli_snap before = cli_snap_take(store);
	int st = rel_doctor(store, 0, &rep);
	cli_snap_assert_same(&before, store, "doctor without --repair");
	cr_assert_eq(st, want_status, "doctor exited %d: %s", st, json_dumps(rep, 0));
	return rep;
}

Test(doctor, clean_store_exits_0)
{
	rel_own_token("doctor-1");
	char *store = kwt_store_new(1, 1);
	cli_create(store, NULL, "web", "hsm", "ec-p256", "CN=web", 30, NULL);
	cli_create(store, NULL, "api", "tpm", "ec-p256", "CN=api", 30, NULL);
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("doctor"));
	cr_assert(strstr(r.out, "agree") != NULL, "doctor said: %s", r.out);
	kwt_result_free(&r);
	json_t *rep = doctor_read_only(store, 0);
	cr_assert_str_eq(cli_js(rep, "integrity"), "ok");
	cr_assert_eq(json_integer_value(json_object_get(rep, "found")), 0);
	json_decref(rep);
	CLI_REFUSED(store, 2, "unexpected argument", "doctor", "extra");
	CLI_REFUSED(store, 2, "--bogus", "doctor", "--bogus");
	free(store);
}

Test(doctor, destroys_the_key_a_kill_left_and_leaves_foreign_objects)
{
	rel_own_token("doctor-2");
	char *store = kwt_store_new(0, 1);
	cli_create(store, NULL, "kept", "hsm", "ec-p256", "CN=kept", 30, NULL);
	/* other software's objects, one even dressed like ours but with another CKA_ID shape */
	pkcs11_tool_keypair("foreign", "0102");
	pkcs11_tool_keypair("keyward:lookalike", "0a0b0c");
	pkcs11_tool_keypair("other-app", "00112233445566778899aabbccddeeff");
	create_killed_after_keygen(store, "lost");
	int objects = kwt_p11_object_count();

	json_t *rep = doctor_read_only(store, 1);
	cr_assert_eq(json_integer_value(json_object_get(rep, "found")), 1, "%s",
	             json_dumps(rep, 0));
	json_t *p = json_array_get(json_object_get(rep, "problems"), 0);
	cr_assert_str_eq(cli_js(p, "kind"), "orphan_key");
	cr_assert_str_eq(cli_js(p, "label"), "keyward:lost");
	cr_assert_str_eq(cli_js(p, "backend"), "hsm");
	json_decref(rep);
	kwt_result r;
	cli_runv(&r, NULL, store, CLI_ARGS("doctor"));
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.out, "keyward:lost") != NULL, "doctor said: %s", r.out);
	cr_assert(kwt_count_lines(r.err) == 1 && strncmp(r.err, "keyward: ", 9) == 0, "stderr: %s",
	          r.err);
	kwt_result_free(&r);

	cli_runv(&r, NULL, store, CLI_ARGS("doctor", "--repair"));
	cr_assert_eq(r.status, 0, "doctor --repair: %s%s", r.out, r.err);
	cr_assert(strstr(r.out, "repaired") && strstr(r.out, "destroyed"), "said: %s", r.out);
	kwt_result_free(&r);
	cr_assert_eq(rel_p11_label_count("keyward:lost"), 0, "the leftover key is still there");
	cr_assert_eq(kwt_p11_object_count(), objects - 2, "doctor removed more than the leftover");
	cr_assert_eq(rel_p11_label_count("foreign"), 2, "pkcs11-tool's key was touched");
	cr_assert_eq(rel_p11_label_count("keyward:lookalike"), 2, "a lookalike was touched");
	cr_assert_eq(rel_p11_label_count("other-app"), 2, "another app's key was touched");
	cr_assert_eq(cli_sql_count(store,
	                           "SELECT COUNT(*) FROM events WHERE type = "
	                           "'doctor.key_destroyed' AND details LIKE '%keyward:lost%'"),
	             1);
	json_decref(doctor_read_only(store, 0));
	/* the name is free and the kept certificate still signs */
	cli_create(store, NULL, "lost", "hsm", "ec-p256", "CN=lost", 30, NULL);
	free(rel_sign_all(store, "kept lost", "after repair"));
	free(store);
}

Test(doctor, fails_old_versions_whose_key_is_gone_and_reports_the_current)
{
	rel_own_token("doctor-3");
	char *store = kwt_store_new(0, 1);
	kwt_result r;
	cli_create(store, NULL, "web", "hsm", "ec-p256", "CN=web", 30, NULL);
	for (int i = 0; i < 2; i++) {
		cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "web", "--new-key"));
		kwt_result_free(&r);
	}
	char *v1 = key_id_hex(store, "web", 1), *v3 = key_id_hex(store, "web", 3);
	p11_delete_private(v1);
	p11_delete_private(v3);
	json_t *rep = doctor_read_only(store, 1);
	cr_assert_eq(rel_problems(rep, "key_missing"), 2, "%s", json_dumps(rep, 0));
	json_decref(rep);

	cli_runv(&r, NULL, store, CLI_ARGS("doctor", "--repair", "--json"));
	cr_assert_eq(r.status, 1, "the current version's missing key must remain a problem");
	rep = cli_json(r.out, "doctor --repair --json");
	cr_assert_eq(json_integer_value(json_object_get(rep, "repaired")), 1);
	cr_assert_eq(json_integer_value(json_object_get(rep, "remaining")), 1);
	cr_assert(strstr(r.out, "renew with a new key") != NULL, "no advice: %s", r.out);
	cr_assert_eq(kwt_count_lines(r.err), 1, "stderr: %s", r.err);
	kwt_result_free(&r);
	json_decref(rep);
	cr_assert_str_eq(version_status(store, "web", 1), "failed");
	cr_assert_str_eq(version_status(store, "web", 2), "superseded");
	cr_assert_str_eq(version_status(store, "web", 3), "active", "the current version changed");
	cr_assert_eq(cli_sql_count(store, "SELECT current_version FROM certs WHERE name = 'web'"),
	             3);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = "
	                                  "'doctor.version_failed' AND version = 1"),
	             1);
	/* what doctor advises works: a new key, and then all is well */
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "web", "--new-key"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("doctor", "--repair"));
	kwt_result_free(&r);
	json_decref(doctor_read_only(store, 0));
	free(rel_sign_all(store, "web", "after the advice"));
	free(v1);
	free(v3);
	free(store);
}

Test(doctor, cleared_tpm_keys_are_missing)
{
	char *store = kwt_store_new(1, 0);
	kwt_result r;
	cli_create(store, NULL, "edge", "tpm", "ec-p256", "CN=edge", 30, NULL);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "edge", "--new-key"));
	kwt_result_free(&r);
	json_decref(doctor_read_only(store, 0));
	/* a new owner seed: every blob wrapped under the old SRK is dead */
	cr_assert_eq(cli_status("tpm2_clear -T '%s' -c p >/dev/null 2>&1", kwt_env("KW_TEST_TCTI")),
	             0, "tpm2_clear failed");
	json_t *rep = doctor_read_only(store, 1);
	cr_assert_eq(rel_problems(rep, "key_missing"), 2, "%s", json_dumps(rep, 0));
	cr_assert(strstr(json_dumps(rep, 0), "cleared") != NULL, "no reason given: %s",
	          json_dumps(rep, 0));
	json_decref(rep);
	cr_assert_eq(rel_doctor(store, 1, &rep), 1);
	json_decref(rep);
	cr_assert_str_eq(version_status(store, "edge", 1), "failed");
	cr_assert_str_eq(version_status(store, "edge", 2), "active");
	free(store);
}

Test(doctor, pending_version_nothing_can_merge)
{
	rel_own_token("doctor-4");
	char *store = kwt_store_new(0, 1);
	kwt_result r;
	cli_create(store, NULL, "web", "hsm", "ec-p256", "CN=web", 30, NULL);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "web"));
	kwt_result_free(&r);
	/* as a half-finished merge might leave it: version 1 pending below current 2 */
	cr_assert_eq(cli_status("sqlite3 '%s/keyward.db' \"UPDATE versions SET status = 'pending' "
	                        "WHERE version = 1\"",
	                        store),
	             0);
	json_t *rep = doctor_read_only(store, 1);
	cr_assert_eq(rel_problems(rep, "pending_orphaned"), 1, "%s", json_dumps(rep, 0));
	json_decref(rep);
	cr_assert_eq(rel_doctor(store, 1, &rep), 0, "%s", json_dumps(rep, 0));
	json_decref(rep);
	cr_assert_str_eq(version_status(store, "web", 1), "failed");
	cr_assert_str_eq(version_status(store, "web", 2), "active");
	free(store);
}

Test(doctor, damaged_database_is_reported_and_nothing_repaired)
{
	rel_own_token("doctor-5");
	char *store = kwt_store_new(0, 1);
	cli_create(store, NULL, "web", "hsm", "ec-p256", "CN=web", 30, NULL);
	pkcs11_tool_keypair("keyward:ghost", "ffeeddccbbaa99887766554433221100");
	cr_assert_eq(
	    cli_status("sqlite3 '%s/keyward.db' \"PRAGMA foreign_keys=OFF; INSERT INTO "
	               "versions (cert_id, version, status, backend_id, key_type, key_ref,"
	               " issuer, created_at) SELECT 999, 1, 'active', backend_id, key_type,"
	               " x'00', issuer, 0 FROM versions LIMIT 1\"",
	               store),
	    0);
	cli_snap before = cli_snap_take(store);
	json_t *rep = NULL;
	cr_assert_eq(rel_doctor(store, 1, &rep), 1);
	cli_snap_assert_same(&before, store, "doctor --repair on a damaged store");
	cr_assert_neq(strcmp(cli_js(rep, "integrity"), "ok"), 0);
	cr_assert_eq(rel_problems(rep, "integrity"), 1, "%s", json_dumps(rep, 0));
	cr_assert_eq(rel_problems(rep, "orphan_key"), 1, "%s", json_dumps(rep, 0));
	cr_assert_eq(json_integer_value(json_object_get(rep, "repaired")), 0);
	json_decref(rep);
	cr_assert_eq(rel_p11_label_count("keyward:ghost"), 2);
	free(store);
}

Test(doctor, unreachable_token_is_a_problem)
{
	rel_own_token("doctor-6");
	char *store = kwt_store_new(0, 1);
	cli_create(store, NULL, "web", "hsm", "ec-p256", "CN=web", 30, NULL);
	char *conf = kwt_write_file(kwt_env("KW_TEST_TMP"), "nowhere.conf",
	                            "directories.tokendir = /nonexistent/tokens\n", 42, 0600);
	char env[512];
	snprintf(env, sizeof(env), "SOFTHSM2_CONF=%s", conf);
	char *envv[] = {env, NULL};
	kwt_result r;
	cli_runv(&r, envv, store, CLI_ARGS("doctor", "--repair", "--json"));
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	json_t *rep = cli_json(r.out, "doctor --json");
	cr_assert_eq(rel_problems(rep, "backend_unreachable"), 1, "%s", r.out);
	cr_assert_eq(kwt_count_lines(r.err), 1);
	json_decref(rep);
	kwt_result_free(&r);
	json_decref(doctor_read_only(store, 0));
	free(conf);
	free(store);
}
