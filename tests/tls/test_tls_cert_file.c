/*
 * The certificate file a TLS server reads is written by `keyward cert export
 * --out FILE`. A regular file is replaced atomically (a server never reads
 * half a certificate). Anything else at that path is refused and left as it
 * is (issue 14, item 6): a symbolic link (root exporting into a directory
 * another user can write overwrote a root-only file through a planted link),
 * a device node (as root, `--out /dev/null` must not turn /dev/null into a
 * regular file), a FIFO (a planted one would take the data or hang keyward).
 * Standard output is `--out -`.
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

Test(cert_file, export_into_a_character_device_is_refused_and_keeps_the_device)
{
	char *dir = NULL, *store = store_with_cert(&dir), *path = NULL;
	cr_assert(asprintf(&path, "%s/null", dir) > 0);
	/* a private twin of /dev/null: the real one is not ours to risk */
	cr_assert_eq(mknod(path, S_IFCHR | 0666, makedev(1, 3)), 0, "mknod: %s", strerror(errno));
	kwt_result r;
	kwt_kw(&r, store, "cert", "export", "web", "--out", path, NULL);
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISCHR(st.st_mode),
	          "keyward cert export --out %s (a character device, 1:3 like /dev/null) replaced "
	          "it with a regular file of %lld bytes (exit %d, stderr: %s)",
	          path, (long long)st.st_size, r.status, r.err);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_assert(strstr(r.err, "not a regular file") && strstr(r.err, path), "%s", r.err);
	cr_assert_eq(kwt_count_lines(r.err), 1, "%s", r.err);
	kwt_result_free(&r);
	free(path);
	free(store);
	free(dir);
}

Test(cert_file, export_into_a_fifo_is_refused_without_opening_it)
{
	char *dir = NULL, *store = store_with_cert(&dir), *path = NULL;
	cr_assert(asprintf(&path, "%s/pipe", dir) > 0);
	cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
	/* no reader: opening the FIFO to write would hang, so exiting proves it
	 * was not opened */
	kwt_result r;
	kwt_kw(&r, store, "cert", "export", "web", "--out", path, NULL);
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISFIFO(st.st_mode), "the FIFO was replaced");
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_assert(strstr(r.err, "not a regular file"), "%s", r.err);
	kwt_result_free(&r);
	free(path);
	free(store);
	free(dir);
}

/* The attack: root runs an export (or metrics --textfile) into a directory
 * another user can write; that user planted out.pem -> a root-only file. */
Test(cert_file, output_through_a_planted_link_is_refused_and_the_target_kept)
{
	char *dir = NULL, *store = store_with_cert(&dir), *link = NULL, *tf = NULL;
	char *secret = kwt_write_file(dir, "shadow", "root-only\n", 10, 0600);
	cr_assert(asprintf(&link, "%s/out.pem", dir) > 0 && asprintf(&tf, "%s/kw.prom", dir) > 0);
	cr_assert_eq(symlink(secret, link), 0);
	cr_assert_eq(symlink(secret, tf), 0);
	const char *const cmds[][8] = {
	    {"cert", "export", "web", "--out", link, NULL},
	    {"cert", "csr", "web", "--out", link, NULL},
	    {"cert", "key-ref", "web", "--out", link, NULL},
	    {"metrics", "--textfile", tf, NULL},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		kwt_result r;
		kwt_kw_args(&r, NULL, store, cmds[i]);
		cr_assert_eq(r.status, 1, "%s %s: exit %d, stderr: %s", cmds[i][0], cmds[i][1],
		             r.status, r.err);
		cr_assert(strstr(r.err, "symbolic link"), "%s", r.err);
		kwt_result_free(&r);
		char *kept = kwt_read_file(secret, NULL);
		cr_assert_str_eq(kept, "root-only\n", "%s %s wrote through the link", cmds[i][0],
		                 cmds[i][1]);
		free(kept);
		struct stat st;
		cr_assert_eq(lstat(i == 3 ? tf : link, &st), 0);
		cr_assert(S_ISLNK(st.st_mode));
	}
	/* a regular file in the same directory is written as always */
	kwt_result r;
	cr_assert_eq(unlink(link), 0);
	kwt_kw(&r, store, "cert", "export", "web", "--out", link, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	free(secret);
	free(link);
	free(tf);
	free(store);
	free(dir);
}
