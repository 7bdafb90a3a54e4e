/* keyward mgmt init|issue|revoke|list: who may call the management API */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyward/mgmt.h>

#include "cli.h"

#define SAN_MAX      32
#define CSR_FILE_MAX (256 * 1024)

static int mgmt_init(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"backend", required_argument, NULL, 'b'}, {"key", required_argument, NULL, 'k'},
	    {"cn", required_argument, NULL, 'c'},      {"san", required_argument, NULL, 's'},
	    {"days", required_argument, NULL, 'd'},    {0}};
	const char *sans[SAN_MAX];
	kw_mgmt_init_request req = {0};
	int c;
	while ((c = cli_getopt(argc, argv, "mgmt init", "", opts)) != -1) {
		switch (c) {
		case 'b': req.backend = optarg; break;
		case 'k': req.key_type = optarg; break;
		case 'c': req.server_cn = optarg; break;
		case 's':
			if (req.n_sans == SAN_MAX)
				return cli_usage_error("mgmt init: at most %d --san", SAN_MAX);
			sans[req.n_sans++] = optarg;
			break;
		case 'd':
			if (cli_parse_int("--days", optarg, 1, 3650, &req.server_days))
				return 2;
			break;
		default: return 2;
		}
	}
	if (optind != argc)
		return cli_usage_error("mgmt init: unexpected argument '%s'", argv[optind]);
	req.sans = req.n_sans ? sans : NULL;
	kw_store *s = NULL;
	json_t *out = NULL;
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_mgmt_init(s, &req, &out);
	if (rc == KW_OK)
		printf("management CA %s and server certificate %s created, keys in backend %s\n"
		       "  CA sha256     %s\n  server sha256 %s\n",
		       KW_MGMT_CA_NAME, KW_MGMT_SERVER_NAME,
		       json_string_value(json_object_get(out, "backend")),
		       json_string_value(json_object_get(out, "ca_thumbprint_sha256")),
		       json_string_value(json_object_get(out, "server_thumbprint_sha256")));
	ex = rc == KW_OK ? 0 : cli_fail(rc);
	json_decref(out);
	kw_store_close(s);
	return ex;
}

typedef struct {
	kw_mgmt_issue_request req;
	const char *csr_path, *out;
	char p12_default[160];
} issue_args;

static int issue_options(int argc, char **argv, issue_args *a)
{
	static const struct option opts[] = {{"role", required_argument, NULL, 'r'},
	                                     {"days", required_argument, NULL, 'd'},
	                                     {"out-pkcs12", required_argument, NULL, 'p'},
	                                     {"password-source", required_argument, NULL, 'w'},
	                                     {"csr", required_argument, NULL, 'c'},
	                                     {"out", required_argument, NULL, 'o'},
	                                     {0}};
	int c;
	while ((c = cli_getopt(argc, argv, "mgmt issue", "", opts)) != -1) {
		switch (c) {
		case 'r': a->req.role = optarg; break;
		case 'd':
			if (cli_parse_int("--days", optarg, 1, 3650, &a->req.days))
				return 2;
			break;
		case 'p': a->req.pkcs12_path = optarg; break;
		case 'w': a->req.password_source = optarg; break;
		case 'c': a->csr_path = optarg; break;
		case 'o': a->out = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("mgmt issue: give exactly one NAME");
	a->req.name = argv[optind];
	if (a->req.role == NULL)
		return cli_usage_error("mgmt issue: --role reader|admin is required");
	if (a->csr_path && a->req.pkcs12_path)
		return cli_usage_error(
		    "mgmt issue: give --out-pkcs12 FILE or --csr FILE, not both");
	if (a->csr_path && a->req.password_source)
		return cli_usage_error("mgmt issue: --password-source goes with --out-pkcs12");
	if (a->csr_path == NULL && a->req.pkcs12_path == NULL) {
		/* NAME.p12 here, with a generated password in NAME.p12.password */
		if (snprintf(a->p12_default, sizeof(a->p12_default), "%s.p12", a->req.name) >=
		    (int)sizeof(a->p12_default))
			return cli_usage_error("mgmt issue: NAME too long");
		a->req.pkcs12_path = a->p12_default;
	}
	return 0;
}

static int mgmt_issue(int argc, char **argv)
{
	issue_args a;
	memset(&a, 0, sizeof(a));
	int ex = issue_options(argc, argv, &a);
	if (ex)
		return ex;
	unsigned char *csr = NULL;
	char *pem = NULL;
	json_t *out = NULL;
	kw_store *s = NULL;
	if (a.csr_path &&
	    (ex = cli_read_input(a.csr_path, CSR_FILE_MAX, "a CSR", &csr, &a.req.csr_len)) != 0)
		return ex;
	a.req.csr = csr;
	ex = cli_store_open(&s);
	if (ex == 0) {
		kw_rc rc = kw_mgmt_issue(s, &a.req, &pem, &out);
		if (rc != KW_OK)
			ex = cli_fail(rc);
		else if (a.out)
			ex = cli_write_file(a.out, pem, strlen(pem), 0644);
		else if (a.csr_path)
			fputs(pem, stdout);
		if (rc == KW_OK && ex == 0 && (a.out || a.req.pkcs12_path))
			printf("issued %s (role %s), expires %s\n  sha256 %s\n", a.req.name,
			       a.req.role, json_string_value(json_object_get(out, "not_after")),
			       json_string_value(json_object_get(out, "thumbprint_sha256")));
		if (rc == KW_OK && ex == 0 && a.req.pkcs12_path)
			printf("  key and certificate in %s, password in %s%s\n", a.req.pkcs12_path,
			       a.req.password_source ? a.req.password_source : a.req.pkcs12_path,
			       a.req.password_source ? "" : ".password");
	}
	json_decref(out);
	free(pem);
	free(csr);
	kw_store_close(s);
	return ex;
}

static int mgmt_revoke(int argc, char **argv)
{
	if (cli_getopt(argc, argv, "mgmt revoke", "", (const struct option[]){{0}}) != -1)
		return 2;
	if (argc - optind != 1)
		return cli_usage_error("mgmt revoke: give exactly one NAME");
	kw_store *s = NULL;
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_mgmt_revoke(s, argv[optind]);
	if (rc == KW_OK)
		printf("revoked %s: the management API refuses it from now on\n", argv[optind]);
	ex = rc == KW_OK ? 0 : cli_fail(rc);
	kw_store_close(s);
	return ex;
}

static void list_table(const json_t *list)
{
	printf("%-20s %-7s %-8s %-21s %s\n", "NAME", "ROLE", "STATUS", "EXPIRES", "SHA256");
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *c = json_array_get(list, i);
		printf("%-20s %-7s %-8s %-21s %s\n", json_string_value(json_object_get(c, "name")),
		       json_string_value(json_object_get(c, "role")),
		       json_string_value(json_object_get(c, "status")),
		       json_string_value(json_object_get(c, "not_after")),
		       json_string_value(json_object_get(c, "thumbprint_sha256")));
	}
}

static int mgmt_list(int argc, char **argv)
{
	return cli_list_command(argc, argv, "mgmt list", kw_mgmt_list, list_table);
}

int cmd_mgmt(int argc, char **argv)
{
	static const cli_command table[] = {
	    {"init", mgmt_init,
	     "[--backend B] [--key TYPE] [--cn NAME] [--san DNS:x|IP:y ...] [--days N]",
	     "create the management CA and the API server's certificate (keys in hardware)"},
	    {"issue", mgmt_issue,
	     "NAME --role reader|admin [--days N] [--out-pkcs12 FILE] [--password-source "
	     "file:PATH|env:VAR] | --csr FILE [--out FILE]",
	     "issue a client certificate for the management API (role in the subject's OU)\n"
	     "Without --csr, a key is made for the admin and written with the certificate\n"
	     "and the CA to a PKCS#12 file (default NAME.p12); without --password-source, a\n"
	     "random password is written next to it (FILE.password)."},
	    {"revoke", mgmt_revoke, "NAME", "revoke a client certificate"},
	    {"list", mgmt_list, "[--json]", "the management clients"},
	    {NULL, NULL, NULL, NULL},
	};
	return cli_dispatch("mgmt", table, argc, argv);
}
