/*
 * see tpm2_internal.h: the outer wrapper of a key given to TPM2_Import.
 *
 * TPM 2.0 Part 1, "Protected Storage" (duplication): a duplicate may carry an
 * outer wrapper keyed by a seed that only the new parent can recover. The new
 * parent is our SRK, and the seed is shared with it the way TPM2_Import
 * recovers it from inSymSeed (Part 1, "Secret Sharing", label "DUPLICATE"):
 *   ECC parent: Z = x of ECDH(an ephemeral key made here, the parent's point),
 *     seed = KDFe(nameAlg, Z, "DUPLICATE", ephemeral.x, parent.x); the TPM is
 *     given the ephemeral public point;
 *   RSA parent: a random seed, RSA-OAEP encrypted to the parent, label
 *     "DUPLICATE".
 * From the seed: symKey = KDFa(nameAlg, seed, "STORAGE", name, -, the
 * parent's AES key size) and hmacKey = KDFa(nameAlg, seed, "INTEGRITY", -, -,
 * digest size). The size-prefixed sensitive area is encrypted with AES-CFB
 * under symKey and a zero IV (safe: every import has a fresh seed, so symKey
 * is used once), and HMAC(hmacKey, ciphertext || name) binds it to the
 * object's public area; the TPM checks that HMAC before it decrypts anything
 * (TPM_RC_INTEGRITY). What crosses the TPM interface is then ciphertext only
 * the SRK's private key opens.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <sodium.h>
#include <tss2/tss2_mu.h>

#include "tpm2_internal.h"

/* SHA-256: the only name algorithm taken for the parent and the object */
#define DIGEST_LEN 32

/* Everything secret the wrapper makes, in one guarded allocation. */
typedef struct {
	unsigned char seed[DIGEST_LEN];
	unsigned char z[48]; /* the ECDH shared x coordinate (P-256 or P-384) */
	unsigned char sym_key[32];
	unsigned char hmac_key[DIGEST_LEN];
	unsigned char plain[sizeof(TPM2B_SENSITIVE)]; /* the marshalled sensitive area */
} wrap_secrets;

typedef struct {
	const unsigned char *p;
	size_t len;
} part;

static kw_rc ossl_fail(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;
	kw_rc rc = KW_FAIL(KW_ERR_INTERNAL, "tpm2 import: OpenSSL could not %s%s%s", what,
	                   why != NULL ? ": " : "", why != NULL ? why : "");
	ERR_clear_error();
	return rc;
}

static void be32(unsigned char out[4], uint32_t v)
{
	out[0] = (unsigned char)(v >> 24);
	out[1] = (unsigned char)(v >> 16);
	out[2] = (unsigned char)(v >> 8);
	out[3] = (unsigned char)v;
}

/* HMAC-SHA-256 over the concatenation of n parts. */
static int hmac_parts(const unsigned char *key, size_t key_len, const part *parts, size_t n,
                      unsigned char out[DIGEST_LEN])
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	                       OSSL_PARAM_construct_end()};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", KW_SOFTWARE_PROPQ);
	EVP_MAC_CTX *m = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
	size_t got = 0;
	int ok = m != NULL && EVP_MAC_init(m, key, key_len, params) == 1;

	for (size_t i = 0; ok && i < n; i++)
		ok = parts[i].len == 0 || EVP_MAC_update(m, parts[i].p, parts[i].len) == 1;
	ok = ok && EVP_MAC_final(m, out, &got, DIGEST_LEN) == 1 && got == DIGEST_LEN;
	EVP_MAC_CTX_free(m);
	EVP_MAC_free(mac);
	return ok;
}

/* KDFa (Part 1, "KDFa"; SP 800-108 counter mode, HMAC-SHA-256):
 * K(i) = HMAC(key, [i]32 || label || 00h || context_u || [bits]32), with an
 * empty context_v, as many blocks as out_len needs. */
static int kdfa(const unsigned char *key, size_t key_len, const char *label,
                const unsigned char *context_u, size_t u_len, unsigned char *out, size_t out_len)
{
	unsigned char counter[4], bits[4], block[DIGEST_LEN];
	part parts[] = {{counter, 4},
	                {(const unsigned char *)label, strlen(label) + 1},
	                {context_u, u_len},
	                {bits, 4}};
	int ok = 1;

	be32(bits, (uint32_t)(out_len * 8));
	for (uint32_t i = 1, done = 0; ok && done < out_len; i++, done += DIGEST_LEN) {
		be32(counter, i);
		ok = hmac_parts(key, key_len, parts, 4, block);
		if (ok)
			memcpy(out + done, block,
			       out_len - done < DIGEST_LEN ? out_len - done : DIGEST_LEN);
	}
	sodium_memzero(block, sizeof(block));
	return ok;
}

/* KDFe (Part 1, "KDFe"; SP 800-56A concatenation KDF, SHA-256):
 * K(i) = H([i]32 || Z || use || 00h || party_u || party_v). */
static int kdfe(const unsigned char *z, size_t z_len, const char *use, const part *party_u,
                const part *party_v, unsigned char *out, size_t out_len)
{
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", KW_SOFTWARE_PROPQ);
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	unsigned char counter[4], block[DIGEST_LEN];
	int ok = md != NULL && h != NULL;

	for (uint32_t i = 1, done = 0; ok && done < out_len; i++, done += DIGEST_LEN) {
		be32(counter, i);
		ok = EVP_DigestInit_ex2(h, md, NULL) == 1 && EVP_DigestUpdate(h, counter, 4) == 1 &&
		     EVP_DigestUpdate(h, z, z_len) == 1 &&
		     EVP_DigestUpdate(h, use, strlen(use) + 1) == 1 &&
		     EVP_DigestUpdate(h, party_u->p, party_u->len) == 1 &&
		     EVP_DigestUpdate(h, party_v->p, party_v->len) == 1 &&
		     EVP_DigestFinal_ex(h, block, NULL) == 1;
		if (ok)
			memcpy(out + done, block,
			       out_len - done < DIGEST_LEN ? out_len - done : DIGEST_LEN);
	}
	sodium_memzero(block, sizeof(block));
	EVP_MD_CTX_free(h);
	EVP_MD_free(md);
	return ok;
}

/* The object's name: nameAlg (big-endian) || SHA-256(marshalled TPMT_PUBLIC). */
static kw_rc object_name(const TPM2B_PUBLIC *pub, TPM2B_NAME *name)
{
	unsigned char buf[sizeof(TPMT_PUBLIC)];
	size_t off = 0, len = 0;

	if (pub->publicArea.nameAlg != TPM2_ALG_SHA256 ||
	    Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, buf, sizeof(buf), &off) !=
	        TSS2_RC_SUCCESS)
		return KW_FAIL(KW_ERR_INTERNAL, "tpm2 import: cannot name the key's public area");
	name->name[0] = (unsigned char)(TPM2_ALG_SHA256 >> 8);
	name->name[1] = (unsigned char)TPM2_ALG_SHA256;
	if (EVP_Q_digest(NULL, "SHA256", KW_SOFTWARE_PROPQ, buf, off, name->name + 2, &len) != 1 ||
	    len != DIGEST_LEN)
		return ossl_fail("hash the key's public area");
	name->size = (UINT16)(2 + len);
	return KW_OK;
}

/* One public coordinate of key, left-padded to n bytes. */
static int coord(EVP_PKEY *key, const char *param, TPM2B_ECC_PARAMETER *out, size_t n)
{
	BIGNUM *bn = NULL;
	int ok = EVP_PKEY_get_bn_param(key, param, &bn) == 1 &&
	         BN_bn2binpad(bn, out->buffer, (int)n) == (int)n;

	BN_free(bn);
	out->size = (UINT16)n;
	return ok;
}

/* ECC parent: Z from an ephemeral key, freed as soon as Z is known. */
static kw_rc seed_ecc(const TPMT_PUBLIC *parent, wrap_secrets *s, TPM2B_ENCRYPTED_SECRET *out)
{
	int p256 = parent->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256;
	size_t n = p256 ? 32 : 48, z_len = n, off = 0;
	TPMS_ECC_POINT q = {0};
	EVP_PKEY *peer = NULL, *eph = NULL;
	EVP_PKEY_CTX *dctx = NULL;
	int ok;

	KW_GUARD(kwb_tpm2_public_to_pkey(parent, &peer));
	eph = EVP_PKEY_Q_keygen(NULL, KW_SOFTWARE_PROPQ, "EC", p256 ? "P-256" : "P-384");
	dctx = eph != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, eph, KW_SOFTWARE_PROPQ) : NULL;
	ok = dctx != NULL && EVP_PKEY_derive_init(dctx) == 1 &&
	     EVP_PKEY_derive_set_peer(dctx, peer) == 1 &&
	     EVP_PKEY_derive(dctx, s->z, &z_len) == 1 && z_len == n &&
	     coord(eph, OSSL_PKEY_PARAM_EC_PUB_X, &q.x, n) &&
	     coord(eph, OSSL_PKEY_PARAM_EC_PUB_Y, &q.y, n);
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_free(eph); /* the ephemeral private key has done its one job */
	EVP_PKEY_free(peer);
	if (!ok)
		return ossl_fail("agree on a seed with the SRK (ECDH)");
	part u = {q.x.buffer, q.x.size},
	     v = {parent->unique.ecc.x.buffer, parent->unique.ecc.x.size};
	ok = kdfe(s->z, n, "DUPLICATE", &u, &v, s->seed, DIGEST_LEN);
	sodium_memzero(s->z, sizeof(s->z));
	if (!ok)
		return ossl_fail("derive the seed (KDFe)");
	if (Tss2_MU_TPMS_ECC_POINT_Marshal(&q, out->secret, sizeof(out->secret), &off) !=
	    TSS2_RC_SUCCESS)
		return KW_FAIL(KW_ERR_INTERNAL, "tpm2 import: cannot marshal the ephemeral point");
	out->size = (UINT16)off;
	return KW_OK;
}

/* RSA parent: a random seed, OAEP(SHA-256) encrypted with label "DUPLICATE\0". */
static kw_rc seed_rsa(const TPMT_PUBLIC *parent, wrap_secrets *s, TPM2B_ENCRYPTED_SECRET *out)
{
	static const char label[] = "DUPLICATE";
	unsigned char *l = OPENSSL_memdup(label, sizeof(label));
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *ectx = NULL;
	size_t len = sizeof(out->secret);
	kw_rc rc = kwb_tpm2_public_to_pkey(parent, &peer);
	int ok;

	ok = rc == KW_OK && l != NULL && RAND_priv_bytes(s->seed, DIGEST_LEN) == 1 &&
	     (ectx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, KW_SOFTWARE_PROPQ)) != NULL &&
	     EVP_PKEY_encrypt_init(ectx) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(ectx, RSA_PKCS1_OAEP_PADDING) == 1 &&
	     EVP_PKEY_CTX_set_rsa_oaep_md_name(ectx, "SHA256", KW_SOFTWARE_PROPQ) == 1 &&
	     EVP_PKEY_CTX_set_rsa_mgf1_md_name(ectx, "SHA256", KW_SOFTWARE_PROPQ) == 1 &&
	     EVP_PKEY_CTX_set0_rsa_oaep_label(ectx, l, sizeof(label)) == 1;
	if (ok)
		l = NULL; /* the context owns it now */
	ok = ok && EVP_PKEY_encrypt(ectx, out->secret, &len, s->seed, DIGEST_LEN) == 1;
	OPENSSL_free(l);
	EVP_PKEY_CTX_free(ectx);
	EVP_PKEY_free(peer);
	if (rc != KW_OK)
		return rc;
	if (!ok)
		return ossl_fail("encrypt the seed to the SRK (RSA-OAEP)");
	out->size = (UINT16)len;
	return KW_OK;
}

/* AES-CFB with a zero IV; CFB is a stream mode, so out is in_len bytes. */
static int cfb_encrypt(const unsigned char *key, size_t key_bits, const unsigned char *in,
                       size_t in_len, unsigned char *out)
{
	static const unsigned char iv[16] = {0};
	EVP_CIPHER *aes = EVP_CIPHER_fetch(NULL, key_bits == 128 ? "AES-128-CFB" : "AES-256-CFB",
	                                   KW_SOFTWARE_PROPQ);
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0;
	int ok = aes != NULL && x != NULL && EVP_EncryptInit_ex2(x, aes, key, iv, NULL) == 1 &&
	         EVP_EncryptUpdate(x, out, &n, in, (int)in_len) == 1 &&
	         EVP_EncryptFinal_ex(x, out + n, &fin) == 1 && (size_t)(n + fin) == in_len;

	EVP_CIPHER_CTX_free(x);
	EVP_CIPHER_free(aes);
	return ok;
}

/* dup = TPM2B_DIGEST(HMAC(hmacKey, enc || name)) || enc, enc = AES-CFB(symKey,
 * TPM2B_SENSITIVE). */
static kw_rc outer_seal(size_t key_bits, const TPM2B_NAME *name, const TPM2B_SENSITIVE *sens,
                        wrap_secrets *s, TPM2B_PRIVATE *dup)
{
	unsigned char *enc = dup->buffer + 2 + DIGEST_LEN;
	TPM2B_DIGEST mac = {.size = DIGEST_LEN};
	size_t len = 0, off = 0;
	int ok;

	if (Tss2_MU_TPM2B_SENSITIVE_Marshal(sens, s->plain, sizeof(s->plain), &len) !=
	        TSS2_RC_SUCCESS ||
	    2 + DIGEST_LEN + len > sizeof(dup->buffer))
		return KW_FAIL(KW_ERR_INTERNAL, "tpm2 import: cannot marshal the sensitive area");
	ok = kdfa(s->seed, DIGEST_LEN, "STORAGE", name->name, name->size, s->sym_key,
	          key_bits / 8) &&
	     kdfa(s->seed, DIGEST_LEN, "INTEGRITY", NULL, 0, s->hmac_key, DIGEST_LEN) &&
	     cfb_encrypt(s->sym_key, key_bits, s->plain, len, enc);
	sodium_memzero(s->plain, sizeof(s->plain));
	if (!ok)
		return ossl_fail("encrypt the key for the SRK (KDFa, AES-CFB)");
	part parts[] = {{enc, len}, {name->name, name->size}};
	if (!hmac_parts(s->hmac_key, DIGEST_LEN, parts, 2, mac.buffer))
		return ossl_fail("compute the outer HMAC");
	if (Tss2_MU_TPM2B_DIGEST_Marshal(&mac, dup->buffer, 2 + DIGEST_LEN, &off) !=
	    TSS2_RC_SUCCESS)
		return KW_FAIL(KW_ERR_INTERNAL, "tpm2 import: cannot marshal the outer HMAC");
	dup->size = (UINT16)(off + len);
	return KW_OK;
}

/* The parents we can wrap for: the SRK shapes TCG's provisioning guidance
 * names (ECC P-256 or RSA 2048, AES-128-CFB, SHA-256) and their close kin. */
static kw_rc parent_check(const TPMT_PUBLIC *p)
{
	const TPMT_SYM_DEF_OBJECT *sym = &p->parameters.asymDetail.symmetric;
	int curve_ok = p->type != TPM2_ALG_ECC ||
	               p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 ||
	               p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P384;

	if (p->nameAlg != TPM2_ALG_SHA256 || kwb_tpm2_public_key_type(p) == 0 || !curve_ok ||
	    sym->algorithm != TPM2_ALG_AES || sym->mode.aes != TPM2_ALG_CFB ||
	    (sym->keyBits.aes != 128 && sym->keyBits.aes != 256))
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "tpm2 import: the SRK (type 0x%04x, nameAlg 0x%04x) is not a "
		               "storage key keyward can wrap a key for; it takes ECC P-256/P-384 "
		               "or RSA 2048-4096 with SHA-256 and AES-CFB",
		               p->type, p->nameAlg);
	return KW_OK;
}

kw_rc kwb_tpm2_wrap_outer(const TPMT_PUBLIC *parent, const TPM2B_PUBLIC *pub,
                          const TPM2B_SENSITIVE *sens, TPM2B_PRIVATE *dup,
                          TPM2B_ENCRYPTED_SECRET *seed)
{
	TPM2B_NAME name = {0};
	wrap_secrets *s = NULL;
	kw_rc rc;

	seed->size = 0;
	dup->size = 0;
	KW_GUARD(parent_check(parent));
	KW_GUARD(object_name(pub, &name));
	if (sodium_init() < 0 || (s = sodium_malloc(sizeof(*s))) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "tpm2 import: out of guarded memory");
	sodium_memzero(s, sizeof(*s));
	rc = parent->type == TPM2_ALG_ECC ? seed_ecc(parent, s, seed) : seed_rsa(parent, s, seed);
	if (rc == KW_OK)
		rc = outer_seal(parent->parameters.asymDetail.symmetric.keyBits.aes, &name, sens, s,
		                dup);
	sodium_memzero(s, sizeof(*s));
	sodium_free(s);
	if (rc != KW_OK) {
		sodium_memzero(dup, sizeof(*dup));
		seed->size = 0;
	}
	return rc;
}
