/* TPM key references as the store keeps them (a store is data an attacker
 * may have edited): parsing never reads past the input or crashes. */
#include "fuzz.h"
#include "tpm2/tpm2_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kw_key_blob ref = {(unsigned char *)data, size};
	kwb_tpm2_blob blob;
	/* refusing is a fine outcome: only a crash or an overread is not */
	if (kwb_tpm2_blob_parse(&ref, &blob) != KW_OK)
		kw_error_clear();
	return 0;
}
