/* see provider.h: kwp_key, a hardware key as keymgmt key data */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <keyward/agent.h>

#include "provider.h"

/*
 * The public half is decoded from the SubjectPublicKeyInfo with plain ASN.1
 * templates: no decoder, no provider and no library context is involved
 * while a key is being loaded.
 */
typedef struct {
	X509_ALGOR *alg;
	ASN1_BIT_STRING *pub;
} KWP_SPKI;

typedef struct {
	BIGNUM *n;
	BIGNUM *e;
} KWP_RSA_PUB;

/* clang-format off */
ASN1_SEQUENCE(KWP_SPKI) = {
	ASN1_SIMPLE(KWP_SPKI, alg, X509_ALGOR),
	ASN1_SIMPLE(KWP_SPKI, pub, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(KWP_SPKI)

ASN1_SEQUENCE(KWP_RSA_PUB) = {
	ASN1_SIMPLE(KWP_RSA_PUB, n, BIGNUM),
	ASN1_SIMPLE(KWP_RSA_PUB, e, BIGNUM),
} static_ASN1_SEQUENCE_END(KWP_RSA_PUB)
    /* clang-format on */

    static int ec_public(kwp_key * k, const X509_ALGOR *alg, const ASN1_BIT_STRING *pub)
{
	const ASN1_OBJECT *oid = NULL;
	const void *pval = NULL;
	int ptype = 0, want = k->type == KW_KEY_EC_P256 ? NID_X9_62_prime256v1 : NID_secp384r1;
	X509_ALGOR_get0(&oid, &ptype, &pval, alg);
	if (OBJ_obj2nid(oid) != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_OBJECT ||
	    OBJ_obj2nid(pval) != want)
		return 0;
	int len = ASN1_STRING_length(pub);
	const unsigned char *d = ASN1_STRING_get0_data(pub);
	size_t field = k->type == KW_KEY_EC_P256 ? 32 : 48;
	if (len != (int)(1 + 2 * field) || d[0] != 0x04)
		return 0;
	if ((k->point = malloc((size_t)len)) == NULL)
		return 0;
	memcpy(k->point, d, (size_t)len);
	k->point_len = (size_t)len;
	k->group = OBJ_nid2sn(want);
	k->bits = (int)field * 8;
	k->security_bits = k->bits / 2;
	return 1;
}

static int rsa_public(kwp_key *k, const X509_ALGOR *alg, const ASN1_BIT_STRING *pub)
{
	const ASN1_OBJECT *oid = NULL;
	X509_ALGOR_get0(&oid, NULL, NULL, alg);
	if (OBJ_obj2nid(oid) != NID_rsaEncryption)
		return 0;
	const unsigned char *p = ASN1_STRING_get0_data(pub);
	long len = ASN1_STRING_length(pub);
	KWP_RSA_PUB *r = (KWP_RSA_PUB *)ASN1_item_d2i(NULL, &p, len, ASN1_ITEM_rptr(KWP_RSA_PUB));
	if (r == NULL)
		return 0;
	k->n = r->n;
	k->e = r->e;
	r->n = r->e = NULL;
	ASN1_item_free((ASN1_VALUE *)r, ASN1_ITEM_rptr(KWP_RSA_PUB));
	k->bits = BN_num_bits(k->n);
	k->security_bits = BN_security_bits(k->bits, -1);
	static const int want[] = {
	    [KW_KEY_RSA_2048] = 2048, [KW_KEY_RSA_3072] = 3072, [KW_KEY_RSA_4096] = 4096};
	return k->bits == want[k->type];
}

static int decode_public(kwp_key *k)
{
	size_t len = 0;
	const unsigned char *der = kw_key_spki(k->key, &len), *p = der;
	KWP_SPKI *s = (KWP_SPKI *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(KWP_SPKI));
	int ok = 0;
	if (s != NULL && p == der + len) {
		switch (k->type) {
		case KW_KEY_EC_P256:
		case KW_KEY_EC_P384: ok = ec_public(k, s->alg, s->pub); break;
		case KW_KEY_RSA_2048:
		case KW_KEY_RSA_3072:
		case KW_KEY_RSA_4096: ok = rsa_public(k, s->alg, s->pub); break;
		}
	}
	ASN1_item_free((ASN1_VALUE *)s, ASN1_ITEM_rptr(KWP_SPKI));
	return ok;
}

kwp_key *kwp_key_new(kwp_ctx *prov, kw_key *key)
{
	kwp_key *k = calloc(1, sizeof(*k));
	if (k == NULL) {
		kw_key_free(key);
		kwp_raise(prov, KWP_R_INTERNAL, "out of memory");
		return NULL;
	}
	atomic_init(&k->refs, 1);
	k->prov = prov;
	k->key = key;
	k->type = kw_key_get_type(key);
	k->is_rsa = kw_key_type_is_rsa(k->type);
	if (!decode_public(k)) {
		kwp_raise(prov, KWP_R_BAD_REFERENCE,
		          "certificate '%s' version %d: its public key is not a %s key",
		          kw_key_name(key), kw_key_version(key),
		          kw_key_type_name(k->type) ? kw_key_type_name(k->type) : "known");
		kwp_key_free(k);
		return NULL;
	}
	return k;
}

/* Through the agent: KEYWARD_AGENT (kw_key_open follows it), else the
 * provider's parameter "agent"; NULL: the store directly. */
static const char *agent_socket(const kwp_ctx *prov)
{
	const char *env = getenv(KW_AGENT_ENV);
	return env != NULL && env[0] != '\0' ? env : prov->agent;
}

kwp_key *kwp_key_open(kwp_ctx *prov, const char *store_dir, const char *name, int version)
{
	const char *agent = agent_socket(prov);
	char *dir = agent ? strdup(agent) : store_dir ? strdup(store_dir) : kwp_store_dir(prov);
	kw_key *key = NULL;
	if (dir == NULL)
		return NULL;
	OSSL_LIB_CTX *prev = kwp_core_enter(prov);
	kw_rc rc = agent ? kw_key_open_agent(agent, name, version, &key)
	                 : kw_key_open(dir, name, version, &key);
	kwp_core_leave(prev);
	if (rc != KW_OK) {
		kwp_raise_kw(prov, KWP_R_KEY_UNAVAILABLE);
		free(dir);
		return NULL;
	}
	KWP_TRACE("opened certificate '%s' version %d (%s, %s) from %s", name, kw_key_version(key),
	          kw_key_type_name(kw_key_get_type(key)), kw_key_backend_kind(key), dir);
	free(dir);
	return kwp_key_new(prov, key);
}

kwp_key *kwp_key_up_ref(kwp_key *k)
{
	if (k != NULL)
		atomic_fetch_add(&k->refs, 1);
	return k;
}

void kwp_key_free(kwp_key *k)
{
	if (k == NULL || atomic_fetch_sub(&k->refs, 1) > 1)
		return;
	OSSL_LIB_CTX *prev = kwp_core_enter(k->prov);
	kw_key_free(k->key);
	kwp_core_leave(prev);
	free(k->point);
	BN_free(k->n);
	BN_free(k->e);
	free(k);
}

size_t kwp_key_modulus_bytes(const kwp_key *k)
{
	return k->is_rsa ? (size_t)BN_num_bytes(k->n) : 0;
}

void kwp_key_ref_init(kwp_key_ref *r, kwp_key *k)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->magic, KWP_KEY_REF_MAGIC, sizeof(r->magic));
	r->key = k;
}

kwp_key *kwp_key_ref_get0(const void *reference, size_t reference_sz)
{
	const kwp_key_ref *r = reference;
	if (r == NULL || reference_sz != sizeof(*r) ||
	    memcmp(r->magic, KWP_KEY_REF_MAGIC, sizeof(r->magic)) != 0)
		return NULL;
	return r->key;
}
