#include <string.h>

#include <criterion/criterion.h>

#include <keyward/error.h>

Test(error, starts_empty)
{
	kw_error_clear();
	cr_assert_eq(kw_error_code(), KW_OK);
	cr_assert_str_empty(kw_error_message());
	cr_assert_str_empty(kw_error_where());
}

Test(error, records_code_message_device_code_and_place)
{
	kw_error_clear();
	kw_rc rc = KW_FAIL_DEV(KW_ERR_AUTH, 0xa0, "wrong PIN for token '%s'", "t1");
	cr_assert_eq(rc, KW_ERR_AUTH);
	cr_assert_eq(kw_error_code(), KW_ERR_AUTH);
	cr_assert_eq(kw_error_device_code(), 0xa0);
	cr_assert_str_eq(kw_error_message(), "wrong PIN for token 't1'");
	cr_assert(strncmp(kw_error_where(), "test_error.c:", 13) == 0, "where: %s",
	          kw_error_where());
}

Test(error, first_error_sticks_until_cleared)
{
	kw_error_clear();
	KW_FAIL(KW_ERR_UNAVAILABLE, "cannot reach the TPM");
	kw_rc rc = KW_FAIL(KW_ERR_INTERNAL, "later symptom");
	cr_assert_eq(rc, KW_ERR_INTERNAL, "the caller still gets its own code back");
	cr_assert_eq(kw_error_code(), KW_ERR_UNAVAILABLE);
	cr_assert_str_eq(kw_error_message(), "cannot reach the TPM");
	kw_error_clear();
	KW_FAIL(KW_ERR_PARSE, "second");
	cr_assert_str_eq(kw_error_message(), "second");
}

Test(error, a_plain_error_has_no_hint)
{
	kw_error_clear();
	KW_FAIL(KW_ERR_IO, "cannot read x");
	cr_assert_eq(kw_error_hint(), KW_HINT_NONE);
	cr_assert_str_empty(kw_error_hint_arg());
}

Test(error, records_a_hint_apart_from_the_message)
{
	kw_error_clear();
	kw_rc rc =
	    KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'", "web01");
	cr_assert_eq(rc, KW_ERR_NOT_FOUND);
	cr_assert_eq(kw_error_code(), KW_ERR_NOT_FOUND);
	cr_assert_str_eq(kw_error_message(), "unknown certificate 'web01'");
	cr_assert_eq(kw_error_hint(), KW_HINT_CERT_LIST);
	cr_assert_str_empty(kw_error_hint_arg(), "this hint names no object");
	cr_assert(strncmp(kw_error_where(), "test_error.c:", 13) == 0, "where: %s",
	          kw_error_where());
}

Test(error, a_hint_carries_the_name_it_needs)
{
	kw_error_clear();
	KW_FAIL_HINT_ON(KW_ERR_STATE, KW_HINT_CERT_RECOVER, "web01", "certificate '%s' is deleted",
	                "web01");
	cr_assert_eq(kw_error_hint(), KW_HINT_CERT_RECOVER);
	cr_assert_str_eq(kw_error_hint_arg(), "web01");
	cr_assert_str_eq(kw_error_message(), "certificate 'web01' is deleted");
}

Test(error, the_first_error_keeps_its_hint_and_clear_forgets_it)
{
	kw_error_clear();
	KW_FAIL_HINT_ON(KW_ERR_STATE, KW_HINT_CERT_ENABLE, "ca1", "CA '%s' is disabled", "ca1");
	KW_FAIL_HINT_ON(KW_ERR_NOT_FOUND, KW_HINT_CERT_RECOVER, "other", "later");
	KW_FAIL(KW_ERR_INTERNAL, "later still");
	cr_assert_eq(kw_error_hint(), KW_HINT_CERT_ENABLE);
	cr_assert_str_eq(kw_error_hint_arg(), "ca1");
	cr_assert_str_eq(kw_error_message(), "CA 'ca1' is disabled");
	kw_error_clear();
	cr_assert_eq(kw_error_hint(), KW_HINT_NONE);
	cr_assert_str_empty(kw_error_hint_arg());
	/* a hintless first error is not given a later one's hint */
	KW_FAIL(KW_ERR_IO, "first");
	KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "second");
	cr_assert_eq(kw_error_hint(), KW_HINT_NONE);
	cr_assert_str_eq(kw_error_message(), "first");
}

Test(error, a_long_hint_arg_is_truncated_not_overflowed)
{
	char big[1024];
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	kw_error_clear();
	KW_FAIL_HINT_ON(KW_ERR_STATE, KW_HINT_CERT_RECOVER, big, "deleted");
	size_t n = strlen(kw_error_hint_arg());
	cr_assert(n > 10 && n < sizeof(big), "arg length %zu", n);
}

Test(error, long_messages_are_truncated_not_overflowed)
{
	char big[4096];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	kw_error_clear();
	KW_FAIL(KW_ERR_PARSE, "%s", big);
	cr_assert(strlen(kw_error_message()) > 100 && strlen(kw_error_message()) < sizeof(big));
}

Test(error, every_code_has_a_name)
{
	for (int c = KW_OK; c <= KW_ERR_INTERNAL; c++) {
		const char *n = kw_rc_name((kw_rc)c);
		cr_assert(n && n[0] && strcmp(n, "unknown error") != 0, "code %d", c);
	}
	cr_assert_str_eq(kw_rc_name((kw_rc)999), "unknown error");
}

static void *other_thread(void *arg)
{
	(void)arg;
	return (void *)(long)kw_error_code();
}

#include <pthread.h>
Test(error, record_is_per_thread)
{
	kw_error_clear();
	KW_FAIL(KW_ERR_IO, "main thread");
	pthread_t t;
	void *seen = NULL;
	cr_assert(pthread_create(&t, NULL, other_thread, NULL) == 0);
	pthread_join(t, &seen);
	cr_assert_eq((long)seen, KW_OK);
	cr_assert_eq(kw_error_code(), KW_ERR_IO);
}
