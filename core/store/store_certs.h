/* libkeyward internals: certificates, their versions and the backends, as
 * typed rows. Only core/store/ runs SQL; cert/, device/ and policy/ call
 * these functions and never see a statement.
 *
 * Rows follow store_issuers.h: a row a function fills owns its strings,
 * blobs and JSON (free them with the row's _clear, which accepts a zeroed
 * row and leaves one); a row a caller fills for an _insert / _set only lends
 * them. Getters say with *found whether the row exists; the caller words "not
 * found" (and its hint), the store words its own failures ("store: reading a
 * certificate failed: ..."). */
#ifndef KEYWARD_CORE_STORE_CERTS_H
#define KEYWARD_CORE_STORE_CERTS_H

#include "internal.h"

/* ---- store/backends.c: the backends table ---- */
typedef struct {
	int64_t id;
	const char *name;
	const char *kind;
	json_t *config; /* tcti, module, token, pin_source; list: NULL when unreadable */
	time_t created_at;
	int certificates; /* list: how many certificates have a version on it */
} kwi_backend_row;

void kwi_backend_row_clear(kwi_backend_row *r);
void kwi_backend_rows_free(kwi_backend_row *rows, size_t n);
kw_rc kwi_store_backend_exists(kw_store *s, const char *name, int *exists) KW_MUST_USE;
/* Inserts r (lent: name, kind, config kept as sorted compact JSON text, created_at). */
kw_rc kwi_store_backend_insert(kw_store *s, const kwi_backend_row *r) KW_MUST_USE;
/* Every backend by name. Free with kwi_backend_rows_free. */
kw_rc kwi_store_backend_list(kw_store *s, kwi_backend_row **rows, size_t *n) KW_MUST_USE;

#endif
