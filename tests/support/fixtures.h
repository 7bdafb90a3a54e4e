/*
 * Store fixtures of the tests that drive libkeyward's public API (core,
 * lifecycle): a store on this program's devices, certificates made at the
 * injected clock, the event log and policy edits.
 */
#ifndef KWTEST_FIXTURES_H
#define KWTEST_FIXTURES_H

#include <jansson.h>

#include <keyward/keyward.h>

/* A new store with backends tpm and hsm (kwt_store_new(1, 1)), opened;
 * *dir gets its path (malloc'd). */
kw_store *kwt_store_open_new(char **dir);

/* `keyward cert create NAME --backend B --subject CN=NAME.example --days N`
 * through the CLI on store dir, at this process's KEYWARD_NOW. */
void kwt_cert_create_now(const char *dir, const char *name, const char *backend, int days);

/* The events of type in the event log, of certificate cert (every one when
 * NULL): a new array (json_decref), or their number. */
json_t *kwt_events_of(kw_store *s, const char *cert, const char *type);
int kwt_events_count(kw_store *s, const char *cert, const char *type);

/* Sets top-level policy fields (JSON text) on top of the certificate's policy. */
void kwt_policy_patch(kw_store *s, const char *name, const char *patch);

/* A store beside a directory for what the test's subject writes. */
typedef struct {
	char *dir; /* the store */
	char *out; /* an empty directory for deploy files, hook output, notices */
	kw_store *s;
} kwt_store_fixture;

/* Names f->dir (not made yet) and makes f->out in a new temp dir (hint). */
void kwt_fixture_dirs(kwt_store_fixture *f, const char *hint);

/* Initializes and opens the store f->dir with backend "hsm" (this program's
 * SoftHSM token, its PIN from env:KW_TEST_P11_PIN) and creates certificate
 * name with subject there. */
void kwt_fixture_store(kwt_store_fixture *f, const char *name, const char *subject);

/* Closes the store and frees the paths. */
void kwt_fixture_close(kwt_store_fixture *f);

#endif
