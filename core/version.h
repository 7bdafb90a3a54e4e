/* libkeyward internals: issuing and recording certificate versions. */
#ifndef KEYWARD_VERSION_H
#define KEYWARD_VERSION_H

#include "internal.h"

typedef struct {
	X509 *cert;
	kw_key_attrs attrs;
	char sha1[41];
	char sha256[65];
	char serial[80];
	time_t not_before;
	time_t not_after;
} kwi_issued;

void kwi_issued_clear(kwi_issued *v);

/* A self-signed certificate for the key ref, from the policy; attributes read back. */
kw_rc kwi_issue_self_signed(kwi_device *dev, const kw_keyref *ref, kw_key_type type,
                            const json_t *policy, time_t now, kwi_issued *out) KW_MUST_USE;

/* Inserts an active version row (inside the caller's transaction). */
kw_rc kwi_version_insert(kw_store *s, int64_t cert_id, int version, int64_t backend_id,
                         const kw_keyref *ref, kw_key_type type, const kwi_issued *v,
                         time_t now) KW_MUST_USE;

#endif
