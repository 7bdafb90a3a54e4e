/* see p11.h: the signing session pool and the signing key cache */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p11.h"

/* Idle sessions kept for reuse; more may be open while threads sign. */
#define POOL_IDLE_MAX 16

/* Signing keys remembered; the least recently used goes when it is full. */
#define KEYCACHE_MAX 64

typedef struct {
	unsigned char id[KWB_P11_CACHE_ID_MAX];
	size_t id_len; /* 0: a free slot */
	CK_OBJECT_HANDLE h;
	CK_KEY_TYPE kt;
	uint64_t used;       /* tick of the last hit, for LRU */
	uint64_t checked_ms; /* monotonic ms when the handle was last confirmed, 0: never */
} keycache_entry;

struct kwb_p11_pool {
	pthread_mutex_t lock; /* guards everything below */
	CK_SESSION_HANDLE idle[POOL_IDLE_MAX];
	size_t n_idle;
	size_t opened; /* sessions opened for signing, ever */
	keycache_entry keys[KEYCACHE_MAX];
	uint64_t tick;
	size_t searches; /* cache misses that searched the token, ever */
};

kw_rc kwb_p11_pool_new(kwb_p11 *p)
{
	p->pool = calloc(1, sizeof(*p->pool));
	if (p->pool == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory opening PKCS#11 backend");
	pthread_mutex_init(&p->pool->lock, NULL);
	return KW_OK;
}

kw_rc kwb_p11_session_take(kwb_p11 *p, CK_SESSION_HANDLE *s)
{
	pthread_mutex_lock(&p->pool->lock);
	if (p->pool->n_idle > 0) {
		*s = p->pool->idle[--p->pool->n_idle];
		pthread_mutex_unlock(&p->pool->lock);
		return KW_OK;
	}
	pthread_mutex_unlock(&p->pool->lock);
	/* The login of the main session covers every session of this process. */
	CK_RV rv = p->fn->C_OpenSession(p->slot, CKF_SERIAL_SESSION, NULL, NULL, s);
	if (rv == CKR_OK) {
		pthread_mutex_lock(&p->pool->lock);
		p->pool->opened++;
		pthread_mutex_unlock(&p->pool->lock);
	}
	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "cannot open a signing session on token '%s' in module %s: %s",
		                   p->token, p->module, kwb_p11_rv_name(rv));
	return KW_OK;
}

void kwb_p11_session_give(kwb_p11 *p, CK_SESSION_HANDLE s, int broken)
{
	if (!broken) {
		pthread_mutex_lock(&p->pool->lock);
		if (p->pool->n_idle < POOL_IDLE_MAX) {
			p->pool->idle[p->pool->n_idle++] = s;
			s = CK_INVALID_HANDLE;
		}
		pthread_mutex_unlock(&p->pool->lock);
	}
	if (s != CK_INVALID_HANDLE)
		(void)p->fn->C_CloseSession(s);
}

size_t kwb_p11_pool_opened(const kwb_p11 *p)
{
	pthread_mutex_lock(&p->pool->lock);
	size_t n = p->pool->opened;
	pthread_mutex_unlock(&p->pool->lock);
	return n;
}

void kwb_p11_pool_free(kwb_p11 *p)
{
	if (p->pool == NULL)
		return;
	for (size_t i = 0; i < p->pool->n_idle; i++)
		(void)p->fn->C_CloseSession(p->pool->idle[i]);
	pthread_mutex_destroy(&p->pool->lock);
	free(p->pool);
	p->pool = NULL;
}

/* ---- the CKA_ID -> (handle, key type) cache; callers hold the lock ---- */

/* Monotonic milliseconds, never 0 (0 marks an entry not confirmed yet). */
static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 1u;
}

static keycache_entry *cache_slot(kwb_p11_pool *pl, const unsigned char *id, size_t len)
{
	for (size_t i = 0; i < KEYCACHE_MAX; i++)
		if (pl->keys[i].id_len == len && memcmp(pl->keys[i].id, id, len) == 0)
			return &pl->keys[i];
	return NULL;
}

int kwb_p11_keycache_get(kwb_p11 *p, const unsigned char *id, size_t len, CK_OBJECT_HANDLE *h,
                         CK_KEY_TYPE *kt, int *recent)
{
	int hit = 0;

	if (recent != NULL)
		*recent = 0;

	if (len == 0 || len > KWB_P11_CACHE_ID_MAX)
		return 0;
	pthread_mutex_lock(&p->pool->lock);
	keycache_entry *e = cache_slot(p->pool, id, len);
	if (e != NULL) {
		e->used = ++p->pool->tick;
		*h = e->h;
		*kt = e->kt;
		hit = 1;
		if (recent != NULL)
			*recent =
			    e->checked_ms != 0 && now_ms() - e->checked_ms < KWB_P11_RECHECK_MS;
	}
	pthread_mutex_unlock(&p->pool->lock);
	return hit;
}

void kwb_p11_keycache_put(kwb_p11 *p, const unsigned char *id, size_t len, CK_OBJECT_HANDLE h,
                          CK_KEY_TYPE kt, int searched)
{
	if (len == 0 || len > KWB_P11_CACHE_ID_MAX)
		return;
	pthread_mutex_lock(&p->pool->lock);
	p->pool->searches += searched != 0;
	keycache_entry *e = cache_slot(p->pool, id, len);
	for (size_t i = 0; e == NULL && i < KEYCACHE_MAX; i++)
		if (p->pool->keys[i].id_len == 0)
			e = &p->pool->keys[i];
	for (size_t i = 0; e == NULL && i < KEYCACHE_MAX; i++) /* full: evict the LRU */
		if (i == 0 || p->pool->keys[i].used < e->used)
			e = &p->pool->keys[i];
	memcpy(e->id, id, len);
	e->id_len = len;
	e->h = h;
	e->kt = kt;
	e->used = ++p->pool->tick;
	e->checked_ms = searched ? now_ms() : 0;
	pthread_mutex_unlock(&p->pool->lock);
}

void kwb_p11_keycache_confirm(kwb_p11 *p, const unsigned char *id, size_t len, CK_OBJECT_HANDLE h)
{
	pthread_mutex_lock(&p->pool->lock);
	keycache_entry *e = cache_slot(p->pool, id, len);
	if (e != NULL && e->h == h)
		e->checked_ms = now_ms();
	pthread_mutex_unlock(&p->pool->lock);
}

int kwb_p11_is_fresh(const kwb_p11 *p, const kw_key_blob *ref)
{
	return p->fresh_len != 0 && ref->len == p->fresh_len &&
	       memcmp(ref->data, p->fresh_id, ref->len) == 0;
}

void kwb_p11_keycache_drop(kwb_p11 *p, const unsigned char *id, size_t len)
{
	pthread_mutex_lock(&p->pool->lock);
	keycache_entry *e = cache_slot(p->pool, id, len);
	if (e != NULL)
		memset(e, 0, sizeof(*e));
	pthread_mutex_unlock(&p->pool->lock);
}

size_t kwb_p11_keycache_searches(const kwb_p11 *p)
{
	pthread_mutex_lock(&p->pool->lock);
	size_t n = p->pool->searches;
	pthread_mutex_unlock(&p->pool->lock);
	return n;
}
