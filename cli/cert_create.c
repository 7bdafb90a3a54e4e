/* keyward cert create */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyward/issuer.h>
#include <keyward/lifecycle.h>

#include "cli.h"

#define SAN_MAX 100

/* ACME: how this run answers http-01 challenges (kept in the policy) */
static const char *http01_listen, *http01_webroot;

static int print_created(const char *name, const kw_version_info *m)
{
	const char *exportable = m->exportable ? "NO" : "yes";
	if (m->pending) {
		/* issuer unknown: the CA has the next move */
		printf("created %s version %d, pending: %s key in backend %s, not exportable: %s\n"
		       "  subject %s; its CSR waits for your CA: keyward cert csr %s, then keyward "
		       "cert merge %s FILE\n",
		       name, m->version, kw_key_type_name(m->key_type), m->backend, exportable,
		       m->subject, name, name);
		return 0;
	}
	char expires[32];
	cli_time_format(m->not_after, expires, sizeof(expires));
	printf("created %s version %d: %s key in backend %s, not exportable: %s\n"
	       "  subject %s, expires %s\n  sha256 %s\n",
	       name, m->version, kw_key_type_name(m->key_type), m->backend, exportable, m->subject,
	       expires, m->thumbprint_sha256);
	return 0;
}

static int create(kw_cert_request *req, const json_t *policy)
{
	kw_store *s = NULL;
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	req->policy = policy;
	kw_rc rc = kw_store_set_http01(s, http01_listen, http01_webroot);
	kw_version_info made;
	if (rc == KW_OK)
		rc = kw_cert_create(s, req, &made);
	ex = rc == KW_OK ? print_created(req->name, &made) : cli_fail(rc);
	kw_store_close(s);
	return ex;
}

/* cert create --policy FILE: the flags given override the file's fields. */
static int create_from_policy(kw_cert_request *req, const char *file)
{
	json_t *policy = NULL;
	int ex = cli_policy_read(file, &policy);
	if (ex)
		return ex;
	const json_t *key = json_object_get(policy, "key");
	const json_t *x509 = json_object_get(policy, "x509");
	if (req->backend == NULL)
		req->backend = json_string_value(json_object_get(key, "backend"));
	if (req->backend == NULL)
		ex = cli_usage_error("cert create: --backend is required: %s has no key.backend",
		                     file);
	else if (req->subject == NULL && json_object_get(x509, "subject") == NULL)
		ex = cli_usage_error("cert create: --subject is required: %s has no x509.subject",
		                     file);
	else
		ex = create(req, policy);
	json_decref(policy);
	return ex;
}

int cert_create(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"backend", required_argument, NULL, 'b'},
	    {"subject", required_argument, NULL, 's'},
	    {"san", required_argument, NULL, 'n'},
	    {"key", required_argument, NULL, 'k'},
	    {"days", required_argument, NULL, 'd'},
	    {"issuer", required_argument, NULL, 'i'},
	    {"policy", required_argument, NULL, 'p'},
	    {"ca", no_argument, NULL, 'C'},
	    {"pathlen", required_argument, NULL, 'L'},
	    {"http01-listen", required_argument, NULL, 'H'},
	    {"http01-webroot", required_argument, NULL, 'W'},
	    {"revocable", no_argument, NULL, 'R'},
	    {0},
	};
	const char *sans[SAN_MAX], *policy_file = NULL;
	kw_cert_request req = {0};
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert create", "", opts)) != -1) {
		switch (c) {
		case 'b': req.backend = optarg; break;
		case 's': req.subject = optarg; break;
		case 'k': req.key_type = optarg; break;
		case 'i': req.issuer = optarg; break;
		case 'p': policy_file = optarg; break;
		case 'C': req.ca = 1; break;
		case 'R': req.revocable = 1; break;
		case 'H': http01_listen = optarg; break;
		case 'W': http01_webroot = optarg; break;
		case 'L':
			if (cli_parse_int("--pathlen", optarg, 0, 16, &req.pathlen))
				return 2;
			req.has_pathlen = 1;
			break;
		case 'd':
			if (cli_parse_int("--days", optarg, 1, 36500, &req.days))
				return 2;
			break;
		case 'n':
			if (req.n_sans == SAN_MAX)
				return cli_usage_error("cert create: at most %d --san", SAN_MAX);
			sans[req.n_sans++] = optarg;
			break;
		default: return 2;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("cert create: give exactly one NAME");
	if (req.has_pathlen && !req.ca)
		return cli_usage_error("cert create: --pathlen needs --ca");
	if ((http01_listen || http01_webroot) && !policy_file &&
	    kw_issuer_parse(req.issuer, NULL) != KW_ISSUER_ACME)
		return cli_usage_error("cert create: --http01-listen and --http01-webroot need "
		                       "--issuer acme:NAME");
	req.name = argv[optind];
	req.sans = sans;
	if (policy_file)
		return create_from_policy(&req, policy_file);
	if (req.backend == NULL)
		return cli_usage_error(
		    "cert create: --backend is required (see: keyward backend list)");
	if (req.subject == NULL)
		return cli_usage_error("cert create: --subject is required (e.g. --subject CN=%s)",
		                       req.name);
	return create(&req, NULL);
}
