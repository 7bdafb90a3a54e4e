/*
 * keyward agent: an unprivileged process signs with hardware keys through
 * the agent, as far as each certificate's access list lets it, and the
 * agent survives what such a process may send.
 */
#include <pthread.h>

#include "agent/proto.h"
#include "agent_test.h"

static int child_open_db_and_token(void *arg, char *msg, size_t len)
{
	const char *store = arg;
	char db[4096], tokens[4096];
	snprintf(db, sizeof(db), "%s/keyward.db", store);
	snprintf(tokens, sizeof(tokens), "%s/softhsm/tokens", kwt_env("KW_TEST_TMP"));
	int fd = open(db, O_RDONLY);
	int e1 = errno;
	int fd2 = open(tokens, O_RDONLY | O_DIRECTORY);
	int e2 = errno;
	snprintf(msg, len, "db: %s, tokens: %s", fd >= 0 ? "opened" : strerror(e1),
	         fd2 >= 0 ? "opened" : strerror(e2));
	return fd < 0 && e1 == EACCES && fd2 < 0 && e2 == EACCES ? 0 : 1;
}

/* Through the provider: openssl dgst signs with keyward:NAME in agent mode. */
static int child_openssl_sign(void *arg, char *msg, size_t len)
{
	const char *const *v = arg; /* sock, dir, name */
	char *cmd = NULL;
	if (asprintf(&cmd,
	             "cd '%s/out' && printf 'keyward agent' > data.txt && KEYWARD_AGENT='%s' "
	             "OPENSSL_MODULES='%s/modules' PATH=\"%s/bin:$PATH\" openssl dgst -sha256 "
	             "-provider keyward -provider default -sign keyward:%s -out sig.bin data.txt "
	             "2>err.txt",
	             v[1], v[0], v[1], v[1], v[2]) < 0)
		return 3;
	int st = system(cmd);
	free(cmd);
	snprintf(msg, len, "openssl exit %d", st);
	return st == 0 ? 0 : 1;
}

/* The same with the socket from the provider's configuration, not the environment. */
static int child_openssl_sign_conf(void *arg, char *msg, size_t len)
{
	const char *const *v = arg; /* sock, dir, name */
	char *cmd = NULL;
	if (asprintf(&cmd,
	             "cd '%s/out' && rm -f sig.bin && printf 'openssl_conf = init\n[init]\n"
	             "providers = prov\n[prov]\nkeyward = kw\ndefault = dflt\n[kw]\n"
	             "activate = 1\nagent = %s\n[dflt]\nactivate = 1\n' > agent.cnf && "
	             "env -u KEYWARD_AGENT OPENSSL_CONF=agent.cnf OPENSSL_MODULES='%s/modules' "
	             "PATH=\"%s/bin:$PATH\" openssl dgst -sha256 -sign keyward:%s -out sig.bin "
	             "data.txt 2>err.txt",
	             v[1], v[0], v[1], v[1], v[2]) < 0)
		return 3;
	int st = system(cmd);
	free(cmd);
	snprintf(msg, len, "openssl exit %d", st);
	return st == 0 ? 0 : 1;
}

Test(agent, an_unprivileged_user_signs_after_a_grant_and_a_disable_stops_a_loaded_key)
{
	agt a;
	agt_child c;
	kwt_result r;
	agt_setup(&a);
	agt_start(&a);
	agt_load web = {a.sock, "web"}, tpm = {a.sock, "tpmweb"};

	/* the child cannot reach the store or the token itself */
	agt_as(&c, NOBODY, NOBODY, child_open_db_and_token, a.store);
	cr_assert_eq(c.status, 0, "uid %d: %s", NOBODY, c.msg);

	/* no grant: refused, with the command that grants */
	agt_as(&c, NOBODY, NOBODY, agt_child_load_sign, &web);
	cr_assert_eq(c.status, 1, "refused load: exit %d: %s", c.status, c.msg);
	cr_assert(strstr(c.msg, "user 'nobody' (uid 65534) may not use certificate 'web': "
	                        "keyward cert access web --allow-user nobody") != NULL,
	          "refusal: %s", c.msg);
	/* root and the store's owner need no grant */
	agt_as(&c, 0, 0, agt_child_load_sign, &web);
	cr_assert_eq(c.status, 0, "root: %s", c.msg);

	/* a grant works at the next load, the agent still running */
	cli_ok(&r, NULL, a.store, CLI_ARGS("cert", "access", "web", "--allow-user", "nobody"));
	kwt_result_free(&r);
	agt_as(&c, NOBODY, NOBODY, agt_child_load_sign, &web);
	cr_assert_eq(c.status, 0, "after the grant (hsm): exit %d: %s", c.status, c.msg);
	agt_as(&c, NOBODY, NOBODY, agt_child_load_sign, &tpm);
	cr_assert_eq(c.status, 1, "tpmweb has no grant: %s", c.msg);
	/* a group grant: nobody's primary group */
	cli_ok(&r, NULL, a.store, CLI_ARGS("cert", "access", "tpmweb", "--allow-group", "65534"));
	kwt_result_free(&r);
	agt_as(&c, NOBODY, NOBODY, agt_child_load_sign, &tpm);
	cr_assert_eq(c.status, 0, "after the group grant (tpm): exit %d: %s", c.status, c.msg);

	/* the provider, in agent mode, as nobody; verified with the certificate */
	const char *v[] = {a.sock, a.dir, "web"};
	cr_assert_eq(kwt_sh("mkdir -m 0777 '%s/out'", a.dir), 0);
	agt_as(&c, NOBODY, NOBODY, child_openssl_sign, (void *)v);
	cr_assert_eq(c.status, 0, "openssl through the agent: %s: %s", c.msg,
	             kwt_sh_out("cat '%s/out/err.txt'", a.dir));
	cr_assert_eq(kwt_sh("cd '%s/out' && '%s' --store '%s' cert export web --out web.pem && "
	                    "openssl x509 -in web.pem -pubkey -noout > pub.pem && openssl dgst "
	                    "-sha256 -verify pub.pem -signature sig.bin data.txt >/dev/null",
	                    a.dir, kwt_env("KW_TEST_KEYWARD_BIN"), a.store),
	             0, "the provider's signature does not verify with web's certificate");

	agt_as(&c, NOBODY, NOBODY, child_openssl_sign_conf, (void *)v);
	cr_assert_eq(c.status, 0, "openssl through the agent named in openssl.cnf: %s: %s", c.msg,
	             kwt_sh_out("cat '%s/out/err.txt'", a.dir));
	cr_assert_eq(kwt_sh("cd '%s/out' && openssl dgst -sha256 -verify pub.pem -signature "
	                    "sig.bin data.txt >/dev/null",
	                    a.dir),
	             0, "the provider's signature (agent from openssl.cnf) does not verify");

	/* a key loaded before: disable blocks its next signature, enable lets it sign */
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open_agent(a.sock, "web", 0, &k), KW_OK, "%s", kw_error_message());
	cr_assert_eq(agt_sign_verify(k), KW_OK, "%s", kw_error_message());
	cli_ok(&r, NULL, a.store, CLI_ARGS("cert", "set", "web", "--enabled", "false"));
	kwt_result_free(&r);
	cr_assert_eq(agt_sign_verify(k), KW_ERR_STATE, "a disabled certificate signed");
	cr_assert(strstr(kw_error_message(), "disabled") != NULL, "%s", kw_error_message());
	cli_ok(&r, NULL, a.store, CLI_ARGS("cert", "set", "web", "--enabled", "true"));
	kwt_result_free(&r);
	cr_assert_eq(agt_sign_verify(k), KW_OK, "%s", kw_error_message());
	kw_key_free(k);

	agt_teardown(&a);
}

/* ---- revocation on a loaded key, from an unprivileged process ---- */

typedef struct {
	const char *sock;
	int go[2], done[2]; /* the parent revokes between the two signatures */
} revoke_arg;

static int child_sign_twice(void *arg, char *msg, size_t len)
{
	revoke_arg *v = arg;
	kw_key *k = NULL;
	char b = 0;
	if (kw_key_open_agent(v->sock, "web", 0, &k) != KW_OK || agt_sign_verify(k) != KW_OK) {
		snprintf(msg, len, "before: %s", kw_error_message());
		return 1;
	}
	(void)!write(v->done[1], "x", 1);
	if (read(v->go[0], &b, 1) != 1)
		return 3;
	kw_rc rc = agt_sign_verify(k);
	snprintf(msg, len, "%s", rc == KW_OK ? "signed" : kw_error_message());
	kw_key_free(k);
	return rc == KW_ERR_PERM ? 0 : 2;
}

static void *revoke_when_loaded(void *arg)
{
	revoke_arg *v = arg;
	char b;
	if (read(v->done[0], &b, 1) == 1) {
		const char *store = getenv("KW_AGENT_TEST_STORE");
		kwt_sh("'%s' --store '%s' cert access web --deny-user nobody >/dev/null",
		       kwt_env("KW_TEST_KEYWARD_BIN"), store);
	}
	(void)!write(v->go[1], "x", 1);
	return NULL;
}

Test(agent, a_withdrawn_grant_stops_the_next_signature_and_refusals_are_aggregated_events)
{
	agt a;
	agt_child c;
	kwt_result r;
	agt_setup(&a);
	setenv("KW_AGENT_TEST_STORE", a.store, 1);
	agt_start(&a);
	cli_ok(&r, NULL, a.store, CLI_ARGS("cert", "access", "web", "--allow-user", "nobody"));
	kwt_result_free(&r);
	revoke_arg v = {.sock = a.sock};
	cr_assert(pipe(v.go) == 0 && pipe(v.done) == 0);
	pthread_t t;
	cr_assert(pthread_create(&t, NULL, revoke_when_loaded, &v) == 0);
	agt_as(&c, NOBODY, NOBODY, child_sign_twice, &v);
	pthread_join(t, NULL);
	cr_assert_eq(c.status, 0, "after the grant was withdrawn: exit %d: %s", c.status, c.msg);
	cr_assert(strstr(c.msg, "may not use certificate 'web'") != NULL, "%s", c.msg);

	/* three more refusals: one event now (the first of the minute)... */
	agt_load web = {a.sock, "web"};
	for (int i = 0; i < 3; i++) {
		agt_as(&c, NOBODY, NOBODY, agt_child_load_sign, &web);
		cr_assert_eq(c.status, 1);
	}
	json_t *ev = agt_events(a.store, "web", "agent.refused");
	cr_assert_eq(json_array_size(ev), 1, "refusal events while running: %zu",
	             json_array_size(ev));
	json_t *d = json_object_get(json_array_get(ev, 0), "details");
	cr_assert_eq(json_integer_value(json_object_get(d, "uid")), NOBODY);
	cr_assert_eq(json_integer_value(json_object_get(d, "count")), 1);
	json_decref(ev);
	/* ...and the other three when the agent stops */
	agt_stop(&a, SIGTERM);
	ev = agt_events(a.store, "web", "agent.refused");
	cr_assert_eq(json_array_size(ev), 2, "refusal events after the stop: %zu",
	             json_array_size(ev));
	d = json_object_get(json_array_get(ev, 1), "details");
	if (json_integer_value(json_object_get(d, "count")) != 3)
		d = json_object_get(json_array_get(ev, 0), "details");
	cr_assert_eq(json_integer_value(json_object_get(d, "count")), 3, "%s", json_dumps(ev, 0));
	json_decref(ev);
	agt_teardown(&a);
}

/* ---- what any local user may send ---- */

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
	          strerror(errno));
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* The agent closed fd: a read sees the end (or a reset), not a timeout. */
static void assert_closed(int fd, const char *what)
{
	char b[256];
	ssize_t n;
	while ((n = read(fd, b, sizeof(b))) > 0)
		; /* an ERROR reply may come first */
	cr_assert(n == 0 || errno == ECONNRESET, "%s: the connection stayed open (%s)", what,
	          n < 0 ? strerror(errno) : "data");
	close(fd);
}

static void send_bytes(int fd, const void *p, size_t n)
{
	cr_assert_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void send_msg(int fd, kwi_msgbuf *b)
{
	cr_assert_eq(kwi_msgbuf_finish(b), 0);
	send_bytes(fd, b->buf, b->len);
}

/* Reads one reply and returns its type. */
static int read_reply(int fd, kwi_msg *m, uint8_t *buf)
{
	size_t len = 0;
	cr_assert_eq(kwi_msg_read(fd, buf, &len), KWI_PROTO_OK, "no reply");
	cr_assert_eq(kwi_msg_parse(buf, len, m), KWI_PROTO_OK);
	return m->type;
}

Test(agent, malformed_messages_close_their_connection_only_and_others_keep_signing)
{
	agt a;
	agt_setup(&a);
	agt_start(&a);
	kw_key *good = NULL;
	cr_assert_eq(kw_key_open_agent(a.sock, "web", 0, &good), KW_OK, "%s", kw_error_message());
	cr_assert_eq(agt_sign_verify(good), KW_OK, "%s", kw_error_message());
	kwi_msgbuf *b = malloc(sizeof(*b));
	uint8_t *buf = malloc(KWI_PROTO_MAX);
	kwi_msg m;

	/* a connection that sent half a header and waits: nobody else waits on it */
	int slow = raw_connect(a.sock);
	send_bytes(slow, "\0\0", 2);
	cr_assert_eq(agt_sign_verify(good), KW_OK, "beside a stalled connection: %s",
	             kw_error_message());

	int fd = raw_connect(a.sock);
	send_bytes(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	assert_closed(fd, "garbage");
	cr_assert_eq(agt_sign_verify(good), KW_OK, "after garbage: %s", kw_error_message());

	fd = raw_connect(a.sock);
	const uint8_t big[] = {0x00, 0x01, 0x00, 0x00, 1, KWI_MSG_HELLO}; /* 65536 + 4 bytes */
	send_bytes(fd, big, sizeof(big));
	assert_closed(fd, "oversized");

	fd = raw_connect(a.sock);
	kwi_msgbuf_start(b, KWI_MSG_HELLO);
	send_msg(fd, b);
	cr_assert_eq(read_reply(fd, &m, buf), KWI_MSG_HELLO_OK);
	kwi_msgbuf_start(b, KWI_MSG_LOAD);
	kwi_msgbuf_str(b, KWI_TAG_NAME, "web");
	cr_assert_eq(kwi_msgbuf_finish(b), 0);
	b->buf[b->len - 4] = 9; /* the frame as long as before; the name claims 9 bytes, 3 follow */
	send_bytes(fd, b->buf, b->len);
	assert_closed(fd, "truncated field");

	fd = raw_connect(a.sock);
	kwi_msgbuf_start(b, KWI_MSG_HELLO);
	kwi_msgbuf_finish(b);
	b->buf[4] = 2; /* protocol version 2 */
	send_bytes(fd, b->buf, b->len);
	assert_closed(fd, "wrong version");

	fd = raw_connect(a.sock);
	kwi_msgbuf_start(b, KWI_MSG_SIGN);
	kwi_msgbuf_u32(b, KWI_TAG_HANDLE, 1);
	send_msg(fd, b);
	assert_closed(fd, "SIGN before HELLO");

	fd = raw_connect(a.sock);
	send_bytes(fd, "\0\0\0\x10\x01\x01", 6); /* a message cut short by its sender */
	shutdown(fd, SHUT_WR);
	assert_closed(fd, "truncated message");

	/* SIGN of a handle never loaded: an error reply, the connection lives on */
	fd = raw_connect(a.sock);
	kwi_msgbuf_start(b, KWI_MSG_HELLO);
	send_msg(fd, b);
	cr_assert_eq(read_reply(fd, &m, buf), KWI_MSG_HELLO_OK);
	kwi_msgbuf_start(b, KWI_MSG_SIGN);
	kwi_msgbuf_u32(b, KWI_TAG_HANDLE, 7);
	kwi_msgbuf_u32(b, KWI_TAG_SCHEME, KW_SIG_ECDSA);
	kwi_msgbuf_u32(b, KWI_TAG_MD_NID, NID_sha256);
	kwi_msgbuf_u32(b, KWI_TAG_SALTLEN, (uint32_t)-1);
	kwi_msgbuf_add(b, KWI_TAG_DIGEST, buf, 32);
	send_msg(fd, b);
	cr_assert_eq(read_reply(fd, &m, buf), KWI_MSG_ERROR);
	char text[512];
	cr_assert_eq(kwi_msg_str(&m, KWI_TAG_MESSAGE, text, sizeof(text)), 0);
	cr_assert(strstr(text, "unknown key handle 7") != NULL, "%s", text);
	kwi_msgbuf_start(b, KWI_MSG_HELLO);
	send_msg(fd, b);
	cr_assert_eq(read_reply(fd, &m, buf), KWI_MSG_HELLO_OK, "the connection did not live on");
	close(fd);

	cr_assert_eq(agt_sign_verify(good), KW_OK, "afterwards: %s", kw_error_message());
	close(slow);
	cr_assert(strstr(kwt_read_file(a.log, NULL), "oversized") != NULL,
	          "the agent did not log the oversized message");
	kw_key_free(good);
	free(b);
	free(buf);
	agt_teardown(&a);
}

/* ---- the agent restarted; fork ---- */

#define FORK_ROUNDS 40

/* The child signs while its parent signs with the same kw_key, each its own
 * message: on one shared connection their replies would cross, and a
 * signature of the other's digest does not verify. */
static int child_sign_with(void *arg, char *msg, size_t len)
{
	for (int i = 0; i < FORK_ROUNDS; i++) {
		kw_rc rc = agt_sign_verify_text(arg, "the child's");
		if (rc != KW_OK) {
			snprintf(msg, len, "round %d: %s", i, kw_error_message());
			return 1;
		}
	}
	return 0;
}

/* A child forked after the load signs FORK_ROUNDS times while the parent
 * does. The fork happens before either signs, from a process with one
 * thread, as servers fork their workers: a fork while another thread holds
 * the allocator's lock (glibc copes, ASan's allocator does not) would hang
 * the child in the test, not in keyward. */
static void fork_and_sign_together(kw_key *k, const char *what)
{
	int go[2], said[2];
	cr_assert(pipe(go) == 0 && pipe(said) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		char c, msg[1024] = "";
		close(go[1]);
		close(said[0]);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		int rc = child_sign_with(k, msg, sizeof(msg));
		(void)!write(said[1], msg, strlen(msg));
		_exit(rc);
	}
	close(go[0]);
	close(said[1]);
	cr_assert_eq(write(go[1], "g", 1), 1);
	long bad = 0;
	for (int i = 0; i < FORK_ROUNDS; i++)
		bad += agt_sign_verify_text(k, "the parent's") != KW_OK;
	char msg[1024] = "";
	size_t off = 0;
	ssize_t n;
	while (off < sizeof(msg) - 1 && (n = read(said[0], msg + off, sizeof(msg) - 1 - off)) > 0)
		off += (size_t)n;
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	close(go[1]);
	close(said[0]);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "forked child (%s): %s", what, msg);
	cr_assert_eq(bad, 0, "the parent (%s) failed %ld signatures beside its child", what, bad);
}

Test(agent, after_a_restart_the_next_signature_works_and_a_forked_child_signs)
{
	agt a;
	agt_setup(&a);
	agt_start(&a);
	kw_key *hsm = NULL, *tpm = NULL;
	cr_assert_eq(kw_key_open_agent(a.sock, "web", 0, &hsm), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kw_key_open_agent(a.sock, "tpmweb", 0, &tpm), KW_OK, "%s", kw_error_message());
	cr_assert_eq(agt_sign_verify(hsm), KW_OK, "%s", kw_error_message());
	cr_assert_eq(agt_sign_verify(tpm), KW_OK, "%s", kw_error_message());

	/* a child signs on a connection of its own; the parent's goes on */
	fork_and_sign_together(hsm, "hsm");
	fork_and_sign_together(tpm, "tpm");
	cr_assert_eq(agt_sign_verify(hsm), KW_OK, "parent after the fork: %s", kw_error_message());

	/* killed: a signature fails cleanly while the agent is gone; started
	 * again, the very next signature works, with the same kw_key (its kept
	 * connection is found broken and replaced within the call) */
	agt_stop(&a, SIGKILL);
	cr_assert_eq(agt_sign_verify(hsm), KW_ERR_UNAVAILABLE, "with the agent gone: %s",
	             kw_error_message());
	agt_start(&a);
	cr_assert_eq(agt_sign_verify(hsm), KW_OK, "after the restart (hsm): %s",
	             kw_error_message());
	cr_assert_eq(agt_sign_verify(tpm), KW_OK, "after the restart (tpm): %s",
	             kw_error_message());
	/* stopped: a clear error, then it comes back */
	agt_stop(&a, SIGTERM);
	cr_assert_neq(agt_sign_verify(hsm), KW_OK);
	cr_assert(strstr(kw_error_message(), "agent") != NULL, "%s", kw_error_message());
	agt_start(&a);
	cr_assert_eq(agt_sign_verify(hsm), KW_OK, "after the second start: %s", kw_error_message());
	kw_key_free(hsm);
	kw_key_free(tpm);
	agt_teardown(&a);
}

/* ---- one user cannot lock the others out ---- */

/* A connection to the agent that sends nothing: fd, or -1. */
static int idle_connection(const char *sock)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* nobody holds its 3 connections and sends nothing: its own next load is
 * refused with the limit named, while another user (daemon, uid 1) loads and
 * signs; once nobody lets one go, it signs too. */
Test(agent, one_user_holding_connections_does_not_lock_out_the_others)
{
	agt a;
	kwt_result r;
	agt_setup(&a);
	a.per_user = "3";
	cli_ok(&r, NULL, a.store,
	       CLI_ARGS("cert", "access", "web", "--allow-user", "nobody", "--allow-user", "1"));
	kwt_result_free(&r);
	agt_start(&a);
	int ready[2], go[2];
	cr_assert(pipe(ready) == 0 && pipe(go) == 0);
	pid_t hog = fork();
	cr_assert(hog >= 0);
	if (hog == 0) {
		close(ready[0]);
		close(go[1]);
		agt_become(NOBODY, NOBODY);
		int fds[3];
		for (int i = 0; i < 3; i++)
			if ((fds[i] = idle_connection(a.sock)) < 0)
				_exit(10 + i);
		kw_key *k = NULL;
		if (kw_key_open_agent(a.sock, "web", 0, &k) == KW_OK ||
		    strstr(kw_error_message(), "--max-connections-per-user") == NULL)
			_exit(20);
		(void)!write(ready[1], "r", 1);
		char c;
		(void)!read(go[0], &c, 1); /* the other user signed meanwhile */
		close(fds[0]);
		usleep(200 * 1000); /* the agent sees the close */
		agt_load l = {a.sock, "web"};
		char msg[1024];
		_exit(agt_child_load_sign(&l, msg, sizeof(msg)) == 0 ? 0 : 30);
	}
	close(ready[1]);
	close(go[0]);
	char c = 0;
	cr_assert_eq(read(ready[0], &c, 1), 1, "nobody's hog did not get to its limit");
	agt_child other;
	agt_load l = {a.sock, "web"};
	agt_as(&other, 1, 1, agt_child_load_sign, &l);
	cr_assert_eq(other.status, 0, "daemon could not sign while nobody held its connections: %s",
	             other.msg);
	cr_assert_eq(write(go[1], "g", 1), 1);
	int st = 0;
	cr_assert_eq(waitpid(hog, &st, 0), hog);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	          "nobody's connections: exit %d (10-12: connect, 20: the load over its limit was "
	          "not refused by name, 30: no signature after letting one go)",
	          WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	close(ready[0]);
	close(go[1]);
	agt_teardown(&a);
}

/* ---- keyward cert access ---- */

Test(agent, cert_access_grants_by_name_and_number_and_refuses_unknown_users)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "web", "--backend", "hsm", "--subject", "CN=web"));
	kwt_result_free(&r);
	json_t *show = cli_show(store, "web", 0);
	cr_assert_eq(json_array_size(json_object_get(show, "access")), 0);
	cr_assert(json_is_array(json_object_get(show, "access")), "cert show lacks access");
	json_decref(show);

	char *before = kwt_store_dump(store);
	cli_runv(&r, NULL, store,
	         CLI_ARGS("cert", "access", "web", "--allow-user", "nobody", "--allow-user",
	                  "no-such-user-kw"));
	cli_assert_error(&r, 1, "unknown user");
	cli_assert_err_has(&r, "no user 'no-such-user-kw' on this host", "unknown user");
	kwt_result_free(&r);
	cli_runv(&r, NULL, store, CLI_ARGS("cert", "access", "web", "--allow-group", "4000000000"));
	cli_assert_error(&r, 1, "unknown group");
	kwt_result_free(&r);
	char *after = kwt_store_dump(store);
	cr_assert_str_eq(before, after, "a refused change changed the store");

	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "access", "web", "--allow-user", "nobody", "--allow-group", "0",
	                "--json"));
	json_t *j = cli_json(r.out, "cert access --json");
	json_t *acl = json_object_get(j, "access");
	cr_assert_eq(json_array_size(acl), 2, "%s", r.out);
	cr_assert_str_eq(cli_js(json_array_get(acl, 0), "kind"), "user");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(acl, 0), "id")), NOBODY);
	cr_assert_str_eq(cli_js(json_array_get(acl, 0), "name"), "nobody");
	cr_assert_str_eq(cli_js(json_array_get(acl, 1), "kind"), "group");
	json_decref(j);
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "show", "web"));
	cr_assert(strstr(r.out, "user nobody (uid 65534)") != NULL, "%s", r.out);
	kwt_result_free(&r);

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "access", "web", "--deny-user", "65534"));
	kwt_result_free(&r);
	show = cli_show(store, "web", 0);
	cr_assert_eq(json_array_size(json_object_get(show, "access")), 1);
	json_decref(show);
	json_t *ev = agt_events(store, "web", "cert.access_changed");
	cr_assert_eq(json_array_size(ev), 2, "access events: %zu", json_array_size(ev));
	json_decref(ev);
	cli_runv(&r, NULL, store, CLI_ARGS("cert", "access", "nosuch"));
	cli_assert_error(&r, 1, "unknown certificate");
	kwt_result_free(&r);
}
