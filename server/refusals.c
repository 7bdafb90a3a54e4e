/* see internal.h: peers refused before they authenticated */
#include <stdio.h>

#include <keyward/lifecycle.h>

#include "internal.h"

/* Logged like a request: method "TLS" (or the request's), status 0, the
 * reason as the path. */
void kws_refusal_note(kw_store *s, const char *peer, const char *sha256, const char *reason,
                      const char *request)
{
	char actor[96], path[400];
	snprintf(actor, sizeof(actor), "api:%s", sha256 ? sha256 : "anonymous");
	snprintf(path, sizeof(path), "%s%s%s", reason, request ? ": " : "", request ? request : "");
	kw_store_set_actor(s, actor);
	if (kw_mgmt_log_request(s, "TLS", path, 0, sha256, NULL, peer) != KW_OK)
		fprintf(stderr, "keyward: cannot log a refusal: %s\n", kw_error_message());
	kw_store_set_actor(s, "");
}
