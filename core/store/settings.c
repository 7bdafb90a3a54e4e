/* see keyward/lifecycle.h: store-wide settings (the settings table) */
#include <stdlib.h>
#include <string.h>

#include "store/sql.h"
#include "lifecycle/lifecycle_internal.h"
#include "lifecycle/notify_internal.h"

#define RETENTION_DEFAULT 90
#define RETENTION_MAX     36500

static const struct {
	const char *key;
	int def, min, max;
} settings[] = {
    {"retention_days", RETENTION_DEFAULT, 0, RETENTION_MAX},
    {KWI_SETTING_HOOK_TIMEOUT, KWI_DEFAULT_HOOK_TIMEOUT, 1, 86400},
    {KWI_SETTING_NOTIFY_TIMEOUT, KWI_DEFAULT_NOTIFY_TIMEOUT, 1, 86400},
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))
#define KNOWN      "retention_days, " KWI_SETTING_HOOK_TIMEOUT ", " KWI_SETTING_NOTIFY_TIMEOUT

/* The stored value, or the default when unset or out of range. */
static kw_rc setting_get(kw_store *s, size_t k, int *value)
{
	sqlite3_stmt *st = NULL;
	*value = settings[k].def;
	KW_GUARD(kwi_store_prepare(s, "SELECT value FROM settings WHERE key = ?", &st));
	sqlite3_bind_text(st, 1, settings[k].key, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		char *end = NULL;
		long v = text ? strtol(text, &end, 10) : 0;
		if (text && end != text && *end == '\0' && v >= settings[k].min &&
		    v <= settings[k].max)
			*value = (int)v;
	}
	sqlite3_finalize(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? KW_OK : KWI_DB_FAIL(s, "reading a setting");
}

/* see lifecycle/notify_internal.h: quiet, unlike setting_get: a setting
 * that cannot be read is the default (a deploy or a notice goes ahead). */
int kwi_setting_seconds(kw_store *s, const char *key, int def)
{
	sqlite3_stmt *st = NULL;
	int v = def;
	if (sqlite3_prepare_v2(s->db, "SELECT value FROM settings WHERE key = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return def;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		char *end = NULL;
		long n = text ? strtol(text, &end, 10) : 0;
		if (text && end != text && *end == '\0' && n >= 1 && n <= 86400)
			v = (int)n;
	}
	sqlite3_finalize(st);
	return v;
}

kw_rc kwi_retention_days(kw_store *s, int *days)
{
	return setting_get(s, 0, days);
}

kw_rc kw_settings_list(kw_store *s, json_t **out)
{
	kw_error_clear();
	*out = json_object();
	if (*out == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	for (size_t k = 0; k < N_SETTINGS; k++) {
		int v;
		kw_rc rc = setting_get(s, k, &v);
		if (rc != KW_OK) {
			json_decref(*out);
			*out = NULL;
			return rc;
		}
		json_object_set_new(*out, settings[k].key, json_integer(v));
	}
	return KW_OK;
}

static kw_rc setting_write(kw_store *s, size_t k, long value, int old)
{
	sqlite3_stmt *st = NULL;
	char text[24];
	snprintf(text, sizeof(text), "%ld", value);
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc =
	    kwi_store_prepare(s, "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", &st);
	if (rc == KW_OK) {
		sqlite3_bind_text(st, 1, settings[k].key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = KWI_DB_FAIL(s, "recording a setting");
		sqlite3_finalize(st);
	}
	if (rc == KW_OK)
		rc = kwi_event_append(s, "setting.changed", NULL, 0,
		                      json_pack("{s:s,s:I,s:i}", "key", settings[k].key, "value",
		                                (json_int_t)value, "previous", old));
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

kw_rc kw_setting_set(kw_store *s, const char *key, const char *value)
{
	char *end = NULL;
	size_t k = 0;
	int old;
	kw_error_clear();
	while (k < N_SETTINGS && (key == NULL || strcmp(key, settings[k].key) != 0))
		k++;
	if (k == N_SETTINGS)
		return KW_FAIL(KW_ERR_USAGE, "unknown setting '%s' (known: " KNOWN ")",
		               key ? key : "");
	long v = value ? strtol(value, &end, 10) : -1;
	if (value == NULL || end == value || *end != '\0' || v < settings[k].min ||
	    v > settings[k].max)
		return KW_FAIL(KW_ERR_USAGE, "%s must be a number from %d to %d, not '%s'", key,
		               settings[k].min, settings[k].max, value ? value : "");
	KW_GUARD(setting_get(s, k, &old));
	return setting_write(s, k, v, old);
}
