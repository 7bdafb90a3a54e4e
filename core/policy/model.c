/* see policy/model.h: the policy model, read from and written as the
 * normalised document, and the renewal time it sets */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "policy/model.h"

const char *const kwi_deploy_file_names[KWI_DEPLOY_FILES] = {"cert", "chain", "fullchain",
                                                             "key_ref"};
const char *const kwi_hook_names[KWI_HOOKS] = {"pre", "deploy", "post"};

static const char *const action_names[] = {
    [KWI_ACTION_RENEW] = "auto_renew", [KWI_ACTION_NOTIFY] = "notify"};
static const char *const trigger_names[] = {[KWI_TRIGGER_PERCENT] = "lifetime_percentage",
                                            [KWI_TRIGGER_DAYS_BEFORE] = "days_before_expiry"};

const char *kwi_trigger_name(kwi_trigger_kind k)
{
	return k == KWI_TRIGGER_PERCENT || k == KWI_TRIGGER_DAYS_BEFORE ? trigger_names[k] : "";
}

/* ---- lists ---- */

kw_rc kwi_strings_add(kwi_strings *l, const char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (v == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	l->v = v;
	if ((v[l->n] = strdup(s)) == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	l->n++;
	return KW_OK;
}

int kwi_strings_has(const kwi_strings *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

static void strings_clear(kwi_strings *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

kw_rc kwi_policy_strdup(const char *s, char **out)
{
	free(*out);
	*out = s ? strdup(s) : NULL;
	return *out || !s ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

const char *kwi_json_kind(const json_t *v)
{
	switch (v ? (int)json_typeof(v) : -1) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "nothing";
}

/* ---- the model ---- */

kwi_policy *kwi_policy_new(void)
{
	kwi_policy *p = calloc(1, sizeof(*p));
	if (p == NULL || kwi_policy_strdup("self", &p->issuer.name) != KW_OK) {
		free(p);
		KW_FAIL(KW_ERR_NOMEM, "out of memory");
		return NULL;
	}
	p->issuer.kind = KW_ISSUER_SELF;
	p->x509.pathlen = -1;
	return p;
}

void kwi_policy_free(kwi_policy *p)
{
	if (p == NULL)
		return;
	free(p->key.backend);
	free(p->x509.subject);
	strings_clear(&p->x509.sans);
	strings_clear(&p->x509.ekus);
	strings_clear(&p->x509.key_usage);
	free(p->actions);
	free(p->issuer.name);
	free(p->issuer.http01.listen);
	free(p->issuer.http01.webroot);
	free(p->deploy.target);
	free(p);
}

void kwi_deploy_conf_clear(kwi_deploy_conf *c)
{
	for (size_t i = 0; i < KWI_DEPLOY_FILES; i++)
		free(c->file[i]);
	free(c->owner);
	free(c->group);
	free(c->mode);
	for (size_t i = 0; i < KWI_HOOKS; i++)
		free(c->hook[i]);
	memset(c, 0, sizeof(*c));
}

kw_rc kwi_policy_issuer_set(kwi_policy *p, const char *name)
{
	KW_GUARD(kwi_policy_strdup(name, &p->issuer.name));
	p->issuer.kind = kwi_issuer_parse(p->issuer.name, &p->issuer.named);
	return KW_OK;
}

/* ---- reading the store's document ---- */

/* JSON_TRUE stands for either boolean. */
static const char *type_name(int want)
{
	return want == JSON_OBJECT    ? "an object"
	       : want == JSON_ARRAY   ? "an array"
	       : want == JSON_STRING  ? "a string"
	       : want == JSON_INTEGER ? "an integer"
	                              : "true or false";
}

/* *v: member key of obj (at path base) of type want; NULL when absent or null. */
static kw_rc get(const json_t *obj, const char *base, const char *key, int want, const json_t **v)
{
	*v = json_object_get(obj, key);
	if (*v == NULL || json_is_null(*v)) {
		*v = NULL;
		return KW_OK;
	}
	int ok = want == JSON_TRUE ? json_is_boolean(*v) : (int)json_typeof(*v) == want;
	if (ok)
		return KW_OK;
	return KW_FAIL(KW_ERR_STORE, "policy %s%s%s: must be %s, not %s", base, base[0] ? "." : "",
	               key, type_name(want), kwi_json_kind(*v));
}

static kw_rc get_string(const json_t *obj, const char *base, const char *key, char **out)
{
	const json_t *v;
	KW_GUARD(get(obj, base, key, JSON_STRING, &v));
	return v ? kwi_policy_strdup(json_string_value(v), out) : KW_OK;
}

/* An integer member that fits an int; *out keeps its value when absent. */
static kw_rc get_int(const json_t *obj, const char *base, const char *key, int *out)
{
	const json_t *v;
	KW_GUARD(get(obj, base, key, JSON_INTEGER, &v));
	if (v == NULL)
		return KW_OK;
	json_int_t n = json_integer_value(v);
	if (n < INT_MIN || n > INT_MAX)
		return KW_FAIL(KW_ERR_STORE, "policy %s%s%s: %lld is out of range", base,
		               base[0] ? "." : "", key, (long long)n);
	*out = (int)n;
	return KW_OK;
}

static kw_rc get_strings(const json_t *obj, const char *key, kwi_strings *out, bool *present)
{
	const json_t *arr, *v;
	size_t i;
	KW_GUARD(get(obj, "x509", key, JSON_ARRAY, &arr));
	if (present)
		*present = arr != NULL;
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v))
			return KW_FAIL(KW_ERR_STORE,
			               "policy x509.%s[%zu]: must be a string, not %s", key, i,
			               kwi_json_kind(v));
		KW_GUARD(kwi_strings_add(out, json_string_value(v)));
	}
	return KW_OK;
}

static kw_rc read_key(const json_t *doc, kwi_policy *p)
{
	const json_t *key, *t, *r, *rv;
	KW_GUARD(get(doc, "", "key", JSON_OBJECT, &key));
	KW_GUARD(get(key, "key", "type", JSON_STRING, &t));
	KW_GUARD(get(key, "key", "reuse_key", JSON_TRUE, &r));
	KW_GUARD(get(key, "key", "revocable", JSON_TRUE, &rv));
	p->key.type = t ? kw_key_type_from_name(json_string_value(t)) : 0;
	p->key.reuse_key = json_is_true(r);
	p->key.revocable = json_is_true(rv);
	return get_string(key, "key", "backend", &p->key.backend);
}

static kw_rc read_x509(const json_t *doc, kwi_policy *p)
{
	const json_t *x509, *ca;
	KW_GUARD(get(doc, "", "x509", JSON_OBJECT, &x509));
	KW_GUARD(get_string(x509, "x509", "subject", &p->x509.subject));
	KW_GUARD(get_strings(x509, "sans", &p->x509.sans, &p->x509.has_sans));
	KW_GUARD(get_strings(x509, "ekus", &p->x509.ekus, NULL));
	KW_GUARD(get_strings(x509, "key_usage", &p->x509.key_usage, NULL));
	KW_GUARD(get_int(x509, "x509", "validity_days", &p->x509.validity_days));
	KW_GUARD(get(x509, "x509", "ca", JSON_OBJECT, &ca));
	p->x509.is_ca = ca != NULL;
	return get_int(ca, "x509.ca", "pathlen", &p->x509.pathlen);
}

static kw_rc read_action(const json_t *a, size_t i, kwi_lifetime_action *out)
{
	char base[48], tbase[64];
	const json_t *action, *trigger, *pct, *days;
	snprintf(base, sizeof(base), "lifetime_actions[%zu]", i);
	snprintf(tbase, sizeof(tbase), "%s.trigger", base);
	if (!json_is_object(a))
		return KW_FAIL(KW_ERR_STORE, "policy %s: must be an object, not %s", base,
		               kwi_json_kind(a));
	KW_GUARD(get(a, base, "action", JSON_STRING, &action));
	for (int k = KWI_ACTION_RENEW; action && k <= KWI_ACTION_NOTIFY; k++)
		if (strcmp(json_string_value(action), action_names[k]) == 0)
			out->action = (kwi_action)k;
	if (out->action == 0)
		return KW_FAIL(KW_ERR_STORE, "policy %s.action: must be auto_renew or notify",
		               base);
	KW_GUARD(get(a, base, "trigger", JSON_OBJECT, &trigger));
	KW_GUARD(get(trigger, tbase, trigger_names[KWI_TRIGGER_PERCENT], JSON_INTEGER, &pct));
	KW_GUARD(get(trigger, tbase, trigger_names[KWI_TRIGGER_DAYS_BEFORE], JSON_INTEGER, &days));
	if (pct == NULL && days == NULL)
		return KW_FAIL(KW_ERR_STORE,
		               "policy %s: has neither lifetime_percentage nor days_before_expiry",
		               tbase);
	/* the percentage when both are there, as renewals always read it */
	out->trigger.kind = pct ? KWI_TRIGGER_PERCENT : KWI_TRIGGER_DAYS_BEFORE;
	return get_int(trigger, tbase, trigger_names[out->trigger.kind], &out->trigger.value);
}

static kw_rc read_actions(const json_t *doc, kwi_policy *p)
{
	const json_t *list, *a;
	size_t i;
	KW_GUARD(get(doc, "", "lifetime_actions", JSON_ARRAY, &list));
	if (json_array_size(list) == 0)
		return KW_OK;
	p->actions = calloc(json_array_size(list), sizeof(*p->actions));
	if (p->actions == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	json_array_foreach(list, i, a)
	{
		KW_GUARD(read_action(a, i, &p->actions[i]));
		p->n_actions++;
	}
	return KW_OK;
}

static kw_rc read_issuer(const json_t *doc, kwi_policy *p)
{
	const json_t *issuer, *name, *http01;
	KW_GUARD(get(doc, "", "issuer", JSON_OBJECT, &issuer));
	KW_GUARD(get(issuer, "issuer", "name", JSON_STRING, &name));
	KW_GUARD(kwi_policy_issuer_set(p, name ? json_string_value(name) : "self"));
	KW_GUARD(get(issuer, "issuer", "http01", JSON_OBJECT, &http01));
	KW_GUARD(get_string(http01, "issuer.http01", "listen", &p->issuer.http01.listen));
	return get_string(http01, "issuer.http01", "webroot", &p->issuer.http01.webroot);
}

/* Only the target's name: a stored policy's inline files or hooks (none
 * since the store migrated them into deploy targets) are never read. */
static kw_rc read_deploy(const json_t *doc, kwi_policy *p)
{
	const json_t *deploy;
	KW_GUARD(get(doc, "", "deploy", JSON_OBJECT, &deploy));
	return get_string(deploy, "deploy", "target", &p->deploy.target);
}

static kw_rc read_deploy_conf(const json_t *doc, kwi_deploy_conf *c)
{
	const json_t *hooks;
	for (size_t i = 0; i < KWI_DEPLOY_FILES; i++)
		KW_GUARD(get_string(doc, "", kwi_deploy_file_names[i], &c->file[i]));
	KW_GUARD(get_string(doc, "", "owner", &c->owner));
	KW_GUARD(get_string(doc, "", "group", &c->group));
	KW_GUARD(get_string(doc, "", "mode", &c->mode));
	KW_GUARD(get(doc, "", "hooks", JSON_OBJECT, &hooks));
	for (size_t i = 0; i < KWI_HOOKS; i++)
		KW_GUARD(get_string(hooks, "hooks", kwi_hook_names[i], &c->hook[i]));
	return KW_OK;
}

kw_rc kwi_deploy_conf_from_json(const json_t *doc, kwi_deploy_conf *out)
{
	memset(out, 0, sizeof(*out));
	if (!json_is_object(doc))
		return KW_FAIL(KW_ERR_STORE, "deploy target: must be an object, not %s",
		               kwi_json_kind(doc));
	kw_rc rc = read_deploy_conf(doc, out);
	if (rc != KW_OK)
		kwi_deploy_conf_clear(out);
	return rc;
}

kw_rc kwi_policy_from_json(const json_t *doc, kwi_policy **out)
{
	*out = NULL;
	if (!json_is_object(doc))
		return KW_FAIL(KW_ERR_STORE, "policy: must be an object, not %s",
		               kwi_json_kind(doc));
	kwi_policy *p = kwi_policy_new();
	if (p == NULL)
		return KW_ERR_NOMEM;
	kw_rc rc = read_key(doc, p);
	if (rc == KW_OK)
		rc = read_x509(doc, p);
	if (rc == KW_OK)
		rc = read_actions(doc, p);
	if (rc == KW_OK)
		rc = read_issuer(doc, p);
	if (rc == KW_OK)
		rc = read_deploy(doc, p);
	if (rc == KW_OK)
		rc = get_int(doc, "", "history_limit", &p->history_limit);
	if (rc != KW_OK) {
		kwi_policy_free(p);
		return rc;
	}
	*out = p;
	return KW_OK;
}

kwi_policy *kwi_policy_from_text(const char *text)
{
	kwi_policy *p = NULL;
	json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
	int held = kw_error_code() != KW_OK;
	if (doc && kwi_policy_from_json(doc, &p) != KW_OK && !held)
		kw_error_clear(); /* an error the caller holds stays; ours is not one */
	json_decref(doc);
	return p;
}

/* ---- writing the normalised document ---- */

/* Builds one object; the first failure (out of memory) sticks in ok. */
typedef struct {
	int ok;
} writer;

/* v (stolen) as o's member key; NULL when it could not be (v is gone). */
static json_t *put(writer *w, json_t *o, const char *key, json_t *v)
{
	if (json_object_set_new(o, key, v) == 0)
		return v;
	w->ok = 0;
	return NULL;
}

static json_t *strings_json(writer *w, const kwi_strings *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		if (json_array_append_new(a, json_string(l->v[i])) != 0)
			w->ok = 0;
	return a;
}

/* The keys in the order the validator writes them (policy.c). */
static void key_json(writer *w, const kwi_policy *p, json_t *key)
{
	if (p->key.type)
		put(w, key, "type", json_string(kw_key_type_name(p->key.type)));
	if (p->key.backend)
		put(w, key, "backend", json_string(p->key.backend));
	if (p->key.revocable) /* absent means false: older policies stay as they were */
		put(w, key, "revocable", json_true());
	put(w, key, "reuse_key", json_boolean(p->key.reuse_key));
}

static void x509_json(writer *w, const kwi_policy *p, json_t *x509)
{
	if (p->x509.subject)
		put(w, x509, "subject", json_string(p->x509.subject));
	if (p->x509.is_ca) {
		json_t *ca = put(w, x509, "ca", json_object());
		if (p->x509.pathlen >= 0)
			put(w, ca, "pathlen", json_integer(p->x509.pathlen));
	}
	if (p->x509.has_sans)
		put(w, x509, "sans", strings_json(w, &p->x509.sans));
	put(w, x509, "ekus", strings_json(w, &p->x509.ekus));
	put(w, x509, "key_usage", strings_json(w, &p->x509.key_usage));
	if (p->x509.validity_days)
		put(w, x509, "validity_days", json_integer(p->x509.validity_days));
}

static void actions_json(writer *w, const kwi_policy *p, json_t *list)
{
	for (size_t i = 0; i < p->n_actions; i++) {
		const kwi_lifetime_action *a = &p->actions[i];
		json_t *o = json_object(), *t = put(w, o, "trigger", json_object());
		if (a->trigger.kind) /* never 0 in a checked or stored policy */
			put(w, t, trigger_names[a->trigger.kind], json_integer(a->trigger.value));
		put(w, o, "action", json_string(action_names[a->action]));
		if (json_array_append_new(list, o) != 0)
			w->ok = 0;
	}
}

static void issuer_json(writer *w, const kwi_policy *p, json_t *issuer)
{
	const kwi_http01_conf *h = &p->issuer.http01;
	if (h->listen || h->webroot) {
		json_t *o = put(w, issuer, "http01", json_object());
		if (h->listen)
			put(w, o, "listen", json_string(h->listen));
		if (h->webroot)
			put(w, o, "webroot", json_string(h->webroot));
	}
	put(w, issuer, "name", json_string(p->issuer.name));
}

/* No target: no deploy section, as the validator leaves it. */
static void deploy_json(writer *w, const kwi_policy *p, json_t *doc)
{
	if (p->deploy.target)
		put(w, put(w, doc, "deploy", json_object()), "target",
		    json_string(p->deploy.target));
}

kw_rc kwi_policy_to_json(const kwi_policy *p, json_t **out)
{
	writer w = {1};
	json_t *doc = json_object();
	key_json(&w, p, put(&w, doc, "key", json_object()));
	x509_json(&w, p, put(&w, doc, "x509", json_object()));
	actions_json(&w, p, put(&w, doc, "lifetime_actions", json_array()));
	issuer_json(&w, p, put(&w, doc, "issuer", json_object()));
	deploy_json(&w, p, doc);
	if (p->history_limit)
		put(&w, doc, "history_limit", json_integer(p->history_limit));
	*out = NULL;
	if (!w.ok || doc == NULL) {
		json_decref(doc);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	*out = doc;
	return KW_OK;
}

/* ---- renewal time ---- */

/* see policy/model.h */
time_t kwi_policy_trigger_at(const kwi_trigger *t, time_t not_before, time_t not_after)
{
	long long life = (long long)not_after - (long long)not_before, at;
	if (t && t->kind == KWI_TRIGGER_PERCENT)
		at = (long long)not_before + life * (long long)t->value / 100;
	else if (t && t->kind == KWI_TRIGGER_DAYS_BEFORE)
		at = (long long)not_after - (long long)t->value * 86400;
	else
		at = (long long)not_before + life * 2 / 3;
	if (at < not_before)
		at = not_before;
	if (at > not_after)
		at = not_after;
	return (time_t)at;
}

time_t kwi_policy_renew_at(const kwi_policy *p, time_t not_before, time_t not_after)
{
	int found = 0;
	time_t best = 0;
	for (size_t i = 0; p && i < p->n_actions; i++) {
		if (p->actions[i].action != KWI_ACTION_RENEW)
			continue;
		time_t t = kwi_policy_trigger_at(&p->actions[i].trigger, not_before, not_after);
		if (!found || t < best)
			best = t;
		found = 1;
	}
	return found ? best : kwi_policy_trigger_at(NULL, not_before, not_after);
}
