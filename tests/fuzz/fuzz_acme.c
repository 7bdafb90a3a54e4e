/* What an ACME server (or whoever answers in its place) sends the client:
 * response header lines, then a body read as JSON, a problem document or
 * renewal information (RFC 9773). The input: two bytes of status, header
 * lines up to an empty line, then the body. */
#include "fuzz.h"
#include "issuers/acme/acme_issuer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	kwi_acme_client c = {0};
	kwi_acme_resp r = {0};
	kwi_acme_resp_clear(&r);
	r.status = 100 + (long)((data[0] << 8 | data[1]) % 500);
	const char *p = (const char *)data + 2, *end = (const char *)data + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		if (n <= 2 && (p[0] == '\n' || (p[0] == '\r' && n == 2))) {
			p += n;
			break;
		}
		kwi_acme_header(&c, &r, p, n);
		p += n;
	}
	/* what the headers left must be sound */
	if (memchr(c.nonce, '\0', sizeof(c.nonce)) == NULL ||
	    memchr(r.content_type, '\0', sizeof(r.content_type)) == NULL || r.retry_after < -1)
		abort();
	size_t i;
	json_t *alt;
	json_array_foreach(r.alternate, i, alt) if (!json_is_string(alt)) abort();
	r.body = fuzz_text((const uint8_t *)p, (size_t)(end - p));
	r.len = (size_t)(end - p);
	json_t *o = NULL;
	if (kwi_acme_json(&r, &o) == KW_OK && !json_is_object(o))
		abort();
	json_decref(o);
	(void)kwi_acme_bad_nonce(&r);
	if (kwi_acme_problem("https://acme.example/x", &r) == KW_OK)
		abort(); /* an error response is always an error */
	kwi_acme_ari_row w = {0};
	const time_t now = 1800000000;
	if (kwi_ari_parse_window(&r, now, &w) == KW_OK &&
	    (w.window_end < w.window_start || w.next_check <= now))
		abort();
	kwi_acme_resp_clear(&r);
	kw_error_clear();
	return 0;
}
