/* see agent.h: the listening socket, the connection threads, the signals */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent.h"
#include "agent/proto.h"

typedef struct {
	kwa_server srv;
	pthread_mutex_t mu;
	pthread_cond_t idle;
	int max, per_user;
	int *fds;        /* the open connections (-1: free slot), for shutdown at the end */
	uid_t *uids;     /* and whose each is */
	pthread_t *tids; /* each slot's thread, joined before the slot is reused and at the end */
	char *joinable;  /* tids[i] is a thread not joined yet */
	int n_open;
} agent;

typedef struct {
	agent *ag;
	int fd, slot;
} job;

/* The systemd socket (LISTEN_FDS=1, LISTEN_PID = us), else -1. */
static int activated_socket(void)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	if (fds == NULL || pid == NULL || strcmp(fds, "1") != 0 ||
	    strtol(pid, NULL, 10) != (long)getpid())
		return -1;
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	fcntl(3, F_SETFD, FD_CLOEXEC);
	return 3;
}

/* A socket file left by an agent that is gone is removed; one that answers
 * is another agent's. */
static kw_rc stale_remove(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return KW_OK;
	if (!S_ISSOCK(st.st_mode))
		return KW_FAIL(KW_ERR_EXISTS, "%s exists and is not a socket", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int live = fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	if (fd >= 0)
		close(fd);
	if (live)
		return KW_FAIL(KW_ERR_EXISTS, "another agent listens on %s", path);
	unlink(path);
	return KW_OK;
}

/* Binds path: any local user may connect (0666; the directory, made 0755
 * when missing), because access is decided per certificate. */
static kw_rc bind_socket(const char *path, int *out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return KW_FAIL(KW_ERR_USAGE, "socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	char *copy = strdup(path);
	if (copy == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	const char *dir = dirname(copy);
	if (mkdir(dir, 0755) == 0)
		chmod(dir, 0755); /* whatever the umask */
	free(copy);
	KW_GUARD(stale_remove(path, &sa));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return KW_FAIL(KW_ERR_IO, "socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(path, 0666) != 0 ||
	    listen(fd, 64) != 0) {
		int e = errno;
		close(fd);
		return KW_FAIL(KW_ERR_IO, "cannot listen on %s: %s", path, strerror(e));
	}
	*out = fd;
	return KW_OK;
}

static void *conn_thread(void *arg)
{
	job *j = arg;
	agent *ag = j->ag;
	kwa_conn_serve(&ag->srv, j->fd);
	pthread_mutex_lock(&ag->mu);
	ag->fds[j->slot] = -1;
	close(j->fd);
	if (--ag->n_open == 0)
		pthread_cond_signal(&ag->idle);
	pthread_mutex_unlock(&ag->mu);
	free(j);
	/* the thread's OpenSSL state (its error queue, filled by a refused or
	 * failed signature): a detached thread does not give it back by itself,
	 * and the agent starts a thread per connection */
	OPENSSL_thread_stop();
	return NULL;
}

/* Over a limit: one ERROR reply saying which, then the connection is closed. */
static void refuse(agent *ag, int fd, const char *why)
{
	kwi_msgbuf *b = malloc(sizeof(*b));
	atomic_fetch_add(&ag->srv.refused, 1);
	if (b != NULL) {
		kwi_msgbuf_start(b, KWI_MSG_ERROR);
		kwi_msgbuf_u32(b, KWI_TAG_RC, KW_ERR_UNAVAILABLE);
		kwi_msgbuf_str(b, KWI_TAG_MESSAGE, why);
		if (kwi_msgbuf_finish(b) == 0)
			(void)kwi_msg_write(fd, b);
		free(b);
	}
	close(fd);
}

/* The connections uid holds now (callers hold ag->mu). */
static int held_by(const agent *ag, uid_t uid)
{
	int n = 0;
	for (int i = 0; i < ag->max; i++)
		n += ag->fds[i] >= 0 && ag->uids[i] == uid;
	return n;
}

/* Any local user may connect: one user may hold at most per_user of the
 * connections (root, and the agent's own user, any), so that a user who
 * opens connections and sends nothing cannot lock the others out. */
static void on_accept(agent *ag, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr)) {
		close(fd);
		return;
	}
	int trusted = cr.uid == 0 || cr.uid == geteuid();
	pthread_mutex_lock(&ag->mu);
	int slot = -1;
	int over_user = !trusted && held_by(ag, cr.uid) >= ag->per_user;
	for (int i = 0; i < ag->max && slot < 0 && !over_user; i++)
		if (ag->fds[i] < 0)
			slot = i;
	job *j = slot >= 0 ? malloc(sizeof(*j)) : NULL;
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (j != NULL && ag->joinable[slot]) {
		/* the slot's last thread is done with it (fds[slot] is -1): reap it */
		pthread_join(ag->tids[slot], NULL);
		ag->joinable[slot] = 0;
	}
	if (j != NULL) {
		*j = (job){ag, fd, slot};
		ag->fds[slot] = fd;
		ag->uids[slot] = cr.uid;
		ag->n_open++;
		if (pthread_create(&t, &attr, conn_thread, j) != 0) {
			ag->fds[slot] = -1;
			ag->n_open--;
			free(j);
			j = NULL;
		} else {
			ag->tids[slot] = t;
			ag->joinable[slot] = 1;
		}
	}
	pthread_attr_destroy(&attr);
	pthread_mutex_unlock(&ag->mu);
	if (j == NULL && over_user) {
		char why[160];
		snprintf(why, sizeof(why),
		         "uid %u holds %d connections to the keyward agent: the most one user may "
		         "(--max-connections-per-user)",
		         (unsigned)cr.uid, ag->per_user);
		refuse(ag, fd, why);
	} else if (j == NULL)
		refuse(ag, fd, "the keyward agent serves too many connections (--max-connections)");
}

/* Accepts until a signal comes on sfd. */
static void serve(agent *ag, int lfd, int sfd)
{
	struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			kwa_log("poll: %s", strerror(errno));
			return;
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				kwa_log("signal %u: stopping", si.ssi_signo);
			return;
		}
		if (p[0].revents & POLLIN)
			on_accept(ag, lfd);
	}
}

/* The connections end after the request they are serving. */
static void drain(agent *ag)
{
	pthread_mutex_lock(&ag->mu);
	for (int i = 0; i < ag->max; i++)
		if (ag->fds[i] >= 0)
			shutdown(ag->fds[i], SHUT_RD);
	while (ag->n_open > 0)
		pthread_cond_wait(&ag->idle, &ag->mu);
	pthread_mutex_unlock(&ag->mu);
	/* every thread's end, its thread-local state (OpenSSL's, glibc's) given
	 * back, before the process exits */
	for (int i = 0; i < ag->max; i++)
		if (ag->joinable[i])
			pthread_join(ag->tids[i], NULL);
}

kw_rc kwa_run(const kwa_config *cfg)
{
	agent ag = {.max = cfg->max_connections > 0 ? cfg->max_connections : 256};
	ag.per_user =
	    cfg->max_per_user > 0 && cfg->max_per_user < ag.max ? cfg->max_per_user : ag.max;
	const char *path = cfg->socket_path ? cfg->socket_path : KW_AGENT_SOCKET_DEFAULT;
	int lfd = activated_socket(), bound = 0, sfd = -1;
	sigset_t set;
	/* the agent opens keys itself: never through an agent */
	unsetenv(KW_AGENT_ENV);
	ag.srv.store_dir = cfg->store_dir;
	KW_GUARD(kw_access_open(cfg->store_dir, &ag.srv.access));
	kw_rc rc = KW_OK;
	if (lfd < 0 && (rc = bind_socket(path, &lfd)) == KW_OK)
		bound = 1;
	if (rc == KW_OK && ((ag.fds = malloc((size_t)ag.max * sizeof(int))) == NULL ||
	                    (ag.uids = calloc((size_t)ag.max, sizeof(uid_t))) == NULL ||
	                    (ag.tids = calloc((size_t)ag.max, sizeof(pthread_t))) == NULL ||
	                    (ag.joinable = calloc((size_t)ag.max, 1)) == NULL))
		rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
	if (rc != KW_OK)
		goto out;
	for (int i = 0; i < ag.max; i++)
		ag.fds[i] = -1;
	pthread_mutex_init(&ag.mu, NULL);
	pthread_cond_init(&ag.idle, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* blocked before the first thread starts: every thread inherits it */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		rc = KW_FAIL(KW_ERR_IO, "signalfd: %s", strerror(errno));
	} else {
		kwa_log("serving store %s on %s (at most %d connections, %d per user)",
		        cfg->store_dir, bound ? path : "the socket systemd passed", ag.max,
		        ag.per_user);
		serve(&ag, lfd, sfd);
		close(lfd);
		lfd = -1;
		if (bound)
			unlink(path);
		drain(&ag);
		kwa_log("stopped (%lu malformed messages, %lu connections refused)",
		        atomic_load(&ag.srv.malformed), atomic_load(&ag.srv.refused));
		close(sfd);
	}
	pthread_cond_destroy(&ag.idle);
	pthread_mutex_destroy(&ag.mu);
out:
	if (lfd >= 0)
		close(lfd);
	free(ag.fds);
	free(ag.uids);
	free(ag.tids);
	free(ag.joinable);
	kw_access_close(ag.srv.access);
	return rc;
}
