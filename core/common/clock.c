/* see internal.h: the clock, injectable through KEYWARD_NOW for tests */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

kw_rc kwi_time_parse(const char *s, time_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return KW_FAIL(KW_ERR_PARSE,
		               "'%s' is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)", s);
	if (*end == '.') /* fractional seconds: ignored */
		while (*++end >= '0' && *end <= '9')
			;
	long offset = 0;
	if (*end == 'Z' || *end == 'z')
		end++;
	else if (*end == '+' || *end == '-') {
		int hh = 0, mm = 0;
		if (sscanf(end + 1, "%2d:%2d", &hh, &mm) != 2)
			return KW_FAIL(KW_ERR_PARSE, "'%s': bad UTC offset", s);
		offset = (hh * 3600L + mm * 60L) * (*end == '-' ? -1 : 1);
		end += 6;
	} else
		return KW_FAIL(KW_ERR_PARSE, "'%s': an RFC 3339 time needs Z or an offset", s);
	if (*end != '\0')
		return KW_FAIL(KW_ERR_PARSE, "'%s': trailing characters after the time", s);
	*out = timegm(&tm) - offset;
	return KW_OK;
}

kw_rc kwi_now(time_t *out)
{
	const char *injected = getenv("KEYWARD_NOW");
	if (injected && injected[0]) {
		kw_rc rc = kwi_time_parse(injected, out);
		if (rc != KW_OK) {
			kw_error_clear();
			return KW_FAIL(KW_ERR_USAGE, "KEYWARD_NOW='%s' is not an RFC 3339 time",
			               injected);
		}
		return KW_OK;
	}
	*out = time(NULL);
	return KW_OK;
}

void kwi_time_format(time_t t, char *buf, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
