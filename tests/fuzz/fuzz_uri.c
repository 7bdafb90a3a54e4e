/* keyward:NAME[?version=N] as OSSL_STORE hands it to the provider's store
 * loader (provider/store.c, kw_uri_parse), e.g. from `openssl s_server -key
 * keyward:web01`. Input without the scheme gets it put in front. */
#include <openssl/err.h>
#include <openssl/store.h>

#include "fuzz_provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	OSSL_LIB_CTX *ctx = fuzz_provider_libctx();
	char *text = fuzz_text(data, size);
	char *uri = NULL;
	if (text == NULL)
		return 0;
	if (strncmp(text, "keyward:", 8) == 0)
		uri = strdup(text);
	else if (asprintf(&uri, "keyward:%s", text) < 0)
		uri = NULL;
	if (uri == NULL)
		abort();
	OSSL_STORE_CTX *s =
	    OSSL_STORE_open_ex(uri, ctx, "provider=keyward", NULL, NULL, NULL, NULL, NULL);
	/* the store is empty: whatever the URI names is not in it */
	if (s != NULL) {
		OSSL_STORE_INFO *info;
		while ((info = OSSL_STORE_load(s)) != NULL)
			OSSL_STORE_INFO_free(info);
		OSSL_STORE_close(s);
		abort();
	}
	/* and what kw_uri_parse accepts it accepts the same way twice */
	char *name = NULL, *again = NULL;
	int version = -1, v2 = -2;
	if (kw_uri_parse(uri, &name, &version) == KW_OK &&
	    (kw_uri_parse(uri, &again, &v2) != KW_OK || strcmp(name, again) != 0 || v2 != version))
		abort();
	free(name);
	free(again);
	free(uri);
	free(text);
	ERR_clear_error();
	kw_error_clear();
	return 0;
}
