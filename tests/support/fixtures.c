/* see fixtures.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <keyward/lifecycle.h>

#include "fixtures.h"
#include "kwtest.h"

kw_store *kwt_store_open_new(char **dir)
{
	kw_store *s = NULL;
	*dir = kwt_store_new(1, 1);
	cr_assert_eq(kw_store_open(*dir, &s), KW_OK, "%s", kw_error_message());
	return s;
}

void kwt_cert_create_now(const char *dir, const char *name, const char *backend, int days)
{
	char env_now[64], d[16], subject[96];
	kwt_result r;
	snprintf(env_now, sizeof(env_now), "KEYWARD_NOW=%s", getenv("KEYWARD_NOW"));
	snprintf(d, sizeof(d), "%d", days);
	snprintf(subject, sizeof(subject), "CN=%s.example", name);
	char *env[] = {env_now, NULL};
	kwt_kw_env(&r, env, dir, "cert", "create", name, "--backend", backend, "--subject", subject,
	           "--days", d, NULL);
	cr_assert_eq(r.status, 0, "cert create %s: %s", name, r.err);
	kwt_result_free(&r);
}

json_t *kwt_events_of(kw_store *s, const char *cert, const char *type)
{
	json_t *all = NULL, *res = json_array(), *e;
	size_t i;
	cr_assert_eq(kw_events_list(s, cert, &all), KW_OK);
	json_array_foreach(all, i, e) if (strcmp(json_string_value(json_object_get(e, "type")),
	                                         type) == 0) json_array_append(res, e);
	json_decref(all);
	return res;
}

int kwt_events_count(kw_store *s, const char *cert, const char *type)
{
	json_t *list = kwt_events_of(s, cert, type);
	int n = (int)json_array_size(list);
	json_decref(list);
	return n;
}

void kwt_policy_patch(kw_store *s, const char *name, const char *patch)
{
	json_t *p = NULL, *add = json_loads(patch, 0, NULL);
	cr_assert_not_null(add, "bad patch %s", patch);
	cr_assert_eq(kw_policy_show(s, name, &p), KW_OK, "%s", kw_error_message());
	cr_assert_eq(json_object_update(p, add), 0);
	cr_assert_eq(kw_policy_set(s, name, p), KW_OK, "policy set %s: %s", patch,
	             kw_error_message());
	json_decref(p);
	json_decref(add);
}

void kwt_fixture_dirs(kwt_store_fixture *f, const char *hint)
{
	char *base = kwt_tmpdir(hint);
	cr_assert(asprintf(&f->dir, "%s/store", base) > 0);
	cr_assert(asprintf(&f->out, "%s/out", base) > 0);
	free(base);
	cr_assert_eq(mkdir(f->out, 0755), 0);
	f->s = NULL;
}

void kwt_fixture_store(kwt_store_fixture *f, const char *name, const char *subject)
{
	int created;
	cr_assert_eq(kw_store_init(f->dir, &created), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kw_store_open(f->dir, &f->s), KW_OK, "%s", kw_error_message());
	kw_backend_spec b = {.name = "hsm",
	                     .kind = "pkcs11",
	                     .module = kwt_env("KW_TEST_P11_MODULE"),
	                     .token = kwt_env("KW_TEST_P11_TOKEN"),
	                     .pin_source = "env:KW_TEST_P11_PIN"};
	cr_assert_eq(kw_backend_add(f->s, &b), KW_OK, "%s", kw_error_message());
	kw_cert_request req = {.name = name, .backend = "hsm", .subject = subject};
	cr_assert_eq(kw_cert_create(f->s, &req, NULL), KW_OK, "%s", kw_error_message());
}

void kwt_fixture_close(kwt_store_fixture *f)
{
	kw_store_close(f->s);
	free(f->dir);
	free(f->out);
}
