/* keyward cert list | show | export | csr | verify */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct {
	int version;
	int json;
	int chain;
	const char *out;
	const char *name;
} read_opts;

/* Parses the options the read commands share; allowed is a set of letters. */
static int parse(int argc, char **argv, const char *cmd, const char *allowed, int want_name,
                 read_opts *o)
{
	static const struct option opts[] = {
	    {"version", required_argument, NULL, 'v'},
	    {"json", no_argument, NULL, 'j'},
	    {"chain", no_argument, NULL, 'c'},
	    {"out", required_argument, NULL, 'o'},
	    {0},
	};
	int c;
	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((c = cli_getopt(argc, argv, cmd, "", opts)) != -1) {
		if (c == '?')
			return 2;
		if (!strchr(allowed, c)) {
			const char *name = "?";
			for (const struct option *op = opts; op->name; op++)
				if (op->val == c)
					name = op->name;
			return cli_usage_error(
			    "%s: option '--%s' does not apply (see: keyward %s --help)", cmd, name,
			    cmd);
		}
		if (c == 'v' && cli_parse_int("--version", optarg, 1, 1000000, &o->version))
			return 2;
		o->json |= c == 'j';
		o->chain |= c == 'c';
		if (c == 'o')
			o->out = optarg;
	}
	if (argc - optind != want_name)
		return cli_usage_error(
		    want_name ? "%s: give exactly one NAME" : "%s: unexpected argument", cmd);
	o->name = want_name ? argv[optind] : NULL;
	return 0;
}

static const char *str(const json_t *j, const char *k)
{
	const char *s = json_string_value(json_object_get(j, k));
	return s ? s : "-";
}

/* cert list prints each row as the store gives it, so 100,000 certificates
 * take the memory of one. */
typedef struct {
	int json;
	size_t n;
	int problems;
} list_print;

/* jansson's output of one row, indented two more spaces as an element of
 * the array (json_dump_callback: no copy of the whole text). */
static int list_json_chunk(const char *buf, size_t size, void *data)
{
	(void)data;
	const char *end = buf + size;
	while (buf < end) {
		const char *nl = memchr(buf, '\n', (size_t)(end - buf));
		size_t n = nl ? (size_t)(nl - buf) + 1 : (size_t)(end - buf);
		if (fwrite(buf, 1, n, stdout) != n || (nl && fputs("  ", stdout) == EOF))
			return -1;
		buf += n;
	}
	return 0;
}

/* One array element as json_dumps of the whole array would indent it. */
static kw_rc list_json_row(const json_t *row, size_t n)
{
	fputs(n == 0 ? "[\n  " : ",\n  ", stdout);
	return json_dump_callback(row, list_json_chunk, NULL,
	                          JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0
	           ? KW_OK
	           : KW_ERR_IO;
}

static kw_rc list_row(json_t *c, void *arg)
{
	list_print *lp = arg;
	if (getenv("KW_NOPRINT"))
		return KW_OK;
	if (lp->json && list_json_row(c, lp->n) != KW_OK)
		return KW_FAIL(KW_ERR_IO, "cannot write the list to standard output");
	if (!lp->json)
		printf("%-20s %4lld %-8s %-12s %-9s %-20s %s\n", str(c, "name"),
		       (long long)json_integer_value(json_object_get(c, "version")),
		       str(c, "status"), str(c, "backend"), str(json_object_get(c, "key"), "type"),
		       str(c, "not_after"), str(c, "subject"));
	lp->n++;
	/* a broken row is listed, named on stderr, and fails the command */
	if (json_object_get(c, "problem")) {
		fprintf(stderr, "keyward: certificate '%s' version %lld: %s\n", str(c, "name"),
		        (long long)json_integer_value(json_object_get(c, "version")),
		        str(c, "problem"));
		lp->problems = 1;
	}
	return KW_OK;
}

int cert_list(int argc, char **argv)
{
	read_opts o;
	kw_store *s = NULL;
	int ex = parse(argc, argv, "cert list", "j", 0, &o);
	if (ex || (ex = cli_store_open(&s)))
		return ex;
	list_print lp = {.json = o.json};
	if (!o.json)
		printf("%-20s %4s %-8s %-12s %-9s %-20s %s\n", "NAME", "VER", "STATUS", "BACKEND",
		       "KEY", "NOT_AFTER", "SUBJECT");
	kw_rc rc = kw_cert_list_each(s, list_row, &lp);
	kw_store_close(s);
	if (o.json)
		fputs(lp.n == 0 ? "[]\n" : "\n]\n", stdout);
	if (rc != KW_OK)
		return cli_fail(rc);
	return lp.problems;
}

static void print_show(const json_t *j)
{
	const json_t *key = json_object_get(j, "key");
	printf("name:               %s\n", str(j, "name"));
	printf("version:            %lld%s\n",
	       (long long)json_integer_value(json_object_get(j, "version")),
	       json_is_true(json_object_get(j, "current")) ? " (current)" : "");
	printf("status:             %s\n", str(j, "status"));
	printf("enabled:            %s\n",
	       json_is_true(json_object_get(j, "enabled")) ? "yes" : "no");
	printf("subject:            %s\n", str(j, "subject"));
	printf("sans:              ");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(j, "sans"), i, v) printf(" %s", json_string_value(v));
	printf("\nissuer:             %s (%s)\n", str(j, "issuer"), str(j, "issuer_dn"));
	printf("serial:             %s\n", str(j, "serial"));
	printf("not_before:         %s\n", str(j, "not_before"));
	printf("not_after:          %s\n", str(j, "not_after"));
	printf("thumbprint_sha1:    %s\n", str(j, "thumbprint_sha1"));
	printf("thumbprint_sha256:  %s\n", str(j, "thumbprint_sha256"));
	printf("backend:            %s\n", str(j, "backend"));
	printf("key:                %s, exportable: %s, generated on device: %s\n",
	       str(key, "type"), json_is_true(json_object_get(key, "exportable")) ? "YES" : "no",
	       json_is_true(json_object_get(key, "generated_on_device")) ? "yes" : "no");
	if (json_object_get(j, "access") != NULL) {
		printf("access:             ");
		cli_access_print(json_object_get(j, "access"));
	}
	json_int_t pending = json_integer_value(json_object_get(j, "pending_version"));
	if (pending)
		printf("pending:            version %lld waits for its certificate: keyward cert "
		       "csr %s, then keyward cert merge %s FILE\n",
		       (long long)pending, str(j, "name"), str(j, "name"));
}

static kw_rc get_show(kw_store *s, const read_opts *o, json_t **out)
{
	kw_access_entry *acl = NULL;
	size_t n = 0;
	kw_rc rc = kw_cert_show(s, o->name, o->version, out);
	if (rc != KW_OK)
		return rc;
	/* a certificate cert show shows but that has no list of its own (a deleted
	 * one): no "access" */
	if (kw_cert_access_get(s, o->name, &acl, &n) == KW_OK)
		json_object_set_new(*out, "access", cli_access_json(acl, n));
	kw_error_clear();
	free(acl);
	return KW_OK;
}

/* The commands that read one JSON document and print it, or --json it. */
static int json_command(int argc, char **argv, const char *cmd, const char *allowed,
                        kw_rc (*get)(kw_store *s, const read_opts *o, json_t **out),
                        void (*print)(const json_t *j), json_t **keep)
{
	read_opts o;
	kw_store *s = NULL;
	json_t *j = NULL;
	int ex = parse(argc, argv, cmd, allowed, 1, &o);
	if (ex || (ex = cli_store_open(&s)))
		return ex;
	kw_rc rc = get(s, &o, &j);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	if (o.json)
		cli_print_json(j);
	else
		print(j);
	*keep = j;
	return 0;
}

int cert_show(int argc, char **argv)
{
	json_t *j = NULL;
	int ex = json_command(argc, argv, "cert show", "vj", get_show, print_show, &j);
	json_decref(j);
	return ex;
}

static int write_out(const char *out, const char *pem)
{
	if (out == NULL) {
		fputs(pem, stdout);
		return 0;
	}
	return cli_write_file(out, pem, strlen(pem), 0644);
}

static kw_rc get_export(kw_store *s, const read_opts *o, char **pem)
{
	return kw_cert_export(s, o->name, o->version, o->chain, pem);
}

static kw_rc get_csr(kw_store *s, const read_opts *o, char **pem)
{
	return kw_cert_csr(s, o->name, pem);
}

/* The commands that produce one PEM document for --out or stdout. */
static int pem_command(int argc, char **argv, const char *cmd, const char *allowed,
                       kw_rc (*get)(kw_store *s, const read_opts *o, char **pem))
{
	read_opts o;
	kw_store *s = NULL;
	char *pem = NULL;
	int ex = parse(argc, argv, cmd, allowed, 1, &o);
	if (ex || (ex = cli_store_open(&s)))
		return ex;
	kw_rc rc = get(s, &o, &pem);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	ex = write_out(o.out, pem);
	free(pem);
	return ex;
}

int cert_export(int argc, char **argv)
{
	return pem_command(argc, argv, "cert export", "vco", get_export);
}

int cert_csr(int argc, char **argv)
{
	return pem_command(argc, argv, "cert csr", "o", get_csr);
}

static kw_rc get_verify(kw_store *s, const read_opts *o, json_t **out)
{
	return kw_cert_verify(s, o->name, o->version, out);
}

static void print_verify(const json_t *j)
{
	printf("%s version %lld: %s key in backend %s\n", str(j, "name"),
	       (long long)json_integer_value(json_object_get(j, "version")), str(j, "key_type"),
	       str(j, "backend"));
	printf("  exportable:          %s\n",
	       json_is_true(json_object_get(j, "exportable")) ? "YES" : "no");
	printf("  generated on device: %s\n",
	       json_is_true(json_object_get(j, "generated_on_device")) ? "yes" : "no (imported)");
	const json_t *match = json_object_get(j, "certificate_matches_key");
	printf("  certificate matches: %s\n", json_is_null(match)   ? "no certificate yet (pending)"
	                                      : json_is_true(match) ? "yes"
	                                                            : "NO");
	const json_t *cy = json_object_get(j, "certify");
	if (json_is_true(json_object_get(cy, "verified")))
		printf("  TPM2_Certify:        verified (name %s; stored with the version)\n",
		       str(cy, "certified_name"));
	else if (cy != NULL)
		printf("  TPM2_Certify:        not available: %s\n", str(cy, "reason"));
	printf("  device attributes (read from the device):\n");
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(j, "attributes"), k, v)
	{
		char *t = json_dumps(v, JSON_ENCODE_ANY);
		printf("    %-22s %s\n", k, t ? t : "?");
		free(t);
	}
}

int cert_verify(int argc, char **argv)
{
	json_t *j = NULL;
	int ex = json_command(argc, argv, "cert verify", "vj", get_verify, print_verify, &j);
	if (ex == 0 && json_is_true(json_object_get(j, "exportable"))) {
		fprintf(stderr, "keyward: the key of %s is exportable\n", str(j, "name"));
		ex = 1;
	}
	if (ex == 0 && json_is_false(json_object_get(j, "certificate_matches_key"))) {
		fprintf(stderr,
		        "keyward: %s version %lld: the device's key is not the certificate's key\n",
		        str(j, "name"),
		        (long long)json_integer_value(json_object_get(j, "version")));
		ex = 1;
	}
	json_decref(j);
	return ex;
}
