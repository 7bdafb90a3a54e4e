/* keyward provider: the signature context, shared by signature.c and sigparams.c. */
#ifndef KEYWARD_PROVIDER_SIGNATURE_H
#define KEYWARD_PROVIDER_SIGNATURE_H

#include <openssl/evp.h>

#include "provider.h"

typedef enum { KWP_SIG_NONE = 0, KWP_SIG_SIGN, KWP_SIG_VERIFY } kwp_sig_op;

typedef struct {
	kwp_ctx *prov;
	char *propq;  /* the caller's; never used to find our own algorithms */
	int rsa;      /* the "RSA" algorithm (else "ECDSA") */
	kwp_key *key; /* a reference */
	kwp_sig_op op;
	kw_sig_scheme scheme;
	EVP_MD *md;        /* NULL until a digest is set */
	int mgf1_nid;      /* 0: the signature digest */
	int saltlen;       /* >= 0, or RSA_PSS_SALTLEN_DIGEST / _AUTO / _MAX */
	EVP_MD_CTX *mdctx; /* digest-sign / digest-verify in progress */
} kwp_sig_ctx;

/* Fetches a digest from the default provider (any other if it has none);
 * raises an error if it is unknown. */
EVP_MD *kwp_sig_fetch_md(const kwp_sig_ctx *c, const char *name);

/* Checks that the device can make the signature configured so far (when
 * the digest is known); raises an error saying why not. */
int kwp_sig_check(const kwp_sig_ctx *c);

/* The signing parameters for core, with the PSS salt length in bytes
 * (or -1 for "as long as the digest"). */
kw_sign_params kwp_sig_params(const kwp_sig_ctx *c, int md_nid);

/* The signature's DER AlgorithmIdentifier (OPENSSL_malloc'd), or 0. */
int kwp_sig_algorithm_id(const kwp_sig_ctx *c, unsigned char **der);

#endif
