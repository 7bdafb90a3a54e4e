/* see keyward/mgmt.h: may this client certificate call the management API? */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "mgmt/mgmt_internal.h"

/* The client the store recorded with this thumbprint, under the current
 * management CA; revoked also when its serial is on the CA's list (keyward ca
 * revoke). *found 0: none. */
static kw_rc client_load(kw_store *s, const char *sha256, kwi_mgmt_client_row *c, int *found)
{
	KW_GUARD(kwi_store_mgmt_client_find(s, KW_MGMT_CA_NAME, sha256, c, found));
	c->revoked = c->revoked || c->on_crl;
	return KW_OK;
}

/* The certificate's subject OU: the role it carries. */
static void cert_role(X509 *x, char *out, size_t len)
{
	out[0] = '\0';
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationalUnitName, out,
	                              (int)len) < 0)
		out[0] = '\0';
	ERR_clear_error();
}

static kw_rc judge(X509 *x, const kwi_mgmt_client_row *c, time_t now)
{
	char role[32];
	if (c->revoked)
		return KW_FAIL(KW_ERR_AUTH, "client certificate of '%s' is revoked", c->name);
	if (now >= c->not_after || X509_cmp_time(X509_get0_notAfter(x), &now) <= 0)
		return KW_FAIL(KW_ERR_AUTH, "client certificate of '%s' has expired", c->name);
	if (now < c->not_before || X509_cmp_time(X509_get0_notBefore(x), &now) > 0)
		return KW_FAIL(KW_ERR_AUTH, "client certificate of '%s' is not valid yet", c->name);
	cert_role(x, role, sizeof(role));
	if (strcmp(role, c->role) != 0)
		return KW_FAIL(KW_ERR_AUTH,
		               "client certificate of '%s' carries role '%s', the store says '%s'",
		               c->name, role, c->role);
	return KW_OK;
}

kw_rc kw_mgmt_authorize(kw_store *s, const unsigned char *der, size_t len, kw_mgmt_caller *caller)
{
	const unsigned char *p = der;
	char sha1[41];
	kwi_mgmt_client_row c;
	time_t now;
	int found = 0;
	kw_error_clear();
	memset(caller, 0, sizeof(*caller));
	memset(&c, 0, sizeof(c));
	if (der == NULL || len == 0)
		return KW_FAIL_HINT(KW_ERR_AUTH, KW_HINT_MGMT_ISSUE,
		                    "no client certificate: the management API needs one");
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL || p != der + len) {
		X509_free(x);
		ERR_clear_error();
		return KW_FAIL(KW_ERR_AUTH, "unreadable client certificate");
	}
	kw_rc rc = kwi_x509_thumbprints(x, sha1, caller->sha256);
	if (rc == KW_OK)
		rc = kwi_now(&now);
	if (rc == KW_OK)
		rc = client_load(s, caller->sha256, &c, &found);
	if (rc == KW_OK && !found)
		rc = KW_FAIL_HINT(
		    KW_ERR_AUTH, KW_HINT_MGMT_LIST,
		    "client certificate %s is not one this store issued to a management client",
		    caller->sha256);
	if (rc == KW_OK)
		rc = judge(x, &c, now);
	if (rc == KW_OK) {
		snprintf(caller->name, sizeof(caller->name), "%s", c.name);
		snprintf(caller->role, sizeof(caller->role), "%s", c.role);
	}
	kwi_mgmt_client_row_clear(&c);
	X509_free(x);
	return rc;
}
