/* keyward renew --due: the renewal engine a timer runs */
#include <stdio.h>
#include <string.h>

#include <keyward/lifecycle.h>

#include "cli.h"

static const char *str(const json_t *j, const char *k)
{
	const char *s = json_string_value(json_object_get(j, k));
	return s ? s : "-";
}

/* "; notified near-expiry (days_before_expiry=30)" */
static void print_notices(const json_t *res, const char *key, const char *verb)
{
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(res, key), i, n)
	    printf("; %s %s (%s)", verb, str(n, "kind"), str(n, "threshold"));
}

static void print_skipped(const json_t *res)
{
	if (strcmp(str(res, "reason"), "pending") == 0) {
		printf("%s: skipped: version %lld is pending, its CSR waiting for a certificate "
		       "(keyward cert merge %s FILE)",
		       str(res, "name"),
		       (long long)json_integer_value(json_object_get(res, "pending_version")),
		       str(res, "name"));
		return;
	}
	if (strcmp(str(res, "reason"), "backoff") != 0) {
		printf("%s: skipped (%s)", str(res, "name"), str(res, "reason"));
		return;
	}
	printf("%s: skipped: %lld failed attempt(s), next attempt %s (last error: %s)",
	       str(res, "name"), (long long)json_integer_value(json_object_get(res, "failures")),
	       str(res, "next_attempt"), str(res, "error"));
}

static void progress(const json_t *res, void *arg)
{
	const char *action = str(res, "action"), *name = str(res, "name");
	const int new_key = json_is_true(json_object_get(res, "new_key"));
	size_t i;
	json_t *w;
	(void)arg;
	if (strcmp(action, "renewed") == 0)
		printf("%s: renewed \u2192 version %lld (%s)", name,
		       (long long)json_integer_value(json_object_get(res, "new_version")),
		       new_key ? "new key" : "same key");
	else if (strcmp(action, "pending") == 0)
		printf("%s: renewal pending \u2192 version %lld (%s) waits for its certificate "
		       "(keyward cert csr %s, then keyward cert merge %s FILE)",
		       name, (long long)json_integer_value(json_object_get(res, "new_version")),
		       new_key ? "new key" : "same key", name, name);
	else if (strcmp(action, "would-renew") == 0)
		printf("%s: would renew (due since %s) with %s", name, str(res, "due"),
		       new_key ? "a new key" : "the same key");
	else if (strcmp(action, "not-due") == 0 || strcmp(action, "notified") == 0)
		printf("%s: not due (renews at %s)", name, str(res, "due"));
	else if (strcmp(action, "skipped") == 0)
		print_skipped(res);
	else if (strcmp(action, "failed") == 0 && json_object_get(res, "next_attempt"))
		printf("%s: FAILED: %s (next attempt %s)", name, str(res, "error"),
		       str(res, "next_attempt"));
	else if (strcmp(action, "failed") == 0)
		printf("%s: FAILED to purge: %s", name, str(res, "error"));
	else if (strcmp(action, "purged") == 0 || strcmp(action, "would-purge") == 0)
		printf("%s: %s (deleted %s, retention ended %s)", name,
		       action[0] == 'p' ? "purged" : "would purge", str(res, "deleted"),
		       str(res, "purge_after"));
	else
		printf("%s: %s", name, action);
	print_notices(res, "notified", "notified");
	print_notices(res, "would_notify", "would notify");
	json_array_foreach(json_object_get(res, "warnings"), i, w)
	    printf("; warning: %s", json_string_value(w));
	printf("\n");
	fflush(stdout);
}

int cmd_renew(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"due", no_argument, NULL, 'd'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"json", no_argument, NULL, 'j'},
	    {"jitter", required_argument, NULL, 'J'},
	    {0},
	};
	kw_renew_options o = {0};
	int c, due = 0, as_json = 0;
	kw_store *s = NULL;
	json_t *report = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "renew", "", opts)) != -1) {
		if (c == 'd')
			due = 1;
		else if (c == 'n')
			o.dry_run = 1;
		else if (c == 'j')
			as_json = 1;
		else if (c == 'J') {
			if (cli_parse_int("--jitter", optarg, 0, 86400, &o.jitter_seconds))
				return 2;
		} else
			return 2;
	}
	if (optind < argc)
		return cli_usage_error("renew: unexpected argument '%s' (to renew one "
		                       "certificate: keyward cert renew NAME)",
		                       argv[optind]);
	if (!due)
		return cli_usage_error("renew: give --due (to renew one certificate: keyward cert "
		                       "renew NAME)");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_store_set_actor(s, "renew");
	if (!as_json)
		o.progress = progress;
	kw_rc rc = kw_renew_due(s, &o, &report);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	if (as_json)
		cli_print_json(report);
	json_int_t failed = json_integer_value(json_object_get(report, "failed"));
	if (failed > 0)
		fprintf(stderr, "keyward: %lld of %zu certificate(s) failed\n", (long long)failed,
		        json_array_size(json_object_get(report, "results")));
	json_decref(report);
	return failed > 0 ? 1 : 0;
}
