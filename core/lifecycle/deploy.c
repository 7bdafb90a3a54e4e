/* see keyward/lifecycle.h (kw_cert_deploy) and lifecycle/lifecycle_internal.h (kwi_deploy)
 *
 * Order, certbot-style: the pre hook, then the files, then the deploy hook,
 * then the post hook. certbot runs its pre-hook before a renewal attempt,
 * its deploy-hook after each successful renewal and its post-hook at the
 * end; keyward deploys only after a renewal succeeded (or by hand), so the
 * three run back to back around the file writes:
 *   pre     e.g. stop a server that cannot reload; a failure stops here,
 *           nothing is written
 *   files   cert, chain, fullchain, key_ref: all staged first (temp file in
 *           the target's directory, written, owner/group/mode set, fsync'd),
 *           each file they replace kept as a hard link, then renamed into
 *           place; any failure leaves every file as it was (a rename that
 *           fails puts back the ones done before it)
 *   deploy  e.g. reload the server; runs only when the files are in place
 *   post    runs whenever pre succeeded (like a finally): restart what pre
 *           stopped, even if writing or the deploy hook failed
 * Hooks run outside any transaction and never change the store; the outcome
 * is recorded as a "deploy.done" or "deploy.failed" event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle/deploy.h"
#include "lifecycle/lifecycle_internal.h"
#include "lifecycle/notify_internal.h"
#include "common/process.h"
#include "store/store_lifecycle.h"

static const char *const target_env[] = {"KEYWARD_CERT_PATH", "KEYWARD_CHAIN_PATH",
                                         "KEYWARD_FULLCHAIN_PATH", "KEYWARD_KEY_REF_PATH"};

/* The current version and its policy (the deploy target it names). */
static kw_rc load_cert(kwi_deploy_job *d)
{
	kwi_deploy_cert_row row;
	int found = 0;
	char shown[200];
	KW_GUARD(kwi_store_deploy_cert_get(d->s, d->name, &row, &found));
	kw_rc rc = KW_OK;
	if (!found)
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'",
		                  kwi_printable(d->name, shown, sizeof(shown)));
	else if (!row.has_current)
		rc = KW_FAIL(KW_ERR_STATE, "certificate '%s' has no current version to deploy",
		             d->name);
	if (rc == KW_OK) {
		d->version = row.version;
		snprintf(d->sha256, sizeof(d->sha256), "%s", row.sha256 ? row.sha256 : "");
		if (row.policy == NULL)
			rc = KW_FAIL(KW_ERR_STORE, "certificate '%s' has an unreadable policy",
			             d->name);
		d->policy = row.policy; /* taken from the row */
		row.policy = NULL;
	}
	kwi_deploy_cert_row_clear(&row);
	return rc;
}

/* The deploy target the policy names, as the store keeps it now: a target
 * removed behind keyward's back (the store edited) fails the deploy. */
static kw_rc load_target(kwi_deploy_job *d)
{
	kwi_deploy_target_row row;
	int found = 0;
	const char *target = d->policy->deploy.target;
	snprintf(d->who, sizeof(d->who), "certificate '%s': deploy target '%s'", d->name, target);
	KW_GUARD(kwi_store_deploy_target_get(d->s, target, &row, &found));
	kw_rc rc = KW_OK;
	if (!found)
		rc = KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_DEPLOY_TARGET_LIST,
		                  "%s does not exist: define it again or set a policy naming "
		                  "another",
		                  d->who);
	else if (row.config == NULL)
		rc = KW_FAIL(KW_ERR_STORE, "%s: its settings do not read", d->who);
	else if ((rc = kwi_deploy_conf_from_json(row.config, &d->conf)) != KW_OK) {
		kw_error_clear();
		rc = KW_FAIL(KW_ERR_STORE, "%s: its settings do not read", d->who);
	}
	kwi_named_row_clear(&row);
	return rc;
}

/* The store's copy was checked when the target was added; what is checked
 * again here guards against one changed behind keyward's back. */
static kw_rc read_config(kwi_deploy_job *d)
{
	for (size_t i = 0; i < KWI_DEPLOY_TARGETS; i++) {
		const char *path = d->conf.file[i];
		if (path == NULL)
			continue;
		if (path[0] != '/')
			return KW_FAIL(KW_ERR_PARSE, "%s: %s: must be an absolute path", d->who,
			               kwi_deploy_file_names[i]);
		d->t[i].kind = kwi_deploy_file_names[i];
		d->t[i].path = path;
		d->n_targets++;
	}
	for (size_t i = 0; i < KWI_HOOKS; i++) {
		const char *cmd = d->conf.hook[i];
		d->hooks[i] = cmd && cmd[0] ? cmd : NULL;
		d->n_hooks += d->hooks[i] != NULL;
	}
	return kwi_deploy_ids(d->who, &d->conf, &d->uid, &d->gid, &d->mode);
}

static kw_rc build_env(kwi_deploy_job *d)
{
	char version[16];
	snprintf(version, sizeof(version), "%d", d->version);
	/* Built from nothing: only PATH is inherited, so no PIN, pin-source
	 * variable or other secret of ours reaches a hook. */
	kwi_env_add(&d->env, "KEYWARD_HOOK", "pre"); /* [0]: rewritten per hook */
	kwi_env_add(&d->env, "KEYWARD_NAME", d->name);
	kwi_env_add(&d->env, "KEYWARD_VERSION", version);
	kwi_env_add(&d->env, "KEYWARD_THUMBPRINT_SHA256", d->sha256);
	kwi_env_add(&d->env, "KEYWARD_STORE", d->s->dir);
	for (size_t i = 0; i < KWI_DEPLOY_TARGETS; i++)
		kwi_env_add(&d->env, target_env[i], d->t[i].path);
	kwi_env_add_path(&d->env);
	return d->env.failed ? KW_FAIL(KW_ERR_NOMEM, "out of memory") : KW_OK;
}

/* Runs hook i (0 pre, 1 deploy, 2 post) and adds it to the report. */
static kw_rc run_hook(kwi_deploy_job *d, int i)
{
	static const char *const names[] = {"pre", "deploy", "post"};
	kwi_process_result r;
	char status[96], *var = NULL;
	if (d->hooks[i] == NULL)
		return KW_OK;
	if (asprintf(&var, "KEYWARD_HOOK=%s", names[i]) < 0)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	free(d->env.vars[0]);
	d->env.vars[0] = var;
	kwi_process p = {.command = d->hooks[i],
	                 .env = d->env.vars,
	                 .timeout_ms = 1000 * kwi_setting_seconds(d->s, KWI_SETTING_HOOK_TIMEOUT,
	                                                          KWI_DEFAULT_HOOK_TIMEOUT)};
	kwi_devices_reset(d->s); /* the hook may use the same TPM */
	KW_GUARD(kwi_process_run(&p, &r));
	kwi_process_describe(&p, &r, status, sizeof(status));
	int ok = kwi_process_ok(&r);
	json_array_append_new(json_object_get(d->report, "hooks"),
	                      json_pack("{s:s,s:s,s:b,s:s,s:s}", "hook", names[i], "command",
	                                d->hooks[i], "ok", ok, "status", status, "stderr",
	                                r.err_tail));
	kw_rc rc = KW_OK;
	if (!ok) {
		/* the message stays one line: the last line of stderr only */
		char shown[240];
		const char *last = strrchr(r.err_tail, '\n');
		kwi_printable(last ? last + 1 : r.err_tail, shown, sizeof(shown));
		rc = KW_FAIL(KW_ERR_STATE, "%s: the %s hook failed (%s)%s%s", d->who, names[i],
		             status, shown[0] ? ": " : "", shown);
		d->failed_hook = names[i];
		snprintf(d->failed_status, sizeof(d->failed_status), "%s", status);
		d->failed_stderr = strdup(r.err_tail);
	}
	kwi_process_result_clear(&r);
	return rc;
}

static void record(kwi_deploy_job *d, kw_rc rc)
{
	json_t *det = json_pack("{s:O,s:O}", "files", json_object_get(d->report, "files"), "hooks",
	                        json_object_get(d->report, "hooks"));
	if (rc == KW_OK) {
		json_object_set_new(d->report, "ok", json_true());
		if (kwi_event_record(d->s, "deploy.done", d->name, d->version, det) != KW_OK)
			json_object_set_new(d->report, "event_error",
			                    json_string(kw_error_message()));
		return;
	}
	char *msg = strdup(kw_error_message());
	json_object_set_new(d->report, "ok", json_false());
	json_object_set_new(d->report, "error", json_string(msg ? msg : ""));
	json_object_set_new(det, "error", json_string(msg ? msg : ""));
	if (d->failed_hook) {
		json_object_set_new(det, "hook", json_string(d->failed_hook));
		json_object_set_new(det, "status", json_string(d->failed_status));
		json_object_set_new(det, "stderr",
		                    json_string(d->failed_stderr ? d->failed_stderr : ""));
	}
	/* the deploy's own error stays the one reported (it sticks) */
	if (kwi_event_record(d->s, "deploy.failed", d->name, d->version, det) != KW_OK)
		json_object_set_new(d->report, "event_error", json_string("not recorded"));
	free(msg);
}

/* pre, files, deploy, post (see the top of this file). */
static kw_rc run(kwi_deploy_job *d)
{
	kw_rc rc = build_env(d);
	if (rc == KW_OK)
		rc = kwi_deploy_files_prepare(d);
	if (rc != KW_OK)
		return rc;
	rc = run_hook(d, 0);
	if (rc != KW_OK)
		return rc;
	rc = kwi_deploy_files_write(d);
	if (rc == KW_OK)
		rc = run_hook(d, 1);
	kw_rc post = run_hook(d, 2);
	return rc != KW_OK ? rc : post;
}

static kw_rc report_new(kwi_deploy_job *d)
{
	d->report = json_pack("{s:s,s:i,s:s,s:[],s:[]}", "name", d->name, "version", d->version,
	                      "thumbprint_sha256", d->sha256, "files", "hooks");
	if (d->report && d->policy->deploy.target)
		json_object_set_new(d->report, "target", json_string(d->policy->deploy.target));
	return d->report ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kwi_deploy(kw_store *s, const char *cert, json_t **report)
{
	kwi_deploy_job d = {.s = s, .name = cert};
	kw_rc rc = KW_OK;
	*report = NULL;
	if (kwi_store_in_transaction(s))
		return KW_FAIL(KW_ERR_INTERNAL, "deploy of '%s' requested inside a transaction",
		               cert);
	if ((rc = load_cert(&d)) != KW_OK)
		goto out;
	if (d.policy->deploy.target == NULL) {
		*report = json_object(); /* nothing to deploy */
		goto out;
	}
	if ((rc = report_new(&d)) != KW_OK)
		goto out;
	/* from here on a failure is a deploy that failed: recorded as such */
	if ((rc = load_target(&d)) == KW_OK && (rc = read_config(&d)) == KW_OK)
		rc = run(&d);
	record(&d, rc);
	*report = json_incref(d.report);
out:
	kwi_deploy_job_clear(&d);
	if (*report == NULL && rc == KW_OK)
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	return rc;
}

/* see lifecycle/lifecycle_internal.h */
kw_rc kwi_deploy_after_change(kw_store *s, const char *cert, json_t **report)
{
	json_t *none = NULL;
	kw_rc rc = kwi_deploy(s, cert, report ? report : &none);
	json_decref(none);
	if (rc == KW_OK)
		return KW_OK;
	/* the deploy's words, as KW_ERR_DEPLOY: the change before it stands */
	char msg[1024], arg[256];
	kw_hint hint = kw_error_hint();
	snprintf(msg, sizeof(msg), "%s",
	         kw_error_message()[0] ? kw_error_message() : kw_rc_name(rc));
	snprintf(arg, sizeof(arg), "%s", kw_error_hint_arg());
	kw_error_clear();
	if (hint == KW_HINT_NONE)
		return KW_FAIL_HINT_ON(KW_ERR_DEPLOY, KW_HINT_CERT_DEPLOY, cert, "%s", msg);
	return KW_FAIL_HINT_ON(KW_ERR_DEPLOY, hint, arg[0] ? arg : NULL, "%s", msg);
}

kw_rc kw_cert_deploy(kw_store *s, const char *name, json_t **report)
{
	kw_error_clear();
	return kwi_deploy(s, name, report);
}
