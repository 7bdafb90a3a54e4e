#include <stdlib.h>
#include <time.h>

#include <criterion/criterion.h>

#include "internal.h"

Test(clock, parses_rfc3339)
{
	time_t t = 0;
	cr_assert_eq(kwi_time_parse("2030-01-01T00:00:00Z", &t), KW_OK);
	cr_assert_eq(t, 1893456000);
	cr_assert_eq(kwi_time_parse("2030-01-01T02:00:00+02:00", &t), KW_OK);
	cr_assert_eq(t, 1893456000);
	cr_assert_eq(kwi_time_parse("2029-12-31T23:00:00.123-01:00", &t), KW_OK);
	cr_assert_eq(t, 1893456000);
}

Test(clock, refuses_non_rfc3339)
{
	time_t t = 0;
	const char *bad[] = {"",
	                     "2030-01-01",
	                     "2030-01-01T00:00:00",
	                     "tomorrow",
	                     "2030-01-01T00:00:00Zjunk",
	                     "2030-01-01T00:00:00+2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kw_error_clear();
		cr_assert_eq(kwi_time_parse(bad[i], &t), KW_ERR_PARSE, "%s", bad[i]);
	}
}

Test(clock, now_is_injectable)
{
	time_t t = 0;
	setenv("KEYWARD_NOW", "2031-05-06T07:08:09Z", 1);
	cr_assert_eq(kwi_now(&t), KW_OK);
	char buf[32];
	kwi_time_format(t, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2031-05-06T07:08:09Z");
	setenv("KEYWARD_NOW", "garbage", 1);
	kw_error_clear();
	cr_assert_eq(kwi_now(&t), KW_ERR_USAGE);
	unsetenv("KEYWARD_NOW");
	cr_assert_eq(kwi_now(&t), KW_OK);
	cr_assert(labs((long)(t - time(NULL))) < 5);
}
