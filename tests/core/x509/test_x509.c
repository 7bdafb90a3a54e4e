/* X.509 building with a real SoftHSM key: the hardware makes every signature. */
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "kwtest.h"

typedef struct {
	kwi_device dev;
	kw_key_blob ref;
	kw_key_type type;
	EVP_PKEY *pub;
} hw_key;

static void key_open(hw_key *k, kw_key_type type)
{
	memset(k, 0, sizeof(*k));
	kw_backend_config c = kwt_p11_config();
	k->dev.ops = &kwb_p11_ops;
	k->dev.name = "hsm";
	k->type = type;
	cr_assert_eq(kwb_p11_ops.open(&c, &k->dev.ctx), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kwb_p11_ops.key_generate(k->dev.ctx, type, "x509-test", &k->ref), KW_OK, "%s",
	             kw_error_message());
	kwi_signer s = {&k->dev, &k->ref, type};
	cr_assert_eq(kwi_signer_pubkey(&s, &k->pub), KW_OK, "%s", kw_error_message());
}

static void key_close(hw_key *k)
{
	cr_assert_eq(kwb_p11_ops.key_destroy(k->dev.ctx, &k->ref, NULL), KW_OK, "%s",
	             kw_error_message());
	kwb_p11_ops.close(k->dev.ctx);
	kw_key_blob_clear(&k->ref);
	EVP_PKEY_free(k->pub);
}

static void template_for(kwi_cert_template *t, int rsa, const char *const *sans, size_t n)
{
	X509_NAME *name = NULL;
	GENERAL_NAMES *g = sk_GENERAL_NAME_new_null();
	memset(t, 0, sizeof(*t));
	cr_assert_eq(kwi_dn_parse("CN=web01.example,O=Test", &name), KW_OK);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(kwi_san_parse(sans[i], g), KW_OK);
	t->subject = name;
	t->sans = g;
	t->is_rsa = rsa;
	t->not_before = 1893456000; /* 2030-01-01 */
	t->not_after = 1893456000 + 90 * 86400;
}

static int has_ext(X509 *x, int nid, int critical)
{
	int i = X509_get_ext_by_NID(x, nid, -1);
	return i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, i)) == critical;
}

static void check_cert(hw_key *k, int rsa, int sig_nid)
{
	static const char *const sans[] = {"DNS:web01.example", "IP:10.0.0.1"};
	kwi_cert_template t;
	X509 *x = NULL;
	template_for(&t, rsa, sans, 2);
	kwi_signer s = {&k->dev, &k->ref, k->type};
	cr_assert_eq(kwi_x509_self_signed(&s, k->pub, &t, &x), KW_OK, "%s", kw_error_message());
	cr_assert_eq(X509_verify(x, k->pub), 1, "signature made in hardware must verify");
	cr_assert_eq(X509_get_signature_nid(x), sig_nid);
	cr_assert_eq(X509_get_version(x), 2);
	cr_assert_eq(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
	/* serial: 16 bytes, positive */
	const ASN1_INTEGER *ser = X509_get0_serialNumber(x);
	cr_assert_eq(ASN1_STRING_length(ser), 16);
	cr_assert_eq(ASN1_STRING_type(ser), V_ASN1_INTEGER);
	cr_assert_eq(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), t.not_before), 0);
	cr_assert_eq(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), t.not_after), 0);
	cr_assert(has_ext(x, NID_basic_constraints, 1));
	cr_assert(has_ext(x, NID_key_usage, 1));
	cr_assert(has_ext(x, NID_ext_key_usage, 0));
	cr_assert(has_ext(x, NID_subject_key_identifier, 0));
	cr_assert(has_ext(x, NID_authority_key_identifier, 0));
	cr_assert(has_ext(x, NID_subject_alt_name, 0));
	uint32_t ku = X509_get_key_usage(x);
	cr_assert(ku & KU_DIGITAL_SIGNATURE);
	cr_assert_eq(!!(ku & KU_KEY_ENCIPHERMENT), rsa, "keyEncipherment only for RSA");
	cr_assert(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	cr_assert_eq(X509_check_host(x, "web01.example", 0, 0, NULL), 1);
	cr_assert_eq(X509_check_ip_asc(x, "10.0.0.1", 0), 1);
	cr_assert_eq(X509_check_ca(x), 0, "a leaf is not a CA");
	/* AKI keyid of a self-signed certificate is its own SKI */
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
	cr_assert(ski && aki && ASN1_OCTET_STRING_cmp(ski, aki) == 0);
	char sha1[41], sha256[65];
	cr_assert_eq(kwi_x509_thumbprints(x, sha1, sha256), KW_OK);
	cr_assert_eq(strlen(sha1), 40);
	cr_assert_eq(strlen(sha256), 64);
	unsigned char d[32];
	unsigned int n = 0;
	char hex[65];
	X509_digest(x, EVP_sha256(), d, &n);
	kwi_hex(d, n, hex);
	cr_assert_str_eq(sha256, hex);
	X509_free(x);
	kwi_template_clear(&t);
}

Test(x509, ec_p256_self_signed_is_complete_and_signed_by_the_device)
{
	hw_key k;
	key_open(&k, KW_KEY_EC_P256);
	check_cert(&k, 0, NID_ecdsa_with_SHA256);
	key_close(&k);
}

Test(x509, ec_p384_uses_sha384)
{
	hw_key k;
	key_open(&k, KW_KEY_EC_P384);
	check_cert(&k, 0, NID_ecdsa_with_SHA384);
	key_close(&k);
}

Test(x509, rsa_2048_uses_sha256_pkcs1_and_key_encipherment)
{
	hw_key k;
	key_open(&k, KW_KEY_RSA_2048);
	check_cert(&k, 1, NID_sha256WithRSAEncryption);
	key_close(&k);
}

Test(x509, a_signature_from_another_key_is_caught)
{
	hw_key k, other;
	kwi_cert_template t;
	X509 *x = NULL;
	key_open(&k, KW_KEY_EC_P256);
	key_open(&other, KW_KEY_EC_P256);
	template_for(&t, 0, NULL, 0);
	/* the certificate claims k's public key but other's key signs */
	kwi_signer s = {&other.dev, &other.ref, other.type};
	kw_error_clear();
	cr_assert_eq(kwi_x509_self_signed(&s, k.pub, &t, &x), KW_ERR_BACKEND);
	cr_assert_null(x);
	cr_assert(strstr(kw_error_message(), "does not verify") != NULL);
	kwi_template_clear(&t);
	key_close(&other);
	key_close(&k);
}

Test(x509, csr_is_signed_by_the_device_and_carries_the_sans)
{
	static const char *const sans[] = {"DNS:web01.example"};
	hw_key k;
	kwi_cert_template t;
	X509_REQ *req = NULL;
	key_open(&k, KW_KEY_EC_P256);
	template_for(&t, 0, sans, 1);
	kwi_signer s = {&k.dev, &k.ref, k.type};
	cr_assert_eq(kwi_x509_csr(&s, k.pub, &t, &req), KW_OK, "%s", kw_error_message());
	cr_assert_eq(X509_REQ_verify(req, k.pub), 1);
	EVP_PKEY *in_req = X509_REQ_get0_pubkey(req);
	cr_assert_eq(EVP_PKEY_eq(in_req, k.pub), 1);
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	int found = 0;
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++)
		found |= OBJ_obj2nid(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i))) ==
		         NID_subject_alt_name;
	cr_assert(found, "the CSR asks for the SANs");
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	kwi_template_clear(&t);
	key_close(&k);
}
