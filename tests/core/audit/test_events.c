/* The event log: every change appends; tampering is caught by audit verify. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

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
