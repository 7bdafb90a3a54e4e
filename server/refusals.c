/* see internal.h: peers refused before they authenticated, counted in memory
 * and written as summaries */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include <keyward/lifecycle.h>

#include "internal.h"

typedef struct {
	char address[KWS_PEER_MAX];
	char sha256[65];
	char reason[200];
	char request[160];
	char peer[KWS_PEER_MAX]; /* the last one's */
	long count;
	time_t first, last;
} refusal;

static struct {
	kw_store *store;
	struct event *timer;
	refusal rows[KWS_REFUSALS_MAX];
	size_t n;
	long dropped; /* counted while the table was full and could not be written */
	time_t dropped_first, dropped_last;
} tab;

/* "ip" of "ip:port" or "[ip]:port". */
static void address_of(const char *peer, char out[KWS_PEER_MAX])
{
	const char *colon = strrchr(peer, ':');
	size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
	if (peer[0] == '[' && n >= 2 && peer[n - 1] == ']') {
		peer++;
		n -= 2;
	}
	snprintf(out, KWS_PEER_MAX, "%.*s", (int)n, peer);
}

static void rows_to_log(kw_mgmt_refusal *out, size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < tab.n; i++) {
		const refusal *r = &tab.rows[i];
		kw_mgmt_refusal row = {
		    .address = r->address,
		    .sha256 = r->sha256[0] ? r->sha256 : NULL,
		    .reason = r->reason,
		    .request = r->request[0] ? r->request : NULL,
		    .peer = r->peer,
		    .count = r->count,
		    .first = r->first,
		    .last = r->last,
		};
		out[(*n)++] = row;
	}
	if (tab.dropped) {
		kw_mgmt_refusal row = {
		    .address = "(various)",
		    .reason = "more kinds of refusal than the server counts between writes",
		    .count = tab.dropped,
		    .first = tab.dropped_first,
		    .last = tab.dropped_last,
		};
		out[(*n)++] = row;
	}
}

void kws_refusals_flush(void)
{
	kw_mgmt_refusal rows[KWS_REFUSALS_MAX + 1];
	size_t n = 0;
	if (tab.store == NULL || (tab.n == 0 && tab.dropped == 0))
		return;
	rows_to_log(rows, &n);
	kw_store_set_actor(tab.store, "api:anonymous");
	kw_rc rc = kw_mgmt_log_refusals(tab.store, rows, n);
	kw_store_set_actor(tab.store, "");
	if (rc != KW_OK) { /* kept for the next try */
		fprintf(stderr, "keyward: cannot log %zu refusals: %s\n", n, kw_error_message());
		return;
	}
	tab.n = 0;
	tab.dropped = 0;
}

static refusal *row_find(const char *address, const char *sha256, const char *reason)
{
	for (size_t i = 0; i < tab.n; i++) {
		refusal *r = &tab.rows[i];
		if (strcmp(r->address, address) == 0 && strcmp(r->sha256, sha256) == 0 &&
		    strcmp(r->reason, reason) == 0)
			return r;
	}
	return NULL;
}

void kws_refusal_note(const char *peer, const char *sha256, const char *reason, const char *request)
{
	char address[KWS_PEER_MAX], why[200];
	time_t now = time(NULL);
	address_of(peer, address);
	snprintf(why, sizeof(why), "%s", reason);
	refusal *r = row_find(address, sha256 ? sha256 : "", why);
	if (r == NULL && tab.n == KWS_REFUSALS_MAX)
		kws_refusals_flush(); /* one write for a table full of peers */
	if (r == NULL && tab.n == KWS_REFUSALS_MAX) {
		tab.dropped_first = tab.dropped ? tab.dropped_first : now;
		tab.dropped_last = now;
		tab.dropped++;
		return;
	}
	if (r == NULL) {
		r = &tab.rows[tab.n++];
		memset(r, 0, sizeof(*r));
		snprintf(r->address, sizeof(r->address), "%s", address);
		snprintf(r->sha256, sizeof(r->sha256), "%s", sha256 ? sha256 : "");
		snprintf(r->reason, sizeof(r->reason), "%s", why);
		r->first = now;
	}
	if (request)
		snprintf(r->request, sizeof(r->request), "%s", request);
	snprintf(r->peer, sizeof(r->peer), "%s", peer);
	r->count++;
	r->last = now;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
	kws_refusals_flush();
}

int kws_refusals_start(struct event_base *base, kw_store *s)
{
	struct timeval every = {KWS_REFUSALS_SECONDS, 0};
	memset(&tab, 0, sizeof(tab));
	tab.store = s;
	tab.timer = event_new(base, -1, EV_PERSIST, on_timer, NULL);
	return tab.timer && event_add(tab.timer, &every) == 0 ? 0 : -1;
}

void kws_refusals_stop(void)
{
	kws_refusals_flush();
	if (tab.timer)
		event_free(tab.timer);
	memset(&tab, 0, sizeof(tab));
}
