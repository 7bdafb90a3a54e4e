/* Pin sources (--pin-source, --password-source): "file:PATH" and "env:VAR".
 * Run in a directory of pin files: pin-ok (0600), pin-loose (0644), pin-crlf,
 * pin-long (over the limit), pin-empty, a directory, a symlink to pin-ok and
 * a FIFO with no writer (which must not hang the reader); the variable
 * KW_FUZZ_PIN holds a secret. What must hold for any source: a file readable
 * by group or others is never read, a FIFO is refused at once, and no error
 * message shows a secret the source text itself does not contain. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <keyward/secret.h>

#include "fuzz.h"

static const char *const secrets[] = {"fuzz-pin-1234", "fuzz-pin-loose", "fuzz-env-secret", NULL};
static char pin_dir[] = "/tmp/kw-fuzz-pins.XXXXXX";
static int pin_dir_fd = -1, home_fd = -1;

static void pin_write(const char *name, const char *text, mode_t mode)
{
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    fchmod(fd, mode) != 0)
		abort();
	close(fd);
}

static void pins_remove(void)
{
	fuzz_rm_tree(pin_dir);
}

static void setup(void)
{
	char long_pin[2100];
	memset(long_pin, 'x', sizeof(long_pin) - 1);
	long_pin[sizeof(long_pin) - 1] = '\0';
	/* the sources are read in pin_dir; libFuzzer reads its inputs by
	 * relative paths in between, from where it was started */
	if (mkdtemp(pin_dir) == NULL || (home_fd = open(".", O_RDONLY | O_DIRECTORY)) < 0 ||
	    (pin_dir_fd = open(pin_dir, O_RDONLY | O_DIRECTORY)) < 0 || fchdir(pin_dir_fd) != 0)
		abort();
	atexit(pins_remove);
	pin_write("pin-ok", "fuzz-pin-1234\n", 0600);
	pin_write("pin-loose", "fuzz-pin-loose\n", 0644);
	pin_write("pin-crlf", "fuzz-pin-1234\r\n", 0600);
	pin_write("pin-long", long_pin, 0600);
	pin_write("pin-empty", "", 0600);
	if (mkdir("pindir", 0700) != 0 || symlink("pin-ok", "pin-link") != 0 ||
	    mkfifo("pin-fifo", 0600) != 0)
		abort();
	setenv("KW_FUZZ_PIN", "fuzz-env-secret", 1);
	if (fchdir(home_fd) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	kw_secret *s = NULL;
	if (!ready) {
		setup();
		ready = 1;
	}
	char *source = fuzz_text(data, size);
	if (source == NULL)
		return 0;
	if (fchdir(pin_dir_fd) != 0)
		abort();
	kw_rc rc = kw_secret_from_source(source, &s);
	if ((rc == KW_OK) != (s != NULL))
		abort();
	if (rc == KW_OK && kw_secret_len(s) == strlen("fuzz-pin-loose") &&
	    memcmp(kw_secret_data(s), "fuzz-pin-loose", kw_secret_len(s)) == 0)
		abort(); /* a loose pin file was read */
	const char *msg = kw_error_message();
	for (int i = 0; rc != KW_OK && secrets[i]; i++)
		if (strstr(msg, secrets[i]) != NULL && strstr(source, secrets[i]) == NULL)
			abort(); /* the message shows a secret */
	kw_secret_free(s);
	if (kw_secret_source_check(source) != rc)
		abort(); /* the check says what reading does */
	if (fchdir(home_fd) != 0)
		abort();
	kw_error_clear();
	free(source);
	return 0;
}
