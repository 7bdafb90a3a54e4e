/*
 * keyward OpenSSL 3 provider: entry point, provider context and every
 * dispatch table.
 *
 * Loading never touches a device: a missing TPM or token only makes the key
 * load fail, with keyward's message. The store is the config parameter
 * "store" ([keyward_sect] store = /path in openssl.cnf), else KEYWARD_STORE,
 * else keyward's default; a reference file may name its own. With the
 * parameter "agent" (a socket path; KEYWARD_AGENT overrides it) keys are
 * loaded and used through keyward agent instead: the store, the devices and
 * the PINs stay with the agent.
 *
 * All algorithms carry "provider=keyward". keymgmt loads keys (its new()
 * makes an empty key only; there is no gen and no import), so software keys
 * and key generation stay with the default provider, which is activated
 * ahead of keyward for that (see activate_default).
 *
 * openssl.cnf:
 *   [keyward_sect]
 *   activate = 1
 *   store = /var/lib/keyward      # else KEYWARD_STORE, else keyward's default
 *   load_default = auto           # auto (unless FIPS is active) | yes | no
 *   agent = /run/keyward/agent.sock   # through keyward agent (else KEYWARD_AGENT)
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include <keyward/keyward.h>

#include "dispatch.h"
#include "provider.h"

#ifndef KEYWARD_VERSION
#define KEYWARD_VERSION "0"
#endif

#define FN(id, fn)                                                                                 \
	{                                                                                          \
		id, (void (*)(void))(fn)                                                           \
	}

/* ---- keymgmt ---- */

#define KEYMGMT_COMMON                                                                             \
	FN(OSSL_FUNC_KEYMGMT_NEW, kwp_keymgmt_new), FN(OSSL_FUNC_KEYMGMT_LOAD, kwp_keymgmt_load),  \
	    FN(OSSL_FUNC_KEYMGMT_FREE, kwp_keymgmt_free),                                          \
	    FN(OSSL_FUNC_KEYMGMT_DUP, kwp_keymgmt_dup),                                            \
	    FN(OSSL_FUNC_KEYMGMT_HAS, kwp_keymgmt_has),                                            \
	    FN(OSSL_FUNC_KEYMGMT_MATCH, kwp_keymgmt_match),                                        \
	    FN(OSSL_FUNC_KEYMGMT_EXPORT, kwp_keymgmt_export)

static const OSSL_DISPATCH ec_keymgmt[] = {
    KEYMGMT_COMMON,
    FN(OSSL_FUNC_KEYMGMT_GET_PARAMS, kwp_keymgmt_ec_get_params),
    FN(OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, kwp_keymgmt_ec_gettable_params),
    FN(OSSL_FUNC_KEYMGMT_EXPORT_TYPES, kwp_keymgmt_ec_export_types),
    FN(OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, kwp_keymgmt_ec_query_operation_name),
    {0, NULL}};

static const OSSL_DISPATCH rsa_keymgmt[] = {
    KEYMGMT_COMMON,
    FN(OSSL_FUNC_KEYMGMT_GET_PARAMS, kwp_keymgmt_rsa_get_params),
    FN(OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, kwp_keymgmt_rsa_gettable_params),
    FN(OSSL_FUNC_KEYMGMT_EXPORT_TYPES, kwp_keymgmt_rsa_export_types),
    FN(OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, kwp_keymgmt_rsa_query_operation_name),
    {0, NULL}};

static const OSSL_ALGORITHM keymgmts[] = {
    {KWP_NAMES_EC, KWP_PROPS, ec_keymgmt, "keyward hardware EC key"},
    {KWP_NAMES_RSA, KWP_PROPS, rsa_keymgmt, "keyward hardware RSA key"},
    {NULL, NULL, NULL, NULL}};

/* ---- signature ---- */

#define SIGNATURE_COMMON                                                                           \
	FN(OSSL_FUNC_SIGNATURE_FREECTX, kwp_sig_freectx),                                          \
	    FN(OSSL_FUNC_SIGNATURE_DUPCTX, kwp_sig_dupctx),                                        \
	    FN(OSSL_FUNC_SIGNATURE_SIGN_INIT, kwp_sig_sign_init),                                  \
	    FN(OSSL_FUNC_SIGNATURE_SIGN, kwp_sig_sign),                                            \
	    FN(OSSL_FUNC_SIGNATURE_VERIFY_INIT, kwp_sig_verify_init),                              \
	    FN(OSSL_FUNC_SIGNATURE_VERIFY, kwp_sig_verify),                                        \
	    FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, kwp_sig_digest_sign_init),                    \
	    FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, kwp_sig_digest_update),                     \
	    FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, kwp_sig_digest_sign_final),                  \
	    FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, kwp_sig_digest_verify_init),                \
	    FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, kwp_sig_digest_update),                   \
	    FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, kwp_sig_digest_verify_final),              \
	    FN(OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, kwp_sig_get_ctx_params),                        \
	    FN(OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, kwp_sig_gettable_ctx_params),              \
	    FN(OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, kwp_sig_set_ctx_params),                        \
	    FN(OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, kwp_sig_settable_ctx_params)

static const OSSL_DISPATCH ecdsa_signature[] = {
    FN(OSSL_FUNC_SIGNATURE_NEWCTX, kwp_sig_ecdsa_newctx), SIGNATURE_COMMON, {0, NULL}};

static const OSSL_DISPATCH rsa_signature[] = {
    FN(OSSL_FUNC_SIGNATURE_NEWCTX, kwp_sig_rsa_newctx), SIGNATURE_COMMON, {0, NULL}};

static const OSSL_ALGORITHM signatures[] = {
    {KWP_NAMES_ECDSA, KWP_PROPS, ecdsa_signature, "ECDSA signed in keyward's device"},
    {KWP_NAMES_RSA, KWP_PROPS, rsa_signature, "RSA signed in keyward's device"},
    {NULL, NULL, NULL, NULL}};

/* ---- decoder ---- */

static const OSSL_DISPATCH pem_decoder[] = {FN(OSSL_FUNC_DECODER_NEWCTX, kwp_dec_newctx),
                                            FN(OSSL_FUNC_DECODER_FREECTX, kwp_dec_freectx),
                                            FN(OSSL_FUNC_DECODER_DECODE, kwp_dec_pem_decode),
                                            {0, NULL}};

#define REF_DECODER_COMMON                                                                         \
	FN(OSSL_FUNC_DECODER_NEWCTX, kwp_dec_newctx),                                              \
	    FN(OSSL_FUNC_DECODER_FREECTX, kwp_dec_freectx),                                        \
	    FN(OSSL_FUNC_DECODER_DOES_SELECTION, kwp_dec_ref_does_selection),                      \
	    FN(OSSL_FUNC_DECODER_EXPORT_OBJECT, kwp_dec_ref_export_object)

static const OSSL_DISPATCH ec_ref_decoder[] = {
    REF_DECODER_COMMON, FN(OSSL_FUNC_DECODER_DECODE, kwp_dec_ref_ec_decode), {0, NULL}};

static const OSSL_DISPATCH rsa_ref_decoder[] = {
    REF_DECODER_COMMON, FN(OSSL_FUNC_DECODER_DECODE, kwp_dec_ref_rsa_decode), {0, NULL}};

#define REF_DECODER_PROPS KWP_PROPS ",input=der,structure=" KWP_REF_STRUCTURE

static const OSSL_ALGORITHM decoders[] = {
    {"DER", KWP_PROPS ",input=pem", pem_decoder, "PEM " KW_KEYREF_PEM_NAME " to DER"},
    {KWP_NAMES_EC, REF_DECODER_PROPS, ec_ref_decoder, "keyward reference to an EC key"},
    {KWP_NAMES_RSA, REF_DECODER_PROPS, rsa_ref_decoder, "keyward reference to an RSA key"},
    {NULL, NULL, NULL, NULL}};

/* ---- store ---- */

static const OSSL_DISPATCH store_loader[] = {
    FN(OSSL_FUNC_STORE_OPEN, kwp_store_open),
    FN(OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, kwp_store_settable_ctx_params),
    FN(OSSL_FUNC_STORE_SET_CTX_PARAMS, kwp_store_set_ctx_params),
    FN(OSSL_FUNC_STORE_LOAD, kwp_store_load),
    FN(OSSL_FUNC_STORE_EOF, kwp_store_eof),
    FN(OSSL_FUNC_STORE_CLOSE, kwp_store_close),
    {0, NULL}};

static const OSSL_ALGORITHM stores[] = {
    {"keyward", KWP_PROPS, store_loader, "keyward:NAME[?version=N] certificates and keys"},
    {NULL, NULL, NULL, NULL}};

/* ---- the provider itself ---- */

static OSSL_FUNC_provider_teardown_fn provider_teardown;
static OSSL_FUNC_provider_gettable_params_fn provider_gettable_params;
static OSSL_FUNC_provider_get_params_fn provider_get_params;
static OSSL_FUNC_provider_query_operation_fn provider_query_operation;
static OSSL_FUNC_provider_get_reason_strings_fn provider_get_reason_strings;

static const OSSL_ALGORITHM *provider_query_operation(void *provctx, int operation_id,
                                                      int *no_cache)
{
	(void)provctx;
	KWP_TRACE("provider_query_operation %d", operation_id);
	*no_cache = 0;
	switch (operation_id) {
	case OSSL_OP_KEYMGMT: return keymgmts;
	case OSSL_OP_SIGNATURE: return signatures;
	case OSSL_OP_DECODER: return decoders;
	case OSSL_OP_STORE: return stores;
	}
	return NULL;
}

static const OSSL_PARAM *provider_gettable_params(void *provctx)
{
	static const OSSL_PARAM list[] = {OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
	                                  OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
	                                  OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
	                                  OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
	                                  OSSL_PARAM_END};
	(void)provctx;
	KWP_TRACE("provider_gettable_params");
	return list;
}

static int provider_get_params(void *provctx, OSSL_PARAM params[])
{
	OSSL_PARAM *p;
	(void)provctx;
	KWP_TRACE("provider_get_params");
	if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL &&
	    !OSSL_PARAM_set_utf8_ptr(p, "keyward hardware key provider"))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL &&
	    !OSSL_PARAM_set_utf8_ptr(p, KEYWARD_VERSION))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL &&
	    !OSSL_PARAM_set_utf8_ptr(p, "keyward " KEYWARD_VERSION))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL &&
	    !OSSL_PARAM_set_int(p, 1))
		return 0;
	return 1;
}

static const OSSL_ITEM *provider_get_reason_strings(void *provctx)
{
	static const OSSL_ITEM reasons[] = {
	    {KWP_R_KEY_UNAVAILABLE, "cannot load the keyward key"},
	    {KWP_R_SIGN_FAILED, "the device failed to sign"},
	    {KWP_R_BAD_URI, "bad keyward: URI"},
	    {KWP_R_BAD_REFERENCE, "bad keyward key reference"},
	    {KWP_R_UNSUPPORTED, "not supported by the device"},
	    {KWP_R_PRIVATE_KEY_NOT_EXPORTABLE, "the private key cannot leave the device"},
	    {KWP_R_INVALID_ARGUMENT, "invalid argument"},
	    {KWP_R_INTERNAL, "internal error"},
	    {0, NULL}};
	(void)provctx;
	KWP_TRACE("provider_get_reason_strings");
	return reasons;
}

static void provider_teardown(void *provctx)
{
	kwp_ctx *prov = provctx;
	KWP_TRACE("provider_teardown");
	if (prov == NULL)
		return;
	OSSL_LIB_CTX_free(prov->libctx);
	OSSL_PROVIDER_unload(prov->core_default);
	OSSL_PROVIDER_unload(prov->app_default);
	OSSL_LIB_CTX_free(prov->core_libctx);
	free(prov->store_dir);
	free(prov->agent);
	free(prov);
}

static const OSSL_DISPATCH provider_functions[] = {
    FN(OSSL_FUNC_PROVIDER_TEARDOWN, provider_teardown),
    FN(OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, provider_gettable_params),
    FN(OSSL_FUNC_PROVIDER_GET_PARAMS, provider_get_params),
    FN(OSSL_FUNC_PROVIDER_QUERY_OPERATION, provider_query_operation),
    FN(OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, provider_get_reason_strings),
    {0, NULL}};

OSSL_LIB_CTX *kwp_core_enter(const kwp_ctx *prov)
{
	return OSSL_LIB_CTX_set0_default(prov->core_libctx);
}

void kwp_core_leave(OSSL_LIB_CTX *previous)
{
	OSSL_LIB_CTX_set0_default(previous);
}

char *kwp_store_dir(const kwp_ctx *prov)
{
	char *dir = NULL;
	if (prov->store_dir != NULL) {
		if ((dir = strdup(prov->store_dir)) == NULL)
			kwp_raise(prov, KWP_R_INTERNAL, "out of memory");
		return dir;
	}
	kw_error_clear();
	if (kw_store_default_dir(&dir) != KW_OK) {
		kwp_raise_kw(prov, KWP_R_KEY_UNAVAILABLE);
		return NULL;
	}
	return dir;
}

/*
 * OpenSSL 3.0 hands a fetch without properties the implementation of the
 * provider that was activated first; libssl, EVP_PKEY_fromdata, genpkey and
 * ECDHE all fetch "EC" and "RSA" that way. Our keymgmt can only load keys, so
 * the default provider must come first even when an application lists
 * keyward first (-provider keyward -provider default): it is activated here,
 * before keyward joins the application's provider store. Configuration
 * "load_default": "auto" (the default: unless a FIPS provider is active),
 * "yes" or "no".
 */
static void activate_default(kwp_ctx *prov, OSSL_FUNC_core_get_libctx_fn *get_libctx,
                             const char *mode)
{
	if (get_libctx == NULL || strcmp(mode, "no") == 0)
		return;
	/* the application's library context: we link the same libcrypto */
	OSSL_LIB_CTX *app = (OSSL_LIB_CTX *)get_libctx(prov->handle);
	if (strcmp(mode, "yes") != 0 && OSSL_PROVIDER_available(app, "fips"))
		return;
	prov->app_default = OSSL_PROVIDER_try_load(app, "default", 1);
	KWP_TRACE("provider_init: default provider %s",
	          prov->app_default ? "active" : "unavailable");
}

/* The parameters of the provider's configuration section. */
static int read_config(kwp_ctx *prov, OSSL_FUNC_core_get_params_fn *get_params,
                       OSSL_FUNC_core_get_libctx_fn *get_libctx)
{
	const char *store = NULL, *load_default = NULL, *agent = NULL;
	OSSL_PARAM params[] = {OSSL_PARAM_utf8_ptr("store", &store, 0),
	                       OSSL_PARAM_utf8_ptr("load_default", &load_default, 0),
	                       OSSL_PARAM_utf8_ptr("agent", &agent, 0), OSSL_PARAM_END};
	if (get_params == NULL || !get_params(prov->handle, params))
		store = load_default = agent = NULL;
	activate_default(prov, get_libctx, load_default ? load_default : "auto");
	if (agent != NULL && agent[0] != '\0' && (prov->agent = strdup(agent)) == NULL)
		return 0;
	if (store == NULL || store[0] == '\0')
		return 1;
	return (prov->store_dir = strdup(store)) != NULL;
}

__attribute__((visibility("default"))) int OSSL_provider_init(const OSSL_CORE_HANDLE *handle,
                                                              const OSSL_DISPATCH *in,
                                                              const OSSL_DISPATCH **out,
                                                              void **provctx)
{
	OSSL_FUNC_core_get_params_fn *get_params = NULL;
	OSSL_FUNC_core_get_libctx_fn *get_libctx = NULL;
	kwp_ctx *prov = calloc(1, sizeof(*prov));
	if (prov == NULL)
		return 0;
	prov->handle = handle;
	for (const OSSL_DISPATCH *f = in; f->function_id != 0; f++) {
		switch (f->function_id) {
		case OSSL_FUNC_CORE_GET_PARAMS: get_params = OSSL_FUNC_core_get_params(f); break;
		case OSSL_FUNC_CORE_GET_LIBCTX: get_libctx = OSSL_FUNC_core_get_libctx(f); break;
		case OSSL_FUNC_CORE_NEW_ERROR: prov->new_error = OSSL_FUNC_core_new_error(f); break;
		case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
			prov->set_error_debug = OSSL_FUNC_core_set_error_debug(f);
			break;
		case OSSL_FUNC_CORE_VSET_ERROR:
			prov->vset_error = OSSL_FUNC_core_vset_error(f);
			break;
		}
	}
	/* digests come from the application's providers, BIOs from its core */
	if (!read_config(prov, get_params, get_libctx) ||
	    (prov->libctx = OSSL_LIB_CTX_new_child(handle, in)) == NULL ||
	    (prov->core_libctx = OSSL_LIB_CTX_new()) == NULL ||
	    (prov->core_default = OSSL_PROVIDER_load(prov->core_libctx, "default")) == NULL) {
		provider_teardown(prov);
		return 0;
	}
	KWP_TRACE("provider_init (store: %s)",
	          prov->store_dir ? prov->store_dir : "KEYWARD_STORE or the default");
	*out = provider_functions;
	*provctx = prov;
	return 1;
}
