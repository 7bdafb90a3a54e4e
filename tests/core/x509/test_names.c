#include <string.h>

#include <criterion/criterion.h>
#include <openssl/x509v3.h>

#include "internal.h"

static char *rfc2253(const X509_NAME *n)
{
	static char buf[512];
	BIO *b = BIO_new(BIO_s_mem());
	X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
	int len = BIO_read(b, buf, sizeof(buf) - 1);
	buf[len > 0 ? len : 0] = '\0';
	BIO_free(b);
	return buf;
}

static void parses_to(const char *in, const char *want)
{
	X509_NAME *n = NULL;
	kw_error_clear();
	cr_assert_eq(kwi_dn_parse(in, &n), KW_OK, "%s: %s", in, kw_error_message());
	cr_assert_str_eq(rfc2253(n), want, "%s", in);
	X509_NAME_free(n);
}

static void refused(const char *in, const char *why)
{
	X509_NAME *n = NULL;
	kw_error_clear();
	cr_assert_eq(kwi_dn_parse(in, &n), KW_ERR_PARSE, "%s", in);
	cr_assert_null(n);
	cr_assert(strstr(kw_error_message(), why) != NULL, "%s -> %s", in, kw_error_message());
}

Test(names, comma_form_reads_back_as_written)
{
	parses_to("CN=web01", "CN=web01");
	parses_to("CN=web01,O=Example Inc,C=DE", "CN=web01,O=Example Inc,C=DE");
	parses_to("CN=a\\,b,O=x", "CN=a\\,b,O=x");
	parses_to("CN = spaced , O=y", "CN=spaced,O=y");
}

Test(names, slash_form_is_openssl_order)
{
	parses_to("/C=DE/O=Example/CN=web01", "CN=web01,O=Example,C=DE");
}

Test(names, utf8_values_survive)
{
	parses_to("CN=bücher.example", "CN=b\\C3\\BCcher.example");
}

Test(names, malformed_subjects_are_refused_with_the_reason)
{
	refused("", "empty subject");
	refused("CN", "ATTR=value");
	refused("FOO=bar", "unknown attribute 'FOO'");
	refused("CN=a,=b", "empty attribute name");
	refused("CN=", "no value");
	refused("CN=a,", "ATTR=value");
	refused("/CN=a/", "ATTR=value");
	refused("C=Germany", "bad value for 'C'");
}

Test(names, overlong_subject_is_refused)
{
	char big[2000] = "CN=";
	memset(big + 3, 'a', sizeof(big) - 4);
	big[sizeof(big) - 1] = '\0';
	refused(big, "longer than");
}

Test(names, dns_names)
{
	cr_assert(kwi_dns_name_valid("localhost"));
	cr_assert(kwi_dns_name_valid("web-01.example.com"));
	cr_assert(kwi_dns_name_valid("*.example.com"));
	cr_assert(kwi_dns_name_valid("xn--bcher-kva.example"));
	cr_assert_not(kwi_dns_name_valid(""));
	cr_assert_not(kwi_dns_name_valid("-bad-"));
	cr_assert_not(kwi_dns_name_valid("a..b"));
	cr_assert_not(kwi_dns_name_valid("a.b."));
	cr_assert_not(kwi_dns_name_valid("a.*.b"));
	cr_assert_not(kwi_dns_name_valid("under_score.example"));
	cr_assert_not(kwi_dns_name_valid("sp ace"));
	char label[80];
	memset(label, 'a', 64);
	label[64] = '\0';
	cr_assert_not(kwi_dns_name_valid(label), "labels are at most 63 octets");
}

Test(names, sans_parse_into_general_names)
{
	GENERAL_NAMES *g = sk_GENERAL_NAME_new_null();
	cr_assert_eq(kwi_san_parse("DNS:web01.example", g), KW_OK);
	cr_assert_eq(kwi_san_parse("IP:127.0.0.1", g), KW_OK);
	cr_assert_eq(kwi_san_parse("IP:::1", g), KW_OK);
	cr_assert_eq(kwi_san_parse("dns:lower.example", g), KW_OK);
	cr_assert_eq(sk_GENERAL_NAME_num(g), 4);
	cr_assert_eq(sk_GENERAL_NAME_value(g, 0)->type, GEN_DNS);
	cr_assert_eq(sk_GENERAL_NAME_value(g, 1)->type, GEN_IPADD);
	cr_assert_eq(ASN1_STRING_length(sk_GENERAL_NAME_value(g, 2)->d.iPAddress), 16);
	kw_error_clear();
	cr_assert_eq(kwi_san_parse("DNS:-bad-", g), KW_ERR_PARSE);
	cr_assert(strstr(kw_error_message(), "not a valid DNS name") != NULL);
	kw_error_clear();
	cr_assert_eq(kwi_san_parse("IP:999.1.1.1", g), KW_ERR_PARSE);
	cr_assert(strstr(kw_error_message(), "IPv4 or IPv6") != NULL);
	kw_error_clear();
	cr_assert_eq(kwi_san_parse("URL:x", g), KW_ERR_PARSE);
	cr_assert(strstr(kw_error_message(), "DNS:name or IP:address") != NULL);
	cr_assert_eq(sk_GENERAL_NAME_num(g), 4, "refused SANs add nothing");
	GENERAL_NAMES_free(g);
}
