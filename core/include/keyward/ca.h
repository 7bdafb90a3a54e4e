/*
 * keyward — the local CA: a keyward certificate created with a CA policy
 * (keyward cert create NAME --ca) signs, with its key in its device, the
 * certificates whose policy says issuer "ca:NAME", CSRs from other hosts,
 * and the CRL of what it revoked.
 */
#ifndef KEYWARD_CA_H
#define KEYWARD_CA_H

#include <stddef.h>

#include <keyward/keyward.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Signs a CSR (PEM or DER) from another host with CA ca's key: its
 * self-signature is checked first; the certificate gets the CSR's subject and
 * the SANs of its extension request only (no other requested extension), EKU
 * serverAuth (profile "server", the default) or clientAuth ("client"), key
 * usage per key type, days of validity (0 = 365) clipped to the CA's. It is
 * recorded (serial, subject, not_after, thumbprint) so that kw_ca_revoke can
 * revoke it; event "ca.signed". *pem: the certificate (free with free()). */
kw_rc kw_ca_sign(kw_store *s, const char *ca, const unsigned char *csr, size_t csr_len, int days,
                 const char *profile, char **pem) KW_MUST_USE;

/* Revokes the current version of certificate name, which CA "ca:X" issued;
 * reason: unspecified (NULL), keyCompromise, cACompromise,
 * affiliationChanged, superseded or cessationOfOperation. Event
 * "cert.revoked". */
kw_rc kw_cert_revoke(kw_store *s, const char *name, const char *reason) KW_MUST_USE;

/* Revokes serial (hex, colons and "0x" allowed) that CA ca issued, from a CSR
 * (kw_ca_sign) or for a keyward certificate. Event "cert.revoked". */
kw_rc kw_ca_revoke(kw_store *s, const char *ca, const char *serial, const char *reason) KW_MUST_USE;

/* A v2 CRL of everything CA ca revoked (CRL number one more than the last,
 * AKI, thisUpdate now, nextUpdate after days (0 = 7)), signed with the CA's
 * key in its device. Event "ca.crl". *pem: free with free(); *number (may
 * be NULL): its CRL number. */
kw_rc kw_ca_crl(kw_store *s, const char *ca, int days, char **pem, long *number) KW_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif
