/* see internal.h: an HTTP/1.1 request head, strictly (RFC 9112) */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define CONTENT_LENGTH_DIGITS 18

static int fail(const char **why, int status, const char *text)
{
	*why = text;
	return status;
}

/* RFC 9110 5.6.2: the characters of a token (method, field name). */
static int is_tchar(unsigned char c)
{
	return c != '\0' && (isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The end of the line at p: the "\r\n" before end; NULL when a CR, an LF or
 * a NUL stands alone first. */
static const char *line_end(const char *p, const char *end)
{
	for (; p < end; p++) {
		if (*p == '\r' && p + 1 < end && p[1] == '\n')
			return p;
		if (*p == '\r' || *p == '\n' || *p == '\0')
			return NULL;
	}
	return NULL;
}

/* METHOD SP request-target SP HTTP/1.x */
static int request_line(const char *p, const char *eol, kws_http_head *h, const char **why)
{
	size_t n = 0;
	while (p + n < eol && is_tchar((unsigned char)p[n]))
		n++;
	if (n == 0 || n >= sizeof(h->method) || p + n == eol || p[n] != ' ')
		return fail(why, 400, "malformed request line");
	memcpy(h->method, p, n);
	h->method[n] = '\0';
	p += n + 1;
	for (n = 0; p + n < eol && p[n] > 0x20 && p[n] < 0x7f; n++)
		;
	if (n == 0 || p + n == eol || p[n] != ' ')
		return fail(why, 400, "malformed request line");
	if (p[0] != '/')
		return fail(why, 400, "the request target must be a path");
	if ((h->target = strndup(p, n)) == NULL)
		return fail(why, 500, "out of memory");
	p += n + 1;
	if (eol - p == 8 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '0' || p[7] == '1')) {
		h->minor = p[7] - '0';
		return 0;
	}
	if (eol - p == 8 && memcmp(p, "HTTP/", 5) == 0 && isdigit((unsigned char)p[5]) &&
	    p[6] == '.' && isdigit((unsigned char)p[7]))
		return fail(why, 505, "HTTP version not supported: use HTTP/1.1");
	return fail(why, 400, "malformed request line");
}

static int content_length(const char *v, kws_http_head *h, const char **why)
{
	size_t n = strlen(v);
	if (h->content_length >= 0)
		return fail(why, 400, "more than one Content-Length");
	if (n == 0 || n > CONTENT_LENGTH_DIGITS || strspn(v, "0123456789") != n)
		return fail(why, 400, "Content-Length is not a number");
	h->content_length = strtoll(v, NULL, 10);
	return 0;
}

/* "close" / "keep-alive" among the comma-separated options. */
static void connection_options(const char *v, int *close, int *keep)
{
	const char *p = v;
	while (*p) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, " \t,");
		if (n == 5 && strncasecmp(p, "close", 5) == 0)
			*close = 1;
		else if (n == 10 && strncasecmp(p, "keep-alive", 10) == 0)
			*keep = 1;
		p += n;
	}
}

/* What the server acts on; the rest is kept for the handlers. */
static int header_known(const char *name, const char *value, kws_http_head *h, int *close,
                        int *keep, const char **why)
{
	if (strcasecmp(name, "Content-Length") == 0)
		return content_length(value, h, why);
	if (strcasecmp(name, "Transfer-Encoding") == 0)
		return fail(
		    why, 501,
		    "Transfer-Encoding is not supported: send the body with Content-Length");
	if (strcasecmp(name, "Expect") == 0) {
		if (strcasecmp(value, "100-continue") != 0)
			return fail(why, 417, "the only expectation supported is 100-continue");
		h->expect_continue = 1;
	}
	if (strcasecmp(name, "Connection") == 0)
		connection_options(value, close, keep);
	return 0;
}

/* field-name ":" OWS field-value OWS */
static int header_line(const char *p, const char *eol, kws_http_head *h, int *close, int *keep,
                       const char **why)
{
	size_t n = 0;
	while (p + n < eol && is_tchar((unsigned char)p[n]))
		n++;
	if (n == 0 || p + n == eol || p[n] != ':')
		return fail(why, 400, "malformed header field");
	const char *v = p + n + 1;
	while (v < eol && (*v == ' ' || *v == '\t'))
		v++;
	const char *vend = eol;
	while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
		vend--;
	for (const char *q = v; q < vend; q++) {
		unsigned char ch = (unsigned char)*q;
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return fail(why, 400, "control character in a header field");
	}
	char *name = strndup(p, n), *value = strndup(v, (size_t)(vend - v));
	int rc = name && value ? header_known(name, value, h, close, keep, why)
	                       : fail(why, 500, "out of memory");
	if (rc == 0 && evhttp_add_header(&h->headers, name, value) != 0)
		rc = fail(why, 400, "malformed header field");
	free(name);
	free(value);
	return rc;
}

int kws_http_head_parse(const char *buf, size_t len, kws_http_head *h, const char **why)
{
	int rc, close = 0, keep = 0, fields = 0;
	memset(h, 0, sizeof(*h));
	TAILQ_INIT(&h->headers);
	h->content_length = -1;
	*why = "";
	if (len > KWS_HEAD_MAX)
		return fail(why, 431, "the request line and headers are larger than 16 KiB");
	if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0)
		return fail(why, 400, "malformed request head");
	const char *end = buf + len - 2; /* the empty line's CRLF */
	const char *eol = line_end(buf, end + 2);
	if (eol == NULL)
		return fail(why, 400, "malformed request line");
	if ((rc = request_line(buf, eol, h, why)) != 0)
		return rc;
	for (const char *p = eol + 2; p < end; p = eol + 2) {
		if (*p == ' ' || *p == '\t')
			return fail(why, 400, "obsolete line folding in the headers");
		if ((eol = line_end(p, end + 2)) == NULL || eol > end)
			return fail(why, 400, "malformed header field");
		if (++fields > KWS_HEADERS_MAX)
			return fail(why, 431, "more than 64 header fields");
		if ((rc = header_line(p, eol, h, &close, &keep, why)) != 0)
			return rc;
	}
	h->keep_alive = h->minor == 1 ? !close : keep && !close;
	return 0;
}

void kws_http_head_clear(kws_http_head *h)
{
	evhttp_clear_headers(&h->headers);
	free(h->target);
	memset(h, 0, sizeof(*h));
	TAILQ_INIT(&h->headers);
	h->content_length = -1;
}
