/* kwbench-sign straight to the TPM: the key loaded once by keyward's backend,
 * then a bare Esys_Sign loop on its connection (one thread at a time: a TPM
 * connection serves one command at a time). Uses libkeyward internals. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "internal.h"
#include "store/sql.h"
#include "sign.h"
#include "tpm2/tpm2_internal.h"

typedef struct {
	kw_store *store;
	kwi_device dev;
	kw_key_blob ref;
	ESYS_TR key;
	int rsa;
	pthread_mutex_t lock;
} esys_ctx;

static int esys_encode(const TPMT_SIGNATURE *s, unsigned char *sig, size_t *len)
{
	if (s->sigAlg == TPM2_ALG_ECDSA)
		return sign_ecdsa_der(s->signature.ecdsa.signatureR.buffer,
		                      s->signature.ecdsa.signatureR.size,
		                      s->signature.ecdsa.signatureS.buffer,
		                      s->signature.ecdsa.signatureS.size, sig, len);
	if (s->sigAlg != TPM2_ALG_RSASSA || s->signature.rsassa.sig.size > *len)
		return -1;
	memcpy(sig, s->signature.rsassa.sig.buffer, s->signature.rsassa.sig.size);
	*len = s->signature.rsassa.sig.size;
	return 0;
}

static int esys_sign(sign_path *p, int thread, const unsigned char *msg, size_t msg_len,
                     unsigned char *sig, size_t *len)
{
	esys_ctx *c = p->ctx;
	kwb_tpm2_ctx *t = c->dev.ctx;
	const TPMT_TK_HASHCHECK check = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
	TPMT_SIG_SCHEME scheme = {.scheme = c->rsa ? TPM2_ALG_RSASSA : TPM2_ALG_ECDSA};
	TPM2B_DIGEST digest = {.size = 32};
	TPMT_SIGNATURE *s = NULL;
	(void)thread;

	if (c->rsa)
		scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
	else
		scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	SHA256(msg, msg_len, digest.buffer);
	pthread_mutex_lock(&c->lock);
	TSS2_RC trc = Esys_Sign(t->esys, c->key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	                        &digest, &scheme, &check, &s);
	pthread_mutex_unlock(&c->lock);
	int rc = trc == TSS2_RC_SUCCESS ? esys_encode(s, sig, len) : -1;
	Esys_Free(s);
	return rc;
}

static void esys_free(sign_path *p)
{
	esys_ctx *c = p->ctx;
	kwi_device_close(&c->dev); /* flushes the loaded key and the SRK */
	kw_key_blob_clear(&c->ref);
	kw_store_close(c->store);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* The current version's key reference and backend, read from the store. */
static int esys_ref(esys_ctx *c, const char *name, int64_t *backend_id)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (kwi_store_prepare(c->store,
	                      "SELECT v.key_ref, v.backend_id FROM certs c JOIN versions v"
	                      " ON v.cert_id = c.id AND v.version = c.current_version"
	                      " WHERE c.name = ?",
	                      &st) != KW_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		c->ref.len = (size_t)sqlite3_column_bytes(st, 0);
		c->ref.data = malloc(c->ref.len);
		if (c->ref.data) {
			memcpy(c->ref.data, sqlite3_column_blob(st, 0), c->ref.len);
			*backend_id = sqlite3_column_int64(st, 1);
			rc = 0;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

int sign_esys_open(const sign_opts *o, sign_path *p)
{
	esys_ctx *c = calloc(1, sizeof(*c));
	kwb_tpm2_blob blob;
	int64_t backend_id = 0;
	if (c == NULL)
		return -1;
	pthread_mutex_init(&c->lock, NULL);
	c->rsa = o->rsa;
	*p = (sign_path){.sign = esys_sign, .free = esys_free, .ctx = c};
	if (o->store == NULL || kw_store_open(o->store, &c->store) != KW_OK ||
	    esys_ref(c, o->key, &backend_id) != 0 ||
	    kwi_device_open_id(c->store, backend_id, &c->dev) != KW_OK ||
	    c->dev.ops != &kwb_tpm2_ops || kwb_tpm2_blob_parse(&c->ref, &blob) != KW_OK ||
	    kwb_tpm2_signer_get(c->dev.ctx, &blob, &c->key) != KW_OK) {
		fprintf(stderr, "kwbench-sign: esys: cannot load the TPM key of %s: %s\n", o->key,
		        kw_error_message());
		esys_free(p);
		return -1;
	}
	return 0;
}
