/*
 * keyward — PKCS#11 backend: the ops table, open/close and login.
 * see backend.h and p11.h
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <keyward/secret.h>

#include "p11.h"

static void p11_close(void *ctx)
{
	kwb_p11 *p = ctx;

	if (p == NULL)
		return;
	kwb_p11_pool_free(p);
	if (p->have_session) {
		/* Login state is per application and token: only undo our own login. */
		if (p->logged_in)
			(void)p->fn->C_Logout(p->session);
		(void)p->fn->C_CloseSession(p->session);
	}
	kwb_p11_module_unload(p);
	free(p);
}

static kw_rc session_open(kwb_p11 *p)
{
	CK_RV rv = p->fn->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	                                &p->session);

	if (rv == CKR_TOKEN_WRITE_PROTECTED)
		return KW_FAIL_DEV(KW_ERR_BACKEND, rv,
		                   "token '%s' in module %s is write-protected (%s); keyward needs "
		                   "a writable token to create keys",
		                   p->token, p->module, kwb_p11_rv_name(rv));
	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "cannot open a session on token '%s' in module %s: %s; check "
		                   "that the token is present and not busy",
		                   p->token, p->module, kwb_p11_rv_name(rv));
	p->have_session = 1;
	return KW_OK;
}

static kw_rc login_fail(kwb_p11 *p, CK_RV rv, const char *source)
{
	switch (rv) {
	case CKR_PIN_INCORRECT:
		return KW_FAIL_DEV(KW_ERR_AUTH, rv,
		                   "wrong PIN for token '%s' (%s from %s); fix the PIN source — "
		                   "repeated wrong PINs lock the token",
		                   p->token, kwb_p11_rv_name(rv), source);
	case CKR_PIN_LOCKED:
		return KW_FAIL_DEV(
		    KW_ERR_AUTH, rv,
		    "the user PIN of token '%s' is locked (%s); the token's security "
		    "officer must unblock or reset it",
		    p->token, kwb_p11_rv_name(rv));
	case CKR_PIN_EXPIRED:
		return KW_FAIL_DEV(KW_ERR_AUTH, rv,
		                   "the user PIN of token '%s' has expired (%s); set a new PIN "
		                   "and update %s",
		                   p->token, kwb_p11_rv_name(rv), source);
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
		return KW_FAIL_DEV(KW_ERR_AUTH, rv,
		                   "token '%s' rejects the PIN from %s as malformed (%s); check "
		                   "the file holds only the PIN",
		                   p->token, source, kwb_p11_rv_name(rv));
	case CKR_USER_PIN_NOT_INITIALIZED:
		return KW_FAIL_DEV(KW_ERR_AUTH, rv,
		                   "token '%s' has no user PIN yet (%s); initialise it first",
		                   p->token, kwb_p11_rv_name(rv));
	default:
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "cannot log in to token '%s' in module %s: %s", p->token,
		                   p->module, kwb_p11_rv_name(rv));
	}
}

static kw_rc login(kwb_p11 *p, const char *source, const kw_secret *given)
{
	kw_secret *pin = NULL;

	if (given == NULL)
		KW_GUARD(kw_secret_from_source(source, &pin));
	const kw_secret *use = given ? given : pin;
	/* C_Login takes a non-const pointer; tokens do not write through it. */
	CK_RV rv = p->fn->C_Login(p->session, CKU_USER, (CK_UTF8CHAR_PTR)kw_secret_data(use),
	                          (CK_ULONG)kw_secret_len(use));
	kw_secret_free(pin);
	if (rv == CKR_OK) {
		p->logged_in = 1;
		return KW_OK;
	}
	/* Another session of this process is logged in already: fine. */
	if (rv == CKR_USER_ALREADY_LOGGED_IN)
		return KW_OK;
	return login_fail(p, rv, source);
}

/* Without a PIN: a token that requires a login cannot sign. */
static kw_rc login_needed(kwb_p11 *p)
{
	CK_TOKEN_INFO info;
	CK_RV rv = p->fn->C_GetTokenInfo(p->slot, &info);
	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv, "cannot read token '%s': %s", p->token,
		                   kwb_p11_rv_name(rv));
	if (info.flags & CKF_LOGIN_REQUIRED)
		return KW_FAIL(
		    KW_ERR_AUTH,
		    "token '%s' requires a user PIN: give --pin-source file:PATH or env:VAR",
		    p->token);
	return KW_OK;
}

static kw_rc open_once(const kw_backend_config *cfg, void **ctx)
{
	kw_rc rc = KW_OK;
	kwb_p11 *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory opening PKCS#11 backend");
	rc = kwb_p11_pool_new(p);
	if (rc != KW_OK)
		goto out;
	rc = kwb_p11_module_load(p, cfg->module);
	if (rc != KW_OK)
		goto out;
	rc = kwb_p11_token_select(p, cfg->token);
	if (rc != KW_OK)
		goto out;
	rc = session_open(p);
	if (rc != KW_OK)
		goto out;
	rc = cfg->pin_source || cfg->pin ? login(p, cfg->pin_source, cfg->pin) : login_needed(p);
	if (rc != KW_OK)
		goto out;
	*ctx = p;
	p = NULL;
out:
	p11_close(p);
	return rc;
}

/* A token can be unreadable for a moment: SoftHSM's file store rewrites its
 * token file in place whenever any process logs in, and another process
 * reading it meanwhile finds no initialised token, a token whose user PIN
 * seems not set (CKR_USER_PIN_NOT_INITIALIZED), or gets CKR_GENERAL_ERROR
 * from C_GetTokenInfo or C_Login. A few short retries, each with the module
 * started afresh, ride that out; a token that is really absent costs 0.2 s
 * more. A refused PIN is never retried. */
static int transient(kw_rc rc)
{
	if (rc == KW_ERR_NOT_FOUND)
		return 1;
	if (rc == KW_ERR_AUTH)
		return kw_error_device_code() == CKR_USER_PIN_NOT_INITIALIZED;
	return (rc == KW_ERR_BACKEND || rc == KW_ERR_UNAVAILABLE) &&
	       kw_error_device_code() == CKR_GENERAL_ERROR;
}

static kw_rc p11_open(const kw_backend_config *cfg, void **ctx)
{
	const struct timespec pause = {0, 20 * 1000 * 1000};
	kw_rc rc = KW_OK;

	if (ctx == NULL || cfg == NULL)
		return KW_FAIL(KW_ERR_USAGE, "PKCS#11 backend: no configuration given");
	*ctx = NULL;
	for (int tries = 0; tries < 10; tries++) {
		if (tries > 0) {
			kw_error_clear();
			nanosleep(&pause, NULL);
		}
		rc = open_once(cfg, ctx);
		if (rc == KW_OK || !transient(rc))
			break;
	}
	return rc;
}

const kw_backend_ops kwb_p11_ops = {
    .kind = "pkcs11",
    /* C_DestroyObject leaves the token no copy: KW_CAP_DESTROY_REAL */
    .caps = KW_CAP_PARALLEL_SIGN | KW_CAP_FORK_SAFE | KW_CAP_PSS_ANY_SALT | KW_CAP_RESOLVE_URI |
            KW_CAP_CONF_TOKEN | KW_CAP_DESTROY_REAL,
    .open = p11_open,
    .close = p11_close,
    .key_generate = kwb_p11_key_generate,
    .key_import = kwb_p11_key_import,
    .key_public = kwb_p11_key_public,
    .key_sign = kwb_p11_key_sign,
    .key_attrs = kwb_p11_key_attrs,
    .key_destroy = kwb_p11_key_destroy,
    .key_ref_export = kwb_p11_key_ref_export,
    .cert_attach = kwb_p11_cert_attach,
    .key_resolve = kwb_p11_key_resolve,
    .key_list = kwb_p11_key_list,
};
