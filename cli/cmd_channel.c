/* keyward channel add|list|remove */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyward/lifecycle.h>

#include "cli.h"

static int channel_add(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"command", required_argument, NULL, 'c'},
	    {"url", required_argument, NULL, 'u'},
	    {"ca-bundle", required_argument, NULL, 'b'},
	    {0},
	};
	const char *command = NULL, *url = NULL, *ca = NULL;
	char *ca_path = NULL;
	kw_store *s = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "channel add", "", opts)) != -1) {
		switch (c) {
		case 'c': command = optarg; break;
		case 'u': url = optarg; break;
		case 'b': ca = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(
		    "channel add: give NAME and KIND (sendmail, webhook or command)");
	const char *name = argv[optind], *kind = argv[optind + 1];
	if (ca && (ca_path = realpath(ca, NULL)) == NULL)
		return cli_usage_error("channel add: --ca-bundle %s: %s", ca, strerror(errno));
	json_t *cfg = json_object();
	if (command)
		json_object_set_new(cfg, "command", json_string(command));
	if (url)
		json_object_set_new(cfg, "url", json_string(url));
	if (ca_path)
		json_object_set_new(cfg, "ca_bundle", json_string(ca_path));
	free(ca_path);
	int ex = cli_store_open(&s);
	if (ex) {
		json_decref(cfg);
		return ex;
	}
	kw_rc rc = kw_channel_add(s, name, kind, cfg);
	kw_store_close(s);
	json_decref(cfg);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf("added %s channel %s\n", kind, name);
	return 0;
}

static int channel_remove(int argc, char **argv)
{
	static const struct option opts[] = {{0}};
	kw_store *s = NULL;
	optind = 1;
	if (cli_getopt(argc, argv, "channel remove", "", opts) != -1)
		return 2;
	if (argc - optind != 1)
		return cli_usage_error("channel remove: give exactly one NAME");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_channel_remove(s, argv[optind]);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf("removed channel %s\n", argv[optind]);
	return 0;
}

static void channel_table(const json_t *list)
{
	size_t i;
	json_t *ch;
	printf("%-16s %-9s %s\n", "NAME", "KIND", "TARGET");
	json_array_foreach(list, i, ch)
	{
		json_t *cfg = json_object_get(ch, "config");
		const char *target = json_string_value(json_object_get(cfg, "url"));
		if (target == NULL)
			target = json_string_value(json_object_get(cfg, "command"));
		printf("%-16s %-9s %s\n", json_string_value(json_object_get(ch, "name")),
		       json_string_value(json_object_get(ch, "kind")), target ? target : "-");
	}
}

static int channel_list(int argc, char **argv)
{
	return cli_list_command(argc, argv, "channel list", kw_channel_list, channel_table);
}

int cmd_channel(int argc, char **argv)
{
	static const cli_command table[] = {
	    {"add", channel_add,
	     "NAME sendmail [--command CMD]\n"
	     "       keyward channel add NAME webhook --url URL [--ca-bundle FILE]\n"
	     "       keyward channel add NAME command --command CMD",
	     "Adds a notification channel. Every notice goes through every channel.\n"
	     "sendmail: an RFC 5322 mail to the contacts on CMD's stdin (default "
	     "\"/usr/sbin/sendmail -t -i\").\n"
	     "webhook:  an HTTP POST of the notice as JSON (10 s timeout; non-2xx fails).\n"
	     "command:  CMD run by /bin/sh with the JSON on stdin and KEYWARD_EVENT, "
	     "KEYWARD_NAME,\n          KEYWARD_VERSION, KEYWARD_THRESHOLD, ... in its "
	     "environment."},
	    {"list", channel_list, "[--json]", "Lists the notification channels."},
	    {"remove", channel_remove, "NAME", "Removes a notification channel."},
	    {NULL, NULL, NULL, NULL},
	};
	return cli_dispatch("channel", table, argc, argv);
}
