/* see keyward/key.h: a certificate version's key, opened for signing */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include <keyward/agent.h>
#include <keyward/key.h>

#include "agent/client.h"
#include "device/conn.h"
#include "store/store_certs.h"

struct kw_key {
	atomic_int refs;
	char *name;
	int version;
	kw_key_type type;
	kw_key_blob ref;
	kwi_conn *conn;
	unsigned char *spki, *cert, *chain; /* DER; chain: concatenated certificates */
	size_t spki_len, cert_len, chain_len;
	size_t n_chain;
	size_t *chain_off, *chain_sz;
	kwi_agent_link *agent; /* through the agent (then conn is NULL) */
	char *agent_kind;
	uint32_t agent_caps;
};

/* Splits the concatenated chain into certificates (offsets and sizes). */
static kw_rc chain_index(kw_key *k)
{
	if (k->chain == NULL)
		return KW_OK; /* no chain */
	const unsigned char *p = k->chain, *end = k->chain + k->chain_len;
	while (p < end) {
		const unsigned char *start = p;
		X509 *x = d2i_X509(NULL, &p, end - p);
		if (x == NULL)
			return KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable chain",
			               k->name);
		X509_free(x);
		size_t *o = realloc(k->chain_off, (k->n_chain + 1) * sizeof(size_t));
		size_t *z = o ? realloc(k->chain_sz, (k->n_chain + 1) * sizeof(size_t)) : NULL;
		if (o)
			k->chain_off = o;
		if (z == NULL)
			return KW_FAIL(KW_ERR_NOMEM, "out of memory");
		k->chain_sz = z;
		k->chain_off[k->n_chain] = (size_t)(start - k->chain);
		k->chain_sz[k->n_chain++] = (size_t)(p - start);
	}
	return KW_OK;
}

static kw_rc spki_from_cert(kw_key *k)
{
	const unsigned char *p = k->cert;
	X509 *x = d2i_X509(NULL, &p, (long)k->cert_len);
	unsigned char *der = NULL;
	int n = x ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) : -1;
	X509_free(x);
	if (n <= 0)
		return KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable certificate",
		               k->name);
	k->spki = malloc((size_t)n);
	if (k->spki)
		memcpy(k->spki, der, (size_t)n);
	k->spki_len = (size_t)n;
	OPENSSL_free(der);
	return k->spki ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

/* Takes the version's key blob, certificate and chain. */
static kw_rc row_read(const char *store_dir, const kwi_cert_row *c, kwi_version_row *v, kw_key *k)
{
	if (!c->enabled)
		return KW_FAIL_HINT_ON(KW_ERR_STATE, KW_HINT_CERT_ENABLE, k->name,
		                       "certificate '%s' is disabled", k->name);
	k->version = v->version;
	k->type = v->type;
	if (!v->has_cert)
		return KW_FAIL(KW_ERR_STATE,
		               "certificate '%s' version %d is %s: it has no certificate", k->name,
		               k->version, kwi_version_status_name(v->status));
	/* only a version that was ever in service signs (issue 14: a row set to
	 * failed, or to a status this build does not know, still signed) */
	if (v->status != KWI_VERSION_ACTIVE && v->status != KWI_VERSION_SUPERSEDED)
		return KW_FAIL(KW_ERR_STATE, "certificate '%s' version %d is %s: it does not sign",
		               k->name, k->version, kwi_version_status_name(v->status));
	k->ref = v->ref;
	k->cert = (unsigned char *)v->cert_der;
	k->cert_len = v->cert_len;
	k->chain = (unsigned char *)v->chain_der;
	k->chain_len = v->chain_len;
	v->ref = (kw_key_blob){0};
	v->cert_der = v->chain_der = NULL;
	if (k->type == 0)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	KW_GUARD(spki_from_cert(k));
	KW_GUARD(chain_index(k));
	return kwi_conn_get(store_dir, v->backend, v->backend_kind, v->backend_config, &k->conn);
}

static kw_rc key_load(const char *store_dir, int version, kw_key *k)
{
	kw_store *s = NULL;
	kwi_cert_row c;
	kwi_version_row v;
	int found = 0;
	KW_GUARD(kwi_store_open_reader(store_dir, &s));
	kw_rc rc = version > 0
	               ? kwi_store_version_get(s, k->name, version, KWI_LOAD_DER, &c, &v, &found)
	               : kwi_store_version_current(s, k->name, KWI_LOAD_DER, &c, &v, &found);
	if (rc == KW_OK && found)
		rc = row_read(store_dir, &c, &v, k);
	else if (rc == KW_OK && version > 0)
		rc = KW_FAIL(KW_ERR_NOT_FOUND, "certificate '%s' has no version %d (store %s)",
		             k->name, version, store_dir);
	else if (rc == KW_OK)
		rc = KW_FAIL(KW_ERR_NOT_FOUND, "unknown certificate '%s' in store %s", k->name,
		             store_dir);
	kwi_version_row_clear(&v);
	kwi_cert_row_clear(&c);
	kw_store_close(s);
	return rc;
}

/* Contacts the device once: the key must be there and be the certificate's. */
static kw_rc key_check(kw_key *k)
{
	unsigned char *der = NULL;
	size_t len = 0;
	KW_GUARD(kwi_conn_public_isolated(k->conn, &k->ref, &der, &len));
	const unsigned char *a = der, *b = k->spki;
	EVP_PKEY *dev = d2i_PUBKEY_ex(NULL, &a, (long)len, NULL, KWI_SOFTWARE_PROPQ);
	EVP_PKEY *crt = d2i_PUBKEY_ex(NULL, &b, (long)k->spki_len, NULL, KWI_SOFTWARE_PROPQ);
	int same = dev && crt && EVP_PKEY_eq(dev, crt) == 1;
	EVP_PKEY_free(dev);
	EVP_PKEY_free(crt);
	free(der);
	if (!same)
		return KW_FAIL(
		    KW_ERR_STATE,
		    "the device's key for certificate '%s' version %d does not match the "
		    "certificate",
		    k->name, k->version);
	return KW_OK;
}

/* One attempt: the row, then the device's key checked against it. */
static kw_rc key_open_once(const char *store_dir, const char *name, int version, kw_key **out)
{
	kw_key *k = calloc(1, sizeof(*k));
	if (k == NULL || (k->name = strdup(name)) == NULL) {
		free(k);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	atomic_init(&k->refs, 1);
	kw_rc rc = key_load(store_dir, version, k);
	if (rc == KW_OK)
		rc = key_check(k);
	if (rc == KW_OK)
		*out = k;
	else
		kw_key_free(k);
	return rc;
}

/* A key the agent loaded: what it answered, the link to sign through. */
static kw_rc key_open_agent(const char *socket_path, const char *name, int version, kw_key **out)
{
	kwi_agent_loaded l;
	kw_key *k = calloc(1, sizeof(*k));
	if (k == NULL || (k->name = strdup(name)) == NULL) {
		free(k);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	atomic_init(&k->refs, 1);
	kw_rc rc = kwi_agent_link_open(socket_path, name, version, &l, &k->agent);
	if (rc == KW_OK) {
		k->version = l.version;
		k->type = l.type;
		k->agent_kind = l.kind;
		k->agent_caps = l.caps;
		k->spki = l.spki;
		k->spki_len = l.spki_len;
		k->cert = l.cert;
		k->cert_len = l.cert_len;
		k->chain = l.chain;
		k->chain_len = l.chain_len;
		rc = chain_index(k);
	}
	if (rc == KW_OK)
		*out = k;
	else
		kw_key_free(k);
	return rc;
}

kw_rc kw_key_open_agent(const char *socket_path, const char *name, int version, kw_key **out)
{
	*out = NULL;
	kw_error_clear();
	if (socket_path == NULL || socket_path[0] == '\0' || name == NULL || name[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE, "no agent socket or certificate name given");
	return key_open_agent(socket_path, name, version, out);
}

kw_rc kw_key_open(const char *store_dir, const char *name, int version, kw_key **out)
{
	*out = NULL;
	kw_error_clear();
	const char *agent = getenv(KW_AGENT_ENV);
	if (agent != NULL && agent[0] != '\0')
		return key_open_agent(agent, name, version, out);
	if (store_dir == NULL || store_dir[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE,
		               "no keyward store configured (set the provider's store "
		               "parameter or KEYWARD_STORE)");
	kw_rc rc = key_open_once(store_dir, name, version, out);
	/* The current version's key can be gone because a renewal made another
	 * version current and pruned this one between our read of the row and
	 * the device check: read "current" again (a few times at most). */
	for (int again = 0; again < 3 && rc == KW_ERR_NOT_FOUND && version == 0; again++) {
		kw_error_clear();
		rc = key_open_once(store_dir, name, 0, out);
	}
	return rc;
}

kw_key *kw_key_up_ref(kw_key *k)
{
	if (k)
		atomic_fetch_add(&k->refs, 1);
	return k;
}

void kw_key_free(kw_key *k)
{
	if (k == NULL || atomic_fetch_sub(&k->refs, 1) > 1)
		return;
	kwi_conn_put(k->conn);
	kwi_agent_link_free(k->agent);
	free(k->agent_kind);
	kw_key_blob_clear(&k->ref);
	free(k->name);
	free(k->spki);
	free(k->cert);
	free(k->chain);
	free(k->chain_off);
	free(k->chain_sz);
	free(k);
}

const char *kw_key_name(const kw_key *k)
{
	return k->name;
}

int kw_key_version(const kw_key *k)
{
	return k->version;
}

kw_key_type kw_key_get_type(const kw_key *k)
{
	return k->type;
}

const char *kw_key_backend_kind(const kw_key *k)
{
	if (k->agent != NULL)
		return k->agent_kind;
	return kwi_conn_kind(k->conn);
}

const unsigned char *kw_key_spki(const kw_key *k, size_t *len)
{
	*len = k->spki_len;
	return k->spki;
}

const unsigned char *kw_key_cert(const kw_key *k, size_t *len)
{
	*len = k->cert_len;
	return k->cert;
}

size_t kw_key_chain_count(const kw_key *k)
{
	return k->n_chain;
}

const unsigned char *kw_key_chain_cert(const kw_key *k, size_t i, size_t *len)
{
	if (i >= k->n_chain)
		return NULL;
	*len = k->chain_sz[i];
	return k->chain + k->chain_off[i];
}

size_t kw_key_sig_max(const kw_key *k)
{
	switch (k->type) {
	case KW_KEY_EC_P256: return 72;
	case KW_KEY_EC_P384: return 104;
	case KW_KEY_RSA_2048: return 256;
	case KW_KEY_RSA_3072: return 384;
	case KW_KEY_RSA_4096: return 512;
	}
	return 0;
}

static size_t md_len(int nid)
{
	const EVP_MD *md = EVP_get_digestbynid(nid);
	return md ? (size_t)EVP_MD_get_size(md) : 0;
}

static unsigned key_caps(const kw_key *k)
{
	if (k->agent != NULL)
		return k->agent_caps;
	return kwi_conn_caps(k->conn) & KW_CAP_PSS_ANY_SALT ? KW_AGENT_CAP_PSS_ANY_SALT : 0;
}

unsigned kw_key_agent_caps(const kw_key *k)
{
	return key_caps(k);
}

static int key_can_sign(const kw_key *k, const kw_sign_params *p)
{
	int rsa = kw_key_type_is_rsa(k->type);
	if (p->md_nid != NID_sha256 && p->md_nid != NID_sha384 && p->md_nid != NID_sha512)
		return 0;
	if (p->scheme == KW_SIG_ECDSA)
		return !rsa;
	if (!rsa || (p->scheme != KW_SIG_RSA_PKCS1 && p->scheme != KW_SIG_RSA_PSS))
		return 0;
	/* A TPM makes PSS signatures with a salt as long as the digest only. */
	if (p->scheme == KW_SIG_RSA_PSS && !(key_caps(k) & KW_AGENT_CAP_PSS_ANY_SALT))
		return p->pss_saltlen == -1 || (size_t)p->pss_saltlen == md_len(p->md_nid);
	return 1;
}

kw_rc kw_key_sign(kw_key *k, const kw_sign_params *p, const unsigned char *dgst, size_t dgst_len,
                  unsigned char *sig, size_t *sig_len)
{
	kw_error_clear();
	if (!key_can_sign(k, p))
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "the %s key of certificate '%s' cannot make this signature "
		               "(scheme %d, %s, salt %d)",
		               kw_key_type_name(k->type), k->name, (int)p->scheme,
		               OBJ_nid2sn(p->md_nid), p->pss_saltlen);
	if (k->agent != NULL)
		return kwi_agent_link_sign(k->agent, p, dgst, dgst_len, sig, sig_len);
	return kwi_conn_sign(k->conn, &k->ref, p, dgst, dgst_len, sig, sig_len);
}

int kw_key_can_sign(const kw_key *k, const kw_sign_params *p)
{
	return key_can_sign(k, p);
}
