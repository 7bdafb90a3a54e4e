/*
 * What a purge does to a key, per device, and what keyward says it did
 * (DESIGN.md, custody invariant 7: never "destroyed" where a copy can still
 * be used). Each test keeps what an attacker could have kept from before the
 * purge — the TSS2 key file `cert key-ref --format tss2` wrote, a copy of the
 * store — and tries it afterwards with keyward itself (the copy of the store:
 * `cert csr` signs with the key), with tpm2-tools running the key's policy,
 * and with tpm2-openssl.
 */
#include "cli_devices.h"

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/* A copy of the whole store directory, as a backup would have it. */
static char *store_copy(const char *store, const char *dir)
{
	char *copy = path_in(dir, "store-copy");
	cr_assert_eq(cli_status("cp -a '%s' '%s'", store, copy), 0);
	return copy;
}

/* The TPM as tpm2-tools lists it: how many NV indexes in keyward's range
 * (0x01815000-0x01815fff), and whether anything is left loaded. */
static int tpm_nv_count(void)
{
	char *out =
	    cli_out("tpm2_getcap -T '%s' handles-nv-index | grep -c '^- 0x1815[0-9a-f]\\{3\\}$'",
	            kwt_env("KW_TEST_TCTI"));
	int n = atoi(out);
	free(out);
	return n;
}

static void assert_tpm_nothing_loaded(const char *when)
{
	char *t = cli_out("tpm2_getcap -T '%s' handles-transient", kwt_env("KW_TEST_TCTI"));
	char *s = cli_out("tpm2_getcap -T '%s' handles-loaded-session", kwt_env("KW_TEST_TCTI"));
	cr_assert_str_empty(t, "%s: objects left loaded: %s", when, t);
	cr_assert_str_empty(s, "%s: sessions left loaded: %s", when, s);
	free(t);
	free(s);
}

/* Signs msg with the TSS2 file the way any tpm2-tools user can: load it,
 * and, when index is given, first run TPM2_PolicyNV(index == value) in a
 * policy session. 0 when a signature came out and verifies with pub. */
static int tpm2_tools_sign(const char *dir, const char *tss2, const char *index,
                           unsigned long long value, const char *pub)
{
	const char *tcti = kwt_env("KW_TEST_TCTI");
	int st;
	if (index == NULL)
		st = cli_status("cd '%s' && export TPM2TOOLS_TCTI='%s' && rm -f sig && "
		                "tpm2_load -r '%s' -c key.ctx >/dev/null 2>&1 && "
		                "tpm2_sign -c key.ctx -g sha256 -f plain -o sig msg 2>/dev/null; "
		                "st=$?; tpm2_flushcontext -t >/dev/null 2>&1; exit $st",
		                dir, tcti, tss2);
	else
		st = cli_status(
		    "cd '%s' && export TPM2TOOLS_TCTI='%s' && rm -f sig && "
		    "echo %016llx | xxd -r -p > operand && "
		    "tpm2_startauthsession --policy-session -S s.ctx && "
		    "{ tpm2_policynv -S s.ctx -i operand %s eq >/dev/null 2>&1 && "
		    "tpm2_load -r '%s' -c key.ctx >/dev/null 2>&1 && "
		    "tpm2_sign -c key.ctx -p session:s.ctx -g sha256 -f plain -o sig msg "
		    "2>/dev/null; st=$?; }; "
		    "tpm2_flushcontext s.ctx >/dev/null 2>&1; tpm2_flushcontext -t >/dev/null "
		    "2>&1; "
		    "exit ${st:-1}",
		    dir, tcti, value, index, tss2);
	if (st != 0)
		return st;
	return cli_status("cd '%s' && openssl dgst -sha256 -verify '%s' -signature sig msg "
	                  ">/dev/null",
	                  dir, pub);
}

/* Signs msg with the TSS2 file through tpm2-openssl (Debian's tpm2 provider). */
static int tpm2_openssl_sign(const char *dir, const char *tss2, const char *pub)
{
	int st = cli_status("cd '%s' && rm -f sig && TPM2OPENSSL_TCTI='%s' openssl dgst -provider "
	                    "tpm2 -provider default -propquery '?provider=tpm2' -sha256 -sign '%s' "
	                    "-out sig msg >/dev/null 2>&1",
	                    dir, kwt_env("KW_TEST_TCTI"), tss2);
	if (st != 0)
		return st;
	return cli_status("cd '%s' && openssl dgst -sha256 -verify '%s' -signature sig msg "
	                  ">/dev/null",
	                  dir, pub);
}

/* The files a test keeps from before the purge: the key's TSS2 file and the
 * certificate's public key. */
static void keep_files(const char *store, const char *dir, const char *name, int tss2)
{
	kwt_result r;
	char *pem = path_in(dir, "cert.pem"), *file = path_in(dir, "key.tss2");
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", name, "--out", pem));
	kwt_result_free(&r);
	cr_assert_eq(cli_status("cd '%s' && openssl x509 -in cert.pem -pubkey -noout > pub.pem && "
	                        "echo 'signed after the purge?' > msg",
	                        dir),
	             0);
	if (tss2) {
		cli_ok(&r, NULL, store,
		       CLI_ARGS("cert", "key-ref", name, "--format", "tss2", "--out", file));
		kwt_result_free(&r);
	}
	free(pem);
	free(file);
}

/* keyward's own load path on the copied store: cert csr signs a CSR with the
 * key inside the device. 0 when it did and the CSR verifies. */
static int keyward_signs_from(const char *store_dir, const char *dir, const char *name,
                              kwt_result *r)
{
	char *out = path_in(dir, "copy.csr");
	cli_runv(r, NULL, store_dir, CLI_ARGS("cert", "csr", name, "--out", out));
	int st = r->status;
	if (st == 0)
		st = cli_status("openssl req -in '%s' -verify -noout 2>/dev/null", out);
	free(out);
	return st;
}

static json_t *purge_event_keys(const char *store)
{
	char *out = cli_out("sqlite3 '%s/keyward.db' \"SELECT json_extract(details, '$.keys') "
	                    "FROM events WHERE type = 'cert.purged' ORDER BY seq DESC LIMIT 1\"",
	                    store);
	json_t *j = cli_json(out, "cert.purged keys");
	free(out);
	return j;
}

static void assert_keys(const json_t *keys, int destroyed, int revoked, int forgotten)
{
	cr_assert_eq(json_integer_value(json_object_get(keys, "destroyed")), destroyed);
	cr_assert_eq(json_integer_value(json_object_get(keys, "revoked")), revoked);
	cr_assert_eq(json_integer_value(json_object_get(keys, "forgotten")), forgotten);
}

static const json_t *revocation_of(const json_t *show)
{
	return json_object_get(json_object_get(json_object_get(show, "key"), "attributes"),
	                       "revocation");
}

Test(purge, a_revocable_tpm_key_signs_no_more_from_any_copy_kept_before)
{
	char *store = kwt_store_new(1, 0), *dir = kwt_tmpdir("purge-rev");
	kwt_result r;
	int nv0 = tpm_nv_count();
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "create", "rev", "--backend", "tpm", "--subject", "CN=rev.example",
	                "--revocable"));
	kwt_result_free(&r);
	cr_assert_eq(tpm_nv_count(), nv0 + 1, "a revocable key has an NV counter of its own");
	json_t *show = cli_show(store, "rev", 0);
	const json_t *rv = revocation_of(show);
	const char *index = cli_js(rv, "nv_index");
	unsigned long long value =
	    (unsigned long long)json_integer_value(json_object_get(rv, "required_value"));
	cr_assert(json_is_true(json_object_get(rv, "live")));
	/* the TPM's own account: a counter at that index holding that value */
	char *nv = cli_out("tpm2_nvreadpublic -T '%s' %s", kwt_env("KW_TEST_TCTI"), index);
	cr_assert(strstr(nv, "nt=0x1") != NULL && strstr(nv, "ownerwrite") != NULL &&
	              strstr(nv, "written") != NULL,
	          "%s", nv);
	char *now = cli_out("tpm2_nvread -T '%s' -C %s %s 2>/dev/null | xxd -p",
	                    kwt_env("KW_TEST_TCTI"), index, index);
	char want[17];
	snprintf(want, sizeof(want), "%016llx", value);
	cr_assert_str_eq(now, want);

	/* what an attacker keeps: the TSS2 file and a copy of the store */
	keep_files(store, dir, "rev", 1);
	char *copy = store_copy(store, dir);
	/* positive controls: before the purge, each of them signs */
	cr_assert_eq(tpm2_tools_sign(dir, "key.tss2", index, value, "pub.pem"), 0,
	             "tpm2-tools could not sign with the policy before the purge");
	cr_assert_eq(keyward_signs_from(copy, dir, "rev", &r), 0, "%s", r.err);
	kwt_result_free(&r);
	/* the password alone never signs: tpm2-openssl authorises with it only */
	cr_assert_neq(tpm2_tools_sign(dir, "key.tss2", NULL, 0, "pub.pem"), 0);
	cr_assert_neq(tpm2_openssl_sign(dir, "key.tss2", "pub.pem"), 0);
	assert_tpm_nothing_loaded("before the purge");

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "rev", "--purge"));
	cr_assert_str_eq(
	    r.out, "purged rev: 1 TPM key revoked: no copy of its wrapped blob can sign again\n");
	kwt_result_free(&r);
	json_t *keys = purge_event_keys(store);
	assert_keys(keys, 0, 1, 0);
	cr_assert_eq(tpm_nv_count(), nv0, "the counter's NV index is given back");

	/* every copy kept from before fails now */
	cr_assert_neq(tpm2_tools_sign(dir, "key.tss2", index, value, "pub.pem"), 0,
	              "tpm2-tools signed with the policy after the purge");
	cr_assert_neq(tpm2_openssl_sign(dir, "key.tss2", "pub.pem"), 0);
	cr_assert_neq(keyward_signs_from(copy, dir, "rev", &r), 0,
	              "keyward signed from a copy of the store after the purge");
	cli_assert_error(&r, 1, "cert csr from the copied store");
	cli_assert_err_has(&r, "revoked", "cert csr from the copied store");
	kwt_result_free(&r);
	/* the copy still loads: it is the policy that can never be met again */
	cr_assert_eq(cli_status("cd '%s' && tpm2_load -T '%s' -r key.tss2 -c key.ctx >/dev/null "
	                        "2>&1 && tpm2_flushcontext -T '%s' -t",
	                        dir, kwt_env("KW_TEST_TCTI"), kwt_env("KW_TEST_TCTI")),
	             0);
	assert_tpm_nothing_loaded("after the purge");
	json_decref(keys);
	json_decref(show);
	free(now);
	free(nv);
	free(copy);
	free(dir);
	free(store);
}

/* The policy's key.revocable is read where each key is made: a renewal's new
 * key is revocable too, and a purge revokes both. */
Test(purge, a_renewal_of_a_revocable_certificate_makes_a_revocable_key)
{
	char *store = kwt_store_new(1, 0), *dir = kwt_tmpdir("purge-renew");
	char *policy = path_in(dir, "policy.json");
	kwt_result r;
	int nv0 = tpm_nv_count();
	cr_assert_eq(
	    cli_status("printf '%%s' '{\"key\": {\"backend\": \"tpm\", \"revocable\": true},"
	               " \"x509\": {\"subject\": \"CN=ren.example\"}}' > '%s'",
	               policy),
	    0);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "create", "ren", "--policy", policy));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", "ren", "--new-key"));
	kwt_result_free(&r);
	json_t *v1 = cli_show(store, "ren", 1), *v2 = cli_show(store, "ren", 2);
	cr_assert_str_neq(cli_js(revocation_of(v1), "nv_index"),
	                  cli_js(revocation_of(v2), "nv_index"));
	cr_assert_eq(tpm_nv_count(), nv0 + 2);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "ren", "--purge"));
	cr_assert_str_eq(
	    r.out,
	    "purged ren: 2 TPM keys revoked: no copy of their wrapped blobs can sign again\n");
	kwt_result_free(&r);
	cr_assert_eq(tpm_nv_count(), nv0);
	assert_tpm_nothing_loaded("after the purge");
	json_decref(v1);
	json_decref(v2);
	free(policy);
	free(dir);
	free(store);
}

/* The default TPM key: a purge cannot end it, and keyward says so. */
Test(purge, an_ordinary_tpm_key_is_only_forgotten_and_a_copy_still_signs)
{
	char *store = kwt_store_new(1, 0), *dir = kwt_tmpdir("purge-tpm");
	kwt_result r;
	int nv0 = tpm_nv_count();
	cli_create(store, NULL, "plain", "tpm", "ec-p256", "CN=plain.example", 30, NULL);
	cr_assert_eq(tpm_nv_count(), nv0, "an ordinary key has no counter");
	keep_files(store, dir, "plain", 1);
	char *copy = store_copy(store, dir);

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "plain", "--purge"));
	cr_assert_str_eq(r.out,
	                 "purged plain: 1 TPM key forgotten: the store dropped its wrapped "
	                 "blob and the TPM holds no copy, but any copy of the blob (a cert "
	                 "key-ref --format tss2 file, a backup of the store) still loads and "
	                 "signs on that TPM\n");
	cr_assert(strstr(r.out, "destroyed") == NULL, "%s", r.out);
	kwt_result_free(&r);
	json_t *keys = purge_event_keys(store);
	assert_keys(keys, 0, 0, 1);

	/* what the output warns of: every copy still signs */
	cr_assert_eq(tpm2_openssl_sign(dir, "key.tss2", "pub.pem"), 0,
	             "tpm2-openssl no longer signs with the TSS2 file");
	cr_assert_eq(tpm2_tools_sign(dir, "key.tss2", NULL, 0, "pub.pem"), 0);
	cr_assert_eq(keyward_signs_from(copy, dir, "plain", &r), 0, "%s", r.err);
	kwt_result_free(&r);
	assert_tpm_nothing_loaded("after the copies signed");
	json_decref(keys);
	free(copy);
	free(dir);
	free(store);
}

Test(purge, a_pkcs11_key_is_destroyed_on_the_token)
{
	char *store = kwt_store_new(0, 1), *dir = kwt_tmpdir("purge-p11");
	kwt_result r;
	cli_create(store, NULL, "tok", "hsm", "ec-p256", "CN=tok.example", 30, NULL);
	json_t *show = cli_show(store, "tok", 0);
	const char *id =
	    cli_js(json_object_get(json_object_get(show, "key"), "attributes"), "CKA_ID");
	char idline[200];
	snprintf(idline, sizeof(idline), "ID:         %s\n", id);
	char *before = cli_p11_list();
	cr_assert(strstr(before, idline) != NULL, "the token lacks %s before: %s", id, before);
	char *copy = store_copy(store, dir);

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "purge", "tok", "--force"));
	cr_assert_str_eq(r.out, "purged tok: 1 key destroyed in its device\n");
	kwt_result_free(&r);
	json_t *keys = purge_event_keys(store);
	assert_keys(keys, 1, 0, 0);
	/* no object of any class with that CKA_ID on the token */
	char *after = cli_p11_list();
	cr_assert(strstr(after, idline) == NULL, "objects with CKA_ID %s remain: %s", id, after);
	/* and a copy of the store names a key that no longer exists */
	cr_assert_neq(keyward_signs_from(copy, dir, "tok", &r), 0);
	cli_assert_err_has(&r, id, "cert csr from the copied store");
	kwt_result_free(&r);
	json_decref(keys);
	json_decref(show);
	free(before);
	free(after);
	free(copy);
	free(dir);
	free(store);
}

/* A create that fails after its revocable key was made (here the CA cannot
 * sign: its key was deleted from the token behind keyward's back) leaves
 * neither the key's counter nor anything loaded in the TPM. */
Test(purge, a_failed_create_leaves_no_counter_behind)
{
	char *store = kwt_store_new(1, 1);
	kwt_result r;
	cli_ok(
	    &r, NULL, store,
	    CLI_ARGS("cert", "create", "root", "--backend", "hsm", "--subject", "CN=Root", "--ca"));
	kwt_result_free(&r);
	json_t *show = cli_show(store, "root", 0);
	const char *id =
	    cli_js(json_object_get(json_object_get(show, "key"), "attributes"), "CKA_ID");
	cr_assert_eq(cli_status("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                        "--delete-object --type privkey --id %s >/dev/null 2>&1",
	                        kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                        kwt_env("KW_TEST_P11_PIN"), id),
	             0);
	int nv0 = tpm_nv_count();
	CLI_REFUSED(store, 1, NULL, "cert", "create", "leaf", "--backend", "tpm", "--subject",
	            "CN=leaf.example", "--revocable", "--issuer", "ca:root");
	cr_assert_eq(tpm_nv_count(), nv0, "the failed create left its key's counter");
	assert_tpm_nothing_loaded("after the failed create");
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "show", "leaf");
	json_decref(show);
	free(store);
}
