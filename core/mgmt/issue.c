/* see keyward/mgmt.h: client certificates the management CA issues */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <sodium.h>

#include "issuers/ca/ca_issuer.h"
#include "mgmt/mgmt_internal.h"
#include "cert/issue.h"

#define DAYS_DEFAULT 365
#define DAYS_MAX     3650
#define NAME_MAX_LEN 64
/* PBKDF2-HMAC-SHA256 iterations for the PKCS#12 file's key and certificate
 * bags: OWASP's figure for PBKDF2-SHA256 (2023). The file leaves the host,
 * so a stolen copy is attacked offline at the attacker's pace; each load
 * (curl, a browser) pays it once, a fraction of a second. The MAC's key comes
 * from the PKCS#12 KDF, one SHA-256 block per iteration where PBKDF2-HMAC
 * hashes two: twice the count makes a guess against the MAC cost as much as
 * one against the key (OpenSSL 3.0 has no PBMAC1). */
#define P12_ITER     600000
#define P12_MAC_ITER (2 * P12_ITER)

typedef struct {
	EVP_PKEY *key; /* PKCS#12: the remote admin's key, made here in software */
	EVP_PKEY *pub; /* the key certified (key, or the CSR's) */
	X509_REQ *req;
	X509_NAME *subject;
	X509 *cert;
	kwi_issued facts;
	kw_secret *password; /* NUL-terminated */
	unsigned char *p12;  /* the encrypted PKCS#12 DER */
	int p12_len;
	int file_written;
	char *pw_path; /* a generated password's file (no password source given) */
	int pw_written;
} issue_ctx;

static void issue_ctx_clear(issue_ctx *c)
{
	EVP_PKEY_free(c->key); /* OpenSSL clears the private scalar on free */
	if (c->pub != c->key)
		EVP_PKEY_free(c->pub);
	X509_REQ_free(c->req);
	X509_NAME_free(c->subject);
	X509_free(c->cert);
	kwi_issued_clear(&c->facts);
	kw_secret_free(c->password);
	OPENSSL_clear_free(c->p12, c->p12_len > 0 ? (size_t)c->p12_len : 0);
	free(c->pw_path);
	memset(c, 0, sizeof(*c));
}

static kw_rc check_request(const kw_mgmt_issue_request *r)
{
	size_t n = r->name ? strlen(r->name) : 0;
	if (n == 0 || n > NAME_MAX_LEN || !isalnum((unsigned char)r->name[0]))
		return KW_FAIL(KW_ERR_USAGE,
		               "bad client name '%s': 1 to %d characters, starting with a letter "
		               "or digit",
		               r->name ? r->name : "", NAME_MAX_LEN);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)r->name[i]) && !strchr("._-@", r->name[i]))
			return KW_FAIL(KW_ERR_USAGE,
			               "bad client name '%s': use letters, digits, '.', '_', '-' "
			               "and '@'",
			               r->name);
	if (r->role == NULL || (strcmp(r->role, "reader") != 0 && strcmp(r->role, "admin") != 0))
		return KW_FAIL(KW_ERR_USAGE, "bad role '%s' (use reader or admin)",
		               r->role ? r->role : "");
	if (r->days < 0 || r->days > DAYS_MAX)
		return KW_FAIL(KW_ERR_USAGE, "validity of %d days is out of range (1 to %d)",
		               r->days, DAYS_MAX);
	if ((r->csr != NULL) == (r->pkcs12_path != NULL))
		return KW_FAIL(KW_ERR_USAGE, "give either a CSR (the client keeps its key) or a "
		                             "PKCS#12 file to write");
	return KW_OK;
}

static kw_rc name_free(kw_store *s, const char *name)
{
	int taken = 0;
	KW_GUARD(kwi_store_mgmt_client_exists(s, name, &taken));
	if (taken)
		return KW_FAIL_HINT(
		    KW_ERR_EXISTS, KW_HINT_MGMT_LIST,
		    "management client '%s' exists (names are not reused, even when revoked)",
		    name);
	return KW_OK;
}

static kw_rc read_password(const char *source, kw_secret **out)
{
	kw_secret *raw = NULL;
	KW_GUARD(kw_secret_from_source(source, &raw));
	size_t n = kw_secret_len(raw);
	kw_rc rc = n == 0 ? KW_FAIL(KW_ERR_USAGE, "the PKCS#12 password from %s is empty", source)
	                  : kw_secret_new(n + 1, out);
	if (rc == KW_OK && memchr(kw_secret_data(raw), '\0', n) != NULL)
		rc = KW_FAIL(KW_ERR_USAGE, "the PKCS#12 password from %s holds a NUL byte", source);
	if (rc == KW_OK)
		memcpy((void *)kw_secret_data(*out), kw_secret_data(raw), n);
	else if (*out) {
		kw_secret_free(*out);
		*out = NULL;
	}
	kw_secret_free(raw);
	return rc;
}

static kw_rc csr_key(const unsigned char *data, size_t len, issue_ctx *c)
{
	const unsigned char *p = data;
	BIO *b = BIO_new_mem_buf(data, (int)len);
	c->req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (c->req == NULL)
		c->req = d2i_X509_REQ(NULL, &p, (long)len);
	ERR_clear_error();
	if (c->req == NULL)
		return KW_FAIL(KW_ERR_PARSE, "not a CSR (PEM or DER certificate request)");
	c->pub = X509_REQ_get_pubkey(c->req);
	if (c->pub == NULL || X509_REQ_verify(c->req, c->pub) != 1) {
		ERR_clear_error();
		return KW_FAIL(KW_ERR_PARSE, "the CSR's self-signature does not verify: refused");
	}
	if (!EVP_PKEY_is_a(c->pub, "EC") && !EVP_PKEY_is_a(c->pub, "RSA"))
		return KW_FAIL(KW_ERR_UNSUPPORTED, "the CSR's key is neither EC nor RSA");
	return KW_OK;
}

static kw_rc subject_make(const kw_mgmt_issue_request *r, X509_NAME **out)
{
	X509_NAME *n = X509_NAME_new();
	int ok = n &&
	         X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
	                                    (const unsigned char *)KW_MGMT_ORG, -1, -1, 0) &&
	         X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_UTF8, (const unsigned char *)r->role,
	                                    -1, -1, 0) &&
	         X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)r->name,
	                                    -1, -1, 0);
	if (!ok) {
		X509_NAME_free(n);
		ERR_clear_error();
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	*out = n;
	return KW_OK;
}

/* The certificate, signed in hardware by the management CA. */
static kw_rc certify(kw_store *s, const kw_mgmt_issue_request *r, time_t now, issue_ctx *c)
{
	kwi_cert_template t;
	kwi_device nodev = {0}; /* kwi_ca_issue opens the CA's device */
	unsigned char *chain = NULL;
	size_t chain_len = 0;
	KW_GUARD(subject_make(r, &c->subject));
	memset(&t, 0, sizeof(t));
	t.subject = c->subject;
	t.is_rsa = EVP_PKEY_is_a(c->pub, "RSA");
	t.not_before = now;
	t.not_after = now + (time_t)(r->days ? r->days : DAYS_DEFAULT) * 86400;
	t.key_usage = "critical,digitalSignature";
	t.ext_key_usage = "clientAuth";
	t.pathlen = -1;
	KW_GUARD(kwi_ca_issue(s, &nodev, KW_MGMT_CA_NAME, c->pub, &t, now, &c->cert, &chain,
	                      &chain_len));
	free(chain);
	return kwi_issued_facts(c->cert, &c->facts);
}

static kw_rc p12_make(kw_store *s, issue_ctx *c, const char *name)
{
	kwi_ca ca;
	time_t now;
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_ca_load(s, KW_MGMT_CA_NAME, now, &ca));
	STACK_OF(X509) *cas = sk_X509_new_null();
	PKCS12 *p12 = NULL;
	const char *pw = (const char *)kw_secret_data(c->password);
	/* AES-256-CBC under PBES2 (PBKDF2, HMAC-SHA256) for both bags; the MAC
	 * is set apart so that its digest is SHA-256 whatever the library's
	 * default. No propq: OpenSSL 3.0's PKCS12_free leaks a copy of it (found
	 * by ASan); the CLI that issues has no other provider loaded. */
	if (cas && sk_X509_push(cas, ca.cert) > 0)
		p12 = PKCS12_create_ex(pw, name, c->key, c->cert, cas, NID_aes_256_cbc,
		                       NID_aes_256_cbc, P12_ITER, -1, 0, NULL, NULL);
	if (p12 && PKCS12_set_mac(p12, pw, -1, NULL, 0, P12_MAC_ITER, EVP_sha256()) != 1) {
		PKCS12_free(p12);
		p12 = NULL;
	}
	c->p12_len = p12 ? i2d_PKCS12(p12, &c->p12) : 0;
	PKCS12_free(p12);
	sk_X509_free(cas);
	kwi_ca_clear(&ca);
	ERR_clear_error();
	if (c->p12_len <= 0)
		return KW_FAIL(KW_ERR_INTERNAL, "cannot make the PKCS#12 file for '%s'", name);
	return KW_OK;
}

/* A new file (mode 0600, never an existing one) holding data; *written
 * once it exists, so that a failure removes it. */
static kw_rc file_write(const char *path, const unsigned char *data, size_t len, int *written)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return KW_FAIL(KW_ERR_IO, "cannot create %s: %s", path, strerror(errno));
	*written = 1;
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	int err = errno;
	int ok = done == len && fsync(fd) == 0;
	if (!ok)
		err = errno;
	if (close(fd) != 0 && ok) {
		ok = 0;
		err = errno;
	}
	return ok ? KW_OK : KW_FAIL(KW_ERR_IO, "cannot write %s: %s", path, strerror(err));
}

/* No password source: 24 random bytes, base64url, for <pkcs12>.password. */
static kw_rc password_generate(const char *p12_path, issue_ctx *c)
{
	unsigned char raw[24];
	size_t n = sodium_base64_ENCODED_LEN(sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (asprintf(&c->pw_path, "%s.password", p12_path) < 0) {
		c->pw_path = NULL;
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	KW_GUARD(kw_secret_new(n, &c->password));
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64((char *)kw_secret_data(c->password), n, raw, sizeof(raw),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	return KW_OK;
}

/* The PKCS#12 file and, when keyward made the password, its file. */
static kw_rc files_write(const kw_mgmt_issue_request *r, issue_ctx *c)
{
	KW_GUARD(file_write(r->pkcs12_path, c->p12, (size_t)c->p12_len, &c->file_written));
	if (c->pw_path == NULL)
		return KW_OK;
	const char *pw = (const char *)kw_secret_data(c->password);
	unsigned char nl = '\n';
	kw_secret *line = NULL;
	KW_GUARD(kw_secret_new(strlen(pw) + 1, &line));
	memcpy((void *)kw_secret_data(line), pw, strlen(pw));
	memcpy((unsigned char *)kw_secret_data(line) + strlen(pw), &nl, 1);
	kw_rc rc =
	    file_write(c->pw_path, kw_secret_data(line), kw_secret_len(line), &c->pw_written);
	kw_secret_free(line);
	return rc;
}

static kw_rc insert_client(kw_store *s, const kw_mgmt_issue_request *r, int64_t ca_id,
                           const issue_ctx *c, const unsigned char *der, int n, const char *subj,
                           time_t now)
{
	const char *source = r->pkcs12_path ? "pkcs12" : "csr";
	kwi_mgmt_client_row client = {
	    .ca_cert_id = ca_id,
	    .name = r->name,
	    .role = r->role,
	    .serial = c->facts.serial,
	    .subject = subj,
	    .not_before = c->facts.not_before,
	    .not_after = c->facts.not_after,
	    .thumbprint_sha256 = c->facts.sha256,
	    .key_source = source,
	    .cert_der = der,
	    .cert_len = (size_t)n,
	    .created_at = now,
	};
	/* also where keyward ca revoke / ca crl look for what the CA signed */
	kwi_ca_issued_row issued = {
	    .ca_cert_id = ca_id,
	    .serial = c->facts.serial,
	    .subject = subj,
	    .not_after = c->facts.not_after,
	    .thumbprint_sha256 = c->facts.sha256,
	    .cert_der = der,
	    .cert_len = (size_t)n,
	    .created_at = now,
	};
	KW_GUARD(kwi_store_mgmt_client_add(s, &client));
	KW_GUARD(kwi_store_ca_issued_add(s, &issued));
	return kwi_event_append(s, "mgmt.issued", KW_MGMT_CA_NAME, 0,
	                        json_pack("{s:s,s:s,s:s,s:s,s:s}", "client", r->name, "role",
	                                  r->role, "serial", c->facts.serial, "thumbprint_sha256",
	                                  c->facts.sha256, "key_source", source));
}

/* One transaction: the client's row, the CA's record, the event; the
 * PKCS#12 file is written inside it and removed if it does not commit. */
static kw_rc record(kw_store *s, const kw_mgmt_issue_request *r, int64_t ca_id, issue_ctx *c,
                    time_t now)
{
	unsigned char *der = NULL;
	int n = i2d_X509(c->cert, &der);
	json_t *subject = kwi_name_json(X509_get_subject_name(c->cert));
	const char *subj = json_string_value(subject) ? json_string_value(subject) : "";
	kw_rc rc = n > 0 ? kwi_store_begin(s) : KW_FAIL(KW_ERR_INTERNAL, "cannot encode");
	if (rc == KW_OK) {
		rc = insert_client(s, r, ca_id, c, der, n, subj, now);
		if (rc == KW_OK && r->pkcs12_path)
			rc = files_write(r, c);
		if (rc == KW_OK)
			rc = kwi_store_commit(s);
		else
			kwi_store_rollback(s);
	}
	if (rc != KW_OK && c->file_written)
		unlink(r->pkcs12_path);
	if (rc != KW_OK && c->pw_written)
		unlink(c->pw_path);
	json_decref(subject);
	OPENSSL_free(der);
	return rc;
}

static kw_rc cert_pem(X509 *x, char **pem)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n = b && PEM_write_bio_X509(b, x) ? BIO_get_mem_data(b, &p) : 0;
	*pem = n > 0 ? strndup(p, (size_t)n) : NULL;
	BIO_free(b);
	return *pem ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

static kw_rc issue_run(kw_store *s, const kw_mgmt_issue_request *r, issue_ctx *c, time_t now)
{
	kwi_ca ca;
	KW_GUARD(name_free(s, r->name));
	kw_rc rc = kwi_ca_load(s, KW_MGMT_CA_NAME, now, &ca);
	if (rc == KW_ERR_NOT_FOUND) {
		kw_error_clear();
		return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_MGMT_INIT,
		                    "no management CA in this store");
	}
	KW_GUARD(rc);
	int64_t ca_id = ca.cert_id;
	kwi_ca_clear(&ca);
	if (r->pkcs12_path) {
		KW_GUARD(r->password_source ? read_password(r->password_source, &c->password)
		                            : password_generate(r->pkcs12_path, c));
		c->key = EVP_PKEY_Q_keygen(NULL, KWI_SOFTWARE_PROPQ, "EC", "P-256");
		if (c->key == NULL) {
			ERR_clear_error();
			return KW_FAIL(KW_ERR_INTERNAL, "cannot make the client's key");
		}
		c->pub = c->key;
	} else
		KW_GUARD(csr_key(r->csr, r->csr_len, c));
	KW_GUARD(certify(s, r, now, c));
	if (r->pkcs12_path)
		KW_GUARD(p12_make(s, c, r->name));
	return record(s, r, ca_id, c, now);
}

kw_rc kw_mgmt_issue(kw_store *s, const kw_mgmt_issue_request *req, char **pem, json_t **out)
{
	issue_ctx c;
	time_t now;
	memset(&c, 0, sizeof(c));
	if (pem)
		*pem = NULL;
	if (out)
		*out = NULL;
	kw_error_clear();
	KW_GUARD(check_request(req));
	KW_GUARD(kwi_now(&now));
	kw_rc rc = issue_run(s, req, &c, now);
	if (rc == KW_OK && pem)
		rc = cert_pem(c.cert, pem);
	if (rc == KW_OK && out)
		rc = kwi_mgmt_client_json(s, req->name, out);
	issue_ctx_clear(&c);
	return rc;
}
