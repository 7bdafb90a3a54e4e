/* JWK, thumbprints and JWS for the ACME client: every signature by the account
 * key is made in its device; only the external account binding's HMAC is
 * computed here, from a key held in guarded memory. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "issuers/acme/acme_issuer.h"

char *kwi_b64url(const unsigned char *p, size_t n)
{
	const int v = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
	size_t cap = sodium_base64_ENCODED_LEN(n, v);
	char *out = malloc(cap);
	if (out)
		sodium_bin2base64(out, cap, p, n, v);
	return out;
}

static kw_rc put_bn(json_t *jwk, const char *k, EVP_PKEY *pub, const char *param, int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	if (!EVP_PKEY_get_bn_param(pub, param, &bn))
		return KW_FAIL(KW_ERR_INTERNAL, "cannot read the account key's %s", k);
	int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	if (n <= 0 || (size_t)n > sizeof(buf))
		return KW_FAIL(KW_ERR_INTERNAL, "the account key's %s does not fit", k);
	char *s = kwi_b64url(buf, (size_t)n);
	if (s == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = kwi_json_put(jwk, k, json_string(s));
	free(s);
	return rc;
}

kw_rc kwi_jwk_of(EVP_PKEY *pub, json_t **jwk, const char **alg)
{
	kw_rc rc;
	json_t *j = json_object();
	if (j == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (EVP_PKEY_is_a(pub, "RSA")) {
		*alg = "RS256";
		rc = kwi_json_put(j, "kty", json_string("RSA"));
		if (rc == KW_OK)
			rc = put_bn(j, "n", pub, OSSL_PKEY_PARAM_RSA_N, 0);
		if (rc == KW_OK)
			rc = put_bn(j, "e", pub, OSSL_PKEY_PARAM_RSA_E, 0);
	} else {
		int bits = EVP_PKEY_get_bits(pub);
		int size = bits == 384 ? 48 : 32;
		*alg = bits == 384 ? "ES384" : "ES256";
		rc = kwi_json_put(j, "kty", json_string("EC"));
		if (rc == KW_OK)
			rc = kwi_json_put(j, "crv", json_string(bits == 384 ? "P-384" : "P-256"));
		if (rc == KW_OK)
			rc = put_bn(j, "x", pub, OSSL_PKEY_PARAM_EC_PUB_X, size);
		if (rc == KW_OK)
			rc = put_bn(j, "y", pub, OSSL_PKEY_PARAM_EC_PUB_Y, size);
	}
	if (rc != KW_OK) {
		json_decref(j);
		return rc;
	}
	*jwk = j;
	return KW_OK;
}

kw_rc kwi_jwk_thumbprint(const json_t *jwk, char out[48])
{
	/* RFC 7638: the required members only, sorted, no white space: exactly
	 * what jansson writes compact with sorted keys. */
	unsigned char md[32];
	char *text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	SHA256((const unsigned char *)text, strlen(text), md);
	free(text);
	sodium_bin2base64(out, 48, md, sizeof(md), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return KW_OK;
}

/* JWS wants ECDSA signatures as R || S, each the size of the curve. */
static kw_rc ecdsa_raw(const unsigned char *der, size_t len, size_t half, unsigned char *out)
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r, *s;
	if (sig == NULL)
		return KW_FAIL(KW_ERR_BACKEND, "the device returned an unreadable ECDSA signature");
	ECDSA_SIG_get0(sig, &r, &s);
	int ok = BN_bn2binpad(r, out, (int)half) > 0 && BN_bn2binpad(s, out + half, (int)half) > 0;
	ECDSA_SIG_free(sig);
	return ok ? KW_OK : KW_FAIL(KW_ERR_BACKEND, "the device's ECDSA signature is too long");
}

static kw_rc sign_input(const kwi_signer *k, const char *alg, const char *input, char **sig_b64)
{
	unsigned char md[EVP_MAX_MD_SIZE], sig[1024], raw[96];
	unsigned int mdlen = 0;
	size_t sig_len = sizeof(sig);
	int es384 = strcmp(alg, "ES384") == 0, ec = alg[0] == 'E';
	const EVP_MD *dg = es384 ? EVP_sha384() : EVP_sha256();
	kw_sign_params p = {ec ? KW_SIG_ECDSA : KW_SIG_RSA_PKCS1, es384 ? NID_sha384 : NID_sha256,
	                    -1};
	if (!EVP_Digest(input, strlen(input), md, &mdlen, dg, NULL))
		return KW_FAIL(KW_ERR_INTERNAL, "digest failed");
	KW_GUARD(kwi_device_key_sign(k->dev, k->ref, &p, md, mdlen, sig, &sig_len));
	const unsigned char *out = sig;
	if (ec) {
		size_t half = es384 ? 48 : 32;
		KW_GUARD(ecdsa_raw(sig, sig_len, half, raw));
		out = raw;
		sig_len = 2 * half;
	}
	*sig_b64 = kwi_b64url(out, sig_len);
	return *sig_b64 ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

/* {"protected": b64(hdr), "payload": b64(payload), "signature": sig}. */
static kw_rc flatten(json_t *hdr, const char *payload, char **prot, char **pay, char **input)
{
	char *h = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS);
	*prot = h ? kwi_b64url((const unsigned char *)h, strlen(h)) : NULL;
	*pay = kwi_b64url((const unsigned char *)payload, strlen(payload));
	free(h);
	if (*prot == NULL || *pay == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	size_t n = strlen(*prot) + strlen(*pay) + 2;
	if ((*input = malloc(n)) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	snprintf(*input, n, "%s.%s", *prot, *pay);
	return KW_OK;
}

static kw_rc assemble(char *prot, char *pay, char *sig, json_t **out)
{
	*out = json_pack("{s:s, s:s, s:s}", "protected", prot, "payload", pay, "signature", sig);
	return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kwi_jws_sign(const kwi_signer *k, const char *alg, json_t *hdr, const char *payload,
                   json_t **out)
{
	char *prot = NULL, *pay = NULL, *input = NULL, *sig = NULL;
	kw_rc rc = kwi_json_put(hdr, "alg", json_string(alg));
	if (rc == KW_OK)
		rc = flatten(hdr, payload, &prot, &pay, &input);
	if (rc == KW_OK)
		rc = sign_input(k, alg, input, &sig);
	if (rc == KW_OK)
		rc = assemble(prot, pay, sig, out);
	free(prot);
	free(pay);
	free(input);
	free(sig);
	return rc;
}

kw_rc kwi_jws_eab(const kw_secret *mac_key, const char *kid, const char *url, const json_t *jwk,
                  json_t **out)
{
	kw_rc rc = KW_OK;
	char *prot = NULL, *pay = NULL, *input = NULL, *sig = NULL, *jwk_text = NULL;
	unsigned char mac[32];
	unsigned int mac_len = 0;
	json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", kid, "url", url);
	jwk_text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
	if (hdr == NULL || jwk_text == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = flatten(hdr, jwk_text, &prot, &pay, &input)) != KW_OK)
		goto out;
	if (!HMAC(EVP_sha256(), kw_secret_data(mac_key), (int)kw_secret_len(mac_key),
	          (const unsigned char *)input, strlen(input), mac, &mac_len)) {
		rc = KW_FAIL(KW_ERR_INTERNAL, "HMAC failed");
		goto out;
	}
	if ((sig = kwi_b64url(mac, mac_len)) == NULL)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	else
		rc = assemble(prot, pay, sig, out);
out:
	sodium_memzero(mac, sizeof(mac));
	json_decref(hdr);
	free(jwk_text);
	free(prot);
	free(pay);
	free(input);
	free(sig);
	return rc;
}
