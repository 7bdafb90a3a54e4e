/* keyward agent: the local signing service (agent/) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cli.h"

int cmd_agent(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"store", required_argument, NULL, 'd'},
	    {"max-connections", required_argument, NULL, 'm'},
	    {"max-connections-per-user", required_argument, NULL, 'u'},
	    {0},
	};
	kwa_config cfg = {
	    .socket_path = KW_AGENT_SOCKET_DEFAULT, .max_connections = 256, .max_per_user = 64};
	const char *store = cli_store_dir;
	char *dflt = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "agent", "", opts)) != -1) {
		switch (c) {
		case 's': cfg.socket_path = optarg; break;
		case 'd': store = optarg; break;
		case 'm':
			if (cli_parse_int("--max-connections", optarg, 1, 4096,
			                  &cfg.max_connections))
				return 2;
			break;
		case 'u':
			if (cli_parse_int("--max-connections-per-user", optarg, 1, 4096,
			                  &cfg.max_per_user))
				return 2;
			break;
		default: return 2;
		}
	}
	if (optind != argc)
		return cli_usage_error("agent: unexpected argument '%s'", argv[optind]);
	if (cfg.max_per_user > cfg.max_connections)
		cfg.max_per_user = cfg.max_connections;
	if (cfg.socket_path[0] != '/')
		return cli_usage_error("agent: --socket wants an absolute path, not '%s'",
		                       cfg.socket_path);
	if (store == NULL) {
		kw_rc rc = kw_store_default_dir(&dflt);
		if (rc != KW_OK)
			return cli_fail(rc);
		store = dflt;
	}
	cfg.store_dir = store;
	kw_rc rc = kwa_run(&cfg);
	free(dflt);
	return rc == KW_OK ? 0 : cli_fail(rc);
}
