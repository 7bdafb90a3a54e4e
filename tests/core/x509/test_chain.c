/* What a CA sends back (core/chain.c): every format cert merge takes, every
 * input it refuses, and the chain it orders from what it is given. */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "internal.h"
#include "kwtest.h"

/* A root, an intermediate under it, a leaf under that (software keys made by
 * openssl: no device is needed to order certificates); a stranger; and a
 * forged intermediate: same name, no key identifier, another key. */
static char *ca_dir(void)
{
	char *dir = kwt_tmpdir("chain");
	int st = kwt_sh(
	    "(cd '%s' && K='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes' && "
	    "openssl req -x509 $K -keyout root.key -out root.pem -subj /CN=root -days 30"
	    " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign && "
	    "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=keyCertSign\\n' > ca.ext && "
	    "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=keyCertSign\\n"
	    "subjectKeyIdentifier=none\\nauthorityKeyIdentifier=none\\n' > forged.ext && "
	    "openssl req -new $K -keyout inter.key -out inter.csr -subj /CN=inter && "
	    "openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30"
	    " -extfile ca.ext -out inter.pem && "
	    "openssl req -new $K -keyout forged.key -out forged.csr -subj /CN=inter && "
	    "openssl x509 -req -in forged.csr -CA root.pem -CAkey root.key -CAcreateserial"
	    " -days 30 -extfile forged.ext -out forged.pem && "
	    "openssl req -new $K -keyout leaf.key -out leaf.csr -subj /CN=leaf && "
	    "openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial"
	    " -days 30 -out leaf.pem && "
	    "openssl req -x509 $K -keyout stranger.key -out stranger.pem -subj /CN=stranger"
	    " -days 30) >/dev/null 2>&1",
	    dir);
	cr_assert_eq(st, 0, "cannot make the test certificates");
	/* the forgery must have no key identifier, or the name alone could not fool */
	cr_assert_eq(
	    kwt_sh("openssl x509 -in '%s/forged.pem' -noout -text | grep -q 'Key Identifier'", dir),
	    1);
	return dir;
}

static char *file_text(const char *dir, const char *name, size_t *len)
{
	char *path = NULL;
	cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
	char *t = kwt_read_file(path, len);
	cr_assert_not_null(t, "no %s", path);
	free(path);
	return t;
}

static X509 *load(const char *dir, const char *name)
{
	char *t = file_text(dir, name, NULL);
	BIO *b = BIO_new_mem_buf(t, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	cr_assert_not_null(x, "cannot read %s", name);
	BIO_free(b);
	free(t);
	return x;
}

static STACK_OF(X509) * parsed(const char *source, const void *data, size_t len, int want)
{
	STACK_OF(X509) *certs = NULL;
	kw_rc rc = kwi_certs_parse(source, data, len, &certs);
	cr_assert_eq(rc, KW_OK, "%s refused: %s", source, kw_error_message());
	cr_assert_eq(sk_X509_num(certs), want, "%s: %d certificates, want %d", source,
	             sk_X509_num(certs), want);
	return certs;
}

static void refused(const char *source, const void *data, size_t len, const char *needle)
{
	STACK_OF(X509) *certs = (STACK_OF(X509) *)1;
	kw_error_clear();
	kw_rc rc = kwi_certs_parse(source, data, len, &certs);
	cr_assert_eq(rc, KW_ERR_PARSE, "%s: got %s", source, kw_rc_name(rc));
	cr_assert_null(certs, "%s: refused but handed out certificates", source);
	cr_assert(strncmp(kw_error_message(), source, strlen(source)) == 0,
	          "%s: the message does not name the input: %s", source, kw_error_message());
	cr_assert(strstr(kw_error_message(), needle) != NULL, "%s: '%s' lacks '%s'", source,
	          kw_error_message(), needle);
	kw_error_clear();
}

Test(chain, takes_pem_with_text_around_der_and_pkcs7)
{
	char *dir = ca_dir();
	char *leaf = file_text(dir, "leaf.pem", NULL), *inter = file_text(dir, "inter.pem", NULL);
	char *text = NULL;
	cr_assert(asprintf(&text, "subject=CN = leaf\n%sbetween the blocks\n%s", leaf, inter) > 0);
	sk_X509_pop_free(parsed("text.pem", text, strlen(text), 2), X509_free);
	cr_assert_eq(kwt_sh("cd '%s' && openssl x509 -in leaf.pem -outform DER > two.der && "
	                    "openssl x509 -in inter.pem -outform DER >> two.der && "
	                    "openssl crl2pkcs7 -nocrl -certfile leaf.pem -certfile inter.pem"
	                    " -certfile root.pem -out three.p7 && "
	                    "openssl x509 -in leaf.pem -trustout -out trusted.pem",
	                    dir),
	             0);
	size_t n = 0;
	char *der = file_text(dir, "two.der", &n);
	STACK_OF(X509) *certs = parsed("two.der", der, n, 2);
	X509 *want = load(dir, "inter.pem");
	cr_assert_eq(X509_cmp(sk_X509_value(certs, 1), want), 0, "DER order lost");
	X509_free(want);
	sk_X509_pop_free(certs, X509_free);
	char *p7 = file_text(dir, "three.p7", &n);
	sk_X509_pop_free(parsed("three.p7", p7, n, 3), X509_free);
	char *trusted = file_text(dir, "trusted.pem", &n);
	sk_X509_pop_free(parsed("trusted.pem", trusted, n, 1), X509_free);
	free(trusted);
	free(p7);
	free(der);
	free(text);
	free(leaf);
	free(inter);
	free(dir);
}

Test(chain, refuses_what_holds_no_certificate)
{
	char *dir = ca_dir();
	size_t n = 0;
	char *leaf = file_text(dir, "leaf.pem", &n);
	refused("empty.pem", "", 0, "empty");
	refused("junk.txt", "hello\n", 6, "not a certificate (neither PEM nor DER)");
	refused("half.pem", leaf, n / 2, "truncated or corrupt PEM");
	const char bad64[] = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
	refused("bad64.pem", bad64, strlen(bad64), "truncated or corrupt PEM");
	/* base64 that decodes, to something that is no certificate */
	const char notx509[] = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
	refused("notx509.pem", notx509, strlen(notx509), "corrupt certificate");
	char *csr = file_text(dir, "leaf.csr", &n);
	refused("leaf.csr", csr, n, "holds a CSR");
	char *key = file_text(dir, "leaf.key", &n);
	refused("leaf.key", key, n, "'PRIVATE KEY' PEM block");
	cr_assert_eq(
	    kwt_sh("openssl x509 -in '%s/leaf.pem' -outform DER > '%s/leaf.der'", dir, dir), 0);
	char *der = file_text(dir, "leaf.der", &n);
	refused("cut.der", der, n - 10, "corrupt or truncated DER");
	free(der);
	free(key);
	free(csr);
	free(leaf);
	free(dir);
}

static const char *subject(X509 *x, char *buf, size_t len)
{
	X509_NAME_oneline(X509_get_subject_name(x), buf, (int)len);
	return buf;
}

Test(chain, orders_issuers_by_name_key_id_and_signature_and_drops_the_rest)
{
	char *dir = ca_dir();
	const char *order[] = {"root.pem",  "forged.pem", "stranger.pem",
	                       "inter.pem", "leaf.pem",   "inter.pem"};
	STACK_OF(X509) *certs = sk_X509_new_null(), *chain = NULL;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		sk_X509_push(certs, load(dir, order[i]));
	X509 *leaf = sk_X509_value(certs, 4);
	json_t *dropped = json_array();
	cr_assert_eq(kwi_chain_order(leaf, certs, &chain, dropped), KW_OK, "%s",
	             kw_error_message());
	char buf[256];
	cr_assert_eq(sk_X509_num(chain), 2);
	cr_assert_eq(X509_cmp(sk_X509_value(chain, 0), sk_X509_value(certs, 3)), 0,
	             "first issuer: %s", subject(sk_X509_value(chain, 0), buf, sizeof(buf)));
	cr_assert_eq(X509_cmp(sk_X509_value(chain, 1), sk_X509_value(certs, 0)), 0);
	char *got = json_dumps(dropped, JSON_COMPACT);
	cr_assert_str_eq(got,
	                 "[{\"subject\":\"CN=inter\",\"reason\":\"not part of the "
	                 "certificate's chain\"},{\"subject\":\"CN=stranger\",\"reason\":\"not "
	                 "part of the certificate's chain\"},{\"subject\":\"CN=inter\","
	                 "\"reason\":\"a duplicate\"}]");
	free(got);
	json_decref(dropped);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(certs, X509_free);
	free(dir);
}

Test(chain, goes_as_far_as_the_file_goes)
{
	char *dir = ca_dir();
	STACK_OF(X509) *certs = sk_X509_new_null(), *chain = NULL;
	sk_X509_push(certs, load(dir, "leaf.pem"));
	sk_X509_push(certs, load(dir, "root.pem"));
	json_t *dropped = json_array();
	cr_assert_eq(kwi_chain_order(sk_X509_value(certs, 0), certs, &chain, dropped), KW_OK);
	/* the intermediate is missing: the root cannot be placed above the leaf */
	cr_assert_eq(sk_X509_num(chain), 0);
	cr_assert_eq(json_array_size(dropped), 1);
	sk_X509_pop_free(chain, X509_free);
	json_decref(dropped);
	dropped = json_array();
	cr_assert_eq(kwi_chain_order(sk_X509_value(certs, 1), certs, &chain, dropped), KW_OK);
	/* a self-signed certificate is its own root: nothing goes above it */
	cr_assert_eq(sk_X509_num(chain), 0);
	cr_assert_eq(json_array_size(dropped), 1);
	sk_X509_pop_free(chain, X509_free);
	json_decref(dropped);
	sk_X509_pop_free(certs, X509_free);
	free(dir);
}
