/* see keyward/ca.h: revocations and the CRL a keyward CA signs in hardware */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/pem.h>

#include "issuers/acme/acme_issuer.h"
#include "issuers/ca/ca_issuer.h"
#include <keyward/ca.h>

#define CRL_DAYS_DEFAULT 7
#define CRL_DAYS_MAX     3650
#define SERIAL_LEN       80

/* RFC 5280 CRLReason codes keyward records. */
static const char *const reasons[] = {"unspecified",
                                      "keyCompromise",
                                      "cACompromise",
                                      "affiliationChanged",
                                      "superseded",
                                      "cessationOfOperation",
                                      NULL};

static kw_rc reason_code(const char *name, int *code)
{
	*code = 0;
	if (name == NULL)
		return KW_OK;
	for (int i = 0; reasons[i]; i++)
		if (strcmp(reasons[i], name) == 0) {
			*code = i;
			return KW_OK;
		}
	return KW_FAIL(KW_ERR_USAGE,
	               "unknown revocation reason '%s' (use unspecified, keyCompromise, "
	               "cACompromise, affiliationChanged, superseded or cessationOfOperation)",
	               name);
}

/* Lowercase hex without separators, as the store keeps serials. */
static kw_rc serial_norm(const char *in, char out[SERIAL_LEN])
{
	size_t n = 0;
	if (strncmp(in, "0x", 2) == 0 || strncmp(in, "0X", 2) == 0)
		in += 2;
	for (; *in; in++) {
		if (*in == ':')
			continue;
		if (!isxdigit((unsigned char)*in) || n + 1 >= SERIAL_LEN)
			return KW_FAIL(KW_ERR_USAGE,
			               "bad serial number (hexadecimal, as openssl x509 "
			               "-serial prints it)");
		out[n++] = (char)tolower((unsigned char)*in);
	}
	out[n] = '\0';
	while (out[0] == '0' && out[1]) /* BN_bn2hex's spelling: no leading zero pairs */
		memmove(out, out + 1, strlen(out));
	if (n == 0)
		return KW_FAIL(KW_ERR_USAGE, "bad serial number: empty");
	if (strlen(out) % 2)
		memmove(out + 1, out, strlen(out) + 1), out[0] = '0';
	return KW_OK;
}

static kw_rc ca_id(kw_store *s, const char *ca, int64_t *id)
{
	int found = 0;
	KW_GUARD(kwi_store_ca_id_get(s, ca, id, &found));
	if (!found)
		return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown CA '%s'", ca);
	return KW_OK;
}

/* Whether CA ca (id) issued serial: from a CSR, or a keyward certificate's version. */
static kw_rc issued_by(kw_store *s, const char *ca, int64_t id, const char *serial)
{
	char issuer[96];
	int found = 0;
	snprintf(issuer, sizeof(issuer), "ca:%s", ca);
	KW_GUARD(kwi_store_ca_issued_find(s, id, issuer, serial, &found));
	if (!found)
		return KW_FAIL(KW_ERR_NOT_FOUND, "CA '%s' issued no certificate with serial %s", ca,
		               serial);
	return KW_OK;
}

/* Records the revocation and its event in one transaction. */
static kw_rc record(kw_store *s, const char *ca, int64_t id, const char *serial, int reason,
                    const char *cert, int version)
{
	time_t now;
	int added = 0;
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_store_begin(s));
	kwi_ca_revocation_row row = {
	    .ca_cert_id = id, .serial = serial, .revoked_at = now, .reason = reason};
	kw_rc rc = kwi_store_ca_revocation_add(s, &row, &added);
	if (rc == KW_OK && !added)
		rc = KW_FAIL(KW_ERR_EXISTS, "serial %s is already revoked", serial);
	if (rc == KW_OK)
		rc = kwi_event_append(s, "cert.revoked", cert ? cert : ca, version,
		                      json_pack("{s:s,s:s,s:s}", "ca", ca, "serial", serial,
		                                "reason", reasons[reason]));
	if (rc == KW_OK)
		return kwi_store_commit(s);
	kwi_store_rollback(s);
	return rc;
}

kw_rc kw_ca_revoke(kw_store *s, const char *ca, const char *serial, const char *reason)
{
	char norm[SERIAL_LEN];
	int code;
	int64_t id;
	kw_error_clear();
	KW_GUARD(reason_code(reason, &code));
	KW_GUARD(serial_norm(serial, norm));
	KW_GUARD(ca_id(s, ca, &id));
	KW_GUARD(issued_by(s, ca, id, norm));
	return record(s, ca, id, norm, code, NULL, 0);
}

/* Asks ACME issuer acme to revoke version's certificate x (taken), then
 * records the event. */
static kw_rc acme_revoke(kw_store *s, const char *name, int version, const char *acme, X509 *x,
                         const char *serial, int code)
{
	kw_rc rc = kwi_acme_revoke(s, acme, x, code);
	X509_free(x);
	if (rc != KW_OK)
		return rc;
	return kwi_event_record(
	    s, "cert.revoked", name, version,
	    json_pack("{s:s,s:s,s:s}", "acme", acme, "serial", serial, "reason", reasons[code]));
}

kw_rc kw_cert_revoke(kw_store *s, const char *name, const char *reason)
{
	kwi_ca_revocable_row row;
	char issuer[96] = "", serial[SERIAL_LEN] = "";
	int code, version = 0, found = 0;
	int64_t id;
	X509 *x = NULL;
	kw_error_clear();
	KW_GUARD(reason_code(reason, &code));
	KW_GUARD(kwi_store_ca_revocable_get(s, name, &row, &found));
	if (!found)
		return KW_FAIL_HINT(KW_ERR_NOT_FOUND, KW_HINT_CERT_LIST, "unknown certificate '%s'",
		                    name);
	snprintf(issuer, sizeof(issuer), "%s", row.issuer);
	if (row.serial)
		snprintf(serial, sizeof(serial), "%s", row.serial);
	version = row.version;
	const unsigned char *der = row.cert_der;
	if (der && kwi_issuer_parse(issuer, NULL) == KW_ISSUER_ACME)
		x = d2i_X509(NULL, &der, (long)row.cert_len);
	kwi_ca_revocable_row_clear(&row);
	const char *by = NULL;
	kw_issuer_kind kind = kwi_issuer_parse(issuer, &by);
	if (x) /* an ACME CA revokes at the account key's request */
		return acme_revoke(s, name, version, by, x, serial, code);
	if (kind != KW_ISSUER_CA)
		return KW_FAIL(KW_ERR_STATE,
		               "certificate '%s' was not issued by a keyward CA or an ACME issuer "
		               "(issuer %s): only its issuer can revoke it",
		               name, issuer);
	if (serial[0] == '\0')
		return KW_FAIL(KW_ERR_STATE, "certificate '%s' has no certificate to revoke", name);
	KW_GUARD(ca_id(s, by, &id));
	return record(s, by, id, serial, code, name, version);
}

/* ---- the CRL ---- */

typedef struct {
	kwi_crl_entry *e;
	kwi_ca_revocation_row *rows; /* e[i].serial points into rows[i] */
	size_t n;
} revoked_list;

static void revoked_clear(revoked_list *l)
{
	free(l->e);
	kwi_ca_revocation_rows_free(l->rows, l->n);
	memset(l, 0, sizeof(*l));
}

static kw_rc revoked_load(kw_store *s, int64_t id, revoked_list *l)
{
	memset(l, 0, sizeof(*l));
	KW_GUARD(kwi_store_ca_revocation_list(s, id, &l->rows, &l->n));
	l->e = calloc(l->n ? l->n : 1, sizeof(*l->e));
	if (l->e == NULL) {
		revoked_clear(l);
		return KW_FAIL(KW_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < l->n; i++) {
		l->e[i].serial = l->rows[i].serial;
		l->e[i].revoked_at = l->rows[i].revoked_at;
		l->e[i].reason = l->rows[i].reason;
	}
	return KW_OK;
}

static kw_rc next_number(kw_store *s, int64_t id, long *number)
{
	kwi_ca_crl_row last;
	int found = 0;
	*number = 0;
	KW_GUARD(kwi_store_ca_crl_get(s, id, &last, &found));
	*number = (found ? last.crl_number : 0) + 1;
	return KW_OK;
}

static kw_rc save_number(kw_store *s, const char *ca, int64_t id, long number, size_t entries,
                         time_t now)
{
	kwi_ca_crl_row row = {.ca_cert_id = id, .crl_number = number, .issued_at = now};
	KW_GUARD(kwi_store_ca_crl_put(s, &row));
	return kwi_event_append(s, "ca.crl", ca, 0,
	                        json_pack("{s:I,s:I}", "crl_number", (json_int_t)number, "revoked",
	                                  (json_int_t)entries));
}

static kw_rc crl_pem(X509_CRL *crl, char **pem)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n = b && PEM_write_bio_X509_CRL(b, crl) ? BIO_get_mem_data(b, &p) : 0;
	*pem = n > 0 ? strndup(p, (size_t)n) : NULL;
	BIO_free(b);
	return *pem ? KW_OK : KW_FAIL(KW_ERR_NOMEM, "out of memory");
}

/* Inside the transaction: the number is taken and used once. */
static kw_rc crl_make(kw_store *s, const char *ca, const kwi_ca *c, int days, time_t now,
                      char **pem, long *number)
{
	revoked_list l;
	kwi_device dev = {0};
	EVP_PKEY *pub = NULL;
	X509_CRL *crl = NULL;
	KW_GUARD(revoked_load(s, c->cert_id, &l));
	kw_rc rc = next_number(s, c->cert_id, number);
	if (rc == KW_OK)
		rc = kwi_device_open_id(s, c->backend_id, &dev);
	kwi_signer k = {&dev, &c->ref, c->type};
	if (rc == KW_OK)
		rc = kwi_signer_pubkey(&k, &pub);
	if (rc == KW_OK && EVP_PKEY_eq(X509_get0_pubkey(c->cert), pub) != 1)
		rc = KW_FAIL(KW_ERR_BACKEND,
		             "CA '%s': the device's key does not match its certificate", ca);
	if (rc == KW_OK)
		rc = kwi_x509_crl_sign(&k, pub, c->cert, l.e, l.n, now,
		                       now + (time_t)(days ? days : CRL_DAYS_DEFAULT) * 86400,
		                       *number, &crl);
	if (rc == KW_OK)
		rc = save_number(s, ca, c->cert_id, *number, l.n, now);
	if (rc == KW_OK)
		rc = crl_pem(crl, pem);
	X509_CRL_free(crl);
	EVP_PKEY_free(pub);
	kwi_device_close(&dev);
	revoked_clear(&l);
	return rc;
}

kw_rc kw_ca_crl(kw_store *s, const char *ca, int days, char **pem, long *number)
{
	kwi_ca c;
	time_t now;
	long n = 0;
	*pem = NULL;
	kw_error_clear();
	if (days < 0 || days > CRL_DAYS_MAX)
		return KW_FAIL(KW_ERR_USAGE, "CRL validity of %d days is out of range (1 to %d)",
		               days, CRL_DAYS_MAX);
	KW_GUARD(kwi_now(&now));
	KW_GUARD(kwi_ca_load(s, ca, now, &c));
	kw_rc rc = kwi_store_begin(s);
	if (rc == KW_OK) {
		rc = crl_make(s, ca, &c, days, now, pem, &n);
		if (rc == KW_OK)
			rc = kwi_store_commit(s);
		else
			kwi_store_rollback(s);
	}
	if (rc != KW_OK) {
		free(*pem);
		*pem = NULL;
	} else if (number)
		*number = n;
	kwi_ca_clear(&c);
	return rc;
}
