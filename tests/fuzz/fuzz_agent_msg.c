/* The agent's messages (core/agent/proto.c), as the agent reads them from any
 * local user: the input is a byte stream on a pipe, read message by message
 * (framing, size limits) and each message parsed; a parsed message built
 * again field by field parses the same. */
#include <unistd.h>

#include "agent/proto.h"
#include "fuzz.h"

static void roundtrip(const kwi_msg *m, kwi_msgbuf *b)
{
	kwi_msg again;
	kwi_msgbuf_start(b, m->type);
	for (size_t i = 0; i < m->n; i++)
		kwi_msgbuf_add(b, m->tlv[i].tag, m->tlv[i].val, m->tlv[i].len);
	if (kwi_msgbuf_finish(b) != 0)
		abort(); /* what parsed fits */
	if (kwi_msg_parse(b->buf + 4, b->len - 4, &again) != KWI_PROTO_OK || again.n != m->n ||
	    again.type != m->type)
		abort();
	for (size_t i = 0; i < m->n; i++)
		if (again.tlv[i].tag != m->tlv[i].tag || again.tlv[i].len != m->tlv[i].len ||
		    memcmp(again.tlv[i].val, m->tlv[i].val, m->tlv[i].len) != 0)
			abort();
	char name[256];
	uint32_t v;
	(void)kwi_msg_str(m, KWI_TAG_NAME, name, sizeof(name));
	(void)kwi_msg_u32(m, KWI_TAG_VERSION, &v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int p[2];
	uint8_t *buf = malloc(KWI_PROTO_MAX);
	kwi_msgbuf *b = malloc(sizeof(*b));
	kwi_msg m;
	/* the message parser alone, on the input as a body */
	if (buf && b && kwi_msg_parse(data, size, &m) == KWI_PROTO_OK)
		roundtrip(&m, b);
	/* the stream: at most a pipe's worth, written before reading */
	if (buf && b && size <= 60000 && pipe(p) == 0) {
		if (write(p[1], data, size) == (ssize_t)size) {
			close(p[1]);
			p[1] = -1;
			size_t len = 0;
			while (kwi_msg_read(p[0], buf, &len) == KWI_PROTO_OK) {
				if (len > KWI_PROTO_MAX - 4)
					abort();
				if (kwi_msg_parse(buf, len, &m) == KWI_PROTO_OK)
					roundtrip(&m, b);
			}
		}
		if (p[1] >= 0)
			close(p[1]);
		close(p[0]);
	}
	free(buf);
	free(b);
	return 0;
}
