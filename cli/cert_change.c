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
	int c, seen = 0;
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
	kw_rc rc = kw_store_set_http01(s, listen, webroot);
	kw_version_info made;
	if (rc == KW_OK)
		rc = kw_cert_renew(s, argv[optind], key, &made);
	kw_store_close(s);
	/* KW_ERR_DEPLOY: renewed all the same; the deploy's error line follows */
	if (rc != KW_OK && rc != KW_ERR_DEPLOY)
		return cli_fail(rc);
	const char *same = made.new_key ? "new key" : "same key";
	if (made.pending)
		printf("renewing %s: version %d is pending (%s), its CSR waiting for your CA: "
		       "keyward cert csr %s, then keyward cert merge %s FILE; version %d serves "
		       "until then\n",
		       argv[optind], made.version, same, argv[optind], argv[optind],
		       made.previous_version);
	else
		printf("renewed %s: version %d is current (%s)\n", argv[optind], made.version,
		       same);
	fflush(stdout);
	return rc == KW_OK ? 0 : cli_fail(rc);
}
