/* see agent/proto.h: the agent's messages, framing and fields */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/proto.h"

const char *kwi_proto_rc_name(kwi_proto_rc rc)
{
	switch (rc) {
	case KWI_PROTO_OK: return "ok";
	case KWI_PROTO_EOF: return "closed";
	case KWI_PROTO_IO: return "broken or closed inside a message";
	case KWI_PROTO_OVERSIZED: return "oversized";
	case KWI_PROTO_TRUNCATED: return "truncated";
	case KWI_PROTO_VERSION_BAD: return "wrong protocol version";
	case KWI_PROTO_TOO_MANY: return "too many fields";
	}
	return "malformed";
}

kwi_proto_rc kwi_msg_parse(const uint8_t *body, size_t len, kwi_msg *m)
{
	m->n = 0;
	m->type = 0;
	if (len < 2)
		return KWI_PROTO_TRUNCATED;
	if (len > KWI_PROTO_MAX - 4)
		return KWI_PROTO_OVERSIZED;
	if (body[0] != KWI_PROTO_VERSION)
		return KWI_PROTO_VERSION_BAD;
	m->type = body[1];
	size_t off = 2;
	while (off < len) {
		if (len - off < 3)
			return KWI_PROTO_TRUNCATED;
		uint16_t flen = (uint16_t)((body[off + 1] << 8) | body[off + 2]);
		if (len - off - 3 < flen)
			return KWI_PROTO_TRUNCATED;
		if (m->n == KWI_PROTO_MAX_TLVS)
			return KWI_PROTO_TOO_MANY;
		m->tlv[m->n++] = (kwi_tlv){body[off], flen, body + off + 3};
		off += 3 + (size_t)flen;
	}
	return KWI_PROTO_OK;
}

const kwi_tlv *kwi_msg_get(const kwi_msg *m, uint8_t tag)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->tlv[i].tag == tag)
			return &m->tlv[i];
	return NULL;
}

int kwi_msg_u32(const kwi_msg *m, uint8_t tag, uint32_t *out)
{
	const kwi_tlv *t = kwi_msg_get(m, tag);
	if (t == NULL || t->len != 4)
		return -1;
	*out = ((uint32_t)t->val[0] << 24) | ((uint32_t)t->val[1] << 16) |
	       ((uint32_t)t->val[2] << 8) | t->val[3];
	return 0;
}

int kwi_msg_str(const kwi_msg *m, uint8_t tag, char *buf, size_t cap)
{
	const kwi_tlv *t = kwi_msg_get(m, tag);
	if (t == NULL || t->len == 0 || t->len >= cap || memchr(t->val, 0, t->len) != NULL)
		return -1;
	memcpy(buf, t->val, t->len);
	buf[t->len] = '\0';
	return 0;
}

void kwi_msgbuf_start(kwi_msgbuf *b, uint8_t type)
{
	b->len = 6;
	b->overflow = 0;
	b->buf[4] = KWI_PROTO_VERSION;
	b->buf[5] = type;
}

void kwi_msgbuf_add(kwi_msgbuf *b, uint8_t tag, const void *val, size_t len)
{
	if (b->overflow || len > 0xffff || sizeof(b->buf) - b->len < 3 + len) {
		b->overflow = 1;
		return;
	}
	b->buf[b->len] = tag;
	b->buf[b->len + 1] = (uint8_t)(len >> 8);
	b->buf[b->len + 2] = (uint8_t)len;
	if (len > 0)
		memcpy(b->buf + b->len + 3, val, len);
	b->len += 3 + len;
}

void kwi_msgbuf_u32(kwi_msgbuf *b, uint8_t tag, uint32_t v)
{
	uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	kwi_msgbuf_add(b, tag, be, sizeof(be));
}

void kwi_msgbuf_str(kwi_msgbuf *b, uint8_t tag, const char *s)
{
	kwi_msgbuf_add(b, tag, s, strlen(s));
}

int kwi_msgbuf_finish(kwi_msgbuf *b)
{
	if (b->overflow)
		return -1;
	size_t n = b->len - 4;
	b->buf[0] = (uint8_t)(n >> 24);
	b->buf[1] = (uint8_t)(n >> 16);
	b->buf[2] = (uint8_t)(n >> 8);
	b->buf[3] = (uint8_t)n;
	return 0;
}

kwi_proto_rc kwi_msg_write(int fd, const kwi_msgbuf *b)
{
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = send(fd, b->buf + off, b->len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return KWI_PROTO_IO;
		off += (size_t)w;
	}
	return KWI_PROTO_OK;
}

/* Reads exactly n bytes: OK, EOF when none came at all, IO otherwise. */
static kwi_proto_rc read_full(int fd, uint8_t *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t r = read(fd, p + off, n - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 && off == 0)
			return KWI_PROTO_EOF;
		if (r <= 0)
			return KWI_PROTO_IO;
		off += (size_t)r;
	}
	return KWI_PROTO_OK;
}

kwi_proto_rc kwi_msg_read(int fd, uint8_t *buf, size_t *len)
{
	uint8_t hdr[4];
	*len = 0;
	kwi_proto_rc rc = read_full(fd, hdr, sizeof(hdr));
	if (rc != KWI_PROTO_OK)
		return rc;
	uint32_t n =
	    ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) | hdr[3];
	if (n > KWI_PROTO_MAX - 4)
		return KWI_PROTO_OVERSIZED;
	if (n < 2)
		return KWI_PROTO_TRUNCATED;
	rc = read_full(fd, buf, n);
	if (rc == KWI_PROTO_EOF)
		rc = KWI_PROTO_IO;
	*len = n;
	return rc;
}
