/* see tpm2_internal.h: checking the TPM's signature before it leaves */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "tpm2_internal.h"

/* 1: verifies, 0: does not, -1: OpenSSL could not set up the check. */
static int verify_with(EVP_PKEY *pkey, const kw_sign_params *p, int saltlen,
                       const unsigned char *dgst, size_t dgst_len, const unsigned char *sig,
                       size_t sig_len)
{
	const EVP_MD *md = EVP_get_digestbynid(p->md_nid);
	EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(pkey, NULL);
	int ok = -1;

	if (md == NULL || v == NULL || EVP_PKEY_verify_init(v) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(v, md) <= 0)
		goto out;
	if (p->scheme == KW_SIG_RSA_PKCS1 &&
	    EVP_PKEY_CTX_set_rsa_padding(v, RSA_PKCS1_PADDING) <= 0)
		goto out;
	if (p->scheme == KW_SIG_RSA_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(v, RSA_PKCS1_PSS_PADDING) <= 0 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(v, md) <= 0 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(v, saltlen) <= 0))
		goto out;
	ok = EVP_PKEY_verify(v, sig, sig_len, dgst, dgst_len) == 1;
out:
	EVP_PKEY_CTX_free(v);
	ERR_clear_error();
	return ok;
}

kw_rc kwb_tpm2_sig_check(EVP_PKEY *pkey, const kw_sign_params *p, const unsigned char *dgst,
                         size_t dgst_len, const unsigned char *sig, size_t sig_len)
{
	int ok = pkey == NULL
	             ? -1
	             : verify_with(pkey, p, RSA_PSS_SALTLEN_DIGEST, dgst, dgst_len, sig, sig_len);

	if (ok < 0)
		return KW_FAIL(KW_ERR_INTERNAL,
		               "tpm2 key_sign: OpenSSL cannot check the TPM's signature");
	if (ok)
		return KW_OK;
	if (p->scheme == KW_SIG_RSA_PSS &&
	    verify_with(pkey, p, RSA_PSS_SALTLEN_AUTO, dgst, dgst_len, sig, sig_len) == 1)
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "this TPM makes RSA-PSS signatures whose salt is not as long as the "
		               "digest; use RSA PKCS#1 v1.5 or an EC key with it");
	return KW_FAIL(KW_ERR_BACKEND,
	               "the TPM returned a signature that does not verify against the "
	               "key's public key; the signature was withheld: check the TPM");
}
