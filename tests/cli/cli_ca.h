/*
 * keyward CLI end-to-end tests: an external CA for issuer "unknown", played by
 * openssl in a temp dir the way an admin's CA would (a software root and an
 * intermediate under it), and what the tests ask of a pending certificate.
 * Static, header only.
 */
#ifndef KW_CLI_CA_H
#define KW_CLI_CA_H

#include <keyward/key.h>

#include "cli_devices.h"

#define CLI_CA_ROOT  "CN=keyward test root"
#define CLI_CA_INTER "CN=keyward test intermediate"

typedef struct {
	char *dir;
	char *root; /* PEM certificate paths */
	char *inter;
} cli_ca;

static inline char *cli_path(const char *dir, const char *name)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static inline cli_ca cli_ca_new(void)
{
	cli_ca ca;
	ca.dir = kwt_tmpdir("ca");
	int st = cli_status(
	    "(cd '%s' && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key"
	    " -out root.pem -subj '/CN=keyward test root' -days 3650"
	    " -addext 'basicConstraints=critical,CA:TRUE'"
	    " -addext 'keyUsage=critical,keyCertSign,cRLSign' && "
	    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout inter.key"
	    " -out inter.csr -subj '/CN=keyward test intermediate' && "
	    "printf 'basicConstraints=critical,CA:TRUE,pathlen:0\\nkeyUsage=critical,keyCertSign,"
	    "cRLSign\\nsubjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid:always\\n'"
	    " > inter.ext && "
	    "openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial"
	    " -days 1825 -extfile inter.ext -out inter.pem) >/dev/null 2>&1",
	    ca.dir);
	cr_assert_eq(st, 0, "cannot make the test CA in %s", ca.dir);
	ca.root = cli_path(ca.dir, "root.pem");
	ca.inter = cli_path(ca.dir, "inter.pem");
	return ca;
}

static inline void cli_ca_free(cli_ca *ca)
{
	free(ca->dir);
	free(ca->root);
	free(ca->inter);
}

/* The intermediate signs the CSR for days, copying the extensions the CSR
 * asks for; ext (may be NULL) replaces them (an extfile's text). Returns the
 * certificate's path (malloc'd) in the CA's dir. */
static inline char *cli_ca_sign(const cli_ca *ca, const char *csr, const char *out, int days,
                                const char *ext)
{
	char *path = cli_path(ca->dir, out);
	char *extfile = NULL;
	if (ext)
		extfile = kwt_write_file(ca->dir, "leaf.ext", ext, strlen(ext), 0600);
	int st = cli_status("openssl x509 -req -in '%s' -CA '%s' -CAkey '%s/inter.key'"
	                    " -CAcreateserial -days %d %s%s%s -out '%s' >/dev/null 2>&1",
	                    csr, ca->inter, ca->dir, days,
	                    extfile ? "-extfile '" : "-copy_extensions copy",
	                    extfile ? extfile : "", extfile ? "'" : "", path);
	cr_assert_eq(st, 0, "the test CA cannot sign %s", csr);
	free(extfile);
	return path;
}

/* A CSR for a software key (another key than any keyward holds). */
static inline char *cli_ca_foreign_csr(const cli_ca *ca, const char *subject)
{
	char *path = cli_path(ca->dir, "foreign.csr");
	cr_assert_eq(cli_status("cd '%s' && openssl req -new -newkey ec -pkeyopt "
	                        "ec_paramgen_curve:P-256 -nodes -keyout foreign.key -out '%s'"
	                        " -subj '/%s' >/dev/null 2>&1",
	                        ca->dir, path, subject),
	             0);
	return path;
}

/* cert csr NAME --out DIR/FILE (malloc'd path). */
static inline char *cli_csr_file(const char *store, const char *dir, const char *name,
                                 const char *file)
{
	kwt_result r;
	char *path = cli_path(dir, file);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "csr", name, "--out", path));
	kwt_result_free(&r);
	return path;
}

/* Concatenates files into DIR/NAME (malloc'd path). */
static inline char *cli_cat(const char *dir, const char *name, const char *const *files)
{
	char *out = cli_path(dir, name);
	cr_assert_eq(cli_status(": > '%s'", out), 0);
	for (; *files; files++)
		cr_assert_eq(cli_status("cat '%s' >> '%s'", *files, out), 0);
	return out;
}

/* What openssl says of a certificate: "sha256" (fingerprint) or "serial",
 * as keyward spells it (lowercase hex). */
static inline char *cli_x509_hex(const char *pem, const char *what)
{
	char *s = cli_out("openssl x509 -in '%s' -noout %s", pem,
	                  strcmp(what, "serial") == 0 ? "-serial" : "-fingerprint -sha256");
	return cli_hex_norm(s);
}

/* The certificate's current version as the OpenSSL provider would open it:
 * KW_OK and its version, or the refusal's code (message in kw_error_message). */
static inline kw_rc cli_key_open(const char *store, const char *name, int version, int *opened)
{
	kw_key *k = NULL;
	kw_rc rc = kw_key_open(store, name, version, &k);
	*opened = k ? kw_key_version(k) : 0;
	cr_assert((rc == KW_OK) == (k != NULL));
	kw_key_free(k);
	return rc;
}

static inline void cli_assert_has(const char *text, const char *needle)
{
	cr_assert(strstr(text, needle) != NULL, "'%s' not in:\n%s", needle, text);
}

#endif
