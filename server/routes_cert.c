/* see internal.h: /certificates/{name}... — the same core calls as the CLI */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <keyward/lifecycle.h>

#include "internal.h"

#define MERGE_MAX_CERTS 16

/* {"value": list} as Key Vault lists, or the error. */
static void reply_list(kws_req *r, kw_rc rc, json_t *list)
{
	if (rc != KW_OK) {
		kws_reply_rc(r, rc);
		return;
	}
	kws_reply_json(r, 200, json_pack("{s:o}", "value", list));
}

/* The certificate's current version, as kw_cert_show. */
static void reply_show(kws_req *r, int status, const char *name)
{
	json_t *j = NULL;
	kw_rc rc = kw_cert_show(r->store, name, 0, &j);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, status, j);
}

void kws_cert_list(kws_req *r)
{
	json_t *l = NULL;
	kw_rc rc = kw_cert_list(r->store, &l);
	reply_list(r, rc, l);
}

void kws_cert_get(kws_req *r)
{
	const char *v = kws_query(r, "version");
	char *end = NULL;
	long version = v ? strtol(v, &end, 10) : 0;
	if (v && (*v == '\0' || *end != '\0' || version < 1 || version > 1000000)) {
		kws_reply_error(r, 400, "BadParameter", "version must be a positive number");
		return;
	}
	json_t *j = NULL;
	kw_rc rc = kw_cert_show(r->store, r->segs[1], (int)version, &j);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, 200, j);
}

void kws_cert_versions(kws_req *r)
{
	json_t *l = NULL;
	kw_rc rc = kw_cert_versions(r->store, r->segs[1], &l);
	reply_list(r, rc, l);
}

void kws_cert_create(kws_req *r)
{
	static const char *const known[] = {"policy", NULL};
	if (!kws_body_object(r, known, 0))
		return;
	json_t *policy = json_object_get(r->body, "policy");
	if (!json_is_object(policy)) {
		kws_reply_error(r, 400, "BadParameter", "policy: an object is required");
		return;
	}
	kw_cert_request req = {.name = r->segs[1], .policy = policy};
	kw_rc rc = kw_cert_create(r->store, &req, NULL);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		reply_show(r, 201, r->segs[1]);
}

void kws_cert_renew(kws_req *r)
{
	static const char *const known[] = {"key", NULL};
	if (!kws_body_object(r, known, 1))
		return;
	json_t *k = json_object_get(r->body, "key");
	const char *ks = json_string_value(k);
	kw_renew_key mode = KW_RENEW_POLICY;
	if (k && ks && strcmp(ks, "new") == 0)
		mode = KW_RENEW_NEW_KEY;
	else if (k && ks && strcmp(ks, "reuse") == 0)
		mode = KW_RENEW_REUSE_KEY;
	else if (k) {
		kws_reply_error(r, 400, "BadParameter", "key: \"new\" or \"reuse\"");
		return;
	}
	kw_version_info made;
	kw_rc rc = kw_cert_renew(r->store, r->segs[1], mode, &made);
	/* renewed, its deploy failed: the version stands, the reply says it */
	char *deploy_error = rc == KW_ERR_DEPLOY ? kws_redacted(kw_error_message()) : NULL;
	if (rc == KW_ERR_DEPLOY)
		rc = KW_OK;
	json_t *cur = NULL;
	if (rc == KW_OK)
		rc = kw_cert_show(r->store, r->segs[1], made.version, &cur);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else {
		if (deploy_error)
			json_object_set_new(cur, "deploy_error", json_string(deploy_error));
		kws_reply_json(r, 200, cur);
	}
	free(deploy_error);
}

void kws_cert_delete(kws_req *r)
{
	kw_rc rc = kw_cert_soft_delete(r->store, r->segs[1]);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, 200, json_pack("{s:s,s:b}", "name", r->segs[1], "deleted", 1));
}

/* The pending version's number, 0 when none. */
static kw_rc pending_version(kws_req *r, int *version)
{
	json_t *l = NULL;
	*version = 0;
	KW_GUARD(kw_cert_versions(r->store, r->segs[1], &l));
	for (size_t i = 0; i < json_array_size(l); i++) {
		json_t *v = json_array_get(l, i);
		const char *st = json_string_value(json_object_get(v, "status"));
		if (st && strcmp(st, "pending") == 0)
			*version = (int)json_integer_value(json_object_get(v, "version"));
	}
	json_decref(l);
	return KW_OK;
}

void kws_cert_pending_get(kws_req *r)
{
	int version = 0;
	char *pem = NULL;
	kw_rc rc = pending_version(r, &version);
	if (rc == KW_OK && version == 0) {
		kws_reply_error(r, 404, "NotFound", "certificate '%s' has no pending version",
		                r->segs[1]);
		return;
	}
	if (rc == KW_OK)
		rc = kw_cert_csr(r->store, r->segs[1], &pem);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, 200,
		               json_pack("{s:s,s:i,s:s,s:s}", "name", r->segs[1], "version",
		                         version, "status", "pending", "csr", pem));
	free(pem);
}

void kws_cert_pending_cancel(kws_req *r)
{
	json_t *report = NULL;
	kw_rc rc = kw_cert_pending_cancel(r->store, r->segs[1], &report);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, 200, report);
}

/* x5c: base64 DER certificates (Key Vault's merge body) back to back. */
static int x5c_decode(kws_req *r, json_t *x5c, unsigned char **out, size_t *len)
{
	size_t n = json_array_size(x5c), cap = 0;
	*out = NULL;
	*len = 0;
	if (!json_is_array(x5c) || n == 0 || n > MERGE_MAX_CERTS) {
		kws_reply_error(r, 400, "BadParameter", "x5c: 1 to %d base64 certificates",
		                MERGE_MAX_CERTS);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const char *b64 = json_string_value(json_array_get(x5c, i));
		size_t blen = b64 ? strlen(b64) : 0, got = 0;
		unsigned char *grown = realloc(*out, cap += blen);
		if (grown)
			*out = grown;
		if (b64 == NULL || grown == NULL ||
		    sodium_base642bin(*out + *len, cap - *len, b64, blen, NULL, &got, NULL,
		                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    got == 0) {
			kws_reply_error(r, 400, "BadParameter", "x5c[%zu]: not base64", i);
			free(*out);
			*out = NULL;
			return 0;
		}
		*len += got;
	}
	return 1;
}

void kws_cert_pending_merge(kws_req *r)
{
	static const char *const known[] = {"x5c", NULL};
	unsigned char *der = NULL;
	size_t len = 0;
	json_t *report = NULL;
	if (!kws_body_object(r, known, 0) ||
	    !x5c_decode(r, json_object_get(r->body, "x5c"), &der, &len))
		return;
	kw_rc rc = kw_cert_merge(r->store, r->segs[1], "x5c", der, len, &report);
	free(der);
	/* merged, its deploy failed: the version stands, the reply says it */
	if (rc == KW_ERR_DEPLOY && report) {
		char *deploy_error = kws_redacted(kw_error_message());
		if (deploy_error)
			json_object_set_new(report, "deploy_error", json_string(deploy_error));
		free(deploy_error);
		rc = KW_OK;
	}
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, 200, report);
}

void kws_cert_policy_get(kws_req *r)
{
	json_t *p = NULL;
	kw_rc rc = kw_policy_show(r->store, r->segs[1], &p);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, 200, p);
}

void kws_cert_policy_put(kws_req *r)
{
	/* the policy document itself: kw_policy_set names unknown fields */
	if (!kws_body_object(r, NULL, 0))
		return;
	kw_rc rc = kw_policy_set(r->store, r->segs[1], r->body);
	if (rc != KW_OK) {
		kws_reply_rc(r, rc);
		return;
	}
	kws_cert_policy_get(r);
}
