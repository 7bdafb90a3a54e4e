/* see internal.h: the route table, after Key Vault's certificate API */
#include <string.h>
#include <strings.h>

#include "internal.h"

typedef struct {
	int method;
	const char *path[5]; /* segments; "*" is a name */
	void (*fn)(kws_req *r);
} route;

#define GET  EVHTTP_REQ_GET
#define POST EVHTTP_REQ_POST
#define PUT  EVHTTP_REQ_PUT
#define DEL  EVHTTP_REQ_DELETE

static const route routes[] = {
    {GET, {"certificates"}, kws_cert_list},
    {GET, {"certificates", "contacts"}, kws_contacts_list},
    {POST, {"certificates", "contacts"}, kws_contacts_add},
    {DEL, {"certificates", "contacts", "*"}, kws_contacts_remove},
    {GET, {"certificates", "*"}, kws_cert_get},
    {DEL, {"certificates", "*"}, kws_cert_delete},
    {GET, {"certificates", "*", "versions"}, kws_cert_versions},
    {POST, {"certificates", "*", "create"}, kws_cert_create},
    {POST, {"certificates", "*", "renew"}, kws_cert_renew},
    {POST, {"certificates", "*", "import"}, kws_cert_import},
    {GET, {"certificates", "*", "pending"}, kws_cert_pending_get},
    {DEL, {"certificates", "*", "pending"}, kws_cert_pending_cancel},
    {POST, {"certificates", "*", "pending", "merge"}, kws_cert_pending_merge},
    {GET, {"certificates", "*", "policy"}, kws_cert_policy_get},
    {PUT, {"certificates", "*", "policy"}, kws_cert_policy_put},
    {GET, {"deletedcertificates"}, kws_deleted_list},
    {POST, {"deletedcertificates", "*", "recover"}, kws_deleted_recover},
    {DEL, {"deletedcertificates", "*"}, kws_deleted_purge},
    {GET, {"metrics"}, kws_metrics},
    {GET, {"events"}, kws_events},
};

static int path_matches(const route *rt, const kws_req *r)
{
	int n = 0;
	while (n < 5 && rt->path[n])
		n++;
	if (n != r->nsegs)
		return 0;
	for (int i = 0; i < n; i++)
		if (strcmp(rt->path[i], "*") != 0 && strcmp(rt->path[i], r->segs[i]) != 0)
			return 0;
	return 1;
}

/* The API's own CA and server certificate: a remote admin must not be able
 * to lock everyone out (delete, renew with a new key, purge). */
static int protected_name(const kws_req *r)
{
	return r->nsegs >= 2 && (strcmp(r->segs[1], KW_MGMT_CA_NAME) == 0 ||
	                         strcmp(r->segs[1], KW_MGMT_SERVER_NAME) == 0);
}

/* Is the media type application/json (parameters such as charset allowed)? */
static int is_json(const char *type)
{
	static const char json[] = "application/json";
	size_t n = sizeof(json) - 1;
	type += strspn(type, " \t");
	if (strncasecmp(type, json, n) != 0)
		return 0;
	type += n;
	type += strspn(type, " \t");
	return *type == '\0' || *type == ';';
}

/* A page in a browser that holds an admin's client certificate can make it
 * send a POST cross-site without asking the server first (a form's
 * text/plain, application/x-www-form-urlencoded or multipart/form-data, or
 * fetch() without a body): a change must say application/json, which no
 * browser sends cross-site without a CORS preflight the API never grants.
 * PUT, PATCH and DELETE are preflighted anyway; they say it when they carry
 * a body (or a type). */
static int content_type_ok(kws_req *r)
{
	const char *type = evhttp_find_header(&r->http->head->headers, "Content-Type");
	int body = evbuffer_get_length(r->http->body) > 0;
	if (r->method == GET || (r->method != POST && !body && type == NULL))
		return 1;
	if (type && is_json(type))
		return 1;
	kws_reply_error(
	    r, 415, "UnsupportedMediaType", "a %s%s needs Content-Type: application/json%s%.64s%s",
	    r->http->head->method, body ? " with a body" : "",
	    type ? " (not '" : ", and none was given", type ? type : "", type ? "')" : "");
	return 0;
}

static const char *method_text(int m)
{
	switch (m) {
	case GET: return "GET";
	case POST: return "POST";
	case PUT: return "PUT";
	default: return "DELETE";
	}
}

void kws_route(kws_req *r)
{
	static char allow[64];
	allow[0] = '\0';
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!path_matches(&routes[i], r))
			continue;
		if (routes[i].method != r->method) {
			size_t n = strlen(allow);
			snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "",
			         method_text(routes[i].method));
			continue;
		}
		if (r->method != GET && strcmp(r->caller.role, "admin") != 0) {
			kws_reply_error(r, 403, "Forbidden",
			                "client '%s' has role %s: it may only read", r->caller.name,
			                r->caller.role);
			return;
		}
		if (r->method != GET && protected_name(r)) {
			kws_reply_error(
			    r, 403, "Forbidden",
			    "'%s' is the management API's own certificate: change it on "
			    "the host (keyward cert ..., keyward mgmt ...)",
			    r->segs[1]);
			return;
		}
		if (content_type_ok(r))
			routes[i].fn(r);
		return;
	}
	r->allow = allow;
	if (allow[0])
		kws_reply_error(r, 405, "MethodNotAllowed", "method not allowed on this path (%s)",
		                allow);
	else
		kws_reply_error(r, 404, "NotFound", "no such endpoint");
}
