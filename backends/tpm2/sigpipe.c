/* see tpm2_internal.h: SIGPIPE guard around TPM I/O */
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "tpm2_internal.h"

static void sigpipe_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGPIPE);
}

void kwb_tpm2_sigpipe_block(kwb_tpm2_sigpipe *g)
{
	sigset_t set, pending;

	sigpipe_set(&set);
	g->was_pending = 0;
	if (sigpending(&pending) == 0)
		g->was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

void kwb_tpm2_sigpipe_restore(kwb_tpm2_sigpipe *g)
{
	sigset_t set, pending;
	const struct timespec now = {0, 0};

	sigpipe_set(&set);
	/* A SIGPIPE that was pending before is the caller's: leave it. One raised
	 * by our own write() is ours: take it before unblocking. */
	if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1)
		(void)sigtimedwait(&set, NULL, &now);
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}
