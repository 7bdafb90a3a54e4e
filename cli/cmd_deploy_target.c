/* keyward deploy-target add|list|show|remove */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyward/lifecycle.h>

#include "cli.h"

static const char *const file_keys[] = {"cert", "chain", "fullchain", "key_ref"};
static const char *const hook_keys[] = {"pre", "deploy", "post"};

static int target_add(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"cert", required_argument, NULL, 0},
	    {"chain", required_argument, NULL, 1},
	    {"fullchain", required_argument, NULL, 2},
	    {"key-ref", required_argument, NULL, 3},
	    {"pre", required_argument, NULL, 4},
	    {"deploy", required_argument, NULL, 5},
	    {"post", required_argument, NULL, 6},
	    {"owner", required_argument, NULL, 'o'},
	    {"group", required_argument, NULL, 'g'},
	    {"mode", required_argument, NULL, 'm'},
	    {0},
	};
	json_t *cfg = json_object(), *hooks = json_object();
	kw_store *s = NULL;
	int c, ex = 0;
	optind = 1;
	while (ex == 0 && (c = cli_getopt(argc, argv, "deploy-target add", "", opts)) != -1) {
		if (c >= 0 && c <= 3)
			json_object_set_new(cfg, file_keys[c], json_string(optarg));
		else if (c >= 4 && c <= 6)
			json_object_set_new(hooks, hook_keys[c - 4], json_string(optarg));
		else if (c == 'o')
			json_object_set_new(cfg, "owner", json_string(optarg));
		else if (c == 'g')
			json_object_set_new(cfg, "group", json_string(optarg));
		else if (c == 'm')
			json_object_set_new(cfg, "mode", json_string(optarg));
		else
			ex = 2;
	}
	if (ex == 0 && argc - optind != 1)
		ex = cli_usage_error("deploy-target add: give exactly one NAME");
	if (ex == 0 && json_object_size(hooks))
		json_object_set(cfg, "hooks", hooks);
	if (ex == 0)
		ex = cli_store_open(&s);
	if (ex == 0) {
		kw_rc rc = kw_deploy_target_add(s, argv[optind], cfg);
		kw_store_close(s);
		if (rc != KW_OK)
			ex = cli_fail(rc);
		else
			printf("added deploy target %s\n", argv[optind]);
	}
	json_decref(hooks);
	json_decref(cfg);
	return ex;
}

static int target_remove(int argc, char **argv)
{
	static const struct option opts[] = {{0}};
	kw_store *s = NULL;
	optind = 1;
	if (cli_getopt(argc, argv, "deploy-target remove", "", opts) != -1)
		return 2;
	if (argc - optind != 1)
		return cli_usage_error("deploy-target remove: give exactly one NAME");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_deploy_target_remove(s, argv[optind]);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf("removed deploy target %s\n", argv[optind]);
	return 0;
}

/* "cert=/etc/ssl/a.pem key_ref=... hooks: deploy" */
static void target_line(const json_t *t)
{
	json_t *cfg = json_object_get(t, "config"), *hooks = json_object_get(cfg, "hooks");
	printf("%-20s", json_string_value(json_object_get(t, "name")));
	for (size_t i = 0; i < 4; i++) {
		const char *p = json_string_value(json_object_get(cfg, file_keys[i]));
		if (p)
			printf(" %s=%s", file_keys[i], p);
	}
	for (size_t i = 0; i < 3; i++)
		if (json_object_get(hooks, hook_keys[i]))
			printf(" %s-hook", hook_keys[i]);
	printf("\n");
}

static void target_table(const json_t *list)
{
	size_t i;
	json_t *t;
	printf("%-20s %s\n", "NAME", "FILES AND HOOKS");
	json_array_foreach(list, i, t) target_line(t);
}

static int target_list(int argc, char **argv)
{
	return cli_list_command(argc, argv, "deploy-target list", kw_deploy_target_list,
	                        target_table);
}

static void target_details(const json_t *t)
{
	json_t *cfg = json_object_get(t, "config"), *hooks = json_object_get(cfg, "hooks");
	const char *k;
	json_t *v;
	printf("name: %s\nkind: %s\ncreated: %s\n", json_string_value(json_object_get(t, "name")),
	       json_string_value(json_object_get(t, "kind")),
	       json_string_value(json_object_get(t, "created")));
	json_object_foreach(cfg, k, v) if (json_is_string(v))
	    printf("%s: %s\n", k, json_string_value(v));
	json_object_foreach(hooks, k, v) printf("%s hook: %s\n", k, json_string_value(v));
	printf("used by: %lld certificate(s)\n",
	       (long long)json_integer_value(json_object_get(t, "used_by")));
}

static int target_show(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	kw_store *s = NULL;
	json_t *out = NULL;
	int c, as_json = 0;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "deploy-target show", "", opts)) != -1) {
		if (c != 'j')
			return 2;
		as_json = 1;
	}
	if (argc - optind != 1)
		return cli_usage_error("deploy-target show: give exactly one NAME");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_deploy_target_show(s, argv[optind], &out);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	if (as_json)
		cli_print_json(out);
	else
		target_details(out);
	json_decref(out);
	return 0;
}

int cmd_deploy_target(int argc, char **argv)
{
	static const cli_command table[] = {
	    {"add", target_add,
	     "NAME [--cert PATH] [--chain PATH] [--fullchain PATH] [--key-ref PATH]\n"
	     "       [--owner USER] [--group GROUP] [--mode 0640] [--pre CMD] [--deploy CMD] "
	     "[--post CMD]",
	     "Defines where a deploy writes a certificate's files (absolute paths, owner,\n"
	     "group and mode; the owner and group must exist on this host) and the shell\n"
	     "commands it runs: pre, then the files, then deploy, then post. A policy names\n"
	     "a target (\"deploy\": {\"target\": \"NAME\"}); it cannot hold files or commands, so\n"
	     "neither can the management API."},
	    {"list", target_list, "[--json]", "Lists the deploy targets."},
	    {"show", target_show, "NAME [--json]",
	     "One deploy target and how many certificates name it."},
	    {"remove", target_remove, "NAME",
	     "Removes a deploy target; refused while a certificate's policy names it."},
	    {NULL, NULL, NULL, NULL},
	};
	return cli_dispatch("deploy-target", table, argc, argv);
}
