/* see keyward/import.h: OpenSSL's heap wiped on free */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include <keyward/import.h>

/* OpenSSL frees some decoded key bytes (e.g. the ECPrivateKey octet string)
 * without cleansing them; wiping every block it frees closes that gap. */
static void *wipe_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return malloc(n);
}

static void wipe_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p != NULL)
		sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

static void *wipe_realloc(void *p, size_t n, const char *file, int line)
{
	if (p == NULL)
		return wipe_malloc(n, file, line);
	if (n == 0) {
		wipe_free(p, file, line);
		return NULL;
	}
	size_t old = malloc_usable_size(p);
	void *q = malloc(n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	wipe_free(p, file, line);
	return q;
}

int kw_openssl_wipe_on_free(void)
{
	if (sodium_init() < 0)
		return 0;
	return CRYPTO_set_mem_functions(wipe_malloc, wipe_realloc, wipe_free);
}
