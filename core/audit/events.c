/* see keyward/lifecycle.h and internal.h: the event log */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include <keyward/lifecycle.h>

#define HASH_LEN 32 /* BLAKE2b-256 */
#define GENESIS  "0000000000000000000000000000000000000000000000000000000000000000"

/*
 * Each record's hash covers the previous record's hash and every field of
 * its own, so editing, deleting or reordering any record breaks the chain
 * from there on; the head (last seq and hash) kept in settings catches a cut
 * tail. Anyone who can write the database can rebuild the whole chain: this
 * makes tampering evident to `audit verify`, it does not make it impossible.
 */
static kw_rc record_hash(const char *prev, sqlite3_int64 seq, sqlite3_int64 at, const char *type,
                         const char *cert, int version, const char *actor, const char *details,
                         char out[2 * HASH_LEN + 1])
{
	unsigned char h[HASH_LEN];
	char *text = NULL;
	if (sodium_init() < 0)
		return KW_FAIL(KW_ERR_INTERNAL, "libsodium failed to initialise");
	/* unambiguous: every variable field is length-prefixed */
	int n = asprintf(
	    &text, "keyward-event-v1\n%s\n%lld\n%lld\n%zu:%s\n%zu:%s\n%d\n%zu:%s\n%zu:%s", prev,
	    (long long)seq, (long long)at, strlen(type), type, cert ? strlen(cert) : 0,
	    cert ? cert : "", version, strlen(actor), actor, strlen(details), details);
	if (n < 0)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	crypto_generichash(h, sizeof(h), (const unsigned char *)text, (size_t)n, NULL, 0);
	free(text);
	kwi_hex(h, sizeof(h), out);
	return KW_OK;
}

static kw_rc head_get(kw_store *s, sqlite3_int64 *seq, char prev[2 * HASH_LEN + 1])
{
	sqlite3_stmt *st = NULL;
	*seq = 0;
	strcpy(prev, GENESIS);
	KW_GUARD(
	    kwi_store_prepare(s, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", &st));
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		snprintf(prev, 2 * HASH_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK
	                                           : KWI_DB_FAIL(s, "reading the event log");
}

static kw_rc head_set(kw_store *s, sqlite3_int64 seq, const char *hash)
{
	sqlite3_stmt *st = NULL;
	char value[128];
	snprintf(value, sizeof(value), "%lld:%s", (long long)seq, hash);
	KW_GUARD(kwi_store_prepare(
	    s, "INSERT OR REPLACE INTO settings (key, value) VALUES ('event_head', ?)", &st));
	sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "recording the event log head");
}

kw_rc kwi_event_append(kw_store *s, const char *type, const char *cert, int version,
                       json_t *details)
{
	kw_rc rc = KW_OK;
	sqlite3_stmt *st = NULL;
	char prev[2 * HASH_LEN + 1], hash[2 * HASH_LEN + 1];
	sqlite3_int64 seq = 0;
	time_t now;
	const char *actor = s->actor[0] ? s->actor : "cli";
	if (details == NULL)
		details = json_object();
	char *text = details ? json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(details);
	if (text == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if ((rc = kwi_now(&now)) != KW_OK || (rc = head_get(s, &seq, prev)) != KW_OK)
		goto out;
	seq++;
	if ((rc = record_hash(prev, seq, now, type, cert, version, actor, text, hash)) != KW_OK)
		goto out;
	rc = kwi_store_prepare(s,
	                       "INSERT INTO events (seq, at, type, cert, version, actor, details,"
	                       " prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)",
	                       &st);
	if (rc != KW_OK)
		goto out;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	if (cert)
		sqlite3_bind_text(st, 4, cert, -1, SQLITE_STATIC);
	if (version > 0)
		sqlite3_bind_int(st, 5, version);
	sqlite3_bind_text(st, 6, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, prev, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, hash, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "appending to the event log");
	else
		rc = head_set(s, seq, hash);
out:
	sqlite3_finalize(st);
	free(text);
	return rc;
}

kw_rc kwi_event_record(kw_store *s, const char *type, const char *cert, int version,
                       json_t *details)
{
	kw_rc rc = kwi_store_begin(s);
	if (rc != KW_OK) {
		json_decref(details);
		return rc;
	}
	rc = kwi_event_append(s, type, cert, version, details);
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

void kw_store_set_actor(kw_store *s, const char *actor)
{
	snprintf(s->actor, sizeof(s->actor), "%s", actor ? actor : "");
}

static json_t *event_json(sqlite3_stmt *st)
{
	char at[32];
	kwi_time_format((time_t)sqlite3_column_int64(st, 1), at, sizeof(at));
	json_t *details = json_loads((const char *)sqlite3_column_text(st, 6), 0, NULL);
	json_t *j = json_pack("{s:I,s:s,s:s,s:s}", "seq", (json_int_t)sqlite3_column_int64(st, 0),
	                      "at", at, "type", (const char *)sqlite3_column_text(st, 2), "actor",
	                      (const char *)sqlite3_column_text(st, 5));
	if (j == NULL) {
		json_decref(details);
		return NULL;
	}
	if (sqlite3_column_type(st, 3) != SQLITE_NULL)
		json_object_set_new(j, "cert",
		                    json_string((const char *)sqlite3_column_text(st, 3)));
	if (sqlite3_column_type(st, 4) != SQLITE_NULL)
		json_object_set_new(j, "version", json_integer(sqlite3_column_int(st, 4)));
	json_object_set_new(j, "details", details ? details : json_object());
	json_object_set_new(j, "hash", json_string((const char *)sqlite3_column_text(st, 8)));
	return j;
}

#define EVENT_COLUMNS                                                                              \
	"SELECT seq, at, type, cert, version, actor, details, prev_hash, hash FROM events"

kw_rc kw_events_list(kw_store *s, const char *cert, json_t **out)
{
	sqlite3_stmt *st = NULL;
	kw_error_clear();
	*out = json_array();
	kw_rc rc =
	    kwi_store_prepare(s, EVENT_COLUMNS " WHERE ?1 IS NULL OR cert = ?1 ORDER BY seq", &st);
	int r = SQLITE_DONE;
	if (rc == KW_OK && cert)
		sqlite3_bind_text(st, 1, cert, -1, SQLITE_STATIC);
	while (rc == KW_OK && (r = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(*out, event_json(st));
	if (rc == KW_OK && r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading the event log");
	sqlite3_finalize(st);
	if (rc != KW_OK) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

static json_t *broken(sqlite3_int64 seq, const char *why)
{
	return json_pack("{s:b,s:I,s:s}", "ok", 0, "first_broken_seq", (json_int_t)seq, "reason",
	                 why);
}

/* Checks one row against the chain so far; NULL when it holds. */
static json_t *check_row(sqlite3_stmt *st, sqlite3_int64 want_seq, const char *prev)
{
	char hash[2 * HASH_LEN + 1];
	sqlite3_int64 seq = sqlite3_column_int64(st, 0);
	const char *cert = (const char *)sqlite3_column_text(st, 3);
	if (seq != want_seq)
		return broken(want_seq,
		              seq > want_seq ? "record missing (deleted)" : "records out of order");
	if (strcmp((const char *)sqlite3_column_text(st, 7), prev) != 0)
		return broken(seq, "does not follow the previous record (deleted or reordered)");
	if (record_hash(prev, seq, sqlite3_column_int64(st, 1),
	                (const char *)sqlite3_column_text(st, 2), cert,
	                sqlite3_column_type(st, 4) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 4),
	                (const char *)sqlite3_column_text(st, 5),
	                (const char *)sqlite3_column_text(st, 6), hash) != KW_OK)
		return broken(seq, "cannot compute the hash");
	if (strcmp(hash, (const char *)sqlite3_column_text(st, 8)) != 0)
		return broken(seq, "record was edited (hash mismatch)");
	return NULL;
}

static json_t *check_head(kw_store *s, sqlite3_int64 last, const char *hash)
{
	sqlite3_stmt *st = NULL;
	char want[128];
	snprintf(want, sizeof(want), "%lld:%s", (long long)last, hash);
	if (kwi_store_prepare(s, "SELECT value FROM settings WHERE key = 'event_head'", &st) !=
	    KW_OK)
		return broken(last, "cannot read the event log head");
	int r = sqlite3_step(st);
	json_t *res = NULL;
	if (r == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), want) != 0)
		res = broken(last + 1, "records missing at the end (truncated)");
	else if (r != SQLITE_ROW && last > 0)
		res = broken(last, "the event log head is missing");
	sqlite3_finalize(st);
	return res;
}

kw_rc kw_audit_verify(kw_store *s, json_t **report)
{
	sqlite3_stmt *st = NULL;
	char prev[2 * HASH_LEN + 1] = GENESIS;
	sqlite3_int64 n = 0;
	kw_error_clear();
	*report = NULL;
	KW_GUARD(kwi_store_prepare(s, EVENT_COLUMNS " ORDER BY seq", &st));
	int r;
	while (*report == NULL && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if ((*report = check_row(st, n + 1, prev)) != NULL)
			break;
		snprintf(prev, sizeof(prev), "%s", (const char *)sqlite3_column_text(st, 8));
		n++;
	}
	sqlite3_finalize(st);
	if (*report == NULL && r != SQLITE_DONE)
		return KWI_DB_FAIL(s, "reading the event log");
	if (*report == NULL)
		*report = check_head(s, n, prev);
	if (*report == NULL)
		*report = json_pack("{s:b,s:I}", "ok", 1, "records", (json_int_t)n);
	else
		json_object_set_new(*report, "records_checked", json_integer(n));
	return *report ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}
