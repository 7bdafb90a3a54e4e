/* see policy/model.h: a policy's inline deploy section moved into a deploy
 * target (schema 6 → 7) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/model.h"
#include "store/store_lifecycle.h"

/* The target's settings: as deploy-target add would store them, else (a
 * section no longer valid, edited behind keyward's back) as they were:
 * deploy checks paths, owner and mode again before it writes anything. */
static kw_rc target_config(const json_t *section, json_t **out)
{
	if (kwi_deploy_conf_check(section, out, NULL) == KW_OK)
		return KW_OK;
	if (kw_error_code() == KW_ERR_NOMEM)
		return KW_ERR_NOMEM;
	kw_error_clear();
	*out = json_deep_copy(section);
	return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

/* 1 when the section deploys something (a file or a hook). */
static int deploys(const json_t *section)
{
	kwi_deploy_conf c;
	int any = 0;
	if (kwi_deploy_conf_from_json(section, &c) != KW_OK) {
		kw_error_clear();
		return json_object_size(section) > 0; /* odd: keep it, as it was */
	}
	for (size_t i = 0; i < KWI_DEPLOY_FILES; i++)
		any |= c.file[i] != NULL;
	for (size_t i = 0; i < KWI_HOOKS; i++)
		any |= c.hook[i] != NULL;
	kwi_deploy_conf_clear(&c);
	return any;
}

static kw_rc add_target(kw_store *s, const char *name, const json_t *section, time_t now)
{
	json_t *cfg = NULL;
	int exists = 0;
	KW_GUARD(target_config(section, &cfg));
	kwi_deploy_target_row r = {.name = name, .kind = "files", .config = cfg, .created_at = now};
	kw_rc rc = kwi_store_deploy_target_add(s, &r, &exists);
	json_decref(cfg);
	if (rc == KW_OK && exists)
		rc = KW_FAIL(KW_ERR_STORE, "migrating deploy settings: a deploy target '%s' exists",
		             name);
	return rc;
}

static kw_rc migrate_one(kw_store *s, const kwi_legacy_policy_row *row, time_t now)
{
	json_t *doc = json_loads(row->policy, 0, NULL);
	json_t *section = json_object_get(doc, "deploy");
	char target[96], *text = NULL;
	kw_rc rc = KW_OK;
	if (!json_is_object(section) ||
	    (json_object_size(section) == 1 && json_object_get(section, "target")))
		goto out; /* nothing inline (or not a document keyward wrote: left alone) */
	if (deploys(section)) {
		snprintf(target, sizeof(target), "cert-%s", row->name);
		if ((rc = add_target(s, target, section, now)) != KW_OK)
			goto out;
		json_object_set_new(doc, "deploy", json_pack("{s:s}", "target", target));
	} else
		json_object_del(doc, "deploy");
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	rc = text ? kwi_store_legacy_policy_put(s, row->id, text)
	          : KW_FAIL(KW_ERR_NOMEM, "out of memory");
out:
	free(text);
	json_decref(doc);
	return rc;
}

kw_rc kwi_policy_deploy_migrate(kw_store *s)
{
	kwi_legacy_policy_row *rows = NULL;
	size_t n = 0;
	time_t now;
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_store_legacy_policy_list(s, &rows, &n));
	kw_rc rc = KW_OK;
	for (size_t i = 0; rc == KW_OK && i < n; i++)
		rc = migrate_one(s, &rows[i], now);
	kwi_legacy_policy_rows_free(rows, n);
	return rc;
}
