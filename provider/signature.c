/*
 * ECDSA and RSA (PKCS#1 v1.5, PSS) signatures: the message is hashed in
 * software with a digest from the default provider, then the device makes
 * the signature in one kw_key_sign call. Verification needs no device: it is
 * handed to the default provider with the key's public half.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dispatch.h"
#include "signature.h"

static void *newctx(void *provctx, const char *propq, int rsa)
{
	kwp_sig_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL || (propq != NULL && (c->propq = strdup(propq)) == NULL)) {
		free(c);
		return NULL;
	}
	c->prov = provctx;
	c->rsa = rsa;
	return c;
}

void *kwp_sig_ecdsa_newctx(void *provctx, const char *propq)
{
	KWP_TRACE("signature_newctx ECDSA");
	return newctx(provctx, propq, 0);
}

void *kwp_sig_rsa_newctx(void *provctx, const char *propq)
{
	KWP_TRACE("signature_newctx RSA");
	return newctx(provctx, propq, 1);
}

void kwp_sig_freectx(void *ctx)
{
	kwp_sig_ctx *c = ctx;
	KWP_TRACE("signature_freectx");
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->mdctx);
	EVP_MD_free(c->md);
	kwp_key_free(c->key);
	free(c->propq);
	free(c);
}

void *kwp_sig_dupctx(void *ctx)
{
	const kwp_sig_ctx *c = ctx;
	KWP_TRACE("signature_dupctx");
	kwp_sig_ctx *d = malloc(sizeof(*d));
	if (d == NULL)
		return NULL;
	*d = *c;
	d->propq = NULL;
	d->mdctx = NULL;
	kwp_key_up_ref(d->key);
	if (d->md != NULL && !EVP_MD_up_ref(d->md))
		d->md = NULL;
	if ((c->propq != NULL && (d->propq = strdup(c->propq)) == NULL) ||
	    (c->mdctx != NULL &&
	     ((d->mdctx = EVP_MD_CTX_new()) == NULL || !EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx)))) {
		kwp_sig_freectx(d);
		return NULL;
	}
	return d;
}

/* A fresh operation on provkey (NULL: the key of the previous one). */
static int init(kwp_sig_ctx *c, void *provkey, kwp_sig_op op)
{
	kwp_key *k = provkey != NULL ? provkey : c->key;
	if (k == NULL || k->key == NULL) {
		kwp_raise(c->prov, KWP_R_INVALID_ARGUMENT, "no key given");
		return 0;
	}
	if (k->is_rsa != c->rsa) {
		kwp_raise(c->prov, KWP_R_INVALID_ARGUMENT,
		          "certificate '%s' has a %s key: it cannot make %s signatures",
		          kw_key_name(k->key), kw_key_type_name(k->type), c->rsa ? "RSA" : "ECDSA");
		return 0;
	}
	kwp_key_up_ref(k);
	kwp_key_free(c->key);
	c->key = k;
	c->op = op;
	c->scheme = c->rsa ? KW_SIG_RSA_PKCS1 : KW_SIG_ECDSA;
	/* TLS 1.3's rule, and the one length every device supports */
	c->saltlen = RSA_PSS_SALTLEN_DIGEST;
	c->mgf1_nid = 0;
	EVP_MD_free(c->md);
	c->md = NULL;
	EVP_MD_CTX_free(c->mdctx);
	c->mdctx = NULL;
	return 1;
}

int kwp_sig_sign_init(void *ctx, void *provkey, const OSSL_PARAM params[])
{
	KWP_TRACE("signature_sign_init");
	return init(ctx, provkey, KWP_SIG_SIGN) && kwp_sig_set_ctx_params(ctx, params);
}

int kwp_sig_verify_init(void *ctx, void *provkey, const OSSL_PARAM params[])
{
	KWP_TRACE("signature_verify_init");
	return init(ctx, provkey, KWP_SIG_VERIFY) && kwp_sig_set_ctx_params(ctx, params);
}

static int digest_init(kwp_sig_ctx *c, const char *mdname, void *provkey, kwp_sig_op op,
                       const OSSL_PARAM params[])
{
	if (!init(c, provkey, op))
		return 0;
	if (mdname == NULL || mdname[0] == '\0')
		mdname = c->key->type == KW_KEY_EC_P384 ? "SHA384" : "SHA256";
	if ((c->md = kwp_sig_fetch_md(c, mdname)) == NULL || !kwp_sig_set_ctx_params(c, params))
		return 0;
	/* libssl asks here which digests the key signs with: answer for the device */
	if (op == KWP_SIG_SIGN && !kwp_sig_check(c))
		return 0;
	if ((c->mdctx = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex2(c->mdctx, c->md, NULL)) {
		kwp_raise(c->prov, KWP_R_INTERNAL, "cannot start a %s digest", mdname);
		return 0;
	}
	return 1;
}

int kwp_sig_digest_sign_init(void *ctx, const char *mdname, void *provkey,
                             const OSSL_PARAM params[])
{
	KWP_TRACE("signature_digest_sign_init %s", mdname ? mdname : "(default digest)");
	return digest_init(ctx, mdname, provkey, KWP_SIG_SIGN, params);
}

int kwp_sig_digest_verify_init(void *ctx, const char *mdname, void *provkey,
                               const OSSL_PARAM params[])
{
	KWP_TRACE("signature_digest_verify_init %s", mdname ? mdname : "(default digest)");
	return digest_init(ctx, mdname, provkey, KWP_SIG_VERIFY, params);
}

int kwp_sig_digest_update(void *ctx, const unsigned char *data, size_t datalen)
{
	kwp_sig_ctx *c = ctx;
	KWP_TRACE("signature_digest_update %zu bytes", datalen);
	return c->mdctx != NULL && EVP_DigestUpdate(c->mdctx, data, datalen);
}

/* The digest of a pre-hashed input: the one set, else guessed from its length. */
static int prehashed_nid(const kwp_sig_ctx *c, size_t tbslen)
{
	if (c->md != NULL)
		return (size_t)EVP_MD_get_size(c->md) == tbslen ? EVP_MD_get_type(c->md)
		                                                : NID_undef;
	switch (tbslen) {
	case 32: return NID_sha256;
	case 48: return NID_sha384;
	case 64: return NID_sha512;
	}
	return NID_undef;
}

static int do_sign(kwp_sig_ctx *c, int md_nid, const unsigned char *dgst, size_t dgst_len,
                   unsigned char *sig, size_t *siglen, size_t sigsize)
{
	kw_sign_params p = kwp_sig_params(c, md_nid);
	unsigned char buf[1024];
	size_t len = sizeof(buf);
	if (!kw_key_can_sign(c->key->key, &p)) {
		kwp_raise(c->prov, KWP_R_UNSUPPORTED,
		          "certificate '%s' (%s key in %s): the device cannot make this signature "
		          "(%s)",
		          kw_key_name(c->key->key), kw_key_type_name(c->key->type),
		          kw_key_backend_kind(c->key->key), OBJ_nid2sn(md_nid));
		return 0;
	}
	OSSL_LIB_CTX *prev = kwp_core_enter(c->prov);
	kw_rc rc = kw_key_sign(c->key->key, &p, dgst, dgst_len, buf, &len);
	kwp_core_leave(prev);
	if (rc != KW_OK) {
		kwp_raise_kw(c->prov, KWP_R_SIGN_FAILED);
		return 0;
	}
	if (len > sigsize) {
		kwp_raise(c->prov, KWP_R_INVALID_ARGUMENT,
		          "signature buffer too small: %zu bytes, %zu needed", sigsize, len);
		return 0;
	}
	memcpy(sig, buf, len);
	*siglen = len;
	KWP_TRACE("signed a %s digest with certificate '%s' (%s): %zu-byte signature",
	          OBJ_nid2sn(md_nid), kw_key_name(c->key->key), kw_key_backend_kind(c->key->key),
	          len);
	return 1;
}

int kwp_sig_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                 const unsigned char *tbs, size_t tbslen)
{
	kwp_sig_ctx *c = ctx;
	KWP_TRACE("signature_sign %zu bytes", tbslen);
	if (c->op != KWP_SIG_SIGN || c->key == NULL)
		return 0;
	if (sig == NULL) {
		*siglen = kw_key_sig_max(c->key->key);
		return 1;
	}
	int nid = prehashed_nid(c, tbslen);
	if (nid == NID_undef) {
		kwp_raise(c->prov, KWP_R_INVALID_ARGUMENT,
		          "the input to sign must be a SHA-256, SHA-384 or SHA-512 digest (got %zu "
		          "bytes)",
		          tbslen);
		return 0;
	}
	return do_sign(c, nid, tbs, tbslen, sig, siglen, sigsize);
}

int kwp_sig_digest_sign_final(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
	kwp_sig_ctx *c = ctx;
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	KWP_TRACE("signature_digest_sign_final");
	if (c->op != KWP_SIG_SIGN || c->mdctx == NULL)
		return 0;
	if (sig == NULL) {
		*siglen = kw_key_sig_max(c->key->key);
		return 1;
	}
	if (!EVP_DigestFinal_ex(c->mdctx, dgst, &dlen))
		return 0;
	return do_sign(c, EVP_MD_get_type(c->md), dgst, dlen, sig, siglen, sigsize);
}

/* The default provider checks the signature against the public half. */
static int do_verify(kwp_sig_ctx *c, int md_nid, const unsigned char *dgst, size_t dgst_len,
                     const unsigned char *sig, size_t siglen)
{
	static const char *props = "provider=default";
	size_t len = 0;
	const unsigned char *spki = kw_key_spki(c->key->key, &len);
	OSSL_LIB_CTX *ctx = c->prov->core_libctx;
	EVP_PKEY *pub = d2i_PUBKEY_ex(NULL, &spki, (long)len, ctx, props);
	EVP_PKEY_CTX *pc = pub ? EVP_PKEY_CTX_new_from_pkey(ctx, pub, props) : NULL;
	EVP_MD *md = c->md ? c->md : kwp_sig_fetch_md(c, OBJ_nid2sn(md_nid));
	int ok = pc != NULL && md != NULL && EVP_PKEY_verify_init(pc) > 0 &&
	         EVP_PKEY_CTX_set_signature_md(pc, md) > 0;
	if (ok && c->rsa)
		ok = EVP_PKEY_CTX_set_rsa_padding(pc, c->scheme == KW_SIG_RSA_PSS
		                                          ? RSA_PKCS1_PSS_PADDING
		                                          : RSA_PKCS1_PADDING) > 0;
	if (ok && c->scheme == KW_SIG_RSA_PSS)
		ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, c->saltlen) > 0 &&
		     EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) > 0;
	if (ok)
		ok = EVP_PKEY_verify(pc, sig, siglen, dgst, dgst_len) == 1;
	KWP_TRACE("verified a %s digest with certificate '%s': %s", OBJ_nid2sn(md_nid),
	          kw_key_name(c->key->key), ok ? "good" : "bad");
	if (md != c->md)
		EVP_MD_free(md);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(pub);
	return ok;
}

int kwp_sig_verify(void *ctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs,
                   size_t tbslen)
{
	kwp_sig_ctx *c = ctx;
	KWP_TRACE("signature_verify");
	if (c->op != KWP_SIG_VERIFY || c->key == NULL)
		return 0;
	int nid = prehashed_nid(c, tbslen);
	return nid != NID_undef && do_verify(c, nid, tbs, tbslen, sig, siglen);
}

int kwp_sig_digest_verify_final(void *ctx, const unsigned char *sig, size_t siglen)
{
	kwp_sig_ctx *c = ctx;
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	KWP_TRACE("signature_digest_verify_final");
	if (c->op != KWP_SIG_VERIFY || c->mdctx == NULL ||
	    !EVP_DigestFinal_ex(c->mdctx, dgst, &dlen))
		return 0;
	return do_verify(c, EVP_MD_get_type(c->md), dgst, dlen, sig, siglen);
}
