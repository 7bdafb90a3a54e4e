/*
 * see store/store_lock.h: which keyward processes may create and destroy
 * keys at the same time.
 *
 * One file, STORE/keyward.lock, and open-file-description locks on it
 * (F_OFD_SETLK: per kw_store handle, released when the handle closes or the
 * process dies, so a crash never leaves a lock behind):
 *   byte 0          shared by every handle that has made, imported or
 *                   destroyed a key (kept until the handle closes: a key is
 *                   recorded in the store only at the commit that follows);
 *                   exclusive for doctor --repair, which destroys keys no
 *                   row names and so must not see one that is in flight.
 *   byte 1 + id     exclusive while certificate id is renewed: one renewal
 *                   of a certificate at a time, however many runs start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store_lock.h"

#define LOCK_FILE "keyward.lock"
#define POLL_MS   50

static kw_rc lock_file(kw_store *s)
{
	if (s->lock_fd >= 0)
		return KW_OK;
	char *path = NULL;
	if (asprintf(&path, "%s/" LOCK_FILE, s->dir) < 0)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	kw_rc rc = s->lock_fd >= 0 ? KW_OK
	                           : KW_FAIL(KW_ERR_IO, "cannot open the store's lock file %s: %s",
	                                     path, strerror(errno));
	free(path);
	return rc;
}

/* 0 taken, 1 held by another handle, -1 error (errno). */
static int range_lock(int fd, short type, off_t start, int wait)
{
	struct flock l = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};
	for (;;) {
		if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &l) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EACCES ? 1 : -1;
	}
}

kw_rc kwi_store_keys_busy(kw_store *s)
{
	if (s == NULL || s->lock_mode != KWI_LOCK_NONE)
		return KW_OK;
	KW_GUARD(lock_file(s));
	if (range_lock(s->lock_fd, F_RDLCK, 0, 1) != 0)
		return KW_FAIL(KW_ERR_IO, "cannot lock the store %s: %s", s->dir, strerror(errno));
	s->lock_mode = KWI_LOCK_SHARED;
	return KW_OK;
}

kw_rc kwi_store_keys_alone(kw_store *s, int wait_ms)
{
	if (s->lock_mode == KWI_LOCK_ALONE)
		return KW_OK;
	if (s->lock_mode == KWI_LOCK_SHARED)
		return KW_FAIL(KW_ERR_STATE, "this store handle is creating keys itself");
	KW_GUARD(lock_file(s));
	for (int waited = 0;; waited += POLL_MS) {
		int r = range_lock(s->lock_fd, F_WRLCK, 0, 0);
		if (r == 0) {
			s->lock_mode = KWI_LOCK_ALONE;
			return KW_OK;
		}
		if (r < 0)
			return KW_FAIL(KW_ERR_IO, "cannot lock the store %s: %s", s->dir,
			               strerror(errno));
		if (waited >= wait_ms)
			return KW_FAIL(KW_ERR_STATE,
			               "other keyward commands are creating or destroying keys in "
			               "store %s; try again when they are done",
			               s->dir);
		struct timespec t = {0, POLL_MS * 1000000L};
		nanosleep(&t, NULL);
	}
}

kw_rc kwi_store_cert_lease(kw_store *s, int64_t cert_id, int wait, int *got)
{
	*got = 0;
	KW_GUARD(lock_file(s));
	int r = range_lock(s->lock_fd, F_WRLCK, (off_t)(1 + cert_id), wait);
	if (r < 0)
		return KW_FAIL(KW_ERR_IO, "cannot lock a certificate in store %s: %s", s->dir,
		               strerror(errno));
	*got = r == 0;
	return KW_OK;
}

void kwi_store_cert_release(kw_store *s, int64_t cert_id)
{
	if (s && s->lock_fd >= 0)
		(void)range_lock(s->lock_fd, F_UNLCK, (off_t)(1 + cert_id), 0);
}

void kwi_store_locks_close(kw_store *s)
{
	if (s && s->lock_fd >= 0)
		close(s->lock_fd); /* releases every lock of this handle */
	if (s) {
		s->lock_fd = -1;
		s->lock_mode = KWI_LOCK_NONE;
	}
}

void kw_store_idle(kw_store *s)
{
	if (s && s->lock_fd >= 0 && s->lock_mode == KWI_LOCK_SHARED) {
		(void)range_lock(s->lock_fd, F_UNLCK, 0, 0);
		s->lock_mode = KWI_LOCK_NONE;
	}
}
