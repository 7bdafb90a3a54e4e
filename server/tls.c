/* see internal.h: TLS with the server key in hardware, clients from the management CA */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

#include <keyward/lifecycle.h>

#include "internal.h"

#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* The chain does not lead to the management CA: the handshake fails, and
 * the connection notes why, with the presented certificate's thumbprint. */
static int verify(int ok, X509_STORE_CTX *x)
{
	unsigned char md[32];
	unsigned int n = 0;
	char hex[65], reason[160];
	X509 *leaf = X509_STORE_CTX_get0_cert(x);
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ok)
		return 1;
	if (leaf == NULL || X509_digest(leaf, EVP_sha256(), md, &n) != 1 || n != sizeof(md))
		n = 0;
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(reason, sizeof(reason), "client certificate refused: %s",
	         X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)));
	if (ssl)
		kws_conn_tls_refusal(ssl, reason, n ? hex : NULL);
	return 0;
}

void kws_tls_peer_sha256(SSL *ssl, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	out[0] = '\0';
	if (peer == NULL || X509_digest(peer, EVP_sha256(), md, &n) != 1 || n != sizeof(md))
		return;
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int tls_fail(const char *what, const char *name)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	fprintf(stderr, "keyward: %s '%s'%s%s\n", what, name, buf[0] ? ": " : "", buf);
	ERR_clear_error();
	return 1;
}

/* keyward:NAME through the provider: the key (in hardware), the certificate
 * and its chain. */
static int load_identity(SSL_CTX *ctx, const char *name)
{
	char uri[256];
	EVP_PKEY *key = NULL;
	X509 *leaf = NULL;
	STACK_OF(X509) *chain = sk_X509_new_null();
	snprintf(uri, sizeof(uri), "keyward:%s", name);
	OSSL_STORE_CTX *st = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
	while (st && !OSSL_STORE_eof(st)) {
		OSSL_STORE_INFO *i = OSSL_STORE_load(st);
		if (i == NULL)
			break;
		int t = OSSL_STORE_INFO_get_type(i);
		if (t == OSSL_STORE_INFO_PKEY && key == NULL)
			key = OSSL_STORE_INFO_get1_PKEY(i);
		else if (t == OSSL_STORE_INFO_CERT && leaf == NULL)
			leaf = OSSL_STORE_INFO_get1_CERT(i);
		else if (t == OSSL_STORE_INFO_CERT && chain)
			sk_X509_push(chain, OSSL_STORE_INFO_get1_CERT(i));
		OSSL_STORE_INFO_free(i);
	}
	OSSL_STORE_close(st);
	int ex = 0;
	if (key == NULL || leaf == NULL)
		ex = tls_fail("cannot load the key and certificate of", name);
	else if (SSL_CTX_use_certificate(ctx, leaf) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	         SSL_CTX_check_private_key(ctx) != 1)
		ex = tls_fail("the TLS library refused the key of", name);
	for (int i = 0; ex == 0 && i < sk_X509_num(chain); i++)
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1)
			ex = tls_fail("cannot add the chain of", name);
	EVP_PKEY_free(key);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	return ex;
}

/* Only the management CA's clients: chain checked by TLS (times by
 * kw_mgmt_authorize, with keyward's clock), the rest per request. */
static int trust_mgmt_ca(SSL_CTX *ctx, kw_store *s)
{
	char *pem = NULL;
	kw_rc rc = kw_cert_export(s, KW_MGMT_CA_NAME, 0, 0, &pem);
	if (rc != KW_OK) {
		fprintf(stderr, "keyward: no management CA (run: keyward mgmt init): %s\n",
		        kw_error_message());
		return 1;
	}
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *ca = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	free(pem);
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	int ok = ca && X509_STORE_add_cert(store, ca) == 1 && SSL_CTX_add_client_CA(ctx, ca) == 1;
	X509_free(ca);
	if (!ok)
		return tls_fail("cannot trust the management CA", KW_MGMT_CA_NAME);
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_NO_CHECK_TIME);
	X509_VERIFY_PARAM_set_purpose(SSL_CTX_get0_param(ctx), X509_PURPOSE_SSL_CLIENT);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify);
	return 0;
}

static OSSL_PROVIDER *prov_keyward, *prov_default;

static int load_providers(void)
{
	/* keyward first, then default: as -provider keyward -provider default */
	if ((prov_keyward = OSSL_PROVIDER_load(NULL, "keyward")) == NULL)
		return tls_fail("cannot load the OpenSSL provider", "keyward");
	if ((prov_default = OSSL_PROVIDER_load(NULL, "default")) == NULL)
		return tls_fail("cannot load the OpenSSL provider", "default");
	return 0;
}

void kws_tls_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
	if (prov_keyward)
		OSSL_PROVIDER_unload(prov_keyward);
	if (prov_default)
		OSSL_PROVIDER_unload(prov_default);
	prov_keyward = prov_default = NULL;
}

int kws_tls_new(kw_store *s, const char *cert_name, SSL_CTX **out)
{
	*out = NULL;
	json_t *shown = NULL;
	if (kw_cert_show(s, cert_name, 0, &shown) != KW_OK) {
		fprintf(stderr,
		        "keyward: no TLS certificate for the API: %s (run: keyward mgmt init)\n",
		        kw_error_message());
		return 1;
	}
	json_decref(shown);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return tls_fail("cannot make a TLS context for", cert_name);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* TLS 1.2: forward-secret AEAD suites only (no CBC, no static RSA key
	 * exchange); TLS 1.3 keeps OpenSSL's suites, all of them AEAD */
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		SSL_CTX_free(ctx);
		return tls_fail("cannot set the TLS 1.2 cipher suites for", cert_name);
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
	/* every connection authenticates afresh: no resumption */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	int ex = trust_mgmt_ca(ctx, s);
	if (ex == 0)
		ex = load_providers();
	if (ex == 0)
		ex = load_identity(ctx, cert_name);
	if (ex) {
		kws_tls_free(ctx);
		return ex;
	}
	*out = ctx;
	return 0;
}
