/*
 * Device faults: the swtpm killed in the middle of a renewal and brought back
 * (same state directory, so the same TPM); the SoftHSM token gone and back;
 * its PIN changed; its storage full. Each time: one clear error line, the
 * store (and token) unchanged, normal service once the device is back, and
 * a long-running signer (kw-rel-sign --serve: the provider as a TLS server
 * has it) that reconnects by itself, never restarted.
 */
#include "rel_test.h"

/* Brings the same TPM back (its state directory). A TPM that lost power
 * while a DA-protected key was in use counts a dictionary-attack failure,
 * and keyward's keys are DA-protected (empty auth, no noDA): after a few such
 * crashes it locks them out ("DA lockout mode" in keyward's error). An admin
 * clears that with the lockout hierarchy (empty on swtpm), as here. */
static void swtpm_back(void)
{
	kwt_swtpm_start();
	cr_assert_eq(cli_status("tpm2_dictionarylockout -T '%s' -c >/dev/null 2>&1",
	                        kwt_env("KW_TEST_TCTI")),
	             0, "tpm2_dictionarylockout -c failed");
}

/* Runs args; on failure asserts the one-line error with needle. Returns the
 * exit status (0 or 1). */
static int run_maybe_failing(const char *store, const char *const *args, const char *needle)
{
	kwt_result r;
	cli_runv(&r, NULL, store, args);
	int st = r.status;
	if (st != 0) {
		cli_assert_error(&r, 1, cli_args_str(args));
		cli_assert_err_has(&r, needle, cli_args_str(args));
	}
	kwt_result_free(&r);
	return st;
}

/* The store's rows are what they were (the device may be away: no token count). */
static void assert_store_same(const char *store, const char *before, const char *what)
{
	char *after = kwt_store_dump(store);
	cr_assert_str_eq(after, before, "%s changed the store", what);
	free(after);
}

Test(faults, swtpm_killed_mid_renewal_changes_nothing)
{
	char *store = kwt_store_new(1, 0);
	cli_create(store, NULL, "edge", "tpm", "ec-p256", "CN=edge", 30, NULL);
	int interrupted = 0, attempts = 0;
	long delay_us = 60000;
	for (; interrupted < 3 && attempts < 40; attempts++) {
		char *before = kwt_store_dump(store);
		char *dir = kwt_tmpdir("renew"), *err = NULL;
		cr_assert(asprintf(&err, "%s/stderr", dir) > 0);
		pid_t pid =
		    rel_spawn(rel_kw_argv(store, CLI_ARGS("cert", "renew", "edge", "--new-key")),
		              NULL, NULL, err);
		usleep((useconds_t)(attempts % 2 ? delay_us / 3 : delay_us));
		kwt_swtpm_stop();
		int st = rel_wait(pid);
		char *msg = kwt_read_file(err, NULL);
		swtpm_back();
		if (st == 0) { /* it was quicker: try an earlier moment */
			delay_us = delay_us * 2 / 3;
		} else {
			cr_assert_eq(st, 1, "renew died with %d: %s", st, msg);
			cr_assert(kwt_count_lines(msg) == 1 && strncmp(msg, "keyward: ", 9) == 0 &&
			              strstr(msg, "TPM") != NULL,
			          "not one clear line: %s", msg);
			assert_store_same(store, before, "a renewal the TPM vanished from");
			interrupted++;
		}
		free(msg);
		free(err);
		free(dir);
		free(before);
	}
	cr_assert_eq(interrupted, 3, "the TPM never died mid-renewal in %d attempts", attempts);
	/* with the TPM down from the start: the same */
	kwt_swtpm_stop();
	char *before = kwt_store_dump(store);
	cr_assert_eq(run_maybe_failing(store, CLI_ARGS("cert", "renew", "edge"), "TPM"), 1);
	assert_store_same(store, before, "a renewal without a TPM");
	free(before);
	swtpm_back();
	/* the same TPM is back: its keys load, renewal works */
	free(rel_sign_all(store, "edge", "after the TPM came back"));
	cr_assert_eq(run_maybe_failing(store, CLI_ARGS("cert", "renew", "edge"), "-"), 0);
	free(rel_sign_all(store, "edge", "after renewing"));
	json_t *rep = NULL;
	cr_assert_eq(rel_doctor(store, 0, &rep), 0, "%s", json_dumps(rep, 0));
	json_decref(rep);
	free(store);
}

Test(faults, running_signer_reconnects_after_swtpm_restart)
{
	char *store = kwt_store_new(1, 0);
	cli_create(store, NULL, "edge", "tpm", "ec-p256", "CN=edge", 30, NULL);
	rel_signer s;
	rel_signer_start(&s, store, "edge");
	rel_signer_assert_ok(&s, "before");
	kwt_swtpm_stop();
	for (int i = 0; i < 2; i++) {
		char *r = rel_signer_sign(&s);
		cr_assert(strncmp(r, "fail: ", 6) == 0 && strstr(r, "TPM") != NULL,
		          "without the TPM: %s", r);
		free(r);
	}
	swtpm_back();
	rel_signer_assert_ok(&s, "after the swtpm restart");
	rel_signer_assert_ok(&s, "and again");
	rel_signer_stop(&s);
	free(store);
}

Test(faults, raw_swtpm_objects_of_killed_clients_are_flushed)
{
	char *store = kwt_store_new(1, 0);
	/* each keyward is killed with its storage key and signing key loaded:
	 * without a resource manager they stay, and the swtpm has 3 slots */
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "k%d", i);
		FILE *lock = rel_db_lock(store);
		pid_t pid =
		    rel_spawn(rel_kw_argv(store, CLI_ARGS("cert", "create", name, "--backend",
		                                          "tpm", "--subject", "CN=k")),
		              NULL, NULL, NULL);
		sleep(3); /* key made, certificate signed: waiting for the store (10 s) */
		kill(pid, SIGKILL);
		int st = rel_wait(pid);
		rel_db_unlock(lock);
		cr_assert_eq(st, 128 + SIGKILL,
		             "keyward %d ended with %d before it was killed: the objects left by "
		             "the one before blocked it",
		             i, st);
	}
	char *left =
	    cli_out("tpm2_getcap -T '%s' handles-transient | grep -c 0x", kwt_env("KW_TEST_TCTI"));
	cr_assert(atoi(left) >= 2, "the killed clients left nothing loaded (%s)", left);
	free(left);
	cli_create(store, NULL, "ok", "tpm", "ec-p256", "CN=ok", 30, NULL);
	left =
	    cli_out("tpm2_getcap -T '%s' handles-transient | grep -c 0x", kwt_env("KW_TEST_TCTI"));
	cr_assert_eq(atoi(left), 0, "objects still loaded after a clean run: %s", left);
	free(left);
	free(rel_sign_all(store, "ok", "after the leftovers"));
	free(store);
}

Test(faults, token_gone_and_back)
{
	rel_own_token("faults-away");
	char *store = kwt_store_new(0, 1);
	cli_create(store, NULL, "web", "hsm", "ec-p256", "CN=web", 30, NULL);
	rel_signer s;
	rel_signer_start(&s, store, "web");
	rel_signer_assert_ok(&s, "before");
	int objects = kwt_p11_object_count();
	char *before = kwt_store_dump(store);
	char *tokens = cli_out("grep tokendir \"$SOFTHSM2_CONF\" | sed 's/.*= *//'");
	cr_assert_eq(cli_status("mv '%s' '%s.away'", tokens, tokens), 0);
	cr_assert_eq(run_maybe_failing(store, CLI_ARGS("cert", "renew", "web"), "PKCS#11"), 1);
	cr_assert_eq(run_maybe_failing(store,
	                               CLI_ARGS("cert", "create", "new", "--backend", "hsm",
	                                        "--subject", "CN=new"),
	                               "PKCS#11"),
	             1);
	assert_store_same(store, before, "commands without the token");
	char *r = rel_signer_sign(&s);
	cr_assert(strncmp(r, "fail: ", 6) == 0 && strstr(r, "PKCS#11") != NULL,
	          "without the token: %s", r);
	free(r);
	cr_assert_eq(cli_status("mv '%s.away' '%s'", tokens, tokens), 0);
	cr_assert_eq(kwt_p11_object_count(), objects, "the token lost objects");
	rel_signer_assert_ok(&s, "after the token came back");
	cr_assert_eq(run_maybe_failing(store, CLI_ARGS("cert", "renew", "web"), "-"), 0);
	rel_signer_assert_ok(&s, "after the renewal");
	rel_signer_stop(&s);
	free(rel_sign_all(store, "web", "a new signer"));
	free(tokens);
	free(before);
	free(store);
}

Test(faults, pin_changed)
{
	rel_own_token("faults-pin");
	char *pinfile = kwt_write_file(kwt_env("KW_TEST_TMP"), "faults-pin.pin", "1234\n", 5, 0600);
	cr_assert(setenv("KW_TEST_P11_PIN_FILE", pinfile, 1) == 0);
	char *store = kwt_store_new(0, 1);
	cli_create(store, NULL, "web", "hsm", "ec-p256", "CN=web", 30, NULL);
	rel_signer s;
	rel_signer_start(&s, store, "web");
	rel_signer_assert_ok(&s, "before");
	cr_assert_eq(cli_status("pkcs11-tool --module '%s' --token-label faults-pin --login "
	                        "--pin 1234 --change-pin --new-pin 5678 >/dev/null 2>&1",
	                        kwt_env("KW_TEST_P11_MODULE")),
	             0);
	cr_assert(setenv("KW_TEST_P11_PIN", "5678", 1) == 0);
	/* new processes: refused with a clear line, nothing changes */
	CLI_REFUSED(store, 1, "wrong PIN", "cert", "renew", "web");
	CLI_REFUSED(store, 1, "wrong PIN", "cert", "create", "new", "--backend", "hsm", "--subject",
	            "CN=new");
	/* the running signer is logged in already */
	rel_signer_assert_ok(&s, "after the PIN change");
	/* it has to log in again (the token went and came back): the old PIN is
	 * refused once and then not offered again, until the pin file has the new one */
	char *tokens = cli_out("grep tokendir \"$SOFTHSM2_CONF\" | sed 's/.*= *//'");
	cr_assert_eq(cli_status("mv '%s' '%s.away'", tokens, tokens), 0);
	char *r0 = rel_signer_sign(&s);
	cr_assert(strncmp(r0, "fail: ", 6) == 0, "without the token: %s", r0);
	free(r0);
	cr_assert_eq(cli_status("mv '%s.away' '%s'", tokens, tokens), 0);
	char *r1 = rel_signer_sign(&s);
	char *r2 = rel_signer_sign(&s);
	cr_assert(strstr(r1, "wrong PIN") != NULL, "first login with the old PIN: %s", r1);
	cr_assert(strstr(r2, "does not offer a refused PIN again") != NULL, "then: %s", r2);
	free(r1);
	free(r2);
	free(kwt_write_file(kwt_env("KW_TEST_TMP"), "faults-pin.pin", "5678\n", 5, 0600));
	rel_signer_assert_ok(&s, "with the new PIN in the pin file");
	rel_signer_stop(&s);
	cr_assert_eq(run_maybe_failing(store, CLI_ARGS("cert", "renew", "web"), "-"), 0);
	free(rel_sign_all(store, "web", "a new signer"));
	free(tokens);
	free(pinfile);
	free(store);
}

Test(faults, token_full)
{
	/* a token whose storage is a 512 KiB tmpfs, in a mount namespace of this test */
	char *dir = kwt_tmpdir("full");
	cr_assert(unshare(CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
	cr_assert(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	cr_assert(mount("tmpfs", dir, "tmpfs", 0, "size=512k,mode=0700") == 0, "mount: %s",
	          strerror(errno));
	char conf[1024];
	int n = snprintf(conf, sizeof(conf),
	                 "directories.tokendir = %s\nobjectstore.backend = file\n"
	                 "log.level = ERROR\n",
	                 dir);
	char *path = kwt_write_file(kwt_env("KW_TEST_TMP"), "full.conf", conf, (size_t)n, 0600);
	cr_assert(setenv("SOFTHSM2_CONF", path, 1) == 0);
	rel_own_token("full");
	char *store = kwt_store_new(0, 1);
	cli_create(store, NULL, "f1", "hsm", "ec-p256", "CN=f1", 30, NULL);
	/* fill what is left */
	(void)cli_status("dd if=/dev/zero of='%s/filler' bs=4k >/dev/null 2>&1", dir);
	char *avail = cli_out("df -k --output=avail '%s' | tail -1", dir);
	cr_assert_eq(atoi(avail), 0, "the token's file system still has %s KiB", avail);
	free(avail);
	CLI_REFUSED(store, 1, "is full", "cert", "create", "f2", "--backend", "hsm", "--subject",
	            "CN=f2");
	CLI_REFUSED(store, 1, "is full", "cert", "renew", "f1", "--new-key");
	free(rel_sign_all(store, "f1", "on a full token"));
	cr_assert_eq(cli_status("rm '%s/filler'", dir), 0);
	cli_create(store, NULL, "f2", "hsm", "ec-p256", "CN=f2", 30, NULL);
	cr_assert_eq(run_maybe_failing(store, CLI_ARGS("cert", "renew", "f1", "--new-key"), "-"),
	             0);
	free(rel_sign_all(store, "f1 f2", "after space was freed"));
	json_t *rep = NULL;
	cr_assert_eq(rel_doctor(store, 0, &rep), 0, "%s", json_dumps(rep, 0));
	json_decref(rep);
	free(path);
	free(store);
	free(dir);
}
