/* What cert merge reads from a CA (PEM, DER, PKCS#7) and the chain it orders
 * from that. */
#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *certs = NULL;
	json_t *dropped = json_array();
	if (dropped && kwi_certs_parse("fuzz", data, size, &certs) == KW_OK) {
		int n = sk_X509_num(certs);
		if (n < 1)
			abort();
		/* each certificate as the leaf: every other one is in its chain or dropped */
		for (int i = 0; i < n && i < 4; i++) {
			STACK_OF(X509) *chain = NULL;
			json_array_clear(dropped);
			if (kwi_chain_order(sk_X509_value(certs, i), certs, &chain, dropped) ==
			        KW_OK &&
			    sk_X509_num(chain) + (int)json_array_size(dropped) + 1 != n)
				abort();
			sk_X509_pop_free(chain, X509_free);
		}
	}
	sk_X509_pop_free(certs, X509_free);
	json_decref(dropped);
	kw_error_clear();
	return 0;
}
