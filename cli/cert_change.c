/* keyward cert renew */
#include <stdio.h>
#include <string.h>

#include <keyward/issuer.h>

#include "cli.h"

int cert_renew(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"new-key", no_argument, NULL, 'n'},
	    {"reuse-key", no_argument, NULL, 'r'},
	    {"http01-listen", required_argument, NULL, 'H'},
	    {"http01-webroot", required_argument, NULL, 'W'},
	    {0},
	};
	const char *listen = NULL, *webroot = NULL;
	kw_renew_key key = KW_RENEW_POLICY;
	int c, seen = 0, version = 0;
	kw_store *s = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert renew", "", opts)) != -1) {
		if (c == 'H' || c == 'W') {
			*(c == 'H' ? &listen : &webroot) = optarg;
			continue;
		}
		if (c != 'n' && c != 'r')
			return 2;
		key = c == 'n' ? KW_RENEW_NEW_KEY : KW_RENEW_REUSE_KEY;
		seen |= c == 'n' ? 1 : 2;
	}
	if (seen == 3)
		return cli_usage_error("cert renew: --new-key and --reuse-key exclude each other");
	if (argc - optind != 1)
		return cli_usage_error("cert renew: give exactly one NAME");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	json_t *before = NULL, *after = NULL;
	kw_rc set = kw_store_set_http01(s, listen, webroot);
	if (set != KW_OK) {
		kw_store_close(s);
		return cli_fail(set);
	}
	/* what the key was, to say whether the renewal kept it; kw_cert_renew
	 * gives the error if the certificate cannot be renewed */
	if (kw_cert_show(s, argv[optind], 0, &before) != KW_OK)
		before = NULL;
	kw_rc rc = kw_cert_renew(s, argv[optind], key, &version);
	if (rc == KW_OK)
		rc = kw_cert_show(s, argv[optind], version, &after);
	kw_store_close(s);
	if (rc != KW_OK) {
		json_decref(before);
		return cli_fail(rc);
	}
	/* the key is the same when the SPKI-bound attribute evidence names the same key */
	const char *k0 = json_string_value(json_object_get(before, "public_key_sha256"));
	const char *k1 = json_string_value(json_object_get(after, "public_key_sha256"));
	const char *same = k0 && k1 && strcmp(k0, k1) == 0 ? "same key" : "new key";
	if (strcmp(json_string_value(json_object_get(after, "status")), "pending") == 0)
		printf("renewing %s: version %d is pending (%s), its CSR waiting for your CA: "
		       "keyward cert csr %s, then keyward cert merge %s FILE; version %lld serves "
		       "until then\n",
		       argv[optind], version, same, argv[optind], argv[optind],
		       (long long)json_integer_value(json_object_get(before, "version")));
	else
		printf("renewed %s: version %d is current (%s)\n", argv[optind], version, same);
	json_decref(before);
	json_decref(after);
	return 0;
}
