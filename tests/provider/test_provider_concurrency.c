/*
 * keyward.so under concurrency: one key signing from 8 threads at once, and a
 * key loaded before fork() signing from 4 children at once (as nginx workers
 * use the master's key). Every signature is checked against the certificate
 * by the default provider. The TPM is behind tpm2-abrmd here (--abrmd), so
 * that several processes can use it.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "provider_test.h"

#define THREADS    8
#define CHILDREN   4
#define SIGNATURES 10

typedef struct {
	EVP_PKEY *key, *pub;
	const char *md;
	kwpt_scheme scheme;
	pthread_barrier_t *start;
	int id, good;
} worker;

/* Signs SIGNATURES different messages and counts those that verify. */
static int sign_many(EVP_PKEY *key, EVP_PKEY *pub, const char *md, kwpt_scheme s, int id)
{
	int good = 0;
	for (int i = 0; i < SIGNATURES; i++) {
		char msg[64];
		unsigned char *sig = NULL;
		size_t len = 0;
		int n = snprintf(msg, sizeof(msg), "worker %d message %d", id, i);
		if (kwpt_sign(key, md, s, "digest", msg, (size_t)n, &sig, &len) &&
		    kwpt_verify(pub, md, s, "digest", msg, (size_t)n, sig, len))
			good++;
		free(sig);
	}
	return good;
}

static void *thread_main(void *arg)
{
	worker *w = arg;
	pthread_barrier_wait(w->start);
	w->good = sign_many(w->key, w->pub, w->md, w->scheme, w->id);
	return NULL;
}

static EVP_PKEY *load(const char *name, X509 **cert)
{
	char uri[64];
	EVP_PKEY *key = NULL;
	snprintf(uri, sizeof(uri), "keyward:%s", name);
	cr_assert(kwpt_store_load(uri, &key, cert) && key && *cert, "%s: %s", uri, kwpt_errors());
	return key;
}

static void threads(const char *name, const char *md, kwpt_scheme s)
{
	X509 *cert = NULL;
	pthread_t t[THREADS];
	worker w[THREADS];
	pthread_barrier_t start;
	cr_assert(setenv("KEYWARD_STORE", kwpt_store(), 1) == 0);
	kwpt_load_provider();
	EVP_PKEY *key = load(name, &cert);
	pthread_barrier_init(&start, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker){key, X509_get0_pubkey(cert), md, s, &start, i, 0};
		cr_assert(pthread_create(&t[i], NULL, thread_main, &w[i]) == 0);
	}
	int good = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		good += w[i].good;
	}
	pthread_barrier_destroy(&start);
	cr_assert_eq(good, THREADS * SIGNATURES, "%s: %d of %d signatures verified: %s", name, good,
	             THREADS * SIGNATURES, kwpt_errors());
	X509_free(cert);
	EVP_PKEY_free(key);
}

Test(provider_concurrency, tpm_key_signs_from_eight_threads_at_once, .timeout = 300)
{
	threads("tpm-ec-p256", "SHA256", KWPT_ECDSA);
	threads("tpm-rsa-2048", "SHA256", KWPT_PSS);
}

Test(provider_concurrency, hsm_key_signs_from_eight_threads_at_once, .timeout = 300)
{
	threads("hsm-ec-p384", "SHA384", KWPT_ECDSA);
	threads("hsm-rsa-2048", "SHA256", KWPT_PKCS1);
}

/* How a child ended: 0 all signatures verified, 100 the device refused this
 * process clearly (see below), anything else is a failure. */
#define CHILD_REFUSED 100

static int child_signs(EVP_PKEY *key, EVP_PKEY *pub, const char *md, kwpt_scheme s, int id)
{
	int good = sign_many(key, pub, md, s, id);
	if (good == SIGNATURES)
		return 0;
	char *err = kwpt_errors();
	int refused = good == 0 && strstr(err, "cannot be used in this process") != NULL;
	fprintf(stderr, "child %d: %d of %d signatures verified: %s", id, good, SIGNATURES, err);
	free(err);
	return refused ? CHILD_REFUSED : 1;
}

/* Forks CHILDREN children that start together; each runs fn(i) and reports
 * its result through a pipe (a child's exit status is always 0: Criterion
 * takes other statuses of a test's children as its own failure). Returns how
 * many were refused; fails the test on any other outcome. */
static int run_children(const char *what, int (*fn)(int, void *), void *arg)
{
	pid_t pid[CHILDREN];
	int go[2], res[CHILDREN][2], refused = 0;
	cr_assert(pipe(go) == 0);
	for (int i = 0; i < CHILDREN; i++) {
		cr_assert(pipe(res[i]) == 0);
		pid[i] = fork();
		cr_assert(pid[i] >= 0);
		if (pid[i] == 0) {
			char c;
			close(go[1]);
			/* all children start together, when the parent closes the pipe */
			while (read(go[0], &c, 1) > 0)
				;
			int r = fn(i, arg);
			if (write(res[i][1], &r, sizeof(r)) != sizeof(r))
				_exit(3);
			_exit(0);
		}
		close(res[i][1]);
	}
	close(go[0]);
	close(go[1]);
	for (int i = 0; i < CHILDREN; i++) {
		int st = 0, r = -1;
		cr_assert(waitpid(pid[i], &st, 0) == pid[i]);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child %d died (status %d)",
		          what, i, st);
		cr_assert(read(res[i][0], &r, sizeof(r)) == sizeof(r), "%s: child %d: no result",
		          what, i);
		close(res[i][0]);
		cr_assert(r == 0 || r == CHILD_REFUSED, "%s: child %d: signatures failed (%d)",
		          what, i, r);
		refused += r == CHILD_REFUSED;
	}
	return refused;
}

typedef struct {
	const char *name, *md;
	kwpt_scheme scheme;
	EVP_PKEY *key, *pub; /* NULL: each child loads its own */
} job;

static int child_main(int i, void *arg)
{
	job *j = arg;
	X509 *cert = NULL;
	if (j->key != NULL)
		return child_signs(j->key, j->pub, j->md, j->scheme, i);
	char uri[64];
	EVP_PKEY *key = NULL;
	snprintf(uri, sizeof(uri), "keyward:%s", j->name);
	if (!kwpt_store_load(uri, &key, &cert) || key == NULL || cert == NULL) {
		ERR_print_errors_fp(stderr);
		return 2;
	}
	return child_signs(key, X509_get0_pubkey(cert), j->md, j->scheme, i);
}

/* The parent loads the key (and signs with it when parent_signs), then
 * forks: the children sign with the parent's key, as nginx and haproxy
 * workers do. Returns how many children the device refused. */
static int children(const char *name, const char *md, kwpt_scheme s, int parent_signs)
{
	X509 *cert = NULL;
	cr_assert(setenv("KEYWARD_STORE", kwpt_store(), 1) == 0);
	kwpt_load_provider();
	EVP_PKEY *key = load(name, &cert), *pub = X509_get0_pubkey(cert);
	if (parent_signs)
		cr_assert_eq(sign_many(key, pub, md, s, -1), SIGNATURES, "parent: %s",
		             kwpt_errors());
	job j = {name, md, s, key, pub};
	int refused = run_children(name, child_main, &j);
	/* and the parent's own connection was left alone */
	cr_assert_eq(sign_many(key, pub, md, s, -2), SIGNATURES, "parent after fork: %s",
	             kwpt_errors());
	X509_free(cert);
	EVP_PKEY_free(key);
	return refused;
}

Test(provider_concurrency, hsm_key_loaded_before_fork_signs_in_four_children, .timeout = 300)
{
	cr_assert_eq(children("hsm-ec-p256", "SHA256", KWPT_ECDSA, 1), 0);
	cr_assert_eq(children("hsm-rsa-2048", "SHA384", KWPT_PSS, 1), 0);
}

/*
 * nginx's shape on a TPM behind tpm2-abrmd: the master loads the key (core
 * checks it from a short-lived helper process, so the master never opens a
 * GDBus connection), the workers sign. Every child must sign.
 */
Test(provider_concurrency, tpm_key_loaded_before_fork_signs_in_four_children, .timeout = 300)
{
	cr_assert_eq(children("tpm-ec-p384", "SHA384", KWPT_ECDSA, 0), 0);
}

/* A parent that signed through tpm2-abrmd itself cannot hand its key to
 * children (GLib's D-Bus client does not survive fork): they get a clear
 * refusal, never a hang or a bad signature. */
Test(provider_concurrency, children_of_a_tpm_signing_parent_are_refused_clearly, .timeout = 300)
{
	cr_assert_eq(children("tpm-ec-p384", "SHA384", KWPT_ECDSA, 1), CHILDREN);
}

/* Processes that open the TPM themselves sign concurrently through tpm2-abrmd. */
Test(provider_concurrency, tpm_keys_sign_from_four_processes_at_once, .timeout = 300)
{
	cr_assert(setenv("KEYWARD_STORE", kwpt_store(), 1) == 0);
	kwpt_load_provider(); /* the parent itself never touches the TPM */
	job ec = {"tpm-ec-p256", "SHA256", KWPT_ECDSA, NULL, NULL};
	cr_assert_eq(run_children("tpm-ec-p256", child_main, &ec), 0);
	job rsa = {"tpm-rsa-2048", "SHA256", KWPT_PSS, NULL, NULL};
	cr_assert_eq(run_children("tpm-rsa-2048", child_main, &rsa), 0);
}
