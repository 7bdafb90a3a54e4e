/*
 * libkeyward internal: the agent's wire protocol, shared by the client
 * (core/agent/client.c, behind kw_key) and the agent (agent/).
 *
 * A message is a 4-byte big-endian length of what follows, then one byte of
 * protocol version (KWI_PROTO_VERSION), one byte of message type, then
 * fields as TLVs: a 1-byte tag, a 2-byte big-endian length and the value.
 * A whole message (length prefix included) is at most KWI_PROTO_MAX bytes.
 * Integers are 4 bytes big-endian; strings carry no NUL. No message carries
 * private key material: the agent signs, it never hands a key out.
 *
 * This file does no I/O beyond kwi_msg_read / kwi_msg_write and keeps no
 * error record: the parser returns what was wrong, its callers decide
 * (the agent closes the connection, the client fails the call).
 */
#ifndef KEYWARD_CORE_AGENT_PROTO_H
#define KEYWARD_CORE_AGENT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define KWI_PROTO_VERSION  1
#define KWI_PROTO_MAX      65536 /* a whole message, length prefix included */
#define KWI_PROTO_MAX_TLVS 32

/* Message types: requests (client to agent), replies (agent to client). */
enum {
	KWI_MSG_HELLO = 1, /* no fields; reply HELLO_OK */
	KWI_MSG_LOAD = 2,  /* NAME, VERSION (0 = current); reply LOADED */
	KWI_MSG_SIGN = 3,  /* HANDLE, SCHEME, MD_NID, SALTLEN, DIGEST; reply SIGNATURE */
	KWI_MSG_HELLO_OK = 0x81,
	KWI_MSG_LOADED = 0x82,    /* HANDLE, VERSION, KEY_TYPE, KIND, SIG_MAX, CAPS, SPKI, CERT,
	                             CHAIN (one per chain certificate, in order) */
	KWI_MSG_SIGNATURE = 0x83, /* SIG */
	KWI_MSG_ERROR = 0xff,     /* RC (a kw_rc), MESSAGE (one line) */
};

/* Field tags. */
enum {
	KWI_TAG_NAME = 1,
	KWI_TAG_VERSION = 2,
	KWI_TAG_HANDLE = 3,
	KWI_TAG_KEY_TYPE = 4,
	KWI_TAG_KIND = 5,
	KWI_TAG_SIG_MAX = 6,
	KWI_TAG_CAPS = 7,
	KWI_TAG_SPKI = 8,
	KWI_TAG_CERT = 9,
	KWI_TAG_CHAIN = 10,
	KWI_TAG_SCHEME = 11,
	KWI_TAG_MD_NID = 12,
	KWI_TAG_SALTLEN = 13,
	KWI_TAG_DIGEST = 14,
	KWI_TAG_SIG = 15,
	KWI_TAG_RC = 16,
	KWI_TAG_MESSAGE = 17,
};

/* What is wrong with a message. */
typedef enum {
	KWI_PROTO_OK = 0,
	KWI_PROTO_EOF,       /* the peer closed the connection between messages */
	KWI_PROTO_IO,        /* read/write failed, or the peer closed inside a message */
	KWI_PROTO_OVERSIZED, /* the length says more than KWI_PROTO_MAX */
	KWI_PROTO_TRUNCATED, /* too short for a header, or a TLV runs past the end */
	KWI_PROTO_VERSION_BAD,
	KWI_PROTO_TOO_MANY, /* more than KWI_PROTO_MAX_TLVS fields */
} kwi_proto_rc;

/* A short name for rc ("oversized", ...). */
const char *kwi_proto_rc_name(kwi_proto_rc rc);

typedef struct {
	uint8_t tag;
	uint16_t len;
	const uint8_t *val; /* into the parsed buffer */
} kwi_tlv;

typedef struct {
	uint8_t type;
	size_t n;
	kwi_tlv tlv[KWI_PROTO_MAX_TLVS];
} kwi_msg;

/* Parses the body of a message (the bytes after the length prefix, len of
 * them, len <= KWI_PROTO_MAX - 4). m points into body. */
kwi_proto_rc kwi_msg_parse(const uint8_t *body, size_t len, kwi_msg *m);

/* The first field with tag, or NULL. */
const kwi_tlv *kwi_msg_get(const kwi_msg *m, uint8_t tag);
/* A 4-byte integer field: 0 when present and 4 bytes long, -1 otherwise. */
int kwi_msg_u32(const kwi_msg *m, uint8_t tag, uint32_t *out);
/* A string field into buf (NUL-terminated): 0, or -1 when absent, empty,
 * too long for buf or holding a NUL. */
int kwi_msg_str(const kwi_msg *m, uint8_t tag, char *buf, size_t cap);

/* A message being built (KWI_PROTO_MAX bytes: allocate it, do not put it on
 * a small stack). An overflow sticks: kwi_msgbuf_finish then fails. */
typedef struct {
	uint8_t buf[KWI_PROTO_MAX];
	size_t len;
	int overflow;
} kwi_msgbuf;

void kwi_msgbuf_start(kwi_msgbuf *b, uint8_t type);
void kwi_msgbuf_add(kwi_msgbuf *b, uint8_t tag, const void *val, size_t len);
void kwi_msgbuf_u32(kwi_msgbuf *b, uint8_t tag, uint32_t v);
void kwi_msgbuf_str(kwi_msgbuf *b, uint8_t tag, const char *s);
/* Writes the length prefix: 0, or -1 after an overflow. */
int kwi_msgbuf_finish(kwi_msgbuf *b);

/* Writes a finished message whole (no SIGPIPE). */
kwi_proto_rc kwi_msg_write(int fd, const kwi_msgbuf *b);
/* Reads one message's body into buf (KWI_PROTO_MAX bytes), its length in
 * *len. An oversized length is refused before its body is read. */
kwi_proto_rc kwi_msg_read(int fd, uint8_t *buf, size_t *len);

#endif
