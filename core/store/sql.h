/* libkeyward internals: SQLite itself, for core/store/ only. The rest of core
 * reaches the database through the typed rows of store_*.h; ci/layer-check
 * keeps sqlite3 out of every other folder. */
#ifndef KEYWARD_CORE_STORE_SQL_H
#define KEYWARD_CORE_STORE_SQL_H

#include <sqlite3.h>

#include "internal.h"

/* Records an SQLite failure with context; returns KW_ERR_STORE. */
kw_rc kwi_store_fail(kw_store *s, const char *file, int line, const char *what);
#define KWI_DB_FAIL(s, what) kwi_store_fail((s), __FILE__, __LINE__, (what))
kw_rc kwi_store_prepare(kw_store *s, const char *sql, sqlite3_stmt **st) KW_MUST_USE;
/* Runs one statement that returns no rows with the n integers of v bound to
 * ?1..?n; what names the change in the error. KWI_STORE_EXEC(s, what, sql,
 * a, b, ...) lists the integers in place. */
kw_rc kwi_store_exec_ints(kw_store *s, const char *what, const char *sql, const int64_t *v,
                          size_t n) KW_MUST_USE;
#define KWI_STORE_EXEC(s, what, sql, ...)                                                          \
	kwi_store_exec_ints((s), (what), (sql), (const int64_t[]){__VA_ARGS__},                    \
	                    sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
/* A text column's copy (malloc'd; NULL for NULL or out of memory). */
char *kwi_col_dup(sqlite3_stmt *st, int col);
kw_rc kwi_col_blob_dup(sqlite3_stmt *st, int col, unsigned char **out, size_t *len) KW_MUST_USE;
/* The same into a row's const field (the row owns it all the same). */
kw_rc kwi_col_blob_dup_const(sqlite3_stmt *st, int col, const unsigned char **out,
                             size_t *len) KW_MUST_USE;

#include "store/store_named.h"
/* store/named.c: one table of such rows (table: "channels",
 * "deploy_targets"; what: "channel", "deploy target" for messages). */
kw_rc kwi_store_named_add(kw_store *s, const char *table, const char *what, const kwi_named_row *r,
                          int *exists) KW_MUST_USE;
kw_rc kwi_store_named_remove(kw_store *s, const char *table, const char *what, const char *name,
                             int *removed) KW_MUST_USE;
kw_rc kwi_store_named_list(kw_store *s, const char *table, const char *what, kwi_named_row **rows,
                           size_t *n) KW_MUST_USE;
kw_rc kwi_store_named_get(kw_store *s, const char *table, const char *what, const char *name,
                          kwi_named_row *out, int *found) KW_MUST_USE;

#endif
