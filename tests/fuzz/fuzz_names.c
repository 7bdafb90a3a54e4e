/* Subjects (--subject, x509.subject) and SANs (--san, x509.sans). */
#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	X509_NAME *name = NULL;
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	if (text && kwi_dn_parse(text, &name) == KW_OK && name == NULL)
		abort();
	if (text && gens)
		if (kwi_san_parse(text, gens) == KW_OK && sk_GENERAL_NAME_num(gens) != 1)
			abort();
	X509_NAME_free(name);
	GENERAL_NAMES_free(gens);
	kw_error_clear();
	free(text);
	return 0;
}
