/* see keyward/keyward.h: the store (one SQLite database in a 0700 directory) */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pwd.h>

#include "store/sql.h"
#include "store/store_named.h"
#include "store/store_lifecycle.h"
#include "store/store_lock.h"
#include "internal.h"
#include "cert/issue.h"
#include "policy/model.h"
#include "store/store_issuers.h"

#define STORE_DB_NAME "keyward.db"
/* PRAGMA application_id: "KWRD" — tells a keyward store from any other SQLite file. */
#define STORE_APP_ID  0x4b575244
#define STORE_BUSY_MS 10000

/* Forward migrations: migrations[i] takes the schema from version i to i+1.
 * Never edit a shipped entry; append a new one. */
static const char *const migrations[] = {
    /* 0 → 1 */
    "CREATE TABLE backends ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL,"
    "  config TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE certs ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  policy TEXT NOT NULL,"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  current_version INTEGER,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE versions ("
    "  id INTEGER PRIMARY KEY,"
    "  cert_id INTEGER NOT NULL REFERENCES certs(id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('pending','active','superseded','failed')),"
    "  backend_id INTEGER NOT NULL REFERENCES backends(id),"
    "  key_type TEXT NOT NULL,"
    "  key_ref BLOB NOT NULL,"
    "  key_attrs TEXT,"
    "  exportable INTEGER,"
    "  generated_on_device INTEGER,"
    "  issuer TEXT NOT NULL,"
    "  cert_der BLOB,"
    "  chain_der BLOB,"
    "  csr_der BLOB,"
    "  serial TEXT,"
    "  not_before INTEGER,"
    "  not_after INTEGER,"
    "  thumbprint_sha1 TEXT,"
    "  thumbprint_sha256 TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (cert_id, version));"
    "CREATE INDEX versions_by_key ON versions(backend_id, key_ref);",
    /* 1 → 2: lifecycle (soft delete, renewal state, events, contacts, channels) */
    "ALTER TABLE certs ADD COLUMN deleted_at INTEGER;"
    "CREATE TABLE renewal_state ("
    "  cert_id INTEGER PRIMARY KEY REFERENCES certs(id) ON DELETE CASCADE,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt INTEGER,"
    "  last_attempt INTEGER,"
    "  last_success INTEGER,"
    "  last_error TEXT);"
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  cert TEXT,"
    "  version INTEGER,"
    "  actor TEXT NOT NULL,"
    "  details TEXT NOT NULL,"
    "  prev_hash TEXT NOT NULL,"
    "  hash TEXT NOT NULL);"
    "CREATE TABLE contacts ("
    "  id INTEGER PRIMARY KEY,"
    "  cert_id INTEGER REFERENCES certs(id) ON DELETE CASCADE,"
    "  email TEXT NOT NULL,"
    "  name TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (cert_id, email));"
    "CREATE TABLE channels ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL CHECK (kind IN ('sendmail','webhook','command')),"
    "  config TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE notices ("
    "  cert_id INTEGER NOT NULL REFERENCES certs(id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  threshold TEXT NOT NULL,"
    "  sent_at INTEGER NOT NULL,"
    "  PRIMARY KEY (cert_id, version, kind, threshold));"
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    /* 2 → 3: the local CA: certificates it signed from CSRs, revocations, CRL numbers */
    "CREATE TABLE ca_issued ("
    "  id INTEGER PRIMARY KEY,"
    "  ca_cert_id INTEGER NOT NULL REFERENCES certs(id) ON DELETE CASCADE,"
    "  serial TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  thumbprint_sha256 TEXT NOT NULL,"
    "  cert_der BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (ca_cert_id, serial));"
    "CREATE TABLE revocations ("
    "  ca_cert_id INTEGER NOT NULL REFERENCES certs(id) ON DELETE CASCADE,"
    "  serial TEXT NOT NULL,"
    "  revoked_at INTEGER NOT NULL,"
    "  reason INTEGER NOT NULL,"
    "  PRIMARY KEY (ca_cert_id, serial));"
    "CREATE TABLE ca_crls ("
    "  ca_cert_id INTEGER PRIMARY KEY REFERENCES certs(id) ON DELETE CASCADE,"
    "  crl_number INTEGER NOT NULL,"
    "  issued_at INTEGER NOT NULL);",
    /* 3 → 4: ACME issuers: the account key (in hardware) and the account URL */
    "CREATE TABLE issuers ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL CHECK (kind IN ('acme')),"
    "  config TEXT NOT NULL,"
    "  backend_id INTEGER NOT NULL REFERENCES backends(id),"
    "  key_type TEXT NOT NULL,"
    "  key_ref BLOB NOT NULL,"
    "  account_url TEXT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE acme_renewal_info ("
    "  cert_id INTEGER NOT NULL REFERENCES certs(id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  window_start INTEGER NOT NULL,"
    "  window_end INTEGER NOT NULL,"
    "  explanation_url TEXT,"
    "  next_check INTEGER NOT NULL,"
    "  PRIMARY KEY (cert_id, version));",
    /* 4 → 5: management API clients: certificates the management CA issued */
    "CREATE TABLE mgmt_clients ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL CHECK (role IN ('reader','admin')),"
    "  ca_cert_id INTEGER NOT NULL REFERENCES certs(id) ON DELETE CASCADE,"
    "  serial TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  thumbprint_sha256 TEXT NOT NULL UNIQUE,"
    "  key_source TEXT NOT NULL CHECK (key_source IN ('pkcs12','csr')),"
    "  cert_der BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER);",
    /* 5 → 6: what cert list and metrics print about a version's certificate (sans: JSON),
     * recorded with the version so that listings decode no certificate; rows that have a
     * certificate are filled in C right after (kwi_facts_backfill). A certificate changed
     * without its facts forgets them: readers then decode it. */
    "ALTER TABLE versions ADD COLUMN subject_dn TEXT;"
    "ALTER TABLE versions ADD COLUMN issuer_dn TEXT;"
    "ALTER TABLE versions ADD COLUMN sans TEXT;"
    "ALTER TABLE versions ADD COLUMN spki_sha256 TEXT;"
    "CREATE TRIGGER versions_facts_stale AFTER UPDATE OF cert_der ON versions"
    " WHEN NEW.cert_der IS NOT OLD.cert_der AND NEW.subject_dn IS OLD.subject_dn BEGIN"
    " UPDATE versions SET subject_dn = NULL, issuer_dn = NULL, sans = NULL,"
    " spki_sha256 = NULL WHERE id = NEW.id; END;",
    /* 6 → 7: deploy targets, defined on the host (keyward deploy-target add): a policy
     * names one and no longer holds files or hooks itself; policies that did are
     * rewritten in C right after (kwi_policy_deploy_migrate) */
    "CREATE TABLE deploy_targets ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL CHECK (kind IN ('files')),"
    "  config TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);",
    /* 7 → 8: who may use a certificate's key through the agent (keyward cert access);
     * no row: only the store's owner and root */
    "CREATE TABLE cert_access ("
    "  cert_id INTEGER NOT NULL REFERENCES certs(id) ON DELETE CASCADE,"
    "  kind TEXT NOT NULL CHECK (kind IN ('user','group')),"
    "  id INTEGER NOT NULL CHECK (id >= 0 AND id <= 4294967295),"
    "  PRIMARY KEY (cert_id, kind, id));",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

int kw_store_schema_version(void)
{
	return SCHEMA_VERSION;
}

kw_rc kwi_store_fail(kw_store *s, const char *file, int line, const char *what)
{
	int code = s && s->db ? sqlite3_extended_errcode(s->db) : 0;
	const char *msg = s && s->db ? sqlite3_errmsg(s->db) : "no database";
	if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
		return kw_error_set(KW_ERR_STORE, (unsigned long)code, file, line,
		                    "store %s is busy (another keyward holds it): %s failed",
		                    s->dir, what);
	if ((code & 0xff) == SQLITE_NOTADB || (code & 0xff) == SQLITE_CORRUPT)
		return kw_error_set(KW_ERR_STORE, (unsigned long)code, file, line,
		                    "store database %s is corrupt or not a keyward store (%s); "
		                    "restore it from a backup",
		                    s->db_path, msg);
	return kw_error_set(KW_ERR_STORE, (unsigned long)code, file, line, "store: %s failed: %s",
	                    what, msg);
}

kw_rc kwi_store_prepare(kw_store *s, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
		return KWI_DB_FAIL(s, "preparing a query");
	return KW_OK;
}

kw_rc kwi_store_begin(kw_store *s)
{
	/* IMMEDIATE: take the write lock up front so two writers never deadlock
	 * upgrading read locks; busy_timeout makes the second one wait. */
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return KWI_DB_FAIL(s, "starting a transaction");
	return KW_OK;
}

kw_rc kwi_store_commit(kw_store *s)
{
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		kw_rc rc = KWI_DB_FAIL(s, "committing");
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_anchor_flush(s);
}

void kwi_store_rollback(kw_store *s)
{
	if (s)
		s->anchor_due[0] = '\0';
	if (s && s->db && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

kw_rc kw_store_default_dir(char **out)
{
	const char *env = getenv("KEYWARD_STORE");
	kw_error_clear();
	*out = NULL;
	if (env && env[0])
		*out = strdup(env);
	else if (geteuid() == 0)
		*out = strdup("/var/lib/keyward");
	else {
		const char *xdg = getenv("XDG_DATA_HOME");
		const char *home = getenv("HOME");
		if (xdg && xdg[0]) {
			if (asprintf(out, "%s/keyward", xdg) < 0)
				*out = NULL;
		} else if (home && home[0]) {
			if (asprintf(out, "%s/.local/share/keyward", home) < 0)
				*out = NULL;
		} else
			return KW_FAIL_HINT(
			    KW_ERR_USAGE, KW_HINT_GIVE_STORE,
			    "no store given, and neither KEYWARD_STORE nor HOME is set");
	}
	return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

/* A store someone else owns is refused: its owner could plant hooks that
 * this user would run (root, typically) or read what this user writes. A
 * reader (the provider in a TLS server's workers) only reads, and reads the
 * store of the user who manages it. */
static kw_rc check_owner(const char *path, const struct stat *st, int want_dir)
{
	uid_t me = geteuid();
	if (st->st_uid == me)
		return KW_OK;
	struct passwd *pw = getpwuid(me);
	char user[64];
	if (pw && pw->pw_name)
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "%lu", (unsigned long)me);
	return KW_FAIL(KW_ERR_PERM,
	               "%s %s belongs to uid %lu, not to %s who runs keyward; run: chown -R %s %s",
	               want_dir ? "store directory" : "store database", path,
	               (unsigned long)st->st_uid, user, user, path);
}

static kw_rc check_mode(const char *path, int want_dir, int owner)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return KW_FAIL(errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO, "%s: %s", path,
		               strerror(errno));
	if (owner)
		KW_GUARD(check_owner(path, &st, want_dir));
	if (want_dir && !S_ISDIR(st.st_mode))
		return KW_FAIL(KW_ERR_STORE, "store %s is not a directory", path);
	if (!want_dir && !S_ISREG(st.st_mode))
		return KW_FAIL(KW_ERR_STORE, "store database %s is not a regular file", path);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return KW_FAIL(
		    KW_ERR_PERM,
		    "%s %s is accessible by group or others (mode %04o); run: chmod %s %s",
		    want_dir ? "store directory" : "store database", path,
		    (unsigned)(st.st_mode & 07777), want_dir ? "700" : "600", path);
	return KW_OK;
}

/* The store directory without symbolic links (SQLite opens the database
 * with SQLITE_OPEN_NOFOLLOW, which refuses a link anywhere in the path: a
 * store under a linked /var/lib must still open). */
static kw_rc store_real(const char *dir, char **out)
{
	*out = realpath(dir, NULL);
	if (*out == NULL)
		return KW_FAIL(errno == ENOMEM ? KW_ERR_NOMEM : KW_ERR_IO, "store %s: %s", dir,
		               strerror(errno));
	return KW_OK;
}

static kw_rc store_new(const char *dir, kw_store **out)
{
	kw_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	s->lock_fd = -1;
	s->dir = strdup(dir);
	if (s->dir == NULL || asprintf(&s->db_path, "%s/%s", dir, STORE_DB_NAME) < 0) {
		s->db_path = NULL;
		kw_store_close(s);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	*out = s;
	return KW_OK;
}

static kw_rc pragma_int(kw_store *s, const char *sql, int *out)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s, sql, &st));
	int r = sqlite3_step(st);
	*out = r == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (r != SQLITE_ROW)
		return KWI_DB_FAIL(s, "reading the schema version");
	return KW_OK;
}

static kw_rc db_configure(kw_store *s);

/* What a migration's SQL cannot do, inside its transaction: from is the
 * schema version the store had. */
static kw_rc after_migrations(kw_store *s, int from)
{
	if (from < 6) /* 5 → 6: the facts of the certificates already stored */
		KW_GUARD(kwi_facts_backfill(s));
	if (from < 7) /* 6 → 7: inline deploy sections become deploy targets */
		KW_GUARD(kwi_policy_deploy_migrate(s));
	return KW_OK;
}

static kw_rc migrate(kw_store *s, int creating)
{
	int app_id = 0, version = 0;
	/* Identify the file before changing anything in it: another program's
	 * database is refused untouched. */
	KW_GUARD(pragma_int(s, "PRAGMA application_id", &app_id));
	KW_GUARD(pragma_int(s, "PRAGMA user_version", &version));
	if (!creating && app_id != STORE_APP_ID)
		return KW_FAIL(KW_ERR_STORE, "%s is not a keyward store database", s->db_path);
	KW_GUARD(db_configure(s));
	if (version > SCHEMA_VERSION)
		return KW_FAIL(KW_ERR_STORE,
		               "store %s has schema version %d, newer than this keyward (%d): "
		               "upgrade keyward",
		               s->dir, version, SCHEMA_VERSION);
	if (version == SCHEMA_VERSION)
		return KW_OK;
	KW_GUARD(kwi_store_begin(s));
	for (int v = version; v < SCHEMA_VERSION; v++) {
		if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
			kw_rc rc = KWI_DB_FAIL(s, "migrating the schema");
			kwi_store_rollback(s);
			return rc;
		}
	}
	kw_rc post = after_migrations(s, version);
	if (post != KW_OK) {
		kwi_store_rollback(s);
		return post;
	}
	char sql[96];
	snprintf(sql, sizeof(sql), "PRAGMA application_id=%d; PRAGMA user_version=%d", STORE_APP_ID,
	         SCHEMA_VERSION);
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		kw_rc rc = KWI_DB_FAIL(s, "recording the schema version");
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

static kw_rc db_connect(kw_store *s, int flags)
{
	if (sqlite3_open_v2(s->db_path, &s->db, flags | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK)
		return KWI_DB_FAIL(s, "opening the database");
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	sqlite3_extended_result_codes(s->db, 1);
	return KW_OK;
}

/* After the file proved to be ours (or new): WAL, durability, constraints. */
static kw_rc db_configure(kw_store *s)
{
	if (sqlite3_exec(
	        s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
	        NULL, NULL, NULL) != SQLITE_OK)
		return KWI_DB_FAIL(s, "configuring the database");
	return KW_OK;
}

kw_rc kw_store_init(const char *dir, int *created)
{
	kw_rc rc = KW_OK;
	kw_store *s = NULL;
	int made_dir = 0;
	char *real = NULL;
	kw_error_clear();
	*created = 0;
	if (mkdir(dir, 0700) == 0)
		made_dir = 1;
	else if (errno != EEXIST)
		return KW_FAIL(KW_ERR_IO, "cannot create store directory %s: %s", dir,
		               strerror(errno));
	if ((rc = check_mode(dir, 1, 1)) != KW_OK || (rc = store_real(dir, &real)) != KW_OK ||
	    (rc = store_new(real, &s)) != KW_OK)
		goto out;
	struct stat st;
	if (stat(s->db_path, &st) != 0) {
		/* Create the file 0600 ourselves: SQLite would honour the umask. */
		int fd = open(s->db_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			rc =
			    KW_FAIL(KW_ERR_IO, "cannot create %s: %s", s->db_path, strerror(errno));
			goto out;
		}
		close(fd);
		*created = 1;
	}
	rc = check_mode(s->db_path, 0, 1);
	if (rc != KW_OK)
		goto out;
	rc = db_connect(s, SQLITE_OPEN_READWRITE);
	if (rc != KW_OK)
		goto out;
	rc = migrate(s, *created);
out:
	/* a failed init leaves nothing it made behind (a 0-byte database would
	 * block the next init) */
	if (rc != KW_OK && *created && s) {
		sqlite3_close_v2(s->db);
		s->db = NULL;
		unlink(s->db_path);
		*created = 0;
	}
	if (rc != KW_OK && made_dir)
		rmdir(dir);
	kw_store_close(s);
	free(real);
	return rc;
}

/* A reader never changes the file: a store of another schema is refused
 * (migrating is its owner's job, through kw_store_open or keyward init). */
static kw_rc schema_check_current(kw_store *s)
{
	int app_id = 0, version = 0;
	KW_GUARD(pragma_int(s, "PRAGMA application_id", &app_id));
	KW_GUARD(pragma_int(s, "PRAGMA user_version", &version));
	if (app_id != STORE_APP_ID)
		return KW_FAIL(KW_ERR_STORE, "%s is not a keyward store database", s->db_path);
	if (version > SCHEMA_VERSION)
		return KW_FAIL(KW_ERR_STORE,
		               "store %s has schema version %d, newer than this keyward (%d): "
		               "upgrade keyward",
		               s->dir, version, SCHEMA_VERSION);
	if (version < SCHEMA_VERSION)
		return KW_FAIL_HINT(
		    KW_ERR_STORE, KW_HINT_STORE_INIT,
		    "store %s has schema version %d, older than this keyward (%d), and a reader "
		    "does not migrate it: its owner must open it once to do so",
		    s->dir, version, SCHEMA_VERSION);
	return KW_OK;
}

static kw_rc store_open(const char *dir, int readonly, kw_store **out)
{
	kw_rc rc = KW_OK;
	kw_store *s = NULL;
	char *real = NULL;
	*out = NULL;
	rc = check_mode(dir, 1, !readonly);
	if (rc == KW_ERR_NOT_FOUND) {
		kw_error_clear();
		return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_STORE_INIT, "no keyward store at %s",
		                    dir);
	}
	KW_GUARD(rc);
	KW_GUARD(store_real(dir, &real));
	rc = store_new(real, &s);
	free(real);
	KW_GUARD(rc);
	rc = check_mode(s->db_path, 0, !readonly);
	if (rc == KW_ERR_NOT_FOUND) {
		kw_error_clear();
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_STORE_INIT,
		                  "no keyward store database in %s", dir);
	}
	if (rc != KW_OK)
		goto out;
	rc = db_connect(s, readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
	if (rc != KW_OK)
		goto out;
	rc = readonly ? schema_check_current(s) : migrate(s, 0);
	if (rc != KW_OK)
		goto out;
	*out = s;
	s = NULL;
out:
	kw_store_close(s);
	return rc;
}

kw_rc kw_store_open(const char *dir, kw_store **out)
{
	kw_error_clear();
	return store_open(dir, 0, out);
}

/* see internal.h */
kw_rc kwi_store_open_writer(const char *dir, kw_store **out)
{
	return store_open(dir, 0, out);
}

/* see internal.h */
kw_rc kwi_store_open_reader(const char *dir, kw_store **out)
{
	return store_open(dir, 1, out);
}

void kw_store_close(kw_store *s)
{
	if (s == NULL)
		return;
	if (s->db)
		sqlite3_close_v2(s->db);
	kwi_store_locks_close(s);
	free(s->dir);
	free(s->db_path);
	free(s->http01.listen);
	free(s->http01.webroot);
	free(s);
}

/* see internal.h */
kw_rc kwi_store_exec_ints(kw_store *s, const char *what, const char *sql, const int64_t *v,
                          size_t n)
{
	sqlite3_stmt *st = NULL;
	KW_GUARD(kwi_store_prepare(s, sql, &st));
	for (size_t i = 0; i < n; i++)
		sqlite3_bind_int64(st, (int)i + 1, v[i]);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, what);
}

/* see internal.h */
char *kwi_col_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? strdup((const char *)t) : NULL;
}

/* see store/store_issuers.h */
kw_rc kwi_col_blob_dup(sqlite3_stmt *st, int col, unsigned char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return KW_OK;
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	if ((*out = malloc(n ? n : 1)) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (n)
		memcpy(*out, sqlite3_column_blob(st, col), n);
	*len = n;
	return KW_OK;
}

/* see store/sql.h */
kw_rc kwi_col_blob_dup_const(sqlite3_stmt *st, int col, const unsigned char **out, size_t *len)
{
	unsigned char *p = NULL;
	kw_rc rc = kwi_col_blob_dup(st, col, &p, len);
	*out = p;
	return rc;
}

/* see store/store_named.h */
void kwi_named_row_clear(kwi_named_row *r)
{
	if (r == NULL)
		return;
	free((char *)r->name);
	free((char *)r->kind);
	json_decref(r->config);
	memset(r, 0, sizeof(*r));
}

void kwi_named_rows_free(kwi_named_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		kwi_named_row_clear(&rows[i]);
	free(rows);
}
