/*
 * A process that holds a secret leaves no core file (issue 14, item 7). The
 * attack: kill -ABRT of `cert import --shred-input` while the device was slow
 * left a core holding the imported EC scalar. Here p11-barrier.so stops the
 * import inside C_CreateObject of the private key (the key is in keyward's
 * memory then), the test kills it with SIGABRT, and no core appears, while a
 * control process killed the same way in the same conditions does dump one
 * (so the test would see a core if keyward left one).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "../cli/cli_test.h"

#define PIN "Kw-core-PIN-51c0"

static char pattern_before[256];

/* The kernel writes "core..." into the dying process's cwd: a plain pattern
 * is needed to see it; a pipe (systemd-coredump, apport) is set aside for
 * the test and put back after. */
static void core_pattern_plain(void)
{
	char *p = kwt_read_file("/proc/sys/kernel/core_pattern", NULL);
	cr_assert_not_null(p, "cannot read kernel.core_pattern");
	snprintf(pattern_before, sizeof(pattern_before), "%s", cli_trim(p));
	free(p);
	if (strncmp(pattern_before, "core", 4) == 0)
		return;
	cr_assert_eq(cli_status("echo core > /proc/sys/kernel/core_pattern"), 0,
	             "kernel.core_pattern is '%s' and cannot be set to 'core'", pattern_before);
}

static void core_pattern_back(void)
{
	if (pattern_before[0] && strncmp(pattern_before, "core", 4) != 0) {
		FILE *f = fopen("/proc/sys/kernel/core_pattern", "w");
		if (f) {
			fprintf(f, "%s\n", pattern_before);
			fclose(f);
		}
	}
}

/* How many files named core* dir holds. */
static int cores_in(const char *dir)
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, "core", 4) == 0;
	closedir(d);
	return n;
}

/* In the child: dump cores without limit, in dir. */
static void child_setup(const char *dir)
{
	struct rlimit all = {RLIM_INFINITY, RLIM_INFINITY};
	if (chdir(dir) != 0 || setrlimit(RLIMIT_CORE, &all) != 0)
		_exit(126);
}

static int wait_status(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

Test(core_dump, killed_import_leaves_no_core_with_the_key, .fini = core_pattern_back)
{
	kwt_result r;
	char *dir = kwt_tmpdir("core");
	char control[4200], run[4200], marker[4200], token[48];
	snprintf(control, sizeof(control), "%s/control", dir);
	snprintf(run, sizeof(run), "%s/run", dir);
	snprintf(marker, sizeof(marker), "%s/held", dir);
	cr_assert_eq(mkdir(control, 0700), 0);
	cr_assert_eq(mkdir(run, 0700), 0);
	core_pattern_plain();

	/* the control: the same conditions make a core */
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		child_setup(control);
		raise(SIGABRT);
		_exit(1);
	}
	int st = wait_status(pid);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	cr_assert(WCOREDUMP(st), "the control process dumped no core: this test cannot see one");
	cr_assert_geq(cores_in(control), 1, "the control's core is not in %s", control);

	/* a store whose backend goes through p11-barrier to this test's token */
	snprintf(token, sizeof(token), "kw-core-%d", (int)getpid());
	cr_assert_eq(cli_status("softhsm2-util --init-token --free --label %s --so-pin 87654321 "
	                        "--pin " PIN " >/dev/null",
	                        token),
	             0);
	cr_assert_eq(setenv("KWB_P11_BARRIER_REAL", kwt_env("KW_TEST_P11_MODULE"), 1), 0);
	cr_assert_eq(setenv("KW_CORE_PIN", PIN, 1), 0);
	char *store = kwt_store_new(0, 0);
	cli_ok(&r, NULL, store,
	       CLI_ARGS("backend", "add", "p", "pkcs11", "--module", kwt_env("KW_TEST_P11_BARRIER"),
	                "--token", token, "--pin-source", "env:KW_CORE_PIN"));
	kwt_result_free(&r);

	/* an EC key whose scalar the core would show */
	cr_assert_eq(cli_status("cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
	                        "ec_paramgen_curve:P-256 -nodes -keyout k.pem -out c.pem -subj "
	                        "/CN=kw-core -days 30 2>/dev/null && cat c.pem k.pem > in.pem",
	                        dir),
	             0);
	char *scalar_hex = cli_out("openssl pkey -in '%s/k.pem' -text -noout | sed -n "
	                           "'/^priv:/,/^pub:/{/^ /p}' | tr -d ' :\\n' | sed 's/^00//'",
	                           dir);
	cr_assert_eq(strlen(scalar_hex), 64, "cannot read the scalar: '%s'", scalar_hex);
	unsigned char scalar[32];
	for (int i = 0; i < 32; i++)
		cr_assert_eq(sscanf(scalar_hex + 2 * i, "%2hhx", &scalar[i]), 1);

	char in[4200];
	snprintf(in, sizeof(in), "%s/in.pem", dir);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		child_setup(run);
		setenv("KWB_P11_BARRIER_HOLD_CREATE", marker, 1);
		int null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
			_exit(126);
		execl(kwt_env("KW_TEST_KEYWARD_BIN"), "keyward", "--store", store, "cert", "import",
		      "k", "--backend", "p", "--pem", in, "--shred-input", (char *)NULL);
		_exit(127);
	}
	int held = 0;
	for (int i = 0; i < 1200 && !held; i++) { /* up to 2 min under valgrind */
		held = access(marker, F_OK) == 0;
		if (!held)
			usleep(100000);
	}
	if (!held)
		kill(pid, SIGKILL);
	cr_assert(held, "the import never reached C_CreateObject of the private key");
	cr_assert_eq(kill(pid, SIGABRT), 0);
	st = wait_status(pid);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status 0x%x", st);
	cr_assert(!WCOREDUMP(st), "keyward dumped core while holding an imported key");
	cr_assert_eq(cores_in(run), 0, "a core file is in %s", run);

	/* and the key is in no file the run left behind */
	DIR *d = opendir(run);
	cr_assert_not_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char path[8400];
		size_t n = 0;
		snprintf(path, sizeof(path), "%s/%s", run, e->d_name);
		char *data = e->d_name[0] == '.' ? NULL : kwt_read_file(path, &n);
		for (size_t i = 0; data && n >= sizeof(scalar) && i <= n - sizeof(scalar); i++)
			cr_assert_neq(memcmp(data + i, scalar, sizeof(scalar)), 0,
			              "%s holds the key", path);
		free(data);
	}
	closedir(d);
	free(scalar_hex);
	free(store);
	free(dir);
}
