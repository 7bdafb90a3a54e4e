/*
 * keyward agent: the local signing service (README, "Unprivileged servers").
 * A layer beside the CLI that uses libkeyward's public API, plus the wire
 * protocol it shares with the client (core/agent/proto.h). Linked into the
 * keyward binary.
 */
#ifndef KEYWARD_AGENT_SERVER_H
#define KEYWARD_AGENT_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <keyward/agent.h>

typedef struct {
	const char *socket_path; /* KW_AGENT_SOCKET_DEFAULT unless told */
	const char *store_dir;
	int max_connections; /* more are refused */
	int max_per_user;    /* connections one user (not root) may hold at once */
} kwa_config;

/* Serves until SIGTERM or SIGINT, then lets the connections finish their
 * request and returns KW_OK; a failure to start is returned with the error
 * recorded. Socket activation: LISTEN_FDS=1 and LISTEN_PID = our pid. */
kw_rc kwa_run(const kwa_config *cfg) KW_MUST_USE;

/* ---- conn.c: one connection, on a thread of its own ---- */
typedef struct kwa_server kwa_server;

/* What the connection threads share. */
struct kwa_server {
	const char *store_dir;
	kw_access *access;
	atomic_ulong malformed; /* messages that closed their connection */
	atomic_ulong refused;   /* connections over the limit */
};

/* Serves the connection fd until it ends; the caller closes fd (agent.c,
 * under the lock that shutdown at the end takes, so a number the kernel gives
 * again is never shut down by mistake). */
void kwa_conn_serve(kwa_server *srv, int fd);

/* ---- peer.c ---- */
#define KWA_MAX_GROUPS 256
/* The peer of a UNIX socket: SO_PEERCRED and the supplementary groups its
 * process had when it connected (SO_PEERGROUPS). -1 when the credentials
 * cannot be read. */
int kwa_peer_read(int fd, kw_peer *p, uint32_t groups[KWA_MAX_GROUPS]);

/* A line on stderr, "keyward agent: ..." (journald keeps it). */
void kwa_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
