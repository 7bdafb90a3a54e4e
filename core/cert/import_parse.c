/* see cert/import_parse.h: reading the certificate and key an admin imports */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <sodium.h>

#include "cert/import_parse.h"

#define INPUT_MAX (1024 * 1024)

/* The file's bytes in guarded memory (the caller sodium_free's it); messages
 * call it name. */
static kw_rc file_read(const char *path, const char *name, unsigned char **buf, size_t *len)
{
	struct stat st;
	kw_rc rc = KW_OK;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*buf = NULL;
	if (fd < 0)
		return KW_FAIL(KW_ERR_IO, "cannot open %s: %s", name, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > INPUT_MAX) {
		rc = KW_FAIL(KW_ERR_USAGE, "%s is not a regular file of at most 1 MiB", name);
		goto out;
	}
	if (st.st_size == 0) {
		rc = KW_FAIL(KW_ERR_PARSE, "%s is empty", name);
		goto out;
	}
	if (sodium_init() < 0 || (*buf = sodium_malloc((size_t)st.st_size)) == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of guarded memory reading %s", name);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = KW_FAIL(KW_ERR_IO, "cannot read %s", name);
			goto out;
		}
		got += (size_t)n;
	}
	*len = got;
out:
	close(fd);
	if (rc != KW_OK && *buf != NULL) {
		sodium_memzero(*buf, (size_t)st.st_size);
		sodium_free(*buf);
		*buf = NULL;
	}
	return rc;
}

typedef struct {
	const kw_secret *pw;
	int asked;
} pw_state;

/* OpenSSL copies the password into its own buffer and cleanses it after. */
static int pw_cb(char *buf, int size, int rwflag, void *u)
{
	pw_state *p = u;

	(void)rwflag;
	p->asked = 1;
	if (p->pw == NULL || kw_secret_len(p->pw) > (size_t)size)
		return -1;
	memcpy(buf, kw_secret_data(p->pw), kw_secret_len(p->pw));
	return (int)kw_secret_len(p->pw);
}

static kw_rc pem_key(const char *path, const unsigned char *buf, size_t len, const kw_secret *pw,
                     EVP_PKEY **out)
{
	BIO *b = BIO_new_mem_buf(buf, (int)len);
	pw_state st = {pw, 0};

	if (b == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	ERR_clear_error();
	*out = PEM_read_bio_PrivateKey(b, NULL, pw_cb, &st);
	BIO_free(b);
	if (*out != NULL)
		return KW_OK;
	ERR_clear_error();
	if (st.asked && pw == NULL)
		return KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_PASSWORD_SOURCE,
		                    "the private key in %s is encrypted, and no password was given",
		                    path);
	if (st.asked)
		return KW_FAIL(KW_ERR_AUTH,
		               "cannot decrypt the private key in %s: wrong password (or a "
		               "corrupt key)",
		               path);
	return KW_FAIL(KW_ERR_PARSE,
	               "%s holds no readable private key (missing, truncated or not PEM); "
	               "cert import needs the certificate and its key",
	               path);
}

static kw_rc pem_certs(const char *path, const unsigned char *buf, size_t len,
                       STACK_OF(X509) * certs)
{
	BIO *b = BIO_new_mem_buf(buf, (int)len);
	X509 *x;
	kw_rc rc = KW_OK;

	if (b == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			goto out;
		}
	unsigned long e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
		rc = KW_FAIL(KW_ERR_PARSE,
		             "%s is truncated or corrupt (a PEM block does not decode)", path);
out:
	ERR_clear_error();
	BIO_free(b);
	return rc;
}

static kw_rc pkcs12_read(const char *path, const unsigned char *buf, size_t len,
                         const kw_secret *pw, kwi_import_input *out)
{
	const unsigned char *p = buf;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	char *pass = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *ca = NULL;
	kw_rc rc = KW_OK;

	if (p12 == NULL) {
		rc = KW_FAIL(KW_ERR_PARSE, "%s is not a PKCS#12 file (or it is truncated)", path);
		goto out;
	}
	size_t n = pw ? kw_secret_len(pw) : 0;
	if ((pass = sodium_malloc(n + 1)) == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of guarded memory");
		goto out;
	}
	if (n)
		memcpy(pass, kw_secret_data(pw), n);
	pass[n] = '\0';
	if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, pass, (int)n) &&
	    !(n == 0 && PKCS12_verify_mac(p12, NULL, 0))) {
		rc = KW_FAIL_HINT(KW_ERR_AUTH, pw ? KW_HINT_NONE : KW_HINT_PASSWORD_SOURCE,
		                  pw ? "wrong password for %s (its MAC does not verify)"
		                     : "%s is protected by a password, and none was given",
		                  path);
		goto out;
	}
	if (!PKCS12_parse(p12, pass, &out->key, &cert, &ca)) {
		rc = KW_FAIL(KW_ERR_PARSE,
		             "cannot read the contents of %s (corrupt, or an "
		             "algorithm OpenSSL does not enable by default)",
		             path);
		goto out;
	}
	if (out->key == NULL) {
		rc = KW_FAIL(KW_ERR_PARSE,
		             "%s holds no private key: cert import needs the "
		             "certificate and its key",
		             path);
		goto out;
	}
	if (cert != NULL && !sk_X509_insert(out->rest, cert, 0)) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	cert = NULL;
	while (ca != NULL && sk_X509_num(ca) > 0) {
		X509 *x = sk_X509_shift(ca);
		if (!sk_X509_push(out->rest, x)) {
			X509_free(x);
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
out:
	ERR_clear_error();
	if (pass != NULL) {
		sodium_memzero(pass, n + 1);
		sodium_free(pass);
	}
	X509_free(cert);
	sk_X509_pop_free(ca, X509_free);
	PKCS12_free(p12);
	return rc;
}

kw_rc kwi_key_type_check(const char *path, EVP_PKEY *key, kw_key_type *type)
{
	char group[64] = "";
	int bits = EVP_PKEY_get_bits(key);

	*type = 0;
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) == 1) {
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
			*type = KW_KEY_EC_P256;
		else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
			*type = KW_KEY_EC_P384;
	} else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
		*type = bits == 2048   ? KW_KEY_RSA_2048
		        : bits == 3072 ? KW_KEY_RSA_3072
		        : bits == 4096 ? KW_KEY_RSA_4096
		                       : 0;
	}
	if (*type != 0)
		return KW_OK;
	return KW_FAIL(KW_ERR_UNSUPPORTED,
	               "the key in %s is %s%s%s (%d bits): keyward keeps EC P-256/P-384 and RSA "
	               "2048/3072/4096 keys only",
	               path, EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "?",
	               group[0] ? " " : "", group, bits);
}

/* The certificate of the key moves out of rest into leaf. */
static kw_rc leaf_find(const char *path, kwi_import_input *in)
{
	if (sk_X509_num(in->rest) == 0)
		return KW_FAIL(KW_ERR_PARSE,
		               "%s holds no certificate: cert import needs the certificate and "
		               "its key",
		               path);
	for (int i = 0; i < sk_X509_num(in->rest); i++) {
		X509 *x = sk_X509_value(in->rest, i);
		if (EVP_PKEY_eq(X509_get0_pubkey(x), in->key) == 1) {
			in->leaf = sk_X509_delete(in->rest, i);
			return KW_OK;
		}
	}
	ERR_clear_error();
	return KW_FAIL(KW_ERR_PARSE,
	               "the private key in %s does not match its certificate (nor any "
	               "certificate in the file)",
	               path);
}

kw_rc kwi_import_read(const char *path, const char *name, int pkcs12, const char *password_source,
                      kwi_import_input *out)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	kw_secret *pw = NULL;
	kw_rc rc;

	memset(out, 0, sizeof(*out));
	if (password_source != NULL && (rc = kw_secret_from_source(password_source, &pw)) != KW_OK)
		goto out;
	if (name == NULL)
		name = path;
	if ((rc = file_read(path, name, &buf, &len)) != KW_OK)
		goto out;
	rc = kwi_import_parse(name, buf, len, pkcs12, pw, out);
out:
	if (buf != NULL) {
		sodium_memzero(buf, len);
		sodium_free(buf);
	}
	kw_secret_free(pw);
	return rc;
}

kw_rc kwi_import_parse(const char *path, const unsigned char *buf, size_t len, int pkcs12,
                       const kw_secret *pw, kwi_import_input *out)
{
	kw_rc rc;

	memset(out, 0, sizeof(*out));
	if ((out->rest = sk_X509_new_null()) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (pkcs12)
		rc = pkcs12_read(path, buf, len, pw, out);
	else if ((rc = pem_certs(path, buf, len, out->rest)) == KW_OK)
		rc = pem_key(path, buf, len, pw, &out->key);
	if (rc == KW_OK)
		rc = kwi_key_type_check(path, out->key, &out->type);
	if (rc == KW_OK)
		rc = leaf_find(path, out);
	if (rc != KW_OK)
		kwi_import_input_clear(out);
	return rc;
}

void kwi_import_input_clear(kwi_import_input *in)
{
	if (in == NULL)
		return;
	EVP_PKEY_free(in->key); /* OpenSSL clears private BIGNUMs on free */
	X509_free(in->leaf);
	sk_X509_pop_free(in->rest, X509_free);
	memset(in, 0, sizeof(*in));
}

static kw_rc fill(int fd, size_t size, int random)
{
	unsigned char block[4096];
	size_t done = 0;

	if (lseek(fd, 0, SEEK_SET) != 0)
		return KW_ERR_IO;
	while (done < size) {
		size_t n = size - done < sizeof(block) ? size - done : sizeof(block);
		if (random)
			randombytes_buf(block, n);
		else
			memset(block, 0, n);
		ssize_t w = write(fd, block, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return KW_ERR_IO;
		done += (size_t)w;
	}
	return fsync(fd) == 0 ? KW_OK : KW_ERR_IO;
}

kw_rc kwi_file_shred(const char *path)
{
	struct stat st;
	kw_rc rc = KW_OK;
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = KW_FAIL(KW_ERR_IO, "cannot shred %s: %s", path, strerror(errno));
		goto out;
	}
	if (fill(fd, (size_t)st.st_size, 1) != KW_OK || fill(fd, (size_t)st.st_size, 0) != KW_OK ||
	    unlink(path) != 0)
		rc = KW_FAIL(KW_ERR_IO, "cannot shred %s: %s", path, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	return rc;
}
