/* keyward metrics: Prometheus text format for node_exporter's textfile collector */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyward/lifecycle.h>

#include "cli.h"

int cmd_metrics(int argc, char **argv)
{
	static const struct option opts[] = {{"textfile", required_argument, NULL, 't'}, {0}};
	const char *path = NULL;
	int c;
	kw_store *s = NULL;
	char *text = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "metrics", "", opts)) != -1) {
		if (c != 't')
			return 2;
		path = optarg;
	}
	if (optind < argc)
		return cli_usage_error("metrics: unexpected argument '%s'", argv[optind]);
	if (path && path[0] == '\0')
		return cli_usage_error("metrics: --textfile needs a path");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_metrics_text(s, &text);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	/* atomically: the collector never reads half a file */
	if (path)
		ex = cli_write_file(path, text, strlen(text), 0644);
	else
		fputs(text, stdout);
	free(text);
	return ex;
}
