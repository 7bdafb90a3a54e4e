/* keyward cert versions | rollback | set | delete | recover | purge | deleted */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyward/lifecycle.h>

#include "cli.h"

static const char *str(const json_t *j, const char *k)
{
	const char *s = json_string_value(json_object_get(j, k));
	return s ? s : "-";
}

/* Parses [--json] and exactly want positional arguments. */
static int parse_simple(int argc, char **argv, const char *cmd, int allow_json, int want, int *json)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	static const struct option none[] = {{0}};
	int c;
	*json = 0;
	optind = 1;
	while ((c = cli_getopt(argc, argv, cmd, "", allow_json ? opts : none)) != -1) {
		if (c != 'j')
			return 2;
		*json = 1;
	}
	if (argc - optind != want)
		return cli_usage_error(want == 0   ? "%s: unexpected argument"
		                       : want == 1 ? "%s: give exactly one NAME"
		                                   : "%s: give NAME and VERSION",
		                       cmd);
	return 0;
}

static void versions_table(const json_t *list)
{
	size_t i;
	json_t *v;
	printf("%4s %-3s %-10s %-20s %-20s %-9s %s\n", "VER", "CUR", "STATUS", "NOT_BEFORE",
	       "NOT_AFTER", "KEY", "THUMBPRINT_SHA256");
	json_array_foreach(list, i, v)
	    printf("%4lld %-3s %-10s %-20s %-20s %-9s %s\n",
	           (long long)json_integer_value(json_object_get(v, "version")),
	           json_is_true(json_object_get(v, "current")) ? "*" : "", str(v, "status"),
	           str(v, "not_before"), str(v, "not_after"),
	           str(json_object_get(v, "key"), "type"), str(v, "thumbprint_sha256"));
}

int cert_versions(int argc, char **argv)
{
	int as_json, ex = parse_simple(argc, argv, "cert versions", 1, 1, &as_json);
	if (ex)
		return ex;
	return cli_list_show(kw_cert_versions, argv[optind], as_json, versions_table);
}

int cert_rollback(int argc, char **argv)
{
	int unused, version, ex = parse_simple(argc, argv, "cert rollback", 0, 2, &unused);
	kw_store *s = NULL;
	if (ex || (ex = cli_parse_int("VERSION", argv[optind + 1], 1, 1000000, &version)))
		return ex;
	if ((ex = cli_store_open(&s)))
		return ex;
	kw_rc rc = kw_cert_rollback(s, argv[optind], version);
	kw_store_close(s);
	/* KW_ERR_DEPLOY: rolled back all the same; the deploy's error line follows */
	if (rc != KW_OK && rc != KW_ERR_DEPLOY)
		return cli_fail(rc);
	printf("rolled back %s: version %d is current\n", argv[optind], version);
	fflush(stdout);
	return rc == KW_OK ? 0 : cli_fail(rc);
}

static int parse_bool(const char *opt, const char *text, int *out)
{
	if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
		*out = text[0] == 't';
		return 0;
	}
	return cli_usage_error("%s must be true or false, not '%s'", opt, text);
}

int cert_set(int argc, char **argv)
{
	static const struct option opts[] = {{"enabled", required_argument, NULL, 'e'}, {0}};
	int c, enabled = -1;
	kw_store *s = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert set", "", opts)) != -1) {
		if (c != 'e')
			return 2;
		if (parse_bool("--enabled", optarg, &enabled))
			return 2;
	}
	if (argc - optind != 1)
		return cli_usage_error("cert set: give exactly one NAME");
	if (enabled < 0)
		return cli_usage_error("cert set: nothing to set (--enabled true|false)");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_cert_set_enabled(s, argv[optind], enabled);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf(enabled ? "%s: enabled\n"
	               : "%s: disabled (the provider refuses its key; renew --due skips it)\n",
	       argv[optind]);
	return 0;
}

static void print_purge_after(kw_store *s, const char *name)
{
	json_t *list = NULL;
	const char *when = NULL;
	size_t i;
	json_t *d;
	if (kw_cert_list_deleted(s, &list) == KW_OK)
		json_array_foreach(list, i, d) if (strcmp(str(d, "name"), name) == 0) when =
		    str(d, "purge_after");
	printf("deleted %s: hidden until recovered (keyward cert recover %s); its keys are "
	       "purged after %s\n",
	       name, name, when ? when : "the retention period");
	json_decref(list);
}

/* "purged NAME: ..." with what each device did to the keys: the words a
 * user can rely on (a key said destroyed can never sign again). */
static void print_purged(const char *name, const kw_keys_gone *g)
{
	const char *sep = "";
	printf("purged %s: ", name);
	if (g->destroyed) {
		printf("%d key%s destroyed in %s device%s", g->destroyed,
		       g->destroyed == 1 ? "" : "s", g->destroyed == 1 ? "its" : "their",
		       g->destroyed == 1 ? "" : "s");
		sep = "; ";
	}
	if (g->revoked) {
		printf("%s%d TPM key%s revoked: no copy of %s wrapped blob%s can sign again", sep,
		       g->revoked, g->revoked == 1 ? "" : "s", g->revoked == 1 ? "its" : "their",
		       g->revoked == 1 ? "" : "s");
		sep = "; ";
	}
	if (g->forgotten) {
		int one = g->forgotten == 1;
		printf("%s%d TPM key%s forgotten: the store dropped %s wrapped blob%s and the TPM "
		       "holds no copy, but any copy of %s (a cert key-ref --format tss2 file, a "
		       "backup of the store) still loads and signs on that TPM",
		       sep, g->forgotten, one ? "" : "s", one ? "its" : "their", one ? "" : "s",
		       one ? "the blob" : "a blob");
		sep = "; ";
	}
	if (!*sep)
		printf("no key was left to end");
	printf("\n");
}

int cert_lifecycle_delete(int argc, char **argv)
{
	static const struct option opts[] = {{"purge", no_argument, NULL, 'p'}, {0}};
	int c, purge = 0;
	kw_store *s = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert delete", "", opts)) != -1) {
		if (c != 'p')
			return 2;
		purge = 1;
	}
	if (argc - optind != 1)
		return cli_usage_error("cert delete: give exactly one NAME");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	const char *name = argv[optind];
	kw_keys_gone gone = {0};
	kw_rc rc = purge ? kw_cert_delete(s, name, &gone) : kw_cert_soft_delete(s, name);
	if (rc == KW_OK && purge)
		print_purged(name, &gone);
	else if (rc == KW_OK)
		print_purge_after(s, name);
	kw_store_close(s);
	return rc == KW_OK ? 0 : cli_fail(rc);
}

int cert_recover(int argc, char **argv)
{
	int unused, ex = parse_simple(argc, argv, "cert recover", 0, 1, &unused);
	kw_store *s = NULL;
	if (ex || (ex = cli_store_open(&s)))
		return ex;
	kw_rc rc = kw_cert_recover(s, argv[optind]);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf("recovered %s\n", argv[optind]);
	return 0;
}

int cert_purge(int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'}, {0}};
	int c, force = 0;
	kw_store *s = NULL;
	json_t *live = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert purge", "", opts)) != -1) {
		if (c != 'f')
			return 2;
		force = 1;
	}
	if (argc - optind != 1)
		return cli_usage_error("cert purge: give exactly one NAME");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	const char *name = argv[optind];
	/* show finds live certificates only: a live one needs --force */
	if (!force && kw_cert_show(s, name, 0, &live) == KW_OK) {
		json_decref(live);
		kw_store_close(s);
		fprintf(stderr,
		        "keyward: certificate '%s' is not deleted: delete it first (keyward cert "
		        "delete %s) or add --force to purge it now\n",
		        name, name);
		return 1;
	}
	kw_keys_gone gone = {0};
	kw_rc rc = kw_cert_purge(s, name, &gone);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	print_purged(name, &gone);
	return 0;
}

static void deleted_table(const json_t *list)
{
	size_t i;
	json_t *d;
	printf("%-20s %-20s %-20s %s\n", "NAME", "DELETED", "PURGE_AFTER", "BACKEND");
	json_array_foreach(list, i, d)
	    printf("%-20s %-20s %-20s %s\n", str(d, "name"), str(d, "deleted"),
	           str(d, "purge_after"), str(d, "backend"));
}

int cert_deleted(int argc, char **argv)
{
	return cli_list_command(argc, argv, "cert deleted", kw_cert_list_deleted, deleted_table);
}
