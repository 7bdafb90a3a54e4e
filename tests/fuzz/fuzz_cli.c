/* The command line: global options, the command tables, every command's
 * option parsing and argument checks, as `keyward WORD...` runs them. One
 * input line is one argument. The store is /dev/null/keyward-fuzz, which no
 * one (root included) can create or open, so a command that gets past its
 * arguments fails at the store and nothing on the machine changes; --store
 * from the input is dropped for that reason. stdin is /dev/null, stdout is
 * discarded. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "fuzz.h"

#define MAX_ARGS 64

static void setup(void)
{
	int null = open("/dev/null", O_RDWR);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		abort();
	close(null);
	unsetenv("KEYWARD_STORE");
}

/* glibc's getopt keeps where it was inside the previous argv: optind = 0
 * makes the next call start afresh (the commands set optind = 1 only). */
static void getopt_reset(void)
{
	char *argv[] = {"fuzz", NULL};
	optind = 0;
	(void)getopt(1, argv, "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char *argv[MAX_ARGS + 4];
	int argc = 0;
	if (!ready) {
		setup();
		ready = 1;
	}
	char *text = fuzz_text(data, size);
	if (text == NULL)
		return 0;
	argv[argc++] = "keyward";
	argv[argc++] = "--store";
	argv[argc++] = "/dev/null/keyward-fuzz";
	for (char *word = text, *next; word != NULL && argc < MAX_ARGS + 3; word = next) {
		next = strchr(word, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (strncmp(word, "--store", 7) != 0)
			argv[argc++] = word;
	}
	argv[argc] = NULL;
	getopt_reset();
	cli_store_dir = NULL;
	int rc = cli_main(argc, argv);
	/* the exit code contract: 0, 1 (failed) or 2 (usage) */
	if (rc < 0 || rc > 2)
		abort();
	fflush(stdout);
	kw_error_clear();
	free(text);
	return 0;
}
