/* see tpm2_internal.h: the "TSS2 PRIVATE KEY" file (TPM 2.0 key files, as
 * used by tpm2-openssl, tpm2-tss-engine and the Linux kernel's trusted keys) */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
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

            static int set_marshalled(kwb_tpm2_ctx * c, const kwb_tpm2_blob *b, KW_TSS2_KEY *k)
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

kw_rc kwb_tpm2_key_ref_export(void *ctx, const kw_key_blob *ref, const char *format, char **out)
{
	kwb_tpm2_ctx *c = ctx;
	kwb_tpm2_blob blob;
	ESYS_TR srk = ESYS_TR_NONE;
	*out = NULL;
	if (format == NULL || strcmp(format, "tss2") != 0)
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "a TPM key has no '%s' reference (formats: keyward, tss2)",
		               format ? format : "");
	KW_GUARD(kwb_tpm2_blob_parse(ref, &blob));
	/* The parent the key lives under: the persistent SRK when there is one,
	 * else the owner's primary from the same template tpm2-openssl uses. */
	KW_GUARD(kwb_tpm2_srk_get(c, &srk));
	KW_TSS2_KEY *k = KW_TSS2_KEY_new();
	if (k == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	k->type = OBJ_txt2obj(OID_LOADABLE_KEY, 1);
	k->empty_auth = 0xff; /* TRUE: the key has no password */
	kw_rc rc = KW_OK;
	if (k->type == NULL ||
	    !ASN1_INTEGER_set_uint64(k->parent,
	                             c->srk_persistent ? KWB_TPM2_SRK_HANDLE : TPM2_RH_OWNER) ||
	    !set_marshalled(c, &blob, k))
		rc = KW_FAIL(KW_ERR_INTERNAL, "cannot build the TSS2 key file");
	else
		rc = pem_string(k, out);
	KW_TSS2_KEY_free(k);
	return rc;
}

/* ---- cert adopt: a key file other software made ---- */

static kw_rc tss2_file_read(const char *path, KW_TSS2_KEY **out)
{
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long len = 0;
	BIO *b = path ? BIO_new_file(path, "r") : NULL;
	kw_rc rc = KW_OK;

	*out = NULL;
	if (b == NULL) {
		ERR_clear_error();
		return KW_FAIL(KW_ERR_NOT_FOUND, "cannot read TSS2 key file %s", path ? path : "");
	}
	if (!PEM_read_bio(b, &name, &header, &der, &len) || strcmp(name, PEM_TSS2) != 0)
		rc = KW_FAIL(KW_ERR_PARSE, "%s is not a '" PEM_TSS2 "' PEM file", path);
	else {
		const unsigned char *q = der;
		*out = d2i_KW_TSS2_KEY(NULL, &q, len);
		ASN1_OBJECT *loadable = OBJ_txt2obj(OID_LOADABLE_KEY, 1);
		if (*out == NULL || loadable == NULL || OBJ_cmp((*out)->type, loadable) != 0) {
			rc = KW_FAIL(KW_ERR_PARSE,
			             "%s is not a loadable TPM 2.0 key (TPMKey, " OID_LOADABLE_KEY
			             ")",
			             path);
			KW_TSS2_KEY_free(*out);
			*out = NULL;
		}
		ASN1_OBJECT_free(loadable);
	}
	ERR_clear_error();
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(b);
	return rc;
}

static kw_rc tss2_blob(const char *path, const KW_TSS2_KEY *k, kwb_tpm2_blob *blob)
{
	uint64_t parent = 0;
	size_t off = 0;

	memset(blob, 0, sizeof(*blob));
	if (!ASN1_INTEGER_get_uint64(&parent, k->parent) ||
	    (parent != TPM2_RH_OWNER && parent != KWB_TPM2_SRK_HANDLE)) {
		ERR_clear_error();
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "the key in %s lives under parent 0x%08llx: keyward adopts keys "
		               "under the owner's primary (0x40000001) or the SRK (0x81000001)",
		               path, (unsigned long long)parent);
	}
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(k->pubkey->data, (size_t)k->pubkey->length, &off,
	                                   &blob->pub) != TSS2_RC_SUCCESS ||
	    off != (size_t)k->pubkey->length ||
	    Tss2_MU_TPM2B_PRIVATE_Unmarshal(k->privkey->data, (size_t)k->privkey->length,
	                                    &(size_t){0}, &blob->priv) != TSS2_RC_SUCCESS)
		return KW_FAIL(KW_ERR_PARSE,
		               "the TPM key in %s is damaged (public or private area)", path);
	return KW_OK;
}

kw_rc kwb_tpm2_key_resolve(void *ctx, const char *spec, kw_key_blob *out, unsigned char **cert_der,
                           size_t *cert_len)
{
	kwb_tpm2_ctx *c = ctx;
	KW_TSS2_KEY *k = NULL;
	kwb_tpm2_blob blob;
	kwb_tpm2_loaded loaded = KWB_TPM2_LOADED_INIT;

	*out = (kw_key_blob){0};
	*cert_der = NULL; /* the TPM keeps no certificates */
	*cert_len = 0;
	KW_GUARD(tss2_file_read(spec, &k));
	kw_rc rc = tss2_blob(spec, k, &blob);
	KW_TSS2_KEY_free(k);
	if (rc != KW_OK)
		return rc;
	/* Proof that it belongs here: the TPM loads it under our SRK. */
	if (kwb_tpm2_key_load(c, &blob, 0, &loaded) != KW_OK) {
		kwb_tpm2_key_unload(c, &loaded);
		kw_error_clear();
		return KW_FAIL(KW_ERR_NOT_FOUND,
		               "the key in %s does not load under this TPM's SRK: it was made "
		               "under another parent or on another TPM",
		               spec);
	}
	kwb_tpm2_key_unload(c, &loaded);
	return kwb_tpm2_blob_encode(&blob.pub, &blob.priv, out);
}
