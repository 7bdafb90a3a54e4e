/* see keyward/mgmt.h: the management CA, its clients, and who may call the API */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "mgmt/mgmt_internal.h"

#define MSG_LEN 512

static kw_rc init_refuse_existing(kw_store *s)
{
	const char *names[] = {KW_MGMT_CA_NAME, KW_MGMT_SERVER_NAME};
	for (size_t i = 0; i < 2; i++) {
		int taken = 0;
		KW_GUARD(kwi_store_mgmt_cert_exists(s, names[i], &taken));
		if (taken)
			return KW_FAIL_HINT(
			    KW_ERR_EXISTS, KW_HINT_MGMT_LIST,
			    "the store already has certificate '%s': management is set up",
			    names[i]);
	}
	return KW_OK;
}

static kw_rc create_server(kw_store *s, const kw_mgmt_init_request *req)
{
	static const char *const default_sans[] = {"DNS:localhost", "IP:127.0.0.1"};
	char subject[300];
	snprintf(subject, sizeof(subject), "CN=%s,O=" KW_MGMT_ORG,
	         req->server_cn ? req->server_cn : "localhost");
	kw_cert_request srv = {
	    .name = KW_MGMT_SERVER_NAME,
	    .backend = req->backend,
	    .subject = subject,
	    .sans = req->sans ? req->sans : default_sans,
	    .n_sans = req->sans ? req->n_sans : 2,
	    .key_type = req->key_type,
	    .days = req->server_days,
	    .issuer = "ca:" KW_MGMT_CA_NAME,
	};
	return kwi_cert_create(s, &srv, NULL);
}

/* The CA goes again when the server certificate cannot be made; the first
 * error is the one reported. */
static kw_rc undo_ca(kw_store *s, kw_rc rc)
{
	char msg[MSG_LEN], arg[128];
	kw_hint hint = kw_error_hint();
	snprintf(msg, sizeof(msg), "%s", kw_error_message());
	snprintf(arg, sizeof(arg), "%s", kw_error_hint_arg());
	if (kwi_cert_purge(s, KW_MGMT_CA_NAME, NULL) != KW_OK) { /* best effort */
	}
	kw_error_clear();
	return KW_FAIL_HINT_ON(rc, hint, arg[0] ? arg : NULL, "%s", msg);
}

static kw_rc init_report(kw_store *s, const char *backend, json_t **out)
{
	json_t *ca = NULL, *srv = NULL;
	KW_GUARD(kwi_cert_show(s, KW_MGMT_CA_NAME, 0, &ca));
	kw_rc rc = kwi_cert_show(s, KW_MGMT_SERVER_NAME, 0, &srv);
	if (rc == KW_OK) {
		*out =
		    json_pack("{s:s,s:s,s:s,s:O,s:O}", "ca", KW_MGMT_CA_NAME, "server",
		              KW_MGMT_SERVER_NAME, "backend", backend, "ca_thumbprint_sha256",
		              json_object_get(ca, "thumbprint_sha256"), "server_thumbprint_sha256",
		              json_object_get(srv, "thumbprint_sha256"));
		if (*out == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	json_decref(ca);
	json_decref(srv);
	return rc;
}

kw_rc kwi_mgmt_init(kw_store *s, const kw_mgmt_init_request *req, json_t **out)
{
	if (out)
		*out = NULL;
	KW_GUARD(init_refuse_existing(s));
	char *only = NULL;
	if (req->backend == NULL || req->backend[0] == '\0') {
		KW_GUARD(kwi_backend_only(s, "the management keys", &only));
		kw_mgmt_init_request dflt = *req;
		dflt.backend = only;
		kw_rc rc = kwi_mgmt_init(s, &dflt, out);
		free(only);
		return rc;
	}
	kw_cert_request ca = {
	    .name = KW_MGMT_CA_NAME,
	    .backend = req->backend,
	    .subject = "CN=keyward management CA,O=" KW_MGMT_ORG,
	    .key_type = req->key_type,
	    .ca = 1,
	    .has_pathlen = 1,
	    .pathlen = 0,
	};
	KW_GUARD(kwi_cert_create(s, &ca, NULL));
	kw_rc rc = create_server(s, req);
	if (rc != KW_OK)
		return undo_ca(s, rc);
	return out ? init_report(s, req->backend, out) : KW_OK;
}

/* ---- clients ---- */

static json_t *client_json(const kwi_mgmt_client_row *c, time_t now)
{
	char nb[32], na[32], created[32], revoked[32];
	kwi_time_format(c->not_before, nb, sizeof(nb));
	kwi_time_format(c->not_after, na, sizeof(na));
	kwi_time_format(c->created_at, created, sizeof(created));
	if (c->revoked)
		kwi_time_format(c->revoked_at, revoked, sizeof(revoked));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s}", "name", c->name, "role",
	                 c->role, "serial", c->serial, "subject", c->subject, "not_before", nb,
	                 "not_after", na, "thumbprint_sha256", c->thumbprint_sha256, "key_source",
	                 c->key_source, "created", created, "revoked",
	                 c->revoked ? json_string(revoked) : json_null(), "status",
	                 c->revoked ? "revoked" : (c->not_after <= now ? "expired" : "active"));
}

kw_rc kwi_mgmt_client_json(kw_store *s, const char *name, json_t **out)
{
	kwi_mgmt_client_row c;
	time_t now;
	int found = 0;
	*out = NULL;
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_store_mgmt_client_get(s, name, &c, &found));
	if (!found)
		return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_MGMT_LIST,
		                    "unknown management client '%s'", name);
	*out = client_json(&c, now);
	kwi_mgmt_client_row_clear(&c);
	return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

kw_rc kw_mgmt_list(kw_store *s, json_t **out)
{
	kwi_mgmt_client_row *rows = NULL;
	size_t n = 0;
	time_t now;
	kw_error_clear();
	*out = NULL;
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_store_mgmt_client_list(s, &rows, &n));
	json_t *list = json_array();
	kw_rc rc = list ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	for (size_t i = 0; rc == KW_OK && i < n; i++)
		rc = kwi_json_append(list, client_json(&rows[i], now));
	kwi_mgmt_client_rows_free(rows, n);
	if (rc == KW_OK)
		*out = list;
	else
		json_decref(list);
	return rc;
}

/* Inside the transaction: the client's row, its serial on the CA's CRL, the event. */
/* Inside the transaction: the client's row, its serial on the CA's CRL, the event. */
static kw_rc revoke_in(kw_store *s, const char *name, time_t now)
{
	int revoked = 0;
	/* reason 5: cessationOfOperation */
	KW_GUARD(kwi_store_mgmt_client_revoke(s, name, now, 5, &revoked));
	if (!revoked)
		return KW_FAIL(KW_ERR_STATE, "management client '%s' is already revoked", name);
	return kwi_event_append(s, "mgmt.revoked", KW_MGMT_CA_NAME, 0,
	                        json_pack("{s:s}", "client", name));
}

kw_rc kw_mgmt_revoke(kw_store *s, const char *name)
{
	json_t *c = NULL;
	time_t now;
	kw_error_clear();
	KW_GUARD(kwi_mgmt_client_json(s, name, &c)); /* names an unknown client */
	json_decref(c);
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = revoke_in(s, name, now);
	if (rc == KW_OK)
		return kwi_store_commit(s);
	kwi_store_rollback(s);
	return rc;
}

kw_rc kw_mgmt_log_request(kw_store *s, const char *method, const char *path, int status,
                          const char *sha256, const char *client, const char *peer)
{
	kw_error_clear();
	json_t *d =
	    json_pack("{s:s,s:s,s:i,s:s?,s:s?,s:s?}", "method", method, "path", path, "status",
	              status, "thumbprint_sha256", sha256, "client", client, "peer", peer);
	if (d == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	return kwi_event_record(s, "api.request", NULL, 0, d);
}

static json_t *refusal_json(const kw_mgmt_refusal *r)
{
	char first[32], last[32];
	kwi_time_format(r->first, first, sizeof(first));
	kwi_time_format(r->last, last, sizeof(last));
	return json_pack("{s:s,s:s?,s:s,s:s?,s:s?,s:I,s:s,s:s}", "address", r->address,
	                 "thumbprint_sha256", r->sha256, "reason", r->reason, "request", r->request,
	                 "last_peer", r->peer, "count", (json_int_t)r->count, "first", first,
	                 "last", last);
}

kw_rc kw_mgmt_log_refusals(kw_store *s, const kw_mgmt_refusal *rows, size_t n)
{
	json_int_t total = 0;
	kw_error_clear();
	json_t *list = json_array();
	kw_rc rc = list ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
	for (size_t i = 0; rc == KW_OK && i < n; i++) {
		if (rows[i].address == NULL || rows[i].reason == NULL || rows[i].count < 1)
			rc = KW_FAIL(KW_ERR_USAGE,
			             "a refusal needs an address, a reason and a count");
		else
			rc = kwi_json_append(list, refusal_json(&rows[i]));
		total += rc == KW_OK ? rows[i].count : 0;
	}
	json_t *d = rc == KW_OK ? json_pack("{s:I,s:o}", "total", total, "refusals", list) : NULL;
	if (rc == KW_OK && d == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc != KW_OK) {
		json_decref(list);
		return rc;
	}
	return kwi_event_record(s, "api.refused", NULL, 0, d);
}

kw_rc kw_mgmt_init(kw_store *s, const kw_mgmt_init_request *req, json_t **out)
{
	kw_error_clear();
	return kwi_mgmt_init(s, req, out);
}
