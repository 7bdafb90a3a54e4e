/* see lifecycle/notify_internal.h: the three channel kinds (sendmail, webhook, command) */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lifecycle/notify_internal.h"
#include "common/process.h"

#define DEFAULT_SENDMAIL "/usr/sbin/sendmail -t -i"

static const char *str(const json_t *doc, const char *key, const char *def)
{
	const char *v = json_string_value(json_object_get(doc, key));
	return v ? v : def;
}

/* This host's name for From: and Message-ID:, or "localhost" if it is not a
 * plain DNS name. */
static void host_name(char *buf, size_t len)
{
	if (gethostname(buf, len) != 0 || buf[0] == '\0')
		goto fallback;
	buf[len - 1] = '\0';
	for (const char *p = buf; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			goto fallback;
	return;
fallback:
	snprintf(buf, len, "localhost");
}

/* RFC 5322 date, independent of the locale. */
static void mail_date(time_t t, char *buf, size_t len)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
	         months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Appends one To: entry: "Name" <addr>, the name RFC 2047-encoded unless it
 * is printable ASCII. Addresses and names were validated when added; control
 * characters are dropped again here so no header can ever be split. */
static void add_recipient(FILE *f, const json_t *c, int first)
{
	const char *email = str(c, "email", "");
	const char *name = str(c, "name", NULL);
	int ascii = 1;
	fputs(first ? "To: " : ",\n ", f);
	for (const char *p = name; p && *p; p++)
		ascii &= (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f;
	if (name && ascii) {
		fputc('"', f);
		for (const char *p = name; *p; p++) {
			if (*p == '"' || *p == '\\')
				fputc('\\', f);
			fputc(*p, f);
		}
		fputs("\" ", f);
	} else if (name) {
		unsigned char enc[4 * 256 / 3 + 8];
		size_t n = strlen(name) > 180 ? 180 : strlen(name);
		EVP_EncodeBlock(enc, (const unsigned char *)name, (int)n);
		fprintf(f, "=?UTF-8?B?%s?= ", enc);
	}
	fputc('<', f);
	for (const char *p = email; *p; p++)
		if ((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
			fputc(*p, f);
	fputc('>', f);
}

/* What happened and what to do, per kind. */
static void mail_explain(FILE *f, const json_t *d, const char *name)
{
	const char *kind = str(d, "event", "");
	const char *not_after = str(d, "not_after", "unknown");
	const char *err = str(json_object_get(d, "details"), "error", NULL);
	if (strcmp(kind, "near-expiry") == 0)
		fprintf(
		    f,
		    "What happened: the certificate expires at %s and has not been renewed yet.\n"
		    "What to do: renew it (keyward cert renew %s), or find out why the timer did\n"
		    "not (keyward events --cert %s; systemctl status keyward-renew.timer).\n",
		    not_after, name, name);
	else if (strcmp(kind, "expired") == 0)
		fprintf(f,
		        "What happened: the certificate expired at %s. Clients now reject it.\n"
		        "What to do: renew it now (keyward cert renew %s), then deploy it\n"
		        "(keyward cert deploy %s).\n",
		        not_after, name, name);
	else if (strcmp(kind, "renewed") == 0)
		fprintf(
		    f,
		    "What happened: the certificate was renewed; this version is now current.\n"
		    "What to do: nothing if its deploy hooks reloaded your servers; check with\n"
		    "keyward events --cert %s.\n",
		    name);
	else if (strcmp(kind, "renewal-failed") == 0)
		fprintf(
		    f,
		    "What happened: renewing the certificate failed%s%s.\n"
		    "What to do: fix the cause and retry (keyward cert renew %s); keyward renew\n"
		    "--due keeps retrying with backoff until it expires at %s.\n",
		    err ? ": " : "", err ? err : "", name, not_after);
	else
		fprintf(
		    f,
		    "What happened: the certificate waits for an action of yours (a pending CSR).\n"
		    "What to do: get the CSR signed (keyward cert csr %s) and bring the\n"
		    "certificate back (keyward cert merge %s FILE).\n",
		    name, name);
}

static void mail_body(FILE *f, const kwi_notice *n)
{
	const json_t *d = n->doc;
	const char *name = str(d, "certificate", "");
	char *details = json_dumps(json_object_get(d, "details"), JSON_COMPACT | JSON_SORT_KEYS);
	fprintf(f, "Certificate: %s\n", name);
	fprintf(f, "Version:     %lld\n",
	        (long long)json_integer_value(json_object_get(d, "version")));
	fprintf(f, "Subject:     %s\n", str(d, "subject", "(none)"));
	fprintf(f, "Not after:   %s\n", str(d, "not_after", "(none)"));
	fprintf(f, "SHA-256:     %s\n", str(d, "thumbprint_sha256", "(none)"));
	fprintf(f, "Event:       %s", str(d, "event", ""));
	if (str(d, "threshold", NULL))
		fprintf(f, " (threshold %s)", str(d, "threshold", ""));
	fprintf(f, "\n\n");
	mail_explain(f, d, name);
	if (details && strcmp(details, "{}") != 0)
		fprintf(f, "\nDetails: %s\n", details);
	fprintf(f, "\n-- \nSent by keyward at %s\n", str(d, "at", ""));
	free(details);
}

static const char *mail_subject(const char *kind)
{
	if (strcmp(kind, "near-expiry") == 0)
		return "certificate expires soon";
	if (strcmp(kind, "expired") == 0)
		return "certificate EXPIRED";
	if (strcmp(kind, "renewed") == 0)
		return "certificate renewed";
	if (strcmp(kind, "renewal-failed") == 0)
		return "certificate renewal FAILED";
	return "certificate needs your action";
}

kw_rc kwi_mail_message(const kwi_notice *n, char **out)
{
	char host[256], date[64];
	unsigned char rnd[12];
	char id[2 * sizeof(rnd) + 1];
	size_t len = 0, i;
	json_t *c;
	*out = NULL;
	FILE *f = open_memstream(out, &len);
	if (f == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	host_name(host, sizeof(host));
	mail_date(n->at, date, sizeof(date));
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	kwi_hex(rnd, sizeof(rnd), id);
	fprintf(f, "From: keyward@%s\n", host);
	json_array_foreach(n->contacts, i, c) add_recipient(f, c, i == 0);
	if (json_array_size(n->contacts) > 0)
		fputc('\n', f);
	/* the certificate name is [A-Za-z0-9._-]: safe in a header */
	fprintf(f, "Subject: [keyward] %s: %s\n", str(n->doc, "certificate", ""),
	        mail_subject(str(n->doc, "event", "")));
	fprintf(f, "Date: %s\n", date);
	fprintf(f, "Message-ID: <%lld.%s@%s>\n", (long long)n->at, id, host);
	fprintf(f, "MIME-Version: 1.0\n");
	fprintf(f, "Content-Type: text/plain; charset=utf-8\n");
	fprintf(f, "Content-Transfer-Encoding: 8bit\n");
	fprintf(f, "Auto-Submitted: auto-generated\n\n");
	mail_body(f, n);
	if (fclose(f) != 0 || *out == NULL) {
		free(*out);
		*out = NULL;
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	return KW_OK;
}

/* Runs a channel's command with input on stdin. */
static kw_rc run_command(const char *what, const char *cmd, const kwi_notice *n, const char *input,
                         int with_vars)
{
	kwi_env env = {0};
	kwi_process_result r;
	char version[24], status[96];
	const json_t *d = n->doc;
	snprintf(version, sizeof(version), "%lld",
	         (long long)json_integer_value(json_object_get(d, "version")));
	if (with_vars) {
		char *contacts = NULL;
		size_t len = 0, i;
		json_t *c;
		FILE *f = open_memstream(&contacts, &len);
		json_array_foreach(json_object_get(d, "contacts"), i, c) if (f)
		    fprintf(f, "%s%s", i ? "," : "", json_string_value(c));
		if (f)
			fclose(f);
		kwi_env_add(&env, "KEYWARD_EVENT", str(d, "event", ""));
		kwi_env_add(&env, "KEYWARD_NAME", str(d, "certificate", ""));
		kwi_env_add(&env, "KEYWARD_VERSION", version);
		kwi_env_add(&env, "KEYWARD_SUBJECT", str(d, "subject", NULL));
		kwi_env_add(&env, "KEYWARD_NOT_AFTER", str(d, "not_after", NULL));
		kwi_env_add(&env, "KEYWARD_THUMBPRINT_SHA256", str(d, "thumbprint_sha256", NULL));
		kwi_env_add(&env, "KEYWARD_THRESHOLD", str(d, "threshold", NULL));
		kwi_env_add(&env, "KEYWARD_CONTACTS", contacts ? contacts : "");
		free(contacts);
	}
	kwi_env_add(&env, "HOME", getenv("HOME")); /* mail programs read ~/.config */
	kwi_env_add_path(&env);
	if (env.failed) {
		kwi_env_clear(&env);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	kwi_process p = {.command = cmd,
	                 .env = env.vars,
	                 .input = input,
	                 .input_len = strlen(input),
	                 .timeout_ms = n->timeout_ms};
	kw_rc rc = kwi_process_run(&p, &r);
	if (rc == KW_OK && !kwi_process_ok(&r)) {
		char shown[240], shown_cmd[240];
		const char *last = strrchr(r.err_tail, '\n');
		kwi_printable(last ? last + 1 : r.err_tail, shown, sizeof(shown));
		kwi_process_describe(&p, &r, status, sizeof(status));
		rc = KW_FAIL(KW_ERR_STATE, "%s '%s' failed (%s)%s%s", what,
		             kwi_printable(cmd, shown_cmd, sizeof(shown_cmd)), status,
		             shown[0] ? ": " : "", shown);
	}
	kwi_process_result_clear(&r); /* zeroed by kwi_process_run even on failure */
	kwi_env_clear(&env);
	return rc;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static kw_rc webhook(const json_t *config, const kwi_notice *n)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	long code = 0;
	kw_rc rc = KW_OK;
	const char *ca = str(config, "ca_bundle", NULL);
	char *body = json_dumps(n->doc, JSON_COMPACT | JSON_SORT_KEYS);
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (body == NULL || h == NULL || hdr == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, str(config, "url", ""));
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)n->timeout_ms);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "keyward/0.1.0");
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	if (ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	/* the URL is not repeated: webhook URLs often carry a token */
	if (cc != CURLE_OK)
		rc = KW_FAIL(KW_ERR_UNAVAILABLE, "webhook POST failed: %s",
		             errbuf[0] ? errbuf : curl_easy_strerror(cc));
	else if (code < 200 || code > 299)
		rc = KW_FAIL(KW_ERR_UNAVAILABLE, "webhook POST answered HTTP %ld", code);
out:
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	free(body);
	return rc;
}

kw_rc kwi_channel_send(const char *kind, const json_t *config, const kwi_notice *n, int *skipped)
{
	*skipped = 0;
	if (strcmp(kind, "webhook") == 0)
		return webhook(config, n);
	if (strcmp(kind, "command") == 0) {
		char *json = json_dumps(n->doc, JSON_COMPACT | JSON_SORT_KEYS);
		if (json == NULL)
			return KW_FAIL(KW_ERR_NOMEM, "out of memory");
		kw_rc rc = run_command("command", str(config, "command", ""), n, json, 1);
		free(json);
		return rc;
	}
	if (strcmp(kind, "sendmail") == 0) {
		char *msg = NULL;
		if (json_array_size(n->contacts) == 0) {
			*skipped = 1;
			return KW_OK;
		}
		KW_GUARD(kwi_mail_message(n, &msg));
		kw_rc rc =
		    run_command("sendmail", str(config, "command", DEFAULT_SENDMAIL), n, msg, 0);
		free(msg);
		return rc;
	}
	return KW_FAIL(KW_ERR_UNSUPPORTED, "unknown channel kind '%s'", kind);
}
