/* ACME transport: HTTPS through libcurl, replay nonces, problem documents,
 * badNonce retries and the server's Retry-After. */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "issuers/acme/acme_issuer.h"

#define BODY_MAX      (1 << 20) /* a certificate chain is a few KiB */
#define NONCE_RETRIES 10
#define WAIT_RETRIES  3
#define WAIT_CAP      10 /* seconds we wait in-line; longer: fail, retry later */

static _Thread_local time_t retry_at;

time_t kwi_acme_retry_at(void)
{
	return retry_at;
}

void kwi_acme_retry_set(time_t at)
{
	retry_at = at;
}

void kwi_acme_resp_clear(kwi_acme_resp *r)
{
	free(r->body);
	free(r->location);
	json_decref(r->alternate);
	memset(r, 0, sizeof(*r));
	r->retry_after = -1;
}

typedef struct {
	kwi_acme_client *c;
	kwi_acme_resp *r;
	int too_big;
} xfer;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	size_t add = size * n;
	if (x->r->len + add > BODY_MAX) {
		x->too_big = 1;
		return 0;
	}
	char *b = realloc(x->r->body, x->r->len + add + 1);
	if (b == NULL)
		return 0;
	memcpy(b + x->r->len, p, add);
	x->r->len += add;
	b[x->r->len] = '\0';
	x->r->body = b;
	return add;
}

/* "Name: value\r\n" → value (trimmed) when the name matches. */
static int header_value(const char *line, size_t n, const char *name, char *out, size_t cap)
{
	size_t k = strlen(name);
	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return 0;
	const char *v = line + k + 1, *end = line + n;
	while (v < end && isspace((unsigned char)*v))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	size_t len = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
	memcpy(out, v, len);
	out[len] = '\0';
	return 1;
}

/* <URL>;rel="alternate" (one link per header line, as ACME servers send). */
static void alternate_link(kwi_acme_resp *r, const char *v)
{
	const char *end = strchr(v, '>');
	if (v[0] != '<' || end == NULL || strstr(end, "rel=\"alternate\"") == NULL)
		return;
	if (r->alternate == NULL)
		r->alternate = json_array();
	json_array_append_new(r->alternate, json_stringn(v + 1, (size_t)(end - v - 1)));
}

void kwi_acme_header(kwi_acme_client *c, kwi_acme_resp *r, const char *line, size_t len)
{
	char v[2048];
	if (header_value(line, len, "Replay-Nonce", v, sizeof(c->nonce)))
		memcpy(c->nonce, v, strlen(v) + 1);
	else if (header_value(line, len, "Location", v, sizeof(v))) {
		free(r->location);
		r->location = strdup(v);
	} else if (header_value(line, len, "Content-Type", v, sizeof(r->content_type)))
		memcpy(r->content_type, v, strlen(v) + 1);
	else if (header_value(line, len, "Link", v, sizeof(v)))
		alternate_link(r, v);
	else if (header_value(line, len, "Retry-After", v, sizeof(v))) {
		char *e;
		long secs = strtol(v, &e, 10);
		if (e == v || *e != '\0') { /* an HTTP date */
			time_t t = curl_getdate(v, NULL);
			secs = t > 0 ? (long)(t - time(NULL)) : -1;
		}
		r->retry_after = secs < 0 ? 0 : secs;
	}
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	kwi_acme_header(x->c, x->r, p, size * n);
	return size * n;
}

/* One exchange; body NULL: GET (head: HEAD). */
static kw_rc exchange(kwi_acme_client *c, const char *url, const char *body, int head,
                      kwi_acme_resp *r)
{
	struct curl_slist *h = NULL;
	xfer x = {c, r, 0};
	kwi_acme_resp_clear(r);
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "keyward/" KEYWARD_VERSION);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	if (c->ca_bundle)
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_bundle);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &x);
	if (head)
		curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/jose+json");
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	}
	CURLcode cc = curl_easy_perform(c->curl);
	curl_slist_free_all(h);
	if (x.too_big)
		return KW_FAIL(KW_ERR_PARSE, "ACME server %s: the response is over %d bytes", url,
		               BODY_MAX);
	if (cc != CURLE_OK)
		return KW_FAIL(KW_ERR_UNAVAILABLE, "cannot reach the ACME server at %s: %s", url,
		               curl_easy_strerror(cc));
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
	return KW_OK;
}

/* "urn:ietf:params:acme:error:badNonce" → "badNonce". */
static const char *problem_type(const json_t *p)
{
	const char *t = json_string_value(json_object_get(p, "type"));
	if (t == NULL)
		return "";
	const char *colon = strrchr(t, ':');
	return colon ? colon + 1 : t;
}

kw_rc kwi_acme_problem(const char *url, const kwi_acme_resp *r)
{
	json_t *p = r->body ? json_loads(r->body, 0, NULL) : NULL;
	const char *detail = json_string_value(json_object_get(p, "detail"));
	kw_rc code = r->status >= 500 || r->status == 429   ? KW_ERR_UNAVAILABLE
	             : r->status == 401 || r->status == 403 ? KW_ERR_AUTH
	                                                    : KW_ERR_BACKEND;
	kw_rc rc =
	    KW_FAIL(code, "ACME server refused %s (HTTP %ld%s%s): %s", url, r->status,
	            p ? ", " : "", p ? problem_type(p) : "", detail ? detail : "no detail given");
	json_decref(p);
	return rc;
}

int kwi_acme_bad_nonce(const kwi_acme_resp *r)
{
	json_t *p = r->status == 400 && r->body ? json_loads(r->body, 0, NULL) : NULL;
	int bad = p && strcmp(problem_type(p), "badNonce") == 0;
	json_decref(p);
	return bad;
}

void kwi_acme_pause(long retry_after, long cap)
{
	long s = retry_after < 1 ? 1 : retry_after > cap ? cap : retry_after;
	sleep((unsigned)s);
}

/* 429 / 503: wait in line when the server asks for a short pause; otherwise
 * remember when it wants us back. */
static int wait_out(const kwi_acme_resp *r, int *waits)
{
	if (r->status != 429 && r->status != 503)
		return 0;
	if (r->retry_after >= 0 && r->retry_after <= WAIT_CAP && (*waits)++ < WAIT_RETRIES) {
		kwi_acme_pause(r->retry_after, WAIT_CAP);
		return 1;
	}
	time_t now;
	if (kwi_now(&now) != KW_OK)
		kw_error_clear(), now = time(NULL);
	retry_at = now + (r->retry_after > 0 ? r->retry_after : 0);
	return 0;
}

kw_rc kwi_acme_get(kwi_acme_client *c, const char *url, kwi_acme_resp *r)
{
	int waits = 0;
	for (;;) {
		KW_GUARD(exchange(c, url, NULL, 0, r));
		if (r->status < 400)
			return KW_OK;
		if (!wait_out(r, &waits))
			return kwi_acme_problem(url, r);
	}
}

static kw_rc fresh_nonce(kwi_acme_client *c)
{
	kwi_acme_resp r = {0};
	const char *url = kwi_acme_endpoint(c, "newNonce");
	if (url == NULL)
		return KW_FAIL(KW_ERR_PARSE, "the ACME directory has no newNonce");
	c->nonce[0] = '\0';
	kw_rc rc = exchange(c, url, NULL, 1, &r);
	if (rc == KW_OK && c->nonce[0] == '\0')
		rc = KW_FAIL(KW_ERR_BACKEND, "the ACME server gave no nonce at %s (HTTP %ld)", url,
		             r.status);
	kwi_acme_resp_clear(&r);
	return rc;
}

static kw_rc signed_body(kwi_acme_client *c, const char *url, const json_t *payload, int use_jwk,
                         char **out)
{
	json_t *jws = NULL, *hdr = json_pack("{s:s, s:s}", "nonce", c->nonce, "url", url);
	char *text = payload ? json_dumps(payload, JSON_COMPACT) : strdup("");
	kw_rc rc = hdr && text ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK)
		rc = use_jwk || c->kid == NULL ? kwi_json_put(hdr, "jwk", json_incref(c->jwk))
		                               : kwi_json_put(hdr, "kid", json_string(c->kid));
	if (rc == KW_OK)
		rc = kwi_jws_sign(&c->key, c->alg, hdr, text, &jws);
	c->nonce[0] = '\0'; /* spent */
	if (rc == KW_OK && (*out = json_dumps(jws, JSON_COMPACT)) == NULL)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	json_decref(hdr);
	json_decref(jws);
	free(text);
	return rc;
}

kw_rc kwi_acme_post(kwi_acme_client *c, const char *url, const json_t *payload, int use_jwk,
                    kwi_acme_resp *r)
{
	int tries = 0, waits = 0;
	for (;;) {
		char *body = NULL;
		if (c->nonce[0] == '\0')
			KW_GUARD(fresh_nonce(c));
		KW_GUARD(signed_body(c, url, payload, use_jwk, &body));
		kw_rc rc = exchange(c, url, body, 0, r);
		free(body);
		if (rc != KW_OK || r->status < 400)
			return rc;
		/* RFC 8555 6.5: a rejected nonce is retried with the fresh one the
		 * error response carries. */
		if (kwi_acme_bad_nonce(r) && tries++ < NONCE_RETRIES)
			continue;
		if (!wait_out(r, &waits))
			return kwi_acme_problem(url, r);
	}
}

kw_rc kwi_acme_json(const kwi_acme_resp *r, json_t **out)
{
	json_error_t e;
	*out = r->body ? json_loads(r->body, 0, &e) : NULL;
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return KW_FAIL(KW_ERR_PARSE,
		               "the ACME server sent a body that is not a JSON object");
	}
	return KW_OK;
}

const char *kwi_acme_endpoint(const kwi_acme_client *c, const char *name)
{
	return json_string_value(json_object_get(c->dir, name));
}

kw_rc kwi_acme_open(kwi_acme_client *c, const char *directory, const char *ca_bundle)
{
	kwi_acme_resp r = {0};
	memset(c, 0, sizeof(*c));
	c->curl = curl_easy_init();
	c->directory_url = strdup(directory);
	c->ca_bundle = ca_bundle ? strdup(ca_bundle) : NULL;
	if (c->curl == NULL || c->directory_url == NULL || (ca_bundle && c->ca_bundle == NULL))
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = kwi_acme_get(c, directory, &r);
	if (rc == KW_OK && (rc = kwi_acme_json(&r, &c->dir)) != KW_OK)
		rc = KW_FAIL(KW_ERR_PARSE, "%s is not an ACME directory (no JSON object)",
		             directory);
	if (rc == KW_OK && (kwi_acme_endpoint(c, "newOrder") == NULL ||
	                    kwi_acme_endpoint(c, "newAccount") == NULL ||
	                    kwi_acme_endpoint(c, "newNonce") == NULL))
		rc = KW_FAIL(KW_ERR_PARSE,
		             "%s is not an ACME directory (no newNonce, newAccount or newOrder)",
		             directory);
	kwi_acme_resp_clear(&r);
	return rc;
}

kw_rc kwi_acme_use_key(kwi_acme_client *c, kwi_device *dev, const kw_key_blob *ref,
                       kw_key_type type)
{
	c->key = (kwi_signer){dev, ref, type};
	KW_GUARD(kwi_signer_pubkey(&c->key, &c->pub));
	KW_GUARD(kwi_jwk_of(c->pub, &c->jwk, &c->alg));
	return kwi_jwk_thumbprint(c->jwk, c->thumbprint);
}

void kwi_acme_close(kwi_acme_client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	EVP_PKEY_free(c->pub);
	json_decref(c->jwk);
	json_decref(c->dir);
	free(c->ca_bundle);
	free(c->directory_url);
	free(c->kid);
	memset(c, 0, sizeof(*c));
}
