/*
 * keyward agent tests: shared helpers (static, header only). The agent is the
 * real `keyward agent` binary on a store with a SoftHSM key ("web", backend
 * hsm) and a TPM key ("tpmweb", backend tpm); clients are this program's
 * children, most of them turned into an unprivileged user (the tests run as
 * root), signing through kw_key (keyward/agent.h) or the provider.
 */
#ifndef KW_AGENT_TEST_H
#define KW_AGENT_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>

#include <keyward/agent.h>

#include "../cli/cli_test.h"

#define NOBODY 65534

typedef struct {
	char *store;
	char *dir;  /* 0755, for the socket and files any user reads */
	char *sock; /* dir/run/agent.sock: the agent makes dir/run */
	char *log;
	pid_t pid;
	const char *per_user; /* --max-connections-per-user, or NULL */
} agt;

/* Starts keyward agent on a.store and waits for its socket. */
static inline void agt_start(agt *a)
{
	unlink(a->sock);
	a->pid = fork();
	cr_assert(a->pid >= 0);
	if (a->pid == 0) {
		/* dies with the test (a failed assertion skips the teardown), and
		 * holds none of ctest's pipes */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(a->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(kwt_env("KW_TEST_KEYWARD_BIN"), "keyward", "--store", a->store, "agent",
		      "--socket", a->sock,
		      a->per_user ? "--max-connections-per-user" : (char *)NULL, a->per_user,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		struct stat st;
		if (stat(a->sock, &st) == 0 && S_ISSOCK(st.st_mode))
			return;
		int status;
		cr_assert(waitpid(a->pid, &status, WNOHANG) == 0, "the agent exited: %s",
		          kwt_read_file(a->log, NULL));
		usleep(50000);
	}
	cr_assert_fail("the agent's socket %s did not appear", a->sock);
}

/* SIGTERM (it must exit 0) or SIGKILL. */
static inline void agt_stop(agt *a, int sig)
{
	int status = 0;
	if (a->pid <= 0)
		return;
	kill(a->pid, sig);
	cr_assert(waitpid(a->pid, &status, 0) == a->pid);
	if (sig == SIGTERM)
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		          "the agent did not exit 0 after SIGTERM (status %d): %s", status,
		          kwt_read_file(a->log, NULL));
	a->pid = 0;
}

/* A store with an ec-p256 certificate on each device; not started. */
static inline void agt_setup(agt *a)
{
	kwt_result r;
	memset(a, 0, sizeof(*a));
	a->store = kwt_store_new(1, 1);
	cli_ok(&r, NULL, a->store,
	       CLI_ARGS("cert", "create", "web", "--backend", "hsm", "--subject", "CN=web"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, a->store,
	       CLI_ARGS("cert", "create", "tpmweb", "--backend", "tpm", "--subject", "CN=tpmweb"));
	kwt_result_free(&r);
	a->dir = strdup("/tmp/kwagent.XXXXXX");
	cr_assert(mkdtemp(a->dir) != NULL);
	cr_assert(chmod(a->dir, 0755) == 0);
	cr_assert(asprintf(&a->sock, "%s/run/agent.sock", a->dir) > 0);
	/* keyward.so where the unprivileged children can load it: the build
	 * tree may sit in a directory only root can enter (a clone in mktemp -d) */
	cr_assert_eq(kwt_sh("mkdir -m 0755 '%s/modules' && cp '%s/keyward.so' '%s/modules/' && "
	                    "chmod 0644 '%s/modules/keyward.so'",
	                    a->dir, kwt_env("KW_TEST_PROVIDER_DIR"), a->dir, a->dir),
	             0);
	cr_assert(asprintf(&a->log, "%s/agent.log", kwt_env("KW_TEST_TMP")) > 0);
	/* and, in the ASan build, the openssl shim that preloads the sanitizer
	 * runtime keyward.so needs (tests/CMakeLists.txt), where they can run it
	 * (dir/bin, first in their PATH) */
	const char *shims = getenv("KW_TEST_EXEC_SHIMS");
	cr_assert_eq(kwt_sh("mkdir -m 0755 '%s/bin'", a->dir), 0);
	if (shims && shims[0])
		cr_assert_eq(kwt_sh("cp '%s/openssl' '%s/bin/' && chmod 0755 '%s/bin/openssl'",
		                    shims, a->dir, a->dir),
		             0);
}

static inline void agt_teardown(agt *a)
{
	agt_stop(a, SIGTERM);
	kwt_sh("rm -rf '%s'", a->dir);
	free(a->store);
	free(a->dir);
	free(a->sock);
	free(a->log);
	memset(a, 0, sizeof(*a));
}

/* ---- clients ---- */

/* Signs SHA-256(text) with k (ECDSA) and verifies it with the certificate's
 * public key: KW_OK, or the failure (message recorded). */
static inline kw_rc agt_sign_verify_text(kw_key *k, const char *text)
{
	unsigned char dg[32], sig[128];
	size_t sig_len = sizeof(sig);
	unsigned int dl = 0;
	kw_sign_params p = {KW_SIG_ECDSA, NID_sha256, -1};
	EVP_Digest(text, strlen(text), dg, &dl, EVP_sha256(), NULL);
	kw_rc rc = kw_key_sign(k, &p, dg, sizeof(dg), sig, &sig_len);
	if (rc != KW_OK)
		return rc;
	size_t len = 0;
	const unsigned char *spki = kw_key_spki(k, &len);
	EVP_PKEY *pub = d2i_PUBKEY(NULL, &spki, (long)len);
	EVP_PKEY_CTX *c = pub ? EVP_PKEY_CTX_new(pub, NULL) : NULL;
	int ok = c && EVP_PKEY_verify_init(c) == 1 &&
	         EVP_PKEY_verify(c, sig, sig_len, dg, sizeof(dg)) == 1;
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(pub);
	return ok ? KW_OK
	          : kw_error_set(KW_ERR_INTERNAL, 0, __FILE__, __LINE__,
	                         "the signature does not verify");
}

static inline kw_rc agt_sign_verify(kw_key *k)
{
	return agt_sign_verify_text(k, "keyward agent");
}

/* Turns this (child) process into uid/gid with no supplementary groups. */
static inline void agt_become(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
		_exit(120);
}

typedef struct {
	int status;     /* the child's exit code */
	char msg[1024]; /* what it said */
} agt_child;

/* Runs fn(arg, msg) in a child as uid/gid (0: stays root); its return value
 * is the exit code, msg what it says. */
static inline void agt_as(agt_child *out, uid_t uid, gid_t gid,
                          int (*fn)(void *arg, char *msg, size_t len), void *arg)
{
	int p[2];
	cr_assert(pipe(p) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		char msg[1024] = "";
		close(p[0]);
		if (uid != 0)
			agt_become(uid, gid);
		int rc = fn(arg, msg, sizeof(msg));
		(void)!write(p[1], msg, strlen(msg));
		_exit(rc);
	}
	close(p[1]);
	memset(out, 0, sizeof(*out));
	size_t off = 0;
	ssize_t n;
	while (off < sizeof(out->msg) - 1 &&
	       (n = read(p[0], out->msg + off, sizeof(out->msg) - 1 - off)) > 0)
		off += (size_t)n;
	close(p[0]);
	int st = 0;
	cr_assert(waitpid(pid, &st, 0) == pid);
	out->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

typedef struct {
	const char *sock, *name;
} agt_load;

/* Child: load through the agent and sign once. 0: signed; 1: the load
 * failed; 2: the signature failed. */
static inline int agt_child_load_sign(void *arg, char *msg, size_t len)
{
	const agt_load *l = arg;
	kw_key *k = NULL;
	if (kw_key_open_agent(l->sock, l->name, 0, &k) != KW_OK) {
		snprintf(msg, len, "%s", kw_error_message());
		return 1;
	}
	kw_rc rc = agt_sign_verify(k);
	if (rc != KW_OK)
		snprintf(msg, len, "%s", kw_error_message());
	kw_key_free(k);
	return rc == KW_OK ? 0 : 2;
}

/* The events of type `type` about cert (JSON array, new reference). */
static inline json_t *agt_events(const char *store, const char *cert, const char *type)
{
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("events", "--cert", cert, "--json"));
	json_t *all = cli_json(r.out, "events --json"), *out = json_array(), *e;
	size_t i;
	json_array_foreach(all, i, e)
	{
		const char *t = json_string_value(json_object_get(e, "type"));
		if (t && strcmp(t, type) == 0)
			json_array_append(out, e);
	}
	json_decref(all);
	kwt_result_free(&r);
	return out;
}

#endif
