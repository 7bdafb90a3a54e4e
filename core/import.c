/* see keyward/import.h: keyward cert import */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "import.h"
#include "version.h"

#include <keyward/import.h>

static kw_rc name_free(kw_store *s, const char *name)
{
	sqlite3_stmt *st = NULL;
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 64 || !isalnum((unsigned char)name[0]) ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return KW_FAIL(KW_ERR_USAGE,
		               "bad certificate name '%s': 1 to 64 letters, digits, '.', '_' or "
		               "'-', starting with a letter or digit",
		               name ? name : "");
	KW_GUARD(kwi_store_prepare(s, "SELECT 1 FROM certs WHERE name = ?", &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r == SQLITE_ROW)
		return KW_FAIL(KW_ERR_EXISTS, "certificate '%s' already exists", name);
	if (r != SQLITE_DONE)
		return KWI_DB_FAIL(s, "looking up a certificate");
	return KW_OK;
}

static int self_signed(X509 *x)
{
	int r = X509_check_issued(x, x) == X509_V_OK && X509_verify(x, X509_get0_pubkey(x)) == 1;
	ERR_clear_error();
	return r;
}

/* The policy the certificate implies: subject, SANs, key type, lifetime. */
static kw_rc policy_derive(const kw_cert_import_request *req, const kwi_import_input *in,
                           json_t **out)
{
	json_t *subject = kwi_name_json(X509_get_subject_name(in->leaf));
	GENERAL_NAMES *gens = X509_get_ext_d2i(in->leaf, NID_subject_alt_name, NULL, NULL);
	json_t *sans = kwi_sans_json(gens);
	const char **san_v = NULL;
	kw_rc rc = KW_OK;

	if (subject == NULL || sans == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	san_v = calloc(json_array_size(sans) + 1, sizeof(*san_v));
	if (san_v == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(sans); i++)
		san_v[i] = json_string_value(json_array_get(sans, i));
	kwi_issued f = {0};
	if ((rc = kwi_issued_facts(in->leaf, &f)) != KW_OK)
		goto out;
	double secs = difftime(f.not_after, f.not_before);
	kwi_issued_clear(&f);
	int days = secs <= 86400 ? 1 : (int)ceil(secs / 86400.0);
	kw_cert_request r = {
	    .name = req->name,
	    .backend = req->backend,
	    .subject = json_string_value(subject),
	    .sans = json_array_size(sans) ? san_v : NULL,
	    .n_sans = json_array_size(sans),
	    .key_type = kw_key_type_name(in->type),
	    .days = days > 36500 ? 36500 : days,
	    .issuer = self_signed(in->leaf) ? "self" : "unknown",
	};
	rc = kwi_policy_from_request(&r, out);
out:
	free(san_v);
	json_decref(sans);
	json_decref(subject);
	GENERAL_NAMES_free(gens);
	return rc;
}

/* The chain as the store keeps it: the leaf's issuers, DER back to back. */
static kw_rc chain_build(const kwi_import_input *in, kwi_issued *v, json_t *dropped)
{
	STACK_OF(X509) *chain = NULL;

	if (sk_X509_num(in->rest) == 0)
		return KW_OK;
	KW_GUARD(kwi_chain_order(in->leaf, in->rest, &chain, dropped));
	kw_rc rc = KW_OK;
	for (int i = 0; rc == KW_OK && i < sk_X509_num(chain); i++) {
		unsigned char *der = NULL;
		int n = i2d_X509(sk_X509_value(chain, i), &der);
		unsigned char *grown = n > 0 ? realloc(v->chain, v->chain_len + (size_t)n) : NULL;
		if (grown == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory encoding the chain");
		else {
			memcpy(grown + v->chain_len, der, (size_t)n);
			v->chain = grown;
			v->chain_len += (size_t)n;
		}
		OPENSSL_free(der);
	}
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

static kw_rc record(kw_store *s, const char *name, const json_t *policy, int64_t backend_id,
                    const kw_keyref *ref, kw_key_type type, const kwi_issued *v, time_t now)
{
	sqlite3_stmt *st = NULL;
	int64_t cert_id = 0;
	char *text = json_dumps(policy, JSON_COMPACT | JSON_SORT_KEYS);
	kw_rc rc;

	if (text == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if ((rc = kwi_store_begin(s)) != KW_OK) {
		free(text);
		return rc;
	}
	rc = kwi_store_prepare(s,
	                       "INSERT INTO certs (name, policy, current_version, created_at,"
	                       " updated_at) VALUES (?, ?, 1, ?, ?)",
	                       &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = KWI_DB_FAIL(s, "recording the certificate");
		cert_id = sqlite3_last_insert_rowid(s->db);
	}
	sqlite3_finalize(st);
	free(text);
	if (rc == KW_OK)
		rc = kwi_version_insert(s, cert_id, 1, backend_id, ref, type, v, now);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "cert.imported", name, 1,
		                      json_pack("{s:s,s:s,s:s,s:s,s:b,s:b}", "key_type",
		                                kw_key_type_name(type), "thumbprint_sha256",
		                                v->sha256, "serial", v->serial, "issuer", v->issuer,
		                                "generated_on_device", v->attrs.generated_on_device,
		                                "exportable", v->attrs.exportable));
	if (rc == KW_OK)
		return kwi_store_commit(s);
	kwi_store_rollback(s);
	return rc;
}

/* The key goes into the device and its software copy away at once. */
static kw_rc key_place(kwi_device *dev, kwi_import_input *in, const char *name, kw_keyref *ref)
{
	char label[96];

	if (dev->ops->key_import == NULL)
		return KW_FAIL(KW_ERR_UNSUPPORTED, "backend '%s' (%s) cannot import keys",
		               dev->name, dev->kind);
	snprintf(label, sizeof(label), "keyward:%s", name);
	kw_rc rc = dev->ops->key_import(dev->ctx, in->key, in->type, label, ref);
	EVP_PKEY_free(in->key);
	in->key = NULL;
	return rc;
}

static json_t *result_json(const kw_cert_import_request *req, const kwi_issued *v, kw_key_type type)
{
	return json_pack("{s:s,s:i,s:s,s:s,s:s,s:b,s:b,s:b}", "name", req->name, "version", 1,
	                 "backend", req->backend, "key_type", kw_key_type_name(type), "issuer",
	                 v->issuer, "generated_on_device", v->attrs.generated_on_device,
	                 "exportable", v->attrs.exportable, "shredded", req->shred_input != 0);
}

kw_rc kw_cert_import(kw_store *s, const kw_cert_import_request *req, json_t **out)
{
	kwi_import_input in = {0};
	kwi_device dev = {0};
	kw_keyref ref = {0};
	kwi_issued v = {0};
	json_t *policy = NULL, *dropped = json_array();
	time_t now;
	kw_rc rc;

	kw_error_clear();
	if (out)
		*out = NULL;
	if ((req->pem_path == NULL) == (req->pkcs12_path == NULL))
		return KW_FAIL(KW_ERR_USAGE, "give exactly one of --pem FILE and --pkcs12 FILE");
	if (req->backend == NULL || req->backend[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE, "no backend given (--backend NAME; see: keyward "
		                             "backend list)");
	const char *path = req->pem_path ? req->pem_path : req->pkcs12_path;
	if ((rc = name_free(s, req->name)) != KW_OK || (rc = kwi_now(&now)) != KW_OK ||
	    (rc = kwi_import_read(path, req->pkcs12_path != NULL, req->password_source, &in)) !=
	        KW_OK ||
	    (rc = policy_derive(req, &in, &policy)) != KW_OK ||
	    (rc = kwi_issued_facts(in.leaf, &v)) != KW_OK ||
	    (rc = chain_build(&in, &v, dropped)) != KW_OK)
		goto out;
	snprintf(v.issuer, sizeof(v.issuer), "%s",
	         json_string_value(json_object_get(json_object_get(policy, "issuer"), "name"))
	             ? json_string_value(json_object_get(json_object_get(policy, "issuer"), "name"))
	             : "unknown");
	if ((rc = kwi_device_open(s, req->backend, &dev)) != KW_OK ||
	    (rc = key_place(&dev, &in, req->name, &ref)) != KW_OK)
		goto out;
	if ((rc = dev.ops->key_attrs(dev.ctx, &ref, &v.attrs)) == KW_OK) {
		v.cert = X509_dup(in.leaf);
		rc = v.cert ? record(s, req->name, policy, dev.id, &ref, in.type, &v, now)
		            : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if (rc != KW_OK) {
		if (dev.ops->key_destroy)
			(void)dev.ops->key_destroy(dev.ctx, &ref);
		goto out;
	}
	kwi_cert_mirror(&dev, &ref, v.cert);
	if (req->shred_input)
		rc = kwi_file_shred(path);
	if (out && rc == KW_OK)
		*out = result_json(req, &v, in.type);
out:
	kwi_import_input_clear(&in);
	kwi_issued_clear(&v);
	kw_keyref_clear(&ref);
	kwi_device_close(&dev);
	json_decref(policy);
	json_decref(dropped);
	return rc;
}
