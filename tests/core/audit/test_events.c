/* The event log: every change appends; tampering is caught by audit verify. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>
#include <unistd.h>

#include <keyward/lifecycle.h>

#include "internal.h"
#include "store/sql.h"
#include "kwtest.h"

static kw_store *store_with_events(char **dir, int n)
{
	char *base = kwt_tmpdir("ev");
	int created;
	kw_store *s = NULL;
	cr_assert(asprintf(dir, "%s/s", base) > 0);
	free(base);
	cr_assert_eq(kw_store_init(*dir, &created), KW_OK);
	cr_assert_eq(kw_store_open(*dir, &s), KW_OK);
	kw_store_set_actor(s, "test");
	for (int i = 1; i <= n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "c%d", i);
		cr_assert_eq(kwi_event_record(s, "test.event", name, i, json_pack("{s:i}", "n", i)),
		             KW_OK, "%s", kw_error_message());
	}
	return s;
}

static json_t *verify(kw_store *s)
{
	json_t *r = NULL;
	cr_assert_eq(kw_audit_verify(s, &r), KW_OK, "%s", kw_error_message());
	return r;
}

static void expect_broken(kw_store *s, int seq, const char *reason)
{
	json_t *r = verify(s);
	cr_assert(json_is_false(json_object_get(r, "ok")), "tampering not caught");
	cr_assert_eq(json_integer_value(json_object_get(r, "first_broken_seq")), seq);
	cr_assert(strstr(json_string_value(json_object_get(r, "reason")), reason) != NULL, "%s",
	          json_string_value(json_object_get(r, "reason")));
	json_decref(r);
}

static void sql(kw_store *s, const char *q)
{
	cr_assert_eq(sqlite3_exec(s->db, q, NULL, NULL, NULL), SQLITE_OK, "%s", q);
}

Test(events, an_intact_log_verifies_and_lists_in_order)
{
	char *dir;
	kw_store *s = store_with_events(&dir, 5);
	json_t *r = verify(s);
	cr_assert(json_is_true(json_object_get(r, "ok")));
	cr_assert_eq(json_integer_value(json_object_get(r, "records")), 5);
	json_decref(r);
	json_t *list = NULL;
	cr_assert_eq(kw_events_list(s, NULL, &list), KW_OK);
	cr_assert_eq(json_array_size(list), 5);
	json_t *third = json_array_get(list, 2);
	cr_assert_eq(json_integer_value(json_object_get(third, "seq")), 3);
	cr_assert_str_eq(json_string_value(json_object_get(third, "actor")), "test");
	cr_assert_str_eq(json_string_value(json_object_get(third, "cert")), "c3");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(third, "details"), "n")),
	             3);
	json_decref(list);
	cr_assert_eq(kw_events_list(s, "c2", &list), KW_OK);
	cr_assert_eq(json_array_size(list), 1);
	json_decref(list);
	kw_store_close(s);
	free(dir);
}

Test(events, an_edited_record_is_caught)
{
	char *dir;
	kw_store *s = store_with_events(&dir, 5);
	sql(s, "UPDATE events SET details = '{\"n\":99}' WHERE seq = 3");
	expect_broken(s, 3, "edited");
	kw_store_close(s);
	free(dir);
}

Test(events, an_edited_time_or_actor_is_caught)
{
	char *dir;
	kw_store *s = store_with_events(&dir, 4);
	sql(s, "UPDATE events SET actor = 'someone-else' WHERE seq = 2");
	expect_broken(s, 2, "edited");
	kw_store_close(s);
	free(dir);
}

Test(events, a_deleted_record_is_caught)
{
	char *dir;
	kw_store *s = store_with_events(&dir, 5);
	sql(s, "DELETE FROM events WHERE seq = 2");
	expect_broken(s, 2, "missing");
	kw_store_close(s);
	free(dir);
}

Test(events, reordered_records_are_caught)
{
	char *dir;
	kw_store *s = store_with_events(&dir, 5);
	/* swap the contents of records 2 and 3, keeping the sequence numbers */
	sql(s, "UPDATE events SET seq = -2 WHERE seq = 2;"
	       "UPDATE events SET seq = 2 WHERE seq = 3;"
	       "UPDATE events SET seq = 3 WHERE seq = -2;");
	expect_broken(s, 2, "does not follow");
	kw_store_close(s);
	free(dir);
}

Test(events, a_cut_tail_is_caught)
{
	char *dir;
	kw_store *s = store_with_events(&dir, 5);
	sql(s, "DELETE FROM events WHERE seq = 5");
	expect_broken(s, 5, "truncated");
	kw_store_close(s);
	free(dir);
}

Test(events, a_rebuilt_hash_without_the_chain_is_caught)
{
	char *dir;
	kw_store *s = store_with_events(&dir, 3);
	/* an attacker who copies record 3's hash onto an edited record 2 breaks the link to 3 */
	sql(s, "UPDATE events SET hash = (SELECT hash FROM events WHERE seq = 3) WHERE seq = 2");
	expect_broken(s, 2, "edited");
	kw_store_close(s);
	free(dir);
}

Test(events, changes_through_the_cli_are_logged_and_verify_exits_by_state)
{
	char *store = kwt_store_new(0, 1);
	kwt_result r;
	kwt_kw(&r, store, "cert", "create", "web", "--backend", "hsm", "--subject", "CN=web", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	kwt_kw(&r, store, "cert", "renew", "web", NULL);
	kwt_result_free(&r);
	kwt_kw(&r, store, "events", "--json", NULL);
	cr_assert_eq(r.status, 0);
	json_t *list = json_loads(r.out, 0, NULL);
	kwt_result_free(&r);
	cr_assert_eq(json_array_size(list), 3, "backend.added, cert.created, cert.renewed");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "type")),
	                 "backend.added");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 1), "type")),
	                 "cert.created");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 2), "type")),
	                 "cert.renewed");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(list, 2), "version")), 2);
	json_decref(list);
	kwt_kw(&r, store, "audit", "verify", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "intact: 3 records") != NULL, "%s", r.out);
	kwt_result_free(&r);
	cr_assert_eq(
	    kwt_sh("sqlite3 '%s/keyward.db' \"UPDATE events SET type='x' WHERE seq=2\"", store), 0);
	kwt_kw(&r, store, "audit", "verify", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "keyward: event log broken at record 2") == r.err, "%s", r.err);
	kwt_result_free(&r);
	free(store);
}

/* ---- the anchor outside the database (issue 14, item 8) ----
 * The attacker below writes keyward.db and nothing else: the three attacks
 * that made `audit verify` say "intact" before the anchor existed. */

/* Rebuilds the whole chain from record 1 the way keyward hashes it (the
 * format is in audit/events.c: unkeyed, so anyone can). */
static void rebuild_chain(kw_store *s)
{
	sqlite3_stmt *st = NULL;
	char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
	cr_assert_eq(sqlite3_prepare_v2(s->db,
	                                "SELECT seq, at, type, COALESCE(cert, ''), "
	                                "COALESCE(version, 0), actor, details FROM events "
	                                "ORDER BY seq",
	                                -1, &st, NULL),
	             SQLITE_OK);
	cr_assert_eq(sodium_init() >= 0, 1);
	while (sqlite3_step(st) == SQLITE_ROW) {
		long long seq = sqlite3_column_int64(st, 0), at = sqlite3_column_int64(st, 1);
		const char *type = (const char *)sqlite3_column_text(st, 2);
		const char *cert = (const char *)sqlite3_column_text(st, 3);
		int version = sqlite3_column_int(st, 4);
		const char *actor = (const char *)sqlite3_column_text(st, 5);
		const char *details = (const char *)sqlite3_column_text(st, 6);
		char *text = NULL, hex[65], *q = NULL;
		unsigned char h[32];
		int n = asprintf(
		    &text, "keyward-event-v1\n%s\n%lld\n%lld\n%zu:%s\n%zu:%s\n%d\n%zu:%s\n%zu:%s",
		    prev, seq, at, strlen(type), type, strlen(cert), cert, version, strlen(actor),
		    actor, strlen(details), details);
		cr_assert(n > 0);
		crypto_generichash(h, sizeof(h), (unsigned char *)text, (size_t)n, NULL, 0);
		for (int i = 0; i < 32; i++)
			sprintf(hex + 2 * i, "%02x", h[i]);
		cr_assert(
		    asprintf(&q, "UPDATE events SET prev_hash = '%s', hash = '%s' WHERE seq = %lld",
		             prev, hex, seq) > 0);
		sql(s, q);
		snprintf(prev, sizeof(prev), "%s", hex);
		free(q);
		free(text);
	}
	sqlite3_finalize(st);
	char *q = NULL;
	cr_assert(asprintf(&q, "UPDATE settings SET value = (SELECT seq || ':' || hash FROM events "
	                       "ORDER BY seq DESC LIMIT 1) WHERE key = 'event_head'") > 0);
	sql(s, q);
	free(q);
}

Test(events, a_rebuilt_chain_after_an_edit_is_caught_by_the_anchor)
{
	char *dir;
	kw_store *s = store_with_events(&dir, 5);
	sql(s, "UPDATE events SET details = '{\"n\":33}' WHERE seq = 3");
	rebuild_chain(s);
	expect_broken(s, 5, "rewritten");
	kw_store_close(s);
	free(dir);
}

Test(events, a_cut_tail_with_the_head_moved_back_is_caught_by_the_anchor)
{
	char *dir;
	kw_store *s = store_with_events(&dir, 5);
	sql(s, "DELETE FROM events WHERE seq = 5");
	sql(s, "UPDATE settings SET value = (SELECT seq || ':' || hash FROM events WHERE seq = 4) "
	       "WHERE key = 'event_head'");
	expect_broken(s, 5, "truncated");
	kw_store_close(s);
	free(dir);
}

Test(events, an_emptied_log_is_caught_by_the_anchor)
{
	char *dir;
	kw_store *s = store_with_events(&dir, 4);
	sql(s, "DELETE FROM events; DELETE FROM settings WHERE key IN ('event_head', "
	       "'audit_anchor')");
	expect_broken(s, 1, "truncated");
	kw_store_close(s);
	free(dir);
}

Test(events, a_removed_anchor_is_caught_while_the_database_expects_one)
{
	char *dir, *path = NULL;
	kw_store *s = store_with_events(&dir, 2);
	cr_assert(asprintf(&path, "%s/audit.anchor", dir) > 0);
	cr_assert_eq(unlink(path), 0);
	expect_broken(s, 2, "anchor");
	free(path);
	kw_store_close(s);
	free(dir);
}

/* A crash between the commit and the anchor leaves it one step behind: the
 * chain up to it must match, the rest is reported as not yet anchored. */
Test(events, an_anchor_one_commit_behind_is_accepted_and_the_next_event_catches_up)
{
	char *dir, *path = NULL;
	kw_store *s = store_with_events(&dir, 3);
	cr_assert(asprintf(&path, "%s/audit.anchor", dir) > 0);
	char *hash2 = kwt_sh_out("sqlite3 '%s/keyward.db' 'SELECT hash FROM events WHERE seq = 2' "
	                         "| tr -d '\\n'",
	                         dir);
	char text[200];
	snprintf(text, sizeof(text), "keyward audit anchor v1\n2 %s\n", hash2);
	free(kwt_write_file(dir, "audit.anchor", text, strlen(text), 0600));
	json_t *r = verify(s);
	cr_assert(json_is_true(json_object_get(r, "ok")));
	cr_assert_eq(json_integer_value(json_object_get(r, "anchored_through")), 2);
	json_decref(r);
	cr_assert_eq(kwi_event_record(s, "test.event", NULL, 0, NULL), KW_OK);
	r = verify(s);
	cr_assert_eq(json_integer_value(json_object_get(r, "anchored_through")), 4);
	json_decref(r);
	char *now = kwt_read_file(path, NULL);
	cr_assert(now && strncmp(now, "keyward audit anchor v1\n4 ", 26) == 0, "%s", now);
	free(now);
	free(hash2);
	free(path);
	kw_store_close(s);
	free(dir);
}

/* A store from before the anchor (no file, no marker) verifies as before
 * and gets its anchor with the next event. */
Test(events, a_store_without_an_anchor_yet_verifies_and_gets_one)
{
	char *dir, *path = NULL;
	kw_store *s = store_with_events(&dir, 2);
	cr_assert(asprintf(&path, "%s/audit.anchor", dir) > 0);
	cr_assert_eq(unlink(path), 0);
	sql(s, "DELETE FROM settings WHERE key = 'audit_anchor'");
	json_t *r = verify(s);
	cr_assert(json_is_true(json_object_get(r, "ok")));
	cr_assert(json_is_null(json_object_get(r, "anchored_through")));
	json_decref(r);
	cr_assert_eq(kwi_event_record(s, "test.event", NULL, 0, NULL), KW_OK);
	r = verify(s);
	cr_assert_eq(json_integer_value(json_object_get(r, "anchored_through")), 3);
	json_decref(r);
	free(path);
	kw_store_close(s);
	free(dir);
}
