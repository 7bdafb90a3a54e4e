/* see keyward/lifecycle.h and policy/model.h: the certificate policy (Key
 * Vault's shape) validated into the model, with its defaults (the model
 * itself and the renewal time are in policy/model.c; the request, template
 * and stored policy in policy/request.c) */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "issuers/acme/acme_issuer.h"
#include "policy/model.h"
#include <keyward/lifecycle.h>

#define DAYS_DEFAULT    365
#define CA_DAYS_DEFAULT 3650
#define PATHLEN_MAX     16
#define DAYS_MAX        36500
#define HISTORY_DEFAULT 10
#define HISTORY_MAX     1000
#define LIST_MAX        100 /* SANs, EKUs, lifetime actions */
#define PATH_LEN        160
#define NAME_LEN_MAX    64
#define HOOK_LEN_MAX    4096
#define TARGET_NAME_MAX 80

#define KEY_TYPES "ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096"

static const struct {
	const char *name;
	const char *oid;
} ekus[] = {
    {"serverAuth", "1.3.6.1.5.5.7.3.1"},   {"clientAuth", "1.3.6.1.5.5.7.3.2"},
    {"codeSigning", "1.3.6.1.5.5.7.3.3"},  {"emailProtection", "1.3.6.1.5.5.7.3.4"},
    {"timeStamping", "1.3.6.1.5.5.7.3.8"}, {"OCSPSigning", "1.3.6.1.5.5.7.3.9"},
};
#define EKU_NAMES "serverAuth, clientAuth, codeSigning, emailProtection, timeStamping, OCSPSigning"

static const char *const key_usages[] = {
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
    "keyAgreement",     "keyCertSign",    "cRLSign",         NULL};

/* ---- field paths and errors ---- */

static kw_rc field_fail(kw_rc code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records "PATH: reason". */
static kw_rc field_fail(kw_rc code, const char *path, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kw_error_set(code, 0, __FILE__, __LINE__, "%s: %s", path, msg);
}

/* Moves an error another parser recorded under a field path. */
static kw_rc rewrap(const char *path)
{
	char msg[768];
	if (kw_error_code() == KW_ERR_NOMEM)
		return KW_ERR_NOMEM;
	snprintf(msg, sizeof(msg), "%s", kw_error_message());
	kw_error_clear();
	return field_fail(KW_ERR_USAGE, path, "%s", msg);
}

static const char *at(char buf[PATH_LEN], const char *base, const char *key)
{
	/* paths are short; a cut one still names the field's start */
	if (snprintf(buf, PATH_LEN, "%s%s%s", base, base[0] ? "." : "", key) >= PATH_LEN)
		buf[PATH_LEN - 2] = '~';
	return buf;
}

static const char *at_index(char buf[PATH_LEN], const char *base, size_t i)
{
	if (snprintf(buf, PATH_LEN, "%s[%zu]", base, i) >= PATH_LEN)
		buf[PATH_LEN - 2] = '~';
	return buf;
}

/* want: a json_type; JSON_TRUE stands for either boolean. */
static kw_rc check_type(const json_t *v, int want, const char *path)
{
	int ok = want == JSON_TRUE ? json_is_boolean(v) : v && (int)json_typeof(v) == want;
	if (ok)
		return KW_OK;
	const char *w = want == JSON_OBJECT    ? "an object"
	                : want == JSON_ARRAY   ? "an array"
	                : want == JSON_STRING  ? "a string"
	                : want == JSON_INTEGER ? "an integer"
	                                       : "true or false";
	return field_fail(KW_ERR_USAGE, path, "must be %s, not %s", w, kwi_json_kind(v));
}

/* *out: obj's member key (NULL when absent), of the wanted type. */
static kw_rc member(const json_t *obj, const char *base, const char *key, int want,
                    const json_t **out)
{
	char p[PATH_LEN];
	*out = json_object_get(obj, key);
	return *out ? check_type(*out, want, at(p, base, key)) : KW_OK;
}

static kw_rc known_fields(const json_t *obj, const char *base, const char *const names[])
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v)
	{
		size_t i = 0;
		while (names[i] && strcmp(names[i], k) != 0)
			i++;
		if (names[i] != NULL)
			continue;
		char list[256] = "", p[PATH_LEN];
		for (i = 0; names[i]; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			         i ? ", " : "", names[i]);
		return field_fail(KW_ERR_USAGE, at(p, base, k), "unknown field (known: %s)", list);
	}
	return KW_OK;
}

/* An integer member in [min, max]; *out keeps its value when absent. */
static kw_rc int_member(const json_t *obj, const char *base, const char *key, json_int_t min,
                        json_int_t max, json_int_t *out)
{
	const json_t *v;
	char p[PATH_LEN];
	KW_GUARD(member(obj, base, key, JSON_INTEGER, &v));
	if (v == NULL)
		return KW_OK;
	json_int_t n = json_integer_value(v);
	if (n < min || n > max)
		return field_fail(KW_ERR_USAGE, at(p, base, key), "must be %lld to %lld, not %lld",
		                  (long long)min, (long long)max, (long long)n);
	*out = n;
	return KW_OK;
}

kw_rc kwi_json_put(json_t *o, const char *k, json_t *v)
{
	return json_object_set_new(o, k, v) == 0 ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kwi_json_append(json_t *a, json_t *v)
{
	return json_array_append_new(a, v) == 0 ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

/* Names of backends and certificates: what backend add and cert create accept. */
static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > NAME_LEN_MAX || !isalnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return 0;
	return 1;
}

/* ---- the sections ---- */

static kw_rc check_key(const json_t *in, kwi_policy *p)
{
	static const char *const fields[] = {"type", "backend", "reuse_key", "revocable", NULL};
	const json_t *t, *b, *r, *rv;
	KW_GUARD(in ? check_type(in, JSON_OBJECT, "key") : KW_OK);
	KW_GUARD(known_fields(in, "key", fields));
	KW_GUARD(member(in, "key", "type", JSON_STRING, &t));
	KW_GUARD(member(in, "key", "backend", JSON_STRING, &b));
	KW_GUARD(member(in, "key", "reuse_key", JSON_TRUE, &r));
	/* keys a purge can revoke for good (a TPM key bound to an NV counter) */
	KW_GUARD(member(in, "key", "revocable", JSON_TRUE, &rv));
	const char *name = t ? json_string_value(t) : "ec-p256";
	p->key.type = kw_key_type_from_name(name);
	if (p->key.type == 0)
		return field_fail(KW_ERR_USAGE, "key.type", "unknown key type '%s' (use %s)", name,
		                  KEY_TYPES);
	if (b && !name_ok(json_string_value(b)))
		return field_fail(KW_ERR_USAGE, "key.backend",
		                  "bad backend name '%s' (letters, digits, '.', '_', '-')",
		                  json_string_value(b));
	p->key.reuse_key = json_is_true(r);
	p->key.revocable = json_is_true(rv);
	return b ? kwi_policy_strdup(json_string_value(b), &p->key.backend) : KW_OK;
}

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

/* Without SANs, a CN that is a host name or an address becomes the one SAN:
 * clients ignore the CN. */
static kw_rc sans_from_cn(const X509_NAME *name, kwi_strings *sans)
{
	char *cn = first_cn(name);
	if (cn == NULL)
		return KW_OK;
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(cn);
	char buf[300] = "";
	if (ip != NULL)
		snprintf(buf, sizeof(buf), "IP:%s", cn);
	else if (kwi_dns_name_valid(cn))
		snprintf(buf, sizeof(buf), "DNS:%s", cn);
	ASN1_OCTET_STRING_free(ip);
	free(cn);
	return buf[0] ? kwi_strings_add(sans, buf) : KW_OK;
}

/* Appends s to out unless it is there already (string_list calls that twice). */
static kw_rc add_once(kwi_strings *out, const char *s)
{
	return kwi_strings_has(out, s) ? KW_OK : kwi_strings_add(out, s);
}

/* Checks a list of strings; *item(value, path, out) checks and appends one. */
static kw_rc
string_list(const json_t *in, const char *path, int nonempty, kwi_strings *out,
            kw_rc (*item)(const char *v, const char *path, kwi_strings *out, void *arg), void *arg)
{
	char p[PATH_LEN];
	size_t i;
	json_t *v;
	if (in == NULL)
		return KW_OK;
	if (nonempty && json_array_size(in) == 0)
		return field_fail(KW_ERR_USAGE, path, "must list at least one");
	if (json_array_size(in) > LIST_MAX)
		return field_fail(KW_ERR_USAGE, path, "at most %d entries, not %zu", LIST_MAX,
		                  json_array_size(in));
	json_array_foreach(in, i, v)
	{
		KW_GUARD(check_type(v, JSON_STRING, at_index(p, path, i)));
		const char *s = json_string_value(v);
		KW_GUARD(item(s, p, out, arg));
		if (out->n != i + 1)
			return field_fail(KW_ERR_USAGE, p, "'%s' is listed twice", s);
	}
	return KW_OK;
}

static kw_rc san_item(const char *v, const char *path, kwi_strings *out, void *arg)
{
	GENERAL_NAMES *gens = arg;
	if (kwi_san_parse(v, gens) != KW_OK)
		return rewrap(path);
	return add_once(out, v);
}

static kw_rc eku_item(const char *v, const char *path, kwi_strings *out, void *arg)
{
	(void)arg;
	const char *name = NULL;
	for (size_t i = 0; i < sizeof(ekus) / sizeof(ekus[0]) && !name; i++)
		if (strcmp(v, ekus[i].name) == 0 || strcmp(v, ekus[i].oid) == 0)
			name = ekus[i].name;
	if (name == NULL) {
		int dotted = isdigit((unsigned char)v[0]) && strchr(v, '.') != NULL;
		for (const char *c = v; *c && dotted; c++)
			dotted = isdigit((unsigned char)*c) || (*c == '.' && c[1] && c[1] != '.');
		ASN1_OBJECT *o = dotted ? OBJ_txt2obj(v, 1) : NULL;
		ASN1_OBJECT_free(o);
		ERR_clear_error(); /* stale errors would mislead the next OpenSSL caller */
		if (o == NULL)
			return field_fail(KW_ERR_USAGE, path,
			                  "unknown extended key usage '%s' (use " EKU_NAMES
			                  " or a dotted OID)",
			                  v);
		name = v;
	}
	return add_once(out, name);
}

static kw_rc ku_item(const char *v, const char *path, kwi_strings *out, void *arg)
{
	const kw_key_type *type = arg;
	size_t i = 0;
	while (key_usages[i] && strcmp(key_usages[i], v) != 0)
		i++;
	if (key_usages[i] == NULL)
		return field_fail(KW_ERR_USAGE, path,
		                  "unknown key usage '%s' (use digitalSignature, nonRepudiation, "
		                  "keyEncipherment, dataEncipherment, keyAgreement, keyCertSign or "
		                  "cRLSign)",
		                  v);
	if (strcmp(v, "keyEncipherment") == 0 && !kw_key_type_is_rsa(*type))
		return field_fail(KW_ERR_USAGE, path, "keyEncipherment needs an RSA key, not %s",
		                  kw_key_type_name(*type));
	return add_once(out, v);
}

static kw_rc check_subject(const json_t *subject, const json_t *sans_in, kwi_policy *p)
{
	X509_NAME *name = NULL;
	if (subject == NULL)
		return KW_OK;
	if (kwi_dn_parse(json_string_value(subject), &name) != KW_OK)
		return rewrap("x509.subject");
	kw_rc rc = kwi_policy_strdup(json_string_value(subject), &p->x509.subject);
	if (rc == KW_OK && sans_in == NULL)
		rc = sans_from_cn(name, &p->x509.sans);
	X509_NAME_free(name);
	return rc;
}

/* x509.ca: {} or {"pathlen": N}: a CA certificate (basicConstraints CA:TRUE). */
static kw_rc check_ca(const json_t *in, kwi_policy *p)
{
	static const char *const fields[] = {"pathlen", NULL};
	json_int_t pathlen = -1;
	if (in == NULL)
		return KW_OK;
	KW_GUARD(check_type(in, JSON_OBJECT, "x509.ca"));
	KW_GUARD(known_fields(in, "x509.ca", fields));
	KW_GUARD(int_member(in, "x509.ca", "pathlen", 0, PATHLEN_MAX, &pathlen));
	p->x509.is_ca = true;
	p->x509.pathlen = (int)pathlen;
	return KW_OK;
}

/* What a certificate carries unless the policy says otherwise: a CA's no
 * EKU, keyCertSign | cRLSign | digitalSignature, ten years; any other's
 * serverAuth, digitalSignature (and keyEncipherment for RSA). */
static kw_rc x509_defaults(const json_t *eku, const json_t *ku, const json_t *ca, int days_given,
                           kwi_policy *p)
{
	static const char *const ca_usages[] = {"keyCertSign", "cRLSign", "digitalSignature"};
	if (ca && !days_given)
		p->x509.validity_days = CA_DAYS_DEFAULT;
	for (size_t i = 0; ca && ku == NULL && i < sizeof(ca_usages) / sizeof(ca_usages[0]); i++)
		KW_GUARD(kwi_strings_add(&p->x509.key_usage, ca_usages[i]));
	if (ca)
		return KW_OK;
	if (eku == NULL)
		KW_GUARD(kwi_strings_add(&p->x509.ekus, "serverAuth"));
	if (ku == NULL)
		KW_GUARD(kwi_strings_add(&p->x509.key_usage, "digitalSignature"));
	if (ku == NULL && kw_key_type_is_rsa(p->key.type))
		KW_GUARD(kwi_strings_add(&p->x509.key_usage, "keyEncipherment"));
	return KW_OK;
}

static kw_rc check_x509(const json_t *in, kwi_policy *p)
{
	static const char *const fields[] = {"subject",       "sans", "ekus", "key_usage",
	                                     "validity_days", "ca",   NULL};
	const json_t *subject, *sans, *eku, *ku, *ca;
	json_int_t days = DAYS_DEFAULT;
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	kw_rc rc = KW_OK;
	if (gens == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if ((rc = in ? check_type(in, JSON_OBJECT, "x509") : KW_OK) != KW_OK ||
	    (rc = known_fields(in, "x509", fields)) != KW_OK ||
	    (rc = member(in, "x509", "subject", JSON_STRING, &subject)) != KW_OK ||
	    (rc = member(in, "x509", "sans", JSON_ARRAY, &sans)) != KW_OK ||
	    (rc = member(in, "x509", "ekus", JSON_ARRAY, &eku)) != KW_OK ||
	    (rc = member(in, "x509", "key_usage", JSON_ARRAY, &ku)) != KW_OK ||
	    (rc = check_subject(subject, sans, p)) != KW_OK ||
	    (rc = string_list(sans, "x509.sans", 0, &p->x509.sans, san_item, gens)) != KW_OK ||
	    (rc = string_list(eku, "x509.ekus", 1, &p->x509.ekus, eku_item, NULL)) != KW_OK ||
	    (rc = string_list(ku, "x509.key_usage", 1, &p->x509.key_usage, ku_item,
	                      &p->key.type)) != KW_OK ||
	    (rc = int_member(in, "x509", "validity_days", 1, DAYS_MAX, &days)) != KW_OK ||
	    (rc = member(in, "x509", "ca", JSON_OBJECT, &ca)) != KW_OK ||
	    (rc = check_ca(ca, p)) != KW_OK)
		goto out;
	p->x509.validity_days = (int)days;
	p->x509.has_sans = subject || sans;
	rc = x509_defaults(eku, ku, ca, json_object_get(in, "validity_days") != NULL, p);
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

static kw_rc check_trigger(const json_t *t, const char *base, int days, kwi_trigger *out)
{
	static const char *const fields[] = {"lifetime_percentage", "days_before_expiry", NULL};
	char p[PATH_LEN];
	const json_t *pct, *dbe;
	KW_GUARD(check_type(t, JSON_OBJECT, base));
	KW_GUARD(known_fields(t, base, fields));
	KW_GUARD(member(t, base, "lifetime_percentage", JSON_INTEGER, &pct));
	KW_GUARD(member(t, base, "days_before_expiry", JSON_INTEGER, &dbe));
	if ((pct == NULL) == (dbe == NULL))
		return field_fail(KW_ERR_USAGE, base,
		                  "give exactly one of lifetime_percentage or days_before_expiry");
	json_int_t n = 0;
	if (pct) {
		KW_GUARD(int_member(t, base, "lifetime_percentage", 1, 99, &n));
		out->kind = KWI_TRIGGER_PERCENT;
		out->value = (int)n;
		return KW_OK;
	}
	n = json_integer_value(dbe);
	if (n >= 1 && n >= days)
		return field_fail(KW_ERR_USAGE, at(p, base, "days_before_expiry"),
		                  "must be less than x509.validity_days (%lld), not %lld",
		                  (long long)days, (long long)n);
	KW_GUARD(int_member(t, base, "days_before_expiry", 1, days - 1, &n));
	out->kind = KWI_TRIGGER_DAYS_BEFORE;
	out->value = (int)n;
	return KW_OK;
}

static kw_rc check_action(const json_t *a, const char *base, int days, int *renew_at, int index,
                          kwi_lifetime_action *out)
{
	static const char *const fields[] = {"trigger", "action", NULL};
	char p[PATH_LEN];
	const json_t *trigger, *action;
	KW_GUARD(check_type(a, JSON_OBJECT, base));
	KW_GUARD(known_fields(a, base, fields));
	KW_GUARD(member(a, base, "trigger", JSON_OBJECT, &trigger));
	KW_GUARD(member(a, base, "action", JSON_STRING, &action));
	if (trigger == NULL)
		return field_fail(KW_ERR_USAGE, at(p, base, "trigger"), "required");
	if (action == NULL)
		return field_fail(KW_ERR_USAGE, at(p, base, "action"),
		                  "required (auto_renew or notify)");
	KW_GUARD(check_trigger(trigger, at(p, base, "trigger"), days, &out->trigger));
	const char *what = json_string_value(action);
	at(p, base, "action");
	if (strcmp(what, "auto_renew") == 0) {
		if (*renew_at >= 0)
			return field_fail(KW_ERR_USAGE, p,
			                  "only one auto_renew action is allowed "
			                  "(lifetime_actions[%d] is one)",
			                  *renew_at);
		*renew_at = index;
		out->action = KWI_ACTION_RENEW;
	} else if (strcmp(what, "notify") == 0)
		out->action = KWI_ACTION_NOTIFY;
	else
		return field_fail(KW_ERR_USAGE, p, "must be auto_renew or notify, not '%s'", what);
	return KW_OK;
}

static kw_rc check_actions(const json_t *in, kwi_policy *p)
{
	char path[PATH_LEN];
	size_t i;
	json_t *a;
	int renew_at = -1;
	KW_GUARD(in ? check_type(in, JSON_ARRAY, "lifetime_actions") : KW_OK);
	if (json_array_size(in) > LIST_MAX)
		return field_fail(KW_ERR_USAGE, "lifetime_actions", "at most %d actions, not %zu",
		                  LIST_MAX, json_array_size(in));
	if (json_array_size(in) &&
	    (p->actions = calloc(json_array_size(in), sizeof(*p->actions))) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	json_array_foreach(in, i, a)
	{
		KW_GUARD(check_action(a, at_index(path, "lifetime_actions", i),
		                      p->x509.validity_days, &renew_at, (int)i, &p->actions[i]));
		p->n_actions++;
	}
	return KW_OK;
}

/* issuer.http01: {"listen": "ADDR:PORT"} or {"webroot": "/DIR"}. */
static kw_rc check_http01(const json_t *in, kwi_policy *p)
{
	static const char *const fields[] = {"listen", "webroot", NULL};
	const json_t *l, *w;
	if (in == NULL)
		return KW_OK;
	KW_GUARD(check_type(in, JSON_OBJECT, "issuer.http01"));
	KW_GUARD(known_fields(in, "issuer.http01", fields));
	if (p->issuer.kind != KW_ISSUER_ACME)
		return field_fail(KW_ERR_USAGE, "issuer.http01",
		                  "only an acme:NAME issuer answers "
		                  "http-01 challenges");
	KW_GUARD(member(in, "issuer.http01", "listen", JSON_STRING, &l));
	KW_GUARD(member(in, "issuer.http01", "webroot", JSON_STRING, &w));
	if (l == NULL && w == NULL)
		return field_fail(KW_ERR_USAGE, "issuer.http01", "needs listen or webroot");
	if (kwi_http01_check(json_string_value(l), json_string_value(w)) != KW_OK) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", kw_error_message());
		kw_error_clear();
		return field_fail(KW_ERR_USAGE, "issuer.http01", "%s", msg);
	}
	KW_GUARD(kwi_policy_strdup(json_string_value(l), &p->issuer.http01.listen));
	return kwi_policy_strdup(json_string_value(w), &p->issuer.http01.webroot);
}

static kw_rc check_issuer(const json_t *in, kwi_policy *p)
{
	static const char *const fields[] = {"name", "http01", NULL};
	const json_t *n;
	KW_GUARD(in ? check_type(in, JSON_OBJECT, "issuer") : KW_OK);
	KW_GUARD(known_fields(in, "issuer", fields));
	KW_GUARD(member(in, "issuer", "name", JSON_STRING, &n));
	const char *name = n ? json_string_value(n) : "self";
	if (kwi_issuer_parse(name, NULL) == KW_ISSUER_INVALID)
		return field_fail(KW_ERR_USAGE, "issuer.name",
		                  "must be self, unknown, ca:NAME or acme:NAME, not '%s'", name);
	KW_GUARD(kwi_policy_issuer_set(p, name));
	return check_http01(json_object_get(in, "http01"), p);
}

/* A user or group: a name as useradd takes it, or a number. */
static int owner_ok(const char *s)
{
	size_t n = strlen(s), digits = strspn(s, "0123456789");
	if (n == 0 || n > 32)
		return 0;
	if (digits == n)
		return 1;
	if (!isalpha((unsigned char)s[0]) && s[0] != '_')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]) &&
		    !(s[i] == '$' && i == n - 1))
			return 0;
	return 1;
}

static kw_rc check_mode(const char *m, kwi_deploy_conf *c)
{
	size_t n = strlen(m);
	char norm[8];
	if (!(n == 3 || (n == 4 && m[0] == '0')) || strspn(m, "01234567") != n)
		return field_fail(KW_ERR_USAGE, "mode",
		                  "must be an octal mode such as \"0640\", not \"%s\"", m);
	long mode = strtol(m, NULL, 8);
	if (mode & 02)
		return field_fail(KW_ERR_USAGE, "mode",
		                  "\"%s\" lets anyone rewrite the deployed files", m);
	snprintf(norm, sizeof(norm), "0%03lo", mode);
	return kwi_policy_strdup(norm, &c->mode);
}

static kw_rc check_hooks(const json_t *in, kwi_deploy_conf *c)
{
	static const char *const fields[] = {"pre", "deploy", "post", NULL}; /* kwi_hook_names */
	char path[PATH_LEN];
	const json_t *v;
	KW_GUARD(check_type(in, JSON_OBJECT, "hooks"));
	KW_GUARD(known_fields(in, "hooks", fields));
	for (size_t i = 0; i < KWI_HOOKS; i++) {
		KW_GUARD(member(in, "hooks", kwi_hook_names[i], JSON_STRING, &v));
		size_t n = v ? strlen(json_string_value(v)) : 0;
		if (v && (n == 0 || n > HOOK_LEN_MAX))
			return field_fail(KW_ERR_USAGE, at(path, "hooks", kwi_hook_names[i]),
			                  "must be a shell command of 1 to %d characters",
			                  HOOK_LEN_MAX);
		if (v)
			KW_GUARD(kwi_policy_strdup(json_string_value(v), &c->hook[i]));
	}
	return KW_OK;
}

static kw_rc check_deploy_file(const json_t *in, size_t i, kwi_deploy_conf *c)
{
	const json_t *v;
	const char *key = kwi_deploy_file_names[i];
	KW_GUARD(member(in, "", key, JSON_STRING, &v));
	if (v == NULL)
		return KW_OK;
	const char *file = json_string_value(v);
	size_t n = strlen(file);
	if (file[0] != '/' || n < 2 || file[n - 1] == '/' || n >= 4096)
		return field_fail(KW_ERR_USAGE, key, "must be an absolute file path, not '%s'",
		                  file);
	for (size_t j = 0; j < i; j++)
		if (c->file[j] && strcmp(c->file[j], file) == 0)
			return field_fail(KW_ERR_USAGE, key, "'%s' is also %s", file,
			                  kwi_deploy_file_names[j]);
	return kwi_policy_strdup(file, &c->file[i]);
}

static kw_rc check_owner(const json_t *in, const char *key, const char *what, char **out)
{
	const json_t *v;
	KW_GUARD(member(in, "", key, JSON_STRING, &v));
	if (v && !owner_ok(json_string_value(v)))
		return field_fail(KW_ERR_USAGE, key, "must be a %s name or number, not '%s'", what,
		                  json_string_value(v));
	return v ? kwi_policy_strdup(json_string_value(v), out) : KW_OK;
}

static kw_rc check_target_conf(const json_t *in, kwi_deploy_conf *c)
{
	static const char *const fields[] = {"cert",  "chain", "fullchain", "key_ref", "owner",
	                                     "group", "mode",  "hooks",     NULL};
	const json_t *v;
	KW_GUARD(check_type(in, JSON_OBJECT, "deploy target"));
	KW_GUARD(known_fields(in, "", fields));
	for (size_t i = 0; i < KWI_DEPLOY_FILES; i++)
		KW_GUARD(check_deploy_file(in, i, c));
	KW_GUARD(check_owner(in, "owner", "user", &c->owner));
	KW_GUARD(check_owner(in, "group", "group", &c->group));
	KW_GUARD(member(in, "", "mode", JSON_STRING, &v));
	if (v)
		KW_GUARD(check_mode(json_string_value(v), c));
	v = json_object_get(in, "hooks");
	KW_GUARD(v ? check_hooks(v, c) : KW_OK);
	for (size_t i = 0; i < KWI_DEPLOY_FILES; i++)
		if (c->file[i])
			return KW_OK;
	for (size_t i = 0; i < KWI_HOOKS; i++)
		if (c->hook[i])
			return KW_OK;
	return KW_FAIL(KW_ERR_USAGE, "a deploy target needs a file (cert, chain, fullchain, "
	                             "key_ref) or a hook (pre, deploy, post)");
}

/* The normalised document: files, owner, group, mode, then hooks. */
static kw_rc target_json(const kwi_deploy_conf *c, json_t **out)
{
	json_t *d = json_object(), *hooks = json_object();
	int ok = d && hooks;
	for (size_t i = 0; ok && i < KWI_DEPLOY_FILES; i++)
		if (c->file[i])
			ok = json_object_set_new(d, kwi_deploy_file_names[i],
			                         json_string(c->file[i])) == 0;
	if (ok && c->owner)
		ok = json_object_set_new(d, "owner", json_string(c->owner)) == 0;
	if (ok && c->group)
		ok = json_object_set_new(d, "group", json_string(c->group)) == 0;
	if (ok && c->mode)
		ok = json_object_set_new(d, "mode", json_string(c->mode)) == 0;
	for (size_t i = 0; ok && i < KWI_HOOKS; i++)
		if (c->hook[i])
			ok = json_object_set_new(hooks, kwi_hook_names[i],
			                         json_string(c->hook[i])) == 0;
	if (ok && json_object_size(hooks))
		ok = json_object_set(d, "hooks", hooks) == 0;
	json_decref(hooks);
	if (!ok) {
		json_decref(d);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	*out = d;
	return KW_OK;
}

/* see policy/model.h */
kw_rc kwi_deploy_conf_check(const json_t *in, json_t **out, kwi_deploy_conf *conf)
{
	kwi_deploy_conf c = {0};
	*out = NULL;
	kw_rc rc = check_target_conf(in, &c);
	if (rc == KW_OK)
		rc = target_json(&c, out);
	if (rc == KW_OK && conf)
		*conf = c;
	else
		kwi_deploy_conf_clear(&c);
	return rc;
}

kw_rc kwi_deploy_target_name_check(const char *name)
{
	return kwi_name_check("deploy target", name, TARGET_NAME_MAX);
}

/* A policy names a deploy target and nothing else: the files and commands
 * are the host's (keyward deploy-target add), never the policy writer's.
 * An empty deploy is left out of the document. */
static kw_rc check_deploy(const json_t *in, kwi_policy *p)
{
	static const char *const inline_fields[] = {"cert",  "chain", "fullchain", "key_ref",
	                                            "owner", "group", "mode",      "hooks"};
	const json_t *v;
	KW_GUARD(check_type(in, JSON_OBJECT, "deploy"));
	for (size_t i = 0; i < sizeof(inline_fields) / sizeof(inline_fields[0]); i++)
		if (json_object_get(in, inline_fields[i]))
			return field_fail(
			    KW_ERR_USAGE, "deploy",
			    "a policy cannot set %s: files and hooks belong to a "
			    "deploy target defined on the host (keyward deploy-target "
			    "add NAME ...); reference it as \"deploy\": {\"target\": "
			    "\"NAME\"}",
			    inline_fields[i]);
	static const char *const fields[] = {"target", NULL};
	KW_GUARD(known_fields(in, "deploy", fields));
	KW_GUARD(member(in, "deploy", "target", JSON_STRING, &v));
	if (v == NULL)
		return KW_OK;
	if (kwi_deploy_target_name_check(json_string_value(v)) != KW_OK)
		return rewrap("deploy.target");
	return kwi_policy_strdup(json_string_value(v), &p->deploy.target);
}

/* ---- the document ---- */

static kw_rc check(const json_t *in, kwi_policy *p)
{
	static const char *const fields[] = {
	    "key", "x509", "lifetime_actions", "issuer", "deploy", "history_limit", NULL};
	json_int_t history = HISTORY_DEFAULT;
	KW_GUARD(check_type(in, JSON_OBJECT, "policy"));
	KW_GUARD(known_fields(in, "", fields));
	KW_GUARD(check_key(json_object_get(in, "key"), p));
	KW_GUARD(check_x509(json_object_get(in, "x509"), p));
	KW_GUARD(check_actions(json_object_get(in, "lifetime_actions"), p));
	KW_GUARD(check_issuer(json_object_get(in, "issuer"), p));
	const json_t *deploy = json_object_get(in, "deploy");
	if (deploy)
		KW_GUARD(check_deploy(deploy, p));
	KW_GUARD(int_member(in, "", "history_limit", 1, HISTORY_MAX, &history));
	p->history_limit = (int)history;
	return KW_OK;
}

/* see policy/model.h */
kw_rc kwi_policy_check(const json_t *in, kwi_policy **out)
{
	*out = kwi_policy_new();
	if (*out == NULL)
		return KW_ERR_NOMEM;
	kw_rc rc = check(in, *out);
	if (rc != KW_OK) {
		kwi_policy_free(*out);
		*out = NULL;
	}
	return rc;
}

/* see internal.h */
kw_rc kwi_policy_validate(const json_t *in, json_t **out)
{
	kwi_policy *p = NULL;
	*out = NULL;
	kw_rc rc = kwi_policy_check(in, &p);
	if (rc == KW_OK)
		rc = kwi_policy_to_json(p, out);
	kwi_policy_free(p);
	return rc;
}

json_t *kw_policy_default(void)
{
	json_t *empty = json_object(), *p = NULL;
	if (empty && kwi_policy_validate(empty, &p) != KW_OK)
		p = NULL;
	json_decref(empty);
	return p;
}

kw_rc kw_policy_parse(const char *text, json_t **out)
{
	json_error_t e;
	kw_error_clear();
	*out = NULL;
	if (text == NULL)
		return KW_FAIL(KW_ERR_USAGE, "no policy text");
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	if (j == NULL)
		return KW_FAIL(KW_ERR_PARSE, "policy is not valid JSON: line %d, column %d: %s",
		               e.line, e.column, e.text);
	kw_rc rc = kwi_policy_validate(j, out);
	json_decref(j);
	return rc;
}

/* see policy/model.h */
kw_rc kwi_policy_require_complete(const kwi_policy *p)
{
	if (p->x509.subject == NULL)
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_SUBJECT,
		                    "x509.subject: required (a DN such as CN=web01)");
	if (p->key.backend == NULL)
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_BACKEND,
		                    "key.backend: required (the backend new keys are made in)");
	return KW_OK;
}

kw_rc kw_policy_validate(const json_t *in, json_t **out)
{
	kw_error_clear();
	return kwi_policy_validate(in, out);
}

/* An integer trigger value as the model holds it (beyond an int, the time
 * is clamped to the validity anyway). */
static int trigger_value(const json_t *v)
{
	json_int_t n = json_integer_value(v);
	return n < INT_MIN ? INT_MIN : n > INT_MAX ? INT_MAX : (int)n;
}

/* The edge of the renewal time. Any document, validated or not, is read the
 * way renewals always read one: its auto_renew actions, each trigger by the
 * first of its two integers, none of them: at the default (2/3). */
time_t kw_policy_renew_at(const json_t *policy, time_t not_before, time_t not_after)
{
	const json_t *list = json_object_get(policy, "lifetime_actions"), *a;
	size_t i, n = json_array_size(list);
	kwi_policy p = {.actions = n ? calloc(n, sizeof(*p.actions)) : NULL};
	json_array_foreach(list, i, a)
	{
		const char *what = json_string_value(json_object_get(a, "action"));
		const json_t *t = json_object_get(a, "trigger");
		const json_t *pct = json_object_get(t, "lifetime_percentage");
		const json_t *days = json_object_get(t, "days_before_expiry");
		if (p.actions == NULL || what == NULL || strcmp(what, "auto_renew") != 0)
			continue;
		kwi_lifetime_action *x = &p.actions[p.n_actions++];
		x->action = KWI_ACTION_RENEW;
		if (json_is_integer(pct))
			x->trigger = (kwi_trigger){KWI_TRIGGER_PERCENT, trigger_value(pct)};
		else if (json_is_integer(days))
			x->trigger = (kwi_trigger){KWI_TRIGGER_DAYS_BEFORE, trigger_value(days)};
	}
	time_t at = kwi_policy_renew_at(&p, not_before, not_after);
	free(p.actions);
	return at;
}
