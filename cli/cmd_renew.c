/* keyward renew --due: the renewal engine a timer runs */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <keyward/lifecycle.h>

#include "cli.h"

/* "2030-01-01T00:00:00Z" (or "-" for none) into buf (>= 21 bytes). */
static const char *when(time_t t, char *buf, size_t len)
{
	struct tm tm;
	if (t == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "-");
	return buf;
}

static const char *text(const char *s)
{
	return s ? s : "-";
}

/* "; notified near-expiry (days_before_expiry=30)" */
static void print_notices(const json_t *res, const char *key, const char *verb)
{
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(res, key), i, n)
	    printf("; %s %s (%s)", verb, text(json_string_value(json_object_get(n, "kind"))),
	           text(json_string_value(json_object_get(n, "threshold"))));
}

static void print_skipped(const kw_renew_result *r)
{
	char t[32];
	switch (r->reason) {
	case KW_RENEW_REASON_PENDING:
		printf("%s: skipped: version %d is pending, its CSR waiting for a certificate "
		       "(keyward cert merge %s FILE)",
		       r->name, r->pending_version, r->name);
		break;
	case KW_RENEW_REASON_BACKOFF:
		printf("%s: skipped: %d failed attempt(s), next attempt %s (last error: %s)",
		       r->name, r->failures, when(r->next_attempt, t, sizeof(t)), text(r->error));
		break;
	case KW_RENEW_REASON_CONCURRENT:
		printf("%s: skipped: another keyward run renews it, or just did", r->name);
		break;
	case KW_RENEW_REASON_DISABLED:
	case KW_RENEW_REASON_NO_CERTIFICATE:
	case KW_RENEW_REASON_NONE:
		printf("%s: skipped (%s)", r->name, text(kw_renew_reason_name(r->reason)));
		break;
	}
}

static void progress(const kw_renew_result *r, void *arg)
{
	const char *name = r->name;
	char t1[32], t2[32];
	size_t i;
	json_t *w;
	(void)arg;
	switch (r->action) {
	case KW_RENEW_RENEWED:
		printf("%s: renewed \u2192 version %d (%s)", name, r->new_version,
		       r->new_key ? "new key" : "same key");
		break;
	case KW_RENEW_PENDING:
		printf("%s: renewal pending \u2192 version %d (%s) waits for its certificate "
		       "(keyward cert csr %s, then keyward cert merge %s FILE)",
		       name, r->new_version, r->new_key ? "new key" : "same key", name, name);
		break;
	case KW_RENEW_WOULD_RENEW:
		printf("%s: would renew (due since %s) with %s", name, when(r->due, t1, sizeof(t1)),
		       r->new_key ? "a new key" : "the same key");
		break;
	case KW_RENEW_NOT_DUE:
	case KW_RENEW_NOTIFIED:
		printf("%s: not due (renews at %s)", name, when(r->due, t1, sizeof(t1)));
		break;
	case KW_RENEW_SKIPPED: print_skipped(r); break;
	case KW_RENEW_FAILED:
		if (r->deleted)
			printf("%s: FAILED to purge: %s", name, text(r->error));
		else
			printf("%s: FAILED: %s (next attempt %s)", name, text(r->error),
			       when(r->next_attempt, t1, sizeof(t1)));
		break;
	case KW_RENEW_PURGED:
	case KW_RENEW_WOULD_PURGE:
		printf("%s: %s (deleted %s, retention ended %s)", name,
		       r->action == KW_RENEW_PURGED ? "purged" : "would purge",
		       when(r->deleted, t1, sizeof(t1)), when(r->purge_after, t2, sizeof(t2)));
		break;
	default: printf("%s: %s", name, kw_renew_action_name(r->action)); break;
	}
	if (r->deploy_retried == 1)
		printf("; its last deploy had failed: deployed again%s%s",
		       r->deploy_error ? ", FAILED: " : "", r->deploy_error ? r->deploy_error : "");
	else if (r->deploy_retried == 2)
		printf("; its last deploy failed: would deploy again");
	else if (r->deploy_error)
		printf("; deploy FAILED: %s", r->deploy_error);
	print_notices(r->json, "notified", "notified");
	print_notices(r->json, "would_notify", "would notify");
	json_array_foreach(json_object_get(r->json, "warnings"), i, w)
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
	json_int_t deploys = json_integer_value(json_object_get(report, "deploy_failed"));
	size_t i;
	json_t *res;
	fflush(stdout);
	/* one line per deploy that failed: certificate, target, what failed */
	json_array_foreach(json_object_get(report, "results"), i, res)
	{
		const char *e = json_string_value(json_object_get(res, "deploy_error"));
		if (e)
			fprintf(stderr, "keyward: %s\n", e);
	}
	if (failed > 0)
		fprintf(stderr, "keyward: %lld of %zu certificate(s) failed\n", (long long)failed,
		        json_array_size(json_object_get(report, "results")));
	json_decref(report);
	/* a failed renewal (or purge) outweighs a failed deploy */
	return failed > 0 ? 1 : deploys > 0 ? CLI_EXIT_DEPLOY : 0;
}
