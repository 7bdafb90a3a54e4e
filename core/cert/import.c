/* see keyward/import.h: keyward cert import */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cert/import_parse.h"
#include "cert/issue.h"

#include <keyward/import.h>

static kw_rc name_free(kw_store *s, const char *name)
{
	int exists = 0;
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 64 || !isalnum((unsigned char)name[0]) ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return KW_FAIL(KW_ERR_USAGE,
		               "bad certificate name '%s': 1 to 64 letters, digits, '.', '_' or "
		               "'-', starting with a letter or digit",
		               name ? name : "");
	KW_GUARD(kwi_store_cert_exists(s, name, &exists));
	if (exists)
		return KW_FAIL(KW_ERR_EXISTS, "certificate '%s' already exists", name);
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
                           kwi_policy **out)
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

static kw_rc record(kw_store *s, const char *event, const char *name, const kwi_policy *policy,
                    int64_t backend_id, const kw_key_blob *ref, kw_key_type type,
                    const kwi_issued *v, time_t now)
{
	int64_t cert_id = 0;
	kw_rc rc;

	KW_GUARD(kwi_store_begin(s));
	rc = kwi_store_cert_insert(s, name, policy, now, &cert_id);
	if (rc == KW_OK)
		rc = kwi_version_insert(s, cert_id, 1, backend_id, ref, type, v, now);
	if (rc == KW_OK)
		rc = kwi_event_append(s, event, name, 1,
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

/* What import and adopt hold while they work, let go on every path
 * (work_clear). */
typedef struct {
	kwi_import_input in;
	kwi_device dev;
	kw_key_blob ref;
	kwi_issued v;
	kwi_policy *policy;
	json_t *dropped; /* certificates kwi_chain_order left out of the chain */
	time_t now;
} import_work;

/* Starts a command: no error, no output yet. */
static kw_rc work_begin(import_work *w, json_t **out)
{
	kw_error_clear();
	if (out)
		*out = NULL;
	w->dropped = json_array();
	return w->dropped ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

static void work_clear(import_work *w)
{
	kwi_import_input_clear(&w->in);
	kwi_issued_clear(&w->v);
	kw_key_blob_clear(&w->ref);
	kwi_device_close(&w->dev);
	kwi_policy_free(w->policy);
	json_decref(w->dropped);
}

/* The key goes into the device and its software copy away at once. */
static kw_rc key_place(kwi_device *dev, kwi_import_input *in, const char *name, kw_key_blob *ref)
{
	char label[96];

	snprintf(label, sizeof(label), "keyward:%s", name);
	kw_rc rc = kwi_device_key_import(dev, in->key, in->type, label, ref);
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

static kw_rc import_args(const kw_cert_import_request *req)
{
	if ((req->pem_path == NULL) == (req->pkcs12_path == NULL))
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_PEM_OR_PKCS12,
		                    "give exactly one of a PEM file and a PKCS#12 file");
	if (req->backend == NULL || req->backend[0] == '\0')
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_BACKEND, "no backend given");
	return KW_OK;
}

kw_rc kw_cert_import(kw_store *s, const kw_cert_import_request *req, json_t **out)
{
	import_work w = {0};
	kw_rc rc;

	const char *path = req->pem_path ? req->pem_path : req->pkcs12_path;
	if ((rc = work_begin(&w, out)) != KW_OK || (rc = import_args(req)) != KW_OK ||
	    (rc = name_free(s, req->name)) != KW_OK || (rc = kwi_now(&w.now)) != KW_OK ||
	    (rc = kwi_import_read(path, req->input_name, req->pkcs12_path != NULL,
	                          req->password_source, &w.in)) != KW_OK ||
	    (rc = policy_derive(req, &w.in, &w.policy)) != KW_OK ||
	    (rc = kwi_issued_facts(w.in.leaf, &w.v)) != KW_OK ||
	    (rc = chain_build(&w.in, &w.v, w.dropped)) != KW_OK)
		goto out;
	snprintf(w.v.issuer, sizeof(w.v.issuer), "%s", w.policy->issuer.name);
	if ((rc = kwi_device_open(s, req->backend, &w.dev)) != KW_OK ||
	    (rc = key_place(&w.dev, &w.in, req->name, &w.ref)) != KW_OK)
		goto out;
	if ((rc = kwi_device_key_attrs(&w.dev, &w.ref, &w.v.attrs)) == KW_OK) {
		w.v.cert = X509_dup(w.in.leaf);
		rc = w.v.cert ? record(s, "cert.imported", req->name, w.policy, w.dev.id, &w.ref,
		                       w.in.type, &w.v, w.now)
		              : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if (rc != KW_OK) {
		kwi_device_key_discard(&w.dev, &w.ref);
		goto out;
	}
	kwi_cert_mirror(&w.dev, &w.ref, w.v.cert);
	if (req->shred_input)
		rc = kwi_file_shred(path);
	if (out && rc == KW_OK)
		*out = result_json(req, &w.v, w.in.type);
out:
	work_clear(&w);
	return rc;
}

/* --cert FILE: the first certificate is the key's, the others its chain. */
static kw_rc cert_file_read(const char *path, kwi_import_input *in)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x;

	if (b == NULL) {
		ERR_clear_error();
		return KW_FAIL(KW_ERR_NOT_FOUND, "cannot read certificate file %s", path);
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (in->leaf == NULL)
			in->leaf = x;
		else if (!sk_X509_push(in->rest, x)) {
			X509_free(x);
			BIO_free(b);
			return KW_FAIL(KW_ERR_NOMEM, "out of memory");
		}
	}
	ERR_clear_error();
	BIO_free(b);
	if (in->leaf == NULL)
		return KW_FAIL(KW_ERR_PARSE, "%s holds no PEM certificate", path);
	return KW_OK;
}

/* The key's public half and type, read from the device. */
static kw_rc adopt_public(kwi_device *dev, const kw_key_blob *ref, const char *what, EVP_PKEY **pub,
                          kw_key_type *type)
{
	unsigned char *der = NULL;
	size_t len = 0;

	KW_GUARD(kwi_device_key_public(dev, ref, &der, &len));
	const unsigned char *q = der;
	*pub = d2i_PUBKEY_ex(NULL, &q, (long)len, NULL, KW_SOFTWARE_PROPQ);
	free(der);
	if (*pub == NULL) {
		ERR_clear_error();
		return KW_FAIL(KW_ERR_PARSE, "cannot read the public key of %s", what);
	}
	return kwi_key_type_check(what, *pub, type);
}

/* Everything checked before anything is recorded. */
static kw_rc adopt_check(const kw_cert_adopt_request *req, kwi_device *dev, const kw_key_blob *ref,
                         kwi_import_input *in, kwi_issued *v)
{
	EVP_PKEY *pub = NULL;
	const char *what = req->key_uri ? req->key_uri : req->tss2_path;

	kw_rc rc = adopt_public(dev, ref, what, &pub, &in->type);
	if (rc == KW_OK)
		rc = kwi_device_key_attrs(dev, ref, &v->attrs);
	if (rc == KW_OK && v->attrs.exportable)
		rc = KW_FAIL(
		    KW_ERR_STATE,
		    "the key %s can leave the device (extractable or not sensitive): keyward "
		    "adopts only keys the device keeps; make a new key in it instead",
		    what);
	if (rc == KW_OK && EVP_PKEY_eq(X509_get0_pubkey(in->leaf), pub) != 1) {
		ERR_clear_error();
		rc = KW_FAIL(KW_ERR_PARSE, "the certificate%s%s does not match the key %s",
		             req->cert_path ? " in " : " on the token",
		             req->cert_path ? req->cert_path : "", what);
	}
	EVP_PKEY_free(pub);
	return rc;
}

static kw_rc adopt_args(const kw_cert_adopt_request *req)
{
	if ((req->key_uri == NULL) == (req->tss2_path == NULL))
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_KEY_URI_OR_TSS2,
		                    "give exactly one of a key URI and a TSS2 key file");
	if (req->backend == NULL || req->backend[0] == '\0')
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_BACKEND, "no backend given");
	if (req->tss2_path && req->cert_path == NULL)
		return KW_FAIL_HINT(
		    KW_ERR_USAGE, KW_HINT_GIVE_CERT_FILE,
		    "a TPM keeps no certificates: a TSS2 key file needs its certificate given");
	return KW_OK;
}

/* The key's certificate: --cert FILE, else the one the device keeps. */
static kw_rc adopt_cert(const kw_cert_adopt_request *req, unsigned char *token_der,
                        size_t token_len, kwi_import_input *in)
{
	if (req->cert_path)
		return cert_file_read(req->cert_path, in);
	if (token_der == NULL)
		return KW_FAIL_HINT(
		    KW_ERR_NOT_FOUND, KW_HINT_GIVE_CERT_FILE,
		    "the device keeps no certificate for the key %s, and none was given",
		    req->key_uri ? req->key_uri : req->tss2_path);
	const unsigned char *q = token_der;
	in->leaf = d2i_X509(NULL, &q, (long)token_len);
	if (in->leaf == NULL) {
		ERR_clear_error();
		return KW_FAIL(KW_ERR_PARSE,
		               "the certificate on the device for %s is not X.509 DER",
		               req->key_uri);
	}
	return KW_OK;
}

kw_rc kw_cert_adopt(kw_store *s, const kw_cert_adopt_request *req, json_t **out)
{
	unsigned char *token_der = NULL;
	size_t token_len = 0;
	import_work w = {0};
	kw_rc rc;

	if ((rc = work_begin(&w, out)) != KW_OK || (rc = adopt_args(req)) != KW_OK ||
	    (rc = name_free(s, req->name)) != KW_OK || (rc = kwi_now(&w.now)) != KW_OK)
		goto out;
	if ((w.in.rest = sk_X509_new_null()) == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = kwi_device_open(s, req->backend, &w.dev)) != KW_OK)
		goto out;
	if (!(kwi_device_caps(&w.dev) &
	      (req->tss2_path ? KW_CAP_RESOLVE_TSS2 : KW_CAP_RESOLVE_URI))) {
		rc = KW_FAIL(KW_ERR_USAGE, "the %s names a %s key but backend '%s' is %s",
		             req->tss2_path ? "TSS2 key file" : "key URI",
		             req->tss2_path ? "TPM" : "PKCS#11", w.dev.name, w.dev.kind);
		goto out;
	}
	kw_cert_import_request ireq = {.name = req->name, .backend = req->backend};
	if ((rc = kwi_device_key_resolve(&w.dev, req->key_uri ? req->key_uri : req->tss2_path,
	                                 &w.ref, &token_der, &token_len)) != KW_OK ||
	    (rc = adopt_cert(req, token_der, token_len, &w.in)) != KW_OK ||
	    (rc = adopt_check(req, &w.dev, &w.ref, &w.in, &w.v)) != KW_OK ||
	    (rc = policy_derive(&ireq, &w.in, &w.policy)) != KW_OK ||
	    (rc = kwi_issued_facts(w.in.leaf, &w.v)) != KW_OK ||
	    (rc = chain_build(&w.in, &w.v, w.dropped)) != KW_OK)
		goto out;
	snprintf(w.v.issuer, sizeof(w.v.issuer), "%s", w.policy->issuer.name);
	if ((w.v.cert = X509_dup(w.in.leaf)) == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Nothing is destroyed on failure: the key is not ours until recorded. */
	if ((rc = record(s, "cert.adopted", req->name, w.policy, w.dev.id, &w.ref, w.in.type, &w.v,
	                 w.now)) != KW_OK)
		goto out;
	if (out)
		*out = json_pack(
		    "{s:s,s:i,s:s,s:s,s:s,s:b,s:b,s:s}", "name", req->name, "version", 1, "backend",
		    req->backend, "key_type", kw_key_type_name(w.in.type), "issuer", w.v.issuer,
		    "generated_on_device", w.v.attrs.generated_on_device, "exportable",
		    w.v.attrs.exportable, "certificate_source", req->cert_path ? "file" : "device");
out:
	free(token_der);
	work_clear(&w);
	return rc;
}
