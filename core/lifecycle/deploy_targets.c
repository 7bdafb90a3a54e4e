/* see keyward/lifecycle.h: deploy targets, the files and commands a deploy
 * may write and run, defined on the host by name */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lifecycle/deploy.h"
#include "lifecycle/lifecycle_internal.h"
#include "lifecycle/notify_internal.h"
#include "policy/model.h"
#include "store/store_lifecycle.h"

/* Prefixes the recorded message with who ("deploy target 'web': ..."). */
static kw_rc prefixed(const char *who)
{
	char msg[768];
	kw_rc code = kw_error_code();
	if (code == KW_ERR_NOMEM)
		return code;
	snprintf(msg, sizeof(msg), "%s", kw_error_message());
	kw_error_clear();
	return KW_FAIL(code, "%s: %s", who, msg);
}

/* Checked as a policy's deploy section was, then against this host: the
 * owner and group must exist now (what cannot be deployed is refused). */
static kw_rc normalise(const char *name, const json_t *in, json_t **out)
{
	char who[160];
	kwi_deploy_conf c = {0};
	uid_t uid;
	gid_t gid;
	int mode;
	snprintf(who, sizeof(who), "deploy target '%s'", name);
	if (kwi_deploy_conf_check(in, out, &c) != KW_OK)
		return prefixed(who);
	kw_rc rc = kwi_deploy_ids(who, &c, &uid, &gid, &mode);
	kwi_deploy_conf_clear(&c);
	if (rc != KW_OK) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

kw_rc kw_deploy_target_add(kw_store *s, const char *name, const json_t *config)
{
	json_t *cfg = NULL;
	int exists = 0;
	kw_error_clear();
	KW_GUARD(kwi_deploy_target_name_check(name));
	KW_GUARD(normalise(name, config, &cfg));
	kwi_deploy_target_row r = {.name = name, .kind = "files", .config = cfg};
	kw_rc rc = kwi_now(&r.created_at);
	if (rc == KW_OK)
		rc = kwi_store_begin(s);
	if (rc != KW_OK) {
		json_decref(cfg);
		return rc;
	}
	rc = kwi_store_deploy_target_add(s, &r, &exists);
	if (rc == KW_OK && exists)
		rc = KW_FAIL(KW_ERR_EXISTS, "a deploy target named '%s' exists already", name);
	/* the commands and paths are what an audit wants to see */
	if (rc == KW_OK)
		rc = kwi_event_append(
		    s, "deploy_target.added", NULL, 0,
		    json_pack("{s:s,s:s,s:O}", "target", name, "kind", "files", "config", cfg));
	json_decref(cfg);
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

kw_rc kw_deploy_target_remove(kw_store *s, const char *name)
{
	char shown[200], *user = NULL;
	size_t users = 0;
	int removed = 0;
	kw_error_clear();
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_deploy_target_user(s, name ? name : "", &user, &users);
	if (rc == KW_OK && users)
		rc = KW_FAIL(KW_ERR_STATE,
		             "deploy target '%s' is named by the policy of certificate '%s'%s: set "
		             "a policy without it first",
		             kwi_printable(name, shown, sizeof(shown)), user,
		             users > 1 ? " and others" : "");
	if (rc == KW_OK)
		rc = kwi_store_deploy_target_remove(s, name ? name : "", &removed);
	if (rc == KW_OK && !removed)
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_DEPLOY_TARGET_LIST,
		                  "unknown deploy target '%s'",
		                  kwi_printable(name, shown, sizeof(shown)));
	if (rc == KW_OK)
		rc = kwi_event_append(s, "deploy_target.removed", NULL, 0,
		                      json_pack("{s:s}", "target", name));
	free(user);
	if (rc != KW_OK) {
		kwi_store_rollback(s);
		return rc;
	}
	return kwi_store_commit(s);
}

static json_t *row_json(const kwi_deploy_target_row *r)
{
	char at[32];
	json_t *cfg = r->config ? json_incref(r->config) : json_object();
	kwi_time_format(r->created_at, at, sizeof(at));
	return json_pack("{s:s,s:s,s:o,s:s}", "name", r->name, "kind", r->kind, "config", cfg,
	                 "created", at);
}

kw_rc kw_deploy_target_list(kw_store *s, json_t **out)
{
	kwi_deploy_target_row *rows = NULL;
	size_t n = 0;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(kwi_store_deploy_target_list(s, &rows, &n));
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, row_json(&rows[i])) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	kwi_named_rows_free(rows, n);
	if (arr == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	*out = arr;
	return KW_OK;
}

kw_rc kw_deploy_target_show(kw_store *s, const char *name, json_t **out)
{
	kwi_deploy_target_row row;
	char shown[200], *user = NULL;
	size_t users = 0;
	int found = 0;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(kwi_store_deploy_target_get(s, name ? name : "", &row, &found));
	if (!found)
		return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_DEPLOY_TARGET_LIST,
		                    "unknown deploy target '%s'",
		                    kwi_printable(name, shown, sizeof(shown)));
	kw_rc rc = kwi_store_deploy_target_user(s, name, &user, &users);
	json_t *o = rc == KW_OK ? row_json(&row) : NULL;
	if (rc == KW_OK && o == NULL)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc == KW_OK) {
		json_object_set_new(o, "used_by", json_integer((json_int_t)users));
		json_object_set_new(o, "first_user", user ? json_string(user) : json_null());
		*out = o;
	}
	free(user);
	kwi_named_row_clear(&row);
	return rc;
}

/* One destination of a target can be written on this host now: its
 * directory exists, and it is not a directory itself. */
static kw_rc destination_check(const char *who, const char *kind, const char *path)
{
	struct stat st;
	char *copy = strdup(path);
	if (copy == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	const char *dir = dirname(copy);
	kw_rc rc = KW_OK;
	int missing = stat(dir, &st) != 0, e = errno;
	if (missing && e == ENOENT)
		rc = KW_FAIL(KW_ERR_NOT_FOUND, "%s: %s: directory %s does not exist on this host",
		             who, kind, dir);
	else if (missing)
		rc = KW_FAIL(KW_ERR_IO, "%s: %s: directory %s: %s", who, kind, dir, strerror(e));
	else if (!S_ISDIR(st.st_mode))
		rc = KW_FAIL(KW_ERR_STATE, "%s: %s: %s is not a directory", who, kind, dir);
	else if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
		rc =
		    KW_FAIL(KW_ERR_STATE, "%s: %s: %s is a directory, not a file", who, kind, path);
	free(copy);
	return rc;
}

/* What the target's stored settings need from this host: the owner and group
 * resolve, every destination's directory exists, no destination is a
 * directory. */
static kw_rc deployable(const char *target, const json_t *config)
{
	char who[200];
	kwi_deploy_conf c = {0};
	uid_t uid;
	gid_t gid;
	int mode;
	snprintf(who, sizeof(who), "deploy.target: deploy target '%s'", target);
	if (config == NULL || kwi_deploy_conf_from_json(config, &c) != KW_OK) {
		kw_error_clear();
		return KW_FAIL(KW_ERR_STORE, "%s: its settings do not read", who);
	}
	kw_rc rc = kwi_deploy_ids(who, &c, &uid, &gid, &mode);
	for (size_t i = 0; i < KWI_DEPLOY_FILES && rc == KW_OK; i++)
		if (c.file[i])
			rc = destination_check(who, kwi_deploy_file_names[i], c.file[i]);
	kwi_deploy_conf_clear(&c);
	return rc;
}

/* see lifecycle/lifecycle_internal.h */
kw_rc kwi_deploy_target_policy_check(kw_store *s, const kwi_policy *p)
{
	kwi_deploy_target_row row;
	int found = 0;
	char shown[200];
	if (p->deploy.target == NULL)
		return KW_OK;
	KW_GUARD(kwi_store_deploy_target_get(s, p->deploy.target, &row, &found));
	kw_rc rc =
	    found ? deployable(kwi_printable(p->deploy.target, shown, sizeof(shown)), row.config)
	          : KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_DEPLOY_TARGET_LIST,
	                         "deploy.target: unknown deploy target '%s'",
	                         kwi_printable(p->deploy.target, shown, sizeof(shown)));
	kwi_named_row_clear(&row);
	return rc;
}
