/*
 * kwbench-store: fills a store with many certificates for the scale bench.
 *
 *   kwbench-store --store DIR --seed NAME --count N [--prefix P] [--days D] [--spread S]
 *   kwbench-store --store DIR --create BACKEND --count N [--prefix P] [--days D]
 *
 * --create: N certificates the public way (kw_cert_create: each its own new
 * key in the device), for the renewal bench.
 *
 * Every certificate shares the key of certificate NAME (created beforehand
 * with `keyward cert create`), but each is its own certificate: its own
 * policy (subject, SAN, validity), its own X.509 certificate self-signed by
 * that key in the device, its own version row and "cert.created" event, all
 * written by libkeyward's own code (kwi_policy_from_request, kwi_issue,
 * kwi_store_cert_insert, kwi_version_insert, kwi_event_append).
 *
 * Why internals: the public API makes a certificate only with a new key
 * (kw_cert_create), an imported key (kw_cert_import) or an adopted one
 * (kw_cert_adopt, one transaction with a full fsync per certificate). Here
 * 1,000 certificates go in one transaction, so 100,000 take minutes instead
 * of a new key each. Issue dates are spread over the last S days (default
 * 300; 0: all issued now) so that `renew --due` finds some due and most not;
 * validity D days (default 365).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyward/lifecycle.h>

#include "internal.h"
#include "store/sql.h"
#include "cert/issue.h"

#define BATCH 1000

typedef struct {
	kw_store *s;
	kwi_device dev;
	kw_key_blob ref;
	kw_key_type type;
	const char *backend;
} gen;

static int seed_load(gen *g, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (kwi_store_prepare(g->s,
	                      "SELECT v.key_ref, v.backend_id, v.key_type FROM certs c JOIN"
	                      " versions v ON v.cert_id = c.id AND v.version = c.current_version"
	                      " WHERE c.name = ?",
	                      &st) != KW_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int64_t backend_id = 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		g->ref.len = (size_t)sqlite3_column_bytes(st, 0);
		g->ref.data = malloc(g->ref.len);
		if (g->ref.data) {
			memcpy(g->ref.data, sqlite3_column_blob(st, 0), g->ref.len);
			backend_id = sqlite3_column_int64(st, 1);
			g->type = kw_key_type_from_name((const char *)sqlite3_column_text(st, 2));
			rc = 0;
		}
	}
	sqlite3_finalize(st);
	if (rc == 0 && kwi_device_open_id(g->s, backend_id, &g->dev) != KW_OK)
		rc = -1;
	g->backend = g->dev.name;
	return rc;
}

/* One certificate, issued by the device and recorded in the open transaction. */
static kw_rc one(gen *g, const char *prefix, long i, time_t base, int days, int spread)
{
	char name[64], subject[160], san[128];
	kwi_policy *policy = NULL;
	kwi_issued v = {0};
	int64_t id = 0;
	time_t now = base - (spread > 0 ? (time_t)(i % spread) * 86400 : 0);

	snprintf(name, sizeof(name), "%s%06ld", prefix, i);
	snprintf(subject, sizeof(subject), "CN=%s.bench.example,O=keyward bench", name);
	snprintf(san, sizeof(san), "DNS:%s.bench.example", name);
	const char *sans[] = {san};
	kw_cert_request req = {.name = name,
	                       .backend = g->backend,
	                       .subject = subject,
	                       .sans = sans,
	                       .n_sans = 1,
	                       .key_type = kw_key_type_name(g->type),
	                       .days = days};
	kw_rc rc = kwi_policy_from_request(&req, &policy);
	if (rc == KW_OK)
		rc = kwi_issue(g->s, &g->dev, &g->ref, g->type, policy, NULL, now, &v);
	if (rc == KW_OK)
		rc = kwi_store_cert_insert(g->s, name, policy, now, &id);
	if (rc == KW_OK)
		rc = kwi_version_insert(g->s, id, 1, g->dev.id, &g->ref, g->type, &v, now);
	if (rc == KW_OK)
		rc = kwi_event_append(g->s, "cert.created", name, 1,
		                      json_pack("{s:s,s:s,s:s,s:s}", "key_type",
		                                kw_key_type_name(g->type), "thumbprint_sha256",
		                                v.sha256, "serial", v.serial, "issuer", v.issuer));
	kwi_issued_clear(&v);
	kwi_policy_free(policy);
	return rc;
}

static int fill(gen *g, const char *prefix, long count, int days, int spread)
{
	time_t base;
	if (kwi_now(&base) != KW_OK)
		return -1;
	for (long i = 0; i < count; i += BATCH) {
		if (kwi_store_begin(g->s) != KW_OK)
			return -1;
		for (long j = i; j < i + BATCH && j < count; j++)
			if (one(g, prefix, j, base, days, spread) != KW_OK) {
				kwi_store_rollback(g->s);
				return -1;
			}
		if (kwi_store_commit(g->s) != KW_OK)
			return -1;
	}
	return 0;
}

/* N certificates through the public API, each with a new key. */
static int create(kw_store *s, const char *backend, const char *prefix, long count, int days)
{
	for (long i = 0; i < count; i++) {
		char name[64], subject[160];
		snprintf(name, sizeof(name), "%s%06ld", prefix, i);
		snprintf(subject, sizeof(subject), "CN=%s.bench.example", name);
		kw_cert_request req = {
		    .name = name, .backend = backend, .subject = subject, .days = days};
		if (kw_cert_create(s, &req, NULL) != KW_OK)
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *store = NULL, *seed = NULL, *prefix = "c", *backend = NULL;
	long count = 0;
	int days = 365, spread = 300;
	gen g = {0};
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--store") == 0)
			store = argv[i + 1];
		else if (strcmp(argv[i], "--seed") == 0)
			seed = argv[i + 1];
		else if (strcmp(argv[i], "--count") == 0)
			count = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--prefix") == 0)
			prefix = argv[i + 1];
		else if (strcmp(argv[i], "--create") == 0)
			backend = argv[i + 1];
		else if (strcmp(argv[i], "--days") == 0)
			days = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--spread") == 0)
			spread = atoi(argv[i + 1]);
	}
	if (store == NULL || (seed == NULL) == (backend == NULL) || count <= 0) {
		fputs(
		    "usage: kwbench-store --store DIR (--seed NAME | --create BACKEND) --count N\n"
		    "                     [--prefix P] [--days D]\n",
		    stderr);
		return 2;
	}
	int rc = kw_store_open(store, &g.s) != KW_OK;
	if (rc == 0) {
		kw_store_set_actor(g.s, "bench");
		if (backend)
			rc = create(g.s, backend, prefix, count, days) != 0;
		else
			rc = seed_load(&g, seed) != 0 || fill(&g, prefix, count, days, spread) != 0;
	}
	if (rc)
		fprintf(stderr, "keyward: %s\n", kw_error_message());
	kwi_device_close(&g.dev);
	kw_key_blob_clear(&g.ref);
	kw_store_close(g.s);
	return rc;
}
