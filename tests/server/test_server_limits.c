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
	/* one address may hold 16 connections by default */
	srv_start_with(&c, CLI_ARGS("--max-connections-per-address", "20"), NULL);
	int events =
	    cli_sql_count(c.store, "SELECT count(*) FROM events WHERE type = 'api.request'");
	/* 15 reads (admin and reader) and 5 creates, all started together */
	char *codes = cli_out(
	    "cd '%s' && for i in $(seq 1 20); do "
	    "if [ $i -le 5 ]; then "
	    "printf '{\"policy\": {\"key\": {\"backend\": \"hsm\"}, \"x509\": {\"subject\": "
	    "\"CN=c%%s\"}}}' $i > body$i; "
	    "curl -sS --max-time 120 --cacert ca.pem --cert alice.pem "
	    "-o /dev/null -w '%%{http_code}\\n' -H 'Content-Type: application/json' "
	    "--data-binary @body$i https://127.0.0.1:%d/certificates/c$i/create > code$i & "
	    "else who=alice; [ $((i %% 2)) = 0 ] && who=bob; "
	    "curl -sS --max-time 120 --cacert ca.pem --cert \"$who.pem\" "
	    "-o /dev/null -w '%%{http_code}\\n' https://127.0.0.1:%d/certificates > code$i & "
	    "fi; done; wait; for i in $(seq 1 20); do cat code$i; done | sort | uniq -c | "
	    "tr -s ' ' | tr '\\n' ';'",
	    c.dir, c.port, c.port);
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
	    "code=$(curl -sS --max-time 20 --cacert ca.pem --cert alice.pem "
	    "-o /dev/null -w '%%{http_code}' https://127.0.0.1:%d/certificates 2>/dev/null); "
	    "rc=$?; kill $pids 2>/dev/null; wait $pids 2>/dev/null; echo \"$rc $code\"",
	    c->dir, n, c->port, c->port);
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
	/* they closed: served again */
	srv_curl(&c, &r, "alice", "GET", "/certificates", NULL);
	srv_assert_status(&r, 200, "after the held connections closed");
	srv_reply_free(&r);
	srv_stop(&c);
	json_t *refused = srv_refusals(&c, NULL);
	cr_assert_eq(srv_refused(refused, "127.0.0.1", NULL, "connection limit reached (2)"), 1,
	             "the refused connection is not logged once: %s",
	             json_dumps(refused, JSON_COMPACT));
	json_decref(refused);
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

#define IDLE_SOCKETS 70

/* 70 connections from 127.0.0.2 that never send a TLS byte (the attack that
 * locked every other client out for 30 s): 16 (the per-address limit) are
 * held, the other 54 are closed at once; a client from 127.0.0.1 is served
 * while the 16 are still open. */
Test(server_limits, idle_connections_from_one_address_do_not_lock_others_out)
{
	srv_ctx c;
	srv_reply r;
	int fds[IDLE_SOCKETS], closed[IDLE_SOCKETS] = {0};
	srv_setup(&c, 0, 1, "hsm");
	/* the handshake deadline far away: what closes them here is the limit */
	srv_start_with(&c, CLI_ARGS("--handshake-timeout", "600"), NULL);
	for (int i = 0; i < IDLE_SOCKETS; i++)
		fds[i] = srv_tcp(&c, "127.0.0.2");
	int n = srv_tcp_wait_closed(fds, closed, IDLE_SOCKETS, IDLE_SOCKETS - 16);
	cr_assert_eq(n, IDLE_SOCKETS - 16, "%d of %d idle connections were closed, expected %d", n,
	             IDLE_SOCKETS, IDLE_SOCKETS - 16);
	srv_curl(&c, &r, "alice", "GET", "/certificates", NULL);
	srv_assert_status(&r, 200, "alice while 16 idle connections are held");
	srv_reply_free(&r);
	/* those 16 were held all along */
	int open = 0;
	for (int i = 0; i < IDLE_SOCKETS; i++)
		open += !closed[i] && !srv_tcp_closed(fds[i]);
	cr_assert_eq(open, 16, "%d idle connections still open, expected 16", open);
	/* another address is not held to 127.0.0.2's share */
	int other = srv_tcp(&c, "127.0.0.3");
	usleep(200 * 1000);
	cr_assert(!srv_tcp_closed(other), "127.0.0.3 was refused");
	close(other);
	for (int i = 0; i < IDLE_SOCKETS; i++)
		close(fds[i]);
	/* who was refused, and how often: one summary */
	srv_stop(&c);
	int events = 0;
	json_t *refused = srv_refusals(&c, &events);
	cr_assert_eq(srv_refused(refused, "127.0.0.2", NULL, "per-address connection limit"),
	             IDLE_SOCKETS - 16, "%s", json_dumps(refused, JSON_COMPACT));
	/* one summary (two if the minute's write fell inside the test) */
	cr_assert(events >= 1 && events <= 2, "%d api.refused events for one burst", events);
	json_decref(refused);
	srv_teardown(&c);
}

/* A connection that sends nothing, or a few bytes of a ClientHello and no
 * more, is closed when --handshake-timeout runs out. */
Test(server_limits, handshakes_not_done_in_time_are_closed)
{
	srv_ctx c;
	srv_reply r;
	int fds[4], closed[4] = {0};
	srv_setup(&c, 0, 1, "hsm");
	srv_start_with(&c, CLI_ARGS("--handshake-timeout", "1"), NULL);
	for (int i = 0; i < 4; i++)
		fds[i] = srv_tcp(&c, "127.0.0.2");
	/* a TLS record header and the start of a ClientHello */
	static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01};
	cr_assert(send(fds[3], hello, sizeof(hello), MSG_NOSIGNAL) == (ssize_t)sizeof(hello));
	int n = srv_tcp_wait_closed(fds, closed, 4, 4);
	cr_assert_eq(n, 4, "%d of 4 stalled handshakes were closed", n);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	/* a client that does its handshake is not affected */
	srv_curl(&c, &r, "alice", "GET", "/certificates", NULL);
	srv_assert_status(&r, 200, "alice after the stalled handshakes");
	srv_reply_free(&r);
	srv_teardown(&c);
}

/* A request that trickles in (one byte at a time after the handshake, so
 * that no read ever waits --timeout) gets 408 once --timeout has passed
 * since the handshake, and the connection is closed. */
Test(server_limits, a_request_that_trickles_in_gets_408)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	srv_start_with(&c, CLI_ARGS("--timeout", "2"), NULL);
	char *out =
	    cli_out("cd '%s' && (printf 'GET /certificates HTTP/1.1\\r\\nHost: x\\r\\nX-Slow: '; "
	            "for i in $(seq 40); do sleep 0.5; printf x || exit 0; done) | "
	            "timeout 60 openssl s_client -quiet -connect 127.0.0.1:%d -CAfile ca.pem "
	            "-cert alice.pem 2>/dev/null | tr -d '\\r' | head -1",
	            c.dir, c.port);
	cr_assert_str_eq(out, "HTTP/1.1 408 Request Timeout", "a trickling request got: %s", out);
	free(out);
	srv_teardown(&c);
}
