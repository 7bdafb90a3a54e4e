/* libkeyward internals: a keyward certificate acting as a CA (issuer ca:NAME). */
#ifndef KEYWARD_CORE_CA_H
#define KEYWARD_CORE_CA_H

#include "internal.h"
#include "store/store_issuers.h"

/* A CA's current version, checked usable for issuing at a given time. */
typedef struct {
	int64_t cert_id;
	int version;
	X509 *cert;
	unsigned char *chain; /* the CA's own chain (DER back to back), may be NULL */
	size_t chain_len;
	int64_t backend_id;
	kw_key_type type;
	kw_key_blob ref;
} kwi_ca;

/* Loads CA name's current version; refuses an unknown, deleted, disabled,
 * pending, expired (at now) or non-CA (basicConstraints CA:FALSE) one. */
kw_rc kwi_ca_load(kw_store *s, const char *name, time_t now, kwi_ca *ca) KW_MUST_USE;
void kwi_ca_clear(kwi_ca *ca);

/* Issues the certificate t describes for pub, signed by CA name's key in its
 * device (dev is reused when the CA's key lives there: a TPM takes one
 * connection). t->not_after is clipped to the CA's; a CA template under a
 * CA whose pathlen is exhausted is refused. *chain: the CA's certificate and
 * its own chain, DER back to back (malloc'd). */
kw_rc kwi_ca_issue(kw_store *s, kwi_device *dev, const char *name, EVP_PKEY *pub,
                   kwi_cert_template *t, time_t now, X509 **out, unsigned char **chain,
                   size_t *chain_len) KW_MUST_USE;

/* A CSR from another host, as kw_ca_sign reads it (sign.c): PEM or DER, its
 * self-signature checked, an EC or RSA key; then the certificate it asks
 * for: its subject and the SANs of its extension request (nothing else of
 * it), days (0: 365) from now, serverAuth or clientAuth. t points into *req
 * and *sans (freed by the caller, also on failure). The fuzz target
 * tests/fuzz/fuzz_csr.c feeds it. */
kw_rc kwi_ca_csr_read(const unsigned char *data, size_t len, int days, int client, time_t now,
                      X509_REQ **req, kwi_cert_template *t, GENERAL_NAMES **sans) KW_MUST_USE;

#endif
