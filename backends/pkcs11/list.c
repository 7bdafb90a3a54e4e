/*
 * keyward — PKCS#11 backend: the keys keyward made on the token (keyward
 * doctor). see backend.h key_list
 */
#include <stdlib.h>
#include <string.h>

#include "p11.h"

/* What keyward's keys carry (keygen.c, import.c, cert.c): CKA_LABEL
 * "keyward:NAME" and a random 16-byte CKA_ID on every object of the key. */
#define OURS_PREFIX "keyward:"
#define OURS_ID_LEN 16
#define FIND_BATCH  64

typedef struct {
	kw_device_key *v;
	size_t n, cap;
} key_set;

static int set_has(const key_set *s, const unsigned char *id, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].ref.len == len && memcmp(s->v[i].ref.data, id, len) == 0)
			return 1;
	return 0;
}

static kw_rc set_add(key_set *s, const unsigned char *id, size_t len, const unsigned char *label,
                     size_t label_len)
{
	if (set_has(s, id, len))
		return KW_OK;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		kw_device_key *v = realloc(s->v, cap * sizeof(*v));
		if (v == NULL)
			return KW_FAIL(KW_ERR_NOMEM, "out of memory listing keys");
		s->v = v;
		s->cap = cap;
	}
	kw_device_key *k = &s->v[s->n];
	memset(k, 0, sizeof(*k));
	k->ref.data = malloc(len);
	if (k->ref.data == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory listing keys");
	memcpy(k->ref.data, id, len);
	k->ref.len = len;
	size_t n = label_len < sizeof(k->label) - 1 ? label_len : sizeof(k->label) - 1;
	memcpy(k->label, label, n);
	k->label[n] = '\0';
	s->n++;
	return KW_OK;
}

/* Adds h to the set when it carries keyward's label and CKA_ID shape. */
static kw_rc consider(kwb_p11 *p, CK_OBJECT_HANDLE h, key_set *s)
{
	unsigned char *label = NULL, *id = NULL;
	size_t label_len = 0, id_len = 0;
	kw_rc rc = KW_OK;

	if (kwb_p11_attr_alloc(p, h, CKA_LABEL, &label, &label_len) != CKR_OK ||
	    kwb_p11_attr_alloc(p, h, CKA_ID, &id, &id_len) != CKR_OK)
		goto out; /* an object without a label or id is not ours */
	if (label_len > strlen(OURS_PREFIX) &&
	    memcmp(label, OURS_PREFIX, strlen(OURS_PREFIX)) == 0 && id_len == OURS_ID_LEN)
		rc = set_add(s, id, id_len, label, label_len);
out:
	free(label);
	free(id);
	return rc;
}

/* Every object the session sees (logged in: private ones too). */
static kw_rc all_objects(kwb_p11 *p, CK_OBJECT_HANDLE **out, CK_ULONG *n)
{
	CK_OBJECT_HANDLE *all = NULL;
	CK_ULONG count = 0, got = 0;
	CK_RV rv = p->fn->C_FindObjectsInit(p->session, NULL, 0);

	*out = NULL;
	*n = 0;
	while (rv == CKR_OK) {
		CK_OBJECT_HANDLE *grown = realloc(all, (count + FIND_BATCH) * sizeof(*all));
		if (grown == NULL) {
			rv = CKR_HOST_MEMORY;
			break;
		}
		all = grown;
		rv = p->fn->C_FindObjects(p->session, all + count, FIND_BATCH, &got);
		if (rv != CKR_OK || got == 0)
			break;
		count += got;
	}
	if (rv != CKR_CRYPTOKI_NOT_INITIALIZED && rv != CKR_SESSION_HANDLE_INVALID)
		(void)p->fn->C_FindObjectsFinal(p->session);
	if (rv != CKR_OK) {
		free(all);
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "cannot list the objects on token '%s': %s", p->token,
		                   kwb_p11_rv_name(rv));
	}
	*out = all;
	*n = count;
	return KW_OK;
}

kw_rc kwb_p11_key_list(void *ctx, kw_device_key **out, size_t *n)
{
	kwb_p11 *p = ctx;
	key_set s = {0};
	CK_OBJECT_HANDLE *all = NULL;
	CK_ULONG count = 0;

	*out = NULL;
	*n = 0;
	if (p == NULL || p->fn == NULL || !p->have_session)
		return KW_FAIL(KW_ERR_USAGE, "listing keys: the PKCS#11 backend is not open");
	kw_rc rc = all_objects(p, &all, &count);
	for (CK_ULONG i = 0; rc == KW_OK && i < count; i++)
		rc = consider(p, all[i], &s);
	free(all);
	if (rc != KW_OK) {
		kw_device_keys_free(s.v, s.n);
		return rc;
	}
	*out = s.v;
	*n = s.n;
	return KW_OK;
}
