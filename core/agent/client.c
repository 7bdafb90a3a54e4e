/* see agent/client.h: kw_key through the agent */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/client.h"
#include "agent/proto.h"
#include "internal.h"

/* How long a reply may take before the call fails (a signature in a busy
 * device included). */
#define REPLY_TIMEOUT_S 30

struct kwi_agent_link {
	pthread_mutex_t mu;
	char *path, *name;
	int version; /* the version loaded: a reconnection loads this one again */
	unsigned char *spki;
	size_t spki_len;
	int fd; /* -1: none (yet, or since it broke) */
	pid_t pid;
	uint32_t handle;
	kwi_msgbuf *req;
	uint8_t *rbuf;
	kwi_msg reply;
};

void kwi_agent_loaded_clear(kwi_agent_loaded *l)
{
	free(l->kind);
	free(l->spki);
	free(l->cert);
	free(l->chain);
	memset(l, 0, sizeof(*l));
}

static kw_rc agent_connect(kwi_agent_link *l)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(l->path) >= sizeof(sa.sun_path))
		return KW_FAIL(KW_ERR_USAGE, "the agent's socket path is too long: %s", l->path);
	strcpy(sa.sun_path, l->path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return KW_FAIL(KW_ERR_IO, "socket: %s", strerror(errno));
	struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		return KW_FAIL(KW_ERR_UNAVAILABLE,
		               "cannot reach the keyward agent at %s: %s (is keyward agent "
		               "running?)",
		               l->path, strerror(e));
	}
	l->fd = fd;
	l->pid = getpid();
	return KW_OK;
}

static void agent_drop(kwi_agent_link *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

/* Sends l->req and reads the reply into l->reply, which must be of type
 * want. A broken connection is dropped (the next call makes a new one). */
static kw_rc exchange(kwi_agent_link *l, uint8_t want)
{
	size_t len = 0;
	kwi_proto_rc pr = KWI_PROTO_IO;
	if (kwi_msgbuf_finish(l->req) != 0)
		return KW_FAIL(KW_ERR_USAGE, "request to the keyward agent too large");
	if ((pr = kwi_msg_write(l->fd, l->req)) == KWI_PROTO_OK &&
	    (pr = kwi_msg_read(l->fd, l->rbuf, &len)) == KWI_PROTO_OK)
		pr = kwi_msg_parse(l->rbuf, len, &l->reply);
	if (pr != KWI_PROTO_OK) {
		agent_drop(l);
		return KW_FAIL(KW_ERR_UNAVAILABLE,
		               "the keyward agent at %s broke the connection (%s); the next call "
		               "connects again",
		               l->path, kwi_proto_rc_name(pr));
	}
	if (l->reply.type == KWI_MSG_ERROR) {
		uint32_t code = KW_ERR_INTERNAL;
		char msg[512];
		if (kwi_msg_u32(&l->reply, KWI_TAG_RC, &code) != 0 || code == KW_OK ||
		    code > KW_ERR_INTERNAL)
			code = KW_ERR_INTERNAL;
		if (kwi_msg_str(&l->reply, KWI_TAG_MESSAGE, msg, sizeof(msg)) != 0)
			strcpy(msg, "the keyward agent refused the request");
		return KW_FAIL((kw_rc)code, "%s", msg);
	}
	if (l->reply.type != want) {
		agent_drop(l);
		return KW_FAIL(KW_ERR_UNAVAILABLE, "the keyward agent at %s answered out of order",
		               l->path);
	}
	return KW_OK;
}

static kw_rc dup_field(const kwi_msg *m, uint8_t tag, unsigned char **out, size_t *len)
{
	const kwi_tlv *t = kwi_msg_get(m, tag);
	if (t == NULL || t->len == 0)
		return KW_FAIL(KW_ERR_UNAVAILABLE, "the keyward agent's answer lacks a field (%u)",
		               (unsigned)tag);
	if ((*out = malloc(t->len)) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	memcpy(*out, t->val, t->len);
	*len = t->len;
	return KW_OK;
}

/* The chain fields, back to back. */
static kw_rc chain_join(const kwi_msg *m, kwi_agent_loaded *o)
{
	size_t total = 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->tlv[i].tag == KWI_TAG_CHAIN)
			total += m->tlv[i].len;
	if (total == 0)
		return KW_OK;
	if ((o->chain = malloc(total)) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < m->n; i++)
		if (m->tlv[i].tag == KWI_TAG_CHAIN) {
			memcpy(o->chain + o->chain_len, m->tlv[i].val, m->tlv[i].len);
			o->chain_len += m->tlv[i].len;
		}
	return KW_OK;
}

static kw_rc loaded_read(const kwi_msg *m, kwi_agent_loaded *o, uint32_t *handle)
{
	uint32_t version = 0, type = 0;
	char kind[32];
	if (kwi_msg_u32(m, KWI_TAG_HANDLE, handle) || kwi_msg_u32(m, KWI_TAG_VERSION, &version) ||
	    kwi_msg_u32(m, KWI_TAG_KEY_TYPE, &type) || kwi_msg_u32(m, KWI_TAG_CAPS, &o->caps) ||
	    kwi_msg_str(m, KWI_TAG_KIND, kind, sizeof(kind)) || version == 0 || version > 1000000 ||
	    kw_key_type_name((kw_key_type)type) == NULL)
		return KW_FAIL(KW_ERR_UNAVAILABLE, "the keyward agent's LOAD answer is malformed");
	o->version = (int)version;
	o->type = (kw_key_type)type;
	if ((o->kind = strdup(kind)) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	KW_GUARD(dup_field(m, KWI_TAG_SPKI, &o->spki, &o->spki_len));
	KW_GUARD(dup_field(m, KWI_TAG_CERT, &o->cert, &o->cert_len));
	return chain_join(m, o);
}

/* HELLO, then LOAD of name / version on a new connection. */
static kw_rc link_load(kwi_agent_link *l, int version, kwi_agent_loaded *o)
{
	KW_GUARD(agent_connect(l));
	kwi_msgbuf_start(l->req, KWI_MSG_HELLO);
	kw_rc rc = exchange(l, KWI_MSG_HELLO_OK);
	if (rc == KW_OK) {
		kwi_msgbuf_start(l->req, KWI_MSG_LOAD);
		kwi_msgbuf_str(l->req, KWI_TAG_NAME, l->name);
		kwi_msgbuf_u32(l->req, KWI_TAG_VERSION, (uint32_t)version);
		rc = exchange(l, KWI_MSG_LOADED);
	}
	if (rc == KW_OK)
		rc = loaded_read(&l->reply, o, &l->handle);
	if (rc != KW_OK)
		agent_drop(l);
	return rc;
}

kw_rc kwi_agent_link_open(const char *socket_path, const char *name, int version,
                          kwi_agent_loaded *out, kwi_agent_link **link)
{
	memset(out, 0, sizeof(*out));
	*link = NULL;
	kwi_agent_link *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	l->fd = -1;
	pthread_mutex_init(&l->mu, NULL);
	l->path = strdup(socket_path);
	l->name = strdup(name);
	l->req = malloc(sizeof(*l->req));
	l->rbuf = malloc(KWI_PROTO_MAX);
	kw_rc rc = l->path && l->name && l->req && l->rbuf ? link_load(l, version, out)
	                                                   : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK && (l->spki = malloc(out->spki_len)) == NULL)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc != KW_OK) {
		kwi_agent_loaded_clear(out);
		kwi_agent_link_free(l);
		return rc;
	}
	memcpy(l->spki, out->spki, out->spki_len);
	l->spki_len = out->spki_len;
	l->version = out->version;
	*link = l;
	return KW_OK;
}

/* A new connection (a child after fork, or after a broken one) loads the
 * same version again; it must still be the same key. */
static kw_rc relink(kwi_agent_link *l)
{
	kwi_agent_loaded o;
	memset(&o, 0, sizeof(o));
	kw_rc rc = link_load(l, l->version, &o);
	if (rc == KW_OK && (o.spki_len != l->spki_len || memcmp(o.spki, l->spki, o.spki_len))) {
		agent_drop(l);
		rc = KW_FAIL(KW_ERR_STATE,
		             "the keyward agent's certificate '%s' version %d has another key now",
		             l->name, l->version);
	}
	kwi_agent_loaded_clear(&o);
	return rc;
}

static kw_rc sign_once(kwi_agent_link *l, const kw_sign_params *p, const unsigned char *dgst,
                       size_t dgst_len, unsigned char *sig, size_t *sig_len)
{
	kwi_msgbuf_start(l->req, KWI_MSG_SIGN);
	kwi_msgbuf_u32(l->req, KWI_TAG_HANDLE, l->handle);
	kwi_msgbuf_u32(l->req, KWI_TAG_SCHEME, (uint32_t)p->scheme);
	kwi_msgbuf_u32(l->req, KWI_TAG_MD_NID, (uint32_t)p->md_nid);
	kwi_msgbuf_u32(l->req, KWI_TAG_SALTLEN, (uint32_t)p->pss_saltlen);
	kwi_msgbuf_add(l->req, KWI_TAG_DIGEST, dgst, dgst_len);
	KW_GUARD(exchange(l, KWI_MSG_SIGNATURE));
	const kwi_tlv *t = kwi_msg_get(&l->reply, KWI_TAG_SIG);
	if (t == NULL || t->len == 0)
		return KW_FAIL(KW_ERR_UNAVAILABLE, "the keyward agent's signature is missing");
	if (t->len > *sig_len)
		return KW_FAIL(KW_ERR_USAGE, "signature buffer too small (%zu bytes, need %u)",
		               *sig_len, (unsigned)t->len);
	memcpy(sig, t->val, t->len);
	*sig_len = t->len;
	return KW_OK;
}

/* A connection kept from an earlier call may have been closed by an agent
 * that restarted since: when it breaks, the signature is asked once more on
 * a new connection (signing a digest twice is harmless), so a handshake
 * that starts after the restart succeeds. When the agent is down, or the
 * new connection breaks too, the signature fails cleanly. */
static kw_rc link_sign(kwi_agent_link *l, const kw_sign_params *p, const unsigned char *dgst,
                       size_t dgst_len, unsigned char *sig, size_t *sig_len)
{
	if (l->fd >= 0 && l->pid != getpid())
		agent_drop(l); /* the parent's connection: ours only to let go of */
	int kept = l->fd >= 0;
	if (!kept)
		KW_GUARD(relink(l));
	kw_rc rc = sign_once(l, p, dgst, dgst_len, sig, sig_len);
	if (rc == KW_ERR_UNAVAILABLE && kept && l->fd < 0) {
		kw_error_clear();
		KW_GUARD(relink(l));
		rc = sign_once(l, p, dgst, dgst_len, sig, sig_len);
	}
	return rc;
}

kw_rc kwi_agent_link_sign(kwi_agent_link *l, const kw_sign_params *p, const unsigned char *dgst,
                          size_t dgst_len, unsigned char *sig, size_t *sig_len)
{
	pthread_mutex_lock(&l->mu);
	kw_rc rc = link_sign(l, p, dgst, dgst_len, sig, sig_len);
	pthread_mutex_unlock(&l->mu);
	return rc;
}

void kwi_agent_link_free(kwi_agent_link *l)
{
	if (l == NULL)
		return;
	agent_drop(l); /* a child's copy of its parent's connection too: closing it is harmless */
	pthread_mutex_destroy(&l->mu);
	free(l->path);
	free(l->name);
	free(l->spki);
	free(l->req);
	free(l->rbuf);
	free(l);
}
