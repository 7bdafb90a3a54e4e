#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <keyward/key.h>

#include "internal.h"
#include "store/sql.h"
#include "kwtest.h"

static char *store_path(void)
{
	char *dir = kwt_tmpdir("store");
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/s", dir) > 0);
	free(dir);
	return p;
}

static char *db_of(const char *store)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/keyward.db", store) > 0);
	return p;
}

static int mode_of(const char *path)
{
	struct stat st;
	cr_assert(stat(path, &st) == 0, "stat %s", path);
	return st.st_mode & 07777;
}

Test(store, init_creates_private_dir_and_db_whatever_the_umask)
{
	char *s = store_path();
	int created = 0;
	mode_t old = umask(0);
	cr_assert_eq(kw_store_init(s, &created), KW_OK, "%s", kw_error_message());
	umask(old);
	cr_assert_eq(created, 1);
	char *db = db_of(s);
	cr_assert_eq(mode_of(s), 0700);
	cr_assert_eq(mode_of(db), 0600);
	cr_assert_eq(kw_store_init(s, &created), KW_OK);
	cr_assert_eq(created, 0, "a second init must not recreate the store");
	free(db);
	free(s);
}

Test(store, open_uses_wal_and_current_schema)
{
	char *s = store_path();
	int created;
	kw_store *st = NULL;
	cr_assert_eq(kw_store_init(s, &created), KW_OK);
	cr_assert_eq(kw_store_open(s, &st), KW_OK, "%s", kw_error_message());
	sqlite3_stmt *q = NULL;
	cr_assert_eq(kwi_store_prepare(st, "PRAGMA journal_mode", &q), KW_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	cr_assert_eq(kwi_store_prepare(st, "PRAGMA user_version", &q), KW_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(q, 0), kw_store_schema_version());
	sqlite3_finalize(q);
	kw_store_close(st);
	kw_store_close(NULL);
	free(s);
}

Test(store, open_refuses_a_missing_store)
{
	kw_store *st = NULL;
	char *s = store_path();
	kw_error_clear();
	cr_assert_eq(kw_store_open(s, &st), KW_ERR_NOT_FOUND);
	cr_assert_null(st);
	cr_assert(strstr(kw_error_message(), s) != NULL, "%s", kw_error_message());
	cr_assert(strstr(kw_error_message(), "keyward init") == NULL, "%s", kw_error_message());
	cr_assert_eq(kw_error_hint(), KW_HINT_STORE_INIT, "the CLI says: run keyward init");
	cr_assert(mkdir(s, 0700) == 0);
	cr_assert_eq(kw_store_open(s, &st), KW_ERR_NOT_FOUND, "a dir without a database");
	free(s);
}

Test(store, open_refuses_loose_permissions_and_says_how_to_fix)
{
	char *s = store_path();
	int created;
	kw_store *st = NULL;
	cr_assert_eq(kw_store_init(s, &created), KW_OK);
	cr_assert(chmod(s, 0755) == 0);
	cr_assert_eq(kw_store_open(s, &st), KW_ERR_PERM);
	cr_assert(strstr(kw_error_message(), "chmod 700") != NULL, "%s", kw_error_message());
	cr_assert(chmod(s, 0700) == 0);
	char *db = db_of(s);
	cr_assert(chmod(db, 0640) == 0);
	kw_error_clear();
	cr_assert_eq(kw_store_open(s, &st), KW_ERR_PERM);
	cr_assert(strstr(kw_error_message(), "chmod 600") != NULL, "%s", kw_error_message());
	cr_assert_eq(kw_store_init(s, &created), KW_ERR_PERM, "init must not silently accept it");
	cr_assert_null(st);
	free(db);
	free(s);
}

Test(store, open_refuses_a_corrupt_database)
{
	char *s = store_path();
	int created;
	kw_store *st = NULL;
	cr_assert_eq(kw_store_init(s, &created), KW_OK);
	char *db = db_of(s);
	static const char junk[] = "this is not an SQLite database, just junk bytes for the test..";
	char *unused = kwt_write_file(s, "keyward.db", junk, sizeof(junk), 0600);
	free(unused);
	char *cmd = NULL;
	cr_assert(asprintf(&cmd, "rm -f '%s-wal' '%s-shm'", db, db) > 0);
	cr_assert_eq(system(cmd), 0);
	kw_error_clear();
	cr_assert_eq(kw_store_open(s, &st), KW_ERR_STORE);
	cr_assert(strstr(kw_error_message(), "corrupt") != NULL, "%s", kw_error_message());
	cr_assert_null(st);
	free(cmd);
	free(db);
	free(s);
}

Test(store, open_refuses_a_foreign_sqlite_database)
{
	char *s = store_path();
	kw_store *st = NULL;
	cr_assert(mkdir(s, 0700) == 0);
	char *db = db_of(s);
	cr_assert_eq(kwt_sh("sqlite3 '%s' 'CREATE TABLE t(x)' && chmod 600 '%s'", db, db), 0);
	kw_error_clear();
	cr_assert_eq(kw_store_open(s, &st), KW_ERR_STORE);
	cr_assert(strstr(kw_error_message(), "not a keyward store") != NULL, "%s",
	          kw_error_message());
	free(db);
	free(s);
}

Test(store, open_refuses_a_newer_schema)
{
	char *s = store_path();
	int created;
	kw_store *st = NULL;
	cr_assert_eq(kw_store_init(s, &created), KW_OK);
	char *db = db_of(s);
	cr_assert_eq(kwt_sh("sqlite3 '%s' 'PRAGMA user_version=999'", db), 0);
	kw_error_clear();
	cr_assert_eq(kw_store_open(s, &st), KW_ERR_STORE);
	cr_assert(strstr(kw_error_message(), "newer") != NULL, "%s", kw_error_message());
	free(db);
	free(s);
}

Test(store, migrates_an_older_schema_forward)
{
	char *s = store_path();
	kw_store *st = NULL;
	cr_assert(mkdir(s, 0700) == 0);
	char *db = db_of(s);
	/* a store as version 0 left it: marked as keyward's, no tables yet */
	cr_assert_eq(
	    kwt_sh("sqlite3 '%s' 'PRAGMA application_id=1264013892' && chmod 600 '%s'", db, db), 0);
	cr_assert_eq(kw_store_open(s, &st), KW_OK, "%s", kw_error_message());
	sqlite3_stmt *q = NULL;
	cr_assert_eq(kwi_store_prepare(st, "SELECT COUNT(*) FROM certs", &q), KW_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	sqlite3_finalize(q);
	kw_store_close(st);
	free(db);
	free(s);
}

/* The provider reads the store inside TLS servers: it must never change the
 * file, not even to migrate it. */
Test(store, a_reader_refuses_an_older_schema_and_leaves_the_file_as_it_was)
{
	char *s = store_path();
	kw_store *st = NULL;
	cr_assert(mkdir(s, 0700) == 0);
	char *db = db_of(s);
	cr_assert_eq(
	    kwt_sh("sqlite3 '%s' 'PRAGMA application_id=1264013892' && chmod 600 '%s'", db, db), 0);
	cr_assert_eq(kwt_sh("cp '%s' '%s.before'", db, db), 0);
	kw_error_clear();
	cr_assert_eq(kwi_store_open_reader(s, &st), KW_ERR_STORE);
	cr_assert_null(st);
	cr_assert(strstr(kw_error_message(), "older") != NULL, "%s", kw_error_message());
	cr_assert_eq(kwt_sh("cmp -s '%s' '%s.before'", db, db), 0, "the reader changed the file");
	/* and so does a key load through the provider's entry point */
	kw_key *k = NULL;
	kw_error_clear();
	cr_assert_neq(kw_key_open(s, "web", 0, &k), KW_OK);
	cr_assert(strstr(kw_error_message(), "older") != NULL, "%s", kw_error_message());
	cr_assert_eq(kwt_sh("cmp -s '%s' '%s.before'", db, db), 0, "a key load changed the file");
	/* the owner's open migrates it */
	cr_assert_eq(kw_store_open(s, &st), KW_OK, "%s", kw_error_message());
	kw_store_close(st);
	cr_assert_eq(kwi_store_open_reader(s, &st), KW_OK, "%s", kw_error_message());
	kw_store_close(st);
	free(db);
	free(s);
}

Test(store, a_reader_cannot_write)
{
	char *s = store_path();
	int created;
	kw_store *st = NULL;
	cr_assert_eq(kw_store_init(s, &created), KW_OK);
	cr_assert_eq(kwi_store_open_reader(s, &st), KW_OK, "%s", kw_error_message());
	sqlite3_stmt *q = NULL;
	cr_assert_eq(kwi_store_prepare(st, "SELECT COUNT(*) FROM certs", &q), KW_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	sqlite3_finalize(q);
	cr_assert_eq(kwi_store_prepare(st, "DELETE FROM certs", &q), KW_OK);
	cr_assert_eq(sqlite3_step(q) & 0xff, SQLITE_READONLY);
	sqlite3_finalize(q);
	kw_store_close(st);
	free(s);
}

Test(store, a_rolled_back_transaction_leaves_nothing)
{
	char *s = store_path();
	int created;
	kw_store *st = NULL;
	cr_assert_eq(kw_store_init(s, &created), KW_OK);
	cr_assert_eq(kw_store_open(s, &st), KW_OK);
	cr_assert_eq(kwi_store_begin(st), KW_OK);
	cr_assert_eq(sqlite3_exec(st->db,
	                          "INSERT INTO backends (name, kind, config, created_at)"
	                          " VALUES ('x', 'tpm2', '{}', 0)",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	kwi_store_rollback(st);
	json_t *list = NULL;
	cr_assert_eq(kw_backend_list(st, &list), KW_OK);
	cr_assert_eq(json_array_size(list), 0);
	json_decref(list);
	kw_store_close(st);
	free(s);
}

Test(store, a_second_writer_waits_instead_of_failing)
{
	char *s = store_path();
	int created, ready[2];
	kw_store *b = NULL;
	char c;
	cr_assert_eq(kw_store_init(s, &created), KW_OK);
	cr_assert(pipe(ready) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) { /* holds the write lock for 700 ms, then commits a row */
		kw_store *a = NULL;
		if (kw_store_open(s, &a) != KW_OK || kwi_store_begin(a) != KW_OK)
			_exit(1);
		sqlite3_exec(a->db,
		             "INSERT INTO backends (name, kind, config, created_at)"
		             " VALUES ('first', 'tpm2', '{}', 0)",
		             NULL, NULL, NULL);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		usleep(700 * 1000);
		_exit(kwi_store_commit(a) == KW_OK ? 0 : 1);
	}
	cr_assert_eq(read(ready[0], &c, 1), 1);
	cr_assert_eq(kw_store_open(s, &b), KW_OK);
	kw_error_clear();
	cr_assert_eq(kwi_store_begin(b), KW_OK, "busy instead of waiting: %s", kw_error_message());
	int st = 0;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	json_t *list = NULL;
	cr_assert_eq(kwi_store_commit(b), KW_OK);
	cr_assert_eq(kw_backend_list(b, &list), KW_OK);
	cr_assert_eq(json_array_size(list), 1, "the first writer's row must be there");
	json_decref(list);
	kw_store_close(b);
	free(s);
}

Test(store, default_dir_follows_keyward_store)
{
	char *d = NULL;
	setenv("KEYWARD_STORE", "/some/where", 1);
	cr_assert_eq(kw_store_default_dir(&d), KW_OK);
	cr_assert_str_eq(d, "/some/where");
	free(d);
	unsetenv("KEYWARD_STORE");
	cr_assert_eq(kw_store_default_dir(&d), KW_OK);
	if (geteuid() == 0)
		cr_assert_str_eq(d, "/var/lib/keyward");
	free(d);
}

/* A store written by the first release (schema 1, with data) is carried
 * forward on open: its rows survive and the new tables and columns exist. */
Test(store, migrates_a_version_1_store_with_data)
{
	char *s = store_path();
	kw_store *st = NULL;
	cr_assert(mkdir(s, 0700) == 0);
	char *db = db_of(s);
	/* schema 1 exactly as the first release created it */
	static const char v1[] =
	    "CREATE TABLE backends (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	    " kind TEXT NOT NULL, config TEXT NOT NULL, created_at INTEGER NOT NULL);"
	    "CREATE TABLE certs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	    " policy TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1, current_version INTEGER,"
	    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
	    "CREATE TABLE versions (id INTEGER PRIMARY KEY, cert_id INTEGER NOT NULL REFERENCES"
	    " certs(id) ON DELETE CASCADE, version INTEGER NOT NULL, status TEXT NOT NULL CHECK"
	    " (status IN ('pending','active','superseded','failed')), backend_id INTEGER NOT NULL"
	    " REFERENCES backends(id), key_type TEXT NOT NULL, key_ref BLOB NOT NULL, key_attrs"
	    " TEXT, exportable INTEGER, generated_on_device INTEGER, issuer TEXT NOT NULL,"
	    " cert_der BLOB, chain_der BLOB, csr_der BLOB, serial TEXT, not_before INTEGER,"
	    " not_after INTEGER, thumbprint_sha1 TEXT, thumbprint_sha256 TEXT, created_at INTEGER"
	    " NOT NULL, UNIQUE (cert_id, version));"
	    "CREATE INDEX versions_by_key ON versions(backend_id, key_ref);"
	    "INSERT INTO backends VALUES (1, 'hsm', 'pkcs11', '{\"module\":\"softhsm2\"}', 0);"
	    "INSERT INTO certs VALUES (1, 'old', '{\"key\":{\"type\":\"ec-p256\"}}', 1, 1, 0, 0);"
	    "INSERT INTO versions (cert_id, version, status, backend_id, key_type, key_ref,"
	    " issuer, serial, not_before, not_after, thumbprint_sha256, created_at)"
	    " VALUES (1, 1, 'active', 1, 'ec-p256', X'0102', 'self', '4a', 1893456000,"
	    " 1924992000, 'ab', 0);"
	    "PRAGMA application_id=1264013892; PRAGMA user_version=1;";
	char *sql = kwt_write_file(s, "v1.sql", v1, sizeof(v1) - 1, 0600);
	cr_assert_eq(kwt_sh("sqlite3 '%s' < '%s' && chmod 600 '%s' && rm '%s'", db, sql, db, sql),
	             0);
	cr_assert_eq(kw_store_open(s, &st), KW_OK, "%s", kw_error_message());
	json_t *list = NULL, *backends = NULL;
	cr_assert_eq(kw_cert_list(st, &list), KW_OK, "%s", kw_error_message());
	cr_assert_eq(json_array_size(list), 1);
	json_t *old = json_array_get(list, 0);
	cr_assert_str_eq(json_string_value(json_object_get(old, "name")), "old");
	cr_assert_str_eq(json_string_value(json_object_get(old, "not_after")),
	                 "2031-01-01T00:00:00Z");
	cr_assert_eq(kw_backend_list(st, &backends), KW_OK);
	cr_assert_eq(json_array_size(backends), 1);
	sqlite3_stmt *q = NULL;
	cr_assert_eq(kwi_store_prepare(st,
	                               "SELECT deleted_at IS NULL, (SELECT COUNT(*) FROM events)"
	                               " FROM certs WHERE name = 'old'",
	                               &q),
	             KW_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(q, 0), 1, "a migrated certificate is not deleted");
	cr_assert_eq(sqlite3_column_int(q, 1), 0);
	sqlite3_finalize(q);
	cr_assert_eq(kwi_store_prepare(st, "PRAGMA user_version", &q), KW_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(q, 0), kw_store_schema_version());
	sqlite3_finalize(q);
	json_decref(list);
	json_decref(backends);
	kw_store_close(st);
	free(db);
	free(s);
}
