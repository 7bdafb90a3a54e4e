/* keyward policy default | show | set | import-azure */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyward/lifecycle.h>

#include "cli.h"

#define POLICY_FILE_MAX (1024 * 1024)

/* The whole of path ("-": stdin) as text; NULL after printing why not. */
static char *read_text(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *buf = f ? malloc(POLICY_FILE_MAX + 1) : NULL;
	size_t n = buf ? fread(buf, 1, POLICY_FILE_MAX + 1, f) : 0;
	int err = errno, failed = f == NULL || buf == NULL || ferror(f);
	if (f && f != stdin)
		fclose(f);
	if (failed || n > POLICY_FILE_MAX) {
		if (failed)
			fprintf(stderr, "keyward: cannot read %s: %s\n", path, strerror(err));
		else
			fprintf(stderr, "keyward: %s: larger than %d bytes\n", path,
			        POLICY_FILE_MAX);
		free(buf);
		return NULL;
	}
	if (memchr(buf, '\0', n) != NULL) {
		fprintf(stderr, "keyward: %s: not a text file\n", path);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

int cli_policy_read(const char *path, json_t **out)
{
	*out = NULL;
	char *text = read_text(path);
	if (text == NULL)
		return 1;
	kw_rc rc = kw_policy_parse(text, out);
	free(text);
	if (rc == KW_OK)
		return 0;
	/* the file's name first: the message names the field in it */
	char hint[256];
	fprintf(stderr, "keyward: %s: %s%s\n", path, kw_error_message(),
	        cli_hint(hint, sizeof(hint)));
	return rc == KW_ERR_USAGE ? 2 : 1;
}

/* Accepts --json (the output is JSON either way) and nothing else; *args
 * receives the positional arguments. */
static int parse_plain(int argc, char **argv, const char *cmd, int want, char ***args)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, cmd, "", opts)) != -1)
		if (c != 'j')
			return 2;
	if (argc - optind != want)
		return cli_usage_error("%s: give %s (see: keyward %s --help)", cmd,
		                       want == 0   ? "no arguments"
		                       : want == 1 ? "exactly one NAME"
		                                   : "NAME and FILE",
		                       cmd);
	*args = argv + optind;
	return 0;
}

static int policy_default(int argc, char **argv)
{
	char **args = NULL;
	int ex = parse_plain(argc, argv, "policy default", 0, &args);
	if (ex)
		return ex;
	json_t *p = kw_policy_default();
	if (p == NULL)
		return cli_fail(KW_ERR_NOMEM);
	cli_print_json(p);
	json_decref(p);
	return 0;
}

static int policy_show(int argc, char **argv)
{
	char **args = NULL;
	kw_store *s = NULL;
	json_t *p = NULL;
	int ex = parse_plain(argc, argv, "policy show", 1, &args);
	if (ex || (ex = cli_store_open(&s)))
		return ex;
	kw_rc rc = kw_policy_show(s, args[0], &p);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	cli_print_json(p);
	json_decref(p);
	return 0;
}

static int policy_set(int argc, char **argv)
{
	static const struct option opts[] = {{0}};
	kw_store *s = NULL;
	json_t *p = NULL;
	optind = 1;
	if (cli_getopt(argc, argv, "policy set", "", opts) != -1)
		return 2;
	if (argc - optind != 2)
		return cli_usage_error("policy set: give NAME and FILE (see: keyward policy set "
		                       "--help)");
	int ex = cli_policy_read(argv[optind + 1], &p);
	if (ex || (ex = cli_store_open(&s))) {
		json_decref(p);
		return ex;
	}
	kw_rc rc = kw_policy_set(s, argv[optind], p);
	kw_store_close(s);
	json_decref(p);
	if (rc != KW_OK)
		return cli_fail(rc);
	printf("policy of %s set: it applies from the next renewal\n", argv[optind]);
	return 0;
}

static int policy_import_azure(int argc, char **argv)
{
	static const struct option opts[] = {{"backend", required_argument, NULL, 'b'}, {0}};
	const char *backend = NULL;
	json_t *p = NULL, *notes = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "policy import-azure", "", opts)) != -1) {
		if (c != 'b')
			return 2;
		backend = optarg;
	}
	if (argc - optind != 1)
		return cli_usage_error("policy import-azure: give exactly one FILE");
	char *text = read_text(argv[optind]);
	if (text == NULL)
		return 1;
	kw_rc rc = kw_policy_import_azure(text, &p, &notes);
	free(text);
	if (rc == KW_OK && backend) {
		json_t *with = p;
		json_object_set_new(json_object_get(with, "key"), "backend", json_string(backend));
		rc = kw_policy_validate(with, &p);
		json_decref(with);
	}
	if (rc != KW_OK) {
		json_decref(notes);
		return cli_fail(rc);
	}
	size_t i;
	json_t *n;
	json_array_foreach(notes, i, n)
	    fprintf(stderr, "keyward: not mapped: %s\n", json_string_value(n));
	cli_print_json(p);
	json_decref(p);
	json_decref(notes);
	return 0;
}

int cmd_policy(int argc, char **argv)
{
	static const cli_command table[] = {
	    {"default", policy_default, "[--json]",
	     "Prints the default policy (JSON) to start one from. What a policy holds:\n"
	     "  key       type ec-p256|ec-p384|rsa-2048|rsa-3072|rsa-4096, backend, reuse_key,\n"
	     "            revocable (true: keys a purge ends for good; see cert create --help)\n"
	     "  x509      subject (DN), sans [\"DNS:x\", \"IP:y\"], ekus (serverAuth, "
	     "clientAuth,\n"
	     "            codeSigning, emailProtection, timeStamping, OCSPSigning or an OID),\n"
	     "            key_usage (digitalSignature, nonRepudiation, keyEncipherment (RSA),\n"
	     "            dataEncipherment, keyAgreement, keyCertSign, cRLSign), "
	     "validity_days,\n"
	     "            ca {} or {\"pathlen\": 0-16}: a CA certificate (CA:TRUE; defaults: no "
	     "EKU,\n            keyCertSign, cRLSign, digitalSignature, 3650 days)\n"
	     "  lifetime_actions  [{\"trigger\": {\"lifetime_percentage\": 1-99} or\n"
	     "            {\"days_before_expiry\": N}, \"action\": \"auto_renew\" or "
	     "\"notify\"}];\n"
	     "            none: renew at 2/3 of the lifetime\n"
	     "  issuer    {\"name\": \"self\"}, \"unknown\" (external CA), \"ca:NAME\" "
	     "(keyward CA NAME)\n"
	     "            or \"acme:NAME\" (keyward issuer NAME), with \"http01\": {\"listen\":\n"
	     "            \"ADDR:PORT\"} or {\"webroot\": \"/DIR\"} for ACME\n"
	     "  deploy    target: the name of a deploy target (keyward deploy-target add)\n"
	     "  history_limit  versions kept (1-1000, default 10)\n"
	     "x509.subject and key.backend have no default: set them, or give cert create\n"
	     "--subject and --backend."},
	    {"show", policy_show, "NAME [--json]", "Prints a certificate's policy (JSON)."},
	    {"set", policy_set, "NAME FILE",
	     "Replaces a certificate's policy with FILE's (JSON; - reads stdin) after\n"
	     "checking all of it: nothing changes when any field is wrong. The new policy\n"
	     "applies from the next renewal; a new key.type or key.backend takes a new key."},
	    {"import-azure", policy_import_azure, "FILE [--backend B]",
	     "Maps an Azure Key Vault certificate policy (the JSON of az keyvault certificate\n"
	     "get-default-policy or az keyvault certificate show --query policy; camelCase\n"
	     "or snake_case) to a keyward policy on stdout, and says on stderr, one line\n"
	     "each, what it could not carry over. --backend B sets key.backend."},
	    {NULL, NULL, NULL, NULL},
	};
	return cli_dispatch("policy", table, argc, argv);
}
