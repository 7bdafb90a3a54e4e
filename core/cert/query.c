/* see keyward/keyward.h: reading certificates (show, list, export, csr, verify) */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "cert/issue.h"
#include <keyward/key.h>

#define VERSION_COLUMNS                                                                            \
	"SELECT c.name, c.enabled, c.current_version, v.version, v.status, b.name, v.key_type,"    \
	" v.exportable, v.generated_on_device, v.key_attrs, v.issuer, v.cert_der, v.serial,"       \
	" v.not_before, v.not_after, v.thumbprint_sha1, v.thumbprint_sha256, v.created_at,"        \
	" v.chain_der, c.policy, v.backend_id, v.key_ref, v.csr_der,"                              \
	" (SELECT MAX(p.version) FROM versions p"                                                  \
	" WHERE p.cert_id = c.id AND p.status = 'pending'),"                                       \
	" v.subject_dn, v.issuer_dn, v.sans, v.spki_sha256"                                        \
	" FROM certs c JOIN versions v ON v.cert_id = c.id JOIN backends b ON b.id = v.backend_id"

enum {
	COL_NAME,
	COL_ENABLED,
	COL_CURRENT,
	COL_VERSION,
	COL_STATUS,
	COL_BACKEND,
	COL_KEY_TYPE,
	COL_EXPORTABLE,
	COL_LOCAL,
	COL_ATTRS,
	COL_ISSUER,
	COL_CERT,
	COL_SERIAL,
	COL_NB,
	COL_NA,
	COL_SHA1,
	COL_SHA256,
	COL_CREATED,
	COL_CHAIN,
	COL_POLICY,
	COL_BACKEND_ID,
	COL_KEY_REF,
	COL_CSR,
	COL_PENDING,
	COL_SUBJECT_DN, /* the certificate's facts (cert/facts.c), NULL: decode */
	COL_ISSUER_DN,
	COL_SANS,
	COL_SPKI
};

static X509 *column_cert(sqlite3_stmt *st, int col)
{
	const unsigned char *p = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);
	return p && n > 0 ? d2i_X509(NULL, &p, n) : NULL;
}

static json_t *time_json(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return json_null();
	char buf[32];
	kwi_time_format((time_t)sqlite3_column_int64(st, col), buf, sizeof(buf));
	return json_string(buf);
}

static json_t *text_json(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? json_string((const char *)t) : json_null();
}

static json_t *key_json(sqlite3_stmt *st)
{
	json_t *attrs = NULL;
	if (sqlite3_column_type(st, COL_ATTRS) != SQLITE_NULL)
		attrs = json_loads((const char *)sqlite3_column_text(st, COL_ATTRS), 0, NULL);
	return json_pack("{s:o,s:b,s:b,s:o}", "type", text_json(st, COL_KEY_TYPE), "exportable",
	                 sqlite3_column_int(st, COL_EXPORTABLE), "generated_on_device",
	                 sqlite3_column_int(st, COL_LOCAL), "attributes",
	                 attrs ? attrs : json_object());
}

/* A pending version has no certificate yet: its CSR says what it asks for. */
static void request_json(sqlite3_stmt *st, json_t *j)
{
	const unsigned char *p = sqlite3_column_blob(st, COL_CSR);
	int n = sqlite3_column_bytes(st, COL_CSR);
	X509_REQ *req = p && n > 0 ? d2i_X509_REQ(NULL, &p, n) : NULL;
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
 * has none recorded. */
static kw_rc cert_facts(sqlite3_stmt *st, json_t *f[4])
{
	for (int i = 0; i < 4; i++)
		f[i] =
		    i == 2 ? kwi_facts_json(st, COL_SANS) : kwi_facts_text(st, COL_SUBJECT_DN + i);
	if (f[0] && f[1] && f[2] && f[3])
		return KW_OK;
	for (int i = 0; i < 4; i++)
		json_decref(f[i]);
	X509 *x = column_cert(st, COL_CERT);
	if (x == NULL)
		return KW_ERR_NOT_FOUND;
	f[0] = kwi_name_json(X509_get_subject_name(x));
	f[1] = kwi_name_json(X509_get_issuer_name(x));
	f[2] = kwi_cert_sans(x);
	f[3] = kwi_spki_sha256(X509_get_X509_PUBKEY(x));
	X509_free(x);
	return KW_OK;
}

static json_t *row_json(sqlite3_stmt *st)
{
	json_t *f[4] = {NULL, NULL, NULL, NULL};
	int has_cert =
	    sqlite3_column_type(st, COL_CERT) != SQLITE_NULL && cert_facts(st, f) == KW_OK;
	json_t *j = json_pack(
	    "{s:o,s:i,s:b,s:o,s:b}", "name", text_json(st, COL_NAME), "version",
	    sqlite3_column_int(st, COL_VERSION), "current",
	    sqlite3_column_int(st, COL_VERSION) == sqlite3_column_int(st, COL_CURRENT), "status",
	    text_json(st, COL_STATUS), "enabled", sqlite3_column_int(st, COL_ENABLED));
	if (j == NULL)
		goto out;
	if (has_cert) {
		json_object_set(j, "subject", f[0]);
		json_object_set(j, "issuer_dn", f[1]);
		json_object_set(j, "sans", f[2]);
	} else
		request_json(st, j);
	json_object_set_new(j, "serial", text_json(st, COL_SERIAL));
	json_object_set_new(j, "not_before", time_json(st, COL_NB));
	json_object_set_new(j, "not_after", time_json(st, COL_NA));
	json_object_set_new(j, "thumbprint_sha1", text_json(st, COL_SHA1));
	json_object_set_new(j, "thumbprint_sha256", text_json(st, COL_SHA256));
	if (has_cert)
		json_object_set(j, "public_key_sha256", f[3]);
	json_object_set_new(j, "issuer", text_json(st, COL_ISSUER));
	json_object_set_new(j, "backend", text_json(st, COL_BACKEND));
	json_object_set_new(j, "key", key_json(st));
	json_object_set_new(j, "created", time_json(st, COL_CREATED));
	/* the version waiting for its certificate (cert merge), if any */
	json_object_set_new(j, "pending_version",
	                    sqlite3_column_type(st, COL_PENDING) == SQLITE_NULL
	                        ? json_null()
	                        : json_integer(sqlite3_column_int(st, COL_PENDING)));
out:
	for (int i = 0; i < 4; i++)
		json_decref(f[i]);
	return j;
}

/* Prepares the statement for one version (0 = current) of name. */
static kw_rc select_version(kw_store *s, const char *name, int version, sqlite3_stmt **st)
{
	if (version < 0)
		return KW_FAIL(KW_ERR_USAGE, "bad version %d", version);
	KW_GUARD(kwi_store_prepare(s,
	                           VERSION_COLUMNS
	                           " WHERE c.name = ?1 AND c.deleted_at IS NULL AND v.version ="
	                           " CASE WHEN ?2 > 0 THEN ?2 ELSE c.current_version END",
	                           st));
	sqlite3_bind_text(*st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(*st, 2, version);
	int r = sqlite3_step(*st);
	if (r == SQLITE_ROW)
		return KW_OK;
	kw_rc rc;
	if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading a certificate");
	else {
		int exists = 0;
		sqlite3_stmt *q = NULL;
		if (kwi_store_prepare(s,
		                      "SELECT 1 FROM certs WHERE name = ? AND deleted_at IS NULL",
		                      &q) == KW_OK) {
			sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
			exists = sqlite3_step(q) == SQLITE_ROW;
		}
		sqlite3_finalize(q);
		rc = exists ? KW_FAIL(KW_ERR_NOT_FOUND, "certificate '%s' has no version %d", name,
		                      version)
		            : KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST,
		                           "unknown certificate '%s'", name);
	}
	sqlite3_finalize(*st);
	*st = NULL;
	return rc;
}

kw_rc kwi_cert_show(kw_store *s, const char *name, int version, json_t **out)
{
	sqlite3_stmt *st = NULL;
	*out = NULL;
	KW_GUARD(select_version(s, name, version, &st));
	*out = row_json(st);
	sqlite3_finalize(st);
	return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kw_cert_list(kw_store *s, json_t **out)
{
	sqlite3_stmt *st = NULL;
	kw_error_clear();
	*out = json_array();
	if (*out == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = kwi_store_prepare(s,
	                             VERSION_COLUMNS " WHERE v.version = c.current_version"
	                                             " AND c.deleted_at IS NULL ORDER BY c.name",
	                             &st);
	int r = SQLITE_DONE;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW)
		if (json_array_append_new(*out, row_json(st)) != 0)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "listing certificates");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
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
static kw_rc no_cert(sqlite3_stmt *st, const char *name)
{
	return KW_FAIL_HINT_ON(KW_ERR_STATE, KW_HINT_CERT_MERGE, name,
	                       "certificate '%s' version %d is %s: it has no certificate yet", name,
	                       sqlite3_column_int(st, COL_VERSION),
	                       (const char *)sqlite3_column_text(st, COL_STATUS));
}

kw_rc kwi_cert_export(kw_store *s, const char *name, int version, int with_chain, char **pem)
{
	kw_rc rc = KW_OK;
	sqlite3_stmt *st = NULL;
	*pem = NULL;
	KW_GUARD(select_version(s, name, version, &st));
	BIO *b = BIO_new(BIO_s_mem());
	X509 *x = column_cert(st, COL_CERT);
	if (x == NULL) {
		rc = no_cert(st, name);
		goto out;
	}
	if (b == NULL || !PEM_write_bio_X509(b, x)) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	const unsigned char *p = sqlite3_column_blob(st, COL_CHAIN);
	const unsigned char *end = p + sqlite3_column_bytes(st, COL_CHAIN);
	while (with_chain && p && p < end) {
		X509 *c = d2i_X509(NULL, &p, end - p);
		if (c == NULL) {
			rc =
			    KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable chain", name);
			goto out;
		}
		PEM_write_bio_X509(b, c);
		X509_free(c);
	}
	rc = bio_string(b, pem);
out:
	X509_free(x);
	BIO_free(b);
	sqlite3_finalize(st);
	return rc;
}

/* Opens the version's device and hands back its signer parts. */
static kw_rc version_key(kw_store *s, sqlite3_stmt *st, kwi_device *dev, kw_keyref *ref,
                         kw_key_type *type)
{
	*type = kw_key_type_from_name((const char *)sqlite3_column_text(st, COL_KEY_TYPE));
	ref->len = (size_t)sqlite3_column_bytes(st, COL_KEY_REF);
	ref->data = malloc(ref->len ? ref->len : 1);
	if (ref->data == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	memcpy(ref->data, sqlite3_column_blob(st, COL_KEY_REF), ref->len);
	return kwi_device_open_id(s, sqlite3_column_int64(st, COL_BACKEND_ID), dev);
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
	sqlite3_stmt *st = NULL;
	kwi_device dev = {0};
	kw_keyref ref = {0};
	kwi_cert_template t = {0};
	EVP_PKEY *pub = NULL;
	X509_REQ *req = NULL;
	BIO *b = NULL;
	kw_key_type type;
	time_t now;
	int pending = 0;
	kw_error_clear();
	*pem = NULL;
	KW_GUARD(kwi_now(&now));
	KW_GUARD(select_version(s, name, 0, &st));
	if ((rc = pending_csr(s, name, &pending, pem)) != KW_OK || pending) {
		sqlite3_finalize(st);
		return rc;
	}
	json_t *policy = json_loads((const char *)sqlite3_column_text(st, COL_POLICY), 0, NULL);
	if (policy == NULL) {
		rc = KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable policy", name);
		goto out;
	}
	if ((rc = kwi_policy_template(policy, now, &t)) != KW_OK ||
	    (rc = version_key(s, st, &dev, &ref, &type)) != KW_OK)
		goto out;
	kwi_signer k = {&dev, &ref, type};
	if ((rc = kwi_signer_pubkey(&k, &pub)) != KW_OK ||
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
	EVP_PKEY_free(pub);
	kwi_template_clear(&t);
	kw_keyref_clear(&ref);
	kwi_device_close(&dev);
	json_decref(policy);
	sqlite3_finalize(st);
	return rc;
}

/* Stores the certify evidence with the version (its key_attrs gain a
 * "certify" object) and records the event, in one transaction. */
static kw_rc certify_store(kw_store *s, const char *name, int version, const char *attrs_text,
                           json_t *certify)
{
	json_t *attrs = attrs_text ? json_loads(attrs_text, 0, NULL) : NULL;
	sqlite3_stmt *st = NULL;
	char *text = NULL;
	kw_rc rc = KW_OK;

	if (attrs == NULL || !json_is_object(attrs)) {
		json_decref(attrs);
		attrs = json_object();
	}
	if (attrs == NULL || json_object_set(attrs, "certify", certify) != 0 ||
	    (text = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		json_decref(attrs);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	json_decref(attrs);
	if ((rc = kwi_store_begin(s)) != KW_OK) {
		free(text);
		return rc;
	}
	rc = kwi_store_prepare(s,
	                       "UPDATE versions SET key_attrs = ?1 WHERE version = ?3 AND cert_id ="
	                       " (SELECT id FROM certs WHERE name = ?2 AND deleted_at IS NULL)",
	                       &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, version);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = KWI_DB_FAIL(s, "storing the certify evidence");
	}
	sqlite3_finalize(st);
	free(text);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "cert.certified", name, version,
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
static kw_rc certify_json(kw_store *s, sqlite3_stmt *st, kwi_device *dev, const kw_keyref *ref,
                          json_t **out)
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
	rc = certify_store(s, (const char *)sqlite3_column_text(st, COL_NAME),
	                   sqlite3_column_int(st, COL_VERSION),
	                   (const char *)sqlite3_column_text(st, COL_ATTRS), c);
	if (rc == KW_OK)
		*out = json_incref(c);
	json_decref(ev);
	return rc;
}

kw_rc kw_cert_verify(kw_store *s, const char *name, int version, json_t **out)
{
	kw_rc rc = KW_OK;
	sqlite3_stmt *st = NULL;
	kwi_device dev = {0};
	kw_keyref ref = {0};
	kw_key_attrs attrs = {0};
	EVP_PKEY *pub = NULL;
	X509 *x = NULL;
	kw_key_type type;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(select_version(s, name, version, &st));
	if ((rc = version_key(s, st, &dev, &ref, &type)) != KW_OK)
		goto out;
	kwi_signer k = {&dev, &ref, type};
	if ((rc = kwi_signer_pubkey(&k, &pub)) != KW_OK ||
	    (rc = kwi_device_key_attrs(&dev, &ref, &attrs)) != KW_OK)
		goto out;
	json_t *certify = NULL;
	if ((rc = certify_json(s, st, &dev, &ref, &certify)) != KW_OK)
		goto out;
	x = column_cert(st, COL_CERT);
	/* null: a pending version has no certificate to match yet */
	json_t *match = x ? json_boolean(EVP_PKEY_eq(X509_get0_pubkey(x), pub) == 1) : json_null();
	*out = json_pack("{s:o,s:i,s:o,s:o,s:b,s:b,s:o,s:o}", "name", text_json(st, COL_NAME),
	                 "version", sqlite3_column_int(st, COL_VERSION), "backend",
	                 text_json(st, COL_BACKEND), "key_type", text_json(st, COL_KEY_TYPE),
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
	kw_keyref_clear(&ref);
	kwi_device_close(&dev);
	sqlite3_finalize(st);
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
	sqlite3_stmt *st = NULL;
	kwi_device dev = {0};
	kw_keyref ref = {0};
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
	KW_GUARD(select_version(s, name, 0, &st));
	if (sqlite3_column_type(st, COL_CERT) == SQLITE_NULL)
		rc = no_cert(st, name);
	else if (strcmp(format, "keyward") == 0)
		rc = keyward_ref(s, name, out);
	else if ((rc = version_key(s, st, &dev, &ref, &type)) == KW_OK) {
		rc = kwi_device_key_ref_export(&dev, &ref, format, out);
	}
	kw_keyref_clear(&ref);
	kwi_device_close(&dev);
	sqlite3_finalize(st);
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
