/* see p11.h: the signing session pool */
#include <pthread.h>
#include <stdlib.h>

#include "p11.h"

/* Idle sessions kept for reuse; more may be open while threads sign. */
#define POOL_IDLE_MAX 16

struct kw_p11_pool {
	pthread_mutex_t lock;
	CK_SESSION_HANDLE idle[POOL_IDLE_MAX];
	size_t n_idle;
	size_t opened; /* sessions opened for signing, ever */
};

kw_rc kw_p11_pool_new(kw_p11 *p)
{
	p->pool = calloc(1, sizeof(*p->pool));
	if (p->pool == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory opening PKCS#11 backend");
	pthread_mutex_init(&p->pool->lock, NULL);
	return KW_OK;
}

kw_rc kw_p11_session_take(kw_p11 *p, CK_SESSION_HANDLE *s)
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
		return KW_FAIL_DEV(kw_p11_rv_code(rv), rv,
		                   "cannot open a signing session on token '%s' in module %s: %s",
		                   p->token, p->module, kw_p11_rv_name(rv));
	return KW_OK;
}

void kw_p11_session_give(kw_p11 *p, CK_SESSION_HANDLE s, int broken)
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

size_t kw_p11_pool_opened(const kw_p11 *p)
{
	pthread_mutex_lock(&p->pool->lock);
	size_t n = p->pool->opened;
	pthread_mutex_unlock(&p->pool->lock);
	return n;
}

void kw_p11_pool_free(kw_p11 *p)
{
	if (p->pool == NULL)
		return;
	for (size_t i = 0; i < p->pool->n_idle; i++)
		(void)p->fn->C_CloseSession(p->pool->idle[i]);
	pthread_mutex_destroy(&p->pool->lock);
	free(p->pool);
	p->pool = NULL;
}
