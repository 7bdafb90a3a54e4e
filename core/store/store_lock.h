/*
 * keyward internal: locks between keyward processes on one store (store/lock.c).
 * Issue 14: doctor --repair destroyed the key a concurrent renew had just
 * made, and two renew --due runs renewed the same certificate twice.
 */
#ifndef KEYWARD_STORE_LOCK_H
#define KEYWARD_STORE_LOCK_H

#include "internal.h"

/* The handle takes part in making or destroying keys: shared with every
 * other such handle, exclusive of doctor --repair. Held until the handle
 * closes (kwi_device_key_generate/_import/_destroy take it). */
kw_rc kwi_store_keys_busy(kw_store *s) KW_MUST_USE;
/* No other handle makes or destroys keys while this one holds it (doctor
 * --repair); waits up to wait_ms for those at work, then KW_ERR_STATE. */
kw_rc kwi_store_keys_alone(kw_store *s, int wait_ms) KW_MUST_USE;
/* The right to renew certificate cert_id: *got 1 when this handle holds it,
 * 0 when another holds it (wait 0), or after waiting for it (wait 1). */
kw_rc kwi_store_cert_lease(kw_store *s, int64_t cert_id, int wait, int *got) KW_MUST_USE;
void kwi_store_cert_release(kw_store *s, int64_t cert_id);
/* kw_store_close: every lock of the handle goes. */
void kwi_store_locks_close(kw_store *s);

#endif
