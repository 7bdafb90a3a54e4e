/* see keyward/agent.h: certificates' access lists (who may sign through the agent) */
#include <stdlib.h>

#include <keyward/agent.h>

#include "cert/issue.h"
#include "store/store_access.h"
#include "store/store_certs.h"

/* The live certificate called name: its id. */
static kw_rc live_cert(kw_store *s, const char *name, int64_t *id)
{
	kwi_cert_row row;
	if (name == NULL || name[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE, "no certificate name given");
	kw_rc rc = kwi_cert_live_get(s, name, 0, &row);
	*id = row.id;
	kwi_cert_row_clear(&row);
	return rc;
}

const char *kw_access_kind_name(kw_access_kind kind)
{
	return kind == KW_ACCESS_GROUP ? "group" : "user";
}

static json_t *entries_json(const kw_access_entry *e, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:I}", "kind",
		                                   kw_access_kind_name(e[i].kind), "id",
		                                   (json_int_t)e[i].id));
	return a;
}

kw_rc kw_cert_access_get(kw_store *s, const char *name, kw_access_entry **out, size_t *n)
{
	int64_t id = 0;
	*out = NULL;
	*n = 0;
	kw_error_clear();
	KW_GUARD(live_cert(s, name, &id));
	return kwi_store_access_list(s, id, out, n);
}

static kw_rc access_put_all(kw_store *s, int64_t id, const kw_access_entry *e, size_t n, int grant,
                            json_t *done)
{
	for (size_t i = 0; i < n; i++) {
		int changed = 0;
		KW_GUARD(kwi_store_access_put(s, id, &e[i], grant, &changed));
		json_t *one = changed ? entries_json(&e[i], 1) : NULL;
		if (one != NULL)
			json_array_extend(done, one);
		json_decref(one);
	}
	return KW_OK;
}

kw_rc kw_cert_access_change(kw_store *s, const char *name, const kw_access_entry *allow,
                            size_t n_allow, const kw_access_entry *deny, size_t n_deny)
{
	int64_t id = 0;
	kw_access_entry *now = NULL;
	size_t n_now = 0;
	kw_error_clear();
	KW_GUARD(live_cert(s, name, &id));
	json_t *granted = json_array(), *withdrawn = json_array();
	if (granted == NULL || withdrawn == NULL) {
		json_decref(granted);
		json_decref(withdrawn);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	kw_rc rc = kwi_store_begin(s);
	if (rc != KW_OK)
		goto out;
	rc = access_put_all(s, id, allow, n_allow, 1, granted);
	if (rc == KW_OK)
		rc = access_put_all(s, id, deny, n_deny, 0, withdrawn);
	if (rc == KW_OK)
		rc = kwi_store_access_list(s, id, &now, &n_now);
	if (rc == KW_OK && (json_array_size(granted) > 0 || json_array_size(withdrawn) > 0)) {
		json_t *d = json_pack("{s:O, s:O, s:o}", "granted", granted, "withdrawn", withdrawn,
		                      "access", entries_json(now, n_now));
		rc = d ? kwi_event_append(s, "cert.access_changed", name, 0, d)
		       : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	if (rc == KW_OK)
		rc = kwi_store_commit(s);
	else
		kwi_store_rollback(s);
out:
	free(now);
	json_decref(granted);
	json_decref(withdrawn);
	return rc;
}
