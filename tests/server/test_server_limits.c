/*
 * keyward serve under load and at its limits: 20 requests at once (reads and
 * writes, each one transaction, all logged), the connection limit (more
 * connections are refused at the handshake, and served again once others
 * end), and the idle timeout.
 */
#include "server_test.h"

Test(server_limits, twenty_concurrent_requests_all_succeed)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	int events =
	    cli_sql_count(c.store, "SELECT count(*) FROM events WHERE type = 'api.request'");
	/* 15 reads (admin and reader) and 5 creates, all started together */
	char *codes = cli_out(
	    "cd '%s' && for i in $(seq 1 20); do "
	    "if [ $i -le 5 ]; then "
	    "printf '{\"policy\": {\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\": "
	    "\"CN=c%%s\"}}}' $i > body$i; "
	    "curl -sS --max-time 120 --cacert ca.pem --cert-type P12 --cert 'alice.p12:%s' "
	    "-o /dev/null -w '%%{http_code}\\n' -H 'Content-Type: application/json' "
	    "--data-binary @body$i https://127.0.0.1:%d/certificates/c$i/create > code$i & "
	    "else who=alice; [ $((i %% 2)) = 0 ] && who=bob; "
	    "curl -sS --max-time 120 --cacert ca.pem --cert-type P12 --cert \"$who.p12:%s\" "
	    "-o /dev/null -w '%%{http_code}\\n' https://127.0.0.1:%d/certificates > code$i & "
	    "fi; done; wait; for i in $(seq 1 20); do cat code$i; done | sort | uniq -c | "
	    "tr -s ' ' | tr '\\n' ';'",
	    c.dir, SRV_PASSWORD, c.port, SRV_PASSWORD, c.port);
	cr_assert_str_eq(codes, " 15 200; 5 201;", "20 concurrent requests answered: %s", codes);
	free(codes);
	json_t *l = cli_list(c.store, "cert list");
	for (int i = 1; i <= 5; i++) {
		char name[8];
		snprintf(name, sizeof(name), "c%d", i);
		cr_assert(cli_find_named(l, name) != NULL, "%s was not created", name);
	}
	json_decref(l);
	cr_assert_eq(cli_sql_count(c.store, "SELECT count(*) FROM events WHERE type = "
	                                    "'api.request'"),
	             events + 20, "not every request was logged");
	kwt_result k;
	cli_ok(&k, NULL, c.store, CLI_ARGS("audit", "verify"));
	kwt_result_free(&k);
	srv_teardown(&c);
}

/* Holds n TLS connections open (openssl s_client, stdin a FIFO kept open),
 * runs curl as alice, and reports "<curl exit> <http code>". */
static char *curl_while_holding(const srv_ctx *c, int n)
{
	return cli_out(
	    "cd '%s' && pids=; for i in $(seq 1 %d); do rm -f f$i; mkfifo f$i; "
	    "openssl s_client -connect 127.0.0.1:%d -CAfile ca.pem < f$i > s$i.out 2>&1 & "
	    "pids=\"$pids $!\"; eval \"exec $((3 + i))>f$i\"; "
	    "for t in $(seq 100); do grep -q 'Verify return code' s$i.out && break; sleep 0.1; "
	    "done; done; "
	    "code=$(curl -sS --max-time 20 --cacert ca.pem --cert-type P12 --cert 'alice.p12:%s' "
	    "-o /dev/null -w '%%{http_code}' https://127.0.0.1:%d/certificates 2>/dev/null); "
	    "rc=$?; kill $pids 2>/dev/null; wait $pids 2>/dev/null; echo \"$rc $code\"",
	    c->dir, n, c->port, SRV_PASSWORD, c->port);
}

Test(server_limits, connections_beyond_the_limit_are_refused)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 0, 1, "hsm");
	srv_start_with(&c, CLI_ARGS("--max-connections", "2"), NULL);
	/* one held: curl is the second, served */
	char *one = curl_while_holding(&c, 1);
	cr_assert_str_eq(one, "0 200", "one connection held, curl got: %s", one);
	free(one);
	/* two held: curl is the third, refused at the handshake */
	char *two = curl_while_holding(&c, 2);
	cr_assert(strncmp(two, "0 ", 2) != 0 && strstr(two, " 000") != NULL,
	          "two connections held, curl got: %s", two);
	free(two);
	cr_assert_eq(cli_sql_count(c.store, "SELECT count(*) FROM events WHERE type = "
	                                    "'api.request' AND details LIKE '%connection limit%'"),
	             1, "the refused connection is not logged once");
	/* they closed: served again */
	srv_curl(&c, &r, "alice", "GET", "/certificates", NULL);
	srv_assert_status(&r, 200, "after the held connections closed");
	srv_reply_free(&r);
	srv_teardown(&c);
}

/* Connects, says nothing, keeps its side open: "closed" when the server
 * dropped the connection within tenths of a second, else "still-open". */
static char *idle_client(const srv_ctx *c, int tenths)
{
	return cli_out("cd '%s' && rm -f idle; mkfifo idle; "
	               "openssl s_client -connect 127.0.0.1:%d -CAfile ca.pem < idle "
	               "> idle.out 2>&1 & p=$!; exec 9>idle; "
	               "for t in $(seq %d); do kill -0 $p 2>/dev/null || break; sleep 0.1; "
	               "done; if kill -0 $p 2>/dev/null; then kill $p; echo still-open; "
	               "else echo closed; fi; exec 9>&-; wait $p 2>/dev/null; true",
	               c->dir, c->port, tenths);
}

Test(server_limits, idle_connections_time_out)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	/* the default timeout (30 s) keeps it for 5 s ... */
	srv_start(&c);
	char *out = idle_client(&c, 50);
	cr_assert_str_eq(out, "still-open", "an idle connection was closed before the timeout");
	free(out);
	srv_stop(&c);
	/* ... --timeout 2 drops it */
	srv_start_with(&c, CLI_ARGS("--timeout", "2"), NULL);
	out = idle_client(&c, 100);
	cr_assert_str_eq(out, "closed", "an idle connection was not closed within 10 s");
	free(out);
	srv_teardown(&c);
}
