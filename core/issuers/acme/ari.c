/* ACME Renewal Information (RFC 9773): the CA suggests when to renew, e.g.
 * early, before it revokes a certificate. keyward asks when the issuer's
 * directory offers renewalInfo, keeps the window until the server's
 * Retry-After and renews at a point inside it that is fixed per version. */
#include <string.h>

#include "issuers/acme/acme_issuer.h"

#define ARI_DEFAULT_RECHECK (6 * 3600)
#define ARI_MIN_RECHECK     60
#define ARI_MAX_RECHECK     (7 * 86400)

kw_rc kwi_ari_cert_id(X509 *x, char **out)
{
	const ASN1_OCTET_STRING *kid = X509_get0_authority_key_id(x);
	unsigned char *der = NULL;
	int n = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der);
	*out = NULL;
	if (kid == NULL || n < 3) {
		OPENSSL_free(der);
		return KW_FAIL(KW_ERR_PARSE, "the certificate has no authority key identifier: "
		                             "no ACME renewal information for it");
	}
	/* The serial's DER content octets: skip the tag and the length. */
	size_t skip = der[1] & 0x80 ? 2 + (der[1] & 0x7f) : 2;
	char *a = kwi_b64url(ASN1_STRING_get0_data(kid), (size_t)ASN1_STRING_length(kid));
	char *b = (size_t)n > skip ? kwi_b64url(der + skip, (size_t)n - skip) : NULL;
	OPENSSL_free(der);
	if (a && b && (*out = malloc(strlen(a) + strlen(b) + 2)) != NULL)
		sprintf(*out, "%s.%s", a, b);
	free(a);
	free(b);
	return *out ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

/* The window kept for the version; 0 when none is (or it cannot be read). */
static int cached(kw_store *s, int64_t cert_id, int version, kwi_acme_ari_row *w)
{
	int found = 0;
	return kwi_store_acme_ari_get(s, cert_id, version, w, &found) == KW_OK && found;
}

static kw_rc remember(kw_store *s, const kwi_acme_ari_row *w)
{
	KW_GUARD(kwi_store_begin(s));
	kw_rc rc = kwi_store_acme_ari_put(s, w);
	if (rc == KW_OK)
		return kwi_store_commit(s);
	kwi_store_rollback(s);
	return rc;
}

static kw_rc version_cert(kw_store *s, int64_t cert_id, int version, X509 **out)
{
	unsigned char *der = NULL;
	size_t len = 0;
	*out = NULL;
	KW_GUARD(kwi_store_acme_version_cert_get(s, cert_id, version, &der, &len));
	if (der) {
		const unsigned char *p = der;
		*out = d2i_X509(NULL, &p, (long)len);
	}
	free(der);
	return *out ? KW_OK : KW_FAIL(KW_ERR_STORE, "version %d has no certificate", version);
}

kw_rc kwi_ari_parse_window(const kwi_acme_resp *r, time_t now, kwi_acme_ari_row *w)
{
	json_t *o = NULL;
	KW_GUARD(kwi_acme_json(r, &o));
	const json_t *sw = json_object_get(o, "suggestedWindow");
	const char *a = json_string_value(json_object_get(sw, "start"));
	const char *b = json_string_value(json_object_get(sw, "end"));
	const char *e = json_string_value(json_object_get(o, "explanationURL"));
	kw_rc rc =
	    a && b ? KW_OK : KW_FAIL(KW_ERR_PARSE, "renewal information without suggestedWindow");
	if (rc == KW_OK &&
	    (kwi_time_parse(a, &w->window_start) != KW_OK ||
	     kwi_time_parse(b, &w->window_end) != KW_OK || w->window_end < w->window_start))
		rc = KW_FAIL(KW_ERR_PARSE, "renewal information with a bad suggestedWindow");
	snprintf(w->explanation_url, sizeof(w->explanation_url), "%s", e ? e : "");
	long after = r->retry_after >= 0 ? r->retry_after : ARI_DEFAULT_RECHECK;
	after = after < ARI_MIN_RECHECK ? ARI_MIN_RECHECK : after;
	w->next_check = now + (after > ARI_MAX_RECHECK ? ARI_MAX_RECHECK : after);
	json_decref(o);
	return rc;
}

/* Asks the issuer; *offered 0 when its directory has no renewalInfo. */
static kw_rc ask(kw_store *s, const char *issuer, X509 *x, time_t now, kwi_acme_ari_row *w,
                 int *offered)
{
	kwi_acme_issuer_row is;
	kwi_acme_client c = {0};
	kwi_acme_resp r = {0};
	char *id = NULL, *url = NULL;
	*offered = 0;
	KW_GUARD(kwi_issuer_load(s, issuer, &is));
	kw_rc rc = kwi_acme_open(&c, json_string_value(json_object_get(is.config, "directory")),
	                         json_string_value(json_object_get(is.config, "ca_bundle")));
	const char *base = rc == KW_OK ? kwi_acme_endpoint(&c, "renewalInfo") : NULL;
	if (base && (rc = kwi_ari_cert_id(x, &id)) == KW_OK) {
		*offered = 1;
		size_t n = strlen(base) + strlen(id) + 2;
		if ((url = malloc(n)) == NULL)
			rc = KW_FAIL(KW_ERR_NOMEM, "out of memory");
		else
			snprintf(url, n, "%s%s%s", base, base[strlen(base) - 1] == '/' ? "" : "/",
			         id);
	}
	if (rc == KW_OK && url && (rc = kwi_acme_get(&c, url, &r)) == KW_OK)
		rc = kwi_ari_parse_window(&r, now, w);
	kwi_acme_resp_clear(&r);
	free(url);
	free(id);
	kwi_acme_close(&c);
	kwi_acme_issuer_row_clear(&is);
	return rc;
}

static time_t pick(const kwi_acme_ari_row *w, int64_t cert_id, int version, time_t now)
{
	/* A point fixed per version, spread over the window (RFC 9773 4.2). */
	uint64_t h =
	    (uint64_t)cert_id * 0x9E3779B97F4A7C15ull ^ (uint64_t)version * 0xBF58476D1CE4E5B9ull;
	h ^= h >> 31;
	time_t span = w->window_end - w->window_start;
	time_t at = w->window_start + (span > 0 ? (time_t)(h % (uint64_t)span) : 0);
	return w->window_end <= now ? now : at;
}

time_t kwi_ari_renew_at(kw_store *s, const char *issuer, int64_t cert_id, int version, time_t now,
                        int dry_run, json_t *res)
{
	kwi_acme_ari_row w = {.cert_id = cert_id, .version = version};
	X509 *x = NULL;
	int offered = 1;
	if (!cached(s, cert_id, version, &w) || now >= w.next_check) {
		kw_rc rc = version_cert(s, cert_id, version, &x);
		if (rc == KW_OK)
			rc = ask(s, issuer, x, now, &w, &offered);
		if (rc == KW_OK && offered && !dry_run)
			rc = remember(s, &w);
		X509_free(x);
		if (rc != KW_OK) {
			json_object_set_new(res, "ari_error", json_string(kw_error_message()));
			kw_error_clear();
			return 0;
		}
	}
	if (!offered)
		return 0;
	char a[32], b[32], at[32];
	time_t when = pick(&w, cert_id, version, now);
	kwi_time_format(w.window_start, a, sizeof(a));
	kwi_time_format(w.window_end, b, sizeof(b));
	kwi_time_format(when, at, sizeof(at));
	json_object_set_new(res, "ari",
	                    json_pack("{s:s, s:s, s:s, s:s?}", "window_start", a, "window_end", b,
	                              "renew_at", at, "explanation_url",
	                              w.explanation_url[0] ? w.explanation_url : NULL));
	return when;
}
