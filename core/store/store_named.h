/*
 * keyward internal: the row shape of a named, configured thing the admin
 * defines on the host (a backend, a notification channel): a name, a kind
 * and a settings document.
 */
#ifndef KEYWARD_STORE_NAMED_H
#define KEYWARD_STORE_NAMED_H

#include <stdint.h>
#include <time.h>

#include <jansson.h>

typedef struct {
	int64_t id;
	const char *name;
	const char *kind;
	json_t *config; /* the settings document; list: NULL when it does not parse */
	time_t created_at;
	int uses; /* backends' list: how many certificates have a version on it */
} kwi_named_row;

/* Frees what the row owns (name, kind, config) and zeroes it. */
void kwi_named_row_clear(kwi_named_row *r);
/* Clears n rows and frees the array. */
void kwi_named_rows_free(kwi_named_row *rows, size_t n);

#endif
