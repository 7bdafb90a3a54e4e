/*
 * Signature context parameters: digest, RSA padding, PSS salt length and
 * MGF1 digest in; the same plus the AlgorithmIdentifier (for X.509 and CSR
 * signing through OpenSSL) out. Every change is checked against what the
 * device can do (kw_key_can_sign), so libssl only picks signatures that work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dispatch.h"
#include "signature.h"

EVP_MD *kwp_sig_fetch_md(const kwp_sig_ctx *c, const char *name)
{
	EVP_MD *md = NULL;
	ERR_set_mark();
	md = EVP_MD_fetch(c->prov->libctx, name, "provider=default");
	if (md == NULL)
		md = EVP_MD_fetch(c->prov->libctx, name, NULL); /* we offer no digests ourselves */
	ERR_pop_to_mark();
	if (md == NULL)
		kwp_raise(c->prov, KWP_R_INVALID_ARGUMENT, "unknown digest '%s'", name);
	return md;
}

static int md_size(int nid)
{
	switch (nid) {
	case NID_sha256: return 32;
	case NID_sha384: return 48;
	case NID_sha512: return 64;
	}
	return 0;
}

/* RSASSA-PSS: emLen - hLen - 2 with emLen = ceil((modBits - 1) / 8). */
static int pss_max_salt(const kwp_sig_ctx *c, int md_nid)
{
	int em_len = (c->key->bits - 1 + 7) / 8;
	return em_len - md_size(md_nid) - 2;
}

kw_sign_params kwp_sig_params(const kwp_sig_ctx *c, int md_nid)
{
	kw_sign_params p = {c->scheme, md_nid, -1};
	if (c->scheme != KW_SIG_RSA_PSS)
		return p;
	switch (c->saltlen) {
	case RSA_PSS_SALTLEN_DIGEST: break;
	case RSA_PSS_SALTLEN_MAX: p.pss_saltlen = pss_max_salt(c, md_nid); break;
	case RSA_PSS_SALTLEN_AUTO:
		/* the signer's choice: the longest salt the device makes */
		p.pss_saltlen = pss_max_salt(c, md_nid);
		if (!kw_key_can_sign(c->key->key, &p))
			p.pss_saltlen = -1;
		break;
	default: p.pss_saltlen = c->saltlen;
	}
	return p;
}

int kwp_sig_check(const kwp_sig_ctx *c)
{
	if (c->md == NULL || c->key == NULL)
		return 1;
	int nid = EVP_MD_get_type(c->md);
	kw_sign_params p = kwp_sig_params(c, nid);
	if (c->scheme == KW_SIG_RSA_PSS && c->mgf1_nid != 0 && c->mgf1_nid != nid) {
		kwp_raise(c->prov, KWP_R_UNSUPPORTED,
		          "PSS with MGF1 digest %s and signature digest %s is not supported: they "
		          "must be the same",
		          OBJ_nid2sn(c->mgf1_nid), OBJ_nid2sn(nid));
		return 0;
	}
	if (!kw_key_can_sign(c->key->key, &p)) {
		kwp_raise(c->prov, KWP_R_UNSUPPORTED,
		          "certificate '%s' (%s key in %s) cannot make %s signatures with %s%s",
		          kw_key_name(c->key->key), kw_key_type_name(c->key->type),
		          kw_key_backend_kind(c->key->key),
		          c->scheme == KW_SIG_ECDSA     ? "ECDSA"
		          : c->scheme == KW_SIG_RSA_PSS ? "RSA-PSS"
		                                        : "RSA PKCS#1 v1.5",
		          OBJ_nid2sn(nid),
		          c->scheme == KW_SIG_RSA_PSS && p.pss_saltlen != -1
		              ? " and this salt length"
		              : "");
		return 0;
	}
	return 1;
}

static int set_digest(kwp_sig_ctx *c, const char *name, int *mgf1)
{
	EVP_MD *md = kwp_sig_fetch_md(c, name);
	if (md == NULL)
		return 0;
	if (mgf1 != NULL) {
		*mgf1 = EVP_MD_get_type(md);
		EVP_MD_free(md);
		return 1;
	}
	if (c->mdctx != NULL && (c->md == NULL || EVP_MD_get_type(md) != EVP_MD_get_type(c->md))) {
		EVP_MD_free(md);
		kwp_raise(c->prov, KWP_R_INVALID_ARGUMENT,
		          "the digest cannot change once hashing has started");
		return 0;
	}
	EVP_MD_free(c->md);
	c->md = md;
	return 1;
}

static int set_pad_mode(kwp_sig_ctx *c, const OSSL_PARAM *p)
{
	int mode = 0;
	if (p->data_type == OSSL_PARAM_UTF8_STRING) {
		const char *s = p->data;
		mode = strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0 ? RSA_PKCS1_PADDING
		       : strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0   ? RSA_PKCS1_PSS_PADDING
		                                                      : -1;
	} else if (!OSSL_PARAM_get_int(p, &mode))
		return 0;
	if (!c->rsa || (mode != RSA_PKCS1_PADDING && mode != RSA_PKCS1_PSS_PADDING)) {
		kwp_raise(c->prov, KWP_R_UNSUPPORTED,
		          "padding mode not supported: keyward keys sign with PKCS#1 v1.5 or PSS");
		return 0;
	}
	c->scheme = mode == RSA_PKCS1_PSS_PADDING ? KW_SIG_RSA_PSS : KW_SIG_RSA_PKCS1;
	return 1;
}

static int set_saltlen(kwp_sig_ctx *c, const OSSL_PARAM *p)
{
	int len = 0;
	if (p->data_type == OSSL_PARAM_UTF8_STRING) {
		const char *s = p->data;
		char *end = NULL;
		if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0)
			len = RSA_PSS_SALTLEN_DIGEST;
		else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0)
			len = RSA_PSS_SALTLEN_MAX;
		else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0)
			len = RSA_PSS_SALTLEN_AUTO;
		else if ((len = (int)strtol(s, &end, 10)) < 0 || end == s || *end != '\0')
			len = -100;
	} else if (!OSSL_PARAM_get_int(p, &len))
		return 0;
	if (!c->rsa || len < RSA_PSS_SALTLEN_MAX) {
		kwp_raise(c->prov, KWP_R_INVALID_ARGUMENT, "invalid PSS salt length");
		return 0;
	}
	c->saltlen = len;
	return 1;
}

int kwp_sig_set_ctx_params(void *ctx, const OSSL_PARAM params[])
{
	kwp_sig_ctx *c = ctx;
	const OSSL_PARAM *p;
	KWP_TRACE("signature_set_ctx_params");
	if (params == NULL)
		return 1;
	if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL &&
	    (p->data_type != OSSL_PARAM_UTF8_STRING || !set_digest(c, p->data, NULL)))
		return 0;
	if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL &&
	    !set_pad_mode(c, p))
		return 0;
	if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL &&
	    !set_saltlen(c, p))
		return 0;
	if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL &&
	    (p->data_type != OSSL_PARAM_UTF8_STRING || !c->rsa ||
	     !set_digest(c, p->data, &c->mgf1_nid)))
		return 0;
	return c->op != KWP_SIG_SIGN || kwp_sig_check(c);
}

const OSSL_PARAM *kwp_sig_settable_ctx_params(void *ctx, void *provctx)
{
	static const OSSL_PARAM rsa[] = {
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
	    OSSL_PARAM_END};
	static const OSSL_PARAM ecdsa[] = {
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0), OSSL_PARAM_END};
	const kwp_sig_ctx *c = ctx;
	(void)provctx;
	KWP_TRACE("signature_settable_ctx_params");
	return c != NULL && !c->rsa ? ecdsa : rsa;
}

const OSSL_PARAM *kwp_sig_gettable_ctx_params(void *ctx, void *provctx)
{
	static const OSSL_PARAM rsa[] = {
	    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
	    OSSL_PARAM_END};
	static const OSSL_PARAM ecdsa[] = {
	    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0), OSSL_PARAM_END};
	const kwp_sig_ctx *c = ctx;
	(void)provctx;
	KWP_TRACE("signature_gettable_ctx_params");
	return c != NULL && !c->rsa ? ecdsa : rsa;
}

static const char *saltlen_name(int len, char *buf, size_t size)
{
	switch (len) {
	case RSA_PSS_SALTLEN_DIGEST: return OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST;
	case RSA_PSS_SALTLEN_MAX: return OSSL_PKEY_RSA_PSS_SALT_LEN_MAX;
	case RSA_PSS_SALTLEN_AUTO: return OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO;
	}
	snprintf(buf, size, "%d", len);
	return buf;
}

static int get_algorithm_id(const kwp_sig_ctx *c, OSSL_PARAM *p)
{
	unsigned char *der = NULL;
	int len = kwp_sig_algorithm_id(c, &der);
	int ok = len > 0 && OSSL_PARAM_set_octet_string(p, der, (size_t)len);
	OPENSSL_free(der);
	return ok;
}

int kwp_sig_get_ctx_params(void *ctx, OSSL_PARAM params[])
{
	const kwp_sig_ctx *c = ctx;
	OSSL_PARAM *p;
	char buf[16];
	KWP_TRACE("signature_get_ctx_params");
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID)) != NULL &&
	    !get_algorithm_id(c, p))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL &&
	    !OSSL_PARAM_set_utf8_string(p, c->md ? EVP_MD_get0_name(c->md) : ""))
		return 0;
	if (!c->rsa)
		return 1;
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
		int pss = c->scheme == KW_SIG_RSA_PSS;
		if (p->data_type == OSSL_PARAM_INTEGER
		        ? !OSSL_PARAM_set_int(p, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING)
		        : !OSSL_PARAM_set_utf8_string(p, pss ? OSSL_PKEY_RSA_PAD_MODE_PSS
		                                             : OSSL_PKEY_RSA_PAD_MODE_PKCSV15))
			return 0;
	}
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL &&
	    (p->data_type == OSSL_PARAM_INTEGER
	         ? !OSSL_PARAM_set_int(p, c->saltlen)
	         : !OSSL_PARAM_set_utf8_string(p, saltlen_name(c->saltlen, buf, sizeof(buf)))))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL) {
		int nid = c->mgf1_nid ? c->mgf1_nid : c->md ? EVP_MD_get_type(c->md) : NID_undef;
		if (!OSSL_PARAM_set_utf8_string(p, nid != NID_undef ? OBJ_nid2sn(nid) : ""))
			return 0;
	}
	return 1;
}

/* RSASSA-PSS-params (RFC 4055) for the configured digest and salt. */
static ASN1_STRING *pss_params(const kwp_sig_ctx *c, int md_nid)
{
	RSA_PSS_PARAMS *pss = RSA_PSS_PARAMS_new();
	X509_ALGOR *mgf1md = X509_ALGOR_new();
	ASN1_STRING *mgf1 = NULL, *out = NULL;
	kw_sign_params sp = kwp_sig_params(c, md_nid);
	int salt = sp.pss_saltlen == -1 ? md_size(md_nid) : sp.pss_saltlen;
	if (pss == NULL || mgf1md == NULL)
		goto out;
	if ((pss->hashAlgorithm = X509_ALGOR_new()) == NULL ||
	    (pss->maskGenAlgorithm = X509_ALGOR_new()) == NULL)
		goto out;
	X509_ALGOR_set_md(pss->hashAlgorithm, c->md);
	X509_ALGOR_set_md(mgf1md, c->md);
	if (ASN1_item_pack(mgf1md, ASN1_ITEM_rptr(X509_ALGOR), &mgf1) == NULL ||
	    !X509_ALGOR_set0(pss->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE, mgf1))
		goto out;
	mgf1 = NULL;
	if (salt != 20 && ((pss->saltLength = ASN1_INTEGER_new()) == NULL ||
	                   !ASN1_INTEGER_set(pss->saltLength, salt)))
		goto out;
	ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), &out);
out:
	ASN1_STRING_free(mgf1);
	X509_ALGOR_free(mgf1md);
	RSA_PSS_PARAMS_free(pss);
	return out;
}

int kwp_sig_algorithm_id(const kwp_sig_ctx *c, unsigned char **der)
{
	X509_ALGOR *alg = X509_ALGOR_new();
	int sig_nid = NID_undef, len = 0;
	int md_nid = c->md ? EVP_MD_get_type(c->md) : NID_undef;
	*der = NULL;
	if (alg == NULL || md_size(md_nid) == 0) {
		kwp_raise(c->prov, KWP_R_INVALID_ARGUMENT,
		          "no AlgorithmIdentifier without a SHA-256, SHA-384 or SHA-512 digest");
		goto out;
	}
	if (c->scheme == KW_SIG_RSA_PSS) {
		ASN1_STRING *params = pss_params(c, md_nid);
		if (params == NULL ||
		    !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, params)) {
			ASN1_STRING_free(params);
			goto out;
		}
	} else if (OBJ_find_sigid_by_algs(&sig_nid, md_nid,
	                                  c->rsa ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey)) {
		/* RFC 4055: NULL parameters for RSA; RFC 5758: absent for ECDSA */
		if (!X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid), c->rsa ? V_ASN1_NULL : V_ASN1_UNDEF,
		                     NULL))
			goto out;
	} else
		goto out;
	len = i2d_X509_ALGOR(alg, der);
out:
	X509_ALGOR_free(alg);
	return len > 0 ? len : 0;
}
