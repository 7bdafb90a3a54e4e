/* see tpm2_internal.h: the "TSS2 PRIVATE KEY" file (TPM 2.0 key files, as
 * used by tpm2-openssl, tpm2-tss-engine and the Linux kernel's trusted keys) */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

#include "tpm2_internal.h"

/*
 * TPMKey ::= SEQUENCE {
 *     type        OBJECT IDENTIFIER,           -- id-loadablekey 2.23.133.10.1.3
 *     emptyAuth   [0] EXPLICIT BOOLEAN OPTIONAL,
 *     parent      INTEGER,                     -- 0x40000001: the owner's primary
 *     pubkey      OCTET STRING,                -- TPM2B_PUBLIC
 *     privkey     OCTET STRING                 -- TPM2B_PRIVATE (TPM-wrapped)
 * }
 */
typedef struct {
	ASN1_OBJECT *type;
	ASN1_BOOLEAN empty_auth;
	ASN1_INTEGER *parent;
	ASN1_OCTET_STRING *pubkey;
	ASN1_OCTET_STRING *privkey;
} KW_TSS2_KEY;

DECLARE_ASN1_FUNCTIONS(KW_TSS2_KEY)

/* clang-format off */
ASN1_SEQUENCE(KW_TSS2_KEY) = {
	ASN1_SIMPLE(KW_TSS2_KEY, type, ASN1_OBJECT),
	ASN1_EXP_OPT(KW_TSS2_KEY, empty_auth, ASN1_FBOOLEAN, 0),
	ASN1_SIMPLE(KW_TSS2_KEY, parent, ASN1_INTEGER),
	ASN1_SIMPLE(KW_TSS2_KEY, pubkey, ASN1_OCTET_STRING),
	ASN1_SIMPLE(KW_TSS2_KEY, privkey, ASN1_OCTET_STRING),
} ASN1_SEQUENCE_END(KW_TSS2_KEY)

IMPLEMENT_ASN1_FUNCTIONS(KW_TSS2_KEY)
/* clang-format on */

#define OID_LOADABLE_KEY "2.23.133.10.1.3"
#define PEM_TSS2         "TSS2 PRIVATE KEY"

            static int set_marshalled(kw_tpm2_ctx * c, const kw_tpm2_blob *b, KW_TSS2_KEY *k)
{
	unsigned char pub[sizeof(TPM2B_PUBLIC)], priv[sizeof(TPM2B_PRIVATE)];
	size_t npub = 0, npriv = 0;
	(void)c;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&b->pub, pub, sizeof(pub), &npub) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_PRIVATE_Marshal(&b->priv, priv, sizeof(priv), &npriv) != TSS2_RC_SUCCESS)
		return 0;
	return ASN1_OCTET_STRING_set(k->pubkey, pub, (int)npub) &&
	       ASN1_OCTET_STRING_set(k->privkey, priv, (int)npriv);
}

static kw_rc pem_string(KW_TSS2_KEY *k, char **out)
{
	unsigned char *der = NULL;
	char *data = NULL;
	int n = i2d_KW_TSS2_KEY(k, &der);
	BIO *b = BIO_new(BIO_s_mem());
	kw_rc rc = KW_OK;
	if (n <= 0 || b == NULL || !PEM_write_bio(b, PEM_TSS2, "", der, n)) {
		rc = KW_FAIL(KW_ERR_INTERNAL, "cannot encode the TSS2 key file");
		goto out;
	}
	long len = BIO_get_mem_data(b, &data);
	*out = malloc((size_t)len + 1);
	if (*out == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(*out, data, (size_t)len);
	(*out)[len] = '\0';
out:
	BIO_free(b);
	OPENSSL_free(der);
	return rc;
}

kw_rc kw_tpm2_key_ref_export(void *ctx, const kw_keyref *ref, const char *format, char **out)
{
	kw_tpm2_ctx *c = ctx;
	kw_tpm2_blob blob;
	ESYS_TR srk = ESYS_TR_NONE;
	*out = NULL;
	if (format == NULL || strcmp(format, "tss2") != 0)
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "a TPM key has no '%s' reference (formats: keyward, tss2)",
		               format ? format : "");
	KW_GUARD(kw_tpm2_blob_parse(ref, &blob));
	/* The parent the key lives under: the persistent SRK when there is one,
	 * else the owner's primary from the same template tpm2-openssl uses. */
	KW_GUARD(kw_tpm2_srk_get(c, &srk));
	KW_TSS2_KEY *k = KW_TSS2_KEY_new();
	if (k == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	k->type = OBJ_txt2obj(OID_LOADABLE_KEY, 1);
	k->empty_auth = 0xff; /* TRUE: the key has no password */
	kw_rc rc = KW_OK;
	if (k->type == NULL ||
	    !ASN1_INTEGER_set_uint64(k->parent,
	                             c->srk_persistent ? KW_TPM2_SRK_HANDLE : TPM2_RH_OWNER) ||
	    !set_marshalled(c, &blob, k))
		rc = KW_FAIL(KW_ERR_INTERNAL, "cannot build the TSS2 key file");
	else
		rc = pem_string(k, out);
	KW_TSS2_KEY_free(k);
	return rc;
}
