/* see device/conn.h */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "device/conn.h"

struct kwi_conn {
	char *id; /* store dir, backend name and configuration: the identity */
	char *name;
	char *kind;
	json_t *config;
	kw_secret *pin;   /* PKCS#11: read once, where the key was loaded (see open_config) */
	int pin_rejected; /* the token refused pin: never offered again (see pin_refresh) */
	const kw_backend_ops *ops;
	void *ctx;
	pid_t pid;     /* the process that opened ctx */
	unsigned caps; /* KW_CAP_* of this configuration */
	/* Writers (re)open the device; readers use it. A backend without
	 * KW_CAP_PARALLEL_SIGN is used under the write lock only. */
	pthread_rwlock_t lock;
	int refs;
	kwi_conn *next;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
/* The process that opened a connection whose library cannot be used again
 * after fork (see KW_CAP_FORK_SAFE); 0 when none did. */
static pid_t unsafe_opener;
static kwi_conn *pool;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Signers share the read lock; a reopen (or a key_public) takes the write
 * lock. glibc's default lets readers overtake a waiting writer, so a writer
 * could wait for as long as two threads keep signing: a waiting writer goes
 * first here. No thread takes this lock twice, as "nonrecursive" asks. */
static void conn_lock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}

/* In a child only the forking thread lives on: locks another thread held
 * would never be released, so they start afresh. The devices are reopened
 * on first use (see ensure_open). */
static void child_after_fork(void)
{
	pthread_mutex_init(&pool_lock, NULL);
	for (kwi_conn *c = pool; c; c = c->next)
		conn_lock_init(&c->lock);
}

static void atfork_register(void)
{
	pthread_atfork(NULL, NULL, child_after_fork);
}

static void conn_free(kwi_conn *c)
{
	if (c == NULL)
		return;
	if (c->ctx && c->pid == getpid())
		c->ops->close(c->ctx);
	pthread_rwlock_destroy(&c->lock);
	kw_secret_free(c->pin);
	json_decref(c->config);
	free(c->id);
	free(c->name);
	free(c->kind);
	free(c);
}

static kw_rc conn_new(const char *id, const char *name, const char *kind, const char *config,
                      kwi_conn **out)
{
	kwi_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	conn_lock_init(&c->lock);
	c->id = strdup(id);
	c->name = strdup(name);
	c->kind = strdup(kind);
	c->config = json_loads(config, 0, NULL);
	c->ops = kw_backend_ops_find(kind);
	c->refs = 1;
	if (c->id == NULL || c->name == NULL || c->kind == NULL || c->config == NULL) {
		conn_free(c);
		return KW_FAIL(KW_ERR_STORE, "backend '%s' has an unreadable configuration", name);
	}
	if (c->ops == NULL || c->ops->open == NULL || c->ops->key_sign == NULL) {
		conn_free(c);
		return KW_FAIL(KW_ERR_UNSUPPORTED,
		               "backend '%s' has kind '%s', which this build lacks", name, kind);
	}
	/* A server's master loads keys as root and its workers, under another
	 * user, sign: the workers cannot read the pin file, so the PIN is read
	 * here, once, and kept in guarded memory for every (re)connection. */
	const char *source = json_string_value(json_object_get(c->config, "pin_source"));
	if (source && kw_secret_from_source(source, &c->pin) != KW_OK) {
		conn_free(c);
		return kw_error_code();
	}
	kw_backend_config cfg = {name,
	                         json_string_value(json_object_get(c->config, "tcti")),
	                         json_string_value(json_object_get(c->config, "module")),
	                         json_string_value(json_object_get(c->config, "token")),
	                         source,
	                         NULL};
	c->caps = kw_backend_caps(c->ops, &cfg);
	*out = c;
	return KW_OK;
}

kw_rc kwi_conn_get(const char *store_dir, const char *name, const char *kind, const char *config,
                   kwi_conn **out)
{
	char *id = NULL;
	kw_rc rc = KW_OK;
	pthread_once(&atfork_once, atfork_register);
	if (asprintf(&id, "%s\n%s\n%s\n%s", store_dir, name, kind, config) < 0)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	pthread_mutex_lock(&pool_lock);
	kwi_conn *c = pool;
	while (c && strcmp(c->id, id) != 0)
		c = c->next;
	if (c)
		c->refs++;
	else if ((rc = conn_new(id, name, kind, config, &c)) == KW_OK) {
		c->next = pool;
		pool = c;
	}
	pthread_mutex_unlock(&pool_lock);
	free(id);
	*out = rc == KW_OK ? c : NULL;
	return rc;
}

void kwi_conn_put(kwi_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&pool_lock);
	if (--c->refs > 0) {
		pthread_mutex_unlock(&pool_lock);
		return;
	}
	kwi_conn **pp = &pool;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	pthread_mutex_unlock(&pool_lock);
	conn_free(c);
}

const char *kwi_conn_kind(const kwi_conn *c)
{
	return c->kind;
}

unsigned kwi_conn_caps(const kwi_conn *c)
{
	return c->caps;
}

static const char *cfg_str(const kwi_conn *c, const char *k)
{
	return json_string_value(json_object_get(c->config, k));
}

static int pin_same(const kw_secret *a, const kw_secret *b)
{
	return kw_secret_len(a) == kw_secret_len(b) &&
	       sodium_memcmp(kw_secret_data(a), kw_secret_data(b), kw_secret_len(a)) == 0;
}

/* After the token refused the PIN (an admin changed it on the token and in
 * the pin source): the source is read again and a different PIN replaces
 * the old one; 1 when it did. A worker that may not read the source keeps
 * what its master read. The refused PIN is never offered again: a server
 * that signs in a loop would otherwise lock the token in no time. */
static int pin_refresh(kwi_conn *c)
{
	const char *source = cfg_str(c, "pin_source");
	kw_secret *fresh = NULL;
	if (source == NULL || kw_secret_from_source(source, &fresh) != KW_OK) {
		kw_error_clear();
		return 0;
	}
	if (c->pin != NULL && pin_same(c->pin, fresh)) {
		kw_secret_free(fresh);
		return 0;
	}
	kw_secret_free(c->pin);
	c->pin = fresh;
	c->pin_rejected = 0;
	return 1;
}

static kw_rc open_once(kwi_conn *c)
{
	kw_backend_config cfg = {c->name,
	                         cfg_str(c, "tcti"),
	                         cfg_str(c, "module"),
	                         cfg_str(c, "token"),
	                         cfg_str(c, "pin_source"),
	                         c->pin};
	kw_rc rc = c->ops->open(&cfg, &c->ctx);
	if (rc == KW_ERR_AUTH && c->pin != NULL)
		c->pin_rejected = 1;
	return rc;
}

/* Opens the device; a refused PIN is retried only when the pin source now
 * holds another one. */
static kw_rc open_with_pin(kwi_conn *c)
{
	if (c->pin_rejected && !pin_refresh(c))
		return KW_FAIL(KW_ERR_AUTH,
		               "the token of backend '%s' refused the PIN from %s, and keyward "
		               "does not offer a refused PIN again (repeated wrong PINs lock a "
		               "token): put the token's current PIN there",
		               c->name, cfg_str(c, "pin_source"));
	kw_rc rc = open_once(c);
	if (rc != KW_ERR_AUTH || !c->pin_rejected)
		return rc;
	char msg[512];
	unsigned long dev = kw_error_device_code();
	snprintf(msg, sizeof(msg), "%s", kw_error_message());
	kw_error_clear();
	if (pin_refresh(c))
		return open_once(c);
	return kw_error_set(KW_ERR_AUTH, dev, __FILE__, __LINE__, "%s", msg);
}

/* Under the write lock: a usable ctx for this process. A ctx inherited
 * across fork() belongs to the parent: it is dropped, never closed (closing
 * would flush the parent's TPM objects or log out its token session). */
static kw_rc ensure_open(kwi_conn *c)
{
	if (c->ctx && c->pid != getpid())
		c->ctx = NULL;
	if (c->ctx)
		return KW_OK;
	int fork_safe = (c->caps & KW_CAP_FORK_SAFE) != 0;
	if (!fork_safe && unsafe_opener != 0 && unsafe_opener != getpid())
		return KW_FAIL(
		    KW_ERR_UNAVAILABLE,
		    "backend '%s' cannot be used in this process: its parent used the same "
		    "kind of connection before fork() (tpm2-abrmd's D-Bus client does not "
		    "survive fork); sign only in child processes, or use "
		    "device:/dev/tpmrm0",
		    c->name);
	if (!fork_safe)
		unsafe_opener = getpid();
	KW_GUARD(open_with_pin(c));
	c->pid = getpid();
	return KW_OK;
}

/* Under the write lock: the device failed as if gone; start over. */
static void reset(kwi_conn *c, void *failed)
{
	if (c->ctx && c->ctx == failed && c->pid == getpid()) {
		c->ops->close(c->ctx);
		c->ctx = NULL;
	}
}

typedef struct {
	const kw_key_blob *ref;
	const kw_sign_params *p;
	const unsigned char *dgst;
	size_t dgst_len;
	unsigned char *sig;
	size_t *sig_len;
	unsigned char **der;
	size_t *der_len;
} conn_call;

static kw_rc call(kwi_conn *c, void *ctx, const conn_call *a)
{
	if (a->der)
		return c->ops->key_public(ctx, a->ref, a->der, a->der_len);
	return c->ops->key_sign(ctx, a->ref, a->p, a->dgst, a->dgst_len, a->sig, a->sig_len);
}

/* One attempt: open if needed, then call with the right lock held. */
static kw_rc attempt(kwi_conn *c, const conn_call *a, void **used)
{
	kw_rc rc;
	int shared = (c->caps & KW_CAP_PARALLEL_SIGN) && a->der == NULL;
	if (shared) {
		/* The connection is open for this process (the usual case): sign
		 * under the read lock only. Taking the write lock first for every
		 * signature, even briefly, would wait for the signature in flight
		 * and so make them take turns. */
		pthread_rwlock_rdlock(&c->lock);
		if (c->ctx && c->pid == getpid()) {
			*used = c->ctx;
			rc = call(c, c->ctx, a);
			pthread_rwlock_unlock(&c->lock);
			return rc;
		}
		pthread_rwlock_unlock(&c->lock);
	}
	pthread_rwlock_wrlock(&c->lock);
	rc = ensure_open(c);
	*used = c->ctx;
	if (rc == KW_OK && !shared)
		rc = call(c, c->ctx, a);
	pthread_rwlock_unlock(&c->lock);
	if (rc != KW_OK || !shared)
		return rc;
	/* Thread-safe backends sign in parallel; a reopen waits for them. */
	pthread_rwlock_rdlock(&c->lock);
	if (c->ctx == *used)
		rc = call(c, c->ctx, a);
	else
		rc = KW_FAIL(KW_ERR_UNAVAILABLE, "the connection to backend '%s' was reset",
		             c->name);
	pthread_rwlock_unlock(&c->lock);
	return rc;
}

static kw_rc with_device(kwi_conn *c, const conn_call *a)
{
	void *used = NULL;
	kw_rc rc = attempt(c, a, &used);
	if ((rc != KW_ERR_UNAVAILABLE && rc != KW_ERR_NOT_FOUND) || used == NULL)
		return rc;
	/* The device went away (swtpm restarted, token re-plugged), or no longer
	 * shows a key this process found before (a token that vanished and came
	 * back shows its objects to a fresh session only): one fresh connection,
	 * one more try. */
	pthread_rwlock_wrlock(&c->lock);
	reset(c, used);
	pthread_rwlock_unlock(&c->lock);
	kw_error_clear();
	return attempt(c, a, &used);
}

kw_rc kwi_conn_public(kwi_conn *c, const kw_key_blob *ref, unsigned char **der, size_t *len)
{
	conn_call a = {.ref = ref, .der = der, .der_len = len};
	return with_device(c, &a);
}

kw_rc kwi_conn_sign(kwi_conn *c, const kw_key_blob *ref, const kw_sign_params *p,
                    const unsigned char *dgst, size_t dgst_len, unsigned char *sig, size_t *sig_len)
{
	conn_call a = {ref, p, dgst, dgst_len, sig, sig_len, NULL, NULL};
	return with_device(c, &a);
}

/* What a checking child reports. */
typedef struct {
	kw_rc rc;
	unsigned long device_code;
	char message[512];
	size_t len;
} child_report;

static int read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void child_check(kwi_conn *c, const kw_key_blob *ref, int fd)
{
	child_report r = {0};
	unsigned char *der = NULL;
	r.rc = kwi_conn_public(c, ref, &der, &r.len);
	if (r.rc != KW_OK) {
		r.device_code = kw_error_device_code();
		snprintf(r.message, sizeof(r.message), "%s", kw_error_message());
		r.len = 0;
	}
	if (write(fd, &r, sizeof(r)) == (ssize_t)sizeof(r) && r.len > 0)
		(void)!write(fd, der, r.len);
	_exit(0);
}

kw_rc kwi_conn_public_isolated(kwi_conn *c, const kw_key_blob *ref, unsigned char **der,
                               size_t *len)
{
	int p[2];
	child_report r;
	/* Checked in a child, so that this process never loads a client library
	 * that its own forked children could not use afterwards; unless it did
	 * already. */
	if ((c->caps & KW_CAP_FORK_SAFE) || unsafe_opener == getpid())
		return kwi_conn_public(c, ref, der, len);
	if (pipe(p) != 0)
		return KW_FAIL(KW_ERR_IO, "cannot check backend '%s': pipe: %s", c->name,
		               strerror(errno));
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		child_check(c, ref, p[1]);
	}
	close(p[1]);
	kw_rc rc = KW_OK;
	if (pid < 0)
		rc = KW_FAIL(KW_ERR_IO, "cannot check backend '%s': fork: %s", c->name,
		             strerror(errno));
	else if (read_all(p[0], &r, sizeof(r)) != 0)
		rc = KW_FAIL(KW_ERR_BACKEND, "checking backend '%s' failed in a helper process",
		             c->name);
	else if (r.rc != KW_OK)
		rc = kw_error_set(r.rc, r.device_code, __FILE__, __LINE__, "%s", r.message);
	else if ((*der = malloc(r.len ? r.len : 1)) == NULL)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	else if (read_all(p[0], *der, r.len) != 0) {
		free(*der);
		*der = NULL;
		rc = KW_FAIL(KW_ERR_BACKEND, "checking backend '%s' failed in a helper process",
		             c->name);
	} else
		*len = r.len;
	close(p[0]);
	while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return rc;
}
