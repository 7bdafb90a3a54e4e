/* keyward serve's request head parser (server/http_parse.c): the first bytes
 * a peer sends after the TLS handshake, before anyone knows who it is. The
 * input is the head as conn.c hands it over (up to and with the empty line). */
#include "fuzz.h"
#include "server/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kws_http_head h;
	const char *why = NULL;
	int rc = kws_http_head_parse((const char *)data, size, &h, &why);
	if (rc == 0) {
		/* what is accepted has a method, a path, HTTP/1.0 or 1.1 and a length */
		if (h.method[0] == '\0' || h.target == NULL || h.target[0] != '/' || h.minor < 0 ||
		    h.minor > 1 || h.content_length < -1 || size > KWS_HEAD_MAX)
			abort();
	} else if (why == NULL || why[0] == '\0' ||
	           (rc != 400 && rc != 417 && rc != 431 && rc != 500 && rc != 501 && rc != 505))
		abort(); /* a refusal has a status and a reason */
	kws_http_head_clear(&h);
	return 0;
}
