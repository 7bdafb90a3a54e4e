/* keyward contact add|list|remove */
#include <stdio.h>
#include <string.h>

#include <keyward/lifecycle.h>

#include "cli.h"

static const struct option cert_opts[] = {
    {"cert", required_argument, NULL, 'c'},
    {"name", required_argument, NULL, 'n'},
    {"json", no_argument, NULL, 'j'},
    {0},
};

/* Parses the options a subcommand allows (a subset of cert_opts); -1 = error. */
static int parse(int argc, char **argv, const char *cmd, const char *allowed, const char **cert,
                 const char **name, int *as_json)
{
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, cmd, "", cert_opts)) != -1) {
		if (c == '?' || !strchr(allowed, c)) {
			const struct option *o = cert_opts;
			while (o->name && o->val != c)
				o++;
			if (c != '?')
				cli_usage_error("%s: option '--%s' does not apply (see: keyward %s "
				                "--help)",
				                cmd, o->name, cmd);
			return -1;
		}
		if (c == 'c')
			*cert = optarg;
		else if (c == 'n')
			*name = optarg;
		else
			*as_json = 1;
	}
	return 0;
}

static int contact_change(int argc, char **argv, int add)
{
	const char *cmd = add ? "contact add" : "contact remove";
	const char *cert = NULL, *name = NULL;
	int as_json = 0;
	kw_store *s = NULL;
	if (parse(argc, argv, cmd, add ? "cn" : "c", &cert, &name, &as_json) != 0)
		return 2;
	if (argc - optind != 1)
		return cli_usage_error("%s: give exactly one EMAIL", cmd);
	const char *email = argv[optind];
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = add ? kw_contact_add(s, cert, email, name) : kw_contact_remove(s, cert, email);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf("%s contact %s %s %s\n", add ? "added" : "removed", email, add ? "to" : "from",
	       cert ? cert : "the store (all certificates)");
	return 0;
}

static int contact_add(int argc, char **argv)
{
	return contact_change(argc, argv, 1);
}

static int contact_remove(int argc, char **argv)
{
	return contact_change(argc, argv, 0);
}

static void contact_table(const json_t *list)
{
	size_t i;
	json_t *c;
	printf("%-40s %-24s %s\n", "EMAIL", "NAME", "CERTIFICATE");
	json_array_foreach(list, i, c)
	{
		const char *n = json_string_value(json_object_get(c, "name"));
		const char *on = json_string_value(json_object_get(c, "cert"));
		printf("%-40s %-24s %s\n", json_string_value(json_object_get(c, "email")),
		       n ? n : "-", on ? on : "(all)");
	}
}

static int contact_list(int argc, char **argv)
{
	const char *cert = NULL, *name = NULL;
	int as_json = 0;
	if (parse(argc, argv, "contact list", "cj", &cert, &name, &as_json) != 0)
		return 2;
	if (optind < argc)
		return cli_usage_error("contact list: unexpected argument '%s'", argv[optind]);
	return cli_list_show(kw_contact_list, cert, as_json, contact_table);
}

int cmd_contact(int argc, char **argv)
{
	static const cli_command table[] = {
	    {"add", contact_add, "EMAIL [--name NAME] [--cert CERT]",
	     "Adds a contact: told about CERT, or without --cert about every certificate.\n"
	     "EMAIL is one plain address (ops@example.com); NAME is shown in the To: header."},
	    {"list", contact_list, "[--cert CERT] [--json]",
	     "Lists contacts; with --cert, everyone told about CERT (its own and the "
	     "store-wide ones)."},
	    {"remove", contact_remove, "EMAIL [--cert CERT]",
	     "Removes a contact of CERT, or without --cert a store-wide contact."},
	    {NULL, NULL, NULL, NULL},
	};
	return cli_dispatch("contact", table, argc, argv);
}
