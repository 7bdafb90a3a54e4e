/* Policy JSON as `policy set` and `cert create --policy` read it. */
#include <keyward/lifecycle.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	json_t *p = NULL;
	if (text && kw_policy_parse(text, &p) == KW_OK) {
		/* what validates must validate again to the same document */
		json_t *again = NULL;
		if (kw_policy_validate(p, &again) != KW_OK || !json_equal(p, again))
			abort();
		json_decref(again);
	}
	json_decref(p);
	kw_error_clear();
	free(text);
	return 0;
}
