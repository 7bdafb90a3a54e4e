/* see cli.h */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

const char *cli_store_dir;

/* see cli.h: core says what failed; what to do about it, in this command
 * line's words, is ours. */
const char *cli_hint(char *buf, size_t len)
{
	const char *a = kw_error_hint_arg();
	buf[0] = '\0';
	switch (kw_error_hint()) {
	case KW_HINT_NONE: break;
	case KW_HINT_STORE_INIT: snprintf(buf, len, " (run: keyward init)"); break;
	case KW_HINT_GIVE_STORE: snprintf(buf, len, " (give --store DIR)"); break;
	case KW_HINT_CERT_LIST: snprintf(buf, len, " (see: keyward cert list)"); break;
	case KW_HINT_CERT_VERSIONS:
		snprintf(buf, len, " (see: keyward cert versions %s)", a);
		break;
	case KW_HINT_CERT_RECOVER:
		snprintf(buf, len, " (recover it with: keyward cert recover %s)", a);
		break;
	case KW_HINT_CERT_RECOVER_PURGE:
		snprintf(buf, len,
		         " (recover it with: keyward cert recover %s, or end its keys with: "
		         "keyward cert purge %s)",
		         a, a);
		break;
	case KW_HINT_CERT_ENABLE:
		snprintf(buf, len, " (enable it with: keyward cert set %s --enabled true)", a);
		break;
	case KW_HINT_CERT_RENEW: snprintf(buf, len, " (renew it: keyward cert renew %s)", a); break;
	case KW_HINT_CERT_RENEW_NEW_KEY: snprintf(buf, len, " (renew without --reuse-key)"); break;
	case KW_HINT_CERT_CSR: snprintf(buf, len, " (the CSR: keyward cert csr %s)", a); break;
	case KW_HINT_CERT_MERGE:
		snprintf(buf, len,
		         " (bring the one the CA issued with: keyward cert merge %s FILE)", a);
		break;
	case KW_HINT_PENDING_RESOLVE:
		snprintf(buf, len,
		         " (keyward cert merge %s FILE, or keyward cert pending cancel %s)", a, a);
		break;
	case KW_HINT_CA_CREATE:
		snprintf(buf, len, " (create one with: keyward cert create NAME --ca ...)");
		break;
	case KW_HINT_BACKEND_LIST: snprintf(buf, len, " (see: keyward backend list)"); break;
	case KW_HINT_BACKEND_ADD: snprintf(buf, len, " (keyward backend add ...)"); break;
	case KW_HINT_GIVE_BACKEND:
		snprintf(buf, len, " (--backend NAME; see: keyward backend list)");
		break;
	case KW_HINT_GIVE_SUBJECT: snprintf(buf, len, " (cert create takes --subject)"); break;
	case KW_HINT_GIVE_PEM_OR_PKCS12:
		snprintf(buf, len, " (--pem FILE or --pkcs12 FILE)");
		break;
	case KW_HINT_GIVE_KEY_URI_OR_TSS2:
		snprintf(buf, len, " (--key-uri URI or --tss2 FILE)");
		break;
	case KW_HINT_GIVE_CERT_FILE: snprintf(buf, len, " (give --cert FILE)"); break;
	case KW_HINT_PASSWORD_SOURCE:
		snprintf(buf, len, " (give it with --password-source file:PATH|env:VAR)");
		break;
	case KW_HINT_GIVE_MODULE: snprintf(buf, len, " (give --module MODULE)"); break;
	case KW_HINT_GIVE_TOKEN: snprintf(buf, len, " (give --token LABEL|pkcs11:URI)"); break;
	case KW_HINT_ISSUER_LIST: snprintf(buf, len, " (see: keyward issuer list)"); break;
	case KW_HINT_GIVE_EAB:
		snprintf(buf, len, " (--eab-kid K --eab-key-source file:PATH)");
		break;
	case KW_HINT_GIVE_HTTP01:
		snprintf(buf, len,
		         " (give --http01-listen ADDR:PORT or --http01-webroot DIR, or set one on "
		         "%s%s)",
		         a[0] ? "issuer " : "the issuer", a);
		break;
	case KW_HINT_HTTP01_WEBROOT:
		snprintf(buf, len, " (use --http01-webroot with it instead)");
		break;
	case KW_HINT_GIVE_DNS_SAN: snprintf(buf, len, " (--san DNS:host)"); break;
	case KW_HINT_CHANNEL_LIST: snprintf(buf, len, " (see: keyward channel list)"); break;
	case KW_HINT_GIVE_URL: snprintf(buf, len, " (--url URL)"); break;
	case KW_HINT_GIVE_COMMAND: snprintf(buf, len, " (--command CMD)"); break;
	case KW_HINT_CA_BUNDLE_ABSOLUTE: snprintf(buf, len, " (--ca-bundle /PATH/FILE)"); break;
	case KW_HINT_CONTACT_LIST: snprintf(buf, len, " (see: keyward contact list)"); break;
	case KW_HINT_MGMT_LIST: snprintf(buf, len, " (see: keyward mgmt list)"); break;
	case KW_HINT_MGMT_ISSUE: snprintf(buf, len, " (keyward mgmt issue)"); break;
	case KW_HINT_MGMT_INIT: snprintf(buf, len, " (run: keyward mgmt init --backend B)"); break;
	case KW_HINT_DEPLOY_TARGET_LIST:
		snprintf(buf, len,
		         " (see: keyward deploy-target list; define one with keyward "
		         "deploy-target add)");
		break;
	case KW_HINT_CERT_DEPLOY:
		snprintf(buf, len, " (once fixed: keyward cert deploy %s)", a);
		break;
	}
	return buf;
}

int cli_fail(kw_rc rc)
{
	const char *msg = kw_error_message();
	char hint[256];
	fprintf(stderr, "keyward: %s%s\n", msg[0] ? msg : kw_rc_name(rc),
	        msg[0] ? cli_hint(hint, sizeof(hint)) : "");
	return rc == KW_ERR_USAGE ? 2 : rc == KW_ERR_DEPLOY ? CLI_EXIT_DEPLOY : 1;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("keyward: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

void cli_print_usage(const char *group, const cli_command *c)
{
	printf("Usage: keyward %s%s%s %s\n\n%s\n", group ? group : "", group ? " " : "", c->name,
	       c->usage, c->help);
}

int cli_dispatch(const char *group, const cli_command *table, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("%s: missing subcommand (see: keyward %s --help)", group,
		                       group);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		printf("Usage: keyward %s SUBCOMMAND ...\n\nSubcommands:\n", group);
		/* the first line of each help: the rest is for SUBCOMMAND --help */
		for (const cli_command *c = table; c->name; c++)
			printf("  %-9s %.*s\n", c->name, (int)strcspn(c->help, "\n"), c->help);
		printf("Run 'keyward %s SUBCOMMAND --help' for its options.\n", group);
		return 0;
	}
	for (const cli_command *c = table; c->name; c++) {
		if (strcmp(argv[1], c->name) != 0)
			continue;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--") == 0)
				break;
			if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
				cli_print_usage(group, c);
				return 0;
			}
		}
		return c->fn(argc - 1, argv + 1);
	}
	return cli_usage_error("unknown command '%s %s' (see: keyward %s --help)", group, argv[1],
	                       group);
}

int cli_store_open(kw_store **out)
{
	char *dir = NULL;
	kw_rc rc = KW_OK;
	if (cli_store_dir)
		dir = strdup(cli_store_dir);
	else if ((rc = kw_store_default_dir(&dir)) != KW_OK)
		return cli_fail(rc);
	rc = kw_store_open(dir, out);
	free(dir);
	return rc == KW_OK ? 0 : cli_fail(rc);
}

int cli_getopt(int argc, char **argv, const char *cmd, const char *shortopts,
               const struct option *longopts)
{
	opterr = 0;
	int c = getopt_long(argc, argv, shortopts, longopts, NULL);
	/* getopt has just stepped past the offending word: name it as typed.
	 * (optopt would give a long option's internal letter.) */
	if (c == '?')
		cli_usage_error(
		    "%s: option '%s' is unknown or needs a value (see: keyward %s --help)", cmd,
		    argv[optind - 1], cmd);
	if (c == ':')
		c = '?';
	return c;
}

/* Opens the store, gets the array from get1(s, arg, &out) or get0(s, &out),
 * closes the store, prints the array as JSON or hands it to table(). */
static int fetch_show(kw_rc (*get1)(kw_store *s, const char *arg, json_t **out),
                      kw_rc (*get0)(kw_store *s, json_t **out), const char *arg, int as_json,
                      void (*table)(const json_t *list))
{
	kw_store *s = NULL;
	json_t *arr = NULL;
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = get1 ? get1(s, arg, &arr) : get0(s, &arr);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	if (as_json)
		cli_print_json(arr);
	else
		table(arr);
	json_decref(arr);
	return 0;
}

int cli_list_show(kw_rc (*list)(kw_store *s, const char *arg, json_t **out), const char *arg,
                  int as_json, void (*table)(const json_t *list))
{
	return fetch_show(list, NULL, arg, as_json, table);
}

int cli_list_command(int argc, char **argv, const char *cmd,
                     kw_rc (*list)(kw_store *s, json_t **out), void (*table)(const json_t *list))
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	int c, as_json = 0;
	optind = 1;
	while ((c = cli_getopt(argc, argv, cmd, "", opts)) != -1) {
		if (c != 'j')
			return 2;
		as_json = 1;
	}
	if (optind < argc)
		return cli_usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
	return fetch_show(NULL, list, NULL, as_json, table);
}

void cli_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		printf("%s\n", s);
	free(s);
}

/* A regular file is replaced atomically: temp file, fsync, rename. */
static int replace_file(const char *path, const char *data, size_t len, int mode)
{
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
		return cli_usage_error("out of memory");
	int fd = mkstemp(tmp);
	int ok = fd >= 0 && fchmod(fd, (mode_t)mode) == 0 && write(fd, data, len) == (ssize_t)len &&
	         fsync(fd) == 0;
	int err = errno;
	if (fd >= 0)
		close(fd);
	if (ok && rename(tmp, path) == 0) {
		free(tmp);
		return 0;
	}
	err = ok ? errno : err;
	if (fd >= 0)
		unlink(tmp);
	free(tmp);
	fprintf(stderr, "keyward: cannot write %s: %s\n", path, strerror(err));
	return 1;
}

int cli_write_file(const char *path, const char *data, size_t len, int mode)
{
	struct stat st;
	if (strcmp(path, "-") == 0) {
		fwrite(data, 1, len, stdout);
		return 0;
	}
	/* Issue 14: root writing --out or --textfile into a directory another
	 * user can write must not be led elsewhere by a planted link, nor made
	 * to feed a planted FIFO. The rename below replaces a link itself. */
	if (lstat(path, &st) == 0) {
		const char *what =
		    S_ISLNK(st.st_mode)   ? "a symbolic link (keyward does not write "
		                            "through links: give the file's own path)"
		    : S_ISDIR(st.st_mode) ? "a directory"
		    : !S_ISREG(st.st_mode)
		        ? "not a regular file (a device, FIFO or socket: use --out - "
		          "and redirect)"
		        : NULL;
		if (what) {
			fprintf(stderr, "keyward: cannot write %s: it is %s\n", path, what);
			return 1;
		}
	} else if (errno != ENOENT) {
		fprintf(stderr, "keyward: cannot write %s: %s\n", path, strerror(errno));
		return 1;
	}
	return replace_file(path, data, len, mode);
}

int cli_parse_int(const char *what, const char *text, int min, int max, int *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || end == text || *end != '\0' || v < min || v > max)
		return cli_usage_error("%s must be a number from %d to %d, not '%s'", what, min,
		                       max, text);
	*out = (int)v;
	return 0;
}

/* see cli.h */
int cli_read_input(const char *path, size_t max, const char *what, unsigned char **data,
                   size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	*data = f ? malloc(max + 1) : NULL;
	*len = *data ? fread(*data, 1, max + 1, f) : 0;
	int err = errno, failed = f == NULL || *data == NULL || ferror(f);
	if (f && f != stdin)
		fclose(f);
	if (failed)
		fprintf(stderr, "keyward: cannot read %s: %s\n", path, strerror(err));
	else if (*len > max)
		fprintf(stderr, "keyward: %s: larger than %zu bytes: not %s\n", path, max, what);
	else
		return 0;
	free(*data);
	*data = NULL;
	return 1;
}

/* see cli.h */
void cli_time_format(time_t t, char *buf, size_t len)
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

/* see cli.h: what may be said about a key is what its device did, no more
 * (DESIGN.md, custody invariant 7) */
const char *cli_key_end_text(const char *end)
{
	if (end && strcmp(end, "destroyed") == 0)
		return "destroyed in the device";
	if (end && strcmp(end, "revoked") == 0)
		return "revoked in the TPM: no copy of its wrapped blob can sign again";
	return "forgotten: the store dropped its TPM-wrapped blob and the TPM holds no copy, but "
	       "any copy of the blob (a cert key-ref --format tss2 file, a backup of the store) "
	       "still loads and signs on that TPM";
}
