/* see internal.h: POST /certificates/{name}/import — an existing key into hardware */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <sodium.h>

#include <keyward/import.h>

#include "internal.h"

/*
 * kw_cert_import reads files: the key material goes to it through an anonymous
 * memory file (memfd, mode 0600, never on a disk, emptied and closed right
 * after), named /proc/self/fd/N. Every copy the server made — the request body, the JSON
 * strings, the decoded PKCS#12 — is wiped before the reply.
 */
typedef struct {
	int fd;
	char path[64];
} memfile;

static int memfile_new(const char *name, const void *data, size_t len, memfile *m)
{
	m->fd = memfd_create(name, MFD_CLOEXEC);
	if (m->fd < 0 || fchmod(m->fd, 0600) != 0)
		return 0;
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(m->fd, (const char *)data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		done += (size_t)n;
	}
	snprintf(m->path, sizeof(m->path), "/proc/self/fd/%d", m->fd);
	return 1;
}

static void memfile_close(memfile *m)
{
	if (m->fd >= 0) {
		if (ftruncate(m->fd, 0) != 0) { /* best effort: the pages go back now */
		}
		close(m->fd);
	}
	m->fd = -1;
}

/* Wipes a JSON string's bytes in place before it is freed. */
static void wipe_string(json_t *v)
{
	if (json_is_string(v))
		sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

static void wipe_request(kws_req *r)
{
	struct evbuffer *in = r->http->body;
	size_t len = evbuffer_get_length(in);
	unsigned char *p = len ? evbuffer_pullup(in, -1) : NULL;
	if (p)
		sodium_memzero(p, len);
	evbuffer_drain(in, len);
	wipe_string(json_object_get(r->body, "pem"));
	wipe_string(json_object_get(r->body, "pkcs12"));
	wipe_string(json_object_get(r->body, "password"));
}

/* The key file's bytes: PEM as is, PKCS#12 from base64 (guarded memory). */
static int key_bytes(kws_req *r, unsigned char **out, size_t *len, int *is_p12)
{
	const char *pem = json_string_value(json_object_get(r->body, "pem"));
	const char *b64 = json_string_value(json_object_get(r->body, "pkcs12"));
	*out = NULL;
	*is_p12 = b64 != NULL;
	if ((pem == NULL) == (b64 == NULL)) {
		kws_reply_error(r, 400, "BadParameter",
		                "give one of pem (string) or pkcs12 (base64 string)");
		return 0;
	}
	size_t in = strlen(pem ? pem : b64);
	if (sodium_init() < 0 || (*out = sodium_malloc(in + 1)) == NULL) {
		kws_reply_error(r, 500, "InternalError", "out of guarded memory");
		return 0;
	}
	if (pem) {
		memcpy(*out, pem, in);
		*len = in;
	} else if (sodium_base642bin(*out, in + 1, b64, in, "\r\n", len, NULL,
	                             sodium_base64_VARIANT_ORIGINAL) != 0 ||
	           *len == 0) {
		kws_reply_error(r, 400, "BadParameter", "pkcs12: not base64");
		sodium_free(*out);
		*out = NULL;
		return 0;
	}
	return 1;
}

#define PW_VAR "KEYWARD_API_IMPORT_PASSWORD"

/* The password reaches kw_cert_import as env:PW_VAR for the length of the
 * call: putenv keeps our guarded buffer (no copy), which is taken out of the
 * environment before it is wiped. */
static char *password_env(json_t *pw)
{
	size_t n = strlen(PW_VAR "=") + json_string_length(pw) + 1;
	char *e = sodium_malloc(n);
	if (e == NULL)
		return NULL;
	snprintf(e, n, PW_VAR "=%s", json_string_value(pw));
	if (putenv(e) != 0) {
		sodium_free(e);
		return NULL;
	}
	return e;
}

static void password_env_clear(char *e)
{
	if (e == NULL)
		return;
	unsetenv(PW_VAR);
	sodium_memzero(e, strlen(e));
	sodium_free(e);
}

static void import_run(kws_req *r, const unsigned char *key, size_t len, int is_p12)
{
	memfile kf = {-1, ""};
	json_t *pw = json_object_get(r->body, "password");
	json_t *out = NULL;
	char *env = NULL;
	if (!memfile_new("keyward-import", key, len, &kf) ||
	    (pw && (env = password_env(pw)) == NULL)) {
		kws_reply_error(r, 500, "InternalError", "cannot hold the import in memory: %s",
		                strerror(errno));
		memfile_close(&kf);
		return;
	}
	kw_cert_import_request req = {
	    .name = r->segs[1],
	    .backend = json_string_value(json_object_get(r->body, "backend")),
	    .pem_path = is_p12 ? NULL : kf.path,
	    .pkcs12_path = is_p12 ? kf.path : NULL,
	    .password_source = pw ? "env:" PW_VAR : NULL,
	    /* the client sent bytes, not a file: messages name the field */
	    .input_name = is_p12 ? "the request's pkcs12" : "the request's pem",
	};
	kw_rc rc = kw_cert_import(r->store, &req, &out);
	password_env_clear(env);
	memfile_close(&kf);
	if (rc == KW_ERR_AUTH && pw) /* most likely the request's password */
		kws_reply_error(r, 400, "BadParameter", "%s", kw_error_message());
	else if (rc != KW_OK)
		kws_reply_rc(r, rc);
	else
		kws_reply_json(r, 201, out);
}

void kws_cert_import(kws_req *r)
{
	static const char *const known[] = {"backend", "pem", "pkcs12", "password", NULL};
	unsigned char *key = NULL;
	size_t len = 0;
	int is_p12 = 0;
	if (kws_body_object(r, known, 0)) {
		json_t *b = json_object_get(r->body, "backend");
		json_t *pw = json_object_get(r->body, "password");
		if (!json_is_string(b) || (pw && !json_is_string(pw)))
			kws_reply_error(r, 400, "BadParameter",
			                "backend (string) is required; password is a string");
		else if (key_bytes(r, &key, &len, &is_p12))
			import_run(r, key, len, is_p12);
	}
	if (key) {
		sodium_memzero(key, len);
		sodium_free(key);
	}
	wipe_request(r);
}
