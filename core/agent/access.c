/* see keyward/agent.h: the agent's decisions (who may use which certificate) */
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <keyward/agent.h>

#include "store/store_access.h"
#include "store/store_certs.h"

/* Refusal events: at most one per certificate and uid in this many seconds. */
#define REFUSAL_PERIOD 60
/* Certificate versions remembered at most: any local user may name any
 * certificate (unknown ones are remembered too), so the cache starts again
 * when full rather than grow with what a peer makes up. */
#define CACHE_MAX 1024

/* What the store says about one certificate version, while it does not change. */
typedef struct {
	char *name;
	int version; /* as asked: 0 = current */
	kw_rc rc;    /* KW_OK: it signs; else why not (msg) */
	char msg[256];
	kw_access_entry *acl;
	size_t n_acl;
} cached;

typedef struct {
	char *name;
	uint32_t uid, gid;
	time_t last;     /* the last event */
	unsigned unsaid; /* refusals since */
} refusal;

struct kw_access {
	pthread_mutex_t mu;
	char *dir;
	kw_store *rd;
	int64_t seen; /* the store's data_version the cache is true for */
	uint32_t owner;
	cached *c;
	size_t n_c;
	refusal *r;
	size_t n_r;
};

static void cache_clear(kw_access *a)
{
	for (size_t i = 0; i < a->n_c; i++) {
		free(a->c[i].name);
		free(a->c[i].acl);
	}
	free(a->c);
	a->c = NULL;
	a->n_c = 0;
}

kw_rc kw_access_open(const char *store_dir, kw_access **out)
{
	struct stat st = {0};
	*out = NULL;
	kw_error_clear();
	kw_access *a = calloc(1, sizeof(*a));
	if (a == NULL || (a->dir = strdup(store_dir)) == NULL) {
		free(a);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	pthread_mutex_init(&a->mu, NULL);
	a->seen = -1;
	kw_rc rc = kwi_store_open_reader(store_dir, &a->rd);
	if (rc == KW_OK && stat(store_dir, &st) != 0)
		rc = KW_FAIL(KW_ERR_IO, "cannot read store directory %s", store_dir);
	if (rc != KW_OK) {
		kw_access_close(a);
		return rc;
	}
	a->owner = (uint32_t)st.st_uid;
	*out = a;
	return KW_OK;
}

/* An event that could not be written is said on stderr (the agent's log). */
static void log_lost(const refusal *r)
{
	fprintf(stderr, "keyward agent: could not record agent.refused for '%s' (uid %u): %s\n",
	        r->name, (unsigned)r->uid, kw_error_message());
}

static void refusal_event(kw_access *a, const refusal *r, unsigned count)
{
	kw_store *w = NULL;
	json_t *d = json_pack("{s:I, s:I, s:I}", "uid", (json_int_t)r->uid, "gid",
	                      (json_int_t)r->gid, "count", (json_int_t)count);
	/* the refusal is said to the client whatever happens to its event */
	if (d != NULL && kwi_store_open_writer(a->dir, &w) == KW_OK) {
		if (kwi_event_record(w, "agent.refused", r->name, 0, d) != KW_OK)
			log_lost(r);
	} else
		json_decref(d);
	kw_store_close(w);
	kw_error_clear();
}

void kw_access_close(kw_access *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n_r; i++) {
		if (a->r[i].unsaid > 0)
			refusal_event(a, &a->r[i], a->r[i].unsaid);
		free(a->r[i].name);
	}
	free(a->r);
	cache_clear(a);
	kw_store_close(a->rd);
	pthread_mutex_destroy(&a->mu);
	free(a->dir);
	free(a);
}

/* Reads what the store says about name / version into e. */
static kw_rc cache_fill(kw_access *a, const char *name, int version, cached *e)
{
	kwi_cert_row c;
	kwi_version_row v;
	int found = 0;
	kw_rc rc = version > 0 ? kwi_store_version_get(a->rd, name, version, 0, &c, &v, &found)
	                       : kwi_store_version_current(a->rd, name, 0, &c, &v, &found);
	if (rc != KW_OK)
		return rc; /* not cached: the store failed, not the certificate */
	e->rc = KW_OK;
	if (!found && version > 0) {
		e->rc = KW_ERR_NOT_FOUND;
		snprintf(e->msg, sizeof(e->msg), "certificate '%s' has no version %d", name,
		         version);
	} else if (!found) {
		e->rc = KW_ERR_NOT_FOUND;
		snprintf(e->msg, sizeof(e->msg), "unknown certificate '%s'", name);
	} else if (!c.enabled) {
		e->rc = KW_ERR_STATE;
		snprintf(e->msg, sizeof(e->msg),
		         "certificate '%s' is disabled: keyward cert set %s --enabled true", name,
		         name);
	} else if (!v.has_cert ||
	           (v.status != KWI_VERSION_ACTIVE && v.status != KWI_VERSION_SUPERSEDED)) {
		e->rc = KW_ERR_STATE;
		snprintf(e->msg, sizeof(e->msg),
		         "certificate '%s' version %d is %s: it does not sign", name, v.version,
		         kwi_version_status_name(v.status));
	} else
		rc = kwi_store_access_list(a->rd, c.id, &e->acl, &e->n_acl);
	kwi_version_row_clear(&v);
	kwi_cert_row_clear(&c);
	return rc;
}

/* The cached entry for name / version, read from the store when missing. */
static kw_rc cache_get(kw_access *a, const char *name, int version, cached **out)
{
	int64_t dv = 0;
	KW_GUARD(kwi_store_data_version(a->rd, &dv));
	if (dv != a->seen) {
		cache_clear(a);
		a->seen = dv;
	}
	for (size_t i = 0; i < a->n_c; i++)
		if (a->c[i].version == version && strcmp(a->c[i].name, name) == 0) {
			*out = &a->c[i];
			return KW_OK;
		}
	cached e = {.version = version};
	KW_GUARD(cache_fill(a, name, version, &e));
	if (a->n_c >= CACHE_MAX)
		cache_clear(a);
	cached *grown = realloc(a->c, (a->n_c + 1) * sizeof(*a->c));
	if (grown == NULL || (e.name = strdup(name)) == NULL) {
		if (grown)
			a->c = grown;
		free(e.acl);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	a->c = grown;
	a->c[a->n_c] = e;
	*out = &a->c[a->n_c++];
	return KW_OK;
}

static int allowed(const kw_access *a, const cached *e, const kw_peer *p)
{
	if (p->uid == 0 || p->uid == a->owner)
		return 1;
	for (size_t i = 0; i < e->n_acl; i++) {
		if (e->acl[i].kind == KW_ACCESS_USER && e->acl[i].id == p->uid)
			return 1;
		if (e->acl[i].kind != KW_ACCESS_GROUP)
			continue;
		if (e->acl[i].id == p->gid)
			return 1;
		for (size_t g = 0; g < p->n_groups; g++)
			if (p->groups[g] == e->acl[i].id)
				return 1;
	}
	return 0;
}

/* Counts a refusal; writes its event when none was written for this
 * certificate and uid in the last REFUSAL_PERIOD seconds. */
static void refusal_count(kw_access *a, const char *name, const kw_peer *p)
{
	time_t now = time(NULL);
	refusal *r = NULL;
	for (size_t i = 0; i < a->n_r && r == NULL; i++)
		if (a->r[i].uid == p->uid && strcmp(a->r[i].name, name) == 0)
			r = &a->r[i];
	if (r == NULL) {
		refusal *grown = realloc(a->r, (a->n_r + 1) * sizeof(*a->r));
		char *copy = grown ? strdup(name) : NULL;
		if (grown)
			a->r = grown;
		if (copy == NULL)
			return;
		r = &a->r[a->n_r++];
		*r = (refusal){.name = copy, .uid = p->uid, .gid = p->gid, .last = 0};
	}
	r->unsaid++;
	r->gid = p->gid;
	if (r->last == 0 || now - r->last >= REFUSAL_PERIOD) {
		refusal_event(a, r, r->unsaid);
		r->last = now;
		r->unsaid = 0;
	}
}

static kw_rc refuse(kw_access *a, const char *name, const kw_peer *p)
{
	char buf[1024], uname[64];
	struct passwd pw, *res = NULL;
	if (getpwuid_r((uid_t)p->uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL)
		snprintf(uname, sizeof(uname), "%s", res->pw_name);
	else
		snprintf(uname, sizeof(uname), "%u", (unsigned)p->uid);
	refusal_count(a, name, p);
	return KW_FAIL(KW_ERR_PERM,
	               "user '%s' (uid %u) may not use certificate '%s': keyward cert access %s "
	               "--allow-user %s",
	               uname, (unsigned)p->uid, name, name, uname);
}

kw_rc kw_access_check(kw_access *a, const char *name, int version, const kw_peer *peer)
{
	cached *e = NULL;
	kw_error_clear();
	pthread_mutex_lock(&a->mu);
	kw_rc rc = cache_get(a, name, version, &e);
	if (rc == KW_OK && e->rc != KW_OK)
		rc = KW_FAIL(e->rc, "%s", e->msg);
	else if (rc == KW_OK && !allowed(a, e, peer))
		rc = refuse(a, name, peer);
	pthread_mutex_unlock(&a->mu);
	return rc;
}
