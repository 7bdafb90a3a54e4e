/* keyward cert renew | delete */
#include <stdio.h>

#include "cli.h"

int cert_renew(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"new-key", no_argument, NULL, 'n'},
	    {"reuse-key", no_argument, NULL, 'r'},
	    {0},
	};
	kw_renew_key key = KW_RENEW_NEW_KEY;
	int c, seen = 0, version = 0;
	kw_store *s = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert renew", "", opts)) != -1) {
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
	kw_rc rc = kw_cert_renew(s, argv[optind], key, &version);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf("renewed %s: version %d is current (%s)\n", argv[optind], version,
	       key == KW_RENEW_NEW_KEY ? "new key" : "same key");
	return 0;
}

int cert_delete(int argc, char **argv)
{
	static const struct option opts[] = {{0}};
	kw_store *s = NULL;
	optind = 1;
	if (cli_getopt(argc, argv, "cert delete", "", opts) != -1)
		return 2;
	if (argc - optind != 1)
		return cli_usage_error("cert delete: give exactly one NAME");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_cert_delete(s, argv[optind]);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf("deleted %s and destroyed its keys\n", argv[optind]);
	return 0;
}
