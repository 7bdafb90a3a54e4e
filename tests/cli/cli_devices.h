/*
 * keyward CLI end-to-end tests: what independent tools read from a
 * certificate (openssl) and from the devices (pkcs11-tool, p11tool,
 * tpm2-tools). Static, header only.
 */
#ifndef KW_CLI_DEVICES_H
#define KW_CLI_DEVICES_H

#include "cli_test.h"

/* ---- what openssl says ---- */

/* "sha1 Fingerprint=AB:CD" / "serial=ABCD" → "abcd" (in place). */
static inline char *cli_hex_norm(char *s)
{
	char *eq = strchr(s, '=');
	char *src = eq ? eq + 1 : s, *dst = s;
	for (; *src; src++)
		if (isxdigit((unsigned char)*src))
			*dst++ = (char)tolower((unsigned char)*src);
	*dst = '\0';
	return s;
}

static inline int cli_is_lower_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
			return 0;
	return 1;
}

/* The line after the line containing header in text, trimmed (malloc'd), or NULL. */
static inline char *cli_line_after(const char *text, const char *header)
{
	const char *p = strstr(text, header);
	if (p == NULL || (p = strchr(p, '\n')) == NULL)
		return NULL;
	p++;
	while (*p == ' ')
		p++;
	size_t n = strcspn(p, "\n");
	char *s = strndup(p, n);
	return cli_trim(s);
}

/* An "IP:..." / "IP Address:..." / "DNS:..." SAN in keyward's spelling, IPs canonical. */
static inline void cli_san_norm(const char *in, char *out, size_t len)
{
	unsigned char a[16];
	char ip[INET6_ADDRSTRLEN];
	const char *v = NULL;
	if (strncmp(in, "IP Address:", 11) == 0)
		v = in + 11;
	else if (strncmp(in, "IP:", 3) == 0)
		v = in + 3;
	if (v == NULL) {
		snprintf(out, len, "%s", in);
		return;
	}
	int af = strchr(v, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(af, v, a) == 1 && inet_ntop(af, a, ip, sizeof(ip)))
		snprintf(out, len, "IP:%s", ip);
	else
		snprintf(out, len, "IP:?%s", v);
}

/* The SANs openssl reads from the certificate, compared with keyward's JSON. */
static inline void cli_assert_sans(const char *pem_path, const json_t *sans)
{
	char *text = cli_out("openssl x509 -in '%s' -noout -ext subjectAltName", pem_path);
	char *line = cli_line_after(text, "X509v3 Subject Alternative Name");
	size_t i = 0;
	if (json_array_size(sans) == 0) {
		cr_assert(line == NULL, "keyward shows no SAN, openssl finds: %s", text);
		free(text);
		return;
	}
	cr_assert(line != NULL, "no subjectAltName in the certificate: %s", text);
	char *save = NULL;
	for (char *tok = strtok_r(line, ",", &save); tok; tok = strtok_r(NULL, ",", &save), i++) {
		char a[300], b[300];
		while (*tok == ' ')
			tok++;
		cr_assert(i < json_array_size(sans),
		          "openssl finds more SANs than keyward shows: %s", text);
		cli_san_norm(tok, a, sizeof(a));
		cli_san_norm(json_string_value(json_array_get(sans, i)), b, sizeof(b));
		cr_assert_str_eq(a, b, "SAN %zu: openssl says %s, keyward says %s", i, a, b);
	}
	cr_assert_eq(i, json_array_size(sans), "openssl finds %zu SANs, keyward shows %zu", i,
	             json_array_size(sans));
	free(line);
	free(text);
}

/* ---- public keys as the devices report them ---- */

static inline char *cli_cert_pubkey(const char *pem_path)
{
	return cli_out("openssl x509 -in '%s' -noout -pubkey", pem_path);
}

/* p11tool reads the public key object with this CKA_ID from the token (PEM). */
static inline char *cli_p11tool_pubkey(const char *cka_id)
{
	char uri_id[256] = "";
	for (size_t i = 0; cka_id[i] && cka_id[i + 1] && strlen(uri_id) + 4 < sizeof(uri_id);
	     i += 2)
		snprintf(uri_id + strlen(uri_id), sizeof(uri_id) - strlen(uri_id), "%%%c%c",
		         cka_id[i], cka_id[i + 1]);
	/* with --outfile: without it p11tool sleeps 3 s after a warning */
	char *dir = kwt_tmpdir("p11tool");
	char *pem = cli_out("GNUTLS_PIN='%s' p11tool --provider '%s' --export-pubkey "
	                    "'pkcs11:token=%s;id=%s;type=public' --outfile '%s/pub.pem' "
	                    ">/dev/null 2>&1 && cat '%s/pub.pem'",
	                    kwt_env("KW_TEST_P11_PIN"), kwt_env("KW_TEST_P11_MODULE"),
	                    kwt_env("KW_TEST_P11_TOKEN"), uri_id, dir, dir);
	free(dir);
	return pem;
}

/* pkcs11-tool reads the same object (DER), openssl turns it into PEM. */
static inline char *cli_pkcs11tool_pubkey(const char *cka_id)
{
	char *dir = kwt_tmpdir("p11pub");
	char *pem =
	    cli_out("pkcs11-tool --module '%s' --token-label '%s' --read-object --type pubkey "
	            "--id %s -o '%s/pub.der' >/dev/null 2>&1 && "
	            "openssl pkey -pubin -inform DER -in '%s/pub.der'",
	            kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"), cka_id, dir, dir);
	free(dir);
	return pem;
}

/* pkcs11-tool --list-objects (logged in). */
static inline char *cli_p11_list(void)
{
	return kwt_sh_out("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                  "--list-objects 2>/dev/null",
	                  kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                  kwt_env("KW_TEST_P11_PIN"));
}

/* The block of `pkcs11-tool --list-objects` for the object of kind
 * ("Private Key Object") with this CKA_ID (malloc'd), or NULL. */
static inline char *cli_p11_object(const char *kind, const char *cka_id)
{
	char *all = cli_p11_list();
	char *found = NULL;
	char idline[200];
	snprintf(idline, sizeof(idline), "ID:         %s\n", cka_id);
	for (char *b = all; b && *b;) {
		char *next = b;
		/* a block runs until the next line that does not start with a space */
		for (;;) {
			next = strchr(next, '\n');
			if (next == NULL || next[1] != ' ')
				break;
			next++;
		}
		size_t len = next ? (size_t)(next - b) + 1 : strlen(b);
		char *block = strndup(b, len);
		if (strncmp(block, kind, strlen(kind)) == 0 && strstr(block, idline) != NULL &&
		    found == NULL)
			found = block;
		else
			free(block);
		b = next ? next + 1 : NULL;
	}
	free(all);
	return found;
}

/* How many objects on the token carry this exact CKA_LABEL. */
static inline int cli_p11_label_count(const char *label)
{
	char *all = cli_p11_list();
	char line[300];
	int n = 0;
	snprintf(line, sizeof(line), "  label:      %s\n", label);
	for (char *p = all; (p = strstr(p, line)) != NULL; p += strlen(line))
		n++;
	free(all);
	return n;
}

static inline int cli_hexval(char c)
{
	return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

/*
 * The TPM's own view of a version's key: the key blob in the store is
 * [format byte][TPM2B_PUBLIC][TPM2B_PRIVATE] (backends/tpm2/blob.c). tpm2-tools
 * recreate the SRK (TCG template, as keyward does), TPM2_Load the blob — the
 * TPM checks the wrapped private part belongs to this public area and this SRK
 * — and TPM2_ReadPublic the loaded object. Returns the PEM public key; *attrs
 * gets tpm2_readpublic's text (object attributes) when not NULL.
 */
static inline char *cli_tpm_pubkey(const char *store, const char *name, int version, char **attrs)
{
	char *hex = cli_out("sqlite3 '%s/keyward.db' \"SELECT hex(v.key_ref) FROM versions v JOIN "
	                    "certs c ON c.id = v.cert_id WHERE c.name = '%s' AND v.version = %d\"",
	                    store, name, version);
	size_t n = strlen(hex) / 2;
	cr_assert(n > 8, "no TPM key blob for %s version %d", name, version);
	unsigned char *b = malloc(n);
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(cli_hexval(hex[2 * i]) << 4 | cli_hexval(hex[2 * i + 1]));
	cr_assert_eq(b[0], 1, "TPM key blob format byte is %u", b[0]);
	size_t pub_len = 2 + ((size_t)b[1] << 8 | b[2]);
	cr_assert(1 + pub_len + 2 <= n, "TPM key blob too short");
	size_t priv_len = 2 + ((size_t)b[1 + pub_len] << 8 | b[2 + pub_len]);
	cr_assert_eq(1 + pub_len + priv_len, n, "TPM key blob has a bad length");
	char *dir = kwt_tmpdir("tpmpub");
	free(kwt_write_file(dir, "k.pub", b + 1, pub_len, 0600));
	free(kwt_write_file(dir, "k.priv", b + 1 + pub_len, priv_len, 0600));
	free(b);
	free(hex);
	char *text = cli_out(
	    "cd '%s' && export TPM2TOOLS_TCTI='%s' && tpm2_flushcontext -t && "
	    "tpm2_createprimary -Q -C o -g sha256 -G ecc256:null:aes128cfb "
	    "-a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda' "
	    "-c p.ctx && tpm2_flushcontext -t && "
	    "tpm2_load -Q -C p.ctx -u k.pub -r k.priv -c k.ctx && tpm2_flushcontext -t && "
	    "tpm2_readpublic -c k.ctx -f pem -o k.pem; rc=$?; tpm2_flushcontext -t; exit $rc",
	    dir, kwt_env("KW_TEST_TCTI"));
	char *path = NULL;
	cr_assert(asprintf(&path, "%s/k.pem", dir) > 0);
	char *pem = kwt_read_file(path, NULL);
	cr_assert(pem != NULL, "tpm2-tools could not load %s version %d: %s", name, version, text);
	free(path);
	free(dir);
	if (attrs)
		*attrs = text;
	else
		free(text);
	return cli_trim(pem);
}

/* ---- the device signs ---- */

/* A signature made by the device (the CSR keyward signs there for the
 * certificate name, written to dir/dev.csr) verifies and carries the public
 * key of dir/cert.pem. */
static inline void cli_assert_device_signs_for(const char *store, const char *name, const char *dir)
{
	kwt_result r;
	char out[512];
	snprintf(out, sizeof(out), "%s/dev.csr", dir);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "csr", name, "--out", out));
	kwt_result_free(&r);
	cr_assert_eq(kwt_sh("openssl req -in '%s' -verify -noout >/dev/null 2>&1", out), 0,
	             "the CSR signed in the device verifies");
	char *csr_pub = cli_out("openssl req -in '%s' -noout -pubkey", out);
	char *cert_pub = cli_out("openssl x509 -in '%s/cert.pem' -noout -pubkey", dir);
	cr_assert_str_eq(csr_pub, cert_pub, "the device key is the certificate's key");
	free(csr_pub);
	free(cert_pub);
}

#endif
