/* Key Vault policies as `policy import-azure` reads them. */
#include <keyward/lifecycle.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	json_t *p = NULL, *unmapped = NULL;
	if (text && kw_policy_import_azure(text, &p, &unmapped) == KW_OK) {
		json_t *again = NULL;
		/* an imported policy is a valid keyward policy */
		if (kw_policy_validate(p, &again) != KW_OK)
			abort();
		json_decref(again);
	}
	json_decref(p);
	json_decref(unmapped);
	kw_error_clear();
	free(text);
	return 0;
}
