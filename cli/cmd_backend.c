/* keyward backend add|list */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int backend_add(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"tcti", required_argument, NULL, 't'},
	    {"module", required_argument, NULL, 'm'},
	    {"token", required_argument, NULL, 'k'},
	    {"pin-source", required_argument, NULL, 'p'},
	    {0},
	};
	kw_backend_spec b = {0};
	kw_store *s = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "backend add", "", opts)) != -1) {
		switch (c) {
		case 't': b.tcti = optarg; break;
		case 'm': b.module = optarg; break;
		case 'k': b.token = optarg; break;
		case 'p': b.pin_source = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("backend add: give NAME and KIND (tpm2 or pkcs11)");
	b.name = argv[optind];
	b.kind = argv[optind + 1];
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_backend_add(s, &b);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf("added %s backend %s\n", b.kind, b.name);
	return 0;
}

static void backend_table(const json_t *list)
{
	size_t i;
	json_t *b;
	printf("%-16s %-7s %-5s %s\n", "NAME", "KIND", "CERTS", "DEVICE");
	json_array_foreach(list, i, b)
	{
		const char *kind = json_string_value(json_object_get(b, "kind"));
		const char *tcti = json_string_value(json_object_get(b, "tcti"));
		char dev[512];
		/* Each kind lists its own settings: a token is named by a module. */
		if (json_object_get(b, "module") == NULL)
			snprintf(dev, sizeof(dev), "tcti=%s", tcti ? tcti : "(default)");
		else
			snprintf(dev, sizeof(dev), "module=%s token=%s pin=%s",
			         json_string_value(json_object_get(b, "module")),
			         json_string_value(json_object_get(b, "token")),
			         json_string_value(json_object_get(b, "pin_source")));
		printf("%-16s %-7s %-5lld %s\n", json_string_value(json_object_get(b, "name")),
		       kind, (long long)json_integer_value(json_object_get(b, "certificates")),
		       dev);
	}
}

static int backend_list(int argc, char **argv)
{
	return cli_list_command(argc, argv, "backend list", kw_backend_list, backend_table);
}

int cmd_backend(int argc, char **argv)
{
	static const cli_command table[] = {
	    {"add", backend_add,
	     "NAME tpm2 [--tcti TCTI]\n       keyward backend add NAME pkcs11 --module MODULE "
	     "--token LABEL|pkcs11:URI [--pin-source file:PATH|env:VAR]",
	     "Adds a backend after checking it works (TPM reachable; token found and PIN "
	     "accepted).\nTCTI examples: device:/dev/tpmrm0, swtpm:host=127.0.0.1,port=2321, "
	     "tabrmd:.\nMODULE is a p11-kit module name (e.g. softhsm2) or a path to the .so.\n"
	     "The PIN is read from the pin source each time; it is never stored. A pin file "
	     "must not be\naccessible by group or others."},
	    {"list", backend_list, "[--json]", "Lists the configured backends."},
	    {NULL, NULL, NULL, NULL},
	};
	return cli_dispatch("backend", table, argc, argv);
}
