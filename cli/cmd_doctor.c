/* keyward doctor: do the store and the devices agree? (see keyward/doctor.h) */
#include <stdio.h>
#include <string.h>

#include <keyward/doctor.h>

#include "cli.h"

static void print_text(const json_t *report)
{
	const json_t *problems = json_object_get(report, "problems");
	size_t i;
	json_t *p;
	json_array_foreach(problems, i, p)
	{
		printf("%s %s: %s\n    %s\n",
		       json_is_true(json_object_get(p, "repaired")) ? "repaired" : "problem ",
		       json_string_value(json_object_get(p, "kind")),
		       json_string_value(json_object_get(p, "detail")),
		       json_string_value(json_object_get(p, "action")));
	}
	json_int_t found = json_integer_value(json_object_get(report, "found"));
	if (found == 0)
		printf("doctor: the store and its devices agree (database integrity: %s)\n",
		       json_string_value(json_object_get(report, "integrity")));
	else
		printf("doctor: %lld problem(s) found, %lld repaired, %lld remain\n",
		       (long long)found,
		       (long long)json_integer_value(json_object_get(report, "repaired")),
		       (long long)json_integer_value(json_object_get(report, "remaining")));
}

int cmd_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"repair", no_argument, NULL, 'r'}, {"json", no_argument, NULL, 'j'}, {0}};
	int c, repair = 0, json = 0;
	kw_store *s = NULL;
	json_t *report = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "doctor", "", opts)) != -1) {
		if (c == 'r')
			repair = 1;
		else if (c == 'j')
			json = 1;
		else
			return 2;
	}
	if (optind < argc)
		return cli_usage_error("doctor: unexpected argument '%s'", argv[optind]);
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_doctor_run(s, repair, &report);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	if (json)
		cli_print_json(report);
	else
		print_text(report);
	json_int_t remaining = json_integer_value(json_object_get(report, "remaining"));
	json_decref(report);
	if (remaining == 0)
		return 0;
	fflush(stdout);
	fprintf(stderr, "keyward: doctor: %lld problem(s) remain%s\n", (long long)remaining,
	        repair ? "" : " (keyward doctor --repair fixes what is safe to fix)");
	return 1;
}
