/* CSRs from other hosts, as `keyward ca sign` reads them before the CA's key
 * signs anything: PEM or DER, the self-signature, the key, the subject and
 * the extension request's SANs, and those names as keyward prints them. */
#include "fuzz.h"
#include "issuers/ca/ca_issuer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const time_t now = 1800000000;
	X509_REQ *req = NULL;
	GENERAL_NAMES *sans = NULL;
	kwi_cert_template t;
	int client = size > 0 && (data[size - 1] & 1);
	if (kwi_ca_csr_read(data, size, 0, client, now, &req, &t, &sans) == KW_OK) {
		/* what was accepted is what the certificate will say */
		if (req == NULL || t.subject != X509_REQ_get_subject_name(req) || t.sans != sans ||
		    t.not_before != now || t.not_after != now + 365 * 86400 ||
		    strcmp(t.ext_key_usage, client ? "clientAuth" : "serverAuth") != 0)
			abort();
		json_t *subject = kwi_name_json(t.subject), *names = kwi_sans_json(sans),
		       *asked = kwi_req_sans_json(req);
		if (subject == NULL || names == NULL || asked == NULL)
			abort();
		/* the SANs keyward shows for the request are the ones it takes */
		if (!json_equal(names, asked))
			abort();
		json_decref(subject);
		json_decref(names);
		json_decref(asked);
	}
	GENERAL_NAMES_free(sans);
	X509_REQ_free(req);
	kw_error_clear();
	return 0;
}
