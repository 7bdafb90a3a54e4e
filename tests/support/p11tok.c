/* see p11tok.h */
#include <string.h>

#include <p11-kit/p11-kit.h>

#include "kwtest.h"
#include "p11tok.h"

static CK_SLOT_ID tok_slot(kwt_tok *t)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	const char *want = kwt_env("KW_TEST_P11_TOKEN");

	cr_assert_eq(t->fn->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;
		cr_assert_eq(t->fn->C_GetTokenInfo(slots[i], &info), CKR_OK);
		size_t len = strlen(want);
		if (memcmp(info.label, want, len) == 0 &&
		    (len == sizeof(info.label) || info.label[len] == ' '))
			return slots[i];
	}
	cr_assert_fail("token %s not found by the test's own PKCS#11 client", want);
	return 0;
}

void kwt_tok_open(kwt_tok *t, CK_FLAGS flags)
{
	const char *pin = kwt_env("KW_TEST_P11_PIN");

	t->fn = p11_kit_module_load(kwt_env("KW_TEST_P11_MODULE"), 0);
	cr_assert_not_null(t->fn, "p11_kit_module_load: %s", p11_kit_message());
	cr_assert_eq(p11_kit_module_initialize(t->fn), CKR_OK);
	CK_SLOT_ID slot = tok_slot(t);
	cr_assert_eq(t->fn->C_OpenSession(slot, CKF_SERIAL_SESSION | flags, NULL, NULL, &t->s),
	             CKR_OK);
	CK_RV rv = t->fn->C_Login(t->s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	cr_assert(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN, "C_Login: 0x%lx", rv);
}

void kwt_tok_close(kwt_tok *t)
{
	cr_assert_eq(t->fn->C_CloseSession(t->s), CKR_OK);
	cr_assert_eq(p11_kit_module_finalize(t->fn), CKR_OK);
	p11_kit_module_release(t->fn);
}

CK_ULONG kwt_tok_find(kwt_tok *t, const kw_key_blob *ref, CK_OBJECT_CLASS *cls, CK_OBJECT_HANDLE *h,
                      CK_ULONG max)
{
	CK_ATTRIBUTE tmpl[2];
	CK_ULONG nt = 0, n = 0;

	if (ref)
		tmpl[nt++] = (CK_ATTRIBUTE){CKA_ID, ref->data, ref->len};
	if (cls)
		tmpl[nt++] = (CK_ATTRIBUTE){CKA_CLASS, cls, sizeof(*cls)};
	cr_assert_eq(t->fn->C_FindObjectsInit(t->s, tmpl, nt), CKR_OK);
	cr_assert_eq(t->fn->C_FindObjects(t->s, h, max, &n), CKR_OK);
	cr_assert_eq(t->fn->C_FindObjectsFinal(t->s), CKR_OK);
	return n;
}
