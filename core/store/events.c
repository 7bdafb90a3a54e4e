/* see store/store_lifecycle.h: the event log's rows (the chain is audit/events.c's) */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	if (r != SQLITE_DONE)
		return KWI_DB_FAIL(s, "recording the event log head");
	/* from now on the anchor file must exist (kwi_store_anchor_get: marked) */
	KW_GUARD(kwi_store_prepare(
	    s, "INSERT OR IGNORE INTO settings (key, value) VALUES ('audit_anchor', 'file')", &st));
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return KWI_DB_FAIL(s, "recording the event log head");
	/* "SEQ:HASH" -> "SEQ HASH" */
	snprintf(s->anchor_due, sizeof(s->anchor_due), "%s", head);
	char *colon = strchr(s->anchor_due, ':');
	if (colon)
		*colon = ' ';
	return sqlite3_get_autocommit(s->db) ? kwi_store_anchor_flush(s) : KW_OK;
}

#define ANCHOR_FILE  "audit.anchor"
#define ANCHOR_MAGIC "keyward audit anchor v1\n"

char *kwi_store_anchor_path(const kw_store *s)
{
	char *p = NULL;
	return asprintf(&p, "%s/" ANCHOR_FILE, s->dir) < 0 ? NULL : p;
}

/* Reads the anchor file: 1 and its seq and hash, 0 when there is none,
 * -1 when it cannot be read (errno) or does not parse (errno 0). */
static int anchor_read(const char *path, long long *seq, char hash[65])
{
	char text[256] = {0};
	size_t m = strlen(ANCHOR_MAGIC);
	*seq = 0;
	hash[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	ssize_t got = read(fd, text, sizeof(text) - 1);
	close(fd);
	errno = 0;
	if (got <= (ssize_t)m || strncmp(text, ANCHOR_MAGIC, m) != 0 ||
	    sscanf(text + m, "%lld %64[0-9a-f]", seq, hash) != 2 || strlen(hash) != 64 || *seq < 1)
		return -1;
	return 1;
}

/* Under the anchor's lock (processes commit in turn but anchor after the
 * commit, so they may arrive out of order): only a newer head replaces it. */
static int anchor_replace(const char *path, const char *due, int *err)
{
	char *tmp = NULL, *lock = NULL, text[256], hash[65];
	long long have = 0;
	int ok = 0, n = snprintf(text, sizeof(text), ANCHOR_MAGIC "%s\n", due);
	*err = ENOMEM;
	if (asprintf(&tmp, "%s.%ld.tmp", path, (long)getpid()) < 0)
		tmp = NULL;
	if (asprintf(&lock, "%s.lock", path) < 0)
		lock = NULL;
	int lfd = tmp && lock ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
	if (tmp && lock && lfd < 0)
		*err = errno;
	if (lfd >= 0 && flock(lfd, LOCK_EX) != 0)
		*err = errno;
	else if (lfd >= 0 && anchor_read(path, &have, hash) == 1 && have >= strtoll(due, NULL, 10))
		ok = 1; /* someone anchored a later head already */
	else if (lfd >= 0) {
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		ok = fd >= 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
		*err = errno;
		if (fd >= 0 && close(fd) != 0 && ok) {
			ok = 0;
			*err = errno;
		}
		if (ok && rename(tmp, path) != 0) {
			ok = 0;
			*err = errno;
		}
		if (!ok)
			unlink(tmp);
	}
	if (lfd >= 0)
		close(lfd); /* and the lock with it */
	free(tmp);
	free(lock);
	return ok;
}

kw_rc kwi_store_anchor_flush(kw_store *s)
{
	if (s->anchor_due[0] == '\0')
		return KW_OK;
	char *path = kwi_store_anchor_path(s);
	if (path == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	int err = 0;
	kw_rc rc = KW_OK;
	if (anchor_replace(path, s->anchor_due, &err))
		s->anchor_due[0] = '\0';
	else
		rc = KW_FAIL(KW_ERR_IO,
		             "the change is in the store, but its event log anchor %s could not "
		             "be written: %s",
		             path, strerror(err));
	free(path);
	return rc;
}

kw_rc kwi_store_anchor_get(kw_store *s, int64_t *seq, char hash[65], int *found, int *marked)
{
	*found = *marked = 0;
	*seq = 0;
	hash[0] = '\0';
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s, "SELECT 1 FROM settings WHERE key = 'audit_anchor'", &st));
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return KWI_DB_FAIL(s, "reading the event log anchor setting");
	*marked = r == SQLITE_ROW;
	char *path = kwi_store_anchor_path(s);
	if (path == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	kw_rc rc = KW_OK;
	long long q = 0;
	int got = anchor_read(path, &q, hash);
	if (got < 0 && errno != 0)
		rc = KW_FAIL(KW_ERR_IO, "cannot read the event log anchor %s: %s", path,
		             strerror(errno));
	else if (got < 0)
		rc = KW_FAIL(KW_ERR_STORE, "the event log anchor %s is not readable", path);
	*seq = q;
	*found = got == 1;
	free(path);
	return rc;
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
