/* see store/store_lifecycle.h: the event log's rows (the chain is audit/events.c's) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sql.h"
#include "store/store_lifecycle.h"

kw_rc kwi_store_event_last_get(kw_store *s, int64_t *seq, char hash[65], int *found)
{
	sqlite3_stmt *st = NULL;
	*seq = 0;
	*found = 0;
	KW_GUARD(
	    kwi_store_prepare(s, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", &st));
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*found = 1;
		*seq = sqlite3_column_int64(st, 0);
		snprintf(hash, 65, "%s", (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK
	                                           : KWI_DB_FAIL(s, "reading the event log");
}

kw_rc kwi_store_event_add(kw_store *s, const kwi_event_row *r)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(
	    kwi_store_prepare(s,
	                      "INSERT INTO events (seq, at, type, cert, version, actor, details,"
	                      " prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)",
	                      &st));
	sqlite3_bind_int64(st, 1, r->seq);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)r->at);
	sqlite3_bind_text(st, 3, r->type, -1, SQLITE_STATIC);
	if (r->cert)
		sqlite3_bind_text(st, 4, r->cert, -1, SQLITE_STATIC);
	if (r->has_version)
		sqlite3_bind_int(st, 5, r->version);
	sqlite3_bind_text(st, 6, r->actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->details, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, r->prev_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, r->hash, -1, SQLITE_STATIC);
	int step = sqlite3_step(st);
	sqlite3_finalize(st);
	return step == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "appending to the event log");
}

/* Calls fn with every row of st (bound, stepped here, finalized by the caller). */
static kw_rc events_read(kw_store *s, sqlite3_stmt *st,
                         int (*fn)(void *ctx, const kwi_event_row *r), void *ctx)
{
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		kwi_event_row e = {
		    .seq = sqlite3_column_int64(st, 0),
		    .at = (time_t)sqlite3_column_int64(st, 1),
		    .type = (const char *)sqlite3_column_text(st, 2),
		    .cert = (const char *)sqlite3_column_text(st, 3),
		    .has_version = sqlite3_column_type(st, 4) != SQLITE_NULL,
		    .version = sqlite3_column_int(st, 4),
		    .actor = (const char *)sqlite3_column_text(st, 5),
		    .details = (const char *)sqlite3_column_text(st, 6),
		    .prev_hash = (const char *)sqlite3_column_text(st, 7),
		    .hash = (const char *)sqlite3_column_text(st, 8),
		};
		if (fn(ctx, &e) != 0)
			return KW_OK;
	}
	return r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "reading the event log");
}

#define EVENT_COLUMNS "seq, at, type, cert, version, actor, details, prev_hash, hash"

kw_rc kwi_store_event_each(kw_store *s, const char *cert,
                           int (*fn)(void *ctx, const kwi_event_row *r), void *ctx)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT " EVENT_COLUMNS " FROM events"
	                           " WHERE ?1 IS NULL OR cert = ?1 ORDER BY seq",
	                           &st));
	if (cert)
		sqlite3_bind_text(st, 1, cert, -1, SQLITE_STATIC);
	kw_rc rc = events_read(s, st, fn, ctx);
	sqlite3_finalize(st);
	return rc;
}

kw_rc kwi_store_event_failed_each(kw_store *s, const char *cert, int64_t after,
                                  int (*fn)(void *ctx, const kwi_event_row *r), void *ctx)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s,
	                           "SELECT " EVENT_COLUMNS " FROM events WHERE seq > ?1 AND"
	                           " (cert = ?2 OR cert IS NULL) AND type LIKE '%.failed'"
	                           " ORDER BY seq",
	                           &st));
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_text(st, 2, cert, -1, SQLITE_STATIC);
	kw_rc rc = events_read(s, st, fn, ctx);
	sqlite3_finalize(st);
	return rc;
}

kw_rc kwi_store_event_head_put(kw_store *s, const char *head)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(
	    s, "INSERT OR REPLACE INTO settings (key, value) VALUES ('event_head', ?)", &st));
	sqlite3_bind_text(st, 1, head, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "recording the event log head");
}

kw_rc kwi_store_event_head_get(kw_store *s, char **head, int *found)
{
	sqlite3_stmt *st = NULL;
	*head = NULL;
	*found = 0;
	KW_GUARD(kwi_store_prepare(s, "SELECT value FROM settings WHERE key = 'event_head'", &st));
	int r = sqlite3_step(st);
	kw_rc rc = KW_OK;
	if (r == SQLITE_ROW) {
		*found = 1;
		if ((*head = kwi_col_dup(st, 0)) == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	} else if (r != SQLITE_DONE)
		rc = KWI_DB_FAIL(s, "reading the event log head");
	sqlite3_finalize(st);
	if (rc != KW_OK)
		*found = 0;
	return rc;
}
