/* The policy model: read from the normalised document, written back as
 * exactly that document, and the renewal time it sets. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <keyward/lifecycle.h>

#include "policy/model.h"
#include "kwtest.h"

#define DAY 86400

/* The document as it is printed: keys in their order, no sorting. */
static char *text_of(const json_t *j)
{
	char *t = json_dumps(j, JSON_COMPACT);
	cr_assert_not_null(t);
	return t;
}

static json_t *normalised(const char *text)
{
	json_t *in = kwt_json(text), *out = NULL;
	cr_assert_eq(kw_policy_validate(in, &out), KW_OK, "%s: %s", text, kw_error_message());
	json_decref(in);
	return out;
}

static kwi_policy *from_json(const json_t *doc)
{
	kwi_policy *p = NULL;
	cr_assert_eq(kwi_policy_from_json(doc, &p), KW_OK, "%s", kw_error_message());
	cr_assert_not_null(p);
	return p;
}

/* from_json then to_json gives doc back, byte for byte. */
static void assert_round_trip(const json_t *doc, const kwi_policy *p)
{
	json_t *back = NULL;
	cr_assert_eq(kwi_policy_to_json(p, &back), KW_OK, "%s", kw_error_message());
	char *want = text_of(doc), *got = text_of(back);
	cr_assert_str_eq(got, want);
	free(want);
	free(got);
	json_decref(back);
}

static void assert_list(const kwi_strings *l, size_t n, const char *const *want)
{
	cr_assert_eq(l->n, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(l->v[i], want[i]);
}

Test(policy_model, the_default_policy_reads_and_writes_back_the_same)
{
	json_t *d = kw_policy_default();
	cr_assert_not_null(d);
	/* the validator's own document, in its order */
	char *text = text_of(d);
	cr_assert_str_eq(text, "{\"key\":{\"type\":\"ec-p256\",\"reuse_key\":false},\"x509\":"
	                       "{\"ekus\":[\"serverAuth\"],\"key_usage\":[\"digitalSignature\"],"
	                       "\"validity_days\":365},\"lifetime_actions\":[],\"issuer\":"
	                       "{\"name\":\"self\"},\"history_limit\":10}");
	free(text);
	kwi_policy *p = from_json(d);
	cr_assert_eq(p->key.type, KW_KEY_EC_P256);
	cr_assert_null(p->key.backend);
	cr_assert_not(p->key.reuse_key);
	cr_assert_null(p->x509.subject);
	cr_assert_not(p->x509.has_sans);
	assert_list(&p->x509.ekus, 1, (const char *[]){"serverAuth"});
	assert_list(&p->x509.key_usage, 1, (const char *[]){"digitalSignature"});
	cr_assert_eq(p->x509.validity_days, 365);
	cr_assert_not(p->x509.is_ca);
	cr_assert_eq(p->x509.pathlen, -1);
	cr_assert_eq(p->n_actions, 0);
	cr_assert_eq(p->issuer.kind, KW_ISSUER_SELF);
	cr_assert_str_eq(p->issuer.name, "self");
	cr_assert_null(p->issuer.named);
	cr_assert_null(p->issuer.http01.listen);
	cr_assert_null(p->issuer.http01.webroot);
	cr_assert_null(p->deploy.target);
	cr_assert_eq(p->history_limit, 10);
	assert_round_trip(d, p);
	/* the validator's struct is the same one */
	kwi_policy *checked = NULL;
	json_t *empty = json_object();
	cr_assert_eq(kwi_policy_check(empty, &checked), KW_OK, "%s", kw_error_message());
	assert_round_trip(d, checked);
	kwi_policy_free(checked);
	json_decref(empty);
	kwi_policy_free(p);
	json_decref(d);
}

/* Every field there is: a CA certificate (pathlen), its own SANs, an OID
 * EKU, RSA key usages, three lifetime actions, an ACME issuer with http-01,
 * a deploy target. */
#define EVERY_FIELD                                                                                \
	"{\"history_limit\": 3, \"deploy\": {\"target\": \"web01-files\"},"                        \
	" \"issuer\": {\"http01\": {\"listen\": \"127.0.0.1:5002\"}, \"name\": \"acme:le\"},"      \
	" \"lifetime_actions\": [{\"action\": \"notify\", \"trigger\": {\"days_before_expiry\":"   \
	" 30}}, {\"action\": \"auto_renew\", \"trigger\": {\"lifetime_percentage\": 75}},"         \
	" {\"trigger\": {\"days_before_expiry\": 7}, \"action\": \"notify\"}],"                    \
	" \"x509\": {\"ca\": {\"pathlen\": 2}, \"validity_days\": 400, \"key_usage\":"             \
	" [\"keyCertSign\", \"cRLSign\", \"digitalSignature\", \"keyEncipherment\"], \"ekus\":"    \
	" [\"1.3.6.1.5.5.7.3.2\", \"1.3.6.1.4.1.311.10.3.12\"], \"sans\": [\"DNS:ca.example\","    \
	" \"IP:192.0.2.1\"], \"subject\": \"CN=ca.example,O=Example\"},"                           \
	" \"key\": {\"reuse_key\": true, \"backend\": \"hsm\", \"type\": \"rsa-3072\"}}"

Test(policy_model, a_policy_with_every_field_reads_and_writes_back_the_same)
{
	json_t *doc = normalised(EVERY_FIELD);
	/* normalised: the validator's order (not the input's), OIDs named, mode with its 0 */
	char *text = text_of(doc);
	cr_assert_str_eq(
	    text,
	    "{\"key\":{\"type\":\"rsa-3072\",\"backend\":\"hsm\",\"reuse_key\":true},\"x509\":"
	    "{\"subject\":\"CN=ca.example,O=Example\",\"ca\":{\"pathlen\":2},\"sans\":"
	    "[\"DNS:ca.example\",\"IP:192.0.2.1\"],\"ekus\":[\"clientAuth\","
	    "\"1.3.6.1.4.1.311.10.3.12\"],\"key_usage\":[\"keyCertSign\",\"cRLSign\","
	    "\"digitalSignature\",\"keyEncipherment\"],\"validity_days\":400},"
	    "\"lifetime_actions\":[{\"trigger\":{\"days_before_expiry\":30},\"action\":\"notify\"},"
	    "{\"trigger\":{\"lifetime_percentage\":75},\"action\":\"auto_renew\"},{\"trigger\":"
	    "{\"days_before_expiry\":7},\"action\":\"notify\"}],\"issuer\":{\"http01\":{\"listen\":"
	    "\"127.0.0.1:5002\"},\"name\":\"acme:le\"},\"deploy\":{\"target\":\"web01-files\"},"
	    "\"history_limit\":3}");
	free(text);
	kwi_policy *p = from_json(doc);
	cr_assert_eq(p->key.type, KW_KEY_RSA_3072);
	cr_assert_str_eq(p->key.backend, "hsm");
	cr_assert(p->key.reuse_key);
	cr_assert_str_eq(p->x509.subject, "CN=ca.example,O=Example");
	cr_assert(p->x509.has_sans);
	assert_list(&p->x509.sans, 2, (const char *[]){"DNS:ca.example", "IP:192.0.2.1"});
	assert_list(&p->x509.ekus, 2, (const char *[]){"clientAuth", "1.3.6.1.4.1.311.10.3.12"});
	assert_list(
	    &p->x509.key_usage, 4,
	    (const char *[]){"keyCertSign", "cRLSign", "digitalSignature", "keyEncipherment"});
	cr_assert_eq(p->x509.validity_days, 400);
	cr_assert(p->x509.is_ca);
	cr_assert_eq(p->x509.pathlen, 2);
	cr_assert_eq(p->n_actions, 3);
	cr_assert_eq(p->actions[0].action, KWI_ACTION_NOTIFY);
	cr_assert_eq(p->actions[0].trigger.kind, KWI_TRIGGER_DAYS_BEFORE);
	cr_assert_eq(p->actions[0].trigger.value, 30);
	cr_assert_eq(p->actions[1].action, KWI_ACTION_RENEW);
	cr_assert_eq(p->actions[1].trigger.kind, KWI_TRIGGER_PERCENT);
	cr_assert_eq(p->actions[1].trigger.value, 75);
	cr_assert_eq(p->actions[2].trigger.value, 7);
	cr_assert_eq(p->issuer.kind, KW_ISSUER_ACME);
	cr_assert_str_eq(p->issuer.name, "acme:le");
	cr_assert_str_eq(p->issuer.named, "le");
	cr_assert_str_eq(p->issuer.http01.listen, "127.0.0.1:5002");
	cr_assert_null(p->issuer.http01.webroot);
	cr_assert_str_eq(p->deploy.target, "web01-files");
	cr_assert_eq(p->history_limit, 3);
	assert_round_trip(doc, p);
	kwi_policy_free(p);
	json_decref(doc);
}

/* Every deploy target setting (what a policy's deploy section held). */
#define EVERY_TARGET_FIELD                                                                         \
	"{\"hooks\": {\"post\": \"logger renewed\", \"pre\":"                                      \
	" \"true\", \"deploy\": \"systemctl reload nginx\"}, \"mode\": \"640\", \"group\":"        \
	" \"ssl-cert\", \"owner\": \"root\", \"key_ref\": \"/etc/ssl/web01.key\", \"fullchain\":"  \
	" \"/etc/ssl/full.pem\", \"chain\": \"/etc/ssl/chain.pem\", \"cert\": "                    \
	"\"/etc/ssl/web01.pem\"}"

Test(policy_model, a_deploy_target_with_every_field_reads_and_writes_back_the_same)
{
	json_t *in = kwt_json(EVERY_TARGET_FIELD), *doc = NULL;
	kwi_deploy_conf c = {0}, back = {0};
	cr_assert_eq(kwi_deploy_conf_check(in, &doc, &c), KW_OK, "%s", kw_error_message());
	char *text = text_of(doc);
	cr_assert_str_eq(text, "{\"cert\":\"/etc/ssl/web01.pem\",\"chain\":\"/etc/ssl/chain.pem\","
	                       "\"fullchain\":\"/etc/ssl/full.pem\",\"key_ref\":"
	                       "\"/etc/ssl/web01.key\",\"owner\":\"root\",\"group\":\"ssl-cert\","
	                       "\"mode\":\"0640\",\"hooks\":{\"pre\":\"true\",\"deploy\":"
	                       "\"systemctl reload nginx\",\"post\":\"logger renewed\"}}");
	free(text);
	cr_assert_eq(kwi_deploy_conf_from_json(doc, &back), KW_OK, "%s", kw_error_message());
	const kwi_deploy_conf *const both[] = {&c, &back};
	for (size_t i = 0; i < 2; i++) {
		const kwi_deploy_conf *p = both[i];
		cr_assert_str_eq(p->file[KWI_DEPLOY_CERT], "/etc/ssl/web01.pem");
		cr_assert_str_eq(p->file[KWI_DEPLOY_CHAIN], "/etc/ssl/chain.pem");
		cr_assert_str_eq(p->file[KWI_DEPLOY_FULLCHAIN], "/etc/ssl/full.pem");
		cr_assert_str_eq(p->file[KWI_DEPLOY_KEY_REF], "/etc/ssl/web01.key");
		cr_assert_str_eq(p->owner, "root");
		cr_assert_str_eq(p->group, "ssl-cert");
		cr_assert_str_eq(p->mode, "0640");
		cr_assert_str_eq(p->hook[KWI_HOOK_PRE], "true");
		cr_assert_str_eq(p->hook[KWI_HOOK_DEPLOY], "systemctl reload nginx");
		cr_assert_str_eq(p->hook[KWI_HOOK_POST], "logger renewed");
	}
	kwi_deploy_conf_clear(&c);
	kwi_deploy_conf_clear(&back);
	json_decref(doc);
	json_decref(in);
}

Test(policy_model, what_the_validator_leaves_out_stays_out)
{
	/* webroot, no SANs at all (no subject), a deploy target, a CA
	 * without pathlen (and with its defaults) */
	const char *const texts[] = {
	    "{\"issuer\": {\"name\": \"acme:le\", \"http01\": {\"webroot\": \"/srv/www\"}}}",
	    "{\"deploy\": {\"target\": \"web\"}, \"x509\": {\"ca\": {}}}",
	    "{\"deploy\": {}, \"x509\": {\"subject\": \"O=No Host\"}}",
	    "{\"x509\": {\"subject\": \"CN=web01\", \"sans\": []}}",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		json_t *doc = normalised(texts[i]);
		kwi_policy *p = from_json(doc);
		assert_round_trip(doc, p);
		kwi_policy_free(p);
		json_decref(doc);
	}
}

Test(policy_model, a_document_from_an_older_keyward_reads_with_the_absent_meanings)
{
	json_t *doc = kwt_json("{\"key\": {\"type\": \"ec-p384\"}}");
	kwi_policy *p = from_json(doc);
	cr_assert_eq(p->key.type, KW_KEY_EC_P384);
	cr_assert_eq(p->issuer.kind, KW_ISSUER_SELF, "no issuer: self");
	cr_assert_str_eq(p->issuer.name, "self");
	cr_assert_eq(p->history_limit, 0, "no history_limit: every version is kept");
	cr_assert_eq(p->x509.validity_days, 0);
	cr_assert_eq(p->n_actions, 0);
	kwi_policy_free(p);
	json_decref(doc);
	/* what the reader checks itself is kept as it is */
	doc = kwt_json("{\"key\": {\"type\": \"dsa-1024\"}, \"issuer\": {\"name\": \"venafi:x\"}}");
	p = from_json(doc);
	cr_assert_eq(p->key.type, 0);
	cr_assert_eq(p->issuer.kind, KW_ISSUER_INVALID);
	kwi_policy_free(p);
	json_decref(doc);
	/* a target's stored settings: what deploy checks itself is kept as it is */
	kwi_deploy_conf c;
	doc = kwt_json("{\"cert\": \"relative.pem\", \"mode\": \"0999\"}");
	cr_assert_eq(kwi_deploy_conf_from_json(doc, &c), KW_OK, "%s", kw_error_message());
	cr_assert_str_eq(c.file[KWI_DEPLOY_CERT], "relative.pem");
	cr_assert_str_eq(c.mode, "0999");
	kwi_deploy_conf_clear(&c);
	json_decref(doc);
}

/* from_json refuses doc with KW_ERR_STORE and a message that has needle. */
static void unreadable(const char *text, const char *needle)
{
	json_t *doc = kwt_json(text);
	kwi_policy *p = (kwi_policy *)1;
	kw_error_clear();
	cr_assert_eq(kwi_policy_from_json(doc, &p), KW_ERR_STORE, "%s", text);
	cr_assert_null(p);
	cr_assert(strstr(kw_error_message(), needle) != NULL, "%s: '%s' lacks '%s'", text,
	          kw_error_message(), needle);
	kw_error_clear();
	/* the store's reader records nothing: the caller says what it read */
	char *t = text_of(doc);
	cr_assert_null(kwi_policy_from_text(t));
	cr_assert_eq(kw_error_code(), KW_OK);
	free(t);
	json_decref(doc);
}

Test(policy_model, a_document_keyward_never_wrote_is_refused)
{
	unreadable("[]", "policy: must be an object, not an array");
	unreadable("{\"key\": {\"reuse_key\": \"yes\"}}",
	           "policy key.reuse_key: must be true or false, not a string");
	unreadable("{\"x509\": {\"sans\": [\"DNS:a\", 7]}}",
	           "policy x509.sans[1]: must be a string, not an integer");
	unreadable("{\"deploy\": {\"target\": 0}}", "policy deploy.target: must be a string");
	unreadable("{\"deploy\": []}", "policy deploy: must be an object, not an array");
	unreadable("{\"lifetime_actions\": [{\"action\": \"email\", \"trigger\":"
	           " {\"days_before_expiry\": 3}}]}",
	           "policy lifetime_actions[0].action: must be auto_renew or notify");
	unreadable("{\"lifetime_actions\": [{\"action\": \"notify\", \"trigger\": {}}]}",
	           "policy lifetime_actions[0].trigger: has neither");
	unreadable("{\"history_limit\": 1e3}", "policy history_limit: must be an integer");
	/* not JSON at all */
	cr_assert_null(kwi_policy_from_text("{"));
	cr_assert_null(kwi_policy_from_text(NULL));
	cr_assert_eq(kw_error_code(), KW_OK);
	/* an error the caller holds stays */
	kw_error_set(KW_ERR_IO, 0, __FILE__, __LINE__, "held");
	cr_assert_null(kwi_policy_from_text("{\"deploy\": 1}"));
	cr_assert_str_eq(kw_error_message(), "held");
	kw_error_clear();
}

/* ---- when to renew: the same times the JSON reading gave ---- */

/* renew_at of the model and of the public entry point (the document). */
static time_t renew_at(const char *text, time_t nb, time_t na)
{
	json_t *doc = normalised(text);
	kwi_policy *p = from_json(doc);
	time_t t = kwi_policy_renew_at(p, nb, na);
	cr_assert_eq(kw_policy_renew_at(doc, nb, na), t);
	kwi_policy_free(p);
	json_decref(doc);
	return t;
}

Test(policy_model, renews_at_a_lifetime_percentage)
{
	time_t nb = 1893456000, na = nb + 90 * DAY;
	cr_assert_eq(renew_at("{\"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\":"
	                      " 80}, \"action\": \"auto_renew\"}]}",
	                      nb, na),
	             nb + 72 * DAY);
	/* an odd lifetime: integer seconds, rounded down */
	kwi_trigger t = {KWI_TRIGGER_PERCENT, 33};
	cr_assert_eq(kwi_policy_trigger_at(&t, 10, 110), 43);
	t.value = 1;
	cr_assert_eq(kwi_policy_trigger_at(&t, 0, 199), 1);
}

Test(policy_model, renews_days_before_expiry)
{
	time_t nb = 1893456000, na = nb + 90 * DAY;
	const char *text = "{\"lifetime_actions\": [{\"trigger\": {\"days_before_expiry\": 30},"
	                   " \"action\": \"auto_renew\"}]}";
	cr_assert_eq(renew_at(text, nb, na), na - 30 * DAY);
	/* longer than this version's life: as soon as it exists */
	cr_assert_eq(renew_at(text, nb, nb + 10 * DAY), nb);
}

Test(policy_model, renews_at_two_thirds_without_an_auto_renew_action)
{
	time_t nb = 1893456000, na = nb + 300 * DAY;
	cr_assert_eq(renew_at("{}", nb, na), nb + 200 * DAY);
	cr_assert_eq(renew_at("{\"lifetime_actions\": [{\"trigger\": {\"days_before_expiry\":"
	                      " 200}, \"action\": \"notify\"}]}",
	                      nb, na),
	             nb + 200 * DAY, "a notice is not a renewal");
	cr_assert_eq(kwi_policy_renew_at(NULL, 0, 100), 66);
	cr_assert_eq(kwi_policy_trigger_at(NULL, 0, 100), 66);
}

Test(policy_model, the_earliest_auto_renew_wins)
{
	/* two auto_renew actions are not valid, but the store's reader takes them */
	time_t nb = 1893456000, na = nb + 100 * DAY;
	json_t *doc =
	    kwt_json("{\"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 90},"
	             " \"action\": \"auto_renew\"}, {\"trigger\": {\"days_before_expiry\": 50},"
	             " \"action\": \"auto_renew\"}]}");
	kwi_policy *p = from_json(doc);
	cr_assert_eq(kwi_policy_renew_at(p, nb, na), na - 50 * DAY);
	cr_assert_eq(kw_policy_renew_at(doc, nb, na), na - 50 * DAY);
	kwi_policy_free(p);
	json_decref(doc);
}

Test(policy_model, the_public_entry_point_reads_any_document_as_renewals_always_did)
{
	time_t nb = 1893456000, na = nb + 100 * DAY;
	const struct {
		const char *doc;
		time_t at;
	} cases[] = {
	    /* a document that does not validate (or read from the store) still renews */
	    {"{\"key\": 5, \"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 50},"
	     " \"action\": \"auto_renew\"}]}",
	     nb + 50 * DAY},
	    /* a trigger without either integer: the default */
	    {"{\"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": \"x\"},"
	     " \"action\": \"auto_renew\"}]}",
	     nb + 100 * DAY * 2 / 3},
	    /* the first integer of the two */
	    {"{\"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": \"x\","
	     " \"days_before_expiry\": 10}, \"action\": \"auto_renew\"}]}",
	     na - 10 * DAY},
	    /* only auto_renew renews */
	    {"{\"lifetime_actions\": [{\"trigger\": {\"lifetime_percentage\": 10},"
	     " \"action\": \"email\"}]}",
	     nb + 100 * DAY * 2 / 3},
	    {"{\"lifetime_actions\": 3}", nb + 100 * DAY * 2 / 3},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *doc = kwt_json(cases[i].doc);
		kw_error_clear();
		cr_assert_eq(kw_policy_renew_at(doc, nb, na), cases[i].at, "%s", cases[i].doc);
		cr_assert_eq(kw_error_code(), KW_OK, "the entry point keeps no error state");
		json_decref(doc);
	}
	cr_assert_eq(kw_policy_renew_at(NULL, nb, na), nb + 100 * DAY * 2 / 3);
}
