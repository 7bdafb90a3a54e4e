/* see internal.h: X.509 certificates and CSRs whose signature the hardware makes */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "internal.h"

/* Largest signature we ask a device for: RSA-4096 is 512 bytes. */
#define SIG_MAX 1024

typedef struct {
	kw_sign_params params;
	const EVP_MD *md;
	int alg_nid;
} sig_choice;

static kw_rc choose(kw_key_type type, sig_choice *c)
{
	memset(c, 0, sizeof(*c));
	switch (type) {
	case KW_KEY_EC_P256:
		c->params = (kw_sign_params){KW_SIG_ECDSA, NID_sha256, -1};
		c->md = EVP_sha256();
		c->alg_nid = NID_ecdsa_with_SHA256;
		return KW_OK;
	case KW_KEY_EC_P384:
		c->params = (kw_sign_params){KW_SIG_ECDSA, NID_sha384, -1};
		c->md = EVP_sha384();
		c->alg_nid = NID_ecdsa_with_SHA384;
		return KW_OK;
	case KW_KEY_RSA_2048:
	case KW_KEY_RSA_3072:
	case KW_KEY_RSA_4096:
		c->params = (kw_sign_params){KW_SIG_RSA_PKCS1, NID_sha256, -1};
		c->md = EVP_sha256();
		c->alg_nid = NID_sha256WithRSAEncryption;
		return KW_OK;
	}
	return KW_FAIL(KW_ERR_UNSUPPORTED, "no signature algorithm for key type %d", (int)type);
}

static kw_rc set_alg(const X509_ALGOR *calg, const sig_choice *c)
{
	/* The accessors hand out const pointers to fields we own and must fill:
	 * OpenSSL offers no setter that does not also want the private key. */
	X509_ALGOR *alg = (X509_ALGOR *)calg;
	int rsa = c->params.scheme != KW_SIG_ECDSA;
	if (!X509_ALGOR_set0(alg, OBJ_nid2obj(c->alg_nid), rsa ? V_ASN1_NULL : V_ASN1_UNDEF, NULL))
		return KW_FAIL(KW_ERR_INTERNAL, "cannot set the signature algorithm");
	return KW_OK;
}

/* Hashes tbs in software, signs the digest in hardware, stores it in sig. */
static kw_rc sign_into(const kwi_signer *k, const sig_choice *c, const unsigned char *tbs,
                       size_t tbs_len, const ASN1_BIT_STRING *csig)
{
	unsigned char dgst[EVP_MAX_MD_SIZE], sig[SIG_MAX];
	unsigned int dlen = 0;
	size_t sig_len = sizeof(sig);
	if (!EVP_Digest(tbs, tbs_len, dgst, &dlen, c->md, NULL))
		return KW_FAIL(KW_ERR_INTERNAL, "digest failed");
	KW_GUARD(kwi_device_key_sign(k->dev, k->ref, &c->params, dgst, dlen, sig, &sig_len));
	ASN1_BIT_STRING *bs = (ASN1_BIT_STRING *)csig;
	if (!ASN1_BIT_STRING_set(bs, sig, (int)sig_len))
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	/* A signature is a whole number of bytes: no unused bits. */
	bs->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	return KW_OK;
}

/* What differs between signing a certificate, a CSR and a CRL. */
typedef struct {
	const char *what;
	int (*encode_tbs)(void *obj, unsigned char **tbs); /* i2d_re_*_tbs */
	int (*verify)(void *obj, EVP_PKEY *pub);           /* X509*_verify */
} signed_kind;

static int cert_tbs(void *o, unsigned char **p)
{
	return i2d_re_X509_tbs(o, p);
}

static int cert_verify(void *o, EVP_PKEY *pub)
{
	return X509_verify(o, pub);
}

static int csr_tbs(void *o, unsigned char **p)
{
	return i2d_re_X509_REQ_tbs(o, p);
}

static int csr_verify(void *o, EVP_PKEY *pub)
{
	return X509_REQ_verify(o, pub);
}

static int crl_tbs(void *o, unsigned char **p)
{
	return i2d_re_X509_CRL_tbs(o, p);
}

static int crl_verify(void *o, EVP_PKEY *pub)
{
	return X509_CRL_verify(o, pub);
}

static const signed_kind cert_kind = {"the new certificate", cert_tbs, cert_verify};
static const signed_kind csr_kind = {"the CSR", csr_tbs, csr_verify};
static const signed_kind crl_kind = {"the CRL", crl_tbs, crl_verify};

/* Encodes obj's to-be-signed part (its algorithm fields already set), signs
 * it in hardware into sig, and checks that the result verifies with pub. */
static kw_rc sign_object(const kwi_signer *k, const sig_choice *c, void *obj, EVP_PKEY *pub,
                         const ASN1_BIT_STRING *sig, const signed_kind *kind)
{
	unsigned char *tbs = NULL;
	int len = kind->encode_tbs(obj, &tbs);
	kw_rc rc = len > 0 ? sign_into(k, c, tbs, (size_t)len, sig)
	                   : KW_FAIL(KW_ERR_INTERNAL, "cannot encode %s", kind->what);
	OPENSSL_free(tbs);
	if (rc == KW_OK && kind->verify(obj, pub) != 1)
		rc = KW_FAIL(KW_ERR_BACKEND, "the device's signature on %s does not verify",
		             kind->what);
	return rc;
}

static kw_rc add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	if (ext == NULL) {
		unsigned long e = ERR_get_error();
		return KW_FAIL(KW_ERR_PARSE, "bad %s extension '%s': %s", OBJ_nid2sn(nid), value,
		               ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "invalid");
	}
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

static const char *default_ku(const kwi_cert_template *t)
{
	if (t->key_usage)
		return t->key_usage;
	return t->is_rsa ? "critical,digitalSignature,keyEncipherment"
	                 : "critical,digitalSignature";
}

static kw_rc random_serial(X509 *x)
{
	unsigned char b[16];
	/* 128 random bits but the top one: positive, and always 16 bytes long. */
	if (RAND_bytes(b, sizeof(b)) != 1)
		return KW_FAIL(KW_ERR_INTERNAL, "no randomness for a serial number");
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
	BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
	ASN1_INTEGER *ser = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	int ok = ser && X509_set_serialNumber(x, ser);
	ASN1_INTEGER_free(ser);
	BN_free(bn);
	return ok ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

static kw_rc basic_constraints(X509 *x, X509V3_CTX *ctx, const kwi_cert_template *t)
{
	char bc[64];
	if (t->ca && t->pathlen >= 0)
		snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", t->pathlen);
	else
		snprintf(bc, sizeof(bc), "critical,CA:%s", t->ca ? "TRUE" : "FALSE");
	return add_ext(x, ctx, NID_basic_constraints, bc);
}

/* issuer NULL: self-signed (issuer name = subject, AKI = own key id). */
static kw_rc fill_cert(X509 *x, EVP_PKEY *pub, const kwi_cert_template *t, X509 *issuer)
{
	X509V3_CTX ctx;
	if (!X509_set_version(x, 2) || !X509_set_subject_name(x, t->subject) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : t->subject) ||
	    !X509_set_pubkey(x, pub) || !ASN1_TIME_set(X509_getm_notBefore(x), t->not_before) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), t->not_after))
		return KW_FAIL(KW_ERR_INTERNAL, "cannot fill the certificate fields");
	KW_GUARD(random_serial(x));
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	KW_GUARD(basic_constraints(x, &ctx, t));
	KW_GUARD(add_ext(x, &ctx, NID_key_usage, default_ku(t)));
	/* a CA's policy may list no EKU at all: then the certificate has none */
	if (t->ext_key_usage == NULL || t->ext_key_usage[0])
		KW_GUARD(add_ext(x, &ctx, NID_ext_key_usage,
		                 t->ext_key_usage ? t->ext_key_usage : "serverAuth"));
	KW_GUARD(add_ext(x, &ctx, NID_subject_key_identifier, "hash"));
	KW_GUARD(add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"));
	if (t->sans && sk_GENERAL_NAME_num(t->sans) > 0 &&
	    !X509_add1_ext_i2d(x, NID_subject_alt_name, (void *)t->sans, 0, X509V3_ADD_DEFAULT))
		return KW_FAIL(KW_ERR_INTERNAL, "cannot add subjectAltName");
	return KW_OK;
}

kw_rc kwi_x509_issue(const kwi_signer *signer, EVP_PKEY *signer_pub, X509 *issuer, EVP_PKEY *pub,
                     const kwi_cert_template *t, X509 **out)
{
	kw_rc rc = KW_OK;
	sig_choice c;
	const ASN1_BIT_STRING *sig = NULL;
	const X509_ALGOR *alg = NULL;
	*out = NULL;
	KW_GUARD(choose(signer->type, &c));
	X509 *x = X509_new();
	if (x == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	rc = fill_cert(x, pub, t, issuer);
	if (rc != KW_OK)
		goto out;
	X509_get0_signature(&sig, &alg, x);
	if ((rc = set_alg(X509_get0_tbs_sigalg(x), &c)) != KW_OK ||
	    (rc = set_alg(alg, &c)) != KW_OK)
		goto out;
	if ((rc = sign_object(signer, &c, x, signer_pub, sig, &cert_kind)) != KW_OK)
		goto out;
	*out = x;
	x = NULL;
out:
	X509_free(x);
	ERR_clear_error();
	return rc;
}

kw_rc kwi_x509_self_signed(const kwi_signer *key, EVP_PKEY *pub, const kwi_cert_template *t,
                           X509 **out)
{
	return kwi_x509_issue(key, pub, NULL, pub, t, out);
}

/* AKI (the CA's key id) and CRL number on crl. */
static kw_rc crl_extensions(X509_CRL *crl, X509 *issuer, long number)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
	X509_EXTENSION *aki =
	    X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	ASN1_INTEGER *n = ASN1_INTEGER_new();
	int ok = aki && n && ASN1_INTEGER_set(n, number) && X509_CRL_add_ext(crl, aki, -1) &&
	         X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, 0);
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(n);
	return ok ? KW_OK : KW_FAIL(KW_ERR_INTERNAL, "cannot add the CRL's extensions");
}

static kw_rc crl_entry(X509_CRL *crl, const kwi_crl_entry *e)
{
	BIGNUM *bn = NULL;
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_TIME *at = ASN1_TIME_set(NULL, e->revoked_at);
	ASN1_INTEGER *ser = BN_hex2bn(&bn, e->serial) ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
	int ok = r && at && ser && reason && X509_REVOKED_set_serialNumber(r, ser) &&
	         X509_REVOKED_set_revocationDate(r, at);
	/* RFC 5280 5.3.1: no reason code rather than "unspecified" */
	if (ok && e->reason > 0)
		ok = ASN1_ENUMERATED_set(reason, e->reason) &&
		     X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0);
	if (ok && X509_CRL_add0_revoked(crl, r))
		r = NULL;
	else
		ok = 0;
	X509_REVOKED_free(r);
	ASN1_TIME_free(at);
	ASN1_INTEGER_free(ser);
	ASN1_ENUMERATED_free(reason);
	BN_free(bn);
	return ok ? KW_OK : KW_FAIL(KW_ERR_INTERNAL, "cannot add serial %s to the CRL", e->serial);
}

static kw_rc fill_crl(X509_CRL *crl, X509 *issuer, const kwi_crl_entry *entries, size_t n,
                      time_t this_update, time_t next_update, long number)
{
	ASN1_TIME *tu = ASN1_TIME_set(NULL, this_update), *nu = ASN1_TIME_set(NULL, next_update);
	int ok = tu && nu && X509_CRL_set_version(crl, 1) &&
	         X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) &&
	         X509_CRL_set1_lastUpdate(crl, tu) && X509_CRL_set1_nextUpdate(crl, nu);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	if (!ok)
		return KW_FAIL(KW_ERR_INTERNAL, "cannot fill the CRL");
	for (size_t i = 0; i < n; i++)
		KW_GUARD(crl_entry(crl, &entries[i]));
	X509_CRL_sort(crl);
	return crl_extensions(crl, issuer, number);
}

/* OpenSSL 3.0 has no accessor for a CRL's inner AlgorithmIdentifier (3.2's
 * X509_CRL_get0_tbs_sigalg): signing once with a throwaway in-memory key of
 * the same family and digest sets both; the hardware signature then replaces
 * the throwaway one. The CA's key is never in software. */
static kw_rc crl_algorithms(X509_CRL *crl, const sig_choice *c)
{
	EVP_PKEY *tmp = c->params.scheme == KW_SIG_ECDSA ? EVP_EC_gen("P-256") : EVP_RSA_gen(1024);
	int ok = tmp && X509_CRL_sign(crl, tmp, c->md) > 0;
	EVP_PKEY_free(tmp);
	return ok ? KW_OK : KW_FAIL(KW_ERR_INTERNAL, "cannot set the CRL's signature algorithm");
}

kw_rc kwi_x509_crl_sign(const kwi_signer *signer, EVP_PKEY *signer_pub, X509 *issuer,
                        const kwi_crl_entry *entries, size_t n, time_t this_update,
                        time_t next_update, long number, X509_CRL **out)
{
	kw_rc rc = KW_OK;
	sig_choice c;
	const ASN1_BIT_STRING *sig = NULL;
	const X509_ALGOR *alg = NULL;
	*out = NULL;
	KW_GUARD(choose(signer->type, &c));
	X509_CRL *crl = X509_CRL_new();
	if (crl == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if ((rc = fill_crl(crl, issuer, entries, n, this_update, next_update, number)) != KW_OK)
		goto out;
	if ((rc = crl_algorithms(crl, &c)) != KW_OK)
		goto out;
	X509_CRL_get0_signature(crl, &sig, &alg);
	if ((rc = sign_object(signer, &c, crl, signer_pub, sig, &crl_kind)) != KW_OK)
		goto out;
	*out = crl;
	crl = NULL;
out:
	X509_CRL_free(crl);
	ERR_clear_error();
	return rc;
}

static kw_rc csr_extensions(X509_REQ *req, const kwi_cert_template *t)
{
	kw_rc rc = KW_OK;
	X509V3_CTX ctx;
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509 *scratch = X509_new(); /* only to reuse add_ext's syntax checks */
	if (exts == NULL || scratch == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
	/* a CA's CSR asks for CA:TRUE (and its pathlen) from the CA that signs it */
	if (t->ca && (rc = basic_constraints(scratch, &ctx, t)) != KW_OK)
		goto out;
	if ((rc = add_ext(scratch, &ctx, NID_key_usage, default_ku(t))) != KW_OK ||
	    ((t->ext_key_usage == NULL || t->ext_key_usage[0]) &&
	     (rc = add_ext(scratch, &ctx, NID_ext_key_usage,
	                   t->ext_key_usage ? t->ext_key_usage : "serverAuth")) != KW_OK))
		goto out;
	if (t->sans && sk_GENERAL_NAME_num(t->sans) > 0 &&
	    !X509_add1_ext_i2d(scratch, NID_subject_alt_name, (void *)t->sans, 0,
	                       X509V3_ADD_DEFAULT)) {
		rc = KW_FAIL(KW_ERR_INTERNAL, "cannot add subjectAltName");
		goto out;
	}
	for (int i = 0; i < X509_get_ext_count(scratch); i++)
		sk_X509_EXTENSION_push(exts, X509_get_ext(scratch, i));
	if (!X509_REQ_add_extensions(req, exts))
		rc = KW_FAIL(KW_ERR_INTERNAL, "cannot add the extension request");
out:
	sk_X509_EXTENSION_free(exts); /* borrowed entries: freed with scratch */
	X509_free(scratch);
	return rc;
}

kw_rc kwi_x509_csr(const kwi_signer *key, EVP_PKEY *pub, const kwi_cert_template *t, X509_REQ **out)
{
	kw_rc rc = KW_OK;
	sig_choice c;
	const ASN1_BIT_STRING *sig = NULL;
	const X509_ALGOR *alg = NULL;
	*out = NULL;
	KW_GUARD(choose(key->type, &c));
	X509_REQ *req = X509_REQ_new();
	if (req == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, t->subject) ||
	    !X509_REQ_set_pubkey(req, pub)) {
		rc = KW_FAIL(KW_ERR_INTERNAL, "cannot fill the CSR");
		goto out;
	}
	if ((rc = csr_extensions(req, t)) != KW_OK)
		goto out;
	X509_REQ_get0_signature(req, &sig, &alg);
	if ((rc = set_alg(alg, &c)) != KW_OK)
		goto out;
	if ((rc = sign_object(key, &c, req, pub, sig, &csr_kind)) != KW_OK)
		goto out;
	*out = req;
	req = NULL;
out:
	X509_REQ_free(req);
	ERR_clear_error();
	return rc;
}

void kwi_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

kw_rc kwi_x509_thumbprints(X509 *x, char sha1[41], char sha256[65])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!X509_digest(x, EVP_sha1(), d, &n) || n != 20)
		return KW_FAIL(KW_ERR_INTERNAL, "cannot compute the SHA-1 thumbprint");
	kwi_hex(d, n, sha1);
	if (!X509_digest(x, EVP_sha256(), d, &n) || n != 32)
		return KW_FAIL(KW_ERR_INTERNAL, "cannot compute the SHA-256 thumbprint");
	kwi_hex(d, n, sha256);
	return KW_OK;
}
