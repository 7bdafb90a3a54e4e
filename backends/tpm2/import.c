/*
 * see tpm2_internal.h: importing an existing key (TPM2_Import under the SRK).
 *
 * TPM 2.0 Part 3 §13.3: an imported object must have fixedTPM and fixedParent
 * CLEAR (it was, in the spec's model, duplicated from elsewhere), and
 * sensitiveDataOrigin is honestly clear: the key was not made here. What keeps
 * it in this TPM is its empty authPolicy: TPM2_Duplicate needs the DUP role,
 * which only a policy session satisfies, and no policy digest equals an empty
 * one — so the object can never be duplicated. The wrapped private part
 * TPM2_Import returns is bound to this TPM's storage hierarchy (the SRK), like
 * a generated key's.
 *
 * The sensitive area travels under an outer wrapper (wrap.c): encrypted and
 * HMACed under a seed only the SRK can recover, so the private key never
 * crosses the TPM interface (the swtpm socket, tpm2-abrmd, the bus to a
 * chip) in the clear, and the TPM refuses a duplicate altered on the way
 * (TPM_RC_INTEGRITY). No inner wrapper: its key would itself cross the
 * interface as a TPM2_Import parameter, and the outer wrapper already keeps
 * the key from everyone but the SRK. What the wrapper cannot stop: the SRK's
 * public key is read from the TPM over the same interface and not
 * authenticated, so an active interposer that answers with its own key could
 * unwrap the seed (a passive listener learns nothing).
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <sodium.h>
#include <tss2/tss2_rc.h>

#include "tpm2_internal.h"

#define IMPORTED_KEY_ATTRS (TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_NODA)

/* One OpenSSL BIGNUM parameter, big-endian, left-padded to len bytes. The
 * BIGNUM is cleared and freed here. */
static kw_rc bn_param(EVP_PKEY *key, const char *param, unsigned char *out, size_t len)
{
	BIGNUM *bn = NULL;
	int ok = EVP_PKEY_get_bn_param(key, param, &bn) == 1 &&
	         BN_bn2binpad(bn, out, (int)len) == (int)len;

	BN_clear_free(bn);
	if (!ok)
		return KW_FAIL(KW_ERR_PARSE, "tpm2 import: the key's %s does not fit %zu bytes",
		               param, len);
	return KW_OK;
}

static kw_rc public_build(EVP_PKEY *key, kw_key_type type, TPM2B_PUBLIC *t)
{
	TPMT_PUBLIC *p = &t->publicArea;

	/* authPolicy stays empty: the object can never be duplicated */
	KW_GUARD(kwb_tpm2_key_template(type, IMPORTED_KEY_ATTRS, t));
	if (!kw_key_type_is_rsa(type)) {
		size_t n = type == KW_KEY_EC_P256 ? 32 : 48;
		p->unique.ecc.x.size = p->unique.ecc.y.size = (UINT16)n;
		KW_GUARD(bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, p->unique.ecc.x.buffer, n));
		return bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, p->unique.ecc.y.buffer, n);
	}
	BIGNUM *e = NULL;
	size_t bits = p->parameters.rsaDetail.keyBits;
	if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1 || BN_num_bits(e) > 32) {
		BN_free(e);
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "tpm2 import: the RSA public exponent does not fit a TPM key");
	}
	BN_ULONG ev = BN_get_word(e);
	BN_free(e);
	p->parameters.rsaDetail.exponent = ev == 65537 ? 0 : (UINT32)ev;
	p->unique.rsa.size = (UINT16)(bits / 8);
	return bn_param(key, OSSL_PKEY_PARAM_RSA_N, p->unique.rsa.buffer, bits / 8);
}

/* The sensitive area: EC private scalar or RSA prime p, and a random
 * obfuscation seed of the name algorithm's size. s is guarded memory. */
static kw_rc sensitive_build(EVP_PKEY *key, kw_key_type type, TPM2B_SENSITIVE *s)
{
	TPMT_SENSITIVE *a = &s->sensitiveArea;

	if (RAND_priv_bytes(a->seedValue.buffer, 32) != 1)
		return KW_FAIL(KW_ERR_INTERNAL, "tpm2 import: no random bytes for the seed");
	a->seedValue.size = 32;
	if (!kw_key_type_is_rsa(type)) {
		size_t n = type == KW_KEY_EC_P256 ? 32 : 48;
		a->sensitiveType = TPM2_ALG_ECC;
		a->sensitive.ecc.size = (UINT16)n;
		return bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, a->sensitive.ecc.buffer, n);
	}
	size_t half = type == KW_KEY_RSA_2048 ? 128 : type == KW_KEY_RSA_3072 ? 192 : 256;
	a->sensitiveType = TPM2_ALG_RSA;
	a->sensitive.rsa.size = (UINT16)half;
	return bn_param(key, OSSL_PKEY_PARAM_RSA_FACTOR1, a->sensitive.rsa.buffer, half);
}

/* The SRK's public area: the parent the key is wrapped for. */
static kw_rc srk_public(kwb_tpm2_ctx *c, TPM2B_PUBLIC **out)
{
	ESYS_TR srk = ESYS_TR_NONE;
	TSS2_RC trc;

	KW_GUARD(kwb_tpm2_srk_get(c, &srk));
	trc = Esys_ReadPublic(c->esys, srk, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, out, NULL,
	                      NULL);
	if (trc != TSS2_RC_SUCCESS)
		return KWB_TPM2_FAIL(c, trc, "reading the SRK's public key (ReadPublic)", NULL);
	return KW_OK;
}

kw_rc kwb_tpm2_import_wrap(kwb_tpm2_ctx *c, EVP_PKEY *key, kw_key_type type, TPM2B_PUBLIC *pub,
                           TPM2B_PRIVATE *dup, TPM2B_ENCRYPTED_SECRET *seed)
{
	TPM2B_SENSITIVE *sens = NULL;
	TPM2B_PUBLIC *parent = NULL;
	kw_rc rc;

	if (sodium_init() < 0)
		return KW_FAIL(KW_ERR_INTERNAL, "tpm2 import: libsodium failed to initialise");
	if ((sens = sodium_malloc(sizeof(*sens))) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "tpm2 import: out of guarded memory");
	sodium_memzero(sens, sizeof(*sens));
	if ((rc = public_build(key, type, pub)) == KW_OK &&
	    (rc = sensitive_build(key, type, sens)) == KW_OK &&
	    (rc = srk_public(c, &parent)) == KW_OK)
		rc = kwb_tpm2_wrap_outer(&parent->publicArea, pub, sens, dup, seed);
	Esys_Free(parent);
	sodium_memzero(sens, sizeof(*sens));
	sodium_free(sens);
	return rc;
}

static kw_rc import_fail(kwb_tpm2_ctx *c, TSS2_RC trc)
{
	TSS2_RC base = kwb_tpm2_rc_base(trc);

	if (base == TPM2_RC_INTEGRITY)
		return KW_FAIL_DEV(
		    KW_ERR_BACKEND, trc,
		    "the TPM refused the wrapped key (Import): %s (TPM_RC_INTEGRITY): "
		    "its outer HMAC does not match, so the duplicate was altered on "
		    "its way to the TPM or wrapped for another storage key",
		    Tss2_RC_Decode(trc));
	return KWB_TPM2_FAIL(c, trc, "importing the key (Import)",
	                     "the TPM refused the key's parameters");
}

kw_rc kwb_tpm2_import_wrapped(kwb_tpm2_ctx *c, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *dup,
                              const TPM2B_ENCRYPTED_SECRET *seed, kw_key_blob *out)
{
	const TPM2B_DATA no_inner_key = {0};
	const TPMT_SYM_DEF_OBJECT no_inner = {.algorithm = TPM2_ALG_NULL};
	TPM2B_PRIVATE *priv = NULL;
	ESYS_TR srk = ESYS_TR_NONE;
	kwb_tpm2_blob blob;
	kwb_tpm2_loaded k = KWB_TPM2_LOADED_INIT;
	kw_rc rc = kwb_tpm2_srk_get(c, &srk);
	TSS2_RC trc;

	if (rc != KW_OK)
		return rc;
	for (int tries = 0; tries < 3; tries++) {
		trc = Esys_Import(c->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		                  &no_inner_key, pub, dup, seed, &no_inner, &priv);
		if (!kwb_tpm2_make_room(c, trc))
			break;
	}
	if (trc != TSS2_RC_SUCCESS)
		return import_fail(c, trc);
	rc = kwb_tpm2_blob_encode(pub, priv, out);
	Esys_Free(priv);
	/* proves the wrapped blob loads under the SRK before anything records it */
	if (rc == KW_OK && (rc = kwb_tpm2_blob_parse(out, &blob)) == KW_OK)
		rc = kwb_tpm2_key_load(c, &blob, 0, &k);
	kwb_tpm2_key_unload(c, &k);
	if (rc != KW_OK)
		kw_key_blob_clear(out);
	return rc;
}

kw_rc kwb_tpm2_key_import(void *ctx, EVP_PKEY *key, kw_key_type type, const char *label,
                          kw_key_blob *out)
{
	kwb_tpm2_ctx *c = ctx;
	TPM2B_PUBLIC pub;
	TPM2B_ENCRYPTED_SECRET seed;
	TPM2B_PRIVATE *dup = NULL;
	kw_rc rc;

	(void)label; /* a TPM key has no label: the store names it */
	if (c == NULL || key == NULL || out == NULL)
		return KW_FAIL(KW_ERR_USAGE, "tpm2 key_import: no context, key or output given");
	out->data = NULL;
	out->len = 0;
	KW_GUARD(kwb_tpm2_ready(c));
	if (sodium_init() < 0)
		return KW_FAIL(KW_ERR_INTERNAL, "tpm2 import: libsodium failed to initialise");
	if ((dup = sodium_malloc(sizeof(*dup))) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "tpm2 import: out of guarded memory");
	sodium_memzero(dup, sizeof(*dup));
	rc = kwb_tpm2_import_wrap(c, key, type, &pub, dup, &seed);
	if (rc == KW_OK)
		rc = kwb_tpm2_import_wrapped(c, &pub, dup, &seed, out);
	sodium_memzero(dup, sizeof(*dup));
	sodium_free(dup);
	return rc;
}
