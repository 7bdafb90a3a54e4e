/* see keyward/lifecycle.h: contacts (who is told) */
#include <string.h>

#include "lifecycle/lifecycle_internal.h"
#include "lifecycle/notify_internal.h"

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
static kw_rc lookup_cert(kw_store *s, const char *cert, sqlite3_int64 *id)
{
	sqlite3_stmt *st = NULL;
	char shown[200];
	*id = 0;
	if (cert == NULL)
		return KW_OK;
	KW_GUARD(kwi_store_prepare(s, "SELECT id FROM certs WHERE name = ? AND deleted_at IS NULL",
	                           &st));
	sqlite3_bind_text(st, 1, cert, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (r == SQLITE_DONE)
		return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'",
		                    kwi_printable(cert, shown, sizeof(shown)));
	return r == SQLITE_ROW ? KW_OK : KWI_DB_FAIL(s, "looking up a certificate");
}

static void bind_cert(sqlite3_stmt *st, int col, sqlite3_int64 id)
{
	if (id)
		sqlite3_bind_int64(st, col, id);
	else
		sqlite3_bind_null(st, col);
}

/* Runs one statement with (cert_id, email[, name, created_at]) bound. */
static kw_rc contact_exec(kw_store *s, const char *sql, sqlite3_int64 id, const char *email,
                          const char *name, int *changed)
{
	sqlite3_stmt *st = NULL;
	time_t now;
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_store_prepare(s, sql, &st));
	bind_cert(st, 1, id);
	sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 4) {
		if (name && name[0])
			sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
	}
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	*changed = sqlite3_changes(s->db);
	return r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "changing contacts");
}

static const char *where(const char *cert)
{
	return cert ? cert : "(store-wide)";
}

kw_rc kw_contact_add(kw_store *s, const char *cert, const char *email, const char *name)
{
	sqlite3_int64 id = 0;
	int changed = 0;
	char shown[300];
	kw_error_clear();
	if (!kwi_email_valid(email))
		return KW_FAIL(KW_ERR_USAGE,
		               "bad email address '%s': give one plain address such as "
		               "ops@example.com (no spaces, names or brackets)",
		               kwi_printable(email, shown, sizeof(shown)));
	KW_GUARD(check_name(name));
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = lookup_cert(s, cert, &id);
	/* NULLs are distinct in a UNIQUE constraint: the store-wide duplicate
	 * check is the NOT EXISTS */
	if (rc == KW_OK)
		rc = contact_exec(s,
		                  "INSERT INTO contacts (cert_id, email, name, created_at)"
		                  " SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM contacts"
		                  " WHERE cert_id IS ?1 AND email = ?2 COLLATE NOCASE)",
		                  id, email, name, &changed);
	if (rc == KW_OK && changed == 0)
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
	sqlite3_int64 id = 0;
	int changed = 0;
	char shown[300];
	kw_error_clear();
	if (email == NULL || email[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE, "no email address given");
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = lookup_cert(s, cert, &id);
	if (rc == KW_OK)
		rc = contact_exec(s,
		                  "DELETE FROM contacts WHERE cert_id IS ?1 AND email = ?2 COLLATE "
		                  "NOCASE",
		                  id, email, NULL, &changed);
	if (rc == KW_OK && changed == 0)
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
	sqlite3_stmt *st = NULL;
	sqlite3_int64 id = 0;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(lookup_cert(s, cert, &id));
	/* with a certificate: everyone told about it (its own and the
	 * store-wide contacts) */
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT ct.email, ct.name, c.name FROM contacts ct LEFT JOIN"
	                           " certs c ON c.id = ct.cert_id WHERE ?1 IS NULL OR ct.cert_id"
	                           " = ?1 OR ct.cert_id IS NULL ORDER BY c.name IS NOT NULL,"
	                           " c.name, ct.email",
	                           &st));
	bind_cert(st, 1, id);
	json_t *arr = json_array();
	int r;
	while (arr && (r = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(
		    arr, json_pack("{s:s,s:s?,s:s?}", "email", sqlite3_column_text(st, 0), "name",
		                   sqlite3_column_text(st, 1), "cert", sqlite3_column_text(st, 2)));
	sqlite3_finalize(st);
	if (arr == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (r != SQLITE_DONE) {
		json_decref(arr);
		return KWI_DB_FAIL(s, "listing contacts");
	}
	*out = arr;
	return KW_OK;
}
