/* see keyward/lifecycle.h and policy/model.h: the policy of a create
 * request, the X.509 template a policy makes, and the policy kept in the
 * store */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "lifecycle/lifecycle_internal.h"
#include "policy/model.h"
#include "store/store_certs.h"
#include <keyward/lifecycle.h>

#define DAYS_MAX  36500
#define KEY_TYPES "ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096"

/* ---- the create request ---- */

/* The flags are checked with their own words (--key, --days; the issuer by the policy check). */
static kw_rc check_request(const kw_cert_request *req)
{
	if (req->key_type && kw_key_type_from_name(req->key_type) == 0)
		return KW_FAIL(KW_ERR_USAGE, "unknown key type '%s' (use " KEY_TYPES ")",
		               req->key_type);
	if (req->days < 0 || req->days > DAYS_MAX)
		return KW_FAIL(KW_ERR_USAGE, "validity of %d days is out of range (1 to %d)",
		               req->days, DAYS_MAX);
	X509_NAME *name = NULL;
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	kw_rc rc = gens ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK && req->subject)
		rc = kwi_dn_parse(req->subject, &name);
	for (size_t i = 0; rc == KW_OK && i < req->n_sans; i++)
		rc = kwi_san_parse(req->sans[i], gens);
	X509_NAME_free(name);
	GENERAL_NAMES_free(gens);
	return rc;
}

/* The section key of p, made when missing; NULL when it is not an object
 * (validation names that). */
static json_t *section(json_t *p, const char *key)
{
	json_t *o = json_object_get(p, key);
	if (o == NULL && kwi_json_put(p, key, json_object()) == KW_OK)
		o = json_object_get(p, key);
	return json_is_object(o) ? o : NULL;
}

static kw_rc overlay(json_t *p, const kw_cert_request *req)
{
	json_t *key = section(p, "key"), *x509 = section(p, "x509"), *issuer = NULL;
	kw_rc rc = KW_OK;
	if (req->issuer)
		issuer = section(p, "issuer");
	if (key && req->key_type)
		rc = kwi_json_put(key, "type", json_string(req->key_type));
	if (rc == KW_OK && key && req->backend)
		rc = kwi_json_put(key, "backend", json_string(req->backend));
	if (rc == KW_OK && key && req->revocable)
		rc = kwi_json_put(key, "revocable", json_true());
	if (rc == KW_OK && x509 && req->subject)
		rc = kwi_json_put(x509, "subject", json_string(req->subject));
	if (rc == KW_OK && x509 && req->days)
		rc = kwi_json_put(x509, "validity_days", json_integer(req->days));
	if (rc == KW_OK && issuer)
		rc = kwi_json_put(issuer, "name", json_string(req->issuer));
	if (rc == KW_OK && x509 && req->ca) {
		json_t *ca = json_object();
		rc = kwi_json_put(x509, "ca", ca);
		if (rc == KW_OK && req->has_pathlen)
			rc = kwi_json_put(ca, "pathlen", json_integer(req->pathlen));
	}
	if (rc == KW_OK && x509 && req->n_sans) {
		json_t *sans = json_array();
		rc = kwi_json_put(x509, "sans", sans);
		for (size_t i = 0; rc == KW_OK && i < req->n_sans; i++)
			rc = kwi_json_append(sans, json_string(req->sans[i]));
	}
	return rc;
}

/* see policy/model.h: the flags go into the document, which is checked as a
 * whole (an error names the field a flag broke) */
kw_rc kwi_policy_merge(const json_t *base, const kw_cert_request *req, kwi_policy **out)
{
	*out = NULL;
	KW_GUARD(check_request(req));
	json_t *p = base ? json_deep_copy(base) : json_object();
	if (p == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = json_is_object(p) ? overlay(p, req) : KW_OK;
	if (rc == KW_OK)
		rc = kwi_policy_check(p, out);
	json_decref(p);
	if (rc == KW_OK && (rc = kwi_policy_require_complete(*out)) != KW_OK) {
		kwi_policy_free(*out);
		*out = NULL;
	}
	return rc;
}

kw_rc kwi_policy_from_request(const kw_cert_request *req, kwi_policy **out)
{
	return kwi_policy_merge(req->policy, req, out);
}

/* ---- the X.509 template ---- */

/* Joins a list with commas, after prefix. */
static char *join(const char *prefix, const kwi_strings *l)
{
	size_t n = strlen(prefix) + 1;
	for (size_t i = 0; i < l->n; i++)
		n += strlen(l->v[i]) + 1;
	char *s = calloc(1, n);
	if (s == NULL)
		return NULL;
	strcpy(s, prefix);
	for (size_t i = 0; i < l->n; i++) {
		if (i > 0)
			strcat(s, ",");
		strcat(s, l->v[i]);
	}
	return s;
}

kw_rc kwi_policy_template(const kwi_policy *p, time_t now, kwi_cert_template *t)
{
	kw_rc rc = KW_OK;
	X509_NAME *name = NULL;
	memset(t, 0, sizeof(*t));
	if (p->key.type == 0 || p->x509.validity_days <= 0 ||
	    (!p->x509.is_ca && p->x509.ekus.n == 0) || p->x509.key_usage.n == 0)
		return KW_FAIL(KW_ERR_STORE, "certificate policy in the store is incomplete");
	KW_GUARD(kwi_dn_parse(p->x509.subject, &name));
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	if (gens == NULL) {
		X509_NAME_free(name);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	t->subject = name;
	t->sans = gens;
	for (size_t i = 0; i < p->x509.sans.n; i++)
		if ((rc = kwi_san_parse(p->x509.sans.v[i], gens)) != KW_OK)
			goto out;
	t->is_rsa = kw_key_type_is_rsa(p->key.type);
	t->ca = p->x509.is_ca;
	t->pathlen = p->x509.pathlen;
	t->not_before = now;
	t->not_after = now + (time_t)p->x509.validity_days * 86400;
	t->key_usage = join("critical,", &p->x509.key_usage);
	t->ext_key_usage = join("", &p->x509.ekus);
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

/* ---- the policy in the store ---- */

/* see policy/model.h */
kw_rc kwi_policy_load(kw_store *s, const char *name, kwi_policy **out)
{
	kwi_cert_row c;
	int found = 0;
	*out = NULL;
	KW_GUARD(kwi_store_cert_get(s, name, KWI_LOAD_POLICY_DOC, &c, &found));
	kw_rc rc = KW_OK;
	if (!found || c.deleted)
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'",
		                  name ? name : "");
	else if (c.policy_doc == NULL)
		rc = KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable policy", name);
	if (rc == KW_OK && kwi_policy_check(c.policy_doc, out) != KW_OK) {
		char msg[768];
		snprintf(msg, sizeof(msg), "%s", kw_error_message());
		kw_error_clear();
		rc = KW_FAIL(KW_ERR_STORE,
		             "certificate '%s' has an invalid policy in the store: %s", name, msg);
	}
	kwi_cert_row_clear(&c);
	return rc;
}

kw_rc kw_policy_show(kw_store *s, const char *name, json_t **out)
{
	kwi_policy *p = NULL;
	kw_error_clear();
	*out = NULL;
	kw_rc rc = kwi_policy_load(s, name, &p);
	if (rc == KW_OK)
		rc = kwi_policy_to_json(p, out);
	kwi_policy_free(p);
	return rc;
}

static kw_rc backend_exists(kw_store *s, const char *name)
{
	int exists = 0;
	KW_GUARD(kwi_store_backend_exists(s, name, &exists));
	if (exists)
		return KW_OK;
	return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_BACKEND_LIST,
	                    "key.backend: unknown backend '%s'", name);
}

/* The top-level sections that differ, for the event. */
static json_t *changed_sections(const json_t *old, const json_t *new)
{
	json_t *list = json_array();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)new, k, v) if (!json_equal(v, json_object_get(old, k)))
	    json_array_append_new(list, json_string(k));
	json_object_foreach((json_t *)old, k, v) if (json_object_get(new, k) == NULL)
	    json_array_append_new(list, json_string(k));
	return list;
}

static kw_rc store_policy(kw_store *s, const char *name, const json_t *old, const kwi_policy *p,
                          const json_t *doc)
{
	time_t now;
	int changed = 0;
	KW_GUARD(kwi_now(&now));
	kw_rc rc = kwi_store_begin(s);
	if (rc != KW_OK)
		return rc;
	rc = kwi_store_cert_policy_set(s, name, p, now, &changed);
	if (rc == KW_OK && !changed)
		rc = KW_FAIL(KW_ERR_NOT_FOUND, "certificate '%s' vanished", name);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "policy.set", name, 0,
		                      json_pack("{s:o}", "changed", changed_sections(old, doc)));
	if (rc == KW_OK)
		return kwi_store_commit(s);
	kwi_store_rollback(s);
	return rc;
}

kw_rc kw_policy_set(kw_store *s, const char *name, const json_t *policy)
{
	kwi_policy *p = NULL, *old = NULL;
	json_t *doc = NULL, *old_doc = NULL;
	kw_error_clear();
	kw_rc rc = kwi_policy_check(policy, &p);
	if (rc == KW_OK)
		rc = kwi_policy_require_complete(p);
	if (rc == KW_OK)
		rc = kwi_policy_load(s, name, &old);
	if (rc == KW_OK)
		rc = backend_exists(s, p->key.backend);
	if (rc == KW_OK)
		rc = kwi_issuer_policy_check(s, p);
	if (rc == KW_OK)
		rc = kwi_deploy_target_policy_check(s, p);
	/* the sections that changed, as the documents say */
	if (rc == KW_OK && (rc = kwi_policy_to_json(p, &doc)) == KW_OK)
		rc = kwi_policy_to_json(old, &old_doc);
	if (rc == KW_OK && !json_equal(old_doc, doc))
		rc = store_policy(s, name, old_doc, p, doc);
	json_decref(doc);
	json_decref(old_doc);
	kwi_policy_free(p);
	kwi_policy_free(old);
	return rc;
}
