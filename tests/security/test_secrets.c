/*
 * Secrets never leave keyward's guarded memory for anywhere an attacker with
 * local access could read them: the store's files (every byte, WAL and shared
 * memory included), the argv of any process, the environment of the hooks and
 * commands keyward runs, its debug output, its event log. The PIN and the
 * import password are strings that cannot turn up by chance, on a token of
 * their own. See security.cmake for what other test programs already prove.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "../cli/cli_test.h"

#define PIN      "Kw-sec-PIN-8d41b7e2"
#define PASSWORD "Kw-sec-import-pw-3c9a51"

static char env_pin[] = "KW_SEC_PIN=" PIN;
static char env_pw[] = "KW_SEC_PW=" PASSWORD;
static char env_now[] = "KEYWARD_NOW=" CLI_NOW;
/* this test's token (the harness's token directory is shared by the tests) */
static char token[32];

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/* A store with backend "pf" (PIN from a file) and "pe" (from KW_SEC_PIN) on a
 * token of its own; *dir gets a private temp dir. */
static char *secret_store(char **dir)
{
	kwt_result r;
	char src[4200];
	snprintf(token, sizeof(token), "kw-sec-%d", (int)getpid());
	cr_assert_eq(cli_status("softhsm2-util --init-token --free --label %s --so-pin 87654321 "
	                        "--pin '" PIN "' >/dev/null",
	                        token),
	             0);
	char *store = kwt_store_new(0, 0);
	*dir = kwt_tmpdir("sec");
	char *file = kwt_write_file(*dir, "pin", PIN "\n", strlen(PIN) + 1, 0600);
	snprintf(src, sizeof(src), "file:%s", file);
	const char *m = kwt_env("KW_TEST_P11_MODULE");
	char *env[] = {env_pin, env_now, NULL};
	cli_ok(&r, env, store,
	       CLI_ARGS("backend", "add", "pf", "pkcs11", "--module", m, "--token", token,
	                "--pin-source", src));
	kwt_result_free(&r);
	cli_ok(&r, env, store,
	       CLI_ARGS("backend", "add", "pe", "pkcs11", "--module", m, "--token", token,
	                "--pin-source", "env:KW_SEC_PIN"));
	kwt_result_free(&r);
	free(file);
	return store;
}

/* Occurrences of needle in the file's raw bytes. */
static int file_count(const char *path, const void *needle, size_t len)
{
	size_t n = 0;
	char *data = kwt_read_file(path, &n);
	int hits = 0;
	for (size_t i = 0; data && len <= n && i <= n - len; i++)
		hits += memcmp(data + i, needle, len) == 0;
	free(data);
	return hits;
}

static char *hex_of(const char *s, int upper)
{
	size_t n = strlen(s);
	char *h = malloc(2 * n + 1);
	cr_assert_not_null(h);
	for (size_t i = 0; i < n; i++)
		sprintf(h + 2 * i, upper ? "%02X" : "%02x", (unsigned char)s[i]);
	return h;
}

/* Every file in the store directory: the secret in no form, and the control
 * string (known to be stored) found, so the scan itself is shown to work. */
static void assert_store_bytes_clean(const char *store, const char *secret, const char *control)
{
	char *forms[] = {strdup(secret), hex_of(secret, 0), hex_of(secret, 1)};
	DIR *d = opendir(store);
	struct dirent *e;
	int files = 0, control_hits = 0;
	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL) {
		char path[4300];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", store, e->d_name);
		files++;
		for (size_t f = 0; f < 3; f++)
			cr_assert_eq(file_count(path, forms[f], strlen(forms[f])), 0,
			             "%s holds the secret (form %zu)", path, f);
		control_hits += file_count(path, control, strlen(control));
	}
	closedir(d);
	cr_assert_geq(files, 3, "expected the database, its WAL and shm in %s", store);
	cr_assert_gt(control_hits, 0, "the scan does not find '%s', known to be stored", control);
	for (size_t f = 0; f < 3; f++)
		free(forms[f]);
}

/* A sqlite3 reader that keeps the database open, so the WAL and shm stay on
 * disk with what the CLI wrote (the last connection would remove them). */
static pid_t hold_open(const char *store)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		char cmd[4300];
		int null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			_exit(126);
		snprintf(cmd, sizeof(cmd),
		         "(echo 'SELECT count(*) FROM certs;'; sleep 120) | "
		         "exec sqlite3 '%s/keyward.db' >/dev/null",
		         store);
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	/* kw-harness kills the group if this test dies first */
	char name[64], text[32];
	snprintf(name, sizeof(name), "sec-%d.pid", (int)pid);
	snprintf(text, sizeof(text), "-%d\n", (int)pid);
	free(kwt_write_file(kwt_env("KW_TEST_TMP"), name, text, strlen(text), 0600));
	usleep(300000);
	return pid;
}

static void release(pid_t pid)
{
	kill(-pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

Test(secrets, pin_and_password_are_in_no_byte_of_the_store_wal_or_events)
{
	kwt_result r;
	char *dir = NULL;
	char *store = secret_store(&dir);
	pid_t holder = hold_open(store);
	char *env[] = {env_pin, env_pw, env_now, NULL};
	/* an encrypted key to import, its password from KW_SEC_PW */
	cr_assert_eq(cli_status("cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
	                        "ec_paramgen_curve:P-256 -nodes -keyout k.pem -out c.pem -subj "
	                        "/CN=kw-sec-imported -days 30 2>/dev/null && openssl pkcs8 "
	                        "-topk8 -in k.pem -out ke.pem -passout pass:'" PASSWORD
	                        "' && cat c.pem "
	                        "ke.pem > in.pem",
	                        dir),
	             0);
	char *in = path_in(dir, "in.pem");
	const char *const *steps[] = {
	    CLI_ARGS("cert", "create", "a", "--backend", "pf", "--subject", "CN=kw-sec-a"),
	    CLI_ARGS("cert", "create", "b", "--backend", "pe", "--subject", "CN=kw-sec-b"),
	    CLI_ARGS("cert", "renew", "a"),
	    CLI_ARGS("cert", "renew", "b", "--reuse-key"),
	    CLI_ARGS("cert", "import", "c", "--backend", "pe", "--pem", in, "--password-source",
	             "env:KW_SEC_PW"),
	    CLI_ARGS("cert", "verify", "b", "--json"),
	    CLI_ARGS("events", "--json"),
	    CLI_ARGS("audit", "verify", "--json"),
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		cli_ok(&r, env, store, steps[i]);
		cli_assert_err_lacks(&r, PIN, cli_args_str(steps[i]));
		cli_assert_err_lacks(&r, PASSWORD, cli_args_str(steps[i]));
		kwt_result_free(&r);
	}
	char *wal = path_in(store, "keyward.db-wal");
	struct stat st;
	cr_assert(stat(wal, &st) == 0 && st.st_size > 0, "no WAL to search: %s", wal);
	assert_store_bytes_clean(store, PIN, "CN=kw-sec-b");
	assert_store_bytes_clean(store, PASSWORD, "kw-sec-imported");
	release(holder);
	free(wal);
	free(in);
	free(dir);
	free(store);
}

/* A script that records, while keyward runs it, its environment, its own
 * argv, its parent's argv and the argv of every process on the machine. */
static char *spy_script(const char *dir)
{
	char text[2048];
	snprintf(text, sizeof(text),
	         "#!/bin/sh\n"
	         "out='%s/spy.'$$\n"
	         "env > \"$out.env\"\n"
	         "tr '\\0' ' ' < /proc/$$/cmdline > \"$out.argv\"\n"
	         "tr '\\0' ' ' < /proc/$PPID/cmdline > \"$out.pargv\"\n"
	         "ps -e -ww -o args= > \"$out.ps\"\n"
	         "cat > /dev/null\n",
	         dir);
	return kwt_write_file(dir, "spy.sh", text, strlen(text), 0700);
}

Test(secrets, hooks_and_command_channels_see_no_pin_in_argv_or_environment)
{
	kwt_result r;
	char *dir = NULL;
	char *store = secret_store(&dir);
	char *spies = kwt_tmpdir("spies");
	char *spy = spy_script(spies);
	char *env[] = {env_pin, env_now, NULL};
	cli_ok(&r, env, store,
	       CLI_ARGS("cert", "create", "web", "--backend", "pe", "--subject", "CN=kw-sec-web"));
	kwt_result_free(&r);
	/* deploy hooks (pre, deploy, post) and a command channel for a contact */
	char *pol =
	    cli_out("'%s' --store '%s' policy show web", kwt_env("KW_TEST_KEYWARD_BIN"), store);
	json_t *p = cli_json(pol, "policy show");
	char *web_pem = path_in(spies, "web.pem");
	cli_ok(&r, env, store,
	       CLI_ARGS("deploy-target", "add", "web-files", "--cert", web_pem, "--pre", spy,
	                "--deploy", spy, "--post", spy));
	kwt_result_free(&r);
	json_t *deploy = json_pack("{s:s}", "target", "web-files");
	cr_assert_not_null(deploy);
	cr_assert_eq(json_object_set_new(p, "deploy", deploy), 0);
	char *doc = json_dumps(p, 0);
	char *pfile = kwt_write_file(dir, "policy.json", doc, strlen(doc), 0600);
	cli_ok(&r, env, store, CLI_ARGS("policy", "set", "web", pfile));
	kwt_result_free(&r);
	cli_ok(&r, env, store, CLI_ARGS("contact", "add", "ops@example.com"));
	kwt_result_free(&r);
	cli_ok(&r, env, store, CLI_ARGS("channel", "add", "spy", "command", "--command", spy));
	kwt_result_free(&r);
	/* renew: a new key on the token (the PIN in use), then deploy and notify */
	cli_ok(&r, env, store, CLI_ARGS("cert", "renew", "web"));
	kwt_result_free(&r);
	char *count = cli_out("ls '%s' | grep -c '\\.env$'", spies);
	int runs = atoi(count);
	free(count);
	cr_assert_geq(runs, 4, "expected 3 hooks and a channel command, saw %d runs", runs);
	/* the control: the spies did see keyward's own variables */
	cr_assert_eq(cli_status("grep -q '^KEYWARD_NAME=web$' '%s'/spy.*.env", spies), 0);
	cr_assert_eq(cli_status("grep -l 'keyward.*renew web' '%s'/spy.*.ps >/dev/null", spies), 0,
	             "the process listing does not show keyward itself");
	cr_assert_neq(cli_status("grep -r -l -F '" PIN "' '%s'", spies), 0,
	              "the PIN is in a hook's argv, environment or the process list: %s",
	              cli_out("grep -r -F '" PIN "' '%s'", spies));
	cr_assert_neq(cli_status("grep -r -l -F KW_SEC_PIN '%s'/spy.*.env", spies), 0,
	              "a hook inherited the pin source's variable");
	json_decref(p);
	free(web_pem);
	free(doc);
	free(pfile);
	free(pol);
	free(spy);
	free(spies);
	free(dir);
	free(store);
}

Test(secrets, keyward_debug_output_shows_no_pin)
{
	kwt_result r;
	char *dir = NULL;
	char *store = secret_store(&dir);
	char dbg[] = "KEYWARD_DEBUG=1";
	char *env[] = {env_pin, env_now, dbg, NULL};
	cli_ok(&r, env, store,
	       CLI_ARGS("cert", "create", "web", "--backend", "pe", "--subject", "CN=kw-sec-web"));
	kwt_result_free(&r);
	cli_ok(&r, env, store, CLI_ARGS("cert", "renew", "web"));
	cli_assert_err_lacks(&r, PIN, "cert renew with KEYWARD_DEBUG=1");
	kwt_result_free(&r);
	/* a wrong PIN: the error names the source, not what it held */
	char wrong[] = "KW_SEC_PIN=Kw-sec-wrong-PIN-0b7d";
	char *bad[] = {wrong, env_now, dbg, NULL};
	cli_runv(&r, bad, store, CLI_ARGS("cert", "renew", "web"));
	cr_assert_eq(r.status, 1, "a wrong PIN: exit %d", r.status);
	cli_assert_err_lacks(&r, "Kw-sec-wrong-PIN-0b7d", "renew with a wrong PIN");
	kwt_result_free(&r);
	/* the provider's trace of a key load and a signature, in openssl */
	char *log = path_in(dir, "provider.log");
	cr_assert_eq(cli_status("cd '%s' && KW_SEC_PIN='" PIN "' KEYWARD_DEBUG=1 "
	                        "KEYWARD_STORE='%s' OPENSSL_MODULES='%s' openssl pkeyutl -sign "
	                        "-provider keyward -provider default -inkey keyward:web -in "
	                        "/dev/null -rawin -digest sha256 -out sig 2>'%s'",
	                        dir, store, kwt_env("KW_TEST_PROVIDER_DIR"), log),
	             0, "provider signing failed: %s", cli_out("cat '%s'", log));
	char *trace = cli_out("cat '%s'", log);
	cr_assert(strstr(trace, "keyward: ") != NULL, "no trace: the check proves nothing");
	cr_assert(strstr(trace, PIN) == NULL, "the provider's trace shows the PIN");
	free(trace);
	free(log);
	free(dir);
	free(store);
}

Test(secrets, pin_files_that_are_fifos_or_symlinks_are_refused_at_once)
{
	kwt_result r;
	char *dir = NULL;
	char *store = secret_store(&dir);
	char *fifo = path_in(dir, "pin.fifo"), *link = path_in(dir, "pin.link");
	char *target = path_in(dir, "pin");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	cr_assert_eq(symlink(target, link), 0);
	char *dump = kwt_store_dump(store);
	const struct {
		const char *path, *says;
		int code;
	} cases[] = {{fifo, "not a regular file", 2}, {link, "cannot open pin file", 1}};
	for (size_t i = 0; i < 2; i++) {
		char src[4200];
		snprintf(src, sizeof(src), "file:%s", cases[i].path);
		time_t t0 = time(NULL);
		/* a FIFO without a writer would block a plain open(): time-boxed */
		cli_runv(&r, NULL, store,
		         CLI_ARGS("backend", "add", "x", "pkcs11", "--module",
		                  kwt_env("KW_TEST_P11_MODULE"), "--token", token, "--pin-source",
		                  src));
		cli_assert_error(&r, cases[i].code, src);
		cli_assert_err_has(&r, cases[i].says, src);
		cli_assert_err_has(&r, cases[i].path, src);
		cr_assert_leq(time(NULL) - t0, 10, "%s: took %ld s", src, (long)(time(NULL) - t0));
		kwt_result_free(&r);
	}
	char *after = kwt_store_dump(store);
	cr_assert_str_eq(after, dump, "a refused backend changed the store");
	free(after);
	free(dump);
	free(target);
	free(link);
	free(fifo);
	free(dir);
	free(store);
}
