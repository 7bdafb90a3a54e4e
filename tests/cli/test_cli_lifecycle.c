/*
 * keyward cert versions | rollback | set | delete | recover | purge | deleted,
 * keyward config and keyward metrics, driven through the real binary.
 */
#include "cli_devices.h"

static char *env_now(const char *now)
{
	char *e = NULL;
	cr_assert(asprintf(&e, "KEYWARD_NOW=%s", now) > 0);
	return e;
}

static void run_at(kwt_result *r, const char *now, const char *store, const char *const *args)
{
	char *e = env_now(now);
	char *env[] = {e, NULL};
	cli_ok(r, env, store, args);
	free(e);
}

static json_t *run_json(const char *store, const char *const *args)
{
	kwt_result r;
	cli_ok(&r, NULL, store, args);
	json_t *j = cli_json(r.out, cli_args_str(args));
	kwt_result_free(&r);
	return j;
}

static int current_version(const char *store, const char *name)
{
	json_t *j = cli_show(store, name, 0);
	int v = (int)json_integer_value(json_object_get(j, "version"));
	json_decref(j);
	return v;
}

/* SHA-256 (hex) of the certificate object the token keeps for the key CKA_ID. */
static char *token_cert_sha256(const char *id)
{
	char *dir = kwt_tmpdir("p11cert");
	char *hex = cli_out("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                    "--read-object --type cert --id %s -o '%s/c.der' >/dev/null 2>&1 && "
	                    "openssl x509 -inform DER -in '%s/c.der' -noout -fingerprint -sha256",
	                    kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                    kwt_env("KW_TEST_P11_PIN"), id, dir, dir);
	free(dir);
	cr_assert(strstr(hex, "Fingerprint=") != NULL, "no certificate object for %s: %s", id, hex);
	return cli_hex_norm(hex);
}

/* ---- versions and rollback ---- */

Test(cli_lifecycle, versions_shows_every_version_as_cert_show_does)
{
	char *store = kwt_store_new(1, 0);
	kwt_result r;
	cli_create(store, CLI_NOW, "web", "tpm", "ec-p256", "CN=web.example", 90, NULL);
	run_at(&r, CLI_LATER, store, CLI_ARGS("cert", "renew", "web"));
	kwt_result_free(&r);
	run_at(&r, CLI_LATER, store, CLI_ARGS("cert", "renew", "web", "--reuse-key"));
	kwt_result_free(&r);
	json_t *list = run_json(store, CLI_ARGS("cert", "versions", "web", "--json"));
	cr_assert(json_is_array(list));
	cr_assert_eq(json_array_size(list), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *want = cli_show(store, "web", (int)i + 1);
		/* the access list is the certificate's, not a version's */
		cr_assert(json_is_array(json_object_get(want, "access")));
		json_object_del(want, "access");
		cr_assert(json_equal(json_array_get(list, i), want),
		          "versions[%zu] is not cert show --version %zu", i, i + 1);
		cli_assert_jbool(json_array_get(list, i), "current", i == 2, "versions");
		json_decref(want);
	}
	json_decref(list);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "versions", "web"));
	cr_assert_eq(kwt_count_lines(r.out), 4, "%s", r.out);
	cr_assert(strstr(r.out, "   3 *   active") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "   1     superseded") != NULL, "%s", r.out);
	kwt_result_free(&r);
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "versions", "nope");
	CLI_REFUSED(store, 2, "NAME", "cert", "versions");
	free(store);
}

Test(cli_lifecycle, rollback_moves_current_and_refuses_what_it_cannot_do)
{
	char *store = kwt_store_new(0, 1);
	kwt_result r;
	cli_create(store, CLI_NOW, "api", "hsm", "ec-p256", "CN=api.example", 30, NULL);
	json_t *v1 = cli_show(store, "api", 1);
	const char *id =
	    cli_js(json_object_get(json_object_get(v1, "key"), "attributes"), "CKA_ID");
	/* the same key: the token's one certificate object for it now holds version 2 */
	run_at(&r, "2030-01-20T00:00:00Z", store, CLI_ARGS("cert", "renew", "api", "--reuse-key"));
	kwt_result_free(&r);
	json_t *v2 = cli_show(store, "api", 2);
	char *on_token = token_cert_sha256(id);
	cr_assert_str_eq(on_token, cli_js(v2, "thumbprint_sha256"));
	free(on_token);
	run_at(&r, "2030-01-20T00:00:00Z", store, CLI_ARGS("cert", "rollback", "api", "1"));
	cr_assert_str_eq(r.out, "rolled back api: version 1 is current\n");
	kwt_result_free(&r);
	json_t *cur = cli_show(store, "api", 0);
	cr_assert_eq(json_integer_value(json_object_get(cur, "version")), 1);
	cr_assert_str_eq(cli_js(cur, "status"), "active");
	cr_assert_str_eq(cli_js(cur, "thumbprint_sha256"), cli_js(v1, "thumbprint_sha256"));
	json_decref(v2);
	v2 = cli_show(store, "api", 2);
	cr_assert_str_eq(cli_js(v2, "status"), "superseded");
	json_decref(cur);
	json_decref(v2);
	/* the token's certificate object follows: PKCS#11 software sees version 1 */
	on_token = token_cert_sha256(id);
	cr_assert_str_eq(on_token, cli_js(v1, "thumbprint_sha256"));
	free(on_token);

	/* version 1 expired on 2030-01-31 */
	char *late = env_now("2030-02-01T00:00:00Z");
	char *env[] = {late, NULL};
	run_at(&r, "2030-01-20T00:00:00Z", store, CLI_ARGS("cert", "rollback", "api", "2"));
	kwt_result_free(&r);
	cli_refused(store, env, 1, "expired", CLI_ARGS("cert", "rollback", "api", "1"), NULL);
	CLI_REFUSED(store, 1, "no version 9", "cert", "rollback", "api", "9");
	CLI_REFUSED(store, 1, "already current", "cert", "rollback", "api", "2");
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "rollback", "nope", "1");
	CLI_REFUSED(store, 2, "VERSION", "cert", "rollback", "api", "one");
	CLI_REFUSED(store, 2, "VERSION", "cert", "rollback", "api", "0");
	CLI_REFUSED(store, 2, "NAME and VERSION", "cert", "rollback", "api");
	/* version 1's key deleted behind keyward's back */
	cr_assert_eq(cli_status("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                        "--delete-object --type privkey --id %s >/dev/null 2>&1",
	                        kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                        kwt_env("KW_TEST_P11_PIN"), id),
	             0);
	char *early = env_now("2030-01-20T00:00:00Z");
	char *env2[] = {early, NULL};
	cli_refused(store, env2, 1, "key is gone", CLI_ARGS("cert", "rollback", "api", "1"), NULL);
	cr_assert_eq(current_version(store, "api"), 2);
	free(late);
	free(early);
	json_decref(v1);
	free(store);
}

/* ---- attributes ---- */

Test(cli_lifecycle, set_enabled_flips_the_flag_and_refuses_bad_values)
{
	char *store = kwt_store_new(1, 0);
	kwt_result r;
	cli_create(store, CLI_NOW, "flag", "tpm", "ec-p256", "CN=flag.example", 30, NULL);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "set", "flag", "--enabled", "false"));
	kwt_result_free(&r);
	json_t *j = cli_show(store, "flag", 0);
	cli_assert_jbool(j, "enabled", 0, "after --enabled false");
	json_decref(j);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = "
	                                  "'cert.disabled' AND cert = 'flag'"),
	             1);
	CLI_REFUSED(store, 2, "true or false", "cert", "set", "flag", "--enabled", "maybe");
	CLI_REFUSED(store, 2, "nothing to set", "cert", "set", "flag");
	CLI_REFUSED(store, 2, "--enabled", "cert", "set", "flag", "--enabled");
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "set", "nope", "--enabled", "true");
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "set", "flag", "--enabled", "true"));
	kwt_result_free(&r);
	j = cli_show(store, "flag", 0);
	cli_assert_jbool(j, "enabled", 1, "after --enabled true");
	json_decref(j);
	free(store);
}

Test(cli_lifecycle, delete_is_soft_and_recover_undoes_it)
{
	char *store = kwt_store_new(0, 1);
	kwt_result r;
	cli_create(store, CLI_NOW, "soft", "hsm", "ec-p256", "CN=soft.example", 30, NULL);
	int objects = kwt_p11_object_count();
	char *now = env_now(CLI_NOW);
	char *env[] = {now, NULL};
	cli_runv(&r, env, store, CLI_ARGS("cert", "delete", "soft"));
	cli_assert_ok(&r, "cert delete");
	cr_assert(strstr(r.out, "2030-04-01T00:00:00Z") != NULL, "delete said: %s", r.out);
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects, "soft delete destroyed objects");
	json_t *list = cli_list(store, "cert list");
	cr_assert_eq(json_array_size(list), 0);
	json_decref(list);
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "show", "soft");
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "key-ref", "soft");
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "export", "soft");
	CLI_REFUSED(store, 1, "deleted", "cert", "renew", "soft");
	CLI_REFUSED(store, 1, "already deleted", "cert", "delete", "soft");
	CLI_REFUSED(store, 1, "was deleted and still holds its name", "cert", "create", "soft",
	            "--backend", "hsm", "--subject", "CN=x");
	json_t *deleted = run_json(store, CLI_ARGS("cert", "deleted", "--json"));
	cr_assert_eq(json_array_size(deleted), 1);
	json_t *d = json_array_get(deleted, 0);
	cr_assert_str_eq(cli_js(d, "name"), "soft");
	cr_assert_str_eq(cli_js(d, "deleted"), CLI_NOW);
	cr_assert_str_eq(cli_js(d, "purge_after"), "2030-04-01T00:00:00Z");
	json_decref(deleted);

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "recover", "soft"));
	kwt_result_free(&r);
	json_decref(cli_show(store, "soft", 0));
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "key-ref", "soft"));
	kwt_result_free(&r);
	CLI_REFUSED(store, 1, "not deleted", "cert", "recover", "soft");
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "recover", "nope");
	free(now);
	free(store);
}

Test(cli_lifecycle, purge_destroys_the_keys_of_every_version)
{
	char *store = kwt_store_new(1, 1);
	kwt_result r;
	int objects0 = kwt_p11_object_count();
	cli_create(store, CLI_NOW, "h", "hsm", "ec-p256", "CN=h.example", 30, NULL);
	cli_create(store, CLI_NOW, "t", "tpm", "ec-p256", "CN=t.example", 30, NULL);
	run_at(&r, CLI_LATER, store, CLI_ARGS("cert", "renew", "h", "--new-key"));
	kwt_result_free(&r);
	run_at(&r, CLI_LATER, store, CLI_ARGS("cert", "renew", "t", "--new-key"));
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects0 + 6);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions"), 4);

	/* a live certificate needs --force */
	CLI_REFUSED(store, 1, "--force", "cert", "purge", "h");
	CLI_REFUSED(store, 1, "unknown certificate", "cert", "purge", "nope");
	CLI_REFUSED(store, 2, "--purge", "cert", "purge", "h", "--purge");

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "h"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "purge", "h"));
	cr_assert(strstr(r.out, "purged h") != NULL, "%s", r.out);
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects0, "purge left objects on the token");
	cr_assert_eq(cli_p11_label_count("keyward:h"), 0);

	/* TPM: the wrapped blobs were the keys; their rows are gone */
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "t", "--purge"));
	cr_assert(strstr(r.out, "purged t") != NULL, "%s", r.out);
	kwt_result_free(&r);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions"), 0);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM certs"), 0);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM events WHERE type = 'cert.purged'"),
	             2);
	json_t *deleted = run_json(store, CLI_ARGS("cert", "deleted", "--json"));
	cr_assert_eq(json_array_size(deleted), 0);
	json_decref(deleted);

	/* --force: at once */
	cli_create(store, CLI_NOW, "f", "hsm", "ec-p256", "CN=f.example", 30, NULL);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "purge", "f", "--force"));
	kwt_result_free(&r);
	cr_assert_eq(kwt_p11_object_count(), objects0);
	free(store);
}

/* ---- config ---- */

Test(cli_lifecycle, config_sets_the_retention_period)
{
	char *store = kwt_store_new(0, 0);
	kwt_result r;
	cli_ok(&r, NULL, store, CLI_ARGS("config", "get", "retention_days"));
	cr_assert_str_eq(r.out, "90\n");
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("config", "set", "retention_days", "14"));
	kwt_result_free(&r);
	json_t *all = run_json(store, CLI_ARGS("config", "get", "--json"));
	cr_assert_eq(json_integer_value(json_object_get(all, "retention_days")), 14);
	json_decref(all);
	CLI_REFUSED(store, 2, "retention_days", "config", "set", "retention_days", "-3");
	CLI_REFUSED(store, 2, "retention_days", "config", "set", "retention_days", "ten");
	CLI_REFUSED(store, 2, "unknown setting", "config", "set", "event_head", "1");
	CLI_REFUSED(store, 2, "unknown setting", "config", "get", "nope");
	CLI_REFUSED(store, 2, "KEY and VALUE", "config", "set", "retention_days");
	free(store);
}

/* ---- metrics ---- */

typedef struct {
	char name[128];
	json_t *labels; /* {label: value} */
	long long value;
} sample;

/* Reads one label value (after the opening quote); returns past the closing quote. */
static const char *label_value(const char *p, char *out, size_t len)
{
	size_t n = 0;
	for (; *p && *p != '"'; p++) {
		char c = *p;
		if (c == '\\') {
			p++;
			cr_assert(*p == '\\' || *p == '"' || *p == 'n', "bad escape \\%c", *p);
			c = *p == 'n' ? '\n' : *p;
		} else
			cr_assert(c != '\n', "raw line feed in a label value");
		cr_assert(n + 1 < len);
		out[n++] = c;
	}
	cr_assert_eq(*p, '"', "unterminated label value");
	out[n] = '\0';
	return p + 1;
}

static void parse_sample(const char *line, sample *s)
{
	size_t n = strcspn(line, "{ ");
	cr_assert(n > 0 && n < sizeof(s->name), "bad sample line: %s", line);
	memcpy(s->name, line, n);
	s->name[n] = '\0';
	s->labels = json_object();
	const char *p = line + n;
	if (*p == '{') {
		p++;
		while (*p != '}') {
			char key[64], value[1024];
			size_t k = strcspn(p, "=");
			cr_assert(k > 0 && k < sizeof(key) && p[k + 1] == '"', "bad labels: %s",
			          line);
			memcpy(key, p, k);
			key[k] = '\0';
			p = label_value(p + k + 2, value, sizeof(value));
			json_object_set_new(s->labels, key, json_string(value));
			if (*p == ',')
				p++;
			else
				cr_assert_eq(*p, '}', "bad labels: %s", line);
		}
		p++;
	}
	char *end = NULL;
	cr_assert_eq(*p, ' ', "no value: %s", line);
	s->value = strtoll(p + 1, &end, 10);
	cr_assert(end != p + 1 && *end == '\0', "bad value: %s", line);
}

/* Parses the exposition; checks each family has one HELP and one TYPE gauge
 * line before its samples, and that its samples are together. */
static json_t *parse_metrics(const char *text)
{
	json_t *samples = json_array(), *families = json_object();
	char *copy = strdup(text), *save = NULL;
	char family[128] = "";
	cr_assert(strlen(text) > 0 && text[strlen(text) - 1] == '\n', "no final line feed");
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128];
		if (strncmp(line, "# HELP ", 7) == 0) {
			cr_assert_eq(sscanf(line + 7, "%127s", name), 1);
			cr_assert_null(json_object_get(families, name), "two HELP for %s", name);
			json_object_set_new(families, name, json_string("help"));
			snprintf(family, sizeof(family), "%s", name);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char type[32];
			cr_assert_eq(sscanf(line + 7, "%127s %31s", name, type), 2);
			cr_assert_str_eq(name, family, "TYPE without its HELP: %s", line);
			cr_assert_str_eq(type, "gauge");
			json_object_set_new(families, name, json_string("type"));
			continue;
		}
		cr_assert(line[0] != '#', "unexpected comment: %s", line);
		sample s;
		parse_sample(line, &s);
		cr_assert_str_eq(s.name, family, "sample %s outside its family %s", s.name, family);
		cr_assert_str_eq(json_string_value(json_object_get(families, s.name)), "type");
		json_array_append_new(samples, json_pack("{s:s,s:o,s:I}", "name", s.name, "labels",
		                                         s.labels, "value", (json_int_t)s.value));
	}
	free(copy);
	json_decref(families);
	return samples;
}

/* The value of metric for certificate cert; -1 when there is no sample. */
static long long metric(const json_t *samples, const char *name, const char *cert)
{
	long long v = -1;
	int n = 0;
	for (size_t i = 0; i < json_array_size(samples); i++) {
		json_t *s = json_array_get(samples, i);
		const char *l =
		    json_string_value(json_object_get(json_object_get(s, "labels"), "name"));
		if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0 &&
		    (cert == NULL || (l && strcmp(l, cert) == 0))) {
			v = json_integer_value(json_object_get(s, "value"));
			n++;
		}
	}
	cr_assert(n <= 1, "%d samples of %s for %s", n, name, cert ? cert : "-");
	return v;
}

static json_t *labels_of(const json_t *samples, const char *name, const char *cert)
{
	for (size_t i = 0; i < json_array_size(samples); i++) {
		json_t *s = json_array_get(samples, i), *l = json_object_get(s, "labels");
		if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0 &&
		    strcmp(json_string_value(json_object_get(l, "name")), cert) == 0)
			return l;
	}
	return NULL;
}

static const char *const per_cert[] = {
    "keyward_certificate_not_after_seconds",
    "keyward_certificate_not_before_seconds",
    "keyward_certificate_renewal_due_seconds",
    "keyward_certificate_renewal_failures",
    "keyward_certificate_key_exportable",
    "keyward_certificate_enabled",
    "keyward_certificate_last_renewal_success_seconds",
};

Test(cli_lifecycle, metrics_match_what_cert_show_says)
{
	char *store = kwt_store_new(1, 1);
	kwt_result r;
	cli_create(store, CLI_NOW, "plain", "tpm", "ec-p256", "CN=plain.example", 365, NULL);
	cli_create(store, CLI_NOW, "odd", "hsm", "ec-p384", "CN=odd.example,O=Quote \"Q\" \\\\ Inc",
	           30, NULL);
	cli_create(store, CLI_NOW, "gone", "hsm", "ec-p256", "CN=gone.example", 30, NULL);
	run_at(&r, CLI_LATER, store, CLI_ARGS("renew", "--due"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "set", "odd", "--enabled", "false"));
	kwt_result_free(&r);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", "gone"));
	kwt_result_free(&r);

	cli_ok(&r, NULL, store, CLI_ARGS("metrics"));
	json_t *samples = parse_metrics(r.out);
	char *stdout_text = strdup(r.out);
	kwt_result_free(&r);
	json_t *list = cli_list(store, "cert list");
	cr_assert_eq(json_array_size(list), 2);
	cr_assert_eq(metric(samples, "keyward_certificates", NULL), 2);
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *c = json_array_get(list, i);
		const char *name = cli_js(c, "name");
		json_t *l = labels_of(samples, "keyward_certificate_not_after_seconds", name);
		cr_assert_not_null(l, "no series for %s", name);
		cr_assert_eq(json_object_size(l), 4, "labels: name, subject, backend, issuer");
		cr_assert_str_eq(cli_js(l, "subject"), cli_js(c, "subject"));
		cr_assert_str_eq(cli_js(l, "backend"), cli_js(c, "backend"));
		cr_assert_str_eq(cli_js(l, "issuer"), cli_js(c, "issuer"));
		cr_assert_eq(metric(samples, "keyward_certificate_not_after_seconds", name),
		             (long long)cli_time_parse(cli_js(c, "not_after")));
		cr_assert_eq(metric(samples, "keyward_certificate_not_before_seconds", name),
		             (long long)cli_time_parse(cli_js(c, "not_before")));
		cr_assert_eq(
		    metric(samples, "keyward_certificate_key_exportable", name),
		    json_is_true(json_object_get(json_object_get(c, "key"), "exportable")));
		cr_assert_eq(metric(samples, "keyward_certificate_enabled", name),
		             json_is_true(json_object_get(c, "enabled")));
		cr_assert_eq(metric(samples, "keyward_certificate_renewal_failures", name), 0);
	}
	cr_assert(strstr(cli_js(cli_find_named(list, "odd"), "subject"), "\\\"Q\\\"") != NULL,
	          "the subject to escape: %s", cli_js(cli_find_named(list, "odd"), "subject"));
	/* odd (30 days) was renewed on CLI_LATER; plain (365 days) was not due */
	cr_assert_eq(metric(samples, "keyward_certificate_last_renewal_success_seconds", "odd"),
	             (long long)cli_time_parse(CLI_LATER));
	cr_assert_eq(metric(samples, "keyward_certificate_last_renewal_success_seconds", "plain"),
	             -1);
	cr_assert_eq(metric(samples, "keyward_certificate_enabled", "odd"), 0);
	/* 2/3 of 365 days */
	cr_assert_eq(metric(samples, "keyward_certificate_renewal_due_seconds", "plain"),
	             CLI_NOW_EPOCH + 365 * 86400L * 2 / 3);
	for (size_t k = 0; k < sizeof(per_cert) / sizeof(per_cert[0]); k++)
		cr_assert_eq(metric(samples, per_cert[k], "gone"), -1, "deleted cert in %s",
		             per_cert[k]);
	cr_assert(strstr(stdout_text, "# HELP keyward_certificate_renewal_failures ") != NULL);
	json_decref(list);
	json_decref(samples);

	/* --textfile: the same text, written atomically with mode 0644 */
	char *dir = kwt_tmpdir("textfile"), *path = NULL;
	cr_assert(asprintf(&path, "%s/keyward.prom", dir) > 0);
	free(kwt_write_file(dir, "keyward.prom", "stale\n", 6, 0600));
	struct stat st0, st1;
	cr_assert_eq(stat(path, &st0), 0);
	mode_t old_mask = umask(077); /* the mode is keyward's, not the umask's */
	cli_ok(&r, NULL, store, CLI_ARGS("metrics", "--textfile", path));
	umask(old_mask);
	cr_assert_str_empty(r.out);
	kwt_result_free(&r);
	char *file = kwt_read_file(path, NULL);
	cr_assert_str_eq(file, stdout_text);
	cr_assert_eq(stat(path, &st1), 0);
	cr_assert_eq(st1.st_mode & 07777, 0644, "mode %o", st1.st_mode & 07777);
	cr_assert_neq(st0.st_ino, st1.st_ino, "not replaced by rename");
	char *others = cli_out("ls -A '%s'", dir);
	cr_assert_str_eq(others, "keyward.prom", "temp files left: %s", others);
	char *missing = NULL;
	cr_assert(asprintf(&missing, "%s/no/such/dir/k.prom", dir) > 0);
	CLI_REFUSED(store, 1, "cannot write", "metrics", "--textfile", missing);
	CLI_REFUSED(store, 2, "--textfile", "metrics", "--textfile");
	free(missing);
	free(others);
	free(file);
	free(path);
	free(dir);
	free(stdout_text);
	free(store);
}
