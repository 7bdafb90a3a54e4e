/* see p11.h */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <p11-kit/uri.h>

#include "p11.h"

/* How much of the list of seen labels goes into a "not found" message. */
#define LABEL_LIST_MAX 200

void kwb_p11_str_trim(char *dst, const unsigned char *src, size_t n)
{
	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *p11kit_why(void)
{
	const char *m = p11_kit_message();
	return m ? m : "no detail from p11-kit";
}

static kw_rc load_path(kwb_p11 *p, const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return KW_FAIL(errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO,
		               "PKCS#11 module %s: %s; check the backend's module path or give a "
		               "p11-kit module name (p11-kit list-modules)",
		               path, strerror(errno));
	p->fn = p11_kit_module_load(path, 0);
	if (p->fn == NULL)
		return KW_FAIL(KW_ERR_UNAVAILABLE,
		               "cannot load PKCS#11 module %s: %s; check that it is a PKCS#11 "
		               "library for this architecture",
		               path, p11kit_why());
	return KW_OK;
}

/* "a, b, c" of the registered module names, cut to fit. */
static void module_names(CK_FUNCTION_LIST **all, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; all[i] != NULL && used < size; i++) {
		char *name = p11_kit_module_get_name(all[i]);
		int n =
		    snprintf(buf + used, size - used, "%s%s", used ? ", " : "", name ? name : "?");
		free(name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (buf[0] == '\0')
		snprintf(buf, size, "none");
}

static kw_rc load_named(kwb_p11 *p, const char *name)
{
	char names[LABEL_LIST_MAX];
	CK_FUNCTION_LIST **all = p11_kit_modules_load(NULL, 0);

	if (all == NULL)
		return KW_FAIL(
		    KW_ERR_UNAVAILABLE,
		    "cannot load the p11-kit module configuration to find module '%s': %s", name,
		    p11kit_why());
	CK_FUNCTION_LIST *m = p11_kit_module_for_name(all, name);
	if (m == NULL) {
		module_names(all, names, sizeof(names));
		p11_kit_modules_release(all);
		return KW_FAIL(KW_ERR_NOT_FOUND,
		               "no p11-kit module named '%s' (registered: %s); give a registered "
		               "module name or the path of the module's .so",
		               name, names);
	}
	/* Keep only the chosen one; the array itself is plain malloc'd memory. */
	for (size_t i = 0; all[i] != NULL; i++)
		if (all[i] != m)
			p11_kit_module_release(all[i]);
	free(all);
	p->fn = m;
	return KW_OK;
}

kw_rc kwb_p11_module_load(kwb_p11 *p, const char *spec)
{
	if (spec == NULL || spec[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE, "no PKCS#11 module configured: give a p11-kit module "
		                             "name (e.g. softhsm2) or the path of a module .so");
	snprintf(p->module, sizeof(p->module), "%s", spec);
	KW_GUARD(strchr(spec, '/') ? load_path(p, spec) : load_named(p, spec));
	CK_RV rv = p11_kit_module_initialize(p->fn);
	if (rv != CKR_OK)
		return KW_FAIL_DEV(
		    KW_ERR_UNAVAILABLE, rv,
		    "cannot initialise PKCS#11 module %s: %s; check the module's own "
		    "configuration (e.g. SOFTHSM2_CONF for SoftHSM)",
		    spec, kwb_p11_rv_name(rv));
	p->initialized = 1;
	return KW_OK;
}

void kwb_p11_module_unload(kwb_p11 *p)
{
	if (p->fn == NULL)
		return;
	if (p->initialized)
		(void)p11_kit_module_finalize(p->fn);
	p11_kit_module_release(p->fn);
	p->fn = NULL;
	p->initialized = 0;
}

/* ---- token selection ---- */

typedef struct {
	const char *spec; /* as configured */
	char shown[256];  /* as messages show it */
	P11KitUri *uri;   /* NULL when spec is a label */
	char seen[LABEL_LIST_MAX];
	size_t seen_len;
	size_t matches;
	CK_SLOT_ID slot;
	char label[KWB_P11_LABEL_MAX + 1];
} token_search;

/* The URI as messages show it: never its query, which may hold a pin-value. */
static void uri_shown(char *dst, size_t size, const char *spec)
{
	size_t n = strncmp(spec, "pkcs11:", 7) == 0 ? strcspn(spec, "?") : strlen(spec);

	snprintf(dst, size, "%.*s%s", (int)n, spec, spec[n] ? "?..." : "");
}

static kw_rc uri_parse(const char *spec, const char *shown, P11KitUri **out)
{
	P11KitUri *uri = p11_kit_uri_new();
	kw_rc rc = KW_OK;

	*out = NULL;
	if (uri == NULL)
		return KW_FAIL(KW_ERR_NOMEM, "out of memory parsing PKCS#11 URI '%s'", shown);
	int r = p11_kit_uri_parse(spec, P11_KIT_URI_FOR_TOKEN, uri);
	if (r != P11_KIT_URI_OK)
		rc = KW_FAIL(KW_ERR_PARSE,
		             "malformed PKCS#11 token URI '%s': %s; write it as in RFC 7512, "
		             "e.g. pkcs11:token=LABEL (percent-encode special characters)",
		             shown, p11_kit_uri_message(r));
	/* Ignoring an attribute would widen the match to tokens not meant. */
	else if (p11_kit_uri_any_unrecognized(uri))
		rc = KW_FAIL(KW_ERR_PARSE,
		             "PKCS#11 token URI '%s' has attributes that do not select a token "
		             "(object, id, type, slot-*, library-* or unknown ones); keep only "
		             "token, manufacturer, model and serial",
		             shown);
	else if (p11_kit_uri_get_pin_value(uri) != NULL)
		rc = KW_FAIL(KW_ERR_USAGE,
		             "PKCS#11 token URI '%s' carries a pin-value; remove it — keyward "
		             "reads the PIN only from the backend's pin source",
		             shown);
	if (rc != KW_OK) {
		p11_kit_uri_free(uri);
		return rc;
	}
	*out = uri;
	return KW_OK;
}

static void seen_add(token_search *s, const char *label)
{
	if (s->seen_len >= sizeof(s->seen) - 1)
		return;
	int n = snprintf(s->seen + s->seen_len, sizeof(s->seen) - s->seen_len, "%s'%s'",
	                 s->seen_len ? ", " : "", label);
	if (n > 0)
		s->seen_len += (size_t)n;
	if (s->seen_len >= sizeof(s->seen))
		s->seen_len = sizeof(s->seen) - 1;
}

static kw_rc slot_consider(kwb_p11 *p, token_search *s, CK_SLOT_ID slot)
{
	CK_TOKEN_INFO info;
	char label[KWB_P11_LABEL_MAX + 1];
	CK_RV rv = p->fn->C_GetTokenInfo(slot, &info);

	/* A token pulled between C_GetSlotList and here is simply not there. */
	if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED ||
	    rv == CKR_DEVICE_REMOVED)
		return KW_OK;
	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "cannot read token information in module %s (slot %lu): %s",
		                   p->module, (unsigned long)slot, kwb_p11_rv_name(rv));
	if (!(info.flags & CKF_TOKEN_INITIALIZED))
		return KW_OK;
	kwb_p11_str_trim(label, info.label, sizeof(info.label));
	seen_add(s, label);
	int match =
	    s->uri ? p11_kit_uri_match_token_info(s->uri, &info) : strcmp(label, s->spec) == 0;
	if (match && s->matches++ == 0) {
		s->slot = slot;
		memcpy(s->label, label, sizeof(label));
	}
	return KW_OK;
}

static kw_rc slots_get(kwb_p11 *p, CK_SLOT_ID **slots, CK_ULONG *n)
{
	CK_ULONG count = 0;
	CK_RV rv;

	*slots = NULL;
	*n = 0;
	/* A token can appear between the two calls: retry on BUFFER_TOO_SMALL. */
	for (int tries = 0;; tries++) {
		rv = p->fn->C_GetSlotList(CK_TRUE, NULL, &count);
		if (rv != CKR_OK || count == 0)
			break;
		free(*slots);
		*slots = calloc(count, sizeof(**slots));
		if (*slots == NULL)
			return KW_FAIL(KW_ERR_NOMEM, "out of memory listing slots of module %s",
			               p->module);
		rv = p->fn->C_GetSlotList(CK_TRUE, *slots, &count);
		if (rv != CKR_BUFFER_TOO_SMALL || tries == 3)
			break;
	}
	if (rv != CKR_OK)
		return KW_FAIL_DEV(kwb_p11_rv_code(rv), rv,
		                   "cannot list the slots of PKCS#11 module %s: %s", p->module,
		                   kwb_p11_rv_name(rv));
	*n = count;
	return KW_OK;
}

static kw_rc search_result(kwb_p11 *p, const token_search *s)
{
	if (s->matches == 0 && s->seen_len == 0)
		return KW_FAIL(
		    KW_ERR_NOT_FOUND,
		    "no PKCS#11 token '%s' in module %s (it shows no initialised token); "
		    "initialise the token or check the module's configuration",
		    s->shown, p->module);
	if (s->matches == 0)
		return KW_FAIL(KW_ERR_NOT_FOUND,
		               "no PKCS#11 token '%s' in module %s (tokens found: %s); "
		               "use one of those labels or a pkcs11: URI",
		               s->shown, p->module, s->seen);
	if (s->matches > 1)
		return KW_FAIL(KW_ERR_USAGE,
		               "PKCS#11 token '%s' matches %zu tokens in module %s (tokens found: "
		               "%s); select one with a pkcs11: URI naming its serial",
		               s->shown, s->matches, p->module, s->seen);
	p->slot = s->slot;
	memcpy(p->token, s->label, sizeof(p->token));
	return KW_OK;
}

kw_rc kwb_p11_token_select(kwb_p11 *p, const char *spec)
{
	kw_rc rc = KW_OK;
	token_search s;
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;

	if (spec == NULL || spec[0] == '\0')
		return KW_FAIL(KW_ERR_USAGE,
		               "no PKCS#11 token configured for module %s: give a "
		               "token label or a pkcs11: URI",
		               p->module);
	memset(&s, 0, sizeof(s));
	s.spec = spec;
	uri_shown(s.shown, sizeof(s.shown), spec);
	if (strncmp(spec, "pkcs11:", 7) == 0)
		KW_GUARD(uri_parse(spec, s.shown, &s.uri));
	rc = slots_get(p, &slots, &n);
	if (rc != KW_OK)
		goto out;
	for (CK_ULONG i = 0; i < n; i++) {
		rc = slot_consider(p, &s, slots[i]);
		if (rc != KW_OK)
			goto out;
	}
	rc = search_result(p, &s);
out:
	free(slots);
	if (s.uri != NULL)
		p11_kit_uri_free(s.uri);
	return rc;
}
