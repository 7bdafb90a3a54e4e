/* see keyward/lifecycle.h: an Azure Key Vault certificate policy in keyward's words.
 *
 * Three spellings reach us: az's camelCase (keyProperties, x509CertificateProperties,
 * `az keyvault certificate get-default-policy`, `... show --query policy`), the SDK's
 * snake_case (key_properties, x509_certificate_properties) and the REST API's
 * (key_props, x509_props, issuer). Nulls, which az prints for everything unset,
 * count as absent. Whatever has no keyward meaning becomes a note, never a
 * silent loss. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include <keyward/lifecycle.h>

#define PATH_LEN 160

/* The spellings of each field, camelCase first (notes use it when none is present). */
static const char *const n_key_props[] = {"keyProperties", "key_properties", "key_props", NULL};
static const char *const n_x509_props[] = {"x509CertificateProperties",
                                           "x509_certificate_properties", "x509_props", NULL};
static const char *const n_actions[] = {"lifetimeActions", "lifetime_actions", NULL};
static const char *const n_issuer[] = {"issuerParameters", "issuer_parameters", "issuer", NULL};
static const char *const n_secret_props[] = {"secretProperties", "secret_properties",
                                             "secret_props", NULL};
static const char *const n_attributes[] = {"attributes", NULL};
static const char *const n_key_type[] = {"keyType", "key_type", "kty", NULL};
static const char *const n_key_size[] = {"keySize", "key_size", NULL};
static const char *const n_curve[] = {"curve", "crv", NULL};
static const char *const n_reuse_key[] = {"reuseKey", "reuse_key", NULL};
static const char *const n_exportable[] = {"exportable", NULL};
static const char *const n_subject[] = {"subject", NULL};
static const char *const n_sans[] = {"subjectAlternativeNames", "subject_alternative_names", "sans",
                                     NULL};
static const char *const n_dns_names[] = {"dnsNames", "dns_names", NULL};
static const char *const n_emails[] = {"emails", NULL};
static const char *const n_upns[] = {"upns", "user_principal_names", NULL};
static const char *const n_ekus[] = {"ekus", "enhanced_key_usage", NULL};
static const char *const n_key_usage[] = {"keyUsage", "key_usage", NULL};
static const char *const n_validity[] = {"validityInMonths", "validity_in_months",
                                         "validity_months", NULL};
static const char *const n_basic[] = {"basicConstraints", "basic_constraints", NULL};
static const char *const n_trigger[] = {"trigger", NULL};
static const char *const n_action[] = {"action", NULL};
static const char *const n_percentage[] = {"lifetimePercentage", "lifetime_percentage", NULL};
static const char *const n_days_before[] = {"daysBeforeExpiry", "days_before_expiry", NULL};
static const char *const n_action_type[] = {"actionType", "action_type", NULL};
static const char *const n_name[] = {"name", NULL};
static const char *const n_cert_type[] = {"certificateType", "certificate_type", "cty", NULL};
static const char *const n_transparency[] = {"certificateTransparency", "certificate_transparency",
                                             "cert_transparency", NULL};
static const char *const n_content_type[] = {"contentType", "content_type", NULL};
static const char *const n_enabled[] = {"enabled", NULL};
/* metadata Key Vault keeps about a policy: nothing to carry over */
static const char *const n_metadata[] = {"id",
                                         "created",
                                         "updated",
                                         "notBefore",
                                         "nbf",
                                         "not_before",
                                         "expires",
                                         "exp",
                                         "recoveryLevel",
                                         "recovery_level",
                                         "recoverableDays",
                                         "recoverable_days",
                                         NULL};

static void at(char buf[PATH_LEN], const char *base, const char *key)
{
	if (snprintf(buf, PATH_LEN, "%s%s%s", base, base[0] ? "." : "", key) >= PATH_LEN)
		buf[PATH_LEN - 2] = '~';
}

static int spelled(const char *k, const char *const names[])
{
	for (size_t i = 0; names[i]; i++)
		if (strcmp(k, names[i]) == 0)
			return 1;
	return 0;
}

/* The first spelling of a field that o has; a null counts as absent. path
 * receives the field's path as the input spells it. */
static const json_t *field(const json_t *o, const char *base, const char *const names[],
                           char path[PATH_LEN])
{
	for (size_t i = 0; names[i]; i++) {
		const json_t *v = json_object_get(o, names[i]);
		if (v) {
			at(path, base, names[i]);
			return json_is_null(v) ? NULL : v;
		}
	}
	at(path, base, names[0]);
	return NULL;
}

typedef struct {
	json_t *notes; /* what could not be carried over */
	kw_rc rc;      /* the first failure (out of memory) */
} importer;

static void note(importer *im, const char *path, const json_t *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Adds "PATH=VALUE: reason" (value NULL: "PATH: reason") to the notes. */
static void note(importer *im, const char *path, const json_t *value, const char *fmt, ...)
{
	char reason[512], *text = NULL, *dumped = NULL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (json_is_string(value))
		dumped = strdup(json_string_value(value));
	else if (value)
		dumped = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
	int n = value == NULL ? asprintf(&text, "%s: %s", path, reason)
	        : dumped      ? asprintf(&text, "%s=%s: %s", path, dumped, reason)
	                      : -1;
	if (n < 0 || json_array_append_new(im->notes, json_string(text)) != 0)
		im->rc = im->rc ? im->rc : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	free(dumped);
	free(text);
}

/* Notes every member of o that none of the groups spells. */
static void unknown_fields(importer *im, const json_t *o, const char *base,
                           const char *const *const groups[])
{
	const char *k;
	json_t *v;
	char path[PATH_LEN];
	json_object_foreach((json_t *)o, k, v)
	{
		int known = 0;
		for (size_t g = 0; groups[g] && !known; g++)
			known = spelled(k, groups[g]);
		if (!known && !json_is_null(v)) {
			at(path, base, k);
			note(im, path, v, "not a Key Vault policy field keyward knows");
		}
	}
}

static int put(importer *im, json_t *o, const char *k, json_t *v)
{
	if (json_object_set_new(o, k, v) == 0)
		return 1;
	im->rc = im->rc ? im->rc : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	return 0;
}

static void map_rsa(importer *im, const json_t *props, const char *base, json_t *key)
{
	char path[PATH_LEN], type[16];
	const json_t *size = field(props, base, n_key_size, path);
	json_int_t bits = json_is_integer(size) ? json_integer_value(size) : 2048;
	json_int_t use = bits <= 2048 ? 2048 : bits <= 3072 ? 3072 : 4096;
	if (size && (!json_is_integer(size) || bits != use))
		note(im, path, size,
		     "keyward has RSA keys of 2048, 3072 and 4096 bits (using %lld)",
		     (long long)use);
	if (field(props, base, n_curve, path))
		note(im, path, field(props, base, n_curve, path), "not used by RSA keys");
	snprintf(type, sizeof(type), "rsa-%lld", (long long)use);
	put(im, key, "type", json_string(type));
}

static void map_ec(importer *im, const json_t *props, const char *base, json_t *key)
{
	char path[PATH_LEN];
	const json_t *curve = field(props, base, n_curve, path);
	const char *c = json_is_string(curve) ? json_string_value(curve) : "P-256";
	const char *type = strcasecmp(c, "P-384") == 0 ? "ec-p384" : "ec-p256";
	if (strcasecmp(c, "P-521") == 0) {
		type = "ec-p384";
		note(im, path, curve, "keyward has no P-521 keys (using ec-p384)");
	} else if (curve && strcasecmp(c, "P-256") != 0 && strcasecmp(c, "P-384") != 0)
		note(im, path, curve, "keyward has P-256 and P-384 curves only (using ec-p256)");
	if (field(props, base, n_key_size, path))
		note(im, path, field(props, base, n_key_size, path), "not used by EC keys");
	put(im, key, "type", json_string(type));
}

static void map_key(importer *im, const json_t *props, const char *base, json_t *key)
{
	char path[PATH_LEN];
	static const char *const *const groups[] = {n_key_type,  n_key_size,   n_curve,
	                                            n_reuse_key, n_exportable, NULL};
	unknown_fields(im, props, base, groups);
	const json_t *kty = field(props, base, n_key_type, path);
	/* Key Vault's default key is RSA 2048 */
	const char *t = json_is_string(kty) ? json_string_value(kty) : "RSA";
	if (strcasecmp(t, "EC") == 0 || strcasecmp(t, "EC-HSM") == 0)
		map_ec(im, props, base, key);
	else {
		if (strcasecmp(t, "RSA") != 0 && strcasecmp(t, "RSA-HSM") != 0)
			note(im, path, kty, "not a certificate key type keyward has (using RSA)");
		map_rsa(im, props, base, key);
	}
	const json_t *reuse = field(props, base, n_reuse_key, path);
	if (json_is_boolean(reuse))
		put(im, key, "reuse_key", json_boolean(json_is_true(reuse)));
	else if (reuse)
		note(im, path, reuse, "not true or false");
	const json_t *exp = field(props, base, n_exportable, path);
	if (json_is_true(exp))
		note(im, path, exp, "keyward keys never leave the device");
}

static void map_sans(importer *im, const json_t *sans, const char *base, json_t *x509)
{
	char path[PATH_LEN];
	static const char *const *const groups[] = {n_dns_names, n_emails, n_upns, NULL};
	unknown_fields(im, sans, base, groups);
	const json_t *dns = field(sans, base, n_dns_names, path), *v;
	size_t i;
	json_t *out = json_array();
	if (!put(im, x509, "sans", out))
		return;
	json_array_foreach(dns, i, v)
	{
		char *san = NULL;
		if (!json_is_string(v))
			note(im, path, v, "not a DNS name");
		else if (asprintf(&san, "DNS:%s", json_string_value(v)) < 0 ||
		         json_array_append_new(out, json_string(san)) != 0)
			im->rc = im->rc ? im->rc : KW_FAIL(KW_ERR_NOMEM, "out of memory");
		free(san);
	}
	if ((v = field(sans, base, n_emails, path)) && json_array_size(v) > 0)
		note(im, path, v, "keyward certificates name DNS names and IP addresses only");
	if ((v = field(sans, base, n_upns, path)) && json_array_size(v) > 0)
		note(im, path, v, "keyward certificates name DNS names and IP addresses only");
}

static void map_key_usage(importer *im, const json_t *ku, const char *path, int rsa, json_t *x509)
{
	static const char *const names[] = {
	    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
	    "keyAgreement",     "keyCertSign",    "cRLSign",         NULL};
	size_t i;
	const json_t *v;
	json_t *out = json_array();
	json_array_foreach(ku, i, v)
	{
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		size_t n = 0;
		while (names[n] && strcasecmp(names[n], s) != 0)
			n++;
		if (names[n] == NULL)
			note(im, path, v, "a key usage keyward does not set");
		else if (strcmp(names[n], "keyEncipherment") == 0 && !rsa)
			note(im, path, v, "EC keys do no key encipherment (left out)");
		else
			json_array_append_new(out, json_string(names[n]));
	}
	if (json_array_size(out) > 0)
		put(im, x509, "key_usage", out);
	else
		json_decref(out);
}

static void map_x509(importer *im, const json_t *props, const char *base, int rsa, json_t *x509)
{
	char path[PATH_LEN];
	static const char *const *const groups[] = {n_subject,  n_sans,  n_ekus, n_key_usage,
	                                            n_validity, n_basic, NULL};
	unknown_fields(im, props, base, groups);
	const json_t *v;
	if ((v = field(props, base, n_subject, path)))
		put(im, x509, "subject", json_incref((json_t *)v));
	if ((v = field(props, base, n_sans, path)))
		map_sans(im, v, path, x509);
	/* OIDs: keyward's validation names the ones it knows (serverAuth...) */
	if ((v = field(props, base, n_ekus, path)) && json_array_size(v) > 0)
		put(im, x509, "ekus", json_deep_copy(v));
	if ((v = field(props, base, n_key_usage, path)))
		map_key_usage(im, v, path, rsa, x509);
	if ((v = field(props, base, n_validity, path))) {
		json_int_t months = json_integer_value(v);
		if (!json_is_integer(v) || months < 1)
			note(im, path, v, "not a number of months (using keyward's default)");
		else
			put(im, x509, "validity_days", json_integer((months * 365 + 6) / 12));
	}
	const json_t *ca = json_object_get(field(props, base, n_basic, path), "ca");
	if (json_is_true(ca))
		note(im, path, field(props, base, n_basic, path),
		     "keyward issues end-entity certificates from a policy");
}

/* One lifetime action; *renews is set when it is AutoRenew. */
static void map_action(importer *im, const json_t *a, const char *base, json_t *out, int *renews)
{
	char path[PATH_LEN], tpath[PATH_LEN], apath[PATH_LEN];
	static const char *const *const groups[] = {n_trigger, n_action, NULL};
	static const char *const *const tgroups[] = {n_percentage, n_days_before, NULL};
	unknown_fields(im, a, base, groups);
	const json_t *trigger = field(a, base, n_trigger, tpath);
	const json_t *action = field(a, base, n_action, apath);
	static const char *const *const agroups[] = {n_action_type, NULL};
	unknown_fields(im, trigger, tpath, tgroups);
	unknown_fields(im, action, apath, agroups);
	const json_t *type = field(action, apath, n_action_type, path);
	const char *t = json_is_string(type) ? json_string_value(type) : "";
	const char *what = strcasecmp(t, "AutoRenew") == 0       ? "auto_renew"
	                   : strcasecmp(t, "EmailContacts") == 0 ? "notify"
	                                                         : NULL;
	if (what == NULL) {
		note(im, path, type ? type : json_null(),
		     "not an action keyward has (AutoRenew, EmailContacts): left out");
		return;
	}
	const json_t *pct = field(trigger, tpath, n_percentage, path);
	const json_t *days = field(trigger, tpath, n_days_before, path);
	json_t *t_out = pct    ? json_pack("{s:O}", "lifetime_percentage", pct)
	                : days ? json_pack("{s:O}", "days_before_expiry", days)
	                       : NULL;
	if (t_out == NULL) {
		note(im, tpath, trigger ? trigger : json_null(), "no trigger: left out");
		return;
	}
	*renews |= strcmp(what, "auto_renew") == 0;
	if (json_array_append_new(out, json_pack("{s:o,s:s}", "trigger", t_out, "action", what)))
		im->rc = im->rc ? im->rc : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

static void map_actions(importer *im, const json_t *actions, const char *base, json_t *out)
{
	char path[PATH_LEN];
	size_t i;
	const json_t *a;
	int renews = 0;
	json_array_foreach(actions, i, a)
	{
		if (snprintf(path, sizeof(path), "%s[%zu]", base, i) >= (int)sizeof(path))
			path[sizeof(path) - 2] = '~';
		map_action(im, a, path, out, &renews);
	}
	if (json_array_size(out) > 0 && !renews)
		note(im, base, NULL,
		     "no AutoRenew action: keyward still renews at 2/3 of the lifetime");
}

static void map_issuer(importer *im, const json_t *issuer, const char *base, json_t *out)
{
	char path[PATH_LEN];
	static const char *const *const groups[] = {n_name, n_cert_type, n_transparency, NULL};
	unknown_fields(im, issuer, base, groups);
	const json_t *name = field(issuer, base, n_name, path), *v;
	const char *n = json_is_string(name) ? json_string_value(name) : "Self";
	const char *mapped = strcasecmp(n, "Self") == 0      ? "self"
	                     : strcasecmp(n, "Unknown") == 0 ? "unknown"
	                                                     : NULL;
	if (mapped == NULL) {
		note(im, path, name,
		     "a Key Vault certificate authority; keyward issues with self, unknown, "
		     "ca:NAME or acme:NAME (using self)");
		mapped = "self";
	}
	put(im, out, "name", json_string(mapped));
	if ((v = field(issuer, base, n_cert_type, path)))
		note(im, path, v, "a Key Vault issuer setting keyward has no use for");
	if ((v = field(issuer, base, n_transparency, path)) && json_is_true(v))
		note(im, path, v, "keyward does not log certificates for transparency");
}

static void map_others(importer *im, const json_t *kv)
{
	char path[PATH_LEN];
	const json_t *secret = field(kv, "", n_secret_props, path), *v;
	char base[PATH_LEN];
	snprintf(base, sizeof(base), "%s", path);
	static const char *const *const sgroups[] = {n_content_type, NULL};
	unknown_fields(im, secret, base, sgroups);
	if ((v = field(secret, base, n_content_type, path)))
		note(im, path, v,
		     "keyward keeps no secret: keys stay in the device, certificates export as "
		     "PEM");
	const json_t *attrs = field(kv, "", n_attributes, path);
	snprintf(base, sizeof(base), "%s", path);
	static const char *const *const agroups[] = {n_enabled, n_metadata, NULL};
	unknown_fields(im, attrs, base, agroups);
	if ((v = field(attrs, base, n_enabled, path)) && json_is_false(v))
		note(im, path, v, "use keyward cert set NAME --enabled false");
}

static kw_rc map(importer *im, const json_t *kv, json_t *p)
{
	char path[PATH_LEN], base[PATH_LEN];
	static const char *const *const groups[] = {
	    n_key_props,    n_x509_props, n_actions,  n_issuer,
	    n_secret_props, n_attributes, n_metadata, NULL};
	json_t *key = json_object(), *x509 = json_object(), *actions = json_array(),
	       *issuer = json_object();
	if (!put(im, p, "key", key) || !put(im, p, "x509", x509) ||
	    !put(im, p, "lifetime_actions", actions) || !put(im, p, "issuer", issuer))
		return im->rc;
	unknown_fields(im, kv, "", groups);
	const json_t *v = field(kv, "", n_key_props, base);
	map_key(im, v, base, key);
	const char *type = json_string_value(json_object_get(key, "type"));
	int rsa = type && strncmp(type, "rsa", 3) == 0;
	if ((v = field(kv, "", n_x509_props, base)))
		map_x509(im, v, base, rsa, x509);
	if ((v = field(kv, "", n_actions, path)))
		map_actions(im, v, path, actions);
	v = field(kv, "", n_issuer, base);
	map_issuer(im, v, base, issuer);
	map_others(im, kv);
	return im->rc;
}

/* Whether doc is a Key Vault policy: it has a section no keyward policy has
 * ("issuer" and "lifetime_actions" alone could be either). */
static int is_kv_policy(const json_t *doc)
{
	static const char *const *const sections[] = {n_key_props, n_x509_props, n_secret_props,
	                                              NULL};
	static const char *const others[] = {"lifetimeActions", "issuerParameters",
	                                     "issuer_parameters", NULL};
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)doc, k, v)
	{
		for (size_t i = 0; sections[i]; i++)
			if (spelled(k, sections[i]))
				return 1;
		if (spelled(k, others))
			return 1;
	}
	return 0;
}

/* az keyvault certificate show prints the policy inside the certificate. */
static const json_t *policy_of(const json_t *doc)
{
	const json_t *inner = json_object_get(doc, "policy");
	if (is_kv_policy(doc))
		return doc;
	return json_is_object(inner) && is_kv_policy(inner) ? inner : NULL;
}

kw_rc kw_policy_import_azure(const char *text, json_t **policy, json_t **unmapped)
{
	json_error_t e;
	importer im = {json_array(), KW_OK};
	json_t *p = json_object();
	kw_error_clear();
	*policy = NULL;
	*unmapped = NULL;
	json_t *doc = text ? json_loads(text, JSON_REJECT_DUPLICATES, &e) : NULL;
	const json_t *kv = json_is_object(doc) ? policy_of(doc) : NULL;
	kw_rc rc = KW_OK;
	if (im.notes == NULL || p == NULL)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	else if (text == NULL)
		rc = KW_FAIL(KW_ERR_USAGE, "no Key Vault policy text");
	else if (doc == NULL)
		rc = KW_FAIL(KW_ERR_PARSE,
		             "Key Vault policy is not valid JSON: line %d, column %d: %s", e.line,
		             e.column, e.text);
	else if (kv == NULL)
		rc = KW_FAIL(KW_ERR_USAGE,
		             "not a Key Vault certificate policy: it has none of keyProperties, "
		             "x509CertificateProperties, lifetimeActions, issuerParameters");
	else if ((rc = map(&im, kv, p)) == KW_OK && kwi_policy_validate(p, policy) != KW_OK) {
		char msg[768];
		snprintf(msg, sizeof(msg), "%s", kw_error_message());
		rc = kw_error_code();
		kw_error_clear();
		rc = KW_FAIL(rc, "the Key Vault policy makes no valid keyward policy: %s", msg);
	}
	if (rc == KW_OK) {
		*unmapped = im.notes;
		im.notes = NULL;
	}
	json_decref(im.notes);
	json_decref(p);
	json_decref(doc);
	return rc;
}
