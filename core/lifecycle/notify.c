/* see lifecycle/lifecycle_internal.h (kwi_notify): telling contacts through the channels
 *
 * The notice is built once and handed to every channel. Dedup happens before
 * anything is sent: with a threshold, the (cert, version, kind, threshold)
 * row goes into notices first, and a row that is already there means the
 * notice went out before: one notice per version per threshold, however
 * often `renew --due` runs. Channel failures become "notify.failed" events,
 * never errors: a dead mail server must not stop renewals.
 */
#include <stdlib.h>
#include <string.h>

#include "lifecycle/lifecycle_internal.h"
#include "lifecycle/notify_internal.h"

static const char *const kinds[] = {"near-expiry", "expired", "renewed", "renewal-failed",
                                    "pending-action"};

int kwi_setting_seconds(kw_store *s, const char *key, int def)
{
	sqlite3_stmt *st = NULL;
	int v = def;
	if (sqlite3_prepare_v2(s->db, "SELECT value FROM settings WHERE key = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return def;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		char *end = NULL;
		long n = text ? strtol(text, &end, 10) : 0;
		if (text && end != text && *end == '\0' && n >= 1 && n <= 86400)
			v = (int)n;
	}
	sqlite3_finalize(st);
	return v;
}

/* The caller's error record, kept across the channels' own errors. */
typedef struct {
	kw_rc code;
	unsigned long dev;
	char where[96];
	char message[512];
} saved_error;

static void error_save(saved_error *e)
{
	e->code = kw_error_code();
	e->dev = kw_error_device_code();
	snprintf(e->where, sizeof(e->where), "%s", kw_error_where());
	snprintf(e->message, sizeof(e->message), "%s", kw_error_message());
}

static void error_restore(const saved_error *e)
{
	kw_error_clear();
	if (e->code == KW_OK)
		return;
	char file[96];
	snprintf(file, sizeof(file), "%s", e->where);
	char *colon = strrchr(file, ':');
	int line = colon ? atoi(colon + 1) : 0;
	if (colon)
		*colon = '\0';
	kw_error_set(e->code, e->dev, file, line, "%s", e->message);
}

/* Everyone to tell: the certificate's contacts, then the store-wide ones
 * (an address on both lists once). */
static kw_rc load_contacts(kw_store *s, sqlite3_int64 cert_id, json_t *out)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT email, name FROM contacts WHERE cert_id = ? OR cert_id"
	                           " IS NULL ORDER BY cert_id IS NULL, email COLLATE NOCASE",
	                           &st));
	sqlite3_bind_int64(st, 1, cert_id);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *email = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		size_t i;
		json_t *c;
		int seen = 0;
		json_array_foreach(out, i, c) seen |=
		    strcasecmp(json_string_value(json_object_get(c, "email")), email) == 0;
		if (!seen)
			json_array_append_new(out, json_pack("{s:s,s:s?}", "email", email, "name",
			                                     name && name[0] ? name : NULL));
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "reading contacts");
}

static kw_rc cert_id(kw_store *s, const char *cert, sqlite3_int64 *id)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s, "SELECT id FROM certs WHERE name = ?", &st));
	sqlite3_bind_text(st, 1, cert, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	*id = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (r == SQLITE_DONE)
		return KW_FAIL(KW_ERR_NOT_FOUND, "unknown certificate '%s'", cert);
	return r == SQLITE_ROW ? KW_OK : KWI_DB_FAIL(s, "looking up a certificate");
}

/* 1: this notice is new (recorded now); 0: it was sent before. */
static kw_rc dedup(kw_store *s, sqlite3_int64 id, int version, const char *kind,
                   const char *threshold, time_t now, int *fresh)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_prepare(s,
	                             "INSERT OR IGNORE INTO notices (cert_id, version, kind,"
	                             " threshold, sent_at) VALUES (?,?,?,?,?)",
	                             &st);
	if (rc == KW_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int(st, 2, version);
		sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, threshold, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)now);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = KWI_DB_FAIL(s, "recording a notice");
		*fresh = sqlite3_changes(s->db) > 0;
	}
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

/* field of info, or null (a new reference) */
static json_t *field(const json_t *info, const char *key)
{
	json_t *v = json_object_get(info, key);
	return v ? json_incref(v) : json_null();
}

/* The notice document: what the webhook and command channels receive. */
static kw_rc build(kw_store *s, const char *kind, const char *cert, int version,
                   const char *threshold, const json_t *details, kwi_notice *n)
{
	json_t *info = NULL, *emails = json_array(), *c;
	char at[32];
	size_t i;
	if (kwi_cert_show(s, cert, version, &info) != KW_OK) {
		info = NULL; /* e.g. a version that failed before it existed */
		kw_error_clear();
	}
	kwi_time_format(n->at, at, sizeof(at));
	json_array_foreach(n->contacts, i, c)
	    json_array_append(emails, json_object_get(c, "email"));
	n->doc = json_pack(
	    "{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:s}", "event", kind, "certificate", cert,
	    "version", info ? field(info, "version") : json_integer(version), "subject",
	    field(info, "subject"), "not_after", field(info, "not_after"), "thumbprint_sha256",
	    field(info, "thumbprint_sha256"), "threshold",
	    threshold ? json_string(threshold) : json_null(), "details",
	    details ? json_deep_copy(details) : json_object(), "contacts", emails, "at", at);
	json_decref(info);
	return n->doc ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

/* Sends n through every channel; records one event per channel. */
static kw_rc send_all(kw_store *s, sqlite3_stmt *channels, const char *cert, int version,
                      const kwi_notice *n)
{
	kw_rc rc = KW_OK;
	int r;
	while ((r = sqlite3_step(channels)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(channels, 0);
		const char *kind = (const char *)sqlite3_column_text(channels, 1);
		json_t *config =
		    json_loads((const char *)sqlite3_column_text(channels, 2), 0, NULL);
		int skipped = 0;
		kw_error_clear();
		kw_rc sent = config ? kwi_channel_send(kind, config, n, &skipped)
		                    : KW_FAIL(KW_ERR_STORE, "unreadable channel configuration");
		json_decref(config);
		if (sent == KW_OK && skipped)
			continue; /* mail with nobody to mail */
		json_t *det = json_pack("{s:s,s:s,s:O,s:O}", "channel", name, "channel_kind", kind,
		                        "event", json_object_get(n->doc, "event"), "threshold",
		                        json_object_get(n->doc, "threshold"));
		if (sent == KW_OK)
			json_object_set(det, "recipients", json_object_get(n->doc, "contacts"));
		else
			json_object_set_new(det, "error", json_string(kw_error_message()));
		kw_error_clear();
		kw_rc e = kwi_event_record(s, sent == KW_OK ? "notify.sent" : "notify.failed", cert,
		                           version, det);
		if (rc == KW_OK)
			rc = e;
	}
	if (r != SQLITE_DONE && rc == KW_OK)
		rc = KWI_DB_FAIL(s, "reading the notification channels");
	return rc;
}

static kw_rc check_kind(const char *kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kind && strcmp(kind, kinds[i]) == 0)
			return KW_OK;
	return KW_FAIL(KW_ERR_USAGE, "unknown notice kind '%s'", kind ? kind : "");
}

kw_rc kwi_notify(kw_store *s, const char *kind, const char *cert, int version,
                 const char *threshold, const json_t *details)
{
	sqlite3_stmt *channels = NULL;
	kwi_notice n = {.contacts = json_array()};
	saved_error saved;
	sqlite3_int64 id = 0;
	int fresh = 1, any = 0;
	error_save(&saved);
	kw_error_clear();
	kw_rc rc = check_kind(kind);
	if (rc == KW_OK && !sqlite3_get_autocommit(s->db))
		rc = KW_FAIL(KW_ERR_INTERNAL, "notice for '%s' requested inside a transaction",
		             cert);
	if (rc != KW_OK || (rc = kwi_now(&n.at)) != KW_OK || (rc = cert_id(s, cert, &id)) != KW_OK)
		goto out;
	rc = kwi_store_prepare(s, "SELECT name, kind, config FROM channels ORDER BY name",
	                       &channels);
	if (rc != KW_OK)
		goto out;
	/* No channel: nothing is sent and nothing recorded, so a channel
	 * added later still gets the notice. */
	any = sqlite3_step(channels) == SQLITE_ROW;
	sqlite3_reset(channels);
	if (!any)
		goto out;
	if (threshold && (rc = dedup(s, id, version, kind, threshold, n.at, &fresh)) != KW_OK)
		goto out;
	if (!fresh)
		goto out;
	n.timeout_ms =
	    1000 * kwi_setting_seconds(s, KWI_SETTING_NOTIFY_TIMEOUT, KWI_DEFAULT_NOTIFY_TIMEOUT);
	if ((rc = load_contacts(s, id, n.contacts)) != KW_OK ||
	    (rc = build(s, kind, cert, version, threshold, details, &n)) != KW_OK)
		goto out;
	rc = send_all(s, channels, cert, version, &n);
out:
	sqlite3_finalize(channels);
	json_decref(n.doc);
	json_decref(n.contacts);
	if (rc == KW_OK)
		error_restore(&saved);
	return rc;
}
