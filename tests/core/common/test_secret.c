#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <keyward/secret.h>

#include "kwtest.h"

static char *pin_file(const char *content, int mode)
{
	char *dir = kwt_tmpdir("pin");
	char *p = kwt_write_file(dir, "pin", content, strlen(content), mode);
	free(dir);
	return p;
}

/* "file:PATH"; takes ownership of path */
static char *source(char *path)
{
	char *s = NULL;
	cr_assert(asprintf(&s, "file:%s", path) > 0);
	free(path);
	return s;
}

Test(secret, reads_a_private_pin_file_without_its_newline)
{
	char *src = source(pin_file("123456\n", 0600));
	kw_secret *s = NULL;
	cr_assert_eq(kw_secret_from_source(src, &s), KW_OK);
	cr_assert_eq(kw_secret_len(s), 6);
	cr_assert(memcmp(kw_secret_data(s), "123456", 6) == 0);
	kw_secret_free(s);
	free(src);
}

Test(secret, keeps_inner_bytes_and_crlf_is_stripped)
{
	char *src = source(pin_file("a b\tc\r\n", 0400));
	kw_secret *s = NULL;
	cr_assert_eq(kw_secret_from_source(src, &s), KW_OK);
	cr_assert_eq(kw_secret_len(s), 5);
	cr_assert(memcmp(kw_secret_data(s), "a b\tc", 5) == 0);
	kw_secret_free(s);
	free(src);
}

Test(secret, refuses_group_or_world_accessible_pin_files)
{
	int modes[] = {0640, 0604, 0660, 0644, 0620};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char *src = source(pin_file("1234", modes[i]));
		kw_secret *s = NULL;
		kw_error_clear();
		cr_assert_eq(kw_secret_from_source(src, &s), KW_ERR_PERM, "mode %o", modes[i]);
		cr_assert_null(s);
		cr_assert(strstr(kw_error_message(), "chmod 600") != NULL, "%s",
		          kw_error_message());
		cr_assert(strstr(kw_error_message(), "1234") == NULL, "the PIN leaked");
		free(src);
	}
}

Test(secret, missing_file_and_unknown_scheme_are_errors)
{
	kw_secret *s = NULL;
	kw_error_clear();
	cr_assert_eq(kw_secret_from_source("file:/nonexistent/pin", &s), KW_ERR_NOT_FOUND);
	kw_error_clear();
	cr_assert_eq(kw_secret_from_source("1234", &s), KW_ERR_USAGE);
	cr_assert(strstr(kw_error_message(), "file:PATH or env:VAR") != NULL);
	kw_error_clear();
	cr_assert_eq(kw_secret_from_source("file:", &s), KW_ERR_USAGE);
	kw_error_clear();
	cr_assert_eq(kw_secret_from_source(NULL, &s), KW_ERR_USAGE);
	cr_assert_null(s);
}

Test(secret, reads_env_sources)
{
	kw_secret *s = NULL;
	setenv("KW_TEST_SECRET_VAR", "s3cret", 1);
	cr_assert_eq(kw_secret_from_source("env:KW_TEST_SECRET_VAR", &s), KW_OK);
	cr_assert_eq(kw_secret_len(s), 6);
	cr_assert(memcmp(kw_secret_data(s), "s3cret", 6) == 0);
	kw_secret_free(s);
	unsetenv("KW_TEST_SECRET_VAR");
	kw_error_clear();
	cr_assert_eq(kw_secret_from_source("env:KW_TEST_SECRET_VAR", &s), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(), "KW_TEST_SECRET_VAR") != NULL);
}

Test(secret, refuses_an_oversized_pin_file)
{
	char big[2048];
	memset(big, '7', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char *src = source(pin_file(big, 0600));
	kw_secret *s = NULL;
	kw_error_clear();
	cr_assert_eq(kw_secret_from_source(src, &s), KW_ERR_PARSE);
	cr_assert_null(s);
	free(src);
}

Test(secret, truncate_wipes_the_tail_and_free_accepts_null)
{
	kw_secret *s = NULL;
	cr_assert_eq(kw_secret_from_bytes("abcdef", 6, &s), KW_OK);
	kw_secret_truncate(s, 2);
	cr_assert_eq(kw_secret_len(s), 2);
	/* the wiped tail is still inside the allocation: it must be zero now */
	const unsigned char *d = kw_secret_data(s);
	for (int i = 2; i < 6; i++)
		cr_assert_eq(d[i], 0);
	kw_secret_truncate(s, 10); /* growing is refused silently */
	cr_assert_eq(kw_secret_len(s), 2);
	kw_secret_free(s);
	kw_secret_free(NULL);
}

Test(secret, a_directory_is_not_a_pin_file)
{
	char *dir = kwt_tmpdir("pindir");
	chmod(dir, 0700);
	char *src = source(dir);
	kw_secret *s = NULL;
	kw_error_clear();
	cr_assert_neq(kw_secret_from_source(src, &s), KW_OK);
	cr_assert_null(s);
	free(src);
}

/* Issue 14, item 6: a pin file someone else owns, or one that sits where
 * anyone may put a file, is someone else's PIN choice: refused. */
Test(secret, refuses_a_pin_file_owned_by_another_user)
{
	char *path = pin_file("1234\n", 0600);
	cr_assert_eq(chown(path, 65534, 65534), 0);
	char *src = source(strdup(path));
	kw_secret *s = NULL;
	kw_error_clear();
	cr_assert_eq(kw_secret_from_source(src, &s), KW_ERR_PERM);
	cr_assert_null(s);
	cr_assert(strstr(kw_error_message(), "uid 65534") && strstr(kw_error_message(), "chown"),
	          "%s", kw_error_message());
	/* root's own file is fine for any user that can read it */
	cr_assert_eq(chown(path, 0, 0), 0);
	kw_error_clear();
	cr_assert_eq(kw_secret_from_source(src, &s), KW_OK, "%s", kw_error_message());
	kw_secret_free(s);
	free(src);
	free(path);
}

Test(secret, refuses_a_pin_file_in_a_directory_anyone_may_write)
{
	char *path = pin_file("1234\n", 0600);
	char *dir = strdup(path);
	*strrchr(dir, '/') = '\0';
	char *src = source(path);
	kw_secret *s = NULL;
	const mode_t modes[] = {01777, 0777};
	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(chmod(dir, modes[i]), 0);
		kw_error_clear();
		cr_assert_eq(kw_secret_from_source(src, &s), KW_ERR_PERM, "mode %o", modes[i]);
		cr_assert_null(s);
		cr_assert(strstr(kw_error_message(), "anyone may write"), "%s", kw_error_message());
	}
	cr_assert_eq(chmod(dir, 0700), 0);
	kw_error_clear();
	cr_assert_eq(kw_secret_from_source(src, &s), KW_OK, "%s", kw_error_message());
	kw_secret_free(s);
	free(src);
	free(dir);
}
