/* see keyward/lifecycle.h and internal.h: the event log */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "store/store_lifecycle.h"
#include <keyward/lifecycle.h>

#define HASH_LEN 32 /* BLAKE2b-256 */
#define GENESIS  "0000000000000000000000000000000000000000000000000000000000000000"

/*
 * Each record's hash covers the previous record's hash and every field of
 * its own, so editing, deleting or reordering any record breaks the chain
 * from there on. The chain is unkeyed: whoever can write the database could
 * rebuild it, cut its tail or empty it. What they cannot rebuild is the
 * anchor kept outside the database (store/events.c: STORE/audit.anchor,
 * the last record's seq and hash, rewritten after each commit): the record
 * it names must be in the chain with that hash. A crash between the commit
 * and the anchor leaves the anchor one transaction behind, which verify
 * accepts (the records after it are reported as not yet anchored). Whoever
 * can write the store directory (its owner, root) can rewrite both: see
 * SECURITY.md.
 */
static kw_rc record_hash(const char *prev, int64_t seq, int64_t at, const char *type,
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

static kw_rc head_get(kw_store *s, int64_t *seq, char prev[2 * HASH_LEN + 1])
{
	int found = 0;
	strcpy(prev, GENESIS);
	return kwi_store_event_last_get(s, seq, prev, &found);
}

static kw_rc head_set(kw_store *s, int64_t seq, const char *hash)
{
	char value[128];
	snprintf(value, sizeof(value), "%lld:%s", (long long)seq, hash);
	return kwi_store_event_head_put(s, value);
}

kw_rc kwi_event_append(kw_store *s, const char *type, const char *cert, int version,
                       json_t *details)
{
	kw_rc rc = KW_OK;
	char prev[2 * HASH_LEN + 1], hash[2 * HASH_LEN + 1];
	int64_t seq = 0;
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
	kwi_event_row row = {.seq = seq,
	                     .at = now,
	                     .type = type,
	                     .cert = cert,
	                     .version = version,
	                     .has_version = version > 0,
	                     .actor = actor,
	                     .details = text,
	                     .prev_hash = prev,
	                     .hash = hash};
	rc = kwi_store_event_add(s, &row);
	if (rc == KW_OK)
		rc = head_set(s, seq, hash);
out:
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

static json_t *event_json(const kwi_event_row *e)
{
	char at[32];
	kwi_time_format(e->at, at, sizeof(at));
	json_t *details = json_loads(e->details, 0, NULL);
	json_t *j = json_pack("{s:I,s:s,s:s,s:s}", "seq", (json_int_t)e->seq, "at", at, "type",
	                      e->type, "actor", e->actor);
	if (j == NULL) {
		json_decref(details);
		return NULL;
	}
	if (e->cert)
		json_object_set_new(j, "cert", json_string(e->cert));
	if (e->has_version)
		json_object_set_new(j, "version", json_integer(e->version));
	json_object_set_new(j, "details", details ? details : json_object());
	json_object_set_new(j, "hash", json_string(e->hash));
	return j;
}

static int list_one(void *ctx, const kwi_event_row *e)
{
	json_array_append_new(ctx, event_json(e));
	return 0;
}

kw_rc kw_events_list(kw_store *s, const char *cert, json_t **out)
{
	kw_error_clear();
	*out = json_array();
	kw_rc rc = kwi_store_event_each(s, cert, list_one, *out);
	if (rc != KW_OK) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

static json_t *broken(int64_t seq, const char *why)
{
	return json_pack("{s:b,s:I,s:s}", "ok", 0, "first_broken_seq", (json_int_t)seq, "reason",
	                 why);
}

/* Checks one row against the chain so far; NULL when it holds. */
static json_t *check_row(const kwi_event_row *e, int64_t want_seq, const char *prev)
{
	char hash[2 * HASH_LEN + 1];
	int64_t seq = e->seq;
	if (seq != want_seq)
		return broken(want_seq,
		              seq > want_seq ? "record missing (deleted)" : "records out of order");
	if (strcmp(e->prev_hash, prev) != 0)
		return broken(seq, "does not follow the previous record (deleted or reordered)");
	if (record_hash(prev, seq, (int64_t)e->at, e->type, e->cert,
	                e->has_version ? e->version : 0, e->actor, e->details, hash) != KW_OK)
		return broken(seq, "cannot compute the hash");
	if (strcmp(hash, e->hash) != 0)
		return broken(seq, "record was edited (hash mismatch)");
	return NULL;
}

static json_t *check_head(kw_store *s, int64_t last, const char *hash)
{
	char want[128], *head = NULL;
	int found = 0;
	snprintf(want, sizeof(want), "%lld:%s", (long long)last, hash);
	if (kwi_store_event_head_get(s, &head, &found) != KW_OK)
		return broken(last, "cannot read the event log head");
	json_t *res = NULL;
	if (found && strcmp(head, want) != 0)
		res = broken(last + 1, "records missing at the end (truncated)");
	else if (!found && last > 0)
		res = broken(last, "the event log head is missing");
	free(head);
	return res;
}

/* The chain walked so far (kw_audit_verify). */
typedef struct {
	char prev[2 * HASH_LEN + 1];
	int64_t n;
	json_t *report;                   /* set at the first broken record */
	int64_t anchor;                   /* the anchored seq (0: none) */
	char at_anchor[2 * HASH_LEN + 1]; /* the chain's hash there */
} walk;

static int verify_one(void *ctx, const kwi_event_row *e)
{
	walk *w = ctx;
	if ((w->report = check_row(e, w->n + 1, w->prev)) != NULL)
		return 1;
	snprintf(w->prev, sizeof(w->prev), "%s", e->hash);
	w->n++;
	if (w->n == w->anchor)
		snprintf(w->at_anchor, sizeof(w->at_anchor), "%s", e->hash);
	return 0;
}

/* The chain against the anchor outside the database; NULL when it holds. */
static json_t *check_anchor(kw_store *s, const walk *w, int found, int marked, const char *hash)
{
	char why[512];
	char *path = kwi_store_anchor_path(s);
	json_t *res = NULL;
	if (!found && marked) {
		snprintf(why, sizeof(why),
		         "the anchor %s is gone while the database says it was written",
		         path ? path : "audit.anchor");
		res = broken(w->n > 0 ? w->n : 1, why);
	} else if (found && w->anchor > w->n) {
		snprintf(why, sizeof(why),
		         "records missing at the end (truncated): the anchor %s names record %lld, "
		         "the log "
		         "ends at %lld",
		         path ? path : "audit.anchor", (long long)w->anchor, (long long)w->n);
		res = broken(w->n + 1, why);
	} else if (found && strcmp(w->at_anchor, hash) != 0) {
		snprintf(why, sizeof(why),
		         "the log up to record %lld was rewritten: its hash is not the one the "
		         "anchor %s keeps",
		         (long long)w->anchor, path ? path : "audit.anchor");
		res = broken(w->anchor, why);
	}
	free(path);
	return res;
}

kw_rc kw_audit_verify(kw_store *s, json_t **report)
{
	walk w = {.prev = GENESIS};
	char anchor_hash[2 * HASH_LEN + 1];
	int found = 0, marked = 0;
	kw_error_clear();
	*report = NULL;
	KW_GUARD(kwi_store_anchor_get(s, &w.anchor, anchor_hash, &found, &marked));
	kw_rc rc = kwi_store_event_each(s, NULL, verify_one, &w);
	if (rc != KW_OK) {
		json_decref(w.report);
		return rc;
	}
	*report = w.report;
	/* a chain that holds may still have been rebuilt, cut or emptied */
	if (*report == NULL)
		*report = check_anchor(s, &w, found, marked, anchor_hash);
	if (*report == NULL)
		*report = check_head(s, w.n, w.prev);
	if (*report == NULL) {
		*report = json_pack("{s:b,s:I}", "ok", 1, "records", (json_int_t)w.n);
		if (*report)
			json_object_set_new(*report, "anchored_through",
			                    found ? json_integer(w.anchor) : json_null());
	} else
		json_object_set_new(*report, "records_checked", json_integer(w.n));
	return *report ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}
