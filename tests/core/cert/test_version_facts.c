/*
 * What cert list, cert show and metrics print about a certificate (subject, issuer DN, SANs,
 * SPKI SHA-256) is recorded with its version (schema 6: versions.subject_dn, issuer_dn, sans,
 * spki_sha256) by every path that stores a certificate (create, renew, merge, import), and read
 * from there instead of decoding each certificate. A store from before (schema 5, no columns) is
 * filled when it is opened; a version without them is decoded. The output is the same, byte for
 * byte, in every case.
 */
#include <keyward/keyward.h>

#include "../cli/cli_ca.h"

#define FACTS_NULL "SELECT COUNT(*) FROM versions WHERE cert_der IS NOT NULL AND subject_dn IS NULL"

static char *out_of(const char *store, const char *const *args)
{
	kwt_result r;
	char env_now[64];
	snprintf(env_now, sizeof(env_now), "KEYWARD_NOW=%s", CLI_NOW);
	char *env[] = {env_now, NULL};
	cli_ok(&r, env, store, args);
	char *out = strdup(r.out);
	kwt_result_free(&r);
	return out;
}

typedef struct {
	char *text[7];
} outputs;

static outputs outputs_take(const char *store)
{
	outputs o = {{
	    out_of(store, CLI_ARGS("cert", "list", "--json")),
	    out_of(store, CLI_ARGS("cert", "list")),
	    out_of(store, CLI_ARGS("cert", "show", "web", "--json")),
	    out_of(store, CLI_ARGS("cert", "show", "web", "--version", "1", "--json")),
	    out_of(store, CLI_ARGS("cert", "show", "ext", "--json")),
	    out_of(store, CLI_ARGS("cert", "show", "wait", "--json")),
	    out_of(store, CLI_ARGS("metrics")),
	}};
	return o;
}

static void outputs_same(const outputs *a, const outputs *b, const char *what)
{
	for (int i = 0; i < 7; i++)
		cr_assert_str_eq(a->text[i], b->text[i], "%s: output %d differs", what, i);
}

static void outputs_free(outputs *o)
{
	for (int i = 0; i < 7; i++)
		free(o->text[i]);
}

static void sql(const char *store, const char *q)
{
	cr_assert_eq(cli_status("sqlite3 '%s/keyward.db' \"%s\"", store, q), 0, "%s", q);
}

/* web (renewed: versions 1 and 2, with SANs), ext (merged from an external CA), wait
 * (pending: a CSR only), imp (imported). */
static char *store_populated(void)
{
	char *store = kwt_store_new(0, 1), *dir = kwt_tmpdir("facts");
	const char *const sans[] = {"DNS:web.example", "DNS:*.web.example", "IP:10.0.0.1", NULL};
	kwt_result r;
	cli_create(store, CLI_NOW, "web", "hsm", "ec-p256", "CN=web.example,O=Keyward\\, Inc.", 90,
	           sans);
	free(out_of(store, CLI_ARGS("cert", "renew", "web")));
	free(out_of(store,
	            CLI_ARGS("cert", "create", "ext", "--backend", "hsm", "--subject",
	                     "CN=ext.example", "--san", "DNS:ext.example", "--issuer", "unknown")));
	free(out_of(store, CLI_ARGS("cert", "create", "wait", "--backend", "hsm", "--subject",
	                            "CN=wait.example", "--issuer", "unknown")));
	cli_ca ca = cli_ca_new();
	char *csr = cli_csr_file(store, dir, "ext", "ext.csr");
	char *leaf = cli_ca_sign(&ca, csr, "leaf.pem", 90, NULL);
	const char *const parts[] = {leaf, ca.inter, ca.root, NULL};
	char *bundle = cli_cat(dir, "bundle.pem", parts);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "merge", "ext", bundle));
	kwt_result_free(&r);
	char *pem = cli_path(dir, "imp.pem");
	cr_assert_eq(cli_status("cd '%s' && openssl req -x509 -newkey ec -pkeyopt"
	                        " ec_paramgen_curve:P-256 -nodes -keyout k.pem -out c.pem"
	                        " -subj '/CN=imp.example/OU=ops' -addext"
	                        " 'subjectAltName=DNS:imp.example' -days 30 >/dev/null 2>&1"
	                        " && cat k.pem c.pem > '%s'",
	                        dir, pem),
	             0);
	free(out_of(store, CLI_ARGS("cert", "import", "imp", "--backend", "hsm", "--pem", pem)));
	cli_ca_free(&ca);
	free(csr);
	free(leaf);
	free(bundle);
	free(pem);
	free(dir);
	return store;
}

Test(facts, every_path_that_stores_a_certificate_records_its_facts)
{
	char *store = store_populated();
	cr_assert_eq(
	    cli_sql_count(store, "SELECT COUNT(*) FROM versions WHERE cert_der IS NOT NULL"), 4,
	    "web 1 and 2, ext, imp");
	cr_assert_eq(cli_sql_count(store, FACTS_NULL), 0,
	             "a version with a certificate lacks facts");
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions WHERE cert_der IS NULL AND"
	                                  " subject_dn IS NOT NULL"),
	             0, "the pending version has facts without a certificate");
	cr_assert_eq(
	    cli_sql_count(store, "SELECT COUNT(*) FROM versions WHERE"
	                         " json_array_length(sans) = 3 AND json_extract(sans, '$[1]')"
	                         " = 'DNS:*.web.example' AND subject_dn ="
	                         " 'CN=web.example,O=Keyward\\\\, Inc.'"),
	    2, "web versions 1 and 2: %s",
	    cli_out("sqlite3 '%s/keyward.db' 'SELECT subject_dn, sans FROM versions'", store));
	cr_assert_eq(cli_sql_count(store,
	                           "SELECT COUNT(*) FROM versions WHERE"
	                           " subject_dn = 'OU=ops,CN=imp.example'"
	                           " AND issuer_dn = subject_dn AND length(spki_sha256) = 64"),
	             1, "imp");
	free(store);
}

Test(facts, listings_read_the_recorded_facts)
{
	char *store = store_populated();
	outputs a = outputs_take(store);
	/* what is recorded is what is printed: no certificate is decoded for it */
	sql(store, "UPDATE versions SET subject_dn = 'CN=recorded', sans = '[\\\"DNS:rec\\\"]',"
	           " spki_sha256 = '00ff' WHERE cert_id = (SELECT id FROM certs WHERE name ="
	           " 'imp')");
	char *list = out_of(store, CLI_ARGS("cert", "list", "--json"));
	json_t *all = cli_json(list, "cert list"), *imp = cli_find_named(all, "imp");
	cr_assert_str_eq(cli_js(imp, "subject"), "CN=recorded");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(imp, "sans"), 0)),
	                 "DNS:rec");
	cr_assert_str_eq(cli_js(imp, "public_key_sha256"), "00ff");
	char *metrics = out_of(store, CLI_ARGS("metrics"));
	cli_assert_has(metrics, "subject=\"CN=recorded\"");
	json_decref(all);
	free(metrics);
	/* forgotten facts: the certificate is decoded, the output is as before */
	sql(store, "UPDATE versions SET subject_dn = NULL, issuer_dn = NULL, sans = NULL,"
	           " spki_sha256 = NULL");
	outputs b = outputs_take(store);
	outputs_same(&a, &b, "facts decoded");
	cr_assert_eq(cli_sql_count(store, FACTS_NULL), 4, "a reader wrote to the store");
	outputs_free(&a);
	outputs_free(&b);
	free(list);
	free(store);
}

Test(facts, a_certificate_changed_without_its_facts_forgets_them)
{
	char *store = store_populated();
	sql(store,
	    "UPDATE versions SET cert_der = (SELECT v.cert_der FROM versions v JOIN certs c ON"
	    " c.id = v.cert_id WHERE c.name = 'ext') WHERE cert_id = (SELECT id FROM certs"
	    " WHERE name = 'imp')");
	cr_assert_eq(cli_sql_count(store, FACTS_NULL), 1);
	json_t *imp = cli_show(store, "imp", 0);
	cr_assert_str_eq(cli_js(imp, "subject"), "CN=ext.example");
	json_decref(imp);
	free(store);
}

Test(facts, a_schema_5_store_is_filled_when_opened)
{
	char *store = store_populated();
	outputs a = outputs_take(store);
	cr_assert_eq(cli_sql_count(store, "PRAGMA user_version"), kw_store_schema_version());
	/* the store as keyward before schema 6 left it */
	sql(store, "DROP TABLE cert_access; DROP TABLE deploy_targets; DROP TRIGGER "
	           "versions_facts_stale; ALTER TABLE "
	           "versions DROP COLUMN subject_dn;"
	           " ALTER TABLE versions DROP COLUMN issuer_dn; ALTER TABLE versions DROP COLUMN"
	           " sans; ALTER TABLE versions DROP COLUMN spki_sha256; PRAGMA user_version = 5;");
	outputs b = outputs_take(store);
	cr_assert_eq(cli_sql_count(store, "PRAGMA user_version"), kw_store_schema_version());
	cr_assert_eq(cli_sql_count(store, FACTS_NULL), 0, "the migration did not fill the facts");
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM sqlite_master WHERE name ="
	                                  " 'versions_facts_stale'"),
	             1);
	outputs_same(&a, &b, "after the migration");
	outputs_free(&a);
	outputs_free(&b);
	free(store);
}
