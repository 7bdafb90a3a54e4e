/* see tpm2_internal.h: custody attributes read back from the TPM */
#include <stdio.h>
#include <stdlib.h>

#include "tpm2_internal.h"

/* see tpm2_internal.h */
char *kwb_tpm2_hex(const unsigned char *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *s = malloc(2 * n + 1);

	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = digits[b[i] >> 4];
		s[2 * i + 1] = digits[b[i] & 15];
	}
	s[2 * n] = '\0';
	return s;
}

/* objectAttributes bits by their TPM 2.0 Part 2 names */
static const struct {
	const char *name;
	TPMA_OBJECT bit;
} attr_bits[] = {
    {"fixedTPM", TPMA_OBJECT_FIXEDTPM},
    {"fixedParent", TPMA_OBJECT_FIXEDPARENT},
    {"sensitiveDataOrigin", TPMA_OBJECT_SENSITIVEDATAORIGIN},
    {"userWithAuth", TPMA_OBJECT_USERWITHAUTH},
    {"sign", TPMA_OBJECT_SIGN_ENCRYPT},
    {"decrypt", TPMA_OBJECT_DECRYPT},
    {"restricted", TPMA_OBJECT_RESTRICTED},
    {"noDA", TPMA_OBJECT_NODA},
};

static json_t *evidence_new(TPMA_OBJECT a, const char *parent, const TPM2B_NAME *name)
{
	char attrs[16];
	char *name_hex = kwb_tpm2_hex(name->name, name->size);
	json_t *j = json_object();
	int ok = j != NULL && name_hex != NULL;

	snprintf(attrs, sizeof(attrs), "0x%08x", (unsigned)a);
	ok = ok && json_object_set_new(j, "device", json_string("tpm2")) == 0 &&
	     json_object_set_new(j, "object_attributes", json_string(attrs)) == 0;
	for (size_t i = 0; ok && i < sizeof(attr_bits) / sizeof(attr_bits[0]); i++)
		ok = json_object_set_new(j, attr_bits[i].name,
		                         json_boolean(a & attr_bits[i].bit)) == 0;
	ok = ok && json_object_set_new(j, "parent", json_string(parent)) == 0 &&
	     json_object_set_new(j, "name", json_string(name_hex)) == 0;
	free(name_hex);
	if (!ok) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* "revocable", and for a revocable key its counter as the TPM has it now:
 * "revocation": {nv_index, required_value, live}. */
static kw_rc revocation_add(kwb_tpm2_ctx *c, const kw_key_blob *ref, json_t *evidence)
{
	kwb_tpm2_blob b;
	char index[16];
	int live = 0;
	KW_GUARD(kwb_tpm2_blob_parse(ref, &b));
	int revocable = kwb_tpm2_blob_revocable(&b);
	if (json_object_set_new(evidence, "revocable", json_boolean(revocable)) != 0)
		return KW_FAIL(KW_ERR_NOMEM, "tpm2 key_attrs: out of memory");
	if (!revocable)
		return KW_OK;
	KW_GUARD(kwb_tpm2_nv_live(c, &b, &live));
	snprintf(index, sizeof(index), "0x%08x", (unsigned)b.nv_index);
	json_t *r = json_pack("{s:s,s:I,s:b}", "nv_index", index, "required_value",
	                      (json_int_t)b.nv_value, "live", live);
	if (r == NULL || json_object_set_new(evidence, "revocation", r) != 0)
		return KW_FAIL(KW_ERR_NOMEM, "tpm2 key_attrs: out of memory");
	return KW_OK;
}

kw_rc kwb_tpm2_key_attrs(void *ctx, const kw_key_blob *ref, kw_key_attrs *out)
{
	kw_rc rc = KW_OK;
	kwb_tpm2_ctx *c = ctx;
	kwb_tpm2_loaded key = KWB_TPM2_LOADED_INIT;
	TPMA_OBJECT a;

	if (c == NULL || out == NULL)
		return KW_FAIL(KW_ERR_USAGE, "tpm2 key_attrs: no context or output given");
	out->exportable = 1;
	out->generated_on_device = 0;
	out->evidence = NULL;
	rc = kwb_tpm2_key_load_ref(c, ref, &key);
	if (rc != KW_OK)
		goto out;
	/* the TPM's own view of the loaded object, not the blob's claim */
	a = key.pub->publicArea.objectAttributes;
	out->evidence = evidence_new(a, kwb_tpm2_srk_describe(c), key.name);
	if (out->evidence == NULL) {
		rc = KW_FAIL(KW_ERR_NOMEM, "tpm2 key_attrs: out of memory");
		goto out;
	}
	/* TPM2_Duplicate needs fixedParent clear and the DUP role, which only a
	 * policy session satisfies: an empty authPolicy makes it impossible
	 * (imported keys have fixedTPM/fixedParent clear by TPM rule). */
	out->exportable = !(a & TPMA_OBJECT_FIXEDPARENT) && key.pub->publicArea.authPolicy.size > 0;
	if (json_object_set_new(out->evidence, "duplicable", json_boolean(out->exportable)) != 0 ||
	    json_object_set_new(out->evidence, "auth_policy_empty",
	                        json_boolean(key.pub->publicArea.authPolicy.size == 0)) != 0 ||
	    json_object_set_new(out->evidence, "origin",
	                        json_string(a & TPMA_OBJECT_SENSITIVEDATAORIGIN
	                                        ? "generated in this TPM"
	                                        : "imported: not generated on the device; "
	                                          "duplication impossible (empty authPolicy)")) !=
	        0) {
		rc = KW_FAIL(KW_ERR_NOMEM, "tpm2 key_attrs: out of memory");
		goto out;
	}
	out->generated_on_device = (a & TPMA_OBJECT_SENSITIVEDATAORIGIN) != 0;
	rc = revocation_add(c, ref, out->evidence);
out:
	kwb_tpm2_key_unload(c, &key);
	return rc;
}
