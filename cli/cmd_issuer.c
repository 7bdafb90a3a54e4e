/* keyward issuer add|list|show|remove: ACME issuers */
#include <stdio.h>
#include <string.h>

#include <keyward/issuer.h>

#include "cli.h"

static void print_issuer(const json_t *i)
{
	const json_t *certs = json_object_get(i, "certificates");
	const json_t *h = json_object_get(i, "http01");
	const char *email = json_string_value(json_object_get(i, "email"));
	const char *listen = json_string_value(json_object_get(h, "listen"));
	const char *webroot = json_string_value(json_object_get(h, "webroot"));
	printf("issuer %s (acme)\n  directory  %s\n  account    %s\n  key        %s in backend "
	       "%s\n  email      %s\n  http-01    %s%s\n  issues     %zu certificate(s)\n",
	       json_string_value(json_object_get(i, "name")),
	       json_string_value(json_object_get(i, "directory")),
	       json_string_value(json_object_get(i, "account_url")),
	       json_string_value(json_object_get(json_object_get(i, "key"), "type")),
	       json_string_value(json_object_get(i, "backend")), email ? email : "-",
	       listen    ? "listen "
	       : webroot ? "webroot "
	                 : "(given per certificate)",
	       listen    ? listen
	       : webroot ? webroot
	                 : "",
	       json_array_size(certs));
}

static int issuer_add(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"directory", required_argument, NULL, 'd'},
	    {"backend", required_argument, NULL, 'b'},
	    {"key", required_argument, NULL, 'k'},
	    {"email", required_argument, NULL, 'e'},
	    {"ca-bundle", required_argument, NULL, 'c'},
	    {"eab-kid", required_argument, NULL, 'K'},
	    {"eab-key-source", required_argument, NULL, 'S'},
	    {"http01-listen", required_argument, NULL, 'H'},
	    {"http01-webroot", required_argument, NULL, 'W'},
	    {"agree-tos", no_argument, NULL, 'A'},
	    {"preferred-chain", required_argument, NULL, 'P'},
	    {"json", no_argument, NULL, 'j'},
	    {0},
	};
	kw_issuer_spec sp = {0};
	int c, as_json = 0;
	json_t *report = NULL;
	kw_store *s = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "issuer add", "", opts)) != -1) {
		switch (c) {
		case 'd': sp.directory = optarg; break;
		case 'b': sp.backend = optarg; break;
		case 'k': sp.key_type = optarg; break;
		case 'e': sp.email = optarg; break;
		case 'c': sp.ca_bundle = optarg; break;
		case 'K': sp.eab_kid = optarg; break;
		case 'S': sp.eab_key_source = optarg; break;
		case 'H': sp.http01_listen = optarg; break;
		case 'W': sp.http01_webroot = optarg; break;
		case 'A': sp.agree_tos = 1; break;
		case 'P': sp.preferred_chain = optarg; break;
		case 'j': as_json = 1; break;
		default: return 2;
		}
	}
	if (argc - optind != 2 || strcmp(argv[optind + 1], "acme") != 0)
		return cli_usage_error(
		    "issuer add: give NAME acme (the one kind of issuer there is)");
	if (sp.directory == NULL)
		return cli_usage_error("issuer add: --directory URL is required");
	sp.name = argv[optind];
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_issuer_add(s, &sp, &report);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	const char *tos = json_string_value(json_object_get(report, "terms_of_service"));
	if (as_json)
		cli_print_json(report);
	else {
		print_issuer(report);
		if (tos)
			printf("  registering agreed to the CA's terms of service: %s\n", tos);
	}
	json_decref(report);
	return 0;
}

static void list_table(const json_t *list)
{
	size_t i;
	const json_t *o;
	printf("%-20s %-10s %-10s %s\n", "NAME", "BACKEND", "KEY", "DIRECTORY");
	json_array_foreach(list, i, o)
	    printf("%-20s %-10s %-10s %s\n", json_string_value(json_object_get(o, "name")),
	           json_string_value(json_object_get(o, "backend")),
	           json_string_value(json_object_get(json_object_get(o, "key"), "type")),
	           json_string_value(json_object_get(o, "directory")));
}

static int issuer_list(int argc, char **argv)
{
	return cli_list_command(argc, argv, "issuer list", kw_issuer_list, list_table);
}

static int issuer_show(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	int c, as_json = 0;
	json_t *j = NULL;
	kw_store *s = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "issuer show", "", opts)) != -1) {
		if (c != 'j')
			return 2;
		as_json = 1;
	}
	if (argc - optind != 1)
		return cli_usage_error("issuer show: give exactly one NAME");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_issuer_show(s, argv[optind], &j);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	if (as_json)
		cli_print_json(j);
	else
		print_issuer(j);
	json_decref(j);
	return 0;
}

static int issuer_remove(int argc, char **argv)
{
	kw_store *s = NULL;
	optind = 1;
	if (cli_getopt(argc, argv, "issuer remove", "", (const struct option[]){{0}}) != -1)
		return 2;
	if (argc - optind != 1)
		return cli_usage_error("issuer remove: give exactly one NAME");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	json_t *rep = NULL;
	kw_rc rc = kw_issuer_remove(s, argv[optind], &rep);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	const char *why = json_string_value(json_object_get(rep, "deactivate_error"));
	const char *key = json_string_value(json_object_get(rep, "account_key"));
	printf("removed issuer %s: ", argv[optind]);
	if (why)
		printf("the CA was not told (%s); ", why);
	else
		printf("account deactivated at the CA; ");
	if (key && strcmp(key, "left") == 0)
		printf("its account key is left on the device (%s)\n",
		       json_string_value(json_object_get(rep, "account_key_error")));
	else
		printf("its account key was %s\n", cli_key_end_text(key));
	json_decref(rep);
	return 0;
}

int cmd_issuer(int argc, char **argv)
{
	static const cli_command table[] = {
	    {"add", issuer_add,
	     "NAME acme --directory URL [--backend B] [--key TYPE] [--email E] [--ca-bundle FILE] "
	     "[--eab-kid K --eab-key-source file:PATH|env:VAR] [--http01-listen ADDR:PORT | "
	     "--http01-webroot DIR] [--preferred-chain CN] [--agree-tos] [--json]",
	     "Adds an ACME (RFC 8555) issuer: certificates created with --issuer acme:NAME are\n"
	     "issued and renewed by it. The account key (TYPE: ec-p256 default, ec-p384,\n"
	     "rsa-2048/3072/4096) is generated in backend B (default: the store's only backend)\n"
	     "and signs every request there. The\n"
	     "account is registered now, with E as its contact. --ca-bundle: the CAs that\n"
	     "vouch for the server's TLS certificate (default: the system's). --eab-*: external\n"
	     "account binding, the HMAC key (base64url) read from a pin source, never kept.\n"
	     "--http01-*: how its certificates answer http-01 unless their policy says.\n"
	     "--preferred-chain CN: of the chains the CA offers, keep the one whose topmost\n"
	     "certificate was issued by CN (e.g. \"ISRG Root X1\"); none matching: the default.\n"
	     "Registering agrees to the CA's terms of service (shown, and kept with the issuer);\n"
	     "--agree-tos says so explicitly."},
	    {"list", issuer_list, "[--json]", "Lists the ACME issuers."},
	    {"show", issuer_show, "NAME [--json]",
	     "Shows an issuer: directory, account URL, key, and the certificates it issues."},
	    {"remove", issuer_remove, "NAME",
	     "Removes an issuer that no certificate uses: its account is deactivated at the CA\n"
	     "(if the CA can be reached) and its account key destroyed (PKCS#11) or, in a TPM,\n"
	     "its wrapped blob dropped from the store (says which)."},
	    {NULL, NULL, NULL, NULL},
	};
	return cli_dispatch("issuer", table, argc, argv);
}
