/* keyward cert key-ref */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cert_key_ref(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"out", required_argument, NULL, 'o'},
	    {0},
	};
	const char *format = "keyward", *out = NULL;
	kw_store *s = NULL;
	char *text = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert key-ref", "", opts)) != -1) {
		if (c == 'f')
			format = optarg;
		else if (c == 'o')
			out = optarg;
		else
			return 2;
	}
	if (argc - optind != 1)
		return cli_usage_error("cert key-ref: give exactly one NAME");
	int ex = cli_store_open(&s);
	if (ex)
		return ex;
	kw_rc rc = kw_cert_key_ref(s, argv[optind], format, &text);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	size_t len = strlen(text);
	int uri = strcmp(format, "pkcs11-uri") == 0;
	if (out == NULL) {
		fputs(text, stdout);
		if (uri)
			fputc('\n', stdout);
	} else {
		/* A TSS2 file holds the TPM-wrapped key: useless off this TPM, but
		 * kept private as key files are. */
		ex = cli_write_file(out, text, len, strcmp(format, "tss2") == 0 ? 0600 : 0644);
	}
	free(text);
	return ex;
}
