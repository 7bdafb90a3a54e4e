/* Contacts, channels and notices: what a fake sendmail, a local HTTP listener
 * and a command channel receive; dedup per version and threshold; failing
 * channels recorded, never returned. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <keyward/lifecycle.h>

#include "fixtures.h"
#include "kwtest.h"
#include "store/sql.h"
#include "lifecycle/lifecycle_internal.h"

#define NOW      "2030-01-01T00:00:00Z"
#define NOW_MAIL "Tue, 01 Jan 2030 00:00:00 +0000"

typedef kwt_store_fixture fixture;

static void setup(fixture *f)
{
	kwt_fixture_dirs(f, "notify");
	setenv("KEYWARD_NOW", NOW, 1);
	setenv("no_proxy", "127.0.0.1", 1); /* the listener is local */
	kwt_fixture_store(f, "web01", "CN=web01,O=Example");
}

static void teardown(fixture *f)
{
	kwt_fixture_close(f);
}

/* A fake sendmail: argv and stdin of call N go to out/N.args and out/N.msg. */
static char *fake_sendmail(fixture *f, int exit_code)
{
	char *script = NULL;
	cr_assert(asprintf(&script,
	                   "#!/bin/sh\nn=$(ls '%s' | grep -c '\\.msg$')\n"
	                   "printf '%%s\\n' \"$@\" > '%s'/$n.args\ncat > '%s'/$n.msg\n"
	                   "echo 'sendmail: cannot deliver' >&2\nexit %d\n",
	                   f->out, f->out, f->out, exit_code) > 0);
	char name[32];
	snprintf(name, sizeof(name), "sendmail%d", exit_code);
	char *dir = kwt_tmpdir("bin");
	char *path = kwt_write_file(dir, name, script, strlen(script), 0755);
	free(dir);
	free(script);
	return path;
}

static int count_sent(fixture *f)
{
	char *n = kwt_sh_out("ls '%s' | grep -c '\\.msg$'", f->out);
	int c = atoi(n);
	free(n);
	return c;
}

static char *read_out(fixture *f, const char *name)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", f->out, name);
	return kwt_read_file(p, NULL);
}

static void add_channel(fixture *f, const char *name, const char *kind, const char *key,
                        const char *value)
{
	json_t *cfg = key ? json_pack("{s:s}", key, value) : json_object();
	cr_assert_eq(kw_channel_add(f->s, name, kind, cfg), KW_OK, "%s", kw_error_message());
	json_decref(cfg);
}

static json_t *show(fixture *f, int version)
{
	json_t *j = NULL;
	cr_assert_eq(kw_cert_show(f->s, "web01", version, &j), KW_OK);
	return j;
}

/* ---- a local HTTP listener ---- */

typedef struct {
	int fd;
	int port;
	int status; /* answer with this; 0: never answer */
	char request[8192];
	char *body; /* the request body (points into request) */
	pthread_t thread;
} listener;

static void *serve(void *arg)
{
	listener *l = arg;
	int c = accept(l->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	size_t used = 0;
	long want = -1;
	while (used < sizeof(l->request) - 1) {
		ssize_t n = read(c, l->request + used, sizeof(l->request) - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		l->request[used] = '\0';
		char *end = strstr(l->request, "\r\n\r\n");
		if (end && want < 0) {
			const char *cl = strcasestr(l->request, "\r\nContent-Length:");
			want = (long)(end + 4 - l->request) + (cl ? atol(cl + 17) : 0);
		}
		if (want >= 0 && (long)used >= want)
			break;
	}
	char *end = strstr(l->request, "\r\n\r\n");
	l->body = end ? end + 4 : NULL;
	if (l->status == 0) {
		sleep(5); /* hang: the client must time out */
		close(c);
		return NULL;
	}
	char reply[128];
	int n = snprintf(reply, sizeof(reply),
	                 "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
	                 l->status);
	if (write(c, reply, (size_t)n) < 0)
		perror("write");
	close(c);
	return NULL;
}

static void listener_start(listener *l, int status)
{
	memset(l, 0, sizeof(*l));
	l->status = status;
	l->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	cr_assert_eq(bind(l->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(l->fd, 4), 0);
	cr_assert_eq(getsockname(l->fd, (struct sockaddr *)&a, &len), 0);
	l->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&l->thread, NULL, serve, l), 0);
}

static void listener_url(const listener *l, char *buf, size_t len)
{
	snprintf(buf, len, "http://127.0.0.1:%d/hook", l->port);
}

/* Waits for the one request (or gives up: the thread is cancelled). */
static void listener_stop(listener *l)
{
	shutdown(l->fd, SHUT_RDWR);
	pthread_join(l->thread, NULL);
	close(l->fd);
}

TestSuite(notify, .timeout = 120);

/* The headers of a message (up to the blank line), and its body. */
static void split_message(char *msg, char **headers, char **body)
{
	char *blank = strstr(msg, "\n\n");
	cr_assert(blank != NULL, "no blank line after the headers: %s", msg);
	blank[1] = '\0';
	*headers = msg;
	*body = blank + 2;
}

Test(notify, sendmail_gets_an_rfc5322_message_for_every_contact_once)
{
	fixture f;
	setup(&f);
	char *sendmail = fake_sendmail(&f, 0);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "%s -t -i", sendmail);
	add_channel(&f, "mail", "sendmail", "command", cmd);
	cr_assert_eq(kw_contact_add(f.s, NULL, "ops@example.com", "Ops \"Team\""), KW_OK);
	cr_assert_eq(kw_contact_add(f.s, "web01", "alice@example.com", "Ålice"), KW_OK);
	cr_assert_eq(kw_contact_add(f.s, "web01", "OPS@example.com", NULL), KW_OK);
	json_t *det = json_pack("{s:i}", "days_left", 30);
	cr_assert_eq(kwi_notify(f.s, "near-expiry", "web01", 1, "30d", det), KW_OK, "%s",
	             kw_error_message());
	json_decref(det);
	cr_assert_eq(count_sent(&f), 1);
	char *args = read_out(&f, "0.args");
	cr_assert_str_eq(args, "-t\n-i\n");
	char *msg = read_out(&f, "0.msg"), *headers, *body;
	split_message(msg, &headers, &body);
	char host[256], want[600];
	gethostname(host, sizeof(host));
	snprintf(want, sizeof(want), "From: keyward@%s\n", host);
	cr_assert(strncmp(headers, want, strlen(want)) == 0, "%s", headers);
	/* the cert's contacts first; OPS@ and ops@ are one address */
	cr_assert(strstr(headers, "To: =?UTF-8?B?w4VsaWNl?= <alice@example.com>,\n "
	                          "<OPS@example.com>\n") != NULL,
	          "%s", headers);
	cr_assert(strstr(headers, "ops@example.com") == NULL, "sent twice: %s", headers);
	cr_assert(strstr(headers, "\nSubject: [keyward] web01: certificate expires soon\n") != NULL,
	          "%s", headers);
	cr_assert(strstr(headers, "\nDate: " NOW_MAIL "\n") != NULL, "%s", headers);
	snprintf(want, sizeof(want), "@%s>\n", host);
	cr_assert(strstr(headers, "\nMessage-ID: <") != NULL && strstr(headers, want) != NULL, "%s",
	          headers);
	cr_assert(strstr(headers, "\nContent-Type: text/plain; charset=utf-8\n") != NULL, "%s",
	          headers);
	/* every header line is "Name: value" or a folded continuation */
	for (char *line = headers; *line; line = strchr(line, '\n') + 1)
		cr_assert(line[0] == ' ' || strchr(line, ':') < strchr(line, '\n'),
		          "bad line in %s", headers);
	json_t *cert = show(&f, 1);
	cr_assert(strstr(body, "Certificate: web01\n") != NULL, "%s", body);
	cr_assert(strstr(body, "Version:     1\n") != NULL, "%s", body);
	cr_assert(strstr(body, "CN=web01") != NULL, "%s", body);
	snprintf(want, sizeof(want), "Not after:   %s\n",
	         json_string_value(json_object_get(cert, "not_after")));
	cr_assert(strstr(body, want) != NULL, "%s", body);
	cr_assert(strstr(body, json_string_value(json_object_get(cert, "thumbprint_sha256"))), "%s",
	          body);
	cr_assert(strstr(body, "near-expiry (threshold 30d)") != NULL, "%s", body);
	cr_assert(strstr(body, "What happened:") && strstr(body, "What to do:"), "%s", body);
	cr_assert(strstr(body, "keyward cert renew web01") != NULL, "%s", body);
	json_t *sent = kwt_events_of(f.s, NULL, "notify.sent");
	cr_assert_eq(json_array_size(sent), 1);
	json_t *d = json_object_get(json_array_get(sent, 0), "details");
	cr_assert_str_eq(json_string_value(json_object_get(d, "channel")), "mail");
	cr_assert_eq(json_array_size(json_object_get(d, "recipients")), 2);
	json_decref(sent);
	json_decref(cert);
	free(args);
	free(msg);
	free(sendmail);
	teardown(&f);
}

Test(notify, a_display_name_with_quotes_is_escaped)
{
	fixture f;
	setup(&f);
	char *sendmail = fake_sendmail(&f, 0);
	add_channel(&f, "mail", "sendmail", "command", sendmail);
	cr_assert_eq(kw_contact_add(f.s, NULL, "bob@example.com", "Bob \"the\" B\\uilder"), KW_OK);
	cr_assert_eq(kwi_notify(f.s, "expired", "web01", 1, "0d", NULL), KW_OK);
	char *msg = read_out(&f, "0.msg");
	cr_assert(strstr(msg, "To: \"Bob \\\"the\\\" B\\\\uilder\" <bob@example.com>\n") != NULL,
	          "%s", msg);
	cr_assert(strstr(msg, "Subject: [keyward] web01: certificate EXPIRED\n") != NULL, "%s",
	          msg);
	free(msg);
	free(sendmail);
	teardown(&f);
}

Test(notify, the_webhook_gets_the_json_document_even_without_contacts)
{
	fixture f;
	setup(&f);
	listener l;
	listener_start(&l, 200);
	char url[128];
	listener_url(&l, url, sizeof(url));
	add_channel(&f, "hook", "webhook", "url", url);
	char *sendmail = fake_sendmail(&f, 0);
	add_channel(&f, "mail", "sendmail", "command", sendmail);
	json_t *det = json_pack("{s:i}", "previous_version", 1);
	cr_assert_eq(kwi_notify(f.s, "renewed", "web01", 1, NULL, det), KW_OK, "%s",
	             kw_error_message());
	json_decref(det);
	listener_stop(&l);
	cr_assert(strncmp(l.request, "POST /hook HTTP/1.1\r\n", 21) == 0, "%s", l.request);
	cr_assert(strcasestr(l.request, "\r\nContent-Type: application/json\r\n") != NULL, "%s",
	          l.request);
	json_error_t e;
	json_t *doc = json_loads(l.body ? l.body : "", 0, &e);
	cr_assert(doc != NULL, "body is not JSON (%s): %s", e.text, l.request);
	json_t *cert = show(&f, 1);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "event")), "renewed");
	cr_assert_str_eq(json_string_value(json_object_get(doc, "certificate")), "web01");
	cr_assert_eq(json_integer_value(json_object_get(doc, "version")), 1);
	const char *keys[] = {"subject", "not_after", "thumbprint_sha256"};
	for (int i = 0; i < 3; i++)
		cr_assert_str_eq(json_string_value(json_object_get(doc, keys[i])),
		                 json_string_value(json_object_get(cert, keys[i])), "%s", keys[i]);
	cr_assert(json_is_null(json_object_get(doc, "threshold")));
	cr_assert_eq(json_integer_value(
	                 json_object_get(json_object_get(doc, "details"), "previous_version")),
	             1);
	cr_assert(json_is_array(json_object_get(doc, "contacts")));
	cr_assert_eq(json_array_size(json_object_get(doc, "contacts")), 0);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "at")), NOW);
	/* no contacts: the mail channel has nobody to write to */
	cr_assert_eq(count_sent(&f), 0);
	json_t *failed = kwt_events_of(f.s, NULL, "notify.failed");
	cr_assert_eq(json_array_size(failed), 0);
	json_decref(failed);
	json_decref(doc);
	json_decref(cert);
	free(sendmail);
	teardown(&f);
}

Test(notify, one_notice_per_version_and_threshold)
{
	fixture f;
	setup(&f);
	char *sendmail = fake_sendmail(&f, 0);
	add_channel(&f, "mail", "sendmail", "command", sendmail);
	cr_assert_eq(kw_contact_add(f.s, NULL, "ops@example.com", NULL), KW_OK);
	cr_assert_eq(kwi_notify(f.s, "near-expiry", "web01", 1, "30d", NULL), KW_OK);
	cr_assert_eq(kwi_notify(f.s, "near-expiry", "web01", 1, "30d", NULL), KW_OK);
	cr_assert_eq(count_sent(&f), 1, "the same threshold was sent twice");
	cr_assert_eq(kwi_notify(f.s, "near-expiry", "web01", 1, "7d", NULL), KW_OK);
	cr_assert_eq(count_sent(&f), 2, "a new threshold was not sent");
	kw_version_info v;
	cr_assert_eq(kw_cert_renew(f.s, "web01", KW_RENEW_REUSE_KEY, &v), KW_OK, "%s",
	             kw_error_message());
	cr_assert_eq(v.version, 2);
	cr_assert_eq(v.previous_version, 1);
	cr_assert_eq(v.new_key, 0, "a reused key was reported as new");
	int n = count_sent(&f); /* the renewal itself may have sent "renewed" */
	cr_assert_eq(kwi_notify(f.s, "near-expiry", "web01", 2, "30d", NULL), KW_OK);
	cr_assert_eq(count_sent(&f), n + 1, "a new version was not sent");
	cr_assert_eq(kwi_notify(f.s, "near-expiry", "web01", 2, "30d", NULL), KW_OK);
	cr_assert_eq(count_sent(&f), n + 1);
	char last[32];
	snprintf(last, sizeof(last), "%d.msg", n);
	char *msg = read_out(&f, last);
	cr_assert(strstr(msg, "Version:     2\n") != NULL, "%s", msg);
	cr_assert(strstr(msg, "near-expiry (threshold 30d)") != NULL, "%s", msg);
	free(msg);
	cr_assert_eq(kwi_notify(f.s, "near-expiry", "web01", 1, "30d", NULL), KW_OK);
	cr_assert_eq(count_sent(&f), n + 1, "version 1's notice went out again");
	/* without a threshold nothing is deduplicated */
	cr_assert_eq(kwi_notify(f.s, "renewed", "web01", 2, NULL, NULL), KW_OK);
	cr_assert_eq(kwi_notify(f.s, "renewed", "web01", 2, NULL, NULL), KW_OK);
	cr_assert_eq(count_sent(&f), n + 3);
	char *rows = kwt_sh_out("sqlite3 '%s/keyward.db' 'SELECT count(*) FROM notices'", f.dir);
	cr_assert_eq(atoi(rows), 3, "notices rows: %s", rows);
	free(rows);
	free(sendmail);
	teardown(&f);
}

Test(notify, failing_channels_are_recorded_and_the_call_still_succeeds)
{
	fixture f;
	setup(&f);
	listener l;
	listener_start(&l, 500);
	char url[128], cmd[4200];
	listener_url(&l, url, sizeof(url));
	add_channel(&f, "hook", "webhook", "url", url);
	char *bad = fake_sendmail(&f, 1);
	add_channel(&f, "mail", "sendmail", "command", bad);
	snprintf(cmd, sizeof(cmd), "cat > '%s/cmd.json'", f.out);
	add_channel(&f, "zcmd", "command", "command", cmd);
	cr_assert_eq(kw_contact_add(f.s, "web01", "ops@example.com", NULL), KW_OK);
	/* the caller's own error survives the channels' */
	kw_error_clear();
	KW_FAIL(KW_ERR_BACKEND, "the renewal failed earlier");
	json_t *det = json_pack("{s:s}", "error", "ACME said no");
	cr_assert_eq(kwi_notify(f.s, "renewal-failed", "web01", 1, NULL, det), KW_OK);
	json_decref(det);
	cr_assert_str_eq(kw_error_message(), "the renewal failed earlier");
	cr_assert_eq(kw_error_code(), KW_ERR_BACKEND);
	listener_stop(&l);
	json_t *failed = kwt_events_of(f.s, NULL, "notify.failed");
	cr_assert_eq(json_array_size(failed), 2);
	json_t *d0 = json_object_get(json_array_get(failed, 0), "details");
	json_t *d1 = json_object_get(json_array_get(failed, 1), "details");
	cr_assert_str_eq(json_string_value(json_object_get(d0, "channel")), "hook");
	cr_assert(strstr(json_string_value(json_object_get(d0, "error")), "HTTP 500"), "%s",
	          json_string_value(json_object_get(d0, "error")));
	cr_assert_str_eq(json_string_value(json_object_get(d1, "channel")), "mail");
	const char *err = json_string_value(json_object_get(d1, "error"));
	cr_assert(strstr(err, "exit status 1") && strstr(err, "cannot deliver"), "%s", err);
	json_t *sent = kwt_events_of(f.s, NULL, "notify.sent");
	cr_assert_eq(json_array_size(sent), 1);
	cr_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_array_get(sent, 0), "details"), "channel")),
	                 "zcmd");
	char *msg = read_out(&f, "0.msg"); /* it was handed the mail, then failed */
	cr_assert(msg && strstr(msg, "ACME said no") != NULL);
	free(msg);
	json_decref(failed);
	json_decref(sent);
	free(bad);
	teardown(&f);
}

Test(notify, a_webhook_that_never_answers_times_out)
{
	fixture f;
	setup(&f);
	cr_assert_eq(sqlite3_exec(f.s->db, "INSERT INTO settings VALUES ('notify_timeout', '1')",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	listener l;
	listener_start(&l, 0);
	char url[128];
	listener_url(&l, url, sizeof(url));
	add_channel(&f, "hook", "webhook", "url", url);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(kwi_notify(f.s, "expired", "web01", 1, "0d", NULL), KW_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert(t1.tv_sec - t0.tv_sec < 4, "took %ld s", (long)(t1.tv_sec - t0.tv_sec));
	json_t *failed = kwt_events_of(f.s, NULL, "notify.failed");
	cr_assert_eq(json_array_size(failed), 1);
	json_decref(failed);
	listener_stop(&l);
	teardown(&f);
}

Test(notify, the_command_channel_gets_json_on_stdin_and_no_secret_in_its_environment)
{
	fixture f;
	setup(&f);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "cat > '%s/cmd.json'; env > '%s/cmd.env'", f.out, f.out);
	add_channel(&f, "cmd", "command", "command", cmd);
	cr_assert_eq(kw_contact_add(f.s, NULL, "ops@example.com", NULL), KW_OK);
	setenv("KEYWARD_PIN", "do-not-leak-4711", 1);
	cr_assert_eq(kwi_notify(f.s, "expired", "web01", 1, "0d", NULL), KW_OK);
	char *json = read_out(&f, "cmd.json"), *env = read_out(&f, "cmd.env");
	cr_assert(json && env);
	json_t *doc = json_loads(json, 0, NULL);
	cr_assert(doc != NULL, "%s", json);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "event")), "expired");
	cr_assert_str_eq(json_string_value(json_object_get(doc, "threshold")), "0d");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(doc, "contacts"), 0)),
	                 "ops@example.com");
	cr_assert(strstr(env, "KEYWARD_EVENT=expired\n") != NULL, "%s", env);
	cr_assert(strstr(env, "KEYWARD_NAME=web01\n") != NULL, "%s", env);
	cr_assert(strstr(env, "KEYWARD_VERSION=1\n") != NULL, "%s", env);
	cr_assert(strstr(env, "KEYWARD_THRESHOLD=0d\n") != NULL, "%s", env);
	cr_assert(strstr(env, "KEYWARD_CONTACTS=ops@example.com\n") != NULL, "%s", env);
	cr_assert(strstr(env, kwt_env("KW_TEST_P11_PIN")) == NULL, "the PIN reached a command");
	cr_assert(strstr(env, "KW_TEST_P11_PIN") == NULL, "%s", env);
	cr_assert(strstr(env, "do-not-leak-4711") == NULL, "%s", env);
	json_decref(doc);
	free(json);
	free(env);
	teardown(&f);
}

Test(notify, without_channels_nothing_is_sent_or_recorded)
{
	fixture f;
	setup(&f);
	json_t *before = NULL, *after = NULL;
	cr_assert_eq(kw_events_list(f.s, NULL, &before), KW_OK);
	cr_assert_eq(kwi_notify(f.s, "near-expiry", "web01", 1, "30d", NULL), KW_OK);
	cr_assert_eq(kw_events_list(f.s, NULL, &after), KW_OK);
	cr_assert_eq(json_array_size(after), json_array_size(before));
	char *rows = kwt_sh_out("sqlite3 '%s/keyward.db' 'SELECT count(*) FROM notices'", f.dir);
	cr_assert_eq(atoi(rows), 0);
	free(rows);
	json_decref(before);
	json_decref(after);
	teardown(&f);
}

Test(notify, unknown_kinds_and_certificates_are_errors)
{
	fixture f;
	setup(&f);
	cr_assert_eq(kwi_notify(f.s, "birthday", "web01", 1, NULL, NULL), KW_ERR_USAGE);
	cr_assert_eq(kwi_notify(f.s, "expired", "nosuch", 1, NULL, NULL), KW_ERR_NOT_FOUND);
	teardown(&f);
}

/* ---- contacts ---- */

Test(contacts, are_added_listed_and_removed_store_wide_and_per_certificate)
{
	fixture f;
	setup(&f);
	cr_assert_eq(kw_contact_add(f.s, NULL, "ops@example.com", "Ops"), KW_OK);
	cr_assert_eq(kw_contact_add(f.s, "web01", "alice@example.com", NULL), KW_OK);
	json_t *all = NULL;
	cr_assert_eq(kw_contact_list(f.s, NULL, &all), KW_OK);
	cr_assert_eq(json_array_size(all), 2);
	json_t *c0 = json_array_get(all, 0), *c1 = json_array_get(all, 1);
	cr_assert_str_eq(json_string_value(json_object_get(c0, "email")), "ops@example.com");
	cr_assert_str_eq(json_string_value(json_object_get(c0, "name")), "Ops");
	cr_assert(json_is_null(json_object_get(c0, "cert")));
	cr_assert_str_eq(json_string_value(json_object_get(c1, "cert")), "web01");
	cr_assert(json_is_null(json_object_get(c1, "name")));
	json_decref(all);
	/* the same address store-wide twice: refused; on a certificate too: fine */
	cr_assert_eq(kw_contact_add(f.s, NULL, "OPS@example.com", NULL), KW_ERR_EXISTS);
	cr_assert_eq(kw_contact_add(f.s, "web01", "ops@example.com", NULL), KW_OK);
	cr_assert_eq(kw_contact_remove(f.s, NULL, "alice@example.com"), KW_ERR_NOT_FOUND);
	cr_assert_eq(kw_contact_remove(f.s, "web01", "alice@example.com"), KW_OK);
	cr_assert_eq(kw_contact_remove(f.s, "web01", "alice@example.com"), KW_ERR_NOT_FOUND);
	cr_assert_eq(kw_contact_list(f.s, "web01", &all), KW_OK);
	cr_assert_eq(json_array_size(all), 2); /* ops store-wide and on web01 */
	json_decref(all);
	json_t *added = kwt_events_of(f.s, NULL, "contact.added"),
	       *removed = kwt_events_of(f.s, NULL, "contact.removed");
	cr_assert_eq(json_array_size(added), 3);
	cr_assert_eq(json_array_size(removed), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(removed, 0), "cert")),
	                 "web01");
	json_decref(added);
	json_decref(removed);
	cr_assert_eq(kw_contact_add(f.s, "nosuch", "a@example.com", NULL), KW_ERR_NOT_FOUND);
	cr_assert_eq(kw_contact_list(f.s, "nosuch", &all), KW_ERR_NOT_FOUND);
	teardown(&f);
}

Test(contacts, addresses_that_could_inject_headers_are_refused)
{
	fixture f;
	setup(&f);
	const char *bad[] = {"no-at-sign",
	                     "a@b@example.com",
	                     "a b@example.com",
	                     "a@example.com\r\nBcc: victim@example.com",
	                     "a@example.com\nBcc: victim@example.com",
	                     "<a@example.com>",
	                     "Ops <a@example.com>",
	                     "a,b@example.com",
	                     "a@",
	                     "@example.com",
	                     ".a@example.com",
	                     "a@exam ple.com",
	                     "a\"b@example.com",
	                     ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(kw_contact_add(f.s, NULL, bad[i], NULL), KW_ERR_USAGE, "accepted '%s'",
		             bad[i]);
		cr_assert(strstr(kw_error_message(), "bad email address") != NULL);
	}
	cr_assert_eq(kw_contact_add(f.s, NULL, "ok@example.com", "Ops\r\nBcc: x@example.com"),
	             KW_ERR_USAGE);
	json_t *all = NULL;
	cr_assert_eq(kw_contact_list(f.s, NULL, &all), KW_OK);
	cr_assert_eq(json_array_size(all), 0);
	json_decref(all);
	cr_assert_eq(kw_contact_add(f.s, NULL, "first.last+tag@sub.example-1.com", NULL), KW_OK);
	teardown(&f);
}

/* ---- channels ---- */

Test(channels, are_validated_stored_with_defaults_and_removed)
{
	fixture f;
	setup(&f);
	add_channel(&f, "mail", "sendmail", NULL, NULL);
	add_channel(&f, "hook", "webhook", "url", "https://hooks.example.com/x?token=1");
	add_channel(&f, "cmd", "command", "command", "logger -t keyward");
	json_t *list = NULL;
	cr_assert_eq(kw_channel_list(f.s, &list), KW_OK);
	cr_assert_eq(json_array_size(list), 3);
	json_t *mail = json_array_get(list, 2); /* by name: cmd, hook, mail */
	cr_assert_str_eq(json_string_value(json_object_get(mail, "kind")), "sendmail");
	cr_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(mail, "config"), "command")),
	    "/usr/sbin/sendmail -t -i");
	json_decref(list);
	json_t *cfg = json_object();
	cr_assert_eq(kw_channel_add(f.s, "h2", "webhook", cfg), KW_ERR_USAGE);
	cr_assert(strstr(kw_error_message(), "URL is required") != NULL, "%s", kw_error_message());
	cr_assert(strstr(kw_error_message(), "--") == NULL, "%s", kw_error_message());
	cr_assert_eq(kw_error_hint(), KW_HINT_GIVE_URL, "the CLI names --url");
	cr_assert_eq(kw_channel_add(f.s, "c2", "command", cfg), KW_ERR_USAGE);
	cr_assert_eq(kw_channel_add(f.s, "p", "pigeon", cfg), KW_ERR_USAGE);
	cr_assert(strstr(kw_error_message(), "unknown channel kind") != NULL);
	json_object_set_new(cfg, "url", json_string("ftp://example.com/"));
	cr_assert_eq(kw_channel_add(f.s, "h3", "webhook", cfg), KW_ERR_USAGE);
	json_object_set_new(cfg, "url", json_string("https://example.com/"));
	json_object_set_new(cfg, "ca_bundle", json_string("/no/such/file.pem"));
	cr_assert_eq(kw_channel_add(f.s, "h4", "webhook", cfg), KW_ERR_USAGE);
	json_decref(cfg);
	cfg = json_pack("{s:s}", "command", "x\ny");
	cr_assert_eq(kw_channel_add(f.s, "c3", "command", cfg), KW_ERR_USAGE);
	json_decref(cfg);
	cr_assert_eq(kw_channel_add(f.s, "mail", "sendmail", NULL), KW_ERR_EXISTS);
	cr_assert_eq(kw_channel_add(f.s, "bad name", "sendmail", NULL), KW_ERR_USAGE);
	cr_assert_eq(kw_channel_list(f.s, &list), KW_OK);
	cr_assert_eq(json_array_size(list), 3);
	json_decref(list);
	cr_assert_eq(kw_channel_remove(f.s, "hook"), KW_OK);
	cr_assert_eq(kw_channel_remove(f.s, "hook"), KW_ERR_NOT_FOUND);
	cr_assert_eq(kw_channel_list(f.s, &list), KW_OK);
	cr_assert_eq(json_array_size(list), 2);
	json_decref(list);
	/* the URL (it may hold a token) is not in the event log */
	json_t *ev = NULL;
	cr_assert_eq(kw_events_list(f.s, NULL, &ev), KW_OK);
	char *text = json_dumps(ev, 0);
	cr_assert(strstr(text, "token=1") == NULL, "%s", text);
	cr_assert(strstr(text, "channel.added") && strstr(text, "channel.removed"));
	free(text);
	json_decref(ev);
	teardown(&f);
}
