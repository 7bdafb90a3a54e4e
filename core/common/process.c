/* see common/process.h: running deploy hooks and notification commands */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/process.h"
#include "keyward/import.h"

#define TAIL_BYTES   4096 /* stderr kept while the command runs */
#define TAIL_LINES   5    /* lines of it reported */
#define POLL_SLICE   50   /* ms between checks for the child's exit */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The core limit main() had, given back to the commands keyward runs. */
static struct rlimit core_before;
static int core_saved;

int kw_process_protect(void)
{
	if (!core_saved && getrlimit(RLIMIT_CORE, &core_before) == 0)
		core_saved = 1;
	/* the soft limit only: the hard one stays, for the commands we run */
	struct rlimit none = {0, core_saved ? core_before.rlim_max : 0};
	int ok = setrlimit(RLIMIT_CORE, &none) == 0;
	return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && ok;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keeps the last TAIL_BYTES of what the child wrote to stderr. */
typedef struct {
	char buf[TAIL_BYTES];
	size_t len;
} tail_buf;

static void tail_add(tail_buf *t, const char *p, size_t n)
{
	if (n >= sizeof(t->buf)) {
		p += n - sizeof(t->buf);
		n = sizeof(t->buf);
	}
	if (t->len + n > sizeof(t->buf)) {
		size_t drop = t->len + n - sizeof(t->buf);
		memmove(t->buf, t->buf + drop, t->len - drop);
		t->len -= drop;
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

/* The last TAIL_LINES lines, without the final newline (malloc'd). */
static char *tail_lines(const tail_buf *t)
{
	size_t end = t->len;
	while (end > 0 && (t->buf[end - 1] == '\n' || t->buf[end - 1] == '\r'))
		end--;
	size_t start = end;
	int lines = 0;
	while (start > 0) {
		if (t->buf[start - 1] == '\n' && ++lines == TAIL_LINES)
			break;
		start--;
	}
	char *s = malloc(end - start + 1);
	if (s) {
		memcpy(s, t->buf + start, end - start);
		s[end - start] = '\0';
	}
	return s;
}

static void drain(int *fd, tail_buf *t)
{
	char buf[1024];
	while (*fd >= 0) {
		ssize_t n = read(*fd, buf, sizeof(buf));
		if (n > 0) {
			tail_add(t, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN) {
			close(*fd);
			*fd = -1;
		}
		return;
	}
}

static void feed(int *fd, const kwi_process *p, size_t *off)
{
	while (*fd >= 0 && *off < p->input_len) {
		/* a socket, so MSG_NOSIGNAL: a child that exits early must not
		 * SIGPIPE us */
		ssize_t n =
		    send(*fd, p->input + *off, p->input_len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			*off += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		else
			break;
	}
	if (*fd >= 0) {
		close(*fd); /* all written (or the child stopped reading): EOF */
		*fd = -1;
	}
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child_exec(const kwi_process *p, int in, int devnull, int err)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigaction(SIGPIPE, &dfl, NULL);
	sigaction(SIGCHLD, &dfl, NULL);
	setpgid(0, 0);
	if (core_saved) /* raising the soft limit back up to the hard one: allowed */
		setrlimit(RLIMIT_CORE, &core_before);
	if (dup2(in >= 0 ? in : devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	closefrom(3);
	char *argv[] = {"sh", "-c", (char *)p->command, NULL};
	execve("/bin/sh", argv, p->env);
	_exit(127);
}

static void wait_loop(const kwi_process *p, pid_t pid, int in, int err, kwi_process_result *r)
{
	tail_buf t = {.len = 0};
	size_t off = 0;
	int status = 0, reaped = 0;
	long long deadline = now_ms() + (p->timeout_ms > 0 ? p->timeout_ms : 60000);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			reaped = 1;
		/* ECHILD: someone set SIGCHLD to SIG_IGN; the end is unknown */
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		long long left = deadline - now_ms();
		if (left <= 0) {
			/* the whole group: a hook's children go too */
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			pid_t w2;
			while ((w2 = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
				;
			reaped = w2 == pid;
			r->timed_out = 1;
			break;
		}
		struct pollfd fds[2];
		nfds_t n = 0;
		if (err >= 0)
			fds[n++] = (struct pollfd){.fd = err, .events = POLLIN};
		if (in >= 0)
			fds[n++] = (struct pollfd){.fd = in, .events = POLLOUT};
		poll(fds, n, (int)(left < POLL_SLICE ? left : POLL_SLICE));
		drain(&err, &t);
		feed(&in, p, &off);
	}
	/* What the child wrote before it ended; descendants still holding the
	 * pipe open are not waited for. */
	drain(&err, &t);
	if (err >= 0)
		close(err);
	if (in >= 0)
		close(in);
	if (reaped && WIFEXITED(status)) {
		r->exited = 1;
		r->exit_code = WEXITSTATUS(status);
	} else if (reaped && WIFSIGNALED(status))
		r->signal = WTERMSIG(status);
	r->err_tail = tail_lines(&t);
}

kw_rc kwi_process_run(const kwi_process *p, kwi_process_result *r)
{
	int errp[2] = {-1, -1}, in[2] = {-1, -1};
	memset(r, 0, sizeof(*r));
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || pipe2(errp, O_CLOEXEC) != 0 ||
	    (p->input && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)) {
		int e = errno;
		for (int i = 0; i < 2; i++) {
			if (errp[i] >= 0)
				close(errp[i]);
			if (in[i] >= 0)
				close(in[i]);
		}
		if (devnull >= 0)
			close(devnull);
		return KW_FAIL(KW_ERR_IO, "cannot run '%s': %s", p->command, strerror(e));
	}
	pid_t pid = fork();
	if (pid == 0)
		child_exec(p, in[1], devnull, errp[1]);
	int e = errno;
	close(devnull);
	close(errp[1]);
	if (in[1] >= 0)
		close(in[1]);
	if (pid < 0) {
		close(errp[0]);
		if (in[0] >= 0)
			close(in[0]);
		return KW_FAIL(KW_ERR_IO, "cannot run '%s': fork: %s", p->command, strerror(e));
	}
	setpgid(pid, pid); /* also here: no race with a kill on timeout */
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	wait_loop(p, pid, in[0], errp[0], r);
	return r->err_tail ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

int kwi_process_ok(const kwi_process_result *r)
{
	return r->exited && r->exit_code == 0 && !r->timed_out;
}

void kwi_process_describe(const kwi_process *p, const kwi_process_result *r, char *buf, size_t len)
{
	if (r->timed_out)
		snprintf(buf, len, "timed out after %d s (killed)",
		         (p->timeout_ms > 0 ? p->timeout_ms : 60000) / 1000);
	else if (r->exited)
		snprintf(buf, len, "exit status %d", r->exit_code);
	else if (r->signal)
		snprintf(buf, len, "killed by signal %d (%s)", r->signal, strsignal(r->signal));
	else
		snprintf(buf, len, "ended in an unknown way");
}

void kwi_process_result_clear(kwi_process_result *r)
{
	free(r->err_tail);
	r->err_tail = NULL;
}

void kwi_env_add(kwi_env *e, const char *name, const char *value)
{
	if (value == NULL || e->failed)
		return;
	if (e->n + 2 > e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 16;
		char **v = realloc(e->vars, cap * sizeof(*v));
		if (v == NULL) {
			e->failed = 1;
			return;
		}
		e->vars = v;
		e->cap = cap;
	}
	if (asprintf(&e->vars[e->n], "%s=%s", name, value) < 0) {
		e->failed = 1;
		return;
	}
	e->vars[++e->n] = NULL;
}

void kwi_env_add_path(kwi_env *e)
{
	const char *path = getenv("PATH");
	kwi_env_add(e, "PATH", path && path[0] ? path : DEFAULT_PATH);
}

void kwi_env_clear(kwi_env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->vars[i]);
	free(e->vars);
	memset(e, 0, sizeof(*e));
}
