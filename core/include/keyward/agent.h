/*
 * keyward — the agent: a local service that alone holds the store and the
 * devices and signs for unprivileged servers over a UNIX socket, checking
 * each certificate's access list against the caller's credentials.
 *
 * Client side: kw_key (keyward/key.h) talks to the agent instead of the
 * store when KEYWARD_AGENT names its socket (or through kw_key_open_agent,
 * which the provider calls when its configuration says `agent = PATH`).
 * Agent side: kw_access decides who may use which certificate; access lists
 * are changed with kw_cert_access_change.
 */
#ifndef KEYWARD_AGENT_H
#define KEYWARD_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include <keyward/error.h>
#include <keyward/key.h>
#include <keyward/keyward.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The socket `keyward agent` listens on unless told otherwise. */
#define KW_AGENT_SOCKET_DEFAULT "/run/keyward/agent.sock"
/* The environment variable that turns agent mode on (it names the socket). */
#define KW_AGENT_ENV "KEYWARD_AGENT"

/*
 * Opens certificate `name` (version 0 = current) through the agent at
 * socket_path: a LOAD request, never the store or a device. The key signs
 * with SIGN requests. After fork() a child opens a connection of its own on
 * first use; a broken connection fails the signature in flight, and the next
 * one connects again (once) and loads the same version again. kw_key_open
 * calls this when KEYWARD_AGENT is set (non-empty).
 */
kw_rc kw_key_open_agent(const char *socket_path, const char *name, int version,
                        kw_key **out) KW_MUST_USE;

/* What a client needs to know of the device behind a key to answer
 * kw_key_can_sign itself: KW_AGENT_CAP_* bits (the agent sends them). */
#define KW_AGENT_CAP_PSS_ANY_SALT 1u /* PSS with any salt length (else: the digest's) */
unsigned kw_key_agent_caps(const kw_key *k);

/* ---- access lists ---- */

typedef enum { KW_ACCESS_USER = 1, KW_ACCESS_GROUP = 2 } kw_access_kind;

typedef struct {
	kw_access_kind kind;
	uint32_t id; /* uid or gid */
} kw_access_entry;

/* "user" or "group": how the store, events, JSON and messages name a kind. */
const char *kw_access_kind_name(kw_access_kind kind);

/* Certificate name's access list (users first, by id); *out malloc'd (free()),
 * NULL when empty. An empty list: only the store's owner and root. */
kw_rc kw_cert_access_get(kw_store *s, const char *name, kw_access_entry **out,
                         size_t *n) KW_MUST_USE;

/* Grants (allow) and withdraws (deny) in one transaction with the event
 * cert.access_changed; granting twice or withdrawing what is not granted
 * changes nothing. */
kw_rc kw_cert_access_change(kw_store *s, const char *name, const kw_access_entry *allow,
                            size_t n_allow, const kw_access_entry *deny, size_t n_deny) KW_MUST_USE;

/* ---- the agent's decisions ---- */

/* Who is on the other end of a connection (SO_PEERCRED and the process's
 * supplementary groups). */
typedef struct {
	uint32_t uid, gid;
	const uint32_t *groups;
	size_t n_groups;
} kw_peer;

typedef struct kw_access kw_access;

/* The decisions over the store at store_dir; thread safe (one per agent). */
kw_rc kw_access_open(const char *store_dir, kw_access **out) KW_MUST_USE;
/* Writes the refusals counted since their last event, then closes. */
void kw_access_close(kw_access *a);

/*
 * May peer sign with version `version` of certificate `name` (0: the
 * current one) now? KW_OK, else KW_ERR_PERM (not on the access list: the
 * message names the user and the command that grants access; the refusal
 * is an event agent.refused, at most one per certificate and uid a minute,
 * with the count of refusals since the last), KW_ERR_STATE (disabled, or
 * that version no longer signs) or KW_ERR_NOT_FOUND. The store is read again
 * only when it changed since the last decision.
 */
kw_rc kw_access_check(kw_access *a, const char *name, int version, const kw_peer *peer) KW_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
