/* see keyward/lifecycle.h: notification channels (how contacts are told) */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lifecycle/lifecycle_internal.h"
#include "lifecycle/notify_internal.h"
#include "store/store_lifecycle.h"

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

static kw_rc insert(kw_store *s, const char *name, const char *kind, json_t *cfg)
{
	kwi_channel_row r = {.name = name, .kind = kind, .config = cfg};
	int exists = 0;
	KW_GUARD(kwi_now(&r.created_at));
	KW_GUARD(kwi_store_channel_add(s, &r, &exists));
	if (exists)
		return KW_FAIL(KW_ERR_EXISTS, "a channel named '%s' exists already", name);
	return KW_OK;
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
	char shown[200];
	int removed = 0;
	kw_error_clear();
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_channel_remove(s, name ? name : "", &removed);
	if (rc == KW_OK && !removed)
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CHANNEL_LIST, "unknown channel '%s'",
		                  kwi_printable(name, shown, sizeof(shown)));
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
	kwi_channel_row *rows = NULL;
	size_t n = 0;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(kwi_store_channel_list(s, &rows, &n));
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		char at[32];
		json_t *cfg = rows[i].config ? json_incref(rows[i].config) : json_object();
		kwi_time_format(rows[i].created_at, at, sizeof(at));
		json_array_append_new(arr,
		                      json_pack("{s:s,s:s,s:o,s:s}", "name", rows[i].name, "kind",
		                                rows[i].kind, "config", cfg, "created", at));
	}
	kwi_named_rows_free(rows, n);
	if (arr == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	*out = arr;
	return KW_OK;
}
