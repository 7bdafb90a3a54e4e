/*
 * keyward serve: who gets in. Admins read and write, readers only read;
 * no certificate, a certificate from another CA, one the management CA
 * signed but the store never gave a client, a revoked and an expired one are
 * all refused. Every request is in the event log with the caller's
 * certificate thumbprint.
 */
#include "server_test.h"

#define CREATE_BODY                                                                                \
	"{\"policy\": {\"key\": {\"type\": \"ec-p256\", \"backend\": \"hsm\"},"                    \
	" \"x509\": {\"subject\": \"CN=web01\", \"sans\": [\"DNS:web01\"], \"validity_days\": "    \
	"30}}}"

/* The client's thumbprint as mgmt list --json shows it (malloc'd). */
static char *client_sha256(const srv_ctx *c, const char *name)
{
	kwt_result r;
	cli_ok(&r, NULL, c->store, CLI_ARGS("mgmt", "list", "--json"));
	json_t *l = cli_json(r.out, "mgmt list --json");
	json_t *e = cli_find_named(l, name);
	cr_assert(e != NULL, "mgmt list lacks %s: %s", name, r.out);
	char *sha = strdup(cli_js(e, "thumbprint_sha256"));
	json_decref(l);
	kwt_result_free(&r);
	return sha;
}

/* A refused write or read: status, JSON error, store rows unchanged. The
 * event log gains exactly the request's record, with that status, when the
 * caller authenticated (403); a 401 is counted for a later summary
 * (api.refused) and writes nothing now. */
static void assert_refused_unchanged(srv_ctx *c, const char *cert, const char *method,
                                     const char *path, const char *body, int status,
                                     const char *needle)
{
	srv_reply r;
	char *before = srv_dump_no_events(c);
	int objects = kwt_p11_object_count();
	int events = cli_sql_count(c->store, "SELECT count(*) FROM events");
	srv_curl(c, &r, cert, method, path, body);
	srv_assert_status(&r, status, path);
	if (needle)
		cr_assert(strcasestr(r.body, needle) != NULL, "%s %s: reply lacks '%s': %s", method,
		          path, needle, r.body);
	char *after = srv_dump_no_events(c);
	cr_assert_str_eq(after, before, "%s %s (HTTP %d) changed the store", method, path, status);
	cr_assert_eq(kwt_p11_object_count(), objects, "%s %s changed the token", method, path);
	if (status == 401) {
		cr_assert_eq(cli_sql_count(c->store, "SELECT count(*) FROM events"), events,
		             "%s %s: an unauthenticated request wrote an event of its own", method,
		             path);
	} else {
		cr_assert_eq(cli_sql_count(c->store, "SELECT count(*) FROM events"), events + 1,
		             "%s %s: not exactly one event (the request's record)", method, path);
		char *ev = srv_last_event(c);
		char want[64];
		snprintf(want, sizeof(want), "\"status\":%d", status);
		cr_assert(strncmp(ev, "api.request|", 12) == 0 && strstr(ev, want) != NULL,
		          "last event is not the refused request: %s", ev);
		free(ev);
	}
	free(before);
	free(after);
	srv_reply_free(&r);
}

Test(server_auth, admin_reads_and_writes)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	/* the PKCS#12 file as mgmt issue wrote it (other requests: its PEM form) */
	char *p12 = srv_path(&c, "alice", ".p12");
	srv_curl(&c, &r, p12, "GET", "/certificates", NULL);
	free(p12);
	srv_assert_status(&r, 200, "GET /certificates");
	json_t *v = json_object_get(r.json, "value");
	cr_assert(cli_find_named(v, "keyward-mgmt-ca") && cli_find_named(v, "keyward-mgmt-server"),
	          "list lacks the management certificates: %s", r.body);
	srv_reply_free(&r);
	srv_curl(&c, &r, "alice", "POST", "/certificates/web01/create", CREATE_BODY);
	srv_assert_status(&r, 201, "create");
	cr_assert_str_eq(cli_js(r.json, "name"), "web01");
	cr_assert_str_eq(cli_js(r.json, "status"), "active");
	char *sha = strdup(cli_js(r.json, "thumbprint_sha256"));
	srv_reply_free(&r);
	/* the CLI sees what the API made: the same store, the same core call */
	json_t *shown = cli_show(c.store, "web01", 0);
	cr_assert_str_eq(cli_js(shown, "thumbprint_sha256"), sha);
	cr_assert_str_eq(cli_js(shown, "subject"), "CN=web01");
	cli_assert_jbool(json_object_get(shown, "key"), "exportable", 0, "web01 key");
	json_decref(shown);
	srv_curl(&c, &r, "alice", "POST", "/certificates/web01/renew", "{\"key\": \"new\"}");
	srv_assert_status(&r, 200, "renew");
	cr_assert_eq(json_integer_value(json_object_get(r.json, "version")), 2, "renew: %s",
	             r.body);
	cr_assert_str_neq(cli_js(r.json, "thumbprint_sha256"), sha);
	srv_reply_free(&r);
	srv_curl(&c, &r, "alice", "GET", "/certificates/web01/versions", NULL);
	srv_assert_status(&r, 200, "versions");
	cr_assert_eq(json_array_size(json_object_get(r.json, "value")), 2, "%s", r.body);
	srv_reply_free(&r);
	free(sha);
	srv_teardown(&c);
}

Test(server_auth, reader_reads_but_every_write_is_forbidden)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	cli_create(c.store, NULL, "web01", "hsm", "ec-p256", "CN=web01", 30, NULL);
	srv_start(&c);
	const char *reads[] = {"/certificates",
	                       "/certificates/web01",
	                       "/certificates/web01/versions",
	                       "/certificates/web01/policy",
	                       "/events",
	                       "/deletedcertificates",
	                       "/certificates/contacts"};
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		srv_curl(&c, &r, "bob", "GET", reads[i], NULL);
		srv_assert_status(&r, 200, reads[i]);
		srv_reply_free(&r);
	}
	srv_curl(&c, &r, "bob", "GET", "/metrics", NULL);
	srv_assert_status(&r, 200, "metrics");
	cr_assert(strstr(r.body, "keyward_") != NULL, "metrics: %s", r.body);
	srv_reply_free(&r);
	assert_refused_unchanged(&c, "bob", "POST", "/certificates/web02/create", CREATE_BODY, 403,
	                         "reader");
	assert_refused_unchanged(&c, "bob", "POST", "/certificates/web01/renew", "{}", 403, NULL);
	assert_refused_unchanged(&c, "bob", "DELETE", "/certificates/web01", NULL, 403, NULL);
	assert_refused_unchanged(&c, "bob", "PUT", "/certificates/web01/policy", "{}", 403, NULL);
	assert_refused_unchanged(&c, "bob", "POST", "/certificates/contacts",
	                         "{\"email\": \"x@example.com\"}", 403, NULL);
	srv_teardown(&c);
}

Test(server_auth, the_apis_own_certificates_cannot_be_changed_through_it)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	const char *names[] = {"keyward-mgmt-ca", "keyward-mgmt-server"};
	for (size_t i = 0; i < 2; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/certificates/%s", names[i]);
		assert_refused_unchanged(&c, "alice", "DELETE", path, NULL, 403, "own certificate");
		snprintf(path, sizeof(path), "/certificates/%s/renew", names[i]);
		assert_refused_unchanged(&c, "alice", "POST", path, "{}", 403, "own certificate");
		snprintf(path, sizeof(path), "/certificates/%s/policy", names[i]);
		assert_refused_unchanged(&c, "alice", "PUT", path, "{}", 403, "own certificate");
		snprintf(path, sizeof(path), "/certificates/%s", names[i]);
		srv_curl(&c, &r, "alice", "GET", path, NULL);
		srv_assert_status(&r, 200, path);
		srv_reply_free(&r);
	}
	srv_teardown(&c);
}

Test(server_auth, no_certificate_is_refused_and_logged)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	assert_refused_unchanged(&c, NULL, "GET", "/certificates", NULL, 401,
	                         "no client certificate");
	assert_refused_unchanged(&c, NULL, "POST", "/certificates/web01/create", CREATE_BODY, 401,
	                         NULL);
	/* counted, and written when the server stops */
	srv_stop(&c);
	json_t *refused = srv_refusals(&c, NULL);
	cr_assert_eq(srv_refused(refused, "127.0.0.1", NULL, "no client certificate"), 2,
	             "the two requests without a certificate: %s",
	             json_dumps(refused, JSON_COMPACT));
	json_decref(refused);
	char *ev = srv_last_event(&c);
	cr_assert(strncmp(ev, "api.refused|api:anonymous|", 26) == 0, "refusals logged as: %s", ev);
	free(ev);
	srv_teardown(&c);
}

/* openssl makes a CA of its own and a client certificate that claims
 * O=keyward management, OU=admin, CN=alice. */
static void foreign_client(const srv_ctx *c)
{
	free(kwt_write_file(c->dir, "client.ext", "extendedKeyUsage=clientAuth\n", 28, 0600));
	cr_assert_eq(
	    cli_status("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	               "-nodes -keyout fca.key -out fca.pem -subj '/CN=Foreign CA' -days 30 "
	               "-addext basicConstraints=critical,CA:TRUE "
	               "-addext keyUsage=critical,keyCertSign >/dev/null 2>&1 && "
	               "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	               "-keyout f.key -out f.csr "
	               "-subj '/O=keyward management/OU=admin/CN=alice' >/dev/null 2>&1 && "
	               "openssl x509 -req -in f.csr -CA fca.pem -CAkey fca.key -CAcreateserial "
	               "-days 30 -extfile client.ext -out f.crt >/dev/null 2>&1 && "
	               "cat f.crt f.key > foreign.pem",
	               c->dir),
	    0, "openssl could not make the foreign client certificate");
}

Test(server_auth, certificates_from_another_ca_or_never_issued_to_a_client_are_refused)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	foreign_client(&c);
	/* the management CA's own signature, but through ca sign: no client record */
	cr_assert_eq(cli_status("cd '%s' && openssl req -new -newkey ec -pkeyopt "
	                        "ec_paramgen_curve:P-256 -nodes -keyout g.key -out g.csr "
	                        "-subj '/O=keyward management/OU=admin/CN=mallory' >/dev/null 2>&1",
	                        c.dir),
	             0);
	char *csr = srv_path(&c, "g", ".csr"), *crt = srv_path(&c, "g", ".crt");
	kwt_result k;
	cli_ok(&k, NULL, c.store,
	       CLI_ARGS("ca", "sign", "keyward-mgmt-ca", csr, "--profile", "client", "--out", crt));
	kwt_result_free(&k);
	cr_assert_eq(cli_status("cd '%s' && cat g.crt g.key > rogue.pem", c.dir), 0);
	srv_start(&c);
	char *before = srv_dump_no_events(&c);
	char *foreign = srv_path(&c, "foreign", ".pem");
	srv_curl(&c, &r, foreign, "GET", "/certificates", NULL);
	srv_assert_refused(&r, "foreign CA");
	srv_reply_free(&r);
	srv_curl(&c, &r, foreign, "POST", "/certificates/web01/create", CREATE_BODY);
	srv_assert_refused(&r, "foreign CA write");
	srv_reply_free(&r);
	char *rogue = srv_path(&c, "rogue", ".pem");
	assert_refused_unchanged(&c, rogue, "GET", "/certificates", NULL, 401,
	                         "is not one this store issued");
	assert_refused_unchanged(&c, rogue, "POST", "/certificates/web01/create", CREATE_BODY, 401,
	                         NULL);
	char *after = srv_dump_no_events(&c);
	cr_assert_str_eq(after, before, "refused clients changed the store");
	/* no request, but the refused handshakes are logged with the certificate's
	 * thumbprint, and the rogue's 401s with its */
	srv_stop(&c);
	char *fsha = cli_out("openssl x509 -in '%s/f.crt' -noout -fingerprint -sha256 | "
	                     "cut -d= -f2 | tr -d ':' | tr A-F a-f",
	                     c.dir);
	char *gsha = cli_out("openssl x509 -in '%s/g.crt' -noout -fingerprint -sha256 | "
	                     "cut -d= -f2 | tr -d ':' | tr A-F a-f",
	                     c.dir);
	json_t *refused = srv_refusals(&c, NULL);
	char *text = json_dumps(refused, JSON_COMPACT);
	cr_assert_eq(srv_refused(refused, "127.0.0.1", fsha, "client certificate refused"), 2,
	             "the foreign certificate's handshakes: %s", text);
	cr_assert_eq(srv_refused(refused, "127.0.0.1", gsha, "is not one this store issued"), 2,
	             "the rogue certificate's requests: %s", text);
	free(text);
	json_decref(refused);
	free(fsha);
	free(gsha);
	free(before);
	free(after);
	free(foreign);
	free(rogue);
	free(csr);
	free(crt);
	srv_teardown(&c);
}

Test(server_auth, revoked_certificate_is_refused_from_then_on)
{
	srv_ctx c;
	srv_reply r;
	kwt_result k;
	srv_setup(&c, 0, 1, "hsm");
	srv_issue(&c, "carol", "admin", 0, NULL);
	srv_start(&c);
	srv_curl(&c, &r, "carol", "GET", "/certificates", NULL);
	srv_assert_status(&r, 200, "carol before revocation");
	srv_reply_free(&r);
	cli_ok(&k, NULL, c.store, CLI_ARGS("mgmt", "revoke", "carol"));
	kwt_result_free(&k);
	assert_refused_unchanged(&c, "carol", "GET", "/certificates", NULL, 401, "revoked");
	assert_refused_unchanged(&c, "carol", "POST", "/certificates/web01/create", CREATE_BODY,
	                         401, "revoked");
	/* the others still get in */
	srv_curl(&c, &r, "alice", "GET", "/certificates", NULL);
	srv_assert_status(&r, 200, "alice after carol's revocation");
	srv_reply_free(&r);
	/* and the revocation is on the CA's CRL */
	cli_ok(&k, NULL, c.store, CLI_ARGS("mgmt", "list", "--json"));
	json_t *l = cli_json(k.out, "mgmt list");
	json_t *carol = cli_find_named(l, "carol");
	cr_assert_str_eq(cli_js(carol, "status"), "revoked");
	char serial[128];
	snprintf(serial, sizeof(serial), "%s", cli_js(carol, "serial"));
	json_decref(l);
	kwt_result_free(&k);
	char *crl = srv_path(&c, "mgmt", ".crl");
	cli_ok(&k, NULL, c.store, CLI_ARGS("ca", "crl", "keyward-mgmt-ca", "--out", crl));
	kwt_result_free(&k);
	char *text = cli_out("openssl crl -in '%s' -noout -text | tr -d ' :' | tr A-F a-f", crl);
	cr_assert(strstr(text, serial) != NULL, "CRL lacks carol's serial %s: %s", serial, text);
	free(text);
	free(crl);
	srv_teardown(&c);
}

Test(server_auth, expired_certificate_is_refused)
{
	srv_ctx c;
	srv_reply r;
	char now[64];
	srv_setup(&c, 0, 1, "hsm");
	srv_issue(&c, "dave", "admin", 1, NULL);
	/* three days later (keyward's clock): dave's one day is over, alice's year is not */
	cli_time_format(time(NULL) + 3 * 86400, now + strlen("KEYWARD_NOW="),
	                sizeof(now) - strlen("KEYWARD_NOW="));
	memcpy(now, "KEYWARD_NOW=", strlen("KEYWARD_NOW="));
	char *env[] = {now, NULL};
	srv_start_with(&c, NULL, env);
	assert_refused_unchanged(&c, "dave", "GET", "/certificates", NULL, 401, "expired");
	srv_curl(&c, &r, "alice", "GET", "/certificates", NULL);
	srv_assert_status(&r, 200, "alice three days later");
	srv_reply_free(&r);
	srv_teardown(&c);
}

Test(server_auth, every_request_is_logged_with_the_callers_thumbprint)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	char *alice = client_sha256(&c, "alice"), *bob = client_sha256(&c, "bob");
	srv_start(&c);
	srv_curl(&c, &r, "bob", "GET", "/certificates", NULL);
	srv_assert_status(&r, 200, "bob reads");
	srv_reply_free(&r);
	char *ev = srv_last_event(&c);
	char want[256];
	snprintf(want, sizeof(want), "api.request|api:%s|", bob);
	cr_assert(strncmp(ev, want, strlen(want)) == 0, "bob's read logged as: %s", ev);
	cr_assert(strstr(ev, bob) && strstr(ev, "\"client\":\"bob\"") &&
	              strstr(ev, "\"path\":\"/certificates\"") && strstr(ev, "\"status\":200"),
	          "bob's read logged as: %s", ev);
	free(ev);
	srv_curl(&c, &r, "alice", "POST", "/certificates/web01/create", CREATE_BODY);
	srv_assert_status(&r, 201, "alice creates");
	srv_reply_free(&r);
	/* the change itself is recorded as alice's, then the request */
	char *created = cli_out("sqlite3 '%s/keyward.db' \"SELECT actor FROM events WHERE type = "
	                        "'cert.created' AND cert = 'web01'\"",
	                        c.store);
	snprintf(want, sizeof(want), "api:%s", alice);
	cr_assert_str_eq(created, want);
	free(created);
	ev = srv_last_event(&c);
	cr_assert(strstr(ev, alice) && strstr(ev, "\"status\":201") && strstr(ev, "\"POST\""),
	          "alice's create logged as: %s", ev);
	free(ev);
	/* the log is still a valid chain */
	kwt_result k;
	cli_ok(&k, NULL, c.store, CLI_ARGS("audit", "verify"));
	kwt_result_free(&k);
	free(alice);
	free(bob);
	srv_teardown(&c);
}

/* curl from a loopback address of its own; "<http code> <local port>". */
static char *curl_from(const srv_ctx *c, const char *from, const char *cert, const char *path)
{
	char certarg[4200] = "";
	if (cert)
		snprintf(certarg, sizeof(certarg), "--cert '%s.pem'", cert);
	return cli_out("cd '%s' && curl -sS --max-time 60 --cacert ca.pem %s --interface %s "
	               "-o /dev/null -w '%%{http_code} %%{local_port}' https://127.0.0.1:%d%s",
	               c->dir, certarg, from, c->port, path);
}

/* The peer ("ip:port") of the api.request event whose path is path. */
static char *peer_of(const srv_ctx *c, const char *path)
{
	return cli_out("sqlite3 '%s/keyward.db' \"SELECT json_extract(details, '$.peer') FROM "
	               "events WHERE type = 'api.request' AND json_extract(details, '$.path') = "
	               "'%s' ORDER BY seq DESC LIMIT 1\"",
	               c->store, path);
}

Test(server_auth, every_request_event_carries_the_peer_address_and_port)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	char want[64];
	int port = 0;
	char *out = curl_from(&c, "127.0.0.2", "bob", "/certificates?from=bob");
	cr_assert(sscanf(out, "200 %d", &port) == 1, "bob from 127.0.0.2: %s", out);
	free(out);
	char *peer = peer_of(&c, "/certificates?from=bob");
	snprintf(want, sizeof(want), "127.0.0.2:%d", port);
	cr_assert_str_eq(peer, want, "bob's request logged from '%s'", peer);
	free(peer);
	out = curl_from(&c, "127.0.0.3", "alice", "/nosuch");
	cr_assert(sscanf(out, "404 %d", &port) == 1, "alice from 127.0.0.3: %s", out);
	free(out);
	peer = peer_of(&c, "/nosuch");
	snprintf(want, sizeof(want), "127.0.0.3:%d", port);
	cr_assert_str_eq(peer, want, "alice's refused request logged from '%s'", peer);
	free(peer);
	srv_teardown(&c);
}

/* 100 requests without a certificate (the flood that cost 100 fsyncs) and 3
 * handshakes with a foreign certificate, from two addresses: no event each;
 * one api.refused event says who was refused, why, how often, and what they
 * asked for last. A client that authenticated is still logged request by
 * request. */
Test(server_auth, refusals_are_summarised_not_written_one_by_one)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	foreign_client(&c);
	srv_start(&c);
	int before = cli_sql_count(c.store, "SELECT count(*) FROM events");
	/* one connection, 100 requests (curl's URL range), all 401 */
	char *codes = cli_out("cd '%s' && curl -sS --max-time 120 --cacert ca.pem --interface "
	                      "127.0.0.2 -w '%%{http_code}\\n' -o /dev/null "
	                      "'https://127.0.0.1:%d/certificates?i=[1-100]' | sort | uniq -c | "
	                      "tr -s ' '",
	                      c.dir, c.port);
	cr_assert_str_eq(codes, " 100 401", "100 requests without a certificate: %s", codes);
	free(codes);
	for (int i = 0; i < 3; i++)
		cr_assert_neq(cli_status("cd '%s' && curl -sS --max-time 60 --cacert ca.pem --cert "
		                         "foreign.pem --interface 127.0.0.3 -o /dev/null "
		                         "https://127.0.0.1:%d/certificates 2>/dev/null",
		                         c.dir, c.port),
		              0, "the foreign certificate got in");
	cr_assert_eq(cli_sql_count(c.store, "SELECT count(*) FROM events"), before,
	             "refusals were written one by one");
	/* an admin reading the log sees them: GET /events writes the summary first */
	srv_curl(&c, &r, "alice", "GET", "/events", NULL);
	srv_assert_status(&r, 200, "events");
	json_t *all = json_object_get(r.json, "value");
	json_t *seen = json_array_get(all, json_array_size(all) - 1);
	cr_assert_str_eq(cli_js(seen, "type"), "api.refused", "%s", r.body);
	srv_reply_free(&r);
	int events = 0;
	json_t *refused = srv_refusals(&c, &events);
	char *text = json_dumps(refused, JSON_COMPACT);
	cr_assert(events >= 1 && events <= 2, "%d api.refused events for 103 refusals", events);
	cr_assert_eq(srv_refused(refused, "127.0.0.2", NULL, "no client certificate"), 100, "%s",
	             text);
	cr_assert_eq(srv_refused(refused, "127.0.0.3", "*", "client certificate refused"), 3, "%s",
	             text);
	cr_assert_eq(json_array_size(refused), (size_t)(events == 1 ? 2 : 3), "%s", text);
	/* what 127.0.0.2 asked for last */
	for (size_t i = 0; i < json_array_size(refused); i++) {
		json_t *e = json_array_get(refused, i);
		if (strcmp(cli_js(e, "address"), "127.0.0.2") == 0) {
			cr_assert_str_eq(cli_js(e, "request"), "GET /certificates?i=100", "%s",
			                 text);
			cr_assert(strncmp(cli_js(e, "last_peer"), "127.0.0.2:", 10) == 0, "%s",
			          text);
		}
	}
	free(text);
	json_decref(refused);
	/* alice's request, and only hers, is an api.request */
	srv_stop(&c);
	cr_assert_eq(cli_sql_count(c.store, "SELECT count(*) FROM events WHERE type = "
	                                    "'api.request'"),
	             1, "not alice's request alone was logged on its own");
	cr_assert_eq(cli_sql_count(c.store, "SELECT count(*) FROM events WHERE type = "
	                                    "'api.request' AND json_extract(details, '$.client') = "
	                                    "'alice'"),
	             1, "alice's request was not logged on its own");
	kwt_result k;
	cli_ok(&k, NULL, c.store, CLI_ARGS("audit", "verify"));
	kwt_result_free(&k);
	srv_teardown(&c);
}

/* More kinds of refusal than the server counts between writes (here 70
 * addresses, each sending a request without a certificate): one write per
 * full table, and every address is in the log. */
Test(server_auth, a_full_count_of_refusals_is_written_at_once)
{
	srv_ctx c;
	char from[32];
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	/* curl has its 401 when the server has counted it */
	char *codes =
	    cli_out("cd '%s' && for i in $(seq 70); do curl -sS --max-time 60 --cacert "
	            "ca.pem --interface 127.0.1.$i -o /dev/null -w '%%{http_code}\\n' "
	            "https://127.0.0.1:%d/certificates; done | sort | uniq -c | tr -s ' '",
	            c.dir, c.port);
	cr_assert_str_eq(codes, " 70 401", "70 addresses without a certificate: %s", codes);
	free(codes);
	srv_stop(&c);
	int events = 0;
	json_t *refused = srv_refusals(&c, &events);
	char *text = json_dumps(refused, JSON_COMPACT);
	/* 64 kinds, then the other 6 when the server stops (one more if the
	 * minute's write fell inside the test) */
	cr_assert(events >= 2 && events <= 3, "%d api.refused events for 70 addresses: %s", events,
	          text);
	for (int i = 0; i < 70; i++) {
		snprintf(from, sizeof(from), "127.0.1.%d", i + 1);
		cr_assert_eq(srv_refused(refused, from, NULL, "no client certificate"), 1, "%s: %s",
		             from, text);
	}
	free(text);
	json_decref(refused);
	srv_teardown(&c);
}
