/* see kwtest.h */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "kwtest.h"

extern char **environ;

const char *kwt_env(const char *name)
{
	const char *v = getenv(name);
	cr_assert(v != NULL && v[0] != '\0', "%s is not set: run this test under kw-harness", name);
	return v;
}

char *kwt_tmpdir(const char *hint)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s.XXXXXX", kwt_env("KW_TEST_TMP"), hint ? hint : "t") > 0);
	cr_assert(mkdtemp(p) != NULL, "mkdtemp %s: %s", p, strerror(errno));
	return p;
}

char *kwt_write_file(const char *dir, const char *name, const void *data, size_t len, int mode)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert(fd >= 0, "open %s: %s", p, strerror(errno));
	cr_assert(write(fd, data, len) == (ssize_t)len);
	cr_assert(fchmod(fd, (mode_t)mode) == 0);
	close(fd);
	return p;
}

char *kwt_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

void kwt_result_free(kwt_result *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

static void drain(int fd, char **buf, size_t *len, size_t *cap, int *open_)
{
	if (*len + 4096 + 1 > *cap) {
		*cap = (*cap + 4096) * 2;
		*buf = realloc(*buf, *cap);
	}
	ssize_t n = read(fd, *buf + *len, *cap - *len - 1);
	if (n <= 0) {
		if (n < 0 && errno == EINTR)
			return;
		*open_ = 0;
		return;
	}
	*len += (size_t)n;
	(*buf)[*len] = '\0';
}

void kwt_run(kwt_result *r, char *const argv[], char *const env[])
{
	int out[2], err[2];
	memset(r, 0, sizeof(*r));
	cr_assert(pipe(out) == 0 && pipe(err) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		/* only fds 1 and 2 may keep the pipes open: a background process the
		 * command leaves behind must not hold the reader up */
		close(out[0]);
		close(err[0]);
		close(out[1]);
		close(err[1]);
		int devnull = open("/dev/null", O_RDONLY);
		dup2(devnull, 0);
		for (size_t i = 0; env && env[i]; i++)
			putenv(env[i]);
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	size_t olen = 0, ocap = 0, elen = 0, ecap = 0;
	r->out = calloc(1, 1);
	r->err = calloc(1, 1);
	int oopen = 1, eopen = 1;
	while (oopen || eopen) {
		struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
		p[0].fd = oopen ? out[0] : -1;
		p[1].fd = eopen ? err[0] : -1;
		if (poll(p, 2, -1) < 0 && errno == EINTR)
			continue;
		if (oopen && p[0].revents)
			drain(out[0], &r->out, &olen, &ocap, &oopen);
		if (eopen && p[1].revents)
			drain(err[0], &r->err, &elen, &ecap, &eopen);
	}
	close(out[0]);
	close(err[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void kw_run_bin(kwt_result *r, const char *bin, char *const env[], const char *store,
                       const char *const *args)
{
	char *argv[64];
	int n = 0;
	argv[n++] = (char *)bin;
	if (store) {
		argv[n++] = "--store";
		argv[n++] = (char *)store;
	}
	for (; *args; args++) {
		cr_assert(n < 63, "too many arguments");
		argv[n++] = (char *)*args;
	}
	argv[n] = NULL;
	kwt_run(r, argv, env);
}

void kwt_kw_args(kwt_result *r, char *const env[], const char *store, const char *const *args)
{
	kw_run_bin(r, kwt_env("KW_TEST_KEYWARD_BIN"), env, store, args);
}

/* The run's key: its environment entries and arguments, each NUL-terminated,
 * with an empty entry between the two lists (malloc'd, length in *len). */
static char *repeat_key(char *const env[], const char *const *args, size_t *len)
{
	size_t n = 1;
	for (size_t i = 0; env && env[i]; i++)
		n += strlen(env[i]) + 1;
	for (size_t i = 0; args[i]; i++)
		n += strlen(args[i]) + 1;
	char *key = malloc(n), *p = key;
	cr_assert(key != NULL);
	for (size_t i = 0; env && env[i]; i++)
		p = stpcpy(p, env[i]) + 1;
	*p++ = '\0';
	for (size_t i = 0; args[i]; i++)
		p = stpcpy(p, args[i]) + 1;
	*len = n;
	return key;
}

/* Whether this program has made this run before: the first time, a file named
 * by the key's FNV-1a hash and holding the key is created in KW_TEST_TMP (the
 * harness's, shared by the program's tests, which Criterion runs one by one). */
static int repeat_seen(char *const env[], const char *const *args)
{
	size_t len = 0;
	char *key = repeat_key(env, args, &len);
	unsigned long long h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3ULL;
	char *path = NULL;
	cr_assert(asprintf(&path, "%s/valgrind-checked.%016llx", kwt_env("KW_TEST_TMP"), h) > 0);
	int seen = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd >= 0) {
		cr_assert(write(fd, key, len) == (ssize_t)len);
		close(fd);
	} else {
		cr_assert(errno == EEXIST, "create %s: %s", path, strerror(errno));
		size_t got = 0;
		char *was = kwt_read_file(path, &got);
		/* another run with the same hash is checked too */
		seen = was != NULL && got == len && memcmp(was, key, len) == 0;
		free(was);
	}
	free(path);
	free(key);
	return seen;
}

void kwt_kw_repeat(kwt_result *r, char *const env[], const char *store, const char *const *args)
{
	const char *real = getenv("KW_VALGRIND_BIN");
	if (real != NULL && real[0] != '\0' && repeat_seen(env, args))
		kw_run_bin(r, real, env, store, args);
	else
		kwt_kw_args(r, env, store, args);
}

static void kw_va(kwt_result *r, char *const env[], const char *store, va_list ap)
{
	const char *args[64];
	int n = 0;
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL) {
		cr_assert(n < 63, "too many arguments");
		args[n++] = a;
	}
	args[n] = NULL;
	kwt_kw_args(r, env, store, args);
}

void kwt_kw(kwt_result *r, const char *store, ...)
{
	va_list ap;
	va_start(ap, store);
	kw_va(r, NULL, store, ap);
	va_end(ap);
}

void kwt_kw_env(kwt_result *r, char *const env[], const char *store, ...)
{
	va_list ap;
	va_start(ap, store);
	kw_va(r, env, store, ap);
	va_end(ap);
}

int kwt_count_lines(const char *s)
{
	int n = 0;
	for (const char *p = s; *p; p++)
		if (*p == '\n')
			n++;
	if (*s && s[strlen(s) - 1] != '\n')
		n++;
	return n;
}

void kwt_swtpm_stop(void)
{
	cr_assert(kwt_sh("%s/swtpm-ctl stop", kwt_env("KW_TEST_HARNESS_DIR")) == 0);
}

void kwt_swtpm_start(void)
{
	cr_assert(kwt_sh("%s/swtpm-ctl start", kwt_env("KW_TEST_HARNESS_DIR")) == 0);
}

void kwt_swtpm_back(int *down)
{
	if (!*down)
		return;
	kwt_swtpm_start();
	*down = 0;
	cr_assert_eq(kwt_sh("TPM2TOOLS_TCTI='%s' tpm2_dictionarylockout -c >/dev/null 2>&1",
	                    kwt_env("KW_TEST_TCTI")),
	             0, "cannot clear the TPM's dictionary-attack lockout");
}

kw_backend_config kwt_tpm2_config(void)
{
	kw_backend_config c = {0};
	c.name = "tpm";
	c.tcti = kwt_env("KW_TEST_TCTI");
	return c;
}

kw_backend_config kwt_p11_config(void)
{
	static char source[4096];
	snprintf(source, sizeof(source), "file:%s", kwt_env("KW_TEST_P11_PIN_FILE"));
	kw_backend_config c = {0};
	c.name = "hsm";
	c.module = kwt_env("KW_TEST_P11_MODULE");
	c.token = kwt_env("KW_TEST_P11_TOKEN");
	c.pin_source = source;
	return c;
}

EVP_PKEY *kwt_key_public(const kw_backend_ops *ops, void *ctx, const kw_key_blob *ref)
{
	unsigned char *der = NULL;
	size_t der_len = 0;

	kw_error_clear();
	cr_assert_eq(ops->key_public(ctx, ref, &der, &der_len), KW_OK, "key_public: %s",
	             kw_error_message());
	const unsigned char *q = der;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &q, (long)der_len);
	cr_assert_not_null(pk, "key_public did not return DER SubjectPublicKeyInfo");
	cr_assert_eq(q, der + der_len, "trailing bytes after the SubjectPublicKeyInfo");
	free(der);
	return pk;
}

int kwt_sh(const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	int st = system(cmd);
	free(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

char *kwt_sh_out(const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	kwt_result r;
	kwt_run(&r, argv, NULL);
	free(cmd);
	free(r.err);
	return r.out;
}

char *kwt_store_new(int with_tpm, int with_hsm)
{
	char *dir = kwt_tmpdir("store");
	char *store = NULL;
	kwt_result r;
	cr_assert(asprintf(&store, "%s/s", dir) > 0);
	free(dir);
	kwt_kw_repeat(&r, NULL, store, (const char *const[]){"init", NULL});
	cr_assert_eq(r.status, 0, "init failed: %s", r.err);
	kwt_result_free(&r);
	if (with_tpm) {
		kwt_kw_repeat(&r, NULL, store,
		              (const char *const[]){"backend", "add", "tpm", "tpm2", "--tcti",
		                                    kwt_env("KW_TEST_TCTI"), NULL});
		cr_assert_eq(r.status, 0, "backend add tpm failed: %s", r.err);
		kwt_result_free(&r);
	}
	if (with_hsm) {
		char src[4096];
		snprintf(src, sizeof(src), "file:%s", kwt_env("KW_TEST_P11_PIN_FILE"));
		kwt_kw_repeat(&r, NULL, store,
		              (const char *const[]){"backend", "add", "hsm", "pkcs11", "--module",
		                                    kwt_env("KW_TEST_P11_MODULE"), "--token",
		                                    kwt_env("KW_TEST_P11_TOKEN"), "--pin-source",
		                                    src, NULL});
		cr_assert_eq(r.status, 0, "backend add hsm failed: %s", r.err);
		kwt_result_free(&r);
	}
	return store;
}

char *kwt_store_dump(const char *store)
{
	return kwt_sh_out("sqlite3 '%s/keyward.db' .dump", store);
}

int kwt_p11_object_count(void)
{
	char *out = kwt_sh_out("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                       "--list-objects 2>/dev/null | grep -c 'Object;'",
	                       kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                       kwt_env("KW_TEST_P11_PIN"));
	int n = atoi(out);
	free(out);
	return n;
}

json_t *kwt_json(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	cr_assert(j != NULL, "test JSON: %s: %s", e.text, text);
	return j;
}
