/* see internal.h: deleted certificates, contacts, metrics, events */
#include <stdlib.h>
#include <string.h>

#include <keyward/lifecycle.h>

#include "internal.h"

void kws_deleted_list(kws_req *r)
{
	json_t *l = NULL;
	kw_rc rc = kw_cert_list_deleted(r->store, &l);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, 200, json_pack("{s:o}", "value", l));
}

void kws_deleted_recover(kws_req *r)
{
	json_t *j = NULL;
	kw_rc rc = kw_cert_recover(r->store, r->segs[1]);
	if (rc == KW_OK)
		rc = kw_cert_show(r->store, r->segs[1], 0, &j);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, 200, j);
}

void kws_deleted_purge(kws_req *r)
{
	json_t *l = NULL;
	int deleted = 0;
	/* purge only what was deleted first, as Key Vault does */
	kw_rc rc = kw_cert_list_deleted(r->store, &l);
	for (size_t i = 0; rc == KW_OK && i < json_array_size(l); i++) {
		const char *n = json_string_value(json_object_get(json_array_get(l, i), "name"));
		deleted |= n && strcmp(n, r->segs[1]) == 0;
	}
	json_decref(l);
	if (rc == KW_OK && !deleted) {
		kws_reply_error(r, 404, "NotFound", "no deleted certificate '%s'", r->segs[1]);
		return;
	}
	kw_keys_gone gone = {0};
	if (rc == KW_OK)
		rc = kw_cert_purge(r->store, r->segs[1], &gone);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else /* what became of the keys, as their devices said (kw_keys_gone) */
		kws_reply_json(r, 200,
		               json_pack("{s:s,s:b,s:{s:i,s:i,s:i}}", "name", r->segs[1], "purged",
		                         1, "keys", "destroyed", gone.destroyed, "revoked",
		                         gone.revoked, "forgotten", gone.forgotten));
}

void kws_contacts_list(kws_req *r)
{
	json_t *l = NULL;
	kw_rc rc = kw_contact_list(r->store, kws_query(r, "certificate"), &l);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, 200, json_pack("{s:o}", "value", l));
}

void kws_contacts_add(kws_req *r)
{
	static const char *const known[] = {"email", "name", "certificate", NULL};
	if (!kws_body_object(r, known, 0))
		return;
	json_t *email = json_object_get(r->body, "email");
	json_t *name = json_object_get(r->body, "name");
	json_t *cert = json_object_get(r->body, "certificate");
	if (!json_is_string(email) || (name && !json_is_string(name)) ||
	    (cert && !json_is_string(cert))) {
		kws_reply_error(r, 400, "BadParameter",
		                "email (string) is required; name and certificate are strings");
		return;
	}
	kw_rc rc = kw_contact_add(r->store, json_string_value(cert), json_string_value(email),
	                          json_string_value(name));
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_contacts_list(r);
}

void kws_contacts_remove(kws_req *r)
{
	kw_rc rc = kw_contact_remove(r->store, kws_query(r, "certificate"), r->segs[2]);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_contacts_list(r);
}

void kws_metrics(kws_req *r)
{
	char *text = NULL;
	kw_rc rc = kw_metrics_text(r->store, &text);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_text(r, 200, "text/plain; version=0.0.4", text);
	free(text);
}

void kws_events(kws_req *r)
{
	json_t *l = NULL;
	kws_refusals_flush(); /* the list is up to date */
	kw_rc rc = kw_events_list(r->store, kws_query(r, "certificate"), &l);
	if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, 200, json_pack("{s:o}", "value", l));
}
