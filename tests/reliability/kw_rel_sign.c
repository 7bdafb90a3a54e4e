/*
 * kw-rel-sign: signs through the keyward provider the way a server would, and
 * checks every signature with the certificate's public key (default provider).
 *
 *   kw-rel-sign NAME...                one signature per key; per key one line
 *                                      "NAME SHA256-OF-CERT ok" or "NAME - FAIL: why"
 *   kw-rel-sign --serve NAME...        loads the keys once, says "ready", then
 *                                      signs with all of them for each "sign" line
 *                                      on stdin: "ok" or "fail: why" (one line)
 *   kw-rel-sign --loop SECONDS NAME... loads keyward:NAME afresh and signs, again
 *                                      and again; "signatures=N failed=M" at the end
 *
 * The provider comes from KW_TEST_PROVIDER_DIR, the store from KEYWARD_STORE.
 * Exit 0 when every signature verified.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#define MAX_KEYS 64

/* In the ASan build: memory errors abort as everywhere, but leak checking is
 * off, as for the openssl, nginx and haproxy this program stands in for (see
 * tests/CMakeLists.txt): after a key load fails while the device is gone,
 * OpenSSL 3.0's decoder and store machinery keeps reference cycles that
 * LeakSanitizer reports at exit (indirect leaks inside libcrypto). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}

typedef struct {
	EVP_PKEY *key;
	X509 *cert;
} loaded;

/* The last error of the OpenSSL queue (keyward's own, when it failed) on
 * one line (static buffer); the queue is emptied. */
static const char *errors(void)
{
	static char buf[1024];
	const char *data = NULL;
	int flags = 0;
	unsigned long e;
	buf[0] = '\0';
	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		char one[256];
		ERR_error_string_n(e, one, sizeof(one));
		snprintf(buf, sizeof(buf), "%s%s%s", one,
		         (flags & ERR_TXT_STRING) && data ? ": " : "",
		         (flags & ERR_TXT_STRING) && data ? data : "");
	}
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return buf[0] ? buf : "no detail";
}

static int key_load(const char *name, loaded *out)
{
	char uri[256];
	snprintf(uri, sizeof(uri), "keyward:%s", name);
	memset(out, 0, sizeof(*out));
	OSSL_STORE_CTX *st = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
	while (st && !OSSL_STORE_eof(st)) {
		OSSL_STORE_INFO *info = OSSL_STORE_load(st);
		if (info == NULL)
			break;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY && out->key == NULL)
			out->key = OSSL_STORE_INFO_get1_PKEY(info);
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_CERT && out->cert == NULL)
			out->cert = OSSL_STORE_INFO_get1_CERT(info);
		OSSL_STORE_INFO_free(info);
	}
	OSSL_STORE_close(st);
	if (out->key && out->cert)
		return 1;
	EVP_PKEY_free(out->key);
	X509_free(out->cert);
	memset(out, 0, sizeof(*out));
	return 0;
}

/* Signs a fresh message with the key, verifies it with the certificate. */
static int sign_check(const loaded *k, long n)
{
	char msg[64];
	unsigned char sig[1024];
	size_t len = sizeof(sig);
	int ok = 0;
	int mlen = snprintf(msg, sizeof(msg), "kw-rel-sign message %ld", n);
	EVP_MD_CTX *s = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
	if (s && v && EVP_DigestSignInit_ex(s, NULL, "SHA256", NULL, NULL, k->key, NULL) == 1 &&
	    EVP_DigestSign(s, sig, &len, (const unsigned char *)msg, (size_t)mlen) == 1 &&
	    EVP_DigestVerifyInit_ex(v, NULL, "SHA256", NULL, "provider=default",
	                            X509_get0_pubkey(k->cert), NULL) == 1)
		ok = EVP_DigestVerify(v, sig, len, (const unsigned char *)msg, (size_t)mlen) == 1;
	EVP_MD_CTX_free(s);
	EVP_MD_CTX_free(v);
	return ok;
}

static void cert_sha256(X509 *x, char hex[65])
{
	unsigned char d[32];
	unsigned int n = sizeof(d);
	X509_digest(x, EVP_sha256(), d, &n);
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static int once(char **names, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++) {
		loaded k;
		char hex[65];
		if (!key_load(names[i], &k)) {
			printf("%s - FAIL: cannot load: %s\n", names[i], errors());
			bad++;
			continue;
		}
		cert_sha256(k.cert, hex);
		int ok = sign_check(&k, i);
		if (ok)
			printf("%s %s ok\n", names[i], hex);
		else
			printf("%s %s FAIL: %s\n", names[i], hex, errors());
		bad += !ok;
		EVP_PKEY_free(k.key);
		X509_free(k.cert);
	}
	return bad ? 1 : 0;
}

static int serve(char **names, int n)
{
	loaded k[MAX_KEYS];
	char line[64];
	long count = 0;
	for (int i = 0; i < n; i++)
		if (!key_load(names[i], &k[i])) {
			printf("load %s FAIL: %s\n", names[i], errors());
			return 1;
		}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		int ok = 1;
		for (int i = 0; ok && i < n; i++)
			ok = sign_check(&k[i], count++);
		if (ok)
			printf("ok\n");
		else
			printf("fail: %s\n", errors());
		fflush(stdout);
	}
	for (int i = 0; i < n; i++) {
		EVP_PKEY_free(k[i].key);
		X509_free(k[i].cert);
	}
	return 0;
}

static int loop(double seconds, char **names, int n)
{
	struct timespec t0, t;
	long sigs = 0, failed = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < n; i++) {
			loaded k;
			int ok = key_load(names[i], &k) && sign_check(&k, sigs);
			if (!ok) {
				fprintf(stderr, "kw-rel-sign: %s: %s\n", names[i], errors());
				failed++;
			}
			sigs++;
			EVP_PKEY_free(k.key);
			X509_free(k.cert);
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
	printf("signatures=%ld failed=%ld\n", sigs, failed);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *dir = getenv("KW_TEST_PROVIDER_DIR");
	int first = 1;
	if (dir == NULL || argc < 2) {
		fprintf(stderr, "usage: kw-rel-sign [--serve | --loop SECONDS] NAME... "
		                "(KW_TEST_PROVIDER_DIR, KEYWARD_STORE set)\n");
		return 2;
	}
	OSSL_PROVIDER_set_default_search_path(NULL, dir);
	if (OSSL_PROVIDER_load(NULL, "keyward") == NULL ||
	    OSSL_PROVIDER_load(NULL, "default") == NULL) {
		fprintf(stderr, "kw-rel-sign: cannot load the providers: %s\n", errors());
		return 1;
	}
	if (strcmp(argv[1], "--serve") == 0)
		return argc - 2 <= MAX_KEYS ? serve(argv + 2, argc - 2) : 2;
	if (strcmp(argv[1], "--loop") == 0 && argc > 3)
		return loop(atof(argv[2]), argv + 3, argc - 3);
	return once(argv + first, argc - first);
}
