/* libkeyward internal: the agent's client, behind kw_key (device/key.c).
 * A link is one certificate version loaded through the agent: its own
 * connection, re-made after fork() and once after a broken one. */
#ifndef KEYWARD_CORE_AGENT_CLIENT_H
#define KEYWARD_CORE_AGENT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <keyward/key.h>

typedef struct kwi_agent_link kwi_agent_link;

/* What a LOAD answered (malloc'd DER; chain: certificates back to back). */
typedef struct {
	int version;
	kw_key_type type;
	char *kind;
	uint32_t caps;
	unsigned char *spki, *cert, *chain;
	size_t spki_len, cert_len, chain_len;
} kwi_agent_loaded;

void kwi_agent_loaded_clear(kwi_agent_loaded *l);

/* Connects to the agent at socket_path and loads name / version (0 =
 * current). */
kw_rc kwi_agent_link_open(const char *socket_path, const char *name, int version,
                          kwi_agent_loaded *out, kwi_agent_link **link) KW_MUST_USE;
/* Signs through the agent (see kw_key_sign). Thread safe: one request at a
 * time on the link's connection. */
kw_rc kwi_agent_link_sign(kwi_agent_link *l, const kw_sign_params *p, const unsigned char *dgst,
                          size_t dgst_len, unsigned char *sig, size_t *sig_len) KW_MUST_USE;
void kwi_agent_link_free(kwi_agent_link *l);

#endif
