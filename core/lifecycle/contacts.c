/* see keyward/lifecycle.h: contacts (who is told) */
#include <string.h>

#include "lifecycle/lifecycle_internal.h"
#include "lifecycle/notify_internal.h"
#include "store/store_lifecycle.h"

#define EMAIL_MAX        254
#define CONTACT_NAME_MAX 128

int kwi_email_valid(const char *email)
{
	static const char local_ok[] = "!#$%&'*+/=?^_`{|}~.-";
	const char *at = email ? strchr(email, '@') : NULL;
	size_t len = email ? strlen(email) : 0;
	if (at == NULL || len > EMAIL_MAX || strchr(at + 1, '@') || at == email || at[1] == '\0' ||
	    at - email > 64)
		return 0;
	for (const char *p = email; p < at; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(local_ok, *p)))
			return 0;
	if (email[0] == '.' || at[-1] == '.' || strstr(email, ".."))
		return 0;
	for (const char *p = at + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			return 0;
	return at[1] != '.' && at[1] != '-' && email[len - 1] != '.' && email[len - 1] != '-';
}

const char *kwi_printable(const char *in, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p; p++) {
		char esc[5] = {0};
		if (*p == '\n' || *p == '\r' || *p == '\t')
			esc[0] = '\\', esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
		else if (*p < 0x20 || *p == 0x7f)
			esc[0] = '\\', esc[1] = 'x', esc[2] = hex[*p >> 4], esc[3] = hex[*p & 15];
		else
			esc[0] = (char)*p;
		size_t n = strlen(esc);
		if (o + n + 4 >= len) { /* room for "..." */
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, esc, n);
		o += n;
	}
	out[o] = '\0';
	return out;
}

/* A display name: no control characters (they could end a header). */
static kw_rc check_name(const char *name)
{
	if (name == NULL)
		return KW_OK;
	if (strlen(name) > CONTACT_NAME_MAX)
		return KW_FAIL(KW_ERR_USAGE, "contact name is longer than %d bytes",
		               CONTACT_NAME_MAX);
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return KW_FAIL(KW_ERR_USAGE,
			               "contact name must not contain control characters "
			               "(newlines, tabs)");
	return KW_OK;
}

/* The id of a (not deleted) certificate; 0 for cert NULL. */
static kw_rc lookup_cert(kw_store *s, const char *cert, int64_t *id)
{
	char shown[200];
	int found = 0;
	*id = 0;
	if (cert == NULL)
		return KW_OK;
	KW_GUARD(kwi_store_contact_cert_find(s, cert, id, &found));
	if (!found)
		return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'",
		                    kwi_printable(cert, shown, sizeof(shown)));
	return KW_OK;
}

static const char *where(const char *cert)
{
	return cert ? cert : "(store-wide)";
}

kw_rc kw_contact_add(kw_store *s, const char *cert, const char *email, const char *name)
{
	kwi_contact_row r = {.email = email, .name = name};
	int added = 0;
	char shown[300];
	kw_error_clear();
	if (!kwi_email_valid(email))
		return KW_FAIL(KW_ERR_USAGE,
		               "bad email address '%s': give one plain address such as "
		               "ops@example.com (no spaces, names or brackets)",
		               kwi_printable(email, shown, sizeof(shown)));
	KW_GUARD(check_name(name));
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = lookup_cert(s, cert, &r.cert_id);
	if (rc == KW_OK)
		rc = kwi_now(&r.created_at);
	if (rc == KW_OK)
		rc = kwi_store_contact_add(s, &r, &added);
	if (rc == KW_OK && !added)
		rc = KW_FAIL(KW_ERR_EXISTS, "%s is already a contact of %s", email, where(cert));
	if (rc == KW_OK)
		rc = kwi_event_append(
		    s, "contact.added", cert, 0,
		    json_pack("{s:s,s:s?}", "email", email, "name", name && name[0] ? name : NULL));
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

kw_rc kw_contact_remove(kw_store *s, const char *cert, const char *email)
{
	int64_t id = 0;
	int removed = 0;
	char shown[300];
	kw_error_clear();
	if (email == NULL || email[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE, "no email address given");
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = lookup_cert(s, cert, &id);
	if (rc == KW_OK)
		rc = kwi_store_contact_remove(s, id, email, &removed);
	if (rc == KW_OK && !removed)
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CONTACT_LIST,
		                  "%s is not a contact of %s",
		                  kwi_printable(email, shown, sizeof(shown)), where(cert));
	if (rc == KW_OK)
		rc = kwi_event_append(s, "contact.removed", cert, 0,
		                      json_pack("{s:s}", "email", email));
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

kw_rc kw_contact_list(kw_store *s, const char *cert, json_t **out)
{
	kwi_contact_row *rows = NULL;
	size_t n = 0;
	int64_t id = 0;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(lookup_cert(s, cert, &id));
	/* with a certificate: everyone told about it (its own and the
	 * store-wide contacts) */
	KW_GUARD(kwi_store_contact_list(s, id, &rows, &n));
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:s?,s:s?}", "email", rows[i].email,
		                                     "name", rows[i].name, "cert", rows[i].cert));
	kwi_contact_rows_free(rows, n);
	if (arr == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	*out = arr;
	return KW_OK;
}
