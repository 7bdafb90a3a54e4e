/*
 * keyward CLI end to end: cert import (PEM and PKCS#12 into the TPM "tpm" and
 * the SoftHSM token "hsm"). Key material is made by openssl in a temp dir;
 * what keyward says is checked against openssl, pkcs11-tool and the device's
 * own attributes.
 */
#include "cli_devices.h"

#define PW "import-pass-4412"

/* A self-signed certificate and its PKCS#8 key (cert.pem, key.pem) in dir. */
static char *material_new(const char *newkey)
{
	char *dir = kwt_tmpdir("import");
	cr_assert_eq(kwt_sh("cd '%s' && openssl req -x509 -newkey %s -nodes -keyout key.pem "
	                    "-out cert.pem -subj /CN=imp.example/O=Import -days 30 "
	                    "-addext subjectAltName=DNS:imp.example,DNS:alt.example "
	                    ">/dev/null 2>&1",
	                    dir, newkey),
	             0, "openssl makes the material (%s)", newkey);
	cr_assert_eq(kwt_sh("cd '%s' && printf '%%s' '%s' > pw && chmod 600 pw", dir, PW), 0);
	return dir;
}

/* The input file in the form named: pkcs8, trad, enc-pkcs8, enc-trad, p12. */
static char *input_make(const char *dir, const char *form)
{
	static const struct {
		const char *form, *cmd;
	} forms[] = {
	    {"pkcs8", "cat cert.pem key.pem > in"},
	    {"trad", "openssl pkey -in key.pem -traditional -out t.pem && cat cert.pem t.pem > in"},
	    {"enc-pkcs8", "openssl pkey -in key.pem -aes256 -passout pass:" PW
	                  " -out e.pem && cat e.pem cert.pem > in"},
	    {"enc-trad", "openssl pkey -in key.pem -traditional -aes256 -passout pass:" PW
	                 " -out e.pem && cat cert.pem e.pem > in"},
	    {"p12",
	     "openssl pkcs12 -export -in cert.pem -inkey key.pem -passout pass:" PW " -out in"},
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (strcmp(forms[i].form, form) == 0) {
			cr_assert_eq(kwt_sh("cd '%s' && rm -f in && (%s) >/dev/null 2>&1", dir,
			                    forms[i].cmd),
			             0, "making input %s", form);
			char *path = NULL;
			cr_assert(asprintf(&path, "%s/in", dir) > 0);
			return path;
		}
	cr_assert_fail("unknown form %s", form);
	return NULL;
}

static json_t *verify_json(const char *store, const char *name)
{
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "verify", name, "--json"));
	json_t *j = cli_json(r.out, "cert verify --json");
	kwt_result_free(&r);
	cli_assert_jbool(j, "exportable", 0, "verify");
	cli_assert_jbool(j, "generated_on_device", 0, "verify: imported, not generated");
	return j;
}

static void import_ok(const char *backend, const char *newkey, const char *form,
                      const char *pw_source, char *const env[], const char *key_type)
{
	kwt_result r;
	char *store = kwt_store_new(strcmp(backend, "tpm") == 0, strcmp(backend, "hsm") == 0);
	char *dir = material_new(newkey);
	char *in = input_make(dir, form);
	size_t len0 = 0, len1 = 0;
	char *before = kwt_read_file(in, &len0);
	int objects0 = strcmp(backend, "hsm") == 0 ? kwt_p11_object_count() : 0;

	cli_runv(&r, env, store,
	         pw_source
	             ? CLI_ARGS("cert", "import", "imp", "--backend", backend,
	                        strcmp(form, "p12") == 0 ? "--pkcs12" : "--pem", in,
	                        "--password-source", pw_source, "--json")
	             : CLI_ARGS("cert", "import", "imp", "--backend", backend,
	                        strcmp(form, "p12") == 0 ? "--pkcs12" : "--pem", in, "--json"));
	cli_assert_ok(&r, "cert import");
	json_t *res = cli_json(r.out, "cert import --json");
	cr_assert_str_eq(cli_js(res, "key_type"), key_type);
	cr_assert_str_eq(cli_js(res, "issuer"), "self");
	cli_assert_jbool(res, "exportable", 0, "import");
	json_decref(res);
	kwt_result_free(&r);

	/* the input is left byte for byte as it was */
	char *after = kwt_read_file(in, &len1);
	cr_assert(after != NULL && len0 == len1 && memcmp(before, after, len0) == 0,
	          "the input file changed without --shred-input");

	/* the store holds the given certificate, with a policy derived from it */
	json_t *show = cli_show(store, "imp", 0);
	char *fp = cli_out("openssl x509 -in '%s/cert.pem' -noout -fingerprint -sha256", dir);
	cr_assert_str_eq(cli_js(show, "thumbprint_sha256"), cli_hex_norm(fp));
	cr_assert_str_eq(cli_js(show, "subject"), "O=Import,CN=imp.example");
	cr_assert_eq(json_array_size(json_object_get(show, "sans")), 2);
	cli_assert_jbool(json_object_get(show, "key"), "generated_on_device", 0, "cert show key");
	cli_assert_jbool(json_object_get(show, "key"), "exportable", 0, "cert show key");
	json_decref(show);
	free(fp);

	/* one event, with what the device said */
	cli_ok(&r, NULL, store, CLI_ARGS("events", "--cert", "imp", "--json"));
	json_t *events = cli_json(r.out, "events");
	json_t *last = json_array_get(events, json_array_size(events) - 1);
	cr_assert_str_eq(cli_js(last, "type"), "cert.imported");
	json_decref(events);
	kwt_result_free(&r);

	json_t *v = verify_json(store, "imp");
	json_t *a = json_object_get(v, "attributes");
	if (strcmp(backend, "tpm") == 0) {
		cli_assert_jbool(a, "sensitiveDataOrigin", 0, "TPM object attributes");
		cli_assert_jbool(a, "fixedTPM", 0, "TPM2_Import: fixedTPM clear by TPM rule");
		cli_assert_jbool(a, "duplicable", 0, "TPM: no policy, no duplication");
		cli_assert_jbool(a, "auth_policy_empty", 1, "TPM authPolicy");
	} else {
		cli_assert_jbool(a, "CKA_LOCAL", 0, "PKCS#11 CKA_LOCAL");
		cli_assert_jbool(a, "CKA_EXTRACTABLE", 0, "PKCS#11 CKA_EXTRACTABLE");
		cli_assert_jbool(a, "CKA_SENSITIVE", 1, "PKCS#11 CKA_SENSITIVE");
		cr_assert_eq(kwt_p11_object_count(), objects0 + 3,
		             "private key, public key and certificate on the token");
		/* CKA_VALUE read refused: tests/backends/test_import.c */
	}
	json_decref(v);
	cli_assert_device_signs_for(store, "imp", dir);
	free(before);
	free(after);
	free(in);
	free(dir);
	free(store);
}

Test(import, tpm_ec_p256_pkcs8_pem)
{
	import_ok("tpm", "ec -pkeyopt ec_paramgen_curve:P-256", "pkcs8", NULL, NULL, "ec-p256");
}

Test(import, tpm_ec_p384_encrypted_pkcs8_password_file)
{
	char src[600];
	char *dir = material_new("ec -pkeyopt ec_paramgen_curve:P-384");
	snprintf(src, sizeof(src), "file:%s/pw", dir);
	free(dir);
	/* the password file of a fresh material dir holds the same password */
	import_ok("tpm", "ec -pkeyopt ec_paramgen_curve:P-384", "enc-pkcs8", src, NULL, "ec-p384");
}

Test(import, tpm_rsa_2048_encrypted_traditional_env)
{
	char *const env[] = {"KW_IMPORT_PW=" PW, NULL};
	import_ok("tpm", "rsa:2048", "enc-trad", "env:KW_IMPORT_PW", env, "rsa-2048");
}

Test(import, tpm_ec_p256_pkcs12_env)
{
	char *const env[] = {"KW_IMPORT_PW=" PW, NULL};
	import_ok("tpm", "ec -pkeyopt ec_paramgen_curve:P-256", "p12", "env:KW_IMPORT_PW", env,
	          "ec-p256");
}

Test(import, hsm_ec_p256_traditional_pem)
{
	import_ok("hsm", "ec -pkeyopt ec_paramgen_curve:P-256", "trad", NULL, NULL, "ec-p256");
}

Test(import, hsm_rsa_2048_pkcs12_password_file)
{
	char src[600];
	char *dir = material_new("rsa:2048");
	snprintf(src, sizeof(src), "file:%s/pw", dir);
	free(dir);
	import_ok("hsm", "rsa:2048", "p12", src, NULL, "rsa-2048");
}

Test(import, hsm_rsa_2048_pkcs8_pem)
{
	import_ok("hsm", "rsa:2048", "pkcs8", NULL, NULL, "rsa-2048");
}

Test(import, hsm_ec_p384_encrypted_pkcs8_env)
{
	char *const env[] = {"KW_IMPORT_PW=" PW, NULL};
	import_ok("hsm", "ec -pkeyopt ec_paramgen_curve:P-384", "enc-pkcs8", "env:KW_IMPORT_PW",
	          env, "ec-p384");
}

Test(import, shred_input_removes_the_file)
{
	kwt_result r;
	char *store = kwt_store_new(1, 0);
	char *dir = material_new("ec -pkeyopt ec_paramgen_curve:P-256");
	char *in = input_make(dir, "pkcs8");
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "import", "imp", "--backend", "tpm", "--pem", in, "--shred-input"));
	cr_assert(strstr(r.out, "shredded") != NULL, "the output says so: %s", r.out);
	kwt_result_free(&r);
	cr_assert_neq(access(in, F_OK), 0, "--shred-input leaves %s", in);
	cli_assert_device_signs_for(store, "imp", dir);
	free(in);
	free(dir);
	free(store);
}

/* A leaf issued by a CA: the chain is kept in order, the issuer is "unknown". */
Test(import, hsm_leaf_with_chain_keeps_the_chain)
{
	kwt_result r;
	char *store = kwt_store_new(0, 1);
	char *dir = kwt_tmpdir("chain");
	char out[600];
	cr_assert_eq(
	    kwt_sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	           "-nodes -keyout ca.key -out ca.pem -subj /CN=Import-CA -days 60 "
	           "-addext basicConstraints=critical,CA:TRUE >/dev/null 2>&1 && "
	           "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	           "-keyout key.pem -out leaf.csr -subj /CN=leaf.example >/dev/null 2>&1 && "
	           "printf 'subjectAltName=DNS:leaf.example\\n' > ext && "
	           "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	           "-days 20 -extfile ext -out cert.pem >/dev/null 2>&1 && "
	           "cat ca.pem key.pem cert.pem > in",
	           dir),
	    0, "openssl makes a CA and a leaf");
	snprintf(out, sizeof(out), "%s/in", dir);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "import", "leaf", "--backend", "hsm", "--pem", out));
	kwt_result_free(&r);
	json_t *show = cli_show(store, "leaf", 0);
	cr_assert_str_eq(cli_js(show, "issuer"), "unknown");
	cr_assert_str_eq(cli_js(show, "subject"), "CN=leaf.example");
	json_decref(show);
	snprintf(out, sizeof(out), "%s/full.pem", dir);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", "leaf", "--chain", "--out", out));
	kwt_result_free(&r);
	cr_assert_eq(kwt_sh("cd '%s' && openssl verify -CAfile ca.pem cert.pem >/dev/null 2>&1 && "
	                    "[ \"$(grep -c 'BEGIN CERTIFICATE' full.pem)\" = 2 ] && "
	                    "cat cert.pem ca.pem | cmp -s - full.pem",
	                    dir),
	             0, "export --chain gives the leaf, then the CA");
	free(dir);
	free(store);
}

/* ---- refusals: one line, exit code, store and token unchanged ---- */

typedef struct {
	const char *what;
	const char *prepare; /* shell, in the material dir, making "in" */
	const char *newkey;
	int p12;
	const char *pw_source; /* "file" = the dir's pw file, "bad" = a wrong one */
	int code;
	const char *needle;
} refusal;

static const refusal refusals[] = {
    {"mismatched key and certificate",
     "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out o.pem && cat cert.pem "
     "o.pem > in",
     "ec -pkeyopt ec_paramgen_curve:P-256", 0, NULL, 1, "does not match"},
    {"wrong PEM password",
     "openssl pkey -in key.pem -aes256 -passout pass:" PW " -out e.pem && cat cert.pem e.pem > in",
     "ec -pkeyopt ec_paramgen_curve:P-256", 0, "bad", 1, "wrong password"},
    {"wrong PKCS#12 password",
     "openssl pkcs12 -export -in cert.pem -inkey key.pem -passout pass:" PW " -out in",
     "ec -pkeyopt ec_paramgen_curve:P-256", 1, "bad", 1, "wrong password"},
    {"ed25519 key", "cat cert.pem key.pem > in", "ed25519", 0, NULL, 1, "ED25519"},
    {"rsa-1024 key", "cat cert.pem key.pem > in", "rsa:1024", 0, NULL, 1, "1024"},
    {"truncated file", "cat cert.pem key.pem | head -c 400 > in",
     "ec -pkeyopt ec_paramgen_curve:P-256", 0, NULL, 1, "truncated"},
    {"certificate without key", "cp cert.pem in", "ec -pkeyopt ec_paramgen_curve:P-256", 0, NULL, 1,
     "no readable private key"},
    {"key without certificate", "cp key.pem in", "ec -pkeyopt ec_paramgen_curve:P-256", 0, NULL, 1,
     "no certificate"},
    {"garbage", "head -c 3000 /dev/urandom > in", "ec -pkeyopt ec_paramgen_curve:P-256", 0, NULL, 1,
     "no readable private key"},
    {"garbage PKCS#12", "head -c 3000 /dev/urandom > in", "ec -pkeyopt ec_paramgen_curve:P-256", 1,
     NULL, 1, "not a PKCS#12"},
};

static void refusals_on(const char *backend)
{
	char *store = kwt_store_new(strcmp(backend, "tpm") == 0, strcmp(backend, "hsm") == 0);
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const refusal *f = &refusals[i];
		kwt_result r;
		char in[600], src[600];
		char *dir = material_new(f->newkey);
		cr_assert_eq(kwt_sh("cd '%s' && (%s) >/dev/null 2>&1", dir, f->prepare), 0,
		             "preparing: %s", f->what);
		snprintf(in, sizeof(in), "%s/in", dir);
		if (f->pw_source)
			cr_assert_eq(kwt_sh("cd '%s' && printf wrong > bad && chmod 600 bad", dir),
			             0);
		snprintf(src, sizeof(src), "file:%s/%s", dir, f->pw_source ? f->pw_source : "pw");
		char *dump0 = kwt_store_dump(store);
		int objects0 = kwt_p11_object_count();
		cli_runv(&r, NULL, store,
		         CLI_ARGS("cert", "import", "imp", "--backend", backend,
		                  f->p12 ? "--pkcs12" : "--pem", in, "--password-source", src));
		cli_assert_error(&r, f->code, f->what);
		cli_assert_err_has(&r, f->needle, f->what);
		cli_assert_err_lacks(&r, PW, f->what);
		char *dump1 = kwt_store_dump(store);
		cr_assert_str_eq(dump0, dump1, "%s: the store changed", f->what);
		cr_assert_eq(kwt_p11_object_count(), objects0,
		             "%s: an object was left on the token", f->what);
		cr_assert_eq(access(in, F_OK), 0, "%s: the input is gone", f->what);
		kwt_result_free(&r);
		free(dump0);
		free(dump1);
		free(dir);
	}
	free(store);
}

Test(import, refusals_tpm, .timeout = 120)
{
	refusals_on("tpm");
}

Test(import, refusals_hsm, .timeout = 120)
{
	refusals_on("hsm");
}

Test(import, usage_errors_exit_2)
{
	kwt_result r;
	char *store = kwt_store_new(1, 0);
	cli_runv(&r, NULL, store, CLI_ARGS("cert", "import", "imp", "--backend", "tpm"));
	cli_assert_error(&r, 2, "neither --pem nor --pkcs12");
	kwt_result_free(&r);
	cli_runv(
	    &r, NULL, store,
	    CLI_ARGS("cert", "import", "imp", "--backend", "tpm", "--pem", "a", "--pkcs12", "b"));
	cli_assert_error(&r, 2, "both --pem and --pkcs12");
	kwt_result_free(&r);
	free(store);
}
