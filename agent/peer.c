/* see agent.h: who is on the other end of a connection */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent.h"

void kwa_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "keyward agent: %s\n", line);
}

/* The "Groups:" line of /proc/PID/status. */
static size_t groups_read(pid_t pid, uint32_t groups[KWA_MAX_GROUPS])
{
	char path[64], line[4096];
	size_t n = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		char *p = line + 7, *end = NULL;
		while (n < KWA_MAX_GROUPS) {
			unsigned long g = strtoul(p, &end, 10);
			if (end == p)
				break;
			groups[n++] = (uint32_t)g;
			p = end;
		}
		break;
	}
	fclose(f);
	return n;
}

int kwa_peer_read(int fd, kw_peer *p, uint32_t groups[KWA_MAX_GROUPS])
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
		return -1;
	p->uid = (uint32_t)cr.uid;
	p->gid = (uint32_t)cr.gid;
	p->groups = groups;
	p->n_groups = cr.pid > 0 ? groups_read(cr.pid, groups) : 0;
	return 0;
}
