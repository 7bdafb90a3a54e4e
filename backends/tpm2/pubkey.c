/* see tpm2_internal.h: the public key, as the TPM reports it, as DER SubjectPublicKeyInfo */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "tpm2_internal.h"

static kw_rc ossl_fail(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;
	kw_rc rc = KW_FAIL(KW_ERR_INTERNAL, "tpm2: OpenSSL could not %s%s%s", what,
	                   why != NULL ? ": " : "", why != NULL ? why : "");
	ERR_clear_error();
	return rc;
}

/* EC: group name and the uncompressed point 04 || X || Y, each coordinate
 * left-padded to the field size. */
static int ec_params(const TPMT_PUBLIC *pub, OSSL_PARAM_BLD *bld, unsigned char *point,
                     size_t *point_len)
{
	const TPMS_ECC_POINT *q = &pub->unique.ecc;
	int p256 = pub->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256;
	size_t n = p256 ? 32 : 48;

	if (q->x.size > n || q->y.size > n)
		return 0;
	memset(point, 0, 1 + 2 * n);
	point[0] = 0x04;
	memcpy(point + 1 + n - q->x.size, q->x.buffer, q->x.size);
	memcpy(point + 1 + 2 * n - q->y.size, q->y.buffer, q->y.size);
	*point_len = 1 + 2 * n;
	return OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	                                       p256 ? "P-256" : "P-384", 0) &&
	       OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, *point_len);
}

/* RSA: n from unique.rsa, e from the parameters (0 means 65537). */
static int rsa_params(const TPMT_PUBLIC *pub, OSSL_PARAM_BLD *bld, BIGNUM **n, BIGNUM **e)
{
	UINT32 exp = pub->parameters.rsaDetail.exponent;

	*n = BN_bin2bn(pub->unique.rsa.buffer, pub->unique.rsa.size, NULL);
	*e = BN_new();
	if (*n == NULL || *e == NULL || !BN_set_word(*e, exp != 0 ? exp : 65537))
		return 0;
	return OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, *n) &&
	       OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, *e);
}

kw_rc kwb_tpm2_public_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **out)
{
	kw_rc rc = KW_OK;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	unsigned char point[1 + 2 * 48];
	size_t point_len = 0;
	int is_ec = pub->type == TPM2_ALG_ECC;
	int ok;

	*out = NULL;
	if (kwb_tpm2_public_key_type(pub) == 0)
		return KW_FAIL(KW_ERR_UNSUPPORTED, "tpm2: the TPM key is of an unsupported type");
	if (bld == NULL) {
		rc = ossl_fail("allocate parameters");
		goto out;
	}
	ok = is_ec ? ec_params(pub, bld, point, &point_len) : rsa_params(pub, bld, &n, &e);
	if (!ok || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		rc = ossl_fail("take the TPM's public key parameters");
		goto out;
	}
	pctx = EVP_PKEY_CTX_new_from_name(NULL, is_ec ? "EC" : "RSA", KW_SOFTWARE_PROPQ);
	if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
	    EVP_PKEY_fromdata(pctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		rc = ossl_fail("build a public key from the TPM's public area");
		goto out;
	}
out:
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return rc;
}

static kw_rc pkey_der(EVP_PKEY *pkey, unsigned char **der, size_t *der_len)
{
	int len = i2d_PUBKEY(pkey, NULL);
	unsigned char *buf, *p;

	if (len <= 0)
		return ossl_fail("encode the public key");
	buf = p = malloc((size_t)len);
	if (buf == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "tpm2 key_public: out of memory");
	if (i2d_PUBKEY(pkey, &p) != len) {
		free(buf);
		return ossl_fail("encode the public key");
	}
	*der = buf;
	*der_len = (size_t)len;
	return KW_OK;
}

kw_rc kwb_tpm2_key_public(void *ctx, const kw_key_blob *ref, unsigned char **der, size_t *der_len)
{
	kw_rc rc = KW_OK;
	kwb_tpm2_ctx *c = ctx;
	kwb_tpm2_loaded key = KWB_TPM2_LOADED_INIT;
	EVP_PKEY *pkey = NULL;

	if (c == NULL || der == NULL || der_len == NULL)
		return KW_FAIL(KW_ERR_USAGE, "tpm2 key_public: no context or output given");
	*der = NULL;
	*der_len = 0;
	/* Loading proves the TPM accepts the blob; ReadPublic gives its own view. */
	rc = kwb_tpm2_key_load_ref(c, ref, &key);
	if (rc != KW_OK)
		goto out;
	rc = kwb_tpm2_public_to_pkey(&key.pub->publicArea, &pkey);
	if (rc != KW_OK)
		goto out;
	rc = pkey_der(pkey, der, der_len);
out:
	kwb_tpm2_key_unload(c, &key);
	EVP_PKEY_free(pkey);
	return rc;
}
