/* keyward config get|set: store-wide settings (retention_days) */
#include <stdio.h>
#include <string.h>

#include <keyward/lifecycle.h>

#include "cli.h"

static int config_get(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	int c, as_json = 0;
	kw_store *s = NULL;
	json_t *all = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "config get", "", opts)) != -1) {
		if (c != 'j')
			return 2;
		as_json = 1;
	}
	if (argc - optind > 1)
		return cli_usage_error("config get: give at most one KEY");
	const char *key = optind < argc ? argv[optind] : NULL;
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_settings_list(s, &all);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	json_t *v = key ? json_object_get(all, key) : NULL;
	if (key && v == NULL) {
		json_decref(all);
		return cli_usage_error("config get: unknown setting '%s' (known: retention_days)",
		                       key);
	}
	if (as_json)
		cli_print_json(key ? v : all);
	else if (key)
		printf("%lld\n", (long long)json_integer_value(v));
	else {
		const char *k;
		json_object_foreach(all, k, v)
		    printf("%s = %lld\n", k, (long long)json_integer_value(v));
	}
	json_decref(all);
	return 0;
}

static int config_set(int argc, char **argv)
{
	kw_store *s = NULL;
	/* no options: a VALUE such as -3 is a value to refuse, not an option */
	optind = argc > 1 && strcmp(argv[1], "--") == 0 ? 2 : 1;
	if (argc - optind != 2)
		return cli_usage_error("config set: give KEY and VALUE");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_setting_set(s, argv[optind], argv[optind + 1]);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf("%s = %s\n", argv[optind], argv[optind + 1]);
	return 0;
}

int cmd_config(int argc, char **argv)
{
	static const cli_command table[] = {
	    {"get", config_get, "[KEY] [--json]", "Prints the store-wide settings (or one)."},
	    {"set", config_set, "KEY VALUE",
	     "Changes a store-wide setting.\n"
	     "retention_days (default 90): how long a deleted certificate keeps its keys before\n"
	     "  renew --due purges it (0: at the next run).\n"
	     "deploy_hook_timeout (default 60): seconds a deploy hook may run before it is "
	     "killed.\n"
	     "notify_timeout (default 10): seconds a notification channel may take."},
	    {NULL, NULL, NULL, NULL},
	};
	return cli_dispatch("config", table, argc, argv);
}
