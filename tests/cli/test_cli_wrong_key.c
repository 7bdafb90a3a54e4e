/*
 * A key that does not match its certificate is never used (issue 14, item
 * 2). The attack: a store row edited so that one certificate's version
 * points at another certificate's key. cert verify said "certificate
 * matches: NO" and exited 0; cert csr emitted a CSR for CN=tp on the other
 * key; cert renew --reuse-key issued a certificate for CN=tp on it, and a
 * root CA re-issued itself (CA:TRUE) on a foreign key. current_version = 99
 * made cert list drop the certificate without a word.
 * Each use now refuses with one line, exit 1, an event, and the store and
 * the token as they were (but for that event).
 */
#include "cli_test.h"

/* web's (or root's) current version now names other's key. */
static void swap_key(const char *store, const char *victim, const char *donor)
{
	cr_assert_eq(cli_status("sqlite3 '%s/keyward.db' \"UPDATE versions SET key_ref = (SELECT "
	                        "v.key_ref FROM versions v JOIN certs c ON c.id = v.cert_id WHERE "
	                        "c.name = '%s') WHERE cert_id = (SELECT id FROM certs WHERE name "
	                        "= '%s')\"",
	                        store, donor, victim),
	             0);
}

/* The store without its event log, the token's object count. */
static char *dump_no_events(const char *store)
{
	return cli_out("sqlite3 '%s/keyward.db' .dump | grep -v -e '^INSERT INTO events ' -e "
	               "\"^INSERT INTO settings VALUES('event_head'\"",
	               store);
}

static void refused_with_event(const char *store, const char *name, const char *const *args)
{
	kwt_result r;
	char *before = dump_no_events(store);
	int objects = kwt_p11_object_count();
	int events = cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = "
	                                  "'cert.key_mismatch'");
	cli_runv(&r, NULL, store, args);
	cli_assert_error(&r, 1, cli_args_str(args));
	cli_assert_err_has(&r, "not the certificate's key", cli_args_str(args));
	cr_assert_str_eq(r.out, "", "%s printed: %s", cli_args_str(args), r.out);
	kwt_result_free(&r);
	char *after = dump_no_events(store);
	cr_assert_str_eq(after, before, "%s changed the store", cli_args_str(args));
	cr_assert_eq(kwt_p11_object_count(), objects, "%s changed the token", cli_args_str(args));
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = "
	                                  "'cert.key_mismatch'"),
	             events + 1, "%s recorded no cert.key_mismatch event", cli_args_str(args));
	char *who = cli_out("sqlite3 '%s/keyward.db' \"SELECT cert FROM events WHERE type = "
	                    "'cert.key_mismatch' ORDER BY seq DESC LIMIT 1\"",
	                    store);
	cr_assert_str_eq(who, name);
	free(who);
	free(before);
	free(after);
}

Test(wrong_key, a_swapped_key_neither_verifies_nor_signs_a_csr_nor_renews)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	cli_create(store, CLI_NOW, "tp", "hsm", "ec-p256", "CN=tp", 30, NULL);
	cli_create(store, CLI_NOW, "other", "hsm", "ec-p256", "CN=other", 30, NULL);
	swap_key(store, "tp", "other");

	/* the report is printed (it is what was found), then the failure */
	cli_runv(&r, NULL, store, CLI_ARGS("cert", "verify", "tp"));
	cr_assert_eq(r.status, 1, "cert verify: exit %d", r.status);
	cr_assert_eq(kwt_count_lines(r.err), 1, "%s", r.err);
	cli_assert_err_has(&r, "not the certificate's key", "cert verify");
	cr_assert(strstr(r.out, "certificate matches: NO"), "%s", r.out);
	kwt_result_free(&r);

	refused_with_event(store, "tp", CLI_ARGS("cert", "csr", "tp"));
	refused_with_event(store, "tp", CLI_ARGS("cert", "renew", "tp", "--reuse-key"));
	/* other's own key still does both */
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "csr", "other"));
	cr_assert(strstr(r.out, "BEGIN CERTIFICATE REQUEST"), "%s", r.out);
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "verify", "other"));
	kwt_result_free(&r);
	free(store);
}

Test(wrong_key, a_root_ca_does_not_reissue_itself_on_a_foreign_key)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	cli_ok(
	    &r, NULL, store,
	    CLI_ARGS("cert", "create", "root", "--backend", "hsm", "--subject", "CN=Root", "--ca"));
	kwt_result_free(&r);
	cli_create(store, CLI_NOW, "other", "hsm", "ec-p256", "CN=other", 30, NULL);
	swap_key(store, "root", "other");
	refused_with_event(store, "root", CLI_ARGS("cert", "renew", "root", "--reuse-key"));
	free(store);
}

Test(wrong_key, a_missing_current_version_is_listed_and_fails_the_listing)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	cli_create(store, CLI_NOW, "a", "hsm", "ec-p256", "CN=a", 30, NULL);
	cli_create(store, CLI_NOW, "b", "hsm", "ec-p256", "CN=b", 30, NULL);
	cr_assert_eq(cli_status("sqlite3 '%s/keyward.db' \"UPDATE certs SET current_version = 99 "
	                        "WHERE name = 'a'\"",
	                        store),
	             0);
	/* every certificate is listed, the broken one named on stderr */
	cli_runv(&r, NULL, store, CLI_ARGS("cert", "list"));
	cr_assert_eq(r.status, 1, "cert list: exit %d", r.status);
	cr_assert_eq(kwt_count_lines(r.err), 1, "%s", r.err);
	cli_assert_err_has(&r, "certificate 'a' version 99", "cert list");
	cr_assert(strstr(r.out, "\na ") && strstr(r.out, "missing"), "%s", r.out);
	cr_assert(strstr(r.out, "\nb "), "b is not listed: %s", r.out);
	kwt_result_free(&r);
	cli_runv(&r, NULL, store, CLI_ARGS("cert", "list", "--json"));
	cr_assert_eq(r.status, 1);
	json_t *list = cli_json(r.out, "cert list --json");
	cr_assert_eq(json_array_size(list), 2);
	cr_assert_str_eq(cli_js(json_array_get(list, 0), "status"), "missing");
	json_decref(list);
	kwt_result_free(&r);
	/* and doctor names it */
	cli_runv(&r, NULL, store, CLI_ARGS("doctor"));
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.out, "current version 99") || strstr(r.err, "current version 99"),
	          "%s%s", r.out, r.err);
	kwt_result_free(&r);
	free(store);
}
