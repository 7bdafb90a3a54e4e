/* The keyward provider inside a fuzz target: the provider's sources are
 * compiled into the target and registered as the built-in provider "keyward" of a library
 * context of its own, next to OpenSSL's default provider, as keyward.so would
 * be in a server. Its store (KEYWARD_STORE) is an empty keyward store in a
 * temporary directory, removed at exit: every name is unknown there, so the
 * fuzzed input is parsed as far as it goes and then refused. */
#ifndef KW_FUZZ_PROVIDER_H
#define KW_FUZZ_PROVIDER_H

#include <stdio.h>
#include <unistd.h>

#include <openssl/provider.h>

#include <keyward/key.h>
#include <keyward/keyward.h>

#include "fuzz.h"

OSSL_provider_init_fn OSSL_provider_init;

static char fuzz_store_dir[] = "/tmp/kw-fuzz-store.XXXXXX";

static inline void fuzz_store_remove(void)
{
	fuzz_rm_tree(fuzz_store_dir);
}

/* The library context with default + keyward (made once). */
static inline OSSL_LIB_CTX *fuzz_provider_libctx(void)
{
	static OSSL_LIB_CTX *ctx;
	int created = 0;
	if (ctx != NULL)
		return ctx;
	if (mkdtemp(fuzz_store_dir) == NULL)
		abort();
	atexit(fuzz_store_remove);
	if (kw_store_init(fuzz_store_dir, &created) != KW_OK || !created)
		abort();
	setenv("KEYWARD_STORE", fuzz_store_dir, 1);
	unsetenv("KEYWARD_DEBUG");
	ctx = OSSL_LIB_CTX_new();
	if (ctx == NULL || !OSSL_PROVIDER_add_builtin(ctx, "keyward", OSSL_provider_init) ||
	    OSSL_PROVIDER_load(ctx, "default") == NULL ||
	    OSSL_PROVIDER_load(ctx, "keyward") == NULL)
		abort();
	return ctx;
}

#endif
