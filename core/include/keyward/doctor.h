/*
 * keyward — doctor: checks that the store and its devices agree, and repairs
 * what is safe to repair (keyward doctor [--repair]).
 *
 * What a crash, a kill or another tool can leave behind:
 *   integrity         the database fails PRAGMA integrity_check / foreign_key_check
 *   current_missing   a certificate's current version is not in the store
 *   backend_unreachable  a device could not be opened (nothing on it was checked)
 *   orphan_key        a key keyward made on a device that no version or issuer
 *                     of the store references (a kill between device and database)
 *   key_missing       a version whose key the device no longer has (PKCS#11: no
 *                     private key with its CKA_ID; TPM: the blob does not load
 *                     under this TPM's storage key)
 *   key_mismatch      a version whose device key is not its certificate's key
 *   pending_orphaned  a pending version that can never be merged (an older
 *                     pending one, one without a CSR, one below the current)
 *
 * With repair: orphan keys are destroyed (only objects keyward made: label
 * "keyward:..." and its CKA_ID shape; another tool's objects are never
 * listed, let alone touched); key_missing / key_mismatch versions that are
 * not current, and orphaned pending versions, become "failed". A current
 * version is never changed: it is reported with what to do. Every repair is
 * an event in the log. The database itself is never "repaired".
 *
 * Run it while no other keyward command changes the store: a key that a
 * concurrent create has just made, before its database commit, looks orphaned.
 * A token is taken to serve this one store: the keys another keyward store
 * keeps on the same token look orphaned too (give each store its own token,
 * slot or partition).
 */
#ifndef KEYWARD_DOCTOR_H
#define KEYWARD_DOCTOR_H

#include <jansson.h>

#include <keyward/keyward.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Checks (and with repair, repairs). *report (caller owns):
 *   {"integrity": "ok" | what SQLite said,
 *    "problems": [{"kind", "detail", "action", "repaired": bool,
 *                  optional "backend", "cert", "version", "key_id", "label"}],
 *    "found": N, "repaired": N, "remaining": N}
 * Returns KW_OK whenever the check ran, problems or not; an error only when
 * the store cannot be read at all.
 */
kw_rc kw_doctor_run(kw_store *s, int repair, json_t **report) KW_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
