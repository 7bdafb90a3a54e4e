/* keyward cert import */
#include <stdio.h>

#include <keyward/import.h>

#include "cli.h"

/* Opens the store, runs the call, prints its result as JSON or as text. */
static int run(kw_rc (*call)(kw_store *s, const void *req, json_t **out), const void *req, int json,
               void (*print)(const json_t *out))
{
	kw_store *s = NULL;
	json_t *out = NULL;
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = call(s, req, &out);
	if (rc != KW_OK)
		ex = cli_fail(rc);
	else if (json)
		cli_print_json(out);
	else
		print(out);
	json_decref(out);
	kw_store_close(s);
	return ex;
}

static kw_rc call_import(kw_store *s, const void *req, json_t **out)
{
	return kw_cert_import(s, req, out);
}

static kw_rc call_adopt(kw_store *s, const void *req, json_t **out)
{
	return kw_cert_adopt(s, req, out);
}

static void print_imported(const json_t *j)
{
	printf("imported %s version 1: %s key into backend %s, not exportable: %s, "
	       "generated on the device: no (imported)\n  issuer %s%s\n",
	       json_string_value(json_object_get(j, "name")),
	       json_string_value(json_object_get(j, "key_type")),
	       json_string_value(json_object_get(j, "backend")),
	       json_is_false(json_object_get(j, "exportable")) ? "yes" : "NO",
	       json_string_value(json_object_get(j, "issuer")),
	       json_is_true(json_object_get(j, "shredded")) ? "; the input file was shredded" : "");
}

int cert_import(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"backend", required_argument, NULL, 'b'},
	    {"pem", required_argument, NULL, 'p'},
	    {"pkcs12", required_argument, NULL, 'P'},
	    {"password-source", required_argument, NULL, 'w'},
	    {"shred-input", no_argument, NULL, 'S'},
	    {"json", no_argument, NULL, 'j'},
	    {0},
	};
	kw_cert_import_request req = {0};
	int c, json = 0;

	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert import", "", opts)) != -1) {
		switch (c) {
		case 'b': req.backend = optarg; break;
		case 'p': req.pem_path = optarg; break;
		case 'P': req.pkcs12_path = optarg; break;
		case 'w': req.password_source = optarg; break;
		case 'S': req.shred_input = 1; break;
		case 'j': json = 1; break;
		default: return 2;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("cert import: give exactly one NAME");
	if (req.backend == NULL)
		return cli_usage_error("cert import: --backend is required");
	if ((req.pem_path == NULL) == (req.pkcs12_path == NULL))
		return cli_usage_error("cert import: give exactly one of --pem FILE and --pkcs12 "
		                       "FILE");
	req.name = argv[optind];

	return run(call_import, &req, json, print_imported);
}

static void print_adopted(const json_t *j)
{
	printf("adopted %s version 1: %s key on backend %s, not exportable: %s, "
	       "generated on the device: %s\n  issuer %s; certificate from the %s\n",
	       json_string_value(json_object_get(j, "name")),
	       json_string_value(json_object_get(j, "key_type")),
	       json_string_value(json_object_get(j, "backend")),
	       json_is_false(json_object_get(j, "exportable")) ? "yes" : "NO",
	       json_is_true(json_object_get(j, "generated_on_device")) ? "yes" : "no",
	       json_string_value(json_object_get(j, "issuer")),
	       json_string_value(json_object_get(j, "certificate_source")));
}

int cert_adopt(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"backend", required_argument, NULL, 'b'}, {"key-uri", required_argument, NULL, 'u'},
	    {"tss2", required_argument, NULL, 't'},    {"cert", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},          {0},
	};
	kw_cert_adopt_request req = {0};
	int c, json = 0;

	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert adopt", "", opts)) != -1) {
		switch (c) {
		case 'b': req.backend = optarg; break;
		case 'u': req.key_uri = optarg; break;
		case 't': req.tss2_path = optarg; break;
		case 'c': req.cert_path = optarg; break;
		case 'j': json = 1; break;
		default: return 2;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("cert adopt: give exactly one NAME");
	if (req.backend == NULL)
		return cli_usage_error("cert adopt: --backend is required");
	if ((req.key_uri == NULL) == (req.tss2_path == NULL))
		return cli_usage_error(
		    "cert adopt: give exactly one of --key-uri URI and --tss2 FILE");
	req.name = argv[optind];

	return run(call_adopt, &req, json, print_adopted);
}
