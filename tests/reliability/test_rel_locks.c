/*
 * Commands that make or destroy keys exclude each other (issue 14, item 4).
 * The attack: doctor --repair looping while cert renew ran destroyed the key
 * renew had just made (doctor.key_destroyed K, then cert.renewed with key K).
 * Here p11-barrier.so holds a renewal right after C_GenerateKeyPair: the new
 * key is on the token and no row names it yet, the moment doctor took it for
 * an orphan. doctor --repair started then must wait for the renewal, destroy
 * nothing, and the renewed version must sign with its key.
 */
#include "rel_test.h"

/* A store whose backend bh reaches a token of this test's own (doctor
 * --repair destroys keys no row of its store names: other tests' keys on a
 * shared token would be fair game) through p11-barrier.so. */
static char *barrier_store(int with_tpm)
{
	kwt_result r;
	char src[4200], label[64];
	static int n;
	snprintf(label, sizeof(label), "kw-locks-%d-%d", (int)getpid(), ++n);
	rel_own_token(label);
	cr_assert_eq(setenv("KWB_P11_BARRIER_REAL", kwt_env("KW_TEST_P11_MODULE"), 1), 0);
	snprintf(src, sizeof(src), "file:%s", kwt_env("KW_TEST_P11_PIN_FILE"));
	char *store = kwt_store_new(with_tpm, 0);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("backend", "add", "bh", "pkcs11", "--module",
	                kwt_env("KW_TEST_P11_BARRIER"), "--token", kwt_env("KW_TEST_P11_TOKEN"),
	                "--pin-source", src));
	kwt_result_free(&r);
	return store;
}

static void wait_for(const char *path, pid_t holder)
{
	for (int i = 0; i < 1200 && access(path, F_OK) != 0; i++) {
		int st;
		cr_assert_eq(waitpid(holder, &st, WNOHANG), 0, "the renewal ended before its key");
		usleep(50000);
	}
	cr_assert_eq(access(path, F_OK), 0, "the renewal never made its key");
}

Test(locks, doctor_repair_waits_for_a_key_in_flight_and_destroys_nothing, .timeout = 300)
{
	kwt_result r;
	char *store = barrier_store(0);
	char *dir = kwt_tmpdir("locks");
	char hold[4200], env_hold[4300], out[4200];
	snprintf(hold, sizeof(hold), "%s/generated", dir);
	snprintf(env_hold, sizeof(env_hold), "KWB_P11_BARRIER_HOLD_GENERATE=%s", hold);
	snprintf(out, sizeof(out), "%s/doctor.json", dir);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "web", "--backend", "bh", "--subject", "CN=web"));
	kwt_result_free(&r);

	char *envv[] = {env_hold, NULL};
	pid_t renew =
	    rel_spawn(rel_kw_argv(store, CLI_ARGS("cert", "renew", "web")), envv, NULL, NULL);
	wait_for(hold, renew);
	pid_t doctor = rel_spawn(rel_kw_argv(store, CLI_ARGS("doctor", "--repair", "--json")), NULL,
	                         out, NULL);
	/* doctor is at work or waiting now; the renewal goes on */
	usleep(500000);
	cr_assert_eq(unlink(hold), 0);
	cr_assert_eq(rel_wait(renew), 0, "cert renew failed");
	cr_assert_eq(rel_wait(doctor), 0, "doctor --repair found problems");

	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = "
	                                  "'doctor.key_destroyed'"),
	             0, "doctor destroyed a key");
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "verify", "web"));
	cr_assert(strstr(r.out, "version 2"), "%s", r.out);
	kwt_result_free(&r);
	free(rel_sign_all(store, "web", "after the renewal"));
	free(dir);
	free(store);
}

static char env_now[] = "KEYWARD_NOW=" CLI_NOW;
static char env_later[] = "KEYWARD_NOW=" CLI_LATER;

static int renewals(const char *store, const char *name)
{
	char q[256];
	snprintf(q, sizeof(q),
	         "SELECT COUNT(*) FROM events WHERE type = 'cert.renewed' AND cert = '%s'", name);
	return cli_sql_count(store, q);
}

/* Two renew --due runs while one of them is inside the renewal of the
 * token's certificate: the other skips it ("concurrent") and renews the rest. */
Test(locks, a_certificate_in_renewal_is_skipped_by_a_second_run, .timeout = 300)
{
	kwt_result r;
	char *store = barrier_store(0);
	char *dir = kwt_tmpdir("due");
	char hold[4200], env_hold[4300], out[4200];
	snprintf(hold, sizeof(hold), "%s/generated", dir);
	snprintf(env_hold, sizeof(env_hold), "KWB_P11_BARRIER_HOLD_GENERATE=%s", hold);
	snprintf(out, sizeof(out), "%s/first.out", dir);
	char *env0[] = {env_now, NULL};
	cli_ok(&r, env0, store,
	       CLI_ARGS("cert", "create", "web", "--backend", "bh", "--subject", "CN=web", "--days",
	                "30"));
	kwt_result_free(&r);

	char *envv[] = {env_hold, env_later, NULL};
	pid_t first = rel_spawn(rel_kw_argv(store, CLI_ARGS("renew", "--due")), envv, out, NULL);
	wait_for(hold, first);
	char *env1[] = {env_later, NULL};
	cli_ok(&r, env1, store, CLI_ARGS("renew", "--due"));
	cr_assert(strstr(r.out, "web: skipped: another keyward run renews it"), "%s", r.out);
	kwt_result_free(&r);
	cr_assert_eq(unlink(hold), 0);
	cr_assert_eq(rel_wait(first), 0, "the first run failed");
	cr_assert_eq(renewals(store, "web"), 1);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions"), 2);
	/* and a third run finds nothing due */
	cli_ok(&r, env1, store, CLI_ARGS("renew", "--due"));
	cr_assert_eq(renewals(store, "web"), 1, "%s", r.out);
	kwt_result_free(&r);
	free(dir);
	free(store);
}

/* Both devices, no hold: two runs started together renew each due
 * certificate exactly once, whoever wins. */
Test(locks, two_runs_at_once_renew_each_certificate_once, .timeout = 600)
{
	kwt_result r;
	char *store = barrier_store(1);
	char *env0[] = {env_now, NULL};
	cli_ok(&r, env0, store,
	       CLI_ARGS("cert", "create", "t", "--backend", "tpm", "--subject", "CN=t", "--days",
	                "30"));
	kwt_result_free(&r);
	cli_ok(&r, env0, store,
	       CLI_ARGS("cert", "create", "h", "--backend", "bh", "--subject", "CN=h", "--days",
	                "30"));
	kwt_result_free(&r);
	char *envv[] = {env_later, NULL};
	pid_t a = rel_spawn(rel_kw_argv(store, CLI_ARGS("renew", "--due")), envv, NULL, NULL);
	pid_t b = rel_spawn(rel_kw_argv(store, CLI_ARGS("renew", "--due")), envv, NULL, NULL);
	cr_assert_eq(rel_wait(a), 0);
	cr_assert_eq(rel_wait(b), 0);
	cr_assert_eq(renewals(store, "t"), 1, "the TPM certificate");
	cr_assert_eq(renewals(store, "h"), 1, "the token's certificate");
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions"), 4);
	cli_ok(&r, NULL, store, CLI_ARGS("audit", "verify"));
	kwt_result_free(&r);
	free(store);
}
