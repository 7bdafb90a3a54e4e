/* see keyward/keyward.h: reading certificates (show, list, export, csr, verify) */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "cert/issue.h"
#include <keyward/key.h>

static X509 *der_cert(const unsigned char *p, size_t n)
{
	return p && n > 0 ? d2i_X509(NULL, &p, (long)n) : NULL;
}

static json_t *time_json(int has, time_t t)
{
	if (!has)
		return json_null();
	char buf[32];
	kwi_time_format(t, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *text_json(const char *t)
{
	return t ? json_string(t) : json_null();
}

static json_t *key_type_json(kw_key_type t)
{
	return text_json(kw_key_type_name(t));
}

static json_t *key_json(const kwi_version_row *v)
{
	return json_pack("{s:o,s:b,s:b,s:o}", "type", key_type_json(v->type), "exportable",
	                 v->exportable, "generated_on_device", v->generated_on_device, "attributes",
	                 v->key_attrs ? json_incref(v->key_attrs) : json_object());
}

/* A pending version has no certificate yet: its CSR says what it asks for. */
static void request_json(const kwi_version_row *v, json_t *j)
{
	const unsigned char *p = v->csr_der;
	X509_REQ *req = p && v->csr_len > 0 ? d2i_X509_REQ(NULL, &p, (long)v->csr_len) : NULL;
	json_object_set_new(j, "subject",
	                    req ? kwi_name_json(X509_REQ_get_subject_name(req)) : json_null());
	json_object_set_new(j, "issuer_dn", json_null());
	json_object_set_new(j, "sans", req ? kwi_req_sans_json(req) : json_array());
	json_object_set_new(j, "public_key_sha256",
	                    req ? kwi_spki_sha256(X509_REQ_get_X509_PUBKEY(req)) : json_null());
	X509_REQ_free(req);
}

/* subject, issuer_dn, sans and public_key_sha256 of a version with a
 * certificate: its recorded facts, or the certificate decoded when a version
 * has none recorded. A version loaded without its DER whose facts do not
 * read (a damaged store) is loaded again with it. */
static kw_rc cert_facts(kw_store *s, const kwi_cert_row *c, const kwi_version_row *v, json_t *f[4])
{
	f[0] = v->subject_dn ? json_string(v->subject_dn) : NULL;
	f[1] = v->issuer_dn ? json_string(v->issuer_dn) : NULL;
	f[2] = v->sans ? json_loads(v->sans, JSON_ALLOW_NUL, NULL) : NULL;
	f[3] = v->spki_sha256 ? json_string(v->spki_sha256) : NULL;
	if (f[0] && f[1] && f[2] && f[3])
		return KW_OK;
	for (int i = 0; i < 4; i++)
		json_decref(f[i]);
	kwi_version_row full = {0};
	int found = 0;
	if (v->cert_der == NULL && (kwi_store_version_get(s, c->name, v->version, KWI_LOAD_DER,
	                                                  NULL, &full, &found) != KW_OK ||
	                            !found))
		kw_error_clear();
	X509 *x = v->cert_der ? der_cert(v->cert_der, v->cert_len)
	                      : der_cert(full.cert_der, full.cert_len);
	kwi_version_row_clear(&full);
	if (x == NULL)
		return KW_ERR_NOT_FOUND;
	f[0] = kwi_name_json(X509_get_subject_name(x));
	f[1] = kwi_name_json(X509_get_issuer_name(x));
	f[2] = kwi_cert_sans(x);
	f[3] = kwi_spki_sha256(X509_get_X509_PUBKEY(x));
	X509_free(x);
	return KW_OK;
}

/* The one shape every reader sees (show, list, versions). */
static json_t *row_json(kw_store *s, const kwi_cert_row *c, const kwi_version_row *v)
{
	json_t *f[4] = {NULL, NULL, NULL, NULL};
	int has_cert = v->has_cert && cert_facts(s, c, v, f) == KW_OK;
	json_t *j = json_pack("{s:o,s:i,s:b,s:s,s:b}", "name", text_json(c->name), "version",
	                      v->version, "current", v->version == c->current_version, "status",
	                      kwi_version_status_name(v->status), "enabled", c->enabled);
	if (j == NULL)
		goto out;
	if (has_cert) {
		json_object_set(j, "subject", f[0]);
		json_object_set(j, "issuer_dn", f[1]);
		json_object_set(j, "sans", f[2]);
	} else
		request_json(v, j);
	json_object_set_new(j, "serial", text_json(v->serial));
	json_object_set_new(j, "not_before", time_json(v->has_validity, v->not_before));
	json_object_set_new(j, "not_after", time_json(v->has_validity, v->not_after));
	json_object_set_new(j, "thumbprint_sha1", text_json(v->thumbprint_sha1));
	json_object_set_new(j, "thumbprint_sha256", text_json(v->thumbprint_sha256));
	if (has_cert)
		json_object_set(j, "public_key_sha256", f[3]);
	json_object_set_new(j, "issuer", text_json(v->issuer));
	json_object_set_new(j, "backend", text_json(v->backend));
	json_object_set_new(j, "key", key_json(v));
	json_object_set_new(j, "created", time_json(1, v->created_at));
	/* the version waiting for its certificate (cert merge), if any */
	json_object_set_new(j, "pending_version",
	                    c->pending_version ? json_integer(c->pending_version) : json_null());
out:
	for (int i = 0; i < 4; i++)
		json_decref(f[i]);
	return j;
}

/* One version (0 = current) of the live certificate name, loaded with flags. */
static kw_rc select_version(kw_store *s, const char *name, int version, unsigned flags,
                            kwi_cert_row *c, kwi_version_row *v)
{
	int found = 0;
	memset(c, 0, sizeof(*c));
	memset(v, 0, sizeof(*v));
	if (version < 0)
		return KW_FAIL(KW_ERR_USAGE, "bad version %d", version);
	KW_GUARD(version > 0 ? kwi_store_version_get(s, name, version, flags, c, v, &found)
	                     : kwi_store_version_current(s, name, flags, c, v, &found));
	if (found)
		return KW_OK;
	kwi_cert_row live;
	int exists = 0;
	if (kwi_store_cert_get(s, name, 0, &live, &exists) != KW_OK)
		exists = 0;
	exists = exists && !live.deleted;
	kwi_cert_row_clear(&live);
	return exists
	           ? KW_FAIL(KW_ERR_NOT_FOUND, "certificate '%s' has no version %d", name, version)
	           : KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'",
	                          name);
}

static void rows_clear(kwi_cert_row *c, kwi_version_row *v)
{
	kwi_version_row_clear(v);
	kwi_cert_row_clear(c);
}

kw_rc kwi_cert_show(kw_store *s, const char *name, int version, json_t **out)
{
	kwi_cert_row c;
	kwi_version_row v;
	*out = NULL;
	KW_GUARD(select_version(s, name, version, KWI_LOAD_DER_FOR_FACTS, &c, &v));
	*out = row_json(s, &c, &v);
	rows_clear(&c, &v);
	return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

typedef struct {
	kw_store *s;
	kw_cert_row_fn fn;
	void *arg;
} list_job;

static kw_rc list_one(const kwi_cert_row *c, const kwi_version_row *v, void *arg)
{
	list_job *j = arg;
	/* issue 14: a certificate whose current version is gone was dropped
	 * from the list without a word */
	json_t *row =
	    v->version != 0
	        ? row_json(j->s, c, v)
	        : json_pack("{s:o,s:i,s:s,s:s}", "name", text_json(c->name), "version",
	                    c->current_version, "status", "missing", "problem",
	                    "its current version is not in the store (see: keyward doctor)");
	if (row == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = j->fn(row, j->arg);
	json_decref(row);
	return rc;
}

static kw_rc list_walk(kw_store *s, kw_cert_row_fn fn, void *arg)
{
	list_job j = {s, fn, arg};
	return kwi_store_current_each(s, KWI_LOAD_DER_FOR_FACTS, list_one, &j);
}

kw_rc kw_cert_list_each(kw_store *s, kw_cert_row_fn fn, void *arg)
{
	kw_error_clear();
	return list_walk(s, fn, arg);
}

static kw_rc list_append(json_t *row, void *arg)
{
	return json_array_append(arg, row) == 0 ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kw_cert_list(kw_store *s, json_t **out)
{
	json_t *list = json_array();
	kw_error_clear();
	*out = NULL;
	if (list == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = list_walk(s, list_append, list);
	if (rc != KW_OK) {
		json_decref(list);
		return rc;
	}
	*out = list;
	return KW_OK;
}

static kw_rc bio_string(BIO *b, char **out)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	*out = malloc((size_t)n + 1);
	if (*out == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	memcpy(*out, data, (size_t)n);
	(*out)[n] = '\0';
	return KW_OK;
}

/* The refusal for a version without a certificate: a pending one waits for cert merge. */
static kw_rc no_cert(const kwi_version_row *v, const char *name)
{
	return KW_FAIL_HINT_ON(KW_ERR_STATE, KW_HINT_CERT_MERGE, name,
	                       "certificate '%s' version %d is %s: it has no certificate yet", name,
	                       v->version, kwi_version_status_name(v->status));
}

kw_rc kwi_cert_export(kw_store *s, const char *name, int version, int with_chain, char **pem)
{
	kw_rc rc = KW_OK;
	kwi_cert_row c;
	kwi_version_row v;
	*pem = NULL;
	KW_GUARD(select_version(s, name, version, KWI_LOAD_DER, &c, &v));
	BIO *b = BIO_new(BIO_s_mem());
	X509 *x = der_cert(v.cert_der, v.cert_len);
	if (x == NULL) {
		rc = no_cert(&v, name);
		goto out;
	}
	if (b == NULL || !PEM_write_bio_X509(b, x)) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	const unsigned char *p = v.chain_der;
	const unsigned char *end = p ? p + v.chain_len : NULL;
	while (with_chain && p && p < end) {
		X509 *ch = d2i_X509(NULL, &p, end - p);
		if (ch == NULL) {
			rc =
			    KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable chain", name);
			goto out;
		}
		PEM_write_bio_X509(b, ch);
		X509_free(ch);
	}
	rc = bio_string(b, pem);
out:
	X509_free(x);
	BIO_free(b);
	rows_clear(&c, &v);
	return rc;
}

/* Opens the version's device; ref takes the version's key blob. */
static kw_rc version_key(kw_store *s, kwi_version_row *v, kwi_device *dev, kw_key_blob *ref,
                         kw_key_type *type)
{
	*type = v->type;
	*ref = v->ref;
	v->ref = (kw_key_blob){0};
	return kwi_device_open_id(s, v->backend_id, dev);
}

/* The pending version's CSR as it was signed: the same bytes every time. */
static kw_rc pending_csr(kw_store *s, const char *name, int *found, char **pem)
{
	kwi_pending p;
	KW_GUARD(kwi_pending_load(s, name, &p));
	kw_rc rc = KW_OK;
	*found = p.version != 0;
	if (*found) {
		BIO *b = BIO_new(BIO_s_mem());
		if (b == NULL ||
		    !PEM_write_bio(b, PEM_STRING_X509_REQ, "", p.csr_der, (long)p.csr_len))
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		else
			rc = bio_string(b, pem);
		BIO_free(b);
	}
	kwi_pending_clear(&p);
	return rc;
}

kw_rc kw_cert_csr(kw_store *s, const char *name, char **pem)
{
	kw_rc rc = KW_OK;
	kwi_cert_row c;
	kwi_version_row v;
	kwi_device dev = {0};
	kw_key_blob ref = {0};
	kwi_cert_template t = {0};
	EVP_PKEY *pub = NULL;
	X509_REQ *req = NULL;
	X509 *current = NULL;
	BIO *b = NULL;
	kw_key_type type;
	time_t now;
	int pending = 0;
	kw_error_clear();
	*pem = NULL;
	KW_GUARD(kwi_now(&now));
	KW_GUARD(select_version(s, name, 0, KWI_LOAD_POLICY | KWI_LOAD_DER, &c, &v));
	if ((rc = pending_csr(s, name, &pending, pem)) != KW_OK || pending) {
		rows_clear(&c, &v);
		return rc;
	}
	const kwi_policy *policy = c.policy;
	if (policy == NULL) {
		rc = KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable policy", name);
		goto out;
	}
	if ((rc = kwi_policy_template(policy, now, &t)) != KW_OK ||
	    (rc = version_key(s, &v, &dev, &ref, &type)) != KW_OK)
		goto out;
	kwi_signer k = {&dev, &ref, type};
	current = der_cert(v.cert_der, v.cert_len);
	if ((rc = kwi_version_key_match(s, name, v.version, &dev, &ref, type, current, &pub)) !=
	        KW_OK ||
	    (rc = kwi_x509_csr(&k, pub, &t, &req)) != KW_OK)
		goto out;
	b = BIO_new(BIO_s_mem());
	if (b == NULL || !PEM_write_bio_X509_REQ(b, req))
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	else
		rc = bio_string(b, pem);
out:
	BIO_free(b);
	X509_REQ_free(req);
	X509_free(current);
	EVP_PKEY_free(pub);
	kwi_template_clear(&t);
	kw_key_blob_clear(&ref);
	kwi_device_close(&dev);
	rows_clear(&c, &v);
	return rc;
}

/* Stores the certify evidence with the version (its key_attrs gain a
 * "certify" object) and records the event, in one transaction. */
static kw_rc certify_store(kw_store *s, const kwi_cert_row *c, const kwi_version_row *v,
                           json_t *certify)
{
	json_t *attrs = json_is_object(v->key_attrs) ? json_deep_copy(v->key_attrs) : json_object();
	kw_rc rc = KW_OK;

	if (attrs == NULL || json_object_set(attrs, "certify", certify) != 0) {
		json_decref(attrs);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if ((rc = kwi_store_begin(s)) != KW_OK) {
		json_decref(attrs);
		return rc;
	}
	rc = kwi_store_version_key_attrs_set(s, v->cert_id, v->version, attrs);
	json_decref(attrs);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "cert.certified", c->name, v->version,
		                      json_pack("{s:O,s:O}", "certified_name",
		                                json_object_get(certify, "certified_name"), "nonce",
		                                json_object_get(certify, "nonce")));
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

/* The device's TPM2_Certify of the key, stored with the version; unsupported
 * (no attestation key, or a device without attestation) is no error. */
static kw_rc certify_json(kw_store *s, const kwi_cert_row *cr, const kwi_version_row *v,
                          kwi_device *dev, const kw_key_blob *ref, json_t **out)
{
	unsigned char nonce[32];
	json_t *ev = NULL;
	kw_rc rc;

	*out = NULL;
	if (!kwi_device_can_certify(dev))
		return KW_OK;
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return KW_FAIL(KW_ERR_INTERNAL, "no random nonce for TPM2_Certify");
	rc = kwi_device_key_certify(dev, ref, nonce, sizeof(nonce), &ev);
	if (rc == KW_ERR_UNSUPPORTED) {
		*out = json_pack("{s:b,s:s}", "available", 0, "reason", kw_error_message());
		kw_error_clear();
		return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if (rc != KW_OK)
		return rc;
	json_t *c = json_object_get(ev, "certify");
	if (!json_is_object(c)) {
		json_decref(ev);
		return KW_FAIL(KW_ERR_INTERNAL,
		               "the device's certify evidence has no certify object");
	}
	rc = certify_store(s, cr, v, c);
	if (rc == KW_OK)
		*out = json_incref(c);
	json_decref(ev);
	return rc;
}

kw_rc kw_cert_verify(kw_store *s, const char *name, int version, json_t **out)
{
	kw_rc rc = KW_OK;
	kwi_cert_row c;
	kwi_version_row v;
	kwi_device dev = {0};
	kw_key_blob ref = {0};
	kw_key_attrs attrs = {0};
	EVP_PKEY *pub = NULL;
	X509 *x = NULL;
	kw_key_type type;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(select_version(s, name, version, KWI_LOAD_DER, &c, &v));
	if ((rc = version_key(s, &v, &dev, &ref, &type)) != KW_OK)
		goto out;
	kwi_signer k = {&dev, &ref, type};
	if ((rc = kwi_signer_pubkey(&k, &pub)) != KW_OK ||
	    (rc = kwi_device_key_attrs(&dev, &ref, &attrs)) != KW_OK)
		goto out;
	json_t *certify = NULL;
	if ((rc = certify_json(s, &c, &v, &dev, &ref, &certify)) != KW_OK)
		goto out;
	x = der_cert(v.cert_der, v.cert_len);
	/* null: a pending version has no certificate to match yet */
	json_t *match = x ? json_boolean(EVP_PKEY_eq(X509_get0_pubkey(x), pub) == 1) : json_null();
	*out =
	    json_pack("{s:o,s:i,s:o,s:o,s:b,s:b,s:o,s:o}", "name", text_json(c.name), "version",
	              v.version, "backend", text_json(v.backend), "key_type", key_type_json(v.type),
	              "exportable", attrs.exportable, "generated_on_device",
	              attrs.generated_on_device, "certificate_matches_key", match, "attributes",
	              attrs.evidence ? json_incref(attrs.evidence) : json_object());
	if (*out != NULL && certify != NULL)
		json_object_set(*out, "certify", certify);
	json_decref(certify);
	if (*out == NULL)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
out:
	X509_free(x);
	EVP_PKEY_free(pub);
	kw_key_attrs_clear(&attrs);
	kw_key_blob_clear(&ref);
	kwi_device_close(&dev);
	rows_clear(&c, &v);
	return rc;
}

static kw_rc keyward_ref(kw_store *s, const char *name, char **out)
{
	unsigned char *der = NULL;
	size_t len = 0;
	char *dir = realpath(s->dir, NULL);
	kw_rc rc = kw_keyref_encode(name, dir ? dir : s->dir, 0, &der, &len);
	free(dir);
	if (rc != KW_OK)
		return rc;
	BIO *b = BIO_new(BIO_s_mem());
	if (b == NULL || !PEM_write_bio(b, KW_KEYREF_PEM_NAME, "", der, (long)len))
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	else
		rc = bio_string(b, out);
	BIO_free(b);
	OPENSSL_free(der);
	return rc;
}

kw_rc kwi_cert_key_ref(kw_store *s, const char *name, const char *format, char **out)
{
	kw_rc rc = KW_OK;
	kwi_cert_row c;
	kwi_version_row v;
	kwi_device dev = {0};
	kw_key_blob ref = {0};
	kw_key_type type;
	*out = NULL;
	if (format == NULL)
		format = "keyward";
	if (strcmp(format, "keyward") != 0 && strcmp(format, "tss2") != 0 &&
	    strcmp(format, "pkcs11-uri") != 0)
		return KW_FAIL(KW_ERR_USAGE,
		               "unknown key reference format '%s' (use keyward, tss2 or "
		               "pkcs11-uri)",
		               format);
	KW_GUARD(select_version(s, name, 0, 0, &c, &v));
	if (!v.has_cert)
		rc = no_cert(&v, name);
	else if (strcmp(format, "keyward") == 0)
		rc = keyward_ref(s, name, out);
	else if ((rc = version_key(s, &v, &dev, &ref, &type)) == KW_OK) {
		rc = kwi_device_key_ref_export(&dev, &ref, format, out);
	}
	kw_key_blob_clear(&ref);
	kwi_device_close(&dev);
	rows_clear(&c, &v);
	return rc;
}

kw_rc kw_cert_export(kw_store *s, const char *name, int version, int with_chain, char **pem)
{
	kw_error_clear();
	return kwi_cert_export(s, name, version, with_chain, pem);
}

kw_rc kw_cert_key_ref(kw_store *s, const char *name, const char *format, char **out)
{
	kw_error_clear();
	return kwi_cert_key_ref(s, name, format, out);
}

kw_rc kw_cert_show(kw_store *s, const char *name, int version, json_t **out)
{
	kw_error_clear();
	return kwi_cert_show(s, name, version, out);
}
