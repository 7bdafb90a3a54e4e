/* keyward cert merge | cert pending cancel: the external CA's side of issuer "unknown" */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MERGE_FILE_MAX (1024 * 1024)

static const char *str(const json_t *j, const char *k)
{
	const char *s = json_string_value(json_object_get(j, k));
	return s ? s : "-";
}

static void print_merged(const json_t *r, const char *file)
{
	size_t i;
	json_t *v;
	printf("merged %s: version %lld is current", str(r, "name"),
	       (long long)json_integer_value(json_object_get(r, "version")));
	if (json_is_integer(json_object_get(r, "previous_version")))
		printf(" (version %lld superseded)",
		       (long long)json_integer_value(json_object_get(r, "previous_version")));
	printf("\n  subject %s, issued by %s, expires %s\n  sha256 %s\n  chain:", str(r, "subject"),
	       str(r, "issuer_dn"), str(r, "not_after"), str(r, "thumbprint_sha256"));
	json_array_foreach(json_object_get(r, "chain"), i, v)
	    printf("%s %s", i ? "," : "", json_string_value(v));
	if (json_array_size(json_object_get(r, "chain")) == 0)
		printf(" no issuer certificate in %s", file);
	printf("\n");
	json_array_foreach(json_object_get(r, "dropped"), i, v)
	    printf("dropped from %s: %s: %s\n", file, str(v, "subject"), str(v, "reason"));
	json_array_foreach(json_object_get(r, "notes"), i, v)
	    printf("note: %s\n", json_string_value(v));
}

int cert_merge(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	int c, as_json = 0;
	kw_store *s = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	json_t *report = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert merge", "", opts)) != -1) {
		if (c != 'j')
			return 2;
		as_json = 1;
	}
	if (argc - optind != 2)
		return cli_usage_error("cert merge: give NAME and FILE (the issued certificate, "
		                       "with its chain if you have it)");
	const char *name = argv[optind], *file = argv[optind + 1];
	int ex = cli_read_input(file, MERGE_FILE_MAX, "a certificate chain", &data, &len);
	if (ex || (ex = cli_store_open(&s))) {
		free(data);
		return ex;
	}
	kw_rc rc = kw_cert_merge(s, name, file, data, len, &report);
	kw_store_close(s);
	free(data);
	/* KW_ERR_DEPLOY: merged all the same; the deploy's error line follows */
	if (rc != KW_OK && (rc != KW_ERR_DEPLOY || report == NULL))
		return cli_fail(rc);
	if (rc == KW_ERR_DEPLOY)
		json_object_set_new(report, "deploy_error", json_string(kw_error_message()));
	if (as_json)
		cli_print_json(report);
	else
		print_merged(report, file);
	json_decref(report);
	fflush(stdout);
	return rc == KW_OK ? 0 : cli_fail(rc);
}

static int pending_cancel(int argc, char **argv)
{
	static const struct option none[] = {{0}};
	kw_store *s = NULL;
	json_t *r = NULL;
	optind = 1;
	if (cli_getopt(argc, argv, "cert pending cancel", "", none) != -1)
		return 2;
	if (argc - optind != 1)
		return cli_usage_error("cert pending cancel: give exactly one NAME");
	const char *name = argv[optind];
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_cert_pending_cancel(s, name, &r);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	const char *key = json_string_value(json_object_get(r, "key"));
	printf("cancelled %s version %lld: ", name,
	       (long long)json_integer_value(json_object_get(r, "version")));
	if (key && strcmp(key, "kept") == 0)
		printf("its key stays: another version uses it");
	else
		printf("its key was %s", cli_key_end_text(key));
	if (json_is_true(json_object_get(r, "certificate_removed")))
		printf("; %s is gone: it never had a certificate", name);
	printf("\n");
	json_decref(r);
	return 0;
}

int cert_pending(int argc, char **argv)
{
	static const cli_command table[] = {
	    {"cancel", pending_cancel, "NAME",
	     "Gives up the version waiting for its certificate: its key is destroyed in the\n"
	     "device (PKCS#11), revoked (a revocable TPM key) or, for other TPM keys, its\n"
	     "wrapped blob dropped from the store (a copy of it still signs), unless another\n"
	     "version uses it; the version is removed. A certificate that never had one\n"
	     "(created with --issuer unknown) goes altogether."},
	    {NULL, NULL, NULL, NULL},
	};
	return cli_dispatch("cert pending", table, argc, argv);
}
