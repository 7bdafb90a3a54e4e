/* see tpm2_internal.h: the function table, open and close */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "tpm2_internal.h"

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

/* The CLI promises exactly one error line: tpm2-tss must not print its own
 * log lines unless the user asked for them (TSS2_LOG or KEYWARD_DEBUG). */
static void log_quiet(void)
{
	if (getenv("KEYWARD_DEBUG") == NULL)
		setenv("TSS2_LOG", "all+NONE", 0);
}

const char *kwb_tpm2_tcti_name(const kwb_tpm2_ctx *c)
{
	return c != NULL && c->tcti_conf != NULL ? c->tcti_conf : "(default)";
}

kw_rc kwb_tpm2_ready(const kwb_tpm2_ctx *c)
{
	if (!c->lost)
		return KW_OK;
	return KW_FAIL(
	    KW_ERR_UNAVAILABLE,
	    "the connection to the TPM (TCTI '%s') was lost earlier; close the backend and "
	    "open it again once the TPM (or swtpm/tpm2-abrmd) is back",
	    kwb_tpm2_tcti_name(c));
}

/*
 * The TCTI loader may try tpm2-abrmd's TCTI, whose GLib D-Bus client prints
 * "** CRITICAL **" lines of its own to stderr when there is no bus: keyward
 * promises one error line. Unless KEYWARD_DEBUG is set, stderr points at
 * /dev/null while the TCTI initialises (our own errors are reported after).
 */
static TSS2_RC tcti_init_quiet(kwb_tpm2_ctx *c)
{
	int saved = -1, devnull = -1;
	if (getenv("KEYWARD_DEBUG") == NULL) {
		fflush(stderr);
		saved = dup(STDERR_FILENO);
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (saved < 0 || devnull < 0 || dup2(devnull, STDERR_FILENO) < 0) {
			if (saved >= 0)
				close(saved);
			saved = -1;
		}
	}
	TSS2_RC trc = Tss2_TctiLdr_Initialize(c->tcti_conf, &c->tcti);
	if (saved >= 0) {
		fflush(stderr);
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	if (devnull >= 0)
		close(devnull);
	return trc;
}

static kw_rc connect_tpm(kwb_tpm2_ctx *c)
{
	TSS2_RC trc = tcti_init_quiet(c);
	TSS2_RC base;

	if (trc == TSS2_RC_SUCCESS)
		trc = Esys_Initialize(&c->esys, c->tcti, NULL);
	if (trc == TSS2_RC_SUCCESS)
		return KW_OK;
	base = kwb_tpm2_rc_base(trc);
	/* the TCTI library or its options are not what tctildr understands */
	if (base == TSS2_BASE_RC_NOT_SUPPORTED || base == TSS2_BASE_RC_BAD_VALUE)
		return KW_FAIL_DEV(
		    KW_ERR_UNAVAILABLE, trc,
		    "cannot use TCTI '%s': %s; check the TCTI name and options, e.g. "
		    "device:/dev/tpmrm0, tabrmd:bus_type=system or "
		    "swtpm:host=127.0.0.1,port=2321",
		    kwb_tpm2_tcti_name(c), Tss2_RC_Decode(trc));
	return KW_FAIL_DEV(
	    KW_ERR_UNAVAILABLE, trc,
	    "cannot reach the TPM through TCTI '%s': %s; is the TPM (or swtpm/tpm2-abrmd) "
	    "running?",
	    kwb_tpm2_tcti_name(c), Tss2_RC_Decode(trc));
}

static void ctx_free(kwb_tpm2_ctx *c)
{
	if (c == NULL)
		return;
	kwb_tpm2_signer_drop(c);
	kwb_tpm2_srk_release(c);
	if (c->esys != NULL)
		Esys_Finalize(&c->esys);
	if (c->tcti != NULL)
		Tss2_TctiLdr_Finalize(&c->tcti);
	free(c->tcti_conf);
	free(c);
}

kw_rc kwb_tpm2_open(const kw_backend_config *cfg, void **ctx)
{
	kw_rc rc = KW_OK;
	kwb_tpm2_ctx *c = NULL;

	if (cfg == NULL || ctx == NULL)
		return KW_FAIL(KW_ERR_USAGE,
		               "tpm2 open: no configuration or context pointer given");
	*ctx = NULL;
	pthread_once(&log_once, log_quiet);
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "tpm2 open: out of memory");
		goto out;
	}
	c->srk = ESYS_TR_NONE;
	c->signer = ESYS_TR_NONE;
	c->signer_nv = ESYS_TR_NONE;
	if (cfg->tcti != NULL && (c->tcti_conf = strdup(cfg->tcti)) == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "tpm2 open: out of memory");
		goto out;
	}
	rc = connect_tpm(c);
	if (rc != KW_OK)
		goto out;
	*ctx = c;
	c = NULL;
out:
	ctx_free(c);
	return rc;
}

void kwb_tpm2_close(void *ctx)
{
	ctx_free(ctx);
}

/*
 * The table's entries: each blocks SIGPIPE around the real operation (see
 * sigpipe.c) so that a TPM which vanished mid-session gives an error, not a
 * dead process.
 */
static kw_rc op_open(const kw_backend_config *cfg, void **ctx)
{
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kw_rc rc = kwb_tpm2_open(cfg, ctx);
	kwb_tpm2_sigpipe_restore(&g);
	return rc;
}

static void op_close(void *ctx)
{
	kwb_tpm2_sigpipe g;
	if (ctx == NULL)
		return;
	kwb_tpm2_sigpipe_block(&g);
	kwb_tpm2_close(ctx);
	kwb_tpm2_sigpipe_restore(&g);
}

static kw_rc op_key_generate(void *ctx, kw_key_type type, const char *label, kw_key_blob *out)
{
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kw_rc rc = kwb_tpm2_key_generate(ctx, type, label, out);
	kwb_tpm2_sigpipe_restore(&g);
	return rc;
}

static kw_rc op_key_generate_revocable(void *ctx, kw_key_type type, const char *label,
                                       kw_key_blob *out)
{
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kw_rc rc = kwb_tpm2_key_generate_revocable(ctx, type, label, out);
	kwb_tpm2_sigpipe_restore(&g);
	return rc;
}

static kw_rc op_key_destroy(void *ctx, const kw_key_blob *ref, kw_key_end *end)
{
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kw_rc rc = kwb_tpm2_key_destroy(ctx, ref, end);
	kwb_tpm2_sigpipe_restore(&g);
	return rc;
}

static kw_rc op_key_import(void *ctx, EVP_PKEY *key, kw_key_type type, const char *label,
                           kw_key_blob *out)
{
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kw_rc rc = kwb_tpm2_key_import(ctx, key, type, label, out);
	kwb_tpm2_sigpipe_restore(&g);
	return rc;
}

static kw_rc op_key_public(void *ctx, const kw_key_blob *ref, unsigned char **der, size_t *der_len)
{
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kw_rc rc = kwb_tpm2_key_public(ctx, ref, der, der_len);
	kwb_tpm2_sigpipe_restore(&g);
	return rc;
}

static kw_rc op_key_sign(void *ctx, const kw_key_blob *ref, const kw_sign_params *p,
                         const unsigned char *dgst, size_t dgst_len, unsigned char *sig,
                         size_t *sig_len)
{
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kw_rc rc = kwb_tpm2_key_sign(ctx, ref, p, dgst, dgst_len, sig, sig_len);
	kwb_tpm2_sigpipe_restore(&g);
	return rc;
}

static kw_rc op_key_attrs(void *ctx, const kw_key_blob *ref, kw_key_attrs *out)
{
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kw_rc rc = kwb_tpm2_key_attrs(ctx, ref, out);
	kwb_tpm2_sigpipe_restore(&g);
	return rc;
}

/* The tabrmd TCTI talks D-Bus through GLib, whose worker thread does not
 * survive fork(): a child of a process that used it hangs on its own. The
 * loader's default picks tabrmd when there is no /dev/tpmrm0. */
static int fork_safe(const kw_backend_config *cfg)
{
	if (cfg->tcti == NULL || cfg->tcti[0] == '\0')
		return access("/dev/tpmrm0", F_OK) == 0 || access("/dev/tpm0", F_OK) == 0;
	return strncmp(cfg->tcti, "tabrmd", 6) != 0;
}

static unsigned op_caps_config(const kw_backend_config *cfg)
{
	return fork_safe(cfg) ? KW_CAP_FORK_SAFE : 0;
}

static kw_rc op_key_ref_export(void *ctx, const kw_key_blob *ref, const char *format, char **out)
{
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kw_rc rc = kwb_tpm2_key_ref_export(ctx, ref, format, out);
	kwb_tpm2_sigpipe_restore(&g);
	return rc;
}

static kw_rc op_key_resolve(void *ctx, const char *spec, kw_key_blob *out, unsigned char **cert_der,
                            size_t *cert_len)
{
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kw_rc rc = kwb_tpm2_key_resolve(ctx, spec, out, cert_der, cert_len);
	kwb_tpm2_sigpipe_restore(&g);
	return rc;
}

static kw_rc op_key_certify(void *ctx, const kw_key_blob *ref, const unsigned char *nonce,
                            size_t nonce_len, json_t **evidence)
{
	kwb_tpm2_sigpipe g;
	kwb_tpm2_sigpipe_block(&g);
	kw_rc rc = kwb_tpm2_key_certify(ctx, ref, nonce, nonce_len, evidence);
	kwb_tpm2_sigpipe_restore(&g);
	return rc;
}

const kw_backend_ops kwb_tpm2_ops = {
    .kind = "tpm2",
    /* One command at a time per connection; PSS salt = digest length. */
    .caps = KW_CAP_RESOLVE_TSS2 | KW_CAP_CONF_TCTI,
    .caps_config = op_caps_config,
    .open = op_open,
    .close = op_close,
    .key_generate = op_key_generate,
    .key_generate_revocable = op_key_generate_revocable,
    .key_import = op_key_import,
    .key_public = op_key_public,
    .key_sign = op_key_sign,
    .key_attrs = op_key_attrs,
    .key_ref_export = op_key_ref_export,
    .key_resolve = op_key_resolve,
    .key_certify = op_key_certify,
    .key_destroy = op_key_destroy,
};
