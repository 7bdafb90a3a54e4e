/* see internal.h: distinguished names and subject alternative names */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "internal.h"
#include "lifecycle/notify_internal.h"

#define DN_MAX 1024

/* Adds one "ATTR=value" to name. */
static kw_rc dn_add(X509_NAME *name, const char *dn, char *attr, char *value, int loc)
{
	while (*attr == ' ')
		attr++;
	size_t alen = strlen(attr);
	while (alen > 0 && attr[alen - 1] == ' ')
		attr[--alen] = '\0';
	if (alen == 0)
		return KW_FAIL(KW_ERR_PARSE, "malformed subject '%s': empty attribute name", dn);
	while (*value == ' ')
		value++;
	size_t vlen = strlen(value);
	while (vlen > 0 && value[vlen - 1] == ' ')
		value[--vlen] = '\0';
	if (OBJ_txt2nid(attr) == NID_undef)
		return KW_FAIL(KW_ERR_PARSE, "malformed subject '%s': unknown attribute '%s'", dn,
		               attr);
	if (value[0] == '\0')
		return KW_FAIL(KW_ERR_PARSE, "malformed subject '%s': attribute '%s' has no value",
		               dn, attr);
	if (!X509_NAME_add_entry_by_txt(name, attr, MBSTRING_UTF8, (unsigned char *)value, -1, loc,
	                                0))
		return KW_FAIL(KW_ERR_PARSE, "malformed subject '%s': bad value for '%s'", dn,
		               attr);
	return KW_OK;
}

/*
 * Two spellings are accepted: RFC 4514 style "CN=web01,O=Example Inc" (a
 * backslash escapes ',', '+', '=' and itself), written most specific first
 * and so stored in reverse, and OpenSSL's "/O=x/CN=web01", stored as written.
 * Either way the RFC 2253 rendering in `cert show` reads like the comma form.
 */
static kw_rc dn_split(const char *dn, X509_NAME *name)
{
	int slash = dn[0] == '/';
	char sep = slash ? '/' : ',';
	char attr[DN_MAX], value[DN_MAX];
	size_t an = 0, vn = 0;
	int in_value = 0;
	for (const char *p = dn + slash;; p++) {
		if (*p == '\0' || *p == sep) {
			if (!in_value)
				return KW_FAIL(
				    KW_ERR_PARSE, "malformed subject '%s': expected ATTR=value%s",
				    dn, slash ? " parts like /CN=x/O=y" : " parts like CN=x,O=y");
			attr[an] = value[vn] = '\0';
			KW_GUARD(dn_add(name, dn, attr, value, slash ? -1 : 0));
			if (*p == '\0')
				return KW_OK;
			an = vn = 0;
			in_value = 0;
			continue;
		}
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '=' && !in_value) {
			in_value = 1;
			continue;
		}
		if (in_value && vn + 1 < sizeof(value))
			value[vn++] = *p;
		else if (!in_value && an + 1 < sizeof(attr))
			attr[an++] = *p;
		else
			return KW_FAIL(KW_ERR_PARSE, "malformed subject: too long");
	}
}

kw_rc kwi_dn_parse(const char *text, X509_NAME **out)
{
	*out = NULL;
	if (text == NULL || text[0] == '\0')
		return KW_FAIL(KW_ERR_PARSE, "empty subject: give a DN such as CN=web01");
	if (strlen(text) >= DN_MAX)
		return KW_FAIL(KW_ERR_PARSE, "subject is longer than %d characters", DN_MAX - 1);
	X509_NAME *name = X509_NAME_new();
	if (name == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = dn_split(text, name);
	if (rc != KW_OK) {
		X509_NAME_free(name);
		return rc;
	}
	*out = name;
	return KW_OK;
}

int kwi_dns_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > 253)
		return 0;
	const char *p = name;
	if (strncmp(p, "*.", 2) == 0) /* one leading wildcard label */
		p += 2;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63 || p[0] == '-' || p[l - 1] == '-')
			return 0;
		for (size_t i = 0; i < l; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '-')
				return 0;
		if (dot == NULL)
			return 1;
		p = dot + 1;
		if (*p == '\0') /* trailing dot */
			return 0;
	}
}

static kw_rc push(GENERAL_NAMES *names, int type, ASN1_STRING *v)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	if (gn == NULL) {
		ASN1_STRING_free(v);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	GENERAL_NAME_set0_value(gn, type, v);
	if (!sk_GENERAL_NAME_push(names, gn)) {
		GENERAL_NAME_free(gn);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	return KW_OK;
}

kw_rc kwi_san_parse(const char *text, GENERAL_NAMES *names)
{
	if (strncasecmp(text, "DNS:", 4) == 0) {
		if (!kwi_dns_name_valid(text + 4))
			return KW_FAIL(KW_ERR_PARSE, "bad SAN '%s': '%s' is not a valid DNS name",
			               text, text + 4);
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		if (s == NULL || !ASN1_STRING_set(s, text + 4, -1)) {
			ASN1_IA5STRING_free(s);
			return KW_FAIL(KW_ERR_NOMEM, "out of memory");
		}
		return push(names, GEN_DNS, s);
	}
	if (strncasecmp(text, "IP:", 3) == 0) {
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(text + 3);
		if (ip == NULL)
			return KW_FAIL(KW_ERR_PARSE,
			               "bad SAN '%s': '%s' is not an IPv4 or IPv6 address", text,
			               text + 3);
		return push(names, GEN_IPADD, ip);
	}
	return KW_FAIL(KW_ERR_PARSE, "bad SAN '%s': use DNS:name or IP:address", text);
}

json_t *kwi_name_json(const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL;
	if (b == NULL)
		return NULL;
	X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
	long n = BIO_get_mem_data(b, &data);
	json_t *j = json_stringn(data ? data : "", (size_t)(n > 0 ? n : 0));
	BIO_free(b);
	return j;
}

json_t *kwi_sans_json(const GENERAL_NAMES *gens)
{
	json_t *arr = json_array();
	for (int i = 0; arr && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char buf[300] = "", ip[INET6_ADDRSTRLEN] = "";
		if (g->type == GEN_DNS)
			snprintf(buf, sizeof(buf), "DNS:%.*s", ASN1_STRING_length(g->d.dNSName),
			         (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		else if (g->type == GEN_IPADD) {
			int n = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
			if ((n == 4 && inet_ntop(AF_INET, a, ip, sizeof(ip))) ||
			    (n == 16 && inet_ntop(AF_INET6, a, ip, sizeof(ip))))
				snprintf(buf, sizeof(buf), "IP:%s", ip);
		}
		if (buf[0])
			json_array_append_new(arr, json_string(buf));
	}
	return arr;
}

json_t *kwi_req_sans_json(X509_REQ *req)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	json_t *arr = kwi_sans_json(gens);
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return arr;
}

/* see internal.h */
int kwi_name_valid(const char *name, size_t max)
{
	size_t n = name ? strlen(name) : 0;
	int ok = n > 0 && n <= max && isalnum((unsigned char)name[0]);
	for (size_t i = 0; ok && i < n; i++)
		ok = isalnum((unsigned char)name[i]) || strchr("._-", name[i]);
	return ok;
}

kw_rc kwi_name_check(const char *what, const char *name, size_t max)
{
	char shown[200];
	return kwi_name_valid(name, max)
	           ? KW_OK
	           : KW_FAIL(KW_ERR_USAGE,
	                     "bad %s name '%s': 1 to %zu letters, digits, '.', '_' or '-', "
	                     "starting with a letter or digit",
	                     what, kwi_printable(name, shown, sizeof(shown)), max);
}
