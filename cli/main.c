/* keyward command line: global options and the command table */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <keyward/import.h>

#include "cli.h"

static const cli_command commands[] = {
    {"init", cmd_init, "",
     "create the store (directory 0700, database 0600); on an existing store, bring its\n"
     "schema up to date"},
    {"backend", cmd_backend, "add|list ...", "configure TPM 2.0 and PKCS#11 backends"},
    {"cert", cmd_cert, "create|list|show|export|csr|merge|renew|delete|verify|versions|... ",
     "manage certificates whose keys live in hardware"},
    {"issuer", cmd_issuer, "add|list|show|remove ...",
     "ACME issuers (RFC 8555): account key in hardware, http-01 challenges"},
    {"ca", cmd_ca, "sign|revoke|crl ...",
     "the local CA: sign CSRs, revoke, publish CRLs (CA key in hardware)"},
    {"policy", cmd_policy, "default|show|set|import-azure ...", "certificate policies"},
    {"events", cmd_events, "[--cert NAME] [--json]", "the event log: every change, who made it"},
    {"audit", cmd_audit, "verify [--json]", "check the event log's hash chain for tampering"},
    {"renew", cmd_renew, "--due [--dry-run] [--json] [--jitter SECONDS]",
     "renew every certificate whose policy says it is due (run by a timer)\n"
     "Each renewal deploys the new version; a certificate whose last deploy failed is\n"
     "deployed again (no new version). Exit 0: all went well; 1: a renewal or purge\n"
     "failed; 3: every renewal went through but a deploy (files or a hook) failed (1\n"
     "wins over 3); each failed deploy is one stderr line."},
    {"metrics", cmd_metrics, "[--textfile PATH]",
     "Prometheus metrics of the certificates (node_exporter textfile collector)"},
    {"doctor", cmd_doctor, "[--repair] [--json]",
     "check that the store and its devices agree (keys left behind, keys missing,\n"
     "database integrity); --repair fixes what is safe to fix"},
    {"config", cmd_config, "get|set ...", "store-wide settings (retention_days)"},
    {"contact", cmd_contact, "add|list|remove ...", "who is told before certificates expire"},
    {"channel", cmd_channel, "add|list|remove ...",
     "how contacts are told: sendmail, webhook or command"},
    {"deploy-target", cmd_deploy_target, "add|list|show|remove ...",
     "where deploys write files and which commands they run (policies name one)"},
    {"serve", cmd_serve,
     "--listen ADDR:PORT [--tls-cert NAME] [--max-body BYTES] [--timeout S] "
     "[--handshake-timeout S] [--max-connections N] [--max-connections-per-address N]",
     "the management API: HTTPS REST, clients with management certificates"},
    {"agent", cmd_agent,
     "[--socket PATH] [--store DIR] [--max-connections N] [--max-connections-per-user N]",
     "the local signing service: servers running as ordinary users sign with\n"
     "hardware keys over a UNIX socket (default " KW_AGENT_SOCKET_DEFAULT "), each\n"
     "certificate used only by the users and groups of its access list (keyward cert\n"
     "access). The provider uses it when KEYWARD_AGENT or its agent parameter names\n"
     "the socket. At most --max-connections (256) connections, of which one user\n"
     "other than root holds at most --max-connections-per-user (64); more are refused.\n"
     "Socket activation: LISTEN_FDS=1. SIGTERM/SIGINT: stops accepting,\n"
     "lets each connection finish its request, exits 0."},
    {"mgmt", cmd_mgmt, "init|issue|revoke|list ...",
     "management certificates: the API's CA and its clients (reader, admin)"},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: keyward [--store DIR] COMMAND ...\n\n"
	           "A hardware-backed key and certificate store: keys live in a TPM 2.0 or a\n"
	           "PKCS#11 token and never leave it.\n\nCommands:\n");
	for (const cli_command *c = commands; c->name; c++)
		fprintf(f, "  %-13s %.*s\n", c->name, (int)strcspn(c->help, "\n"), c->help);
	fprintf(f, "\nOptions:\n"
	           "  --store DIR  the store (default: $KEYWARD_STORE, /var/lib/keyward for root,\n"
	           "               else $XDG_DATA_HOME/keyward)\n"
	           "  --version    print the version\n"
	           "Run 'keyward COMMAND --help' for a command's options.\n");
}

/* see cli.h (main() is in entry.c) */
int cli_main(int argc, char **argv)
{
	int i = 1;
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
			cli_store_dir = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--store=", 8) == 0) {
			cli_store_dir = argv[i] + 8;
			i++;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("keyward 0.1.0\n");
			return 0;
		} else if (strcmp(argv[i], "--store") == 0)
			return cli_usage_error("--store needs a directory");
		else
			return cli_usage_error("unknown option '%s' (see: keyward --help)",
			                       argv[i]);
	}
	if (cli_store_dir && cli_store_dir[0] == '\0')
		return cli_usage_error("--store needs a directory");
	if (i >= argc)
		return cli_usage_error("missing command (see: keyward --help)");
	for (const cli_command *c = commands; c->name; c++)
		if (strcmp(argv[i], c->name) == 0) {
			/* commands without subcommands: --help anywhere prints their usage
			 * (groups answer it themselves, per subcommand) */
			int group =
			    strstr(c->usage, "...") != NULL || strcmp(c->name, "audit") == 0;
			for (int j = i + 1; !group && j < argc && strcmp(argv[j], "--") != 0; j++)
				if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
					printf("Usage: keyward [--store DIR] %s %s\n\n%s\n",
					       c->name, c->usage, c->help);
					return 0;
				}
			return c->fn(argc - i, argv + i);
		}
	return cli_usage_error("unknown command '%s' (see: keyward --help)", argv[i]);
}
