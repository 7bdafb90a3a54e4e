/* Versions (list, rollback, prune) and attributes (enabled, soft delete,
 * recover, purge, settings) on real devices. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include <keyward/key.h>
#include <keyward/lifecycle.h>

#include "internal.h"
#include "store/sql.h"
#include "fixtures.h"
#include "kwtest.h"

kw_rc kw_setting_set(kw_store *s, const char *key, const char *value);

#define T0 "2030-01-01T00:00:00Z"

static void at(const char *now)
{
	cr_assert_eq(setenv("KEYWARD_NOW", now, 1), 0);
}

/* KEYWARD_NOW = T0 + days */
static void at_day(int days)
{
	char buf[32];
	struct tm tm;
	time_t t = 1893456000L + (time_t)days * 86400;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	at(buf);
}

static int renew(kw_store *s, const char *name, kw_renew_key key)
{
	kw_version_info v;
	cr_assert_eq(kw_cert_renew(s, name, key, &v), KW_OK, "renew %s: %s", name,
	             kw_error_message());
	if (key == KW_RENEW_REUSE_KEY)
		cr_assert_eq(v.new_key, 0, "renew %s reported a new key for --reuse-key", name);
	if (key == KW_RENEW_NEW_KEY)
		cr_assert_eq(v.new_key, 1, "renew %s reported no new key for --new-key", name);
	return v.version;
}

static json_t *show(kw_store *s, const char *name, int version)
{
	json_t *j = NULL;
	cr_assert_eq(kw_cert_show(s, name, version, &j), KW_OK, "%s", kw_error_message());
	return j;
}

static int current_of(kw_store *s, const char *name)
{
	json_t *j = show(s, name, 0);
	int v = (int)json_integer_value(json_object_get(j, "version"));
	json_decref(j);
	return v;
}

static const char *status_of(const json_t *versions, int version)
{
	for (size_t i = 0; i < json_array_size(versions); i++) {
		json_t *v = json_array_get(versions, i);
		if (json_integer_value(json_object_get(v, "version")) == version)
			return json_string_value(json_object_get(v, "status"));
	}
	return NULL;
}

static int sql_int(kw_store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	cr_assert_eq(sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
	int n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* The CKA_ID (hex) of a PKCS#11 version's key. */
static char *cka_id(kw_store *s, const char *name, int version)
{
	json_t *j = show(s, name, version);
	const char *id = json_string_value(
	    json_object_get(json_object_get(json_object_get(j, "key"), "attributes"), "CKA_ID"));
	cr_assert_not_null(id, "no CKA_ID for %s v%d", name, version);
	char *copy = strdup(id);
	json_decref(j);
	return copy;
}

static void p11_delete_private(const char *id)
{
	cr_assert_eq(kwt_sh("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                    "--delete-object --type privkey --id %s >/dev/null 2>&1",
	                    kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                    kwt_env("KW_TEST_P11_PIN"), id),
	             0);
}

/* ---- what create and renew report ---- */

/* The facts kw_cert_create / kw_cert_renew hand back are what cert show reads
 * from the store afterwards. */
static void assert_made_is_shown(kw_store *s, const char *name, const kw_version_info *m)
{
	json_t *j = show(s, name, m->version);
	json_t *key = json_object_get(j, "key");
	cr_assert_eq(json_integer_value(json_object_get(j, "version")), m->version);
	cr_assert_eq(m->pending,
	             strcmp(json_string_value(json_object_get(j, "status")), "pending") == 0);
	cr_assert_eq(m->key_type,
	             kw_key_type_from_name(json_string_value(json_object_get(key, "type"))));
	cr_assert_eq(m->exportable, json_is_true(json_object_get(key, "exportable")));
	cr_assert_str_eq(m->backend, json_string_value(json_object_get(j, "backend")));
	cr_assert_str_eq(m->subject, json_string_value(json_object_get(j, "subject")));
	const char *sha = json_string_value(json_object_get(j, "thumbprint_sha256"));
	cr_assert_str_eq(m->thumbprint_sha256, sha ? sha : "");
	const char *serial = json_string_value(json_object_get(j, "serial"));
	cr_assert_str_eq(m->serial, serial ? serial : "");
	char buf[32] = "";
	if (m->not_after) {
		struct tm tm;
		gmtime_r(&m->not_after, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
		cr_assert_str_eq(buf, json_string_value(json_object_get(j, "not_after")));
	} else
		cr_assert(!json_is_string(json_object_get(j, "not_after")));
	json_decref(j);
}

Test(lifecycle, create_and_renew_report_the_version_they_made)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	kw_version_info m;
	memset(&m, 0x5a, sizeof(m));
	kw_cert_request req = {
	    .name = "made", .backend = "tpm", .subject = "CN=made.example", .days = 90};
	cr_assert_eq(kw_cert_create(s, &req, &m), KW_OK, "%s", kw_error_message());
	cr_assert_eq(m.version, 1);
	cr_assert_eq(m.previous_version, 0);
	cr_assert_eq(m.new_key, 1);
	cr_assert_eq(m.pending, 0);
	cr_assert_eq(m.exportable, 0);
	cr_assert_str_eq(m.subject, "CN=made.example");
	cr_assert_eq(m.not_after - m.not_before, 90 * 86400);
	assert_made_is_shown(s, "made", &m);

	at_day(10);
	char before[65];
	snprintf(before, sizeof(before), "%s", m.thumbprint_sha256);
	cr_assert_eq(kw_cert_renew(s, "made", KW_RENEW_REUSE_KEY, &m), KW_OK, "%s",
	             kw_error_message());
	cr_assert_eq(m.version, 2);
	cr_assert_eq(m.previous_version, 1);
	cr_assert_eq(m.new_key, 0);
	cr_assert_str_neq(m.thumbprint_sha256, before);
	assert_made_is_shown(s, "made", &m);
	cr_assert_eq(kw_cert_renew(s, "made", KW_RENEW_NEW_KEY, &m), KW_OK, "%s",
	             kw_error_message());
	cr_assert_eq(m.version, 3);
	cr_assert_eq(m.previous_version, 2);
	cr_assert_eq(m.new_key, 1);
	assert_made_is_shown(s, "made", &m);

	/* an external CA issues: the version waits, with a CSR and no certificate */
	kw_cert_request ext = {
	    .name = "ext", .backend = "hsm", .subject = "CN=ext.example", .issuer = "unknown"};
	cr_assert_eq(kw_cert_create(s, &ext, &m), KW_OK, "%s", kw_error_message());
	cr_assert_eq(m.version, 1);
	cr_assert_eq(m.pending, 1);
	cr_assert_str_eq(m.thumbprint_sha256, "");
	cr_assert_eq(m.not_after, 0);
	cr_assert_str_eq(m.subject, "CN=ext.example");
	assert_made_is_shown(s, "ext", &m);

	/* a refusal leaves made as it was */
	memset(&m, 0x5a, sizeof(m));
	cr_assert_eq(kw_cert_renew(s, "nope", KW_RENEW_POLICY, &m), KW_ERR_NOT_FOUND);
	cr_assert_eq(m.version, 0x5a5a5a5a);
	kw_store_close(s);
	free(dir);
}

/* ---- versions ---- */

Test(lifecycle, versions_lists_every_version_oldest_first_marking_current)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	kwt_cert_create_now(dir, "web", "tpm", 90);
	at_day(10);
	cr_assert_eq(renew(s, "web", KW_RENEW_NEW_KEY), 2);
	cr_assert_eq(renew(s, "web", KW_RENEW_REUSE_KEY), 3);
	json_t *list = NULL;
	cr_assert_eq(kw_cert_versions(s, "web", &list), KW_OK, "%s", kw_error_message());
	cr_assert_eq(json_array_size(list), 3);
	for (int i = 0; i < 3; i++) {
		json_t *v = json_array_get(list, (size_t)i), *want = show(s, "web", i + 1);
		cr_assert_eq(json_integer_value(json_object_get(v, "version")), i + 1);
		cr_assert(json_equal(v, want), "version %d differs from cert show", i + 1);
		cr_assert_eq(json_is_true(json_object_get(v, "current")), i == 2);
		json_decref(want);
	}
	cr_assert_str_eq(status_of(list, 1), "superseded");
	cr_assert_str_eq(status_of(list, 2), "superseded");
	cr_assert_str_eq(status_of(list, 3), "active");
	json_decref(list);
	cr_assert_eq(kw_cert_versions(s, "nope", &list), KW_ERR_NOT_FOUND);
	cr_assert_null(list);
	kw_store_close(s);
	free(dir);
}

Test(lifecycle, rollback_makes_an_older_version_current_and_the_provider_follows)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	kwt_cert_create_now(dir, "api", "hsm", 90);
	at_day(5);
	renew(s, "api", KW_RENEW_NEW_KEY);
	json_t *v1 = show(s, "api", 1);
	cr_assert_eq(kw_cert_rollback(s, "api", 1), KW_OK, "%s", kw_error_message());
	cr_assert_eq(current_of(s, "api"), 1);
	json_t *list = NULL;
	cr_assert_eq(kw_cert_versions(s, "api", &list), KW_OK);
	cr_assert_str_eq(status_of(list, 1), "active");
	cr_assert_str_eq(status_of(list, 2), "superseded");
	json_decref(list);
	cr_assert_eq(kwt_events_count(s, "api", "cert.rolled_back"), 1);

	/* the provider's view: the current key is version 1's */
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(dir, "api", 0, &k), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kw_key_version(k), 1);
	size_t len = 0;
	const unsigned char *der = kw_key_cert(k, &len);
	X509 *x = d2i_X509(NULL, &der, (long)len);
	char sha1[41], sha256[65];
	cr_assert_eq(kwi_x509_thumbprints(x, sha1, sha256), KW_OK);
	cr_assert_str_eq(sha256, json_string_value(json_object_get(v1, "thumbprint_sha256")));
	X509_free(x);
	kw_key_free(k);

	/* and forward again */
	cr_assert_eq(kw_cert_rollback(s, "api", 2), KW_OK, "%s", kw_error_message());
	cr_assert_eq(current_of(s, "api"), 2);
	json_decref(v1);
	kw_store_close(s);
	free(dir);
}

Test(lifecycle, rollback_refuses_an_expired_version_and_changes_nothing)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	kwt_cert_create_now(dir, "old", "tpm", 30);
	at_day(20);
	renew(s, "old", KW_RENEW_NEW_KEY);
	at_day(31); /* version 1 ended on day 30 */
	char *before = kwt_store_dump(dir);
	cr_assert_eq(kw_cert_rollback(s, "old", 1), KW_ERR_STATE);
	cr_assert(strstr(kw_error_message(), "expired") != NULL, "%s", kw_error_message());
	char *after = kwt_store_dump(dir);
	cr_assert_str_eq(before, after);
	cr_assert_eq(current_of(s, "old"), 2);
	/* one second before the end it still works */
	at("2030-01-30T23:59:59Z");
	cr_assert_eq(kw_cert_rollback(s, "old", 1), KW_OK, "%s", kw_error_message());
	free(before);
	free(after);
	kw_store_close(s);
	free(dir);
}

Test(lifecycle, rollback_refuses_a_version_whose_key_is_gone)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	kwt_cert_create_now(dir, "gone", "hsm", 90);
	at_day(3);
	renew(s, "gone", KW_RENEW_NEW_KEY);
	char *id = cka_id(s, "gone", 1);
	p11_delete_private(id);
	char *before = kwt_store_dump(dir);
	int objects = kwt_p11_object_count();
	cr_assert_eq(kw_cert_rollback(s, "gone", 1), KW_ERR_STATE);
	cr_assert(strstr(kw_error_message(), "key is gone") != NULL, "%s", kw_error_message());
	char *after = kwt_store_dump(dir);
	cr_assert_str_eq(before, after);
	cr_assert_eq(kwt_p11_object_count(), objects);
	free(before);
	free(after);
	free(id);
	kw_store_close(s);
	free(dir);
}

Test(lifecycle, rollback_refuses_bad_versions)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	kwt_cert_create_now(dir, "b", "tpm", 90);
	char *before = kwt_store_dump(dir);
	cr_assert_eq(kw_cert_rollback(s, "b", 1), KW_ERR_STATE); /* already current */
	cr_assert_eq(kw_cert_rollback(s, "b", 7), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(), "no version 7") != NULL, "%s", kw_error_message());
	cr_assert(strstr(kw_error_message(), "keyward ") == NULL &&
	              strstr(kw_error_message(), "--") == NULL,
	          "a core message names no CLI command or flag: %s", kw_error_message());
	cr_assert_eq(kw_error_hint(), KW_HINT_CERT_VERSIONS);
	cr_assert_str_eq(kw_error_hint_arg(), "b");
	cr_assert_eq(kw_cert_rollback(s, "b", 0), KW_ERR_USAGE);
	cr_assert_eq(kw_cert_rollback(s, "nope", 1), KW_ERR_NOT_FOUND);
	char *after = kwt_store_dump(dir);
	cr_assert_str_eq(before, after);
	free(before);
	free(after);
	kw_store_close(s);
	free(dir);
}

/* ---- pruning ---- */

Test(lifecycle, history_limit_prunes_the_oldest_and_destroys_their_keys)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	int objects0 = kwt_p11_object_count();
	kwt_cert_create_now(dir, "p", "hsm", 90);
	kwt_policy_patch(s, "p", "{\"history_limit\": 2}");
	char *id1 = cka_id(s, "p", 1);
	at_day(1);
	renew(s, "p", KW_RENEW_NEW_KEY);
	cr_assert_eq(kwt_p11_object_count(), objects0 + 6, "two keys with certificates");
	char *id2 = cka_id(s, "p", 2);
	at_day(2);
	renew(s, "p", KW_RENEW_NEW_KEY);
	/* version 1 went, and its key, public key and certificate objects */
	cr_assert_eq(sql_int(s, "SELECT COUNT(*) FROM versions"), 2);
	cr_assert_eq(sql_int(s, "SELECT MIN(version) FROM versions"), 2);
	cr_assert_eq(kwt_p11_object_count(), objects0 + 6);
	char *left = kwt_sh_out("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                        "--list-objects 2>/dev/null",
	                        kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                        kwt_env("KW_TEST_P11_PIN"));
	cr_assert(strstr(left, id1) == NULL, "version 1's key %s is still on the token", id1);
	cr_assert(strstr(left, id2) != NULL, "version 2's key %s went too early", id2);
	cr_assert_eq(kwt_events_count(s, "p", "cert.pruned"), 1);
	json_t *events = NULL;
	cr_assert_eq(kw_events_list(s, "p", &events), KW_OK);
	json_t *pruned = NULL;
	for (size_t i = 0; i < json_array_size(events); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(events, i), "type")),
		           "cert.pruned") == 0)
			pruned = json_array_get(events, i);
	cr_assert_not_null(pruned);
	json_t *gone = json_object_get(json_object_get(pruned, "details"), "versions");
	cr_assert_eq(json_array_size(gone), 1);
	cr_assert_eq(json_integer_value(json_array_get(gone, 0)), 1);
	json_decref(events);
	/* the kept ones still sign */
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(dir, "p", 2, &k), KW_OK, "%s", kw_error_message());
	kw_key_free(k);
	free(left);
	free(id1);
	free(id2);
	kw_store_close(s);
	free(dir);
}

Test(lifecycle, pruning_keeps_a_key_a_remaining_version_still_uses)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	int objects0 = kwt_p11_object_count();
	kwt_cert_create_now(dir, "shared", "hsm", 90);
	kwt_policy_patch(s, "shared", "{\"history_limit\": 2}");
	at_day(1);
	renew(s, "shared", KW_RENEW_REUSE_KEY);
	at_day(2);
	renew(s, "shared", KW_RENEW_REUSE_KEY);
	/* version 1 is gone but its key is versions 2 and 3's */
	cr_assert_eq(sql_int(s, "SELECT COUNT(*) FROM versions"), 2);
	cr_assert_eq(kwt_p11_object_count(), objects0 + 3);
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(dir, "shared", 0, &k), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kw_key_version(k), 3);
	kw_key_free(k);
	kw_store_close(s);
	free(dir);
}

Test(lifecycle, pruning_after_a_rollback_keeps_the_current_version)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	kwt_cert_create_now(dir, "rb", "tpm", 90);
	at_day(1);
	renew(s, "rb", KW_RENEW_NEW_KEY);
	cr_assert_eq(kw_cert_rollback(s, "rb", 1), KW_OK, "%s", kw_error_message());
	kwt_policy_patch(s, "rb", "{\"history_limit\": 2}");
	at_day(2);
	cr_assert_eq(renew(s, "rb", KW_RENEW_NEW_KEY), 3);
	/* newest two: 3 (current) and 2 */
	cr_assert_eq(sql_int(s, "SELECT COUNT(*) FROM versions"), 2);
	cr_assert_eq(sql_int(s, "SELECT COUNT(*) FROM versions WHERE version = 1"), 0);
	cr_assert_eq(kw_cert_rollback(s, "rb", 2), KW_OK, "%s", kw_error_message());
	at_day(3);
	cr_assert_eq(renew(s, "rb", KW_RENEW_NEW_KEY), 4);
	cr_assert_eq(sql_int(s, "SELECT COUNT(*) FROM versions WHERE version IN (3, 4)"), 2);
	kw_store_close(s);
	free(dir);
}

/* ---- attributes ---- */

Test(lifecycle, a_disabled_certificate_is_refused_by_the_provider)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	kwt_cert_create_now(dir, "off", "tpm", 90);
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(dir, "off", 0, &k), KW_OK, "%s", kw_error_message());
	kw_key_free(k);
	k = NULL;
	cr_assert_eq(kw_cert_set_enabled(s, "off", 0), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kw_key_open(dir, "off", 0, &k), KW_ERR_STATE);
	cr_assert_null(k);
	cr_assert(strstr(kw_error_message(), "disabled") != NULL, "%s", kw_error_message());
	cr_assert_eq(kwt_events_count(s, "off", "cert.disabled"), 1);
	/* unchanged: no second event */
	cr_assert_eq(kw_cert_set_enabled(s, "off", 0), KW_OK);
	cr_assert_eq(kwt_events_count(s, "off", "cert.disabled"), 1);
	cr_assert_eq(kw_cert_set_enabled(s, "off", 1), KW_OK);
	cr_assert_eq(kwt_events_count(s, "off", "cert.enabled"), 1);
	cr_assert_eq(kw_key_open(dir, "off", 0, &k), KW_OK, "%s", kw_error_message());
	kw_key_free(k);
	cr_assert_eq(kw_cert_set_enabled(s, "nope", 1), KW_ERR_NOT_FOUND);
	kw_store_close(s);
	free(dir);
}

Test(lifecycle, soft_delete_hides_then_recover_brings_back)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	kwt_cert_create_now(dir, "soft", "hsm", 90);
	kwt_cert_create_now(dir, "other", "tpm", 90);
	int objects = kwt_p11_object_count();
	cr_assert_eq(kw_cert_soft_delete(s, "soft"), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kwt_p11_object_count(), objects, "soft delete must keep the keys");
	json_t *j = NULL, *list = NULL;
	cr_assert_eq(kw_cert_show(s, "soft", 0, &j), KW_ERR_NOT_FOUND);
	cr_assert_eq(kw_cert_show(s, "soft", 1, &j), KW_ERR_NOT_FOUND);
	cr_assert_eq(kw_cert_list(s, &list), KW_OK);
	cr_assert_eq(json_array_size(list), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "name")),
	                 "other");
	json_decref(list);
	char *ref = NULL;
	cr_assert_eq(kw_cert_key_ref(s, "soft", NULL, &ref), KW_ERR_NOT_FOUND);
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(dir, "soft", 0, &k), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(), "unknown certificate") != NULL, "%s",
	          kw_error_message());
	kw_version_info v;
	cr_assert_eq(kw_cert_renew(s, "soft", KW_RENEW_NEW_KEY, &v), KW_ERR_NOT_FOUND);
	cr_assert_str_eq(kw_error_message(), "certificate 'soft' is deleted");
	cr_assert_eq(kw_error_hint(), KW_HINT_CERT_RECOVER);
	cr_assert_str_eq(kw_error_hint_arg(), "soft");
	cr_assert_eq(kwt_p11_object_count(), objects, "renewing a deleted cert made a key");
	/* the name stays taken */
	kwt_result r;
	kwt_kw(&r, dir, "cert", "create", "soft", "--backend", "hsm", "--subject", "CN=x", NULL);
	cr_assert_eq(r.status, 1, "%s", r.err);
	kwt_result_free(&r);

	cr_assert_eq(kw_cert_list_deleted(s, &list), KW_OK);
	cr_assert_eq(json_array_size(list), 1);
	json_t *d = json_array_get(list, 0);
	cr_assert_str_eq(json_string_value(json_object_get(d, "name")), "soft");
	cr_assert_str_eq(json_string_value(json_object_get(d, "deleted")), T0);
	cr_assert_str_eq(json_string_value(json_object_get(d, "purge_after")),
	                 "2030-04-01T00:00:00Z"); /* 90 days */
	json_decref(list);
	cr_assert_eq(kw_cert_soft_delete(s, "soft"), KW_ERR_STATE);
	cr_assert_eq(kw_cert_recover(s, "other"), KW_ERR_STATE);

	cr_assert_eq(kw_cert_recover(s, "soft"), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kw_key_open(dir, "soft", 0, &k), KW_OK, "%s", kw_error_message());
	kw_key_free(k);
	cr_assert_eq(kw_cert_list_deleted(s, &list), KW_OK);
	cr_assert_eq(json_array_size(list), 0);
	json_decref(list);
	cr_assert_eq(kwt_events_count(s, "soft", "cert.deleted"), 1);
	cr_assert_eq(kwt_events_count(s, "soft", "cert.recovered"), 1);
	kw_store_close(s);
	free(dir);
}

Test(lifecycle, purge_destroys_the_keys_of_every_version)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	int objects0 = kwt_p11_object_count();
	kwt_cert_create_now(dir, "h", "hsm", 90);
	kwt_cert_create_now(dir, "t", "tpm", 90);
	at_day(1);
	renew(s, "h", KW_RENEW_NEW_KEY);
	renew(s, "t", KW_RENEW_NEW_KEY);
	cr_assert_eq(kwt_p11_object_count(), objects0 + 6);
	cr_assert_eq(kw_cert_soft_delete(s, "h"), KW_OK);
	cr_assert_eq(kw_cert_soft_delete(s, "t"), KW_OK);
	cr_assert_eq(kw_cert_purge(s, "h", NULL), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kw_cert_purge(s, "t", NULL), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kwt_p11_object_count(), objects0, "purge left objects on the token");
	/* the TPM's wrapped blobs lived only in the versions table */
	cr_assert_eq(sql_int(s, "SELECT COUNT(*) FROM versions"), 0);
	cr_assert_eq(sql_int(s, "SELECT COUNT(*) FROM certs"), 0);
	cr_assert_eq(kwt_events_count(s, "t", "cert.purged"), 1);
	json_t *list = NULL;
	cr_assert_eq(kw_cert_list_deleted(s, &list), KW_OK);
	cr_assert_eq(json_array_size(list), 0);
	json_decref(list);
	cr_assert_eq(kw_cert_purge(s, "t", NULL), KW_ERR_NOT_FOUND);
	/* the name is free again */
	kwt_cert_create_now(dir, "t", "tpm", 90);
	kw_store_close(s);
	free(dir);
}

Test(lifecycle, purge_with_the_device_down_changes_nothing)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	at(T0);
	kwt_cert_create_now(dir, "down", "hsm", 90);
	cr_assert_eq(kw_cert_soft_delete(s, "down"), KW_OK);
	int objects = kwt_p11_object_count();
	char *before = kwt_store_dump(dir);
	/* a PIN file that no longer holds the PIN: the token refuses */
	char *pin = kwt_read_file(kwt_env("KW_TEST_P11_PIN_FILE"), NULL);
	free(kwt_write_file(kwt_env("KW_TEST_TMP"), "user.pin", "999999\n", 7, 0600));
	kw_rc rc = kw_cert_purge(s, "down", NULL);
	free(kwt_write_file(kwt_env("KW_TEST_TMP"), "user.pin", pin, strlen(pin), 0600));
	cr_assert_eq(rc, KW_ERR_AUTH, "%s", kw_error_message());
	char *after = kwt_store_dump(dir);
	cr_assert_str_eq(before, after);
	cr_assert_eq(kwt_p11_object_count(), objects);
	free(before);
	free(after);
	free(pin);
	kw_store_close(s);
	free(dir);
}

/* ---- settings ---- */

Test(lifecycle, retention_days_is_a_validated_setting)
{
	char *dir;
	kw_store *s = kwt_store_open_new(&dir);
	json_t *all = NULL;
	cr_assert_eq(kw_settings_list(s, &all), KW_OK);
	cr_assert_eq(json_integer_value(json_object_get(all, "retention_days")), 90);
	json_decref(all);
	char *before = kwt_store_dump(dir);
	cr_assert_eq(kw_setting_set(s, "retention_days", "-1"), KW_ERR_USAGE);
	cr_assert_eq(kw_setting_set(s, "retention_days", "12x"), KW_ERR_USAGE);
	cr_assert_eq(kw_setting_set(s, "retention_days", ""), KW_ERR_USAGE);
	cr_assert_eq(kw_setting_set(s, "event_head", "1"), KW_ERR_USAGE);
	char *after = kwt_store_dump(dir);
	cr_assert_str_eq(before, after);
	cr_assert_eq(kw_setting_set(s, "retention_days", "7"), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kw_settings_list(s, &all), KW_OK);
	cr_assert_eq(json_integer_value(json_object_get(all, "retention_days")), 7);
	json_decref(all);
	cr_assert_eq(kwt_events_count(s, NULL, "setting.changed"), 1);
	at(T0);
	kwt_cert_create_now(dir, "r", "tpm", 90);
	cr_assert_eq(kw_cert_soft_delete(s, "r"), KW_OK);
	json_t *list = NULL;
	cr_assert_eq(kw_cert_list_deleted(s, &list), KW_OK);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "purge_after")),
	                 "2030-01-08T00:00:00Z");
	json_decref(list);
	free(before);
	free(after);
	kw_store_close(s);
	free(dir);
}
