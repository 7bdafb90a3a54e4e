/* keyward ca sign | revoke | crl: the local CA's side (its key stays in its device) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyward/ca.h>
#include <keyward/issuer.h>

#include "cli.h"

#define CSR_FILE_MAX (256 * 1024)

/* PEM to --out FILE (mode 0644: certificates and CRLs are public) or stdout. */
static int emit(const char *out, const char *pem)
{
	if (out)
		return cli_write_file(out, pem, strlen(pem), 0644);
	fputs(pem, stdout);
	return 0;
}

static int ca_sign(int argc, char **argv)
{
	static const struct option opts[] = {{"days", required_argument, NULL, 'd'},
	                                     {"profile", required_argument, NULL, 'p'},
	                                     {"out", required_argument, NULL, 'o'},
	                                     {0}};
	const char *profile = NULL, *out = NULL;
	int days = 0, c;
	while ((c = cli_getopt(argc, argv, "ca sign", "", opts)) != -1) {
		switch (c) {
		case 'd':
			if (cli_parse_int("--days", optarg, 1, 36500, &days))
				return 2;
			break;
		case 'p': profile = optarg; break;
		case 'o': out = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("ca sign: give CA_NAME and CSR_FILE");
	if (profile && strcmp(profile, "server") != 0 && strcmp(profile, "client") != 0)
		return cli_usage_error("ca sign: --profile is server or client, not '%s'", profile);
	unsigned char *csr = NULL;
	size_t len = 0;
	char *pem = NULL;
	kw_store *s = NULL;
	int ex = cli_read_input(argv[optind + 1], CSR_FILE_MAX, "a CSR", &csr, &len);
	if (ex == 0)
		ex = cli_store_open(&s);
	if (ex == 0) {
		kw_rc rc = kw_ca_sign(s, argv[optind], csr, len, days, profile, &pem);
		ex = rc == KW_OK ? emit(out, pem) : cli_fail(rc);
	}
	free(pem);
	free(csr);
	kw_store_close(s);
	return ex;
}

static int ca_revoke(int argc, char **argv)
{
	static const struct option opts[] = {{"reason", required_argument, NULL, 'r'}, {0}};
	const char *reason = NULL;
	int c;
	while ((c = cli_getopt(argc, argv, "ca revoke", "", opts)) != -1) {
		if (c != 'r')
			return 2;
		reason = optarg;
	}
	if (argc - optind != 2)
		return cli_usage_error("ca revoke: give CA_NAME and SERIAL");
	kw_store *s = NULL;
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_ca_revoke(s, argv[optind], argv[optind + 1], reason);
	if (rc == KW_OK)
		printf("revoked serial %s of CA %s (publish a new CRL: keyward ca crl %s)\n",
		       argv[optind + 1], argv[optind], argv[optind]);
	ex = rc == KW_OK ? 0 : cli_fail(rc);
	kw_store_close(s);
	return ex;
}

static int ca_crl(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"days", required_argument, NULL, 'd'}, {"out", required_argument, NULL, 'o'}, {0}};
	const char *out = NULL;
	int days = 0, c;
	while ((c = cli_getopt(argc, argv, "ca crl", "", opts)) != -1) {
		switch (c) {
		case 'd':
			if (cli_parse_int("--days", optarg, 1, 3650, &days))
				return 2;
			break;
		case 'o': out = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("ca crl: give exactly one CA_NAME");
	kw_store *s = NULL;
	char *pem = NULL;
	long number = 0;
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_ca_crl(s, argv[optind], days, &pem, &number);
	ex = rc == KW_OK ? emit(out, pem) : cli_fail(rc);
	if (ex == 0 && out)
		printf("wrote CRL number %ld of CA %s to %s\n", number, argv[optind], out);
	free(pem);
	kw_store_close(s);
	return ex;
}

int cert_revoke(int argc, char **argv)
{
	static const struct option opts[] = {{"reason", required_argument, NULL, 'r'}, {0}};
	const char *reason = NULL;
	int c;
	while ((c = cli_getopt(argc, argv, "cert revoke", "", opts)) != -1) {
		if (c != 'r')
			return 2;
		reason = optarg;
	}
	if (argc - optind != 1)
		return cli_usage_error("cert revoke: give exactly one NAME");
	kw_store *s = NULL;
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	json_t *j = NULL;
	kw_rc rc = kw_cert_show(s, argv[optind], 0, &j);
	const char *issuer = rc == KW_OK ? json_string_value(json_object_get(j, "issuer")) : NULL;
	int acme = issuer && kw_issuer_parse(issuer, NULL) == KW_ISSUER_ACME;
	json_decref(j);
	rc = kw_cert_revoke(s, argv[optind], reason);
	if (rc == KW_OK && acme)
		printf("revoked the current version of %s at its ACME CA\n", argv[optind]);
	else if (rc == KW_OK)
		printf("revoked the current version of %s (publish a new CRL: keyward ca crl)\n",
		       argv[optind]);
	ex = rc == KW_OK ? 0 : cli_fail(rc);
	kw_store_close(s);
	return ex;
}

#define REASONS                                                                                    \
	"R: unspecified (default), keyCompromise, cACompromise, affiliationChanged, superseded,\n" \
	"cessationOfOperation."

int cmd_ca(int argc, char **argv)
{
	static const cli_command table[] = {
	    {"sign", ca_sign, "CA_NAME CSR_FILE [--days N] [--profile server|client] [--out FILE]",
	     "Signs a CSR from another host with CA_NAME's key, inside its device. The CSR's\n"
	     "self-signature must verify; the certificate gets its subject and the SANs of its\n"
	     "extension request (no other requested extension), EKU serverAuth (--profile\n"
	     "server, default) or clientAuth, key usage per key type, N days (default 365,\n"
	     "clipped to the CA's validity). Recorded so that ca revoke can revoke it.\n"
	     "CSR_FILE: PEM or DER, - reads stdin. Prints the certificate (PEM)."},
	    {"revoke", ca_revoke, "CA_NAME SERIAL [--reason R]",
	     "Revokes a certificate CA_NAME issued (ca sign, or issuer ca:CA_NAME).\n"
	     "SERIAL: hex as openssl x509 -serial prints it. " REASONS},
	    {"crl", ca_crl, "CA_NAME [--days N] [--out FILE]",
	     "Writes CA_NAME's CRL (PEM): v2, every revoked serial with its date and reason,\n"
	     "the next CRL number, nextUpdate N days on (default 7); signed inside the device."},
	    {NULL, NULL, NULL, NULL},
	};
	return cli_dispatch("ca", table, argc, argv);
}
