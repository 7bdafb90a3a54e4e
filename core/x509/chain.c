/* see internal.h: the certificates a CA sends back (cert merge) and the chain among them */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include "internal.h"

#define CERTS_MAX 64

static kw_rc push(const char *source, STACK_OF(X509) * out, X509 *x)
{
	if (sk_X509_num(out) >= CERTS_MAX) {
		X509_free(x);
		return KW_FAIL(KW_ERR_PARSE, "%s: more than %d certificates", source, CERTS_MAX);
	}
	if (!sk_X509_push(out, x)) {
		X509_free(x);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	return KW_OK;
}

/* The certificates of a PKCS#7 (SignedData) bundle, as .p7b files carry them. */
static kw_rc pkcs7_certs(const char *source, const unsigned char *der, long len,
                         STACK_OF(X509) * out)
{
	const unsigned char *p = der;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, len);
	STACK_OF(X509) *certs = NULL;
	kw_rc rc = KW_OK;
	if (p7 == NULL || p != der + len)
		rc = KW_FAIL(KW_ERR_PARSE, "%s: corrupt PKCS#7 bundle", source);
	else if (OBJ_obj2nid(p7->type) == NID_pkcs7_signed && p7->d.sign)
		certs = p7->d.sign->cert;
	for (int i = 0; rc == KW_OK && i < sk_X509_num(certs); i++)
		rc = push(source, out, X509_dup(sk_X509_value(certs, i)));
	if (rc == KW_OK && sk_X509_num(certs) == 0)
		rc = KW_FAIL(KW_ERR_PARSE, "%s: the PKCS#7 bundle holds no certificate", source);
	PKCS7_free(p7);
	return rc;
}

static kw_rc der_cert(const char *source, const unsigned char *der, long len, int aux,
                      STACK_OF(X509) * out)
{
	const unsigned char *p = der;
	X509 *x = aux ? d2i_X509_AUX(NULL, &p, len) : d2i_X509(NULL, &p, len);
	if (x == NULL || p != der + len) {
		X509_free(x);
		return KW_FAIL(KW_ERR_PARSE, "%s: corrupt certificate (certificate %d)", source,
		               sk_X509_num(out) + 1);
	}
	return push(source, out, x);
}

static kw_rc pem_block(const char *source, const char *type, const unsigned char *der, long len,
                       STACK_OF(X509) * out)
{
	if (strcmp(type, PEM_STRING_X509) == 0 || strcmp(type, PEM_STRING_X509_OLD) == 0)
		return der_cert(source, der, len, 0, out);
	if (strcmp(type, PEM_STRING_X509_TRUSTED) == 0)
		return der_cert(source, der, len, 1, out);
	if (strcmp(type, PEM_STRING_PKCS7) == 0 || strcmp(type, PEM_STRING_PKCS7_SIGNED) == 0)
		return pkcs7_certs(source, der, len, out);
	if (strcmp(type, PEM_STRING_X509_REQ) == 0 || strcmp(type, PEM_STRING_X509_REQ_OLD) == 0)
		return KW_FAIL(KW_ERR_PARSE,
		               "%s: holds a CSR, not the certificate the CA issued for it", source);
	return KW_FAIL(KW_ERR_PARSE,
	               "%s: holds a '%s' PEM block; give the certificate and its chain "
	               "(CERTIFICATE or PKCS7 blocks) only",
	               source, type);
}

static kw_rc pem_parse(const char *source, const unsigned char *data, size_t len,
                       STACK_OF(X509) * out)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);
	kw_rc rc = b ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	ERR_clear_error();
	while (rc == KW_OK) {
		char *type = NULL, *header = NULL;
		unsigned char *der = NULL;
		long n = 0;
		if (!PEM_read_bio(b, &type, &header, &der, &n)) {
			unsigned long e = ERR_peek_last_error();
			/* no further BEGIN line: the end, unless a block was cut short */
			if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
			    ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
				rc = KW_FAIL(KW_ERR_PARSE, "%s: truncated or corrupt PEM (%s)",
				             source,
				             ERR_reason_error_string(e) ? ERR_reason_error_string(e)
				                                        : "unreadable");
			break;
		}
		rc = pem_block(source, type, der, n, out);
		OPENSSL_free(type);
		OPENSSL_free(header);
		OPENSSL_free(der);
	}
	BIO_free(b);
	ERR_clear_error();
	return rc;
}

static int is_pkcs7(const unsigned char *data, size_t len)
{
	const unsigned char *p = data;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	int yes = p7 != NULL && p == data + len;
	PKCS7_free(p7);
	ERR_clear_error();
	return yes;
}

/* DER: one or more certificates back to back, or a PKCS#7 bundle. */
static kw_rc der_parse(const char *source, const unsigned char *data, size_t len,
                       STACK_OF(X509) * out)
{
	const unsigned char *p = data, *end = data + len;
	while (p < end) {
		const unsigned char *start = p;
		X509 *x = d2i_X509(NULL, &p, end - start);
		if (x == NULL && start == data && is_pkcs7(data, len))
			return pkcs7_certs(source, data, (long)len, out);
		if (x == NULL) {
			ERR_clear_error();
			return KW_FAIL(KW_ERR_PARSE,
			               "%s: corrupt or truncated DER after %d certificate(s)",
			               source, sk_X509_num(out));
		}
		KW_GUARD(push(source, out, x));
	}
	return KW_OK;
}

kw_rc kwi_certs_parse(const char *source, const unsigned char *data, size_t len,
                      STACK_OF(X509) * *out)
{
	static const char begin[] = "-----BEGIN ";
	*out = NULL;
	if (len == 0)
		return KW_FAIL(KW_ERR_PARSE, "%s: empty: no certificate in it", source);
	if (len > INT32_MAX)
		return KW_FAIL(KW_ERR_PARSE, "%s: too large", source);
	STACK_OF(X509) *certs = sk_X509_new_null();
	if (certs == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc;
	if (memmem(data, len, begin, sizeof(begin) - 1) != NULL)
		rc = pem_parse(source, data, len, certs);
	else if (data[0] == 0x30) /* an ASN.1 SEQUENCE */
		rc = der_parse(source, data, len, certs);
	else
		rc = KW_FAIL(KW_ERR_PARSE,
		             "%s: not a certificate (neither PEM nor DER); give the certificate "
		             "the CA issued, alone or with its chain",
		             source);
	if (rc == KW_OK && sk_X509_num(certs) == 0)
		rc = KW_FAIL(KW_ERR_PARSE, "%s: no certificate in it", source);
	if (rc != KW_OK) {
		sk_X509_pop_free(certs, X509_free);
		return rc;
	}
	*out = certs;
	return KW_OK;
}

/* ---- the chain ---- */

/* issuer's name, key identifier and key usage fit subject's, and its key
 * verifies subject's signature. */
static int issued_by(X509 *subject, X509 *issuer)
{
	EVP_PKEY *k = X509_get0_pubkey(issuer);
	int ok =
	    X509_check_issued(issuer, subject) == X509_V_OK && k && X509_verify(subject, k) == 1;
	ERR_clear_error();
	return ok;
}

enum { FREE, LEAF, CHAIN, DUPLICATE };

static kw_rc drop(json_t *dropped, X509 *x, const char *reason)
{
	if (dropped == NULL) /* the caller does not ask */
		return KW_OK;
	return kwi_json_append(dropped, json_pack("{s:o,s:s}", "subject",
	                                          kwi_name_json(X509_get_subject_name(x)), "reason",
	                                          reason));
}

kw_rc kwi_chain_order(X509 *leaf, STACK_OF(X509) * certs, STACK_OF(X509) * *chain, json_t *dropped)
{
	int n = sk_X509_num(certs);
	char *use = calloc((size_t)(n > 0 ? n : 1), 1);
	*chain = sk_X509_new_null();
	kw_rc rc = use && *chain ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	for (int i = 0; rc == KW_OK && i < n; i++) {
		X509 *x = sk_X509_value(certs, i);
		for (int j = 0; j < i && use[i] == FREE; j++)
			if (X509_cmp(x, sk_X509_value(certs, j)) == 0)
				use[i] = DUPLICATE;
		if (use[i] == FREE && X509_cmp(x, leaf) == 0)
			use[i] = LEAF;
	}
	/* up from the leaf, one issuer at a time, until a self-signed root */
	for (X509 *cur = leaf; rc == KW_OK && !issued_by(cur, cur);) {
		int found = -1;
		for (int i = 0; found < 0 && i < n; i++)
			if (use[i] == FREE && issued_by(cur, sk_X509_value(certs, i)))
				found = i;
		if (found < 0)
			break;
		use[found] = CHAIN;
		cur = sk_X509_value(certs, found);
		if (!X509_up_ref(cur) || !sk_X509_push(*chain, cur))
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	for (int i = 0; rc == KW_OK && i < n; i++)
		if (use[i] == DUPLICATE || use[i] == FREE)
			rc = drop(dropped, sk_X509_value(certs, i),
			          use[i] == DUPLICATE ? "a duplicate"
			                              : "not part of the certificate's chain");
	free(use);
	if (rc != KW_OK) {
		sk_X509_pop_free(*chain, X509_free);
		*chain = NULL;
	}
	return rc;
}

/* see internal.h */
kw_rc kwi_chain_der(STACK_OF(X509) * chain, unsigned char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	for (int i = 0; i < sk_X509_num(chain); i++) {
		unsigned char *der = NULL;
		int n = i2d_X509(sk_X509_value(chain, i), &der);
		unsigned char *grown = n > 0 ? realloc(*out, *len + (size_t)n) : NULL;
		if (grown == NULL) {
			OPENSSL_free(der);
			free(*out);
			*out = NULL;
			return KW_FAIL(KW_ERR_NOMEM, "out of memory");
		}
		memcpy(grown + *len, der, (size_t)n);
		*out = grown;
		*len += (size_t)n;
		OPENSSL_free(der);
	}
	return KW_OK;
}
