/*
 * keyward CLI end to end: certificate policies. policy default | show | set |
 * import-azure and cert create --policy, against a store with backends "tpm"
 * (this program's swtpm) and "hsm" (its SoftHSM token); certificates checked
 * with openssl, refusals with the store dump and the token's object count.
 */
#include "cli_devices.h"

static const char *env_now[] = {"KEYWARD_NOW=" CLI_NOW, NULL};
static const char *env_later[] = {"KEYWARD_NOW=" CLI_LATER, NULL};
#define NOW   ((char *const *)env_now)
#define LATER ((char *const *)env_later)

static char *policy_file(const char *name, const char *json)
{
	char *dir = kwt_tmpdir("policy");
	char *path = kwt_write_file(dir, name, json, strlen(json), 0644);
	free(dir);
	return path;
}

static char *data_file(const char *name)
{
	char *path = NULL;
	cr_assert(asprintf(&path, "%s/tests/cli/data/%s", kwt_env("KW_TEST_SOURCE_DIR"), name) > 0);
	return path;
}

static void assert_json_eq(const json_t *got, const json_t *want, const char *what)
{
	char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
	char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
	cr_assert(json_equal(got, want), "%s:\n got  %s\n want %s", what, g, w);
	free(g);
	free(w);
}

static json_t *policy_show(const char *store, const char *name)
{
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("policy", "show", name));
	json_t *j = cli_json(r.out, "policy show");
	kwt_result_free(&r);
	return j;
}

/* The exported certificate's extensions as openssl prints them. */
static char *cert_exts(const char *store, const char *name, const char *version)
{
	char *dir = kwt_tmpdir("pem");
	char pem[4096];
	kwt_result r;
	snprintf(pem, sizeof(pem), "%s/c.pem", dir);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("cert", "export", name, "--version", version, "--out", pem));
	kwt_result_free(&r);
	char *text = cli_out("openssl x509 -in '%s' -noout -ext keyUsage,extendedKeyUsage,"
	                     "subjectAltName,basicConstraints -subject -nameopt RFC2253 -enddate "
	                     "-dateopt iso_8601",
	                     pem);
	free(dir);
	return text;
}

static void assert_ext(const char *text, const char *header, const char *want)
{
	char *line = cli_line_after(text, header);
	cr_assert(line != NULL, "no %s in: %s", header, text);
	cr_assert_str_eq(line, want, "%s", header);
	free(line);
}

static void assert_has(const char *text, const char *needle)
{
	cr_assert(strstr(text, needle) != NULL, "'%s' not in: %s", needle, text);
}

/* ---- policy default, help ---- */

Test(cli_policy, default_prints_a_policy_to_start_from)
{
	kwt_result r;
	cli_ok(&r, NULL, NULL, CLI_ARGS("policy", "default"));
	json_t *got = cli_json(r.out, "policy default");
	json_t *want = json_loads("{\"key\": {\"type\": \"ec-p256\", \"reuse_key\": false},"
	                          " \"x509\": {\"ekus\": [\"serverAuth\"], \"key_usage\":"
	                          " [\"digitalSignature\"], \"validity_days\": 365},"
	                          " \"lifetime_actions\": [], \"issuer\": {\"name\": \"self\"},"
	                          " \"history_limit\": 10}",
	                          0, NULL);
	assert_json_eq(got, want, "policy default");
	kwt_result_free(&r);
	/* --json is accepted: the output is JSON either way */
	cli_ok(&r, NULL, NULL, CLI_ARGS("policy", "default", "--json"));
	json_decref(got);
	got = cli_json(r.out, "policy default --json");
	assert_json_eq(got, want, "policy default --json");
	kwt_result_free(&r);
	json_decref(got);
	json_decref(want);
	cli_runv(&r, NULL, NULL, CLI_ARGS("policy", "default", "extra"));
	cli_assert_error(&r, 2, "policy default extra");
	kwt_result_free(&r);
}

Test(cli_policy, help_describes_every_subcommand)
{
	kwt_result r;
	cli_ok(&r, NULL, NULL, CLI_ARGS("policy", "--help"));
	assert_has(r.out, "default");
	assert_has(r.out, "show");
	assert_has(r.out, "set");
	assert_has(r.out, "import-azure");
	kwt_result_free(&r);
	cli_ok(&r, NULL, NULL, CLI_ARGS("--help"));
	assert_has(r.out, "policy");
	kwt_result_free(&r);
	cli_ok(&r, NULL, NULL, CLI_ARGS("policy", "default", "--help"));
	assert_has(r.out, "Usage: keyward policy default");
	assert_has(r.out, "lifetime_percentage");
	assert_has(r.out, "days_before_expiry");
	assert_has(r.out, "history_limit");
	kwt_result_free(&r);
	cli_ok(&r, NULL, NULL, CLI_ARGS("policy", "set", "--help"));
	assert_has(r.out, "Usage: keyward policy set NAME FILE");
	assert_has(r.out, "next renewal");
	kwt_result_free(&r);
	cli_ok(&r, NULL, NULL, CLI_ARGS("policy", "import-azure", "--help"));
	assert_has(r.out, "Usage: keyward policy import-azure FILE [--backend B]");
	assert_has(r.out, "get-default-policy");
	kwt_result_free(&r);
	cli_ok(&r, NULL, NULL, CLI_ARGS("policy", "show", "--help"));
	assert_has(r.out, "Usage: keyward policy show NAME");
	kwt_result_free(&r);
	cli_runv(&r, NULL, NULL, CLI_ARGS("policy", "frobnicate"));
	cli_assert_error(&r, 2, "policy frobnicate");
	kwt_result_free(&r);
}

/* ---- cert create --policy ---- */

#define EC_POLICY                                                                                  \
	"{\"key\": {\"type\": \"ec-p384\", \"backend\": \"hsm\"},"                                 \
	" \"x509\": {\"subject\": \"CN=web01.example.com,O=Example Inc,C=US\","                    \
	" \"sans\": [\"DNS:web01.example.com\", \"DNS:alt.example.com\", \"IP:192.0.2.5\"],"       \
	" \"ekus\": [\"serverAuth\", \"clientAuth\", \"1.3.6.1.5.5.7.3.3\"],"                      \
	" \"key_usage\": [\"digitalSignature\", \"keyAgreement\"], \"validity_days\": 45},"        \
	" \"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 75},"                     \
	" \"action\": \"auto_renew\"}, {\"trigger\": {\"days_before_expiry\": 5},"                 \
	" \"action\": \"notify\"}], \"history_limit\": 4}"

Test(cli_policy, create_from_a_policy_file_carries_all_of_it)
{
	kwt_result r;
	char *store = kwt_store_new(1, 1);
	char *file = policy_file("web01.json", EC_POLICY);
	int objects = kwt_p11_object_count();
	cli_ok(&r, NOW, store, CLI_ARGS("cert", "create", "web01", "--policy", file));
	assert_has(r.out, "created web01 version 1: ec-p384 key in backend hsm");
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects + 3,
	             "the key is on the token named by "
	             "key.backend");

	json_t *show = cli_show(store, "web01", 0);
	cr_assert_str_eq(cli_js(show, "backend"), "hsm");
	cr_assert_str_eq(cli_js(json_object_get(show, "key"), "type"), "ec-p384");
	cr_assert_str_eq(cli_js(show, "not_after"), "2030-02-15T00:00:00Z", "45 days");
	json_decref(show);

	char *text = cert_exts(store, "web01", "1");
	assert_ext(text, "X509v3 Extended Key Usage",
	           "TLS Web Server Authentication, TLS Web Client Authentication, Code Signing");
	assert_ext(text, "X509v3 Key Usage", "Digital Signature, Key Agreement");
	assert_ext(text, "X509v3 Subject Alternative Name",
	           "DNS:web01.example.com, DNS:alt.example.com, IP Address:192.0.2.5");
	assert_has(text, "subject=CN=web01.example.com,O=Example Inc,C=US");
	assert_has(text, "notAfter=2030-02-15 00:00:00Z");
	free(text);

	/* the stored policy is the file's, normalised */
	json_t *p = policy_show(store, "web01");
	json_t *want = json_loads(EC_POLICY, 0, NULL);
	json_object_set_new(json_object_get(want, "key"), "reuse_key", json_false());
	json_array_set_new(json_object_get(json_object_get(want, "x509"), "ekus"), 2,
	                   json_string("codeSigning"));
	json_object_set_new(want, "issuer", json_pack("{s:s}", "name", "self"));
	assert_json_eq(p, want, "policy show after create --policy");
	json_decref(want);
	json_decref(p);
	free(file);
	free(store);
}

#define RSA_POLICY                                                                                 \
	"{\"key\": {\"type\": \"rsa-2048\", \"backend\": \"hsm\", \"reuse_key\": true},"           \
	" \"x509\": {\"subject\": \"CN=file.example\", \"ekus\": [\"clientAuth\"],"                \
	" \"key_usage\": [\"digitalSignature\", \"nonRepudiation\", \"keyEncipherment\"],"         \
	" \"validity_days\": 200}, \"lifetime_actions\": [{\"trigger\":"                           \
	" {\"days_before_expiry\": 20}, \"action\": \"auto_renew\"}]}"

Test(cli_policy, flags_override_the_policy_file)
{
	kwt_result r;
	char *store = kwt_store_new(1, 1);
	char *file = policy_file("rsa.json", RSA_POLICY);
	int objects = kwt_p11_object_count();
	cli_ok(&r, NOW, store,
	       CLI_ARGS("cert", "create", "api", "--policy", file, "--backend", "tpm", "--subject",
	                "CN=api.example,O=Flags", "--san", "DNS:api.example", "--san",
	                "IP:2001:db8::7", "--days", "30"));
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects, "--backend tpm: nothing on the token");
	json_t *show = cli_show(store, "api", 0);
	cr_assert_str_eq(cli_js(show, "backend"), "tpm");
	cr_assert_str_eq(cli_js(json_object_get(show, "key"), "type"), "rsa-2048");
	cr_assert_str_eq(cli_js(show, "not_after"), "2030-01-31T00:00:00Z", "--days 30");
	json_decref(show);
	char *text = cert_exts(store, "api", "1");
	assert_ext(text, "X509v3 Extended Key Usage", "TLS Web Client Authentication");
	assert_ext(text, "X509v3 Key Usage",
	           "Digital Signature, Non Repudiation, Key Encipherment");
	assert_ext(text, "X509v3 Subject Alternative Name",
	           "DNS:api.example, IP Address:2001:DB8:0:0:0:0:0:7");
	assert_has(text, "subject=CN=api.example,O=Flags");
	free(text);
	json_t *p = policy_show(store, "api");
	json_t *key = json_object_get(p, "key"), *x509 = json_object_get(p, "x509");
	cr_assert_str_eq(cli_js(key, "backend"), "tpm");
	cli_assert_jbool(key, "reuse_key", 1, "policy key");
	cr_assert_str_eq(cli_js(x509, "subject"), "CN=api.example,O=Flags");
	cr_assert_eq(json_integer_value(json_object_get(x509, "validity_days")), 30);
	cr_assert_eq(json_array_size(json_object_get(x509, "sans")), 2);
	cr_assert_eq(json_integer_value(json_object_get(
	                 json_object_get(json_array_get(json_object_get(p, "lifetime_actions"), 0),
	                                 "trigger"),
	                 "days_before_expiry")),
	             20);
	json_decref(p);
	/* a policy without backend or subject takes them from the flags */
	free(file);
	file = policy_file("bare.json", "{\"x509\": {\"validity_days\": 7}}");
	cli_ok(&r, NOW, store,
	       CLI_ARGS("cert", "create", "bare", "--policy", file, "--backend", "hsm", "--subject",
	                "CN=bare.example"));
	kwt_result_free(&r);
	show = cli_show(store, "bare", 0);
	cr_assert_str_eq(cli_js(show, "not_after"), "2030-01-08T00:00:00Z");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(show, "sans"), 0)),
	                 "DNS:bare.example", "SAN from the CN");
	json_decref(show);
	free(file);
	free(store);
}

static void create_refused(const char *store, int code, const char *needle, const char *json,
                           const char *const *extra)
{
	char *file = policy_file("bad.json", json);
	const char *args[32] = {"cert", "create", "newcert", "--policy", file};
	size_t n = 5;
	for (; extra && *extra; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	cli_refused(store, NOW, code, needle, args, NULL);
	free(file);
}

Test(cli_policy, create_refuses_a_bad_policy_before_touching_a_device)
{
	char *store = kwt_store_new(1, 1);
	const char *const none[] = {NULL};
	create_refused(store, 2,
	               "lifetime_actions[0].trigger.lifetime_percentage: must be 1 to 99, "
	               "not 0",
	               "{\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\": \"CN=n\"},"
	               " \"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 0},"
	               " \"action\": \"auto_renew\"}]}",
	               none);
	create_refused(store, 2, "x509.key_usage[1]: keyEncipherment needs an RSA key",
	               "{\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\": \"CN=n\","
	               " \"key_usage\": [\"digitalSignature\", \"keyEncipherment\"]}}",
	               none);
	/* a flag that breaks the file's policy is refused by the field it breaks */
	const char *const ec[] = {"--key", "ec-p256", NULL};
	create_refused(store, 2, "x509.key_usage[2]: keyEncipherment needs an RSA key, not ec-p256",
	               RSA_POLICY, ec);
	const char *const short_days[] = {"--days", "10", NULL};
	create_refused(store, 2, "lifetime_actions[0].trigger.days_before_expiry: must be less",
	               RSA_POLICY, short_days);
	create_refused(store, 2, "key.type: unknown key type 'ec-p521'",
	               "{\"key\": {\"type\": \"ec-p521\", \"backend\": \"hsm\"}}", none);
	create_refused(store, 1, "no ACME issuer 'corp-acme'",
	               "{\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\": \"CN=n\"},"
	               " \"issuer\": {\"name\": \"acme:corp-acme\"}}",
	               none);
	create_refused(store, 2, "deploy: a policy cannot set cert",
	               "{\"key\": {\"backend\": \"tpm\"}, \"x509\": {\"subject\": \"CN=n\"},"
	               " \"deploy\": {\"cert\": \"web.pem\"}}",
	               none);
	create_refused(store, 2, "x509.colour: unknown field",
	               "{\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"colour\": \"red\"}}", none);
	create_refused(store, 1, "line 1, column", "{\"key\": ", none);
	create_refused(store, 2, "--backend is required", "{\"x509\": {\"subject\": \"CN=n\"}}",
	               none);
	create_refused(store, 2, "--subject is required", "{\"key\": {\"backend\": \"hsm\"}}",
	               none);
	create_refused(store, 1, "unknown backend 'nope'",
	               "{\"key\": {\"backend\": \"nope\"}, \"x509\": {\"subject\": \"CN=n\"}}",
	               none);
	/* the file's name leads a message about the file */
	kwt_result r;
	char *file = policy_file("named.json", "{\"history_limit\": 0}");
	cli_refused(store, NOW, 2, "history_limit: must be 1 to 1000, not 0",
	            CLI_ARGS("cert", "create", "newcert", "--policy", file), &r);
	char want[4200];
	snprintf(want, sizeof(want), "keyward: %s: history_limit:", file);
	cr_assert(strncmp(r.err, want, strlen(want)) == 0, "stderr: %s", r.err);
	kwt_result_free(&r);
	free(file);
	CLI_REFUSED(store, 1, "cannot read /nonexistent/p.json", "cert", "create", "newcert",
	            "--policy", "/nonexistent/p.json");
	free(store);
}

/* ---- policy show | set ---- */

#define NEW_POLICY                                                                                 \
	"{\"key\": {\"type\": \"ec-p256\", \"backend\": \"hsm\", \"reuse_key\": true},"            \
	" \"x509\": {\"subject\": \"CN=web01.example\", \"sans\": [\"DNS:web01.example\","         \
	" \"DNS:new.example\"], \"ekus\": [\"clientAuth\"], \"key_usage\":"                        \
	" [\"digitalSignature\"], \"validity_days\": 10}, \"lifetime_actions\":"                   \
	" [{\"trigger\": {\"days_before_expiry\": 3}, \"action\": \"auto_renew\"}],"               \
	" \"issuer\": {\"name\": \"self\"}, \"deploy\": {\"target\": \"web01-files\"},"            \
	" \"history_limit\": 5}"

Test(cli_policy, set_then_show_and_the_next_renewal_follows_it)
{
	kwt_result r;
	char *store = kwt_store_new(1, 1);
	const char *const sans[] = {"DNS:web01.example", NULL};
	cli_create(store, CLI_NOW, "web01", "hsm", "ec-p256", "CN=web01.example", 90, sans);
	json_t *p = policy_show(store, "web01");
	cr_assert_str_eq(cli_js(json_object_get(p, "key"), "backend"), "hsm");
	cr_assert_eq(
	    json_integer_value(json_object_get(json_object_get(p, "x509"), "validity_days")), 90);
	json_decref(p);
	cli_ok(&r, NULL, store, CLI_ARGS("policy", "show", "web01", "--json"));
	kwt_result_free(&r);

	char *file = policy_file("new.json", NEW_POLICY);
	cli_ok(&r, NOW, store,
	       CLI_ARGS("deploy-target", "add", "web01-files", "--cert", "/etc/ssl/web01.pem",
	                "--mode", "0644", "--deploy", "true"));
	kwt_result_free(&r);
	cli_ok(&r, NOW, store, CLI_ARGS("policy", "set", "web01", file));
	assert_has(r.out, "policy of web01 set");
	kwt_result_free(&r);
	p = policy_show(store, "web01");
	json_t *want = json_loads(NEW_POLICY, 0, NULL);
	assert_json_eq(p, want, "policy show after set");
	json_decref(want);
	json_decref(p);

	/* one event says so */
	cli_ok(&r, NULL, store, CLI_ARGS("events", "--cert", "web01", "--json"));
	json_t *events = cli_json(r.out, "events");
	json_t *last = json_array_get(events, json_array_size(events) - 1);
	cr_assert_str_eq(cli_js(last, "type"), "policy.set");
	kwt_result_free(&r);
	json_decref(events);

	/* the current certificate is untouched; the renewal follows the new policy */
	char *text = cert_exts(store, "web01", "1");
	assert_ext(text, "X509v3 Extended Key Usage", "TLS Web Server Authentication");
	free(text);
	cli_ok(&r, LATER, store, CLI_ARGS("cert", "renew", "web01"));
	kwt_result_free(&r);
	text = cert_exts(store, "web01", "2");
	assert_ext(text, "X509v3 Extended Key Usage", "TLS Web Client Authentication");
	assert_ext(text, "X509v3 Subject Alternative Name", "DNS:web01.example, DNS:new.example");
	assert_has(text, "notAfter=2030-06-11 00:00:00Z");
	free(text);
	free(file);
	free(store);
}

static void set_refused(const char *store, int code, const char *needle, const char *name,
                        const char *json)
{
	char *file = policy_file("bad.json", json);
	cli_refused(store, NULL, code, needle, CLI_ARGS("policy", "set", name, file), NULL);
	free(file);
}

#define GOOD_TAIL "\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\": \"CN=web01\"}"

Test(cli_policy, set_refuses_a_bad_policy_and_changes_nothing)
{
	char *store = kwt_store_new(1, 1);
	cli_create(store, CLI_NOW, "web01", "hsm", "ec-p256", "CN=web01", 90, NULL);
	set_refused(store, 2,
	            "lifetime_actions[0].trigger.lifetime_percentage: must be 1 to 99, "
	            "not 100",
	            "web01",
	            "{" GOOD_TAIL ", \"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\":"
	            " 100}, \"action\": \"auto_renew\"}]}");
	set_refused(store, 2,
	            "lifetime_actions[0].trigger.days_before_expiry: must be 1 to 364, "
	            "not -3",
	            "web01",
	            "{" GOOD_TAIL ", \"lifetime_actions\": [{\"trigger\": {\"days_before_expiry\":"
	            " -3}, \"action\": \"notify\"}]}");
	set_refused(store, 2, "lifetime_actions[1].action: only one auto_renew", "web01",
	            "{" GOOD_TAIL ", \"lifetime_actions\": [{\"trigger\": {\"days_before_expiry\":"
	            " 3}, \"action\": \"auto_renew\"}, {\"trigger\": {\"lifetime_percentage\": 50},"
	            " \"action\": \"auto_renew\"}]}");
	set_refused(store, 2, "colour: unknown field", "web01", "{" GOOD_TAIL ", \"colour\": 1}");
	set_refused(store, 2, "key.size: unknown field", "web01",
	            "{\"key\": {\"backend\": \"hsm\", \"size\": 2048}}");
	set_refused(store, 1, "no ACME issuer 'le'", "web01",
	            "{" GOOD_TAIL ", \"issuer\": {\"name\": \"acme:le\"}}");
	set_refused(store, 2, "key.type: unknown key type 'dsa'", "web01",
	            "{\"key\": {\"type\": \"dsa\", \"backend\": \"hsm\"}}");
	set_refused(store, 2, "x509.validity_days: must be an integer, not a string", "web01",
	            "{\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\": \"CN=web01\","
	            " \"validity_days\": \"90\"}}");
	set_refused(store, 2, "deploy: a policy cannot set mode", "web01",
	            "{" GOOD_TAIL ", \"deploy\": {\"mode\": \"u=rw\"}}");
	set_refused(store, 1, "deploy.target: unknown deploy target 'nope'", "web01",
	            "{" GOOD_TAIL ", \"deploy\": {\"target\": \"nope\"}}");
	set_refused(store, 1, "key.backend: unknown backend 'nope'", "web01",
	            "{\"key\": {\"backend\": \"nope\"}, \"x509\": {\"subject\": \"CN=web01\"}}");
	set_refused(store, 2, "x509.subject: required", "web01",
	            "{\"key\": {\"backend\": \"hsm\"}}");
	set_refused(store, 1, "unknown certificate 'nope'", "nope", "{" GOOD_TAIL "}");
	set_refused(store, 1, "policy is not valid JSON: line 2, column", "web01",
	            "{\n  \"key\": }\n");
	CLI_REFUSED(store, 1, "cannot read /nonexistent.json", "policy", "set", "web01",
	            "/nonexistent.json");
	CLI_REFUSED(store, 2, "give NAME and FILE", "policy", "set", "web01");
	CLI_REFUSED(store, 1, "unknown certificate 'nope'", "policy", "show", "nope");
	free(store);
}

/* ---- policy import-azure ---- */

static int count_prefixed(const char *text, const char *prefix)
{
	int n = 0;
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		n += strncmp(p, prefix, strlen(prefix)) == 0;
	return n;
}

Test(cli_policy, import_azure_maps_and_says_what_it_left_out)
{
	const char *const files[] = {"azure-policy-web01.json", "azure-policy-web01-snake.json"};
	json_t *first = NULL;
	for (size_t i = 0; i < 2; i++) {
		kwt_result r;
		char *path = data_file(files[i]);
		cli_runv(&r, NULL, NULL,
		         CLI_ARGS("policy", "import-azure", path, "--backend", "tpm"));
		cr_assert_eq(r.status, 0, "%s: exit %d: %s", files[i], r.status, r.err);
		json_t *p = cli_json(r.out, "import-azure");
		cr_assert_str_eq(cli_js(json_object_get(p, "key"), "backend"), "tpm");
		cr_assert_str_eq(cli_js(json_object_get(p, "key"), "type"), "ec-p256");
		cr_assert_eq(json_integer_value(
		                 json_object_get(json_object_get(p, "x509"), "validity_days")),
		             730);
		cr_assert_eq(kwt_count_lines(r.err), 3, "%s: stderr: %s", files[i], r.err);
		cr_assert_eq(count_prefixed(r.err, "keyward: not mapped: "), 3, "%s", r.err);
		assert_has(r.err, i == 0
		                      ? "keyward: not mapped: x509CertificateProperties."
		                        "subjectAlternativeNames.emails=[\"pki@contoso.com\"]"
		                      : "keyward: not mapped: x509_certificate_properties."
		                        "subject_alternative_names.emails=[\"pki@contoso.com\"]");
		assert_has(r.err, "=keyEncipherment: EC keys do no key encipherment");
		assert_has(r.err, "=application/x-pem-file: keyward keeps no secret");
		if (i == 0)
			first = p;
		else {
			assert_json_eq(p, first, "snake_case maps as camelCase does");
			json_decref(p);
		}
		kwt_result_free(&r);
		free(path);
	}
	json_decref(first);
}

Test(cli_policy, an_imported_policy_creates_the_certificate_it_describes)
{
	kwt_result r;
	char *store = kwt_store_new(1, 1);
	char *path = data_file("azure-policy-web01.json");
	cli_runv(&r, NULL, NULL, CLI_ARGS("policy", "import-azure", path, "--backend", "hsm"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	char *file = policy_file("imported.json", r.out);
	kwt_result_free(&r);
	cli_ok(&r, NOW, store, CLI_ARGS("cert", "create", "web01", "--policy", file));
	kwt_result_free(&r);
	char *text = cert_exts(store, "web01", "1");
	assert_ext(text, "X509v3 Extended Key Usage",
	           "TLS Web Server Authentication, TLS Web Client Authentication");
	assert_ext(text, "X509v3 Key Usage", "Digital Signature");
	assert_ext(text, "X509v3 Subject Alternative Name",
	           "DNS:web01.contoso.com, DNS:www.contoso.com");
	assert_has(text, "subject=CN=web01.contoso.com,O=Contoso Ltd,C=US");
	assert_has(text, "notAfter=2032-01-01 00:00:00Z"); /* 730 days from 2030-01-01 */
	free(text);
	/* and the default az prints turns into a policy set accepts */
	free(path);
	path = data_file("azure-default-policy.json");
	cli_runv(&r, NULL, NULL, CLI_ARGS("policy", "import-azure", path, "--backend", "tpm"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(count_prefixed(r.err, "keyward: not mapped: "), 2, "%s", r.err);
	assert_has(r.err, "keyward: not mapped: keyProperties.exportable=true: keyward keys never "
	                  "leave the device\n");
	free(file);
	file = policy_file("default.json", r.out);
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("policy", "set", "web01", file));
	kwt_result_free(&r);
	json_t *p = policy_show(store, "web01");
	cr_assert_str_eq(cli_js(json_object_get(p, "key"), "type"), "rsa-2048");
	cr_assert_str_eq(cli_js(json_object_get(p, "x509"), "subject"), "CN=CLIGetDefaultPolicy");
	json_decref(p);
	free(file);
	free(path);
	free(store);
}

Test(cli_policy, import_azure_refuses_what_is_no_key_vault_policy)
{
	kwt_result r;
	char *bad = policy_file("bad.json", "{\"keyProperties\": [");
	cli_runv(&r, NULL, NULL, CLI_ARGS("policy", "import-azure", bad));
	cli_assert_error(&r, 1, "import-azure of broken JSON");
	cli_assert_err_has(&r, "Key Vault policy is not valid JSON: line", "import-azure");
	kwt_result_free(&r);
	free(bad);
	bad = policy_file("keyward.json", EC_POLICY);
	cli_runv(&r, NULL, NULL, CLI_ARGS("policy", "import-azure", bad));
	cli_assert_error(&r, 2, "import-azure of a keyward policy");
	cli_assert_err_has(&r, "not a Key Vault certificate policy", "import-azure");
	kwt_result_free(&r);
	free(bad);
	char *path = data_file("azure-policy-web01.json");
	cli_runv(&r, NULL, NULL, CLI_ARGS("policy", "import-azure", path, "--backend", "a b"));
	cli_assert_error(&r, 2, "import-azure --backend 'a b'");
	cli_assert_err_has(&r, "key.backend: bad backend name 'a b'", "import-azure");
	kwt_result_free(&r);
	cli_runv(&r, NULL, NULL, CLI_ARGS("policy", "import-azure", "/nonexistent.json"));
	cli_assert_error(&r, 1, "import-azure of a missing file");
	kwt_result_free(&r);
	cli_runv(&r, NULL, NULL, CLI_ARGS("policy", "import-azure"));
	cli_assert_error(&r, 2, "import-azure without a file");
	kwt_result_free(&r);
	free(path);
}
