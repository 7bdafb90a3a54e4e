/* keyward serve: the management API (server/) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyward/mgmt.h>

#include "cli.h"
#include "server.h"

/* "127.0.0.1:8443", "[::1]:8443"; host is a copy in buf. */
static int parse_listen(const char *text, char *buf, size_t len, int *port)
{
	const char *colon = strrchr(text, ':');
	const char *host = text;
	size_t hlen = colon ? (size_t)(colon - text) : 0;
	if (colon == NULL || hlen == 0)
		return cli_usage_error("serve: --listen wants ADDR:PORT, not '%s'", text);
	if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hlen >= len)
		return cli_usage_error("serve: --listen address too long");
	memcpy(buf, host, hlen);
	buf[hlen] = '\0';
	return cli_parse_int("--listen port", colon + 1, 0, 65535, port) ? 2 : 0;
}

static int serve_options(int argc, char **argv, kws_config *cfg, char *host, size_t hlen)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"tls-cert", required_argument, NULL, 'c'},
	    {"max-body", required_argument, NULL, 'b'},
	    {"timeout", required_argument, NULL, 't'},
	    {"max-connections", required_argument, NULL, 'm'},
	    {"handshake-timeout", required_argument, NULL, 'h'},
	    {"max-connections-per-address", required_argument, NULL, 'a'},
	    {0},
	};
	int c, v, have_listen = 0;
	while ((c = cli_getopt(argc, argv, "serve", "", opts)) != -1) {
		switch (c) {
		case 'l':
			if (parse_listen(optarg, host, hlen, &cfg->port))
				return 2;
			have_listen = 1;
			break;
		case 'c': cfg->tls_cert = optarg; break;
		case 'b':
			if (cli_parse_int("--max-body", optarg, 1024, 16 * 1024 * 1024, &v))
				return 2;
			cfg->max_body = (size_t)v;
			break;
		case 't':
			if (cli_parse_int("--timeout", optarg, 1, 3600, &cfg->timeout_seconds))
				return 2;
			break;
		case 'm':
			if (cli_parse_int("--max-connections", optarg, 1, 10000,
			                  &cfg->max_connections))
				return 2;
			break;
		case 'h':
			if (cli_parse_int("--handshake-timeout", optarg, 1, 3600,
			                  &cfg->handshake_seconds))
				return 2;
			break;
		case 'a':
			if (cli_parse_int("--max-connections-per-address", optarg, 1, 10000,
			                  &cfg->max_per_address))
				return 2;
			break;
		default: return 2;
		}
	}
	if (optind != argc)
		return cli_usage_error("serve: unexpected argument '%s'", argv[optind]);
	if (!have_listen)
		return cli_usage_error("serve: --listen ADDR:PORT is required");
	if (cfg->max_per_address > cfg->max_connections)
		cfg->max_per_address = cfg->max_connections;
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	char host[256];
	char *dir = NULL;
	kws_config cfg = {
	    .host = host,
	    .tls_cert = KW_MGMT_SERVER_NAME,
	    .max_body = KWS_DEFAULT_MAX_BODY,
	    .timeout_seconds = KWS_DEFAULT_TIMEOUT,
	    .max_connections = KWS_DEFAULT_MAX_CONNS,
	    .handshake_seconds = KWS_DEFAULT_HANDSHAKE,
	    .max_per_address = KWS_DEFAULT_MAX_PER_ADDR,
	};
	int ex = serve_options(argc, argv, &cfg, host, sizeof(host));
	if (ex)
		return ex;
	if (cli_store_dir)
		dir = strdup(cli_store_dir);
	else if (kw_store_default_dir(&dir) != KW_OK)
		return cli_fail(KW_ERR_USAGE);
	if (dir == NULL)
		return cli_fail(KW_ERR_NOMEM);
	cfg.store_dir = dir;
	ex = kws_serve(&cfg);
	free(dir);
	return ex;
}
