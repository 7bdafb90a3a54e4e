/* see keyward/key.h: reference files and keyward: URIs */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>

#include "internal.h"
#include <keyward/key.h>

/*
 * KeywardKeyRef ::= SEQUENCE {
 *     magic        UTF8String ("keyward-key-ref"),
 *     version      INTEGER (1),
 *     name         UTF8String,
 *     store    [0] EXPLICIT UTF8String OPTIONAL,
 *     certVersion [1] EXPLICIT INTEGER OPTIONAL   -- absent: the current version
 * }
 * It names a certificate; it holds no key material and no secret.
 */
typedef struct {
	ASN1_UTF8STRING *magic;
	ASN1_INTEGER *version;
	ASN1_UTF8STRING *name;
	ASN1_UTF8STRING *store;
	ASN1_INTEGER *cert_version;
} KW_KEYREF;

DECLARE_ASN1_FUNCTIONS(KW_KEYREF)

/* clang-format off */
ASN1_SEQUENCE(KW_KEYREF) = {
	ASN1_SIMPLE(KW_KEYREF, magic, ASN1_UTF8STRING),
	ASN1_SIMPLE(KW_KEYREF, version, ASN1_INTEGER),
	ASN1_SIMPLE(KW_KEYREF, name, ASN1_UTF8STRING),
	ASN1_EXP_OPT(KW_KEYREF, store, ASN1_UTF8STRING, 0),
	ASN1_EXP_OPT(KW_KEYREF, cert_version, ASN1_INTEGER, 1),
} ASN1_SEQUENCE_END(KW_KEYREF)

IMPLEMENT_ASN1_FUNCTIONS(KW_KEYREF)
/* clang-format on */

#define KEYREF_MAGIC "keyward-key-ref"
#define NAME_MAX_LEN 64

            static int name_ok(const char *n, size_t len)
{
	if (len == 0 || len > NAME_MAX_LEN || !isalnum((unsigned char)n[0]))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && !strchr("._-", n[i]))
			return 0;
	return 1;
}

kw_rc kw_keyref_encode(const char *name, const char *store_dir, int version, unsigned char **der,
                       size_t *len)
{
	kw_rc rc = KW_OK;
	kw_error_clear();
	*der = NULL;
	if (name == NULL || !name_ok(name, strlen(name)) || version < 0)
		return KW_FAIL(KW_ERR_USAGE, "bad certificate name or version for a key reference");
	KW_KEYREF *r = KW_KEYREF_new();
	if (r == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	int ok = ASN1_STRING_set(r->magic, KEYREF_MAGIC, -1) && ASN1_INTEGER_set(r->version, 1) &&
	         ASN1_STRING_set(r->name, name, -1);
	if (ok && store_dir) {
		r->store = ASN1_UTF8STRING_new();
		ok = r->store && ASN1_STRING_set(r->store, store_dir, -1);
	}
	if (ok && version > 0) {
		r->cert_version = ASN1_INTEGER_new();
		ok = r->cert_version && ASN1_INTEGER_set(r->cert_version, version);
	}
	int n = ok ? i2d_KW_KEYREF(r, der) : -1;
	if (n <= 0) {
		*der = NULL;
		rc = KW_FAIL(KW_ERR_NOMEM, "cannot encode a key reference");
	} else
		*len = (size_t)n;
	KW_KEYREF_free(r);
	return rc;
}

static char *str_dup(const ASN1_STRING *s)
{
	int n = ASN1_STRING_length(s);
	const unsigned char *d = ASN1_STRING_get0_data(s);
	if (memchr(d, '\0', (size_t)n))
		return NULL;
	char *out = malloc((size_t)n + 1);
	if (out) {
		memcpy(out, d, (size_t)n);
		out[n] = '\0';
	}
	return out;
}

kw_rc kw_keyref_decode(const unsigned char *der, size_t len, char **name, char **store_dir,
                       int *version)
{
	kw_rc rc = KW_OK;
	const unsigned char *p = der;
	long v = 0, cv = 0;
	kw_error_clear();
	*name = *store_dir = NULL;
	*version = 0;
	KW_KEYREF *r = d2i_KW_KEYREF(NULL, &p, (long)len);
	if (r == NULL || p != der + len ||
	    ASN1_STRING_length(r->magic) != (int)strlen(KEYREF_MAGIC) ||
	    memcmp(ASN1_STRING_get0_data(r->magic), KEYREF_MAGIC, strlen(KEYREF_MAGIC)) != 0) {
		rc = KW_FAIL(KW_ERR_PARSE, "not a keyward key reference");
		goto out;
	}
	if (!ASN1_INTEGER_get_int64((int64_t *)&v, r->version) || v != 1) {
		rc = KW_FAIL(KW_ERR_UNSUPPORTED,
		             "keyward key reference version %ld is not supported", v);
		goto out;
	}
	if (r->cert_version &&
	    (!ASN1_INTEGER_get_int64((int64_t *)&cv, r->cert_version) || cv < 1 || cv > 1000000)) {
		rc = KW_FAIL(KW_ERR_PARSE, "keyward key reference has a bad certificate version");
		goto out;
	}
	*name = str_dup(r->name);
	if (*name == NULL || !name_ok(*name, strlen(*name))) {
		rc = KW_FAIL(KW_ERR_PARSE, "keyward key reference has a bad certificate name");
		goto out;
	}
	if (r->store && (*store_dir = str_dup(r->store)) == NULL) {
		rc = KW_FAIL(KW_ERR_PARSE, "keyward key reference has a bad store directory");
		goto out;
	}
	*version = (int)cv;
out:
	if (rc != KW_OK) {
		free(*name);
		free(*store_dir);
		*name = *store_dir = NULL;
	}
	KW_KEYREF_free(r);
	return rc;
}

kw_rc kw_uri_parse(const char *uri, char **name, int *version)
{
	kw_error_clear();
	*name = NULL;
	*version = 0;
	if (uri == NULL || strncmp(uri, "keyward:", 8) != 0)
		return KW_FAIL(KW_ERR_PARSE, "'%s' is not a keyward: URI", uri ? uri : "");
	const char *n = uri + 8, *q = strchr(n, '?');
	size_t nlen = q ? (size_t)(q - n) : strlen(n);
	if (!name_ok(n, nlen))
		return KW_FAIL(KW_ERR_PARSE,
		               "'%s': expected keyward:NAME or keyward:NAME?version=N with a "
		               "certificate name of letters, digits, '.', '_' or '-'",
		               uri);
	if (q) {
		char *end = NULL;
		errno = 0;
		long v = strncmp(q, "?version=", 9) == 0 ? strtol(q + 9, &end, 10) : -1;
		if (v < 1 || v > 1000000 || errno || end == q + 9 || *end != '\0')
			return KW_FAIL(KW_ERR_PARSE, "'%s': the only query is ?version=N (N >= 1)",
			               uri);
		*version = (int)v;
	}
	*name = strndup(n, nlen);
	return *name ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}
