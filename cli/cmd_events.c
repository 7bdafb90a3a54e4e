/* keyward events | audit verify */
#include <stdio.h>
#include <string.h>

#include <keyward/lifecycle.h>

#include "cli.h"

static void events_table(const json_t *list)
{
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		char *d = json_dumps(json_object_get(e, "details"), JSON_COMPACT | JSON_SORT_KEYS);
		json_t *v = json_object_get(e, "version");
		printf("%5lld %s %-22s %-10s %s%s%.0lld %s\n",
		       (long long)json_integer_value(json_object_get(e, "seq")),
		       json_string_value(json_object_get(e, "at")),
		       json_string_value(json_object_get(e, "type")),
		       json_string_value(json_object_get(e, "actor")),
		       json_object_get(e, "cert") ? json_string_value(json_object_get(e, "cert"))
		                                  : "-",
		       v ? " v" : "", v ? (long long)json_integer_value(v) : 0LL, d ? d : "");
		free(d);
	}
}

int cmd_events(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'}, {"cert", required_argument, NULL, 'c'}, {0}};
	const char *cert = NULL;
	int c, as_json = 0;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "events", "", opts)) != -1) {
		if (c == 'j')
			as_json = 1;
		else if (c == 'c')
			cert = optarg;
		else
			return 2;
	}
	if (optind < argc)
		return cli_usage_error("events: unexpected argument '%s'", argv[optind]);
	return cli_list_show(kw_events_list, cert, as_json, events_table);
}

int cmd_audit(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	int c, as_json = 0;
	kw_store *s = NULL;
	json_t *report = NULL;
	int help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
	for (int i = 2; argc >= 2 && strcmp(argv[1], "verify") == 0 && i < argc; i++)
		help |= strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
	if (argc < 2 || strcmp(argv[1], "verify") != 0 || help) {
		if (help) {
			printf("Usage: keyward audit verify [--json]\n\nChecks the event log's "
			       "BLAKE2b "
			       "chain and reports the first record that was edited, deleted or "
			       "reordered, and checks it against the anchor kept outside the "
			       "database\n(a log rebuilt, cut or emptied there).\nExits 1 when the "
			       "chain is broken.\n");
			return 0;
		}
		return cli_usage_error(
		    "audit: the subcommand is 'verify' (see: keyward audit --help)");
	}
	optind = 1;
	while ((c = cli_getopt(argc - 1, argv + 1, "audit verify", "", opts)) != -1) {
		if (c != 'j')
			return 2;
		as_json = 1;
	}
	if (optind < argc - 1)
		return cli_usage_error("audit verify: unexpected argument '%s'", argv[optind + 1]);
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_audit_verify(s, &report);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	int ok = json_is_true(json_object_get(report, "ok"));
	if (as_json)
		cli_print_json(report);
	else if (ok) {
		const json_t *through = json_object_get(report, "anchored_through");
		long long n = (long long)json_integer_value(json_object_get(report, "records"));
		printf("event log intact: %lld records", n);
		if (json_is_integer(through) && json_integer_value(through) == n)
			printf(", anchored outside the database\n");
		else if (json_is_integer(through))
			printf(", anchored outside the database through record %lld\n",
			       (long long)json_integer_value(through));
		else
			printf(" (no anchor yet: the next event writes one)\n");
	}
	if (!ok)
		fprintf(stderr, "keyward: event log broken at record %lld: %s\n",
		        (long long)json_integer_value(json_object_get(report, "first_broken_seq")),
		        json_string_value(json_object_get(report, "reason")));
	json_decref(report);
	return ok ? 0 : 1;
}
