/* see tls_proc.h */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls_proc.h"

/* State, parent and process group from /proc/PID/stat; 0 if it is gone. */
static int proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name in parentheses may hold anything: parse after the last ')' */
	char *p = strrchr(buf, ')');
	int pp = 0, pg = 0;
	if (p == NULL || sscanf(p + 1, " %c %d %d", state, &pp, &pg) != 3)
		return 0;
	*ppid = pp;
	*pgrp = pg;
	return 1;
}

int tls_proc_alive(pid_t pid)
{
	char st;
	pid_t pp, pg;
	return proc_stat(pid, &st, &pp, &pg) && st != 'Z';
}

/* Calls fn for every live process; stops when it returns nonzero. */
static int each_process(int (*fn)(pid_t pid, pid_t ppid, pid_t pgrp, void *arg), void *arg)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int stop = 0;
	while (d && !stop && (e = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		char st;
		pid_t pp, pg;
		if (*end == '\0' && pid > 0 && proc_stat((pid_t)pid, &st, &pp, &pg) && st != 'Z')
			stop = fn((pid_t)pid, pp, pg, arg);
	}
	if (d)
		closedir(d);
	return stop;
}

static int in_group(pid_t pid, pid_t ppid, pid_t pgrp, void *arg)
{
	(void)pid;
	(void)ppid;
	return pgrp == *(pid_t *)arg;
}

int tls_proc_group_alive(pid_t pgid)
{
	return each_process(in_group, &pgid);
}

typedef struct {
	pid_t ppid;
	const char *title;
	pid_t *out;
	int max, n;
} children;

static int child_of(pid_t pid, pid_t ppid, pid_t pgrp, void *arg)
{
	children *c = arg;
	char path[64], title[256] = "";
	(void)pgrp;
	if (ppid != c->ppid || c->n >= c->max)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(title, 1, sizeof(title) - 1, f);
	fclose(f);
	title[n] = '\0';
	if (strcmp(title, c->title) == 0)
		c->out[c->n++] = pid;
	return 0;
}

int tls_proc_children(pid_t ppid, const char *title, pid_t *out, int max)
{
	children c = {ppid, title, out, max, 0};
	each_process(child_of, &c);
	return c.n;
}

int tls_proc_maps(pid_t pid, const char *needle)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	int found = 0;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}
