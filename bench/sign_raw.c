/* kwbench-sign straight to the device: Esys_Sign and C_Sign loops, the limit
 * any signing path on top of them can reach. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include "sign.h"

const unsigned char sign_sha256_prefix[19] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                              0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                              0x01, 0x05, 0x00, 0x04, 0x20};

/* DER length and INTEGER encoding of one unsigned big-endian number. */
static size_t der_int(const unsigned char *v, size_t n, unsigned char *out)
{
	while (n > 1 && v[0] == 0) {
		v++;
		n--;
	}
	size_t pad = v[0] & 0x80 ? 1 : 0;
	out[0] = 0x02;
	out[1] = (unsigned char)(n + pad);
	out[2] = 0;
	memcpy(out + 2 + pad, v, n);
	return 2 + pad + n;
}

int sign_ecdsa_der(const unsigned char *r, size_t rn, const unsigned char *s, size_t sn,
                   unsigned char *out, size_t *len)
{
	unsigned char body[2 * (3 + 66)];
	if (rn == 0 || sn == 0 || rn > 66 || sn > 66)
		return -1;
	size_t n = der_int(r, rn, body);
	n += der_int(s, sn, body + n);
	size_t hdr = n < 128 ? 2 : 3;
	if (*len < hdr + n)
		return -1;
	out[0] = 0x30;
	if (n < 128)
		out[1] = (unsigned char)n;
	else {
		out[1] = 0x81;
		out[2] = (unsigned char)n;
	}
	memcpy(out + hdr, body, n);
	*len = hdr + n;
	return 0;
}

/* ---- PKCS#11 through p11-kit: C_SignInit + C_Sign, one session per thread ---- */

typedef struct {
	CK_FUNCTION_LIST *f;
	CK_SESSION_HANDLE *sess;
	int n_sess;
	CK_OBJECT_HANDLE key;
	int rsa;
} p11_ctx;

static int p11_sign(sign_path *p, int thread, const unsigned char *msg, size_t msg_len,
                    unsigned char *sig, size_t *len)
{
	p11_ctx *c = p->ctx;
	unsigned char in[19 + 32], raw[SIG_MAX];
	CK_ULONG raw_len = sizeof(raw);
	size_t off = c->rsa ? sizeof(sign_sha256_prefix) : 0;
	CK_MECHANISM mech = {c->rsa ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0};
	CK_SESSION_HANDLE h = c->sess[thread % c->n_sess];

	memcpy(in, sign_sha256_prefix, off);
	SHA256(msg, msg_len, in + off);
	if (c->f->C_SignInit(h, &mech, c->key) != CKR_OK ||
	    c->f->C_Sign(h, in, off + 32, raw, &raw_len) != CKR_OK)
		return -1;
	if (c->rsa) {
		if (raw_len > *len)
			return -1;
		memcpy(sig, raw, raw_len);
		*len = raw_len;
		return 0;
	}
	return sign_ecdsa_der(raw, raw_len / 2, raw + raw_len / 2, raw_len / 2, sig, len);
}

static void p11_free(sign_path *p)
{
	p11_ctx *c = p->ctx;
	for (int i = 0; i < c->n_sess; i++)
		c->f->C_CloseSession(c->sess[i]);
	p11_kit_module_finalize(c->f);
	p11_kit_module_release(c->f);
	free(c->sess);
	free(c);
}

/* The slot whose token the URI names. */
static int p11_slot(CK_FUNCTION_LIST *f, P11KitUri *u, CK_SLOT_ID *out)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    p11_kit_uri_match_token_info(u, &ti)) {
			*out = slots[i];
			return 0;
		}
	}
	return -1;
}

static int p11_find(p11_ctx *c, P11KitUri *u)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE *id = p11_kit_uri_get_attribute(u, CKA_ID);
	CK_ULONG n = 0;
	if (id == NULL)
		return -1;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, *id};
	CK_SESSION_HANDLE h = c->sess[0];
	if (c->f->C_FindObjectsInit(h, t, 2) != CKR_OK)
		return -1;
	CK_RV rv = c->f->C_FindObjects(h, &c->key, 1, &n);
	c->f->C_FindObjectsFinal(h);
	return rv == CKR_OK && n == 1 ? 0 : -1;
}

static int p11_setup(const sign_opts *o, p11_ctx *c, int threads)
{
	CK_SLOT_ID slot;
	P11KitUri *u = p11_kit_uri_new();
	int rc = -1;
	if (u == NULL || p11_kit_uri_parse(o->key, P11_KIT_URI_FOR_ANY, u) != P11_KIT_URI_OK ||
	    p11_slot(c->f, u, &slot) != 0) {
		fprintf(stderr, "kwbench-sign: p11: no token matches %s\n", o->key);
		goto out;
	}
	c->n_sess = threads;
	if ((c->sess = calloc((size_t)threads, sizeof(*c->sess))) == NULL)
		goto out;
	for (int i = 0; i < threads; i++)
		if (c->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &c->sess[i]) !=
		    CKR_OK)
			goto out;
	if (c->f->C_Login(c->sess[0], CKU_USER, (CK_UTF8CHAR_PTR)o->pin, strlen(o->pin)) !=
	        CKR_OK ||
	    p11_find(c, u) != 0) {
		fprintf(stderr, "kwbench-sign: p11: cannot log in or find the key %s\n", o->key);
		goto out;
	}
	rc = 0;
out:
	p11_kit_uri_free(u);
	return rc;
}

int sign_p11_open(const sign_opts *o, sign_path *p, int threads)
{
	p11_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL || o->module == NULL || o->pin == NULL) {
		fprintf(stderr, "kwbench-sign: p11 needs --module and --pin-file\n");
		free(c);
		return -1;
	}
	c->rsa = o->rsa;
	c->f = p11_kit_module_load(o->module, 0);
	if (c->f == NULL || p11_kit_module_initialize(c->f) != CKR_OK) {
		fprintf(stderr, "kwbench-sign: p11: cannot load %s: %s\n", o->module,
		        p11_kit_message());
		free(c);
		return -1;
	}
	*p = (sign_path){.sign = p11_sign, .free = p11_free, .ctx = c};
	if (p11_setup(o, c, threads) != 0) {
		p11_free(p);
		return -1;
	}
	return 0;
}
