/* Key files as a server reads them with the keyward provider loaded: the
 * provider's decoders (provider/decoder.c) take a "KEYWARD KEY REFERENCE"
 * PEM apart (PEM, then the reference's DER: name, store, version) and open
 * the key it names; anything else they decline. Three ways in: the PEM chain
 * of keyward's decoders alone, the DER step alone (structure KeywardKeyRef),
 * and PEM_read_bio_PrivateKey_ex with every provider (nginx's path). */
#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "fuzz_provider.h"

static void decode(OSSL_LIB_CTX *ctx, const char *input, const char *structure, const uint8_t *data,
                   size_t size)
{
	EVP_PKEY *pkey = NULL;
	const unsigned char *p = data;
	size_t left = size;
	OSSL_DECODER_CTX *d = OSSL_DECODER_CTX_new_for_pkey(
	    &pkey, input, structure, NULL, OSSL_KEYMGMT_SELECT_KEYPAIR, ctx, "provider=keyward");
	if (d == NULL)
		abort();
	(void)OSSL_DECODER_from_data(d, &p, &left);
	/* the store is empty: no reference names a key in it (a software key
	 * from the default provider's decoders is fine) */
	if (pkey != NULL && EVP_PKEY_get0_provider(pkey) != NULL &&
	    strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(pkey)), "keyward") == 0)
		abort();
	EVP_PKEY_free(pkey);
	OSSL_DECODER_CTX_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	OSSL_LIB_CTX *ctx = fuzz_provider_libctx();
	if (size > 16384)
		return 0;
	decode(ctx, "PEM", NULL, data, size);
	decode(ctx, "DER", "KeywardKeyRef", data, size);
	BIO *b = BIO_new_mem_buf(data, (int)size);
	if (b == NULL)
		abort();
	EVP_PKEY_free(PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, ctx, NULL));
	BIO_free(b);
	ERR_clear_error();
	kw_error_clear();
	return 0;
}
