/*
 * The certificate file a TLS server reads is written by `keyward cert export
 * --out FILE`. A regular file is replaced atomically (a server never reads
 * half a certificate); anything else at that path (a device node such as
 * /dev/null or /dev/stdout's target, a FIFO a deploy script reads from)
 * must be written into or refused, never replaced by a regular file: as
 * root, `--out /dev/null` would otherwise turn the system's /dev/null into
 * a regular file.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "kwtest.h"

/* A store with certificate "web" in the SoftHSM token, and a fresh dir. */
static char *store_with_cert(char **dir)
{
	char *store = kwt_store_new(0, 1);
	kwt_result r;
	kwt_kw(&r, store, "cert", "create", "web", "--backend", "hsm", "--subject", "CN=localhost",
	       NULL);
	cr_assert_eq(r.status, 0, "cert create: %s", r.err);
	kwt_result_free(&r);
	*dir = kwt_tmpdir("out");
	return store;
}

Test(cert_file, export_regular_file_is_replaced_with_the_certificate)
{
	char *dir = NULL, *store = store_with_cert(&dir);
	char *path = kwt_write_file(dir, "cert.pem", "old\n", 4, 0644);
	kwt_result r;
	kwt_kw(&r, store, "cert", "export", "web", "--out", path, NULL);
	cr_assert_eq(r.status, 0, "cert export: %s", r.err);
	char *pem = kwt_read_file(path, NULL);
	cr_assert(pem && strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0, "%s", pem);
	kwt_result_free(&r);
	free(pem);
	free(path);
	free(store);
	free(dir);
}

Test(cert_file, export_into_a_character_device_keeps_the_device)
{
	char *dir = NULL, *store = store_with_cert(&dir), *path = NULL;
	cr_assert(asprintf(&path, "%s/null", dir) > 0);
	/* a private twin of /dev/null: the real one is not ours to risk */
	if (mknod(path, S_IFCHR | 0666, makedev(1, 3)) != 0)
		cr_skip_test("mknod needs root (CAP_MKNOD): %s", strerror(errno));
	kwt_result r;
	kwt_kw(&r, store, "cert", "export", "web", "--out", path, NULL);
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISCHR(st.st_mode),
	          "keyward cert export --out %s (a character device, 1:3 like /dev/null) replaced "
	          "it with a regular file of %lld bytes (exit %d, stderr: %s)",
	          path, (long long)st.st_size, r.status, r.err);
	cr_assert_eq(r.status, 0, "writing into a device must work like a shell redirect: %s",
	             r.err);
	kwt_result_free(&r);
	free(path);
	free(store);
	free(dir);
}

Test(cert_file, export_into_a_fifo_writes_through)
{
	char *dir = NULL, *store = store_with_cert(&dir), *path = NULL, *got = NULL;
	cr_assert(asprintf(&path, "%s/pipe", dir) > 0 && asprintf(&got, "%s/got", dir) > 0);
	cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
	/* a reader, as a deploy script would have; timeout ends it if nothing comes
	 * (started with system(): kwt_sh_out would wait for it, it inherits the pipe) */
	cr_assert_eq(kwt_sh("timeout 5 cat '%s' >'%s' 2>/dev/null </dev/null & echo $! >'%s.pid'",
	                    path, got, got),
	             0);
	char *pid = NULL;
	cr_assert(asprintf(&pid, "%s.pid", got) > 0);
	char *pid_text = kwt_read_file(pid, NULL);
	pid_t reader = pid_text ? (pid_t)atoi(pid_text) : 0;
	cr_assert_gt(reader, 0, "no reader pid in %s", pid);
	free(pid_text);
	kwt_result r;
	kwt_kw(&r, store, "cert", "export", "web", "--out", path, NULL);
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0);
	int fifo = S_ISFIFO(st.st_mode);
	if (!fifo || r.status != 0)
		kill(reader, SIGTERM); /* it would wait for a writer in vain */
	cr_assert(fifo,
	          "keyward cert export --out %s (a FIFO) replaced it with a regular file "
	          "(exit %d, stderr: %s); its reader never gets the certificate",
	          path, r.status, r.err);
	cr_assert_eq(r.status, 0, "export into a FIFO failed: %s", r.err);
	for (int i = 0; i < 50 && kwt_sh("grep -q 'END CERTIFICATE' '%s'", got) != 0; i++)
		usleep(100 * 1000);
	cr_assert_eq(kwt_sh("grep -q 'END CERTIFICATE' '%s'", got), 0,
	             "export said it wrote the FIFO but the reader got nothing");
	kwt_result_free(&r);
	free(pid);
	free(got);
	free(path);
	free(store);
	free(dir);
}
