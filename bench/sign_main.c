/* kwbench-sign: see sign.h */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sign.h"

static const char usage[] =
    "usage: kwbench-sign --mode provider|tpm2|engine|esys|p11 --key KEY --cert CERT.pem\n"
    "                    [--store DIR] [--module SO] [--pin-file FILE] [--rsa]\n"
    "                    [--threads N] [--seconds S]\n";

typedef struct {
	sign_path *path;
	int id;
	atomic_int *stop;
	long count;
	int failed;
	unsigned char sig[SIG_MAX];
	size_t sig_len;
} worker;

static const unsigned char msg[64] = "keyward bench: the same 64-byte message for every signature";

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *work(void *arg)
{
	worker *w = arg;
	while (!atomic_load(w->stop)) {
		w->sig_len = sizeof(w->sig);
		if (w->path->sign(w->path, w->id, msg, sizeof(msg), w->sig, &w->sig_len) != 0) {
			w->failed = 1;
			atomic_store(w->stop, 1);
			break;
		}
		w->count++;
	}
	return NULL;
}

/* The signature checked in software (default provider) against the certificate. */
static int verify(EVP_PKEY *pub, const unsigned char *sig, size_t len)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok =
	    m &&
	    EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, "provider=default", pub, NULL) == 1 &&
	    EVP_DigestVerify(m, sig, len, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(m);
	return ok;
}

static EVP_PKEY *cert_key(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "kwbench-sign: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	EVP_PKEY *k = x ? X509_get_pubkey(x) : NULL;
	X509_free(x);
	if (k == NULL)
		fprintf(stderr, "kwbench-sign: %s holds no certificate\n", path);
	return k;
}

static char *pin_read(const char *path)
{
	static char pin[128];
	FILE *f = fopen(path, "r");
	if (f == NULL || fgets(pin, sizeof(pin), f) == NULL) {
		fprintf(stderr, "kwbench-sign: cannot read the PIN file %s\n", path);
		if (f)
			fclose(f);
		return NULL;
	}
	fclose(f);
	pin[strcspn(pin, "\r\n")] = '\0';
	return pin;
}

static int args_parse(int argc, char **argv, sign_opts *o, const char **cert, int *threads,
                      double *seconds)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--rsa") == 0) {
			o->rsa = 1;
			continue;
		}
		if (v == NULL)
			return -1;
		if (strcmp(a, "--mode") == 0)
			o->mode = v;
		else if (strcmp(a, "--key") == 0)
			o->key = v;
		else if (strcmp(a, "--store") == 0)
			o->store = v;
		else if (strcmp(a, "--module") == 0)
			o->module = v;
		else if (strcmp(a, "--pin-file") == 0) {
			if ((o->pin = pin_read(v)) == NULL)
				return -1;
		} else if (strcmp(a, "--cert") == 0)
			*cert = v;
		else if (strcmp(a, "--threads") == 0)
			*threads = atoi(v);
		else if (strcmp(a, "--seconds") == 0)
			*seconds = atof(v);
		else
			return -1;
		i++;
	}
	return o->mode && o->key && *cert && *threads > 0 && *threads <= 64 && *seconds > 0 ? 0
	                                                                                    : -1;
}

static int path_open(const sign_opts *o, sign_path *p, int threads)
{
	if (strcmp(o->mode, "provider") == 0 || strcmp(o->mode, "tpm2") == 0 ||
	    strcmp(o->mode, "engine") == 0)
		return sign_evp_open(o, p);
	if (strcmp(o->mode, "esys") == 0)
		return sign_esys_open(o, p);
	if (strcmp(o->mode, "p11") == 0)
		return sign_p11_open(o, p, threads);
	fprintf(stderr, "kwbench-sign: unknown mode %s\n", o->mode);
	return -1;
}

/* Runs the workers for `seconds`; returns the number of good threads. */
static int run(sign_path *p, EVP_PKEY *pub, int threads, double seconds, long *total,
               double *elapsed)
{
	worker w[64];
	pthread_t t[64];
	atomic_int stop = 0;
	int good = 0;

	for (int i = 0; i < threads; i++)
		w[i] = (worker){.path = p, .id = i, .stop = &stop};
	double t0 = now_s();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, work, &w[i]);
	struct timespec d = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
	atomic_store(&stop, 1);
	*total = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		*total += w[i].count;
	}
	*elapsed = now_s() - t0;
	for (int i = 0; i < threads; i++)
		good += !w[i].failed && w[i].count > 0 && verify(pub, w[i].sig, w[i].sig_len);
	return good;
}

int main(int argc, char **argv)
{
	sign_opts o = {0};
	sign_path p = {0};
	const char *cert = NULL;
	int threads = 1;
	double seconds = 1.0, elapsed = 0;
	long total = 0;

	if (args_parse(argc, argv, &o, &cert, &threads, &seconds) != 0) {
		fputs(usage, stderr);
		return 2;
	}
	EVP_PKEY *pub = cert_key(cert);
	if (pub == NULL || path_open(&o, &p, threads) != 0) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	/* the first signature loads the key and proves the path works */
	unsigned char sig[SIG_MAX];
	size_t len = sizeof(sig);
	if (p.sign(&p, 0, msg, sizeof(msg), sig, &len) != 0 || !verify(pub, sig, len)) {
		fprintf(stderr, "kwbench-sign: %s: the first signature failed or does not verify\n",
		        o.mode);
		ERR_print_errors_fp(stderr);
		return 1;
	}
	int good = run(&p, pub, threads, seconds, &total, &elapsed);
	p.free(&p);
	EVP_PKEY_free(pub);
	if (good != threads) {
		fprintf(stderr,
		        "kwbench-sign: %s: %d of %d threads failed or made bad signatures\n",
		        o.mode, threads - good, threads);
		ERR_print_errors_fp(stderr);
		return 1;
	}
	printf("rate=%.1f count=%ld seconds=%.3f threads=%d verified=%d\n", (double)total / elapsed,
	       total, elapsed, threads, good);
	return 0;
}
