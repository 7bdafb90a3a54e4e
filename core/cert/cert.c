/* see keyward/keyward.h: creating, renewing and deleting certificates */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle/lifecycle_internal.h"
#include "cert/issue.h"
#include "policy/model.h"

#define NAME_MAX_LEN 64

static kw_rc check_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > NAME_MAX_LEN || !isalnum((unsigned char)name[0]))
		return KW_FAIL(KW_ERR_USAGE,
		               "bad certificate name '%s': 1 to %d characters, starting with a "
		               "letter or digit",
		               name ? name : "", NAME_MAX_LEN);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return KW_FAIL(KW_ERR_USAGE,
			               "bad certificate name '%s': use letters, digits, '.', '_' "
			               "and '-'",
			               name);
	return KW_OK;
}

static kw_rc cert_exists(kw_store *s, const char *name, int *exists)
{
	kwi_cert_row c;
	int found = 0;
	KW_GUARD(kwi_store_cert_get(s, name, 0, &c, &found));
	/* 2: a soft-deleted certificate still holds the name */
	*exists = found ? 1 + c.deleted : 0;
	kwi_cert_row_clear(&c);
	return KW_OK;
}

static kw_rc record_new(kw_store *s, const char *name, const kwi_policy *policy, int64_t backend_id,
                        const kw_key_blob *ref, kw_key_type type, const kwi_issued *v, time_t now)
{
	int64_t cert_id = 0;
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_cert_insert(s, name, policy, now, &cert_id);
	if (rc == KW_OK)
		rc = kwi_version_insert(s, cert_id, 1, backend_id, ref, type, v, now);
	if (rc == KW_OK && v->cert)
		rc = kwi_event_append(s, "cert.created", name, 1,
		                      json_pack("{s:s,s:s,s:s,s:s}", "key_type",
		                                kw_key_type_name(type), "thumbprint_sha256",
		                                v->sha256, "serial", v->serial, "issuer",
		                                v->issuer));
	else if (rc == KW_OK) /* an external CA issues: version 1 waits with its CSR */
		rc = kwi_event_append(s, "cert.pending", name, 1,
		                      json_pack("{s:s,s:s}", "key_type", kw_key_type_name(type),
		                                "issuer", v->issuer));
	if (rc == KW_OK)
		return kwi_store_commit(s);
	kwi_store_rollback(s);
	return rc;
}

/* What a create or renewal made, from what it issued. */
static void info_fill(kw_version_info *out, int version, int previous, int new_key,
                      kw_key_type type, const kwi_device *dev, const kwi_issued *v)
{
	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	out->version = version;
	out->pending = v->cert == NULL;
	out->previous_version = previous;
	out->new_key = new_key;
	out->key_type = type;
	out->exportable = v->attrs.exportable;
	snprintf(out->backend, sizeof(out->backend), "%s", dev->name);
	const X509_NAME *subject = v->cert  ? X509_get_subject_name(v->cert)
	                           : v->csr ? X509_REQ_get_subject_name(v->csr)
	                                    : NULL;
	json_t *dn = subject ? kwi_name_json(subject) : NULL;
	snprintf(out->subject, sizeof(out->subject), "%s",
	         json_string_value(dn) ? json_string_value(dn) : "");
	json_decref(dn);
	if (v->cert) {
		out->not_before = v->not_before;
		out->not_after = v->not_after;
		snprintf(out->serial, sizeof(out->serial), "%s", v->serial);
		snprintf(out->thumbprint_sha256, sizeof(out->thumbprint_sha256), "%s", v->sha256);
	}
}

kw_rc kwi_cert_create(kw_store *s, const kw_cert_request *req, kw_version_info *made)
{
	kw_rc rc = KW_OK;
	kwi_policy *policy = NULL;
	kwi_device dev = {0};
	kw_key_blob ref = {0};
	kwi_issued v = {0};
	time_t now;
	int exists = 0;
	KW_GUARD(check_name(req->name));
	if ((req->backend == NULL || req->backend[0] == '\0') && req->policy == NULL)
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_BACKEND, "no backend given");
	KW_GUARD(kwi_policy_from_request(req, &policy));
	kw_key_type type = policy->key.type;
	const char *backend = policy->key.backend;
	int revocable = policy->key.revocable;
	if (backend == NULL) {
		rc = KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_BACKEND,
		                  "no backend given: the policy has no key.backend");
		goto out;
	}
	if ((rc = kwi_issuer_policy_check(s, policy)) != KW_OK ||
	    (rc = kwi_deploy_target_policy_check(s, policy)) != KW_OK)
		goto out;
	if ((rc = kwi_now(&now)) != KW_OK || (rc = cert_exists(s, req->name, &exists)) != KW_OK)
		goto out;
	if (exists == 2) {
		rc = KW_FAIL_HINT_ON(KW_ERR_EXISTS, KW_HINT_CERT_RECOVER_PURGE, req->name,
		                     "certificate '%s' was deleted and still holds its name",
		                     req->name);
		goto out;
	}
	if (exists) {
		rc = KW_FAIL(KW_ERR_EXISTS, "certificate '%s' already exists", req->name);
		goto out;
	}
	if ((rc = kwi_device_open(s, backend, &dev)) != KW_OK)
		goto out;
	char label[NAME_MAX_LEN + 16];
	snprintf(label, sizeof(label), "keyward:%s", req->name);
	if ((rc = kwi_device_key_generate(&dev, type, label, revocable, &ref)) != KW_OK)
		goto out;
	rc = kwi_issue(s, &dev, &ref, type, policy, NULL, now, &v);
	if (rc == KW_OK)
		rc = record_new(s, req->name, policy, dev.id, &ref, type, &v, now);
	if (rc != KW_OK)
		kwi_device_key_discard(&dev, &ref);
	else {
		kwi_cert_mirror(&dev, &ref, v.cert);
		info_fill(made, 1, 0, 1, type, &dev, &v);
	}
out:
	kwi_issued_clear(&v);
	kw_key_blob_clear(&ref);
	kwi_device_close(&dev);
	kwi_policy_free(policy);
	return rc;
}

/* The current version of a certificate, as renew and delete need it. */
typedef struct {
	int64_t cert_id;
	kwi_policy *policy;
	int version;
	int64_t backend_id;
	kw_key_type type;
	kw_key_blob ref;
	char backend[80]; /* the current version's backend name */
	X509 *cert;       /* the current certificate (NULL while none was issued) */
} current_row;

static void current_clear(current_row *c)
{
	kwi_policy_free(c->policy);
	kw_key_blob_clear(&c->ref);
	X509_free(c->cert);
	memset(c, 0, sizeof(*c));
}

static kw_rc copy_ref(const kw_key_blob *from, kw_key_blob *to)
{
	to->data = malloc(from->len ? from->len : 1);
	if (to->data == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	memcpy(to->data, from->data, from->len);
	to->len = from->len;
	return KW_OK;
}

static kw_rc current_load(kw_store *s, const char *name, current_row *c)
{
	kwi_cert_row cr;
	kwi_version_row v;
	int found = 0;
	memset(c, 0, sizeof(*c));
	KW_GUARD(
	    kwi_store_version_current(s, name, KWI_LOAD_POLICY | KWI_LOAD_DER, &cr, &v, &found));
	kw_rc rc = KW_OK;
	if (!found)
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'",
		                  name);
	else {
		c->cert_id = cr.id;
		c->policy = cr.policy; /* taken from the row */
		cr.policy = NULL;
		c->version = v.version;
		c->backend_id = v.backend_id;
		c->type = v.type;
		rc = copy_ref(&v.ref, &c->ref);
		snprintf(c->backend, sizeof(c->backend), "%s", v.backend ? v.backend : "");
		const unsigned char *der = v.cert_der;
		if (der)
			c->cert = d2i_X509(NULL, &der, (long)v.cert_len);
		if (rc == KW_OK && (c->policy == NULL || c->type == 0))
			rc = KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable record",
			             name);
	}
	kwi_cert_row_clear(&cr);
	kwi_version_row_clear(&v);
	if (rc != KW_OK)
		current_clear(c);
	return rc;
}

/* The new version becomes current; the old one is superseded. */
static kw_rc promote(kw_store *s, const char *name, const current_row *c, int next, int new_key,
                     const kwi_issued *v, time_t now)
{
	KW_GUARD(kwi_store_version_make_current(s, c->cert_id, next, now));
	return kwi_event_append(s, "cert.renewed", name, next,
	                        json_pack("{s:i,s:b,s:s,s:s}", "previous_version", c->version,
	                                  "new_key", new_key, "thumbprint_sha256", v->sha256,
	                                  "serial", v->serial));
}

static kw_rc record_renewal(kw_store *s, const char *name, const current_row *c, int64_t backend_id,
                            const kw_key_blob *ref, int new_key, const kwi_issued *v, time_t now,
                            int *new_version)
{
	KW_GUARD(kwi_store_begin(s));
	/* again inside the transaction: another keyward may have made one since */
	kw_rc rc = kwi_pending_refuse(s, name);
	int next = 0;
	if (rc == KW_OK)
		rc = kwi_store_version_next(s, c->cert_id, &next);
	if (rc == KW_OK)
		rc = kwi_version_insert(s, c->cert_id, next, backend_id, ref, c->type, v, now);
	if (rc == KW_OK && v->cert == NULL) /* the current version serves until the merge */
		rc = kwi_event_append(s, "cert.pending", name, next,
		                      json_pack("{s:i,s:b,s:s}", "current_version", c->version,
		                                "new_key", new_key, "issuer", v->issuer));
	else if (rc == KW_OK)
		rc = promote(s, name, c, next, new_key, v, now);
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	*new_version = next;
	return kwi_store_commit(s);
}

static int want_new_key(const current_row *c, kw_renew_key key)
{
	if (key == KW_RENEW_NEW_KEY)
		return 1;
	if (key == KW_RENEW_REUSE_KEY)
		return 0;
	return !c->policy->key.reuse_key;
}

kw_rc kwi_cert_live_get(kw_store *s, const char *name, unsigned flags, kwi_cert_row *row)
{
	int found = 0;
	KW_GUARD(kwi_store_cert_get(s, name, flags, row, &found));
	if (!found)
		return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'",
		                    name ? name : "");
	if (row->deleted)
		return KW_FAIL_HINT_ON(KW_ERR_NOT_FOUND, KW_HINT_CERT_RECOVER, name,
		                       "certificate '%s' is deleted", name);
	return KW_OK;
}

/* A soft-deleted certificate is unknown until it is recovered. */
static kw_rc refuse_deleted(kw_store *s, const char *name)
{
	kwi_cert_row c;
	int found = 0;
	KW_GUARD(kwi_store_cert_get(s, name, 0, &c, &found));
	int deleted = found && c.deleted;
	kwi_cert_row_clear(&c);
	if (deleted)
		return KW_FAIL_HINT_ON(KW_ERR_NOT_FOUND, KW_HINT_CERT_RECOVER, name,
		                       "certificate '%s' is deleted", name);
	return KW_OK;
}

static kw_rc cert_renew(kw_store *s, const char *name, kw_renew_key key, kw_version_info *made)
{
	kw_rc rc = KW_OK;
	current_row c;
	kwi_device dev = {0};
	kw_key_blob ref = {0};
	kwi_issued v = {0};
	time_t now;
	int version = 0, fresh, pending = 0;
	KW_GUARD(kwi_now(&now));
	KW_GUARD(refuse_deleted(s, name));
	KW_GUARD(kwi_pending_refuse(s, name));
	KW_GUARD(current_load(s, name, &c));
	fresh = want_new_key(&c, key);
	const char *backend = c.policy->key.backend;
	kw_key_type type = c.policy->key.type;
	if (type == 0)
		type = c.type;
	/* A policy that now asks for another key type or backend needs a new key. */
	int moved = type != c.type || (backend && strcmp(backend, c.backend) != 0);
	if (moved && key == KW_RENEW_REUSE_KEY) {
		rc = KW_FAIL_HINT(KW_ERR_STATE, KW_HINT_CERT_RENEW_NEW_KEY,
		                  "certificate '%s': its policy asks for a %s key in backend '%s', "
		                  "so the current %s key in '%s' cannot be reused",
		                  name, kw_key_type_name(type), backend ? backend : c.backend,
		                  kw_key_type_name(c.type), c.backend);
		goto out;
	}
	fresh |= moved;
	/* A reused key stays where it is; a new one goes where the policy says. */
	if (!fresh || backend == NULL)
		rc = kwi_device_open_id(s, c.backend_id, &dev);
	else
		rc = kwi_device_open(s, backend, &dev);
	if (rc != KW_OK)
		goto out;
	char label[NAME_MAX_LEN + 16];
	snprintf(label, sizeof(label), "keyward:%s", name);
	/* a new key follows the policy as it is now (key.revocable too) */
	int revocable = c.policy->key.revocable;
	rc = fresh ? kwi_device_key_generate(&dev, type, label, revocable, &ref)
	           : copy_ref(&c.ref, &ref);
	if (rc == KW_OK && !fresh)
		rc = kwi_version_key_match(s, name, c.version, &dev, &ref, type, c.cert, NULL);
	if (rc != KW_OK)
		goto out;
	c.type = type;
	rc = kwi_issue(s, &dev, &ref, type, c.policy, c.cert, now, &v);
	if (rc == KW_OK)
		rc = record_renewal(s, name, &c, dev.id, &ref, fresh, &v, now, &version);
	if (rc != KW_OK && fresh)
		kwi_device_key_discard(&dev, &ref);
	if (rc == KW_OK)
		kwi_cert_mirror(&dev, &ref, v.cert);
	pending = rc == KW_OK && v.cert == NULL;
	if (rc == KW_OK)
		info_fill(made, version, c.version, fresh, type, &dev, &v);
out:
	kwi_issued_clear(&v);
	kw_key_blob_clear(&ref);
	kwi_device_close(&dev);
	current_clear(&c);
	/* After the device is given back (a TPM simulator takes one connection:
	 * prune borrows the run's again, hooks drop it first). The renewal
	 * stands: what follows (prune, deploy, notify) records its own failures
	 * as events, and a failed deploy is returned (KW_ERR_DEPLOY, made
	 * filled). A pending version changes nothing yet: the contacts are told
	 * that a CSR waits for them. */
	if (rc == KW_OK && pending) {
		if (kwi_pending_notify(s, name, version) != KW_OK)
			kw_error_clear();
	} else if (rc == KW_OK) {
		kw_rc after = kwi_after_renewal(s, name, version, NULL);
		if (after == KW_ERR_DEPLOY)
			rc = after;
		else if (after != KW_OK)
			kw_error_clear();
	}
	return rc;
}

kw_rc kw_cert_create(kw_store *s, const kw_cert_request *req, kw_version_info *made)
{
	kw_error_clear();
	return kwi_cert_create(s, req, made);
}

/* see internal.h */
kw_rc kwi_cert_renew(kw_store *s, const char *name, kw_renew_key key, kw_version_info *made)
{
	/* a run of one (or a step of renew --due's): issue and prune share a connection */
	KW_GUARD(kwi_devices_begin(s));
	kw_rc rc = cert_renew(s, name, key, made);
	kwi_devices_end(s);
	return rc;
}

kw_rc kw_cert_renew(kw_store *s, const char *name, kw_renew_key key, kw_version_info *made)
{
	kw_error_clear();
	return kwi_cert_renew(s, name, key, made);
}

/* see keyward/keyward.h: the immediate form of soft delete + purge (cert/versions.c) */
kw_rc kw_cert_delete(kw_store *s, const char *name, kw_keys_gone *gone)
{
	kw_error_clear();
	return kwi_cert_purge(s, name, gone);
}
