/*
 * keyward TLS server end-to-end tests: Debian's nginx and haproxy, unmodified,
 * sign their handshakes with a key in the TPM (behind tpm2-abrmd, as
 * /dev/tpmrm0 would be in production) or in a SoftHSM token, through
 * keyward's OpenSSL provider and a key reference file. Shared by
 * test_tls_nginx.c and test_tls_haproxy.c.
 *
 * Everything of one server (openssl.cnf, server config, certificate and key
 * files, logs, pid file, temp dirs) lives in its own directory under
 * KW_TEST_TMP. The server runs in its own process group; tls_stop (and
 * tls_teardown, the tests' .fini, which runs after a failed assertion too)
 * kills that group by its id. If the test program dies outright, kw-harness
 * kills the group through the "-PGID" it finds in KW_TEST_TMP/tls-*.pid.
 *
 * The client side is tests/tls/tls-client (curl, openssl s_client): no
 * keyward, no provider, nothing but the certificate as trust anchor.
 *
 * ctest sets KW_TEST_PROVIDER_DIR (where keyward.so is) and KW_TEST_TLS_CLIENT
 * (the client script). KW_TEST_TLS_DEBUG=1 gives the servers KEYWARD_DEBUG=1:
 * the provider's trace lands in their logs, which failed assertions print.
 */
#ifndef KW_TLS_SERVER_H
#define KW_TLS_SERVER_H

#include <sys/types.h>

#include "kwtest.h"

typedef enum { TLS_NGINX, TLS_HAPROXY } tls_kind;

typedef struct {
	tls_kind kind;
	char *dir;        /* this server's directory under KW_TEST_TMP */
	char *store;      /* keyward store; NULL when the key is a software key */
	const char *name; /* the certificate's name in the store */
	int tpm;          /* the key is in the TPM (behind tpm2-abrmd) */
	char *cert;       /* certificate file the server reads */
	char *key;        /* key file it reads: keyward's reference (or a software key) */
	char *ossl_cnf;   /* OPENSSL_CONF: keyward + default providers */
	char *conf;       /* nginx.conf / haproxy.cfg */
	char *log;        /* nginx's error_log and stderr; haproxy's stderr */
	char *sock;       /* haproxy's master CLI socket */
	char *group_file; /* KW_TEST_TMP/tls-*.pid: "-PGID" for kw-harness */
	int port;
	pid_t master;     /* the master process; also the id of its process group */
	char *agent_sock; /* tls_agent: keyward agent's socket, through which the server signs */
	const char *user; /* tls_agent: the workers' user (www-data); NULL: root */
	pid_t agent;      /* the agent's process (and group), 0 when not running */
} tls_server;

/* A server (not started) for a new certificate "web" (CN and SAN localhost,
 * SAN 127.0.0.1) made by keyward in backend "tpm" or "hsm" with key_type. */
tls_server *tls_keyward(tls_kind kind, const char *backend, const char *key_type);

/* A server (not started) with a new store holding backend "tpm" or "hsm" and
 * no certificate yet: the caller makes certificate "web" (with a policy of
 * its own, say) and may point cert and key at other files in dir before
 * tls_start. Stopped by tls_teardown like the others. */
tls_server *tls_keyward_store(tls_kind kind, const char *backend);

/* tls_keyward, but the server signs through keyward agent, as README's
 * "Unprivileged servers" sets it up: its workers run as www-data, its
 * openssl.cnf names the agent's socket (`agent = PATH`), and the server gets
 * neither the store, the token's configuration nor the D-Bus address of
 * tpm2-abrmd. The certificate and reference files are world-readable; the
 * store, the token and the PIN stay root's (0700). Nobody is granted the
 * certificate yet. The agent is not started (tls_agent_start). */
tls_server *tls_agent(tls_kind kind, const char *backend, const char *key_type);

/* Starts keyward agent as the shipped units do (KW_TEST_UNIT_DIR): the
 * service's ExecStart (keyward from this build) under systemd-socket-activate
 * on the socket unit's ListenStream (moved into the server's directory), with
 * its SocketMode and DirectoryMode, and the store and devices of this test in
 * its environment. Like systemd, the agent starts at the first connection. */
void tls_agent_start(tls_server *s);

/* Stops the agent with sig (SIGTERM: as systemctl stop; SIGKILL: a crash) and
 * waits until it is gone. */
void tls_agent_stop(tls_server *s, int sig);

/* A server (not started) with a software key made by openssl: the control
 * that the server, client and config plumbing work without keyward's key. */
tls_server *tls_software(tls_kind kind);

/* The server's binary: /usr/sbin/nginx or /usr/sbin/haproxy, or the shim of
 * that name in KW_TEST_EXEC_SHIMS (the ASan build: it preloads the sanitizer
 * runtime, which an instrumented keyward.so needs). Static storage. */
const char *tls_server_bin(tls_kind kind);

/* Writes the configuration, starts the server on a free loopback port (a new
 * port when another process took it first) and waits until it accepts
 * connections with all its workers up. */
void tls_start(tls_server *s);

/* Stops the server: SIGTERM to its process group, SIGKILL after 5 s; waits
 * until no process of the group is left. Harmless when not running. */
void tls_stop(tls_server *s);

/* Criterion .fini of every test: stops the server of the running test. */
void tls_teardown(void);

/* The tail of the server's logs, for assertion messages (malloc'd). */
char *tls_logs(const tls_server *s);

/* seq sequential requests (a curl process each), then par at once (one curl
 * --parallel, a connection each) with TLS 1.<proto>, trusting only cacert:
 * each must give 200 and "ok TLSv1.<proto>", on a connection of its own. */
void tls_assert_serves(const tls_server *s, const char *cacert, const char *proto, int seq,
                       int par);

/* 50 sequential and 20 concurrent requests over TLS 1.3, then over TLS 1.2,
 * trusting s->cert. */
void tls_assert_serves_both(const tls_server *s);

/* The control: a server of kind with a software key (tls_software) serves
 * both protocols, and curl sees the certificate openssl made; stops it. */
void tls_assert_software_control(tls_kind kind);

/* The SHA-256 fingerprint of the certificate the server presents, as client
 * ("s_client" or "curl") sees it over TLS 1.<proto> (lowercase hex; "" if
 * the handshake failed). */
char *tls_served_sha256(const tls_server *s, const char *client, const char *proto);

/* A TLS 1.2 client that offers only the signature algorithms sigalgs (e.g.
 * "RSA+SHA256": PKCS#1 v1.5, which TLS 1.3 and curl's default list leave
 * out) completes the handshake and sees keyward's current certificate. */
void tls_assert_tls12_sigalgs(const tls_server *s, const char *sigalgs);

/* Both clients (s_client, curl) over TLS 1.3 and 1.2 see the certificate
 * with SHA-256 want; when says at which step, for the message. */
void tls_assert_served(const tls_server *s, const char *want, const char *when);

/* Waits (30 s at most) until a full set of new workers runs and every one
 * of the n_old workers in old (tls_workers before the reload) has exited. */
void tls_wait_reloaded(const tls_server *s, const pid_t *old, int n_old);

/* keyward's thumbprint_sha256 of the current version of the certificate. */
char *tls_thumbprint(const tls_server *s);

/* Current worker processes (up to max) and their number. */
int tls_workers(const tls_server *s, pid_t *out, int max);

/* For a TPM key behind tpm2-abrmd: the master has never loaded the tabrmd
 * TCTI (keyward checks the key from a helper child, since GDBus does not
 * survive fork), and every worker that served has (it signs itself). */
void tls_assert_tabrmd_only_in_workers(const tls_server *s);

/* The renewal story: `keyward cert renew`, the running server still serves
 * the old certificate; the new certificate is exported over the old file;
 * the server reloads (nginx -s reload / SIGUSR2 to haproxy's master) without
 * any change to its configuration files or the key reference, the old
 * workers go away, and clients see the new thumbprint over TLS 1.3 and 1.2
 * (and no longer verify with the old certificate). */
void tls_assert_renewal_seen_after_reload(tls_server *s);

#endif
