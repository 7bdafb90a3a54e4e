/* libkeyward internals: certificates' access lists (table cert_access), as
 * typed entries (keyward/agent.h), and the store's change counter. Only
 * core/store/ runs SQL. */
#ifndef KEYWARD_CORE_STORE_ACCESS_H
#define KEYWARD_CORE_STORE_ACCESS_H

#include <keyward/agent.h>

#include "internal.h"

/* The access list of certificate cert_id, users first, by id (*out
 * malloc'd, NULL when empty). */
kw_rc kwi_store_access_list(kw_store *s, int64_t cert_id, kw_access_entry **out,
                            size_t *n) KW_MUST_USE;
/* Adds (grant) or removes one entry, inside the caller's transaction;
 * *changed 0 when it was already so. */
kw_rc kwi_store_access_put(kw_store *s, int64_t cert_id, const kw_access_entry *e, int grant,
                           int *changed) KW_MUST_USE;
/* SQLite's PRAGMA data_version: it changes when another connection commits,
 * so an unchanged value means everything read before is still true. */
kw_rc kwi_store_data_version(kw_store *s, int64_t *v) KW_MUST_USE;

#endif
