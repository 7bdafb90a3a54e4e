/*
 * OSSL_STORE loader for keyward:NAME and keyward:NAME?version=N.
 *
 * It yields, in order: the private key (by reference, so OpenSSL makes it an
 * EVP_PKEY through our keymgmt's load), the certificate, then its chain
 * certificates. With OSSL_STORE_expect() only the expected kind comes out; a
 * caller that expects a public key gets the SubjectPublicKeyInfo by value.
 * The key is opened when the URI is opened, so an unknown or disabled name or
 * an unreachable device fails there, with keyward's message.
 */
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/store.h>

#include "dispatch.h"
#include "provider.h"

typedef struct {
	kwp_ctx *prov;
	kwp_key *key;
	int expect;  /* OSSL_STORE_INFO_* or 0 */
	size_t next; /* 0: key, 1: certificate, 2..: chain */
} kwp_store_ctx;

void *kwp_store_open(void *provctx, const char *uri)
{
	kwp_ctx *prov = provctx;
	char *name = NULL;
	int version = 0;
	KWP_TRACE("store_open %s", uri);
	kw_error_clear(); /* kw_uri_parse keeps an earlier error otherwise */
	if (kw_uri_parse(uri, &name, &version) != KW_OK) {
		kwp_raise_kw(prov, KWP_R_BAD_URI);
		return NULL;
	}
	kwp_store_ctx *c = calloc(1, sizeof(*c));
	if (c != NULL) {
		c->prov = prov;
		c->key = kwp_key_open(prov, NULL, name, version);
	}
	free(name);
	if (c == NULL || c->key == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

const OSSL_PARAM *kwp_store_settable_ctx_params(void *provctx)
{
	static const OSSL_PARAM list[] = {OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
	                                  OSSL_PARAM_END};
	(void)provctx;
	KWP_TRACE("store_settable_ctx_params");
	return list;
}

int kwp_store_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
	kwp_store_ctx *c = loaderctx;
	const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
	KWP_TRACE("store_set_ctx_params");
	return p == NULL || OSSL_PARAM_get_int(p, &c->expect);
}

/* Whether object i (0: key, 1: certificate, 2..: chain) is of the expected kind. */
static int yields(const kwp_store_ctx *c, size_t i)
{
	if (i == 0)
		return c->expect == 0 || c->expect == OSSL_STORE_INFO_PKEY ||
		       c->expect == OSSL_STORE_INFO_PUBKEY;
	return c->expect == 0 || c->expect == OSSL_STORE_INFO_CERT;
}

/* The private key, by reference. */
static int load_key(kwp_store_ctx *c, OSSL_CALLBACK *cb, void *cbarg)
{
	int type = OSSL_OBJECT_PKEY;
	kwp_key_ref ref;
	kwp_key_ref_init(&ref, c->key);
	OSSL_PARAM params[] = {
	    OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &type),
	    OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
	                                     (char *)(c->key->is_rsa ? "RSA" : "EC"), 0),
	    OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &ref, sizeof(ref)),
	    OSSL_PARAM_END};
	return cb(params, cbarg);
}

/* The public half, by value: OpenSSL decodes it with the default provider. */
static int load_public(kwp_store_ctx *c, OSSL_CALLBACK *cb, void *cbarg)
{
	int type = OSSL_OBJECT_PKEY;
	size_t len = 0;
	const unsigned char *der = kw_key_spki(c->key->key, &len);
	OSSL_PARAM params[] = {
	    OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &type),
	    OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
	                                     (char *)("SubjectPublicKeyInfo"), 0),
	    OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_DATA, (void *)der, len), OSSL_PARAM_END};
	return cb(params, cbarg);
}

static int load_cert(const unsigned char *der, size_t len, OSSL_CALLBACK *cb, void *cbarg)
{
	int type = OSSL_OBJECT_CERT;
	OSSL_PARAM params[] = {OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &type),
	                       OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
	                                                        (char *)("Certificate"), 0),
	                       OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_DATA, (void *)der, len),
	                       OSSL_PARAM_END};
	return cb(params, cbarg);
}

static size_t object_count(const kwp_store_ctx *c)
{
	return 2 + kw_key_chain_count(c->key->key);
}

int kwp_store_load(void *loaderctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                   OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	kwp_store_ctx *c = loaderctx;
	const kw_key *k = c->key->key;
	size_t len = 0;
	(void)pw_cb;
	(void)pw_cbarg;
	while (c->next < object_count(c) && !yields(c, c->next))
		c->next++;
	KWP_TRACE("store_load %s object %zu (expect %d)", kw_key_name(k), c->next, c->expect);
	if (c->next >= object_count(c))
		return 0;
	size_t i = c->next++;
	if (i == 0 && c->expect == OSSL_STORE_INFO_PUBKEY)
		return load_public(c, object_cb, object_cbarg);
	if (i == 0)
		return load_key(c, object_cb, object_cbarg);
	const unsigned char *der =
	    i == 1 ? kw_key_cert(k, &len) : kw_key_chain_cert(k, i - 2, &len);
	return load_cert(der, len, object_cb, object_cbarg);
}

int kwp_store_eof(void *loaderctx)
{
	kwp_store_ctx *c = loaderctx;
	size_t i = c->next;
	while (i < object_count(c) && !yields(c, i))
		i++;
	KWP_TRACE("store_eof %d", i >= object_count(c));
	return i >= object_count(c);
}

int kwp_store_close(void *loaderctx)
{
	kwp_store_ctx *c = loaderctx;
	KWP_TRACE("store_close");
	if (c != NULL) {
		kwp_key_free(c->key);
		free(c);
	}
	return 1;
}
