/*
 * /proc helpers of the TLS server tests: which processes of a server are
 * alive, which are its workers, what they have loaded. A zombie counts as
 * gone.
 */
#ifndef KW_TLS_PROC_H
#define KW_TLS_PROC_H

#include <sys/types.h>

/* The process exists and is not a zombie. */
int tls_proc_alive(pid_t pid);

/* Some process of process group pgid is alive. */
int tls_proc_group_alive(pid_t pgid);

/* Live children of ppid whose title (first word of /proc/PID/cmdline) is
 * exactly title: up to max into out, and their number. */
int tls_proc_children(pid_t ppid, const char *title, pid_t *out, int max);

/* The process has a file whose path contains needle mapped (/proc/PID/maps):
 * 1 yes, 0 no, -1 unreadable. */
int tls_proc_maps(pid_t pid, const char *needle);

#endif
