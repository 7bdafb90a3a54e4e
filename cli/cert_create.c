/* keyward cert create */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#define SAN_MAX 100

static int print_created(kw_store *s, const char *name)
{
	json_t *j = NULL;
	kw_rc rc = kw_cert_show(s, name, 0, &j);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf("created %s version %lld: %s key in backend %s, not exportable: %s\n"
	       "  subject %s, expires %s\n  sha256 %s\n",
	       name, (long long)json_integer_value(json_object_get(j, "version")),
	       json_string_value(json_object_get(json_object_get(j, "key"), "type")),
	       json_string_value(json_object_get(j, "backend")),
	       json_is_false(json_object_get(json_object_get(j, "key"), "exportable")) ? "yes"
	                                                                               : "NO",
	       json_string_value(json_object_get(j, "subject")),
	       json_string_value(json_object_get(j, "not_after")),
	       json_string_value(json_object_get(j, "thumbprint_sha256")));
	json_decref(j);
	return 0;
}

int cert_create(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"backend", required_argument, NULL, 'b'},
	    {"subject", required_argument, NULL, 's'},
	    {"san", required_argument, NULL, 'n'},
	    {"key", required_argument, NULL, 'k'},
	    {"days", required_argument, NULL, 'd'},
	    {"issuer", required_argument, NULL, 'i'},
	    {0},
	};
	const char *sans[SAN_MAX];
	kw_cert_request req = {0};
	kw_store *s = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert create", "", opts)) != -1) {
		switch (c) {
		case 'b': req.backend = optarg; break;
		case 's': req.subject = optarg; break;
		case 'k': req.key_type = optarg; break;
		case 'i': req.issuer = optarg; break;
		case 'd':
			if (cli_parse_int("--days", optarg, 1, 36500, &req.days))
				return 2;
			break;
		case 'n':
			if (req.n_sans == SAN_MAX)
				return cli_usage_error("cert create: at most %d --san", SAN_MAX);
			sans[req.n_sans++] = optarg;
			break;
		default: return 2;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("cert create: give exactly one NAME");
	req.name = argv[optind];
	req.sans = sans;
	if (req.backend == NULL)
		return cli_usage_error(
		    "cert create: --backend is required (see: keyward backend list)");
	if (req.subject == NULL)
		return cli_usage_error("cert create: --subject is required (e.g. --subject CN=%s)",
		                       req.name);
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_cert_create(s, &req);
	ex = rc == KW_OK ? print_created(s, req.name) : cli_fail(rc);
	kw_store_close(s);
	return ex;
}
