/*
 * keyward — TPM backend: which signatures are checked before they leave
 * (backends/tpm2/sign.c sig_check). The public key is built once per loaded
 * key (c->signer_pkey); every RSA signature is verified with it (a faulty
 * RSA-CRT signature factors the key), an ECDSA one only the first after each
 * load. A wrong expected key stands in for a faulty TPM: the check must
 * withhold the signature where it applies, on a real swtpm.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "kwtest.h"
#include "tpm2/tpm2_internal.h"

static kwb_tpm2_ctx *tpm_open(void)
{
	kw_backend_config cfg = kwt_tpm2_config();
	void *ctx = NULL;

	kw_error_clear();
	cr_assert_eq(kwb_tpm2_ops.open(&cfg, &ctx), KW_OK, "open: %s", kw_error_message());
	return ctx;
}

static kw_key_blob generate(kwb_tpm2_ctx *c, kw_key_type type)
{
	kw_key_blob ref = {0};

	kw_error_clear();
	cr_assert_eq(kwb_tpm2_ops.key_generate(c, type, "test", &ref), KW_OK, "key_generate: %s",
	             kw_error_message());
	return ref;
}

static int verifies(EVP_PKEY *pk, kw_sig_scheme scheme, const unsigned char *dgst,
                    const unsigned char *sig, size_t len)
{
	EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(pk, NULL);

	cr_assert(v != NULL && EVP_PKEY_verify_init(v) == 1);
	cr_assert(EVP_PKEY_CTX_set_signature_md(v, EVP_sha256()) == 1);
	if (scheme == KW_SIG_RSA_PSS) {
		cr_assert(EVP_PKEY_CTX_set_rsa_padding(v, RSA_PKCS1_PSS_PADDING) == 1);
		cr_assert(EVP_PKEY_CTX_set_rsa_pss_saltlen(v, RSA_PSS_SALTLEN_DIGEST) == 1);
	}
	int ok = EVP_PKEY_verify(v, sig, len, dgst, 32) == 1;
	EVP_PKEY_CTX_free(v);
	ERR_clear_error();
	return ok;
}

/* Signs a SHA-256 digest: the kw_rc; on success it verifies under pk. */
static kw_rc sign(kwb_tpm2_ctx *c, const kw_key_blob *ref, kw_sig_scheme scheme, EVP_PKEY *pk)
{
	static const char msg[] = "keyward tpm2 signature check";
	unsigned char dgst[32], sig[KWB_TPM2_SIG_MAX];
	size_t len = sizeof(sig);
	kw_sign_params p = {scheme, NID_sha256, -1};

	cr_assert(EVP_Digest(msg, sizeof(msg) - 1, dgst, NULL, EVP_sha256(), NULL));
	kw_error_clear();
	kw_rc rc = kwb_tpm2_ops.key_sign(c, ref, &p, dgst, sizeof(dgst), sig, &len);
	if (rc == KW_OK)
		cr_assert(verifies(pk, scheme, dgst, sig, len), "the signature does not verify");
	else
		cr_assert_eq(len, sizeof(sig), "a withheld signature changed the output length");
	return rc;
}

/* The public key of the loaded signer is built once and is the key's. */
static void signer_is(kwb_tpm2_ctx *c, EVP_PKEY *pk)
{
	cr_assert_neq(c->signer, ESYS_TR_NONE);
	cr_assert_not_null(c->signer_pkey);
	cr_assert_eq(EVP_PKEY_eq(c->signer_pkey, pk), 1, "the cached public key is not the key's");
}

static void withheld(kwb_tpm2_ctx *c, const kw_key_blob *ref, kw_sig_scheme scheme, EVP_PKEY *pk)
{
	cr_assert_eq(sign(c, ref, scheme, pk), KW_ERR_BACKEND, "%s", kw_error_message());
	cr_assert(strstr(kw_error_message(), "withheld") != NULL, "%s", kw_error_message());
	cr_assert_eq(c->signer, ESYS_TR_NONE, "a key that failed the check stays loaded");
	cr_assert_null(c->signer_pkey);
}

Test(tpm2_sigcheck, every_rsa_signature_is_checked_with_the_cached_key, .timeout = 180)
{
	kwb_tpm2_ctx *c = tpm_open();
	kw_key_blob ref = generate(c, KW_KEY_RSA_2048);
	EVP_PKEY *pk = kwt_key_public(&kwb_tpm2_ops, c, &ref);

	cr_assert_eq(sign(c, &ref, KW_SIG_RSA_PKCS1, pk), KW_OK, "%s", kw_error_message());
	signer_is(c, pk);
	EVP_PKEY *built = c->signer_pkey;
	cr_assert_eq(sign(c, &ref, KW_SIG_RSA_PSS, pk), KW_OK, "%s", kw_error_message());
	cr_assert_eq(c->signer_pkey, built, "the public key was rebuilt for a signature");
	/* A TPM whose signatures stop verifying, long after the first one: */
	for (int i = 0; i < 2; i++) {
		kw_sig_scheme s = i == 0 ? KW_SIG_RSA_PKCS1 : KW_SIG_RSA_PSS;
		EVP_PKEY *real = c->signer_pkey;
		c->signer_pkey = EVP_RSA_gen(2048); /* freed by the drop */
		cr_assert_not_null(c->signer_pkey);
		withheld(c, &ref, s, pk);
		EVP_PKEY_free(real);
		cr_assert_eq(sign(c, &ref, s, pk), KW_OK, "%s", kw_error_message());
		signer_is(c, pk);
	}
	cr_assert_eq(kwb_tpm2_ops.key_destroy(c, &ref, NULL), KW_OK);
	EVP_PKEY_free(pk);
	kw_key_blob_clear(&ref);
	kwb_tpm2_ops.close(c);
}

Test(tpm2_sigcheck, ecdsa_is_checked_once_per_loaded_key, .timeout = 180)
{
	kwb_tpm2_ctx *c = tpm_open();
	kw_key_blob a = generate(c, KW_KEY_EC_P256), b = generate(c, KW_KEY_EC_P256);
	EVP_PKEY *pa = kwt_key_public(&kwb_tpm2_ops, c, &a),
	         *pb = kwt_key_public(&kwb_tpm2_ops, c, &b);

	cr_assert_eq(sign(c, &a, KW_SIG_ECDSA, pa), KW_OK, "%s", kw_error_message());
	signer_is(c, pa);
	cr_assert_eq(c->signer_checked, 1);
	/* The first signature after a load is checked: a wrong key is caught. */
	EVP_PKEY *real = c->signer_pkey;
	c->signer_pkey = EVP_PKEY_dup(pb);
	c->signer_checked = 0;
	withheld(c, &a, KW_SIG_ECDSA, pa);
	EVP_PKEY_free(real);
	/* Reloaded, checked again, and switching keys loads and checks B. */
	cr_assert_eq(sign(c, &a, KW_SIG_ECDSA, pa), KW_OK, "%s", kw_error_message());
	signer_is(c, pa);
	cr_assert_eq(sign(c, &b, KW_SIG_ECDSA, pb), KW_OK, "%s", kw_error_message());
	signer_is(c, pb);
	cr_assert_eq(c->signer_checked, 1);
	/* Later ECDSA signatures are not verified (no key-recovery fault to
	 * stop, see sign.c): with a wrong expected key they still go out. */
	real = c->signer_pkey;
	c->signer_pkey = EVP_PKEY_dup(pa);
	cr_assert_eq(sign(c, &b, KW_SIG_ECDSA, pb), KW_OK, "%s", kw_error_message());
	EVP_PKEY_free(c->signer_pkey);
	c->signer_pkey = real;
	cr_assert_eq(kwb_tpm2_ops.key_destroy(c, &a, NULL), KW_OK);
	cr_assert_eq(kwb_tpm2_ops.key_destroy(c, &b, NULL), KW_OK);
	EVP_PKEY_free(pa);
	EVP_PKEY_free(pb);
	kw_key_blob_clear(&a);
	kw_key_blob_clear(&b);
	kwb_tpm2_ops.close(c);
}
