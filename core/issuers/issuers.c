/* see internal.h and keyward/issuer.h: the table of issuer kinds, the one
 * place that reads an issuer's name */
#include <string.h>

#include "internal.h"

static const struct {
	kw_issuer_kind kind;
	const char *text; /* the whole name, or the prefix before NAME */
	int named;        /* "prefix:NAME" */
} kinds[] = {
    {KW_ISSUER_SELF, "self", 0},
    {KW_ISSUER_EXTERNAL, "unknown", 0},
    {KW_ISSUER_CA, "ca:", 1},
    {KW_ISSUER_ACME, "acme:", 1},
};

kw_issuer_kind kwi_issuer_parse(const char *text, const char **name)
{
	if (name)
		*name = NULL;
	if (text == NULL)
		return KW_ISSUER_SELF;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].text);
		if (!kinds[i].named && strcmp(text, kinds[i].text) == 0)
			return kinds[i].kind;
		if (kinds[i].named && strncmp(text, kinds[i].text, n) == 0) {
			if (!kwi_name_valid(text + n, KWI_ISSUER_NAME_MAX))
				return KW_ISSUER_INVALID;
			if (name)
				*name = text + n;
			return kinds[i].kind;
		}
	}
	return KW_ISSUER_INVALID;
}

kw_issuer_kind kw_issuer_parse(const char *text, const char **name)
{
	return kwi_issuer_parse(text, name);
}
