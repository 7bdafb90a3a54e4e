/* see store/store_certs.h: certificates and their versions */
#include <stdlib.h>
#include <string.h>

#include "policy/model.h"
#include "store/sql.h"
#include "store/store_certs.h"
#include "store/store_issuers.h"

static const char *const status_names[] = {"unknown", "pending", "active", "superseded", "failed"};

const char *kwi_version_status_name(kwi_version_status s)
{
	return (unsigned)s < sizeof(status_names) / sizeof(*status_names) ? status_names[s]
	                                                                  : status_names[0];
}

static kwi_version_status status_from(const unsigned char *t)
{
	for (size_t i = 1; t && i < sizeof(status_names) / sizeof(*status_names); i++)
		if (strcmp((const char *)t, status_names[i]) == 0)
			return (kwi_version_status)i;
	return KWI_VERSION_UNKNOWN;
}

void kwi_cert_row_clear(kwi_cert_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->name);
	kwi_policy_free(r->policy);
	json_decref(r->policy_doc);
	memset(r, 0, sizeof(*r));
}

void kwi_version_row_clear(kwi_version_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->backend);
	free((char *)r->backend_kind);
	free((char *)r->backend_config);
	kw_key_blob_clear(&r->ref);
	json_decref(r->key_attrs);
	free((char *)r->issuer);
	free((unsigned char *)r->cert_der);
	free((unsigned char *)r->chain_der);
	free((unsigned char *)r->csr_der);
	free((char *)r->serial);
	free((char *)r->thumbprint_sha1);
	free((char *)r->thumbprint_sha256);
	free((char *)r->subject_dn);
	free((char *)r->issuer_dn);
	free((char *)r->sans);
	free((char *)r->spki_sha256);
	memset(r, 0, sizeof(*r));
}

void kwi_version_rows_free(kwi_version_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		kwi_version_row_clear(&rows[i]);
	free(rows);
}

/* ---- reading ---- */

/* The certificate's columns (CERT_N of them), then its version's. */
#define CERT_COLUMNS                                                                               \
	"c.id, c.name, c.policy, c.enabled, c.current_version, c.deleted_at, c.created_at,"        \
	" c.updated_at, (SELECT MAX(p.version) FROM versions p"                                    \
	" WHERE p.cert_id = c.id AND p.status = 'pending')"
#define CERT_N 9
#define VERSION_COLUMNS                                                                            \
	"v.cert_id, v.version, v.status, v.backend_id, b.name, b.kind, b.config, v.key_type,"      \
	" v.key_ref, v.key_attrs, v.exportable, v.generated_on_device, v.issuer, v.cert_der,"      \
	" v.chain_der, v.csr_der, v.serial, v.not_before, v.not_after, v.thumbprint_sha1,"         \
	" v.thumbprint_sha256, v.subject_dn, v.issuer_dn, v.sans, v.spki_sha256, v.created_at"
/* Every certificate with its current version's columns (NULL when it has
 * none or the row is missing). */
#define WITH_CURRENT                                                                               \
	"SELECT " CERT_COLUMNS ", " VERSION_COLUMNS " FROM certs c LEFT JOIN versions v"           \
	" ON v.cert_id = c.id AND v.version = c.current_version"                                   \
	" LEFT JOIN backends b ON b.id = v.backend_id"
#define JOINED                                                                                     \
	"SELECT " CERT_COLUMNS ", " VERSION_COLUMNS " FROM certs c JOIN versions v"                \
	" ON v.cert_id = c.id JOIN backends b ON b.id = v.backend_id"

enum {
	V_CERT_ID,
	V_VERSION,
	V_STATUS,
	V_BACKEND_ID,
	V_BACKEND,
	V_KIND,
	V_CONFIG,
	V_KEY_TYPE,
	V_KEY_REF,
	V_ATTRS,
	V_EXPORTABLE,
	V_LOCAL,
	V_ISSUER,
	V_CERT,
	V_CHAIN,
	V_CSR,
	V_SERIAL,
	V_NB,
	V_NA,
	V_SHA1,
	V_SHA256,
	V_SUBJECT_DN,
	V_ISSUER_DN,
	V_SANS,
	V_SPKI,
	V_CREATED,
};

static int is_null(sqlite3_stmt *st, int col)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL;
}

/* A text column's copy; 0 when it is not NULL and could not be copied. */
static int text(sqlite3_stmt *st, int col, const char **out)
{
	*out = kwi_col_dup(st, col);
	return *out != NULL || is_null(st, col);
}

static int blob(sqlite3_stmt *st, int col, const unsigned char **out, size_t *len)
{
	return kwi_col_blob_dup_const(st, col, out, len) == KW_OK;
}

static kw_rc cert_read(sqlite3_stmt *st, unsigned flags, kwi_cert_row *c)
{
	c->id = sqlite3_column_int64(st, 0);
	c->enabled = sqlite3_column_int(st, 3);
	c->current_version = sqlite3_column_int(st, 4);
	c->deleted = !is_null(st, 5);
	c->deleted_at = (time_t)sqlite3_column_int64(st, 5);
	c->created_at = (time_t)sqlite3_column_int64(st, 6);
	c->updated_at = (time_t)sqlite3_column_int64(st, 7);
	c->pending_version = sqlite3_column_int(st, 8);
	const char *policy = (const char *)sqlite3_column_text(st, 2);
	if (flags & KWI_LOAD_POLICY)
		c->policy = kwi_policy_from_text(policy);
	if ((flags & KWI_LOAD_POLICY_DOC) && policy)
		c->policy_doc = json_loads(policy, 0, NULL);
	return text(st, 1, &c->name) ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

static int facts_complete(sqlite3_stmt *st, int base)
{
	for (int col = V_SUBJECT_DN; col <= V_SPKI; col++)
		if (is_null(st, base + col))
			return 0;
	return 1;
}

static int der_read(sqlite3_stmt *st, int b, unsigned flags, kwi_version_row *v)
{
	int all = flags & KWI_LOAD_DER;
	int some = all || ((flags & KWI_LOAD_DER_FOR_FACTS) && !facts_complete(st, b));
	return (!some || (blob(st, b + V_CERT, &v->cert_der, &v->cert_len) &&
	                  blob(st, b + V_CSR, &v->csr_der, &v->csr_len))) &&
	       (!all || blob(st, b + V_CHAIN, &v->chain_der, &v->chain_len));
}

/* The version's columns from column b on. */
static kw_rc version_read(sqlite3_stmt *st, int b, unsigned flags, kwi_version_row *v)
{
	v->cert_id = sqlite3_column_int64(st, b + V_CERT_ID);
	v->version = sqlite3_column_int(st, b + V_VERSION);
	v->status = status_from(sqlite3_column_text(st, b + V_STATUS));
	v->backend_id = sqlite3_column_int64(st, b + V_BACKEND_ID);
	v->type = kw_key_type_from_name((const char *)sqlite3_column_text(st, b + V_KEY_TYPE));
	if (!is_null(st, b + V_ATTRS))
		v->key_attrs =
		    json_loads((const char *)sqlite3_column_text(st, b + V_ATTRS), 0, NULL);
	v->exportable = sqlite3_column_int(st, b + V_EXPORTABLE);
	v->generated_on_device = sqlite3_column_int(st, b + V_LOCAL);
	v->has_cert = !is_null(st, b + V_CERT);
	v->has_validity = !is_null(st, b + V_NB) && !is_null(st, b + V_NA);
	v->not_before = (time_t)sqlite3_column_int64(st, b + V_NB);
	v->not_after = (time_t)sqlite3_column_int64(st, b + V_NA);
	v->created_at = (time_t)sqlite3_column_int64(st, b + V_CREATED);
	unsigned char *ref = NULL;
	int ok = kwi_col_blob_dup(st, b + V_KEY_REF, &ref, &v->ref.len) == KW_OK;
	v->ref.data = ref;
	if (ok && ref == NULL && (v->ref.data = malloc(1)) == NULL)
		ok = 0; /* a key blob is never NULL to its readers */
	ok = ok && text(st, b + V_BACKEND, &v->backend) && text(st, b + V_KIND, &v->backend_kind) &&
	     text(st, b + V_CONFIG, &v->backend_config) && text(st, b + V_ISSUER, &v->issuer) &&
	     text(st, b + V_SERIAL, &v->serial) && text(st, b + V_SHA1, &v->thumbprint_sha1) &&
	     text(st, b + V_SHA256, &v->thumbprint_sha256) &&
	     text(st, b + V_SUBJECT_DN, &v->subject_dn) &&
	     text(st, b + V_ISSUER_DN, &v->issuer_dn) && text(st, b + V_SANS, &v->sans) &&
	     text(st, b + V_SPKI, &v->spki_sha256) && der_read(st, b, flags, v);
	return ok ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

/* Steps st for one joined row into cert (may be NULL) and ver. */
static kw_rc joined_one(kw_store *s, sqlite3_stmt *st, unsigned flags, kwi_cert_row *cert,
                        kwi_version_row *ver, int *found)
{
	kwi_cert_row c = {0};
	int r = sqlite3_step(st);
	kw_rc rc = KW_OK;
	if (r == SQLITE_ROW) {
		*found = 1;
		rc = cert_read(st, flags, &c);
		if (rc == KW_OK)
			rc = version_read(st, CERT_N, flags, ver);
	} else if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading a certificate");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		*found = 0;
		kwi_version_row_clear(ver);
		kwi_cert_row_clear(&c);
	}
	if (cert)
		*cert = c;
	else
		kwi_cert_row_clear(&c);
	return rc;
}

/* n 0: the current version. */
static kw_rc version_load(kw_store *s, const char *name, int n, unsigned flags, kwi_cert_row *cert,
                          kwi_version_row *ver, int *found)
{
	sqlite3_stmt *st = NULL;
	if (cert)
		memset(cert, 0, sizeof(*cert));
	memset(ver, 0, sizeof(*ver));
	*found = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           JOINED " WHERE c.name = ?1 AND c.deleted_at IS NULL AND"
	                                  " v.version = CASE WHEN ?2 > 0 THEN ?2"
	                                  " ELSE c.current_version END",
	                           &st));
	sqlite3_bind_text(st, 1, name ? name : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, n);
	return joined_one(s, st, flags, cert, ver, found);
}

kw_rc kwi_store_version_current(kw_store *s, const char *name, unsigned flags, kwi_cert_row *cert,
                                kwi_version_row *ver, int *found)
{
	return version_load(s, name, 0, flags, cert, ver, found);
}

kw_rc kwi_store_version_get(kw_store *s, const char *name, int n, unsigned flags,
                            kwi_cert_row *cert, kwi_version_row *ver, int *found)
{
	if (n < 1) {
		if (cert)
			memset(cert, 0, sizeof(*cert));
		memset(ver, 0, sizeof(*ver));
		*found = 0;
		return KW_OK;
	}
	return version_load(s, name, n, flags, cert, ver, found);
}

/* Runs st and calls fn with each row (version columns from column b; b 0:
 * no certificate columns). */
static kw_rc each(kw_store *s, sqlite3_stmt *st, int b, unsigned flags, const char *what,
                  kwi_version_fn fn, void *arg)
{
	int r = SQLITE_DONE;
	kw_rc rc = KW_OK;
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		kwi_cert_row c = {0};
		kwi_version_row v = {0};
		if (b == 0 || (rc = cert_read(st, flags, &c)) == KW_OK)
			rc = version_read(st, b, flags, &v);
		if (rc == KW_OK)
			rc = fn(&c, &v, arg);
		kwi_version_row_clear(&v);
		kwi_cert_row_clear(&c);
	}
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, what);
	sqlite3_finalize(st);
	return rc;
}

kw_rc kwi_store_current_each(kw_store *s, unsigned flags, kwi_version_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	/* a current version that is not there still lists its certificate (the
	 * version row all zero): no certificate is dropped silently */
	KW_GUARD(kwi_store_prepare(s,
	                           WITH_CURRENT " WHERE c.current_version IS NOT NULL"
	                                        " AND c.deleted_at IS NULL ORDER BY c.name",
	                           &st));
	return each(s, st, CERT_N, flags, "listing certificates", fn, arg);
}

kw_rc kwi_store_deleted_each(kw_store *s, unsigned flags, kwi_version_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(
	    s, WITH_CURRENT " WHERE c.deleted_at IS NOT NULL ORDER BY c.name", &st));
	return each(s, st, CERT_N, flags, "listing deleted certificates", fn, arg);
}

typedef struct {
	kwi_version_row *v;
	size_t n, cap;
} row_array;

static kw_rc row_append(const kwi_cert_row *c, const kwi_version_row *v, void *arg)
{
	row_array *a = arg;
	(void)c;
	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 8;
		kwi_version_row *more = realloc(a->v, cap * sizeof(*more));
		if (more == NULL)
			return KW_FAIL(KW_ERR_NOMEM, "out of memory");
		a->v = more;
		a->cap = cap;
	}
	a->v[a->n++] = *v; /* taken: the caller's copy is cleared below */
	memset((kwi_version_row *)v, 0, sizeof(*v));
	return KW_OK;
}

static kw_rc rows_of(kw_store *s, sqlite3_stmt *st, int64_t cert_id, unsigned flags,
                     const char *what, kwi_version_row **rows, size_t *n)
{
	row_array a = {0};
	sqlite3_bind_int64(st, 1, cert_id);
	kw_rc rc = each(s, st, 0, flags, what, row_append, &a);
	if (rc != KW_OK) {
		kwi_version_rows_free(a.v, a.n);
		a.v = NULL;
		a.n = 0;
	}
	*rows = a.v;
	*n = a.n;
	return rc;
}

kw_rc kwi_store_version_list(kw_store *s, int64_t cert_id, unsigned flags, kwi_version_row **rows,
                             size_t *n)
{
	sqlite3_stmt *st = NULL;
	*rows = NULL;
	*n = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT " VERSION_COLUMNS " FROM versions v JOIN backends b"
	                           " ON b.id = v.backend_id WHERE v.cert_id = ?1"
	                           " ORDER BY v.version",
	                           &st));
	return rows_of(s, st, cert_id, flags, "listing versions", rows, n);
}

kw_rc kwi_store_version_keys(kw_store *s, int64_t cert_id, kwi_version_row **rows, size_t *n)
{
	sqlite3_stmt *st = NULL;
	*rows = NULL;
	*n = 0;
	/* the version columns, NULL but for backend_id and key_ref */
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT DISTINCT NULL, NULL, NULL, backend_id, NULL, NULL, NULL,"
	                           " NULL, key_ref, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
	                           " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
	                           " FROM versions WHERE cert_id = ?1 ORDER BY backend_id",
	                           &st));
	return rows_of(s, st, cert_id, 0, "listing the keys to destroy", rows, n);
}

kw_rc kwi_store_version_key_shared(kw_store *s, const kwi_version_row *v, int *shared)
{
	sqlite3_stmt *st = NULL;
	*shared = 0;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT COUNT(*) FROM versions WHERE backend_id = ? AND"
	                           " key_ref = ? AND NOT (cert_id = ? AND version = ?)",
	                           &st));
	sqlite3_bind_int64(st, 1, v->backend_id);
	sqlite3_bind_blob(st, 2, v->ref.data, (int)v->ref.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, v->cert_id);
	sqlite3_bind_int(st, 4, v->version);
	int r = sqlite3_step(st);
	*shared = r == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? KW_OK : KWI_DB_FAIL(s, "looking for the key's other versions");
}

kw_rc kwi_store_cert_get(kw_store *s, const char *name, unsigned flags, kwi_cert_row *out,
                         int *found)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	*found = 0;
	KW_GUARD(
	    kwi_store_prepare(s, "SELECT " CERT_COLUMNS " FROM certs c WHERE c.name = ?1", &st));
	sqlite3_bind_text(st, 1, name ? name : "", -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	kw_rc rc = KW_OK;
	if (r == SQLITE_ROW) {
		*found = 1;
		rc = cert_read(st, flags, out);
	} else if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading a certificate");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		*found = 0;
		kwi_cert_row_clear(out);
	}
	return rc;
}

kw_rc kwi_store_cert_exists(kw_store *s, const char *name, int *exists)
{
	sqlite3_stmt *st = NULL;
	*exists = 0;
	KW_GUARD(kwi_store_prepare(s, "SELECT 1 FROM certs WHERE name = ?", &st));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	*exists = r == SQLITE_ROW;
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK
	                                           : KWI_DB_FAIL(s, "looking up a certificate");
}
