/*
 * keyward serve: the Key Vault style endpoints, each the same core call as
 * the CLI: pending CSR and merge with an external CA, policy, soft delete,
 * recover and purge, contacts, metrics, events. Bad requests (malformed JSON,
 * unknown fields, oversized bodies, bad paths) get a 4xx JSON error and leave
 * the store and the token as they were.
 */
#include "../cli/cli_devices.h"
#include "server_test.h"

#define POLICY_UNKNOWN                                                                             \
	"{\"key\": {\"type\": \"ec-p256\", \"backend\": \"hsm\"},"                                 \
	" \"x509\": {\"subject\": \"CN=api.example.com\"}, \"issuer\": {\"name\": \"unknown\"}}"

/* Status, JSON error, and the store rows and token objects unchanged. */
static void bad_request(srv_ctx *c, const char *method, const char *path, const char *body,
                        int status, const char *needle)
{
	srv_reply r;
	char *before = srv_dump_no_events(c);
	int objects = kwt_p11_object_count();
	srv_curl(c, &r, "alice", method, path, body);
	srv_assert_status(&r, status, path);
	const char *msg =
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
	if (needle)
		cr_assert(strcasestr(msg, needle) != NULL, "%s %s: message lacks '%s': %s", method,
		          path, needle, r.body);
	char *after = srv_dump_no_events(c);
	cr_assert_str_eq(after, before, "%s %s (HTTP %d) changed the store", method, path, status);
	cr_assert_eq(kwt_p11_object_count(), objects, "%s %s changed the token", method, path);
	free(before);
	free(after);
	srv_reply_free(&r);
}

/* An external CA (openssl) signs csr_pem; the certificate and the CA as x5c JSON. */
static char *external_ca_sign(const srv_ctx *c, const char *csr_pem)
{
	free(kwt_write_file(c->dir, "api.csr", csr_pem, strlen(csr_pem), 0600));
	free(kwt_write_file(c->dir, "srv.ext", "extendedKeyUsage=serverAuth\n", 28, 0600));
	cr_assert_eq(
	    cli_status("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	               "-nodes -keyout xca.key -out xca.pem -subj '/CN=External CA' -days 30 "
	               "-addext basicConstraints=critical,CA:TRUE "
	               "-addext keyUsage=critical,keyCertSign >/dev/null 2>&1 && "
	               "openssl x509 -req -in api.csr -CA xca.pem -CAkey xca.key -CAcreateserial "
	               "-days 20 -extfile srv.ext -out api.crt >/dev/null 2>&1",
	               c->dir),
	    0, "openssl could not sign the CSR");
	char *leaf =
	    cli_out("cd '%s' && openssl x509 -in api.crt -outform DER | base64 -w0", c->dir);
	char *ca = cli_out("cd '%s' && openssl x509 -in xca.pem -outform DER | base64 -w0", c->dir);
	char *body = NULL;
	cr_assert(asprintf(&body, "{\"x5c\": [\"%s\", \"%s\"]}", leaf, ca) > 0);
	free(leaf);
	free(ca);
	return body;
}

Test(server_api, pending_csr_is_signed_elsewhere_and_merged)
{
	srv_ctx c;
	srv_reply r;
	char body[1024];
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	snprintf(body, sizeof(body), "{\"policy\": %s}", POLICY_UNKNOWN);
	srv_curl(&c, &r, "alice", "POST", "/certificates/api/create", body);
	srv_assert_status(&r, 201, "create with issuer unknown");
	srv_reply_free(&r);
	srv_curl(&c, &r, "alice", "GET", "/certificates/api/pending", NULL);
	srv_assert_status(&r, 200, "pending");
	const char *csr = cli_js(r.json, "csr");
	cr_assert(strstr(csr, "BEGIN CERTIFICATE REQUEST") != NULL, "%s", r.body);
	/* the CSR is the one the CLI hands out, signed by the key in the token */
	kwt_result k;
	cli_ok(&k, NULL, c.store, CLI_ARGS("cert", "csr", "api"));
	cr_assert_str_eq(k.out, csr, "the API and the CLI give different CSRs");
	kwt_result_free(&k);
	char *merge = external_ca_sign(&c, csr);
	srv_reply_free(&r);
	srv_curl(&c, &r, "alice", "POST", "/certificates/api/pending/merge", merge);
	srv_assert_status(&r, 200, "merge");
	srv_reply_free(&r);
	free(merge);
	json_t *shown = cli_show(c.store, "api", 0);
	cr_assert_str_eq(cli_js(shown, "status"), "active");
	cr_assert_str_eq(cli_js(shown, "issuer_dn"), "CN=External CA");
	json_decref(shown);
	srv_curl(&c, &r, "alice", "GET", "/certificates/api/pending", NULL);
	srv_assert_status(&r, 404, "nothing pending after the merge");
	srv_reply_free(&r);
	/* a renewal waits for the CA again; cancelling it destroys its key */
	int objects = kwt_p11_object_count();
	srv_curl(&c, &r, "alice", "POST", "/certificates/api/renew", "{\"key\": \"new\"}");
	srv_assert_status(&r, 200, "renew with issuer unknown");
	cr_assert_str_eq(cli_js(r.json, "status"), "pending", "%s", r.body);
	srv_reply_free(&r);
	cr_assert(kwt_p11_object_count() > objects, "the renewal made no key");
	srv_curl(&c, &r, "alice", "DELETE", "/certificates/api/pending", NULL);
	srv_assert_status(&r, 200, "pending cancel");
	cli_assert_jbool(r.json, "key_destroyed", 1, "pending cancel");
	srv_reply_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects, "the cancelled version's key is left");
	shown = cli_show(c.store, "api", 0);
	cr_assert_str_eq(cli_js(shown, "status"), "active");
	json_decref(shown);
	srv_teardown(&c);
}

Test(server_api, policy_is_read_and_replaced)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	cli_create(c.store, NULL, "web01", "hsm", "ec-p256", "CN=web01", 30, NULL);
	srv_start(&c);
	srv_curl(&c, &r, "bob", "GET", "/certificates/web01/policy", NULL);
	srv_assert_status(&r, 200, "policy get");
	json_t *p = json_deep_copy(r.json);
	srv_reply_free(&r);
	json_object_set_new(json_object_get(p, "x509"), "validity_days", json_integer(45));
	char *text = json_dumps(p, 0);
	srv_curl(&c, &r, "alice", "PUT", "/certificates/web01/policy", text);
	srv_assert_status(&r, 200, "policy put");
	srv_reply_free(&r);
	kwt_result k;
	cli_ok(&k, NULL, c.store, CLI_ARGS("policy", "show", "web01"));
	json_t *now = cli_json(k.out, "policy show");
	cr_assert_eq(
	    json_integer_value(json_object_get(json_object_get(now, "x509"), "validity_days")), 45,
	    "policy show after PUT: %s", k.out);
	json_decref(now);
	kwt_result_free(&k);
	/* a field the policy does not know, a value out of range: refused, named */
	json_object_set_new(json_object_get(p, "x509"), "colour", json_string("blue"));
	free(text);
	text = json_dumps(p, 0);
	bad_request(&c, "PUT", "/certificates/web01/policy", text, 400, "colour");
	json_object_del(json_object_get(p, "x509"), "colour");
	json_object_set_new(json_object_get(p, "x509"), "validity_days", json_integer(0));
	free(text);
	text = json_dumps(p, 0);
	bad_request(&c, "PUT", "/certificates/web01/policy", text, 400, "validity_days");
	free(text);
	json_decref(p);
	srv_teardown(&c);
}

Test(server_api, delete_recover_and_purge)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	cli_create(c.store, NULL, "web01", "hsm", "ec-p256", "CN=web01", 30, NULL);
	int objects = kwt_p11_object_count();
	srv_start(&c);
	srv_curl(&c, &r, "alice", "DELETE", "/certificates/web01", NULL);
	srv_assert_status(&r, 200, "delete");
	srv_reply_free(&r);
	srv_curl(&c, &r, "alice", "GET", "/certificates/web01", NULL);
	srv_assert_status(&r, 404, "deleted certificate");
	srv_reply_free(&r);
	srv_curl(&c, &r, "alice", "GET", "/deletedcertificates", NULL);
	srv_assert_status(&r, 200, "deleted list");
	cr_assert(cli_find_named(json_object_get(r.json, "value"), "web01") != NULL, "%s", r.body);
	srv_reply_free(&r);
	srv_curl(&c, &r, "alice", "POST", "/deletedcertificates/web01/recover", NULL);
	srv_assert_status(&r, 200, "recover");
	cr_assert_str_eq(cli_js(r.json, "name"), "web01");
	srv_reply_free(&r);
	bad_request(&c, "DELETE", "/deletedcertificates/web01", NULL, 404, "no deleted");
	srv_curl(&c, &r, "alice", "DELETE", "/certificates/web01", NULL);
	srv_assert_status(&r, 200, "delete again");
	srv_reply_free(&r);
	srv_curl(&c, &r, "alice", "DELETE", "/deletedcertificates/web01", NULL);
	srv_assert_status(&r, 200, "purge");
	srv_reply_free(&r);
	cr_assert_eq(cli_sql_count(c.store, "SELECT count(*) FROM certs WHERE name = 'web01'"), 0);
	cr_assert(kwt_p11_object_count() < objects, "purge left the key on the token");
	srv_teardown(&c);
}

Test(server_api, contacts_metrics_and_events)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	cli_create(c.store, NULL, "web01", "hsm", "ec-p256", "CN=web01", 30, NULL);
	srv_start(&c);
	srv_curl(&c, &r, "alice", "POST", "/certificates/contacts",
	         "{\"email\": \"ops@example.com\", \"name\": \"Ops\"}");
	srv_assert_status(&r, 200, "contact add");
	srv_reply_free(&r);
	kwt_result k;
	cli_ok(&k, NULL, c.store, CLI_ARGS("contact", "list", "--json"));
	cr_assert(strstr(k.out, "ops@example.com") != NULL, "contact list: %s", k.out);
	kwt_result_free(&k);
	srv_curl(&c, &r, "alice", "DELETE", "/certificates/contacts/ops@example.com", NULL);
	srv_assert_status(&r, 200, "contact remove");
	cr_assert_eq(json_array_size(json_object_get(r.json, "value")), 0, "%s", r.body);
	srv_reply_free(&r);
	srv_curl(&c, &r, "alice", "GET", "/metrics", NULL);
	srv_assert_status(&r, 200, "metrics");
	cr_assert(strstr(r.body, "name=\"web01\"") != NULL, "metrics lack web01: %s", r.body);
	srv_reply_free(&r);
	srv_curl(&c, &r, "alice", "GET", "/events?certificate=web01", NULL);
	srv_assert_status(&r, 200, "events");
	json_t *first = json_array_get(json_object_get(r.json, "value"), 0);
	cr_assert_str_eq(cli_js(first, "type"), "cert.created", "%s", r.body);
	srv_reply_free(&r);
	srv_teardown(&c);
}

Test(server_api, bad_requests_get_json_errors_and_change_nothing)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	cli_create(c.store, NULL, "web01", "hsm", "ec-p256", "CN=web01", 30, NULL);
	srv_start(&c);
	const char *create = "/certificates/web02/create";
	bad_request(&c, "POST", create, "{\"policy\": {", 400, "malformed JSON");
	bad_request(&c, "POST", create, "[1, 2]", 400, "object");
	bad_request(&c, "POST", create, "", 400, "malformed JSON");
	bad_request(&c, "POST", create, "{\"policy\": {}, \"policy\": {}}", 400, NULL);
	bad_request(&c, "POST", create,
	            "{\"policy\": {\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\": "
	            "\"CN=x\"}}, \"tags\": {}}",
	            400, "unknown field 'tags'");
	bad_request(&c, "POST", create,
	            "{\"policy\": {\"key\": {\"backend\": \"hsm\", \"size\": 1}, \"x509\": "
	            "{\"subject\": \"CN=x\"}}}",
	            400, "size");
	bad_request(&c, "POST", create,
	            "{\"policy\": {\"key\": {\"backend\": \"nosuch\"}, \"x509\": {\"subject\": "
	            "\"CN=x\"}}}",
	            404, "nosuch");
	bad_request(&c, "POST", "/certificates/web01/create",
	            "{\"policy\": {\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\": "
	            "\"CN=x\"}}}",
	            409, "web01");
	bad_request(&c, "POST", "/certificates/web01/renew", "{\"key\": 7}", 400, "key");
	bad_request(&c, "POST", "/certificates/web01/renew", "{\"keys\": \"new\"}", 400, "keys");
	bad_request(&c, "POST", "/certificates/web01/pending/merge", "{\"x5c\": [\"%%%\"]}", 400,
	            "base64");
	bad_request(&c, "POST", "/certificates/web01/pending/merge", "{\"x5c\": [\"AAAA\"]}", 409,
	            NULL);
	/* 100 KiB: over the 64 KiB limit */
	size_t big = 100 * 1024;
	char *huge = malloc(big + 32);
	snprintf(huge, 32, "{\"policy\": \"");
	memset(huge + strlen(huge), 'a', big);
	strcpy(huge + 12 + big, "\"}");
	bad_request(&c, "POST", create, huge, 413, "larger than");
	free(huge);
	bad_request(&c, "GET", "/nosuch", NULL, 404, "endpoint");
	bad_request(&c, "GET", "/certificates/web%2501", NULL, 400, "path");
	bad_request(&c, "PUT", "/certificates/web01", "{}", 405, NULL);
	bad_request(&c, "GET", "/certificates/web01?version=x", NULL, 400, "version");
	bad_request(&c, "GET", "/certificates/nosuch", NULL, 404, "nosuch");
	srv_teardown(&c);
}

/* An API error says what failed, and names no CLI command or flag: a remote
 * client has no CLI. */
static void refused_without_cli_text(srv_ctx *c, const char *method, const char *path,
                                     const char *body, int status, const char *want)
{
	srv_reply r;
	srv_curl(c, &r, "alice", method, path, body);
	srv_assert_status(&r, status, path);
	const char *msg =
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
	cr_assert(msg != NULL, "%s %s: no error message: %s", method, path, r.body);
	cr_assert_str_eq(msg, want, "%s %s: %s", method, path, r.body);
	const char *cli[] = {"keyward ", "see:", "--", "run:"};
	for (size_t i = 0; i < sizeof(cli) / sizeof(cli[0]); i++)
		cr_assert(strstr(r.body, cli[i]) == NULL, "%s %s: CLI text '%s' in the reply: %s",
		          method, path, cli[i], r.body);
	srv_reply_free(&r);
}

Test(server_api, errors_for_unknown_objects_carry_no_cli_hints)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	refused_without_cli_text(&c, "GET", "/certificates/nosuch", NULL, 404,
	                         "unknown certificate 'nosuch'");
	refused_without_cli_text(&c, "GET", "/certificates/nosuch/pending", NULL, 404,
	                         "unknown certificate 'nosuch'");
	refused_without_cli_text(&c, "POST", "/certificates/nosuch/renew", "{}", 404,
	                         "unknown certificate 'nosuch'");
	refused_without_cli_text(&c, "POST", "/certificates/web/create",
	                         "{\"policy\": {\"key\": {\"backend\": \"nope\"}, \"x509\": "
	                         "{\"subject\": \"CN=x\"}}}",
	                         404, "unknown backend 'nope'");
	srv_teardown(&c);
}

/* openssl makes NAME.key/NAME.crt/NAME.p12 (password "pw") in the scratch dir;
 * the import body as JSON (malloc'd). */
static char *import_body(const srv_ctx *c, const char *name, int p12, const char *password)
{
	cr_assert_eq(cli_status("cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
	                        "ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.crt "
	                        "-subj '/CN=%s' -days 30 >/dev/null 2>&1 && "
	                        "openssl pkcs12 -export -inkey %s.key -in %s.crt -out %s.p12 "
	                        "-passout pass:pw",
	                        c->dir, name, name, name, name, name, name),
	             0);
	json_t *b = json_pack("{s:s}", "backend", "hsm");
	if (p12) {
		char *b64 = cli_out("base64 -w0 '%s/%s.p12'", c->dir, name);
		json_object_set_new(b, "pkcs12", json_string(b64));
		json_object_set_new(b, "password", json_string(password));
		free(b64);
	} else {
		char *pem = cli_out("cd '%s' && cat %s.crt %s.key", c->dir, name, name);
		json_object_set_new(b, "pem", json_string(pem));
		free(pem);
	}
	char *text = json_dumps(b, 0);
	json_decref(b);
	return text;
}

Test(server_api, import_moves_existing_keys_into_the_token)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	char *pem = import_body(&c, "legacy", 0, NULL);
	srv_curl(&c, &r, "alice", "POST", "/certificates/legacy/import", pem);
	srv_assert_status(&r, 201, "import PEM");
	cli_assert_jbool(r.json, "exportable", 0, "imported key");
	srv_reply_free(&r);
	json_t *shown = cli_show(c.store, "legacy", 0);
	char *fp = cli_out("openssl x509 -in '%s/legacy.crt' -noout -fingerprint -sha256", c.dir);
	cli_hex_norm(fp);
	cr_assert_str_eq(cli_js(shown, "thumbprint_sha256"), fp);
	json_decref(shown);
	free(fp);
	char *wrong = import_body(&c, "old", 1, "not-the-password");
	bad_request(&c, "POST", "/certificates/old/import", wrong, 400, "password");
	char *p12 = import_body(&c, "old", 1, "pw");
	srv_curl(&c, &r, "alice", "POST", "/certificates/old/import", p12);
	srv_assert_status(&r, 201, "import PKCS#12");
	srv_reply_free(&r);
	bad_request(&c, "POST", "/certificates/x/import", "{\"backend\": \"hsm\"}", 400, "pem");
	bad_request(&c, "POST", "/certificates/x/import",
	            "{\"backend\": \"hsm\", \"pem\": \"x\", \"key\": \"y\"}", 400, "key");
	free(wrong);
	free(p12);
	free(pem);
	srv_teardown(&c);
}

/* The reply names nothing on the host: no /proc/self/fd/N the server handed
 * core the request's bytes through, no scratch directory of this test. */
static void assert_no_host_path(const srv_ctx *c, const srv_reply *r, const char *what)
{
	cr_assert(strstr(r->body, "/proc/") == NULL && strstr(r->body, "/fd/") == NULL,
	          "%s: the reply names an internal path: %s", what, r->body);
	cr_assert(strstr(r->body, c->dir) == NULL && strstr(r->body, "/tmp") == NULL,
	          "%s: the reply names a path on the host: %s", what, r->body);
}

static void import_refused(srv_ctx *c, const char *body, const char *want)
{
	srv_reply r;
	srv_curl(c, &r, "alice", "POST", "/certificates/junk/import", body);
	srv_assert_status(&r, 400, want);
	const char *msg =
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
	cr_assert_str_eq(msg, want, "%s", r.body);
	assert_no_host_path(c, &r, want);
	srv_reply_free(&r);
}

Test(server_api, import_errors_name_the_request_field_not_an_internal_path)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	/* "AAAA" is base64 for three zero bytes: no PKCS#12 */
	import_refused(&c, "{\"backend\": \"hsm\", \"pkcs12\": \"AAAA\", \"password\": \"pw\"}",
	               "the request's pkcs12 is not a PKCS#12 file (or it is truncated)");
	import_refused(&c, "{\"backend\": \"hsm\", \"pem\": \"not PEM\"}",
	               "the request's pem holds no readable private key (missing, truncated or "
	               "not PEM); cert import needs the certificate and its key");
	char *wrong = import_body(&c, "old", 1, "not-the-password");
	import_refused(&c, wrong,
	               "wrong password for the request's pkcs12 (its MAC does not verify)");
	free(wrong);
	srv_teardown(&c);
}

/* A message core words for the admin at the host may name a file there (here
 * a backend's pin file): the API says what failed without the path. */
Test(server_api, errors_name_no_file_on_the_host)
{
	srv_ctx c;
	srv_reply r;
	kwt_result k;
	char src[4200];
	srv_setup(&c, 0, 1, "hsm");
	char *pin = kwt_write_file(c.dir, "hsm2.pin", kwt_env("KW_TEST_P11_PIN"),
	                           strlen(kwt_env("KW_TEST_P11_PIN")), 0600);
	snprintf(src, sizeof(src), "file:%s", pin);
	cli_ok(&k, NULL, c.store,
	       CLI_ARGS("backend", "add", "hsm2", "pkcs11", "--module",
	                kwt_env("KW_TEST_P11_MODULE"), "--token", kwt_env("KW_TEST_P11_TOKEN"),
	                "--pin-source", src));
	kwt_result_free(&k);
	cr_assert(unlink(pin) == 0);
	srv_start(&c);
	srv_curl(&c, &r, "alice", "POST", "/certificates/web09/create",
	         "{\"policy\": {\"key\": {\"backend\": \"hsm2\"}, \"x509\": {\"subject\": "
	         "\"CN=web09\"}}}");
	cr_assert(r.status >= 400, "create on a backend without its pin file: HTTP %d", r.status);
	srv_assert_status(&r, r.status, "create on a backend without its pin file");
	const char *msg =
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
	cr_assert(strstr(msg, "pin file") != NULL, "the message does not say what failed: %s",
	          r.body);
	assert_no_host_path(&c, &r, "create on a backend without its pin file");
	srv_reply_free(&r);
	free(pin);
	srv_teardown(&c);
}

/* Every reply is JSON in the API's error shape with Content-Type
 * application/json, whatever refused the request: the routes (404, 405),
 * the body's size (413; bad_requests_... sends one without Expect), methods the
 * API does not have (405 with Allow; 501), and the HTTP framing itself. */
Test(server_api, every_refusal_is_a_json_error)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	cli_create(c.store, NULL, "web01", "hsm", "ec-p256", "CN=web01", 30, NULL);
	srv_start(&c);
	char *before = srv_dump_no_events(&c);
	const char *methods[] = {"PATCH", "OPTIONS", "TRACE"};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		srv_curl(&c, &r, "alice", methods[i], "/certificates/web01", "{}");
		srv_assert_status(&r, 405, methods[i]);
		cr_assert_str_eq(srv_header(r.headers, "Allow"), "GET, DELETE", "%s: %s",
		                 methods[i], r.headers);
		srv_reply_free(&r);
	}
	/* HEAD: the same status and type, and no body (HTTP forbids one) */
	srv_curl(&c, &r, "alice", "HEAD", "/certificates", NULL);
	cr_assert_eq(r.curl_exit, 0, "HEAD: %s", r.curl_err);
	cr_assert_eq(r.status, 405, "HEAD: %s", r.headers);
	cr_assert_str_eq(srv_header(r.headers, "Content-Type"), "application/json", "HEAD: %s",
	                 r.headers);
	cr_assert(strstr(r.body, "<") == NULL, "HEAD: %s", r.body);
	srv_reply_free(&r);
	/* 10 MB: curl asks for "100 Continue" first and gets the 413 instead */
	size_t big = 10 * 1024 * 1024;
	char *huge = malloc(big + 1);
	memset(huge, 'a', big);
	huge[big] = '\0';
	srv_curl(&c, &r, "alice", "POST", "/certificates/web02/create", huge);
	srv_assert_status(&r, 413, "10 MB body");
	srv_reply_free(&r);
	free(huge);
	/* the HTTP framing: a bare LF, a chunked body, HTTP/2 by mistake, a head
	 * over 16 KiB, an unknown expectation, an unknown method */
	static const struct {
		const char *what;
		const char *bytes;
		int status;
	} raw[] = {
	    {"bare LF", "GET /certificates HTTP/1.1\nHost: x\n\n\r\n\r\n", 400},
	    {"folded header", "GET /certificates HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", 400},
	    {"absolute target", "GET https://x/certificates HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	    {"chunked",
	     "POST /certificates/a/create HTTP/1.1\r\nHost: x\r\n"
	     "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
	     501},
	    {"two lengths",
	     "POST /certificates/a/create HTTP/1.1\r\nHost: x\r\n"
	     "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
	     400},
	    {"HTTP/2.0", "GET /certificates HTTP/2.0\r\nHost: x\r\n\r\n", 505},
	    {"Expect", "GET /certificates HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417},
	    {"unknown method",
	     "BREW /certificates HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 501},
	};
	for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		char *reply = srv_raw(&c, "alice", raw[i].bytes, strlen(raw[i].bytes));
		srv_raw_assert_json_error(reply, raw[i].status, raw[i].what);
		free(reply);
	}
	size_t hl = 17 * 1024;
	char *head = malloc(hl + 64);
	snprintf(head, 64, "GET /certificates HTTP/1.1\r\nX-Big: ");
	size_t pre = strlen(head);
	memset(head + pre, 'x', hl);
	strcpy(head + pre + hl, "\r\n\r\n");
	char *reply = srv_raw(&c, "alice", head, strlen(head));
	srv_raw_assert_json_error(reply, 431, "17 KiB of headers");
	free(reply);
	free(head);
	/* nothing changed */
	char *after = srv_dump_no_events(&c);
	cr_assert_str_eq(after, before, "a refused request changed the store");
	free(before);
	free(after);
	srv_teardown(&c);
}

/* A change sent as something other than application/json: status 415, the
 * store and the token as they were. */
static void refused_as(srv_ctx *c, const char *method, const char *path, const char *body,
                       const char *type)
{
	srv_reply r;
	char *before = srv_dump_no_events(c);
	int objects = kwt_p11_object_count();
	srv_curl_as(c, &r, "alice", method, path, body, type);
	char what[256];
	snprintf(what, sizeof(what), "%s %s as %s", method, path, type ? type : "(no type)");
	srv_assert_status(&r, 415, what);
	const char *msg =
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
	cr_assert(strstr(msg, "application/json") != NULL, "%s: %s", what, r.body);
	char *after = srv_dump_no_events(c);
	cr_assert_str_eq(after, before, "%s changed the store", what);
	cr_assert_eq(kwt_p11_object_count(), objects, "%s changed the token", what);
	free(before);
	free(after);
	srv_reply_free(&r);
}

#define CREATE_WEB02                                                                               \
	"{\"policy\": {\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\": \"CN=web02\"}}}"

/* What a web page can make a browser that holds an admin's certificate send
 * cross-site without a CORS preflight: a form (text/plain can carry a valid
 * JSON body; urlencoded; multipart) or fetch() without a body or type. */
Test(server_api, changes_need_content_type_json)
{
	srv_ctx c;
	srv_reply r;
	kwt_result k;
	srv_setup(&c, 0, 1, "hsm");
	cli_create(c.store, NULL, "web01", "hsm", "ec-p256", "CN=web01", 30, NULL);
	cli_create(c.store, NULL, "old", "hsm", "ec-p256", "CN=old", 30, NULL);
	cli_ok(&k, NULL, c.store, CLI_ARGS("cert", "delete", "old"));
	kwt_result_free(&k);
	srv_start(&c);
	const char *create = "/certificates/web02/create";
	refused_as(&c, "POST", create, CREATE_WEB02, "text/plain");
	refused_as(&c, "POST", create, CREATE_WEB02, "application/x-www-form-urlencoded");
	refused_as(&c, "POST", create, CREATE_WEB02, "multipart/form-data; boundary=x");
	refused_as(&c, "POST", create, CREATE_WEB02, NULL);
	refused_as(&c, "POST", create, CREATE_WEB02, "application/jsonx");
	refused_as(&c, "POST", "/certificates/web01/renew", "{}", "text/plain");
	refused_as(&c, "POST", "/deletedcertificates/old/recover", NULL, NULL);
	refused_as(&c, "POST", "/deletedcertificates/old/recover", NULL, "text/plain");
	refused_as(&c, "PUT", "/certificates/web01/policy", "{}", "text/plain");
	refused_as(&c, "DELETE", "/certificates/web01", "{}", "text/plain");
	/* reads need no type; JSON with a charset, in any case, is JSON */
	srv_curl_as(&c, &r, "alice", "GET", "/certificates/web01", NULL, NULL);
	srv_assert_status(&r, 200, "GET without a type");
	srv_reply_free(&r);
	srv_curl_as(&c, &r, "alice", "POST", create, CREATE_WEB02,
	            "Application/JSON; charset=utf-8");
	srv_assert_status(&r, 201, "create as Application/JSON; charset=utf-8");
	srv_reply_free(&r);
	srv_curl_as(&c, &r, "alice", "POST", "/deletedcertificates/old/recover", NULL,
	            "application/json");
	srv_assert_status(&r, 200, "recover as application/json");
	srv_reply_free(&r);
	/* DELETE without a body needs no type (browsers preflight it) */
	srv_curl_as(&c, &r, "alice", "DELETE", "/certificates/web02", NULL, NULL);
	srv_assert_status(&r, 200, "DELETE without a body");
	srv_reply_free(&r);
	srv_teardown(&c);
}

/* Issue 14, item 1: an admin of the API can name a deploy target the host
 * defined, and renew (which runs its hooks), but can neither define a
 * command nor a file path: inline deploy settings are refused, and there is
 * no route for deploy targets or channels. */
Test(server_api, an_admin_names_a_deploy_target_but_cannot_set_commands_or_paths)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	cli_create(c.store, NULL, "web01", "hsm", "ec-p256", "CN=web01", 30, NULL);
	char *marker = srv_path(&c, "hook-ran", ""), hook[4200];
	snprintf(hook, sizeof(hook), "echo $KEYWARD_NAME >> '%s'", marker);
	kwt_result k;
	cli_ok(&k, NULL, c.store, CLI_ARGS("deploy-target", "add", "web-files", "--deploy", hook));
	kwt_result_free(&k);
	srv_start(&c);
	srv_curl(&c, &r, "alice", "GET", "/certificates/web01/policy", NULL);
	srv_assert_status(&r, 200, "policy get");
	json_t *p = json_deep_copy(r.json);
	srv_reply_free(&r);
	const char *const inline_deploy[] = {
	    "{\"hooks\": {\"pre\": \"id > /tmp/x; head -1 /etc/shadow >> /tmp/x\"}}",
	    "{\"key_ref\": \"/root/.ssh/authorized_keys\", \"owner\": \"root\", \"mode\": "
	    "\"0644\"}",
	    "{\"target\": \"web-files\", \"hooks\": {\"post\": \"true\"}}",
	};
	for (size_t i = 0; i < sizeof(inline_deploy) / sizeof(inline_deploy[0]); i++) {
		json_object_set_new(p, "deploy", json_loads(inline_deploy[i], 0, NULL));
		char *text = json_dumps(p, 0);
		bad_request(&c, "PUT", "/certificates/web01/policy", text, 400,
		            "keyward deploy-target add");
		char body[8192];
		snprintf(body, sizeof(body), "{\"policy\": %s}", text);
		bad_request(&c, "POST", "/certificates/web02/create", body, 400,
		            "a policy cannot set");
		free(text);
	}
	/* a target the host has not defined */
	json_object_set_new(p, "deploy", json_pack("{s:s}", "target", "nosuch"));
	char *text = json_dumps(p, 0);
	bad_request(&c, "PUT", "/certificates/web01/policy", text, 404, "unknown deploy target");
	free(text);
	/* no route defines a target or a channel */
	bad_request(&c, "POST", "/deploy-targets", "{\"name\": \"x\"}", 404, NULL);
	bad_request(&c, "POST", "/channels", "{\"name\": \"x\"}", 404, NULL);
	bad_request(&c, "PUT", "/certificates/web01/deploy-target", "{}", 404, NULL);
	/* naming the host's target is accepted; renewing runs its hook */
	json_object_set_new(p, "deploy", json_pack("{s:s}", "target", "web-files"));
	text = json_dumps(p, 0);
	srv_curl(&c, &r, "alice", "PUT", "/certificates/web01/policy", text);
	srv_assert_status(&r, 200, "policy naming a deploy target");
	srv_reply_free(&r);
	free(text);
	srv_curl(&c, &r, "alice", "POST", "/certificates/web01/renew", "{}");
	srv_assert_status(&r, 200, "renew");
	srv_reply_free(&r);
	char *ran = kwt_read_file(marker, NULL);
	cr_assert_not_null(ran, "the deploy target's hook did not run on renewal");
	cr_assert_str_eq(ran, "web01\n");
	free(ran);
	/* a deploy that fails after the renewal: the version stands (200), the
	 * reply says what failed without the host's paths, an event records it */
	cr_assert_eq(cli_status("sqlite3 '%s/keyward.db' \"UPDATE deploy_targets SET config ="
	                        " json_set(config, '$.hooks.deploy', 'echo cannot read"
	                        " /etc/nginx/web.conf >&2; exit 3')\"",
	                        c.store),
	             0);
	srv_curl(&c, &r, "alice", "POST", "/certificates/web01/renew", "{}");
	srv_assert_status(&r, 200, "renew whose deploy fails");
	cr_assert_eq(json_integer_value(json_object_get(r.json, "version")), 3);
	const char *err = json_string_value(json_object_get(r.json, "deploy_error"));
	cr_assert(err && strstr(err, "the deploy hook failed (exit status 3)") &&
	              strstr(err, "cannot read <host path>") && !strstr(err, "/etc/nginx"),
	          "deploy_error: %s", err ? err : "(none)");
	srv_reply_free(&r);
	cr_assert_eq(cli_sql_count(c.store, "SELECT count(*) FROM events WHERE type ="
	                                    " 'deploy.failed' AND cert = 'web01' AND version = 3"),
	             1);
	free(marker);
	json_decref(p);
	srv_teardown(&c);
}
