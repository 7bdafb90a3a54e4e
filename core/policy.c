/* see internal.h: the certificate policy (Key Vault's shape) built from a request */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "internal.h"

#define DAYS_DEFAULT 365
#define DAYS_MAX     36500

/* The first CN of a DN, or NULL. */
static char *first_cn(const X509_NAME *name)
{
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i < 0)
		return NULL;
	unsigned char *utf8 = NULL;
	if (ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i))) < 0)
		return NULL;
	char *cn = strdup((char *)utf8);
	OPENSSL_free(utf8);
	return cn;
}

/* When no SAN is given, the CN becomes the one SAN: clients ignore the CN. */
static kw_rc sans_from_cn(const X509_NAME *name, json_t *sans)
{
	char *cn = first_cn(name);
	if (cn == NULL)
		return KW_OK;
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(cn);
	char buf[300];
	buf[0] = '\0';
	if (ip != NULL)
		snprintf(buf, sizeof(buf), "IP:%s", cn);
	else if (kwi_dns_name_valid(cn))
		snprintf(buf, sizeof(buf), "DNS:%s", cn);
	ASN1_OCTET_STRING_free(ip);
	free(cn);
	if (buf[0] && json_array_append_new(sans, json_string(buf)) != 0)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	return KW_OK;
}

static kw_rc check_request(const kw_cert_request *req, kw_key_type *type)
{
	const char *kt = req->key_type ? req->key_type : "ec-p256";
	*type = kw_key_type_from_name(kt);
	if (*type == 0)
		return KW_FAIL(KW_ERR_USAGE,
		               "unknown key type '%s' (use ec-p256, ec-p384, rsa-2048, rsa-3072 or "
		               "rsa-4096)",
		               kt);
	if (req->days < 0 || req->days > DAYS_MAX)
		return KW_FAIL(KW_ERR_USAGE, "validity of %d days is out of range (1 to %d)",
		               req->days, DAYS_MAX);
	const char *issuer = req->issuer ? req->issuer : "self";
	if (strcmp(issuer, "self") != 0)
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "issuer '%s' is not supported by this build (supported: self)",
		               issuer);
	return KW_OK;
}

kw_rc kwi_policy_from_request(const kw_cert_request *req, json_t **out)
{
	kw_rc rc = KW_OK;
	kw_key_type type;
	X509_NAME *name = NULL;
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	json_t *sans = json_array();
	*out = NULL;
	if (gens == NULL || sans == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = check_request(req, &type)) != KW_OK ||
	    (rc = kwi_dn_parse(req->subject, &name)) != KW_OK)
		goto out;
	for (size_t i = 0; i < req->n_sans; i++) {
		if ((rc = kwi_san_parse(req->sans[i], gens)) != KW_OK)
			goto out;
		json_array_append_new(sans, json_string(req->sans[i]));
	}
	if (req->n_sans == 0 && (rc = sans_from_cn(name, sans)) != KW_OK)
		goto out;
	json_t *ku = kw_key_type_is_rsa(type)
	                 ? json_pack("[ss]", "digitalSignature", "keyEncipherment")
	                 : json_pack("[s]", "digitalSignature");
	*out = json_pack("{s:{s:s,s:s,s:b},s:{s:s,s:o,s:[s],s:o,s:i},s:{s:s},s:[]}", "key", "type",
	                 kw_key_type_name(type), "backend", req->backend, "reuse_key", 0, "x509",
	                 "subject", req->subject, "sans", sans, "ekus", "serverAuth", "key_usage",
	                 ku, "validity_days", req->days ? req->days : DAYS_DEFAULT, "issuer",
	                 "name", req->issuer ? req->issuer : "self", "lifetime_actions");
	sans = NULL; /* stolen by "o" */
	if (*out == NULL)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
out:
	json_decref(sans);
	X509_NAME_free(name);
	GENERAL_NAMES_free(gens);
	return rc;
}

/* Joins a JSON array of strings with commas, after prefix. */
static char *join(const char *prefix, const json_t *arr)
{
	size_t n = strlen(prefix) + 1, i;
	json_t *v;
	json_array_foreach(arr, i, v) n +=
	    strlen(json_string_value(v) ? json_string_value(v) : "") + 1;
	char *s = calloc(1, n);
	if (s == NULL)
		return NULL;
	strcpy(s, prefix);
	json_array_foreach(arr, i, v)
	{
		if (i > 0)
			strcat(s, ",");
		strcat(s, json_string_value(v) ? json_string_value(v) : "");
	}
	return s;
}

kw_rc kwi_policy_template(const json_t *policy, time_t now, kwi_cert_template *t)
{
	kw_rc rc = KW_OK;
	X509_NAME *name = NULL;
	memset(t, 0, sizeof(*t));
	const json_t *x509 = json_object_get(policy, "x509");
	const json_t *sans = json_object_get(x509, "sans");
	json_int_t days = json_integer_value(json_object_get(x509, "validity_days"));
	kw_key_type type = kw_key_type_from_name(
	    json_string_value(json_object_get(json_object_get(policy, "key"), "type")));
	if (type == 0 || days <= 0)
		return KW_FAIL(KW_ERR_STORE, "certificate policy in the store is incomplete");
	KW_GUARD(kwi_dn_parse(json_string_value(json_object_get(x509, "subject")), &name));
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	if (gens == NULL) {
		X509_NAME_free(name);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	t->subject = name;
	t->sans = gens;
	size_t i;
	json_t *v;
	json_array_foreach(sans, i, v)
	{
		if ((rc = kwi_san_parse(json_string_value(v) ? json_string_value(v) : "", gens)) !=
		    KW_OK)
			goto out;
	}
	t->is_rsa = kw_key_type_is_rsa(type);
	t->not_before = now;
	t->not_after = now + (time_t)days * 86400;
	t->key_usage = join("critical,", json_object_get(x509, "key_usage"));
	t->ext_key_usage = join("", json_object_get(x509, "ekus"));
	if (t->key_usage == NULL || t->ext_key_usage == NULL)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
out:
	if (rc != KW_OK)
		kwi_template_clear(t);
	return rc;
}

void kwi_template_clear(kwi_cert_template *t)
{
	X509_NAME_free((X509_NAME *)t->subject);
	GENERAL_NAMES_free((GENERAL_NAMES *)t->sans);
	free(t->key_usage);
	free(t->ext_key_usage);
	memset(t, 0, sizeof(*t));
}
