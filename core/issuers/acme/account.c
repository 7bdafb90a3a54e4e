/* ACME issuers: the account (key in a backend, URL) and its settings. */
#include <ctype.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include <keyward/issuer.h>

#include "issuers/acme/acme_issuer.h"
#include "lifecycle/notify_internal.h"
#include "policy/model.h"

#define ISSUER_NAME_MAX 64

kw_rc kwi_issuer_load(kw_store *s, const char *name, kwi_acme_issuer_row *out)
{
	int found = 0;
	KW_GUARD(kwi_store_acme_issuer_get(s, name, out, &found));
	if (!found)
		return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_ISSUER_LIST, "no ACME issuer '%s'",
		                    name);
	return KW_OK;
}

/* The EAB HMAC key: base64url in the pin source, raw bytes in guarded memory. */
static kw_rc eab_key(const char *source, kw_secret **out)
{
	kw_secret *text = NULL, *raw = NULL;
	size_t len = 0;
	KW_GUARD(kw_secret_from_source(source, &text));
	kw_rc rc = kw_secret_new(kw_secret_len(text), &raw);
	if (rc == KW_OK &&
	    sodium_base642bin((unsigned char *)kw_secret_data(raw), kw_secret_len(raw),
	                      (const char *)kw_secret_data(text), kw_secret_len(text), "\n\r ",
	                      &len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		rc = KW_FAIL(KW_ERR_PARSE, "the EAB key from %s is not base64url", source);
	if (rc == KW_OK && len < 16)
		rc = KW_FAIL(KW_ERR_PARSE, "the EAB key from %s is shorter than 16 bytes", source);
	kw_secret_free(text);
	if (rc != KW_OK) {
		kw_secret_free(raw);
		return rc;
	}
	kw_secret_truncate(raw, len);
	*out = raw;
	return KW_OK;
}

/* The settings kept with the issuer (no secret). */
static kw_rc spec_config(const kw_issuer_spec *sp, json_t **out)
{
	json_t *http01 = NULL;
	char bundle[4096];
	if (sp->directory == NULL || strncmp(sp->directory, "https://", 8) != 0)
		return KW_FAIL(KW_ERR_USAGE, "the ACME directory must be an https:// URL");
	if (sp->email && !kwi_email_valid(sp->email))
		return KW_FAIL(KW_ERR_USAGE, "'%s' is not an e-mail address", sp->email);
	if ((sp->eab_kid == NULL) != (sp->eab_key_source == NULL))
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_EAB,
		                    "an external account binding's key ID and key go together");
	if (sp->ca_bundle && (realpath(sp->ca_bundle, bundle) == NULL || access(bundle, R_OK)))
		return KW_FAIL(KW_ERR_IO, "CA bundle %s: cannot read it", sp->ca_bundle);
	KW_GUARD(kwi_http01_settings(sp->http01_listen, sp->http01_webroot, &http01));
	*out = json_pack("{s:s}", "directory", sp->directory);
	kw_rc rc = *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK && sp->email)
		rc = kwi_json_put(*out, "email", json_string(sp->email));
	if (rc == KW_OK && sp->ca_bundle)
		rc = kwi_json_put(*out, "ca_bundle", json_string(bundle));
	if (rc == KW_OK && sp->eab_kid)
		rc = kwi_json_put(*out, "eab_kid", json_string(sp->eab_kid));
	if (rc == KW_OK && sp->preferred_chain)
		rc = kwi_json_put(*out, "preferred_chain", json_string(sp->preferred_chain));
	if (rc == KW_OK && http01) {
		rc = kwi_json_put(*out, "http01", http01);
		http01 = NULL;
	}
	json_decref(http01);
	return rc;
}

static kw_rc exists(kw_store *s, const char *name)
{
	int taken = 0;
	KW_GUARD(kwi_store_acme_issuer_exists(s, name, &taken));
	if (taken)
		return KW_FAIL(KW_ERR_EXISTS, "issuer '%s' already exists", name);
	return KW_OK;
}

/* What the directory demands before a key is made for it. Registering
 * agrees to the CA's terms of service (as acme.sh does; --agree-tos says so
 * explicitly): the terms' URL is kept with the issuer and shown. */
static kw_rc terms(const kwi_acme_client *c, const kw_issuer_spec *sp, json_t *cfg)
{
	const json_t *meta = json_object_get(c->dir, "meta");
	const char *tos = json_string_value(json_object_get(meta, "termsOfService"));
	if (json_is_true(json_object_get(meta, "externalAccountRequired")) && !sp->eab_kid)
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_EAB,
		                    "the CA requires external account binding");
	return tos ? kwi_json_put(cfg, "terms_of_service", json_string(tos)) : KW_OK;
}

static kw_rc account_payload(kwi_acme_client *c, const kw_issuer_spec *sp, json_t **out)
{
	kw_secret *mac = NULL;
	json_t *eab = NULL;
	char mailto[320];
	*out = json_pack("{s:b}", "termsOfServiceAgreed", 1);
	kw_rc rc = *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK && sp->email) {
		snprintf(mailto, sizeof(mailto), "mailto:%s", sp->email);
		rc = kwi_json_put(*out, "contact", json_pack("[s]", mailto));
	}
	if (rc == KW_OK && sp->eab_kid && (rc = eab_key(sp->eab_key_source, &mac)) == KW_OK)
		rc =
		    kwi_jws_eab(mac, sp->eab_kid, kwi_acme_endpoint(c, "newAccount"), c->jwk, &eab);
	if (rc == KW_OK && eab)
		rc = kwi_json_put(*out, "externalAccountBinding", eab);
	kw_secret_free(mac);
	return rc;
}

static kw_rc register_account(kwi_acme_client *c, const kw_issuer_spec *sp)
{
	json_t *payload = NULL;
	kwi_acme_resp r = {0};
	kw_rc rc = account_payload(c, sp, &payload);
	if (rc == KW_OK)
		rc = kwi_acme_post(c, kwi_acme_endpoint(c, "newAccount"), payload, 1, &r);
	if (rc == KW_OK && r.location == NULL)
		rc = KW_FAIL(KW_ERR_PARSE, "the ACME server did not give the account's URL");
	if (rc == KW_OK) {
		c->kid = r.location;
		r.location = NULL;
	}
	kwi_acme_resp_clear(&r);
	json_decref(payload);
	return rc;
}

static kw_rc record(kw_store *s, const kw_issuer_spec *sp, json_t *cfg, int64_t backend_id,
                    kw_key_type type, const kw_key_blob *ref, const char *account)
{
	time_t now;
	kwi_acme_issuer_row row = {
	    .name = sp->name,
	    .config = cfg,
	    .backend_id = backend_id,
	    .type = type,
	    .ref = *ref,
	    .account_url = account,
	};
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_acme_issuer_add(s, &row, now);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "issuer.added", NULL, 0,
		                      json_pack("{s:s, s:s, s:s}", "issuer", sp->name, "directory",
		                                sp->directory, "account", account));
	if (rc == KW_OK)
		rc = kwi_store_commit(s);
	else
		kwi_store_rollback(s);
	return rc;
}

kw_rc kw_issuer_add(kw_store *s, const kw_issuer_spec *sp, json_t **report)
{
	json_t *cfg = NULL;
	kwi_device dev = {0};
	kw_key_blob ref = {0};
	kwi_acme_client c = {0};
	int made = 0;
	kw_error_clear();
	kw_key_type type = kw_key_type_from_name(sp->key_type ? sp->key_type : "ec-p256");
	KW_GUARD(kwi_name_check("issuer", sp->name, ISSUER_NAME_MAX));
	if (type == 0)
		return KW_FAIL(KW_ERR_USAGE, "unknown key type '%s' for the account key",
		               sp->key_type);
	char *only = NULL;
	if (sp->backend == NULL)
		KW_GUARD(kwi_backend_only(s, "the account key", &only));
	const char *backend = sp->backend ? sp->backend : only;
	kw_rc rc = spec_config(sp, &cfg);
	if (rc == KW_OK)
		rc = exists(s, sp->name);
	if (rc == KW_OK)
		rc = kwi_acme_open(&c, sp->directory,
		                   json_string_value(json_object_get(cfg, "ca_bundle")));
	if (rc == KW_OK)
		rc = terms(&c, sp, cfg);
	if (rc == KW_OK)
		rc = kwi_device_open(s, backend, &dev);
	char label[ISSUER_NAME_MAX + 24];
	snprintf(label, sizeof(label), "keyward-acme:%s", sp->name);
	if (rc == KW_OK && (rc = kwi_device_key_generate(&dev, type, label, 0, &ref)) == KW_OK)
		made = 1;
	if (rc == KW_OK)
		rc = kwi_acme_use_key(&c, &dev, &ref, type);
	if (rc == KW_OK)
		rc = register_account(&c, sp);
	if (rc == KW_OK)
		rc = record(s, sp, cfg, dev.id, type, &ref, c.kid);
	if (rc != KW_OK && made)
		kwi_device_key_discard(&dev, &ref);
	kwi_acme_close(&c);
	kw_key_blob_clear(&ref);
	kwi_device_close(&dev);
	json_decref(cfg);
	free(only);
	if (rc == KW_OK && report && (rc = kwi_issuer_show(s, sp->name, report)) != KW_OK)
		*report = NULL;
	return rc;
}

kw_rc kwi_issuer_policy_check(kw_store *s, kwi_policy *policy)
{
	kwi_http01_conf *h = &policy->issuer.http01;
	kwi_acme_issuer_row is;
	if (policy->issuer.kind != KW_ISSUER_ACME)
		return KW_OK;
	const char *acme = policy->issuer.named;
	KW_GUARD(kwi_issuer_load(s, acme, &is));
	int fallback = json_object_get(is.config, "http01") != NULL;
	kwi_acme_issuer_row_clear(&is);
	int own = h->listen || h->webroot;
	if (!own && (s->http01.listen || s->http01.webroot)) {
		KW_GUARD(kwi_policy_strdup(s->http01.listen, &h->listen));
		return kwi_policy_strdup(s->http01.webroot, &h->webroot);
	}
	if (!own && !fallback)
		return KW_FAIL_HINT_ON(KW_ERR_USAGE, KW_HINT_GIVE_HTTP01, acme,
		                       "no way to answer http-01 challenges: no listen address or "
		                       "webroot was given, and issuer %s sets none",
		                       acme);
	return KW_OK;
}
