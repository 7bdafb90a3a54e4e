/* libkeyward internals: the certificate policy as core reads it. The policy
 * is JSON only where it enters and leaves (a policy file, an API body, the
 * store's text, policy show): it is read once there into a kwi_policy and
 * core reads the fields.
 *
 *   input    kwi_policy_check: any document, validated (errors name the
 *            field), defaults filled; kwi_policy_validate is the same as the
 *            normalised document (keyward/lifecycle.h's kw_policy_validate)
 *   store    kwi_policy_from_json / kwi_policy_from_text: a document the
 *            validator made (what the store keeps), read as it is
 *   output   kwi_policy_to_json: the normalised document, exactly as the
 *            validator writes it (keys in its order)
 */
#ifndef KEYWARD_CORE_POLICY_MODEL_H
#define KEYWARD_CORE_POLICY_MODEL_H

#include <stdbool.h>

#include "internal.h"

/* A list of strings (each malloc'd). */
typedef struct {
	char **v;
	size_t n;
} kwi_strings;

typedef enum { KWI_ACTION_RENEW = 1, KWI_ACTION_NOTIFY } kwi_action; /* auto_renew, notify */
typedef enum { KWI_TRIGGER_PERCENT = 1, KWI_TRIGGER_DAYS_BEFORE } kwi_trigger_kind;

/* lifetime_percentage: value % of the lifetime has passed; days_before_expiry:
 * value days are left. Kind 0, only in what kw_policy_renew_at reads from a
 * document that need not validate: no trigger, the default (2/3). */
typedef struct {
	kwi_trigger_kind kind;
	int value;
} kwi_trigger;

typedef struct {
	kwi_action action;
	kwi_trigger trigger;
} kwi_lifetime_action;

/* deploy's files, in the order the policy lists them */
enum {
	KWI_DEPLOY_CERT,
	KWI_DEPLOY_CHAIN,
	KWI_DEPLOY_FULLCHAIN,
	KWI_DEPLOY_KEY_REF,
	KWI_DEPLOY_FILES
};
/* deploy's hooks, in the order they run */
enum { KWI_HOOK_PRE, KWI_HOOK_DEPLOY, KWI_HOOK_POST, KWI_HOOKS };

/* A deploy target: what a deploy writes and runs. Defined on the host with
 * `keyward deploy-target add` (the store's deploy_targets table); a policy
 * only names one, so whoever can set a policy (the management API) can
 * neither define a command nor choose a file path. */
typedef struct {
	char *file[KWI_DEPLOY_FILES]; /* absolute paths; NULL: not deployed */
	char *owner, *group;          /* names or numbers; NULL: whoever runs keyward */
	char *mode;                   /* octal text, "0640"; NULL: the defaults */
	char *hook[KWI_HOOKS];        /* shell commands; NULL: none */
} kwi_deploy_conf;

struct kwi_policy {
	struct {
		kw_key_type type; /* 0: absent, or a name this build does not know */
		char *backend;    /* NULL: none (the policy cannot issue) */
		bool reuse_key;
		bool revocable; /* a key a purge revokes for good (TPM: NV-bound) */
	} key;
	struct {
		char *subject;         /* a DN; NULL: none (the policy cannot issue) */
		bool has_sans;         /* sans is listed (empty or not) */
		kwi_strings sans;      /* "DNS:x", "IP:y" */
		kwi_strings ekus;      /* names (serverAuth) or dotted OIDs */
		kwi_strings key_usage; /* digitalSignature, keyEncipherment, ... */
		int validity_days;     /* 0: absent */
		bool is_ca;            /* basicConstraints CA:TRUE */
		int pathlen;           /* with is_ca: the path length constraint; -1: none */
	} x509;
	kwi_lifetime_action *actions; /* lifetime_actions, in order */
	size_t n_actions;
	struct {
		kw_issuer_kind kind;    /* KW_ISSUER_INVALID: a name this build does not know */
		char *name;             /* "self", "unknown", "ca:NAME", "acme:NAME" (never NULL) */
		const char *named;      /* NAME inside name for ca:NAME and acme:NAME, else NULL */
		kwi_http01_conf http01; /* acme: how to answer http-01; both NULL: not said */
	} issuer;
	struct {
		char *target; /* a deploy target's name; NULL: nothing is deployed */
	} deploy;
	int history_limit; /* versions kept; 0: every one (absent) */
};

/* "lifetime_percentage", "days_before_expiry" (the trigger's key) */
const char *kwi_trigger_name(kwi_trigger_kind k);
/* "cert", "chain", "fullchain", "key_ref" (the policy's deploy keys) */
extern const char *const kwi_deploy_file_names[KWI_DEPLOY_FILES];
/* "pre", "deploy", "post" (deploy.hooks' keys) */
extern const char *const kwi_hook_names[KWI_HOOKS];

/* ---- policy/model.c ---- */
/* Appends a copy of s. */
kw_rc kwi_strings_add(kwi_strings *l, const char *s) KW_MUST_USE;
/* 1 when l lists s. */
int kwi_strings_has(const kwi_strings *l, const char *s);
/* *out (freed first) becomes a copy of s (NULL: NULL). */
kw_rc kwi_policy_strdup(const char *s, char **out) KW_MUST_USE;
/* "an object", "a string", ... "null"; "nothing" for NULL: for messages. */
const char *kwi_json_kind(const json_t *v);
/* issuer.name, kind and named from name (kwi_issuer_parse). */
kw_rc kwi_policy_issuer_set(kwi_policy *p, const char *name) KW_MUST_USE;

/* A policy with nothing set: issuer self, pathlen -1 (not the default
 * policy: kwi_policy_check of {} is). NULL: out of memory (recorded). */
kwi_policy *kwi_policy_new(void);
void kwi_policy_free(kwi_policy *p);

/* Reads a document the validator made (the store's). Each field is taken as
 * it is: an absent (or null) one has the meaning the code gave its absence
 * (issuer self, history_limit 0: keep every version), a key type or issuer
 * the build does not know is kept as 0 / KW_ISSUER_INVALID for the reader
 * to refuse, deploy's paths, owner and mode are left for deploy to check. A
 * field of another JSON type, an action other than auto_renew or notify, or
 * a trigger with neither of its two, is refused (KW_ERR_STORE, naming the
 * field): that is no document keyward wrote. */
kw_rc kwi_policy_from_json(const json_t *doc, kwi_policy **out) KW_MUST_USE;
/* The same from JSON text; NULL when it does not read (not JSON, or refused
 * above). Records nothing: the caller says what it was reading. */
kwi_policy *kwi_policy_from_text(const char *text);
/* The normalised document: exactly what kwi_policy_validate gives for the
 * document p was checked from (the store keeps it, policy show prints it). */
kw_rc kwi_policy_to_json(const kwi_policy *p, json_t **out) KW_MUST_USE;

/* When trigger t fires for a version valid from not_before to not_after
 * (NULL: at 2/3 of the lifetime), clamped to that validity. */
time_t kwi_policy_trigger_at(const kwi_trigger *t, time_t not_before, time_t not_after);
/* When p has the version renewed: its earliest auto_renew trigger, else
 * (and for p NULL) at 2/3 of the lifetime. */
time_t kwi_policy_renew_at(const kwi_policy *p, time_t not_before, time_t not_after);

/* Frees what c holds and zeroes it. */
void kwi_deploy_conf_clear(kwi_deploy_conf *c);
/* Reads a deploy target's stored settings as they are (each field a string
 * or absent; hooks an object): deploy checks paths, owner and mode again.
 * Another JSON type is refused (KW_ERR_STORE). */
kw_rc kwi_deploy_conf_from_json(const json_t *doc, kwi_deploy_conf *out) KW_MUST_USE;

/* ---- policy/policy.c: validation ---- */
/* Validates a policy document (anything a user gave) and fills the
 * defaults; the error names the field ("x509.validity_days: must be 1 to
 * 36500, not 0"). */
kw_rc kwi_policy_check(const json_t *in, kwi_policy **out) KW_MUST_USE;
/* Validates a deploy target's settings (cert, chain, fullchain, key_ref:
 * absolute paths, each a different file; owner, group: names or numbers;
 * mode: octal, not writable by others; hooks {pre, deploy, post}: shell
 * commands), the rules a policy's inline deploy section had. *out: the
 * normalised document (new reference); conf (may be NULL): the same, typed.
 * Errors name the field ("mode: must be an octal mode ..."). Whether the
 * owner and group exist on this host is the caller's check. */
kw_rc kwi_deploy_conf_check(const json_t *in, json_t **out, kwi_deploy_conf *conf) KW_MUST_USE;
/* The name rule of deploy targets ("deploy target": 1 to 80 of [A-Za-z0-9._-],
 * starting with a letter or digit). */
kw_rc kwi_deploy_target_name_check(const char *name) KW_MUST_USE;
/* A checked policy has what issuing needs: x509.subject and key.backend. */
kw_rc kwi_policy_require_complete(const kwi_policy *p) KW_MUST_USE;

/* ---- policy/deploy_migrate.c ---- */
/* Schema 6 → 7, inside the migration's transaction: every certificate whose
 * stored policy has an inline deploy section (files, owner, group, mode,
 * hooks) gets a deploy target "cert-NAME" holding those settings, and its
 * policy names that target instead; a section with neither files nor hooks
 * deployed nothing and is dropped. What deploys is unchanged. */
kw_rc kwi_policy_deploy_migrate(kw_store *s) KW_MUST_USE;

/* ---- policy/request.c ---- */
/* The policy of a create request (checked, complete). */
kw_rc kwi_policy_from_request(const kw_cert_request *req, kwi_policy **out) KW_MUST_USE;
/* The same from base (a policy document, may be NULL): the request's fields
 * that are set override base's (backend, subject, sans, key type, days, issuer). */
kw_rc kwi_policy_merge(const json_t *base, const kw_cert_request *req,
                       kwi_policy **out) KW_MUST_USE;
/* The live certificate's policy, checked again from the store's document
 * (soft-deleted certificates are not found). */
kw_rc kwi_policy_load(kw_store *s, const char *name, kwi_policy **out) KW_MUST_USE;
/* The X.509 template p makes; free with kwi_template_clear. */
kw_rc kwi_policy_template(const kwi_policy *p, time_t now, kwi_cert_template *t) KW_MUST_USE;

#endif
