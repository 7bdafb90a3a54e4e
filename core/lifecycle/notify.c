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
#include "store/store_lifecycle.h"

static const char *const kinds[] = {"near-expiry", "expired", "renewed", "renewal-failed",
                                    "pending-action"};

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
static kw_rc load_contacts(kw_store *s, int64_t cert_id, json_t *out)
{
	kwi_contact_row *rows = NULL;
	size_t n = 0;
	KW_GUARD(kwi_store_contact_recipients(s, cert_id, &rows, &n));
	for (size_t k = 0; k < n; k++) {
		const char *email = rows[k].email, *name = rows[k].name;
		size_t i;
		json_t *c;
		int seen = 0;
		json_array_foreach(out, i, c) seen |=
		    strcasecmp(json_string_value(json_object_get(c, "email")), email) == 0;
		if (!seen)
			json_array_append_new(out, json_pack("{s:s,s:s?}", "email", email, "name",
			                                     name && name[0] ? name : NULL));
	}
	kwi_contact_rows_free(rows, n);
	return KW_OK;
}

static kw_rc cert_id(kw_store *s, const char *cert, int64_t *id)
{
	int found = 0;
	KW_GUARD(kwi_store_notice_cert_find(s, cert, id, &found));
	if (!found)
		return KW_FAIL(KW_ERR_NOT_FOUND, "unknown certificate '%s'", cert);
	return KW_OK;
}

/* 1: this notice is new (recorded now); 0: it was sent before. */
static kw_rc dedup(kw_store *s, int64_t id, int version, const char *kind, const char *threshold,
                   time_t now, int *fresh)
{
	kwi_notice_row r = {.cert_id = id,
	                    .version = version,
	                    .kind = kind,
	                    .threshold = threshold,
	                    .sent_at = now};
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_notice_add(s, &r, fresh);
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
static kw_rc send_all(kw_store *s, const kwi_channel_row *channels, size_t n_channels,
                      const char *cert, int version, const kwi_notice *n)
{
	kw_rc rc = KW_OK;
	for (size_t i = 0; i < n_channels; i++) {
		const char *name = channels[i].name;
		const char *kind = channels[i].kind;
		const json_t *config = channels[i].config;
		int skipped = 0;
		kw_error_clear();
		if (strcmp(kind, "webhook") != 0) /* a program runs: it may use the same TPM */
			kwi_devices_reset(s);
		kw_rc sent = config ? kwi_channel_send(kind, config, n, &skipped)
		                    : KW_FAIL(KW_ERR_STORE, "unreadable channel configuration");
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
	kwi_channel_row *channels = NULL;
	size_t n_channels = 0;
	kwi_notice n = {.contacts = json_array()};
	saved_error saved;
	int64_t id = 0;
	int fresh = 1;
	error_save(&saved);
	kw_error_clear();
	kw_rc rc = check_kind(kind);
	if (rc == KW_OK && kwi_store_in_transaction(s))
		rc = KW_FAIL(KW_ERR_INTERNAL, "notice for '%s' requested inside a transaction",
		             cert);
	if (rc != KW_OK || (rc = kwi_now(&n.at)) != KW_OK || (rc = cert_id(s, cert, &id)) != KW_OK)
		goto out;
	if ((rc = kwi_store_channel_list(s, &channels, &n_channels)) != KW_OK)
		goto out;
	/* No channel: nothing is sent and nothing recorded, so a channel
	 * added later still gets the notice. */
	if (n_channels == 0)
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
	rc = send_all(s, channels, n_channels, cert, version, &n);
out:
	kwi_named_rows_free(channels, n_channels);
	json_decref(n.doc);
	json_decref(n.contacts);
	if (rc == KW_OK)
		error_restore(&saved);
	return rc;
}
