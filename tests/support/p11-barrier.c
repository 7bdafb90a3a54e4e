/*
 * keyward tests — p11-barrier.so: a PKCS#11 module that forwards every call
 * to a real one (the path in KWB_P11_BARRIER_REAL, SoftHSM2 in the tests) and
 * counts the callers inside C_Sign at once. Every answer is the real
 * token's; the module only adds a meeting point.
 *
 * Once armed (kwb_p11_barrier_arm), a caller entering C_Sign waits there,
 * for at most timeout_ms, until `parties` callers are inside together; then
 * (or on the timeout) the barrier opens for good and every call goes
 * straight through. kwb_p11_barrier_max tells the most callers that were
 * inside C_Sign at the same time: 2 proves two signatures were in flight
 * together, whatever the timing. A caller that signs alone waits out the
 * timeout once and leaves the maximum at 1.
 *
 * With KWB_P11_BARRIER_HOLD_CREATE=PATH in the environment, C_CreateObject
 * of a private key creates PATH and then never returns (the caller is killed
 * there): a process caught while it holds an imported key.
 *
 * With KWB_P11_BARRIER_HOLD_GENERATE=PATH, a C_GenerateKeyPair that
 * succeeded creates PATH and returns only once PATH is removed: a process
 * caught with a new key on the token that its store does not name yet.
 *
 * It also keeps the flags C_Initialize was given (-1: no arguments), so a
 * test can check the module was told it may be called from several threads
 * (CKF_OS_LOCKING_OK).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define EXPORT __attribute__((visibility("default")))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t met = PTHREAD_COND_INITIALIZER;
static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST mine;
static int inside, most, parties, open_for_good = 1, timeout_ms;
static long init_flags = -1;

EXPORT void kwb_p11_barrier_arm(int n, int ms);
EXPORT int kwb_p11_barrier_max(void);
EXPORT long kwb_p11_barrier_init_flags(void);
EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);

void kwb_p11_barrier_arm(int n, int ms)
{
	pthread_mutex_lock(&lock);
	parties = n;
	timeout_ms = ms;
	most = inside;
	open_for_good = 0;
	pthread_mutex_unlock(&lock);
}

int kwb_p11_barrier_max(void)
{
	pthread_mutex_lock(&lock);
	int n = most;
	pthread_mutex_unlock(&lock);
	return n;
}

long kwb_p11_barrier_init_flags(void)
{
	pthread_mutex_lock(&lock);
	long f = init_flags;
	pthread_mutex_unlock(&lock);
	return f;
}

static CK_RV barrier_Initialize(CK_VOID_PTR args)
{
	pthread_mutex_lock(&lock);
	init_flags = args ? (long)((CK_C_INITIALIZE_ARGS *)args)->flags : -1;
	pthread_mutex_unlock(&lock);
	return real->C_Initialize(args);
}

/* Under lock: waits for the other parties, or the deadline. */
static void meet(void)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!open_for_good && inside < parties)
		if (pthread_cond_timedwait(&met, &lock, &until) == ETIMEDOUT)
			break;
	open_for_good = 1;
	pthread_cond_broadcast(&met);
}

static CK_RV barrier_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                          CK_ULONG_PTR sig_len)
{
	pthread_mutex_lock(&lock);
	if (++inside > most)
		most = inside;
	if (!open_for_good)
		meet();
	pthread_mutex_unlock(&lock);
	CK_RV rv = real->C_Sign(s, data, len, sig, sig_len);
	pthread_mutex_lock(&lock);
	inside--;
	pthread_mutex_unlock(&lock);
	return rv;
}

static CK_RV barrier_CreateObject(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                                  CK_OBJECT_HANDLE_PTR h)
{
	const char *hold = getenv("KWB_P11_BARRIER_HOLD_CREATE");
	for (CK_ULONG i = 0; hold && i < n; i++)
		if (t[i].type == CKA_CLASS && t[i].ulValueLen == sizeof(CK_OBJECT_CLASS) &&
		    *(CK_OBJECT_CLASS *)t[i].pValue == CKO_PRIVATE_KEY) {
			int fd = open(hold, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			if (fd >= 0)
				close(fd);
			for (;;)
				pause();
		}
	return real->C_CreateObject(s, t, n, h);
}

static CK_RV barrier_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pub,
                                     CK_ULONG npub, CK_ATTRIBUTE_PTR priv, CK_ULONG npriv,
                                     CK_OBJECT_HANDLE_PTR hpub, CK_OBJECT_HANDLE_PTR hpriv)
{
	CK_RV rv = real->C_GenerateKeyPair(s, m, pub, npub, priv, npriv, hpub, hpriv);
	const char *hold = getenv("KWB_P11_BARRIER_HOLD_GENERATE");
	if (rv == CKR_OK && hold) {
		int fd = open(hold, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
		while (access(hold, F_OK) == 0)
			usleep(20000);
	}
	return rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	CK_RV rv = CKR_OK;
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&lock);
	if (real == NULL) {
		const char *path = getenv("KWB_P11_BARRIER_REAL");
		void *h = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
		CK_C_GetFunctionList get =
		    h ? (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList") : NULL;
		if (get == NULL || get(&real) != CKR_OK || real == NULL) {
			real = NULL;
			rv = CKR_GENERAL_ERROR;
		} else {
			mine = *real;
			mine.C_GetFunctionList = C_GetFunctionList;
			mine.C_Initialize = barrier_Initialize;
			mine.C_Sign = barrier_Sign;
			mine.C_CreateObject = barrier_CreateObject;
			mine.C_GenerateKeyPair = barrier_GenerateKeyPair;
		}
	}
	pthread_mutex_unlock(&lock);
	if (rv == CKR_OK)
		*list = &mine;
	return rv;
}
