/* see keyward/lifecycle.h: notification channels (how contacts are told) */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lifecycle/lifecycle_internal.h"
#include "lifecycle/notify_internal.h"

#define DEFAULT_SENDMAIL "/usr/sbin/sendmail -t -i"
#define CHANNEL_NAME_MAX 64

static kw_rc check_name(const char *name)
{
	return kwi_name_check("channel", name, CHANNEL_NAME_MAX);
}

/* Only the keys a kind knows, each a non-empty string without newlines. */
static kw_rc check_keys(const char *kind, const json_t *config, const char *const *known)
{
	const char *key;
	char shown[200];
	json_t *v;
	json_object_foreach((json_t *)config, key, v)
	{
		int ok = 0;
		for (const char *const *k = known; *k; k++)
			ok |= strcmp(key, *k) == 0;
		if (!ok)
			return KW_FAIL(KW_ERR_USAGE, "%s channel: unknown setting '%s'", kind,
			               kwi_printable(key, shown, sizeof(shown)));
		const char *text = json_string_value(v);
		if (text == NULL || text[0] == '\0' || strpbrk(text, "\r\n"))
			return KW_FAIL(KW_ERR_USAGE,
			               "%s channel: '%s' must be a non-empty one-line string", kind,
			               key);
	}
	return KW_OK;
}

static kw_rc check_url(const char *url)
{
	char *scheme = NULL, *host = NULL, shown[300];
	CURLU *u = curl_url();
	int ok = u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	         curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	         curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	         (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok ? KW_OK
	          : KW_FAIL(KW_ERR_USAGE,
	                    "webhook channel: bad URL '%s': give an http:// or https:// URL",
	                    kwi_printable(url, shown, sizeof(shown)));
}

/* The configuration as stored: validated, defaults filled (new reference). */
static kw_rc normalise(const char *kind, const json_t *in, json_t **out)
{
	static const char *const cmd_keys[] = {"command", NULL};
	static const char *const hook_keys[] = {"url", "ca_bundle", NULL};
	json_t *cfg = in ? json_deep_copy(in) : json_object();
	kw_rc rc = KW_OK;
	char shown[300];
	*out = NULL;
	if (kind == NULL)
		kind = "";
	if (!json_is_object(cfg)) {
		json_decref(cfg);
		return KW_FAIL(KW_ERR_USAGE, "%s channel: the configuration must be an object",
		               kwi_printable(kind, shown, sizeof(shown)));
	}
	if (strcmp(kind, "sendmail") == 0) {
		if ((rc = check_keys(kind, cfg, cmd_keys)) == KW_OK &&
		    !json_object_get(cfg, "command"))
			json_object_set_new(cfg, "command", json_string(DEFAULT_SENDMAIL));
	} else if (strcmp(kind, "command") == 0) {
		if ((rc = check_keys(kind, cfg, cmd_keys)) == KW_OK &&
		    !json_object_get(cfg, "command"))
			rc = KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_COMMAND,
			                  "command channel: a command is required");
	} else if (strcmp(kind, "webhook") == 0) {
		const char *ca = json_string_value(json_object_get(cfg, "ca_bundle"));
		struct stat st;
		rc = check_keys(kind, cfg, hook_keys);
		if (rc == KW_OK && !json_object_get(cfg, "url"))
			rc = KW_FAIL_HINT(KW_ERR_USAGE, KW_HINT_GIVE_URL,
			                  "webhook channel: a URL is required");
		if (rc == KW_OK)
			rc = check_url(json_string_value(json_object_get(cfg, "url")));
		if (rc == KW_OK && ca &&
		    (ca[0] != '/' || stat(ca, &st) != 0 || !S_ISREG(st.st_mode)))
			rc = KW_FAIL_HINT(
			    KW_ERR_USAGE, KW_HINT_CA_BUNDLE_ABSOLUTE,
			    "webhook channel: CA bundle '%s' must be the absolute path of a file",
			    kwi_printable(ca, shown, sizeof(shown)));
	} else
		rc = KW_FAIL(KW_ERR_USAGE,
		             "unknown channel kind '%s' (use sendmail, webhook or command)",
		             kwi_printable(kind, shown, sizeof(shown)));
	if (rc == KW_OK)
		*out = cfg;
	else
		json_decref(cfg);
	return rc;
}

static kw_rc insert(kw_store *s, const char *name, const char *kind, const json_t *cfg)
{
	sqlite3_stmt *st = NULL;
	time_t now;
	char *text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	kw_rc rc = text ? kwi_now(&now) : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK)
		rc = kwi_store_prepare(s,
		                       "INSERT INTO channels (name, kind, config, created_at)"
		                       " VALUES (?,?,?,?)",
		                       &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
		int r = sqlite3_step(st);
		if ((sqlite3_extended_errcode(s->db)) == SQLITE_CONSTRAINT_UNIQUE)
			rc = KW_FAIL(KW_ERR_EXISTS, "a channel named '%s' exists already", name);
		else if (r != SQLITE_DONE)
			rc = KWI_DB_FAIL(s, "adding a channel");
	}
	sqlite3_finalize(st);
	free(text);
	return rc;
}

kw_rc kw_channel_add(kw_store *s, const char *name, const char *kind, const json_t *config)
{
	json_t *cfg = NULL;
	kw_error_clear();
	KW_GUARD(check_name(name));
	KW_GUARD(normalise(kind, config, &cfg));
	kw_rc rc = kwi_store_begin(s);
	if (rc == KW_OK)
		rc = insert(s, name, kind, cfg);
	/* the configuration stays out of the log: a webhook URL may hold a token */
	if (rc == KW_OK)
		rc = kwi_event_append(s, "channel.added", NULL, 0,
		                      json_pack("{s:s,s:s}", "channel", name, "kind", kind));
	json_decref(cfg);
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

kw_rc kw_channel_remove(kw_store *s, const char *name)
{
	sqlite3_stmt *st = NULL;
	char shown[200];
	kw_error_clear();
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_prepare(s, "DELETE FROM channels WHERE name = ?", &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, name ? name : "", -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = KWI_DB_FAIL(s, "removing a channel");
		else if (sqlite3_changes(s->db) == 0)
			rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CHANNEL_LIST,
			                  "unknown channel '%s'",
			                  kwi_printable(name, shown, sizeof(shown)));
	}
	sqlite3_finalize(st);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "channel.removed", NULL, 0,
		                      json_pack("{s:s}", "channel", name));
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

kw_rc kw_channel_list(kw_store *s, json_t **out)
{
	sqlite3_stmt *st = NULL;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(kwi_store_prepare(
	    s, "SELECT name, kind, config, created_at FROM channels ORDER BY name", &st));
	json_t *arr = json_array();
	int r = SQLITE_DONE;
	while (arr && (r = sqlite3_step(st)) == SQLITE_ROW) {
		char at[32];
		kwi_time_format((time_t)sqlite3_column_int64(st, 3), at, sizeof(at));
		json_t *cfg = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
		json_array_append_new(arr, json_pack("{s:s,s:s,s:o,s:s}", "name",
		                                     sqlite3_column_text(st, 0), "kind",
		                                     sqlite3_column_text(st, 1), "config",
		                                     cfg ? cfg : json_object(), "created", at));
	}
	sqlite3_finalize(st);
	if (arr == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (r != SQLITE_DONE) {
		json_decref(arr);
		return KWI_DB_FAIL(s, "listing channels");
	}
	*out = arr;
	return KW_OK;
}
