/*
 * Unprivileged servers: Debian's nginx (workers as www-data, nginx's own
 * default) and haproxy (master-worker, the worker dropping to www-data) serve
 * TLS with a key in the SoftHSM token or in the TPM (behind tpm2-abrmd)
 * through keyward agent, started as its shipped units start it. The servers
 * get an openssl.cnf naming the agent's socket and nothing else of keyward's:
 * no store, no token configuration, no PIN, no D-Bus address. Their workers
 * are shown unable to open the store, the token directory and the TPM (the
 * tpm2-abrmd bus); the certificate's access list decides, at each signature,
 * whether they may sign. See tls_server.h (tls_agent).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tls_proc.h"
#include "tls_server.h"

TestSuite(agent, .fini = tls_teardown, .timeout = 300);

/* A keyward command that must succeed. */
static void kw_ok(const tls_server *s, const char *const *args)
{
	kwt_result r;
	kwt_kw_args(&r, NULL, s->store, args);
	cr_assert_eq(r.status, 0, "keyward %s %s failed (exit %d): %s", args[0], args[1], r.status,
	             r.err);
	kwt_result_free(&r);
}

#define KW(s, ...) kw_ok((s), (const char *const[]){__VA_ARGS__, NULL})

/* A handshake over TLS 1.3 fails (curl sees no certificate); why is for the
 * message. */
static void assert_no_handshake(const tls_server *s, const char *why)
{
	char *got = tls_served_sha256(s, "curl", "1.3");
	cr_assert_str_eq(got, "", "%s, a client still completed a handshake (%s)\n%s", why, got,
	                 tls_logs(s));
	free(got);
}

/* What www-data, the workers' user, can open: the test runs the command as
 * uid/gid 33 with no supplementary groups and wants it to fail. */
static void assert_www_data_cannot(const char *what, const char *cmd)
{
	cr_assert_neq(kwt_sh("setpriv --reuid=33 --regid=33 --clear-groups -- sh -c '%s' "
	                     ">/dev/null 2>&1",
	                     cmd),
	              0, "www-data can %s (%s)", what, cmd);
}

/* The workers run as www-data, and www-data reaches neither the store, nor
 * the token, nor the PIN, nor the TPM; the control: it does reach the
 * certificate and reference files the server reads, and the agent. */
static void assert_workers_confined(const tls_server *s)
{
	pid_t w[4];
	int n = tls_workers(s, w, 4);
	cr_assert(n >= 1, "no workers");
	for (int i = 0; i < n; i++) {
		char *status = kwt_sh_out("grep -E '^(Uid|Gid):' /proc/%d/status", (int)w[i]);
		cr_assert(strstr(status, "Uid:\t33\t33\t33\t33") &&
		              strstr(status, "Gid:\t33\t33\t33\t33"),
		          "worker %d is not www-data:\n%s", (int)w[i], status);
		free(status);
		/* the store, the token and tpm2-abrmd were never in the worker */
		cr_assert_eq(tls_proc_maps(w[i], "libsofthsm2"), 0, "worker %d loaded SoftHSM",
		             (int)w[i]);
		cr_assert_eq(tls_proc_maps(w[i], "tcti-tabrmd"), 0, "worker %d loaded tabrmd",
		             (int)w[i]);
	}
	const char *tmp = kwt_env("KW_TEST_TMP");
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "cat %s/keyward.db", s->store);
	assert_www_data_cannot("read the store's database", cmd);
	snprintf(cmd, sizeof(cmd), "ls %s/softhsm/tokens", tmp);
	assert_www_data_cannot("list the token directory", cmd);
	snprintf(cmd, sizeof(cmd), "cat %s", kwt_env("KW_TEST_P11_PIN_FILE"));
	assert_www_data_cannot("read the PIN", cmd);
	snprintf(cmd, sizeof(cmd),
	         "DBUS_SESSION_BUS_ADDRESS=unix:path=%s/dbus/bus tpm2_getrandom -T "
	         "tabrmd:bus_type=session 4",
	         tmp);
	assert_www_data_cannot("use the TPM through tpm2-abrmd", cmd);
	/* the control: the same user reads what the server reads, and as root
	 * the TPM command works */
	cr_assert_eq(kwt_sh("setpriv --reuid=33 --regid=33 --clear-groups -- cat '%s' '%s' '%s' "
	                    ">/dev/null",
	                    s->cert, s->key, s->ossl_cnf),
	             0, "www-data cannot read the server's files");
	cr_assert_eq(kwt_sh("tpm2_getrandom -T tabrmd:bus_type=session 4 >/dev/null 2>&1"), 0,
	             "the TPM control command fails as root too");
}

/* The agent recorded refusals of www-data for the certificate. */
static void assert_refusal_recorded(const tls_server *s)
{
	char *ev = kwt_sh_out("'%s' --store '%s' events --cert %s --json",
	                      kwt_env("KW_TEST_KEYWARD_BIN"), s->store, s->name);
	cr_assert(strstr(ev, "\"agent.refused\"") != NULL, "no agent.refused event:\n%s", ev);
	free(ev);
}

/* The story of one server through the agent: refused until granted, then
 * served with both protocols by confined workers; disabled and enabled again
 * without a reload; a renewal seen after a reload; the agent killed and
 * started again while the server keeps running. */
static void agent_story(tls_server *s)
{
	tls_agent_start(s);
	tls_start(s);
	/* the master (root, the store's owner's peer) loaded the key; the
	 * workers, www-data, are not on the access list yet */
	assert_no_handshake(s, "before www-data was granted the certificate");
	assert_refusal_recorded(s);
	KW(s, "cert", "access", s->name, "--allow-user", "www-data");
	/* granted: the next handshakes sign, with no restart of anything */
	tls_assert_serves(s, s->cert, "1.3", 10, 40);
	tls_assert_serves(s, s->cert, "1.2", 10, 40);
	assert_workers_confined(s);

	KW(s, "cert", "set", s->name, "--enabled", "false");
	assert_no_handshake(s, "with the certificate disabled");
	KW(s, "cert", "set", s->name, "--enabled", "true");
	tls_assert_serves(s, s->cert, "1.3", 3, 5);

	/* the agent dies (a crash) and comes back: the same server, not
	 * reloaded, signs again */
	tls_agent_stop(s, SIGKILL);
	assert_no_handshake(s, "with the agent gone");
	tls_agent_start(s);
	tls_assert_serves(s, s->cert, "1.3", 5, 10);
	tls_assert_serves(s, s->cert, "1.2", 5, 10);

	tls_assert_renewal_seen_after_reload(s);
	assert_workers_confined(s);
	tls_stop(s);
	tls_agent_stop(s, SIGTERM);
}

Test(agent, nginx_www_data_workers_sign_in_softhsm)
{
	agent_story(tls_agent(TLS_NGINX, "hsm", "ec-p256"));
}

Test(agent, nginx_www_data_workers_sign_in_the_tpm)
{
	agent_story(tls_agent(TLS_NGINX, "tpm", "ec-p256"));
}

Test(agent, haproxy_www_data_worker_signs_in_softhsm)
{
	agent_story(tls_agent(TLS_HAPROXY, "hsm", "rsa-2048"));
}

Test(agent, haproxy_www_data_worker_signs_in_the_tpm)
{
	tls_server *s = tls_agent(TLS_HAPROXY, "tpm", "ec-p256");
	KW(s, "cert", "access", s->name, "--allow-user", "www-data");
	tls_agent_start(s);
	tls_start(s);
	tls_assert_serves(s, s->cert, "1.3", 10, 40);
	tls_assert_serves(s, s->cert, "1.2", 10, 40);
	assert_workers_confined(s);
	tls_stop(s);
	tls_agent_stop(s, SIGTERM);
}
