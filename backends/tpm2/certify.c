/* see tpm2_internal.h: TPM2_Certify of a key by a transient attestation key */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "tpm2_internal.h"

#define AK_ATTRS                                                                                   \
	(TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |                \
	 TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |    \
	 TPMA_OBJECT_NODA)

#define CERTIFY_NOTE                                                                               \
	"signed by a restricted attestation key of this TPM (no EK certificate checked)"

/* ECC P-256 signing AK, ECDSA-SHA256, empty auth and policy */
static TPM2B_PUBLIC ak_template(void)
{
	TPM2B_PUBLIC t = {0};
	TPMS_ECC_PARMS *ecc = &t.publicArea.parameters.eccDetail;

	t.publicArea.type = TPM2_ALG_ECC;
	t.publicArea.nameAlg = TPM2_ALG_SHA256;
	t.publicArea.objectAttributes = AK_ATTRS;
	ecc->symmetric.algorithm = TPM2_ALG_NULL;
	ecc->scheme.scheme = TPM2_ALG_ECDSA;
	ecc->scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	ecc->curveID = TPM2_ECC_NIST_P256;
	ecc->kdf.scheme = TPM2_ALG_NULL;
	return t;
}

static char *b64(const unsigned char *b, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);

	if (s == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, b, (int)n);
	return s;
}

static int set_owned(json_t *j, const char *k, char *v)
{
	int ok = v != NULL && json_object_set_new(j, k, json_string(v)) == 0;

	free(v);
	return ok;
}

/* DER ECDSA-Sig-Value of the TPM's (r, s) */
static int sig_der(const TPMT_SIGNATURE *sig, unsigned char **der, int *len)
{
	const TPMS_SIGNATURE_ECC *e = &sig->signature.ecdsa;
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
	BIGNUM *sv = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
	int ok = 0;

	*der = NULL;
	if (s != NULL && r != NULL && sv != NULL && ECDSA_SIG_set0(s, r, sv) == 1) {
		r = sv = NULL;
		*len = i2d_ECDSA_SIG(s, der);
		ok = *len > 0;
	}
	BN_free(r);
	BN_free(sv);
	ECDSA_SIG_free(s);
	return ok;
}

static int sw_verify(EVP_PKEY *pk, const unsigned char *msg, size_t len, const unsigned char *sig,
                     size_t sig_len)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok =
	    m != NULL &&
	    EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, KW_SOFTWARE_PROPQ, pk, NULL) == 1 &&
	    EVP_DigestVerify(m, sig, sig_len, msg, len) == 1;

	EVP_MD_CTX_free(m);
	return ok;
}

static kw_rc ak_create(kwb_tpm2_ctx *c, ESYS_TR *ak, TPM2B_PUBLIC **ak_pub)
{
	const TPM2B_SENSITIVE_CREATE sens = {0};
	const TPM2B_DATA outside = {0};
	const TPML_PCR_SELECTION pcrs = {0};
	const TPM2B_PUBLIC tmpl = ak_template();
	TSS2_RC trc;

	/* swtpm has three transient slots: SRK, the key and the AK */
	kwb_tpm2_signer_drop(c);
	trc = Esys_CreatePrimary(c->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                         ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, ak, ak_pub, NULL,
	                         NULL, NULL);
	if (trc == TSS2_RC_SUCCESS)
		return KW_OK;
	*ak = ESYS_TR_NONE;
	if (kwb_tpm2_rc_code(trc) == KW_ERR_AUTH)
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "no attestation key available: the endorsement hierarchy refused "
		               "CreatePrimary (%s)",
		               Tss2_RC_Decode(trc));
	return KWB_TPM2_FAIL(c, trc,
	                     "creating the attestation key in the endorsement hierarchy "
	                     "(CreatePrimary)",
	                     NULL);
}

/* Checks the attestation the TPM returned and builds the evidence. */
static kw_rc attest_check(const TPM2B_ATTEST *attest, const TPMT_SIGNATURE *sig,
                          const TPM2B_PUBLIC *ak_pub, const TPM2B_NAME *name,
                          const unsigned char *nonce, size_t nonce_len, json_t **evidence)
{
	kw_rc rc = KW_OK;
	TPMS_ATTEST a = {0};
	size_t off = 0;
	EVP_PKEY *pk = NULL;
	unsigned char *der = NULL, *spki = NULL;
	int der_len = 0, spki_len = 0;
	json_t *cert = NULL, *ev = NULL;

	if (Tss2_MU_TPMS_ATTEST_Unmarshal(attest->attestationData, attest->size, &off, &a) !=
	        TSS2_RC_SUCCESS ||
	    off != attest->size || a.magic != TPM2_GENERATED_VALUE ||
	    a.type != TPM2_ST_ATTEST_CERTIFY) {
		rc = KW_FAIL(KW_ERR_BACKEND, "tpm2 certify: the TPM's attestation does not parse "
		                             "as a TPM2_Certify");
		goto out;
	}
	if (a.extraData.size != nonce_len || memcmp(a.extraData.buffer, nonce, nonce_len) != 0) {
		rc = KW_FAIL(KW_ERR_BACKEND, "tpm2 certify: the attestation is not for our nonce");
		goto out;
	}
	if (a.attested.certify.name.size != name->size ||
	    memcmp(a.attested.certify.name.name, name->name, name->size) != 0) {
		rc = KW_FAIL(KW_ERR_BACKEND,
		             "tpm2 certify: the attestation names another object than the key");
		goto out;
	}
	if (sig->sigAlg != TPM2_ALG_ECDSA || sig->signature.ecdsa.hash != TPM2_ALG_SHA256 ||
	    !sig_der(sig, &der, &der_len)) {
		rc = KW_FAIL(KW_ERR_BACKEND, "tpm2 certify: unexpected signature scheme 0x%04x",
		             (unsigned)sig->sigAlg);
		goto out;
	}
	rc = kwb_tpm2_public_to_pkey(&ak_pub->publicArea, &pk);
	if (rc != KW_OK)
		goto out;
	if (!sw_verify(pk, attest->attestationData, attest->size, der, (size_t)der_len)) {
		rc = KW_FAIL(KW_ERR_BACKEND, "tpm2 certify: the attestation signature does not "
		                             "verify with the attestation key");
		goto out;
	}
	spki_len = i2d_PUBKEY(pk, &spki);
	cert = json_object();
	ev = json_object();
	if (spki_len <= 0 || cert == NULL || ev == NULL ||
	    !set_owned(cert, "attest", b64(attest->attestationData, attest->size)) ||
	    !set_owned(cert, "signature", b64(der, (size_t)der_len)) ||
	    !set_owned(cert, "ak_public", b64(spki, (size_t)spki_len)) ||
	    !set_owned(cert, "certified_name", kwb_tpm2_hex(name->name, name->size)) ||
	    !set_owned(cert, "nonce", kwb_tpm2_hex(nonce, nonce_len)) ||
	    json_object_set_new(cert, "verified", json_true()) != 0 ||
	    json_object_set_new(cert, "note", json_string(CERTIFY_NOTE)) != 0 ||
	    json_object_set(ev, "certify", cert) != 0) {
		rc = KW_FAIL(KW_ERR_NOMEM, "tpm2 certify: out of memory");
		goto out;
	}
	*evidence = ev;
	ev = NULL;
out:
	json_decref(cert);
	json_decref(ev);
	OPENSSL_free(der);
	OPENSSL_free(spki);
	EVP_PKEY_free(pk);
	return rc;
}

kw_rc kwb_tpm2_key_certify(void *ctx, const kw_key_blob *ref, const unsigned char *nonce,
                           size_t nonce_len, json_t **evidence)
{
	kw_rc rc = KW_OK;
	kwb_tpm2_ctx *c = ctx;
	kwb_tpm2_loaded key = KWB_TPM2_LOADED_INIT;
	ESYS_TR ak = ESYS_TR_NONE;
	TPM2B_PUBLIC *ak_pub = NULL;
	TPM2B_DATA qual = {0};
	const TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
	TPM2B_ATTEST *attest = NULL;
	TPMT_SIGNATURE *sig = NULL;
	TSS2_RC trc;

	if (c == NULL || evidence == NULL || (nonce == NULL && nonce_len > 0))
		return KW_FAIL(KW_ERR_USAGE, "tpm2 key_certify: no context, nonce or output given");
	*evidence = NULL;
	if (nonce_len > sizeof(qual.buffer))
		return KW_FAIL(KW_ERR_USAGE, "tpm2 key_certify: nonce longer than %zu bytes",
		               sizeof(qual.buffer));
	qual.size = (UINT16)nonce_len;
	if (nonce_len > 0)
		memcpy(qual.buffer, nonce, nonce_len);
	rc = kwb_tpm2_key_load_ref(c, ref, &key);
	if (rc == KW_OK)
		rc = ak_create(c, &ak, &ak_pub);
	if (rc != KW_OK)
		goto out;
	trc = Esys_Certify(c->esys, key.handle, ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
	                   ESYS_TR_NONE, &qual, &scheme, &attest, &sig);
	if (trc != TSS2_RC_SUCCESS) {
		rc = KWB_TPM2_FAIL(c, trc, "certifying the key with the attestation key (Certify)",
		                   NULL);
		goto out;
	}
	rc = attest_check(attest, sig, ak_pub, key.name, nonce, nonce_len, evidence);
out:
	if (ak != ESYS_TR_NONE && !c->lost)
		(void)Esys_FlushContext(c->esys, ak);
	kwb_tpm2_key_unload(c, &key);
	Esys_Free(ak_pub);
	Esys_Free(attest);
	Esys_Free(sig);
	return rc;
}
