/* see keyward/secret.h */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <keyward/secret.h>

/* Largest secret a pin source may hold: PINs and auth values are short. */
#define SECRET_SOURCE_MAX 1024

struct kw_secret {
	size_t len;
	size_t cap;
	unsigned char data[];
};

kw_rc kw_secret_lib_init(void)
{
	if (sodium_init() < 0)
		return KW_FAIL(KW_ERR_INTERNAL, "libsodium failed to initialise");
	return KW_OK;
}

kw_rc kw_secret_new(size_t len, kw_secret **out)
{
	*out = NULL;
	KW_GUARD(kw_secret_lib_init());
	/* sodium_malloc puts the block's end against the guard page, so its start
	 * is only aligned when the size is a multiple of the alignment. */
	size_t align = _Alignof(max_align_t);
	size_t size = (sizeof(struct kw_secret) + len + 1 + align - 1) / align * align;
	kw_secret *s = sodium_malloc(size);
	if (s == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "cannot allocate guarded memory for a secret");
	sodium_memzero(s, size);
	s->len = len;
	s->cap = len;
	*out = s;
	return KW_OK;
}

kw_rc kw_secret_from_bytes(const void *data, size_t len, kw_secret **out)
{
	KW_GUARD(kw_secret_new(len, out));
	if (len > 0)
		memcpy((*out)->data, data, len);
	return KW_OK;
}

const unsigned char *kw_secret_data(const kw_secret *s)
{
	return s ? s->data : NULL;
}

size_t kw_secret_len(const kw_secret *s)
{
	return s ? s->len : 0;
}

void kw_secret_truncate(kw_secret *s, size_t len)
{
	if (s == NULL || len >= s->len)
		return;
	sodium_memzero(s->data + len, s->len - len);
	s->len = len;
}

void kw_secret_free(kw_secret *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s->data, s->cap);
	sodium_free(s);
}

/* Who can swap the file for another: the directory it is in, when anyone
 * may write there, and any directory above that anyone may write without
 * the sticky bit (they can rename what is below). */
static kw_rc dir_check(const char *path)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	for (int first = 1;; first = 0) {
		char *slash = strrchr(dir, '/');
		if (slash == NULL)
			snprintf(dir, sizeof(dir), ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		struct stat st;
		if (stat(dir, &st) != 0)
			return KW_FAIL(KW_ERR_IO, "cannot stat %s (pin file %s): %s", dir, path,
			               strerror(errno));
		if ((st.st_mode & S_IWOTH) && (first || !(st.st_mode & S_ISVTX)))
			return KW_FAIL(KW_ERR_PERM,
			               "pin file %s is in %s, which anyone may write (mode %04o): "
			               "another user could put their own file there; keep it in "
			               "a directory only its owner writes",
			               path, dir, (unsigned)(st.st_mode & 07777));
		if (slash == NULL || strcmp(dir, "/") == 0)
			return KW_OK;
	}
}

static kw_rc file_check(const char *path, int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return KW_FAIL(KW_ERR_IO, "cannot stat pin file %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return KW_FAIL(KW_ERR_USAGE, "pin file %s is not a regular file", path);
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return KW_FAIL(KW_ERR_PERM,
		               "pin file %s belongs to uid %lu, neither root nor uid %lu who "
		               "runs keyward; run: chown %lu %s",
		               path, (unsigned long)st.st_uid, (unsigned long)geteuid(),
		               (unsigned long)geteuid(), path);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return KW_FAIL(KW_ERR_PERM,
		               "pin file %s is accessible by group or others (mode %04o); "
		               "run: chmod 600 %s",
		               path, (unsigned)(st.st_mode & 07777), path);
	return KW_OK;
}

static kw_rc from_file(const char *path, kw_secret **out)
{
	kw_rc rc = KW_OK;
	kw_secret *s = NULL;
	/* O_NONBLOCK: a FIFO is refused below instead of waiting for a writer
	 * (a regular file reads the same) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return KW_FAIL(errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO,
		               "cannot open pin file %s: %s", path, strerror(errno));
	rc = file_check(path, fd);
	if (rc == KW_OK)
		rc = dir_check(path);
	if (rc != KW_OK)
		goto out;
	rc = kw_secret_new(SECRET_SOURCE_MAX, &s);
	if (rc != KW_OK)
		goto out;
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, s->data + got, SECRET_SOURCE_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = KW_FAIL(KW_ERR_IO, "cannot read pin file %s: %s", path,
			             strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == SECRET_SOURCE_MAX) {
			rc = KW_FAIL(KW_ERR_PARSE, "pin file %s is longer than %d bytes", path,
			             SECRET_SOURCE_MAX - 1);
			goto out;
		}
	}
	if (got > 0 && s->data[got - 1] == '\n')
		got--;
	if (got > 0 && s->data[got - 1] == '\r')
		got--;
	kw_secret_truncate(s, got);
	*out = s;
	s = NULL;
out:
	kw_secret_free(s);
	close(fd);
	return rc;
}

static kw_rc from_env(const char *var, kw_secret **out)
{
	if (var[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE, "pin source env: needs a variable name");
	const char *v = getenv(var);
	if (v == NULL)
		return KW_FAIL(KW_ERR_NOT_FOUND, "pin source env:%s: variable is not set", var);
	return kw_secret_from_bytes(v, strlen(v), out);
}

kw_rc kw_secret_from_source(const char *source, kw_secret **out)
{
	*out = NULL;
	if (source == NULL)
		return KW_FAIL(KW_ERR_USAGE, "no pin source given (use file:PATH or env:VAR)");
	if (strncmp(source, "file:", 5) == 0 && source[5] != '\0')
		return from_file(source + 5, out);
	if (strncmp(source, "env:", 4) == 0)
		return from_env(source + 4, out);
	return KW_FAIL(KW_ERR_USAGE, "unknown pin source '%s' (use file:PATH or env:VAR)", source);
}

kw_rc kw_secret_source_check(const char *source)
{
	kw_secret *s = NULL;
	kw_rc rc = kw_secret_from_source(source, &s);
	kw_secret_free(s);
	return rc;
}
