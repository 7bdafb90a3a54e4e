/* keyward CLI: shared helpers. The CLI uses libkeyward's public API only. */
#ifndef KEYWARD_CLI_H
#define KEYWARD_CLI_H

#include <getopt.h>
#include <time.h>

#include <keyward/agent.h>
#include <keyward/keyward.h>

typedef struct cli_command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage; /* "NAME --backend B ..." */
	const char *help;  /* one line */
} cli_command;

/* The command line after main()'s process set-up (entry.c): global options,
 * then the command table (main.c). Returns the exit code. Side effects only
 * through the commands; the CLI fuzz target (tests/fuzz/fuzz_cli.c) runs it. */
int cli_main(int argc, char **argv);

/* The store directory chosen by --store (NULL = default). */
extern const char *cli_store_dir;

/* The exit code of a command whose change (a renewal, a merge, a rollback)
 * was made and stands but whose deploy (files or a hook) failed; also `cert
 * deploy`'s when the deploy ran and failed, and `renew --due`'s when deploys
 * failed but no renewal did (a failed renewal, 1, wins). 1: an operation
 * failed; 2: a usage error. */
#define CLI_EXIT_DEPLOY 3

/* Prints "keyward: <libkeyward message>"; returns the exit code for rc
 * (2 for KW_ERR_USAGE, CLI_EXIT_DEPLOY for KW_ERR_DEPLOY, else 1). */
int cli_fail(kw_rc rc);

/* The recorded core error's hint in this command line's words, e.g.
 * " (see: keyward cert list)", written to buf; "" when there is none. */
const char *cli_hint(char *buf, size_t len);

/* Prints "keyward: <message>" and returns 2 (usage error). */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs the subcommand named argv[0] from table; prints help for --help. */
int cli_dispatch(const char *group, const cli_command *table, int argc, char **argv);

/* Prints "Usage: keyward <group> <name> <usage>" and help to stdout. */
void cli_print_usage(const char *group, const cli_command *c);

/* Opens the store; on failure prints the error and returns the exit code. */
int cli_store_open(kw_store **out);

/* getopt_long wrapper: resets state, silences getopt, turns its complaints
 * into one line. Returns the option, -1 at the end, '?' after printing. */
int cli_getopt(int argc, char **argv, const char *cmd, const char *shortopts,
               const struct option *longopts);

/* The "NOUN list [--json]" shape: parses --json, opens the store, calls list
 * and prints the array as JSON or hands it to table(). Returns the exit code. */
int cli_list_command(int argc, char **argv, const char *cmd,
                     kw_rc (*list)(kw_store *s, json_t **out), void (*table)(const json_t *list));

/* The part of a list command after its options: opens the store, calls
 * list(s, arg, &out), closes the store and prints the array as JSON or hands
 * it to table(). Returns the exit code. */
int cli_list_show(kw_rc (*list)(kw_store *s, const char *arg, json_t **out), const char *arg,
                  int as_json, void (*table)(const json_t *list));

/* Prints a JSON document (pretty) on stdout. */
void cli_print_json(json_t *j);

/* Writes data to path atomically (temp file, fsync, rename) with mode. */
int cli_write_file(const char *path, const char *data, size_t len, int mode);

/* The whole of path ("-": stdin), at most max bytes of what ("a CSR"); on
 * failure says why on stderr and returns the exit code (1). */
int cli_read_input(const char *path, size_t max, const char *what, unsigned char **data,
                   size_t *len);

/* Parses a positive int argument; returns 0 on success. */
int cli_parse_int(const char *what, const char *text, int min, int max, int *out);

int cmd_init(int argc, char **argv);
int cmd_backend(int argc, char **argv);
int cmd_cert(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_contact(int argc, char **argv);
int cmd_channel(int argc, char **argv);
int cmd_deploy_target(int argc, char **argv);
/* the management API (cmd_serve.c) and its client certificates (cmd_mgmt.c) */
int cmd_serve(int argc, char **argv);
int cmd_mgmt(int argc, char **argv);
int cmd_ca(int argc, char **argv);      /* cmd_ca.c */
int cmd_issuer(int argc, char **argv);  /* cmd_issuer.c: ACME issuers */
int cert_revoke(int argc, char **argv); /* cmd_ca.c */

int cert_create(int argc, char **argv);
int cert_list(int argc, char **argv);
int cert_show(int argc, char **argv);
int cert_export(int argc, char **argv);
int cert_csr(int argc, char **argv);
int cert_renew(int argc, char **argv);
int cert_verify(int argc, char **argv);
int cert_key_ref(int argc, char **argv);
int cert_merge(int argc, char **argv);
int cert_pending(int argc, char **argv);
int cert_import(int argc, char **argv); /* cert_import.c */
int cert_adopt(int argc, char **argv);  /* cert_import.c */

/* policy: cmd_policy.c. Reads a policy file ("-": stdin), parses and validates
 * it; on failure prints "keyward: FILE: field: reason", returns the exit code. */
int cli_policy_read(const char *path, json_t **out);

/* lifecycle: cert_lifecycle.c, cmd_renew.c, cmd_metrics.c, cmd_config.c */
int cert_versions(int argc, char **argv);
int cert_rollback(int argc, char **argv);
int cert_set(int argc, char **argv);
int cert_lifecycle_delete(int argc, char **argv);
int cert_recover(int argc, char **argv);
int cert_purge(int argc, char **argv);
int cert_deleted(int argc, char **argv);
int cmd_renew(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_config(int argc, char **argv);

int cert_deploy(int argc, char **argv);

/* cert_access.c: who may use a certificate's key through the agent; the list
 * as JSON (with each user's or group's name) and as one line of text */
int cert_access(int argc, char **argv);
json_t *cli_access_json(const kw_access_entry *e, size_t n);
void cli_access_print(const json_t *access);
/* cmd_agent.c: keyward agent [--socket PATH] [--store DIR] */
int cmd_agent(int argc, char **argv);
/* cmd_doctor.c: keyward doctor [--repair] [--json] */
int cmd_doctor(int argc, char **argv);

/* What became of one key, in words, from the name core reports for it
 * ("destroyed", "revoked", "forgotten"; see kw_keys_gone): "its key was ...". */
const char *cli_key_end_text(const char *end);

/* t as RFC 3339 UTC ("2026-11-27T05:13:00Z"), as --json prints times. */
void cli_time_format(time_t t, char *buf, size_t len);

#endif
