/*
 * keyward — PKCS#11 signatures run side by side (KW_CAP_PARALLEL_SIGN), shown
 * without timing: the backend's module is p11-barrier.so (tests/support),
 * which forwards to the harness's SoftHSM2 and holds each C_Sign until a
 * second one is inside, then reports the most it saw at once. Two threads
 * sign with one key through kw_key_sign, the provider's path; both
 * signatures must verify and the module must have seen them together.
 * The control: one thread alone never shows two, so the instrument can say
 * "one at a time".
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include <keyward/key.h>

#include "kwtest.h"

#define SIGNERS 2

typedef struct {
	void (*arm)(int parties, int timeout_ms);
	int (*max)(void);
	long (*init_flags)(void);
} barrier;

typedef struct {
	kw_key *key;
	pthread_barrier_t *start;
	int id;
	unsigned char dgst[SHA256_DIGEST_LENGTH];
	unsigned char sig[128];
	size_t sig_len;
	kw_rc rc;
	char err[512];
} signer;

/* A store whose backend "hsm" is the harness's token behind p11-barrier.so,
 * with an ec-p256 certificate "web". */
static char *store_with_barrier(void)
{
	char src[4096];
	kwt_result r;
	/* Read by p11-barrier.so here and in the CLI's processes. */
	setenv("KWB_P11_BARRIER_REAL", kwt_env("KW_TEST_P11_MODULE"), 1);
	char *store = kwt_store_new(0, 0);
	snprintf(src, sizeof(src), "file:%s", kwt_env("KW_TEST_P11_PIN_FILE"));
	kwt_kw(&r, store, "backend", "add", "hsm", "pkcs11", "--module",
	       kwt_env("KW_TEST_P11_BARRIER"), "--token", kwt_env("KW_TEST_P11_TOKEN"),
	       "--pin-source", src, NULL);
	cr_assert_eq(r.status, 0, "backend add: %s", r.err);
	kwt_result_free(&r);
	kwt_kw(&r, store, "cert", "create", "web", "--backend", "hsm", "--subject", "CN=web",
	       "--key", "ec-p256", NULL);
	cr_assert_eq(r.status, 0, "cert create: %s", r.err);
	kwt_result_free(&r);
	return store;
}

/* The module p11-kit loaded for the open key (dlopen finds it loaded). */
static barrier barrier_get(void)
{
	barrier b;
	void *h = dlopen(kwt_env("KW_TEST_P11_BARRIER"), RTLD_NOW | RTLD_NOLOAD);
	cr_assert_not_null(h, "p11-barrier.so is not loaded: %s", dlerror());
	b.arm = (void (*)(int, int))dlsym(h, "kwb_p11_barrier_arm");
	b.max = (int (*)(void))dlsym(h, "kwb_p11_barrier_max");
	b.init_flags = (long (*)(void))dlsym(h, "kwb_p11_barrier_init_flags");
	cr_assert(b.arm && b.max && b.init_flags, "p11-barrier.so lacks its test interface");
	return b;
}

static kw_key *key_open(const char *store)
{
	kw_key *k = NULL;
	kw_rc rc = kw_key_open(store, "web", 0, &k);
	cr_assert_eq(rc, KW_OK, "kw_key_open: %s", kw_error_message());
	return k;
}

static void sign_one(signer *s)
{
	static const kw_sign_params ecdsa = {KW_SIG_ECDSA, NID_sha256, -1};
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "signer %d", s->id);
	SHA256((const unsigned char *)msg, (size_t)n, s->dgst);
	s->sig_len = sizeof(s->sig);
	s->rc = kw_key_sign(s->key, &ecdsa, s->dgst, sizeof(s->dgst), s->sig, &s->sig_len);
	snprintf(s->err, sizeof(s->err), "%s", s->rc == KW_OK ? "" : kw_error_message());
}

static void *signer_main(void *arg)
{
	signer *s = arg;
	pthread_barrier_wait(s->start);
	sign_one(s);
	return NULL;
}

/* The signature verifies under the key's public half, as recorded. */
static void assert_verifies(kw_key *k, const signer *s)
{
	size_t len = 0;
	const unsigned char *spki = kw_key_spki(k, &len);
	EVP_PKEY *pub = d2i_PUBKEY(NULL, &spki, (long)len);
	cr_assert_not_null(pub);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
	cr_assert(ctx && EVP_PKEY_verify_init(ctx) == 1);
	cr_assert_eq(EVP_PKEY_verify(ctx, s->sig, s->sig_len, s->dgst, sizeof(s->dgst)), 1,
	             "signature %d does not verify", s->id);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pub);
}

Test(pkcs11_parallel, two_threads_have_two_signatures_in_the_token_at_once)
{
	char *store = store_with_barrier();
	kw_key *k = key_open(store);
	barrier b = barrier_get();
	pthread_barrier_t start;
	pthread_t t[SIGNERS];
	signer s[SIGNERS];

	/* Up to 10 s for the second: only a serialised path ever waits that long. */
	b.arm(SIGNERS, 10000);
	pthread_barrier_init(&start, NULL, SIGNERS);
	for (int i = 0; i < SIGNERS; i++) {
		s[i] = (signer){.key = k, .start = &start, .id = i};
		cr_assert_eq(pthread_create(&t[i], NULL, signer_main, &s[i]), 0);
	}
	for (int i = 0; i < SIGNERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < SIGNERS; i++) {
		cr_assert_eq(s[i].rc, KW_OK, "signer %d: %s", i, s[i].err);
		assert_verifies(k, &s[i]);
	}
	cr_assert_eq(b.max(), SIGNERS,
	             "the token saw at most %d signature(s) at once: keyward signed one at a "
	             "time",
	             b.max());
	pthread_barrier_destroy(&start);
	kw_key_free(k);
	free(store);
}

Test(pkcs11_parallel, one_thread_never_has_two_signatures_in_flight)
{
	char *store = store_with_barrier();
	kw_key *k = key_open(store);
	barrier b = barrier_get();

	b.arm(SIGNERS, 300);
	for (int i = 0; i < 3; i++) {
		signer s = {.key = k, .id = i};
		sign_one(&s);
		cr_assert_eq(s.rc, KW_OK, "signature %d: %s", i, s.err);
		assert_verifies(k, &s);
	}
	cr_assert_eq(b.max(), 1, "one thread showed %d signatures at once", b.max());
	kw_key_free(k);
	free(store);
}

Test(pkcs11_parallel, the_module_is_told_it_may_be_called_from_several_threads)
{
	char *store = store_with_barrier();
	kw_key *k = key_open(store);
	barrier b = barrier_get();

	long flags = b.init_flags();
	cr_assert_neq(flags, -1,
	              "C_Initialize without arguments: the module may assume one thread");
	cr_assert(flags & CKF_OS_LOCKING_OK, "C_Initialize flags 0x%lx lack CKF_OS_LOCKING_OK",
	          flags);
	kw_key_free(k);
	free(store);
}
