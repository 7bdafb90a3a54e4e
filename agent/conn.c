/* see agent.h: one client connection. HELLO first; then LOAD opens a
 * certificate's key (after the access check) under a handle of this
 * connection, SIGN signs with it (after the check again). A message that is
 * malformed, truncated, oversized, of another version or out of order
 * closes this connection only. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <keyward/key.h>

#include "agent.h"
#include "agent/proto.h"

#define MAX_KEYS     16 /* loaded keys per connection */
#define NAME_MAX_LEN 256

typedef struct {
	kwa_server *srv;
	int fd;
	kw_peer peer;
	uint32_t groups[KWA_MAX_GROUPS];
	int hello;
	kw_key *keys[MAX_KEYS]; /* handle h is keys[h - 1] */
	uint8_t *rbuf;
	kwi_msgbuf *out;
} conn;

/* Sends the reply built in c->out: 0, or -1 when the connection is gone. */
static int reply(conn *c)
{
	if (kwi_msgbuf_finish(c->out) != 0) {
		kwa_log("a reply did not fit in a message");
		return -1;
	}
	return kwi_msg_write(c->fd, c->out) == KWI_PROTO_OK ? 0 : -1;
}

/* An ERROR reply with the recorded error (rc when nothing is recorded). */
static int reply_error(conn *c, kw_rc rc)
{
	const char *msg = kw_error_message();
	kw_rc code = kw_error_code() != KW_OK ? kw_error_code() : rc;
	kwi_msgbuf_start(c->out, KWI_MSG_ERROR);
	kwi_msgbuf_u32(c->out, KWI_TAG_RC, (uint32_t)code);
	kwi_msgbuf_str(c->out, KWI_TAG_MESSAGE, msg[0] ? msg : kw_rc_name(code));
	return reply(c);
}

static int on_load(conn *c, const kwi_msg *m)
{
	char name[NAME_MAX_LEN];
	uint32_t version = 0;
	if (kwi_msg_str(m, KWI_TAG_NAME, name, sizeof(name)) != 0 ||
	    kwi_msg_u32(m, KWI_TAG_VERSION, &version) != 0 || version > 1000000)
		return reply_error(c, KW_FAIL(KW_ERR_USAGE, "LOAD wants a name and a version"));
	int slot = -1;
	for (int i = 0; i < MAX_KEYS && slot < 0; i++)
		if (c->keys[i] == NULL)
			slot = i;
	if (slot < 0)
		return reply_error(c, KW_FAIL(KW_ERR_USAGE,
		                              "this connection holds %d keys already: the most",
		                              MAX_KEYS));
	kw_rc rc = kw_access_check(c->srv->access, name, (int)version, &c->peer);
	kw_key *k = NULL;
	if (rc == KW_OK)
		rc = kw_key_open(c->srv->store_dir, name, (int)version, &k);
	if (rc != KW_OK)
		return reply_error(c, rc);
	c->keys[slot] = k;
	kwi_msgbuf_start(c->out, KWI_MSG_LOADED);
	kwi_msgbuf_u32(c->out, KWI_TAG_HANDLE, (uint32_t)slot + 1);
	kwi_msgbuf_u32(c->out, KWI_TAG_VERSION, (uint32_t)kw_key_version(k));
	kwi_msgbuf_u32(c->out, KWI_TAG_KEY_TYPE, (uint32_t)kw_key_get_type(k));
	kwi_msgbuf_str(c->out, KWI_TAG_KIND, kw_key_backend_kind(k));
	kwi_msgbuf_u32(c->out, KWI_TAG_SIG_MAX, (uint32_t)kw_key_sig_max(k));
	kwi_msgbuf_u32(c->out, KWI_TAG_CAPS, kw_key_agent_caps(k));
	size_t len = 0;
	const unsigned char *der = kw_key_spki(k, &len);
	kwi_msgbuf_add(c->out, KWI_TAG_SPKI, der, len);
	der = kw_key_cert(k, &len);
	kwi_msgbuf_add(c->out, KWI_TAG_CERT, der, len);
	for (size_t i = 0; i < kw_key_chain_count(k); i++) {
		der = kw_key_chain_cert(k, i, &len);
		kwi_msgbuf_add(c->out, KWI_TAG_CHAIN, der, len);
	}
	return reply(c);
}

static int on_sign(conn *c, const kwi_msg *m)
{
	uint32_t h = 0, scheme = 0, md = 0, salt = 0;
	const kwi_tlv *d = kwi_msg_get(m, KWI_TAG_DIGEST);
	if (kwi_msg_u32(m, KWI_TAG_HANDLE, &h) != 0 || kwi_msg_u32(m, KWI_TAG_SCHEME, &scheme) ||
	    kwi_msg_u32(m, KWI_TAG_MD_NID, &md) || kwi_msg_u32(m, KWI_TAG_SALTLEN, &salt) ||
	    d == NULL || d->len == 0 || d->len > 64)
		return reply_error(c, KW_FAIL(KW_ERR_USAGE,
		                              "SIGN wants a handle, the signature's parameters "
		                              "and a digest of at most 64 bytes"));
	if (h == 0 || h > MAX_KEYS || c->keys[h - 1] == NULL)
		return reply_error(c, KW_FAIL(KW_ERR_USAGE,
		                              "unknown key handle %u on this connection: LOAD "
		                              "the certificate first",
		                              (unsigned)h));
	kw_key *k = c->keys[h - 1];
	/* every signature: a disabled certificate, a version that no longer
	 * signs or a withdrawn grant takes effect now, not at the next load */
	kw_rc rc = kw_access_check(c->srv->access, kw_key_name(k), kw_key_version(k), &c->peer);
	kw_sign_params p = {(kw_sig_scheme)scheme, (int)md, (int)(int32_t)salt};
	unsigned char sig[1024];
	size_t sig_len = sizeof(sig);
	if (rc == KW_OK)
		rc = kw_key_sign(k, &p, d->val, d->len, sig, &sig_len);
	if (rc != KW_OK)
		return reply_error(c, rc);
	kwi_msgbuf_start(c->out, KWI_MSG_SIGNATURE);
	kwi_msgbuf_add(c->out, KWI_TAG_SIG, sig, sig_len);
	return reply(c);
}

/* One message: 0 to go on, -1 to close the connection. */
static int on_message(conn *c, const kwi_msg *m)
{
	if (m->type == KWI_MSG_HELLO) {
		c->hello = 1;
		kwi_msgbuf_start(c->out, KWI_MSG_HELLO_OK);
		return reply(c);
	}
	if (!c->hello || (m->type != KWI_MSG_LOAD && m->type != KWI_MSG_SIGN)) {
		kwa_log("closing the connection of uid %u: message type %u %s",
		        (unsigned)c->peer.uid, (unsigned)m->type,
		        c->hello ? "is not a request" : "before HELLO");
		atomic_fetch_add(&c->srv->malformed, 1);
		return -1;
	}
	return m->type == KWI_MSG_LOAD ? on_load(c, m) : on_sign(c, m);
}

static void conn_loop(conn *c)
{
	for (;;) {
		size_t len = 0;
		kwi_msg m;
		kwi_proto_rc pr = kwi_msg_read(c->fd, c->rbuf, &len);
		if (pr == KWI_PROTO_OK)
			pr = kwi_msg_parse(c->rbuf, len, &m);
		if (pr == KWI_PROTO_EOF)
			return;
		if (pr != KWI_PROTO_OK) {
			atomic_fetch_add(&c->srv->malformed, 1);
			kwa_log("closing the connection of uid %u: %s message (%lu so far)",
			        (unsigned)c->peer.uid, kwi_proto_rc_name(pr),
			        atomic_load(&c->srv->malformed));
			return;
		}
		kw_error_clear();
		if (on_message(c, &m) != 0)
			return;
	}
}

void kwa_conn_serve(kwa_server *srv, int fd)
{
	conn *c = calloc(1, sizeof(*c));
	if (c != NULL) {
		c->srv = srv;
		c->fd = fd;
		c->rbuf = malloc(KWI_PROTO_MAX);
		c->out = malloc(sizeof(*c->out));
	}
	if (c != NULL && c->rbuf != NULL && c->out != NULL &&
	    kwa_peer_read(fd, &c->peer, c->groups) == 0)
		conn_loop(c);
	if (c != NULL) {
		for (int i = 0; i < MAX_KEYS; i++)
			kw_key_free(c->keys[i]);
		free(c->rbuf);
		free(c->out);
		free(c);
	}
}
