/* keyward init */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int c, created = 0;
	char *dir = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "init", "", opts)) != -1) {
		if (c == 'h') {
			printf("Usage: keyward [--store DIR] init\n\nCreates the store: directory "
			       "(mode 0700) and database (0600).\nRunning it again on a store "
			       "brings its schema up to date.\n");
			return 0;
		}
		return 2;
	}
	if (optind < argc)
		return cli_usage_error("init: unexpected argument '%s'", argv[optind]);
	kw_rc rc = cli_store_dir ? KW_OK : kw_store_default_dir(&dir);
	if (rc != KW_OK)
		return cli_fail(rc);
	const char *path = cli_store_dir ? cli_store_dir : dir;
	rc = kw_store_init(path, &created);
	if (rc == KW_OK)
		printf(created ? "initialized store %s\n" : "store %s is already initialized\n",
		       path);
	free(dir);
	return rc == KW_OK ? 0 : cli_fail(rc);
}
