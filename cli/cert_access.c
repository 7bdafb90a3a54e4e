/* keyward cert access NAME [--allow-user U] [--allow-group G] [--deny-user U]
 * [--deny-group G] [--json]: who may use the certificate's key through the
 * agent (keyward agent) */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyward/agent.h>

#include "cli.h"

#define MAX_CHANGES 64

/* A user or group that exists on this host, by name or number. */
static int resolve(const char *text, kw_access_kind kind, kw_access_entry *out)
{
	char buf[4096], *end = NULL;
	int is_num = text[0] >= '0' && text[0] <= '9';
	unsigned long num = is_num ? strtoul(text, &end, 10) : 0;
	if (is_num && (*end != '\0' || num > 0xfffffffful))
		is_num = 0;
	out->kind = kind;
	if (kind == KW_ACCESS_USER) {
		struct passwd pw, *res = NULL;
		int r = is_num ? getpwuid_r((uid_t)num, &pw, buf, sizeof(buf), &res)
		               : getpwnam_r(text, &pw, buf, sizeof(buf), &res);
		if (r == 0 && res != NULL) {
			out->id = (uint32_t)res->pw_uid;
			return 0;
		}
	} else {
		struct group gr, *res = NULL;
		int r = is_num ? getgrgid_r((gid_t)num, &gr, buf, sizeof(buf), &res)
		               : getgrnam_r(text, &gr, buf, sizeof(buf), &res);
		if (r == 0 && res != NULL) {
			out->id = (uint32_t)res->gr_gid;
			return 0;
		}
	}
	fprintf(stderr, "keyward: cert access: no %s '%s' on this host\n",
	        kw_access_kind_name(kind), text);
	return 1;
}

/* The user's or group's name on this host ("" when it has none). */
static void entry_name(const kw_access_entry *e, char *name, size_t len)
{
	char buf[4096];
	name[0] = '\0';
	if (e->kind == KW_ACCESS_USER) {
		struct passwd pw, *res = NULL;
		if (getpwuid_r((uid_t)e->id, &pw, buf, sizeof(buf), &res) == 0 && res != NULL)
			snprintf(name, len, "%s", res->pw_name);
	} else {
		struct group gr, *res = NULL;
		if (getgrgid_r((gid_t)e->id, &gr, buf, sizeof(buf), &res) == 0 && res != NULL)
			snprintf(name, len, "%s", res->gr_name);
	}
}

json_t *cli_access_json(const kw_access_entry *e, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++) {
		char name[256];
		entry_name(&e[i], name, sizeof(name));
		json_t *o = json_pack("{s:s, s:I}", "kind", kw_access_kind_name(e[i].kind), "id",
		                      (json_int_t)e[i].id);
		if (o != NULL && name[0] != '\0')
			json_object_set_new(o, "name", json_string(name));
		json_array_append_new(a, o);
	}
	return a;
}

void cli_access_print(const json_t *access)
{
	size_t i;
	json_t *v;
	if (json_array_size(access) == 0) {
		printf("the store's owner and root only\n");
		return;
	}
	json_array_foreach(access, i, v)
	{
		const char *kind = json_string_value(json_object_get(v, "kind"));
		const char *name = json_string_value(json_object_get(v, "name"));
		printf("%s%s %s (%s %lld)", i ? ", " : "", kind, name ? name : "-",
		       strcmp(kind, "group") == 0 ? "gid" : "uid",
		       (long long)json_integer_value(json_object_get(v, "id")));
	}
	printf("; and the store's owner and root\n");
}

typedef struct {
	kw_access_entry allow[MAX_CHANGES], deny[MAX_CHANGES];
	size_t n_allow, n_deny;
	int json;
} access_opts;

static int parse(int argc, char **argv, access_opts *o)
{
	static const struct option opts[] = {
	    {"allow-user", required_argument, NULL, 'u'},
	    {"allow-group", required_argument, NULL, 'g'},
	    {"deny-user", required_argument, NULL, 'U'},
	    {"deny-group", required_argument, NULL, 'G'},
	    {"json", no_argument, NULL, 'j'},
	    {0},
	};
	int c;
	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((c = cli_getopt(argc, argv, "cert access", "", opts)) != -1) {
		if (c == 'j') {
			o->json = 1;
			continue;
		}
		if (c != 'u' && c != 'g' && c != 'U' && c != 'G')
			return 2;
		int allow = c == 'u' || c == 'g';
		kw_access_kind kind = c == 'u' || c == 'U' ? KW_ACCESS_USER : KW_ACCESS_GROUP;
		size_t *n = allow ? &o->n_allow : &o->n_deny;
		if (*n == MAX_CHANGES)
			return cli_usage_error("cert access: at most %d changes at once",
			                       MAX_CHANGES);
		if (resolve(optarg, kind, allow ? &o->allow[*n] : &o->deny[*n]))
			return 1;
		(*n)++;
	}
	if (argc - optind != 1)
		return cli_usage_error("cert access: give exactly one NAME");
	return 0;
}

int cert_access(int argc, char **argv)
{
	access_opts o;
	kw_store *s = NULL;
	kw_access_entry *now = NULL;
	size_t n = 0;
	int ex = parse(argc, argv, &o);
	if (ex || (ex = cli_store_open(&s)))
		return ex;
	const char *name = argv[optind];
	kw_rc rc = KW_OK;
	if (o.n_allow + o.n_deny > 0)
		rc = kw_cert_access_change(s, name, o.allow, o.n_allow, o.deny, o.n_deny);
	if (rc == KW_OK)
		rc = kw_cert_access_get(s, name, &now, &n);
	kw_store_close(s);
	if (rc != KW_OK)
		return cli_fail(rc);
	json_t *list = cli_access_json(now, n);
	free(now);
	if (o.json) {
		json_t *doc = json_pack("{s:s, s:o}", "name", name, "access", list);
		cli_print_json(doc);
		json_decref(doc);
	} else {
		printf("%s: ", name);
		cli_access_print(list);
		json_decref(list);
	}
	return 0;
}
