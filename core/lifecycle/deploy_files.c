/* see lifecycle/deploy.h: writing the deploy files atomically */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <keyward/lifecycle.h>

#include "lifecycle/deploy.h"

#define MODE_CERT    0644
#define MODE_KEY_REF 0640 /* names the key, holds no secret; still not for everyone */

/* A decimal id, or -1. */
static long numeric_id(const char *text)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(text, &end, 10);
	return text[0] && !errno && *end == '\0' && v >= 0 && v < 0x7fffffff ? v : -1;
}

static kw_rc resolve_user(const char *who, const char *owner, uid_t *uid)
{
	long id = numeric_id(owner);
	if (id >= 0) {
		*uid = (uid_t)id;
		return KW_OK;
	}
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwnam_r(owner, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return KW_FAIL(KW_ERR_NOT_FOUND, "%s: owner: no such user '%s' on this host", who,
		               owner);
	*uid = pw.pw_uid;
	return KW_OK;
}

static kw_rc resolve_group(const char *who, const char *group, gid_t *gid)
{
	long id = numeric_id(group);
	if (id >= 0) {
		*gid = (gid_t)id;
		return KW_OK;
	}
	struct group gr, *res = NULL;
	char buf[16384];
	if (getgrnam_r(group, &gr, buf, sizeof(buf), &res) != 0 || res == NULL)
		return KW_FAIL(KW_ERR_NOT_FOUND, "%s: group: no such group '%s' on this host", who,
		               group);
	*gid = gr.gr_gid;
	return KW_OK;
}

static kw_rc parse_mode(const char *who, const char *text, int *mode)
{
	char *end = NULL;
	long v = strtol(text, &end, 8);
	if (text[0] == '\0' || *end != '\0' || strlen(text) > 4 || v < 0 || v > 0777)
		return KW_FAIL(KW_ERR_PARSE,
		               "%s: mode: must be an octal string such as \"0640\" (at most 0777)",
		               who);
	*mode = (int)v;
	return KW_OK;
}

kw_rc kwi_deploy_ids(const char *who, const kwi_deploy_conf *c, uid_t *uid, gid_t *gid, int *mode)
{
	/* defaults: whoever runs keyward (root under the systemd timer) */
	*uid = geteuid();
	*gid = getegid();
	*mode = -1;
	if (c->owner)
		KW_GUARD(resolve_user(who, c->owner, uid));
	if (c->group)
		KW_GUARD(resolve_group(who, c->group, gid));
	if (c->mode)
		KW_GUARD(parse_mode(who, c->mode, mode));
	return KW_OK;
}

kw_rc kwi_deploy_files_prepare(kwi_deploy_job *d)
{
	char *cert = NULL, *full = NULL;
	kwi_deploy_target *t = d->t;
	kw_rc rc = KW_OK;
	/* the public calls clear the error record: nothing is recorded yet */
	if (t[0].kind || t[1].kind || t[2].kind) {
		if ((rc = kwi_cert_export(d->s, d->name, 0, 0, &cert)) != KW_OK ||
		    (rc = kwi_cert_export(d->s, d->name, 0, 1, &full)) != KW_OK)
			goto out;
		size_t n = strlen(cert);
		if (strncmp(full, cert, n) != 0) {
			rc = KW_FAIL(KW_ERR_INTERNAL, "the full chain does not start with the "
			                              "certificate");
			goto out;
		}
		t[0].data = strdup(cert);
		t[1].data = strdup(full + n); /* empty for a self-signed certificate */
		t[2].data = strdup(full);
	}
	if (t[3].kind && (rc = kwi_cert_key_ref(d->s, d->name, "keyward", &t[3].data)) != KW_OK)
		goto out;
	for (size_t i = 0; i < KWI_DEPLOY_TARGETS; i++) {
		if (t[i].kind && t[i].data == NULL) {
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
			goto out;
		}
		t[i].len = t[i].data ? strlen(t[i].data) : 0;
		t[i].mode = d->mode >= 0 ? d->mode : i == 3 ? MODE_KEY_REF : MODE_CERT;
	}
out:
	free(cert);
	free(full);
	return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Temp file next to the target: written, owned, moded, on disk. */
static kw_rc stage(kwi_deploy_job *d, kwi_deploy_target *t)
{
	const char *step = "create a temporary file";
	if (asprintf(&t->tmp, "%s.kw-tmp.XXXXXX", t->path) < 0) {
		t->tmp = NULL;
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	int fd = mkostemp(t->tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(t->tmp);
		t->tmp = NULL;
		return KW_FAIL(KW_ERR_IO, "%s: cannot write deploy.%s %s: %s; no file was changed",
		               d->who, t->kind, t->path, strerror(e));
	}
	int ok = 0;
	if (write_all(fd, t->data, t->len) != 0)
		step = "write";
	else if (fchown(fd, d->uid, d->gid) != 0)
		step = "set the owner/group of";
	else if (fchmod(fd, (mode_t)t->mode) != 0)
		step = "set the mode of";
	else if (fsync(fd) != 0)
		step = "sync";
	else
		ok = 1;
	int e = errno;
	close(fd);
	if (ok)
		return KW_OK;
	return KW_FAIL(KW_ERR_IO,
	               "%s: cannot %s deploy.%s %s (uid %ld, gid %ld): %s; no file was changed",
	               d->who, step, t->kind, t->path, (long)d->uid, (long)d->gid, strerror(e));
}

static void sync_dir(const char *path)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

static void unstage(kwi_deploy_target *t)
{
	if (t->tmp) {
		unlink(t->tmp);
		free(t->tmp);
		t->tmp = NULL;
	}
}

static void drop_backup(kwi_deploy_target *t)
{
	if (t->bak) {
		unlink(t->bak);
		free(t->bak);
		t->bak = NULL;
	}
}

/* A hard link to the file t replaces (t->bak), so that a rename failing
 * later can put it back: the old file stays in place meanwhile. None when
 * there is no file (or a directory, which no rename replaces). A file that
 * cannot be linked (immutable, say) stops the deploy before anything moved. */
static kw_rc keep_old(kwi_deploy_job *d, kwi_deploy_target *t)
{
	struct stat st;
	if (lstat(t->path, &st) != 0) {
		if (errno == ENOENT)
			return KW_OK;
		return KW_FAIL(KW_ERR_IO, "%s: cannot read deploy.%s %s: %s; no file was changed",
		               d->who, t->kind, t->path, strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		return KW_OK;
	for (int tries = 0; tries < 16; tries++) {
		if (asprintf(&t->bak, "%s.kw-old.XXXXXX", t->path) < 0) {
			t->bak = NULL;
			return KW_FAIL(KW_ERR_NOMEM, "out of memory");
		}
		/* a fresh name, then the link in its place (not following a link) */
		int fd = mkostemp(t->bak, O_CLOEXEC);
		int e = errno;
		if (fd >= 0) {
			close(fd);
			unlink(t->bak);
			if (linkat(AT_FDCWD, t->path, AT_FDCWD, t->bak, 0) == 0)
				return KW_OK;
			e = errno;
		}
		free(t->bak);
		t->bak = NULL;
		if (fd < 0 || e != EEXIST)
			return KW_FAIL(KW_ERR_IO,
			               "%s: cannot keep the old deploy.%s %s to put it back: %s; "
			               "no file was changed",
			               d->who, t->kind, t->path, strerror(e));
	}
	return KW_FAIL(KW_ERR_IO,
	               "%s: cannot keep the old deploy.%s %s: no free name; no file "
	               "was changed",
	               d->who, t->kind, t->path);
}

/* Undoes t's rename: its old file back (atomically), or no file where there
 * was none. 0, or -1 with errno. */
static int put_back(kwi_deploy_target *t)
{
	if (!t->placed)
		return 0;
	if (t->bak) {
		if (rename(t->bak, t->path) != 0)
			return -1;
		free(t->bak);
		t->bak = NULL;
	} else if (unlink(t->path) != 0)
		return -1;
	t->placed = 0;
	sync_dir(t->path);
	return 0;
}

/* After the rename of failed went wrong (the error is recorded): every file
 * placed before it is put back. One that cannot be is said in the message. */
static kw_rc undo(kwi_deploy_job *d, const kwi_deploy_target *failed, int e)
{
	const kwi_deploy_target *stuck = NULL;
	int stuck_e = 0;
	for (size_t i = 0; i < KWI_DEPLOY_TARGETS; i++)
		if (put_back(&d->t[i]) != 0 && stuck == NULL) {
			stuck = &d->t[i];
			stuck_e = errno;
		}
	if (stuck)
		return KW_FAIL(KW_ERR_IO,
		               "%s: cannot replace deploy.%s %s: %s; and deploy.%s %s could not be "
		               "put back: %s",
		               d->who, failed->kind, failed->path, strerror(e), stuck->kind,
		               stuck->path, strerror(stuck_e));
	return KW_FAIL(KW_ERR_IO, "%s: cannot replace deploy.%s %s: %s; no file was changed",
	               d->who, failed->kind, failed->path, strerror(e));
}

static void report_files(kwi_deploy_job *d)
{
	json_t *files = json_object_get(d->report, "files");
	for (size_t i = 0; i < KWI_DEPLOY_TARGETS; i++) {
		const kwi_deploy_target *t = &d->t[i];
		char mode[8];
		if (t->kind == NULL)
			continue;
		snprintf(mode, sizeof(mode), "%04o", (unsigned)t->mode);
		json_array_append_new(files,
		                      json_pack("{s:s,s:s,s:s,s:I,s:I}", "kind", t->kind, "path",
		                                t->path, "mode", mode, "uid", (json_int_t)d->uid,
		                                "gid", (json_int_t)d->gid));
	}
}

kw_rc kwi_deploy_files_write(kwi_deploy_job *d)
{
	kw_rc rc = KW_OK;
	for (size_t i = 0; i < KWI_DEPLOY_TARGETS && rc == KW_OK; i++)
		if (d->t[i].kind)
			rc = stage(d, &d->t[i]);
	for (size_t i = 0; i < KWI_DEPLOY_TARGETS && rc == KW_OK; i++)
		if (d->t[i].kind)
			rc = keep_old(d, &d->t[i]);
	for (size_t i = 0; i < KWI_DEPLOY_TARGETS && rc == KW_OK; i++) {
		kwi_deploy_target *t = &d->t[i];
		if (t->kind == NULL)
			continue;
		if (rename(t->tmp, t->path) != 0) {
			rc = undo(d, t, errno);
			break;
		}
		t->placed = 1;
		free(t->tmp);
		t->tmp = NULL;
		sync_dir(t->path);
	}
	if (rc == KW_OK)
		report_files(d);
	for (size_t i = 0; i < KWI_DEPLOY_TARGETS; i++) {
		unstage(&d->t[i]);
		drop_backup(&d->t[i]);
		d->t[i].placed = 0;
	}
	return rc;
}

void kwi_deploy_job_clear(kwi_deploy_job *d)
{
	for (size_t i = 0; i < KWI_DEPLOY_TARGETS; i++) {
		unstage(&d->t[i]);
		drop_backup(&d->t[i]);
		free(d->t[i].data);
	}
	kwi_env_clear(&d->env);
	kwi_policy_free(d->policy);
	kwi_deploy_conf_clear(&d->conf);
	json_decref(d->report);
	free(d->failed_stderr);
}
