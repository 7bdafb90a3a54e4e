/*
 * libkeyward's management certificates (keyward/mgmt.h) through the public
 * API: kw_mgmt_authorize refuses what it must (nothing, garbage, a
 * certificate never issued to a client, a revoked or expired one) and
 * accepts an issued one with its role; kw_mgmt_issue validates before it
 * touches anything; kw_mgmt_log_request appends to the event log.
 */
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <keyward/lifecycle.h>
#include <keyward/mgmt.h>

#include "../cli/cli_test.h"

static kw_store *mgmt_store(char **dir)
{
	kw_store *s = NULL;
	*dir = kwt_store_new(0, 1);
	cr_assert_eq(kw_store_open(*dir, &s), KW_OK, "%s", kw_error_message());
	kw_mgmt_init_request req = {.backend = "hsm"};
	cr_assert_eq(kw_mgmt_init(s, &req, NULL), KW_OK, "%s", kw_error_message());
	return s;
}

/* A client certificate from a CSR (openssl key), as DER. */
static unsigned char *issue_der(kw_store *s, const char *name, const char *role, int days, int *len)
{
	char *dir = kwt_tmpdir("csr");
	char *csr = cli_out("cd '%s' && openssl req -new -newkey ec -pkeyopt "
	                    "ec_paramgen_curve:P-256 -nodes -keyout k.pem -subj /CN=x "
	                    "2>/dev/null",
	                    dir);
	char *pem = NULL;
	kw_mgmt_issue_request req = {.name = name,
	                             .role = role,
	                             .days = days,
	                             .csr = (const unsigned char *)csr,
	                             .csr_len = strlen(csr)};
	cr_assert_eq(kw_mgmt_issue(s, &req, &pem, NULL), KW_OK, "%s", kw_error_message());
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	cr_assert(x != NULL);
	unsigned char *der = NULL;
	*len = i2d_X509(x, &der);
	X509_free(x);
	BIO_free(b);
	free(pem);
	free(csr);
	free(dir);
	return der;
}

Test(mgmt_core, authorize_accepts_an_issued_certificate_with_its_role)
{
	char *dir;
	kw_store *s = mgmt_store(&dir);
	int len;
	unsigned char *der = issue_der(s, "ops", "admin", 0, &len);
	kw_mgmt_caller who;
	cr_assert_eq(kw_mgmt_authorize(s, der, (size_t)len, &who), KW_OK, "%s", kw_error_message());
	cr_assert_str_eq(who.name, "ops");
	cr_assert_str_eq(who.role, "admin");
	json_t *l = NULL;
	cr_assert_eq(kw_mgmt_list(s, &l), KW_OK);
	cr_assert_str_eq(
	    json_string_value(json_object_get(json_array_get(l, 0), "thumbprint_sha256")),
	    who.sha256);
	json_decref(l);
	OPENSSL_free(der);
	kw_store_close(s);
	free(dir);
}

Test(mgmt_core, authorize_refuses_nothing_garbage_and_strangers)
{
	char *dir;
	kw_store *s = mgmt_store(&dir);
	kw_mgmt_caller who;
	cr_assert_eq(kw_mgmt_authorize(s, NULL, 0, &who), KW_ERR_AUTH);
	cr_assert(strstr(kw_error_message(), "no client certificate") != NULL);
	const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	cr_assert_eq(kw_mgmt_authorize(s, junk, sizeof(junk), &who), KW_ERR_AUTH);
	int len;
	unsigned char *der = issue_der(s, "ops", "reader", 0, &len);
	unsigned char *longer = malloc((size_t)len + 1);
	memcpy(longer, der, (size_t)len);
	longer[len] = 0;
	cr_assert_eq(kw_mgmt_authorize(s, longer, (size_t)len + 1, &who), KW_ERR_AUTH,
	             "trailing bytes after the certificate were accepted");
	/* the server's own certificate: same CA, never issued to a client */
	char *srv = NULL;
	cr_assert_eq(kw_cert_export(s, KW_MGMT_SERVER_NAME, 0, 0, &srv), KW_OK);
	BIO *b = BIO_new_mem_buf(srv, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	unsigned char *sder = NULL;
	int slen = i2d_X509(x, &sder);
	cr_assert_eq(kw_mgmt_authorize(s, sder, (size_t)slen, &who), KW_ERR_AUTH);
	cr_assert(strstr(kw_error_message(), "is not one this store issued") != NULL, "%s",
	          kw_error_message());
	cr_assert_eq(strlen(who.sha256), 64, "the refusal names no thumbprint");
	OPENSSL_free(sder);
	X509_free(x);
	BIO_free(b);
	free(srv);
	free(longer);
	OPENSSL_free(der);
	kw_store_close(s);
	free(dir);
}

Test(mgmt_core, authorize_refuses_revoked_and_expired)
{
	char *dir;
	kw_store *s = mgmt_store(&dir);
	int l1, l2;
	unsigned char *gone = issue_der(s, "gone", "admin", 0, &l1);
	unsigned char *brief = issue_der(s, "brief", "admin", 1, &l2);
	kw_mgmt_caller who;
	cr_assert_eq(kw_mgmt_revoke(s, "gone"), KW_OK, "%s", kw_error_message());
	cr_assert_eq(kw_mgmt_authorize(s, gone, (size_t)l1, &who), KW_ERR_AUTH);
	cr_assert(strstr(kw_error_message(), "revoked") != NULL, "%s", kw_error_message());
	cr_assert_eq(kw_mgmt_revoke(s, "gone"), KW_ERR_STATE);
	cr_assert_eq(kw_mgmt_revoke(s, "nobody"), KW_ERR_NOT_FOUND);
	cr_assert_eq(kw_mgmt_authorize(s, brief, (size_t)l2, &who), KW_OK, "%s",
	             kw_error_message());
	char later[32];
	cli_time_format(time(NULL) + 2 * 86400, later, sizeof(later));
	setenv("KEYWARD_NOW", later, 1);
	cr_assert_eq(kw_mgmt_authorize(s, brief, (size_t)l2, &who), KW_ERR_AUTH);
	cr_assert(strstr(kw_error_message(), "expired") != NULL, "%s", kw_error_message());
	json_t *l = NULL;
	cr_assert_eq(kw_mgmt_list(s, &l), KW_OK);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 0), "status")),
	                 "revoked");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 1), "status")),
	                 "expired");
	json_decref(l);
	unsetenv("KEYWARD_NOW");
	OPENSSL_free(gone);
	OPENSSL_free(brief);
	kw_store_close(s);
	free(dir);
}

Test(mgmt_core, issue_validates_before_touching_anything)
{
	char *dir;
	kw_store *s = mgmt_store(&dir);
	char *before = kwt_store_dump(dir);
	const unsigned char csr[] = "x";
	kw_mgmt_issue_request bad[] = {
	    {.name = "", .role = "admin", .csr = csr, .csr_len = 1},
	    {.name = "a b", .role = "admin", .csr = csr, .csr_len = 1},
	    {.name = "a", .role = "root", .csr = csr, .csr_len = 1},
	    {.name = "a", .role = "admin"},
	    {.name = "a", .role = "admin", .csr = csr, .csr_len = 1, .pkcs12_path = "/tmp/x"},
	    {.name = "a", .role = "admin", .days = 5000, .csr = csr, .csr_len = 1},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(kw_mgmt_issue(s, &bad[i], NULL, NULL), KW_ERR_USAGE, "case %zu", i);
	kw_mgmt_issue_request notcsr = {.name = "a", .role = "admin", .csr = csr, .csr_len = 1};
	cr_assert_eq(kw_mgmt_issue(s, &notcsr, NULL, NULL), KW_ERR_PARSE);
	char *after = kwt_store_dump(dir);
	cr_assert_str_eq(after, before, "a refused issue changed the store");
	free(before);
	free(after);
	kw_store_close(s);
	free(dir);
}

Test(mgmt_core, log_request_appends_to_the_event_log)
{
	char *dir;
	kw_store *s = mgmt_store(&dir);
	kw_store_set_actor(s, "api:test");
	cr_assert_eq(
	    kw_mgmt_log_request(s, "GET", "/certificates", 200, "ab", "ops", "10.0.0.7:4711"),
	    KW_OK);
	cr_assert_eq(kw_mgmt_log_request(s, "GET", "/x", 401, NULL, NULL, "[2001:db8::1]:443"),
	             KW_OK);
	json_t *ev = NULL;
	cr_assert_eq(kw_events_list(s, NULL, &ev), KW_OK);
	size_t n = json_array_size(ev);
	json_t *a = json_array_get(ev, n - 2), *b = json_array_get(ev, n - 1);
	cr_assert_str_eq(json_string_value(json_object_get(a, "type")), "api.request");
	cr_assert_str_eq(json_string_value(json_object_get(a, "actor")), "api:test");
	json_t *d = json_object_get(a, "details");
	cr_assert_str_eq(json_string_value(json_object_get(d, "thumbprint_sha256")), "ab");
	cr_assert_eq(json_integer_value(json_object_get(d, "status")), 200);
	cr_assert_str_eq(json_string_value(json_object_get(d, "peer")), "10.0.0.7:4711");
	cr_assert(json_is_null(json_object_get(json_object_get(b, "details"), "client")));
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "details"), "peer")),
	                 "[2001:db8::1]:443");
	json_decref(ev);
	json_t *audit = NULL;
	cr_assert_eq(kw_audit_verify(s, &audit), KW_OK);
	cr_assert(json_is_true(json_object_get(audit, "ok")));
	json_decref(audit);
	kw_store_close(s);
	free(dir);
}

Test(mgmt_core, log_refusals_appends_one_summary)
{
	char *dir;
	kw_store *s = mgmt_store(&dir);
	json_t *ev = NULL;
	cr_assert_eq(kw_events_list(s, NULL, &ev), KW_OK);
	size_t before = json_array_size(ev);
	json_decref(ev);
	kw_mgmt_refusal rows[] = {
	    {.address = "192.0.2.7",
	     .reason = "HTTP 401: no client certificate",
	     .request = "GET /certificates",
	     .peer = "192.0.2.7:40000",
	     .count = 100,
	     .first = 1893456000,
	     .last = 1893456005},
	    {.address = "2001:db8::1",
	     .sha256 = "ab",
	     .reason = "client certificate refused: unable to get local issuer",
	     .count = 3,
	     .first = 1893456001,
	     .last = 1893456002},
	};
	cr_assert_eq(kw_mgmt_log_refusals(s, rows, 2), KW_OK);
	/* an entry without an address or a count is refused, and nothing written */
	kw_mgmt_refusal bad = {.reason = "x", .count = 1};
	cr_assert_eq(kw_mgmt_log_refusals(s, &bad, 1), KW_ERR_USAGE);
	kw_mgmt_refusal none = {.address = "192.0.2.8", .reason = "x"};
	cr_assert_eq(kw_mgmt_log_refusals(s, &none, 1), KW_ERR_USAGE);
	cr_assert_eq(kw_events_list(s, NULL, &ev), KW_OK);
	cr_assert_eq(json_array_size(ev), before + 1, "not one event for two kinds of refusal");
	json_t *e = json_array_get(ev, before);
	cr_assert_str_eq(json_string_value(json_object_get(e, "type")), "api.refused");
	json_t *d = json_object_get(e, "details");
	cr_assert_eq(json_integer_value(json_object_get(d, "total")), 103);
	json_t *first = json_array_get(json_object_get(d, "refusals"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(first, "address")), "192.0.2.7");
	cr_assert_eq(json_integer_value(json_object_get(first, "count")), 100);
	cr_assert_str_eq(json_string_value(json_object_get(first, "first")),
	                 "2030-01-01T00:00:00Z");
	cr_assert_str_eq(json_string_value(json_object_get(first, "request")), "GET /certificates");
	cr_assert_str_eq(json_string_value(json_object_get(first, "last_peer")), "192.0.2.7:40000");
	cr_assert(json_is_null(json_object_get(first, "thumbprint_sha256")));
	json_decref(ev);
	kw_store_close(s);
	free(dir);
}
