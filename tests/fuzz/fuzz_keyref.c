/* Reference files (DER inside KEYWARD KEY REFERENCE PEMs) and keyward: URIs,
 * as the OpenSSL provider decodes them from whatever a server hands it. */
#include <keyward/key.h>

#include <openssl/crypto.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name = NULL, *dir = NULL;
	int version = 0;
	if (kw_keyref_decode(data, size, &name, &dir, &version) == KW_OK) {
		/* a decoded reference encodes back to one that decodes the same */
		unsigned char *der = NULL;
		size_t len = 0;
		char *n2 = NULL, *d2 = NULL;
		int v2 = 0;
		if (kw_keyref_encode(name, dir, version, &der, &len) != KW_OK ||
		    kw_keyref_decode(der, len, &n2, &d2, &v2) != KW_OK || strcmp(name, n2) != 0 ||
		    (dir == NULL) != (d2 == NULL) || (dir && strcmp(dir, d2) != 0) || v2 != version)
			abort();
		free(n2);
		free(d2);
		OPENSSL_free(der);
	}
	free(name);
	free(dir);
	char *text = fuzz_text(data, size);
	if (text && kw_uri_parse(text, &name, &version) == KW_OK)
		free(name);
	free(text);
	kw_error_clear();
	return 0;
}
