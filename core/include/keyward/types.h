/*
 * keyward — types shared by the public API and the backends.
 */
#ifndef KEYWARD_TYPES_H
#define KEYWARD_TYPES_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
	KW_KEY_EC_P256 = 1,
	KW_KEY_EC_P384,
	KW_KEY_RSA_2048,
	KW_KEY_RSA_3072,
	KW_KEY_RSA_4096,
} kw_key_type;

/* "ec-p256" ... "rsa-4096"; NULL for an unknown value. */
const char *kw_key_type_name(kw_key_type t);
/* 0 when the name is unknown. */
kw_key_type kw_key_type_from_name(const char *name);
int kw_key_type_is_rsa(kw_key_type t);

typedef enum {
	KW_SIG_ECDSA = 1, /* output: DER ECDSA-Sig-Value, as X.509 and TLS carry it */
	KW_SIG_RSA_PKCS1, /* output: modulus-sized RSASSA-PKCS1-v1_5 signature */
	KW_SIG_RSA_PSS,   /* output: modulus-sized RSASSA-PSS signature, MGF1 with md */
} kw_sig_scheme;

typedef struct {
	kw_sig_scheme scheme;
	int md_nid;      /* OpenSSL NID of the digest: NID_sha256, NID_sha384, NID_sha512 */
	int pss_saltlen; /* PSS salt length in bytes; -1 = digest length (TLS 1.3) */
} kw_sign_params;

#ifdef __cplusplus
}
#endif
#endif
