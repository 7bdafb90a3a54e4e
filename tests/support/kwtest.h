/*
 * keyward test support: devices from the harness, temp dirs, running binaries.
 *
 * The harness (tests/harness/kw-harness) exports:
 *   KW_TEST_TMP              private temp dir of this test program
 *   KW_TEST_TCTI             TCTI of this program's swtpm (or tabrmd with --abrmd)
 *   KW_TEST_TCTI_DIRECT      TCTI of the swtpm itself
 *   KW_TEST_SWTPM_PORT/CTRL  its ports;  swtpm-ctl stop|start in KW_TEST_HARNESS_DIR
 *   SOFTHSM2_CONF            private SoftHSM2 configuration
 *   KW_TEST_P11_MODULE, KW_TEST_P11_TOKEN, KW_TEST_P11_PIN, KW_TEST_P11_SO_PIN,
 *   KW_TEST_P11_PIN_FILE     the token and its user PIN (file mode 0600)
 * ctest adds KW_TEST_KEYWARD_BIN (the CLI) and KW_TEST_SOURCE_DIR.
 */
#ifndef KWTEST_H
#define KWTEST_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/types.h>

#include "backend.h"

/* The variable's value; the test fails if it is unset. */
const char *kwt_env(const char *name);

/* Skips the test for a reason this machine has (a program not installed, not
 * root) — but with CI=true in the environment it fails instead: CI installs
 * everything (ci/install-deps) and runs as root, so there a skip would hide a
 * test that never ran (Criterion counts a skip as passed). The only way tests
 * skip (ci/layer-check). REASON is a string literal. */
#define kwt_skip(REASON)                                                                           \
	do {                                                                                       \
		const char *kwt_ci_ = getenv("CI");                                                \
		if (kwt_ci_ != NULL && strcmp(kwt_ci_, "true") == 0)                               \
			cr_assert_fail("not run, and CI=true allows no skip: " REASON);            \
		cr_skip_test(REASON);                                                              \
	} while (0)

/* A new empty directory under KW_TEST_TMP (malloc'd path). */
char *kwt_tmpdir(const char *hint);

/* Writes a file (mode given) and returns its malloc'd path under dir. */
char *kwt_write_file(const char *dir, const char *name, const void *data, size_t len, int mode);

/* Reads a whole file (NUL-terminated, malloc'd); NULL if missing. */
char *kwt_read_file(const char *path, size_t *len);

typedef struct {
	int status; /* exit code, or 128+signal */
	char *out;  /* stdout, NUL-terminated */
	char *err;  /* stderr, NUL-terminated */
} kwt_result;

void kwt_result_free(kwt_result *r);

/* Runs argv (NULL-terminated) with extra "NAME=VALUE" env entries (NULL-terminated or NULL). */
void kwt_run(kwt_result *r, char *const argv[], char *const env[]);

/* Runs the keyward CLI: kwt_kw(&r, store, "cert", "list", NULL). store NULL = no --store. */
void kwt_kw(kwt_result *r, const char *store, ...) __attribute__((sentinel));

/* Same with extra environment entries. */
void kwt_kw_env(kwt_result *r, char *const env[], const char *store, ...) __attribute__((sentinel));

/* Same with the arguments in a NULL-terminated array; env may be NULL. */
void kwt_kw_args(kwt_result *r, char *const env[], const char *store, const char *const *args);

/* kwt_kw_args for a run that repeats: one that builds a test's starting state
 * the same way every time (kwt_store_new), or that reads state which a run
 * checked every time reads too. Under valgrind (kw-harness with
 * KEYWARD_VALGRIND=1) memcheck checks the first run of the same arguments and
 * environment in this test program (--store's value aside) and later ones run
 * the CLI directly: use it only where those runs meet the same state and take
 * the paths the checked one took. Without valgrind it is kwt_kw_args. */
void kwt_kw_repeat(kwt_result *r, char *const env[], const char *store, const char *const *args);

/* Number of lines in s (a last line without newline counts). */
int kwt_count_lines(const char *s);

/* Stops (SIGKILL) / restarts this program's swtpm. */
void kwt_swtpm_stop(void);
void kwt_swtpm_start(void);

/* The .fini of a test that may stop the swtpm: when *down, restarts it, clears
 * *down and the dictionary-attack lockout. A TPM killed while it held
 * DA-protected keys counts the unorderly shutdown as a dictionary-attack
 * failure: clearing the counter keeps later tests from being locked out. */
void kwt_swtpm_back(int *down);

/* Backend configurations for this program's devices. */
kw_backend_config kwt_tpm2_config(void);
kw_backend_config kwt_p11_config(void);

/* The public key of ref as ops->key_public gives it: DER SubjectPublicKeyInfo
 * with no trailing bytes, parsed (the test fails otherwise; EVP_PKEY_free). */
EVP_PKEY *kwt_key_public(const kw_backend_ops *ops, void *ctx, const kw_key_blob *ref);

/* Runs a shell command line, returns its exit status (like system()). */
int kwt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command line and returns its stdout (malloc'd). */
char *kwt_sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- CLI test helpers ---- */

/* A new initialized store with backends "tpm" (this program's TPM) and/or
 * "hsm" (its SoftHSM token) added through the CLI (malloc'd path; the runs go
 * through kwt_kw_repeat: under valgrind, the first store is checked). */
char *kwt_store_new(int with_tpm, int with_hsm);

/* Text dump of the store database (sqlite3 .dump), for unchanged-ness checks. */
char *kwt_store_dump(const char *store);

/* Number of objects on this program's SoftHSM token (logged in as user). */
int kwt_p11_object_count(void);

/* text parsed as JSON (the test fails if it is not). */
json_t *kwt_json(const char *text);

#endif
