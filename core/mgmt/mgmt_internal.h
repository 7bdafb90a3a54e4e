/* libkeyward internals: management clients (see keyward/mgmt.h). */
#ifndef KEYWARD_CORE_MGMT_INTERNAL_H
#define KEYWARD_CORE_MGMT_INTERNAL_H

#include "internal.h"
#include "store/store_issuers.h"
#include <keyward/mgmt.h>

/* kw_mgmt_init without clearing the error record. */
kw_rc kwi_mgmt_init(kw_store *s, const kw_mgmt_init_request *req, json_t **out) KW_MUST_USE;

/* Client name as kw_mgmt_list shows it (KW_ERR_NOT_FOUND when unknown). */
kw_rc kwi_mgmt_client_json(kw_store *s, const char *name, json_t **out) KW_MUST_USE;

#endif
