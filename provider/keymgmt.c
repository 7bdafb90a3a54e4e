/*
 * Key management for keyward's EC and RSA keys.
 *
 * Keys are only ever loaded (from the store loader or the reference decoder);
 * there is no new, gen or import, so software keys never land here. What
 * libssl and libcrypto ask about a key is answered from its public half; the
 * public half and the domain parameters can be exported (so that the default
 * provider can compare or verify), the private half cannot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

#include "provider.h"
#include "dispatch.h"

/*
 * An empty key: OpenSSL makes one before an import, which keyward refuses
 * (there is no import function). Having new() lets that refusal be silent
 * instead of a spurious error left on the queue by every public-key
 * comparison (X509_check_private_key tries both directions).
 */
void *kwp_keymgmt_new(void *provctx)
{
	kwp_key *k = calloc(1, sizeof(*k));
	KWP_TRACE("keymgmt_new (empty)");
	if (k != NULL) {
		atomic_init(&k->refs, 1);
		k->prov = provctx;
	}
	return k;
}

void *kwp_keymgmt_load(const void *reference, size_t reference_sz)
{
	kwp_key *k = kwp_key_ref_get0(reference, reference_sz);
	KWP_TRACE("keymgmt_load %s", k ? kw_key_name(k->key) : "(not a keyward reference)");
	return kwp_key_up_ref(k);
}

void kwp_keymgmt_free(void *keydata)
{
	KWP_TRACE("keymgmt_free");
	kwp_key_free(keydata);
}

void *kwp_keymgmt_dup(const void *keydata, int selection)
{
	KWP_TRACE("keymgmt_dup selection=%d", selection);
	return kwp_key_up_ref((kwp_key *)keydata);
}

/* "Private key present" means: usable for signing, inside the device. */
int kwp_keymgmt_has(const void *keydata, int selection)
{
	const kwp_key *k = keydata;
	KWP_TRACE("keymgmt_has selection=%d", selection);
	if (k == NULL)
		return 0;
	return k->key != NULL || (selection & OSSL_KEYMGMT_SELECT_ALL) == 0;
}

int kwp_keymgmt_match(const void *keydata1, const void *keydata2, int selection)
{
	const kwp_key *a = keydata1, *b = keydata2;
	KWP_TRACE("keymgmt_match selection=%d", selection);
	if (a->key == NULL || b->key == NULL)
		return a->key == b->key;
	if (a->type != b->type)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
		return 1; /* same type: same curve, and RSA has no domain parameters */
	size_t la = 0, lb = 0;
	const unsigned char *pa = kw_key_spki(a->key, &la), *pb = kw_key_spki(b->key, &lb);
	return la == lb && memcmp(pa, pb, la) == 0;
}

/* "bits,max-size,..." for the trace */
static const char *param_names(const OSSL_PARAM *params, char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = '\0';
	for (const OSSL_PARAM *p = params; p != NULL && p->key != NULL && n + 1 < size; p++) {
		int w = snprintf(buf + n, size - n, "%s%s", n ? "," : "", p->key);
		if (w < 0)
			break;
		n += (size_t)w;
	}
	return buf;
}

static const char *default_digest(const kwp_key *k)
{
	return k->type == KW_KEY_EC_P384 ? "SHA384" : "SHA256";
}

static int set_common(const kwp_key *k, OSSL_PARAM params[])
{
	OSSL_PARAM *p;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_BITS)) &&
	    !OSSL_PARAM_set_int(p, k->bits))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_SECURITY_BITS)) &&
	    !OSSL_PARAM_set_int(p, k->security_bits))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MAX_SIZE)) &&
	    !OSSL_PARAM_set_int(p, (int)kw_key_sig_max(k->key)))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST)) &&
	    !OSSL_PARAM_set_utf8_string(p, default_digest(k)))
		return 0;
	return 1;
}

int kwp_keymgmt_ec_get_params(void *keydata, OSSL_PARAM params[])
{
	const kwp_key *k = keydata;
	OSSL_PARAM *p;
	char names[256];
	KWP_TRACE("keymgmt_get_params (EC) %s", param_names(params, names, sizeof(names)));
	if (k == NULL || k->key == NULL || !set_common(k, params))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_GROUP_NAME)) &&
	    !OSSL_PARAM_set_utf8_string(p, k->group))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY)) &&
	    !OSSL_PARAM_set_octet_string(p, k->point, k->point_len))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PUB_KEY)) &&
	    !OSSL_PARAM_set_octet_string(p, k->point, k->point_len))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT)) &&
	    !OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_ENCODING)) &&
	    !OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_EC_ENCODING_GROUP))
		return 0;
	return 1;
}

int kwp_keymgmt_rsa_get_params(void *keydata, OSSL_PARAM params[])
{
	const kwp_key *k = keydata;
	OSSL_PARAM *p;
	char names[256];
	KWP_TRACE("keymgmt_get_params (RSA) %s", param_names(params, names, sizeof(names)));
	if (k == NULL || k->key == NULL || !set_common(k, params))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_N)) && !OSSL_PARAM_set_BN(p, k->n))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_E)) && !OSSL_PARAM_set_BN(p, k->e))
		return 0;
	return 1;
}

#define COMMON_GETTABLE                                                                            \
	OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),                                                \
	    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),                                   \
	    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),                                        \
	    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0)

const OSSL_PARAM *kwp_keymgmt_ec_gettable_params(void *provctx)
{
	static const OSSL_PARAM list[] = {
	    COMMON_GETTABLE,
	    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
	    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
	    OSSL_PARAM_END};
	(void)provctx;
	KWP_TRACE("keymgmt_gettable_params (EC)");
	return list;
}

const OSSL_PARAM *kwp_keymgmt_rsa_gettable_params(void *provctx)
{
	static const OSSL_PARAM list[] = {
	    COMMON_GETTABLE, OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
	    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0), OSSL_PARAM_END};
	(void)provctx;
	KWP_TRACE("keymgmt_gettable_params (RSA)");
	return list;
}

/* The public half and domain parameters only, as the default provider imports them. */
static int build_public(const kwp_key *k, int selection, OSSL_PARAM_BLD *b)
{
	int params = (selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0;
	int pub = (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0;
	if (k->is_rsa)
		return !pub || (OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, k->n) &&
		                OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, k->e));
	if ((params || pub) &&
	    !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, k->group, 0))
		return 0;
	if (params && (!OSSL_PARAM_BLD_push_utf8_string(
	                   b, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	                   OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED, 0) ||
	               !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_EC_ENCODING,
	                                                OSSL_PKEY_EC_ENCODING_GROUP, 0)))
		return 0;
	return !pub ||
	       OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, k->point, k->point_len);
}

int kwp_keymgmt_export(void *keydata, int selection, OSSL_CALLBACK *param_cb, void *cbarg)
{
	const kwp_key *k = keydata;
	OSSL_PARAM_BLD *b = NULL;
	OSSL_PARAM *params = NULL;
	int ok = 0;
	KWP_TRACE("keymgmt_export selection=%d", selection);
	if (k == NULL || k->key == NULL)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) {
		kwp_raise(k->prov, KWP_R_PRIVATE_KEY_NOT_EXPORTABLE,
		          "the private key of certificate '%s' is inside its %s device and cannot "
		          "be exported",
		          kw_key_name(k->key), kw_key_backend_kind(k->key));
		return 0;
	}
	if ((b = OSSL_PARAM_BLD_new()) == NULL || !build_public(k, selection, b) ||
	    (params = OSSL_PARAM_BLD_to_param(b)) == NULL) {
		kwp_raise(k->prov, KWP_R_INTERNAL, "cannot export the public key");
		goto out;
	}
	ok = param_cb(params, cbarg);
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	return ok;
}

const OSSL_PARAM *kwp_keymgmt_ec_export_types(int selection)
{
	/* the public key first: the domain parameters alone are list + 1 */
	static const OSSL_PARAM list[] = {
	    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
	    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0), OSSL_PARAM_END};
	KWP_TRACE("keymgmt_export_types (EC) selection=%d", selection);
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
		return NULL;
	return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 ? list : list + 1;
}

const OSSL_PARAM *kwp_keymgmt_rsa_export_types(int selection)
{
	static const OSSL_PARAM pub[] = {OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
	                                 OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
	                                 OSSL_PARAM_END};
	KWP_TRACE("keymgmt_export_types (RSA) selection=%d", selection);
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
		return NULL;
	return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 ? pub : pub + 2;
}

const char *kwp_keymgmt_ec_query_operation_name(int operation_id)
{
	KWP_TRACE("keymgmt_query_operation_name (EC) %d", operation_id);
	return operation_id == OSSL_OP_SIGNATURE ? KWP_NAMES_ECDSA : NULL;
}

const char *kwp_keymgmt_rsa_query_operation_name(int operation_id)
{
	KWP_TRACE("keymgmt_query_operation_name (RSA) %d", operation_id);
	return operation_id == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}
