/* see lifecycle/lifecycle_internal.h: what follows every renewal (by hand,
 * by the engine, a merge that replaces a version): prune, deploy, notify */
#include <stdio.h>
#include <time.h>

#include "lifecycle/lifecycle_internal.h"
#include "store/store_renewal.h"

kw_rc kwi_after_renewal(kw_store *s, const char *cert, int version, json_t **report)
{
	json_t *r = json_object(), *dep = NULL;
	time_t now;
	kw_rc rc = kwi_now(&now);
	if (rc == KW_OK)
		rc = kwi_store_renewal_succeeded(s, cert, now);
	if (rc != KW_OK)
		goto out;
	/* pruning destroys keys: a device that refuses is retried next time */
	if (kwi_versions_prune(s, cert) != KW_OK) {
		kwi_devices_reset(s);
		json_object_set_new(r, "prune_error", json_string(kw_error_message()));
		kw_error_clear();
		if ((rc = kwi_event_record(
		         s, "prune.failed", cert, version,
		         json_pack("{s:O}", "error", json_object_get(r, "prune_error")))) != KW_OK)
			goto out;
	}
	/* deploy records its own outcome as an event; its failure is returned
	 * once the contacts are told: the renewal stands */
	kw_rc deployed = kwi_deploy_after_change(s, cert, &dep);
	kw_hint hint = kw_error_hint();
	char deploy_error[1024] = "", hint_arg[256] = "";
	if (deployed != KW_OK) {
		snprintf(deploy_error, sizeof(deploy_error), "%s", kw_error_message());
		snprintf(hint_arg, sizeof(hint_arg), "%s", kw_error_hint_arg());
		json_object_set_new(r, "deploy_error", json_string(deploy_error));
		kw_error_clear();
	}
	if (dep)
		json_object_set_new(r, "deploy", dep);
	json_t *cur = NULL;
	if (kwi_cert_show(s, cert, version, &cur) != KW_OK)
		kw_error_clear();
	json_t *details = json_pack("{s:i,s:O?,s:O?}", "version", version, "thumbprint_sha256",
	                            json_object_get(cur, "thumbprint_sha256"), "not_after",
	                            json_object_get(cur, "not_after"));
	json_decref(cur);
	rc = kwi_notify(s, "renewed", cert, version, NULL, details);
	json_decref(details);
	if (rc == KW_OK && deployed != KW_OK)
		rc = KW_FAIL_HINT_ON(KW_ERR_DEPLOY, hint, hint_arg[0] ? hint_arg : NULL, "%s",
		                     deploy_error);
out:
	if (report)
		*report = r;
	else
		json_decref(r);
	return rc;
}
