#include <string.h>

#include <criterion/criterion.h>
#include <keyward/issuer.h>

#include "kwtest.h"

Test(issuers, each_kind_is_told_apart_by_the_table)
{
	const char *name = "untouched";
	cr_assert_eq(kw_issuer_parse("self", &name), KW_ISSUER_SELF);
	cr_assert_null(name);
	cr_assert_eq(kw_issuer_parse("unknown", &name), KW_ISSUER_EXTERNAL);
	cr_assert_null(name);
	cr_assert_eq(kw_issuer_parse("ca:inter-1", &name), KW_ISSUER_CA);
	cr_assert_str_eq(name, "inter-1");
	cr_assert_eq(kw_issuer_parse("acme:le.prod", &name), KW_ISSUER_ACME);
	cr_assert_str_eq(name, "le.prod");
	cr_assert_eq(kw_issuer_parse("acme:x", NULL), KW_ISSUER_ACME);
}

Test(issuers, no_issuer_means_self)
{
	const char *name = "untouched";
	cr_assert_eq(kw_issuer_parse(NULL, &name), KW_ISSUER_SELF);
	cr_assert_null(name);
}

Test(issuers, refuses_what_is_not_in_the_table_or_has_a_bad_name)
{
	static const char *const bad[] = {
	    "",      "Self",   "selfish", "unknown:", "ca:",   "acme:",    "CA:x",
	    "ca:-x", "ca:a b", "ca:a/b",  "acme:x;y", "ca :x", "digicert", "ca:x\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *name = "untouched";
		cr_assert_eq(kw_issuer_parse(bad[i], &name), KW_ISSUER_INVALID, "'%s'", bad[i]);
		cr_assert_null(name, "'%s'", bad[i]);
	}
}

Test(issuers, a_name_may_have_64_characters_not_65)
{
	char text[80] = "ca:";
	memset(text + 3, 'a', 64);
	text[67] = '\0';
	cr_assert_eq(kw_issuer_parse(text, NULL), KW_ISSUER_CA);
	text[67] = 'a';
	text[68] = '\0';
	cr_assert_eq(kw_issuer_parse(text, NULL), KW_ISSUER_INVALID);
}
