/* see backend.h */
#include <stdlib.h>
#include <string.h>

#include "backend.h"

static const struct {
	kw_key_type type;
	const char *name;
} key_names[] = {
    {KW_KEY_EC_P256, "ec-p256"},   {KW_KEY_EC_P384, "ec-p384"},   {KW_KEY_RSA_2048, "rsa-2048"},
    {KW_KEY_RSA_3072, "rsa-3072"}, {KW_KEY_RSA_4096, "rsa-4096"},
};

const char *kw_key_type_name(kw_key_type t)
{
	for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++)
		if (key_names[i].type == t)
			return key_names[i].name;
	return NULL;
}

kw_key_type kw_key_type_from_name(const char *name)
{
	for (size_t i = 0; name && i < sizeof(key_names) / sizeof(key_names[0]); i++)
		if (strcmp(key_names[i].name, name) == 0)
			return key_names[i].type;
	return 0;
}

int kw_key_type_is_rsa(kw_key_type t)
{
	return t == KW_KEY_RSA_2048 || t == KW_KEY_RSA_3072 || t == KW_KEY_RSA_4096;
}

void kw_key_blob_clear(kw_key_blob *ref)
{
	if (ref == NULL)
		return;
	free(ref->data);
	ref->data = NULL;
	ref->len = 0;
}

void kw_key_attrs_clear(kw_key_attrs *a)
{
	if (a == NULL)
		return;
	json_decref(a->evidence);
	memset(a, 0, sizeof(*a));
}

const kw_backend_ops *kw_backend_ops_find(const char *kind)
{
	if (kind == NULL)
		return NULL;
	if (strcmp(kind, kwb_tpm2_ops.kind) == 0)
		return &kwb_tpm2_ops;
	if (strcmp(kind, kwb_p11_ops.kind) == 0)
		return &kwb_p11_ops;
	return NULL;
}

unsigned kw_backend_caps(const kw_backend_ops *ops, const kw_backend_config *cfg)
{
	if (ops == NULL)
		return 0;
	if (cfg == NULL || ops->caps_config == NULL)
		return ops->caps;
	return ops->caps | ops->caps_config(cfg);
}

void kw_device_keys_free(kw_device_key *keys, size_t n)
{
	for (size_t i = 0; keys && i < n; i++)
		kw_key_blob_clear(&keys[i].ref);
	free(keys);
}
