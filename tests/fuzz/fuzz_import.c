/* What `cert import` reads: PEM (certificates and a PKCS#8, traditional or
 * encrypted key, in any order) and PKCS#12. The first input byte chooses:
 * bit 0 PKCS#12, bit 1 with the password "fuzz" (as from --password-source);
 * the rest is the file. The seeds' test keys protect nothing. */
#include "fuzz.h"
#include "cert/import_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static kw_secret *pw;
	kwi_import_input in;
	if (size < 1)
		return 0;
	if (pw == NULL && kw_secret_from_bytes("fuzz", 4, &pw) != KW_OK)
		abort();
	int pkcs12 = data[0] & 1;
	if (kwi_import_parse("fuzz", data + 1, size - 1, pkcs12, data[0] & 2 ? pw : NULL, &in) ==
	    KW_OK) {
		/* what is accepted is a key keyward keeps, with its certificate */
		if (in.key == NULL || in.leaf == NULL || in.rest == NULL || in.type == 0 ||
		    EVP_PKEY_eq(X509_get0_pubkey(in.leaf), in.key) != 1)
			abort();
		kwi_import_input_clear(&in);
	} else if (in.key != NULL || in.leaf != NULL || in.rest != NULL)
		abort(); /* a refusal keeps nothing */
	kw_error_clear();
	return 0;
}
