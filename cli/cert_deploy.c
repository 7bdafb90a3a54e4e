/* keyward cert deploy */
#include <stdio.h>

#include <keyward/lifecycle.h>

#include "cli.h"

static void print_report(const json_t *report)
{
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(report, "files"), i, x)
	    printf("wrote %s %s (mode %s)\n", json_string_value(json_object_get(x, "kind")),
	           json_string_value(json_object_get(x, "path")),
	           json_string_value(json_object_get(x, "mode")));
	json_array_foreach(json_object_get(report, "hooks"), i, x)
	    printf("ran %s hook: %s\n", json_string_value(json_object_get(x, "hook")),
	           json_string_value(json_object_get(x, "status")));
}

int cert_deploy(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	int c, as_json = 0;
	kw_store *s = NULL;
	json_t *report = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert deploy", "", opts)) != -1) {
		if (c != 'j')
			return 2;
		as_json = 1;
	}
	if (argc - optind != 1)
		return cli_usage_error("cert deploy: give exactly one NAME");
	const char *name = argv[optind];
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_cert_deploy(s, name, &report);
	kw_store_close(s);
	/* on failure the one error line says what went wrong; --json still
	 * gets the whole report */
	if (as_json && report)
		cli_print_json(report);
	else if (report && rc == KW_OK)
		print_report(report);
	if (rc == KW_OK && !as_json && json_object_size(report) == 0)
		printf("%s: the policy names no deploy target; nothing to do\n", name);
	/* a deploy that ran and failed (its target, a file or a hook) has its own
	 * exit code; failing before it could start (an unknown certificate) is 1 */
	int ran = json_is_false(json_object_get(report, "ok"));
	json_decref(report);
	if (rc == KW_OK)
		return 0;
	fflush(stdout);
	ex = cli_fail(rc);
	return ran ? CLI_EXIT_DEPLOY : ex;
}
