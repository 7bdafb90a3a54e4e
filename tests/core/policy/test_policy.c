/* The certificate policy: validation and defaults, the create request, the
 * renewal time, the policy in the store, and Azure Key Vault policies. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <keyward/lifecycle.h>

#include "internal.h"
#include "policy/model.h"
#include "store/sql.h"
#include "kwtest.h"

#define DAY 86400

static char *dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

static void assert_json_eq(const json_t *got, const json_t *want, const char *what)
{
	char *g = dump(got), *w = dump(want);
	cr_assert(json_equal(got, want), "%s:\n got  %s\n want %s", what, g, w);
	free(g);
	free(w);
}

static json_t *valid(const char *text)
{
	json_t *in = kwt_json(text), *out = NULL;
	kw_rc rc = kw_policy_validate(in, &out);
	cr_assert_eq(rc, KW_OK, "refused %s: %s", text, kw_error_message());
	cr_assert(out != NULL);
	json_decref(in);
	return out;
}

/* The model of a normalised document (as the store reads it); free it. */
static kwi_policy *model(const json_t *doc)
{
	kwi_policy *p = NULL;
	cr_assert_eq(kwi_policy_from_json(doc, &p), KW_OK, "%s", kw_error_message());
	cr_assert_not_null(p);
	return p;
}

/* kwi_policy_require_complete on a normalised document. */
static kw_rc complete(const json_t *doc)
{
	kwi_policy *p = model(doc);
	kw_rc rc = kwi_policy_require_complete(p);
	kwi_policy_free(p);
	return rc;
}

/* kw_policy_parse refuses text with code, and the message has needle. */
static void refused(const char *text, kw_rc code, const char *needle)
{
	json_t *out = (json_t *)1;
	kw_rc rc = kw_policy_parse(text, &out);
	cr_assert_eq(rc, code, "%s: got %s (%s), want %s", text, kw_rc_name(rc), kw_error_message(),
	             kw_rc_name(code));
	cr_assert_null(out, "%s: refused but handed out a policy", text);
	cr_assert(strstr(kw_error_message(), needle) != NULL, "%s: message '%s' lacks '%s'", text,
	          kw_error_message(), needle);
}

/* A deploy target's settings (what policies held inline before deploy
 * targets) validated: the normalised document. */
static json_t *target_valid(const char *text)
{
	json_t *in = kwt_json(text), *out = NULL;
	kw_rc rc = kwi_deploy_conf_check(in, &out, NULL);
	cr_assert_eq(rc, KW_OK, "refused %s: %s", text, kw_error_message());
	cr_assert(out != NULL);
	json_decref(in);
	return out;
}

/* The target's settings refused with code, and the message has needle. */
static void target_refused(const char *text, kw_rc code, const char *needle)
{
	json_t *in = kwt_json(text), *out = (json_t *)1;
	kw_error_clear();
	kw_rc rc = kwi_deploy_conf_check(in, &out, NULL);
	cr_assert_eq(rc, code, "%s: got %s (%s), want %s", text, kw_rc_name(rc), kw_error_message(),
	             kw_rc_name(code));
	cr_assert_null(out, "%s: refused but handed out settings", text);
	cr_assert(strstr(kw_error_message(), needle) != NULL, "%s: message '%s' lacks '%s'", text,
	          kw_error_message(), needle);
	json_decref(in);
}

/* ---- defaults and normalisation ---- */

Test(policy, default_is_what_an_empty_policy_becomes)
{
	json_t *d = kw_policy_default();
	cr_assert_not_null(d);
	json_t *want = kwt_json("{\"key\": {\"type\": \"ec-p256\", \"reuse_key\": false},"
	                        " \"x509\": {\"ekus\": [\"serverAuth\"], \"key_usage\":"
	                        " [\"digitalSignature\"], \"validity_days\": 365},"
	                        " \"lifetime_actions\": [], \"issuer\": {\"name\": \"self\"},"
	                        " \"history_limit\": 10}");
	assert_json_eq(d, want, "default policy");
	json_t *again = NULL;
	cr_assert_eq(kw_policy_validate(d, &again), KW_OK, "%s", kw_error_message());
	assert_json_eq(again, d, "the default validates to itself");
	/* a default lacks what only the admin knows: issuing needs it */
	cr_assert_eq(complete(d), KW_ERR_USAGE);
	cr_assert(strstr(kw_error_message(), "x509.subject: required") != NULL, "%s",
	          kw_error_message());
	json_decref(again);
	json_decref(want);
	json_decref(d);
}

#define FULL                                                                                       \
	"{\"key\": {\"type\": \"rsa-3072\", \"backend\": \"tpm\", \"reuse_key\": true},"           \
	" \"x509\": {\"subject\": \"CN=web01.example.com,O=Example\", \"sans\":"                   \
	" [\"DNS:web01.example.com\", \"IP:192.0.2.1\"], \"ekus\": [\"serverAuth\","               \
	" \"clientAuth\", \"1.3.6.1.4.1.311.10.3.12\"], \"key_usage\": [\"digitalSignature\","     \
	" \"keyEncipherment\"], \"validity_days\": 90},"                                           \
	" \"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 80}, \"action\":"         \
	" \"auto_renew\"}, {\"trigger\": {\"days_before_expiry\": 10}, \"action\": \"notify\"}],"  \
	" \"issuer\": {\"name\": \"self\"},"                                                       \
	" \"deploy\": {\"target\": \"web01-files\"},"                                              \
	" \"history_limit\": 3}"

/* What a policy's deploy section held before deploy targets: now a target's settings. */
#define FULL_TARGET                                                                                \
	"{\"cert\": \"/etc/ssl/web01.pem\", \"chain\": \"/etc/ssl/chain.pem\","                    \
	" \"fullchain\": \"/etc/ssl/full.pem\", \"key_ref\": \"/etc/ssl/web01.key\", \"owner\":"   \
	" \"root\", \"group\": \"ssl-cert\", \"mode\": \"0640\", \"hooks\": {\"pre\": \"true\","   \
	" \"deploy\": \"systemctl reload nginx\", \"post\": \"logger renewed\"}}"

Test(policy, a_full_deploy_target_round_trips)
{
	json_t *in = kwt_json(FULL_TARGET), *p = target_valid(FULL_TARGET);
	assert_json_eq(p, in, "complete deploy target settings come back as they went in");
	json_decref(p);
	json_decref(in);
}

/* Issue 14, item 1: a policy (so the management API) names a target; files,
 * owner, group, mode and commands are the host's, never a policy's. */
Test(policy, refuses_inline_deploy_files_and_hooks_naming_the_fix)
{
	const char *const inline_deploy[] = {
	    "{\"deploy\": {\"hooks\": {\"pre\": \"id > /tmp/x\"}}}",
	    "{\"deploy\": {\"cert\": \"/etc/ssl/a.pem\"}}",
	    "{\"deploy\": {\"key_ref\": \"/root/.ssh/authorized_keys\"}}",
	    "{\"deploy\": {\"owner\": \"root\"}}",
	    "{\"deploy\": {\"mode\": \"0640\"}}",
	    "{\"deploy\": {\"target\": \"web\", \"hooks\": {\"post\": \"true\"}}}",
	};
	for (size_t i = 0; i < sizeof(inline_deploy) / sizeof(inline_deploy[0]); i++) {
		refused(inline_deploy[i], KW_ERR_USAGE, "deploy: a policy cannot set");
		refused(inline_deploy[i], KW_ERR_USAGE, "keyward deploy-target add");
		cr_assert_null(strchr(kw_error_message(), '\n'), "one line: %s",
		               kw_error_message());
	}
	refused("{\"deploy\": {\"target\": \"../x\"}}", KW_ERR_USAGE,
	        "deploy.target: bad deploy target name");
	refused("{\"deploy\": {\"target\": 1}}", KW_ERR_USAGE,
	        "deploy.target: must be a string, not an integer");
	refused("{\"deploy\": {\"colour\": 1}}", KW_ERR_USAGE, "deploy.colour: unknown field");
	json_t *p = valid("{\"deploy\": {\"target\": \"web\"}}");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "deploy"), "target")),
	                 "web");
	json_decref(p);
}

Test(policy, a_full_policy_round_trips)
{
	json_t *in = kwt_json(FULL), *p = valid(FULL), *back = NULL;
	assert_json_eq(p, in, "a complete, normal policy comes back as it went in");
	char *text = json_dumps(p, JSON_INDENT(2));
	cr_assert_eq(kw_policy_parse(text, &back), KW_OK, "%s", kw_error_message());
	assert_json_eq(back, p, "dumped and parsed again");
	cr_assert_eq(complete(p), KW_OK);
	free(text);
	json_decref(back);
	json_decref(p);
	json_decref(in);
}

Test(policy, normalises_what_it_accepts)
{
	json_t *p = valid("{\"key\": {\"type\": \"rsa-2048\"}, \"x509\": {\"subject\":"
	                  " \"CN=api.example.com\", \"ekus\": [\"1.3.6.1.5.5.7.3.1\","
	                  " \"1.3.6.1.5.5.7.3.9\"]}, \"deploy\": {}}");
	json_t *want =
	    kwt_json("{\"key\": {\"type\": \"rsa-2048\", \"reuse_key\": false},"
	             " \"x509\": {\"subject\": \"CN=api.example.com\", \"sans\":"
	             " [\"DNS:api.example.com\"], \"ekus\": [\"serverAuth\", \"OCSPSigning\"],"
	             " \"key_usage\": [\"digitalSignature\", \"keyEncipherment\"],"
	             " \"validity_days\": 365}, \"lifetime_actions\": [], \"issuer\":"
	             " {\"name\": \"self\"}, \"history_limit\": 10}");
	assert_json_eq(p, want, "OIDs named, RSA key usage, SAN from the CN");
	json_decref(p);
	json_decref(want);
	/* a deploy target's mode gets its 0, empty hooks disappear */
	p = target_valid("{\"cert\": \"/a.pem\", \"mode\": \"640\", \"hooks\": {}}");
	want = kwt_json("{\"cert\": \"/a.pem\", \"mode\": \"0640\"}");
	assert_json_eq(p, want, "mode with its 0");
	json_decref(p);
	json_decref(want);
	/* an IP address CN becomes an IP SAN; a CN that is no host name none */
	p = valid("{\"x509\": {\"subject\": \"CN=192.0.2.7\"}}");
	cr_assert_str_eq(json_string_value(json_array_get(
	                     json_object_get(json_object_get(p, "x509"), "sans"), 0)),
	                 "IP:192.0.2.7");
	json_decref(p);
	p = valid("{\"x509\": {\"subject\": \"CN=Example Root,O=Example\"}}");
	cr_assert_eq(json_array_size(json_object_get(json_object_get(p, "x509"), "sans")), 0);
	json_decref(p);
	/* explicit empty SANs stay empty; an empty deploy disappears */
	p = valid("{\"x509\": {\"subject\": \"CN=a.example\", \"sans\": []}, \"deploy\": {}}");
	cr_assert_eq(json_array_size(json_object_get(json_object_get(p, "x509"), "sans")), 0);
	cr_assert_null(json_object_get(p, "deploy"));
	json_decref(p);
}

/* key.revocable: kept when true; false is what its absence means, so a
 * policy without it (every policy written before it existed) is unchanged. */
Test(policy, revocable_is_kept_only_when_true)
{
	json_t *p = NULL;
	cr_assert_eq(kw_policy_parse("{\"key\": {\"revocable\": true}}", &p), KW_OK, "%s",
	             kw_error_message());
	cr_assert(json_is_true(json_object_get(json_object_get(p, "key"), "revocable")));
	json_decref(p);
	cr_assert_eq(kw_policy_parse("{\"key\": {\"revocable\": false}}", &p), KW_OK, "%s",
	             kw_error_message());
	cr_assert_null(json_object_get(json_object_get(p, "key"), "revocable"));
	json_decref(p);
}

/* ---- what validation refuses ---- */

#define ACTION(trigger, action)                                                                    \
	"{\"lifetime_actions\": [{\"trigger\": {" trigger "}, \"action\": \"" action "\"}]}"

Test(policy, refuses_unknown_fields_at_every_level)
{
	refused("{\"colour\": 1}", KW_ERR_USAGE, "colour: unknown field (known: key, x509,");
	refused("{\"key\": {\"colour\": 1}}", KW_ERR_USAGE,
	        "key.colour: unknown field (known: type, backend, reuse_key, revocable)");
	refused("{\"x509\": {\"colour\": 1}}", KW_ERR_USAGE, "x509.colour: unknown field");
	refused("{\"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 50},"
	        " \"action\": \"notify\", \"colour\": 1}]}",
	        KW_ERR_USAGE, "lifetime_actions[0].colour: unknown field");
	refused(ACTION("\"lifetime_percentage\": 50, \"colour\": 1", "notify"), KW_ERR_USAGE,
	        "lifetime_actions[0].trigger.colour: unknown field");
	refused("{\"issuer\": {\"name\": \"self\", \"colour\": 1}}", KW_ERR_USAGE,
	        "issuer.colour: unknown field");
	target_refused("{\"colour\": 1}", KW_ERR_USAGE, "colour: unknown field");
	target_refused("{\"hooks\": {\"reload\": \"x\"}}", KW_ERR_USAGE,
	               "hooks.reload: unknown field (known: pre, deploy, post)");
	/* Key Vault's spelling is not keyward's */
	refused("{\"keyProperties\": {}}", KW_ERR_USAGE, "keyProperties: unknown field");
}

Test(policy, refuses_lifetime_percentage_out_of_range)
{
	refused(ACTION("\"lifetime_percentage\": 100", "auto_renew"), KW_ERR_USAGE,
	        "lifetime_actions[0].trigger.lifetime_percentage: must be 1 to 99, not 100");
	refused(ACTION("\"lifetime_percentage\": 0", "auto_renew"), KW_ERR_USAGE,
	        "lifetime_actions[0].trigger.lifetime_percentage: must be 1 to 99, not 0");
	refused(ACTION("\"lifetime_percentage\": -20", "notify"), KW_ERR_USAGE,
	        "must be 1 to 99, not -20");
	json_decref(valid(ACTION("\"lifetime_percentage\": 1", "auto_renew")));
	json_decref(valid(ACTION("\"lifetime_percentage\": 99", "auto_renew")));
}

Test(policy, refuses_days_before_expiry_out_of_range)
{
	refused(ACTION("\"days_before_expiry\": -5", "notify"), KW_ERR_USAGE,
	        "lifetime_actions[0].trigger.days_before_expiry: must be 1 to 364, not -5");
	refused(ACTION("\"days_before_expiry\": 0", "notify"), KW_ERR_USAGE,
	        "days_before_expiry: must be 1 to 364, not 0");
	refused(ACTION("\"days_before_expiry\": 365", "auto_renew"), KW_ERR_USAGE,
	        "lifetime_actions[0].trigger.days_before_expiry: must be less than "
	        "x509.validity_days (365), not 365");
	refused("{\"x509\": {\"validity_days\": 30}, \"lifetime_actions\": [{\"trigger\":"
	        " {\"days_before_expiry\": 10}, \"action\": \"notify\"}, {\"trigger\":"
	        " {\"days_before_expiry\": 45}, \"action\": \"auto_renew\"}]}",
	        KW_ERR_USAGE,
	        "lifetime_actions[1].trigger.days_before_expiry: must be less than "
	        "x509.validity_days (30), not 45");
	json_decref(valid(ACTION("\"days_before_expiry\": 364", "auto_renew")));
}

Test(policy, refuses_triggers_and_actions_that_make_no_sense)
{
	refused(ACTION("\"lifetime_percentage\": 50, \"days_before_expiry\": 5", "notify"),
	        KW_ERR_USAGE,
	        "lifetime_actions[0].trigger: give exactly one of lifetime_percentage or "
	        "days_before_expiry");
	refused(ACTION("", "notify"), KW_ERR_USAGE, "lifetime_actions[0].trigger: give exactly");
	refused(ACTION("\"lifetime_percentage\": 50", "renew"), KW_ERR_USAGE,
	        "lifetime_actions[0].action: must be auto_renew or notify, not 'renew'");
	refused("{\"lifetime_actions\": [{\"action\": \"notify\"}]}", KW_ERR_USAGE,
	        "lifetime_actions[0].trigger: required");
	refused("{\"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 5}}]}",
	        KW_ERR_USAGE, "lifetime_actions[0].action: required");
	refused("{\"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 60}, \"action\":"
	        " \"auto_renew\"}, {\"trigger\": {\"days_before_expiry\": 30}, \"action\":"
	        " \"notify\"}, {\"trigger\": {\"lifetime_percentage\": 70}, \"action\":"
	        " \"auto_renew\"}]}",
	        KW_ERR_USAGE,
	        "lifetime_actions[2].action: only one auto_renew action is allowed "
	        "(lifetime_actions[0] is one)");
	/* several notices are fine */
	json_t *p = valid("{\"lifetime_actions\": [{\"trigger\": {\"days_before_expiry\": 30},"
	                  " \"action\": \"notify\"}, {\"trigger\": {\"days_before_expiry\": 7},"
	                  " \"action\": \"notify\"}]}");
	cr_assert_eq(json_array_size(json_object_get(p, "lifetime_actions")), 2);
	json_decref(p);
}

Test(policy, checks_issuer_names_and_http01)
{
	refused("{\"issuer\": {\"name\": \"acme:le\", \"http01\": {}}}", KW_ERR_USAGE,
	        "issuer.http01: needs listen or webroot");
	refused("{\"issuer\": {\"name\": \"acme:le\", \"http01\": {\"listen\": \"x\"}}}",
	        KW_ERR_USAGE, "issuer.http01: http-01 listen address 'x' is not ADDR:PORT");
	refused("{\"issuer\": {\"name\": \"acme:le\", \"http01\": {\"webroot\": \"www\"}}}",
	        KW_ERR_USAGE, "issuer.http01: http-01 webroot 'www' is not an absolute path");
	refused("{\"issuer\": {\"name\": \"acme:le\", \"http01\": {\"listen\": "
	        "\"127.0.0.1:80\", \"webroot\": \"/var/www\"}}}",
	        KW_ERR_USAGE, "issuer.http01: give an http-01 listen address or webroot, not both");
	refused("{\"issuer\": {\"name\": \"self\", \"http01\": {\"webroot\": \"/w\"}}}",
	        KW_ERR_USAGE, "issuer.http01: only an acme:NAME issuer answers http-01");
	refused("{\"issuer\": {\"name\": \"acme:le\", \"http01\": {\"port\": 80}}}", KW_ERR_USAGE,
	        "issuer.http01.port: unknown field");
	json_t *in = json_loads("{\"issuer\": {\"name\": \"acme:le\", \"http01\": "
	                        "{\"listen\": \"[::]:80\"}}}",
	                        0, NULL),
	       *p = NULL;
	cr_assert_eq(kw_policy_validate(in, &p), KW_OK, "%s", kw_error_message());
	cr_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_object_get(p, "issuer"), "http01"), "listen")),
	                 "[::]:80");
	json_decref(in);
	json_decref(p);
	refused("{\"issuer\": {\"name\": \"DigiCert\"}}", KW_ERR_USAGE,
	        "issuer.name: must be self, unknown, ca:NAME or acme:NAME, not 'DigiCert'");
	refused("{\"issuer\": {\"name\": \"ca:\"}}", KW_ERR_USAGE, "not 'ca:'");
	refused("{\"issuer\": {\"name\": \"Self\"}}", KW_ERR_USAGE, "not 'Self'");
	refused("{\"issuer\": {\"name\": \"Unknown\"}}", KW_ERR_USAGE, "not 'Unknown'");
}

Test(policy, accepts_the_unknown_issuer_an_external_ca_serves)
{
	json_t *p = valid("{\"issuer\": {\"name\": \"unknown\"}}");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "issuer"), "name")),
	                 "unknown");
	json_decref(p);
}

Test(policy, refuses_unknown_key_types)
{
	const char *const bad[] = {"ec-p521", "RSA-2048", "rsa-1024", "", "ed25519"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128], needle[128];
		snprintf(text, sizeof(text), "{\"key\": {\"type\": \"%s\"}}", bad[i]);
		snprintf(needle, sizeof(needle), "key.type: unknown key type '%s' (use ec-p256,",
		         bad[i]);
		refused(text, KW_ERR_USAGE, needle);
	}
	refused("{\"key\": {\"backend\": \"my token\"}}", KW_ERR_USAGE,
	        "key.backend: bad backend name 'my token'");
}

Test(policy, refuses_wrong_json_types)
{
	refused("[]", KW_ERR_USAGE, "policy: must be an object, not an array");
	refused("{\"key\": \"ec-p256\"}", KW_ERR_USAGE, "key: must be an object, not a string");
	refused("{\"key\": {\"reuse_key\": \"yes\"}}", KW_ERR_USAGE,
	        "key.reuse_key: must be true or false, not a string");
	refused("{\"key\": {\"revocable\": 1}}", KW_ERR_USAGE,
	        "key.revocable: must be true or false, not an integer");
	refused("{\"key\": {\"type\": null}}", KW_ERR_USAGE,
	        "key.type: must be a string, not null");
	refused("{\"x509\": {\"validity_days\": \"365\"}}", KW_ERR_USAGE,
	        "x509.validity_days: must be an integer, not a string");
	refused("{\"x509\": {\"validity_days\": 365.5}}", KW_ERR_USAGE,
	        "x509.validity_days: must be an integer, not a number with a fraction");
	refused("{\"x509\": {\"sans\": \"DNS:a.example\"}}", KW_ERR_USAGE,
	        "x509.sans: must be an array, not a string");
	refused("{\"x509\": {\"sans\": [\"DNS:a.example\", 7]}}", KW_ERR_USAGE,
	        "x509.sans[1]: must be a string, not an integer");
	refused("{\"x509\": {\"ekus\": {}}}", KW_ERR_USAGE, "x509.ekus: must be an array");
	refused("{\"lifetime_actions\": {}}", KW_ERR_USAGE,
	        "lifetime_actions: must be an array, not an object");
	refused("{\"lifetime_actions\": [\"auto_renew\"]}", KW_ERR_USAGE,
	        "lifetime_actions[0]: must be an object, not a string");
	refused(ACTION("\"lifetime_percentage\": \"80\"", "auto_renew"), KW_ERR_USAGE,
	        "lifetime_actions[0].trigger.lifetime_percentage: must be an integer, not a "
	        "string");
	refused("{\"lifetime_actions\": [{\"trigger\": 80, \"action\": \"notify\"}]}", KW_ERR_USAGE,
	        "lifetime_actions[0].trigger: must be an object, not an integer");
	refused("{\"issuer\": \"self\"}", KW_ERR_USAGE, "issuer: must be an object");
	target_refused("{\"mode\": 416}", KW_ERR_USAGE, "mode: must be a string, not an integer");
	target_refused("{\"owner\": 0}", KW_ERR_USAGE, "owner: must be a string, not an integer");
	target_refused("{\"hooks\": {\"post\": [\"a\"]}}", KW_ERR_USAGE,
	               "hooks.post: must be a string, not an array");
	refused("{\"history_limit\": null}", KW_ERR_USAGE,
	        "history_limit: must be an integer, not null");
	refused("{\"history_limit\": true}", KW_ERR_USAGE,
	        "history_limit: must be an integer, not a boolean");
}

Test(policy, refuses_bad_x509_values)
{
	refused("{\"key\": {\"type\": \"ec-p384\"}, \"x509\": {\"key_usage\":"
	        " [\"digitalSignature\", \"keyEncipherment\"]}}",
	        KW_ERR_USAGE, "x509.key_usage[1]: keyEncipherment needs an RSA key, not ec-p384");
	refused("{\"x509\": {\"key_usage\": [\"digitalsignature\"]}}", KW_ERR_USAGE,
	        "x509.key_usage[0]: unknown key usage 'digitalsignature'");
	refused("{\"x509\": {\"key_usage\": []}}", KW_ERR_USAGE,
	        "x509.key_usage: must list at least one");
	refused("{\"x509\": {\"key_usage\": [\"digitalSignature\", \"digitalSignature\"]}}",
	        KW_ERR_USAGE, "x509.key_usage[1]: 'digitalSignature' is listed twice");
	refused("{\"x509\": {\"ekus\": [\"serverauth\"]}}", KW_ERR_USAGE,
	        "x509.ekus[0]: unknown extended key usage 'serverauth'");
	refused("{\"x509\": {\"ekus\": [\"serverAuth\", \"1.3..6\"]}}", KW_ERR_USAGE,
	        "x509.ekus[1]: unknown extended key usage '1.3..6'");
	refused("{\"x509\": {\"ekus\": [\"9.1.2\"]}}", KW_ERR_USAGE,
	        "x509.ekus[0]: unknown extended key usage");
	refused("{\"x509\": {\"ekus\": [\"serverAuth\", \"1.3.6.1.5.5.7.3.1\"]}}", KW_ERR_USAGE,
	        "x509.ekus[1]: '1.3.6.1.5.5.7.3.1' is listed twice");
	refused("{\"x509\": {\"ekus\": []}}", KW_ERR_USAGE, "x509.ekus: must list at least one");
	refused("{\"x509\": {\"subject\": \"web01\"}}", KW_ERR_USAGE,
	        "x509.subject: malformed subject");
	refused("{\"x509\": {\"subject\": \"\"}}", KW_ERR_USAGE, "x509.subject: empty subject");
	refused("{\"x509\": {\"sans\": [\"DNS:ok.example\", \"DNS:-bad-\"]}}", KW_ERR_USAGE,
	        "x509.sans[1]: bad SAN 'DNS:-bad-'");
	refused("{\"x509\": {\"sans\": [\"email:a@b.example\"]}}", KW_ERR_USAGE,
	        "x509.sans[0]: bad SAN");
	refused("{\"x509\": {\"validity_days\": 0}}", KW_ERR_USAGE,
	        "x509.validity_days: must be 1 to 36500, not 0");
	refused("{\"x509\": {\"validity_days\": 36501}}", KW_ERR_USAGE,
	        "x509.validity_days: must be 1 to 36500, not 36501");
}

Test(policy, refuses_bad_deploy_targets)
{
	target_refused("{\"cert\": \"certs/web.pem\"}", KW_ERR_USAGE,
	               "cert: must be an absolute file path, not 'certs/web.pem'");
	target_refused("{\"key_ref\": \"/etc/ssl/\"}", KW_ERR_USAGE,
	               "key_ref: must be an absolute file path");
	target_refused("{\"fullchain\": \"\"}", KW_ERR_USAGE,
	               "fullchain: must be an absolute file path");
	target_refused("{\"cert\": \"/etc/a.pem\", \"fullchain\": \"/etc/a.pem\"}", KW_ERR_USAGE,
	               "fullchain: '/etc/a.pem' is also cert");
	target_refused("{\"mode\": \"0648\"}", KW_ERR_USAGE,
	               "mode: must be an octal mode such as \"0640\", not \"0648\"");
	target_refused("{\"mode\": \"rw-r-----\"}", KW_ERR_USAGE, "mode: must be");
	target_refused("{\"mode\": \"10640\"}", KW_ERR_USAGE, "mode: must be");
	target_refused("{\"mode\": \"0666\"}", KW_ERR_USAGE, "mode: \"0666\" lets anyone rewrite");
	target_refused("{\"owner\": \"web admin\"}", KW_ERR_USAGE,
	               "owner: must be a user name or number, not 'web admin'");
	target_refused("{\"group\": \"-x\"}", KW_ERR_USAGE,
	               "group: must be a group name or number");
	target_refused("{\"hooks\": {\"deploy\": \"\"}}", KW_ERR_USAGE,
	               "hooks.deploy: must be a shell command");
	/* at least one file or hook: settings alone deploy nothing */
	target_refused("{\"mode\": \"0640\"}", KW_ERR_USAGE, "needs a file");
	json_t *p = target_valid("{\"cert\": \"/a.pem\", \"owner\": \"33\", \"group\":"
	                         " \"www-data\", \"mode\": \"0444\"}");
	cr_assert_str_eq(json_string_value(json_object_get(p, "mode")), "0444");
	json_decref(p);
}

Test(policy, refuses_history_limit_out_of_range)
{
	refused("{\"history_limit\": 0}", KW_ERR_USAGE, "history_limit: must be 1 to 1000, not 0");
	refused("{\"history_limit\": 1001}", KW_ERR_USAGE,
	        "history_limit: must be 1 to 1000, not 1001");
}

Test(policy, malformed_json_is_a_parse_error_with_its_place)
{
	refused("{\n  \"key\": {\"type\": \"ec-p256\",}\n}", KW_ERR_PARSE,
	        "policy is not valid JSON: line 2, column");
	refused("", KW_ERR_PARSE, "policy is not valid JSON: line 1");
	refused("{\"history_limit\": 3, \"history_limit\": 4}", KW_ERR_PARSE,
	        "duplicate object key");
	json_t *out = (json_t *)1;
	cr_assert_eq(kw_policy_parse(NULL, &out), KW_ERR_USAGE);
	cr_assert_null(out);
}

/* ---- the create request ---- */

/* kwi_policy_merge, its policy as the normalised document. */
static kw_rc merge(const char *base, const kw_cert_request *req, json_t **out)
{
	json_t *b = base ? kwt_json(base) : NULL;
	kwi_policy *p = (kwi_policy *)1;
	kw_error_clear();
	*out = NULL;
	kw_rc rc = kwi_policy_merge(b, req, &p);
	if (rc == KW_OK)
		cr_assert_eq(kwi_policy_to_json(p, out), KW_OK);
	else
		cr_assert_null(p, "refused but handed out a policy");
	kwi_policy_free(p);
	json_decref(b);
	return rc;
}

Test(policy, flags_alone_make_the_policy_they_always_made)
{
	kw_cert_request req = {.name = "web01",
	                       .backend = "hsm",
	                       .subject = "CN=web01.example",
	                       .key_type = "rsa-2048",
	                       .days = 30};
	json_t *p = NULL;
	cr_assert_eq(merge(NULL, &req, &p), KW_OK, "%s", kw_error_message());
	json_t *want =
	    kwt_json("{\"key\": {\"type\": \"rsa-2048\", \"backend\": \"hsm\", \"reuse_key\":"
	             " false}, \"x509\": {\"subject\": \"CN=web01.example\", \"sans\":"
	             " [\"DNS:web01.example\"], \"ekus\": [\"serverAuth\"], \"key_usage\":"
	             " [\"digitalSignature\", \"keyEncipherment\"], \"validity_days\": 30},"
	             " \"lifetime_actions\": [], \"issuer\": {\"name\": \"self\"},"
	             " \"history_limit\": 10}");
	assert_json_eq(p, want, "flags-only policy");
	json_decref(p);
	json_decref(want);
	/* kwi_policy_from_request is the same thing without a base */
	kwi_policy *m = NULL;
	cr_assert_eq(kwi_policy_from_request(&req, &m), KW_OK);
	cr_assert_eq(m->x509.validity_days, 30);
	kwi_policy_free(m);
}

Test(policy, flags_keep_their_own_words)
{
	json_t *p = NULL;
	kw_cert_request req = {.name = "n", .backend = "hsm", .subject = "CN=n", .key_type = "x"};
	cr_assert_eq(merge(NULL, &req, &p), KW_ERR_USAGE);
	cr_assert_str_eq(kw_error_message(), "unknown key type 'x' (use ec-p256, ec-p384, "
	                                     "rsa-2048, rsa-3072 or rsa-4096)");
	req.key_type = NULL;
	req.issuer = "acme:";
	cr_assert_eq(merge(NULL, &req, &p), KW_ERR_USAGE);
	cr_assert(strstr(kw_error_message(), "not 'acme:'") != NULL, "%s", kw_error_message());
	req.issuer = NULL;
	const char *const sans[] = {"DNS:ok.example", "IP:999.1.1.1"};
	req.sans = sans;
	req.n_sans = 2;
	cr_assert_eq(merge(NULL, &req, &p), KW_ERR_PARSE);
	cr_assert(strstr(kw_error_message(), "bad SAN 'IP:999.1.1.1'") != NULL);
	req.n_sans = 0;
	req.days = 36501;
	cr_assert_eq(merge(NULL, &req, &p), KW_ERR_USAGE);
	cr_assert_null(p);
}

Test(policy, flags_override_the_policy)
{
	kw_cert_request req = {
	    .name = "web02", .backend = "tpm", .subject = "CN=web02.example", .days = 60};
	const char *const sans[] = {"DNS:web02.example", "DNS:alt.example"};
	json_t *p = NULL;
	cr_assert_eq(merge(FULL, &req, &p), KW_OK, "%s", kw_error_message());
	json_t *want = kwt_json(FULL);
	json_t *x509 = json_object_get(want, "x509");
	json_object_set_new(json_object_get(want, "key"), "backend", json_string("tpm"));
	json_object_set_new(x509, "subject", json_string("CN=web02.example"));
	json_object_set_new(x509, "validity_days", json_integer(60));
	assert_json_eq(p, want, "backend, subject and days replaced; SANs kept");
	json_decref(p);
	req.sans = sans;
	req.n_sans = 2;
	req.key_type = "rsa-4096";
	cr_assert_eq(merge(FULL, &req, &p), KW_OK, "%s", kw_error_message());
	json_object_set_new(x509, "sans",
	                    json_pack("[ss]", "DNS:web02.example", "DNS:alt.example"));
	json_object_set_new(json_object_get(want, "key"), "type", json_string("rsa-4096"));
	assert_json_eq(p, want, "--san replaces the list");
	json_decref(p);
	/* an override that breaks the policy is refused by the field it breaks */
	req.key_type = "ec-p256";
	cr_assert_eq(merge(FULL, &req, &p), KW_ERR_USAGE);
	cr_assert_str_eq(kw_error_message(),
	                 "x509.key_usage[1]: keyEncipherment needs an RSA key, not ec-p256");
	req.key_type = NULL;
	req.days = 10;
	cr_assert_eq(merge(FULL, &req, &p), KW_ERR_USAGE);
	cr_assert(strstr(kw_error_message(), "lifetime_actions[1].trigger.days_before_expiry") !=
	          NULL);
	json_decref(want);
}

Test(policy, a_policy_without_subject_needs_one_from_the_flags)
{
	kw_cert_request req = {.name = "n", .backend = "hsm"};
	json_t *p = NULL;
	cr_assert_eq(merge("{}", &req, &p), KW_ERR_USAGE);
	cr_assert(strstr(kw_error_message(), "x509.subject: required") != NULL, "%s",
	          kw_error_message());
	cr_assert_null(p);
	req.subject = "CN=n.example";
	cr_assert_eq(merge("{}", &req, &p), KW_OK, "%s", kw_error_message());
	cr_assert_str_eq(json_string_value(json_array_get(
	                     json_object_get(json_object_get(p, "x509"), "sans"), 0)),
	                 "DNS:n.example");
	json_decref(p);
	/* a bad policy stays bad whatever the flags say */
	cr_assert_eq(merge("{\"history_limit\": 0}", &req, &p), KW_ERR_USAGE);
	cr_assert(strstr(kw_error_message(), "history_limit") != NULL);
	cr_assert_eq(merge("{\"key\": 1}", &req, &p), KW_ERR_USAGE);
	cr_assert(strstr(kw_error_message(), "key: must be an object") != NULL);
}

Test(policy, the_template_carries_the_policy)
{
	json_t *p = valid(FULL);
	kwi_cert_template t;
	kwi_policy *m = model(p);
	cr_assert_eq(kwi_policy_template(m, 1000, &t), KW_OK, "%s", kw_error_message());
	kwi_policy_free(m);
	cr_assert_str_eq(t.ext_key_usage, "serverAuth,clientAuth,1.3.6.1.4.1.311.10.3.12");
	cr_assert_str_eq(t.key_usage, "critical,digitalSignature,keyEncipherment");
	cr_assert_eq(t.not_after - t.not_before, 90 * DAY);
	cr_assert_eq(sk_GENERAL_NAME_num(t.sans), 2);
	cr_assert(t.is_rsa);
	kwi_template_clear(&t);
	json_decref(p);
}

/* ---- when to renew ---- */

Test(policy, renews_at_two_thirds_without_an_auto_renew_action)
{
	time_t nb = 1893456000, na = nb + 300 * DAY;
	json_t *d = kw_policy_default();
	cr_assert_eq(kw_policy_renew_at(d, nb, na), nb + 200 * DAY);
	cr_assert_eq(kw_policy_renew_at(NULL, nb, na), nb + 200 * DAY);
	json_t *p = valid(ACTION("\"days_before_expiry\": 200", "notify"));
	cr_assert_eq(kw_policy_renew_at(p, nb, na), nb + 200 * DAY, "a notice is not a renewal");
	json_decref(p);
	json_decref(d);
}

Test(policy, renews_at_the_auto_renew_trigger)
{
	time_t nb = 1893456000, na = nb + 100 * DAY;
	json_t *p = valid(ACTION("\"lifetime_percentage\": 80", "auto_renew"));
	cr_assert_eq(kw_policy_renew_at(p, nb, na), nb + 80 * DAY);
	json_decref(p);
	p = valid(ACTION("\"days_before_expiry\": 30", "auto_renew"));
	cr_assert_eq(kw_policy_renew_at(p, nb, na), na - 30 * DAY);
	/* a trigger longer than this version's life: renew as soon as it exists */
	cr_assert_eq(kw_policy_renew_at(p, nb, nb + 10 * DAY), nb);
	json_decref(p);
	p = valid("{\"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 10},"
	          " \"action\": \"notify\"}, {\"trigger\": {\"days_before_expiry\": 7},"
	          " \"action\": \"auto_renew\"}]}");
	cr_assert_eq(kw_policy_renew_at(p, nb, na), na - 7 * DAY);
	json_decref(p);
	/* unvalidated documents: the earliest auto_renew wins */
	p = kwt_json(
	    "{\"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 90}, \"action\":"
	    " \"auto_renew\"}, {\"trigger\": {\"days_before_expiry\": 50}, \"action\":"
	    " \"auto_renew\"}]}");
	cr_assert_eq(kw_policy_renew_at(p, nb, na), na - 50 * DAY);
	json_decref(p);
	/* an odd lifetime: integer seconds, rounded down */
	cr_assert_eq(kwi_policy_trigger_at(NULL, 0, 100), 66);
	kwi_trigger t = {KWI_TRIGGER_PERCENT, 33};
	cr_assert_eq(kwi_policy_trigger_at(&t, 10, 110), 43);
}

/* ---- the policy in the store ---- */

static void sql(kw_store *s, const char *q)
{
	char *err = NULL;
	cr_assert_eq(sqlite3_exec(s->db, q, NULL, NULL, &err), SQLITE_OK, "%s: %s", q, err);
}

/* A store with backends tpm and hsm and certificates web01 (flags-made
 * policy, as earlier builds stored it) and gone (soft-deleted). */
static kw_store *store_with_cert(char **dir)
{
	char *base = kwt_tmpdir("policy");
	int created;
	kw_store *s = NULL;
	cr_assert(asprintf(dir, "%s/s", base) > 0);
	free(base);
	cr_assert_eq(kw_store_init(*dir, &created), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kw_store_open(*dir, &s), KW_OK, "%s", kw_error_message());
	sql(s, "INSERT INTO backends (name, kind, config, created_at) VALUES"
	       " ('tpm', 'tpm2', '{}', 1), ('hsm', 'pkcs11', '{}', 1)");
	sql(s, "INSERT INTO certs (name, policy, current_version, created_at, updated_at) VALUES"
	       " ('web01', '{\"issuer\":{\"name\":\"self\"},\"key\":{\"backend\":\"hsm\","
	       "\"reuse_key\":false,\"type\":\"ec-p256\"},\"lifetime_actions\":[],\"x509\":"
	       "{\"ekus\":[\"serverAuth\"],\"key_usage\":[\"digitalSignature\"],\"sans\":"
	       "[\"DNS:web01\"],\"subject\":\"CN=web01\",\"validity_days\":365}}', 1, 1, 1)");
	sql(s, "INSERT INTO certs (name, policy, current_version, created_at, updated_at,"
	       " deleted_at) VALUES ('gone', '{}', 1, 1, 1, 5)");
	return s;
}

/* Everything set could change, as text. */
static char *snapshot(kw_store *s)
{
	sqlite3_stmt *st = NULL;
	cr_assert_eq(sqlite3_prepare_v2(s->db,
	                                "SELECT group_concat(x, '|') FROM (SELECT name || policy ||"
	                                " updated_at AS x FROM certs UNION ALL SELECT hash FROM"
	                                " events UNION ALL SELECT key || value FROM settings)",
	                                -1, &st, NULL),
	             SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	char *text = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return text;
}

static int events_of(kw_store *s, const char *cert, json_t **last)
{
	json_t *list = NULL;
	cr_assert_eq(kw_events_list(s, cert, &list), KW_OK, "%s", kw_error_message());
	int n = (int)json_array_size(list);
	if (last)
		*last = n ? json_incref(json_array_get(list, (size_t)n - 1)) : NULL;
	json_decref(list);
	return n;
}

Test(policy, show_normalises_an_older_stored_policy)
{
	char *dir;
	kw_store *s = store_with_cert(&dir);
	json_t *p = NULL;
	cr_assert_eq(kw_policy_show(s, "web01", &p), KW_OK, "%s", kw_error_message());
	cr_assert_eq(json_integer_value(json_object_get(p, "history_limit")), 10);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "key"), "backend")),
	                 "hsm");
	json_decref(p);
	cr_assert_eq(kw_policy_show(s, "nope", &p), KW_ERR_NOT_FOUND);
	/* what failed, on what; what to do is the caller's hint (the API has no CLI) */
	cr_assert_str_eq(kw_error_message(), "unknown certificate 'nope'");
	cr_assert_eq(kw_error_hint(), KW_HINT_CERT_LIST);
	cr_assert_eq(kw_policy_show(s, "gone", &p), KW_ERR_NOT_FOUND, "soft-deleted is gone");
	sql(s, "UPDATE certs SET policy = '{\"x509\":{\"validity_days\":0}}' WHERE name = "
	       "'web01'");
	cr_assert_eq(kw_policy_show(s, "web01", &p), KW_ERR_STORE);
	cr_assert(strstr(kw_error_message(), "invalid policy in the store: x509.validity_days") !=
	          NULL);
	kw_store_close(s);
	free(dir);
}

/* The deploy target FULL names, defined on the host. */
static void add_full_target(kw_store *s)
{
	json_t *cfg =
	    kwt_json("{\"cert\": \"/etc/ssl/web01.pem\", \"hooks\": {\"deploy\": \"true\"}}");
	cr_assert_eq(kw_deploy_target_add(s, "web01-files", cfg), KW_OK, "%s", kw_error_message());
	json_decref(cfg);
}

Test(policy, set_stores_the_normalised_policy_and_records_an_event)
{
	char *dir;
	kw_store *s = store_with_cert(&dir);
	add_full_target(s);
	int before = events_of(s, NULL, NULL);
	json_t *in = kwt_json(FULL), *p = NULL, *ev = NULL;
	kw_store_set_actor(s, "test");
	cr_assert_eq(kw_policy_set(s, "web01", in), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kw_policy_show(s, "web01", &p), KW_OK);
	assert_json_eq(p, in, "stored policy");
	cr_assert_eq(events_of(s, NULL, NULL), before + 1);
	cr_assert_eq(events_of(s, "web01", &ev), 1);
	cr_assert_str_eq(json_string_value(json_object_get(ev, "type")), "policy.set");
	cr_assert_str_eq(json_string_value(json_object_get(ev, "actor")), "test");
	json_t *changed = json_object_get(json_object_get(ev, "details"), "changed");
	json_t *want =
	    json_pack("[sssss]", "key", "x509", "lifetime_actions", "deploy", "history_limit");
	assert_json_eq(changed, want, "changed sections");
	json_decref(want);
	json_decref(ev);
	/* the same policy again changes nothing, not even the log */
	char *snap = snapshot(s);
	cr_assert_eq(kw_policy_set(s, "web01", p), KW_OK, "%s", kw_error_message());
	char *after = snapshot(s);
	cr_assert_str_eq(after, snap);
	free(after);
	free(snap);
	/* the chain still verifies */
	json_t *report = NULL;
	cr_assert_eq(kw_audit_verify(s, &report), KW_OK);
	cr_assert(json_is_true(json_object_get(report, "ok")));
	json_decref(report);
	json_decref(p);
	json_decref(in);
	kw_store_close(s);
	free(dir);
}

static void set_refused(kw_store *s, const char *name, const char *text, kw_rc code,
                        const char *needle)
{
	char *snap = snapshot(s);
	json_t *p = kwt_json(text);
	kw_rc rc = kw_policy_set(s, name, p);
	cr_assert_eq(rc, code, "%s: got %s (%s)", text, kw_rc_name(rc), kw_error_message());
	cr_assert(strstr(kw_error_message(), needle) != NULL, "'%s' lacks '%s'", kw_error_message(),
	          needle);
	char *after = snapshot(s);
	cr_assert_str_eq(after, snap, "a refused policy changed the store");
	free(after);
	free(snap);
	json_decref(p);
}

Test(policy, set_refuses_bad_policies_and_changes_nothing)
{
	char *dir;
	kw_store *s = store_with_cert(&dir);
	set_refused(s, "web01", ACTION("\"lifetime_percentage\": 100", "auto_renew"), KW_ERR_USAGE,
	            "lifetime_actions[0].trigger.lifetime_percentage: must be 1 to");
	set_refused(s, "web01",
	            "{\"x509\": {\"subject\": \"CN=a\"}, \"key\": {\"backend\":"
	            " \"hsm\"}, \"issuer\": {\"name\": \"acme:corp-acme\"}}",
	            KW_ERR_NOT_FOUND, "no ACME issuer 'corp-acme'");
	set_refused(s, "web01", "{\"key\": {\"backend\": \"hsm\"}}", KW_ERR_USAGE,
	            "x509.subject: required");
	set_refused(s, "web01", "{\"x509\": {\"subject\": \"CN=a\"}}", KW_ERR_USAGE,
	            "key.backend: required");
	set_refused(s, "web01",
	            "{\"x509\": {\"subject\": \"CN=a\"}, \"key\": {\"backend\":"
	            " \"nope\"}}",
	            KW_ERR_NOT_FOUND, "key.backend: unknown backend 'nope'");
	/* a deploy target must exist on the host before a policy names it */
	set_refused(s, "web01", FULL, KW_ERR_NOT_FOUND,
	            "deploy.target: unknown deploy target 'web01-files'");
	set_refused(s, "web01",
	            "{\"x509\": {\"subject\": \"CN=a\"}, \"key\": {\"backend\": \"hsm\"},"
	            " \"deploy\": {\"hooks\": {\"pre\": \"id > /tmp/x\"}}}",
	            KW_ERR_USAGE, "deploy: a policy cannot set hooks");
	add_full_target(s);
	set_refused(s, "nope", FULL, KW_ERR_NOT_FOUND, "unknown certificate 'nope'");
	set_refused(s, "gone", FULL, KW_ERR_NOT_FOUND, "unknown certificate 'gone'");
	kw_store_close(s);
	free(dir);
}

/* ---- Azure Key Vault ---- */

static char *fixture(const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/tests/cli/data/%s", kwt_env("KW_TEST_SOURCE_DIR"), name);
	char *text = kwt_read_file(path, NULL);
	cr_assert_not_null(text, "fixture %s is missing", path);
	return text;
}

static void imported(const char *text, const char *want_policy, const char *const want_notes[])
{
	json_t *p = NULL, *notes = NULL;
	kw_rc rc = kw_policy_import_azure(text, &p, &notes);
	cr_assert_eq(rc, KW_OK, "import refused: %s", kw_error_message());
	json_t *want = kwt_json(want_policy);
	assert_json_eq(p, want, "imported policy");
	json_t *wn = json_array();
	for (size_t i = 0; want_notes[i]; i++)
		json_array_append_new(wn, json_string(want_notes[i]));
	assert_json_eq(notes, wn, "what was not mapped");
	json_decref(wn);
	json_decref(want);
	json_decref(p);
	json_decref(notes);
}

#define WEB01                                                                                      \
	"{\"key\": {\"type\": \"ec-p256\", \"reuse_key\": false}, \"x509\": {\"subject\":"         \
	" \"CN=web01.contoso.com, O=Contoso Ltd, C=US\", \"sans\": [\"DNS:web01.contoso.com\","    \
	" \"DNS:www.contoso.com\"], \"ekus\": [\"serverAuth\", \"clientAuth\"], \"key_usage\":"    \
	" [\"digitalSignature\"], \"validity_days\": 730}, \"lifetime_actions\": [{\"trigger\":"   \
	" {\"lifetime_percentage\": 80}, \"action\": \"auto_renew\"}, {\"trigger\":"               \
	" {\"days_before_expiry\": 30}, \"action\": \"notify\"}], \"issuer\": {\"name\":"          \
	" \"self\"}, \"history_limit\": 10}"

Test(azure, maps_az_camel_case_output)
{
	char *text = fixture("azure-policy-web01.json");
	const char *const notes[] = {
	    "x509CertificateProperties.subjectAlternativeNames.emails=[\"pki@contoso.com\"]: "
	    "keyward certificates name DNS names and IP addresses only",
	    "x509CertificateProperties.keyUsage=keyEncipherment: EC keys do no key encipherment "
	    "(left out)",
	    "secretProperties.contentType=application/x-pem-file: keyward keeps no secret: keys "
	    "stay in the device, certificates export as PEM",
	    NULL};
	imported(text, WEB01, notes);
	free(text);
}

Test(azure, maps_snake_case_the_same_way)
{
	char *text = fixture("azure-policy-web01-snake.json");
	const char *const notes[] = {
	    "x509_certificate_properties.subject_alternative_names.emails=[\"pki@contoso.com\"]: "
	    "keyward certificates name DNS names and IP addresses only",
	    "x509_certificate_properties.key_usage=keyEncipherment: EC keys do no key "
	    "encipherment (left out)",
	    "secret_properties.content_type=application/x-pem-file: keyward keeps no secret: keys "
	    "stay in the device, certificates export as PEM",
	    NULL};
	imported(text, WEB01, notes);
	free(text);
}

Test(azure, maps_the_az_default_policy)
{
	char *text = fixture("azure-default-policy.json");
	const char *const notes[] = {
	    "keyProperties.exportable=true: keyward keys never leave the device",
	    "secretProperties.contentType=application/x-pkcs12: keyward keeps no secret: keys "
	    "stay in the device, certificates export as PEM",
	    NULL};
	imported(text,
	         "{\"key\": {\"type\": \"rsa-2048\", \"reuse_key\": true}, \"x509\": {\"subject\":"
	         " \"CN=CLIGetDefaultPolicy\", \"sans\": [\"DNS:CLIGetDefaultPolicy\"], \"ekus\":"
	         " [\"serverAuth\"], \"key_usage\": [\"cRLSign\", \"dataEncipherment\","
	         " \"digitalSignature\", \"keyEncipherment\", \"keyAgreement\", \"keyCertSign\"],"
	         " \"validity_days\": 365}, \"lifetime_actions\": [{\"trigger\":"
	         " {\"days_before_expiry\": 90}, \"action\": \"auto_renew\"}], \"issuer\":"
	         " {\"name\": \"self\"}, \"history_limit\": 10}",
	         notes);
	free(text);
}

Test(azure, maps_the_rest_api_spelling)
{
	char *text = fixture("azure-policy-rest.json");
	const char *const notes[] = {
	    "key_props.exportable=true: keyward keys never leave the device",
	    "x509_props.sans.upns=[\"svc-api@contoso.com\"]: keyward certificates name DNS names "
	    "and IP addresses only",
	    "x509_props.key_usage=encipherOnly: a key usage keyward does not set",
	    "lifetime_actions: no AutoRenew action: keyward still renews at 2/3 of the lifetime",
	    "secret_props.contentType=application/x-pkcs12: keyward keeps no secret: keys stay in "
	    "the device, certificates export as PEM",
	    "attributes.enabled=false: use keyward cert set NAME --enabled false",
	    NULL};
	imported(text,
	         "{\"key\": {\"type\": \"rsa-3072\", \"reuse_key\": true}, \"x509\": {\"subject\":"
	         " \"CN=api.contoso.com\", \"sans\": [\"DNS:api.contoso.com\"], \"ekus\":"
	         " [\"serverAuth\", \"1.3.6.1.4.1.311.10.3.12\"], \"key_usage\":"
	         " [\"digitalSignature\", \"keyEncipherment\"], \"validity_days\": 183},"
	         " \"lifetime_actions\": [{\"trigger\": {\"days_before_expiry\": 21}, \"action\":"
	         " \"notify\"}], \"issuer\": {\"name\": \"unknown\"}, \"history_limit\": 10}",
	         notes);
	free(text);
}

Test(azure, says_what_keyward_lacks)
{
	const char *const notes[] = {
	    "colour=blue: not a Key Vault policy field keyward knows",
	    "keyProperties.curve=P-521: keyward has no P-521 keys (using ec-p384)",
	    "x509CertificateProperties.basicConstraints={\"ca\":true}: keyward issues end-entity "
	    "certificates from a policy",
	    "lifetimeActions[0].action.actionType=Renew: not an action keyward has (AutoRenew, "
	    "EmailContacts): left out",
	    "issuerParameters.name=DigiCert: a Key Vault certificate authority; keyward issues "
	    "with "
	    "self, unknown, ca:NAME or acme:NAME (using self)",
	    "issuerParameters.certificateType=OV-SSL: a Key Vault issuer setting keyward has no "
	    "use "
	    "for",
	    "issuerParameters.certificateTransparency=true: keyward does not log certificates for "
	    "transparency",
	    NULL};
	imported("{\"keyProperties\": {\"keyType\": \"EC\", \"curve\": \"P-521\"},"
	         " \"x509CertificateProperties\": {\"subject\": \"CN=x.example\","
	         " \"validityInMonths\": 1, \"basicConstraints\": {\"ca\": true}},"
	         " \"lifetimeActions\": [{\"trigger\": {\"lifetimePercentage\": 50}, \"action\":"
	         " {\"actionType\": \"Renew\"}}], \"issuerParameters\": {\"name\": \"DigiCert\","
	         " \"certificateType\": \"OV-SSL\", \"certificateTransparency\": true},"
	         " \"colour\": \"blue\"}",
	         "{\"key\": {\"type\": \"ec-p384\", \"reuse_key\": false}, \"x509\": {\"subject\":"
	         " \"CN=x.example\", \"sans\": [\"DNS:x.example\"], \"ekus\": [\"serverAuth\"],"
	         " \"key_usage\": [\"digitalSignature\"], \"validity_days\": 30},"
	         " \"lifetime_actions\": [], \"issuer\": {\"name\": \"self\"},"
	         " \"history_limit\": 10}",
	         notes);
	const char *const rsa_notes[] = {
	    "keyProperties.keySize=1024: keyward has RSA keys of 2048, 3072 and 4096 bits (using "
	    "2048)",
	    NULL};
	imported("{\"keyProperties\": {\"keyType\": \"RSA-HSM\", \"keySize\": 1024}}",
	         "{\"key\": {\"type\": \"rsa-2048\", \"reuse_key\": false}, \"x509\": {\"ekus\":"
	         " [\"serverAuth\"], \"key_usage\": [\"digitalSignature\", \"keyEncipherment\"],"
	         " \"validity_days\": 365}, \"lifetime_actions\": [], \"issuer\": {\"name\":"
	         " \"self\"}, \"history_limit\": 10}",
	         rsa_notes);
}

Test(azure, takes_the_policy_out_of_a_whole_certificate)
{
	const char *const none[] = {NULL};
	imported("{\"id\": \"https://kv.vault.azure.net/certificates/a/1\", \"cer\": \"MIIB\","
	         " \"policy\": {\"keyProperties\": {\"keyType\": \"EC\", \"curve\": \"P-384\","
	         " \"exportable\": false}, \"issuerParameters\": {\"name\": \"Self\"}}}",
	         "{\"key\": {\"type\": \"ec-p384\", \"reuse_key\": false}, \"x509\": {\"ekus\":"
	         " [\"serverAuth\"], \"key_usage\": [\"digitalSignature\"], \"validity_days\":"
	         " 365}, \"lifetime_actions\": [], \"issuer\": {\"name\": \"self\"},"
	         " \"history_limit\": 10}",
	         none);
}

static void import_refused(const char *text, kw_rc code, const char *needle)
{
	json_t *p = (json_t *)1, *notes = (json_t *)1;
	kw_rc rc = kw_policy_import_azure(text, &p, &notes);
	cr_assert_eq(rc, code, "%s: got %s (%s)", text, kw_rc_name(rc), kw_error_message());
	cr_assert_null(p);
	cr_assert_null(notes);
	cr_assert(strstr(kw_error_message(), needle) != NULL, "'%s' lacks '%s'", kw_error_message(),
	          needle);
}

Test(azure, refuses_what_makes_no_policy)
{
	import_refused("{\"keyProperties\": ", KW_ERR_PARSE,
	               "Key Vault policy is not valid JSON: line 1");
	import_refused("[1]", KW_ERR_USAGE, "not a Key Vault certificate policy");
	import_refused(FULL, KW_ERR_USAGE, "not a Key Vault certificate policy");
	/* Key Vault would refuse this one too: the notice comes before the start */
	import_refused("{\"x509CertificateProperties\": {\"validityInMonths\": 1},"
	               " \"lifetimeActions\": [{\"trigger\": {\"daysBeforeExpiry\": 90},"
	               " \"action\": {\"actionType\": \"AutoRenew\"}}]}",
	               KW_ERR_USAGE,
	               "the Key Vault policy makes no valid keyward policy: "
	               "lifetime_actions[0].trigger.days_before_expiry: must be less than "
	               "x509.validity_days (30), not 90");
	import_refused("{\"x509CertificateProperties\": {\"subject\": \"no dn\"}}", KW_ERR_USAGE,
	               "x509.subject: malformed subject");
}

/* A deploy target with a single file and no hooks is a whole deploy, not nothing. */
Test(policy, keeps_a_deploy_target_with_one_file_and_no_hooks)
{
	const char *one[] = {"cert", "chain", "fullchain", "key_ref"};
	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "{\"%s\": \"/srv/tls/x.pem\"}", one[i]);
		json_t *d = target_valid(text);
		cr_assert_str_eq(json_string_value(json_object_get(d, one[i])), "/srv/tls/x.pem");
		cr_assert_null(json_object_get(d, "hooks"));
		json_decref(d);
	}
	json_t *p = valid("{\"deploy\": {}}");
	cr_assert_null(json_object_get(p, "deploy"), "an empty deploy is left out");
	json_decref(p);
	p = target_valid("{\"cert\": \"/a.pem\", \"mode\": \"0640\", \"hooks\": {}}");
	cr_assert_str_eq(json_string_value(json_object_get(p, "mode")), "0640");
	cr_assert_null(json_object_get(p, "hooks"));
	json_decref(p);
}

Test(policy, ca_section_sets_ca_defaults)
{
	json_t *p = valid("{\"x509\": {\"ca\": {\"pathlen\": 1}}}");
	const json_t *x = json_object_get(p, "x509");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(x, "ca"), "pathlen")), 1);
	cr_assert_eq(json_integer_value(json_object_get(x, "validity_days")), 3650);
	cr_assert_eq(json_array_size(json_object_get(x, "ekus")), 0, "a CA has no EKU by default");
	const json_t *ku = json_object_get(x, "key_usage");
	cr_assert_eq(json_array_size(ku), 3);
	cr_assert_str_eq(json_string_value(json_array_get(ku, 0)), "keyCertSign");
	cr_assert_str_eq(json_string_value(json_array_get(ku, 1)), "cRLSign");
	json_decref(p);
	/* no pathlen: unlimited; the policy's own validity stands */
	p = valid("{\"x509\": {\"ca\": {}, \"validity_days\": 100}}");
	x = json_object_get(p, "x509");
	cr_assert_null(json_object_get(json_object_get(x, "ca"), "pathlen"));
	cr_assert_eq(json_integer_value(json_object_get(x, "validity_days")), 100);
	json_decref(p);
	p = valid("{\"issuer\": {\"name\": \"ca:corp-root\"}}");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "issuer"), "name")),
	                 "ca:corp-root");
	json_decref(p);
}

Test(policy, refuses_a_bad_ca_section)
{
	refused("{\"x509\": {\"ca\": true}}", KW_ERR_USAGE, "x509.ca: must be an object");
	refused("{\"x509\": {\"ca\": {\"pathlen\": -1}}}", KW_ERR_USAGE,
	        "x509.ca.pathlen: must be 0 to 16, not -1");
	refused("{\"x509\": {\"ca\": {\"pathlen\": 17}}}", KW_ERR_USAGE,
	        "x509.ca.pathlen: must be 0 to 16");
	refused("{\"x509\": {\"ca\": {\"path\": 1}}}", KW_ERR_USAGE,
	        "x509.ca.path: unknown field (known: pathlen)");
}
