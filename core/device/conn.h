/* libkeyward internals: process-wide device connections shared by kw_key objects. */
#ifndef KEYWARD_POOL_H
#define KEYWARD_POOL_H

#include "internal.h"

typedef struct kwi_conn kwi_conn;

/*
 * The connection for backend `name` of the store at store_dir, configured
 * as config (the JSON kept in the store): shared by every caller in this
 * process, opened lazily, reopened after fork() in the child and once after
 * the device went away.
 */
kw_rc kwi_conn_get(const char *store_dir, const char *name, const char *kind, const char *config,
                   kwi_conn **out) KW_MUST_USE;
void kwi_conn_put(kwi_conn *c);

kw_rc kwi_conn_public(kwi_conn *c, const kw_key_blob *ref, unsigned char **der,
                      size_t *len) KW_MUST_USE;
/* kwi_conn_public, but for a backend that is not fork safe the device is
 * contacted from a short-lived child process, leaving this one untouched. */
kw_rc kwi_conn_public_isolated(kwi_conn *c, const kw_key_blob *ref, unsigned char **der,
                               size_t *len) KW_MUST_USE;
kw_rc kwi_conn_sign(kwi_conn *c, const kw_key_blob *ref, const kw_sign_params *p,
                    const unsigned char *dgst, size_t dgst_len, unsigned char *sig,
                    size_t *sig_len) KW_MUST_USE;
/* The backend's kind, for messages only: decisions use kwi_conn_caps. */
const char *kwi_conn_kind(const kwi_conn *c);
/* KW_CAP_* of the connection's backend as configured (see backend.h). */
unsigned kwi_conn_caps(const kwi_conn *c);

#endif
