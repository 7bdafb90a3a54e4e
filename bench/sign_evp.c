/* kwbench-sign through OpenSSL: keyward's provider, tpm2-openssl, libp11's engine */
#define OPENSSL_SUPPRESS_DEPRECATED /* the pkcs11 engine is an ENGINE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include "sign.h"

typedef struct {
	EVP_PKEY *key;
	ENGINE *engine;
	const char *propq; /* where the signature is fetched (NULL: the key's provider) */
} evp_ctx;

/* A fresh context per signature, as a TLS server makes one per handshake. */
static int evp_sign(sign_path *p, int thread, const unsigned char *msg, size_t msg_len,
                    unsigned char *sig, size_t *len)
{
	evp_ctx *c = p->ctx;
	(void)thread;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m && EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, c->propq, c->key, NULL) == 1 &&
	         EVP_DigestSign(m, sig, len, msg, msg_len) == 1;
	EVP_MD_CTX_free(m);
	return ok ? 0 : -1;
}

static void evp_free(sign_path *p)
{
	evp_ctx *c = p->ctx;
	EVP_PKEY_free(c->key);
	if (c->engine) {
		ENGINE_finish(c->engine);
		ENGINE_free(c->engine);
	}
	free(c);
}

static EVP_PKEY *store_key(const char *uri)
{
	EVP_PKEY *k = NULL;
	OSSL_STORE_CTX *s = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
	while (s && k == NULL && !OSSL_STORE_eof(s)) {
		OSSL_STORE_INFO *i = OSSL_STORE_load(s);
		if (i && OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_PKEY)
			k = OSSL_STORE_INFO_get1_PKEY(i);
		OSSL_STORE_INFO_free(i);
		if (i == NULL)
			break;
	}
	OSSL_STORE_close(s);
	return k;
}

static int providers_load(const char *name)
{
	if (OSSL_PROVIDER_load(NULL, name) == NULL || OSSL_PROVIDER_load(NULL, "default") == NULL) {
		fprintf(stderr, "kwbench-sign: cannot load the %s provider\n", name);
		return -1;
	}
	return 0;
}

static ENGINE *engine_open(const sign_opts *o)
{
	ENGINE_load_dynamic();
	ENGINE *e = ENGINE_by_id("pkcs11");
	if (e == NULL) {
		fprintf(stderr, "kwbench-sign: no pkcs11 engine (libengine-pkcs11-openssl)\n");
		return NULL;
	}
	if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", o->module, 0) ||
	    (o->pin && !ENGINE_ctrl_cmd_string(e, "PIN", o->pin, 0)) || !ENGINE_init(e)) {
		fprintf(stderr, "kwbench-sign: cannot set up the pkcs11 engine\n");
		ENGINE_free(e);
		return NULL;
	}
	return e;
}

int sign_evp_open(const sign_opts *o, sign_path *p)
{
	evp_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -1;
	if (strcmp(o->mode, "engine") == 0) {
		if (o->module == NULL || (c->engine = engine_open(o)) == NULL) {
			free(c);
			return -1;
		}
		c->key = ENGINE_load_private_key(c->engine, o->key, NULL, NULL);
	} else {
		const char *prov = strcmp(o->mode, "provider") == 0 ? "keyward" : "tpm2";
		if (providers_load(prov) != 0) {
			free(c);
			return -1;
		}
		c->key = store_key(o->key);
		if (strcmp(prov, "tpm2") == 0) /* as tpm2-openssl documents its use */
			c->propq = "?provider=tpm2";
	}
	if (c->key == NULL) {
		fprintf(stderr, "kwbench-sign: %s: cannot load the key %s\n", o->mode, o->key);
		p->ctx = c;
		evp_free(p);
		return -1;
	}
	*p = (sign_path){.sign = evp_sign, .free = evp_free, .ctx = c};
	return 0;
}
