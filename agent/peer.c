/* see agent.h: who is on the other end of a connection */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

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

/* The peer's supplementary groups as they were when it connected
 * (SO_PEERGROUPS, Linux 4.13): not read from /proc/PID/status, whose PID a
 * peer that exits at once could leave to another process. More groups than
 * KWA_MAX_GROUPS: the first ones only (a grant by a later group is not seen:
 * refused, never allowed by mistake). */
static size_t groups_read(int fd, uint32_t groups[KWA_MAX_GROUPS])
{
	gid_t g[KWA_MAX_GROUPS];
	socklen_t len = sizeof(g);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) != 0)
		return 0;
	size_t n = len / sizeof(g[0]);
	for (size_t i = 0; i < n && i < KWA_MAX_GROUPS; i++)
		groups[i] = (uint32_t)g[i];
	return n < KWA_MAX_GROUPS ? n : KWA_MAX_GROUPS;
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
	p->n_groups = groups_read(fd, groups);
	return 0;
}
