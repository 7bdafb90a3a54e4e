/*
 * Reference files: a PEM "KEYWARD KEY REFERENCE" (kw_keyref_encode's DER:
 * a certificate name, maybe a store and a version; no key material) becomes
 * the hardware key wherever OpenSSL reads a private key file.
 *
 * OpenSSL 3.0's pem2der decoder passes on only the PEM labels it knows; an
 * unknown label is left "empty handed" for other decoders. So the chain is
 * ours from the start:
 *
 *   PEM --(DER decoder, input=pem)--> DER, structure KeywardKeyRef, type EC|RSA
 *       --(EC / RSA decoder, input=der, structure=KeywardKeyRef)--> key reference
 *       --> keymgmt load
 *
 * The first step opens the key, so that an unknown or disabled certificate or
 * an unreachable device is reported right there, where OpenSSL keeps the
 * error (the file store hides errors of later steps), and so that it can name
 * the key type. It hands the opened key to the second step, which runs
 * nested inside its callback on the same thread, through a thread-local slot:
 * the device is contacted once per load.
 *
 * Anything that is not a keyward reference is declined (return 1 without a
 * callback), never failed, so other keys keep loading.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "dispatch.h"
#include "provider.h"

#define REF_MAX_LEN 16384

/* The key the PEM step opened, while its callback runs on this thread. */
static _Thread_local struct {
	const unsigned char *der;
	size_t len;
	kwp_key *key;
} handoff;

void *kwp_dec_newctx(void *provctx)
{
	KWP_TRACE("decoder_newctx");
	return provctx;
}

void kwp_dec_freectx(void *ctx)
{
	(void)ctx;
	KWP_TRACE("decoder_freectx");
}

/* Opens the key a reference names; raises keyward's error if it cannot. */
static kwp_key *ref_open(kwp_ctx *prov, const unsigned char *der, size_t len)
{
	char *name = NULL, *store = NULL;
	int version = 0;
	kw_error_clear(); /* kw_keyref_decode keeps an earlier error otherwise */
	if (kw_keyref_decode(der, len, &name, &store, &version) != KW_OK) {
		kwp_raise(prov, KWP_R_BAD_REFERENCE, "bad " KW_KEYREF_PEM_NAME ": %s",
		          kwp_kw_message());
		return NULL;
	}
	kwp_key *k = kwp_key_open(prov, store, name, version);
	free(name);
	free(store);
	return k;
}

int kwp_dec_pem_decode(void *ctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb,
                       void *data_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	kwp_ctx *prov = ctx;
	char *label = NULL, *header = NULL;
	unsigned char *der = NULL;
	long len = 0;
	int ok = 1, found;
	(void)selection;
	(void)pw_cb;
	(void)pw_cbarg;
	BIO *in = BIO_new_from_core_bio(prov->libctx, cin);
	if (in == NULL)
		return 0;
	ERR_set_mark();
	found = PEM_read_bio(in, &label, &header, &der, &len) > 0 &&
	        strcmp(label, KW_KEYREF_PEM_NAME) == 0;
	ERR_pop_to_mark();
	BIO_free(in);
	KWP_TRACE("decoder_decode PEM: %s",
	          found ? "a keyward key reference" : "not ours, declined");
	if (!found)
		goto out;
	kwp_key *k = ref_open(prov, der, (size_t)len);
	if (k == NULL) {
		ok = 0;
		goto out;
	}
	int type = OSSL_OBJECT_PKEY;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &type),
	    OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
	                                     (char *)(k->is_rsa ? "RSA" : "EC"), 0),
	    OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
	                                     (char *)(KWP_REF_STRUCTURE), 0),
	    OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_DATA, der, (size_t)len), OSSL_PARAM_END};
	handoff.der = der;
	handoff.len = (size_t)len;
	handoff.key = k;
	ok = data_cb(params, data_cbarg);
	handoff.der = NULL;
	handoff.key = NULL;
	kwp_key_free(k);
out:
	OPENSSL_free(label);
	OPENSSL_free(header);
	OPENSSL_free(der);
	return ok;
}

static unsigned char *read_all(kwp_ctx *prov, OSSL_CORE_BIO *cin, size_t *len)
{
	BIO *in = BIO_new_from_core_bio(prov->libctx, cin);
	unsigned char *buf = malloc(REF_MAX_LEN);
	size_t n = 0, got = 0;
	*len = 0;
	while (in != NULL && buf != NULL && n < REF_MAX_LEN &&
	       BIO_read_ex(in, buf + n, REF_MAX_LEN - n, &got) && got > 0)
		n += got;
	BIO_free(in);
	if (buf == NULL || n == 0 || n >= REF_MAX_LEN) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static int ref_decode(kwp_ctx *prov, int rsa, OSSL_CORE_BIO *cin, OSSL_CALLBACK *data_cb,
                      void *data_cbarg)
{
	size_t len = 0;
	unsigned char *der = read_all(prov, cin, &len);
	kwp_key *k = NULL;
	int ok = 1;
	if (der == NULL)
		return 1;
	if (handoff.key != NULL && handoff.len == len && memcmp(handoff.der, der, len) == 0)
		k = kwp_key_up_ref(handoff.key);
	else if ((k = ref_open(prov, der, len)) == NULL)
		ok = 0;
	KWP_TRACE("decoder_decode %s reference: %s", rsa ? "RSA" : "EC",
	          k == NULL          ? "failed"
	          : k->is_rsa == rsa ? "a key"
	                             : "other type, declined");
	if (k != NULL && k->is_rsa == rsa) {
		int type = OSSL_OBJECT_PKEY;
		kwp_key_ref ref;
		kwp_key_ref_init(&ref, k);
		OSSL_PARAM params[] = {
		    OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &type),
		    OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
		                                     (char *)(rsa ? "RSA" : "EC"), 0),
		    OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &ref, sizeof(ref)),
		    OSSL_PARAM_END};
		ok = data_cb(params, data_cbarg);
		KWP_TRACE("decoder_decode reference: callback returned %d", ok);
	}
	kwp_key_free(k);
	free(der);
	return ok;
}

int kwp_dec_ref_ec_decode(void *ctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb,
                          void *data_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	(void)selection;
	(void)pw_cb;
	(void)pw_cbarg;
	return ref_decode(ctx, 0, cin, data_cb, data_cbarg);
}

int kwp_dec_ref_rsa_decode(void *ctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb,
                           void *data_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	(void)selection;
	(void)pw_cb;
	(void)pw_cbarg;
	return ref_decode(ctx, 1, cin, data_cb, data_cbarg);
}

int kwp_dec_ref_does_selection(void *provctx, int selection)
{
	(void)provctx;
	KWP_TRACE("decoder_does_selection %d", selection);
	return selection == 0 || (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0;
}

/* A key from a reference can only be used where it is: never exported. */
int kwp_dec_ref_export_object(void *ctx, const void *objref, size_t objref_sz,
                              OSSL_CALLBACK *export_cb, void *export_cbarg)
{
	const kwp_key *k = kwp_key_ref_get0(objref, objref_sz);
	(void)export_cb;
	(void)export_cbarg;
	KWP_TRACE("decoder_export_object");
	if (k != NULL)
		kwp_raise(ctx, KWP_R_PRIVATE_KEY_NOT_EXPORTABLE,
		          "the key of certificate '%s' stays in its device: it can only be used "
		          "through the keyward provider",
		          kw_key_name(k->key));
	return 0;
}
