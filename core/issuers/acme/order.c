/* ACME orders (RFC 8555 7.4): new order → authorizations (http-01) → finalize
 * with a CSR signed in hardware → the chain. The account key signs every
 * request in its own device. */
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "issuers/acme/acme_issuer.h"

#define POLL_SECONDS 120 /* how long one order may take to validate or issue */
#define POLL_CAP     10  /* longest single pause between polls */

/* The identifiers the CSR asks for: its SANs (DNS names, IP addresses). */
static kw_rc identifiers(X509_REQ *csr, json_t **out)
{
	json_t *sans = kwi_req_sans_json(csr), *ids = json_array(), *v;
	size_t i;
	kw_rc rc = sans && ids ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	json_array_foreach(sans, i, v)
	{
		const char *s = json_string_value(v);
		if (rc != KW_OK || s == NULL)
			break;
		int dns = strncmp(s, "DNS:", 4) == 0, ip = strncmp(s, "IP:", 3) == 0;
		if (!dns && !ip) {
			rc = KW_FAIL(KW_ERR_USAGE,
			             "ACME issues for DNS names and IP addresses, not %s", s);
			break;
		}
		rc = kwi_json_append(ids, json_pack("{s:s, s:s}", "type", dns ? "dns" : "ip",
		                                    "value", s + (dns ? 4 : 3)));
	}
	json_decref(sans);
	if (rc == KW_OK && json_array_size(ids) == 0)
		rc = KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_DNS_SAN,
		                  "an ACME certificate needs at least one name");
	if (rc != KW_OK)
		json_decref(ids);
	else
		*out = ids;
	return rc;
}

/* POST-as-GET of url as JSON. */
static kw_rc fetch(kwi_acme_client *c, const char *url, json_t **out, long *retry_after)
{
	kwi_acme_resp r = {0};
	kw_rc rc = kwi_acme_post(c, url, NULL, 0, &r);
	if (rc == KW_OK)
		rc = kwi_acme_json(&r, out);
	if (retry_after)
		*retry_after = r.retry_after;
	kwi_acme_resp_clear(&r);
	return rc;
}

static const char *status_of(const json_t *o)
{
	const char *s = json_string_value(json_object_get(o, "status"));
	return s ? s : "";
}

/* Polls url until its status is not one of the waiting ones. */
static kw_rc poll_until(kwi_acme_client *c, const char *url, const char *what, const char *waiting,
                        json_t **obj)
{
	time_t deadline = time(NULL) + POLL_SECONDS;
	for (;;) {
		long retry_after = -1;
		json_decref(*obj);
		*obj = NULL;
		KW_GUARD(fetch(c, url, obj, &retry_after));
		const char *st = status_of(*obj);
		if (st[0] == '\0' || strstr(waiting, st) == NULL)
			return KW_OK;
		if (time(NULL) >= deadline)
			return KW_FAIL(KW_ERR_UNAVAILABLE,
			               "the ACME %s at %s is still %s after %d s", what, url, st,
			               POLL_SECONDS);
		kwi_acme_pause(retry_after, POLL_CAP);
	}
}

/* Why a challenge failed, as the server put it. */
static kw_rc authz_failed(const json_t *authz, const char *ident)
{
	const json_t *ch, *err = NULL;
	size_t i;
	json_array_foreach(json_object_get(authz, "challenges"), i, ch)
	{
		if (json_object_get(ch, "error"))
			err = json_object_get(ch, "error");
	}
	const char *detail = json_string_value(json_object_get(err, "detail"));
	return KW_FAIL(KW_ERR_BACKEND, "ACME: validating %s failed (authorization %s): %s", ident,
	               status_of(authz), detail ? detail : "no detail given");
}

static const json_t *http01_of(const json_t *authz)
{
	const json_t *ch;
	size_t i;
	json_array_foreach(json_object_get(authz, "challenges"), i, ch)
	{
		const char *t = json_string_value(json_object_get(ch, "type"));
		if (t && strcmp(t, "http-01") == 0)
			return ch;
	}
	return NULL;
}

typedef struct {
	kwi_acme_client *c;
	const char *listen, *webroot; /* how to answer http-01 (one of the two) */
	kwi_http01 *responder;
	const char *prefer; /* the preferred chain's top issuer CN, or NULL */
} order_ctx;

static kw_rc answer(order_ctx *o, const json_t *ch)
{
	const char *token = json_string_value(json_object_get(ch, "token"));
	const char *url = json_string_value(json_object_get(ch, "url"));
	char keyauth[512];
	if (token == NULL || url == NULL)
		return KW_FAIL(KW_ERR_PARSE, "the ACME server sent an http-01 challenge without "
		                             "token or url");
	if (o->responder == NULL)
		KW_GUARD(kwi_http01_start(o->listen, o->webroot, &o->responder));
	snprintf(keyauth, sizeof(keyauth), "%s.%s", token, o->c->thumbprint);
	KW_GUARD(kwi_http01_add(o->responder, token, keyauth));
	json_t *empty = json_object();
	kwi_acme_resp r = {0};
	kw_rc rc =
	    empty ? kwi_acme_post(o->c, url, empty, 0, &r) : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	json_decref(empty);
	kwi_acme_resp_clear(&r);
	return rc;
}

static kw_rc authorize(order_ctx *o, const char *url)
{
	json_t *authz = NULL;
	kw_rc rc = fetch(o->c, url, &authz, NULL);
	const json_t *id = json_object_get(authz, "identifier");
	char ident[300];
	const char *value = json_string_value(json_object_get(id, "value"));
	snprintf(ident, sizeof(ident), "%s", value ? value : "?");
	if (rc != KW_OK || strcmp(status_of(authz), "valid") == 0)
		goto out;
	if (strcmp(status_of(authz), "pending") != 0) {
		rc = authz_failed(authz, ident);
		goto out;
	}
	const json_t *ch = http01_of(authz);
	if (ch == NULL) {
		rc = KW_FAIL(KW_ERR_UNSUPPORTED,
		             "ACME: the server offers no http-01 challenge for %s (keyward answers "
		             "http-01 only)",
		             ident);
		goto out;
	}
	if ((rc = answer(o, ch)) == KW_OK)
		rc = poll_until(o->c, url, "authorization", "pending processing", &authz);
	if (rc == KW_OK && strcmp(status_of(authz), "valid") != 0)
		rc = authz_failed(authz, ident);
out:
	json_decref(authz);
	return rc;
}

static kw_rc new_order(kwi_acme_client *c, X509_REQ *csr, const char *replaces, json_t **order,
                       char **order_url)
{
	json_t *ids = NULL, *payload = NULL;
	kwi_acme_resp r = {0};
	KW_GUARD(identifiers(csr, &ids));
	payload = json_pack("{s:o}", "identifiers", ids);
	kw_rc rc = payload ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK && replaces)
		rc = kwi_json_put(payload, "replaces", json_string(replaces));
	if (rc == KW_OK)
		rc = kwi_acme_post(c, kwi_acme_endpoint(c, "newOrder"), payload, 0, &r);
	if (rc == KW_OK && r.location == NULL)
		rc = KW_FAIL(KW_ERR_PARSE, "the ACME server's new order has no Location");
	if (rc == KW_OK)
		rc = kwi_acme_json(&r, order);
	if (rc == KW_OK) {
		*order_url = r.location;
		r.location = NULL;
	}
	json_decref(payload);
	kwi_acme_resp_clear(&r);
	return rc;
}

static kw_rc finalize(kwi_acme_client *c, X509_REQ *csr, const json_t *order)
{
	unsigned char *der = NULL;
	int n = i2d_X509_REQ(csr, &der);
	char *b64 = n > 0 ? kwi_b64url(der, (size_t)n) : NULL;
	json_t *payload = b64 ? json_pack("{s:s}", "csr", b64) : NULL;
	const char *url = json_string_value(json_object_get(order, "finalize"));
	kwi_acme_resp r = {0};
	kw_rc rc = payload ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "cannot encode the CSR");
	if (rc == KW_OK && url == NULL)
		rc = KW_FAIL(KW_ERR_PARSE, "the ACME order has no finalize URL");
	if (rc == KW_OK)
		rc = kwi_acme_post(c, url, payload, 0, &r);
	kwi_acme_resp_clear(&r);
	json_decref(payload);
	free(b64);
	OPENSSL_free(der);
	return rc;
}

/* The chain in r: leaf (the one with our key) and its issuers, ordered. */
static kw_rc chain_of(const kwi_acme_resp *r, EVP_PKEY *pub, X509 **leaf_out,
                      STACK_OF(X509) * *ordered)
{
	STACK_OF(X509) *certs = NULL;
	X509 *leaf = NULL;
	kw_rc rc =
	    kwi_certs_parse("the ACME certificate", (const unsigned char *)r->body, r->len, &certs);
	for (int i = 0; rc == KW_OK && i < sk_X509_num(certs) && leaf == NULL; i++)
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, i)), pub) == 1)
			leaf = sk_X509_value(certs, i);
	if (rc == KW_OK && leaf == NULL)
		rc = KW_FAIL(KW_ERR_BACKEND, "the ACME server's certificate is not for our key");
	if (rc == KW_OK)
		rc = kwi_chain_order(leaf, certs, ordered, NULL);
	if (rc == KW_OK && X509_up_ref(leaf))
		*leaf_out = leaf;
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	return rc;
}

/* Whether the chain's topmost certificate was issued by common name cn
 * (certbot's --preferred-chain). */
static int chain_prefers(STACK_OF(X509) * chain, X509 *leaf, const char *cn)
{
	char got[256] = "";
	X509 *top = sk_X509_num(chain) ? sk_X509_value(chain, sk_X509_num(chain) - 1) : leaf;
	X509_NAME_get_text_by_NID(X509_get_issuer_name(top), NID_commonName, got, sizeof(got));
	return strcmp(got, cn) == 0;
}

/* The chain the server issued; with a preferred chain, the first of the
 * alternates whose top was issued by it (else the default one). */
static kw_rc download(kwi_acme_client *c, const json_t *order, EVP_PKEY *pub, const char *prefer,
                      X509 **cert, unsigned char **chain, size_t *chain_len)
{
	const char *url = json_string_value(json_object_get(order, "certificate"));
	kwi_acme_resp r = {0};
	STACK_OF(X509) *ordered = NULL;
	X509 *leaf = NULL;
	if (url == NULL)
		return KW_FAIL(KW_ERR_PARSE, "the valid ACME order has no certificate URL");
	kw_rc rc = kwi_acme_post(c, url, NULL, 0, &r);
	if (rc == KW_OK)
		rc = chain_of(&r, pub, &leaf, &ordered);
	json_t *alt = json_incref(r.alternate);
	for (size_t i = 0; rc == KW_OK && prefer && !chain_prefers(ordered, leaf, prefer) &&
	                   i < json_array_size(alt);
	     i++) {
		STACK_OF(X509) *other = NULL;
		X509 *other_leaf = NULL;
		rc = kwi_acme_post(c, json_string_value(json_array_get(alt, i)), NULL, 0, &r);
		if (rc == KW_OK)
			rc = chain_of(&r, pub, &other_leaf, &other);
		if (rc == KW_OK && chain_prefers(other, other_leaf, prefer)) {
			sk_X509_pop_free(ordered, X509_free), X509_free(leaf);
			ordered = other, leaf = other_leaf;
		} else
			sk_X509_pop_free(other, X509_free), X509_free(other_leaf);
	}
	json_decref(alt);
	if (rc == KW_OK)
		rc = kwi_chain_der(ordered, chain, chain_len);
	if (rc == KW_OK)
		*cert = leaf;
	else
		X509_free(leaf);
	sk_X509_pop_free(ordered, X509_free);
	kwi_acme_resp_clear(&r);
	return rc;
}

static kw_rc run_order(order_ctx *o, X509_REQ *csr, EVP_PKEY *pub, const char *replaces,
                       X509 **cert, unsigned char **chain, size_t *chain_len)
{
	json_t *order = NULL;
	char *url = NULL;
	const json_t *a;
	size_t i;
	kw_rc rc = new_order(o->c, csr, replaces, &order, &url);
	json_array_foreach(json_object_get(order, "authorizations"), i, a)
	{
		if (rc == KW_OK && json_string_value(a) == NULL)
			rc = KW_FAIL(KW_ERR_PARSE, "ACME order %s lists a bad authorization", url);
		if (rc == KW_OK)
			rc = authorize(o, json_string_value(a));
	}
	if (rc == KW_OK)
		rc = poll_until(o->c, url, "order", "pending", &order);
	if (rc == KW_OK && strcmp(status_of(order), "ready") != 0 &&
	    strcmp(status_of(order), "valid") != 0)
		rc = KW_FAIL(KW_ERR_BACKEND, "ACME order %s is %s, not ready to finalize", url,
		             status_of(order));
	if (rc == KW_OK && strcmp(status_of(order), "ready") == 0 &&
	    (rc = finalize(o->c, csr, order)) == KW_OK)
		rc = poll_until(o->c, url, "order", "ready processing", &order);
	if (rc == KW_OK && strcmp(status_of(order), "valid") != 0)
		rc = KW_FAIL(KW_ERR_BACKEND, "ACME order %s ended %s, not valid", url,
		             status_of(order));
	if (rc == KW_OK)
		rc = download(o->c, order, pub, o->prefer, cert, chain, chain_len);
	json_decref(order);
	free(url);
	return rc;
}

/* A client for issuer name with its account, the account key in its device
 * (dev reused when it is there; else *own is opened). */
static kw_rc client_for(kw_store *s, kwi_device *dev, const kwi_acme_issuer_row *is,
                        kwi_device *own, kwi_acme_client *c)
{
	kwi_device *adev = dev;
	if (dev == NULL || is->backend_id != dev->id) {
		KW_GUARD(kwi_device_open_id(s, is->backend_id, own));
		adev = own;
	}
	KW_GUARD(kwi_acme_open(c, json_string_value(json_object_get(is->config, "directory")),
	                       json_string_value(json_object_get(is->config, "ca_bundle"))));
	KW_GUARD(kwi_acme_use_key(c, adev, &is->ref, is->type));
	if (is->account_url == NULL)
		return KW_FAIL(KW_ERR_STATE, "ACME issuer '%s' has no account", is->name);
	c->kid = strdup(is->account_url);
	return c->kid ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kwi_acme_issue(kw_store *s, kwi_device *dev, const char *name, const kwi_http01_conf *http01,
                     X509_REQ *csr, EVP_PKEY *pub, X509 *previous, X509 **cert,
                     unsigned char **chain, size_t *chain_len)
{
	char *replaces = NULL;
	kwi_acme_issuer_row is;
	kwi_device own = {0};
	kwi_acme_client c = {0};
	*cert = NULL;
	*chain = NULL;
	*chain_len = 0;
	kwi_acme_retry_set(0);
	KW_GUARD(kwi_issuer_load(s, name, &is));
	kw_rc rc = client_for(s, dev, &is, &own, &c);
	/* the certificate's way, else the issuer's default */
	const json_t *fallback = json_object_get(is.config, "http01");
	int given = http01 && (http01->listen || http01->webroot);
	order_ctx o = {
	    &c, given ? http01->listen : json_string_value(json_object_get(fallback, "listen")),
	    given ? http01->webroot : json_string_value(json_object_get(fallback, "webroot")), NULL,
	    json_string_value(json_object_get(is.config, "preferred_chain"))};
	/* RFC 9773 4.2: name the certificate this order replaces, to servers
	 * that know about renewal information. */
	if (rc == KW_OK && previous && kwi_acme_endpoint(&c, "renewalInfo"))
		rc = kwi_ari_cert_id(previous, &replaces);
	if (rc == KW_OK)
		rc = run_order(&o, csr, pub, replaces, cert, chain, chain_len);
	kwi_http01_stop(o.responder);
	free(replaces);
	kwi_acme_close(&c);
	kwi_device_close(&own);
	kwi_acme_issuer_row_clear(&is);
	return rc;
}

kw_rc kwi_acme_revoke(kw_store *s, const char *name, X509 *cert, int reason)
{
	kwi_acme_issuer_row is;
	kwi_device own = {0};
	kwi_acme_client c = {0};
	kwi_acme_resp r = {0};
	unsigned char *der = NULL;
	int n = i2d_X509(cert, &der);
	char *b64 = n > 0 ? kwi_b64url(der, (size_t)n) : NULL;
	OPENSSL_free(der);
	if (b64 == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "cannot encode the certificate");
	kw_rc rc = kwi_issuer_load(s, name, &is);
	if (rc == KW_OK)
		rc = client_for(s, NULL, &is, &own, &c);
	const char *url = rc == KW_OK ? kwi_acme_endpoint(&c, "revokeCert") : NULL;
	if (rc == KW_OK && url == NULL)
		rc =
		    KW_FAIL(KW_ERR_UNSUPPORTED, "ACME issuer '%s' does not offer revocation", name);
	json_t *payload = json_pack("{s:s}", "certificate", b64);
	if (rc == KW_OK && payload && reason) /* RFC 8555 7.6: unspecified is left out */
		rc = kwi_json_put(payload, "reason", json_integer(reason));
	if (rc == KW_OK)
		rc = payload ? kwi_acme_post(&c, url, payload, 0, &r)
		             : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	json_decref(payload);
	kwi_acme_resp_clear(&r);
	kwi_acme_close(&c);
	kwi_device_close(&own);
	kwi_acme_issuer_row_clear(&is);
	free(b64);
	return rc;
}

kw_rc kwi_acme_deactivate(kw_store *s, const kwi_acme_issuer_row *is)
{
	kwi_device own = {0};
	kwi_acme_client c = {0};
	kwi_acme_resp r = {0};
	json_t *payload = json_pack("{s:s}", "status", "deactivated");
	kw_rc rc =
	    payload ? client_for(s, NULL, is, &own, &c) : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK)
		rc = kwi_acme_post(&c, is->account_url, payload, 0, &r);
	json_decref(payload);
	kwi_acme_resp_clear(&r);
	kwi_acme_close(&c);
	kwi_device_close(&own);
	return rc;
}
