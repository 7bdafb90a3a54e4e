/*
 * An independent PKCS#11 client on this program's SoftHSM token, as another
 * program would be: the module loaded with p11-kit, a session logged in as
 * user. Device checks use it so that they do not trust keyward's backend.
 */
#ifndef KWTEST_P11TOK_H
#define KWTEST_P11TOK_H

#include <p11-kit/pkcs11.h>

#include "backend.h"

typedef struct {
	CK_FUNCTION_LIST *fn;
	CK_SESSION_HANDLE s;
} kwt_tok;

/* Loads KW_TEST_P11_MODULE, opens a session (CKF_SERIAL_SESSION | flags) on
 * KW_TEST_P11_TOKEN and logs in with KW_TEST_P11_PIN (already logged in is
 * fine). The test fails on any error. */
void kwt_tok_open(kwt_tok *t, CK_FLAGS flags);

/* Closes without C_Logout: the backend may share the login in this process. */
void kwt_tok_close(kwt_tok *t);

/* Up to max objects with this CKA_ID (all objects when ref is NULL), of
 * class *cls when cls is not NULL, into h; returns how many. */
CK_ULONG kwt_tok_find(kwt_tok *t, const kw_key_blob *ref, CK_OBJECT_CLASS *cls, CK_OBJECT_HANDLE *h,
                      CK_ULONG max);

#endif
