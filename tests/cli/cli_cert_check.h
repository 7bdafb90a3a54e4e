/*
 * keyward CLI end-to-end tests: the full check of a certificate version and
 * the renew / delete stories every backend must tell the same way. Static,
 * header only.
 */
#ifndef KW_CLI_CERT_CHECK_H
#define KW_CLI_CERT_CHECK_H

#include "cli_devices.h"

/* ---- the full check of one certificate version ---- */

typedef struct {
	const char *store;
	const char *name;
	int version;             /* the version to check */
	int current;             /* it is the current one (then its CSR is checked too) */
	const char *backend;     /* "tpm" or "hsm" */
	const char *key_type;    /* ec-p256 ... */
	const char *subject;     /* RFC 2253, as `cert show` must print it */
	const char *const *sans; /* keyward spelling, NULL-terminated; NULL = none */
	const char *now;         /* KEYWARD_NOW it was made at */
	int days;
} cli_expect;

static inline int cli_is_rsa(const char *key_type)
{
	return strncmp(key_type, "rsa-", 4) == 0;
}

/* show --json against the request. */
static inline void cli_check_show(const cli_expect *e, const json_t *j)
{
	char want[32];
	cr_assert_str_eq(cli_js(j, "name"), e->name);
	cr_assert_eq(json_integer_value(json_object_get(j, "version")), e->version);
	cli_assert_jbool(j, "current", e->current, "show");
	cr_assert_str_eq(cli_js(j, "status"), e->current ? "active" : "superseded");
	cli_assert_jbool(j, "enabled", 1, "show");
	cr_assert_str_eq(cli_js(j, "subject"), e->subject);
	cr_assert_str_eq(cli_js(j, "issuer_dn"), e->subject, "self-signed: issuer DN = subject");
	cr_assert_str_eq(cli_js(j, "issuer"), "self");
	cr_assert_str_eq(cli_js(j, "backend"), e->backend);
	const json_t *sans = json_object_get(j, "sans");
	size_t n = 0;
	while (e->sans && e->sans[n])
		n++;
	cr_assert(json_is_array(sans) && json_array_size(sans) == n, "show has %zu SANs, want %zu",
	          json_array_size(sans), n);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(json_string_value(json_array_get(sans, i)), e->sans[i]);
	cr_assert_str_eq(cli_js(j, "not_before"), e->now);
	cli_time_format(cli_time_parse(e->now) + (time_t)e->days * 86400, want, sizeof(want));
	cr_assert_str_eq(cli_js(j, "not_after"), want, "not_after is not now + %d days", e->days);
	cr_assert(cli_is_lower_hex(cli_js(j, "serial"), 32), "serial is not 16 bytes of hex: %s",
	          cli_js(j, "serial"));
	cr_assert(cli_is_lower_hex(cli_js(j, "thumbprint_sha1"), 40));
	cr_assert(cli_is_lower_hex(cli_js(j, "thumbprint_sha256"), 64));
	const json_t *key = json_object_get(j, "key");
	cr_assert(json_is_object(key), "show lacks key");
	cr_assert_str_eq(cli_js(key, "type"), e->key_type);
	cli_assert_jbool(key, "exportable", 0, "show key");
	cli_assert_jbool(key, "generated_on_device", 1, "show key");
	cr_assert(json_is_object(json_object_get(key, "attributes")), "show lacks key.attributes");
}

/* What openssl reads from the exported certificate, against show --json. */
static inline void cli_check_pem(const cli_expect *e, const json_t *j, const char *pem)
{
	char *s;
	s = cli_hex_norm(cli_out("openssl x509 -in '%s' -noout -fingerprint -sha1", pem));
	cr_assert_str_eq(s, cli_js(j, "thumbprint_sha1"), "SHA-1 thumbprint");
	free(s);
	s = cli_hex_norm(cli_out("openssl x509 -in '%s' -noout -fingerprint -sha256", pem));
	cr_assert_str_eq(s, cli_js(j, "thumbprint_sha256"), "SHA-256 thumbprint");
	free(s);
	s = cli_hex_norm(cli_out("openssl x509 -in '%s' -noout -serial", pem));
	cr_assert_str_eq(s, cli_js(j, "serial"), "serial");
	cr_assert(strlen(s) == 32 && cli_hexval(s[0]) < 8,
	          "serial is not a positive 16-byte number");
	free(s);
	s = cli_out("openssl x509 -in '%s' -noout -subject -nameopt RFC2253", pem);
	cr_assert(strncmp(s, "subject=", 8) == 0);
	cr_assert_str_eq(s + 8, e->subject, "subject as openssl reads it");
	free(s);
	s = cli_out("openssl x509 -in '%s' -noout -issuer -nameopt RFC2253", pem);
	cr_assert_str_eq(s + 7, e->subject, "issuer as openssl reads it");
	free(s);
	cli_assert_sans(pem, json_object_get(j, "sans"));

	/* validity, as the certificate itself says */
	s = cli_out("openssl x509 -in '%s' -noout -startdate -dateopt iso_8601 | cut -d= -f2 | "
	            "tr ' ' T",
	            pem);
	cr_assert_str_eq(s, cli_js(j, "not_before"));
	free(s);
	s = cli_out("openssl x509 -in '%s' -noout -enddate -dateopt iso_8601 | cut -d= -f2 | "
	            "tr ' ' T",
	            pem);
	cr_assert_str_eq(s, cli_js(j, "not_after"));
	free(s);

	/* key type and signature algorithm */
	char *text = cli_out("openssl x509 -in '%s' -noout -text", pem);
	const char *bits = strcmp(e->key_type, "ec-p256") == 0    ? "Public-Key: (256 bit)"
	                   : strcmp(e->key_type, "ec-p384") == 0  ? "Public-Key: (384 bit)"
	                   : strcmp(e->key_type, "rsa-2048") == 0 ? "Public-Key: (2048 bit)"
	                   : strcmp(e->key_type, "rsa-3072") == 0 ? "Public-Key: (3072 bit)"
	                                                          : "Public-Key: (4096 bit)";
	const char *alg = strcmp(e->key_type, "ec-p256") == 0   ? "ecdsa-with-SHA256"
	                  : strcmp(e->key_type, "ec-p384") == 0 ? "ecdsa-with-SHA384"
	                                                        : "sha256WithRSAEncryption";
	cr_assert(strstr(text, bits) != NULL, "%s: certificate lacks '%s'", e->key_type, bits);
	cr_assert(strstr(text, alg) != NULL, "%s: not signed with %s", e->key_type, alg);
	if (strcmp(e->key_type, "ec-p256") == 0)
		cr_assert(strstr(text, "NIST CURVE: P-256") != NULL);
	if (strcmp(e->key_type, "ec-p384") == 0)
		cr_assert(strstr(text, "NIST CURVE: P-384") != NULL);
	free(text);

	/* extensions: a TLS server certificate */
	text = cli_out("openssl x509 -in '%s' -noout -ext basicConstraints,keyUsage,"
	               "extendedKeyUsage,subjectKeyIdentifier,authorityKeyIdentifier",
	               pem);
	cr_assert(strstr(text, "X509v3 Key Usage: critical") != NULL, "keyUsage: %s", text);
	s = cli_line_after(text, "X509v3 Key Usage");
	cr_assert_str_eq(s,
	                 cli_is_rsa(e->key_type) ? "Digital Signature, Key Encipherment"
	                                         : "Digital Signature",
	                 "keyUsage of %s", e->key_type);
	free(s);
	s = cli_line_after(text, "X509v3 Extended Key Usage");
	cr_assert(s != NULL, "no extendedKeyUsage: %s", text);
	cr_assert_str_eq(s, "TLS Web Server Authentication");
	free(s);
	s = cli_line_after(text, "X509v3 Basic Constraints");
	cr_assert(s != NULL && strcmp(s, "CA:FALSE") == 0, "basicConstraints: %s", text);
	free(s);
	char *ski = cli_line_after(text, "X509v3 Subject Key Identifier");
	char *aki = cli_line_after(text, "X509v3 Authority Key Identifier");
	cr_assert(ski != NULL && aki != NULL, "SKI/AKI missing: %s", text);
	cr_assert_eq(strlen(ski), 59, "SKI is not 20 bytes: %s", ski);
	cr_assert_str_eq(strncmp(aki, "keyid:", 6) == 0 ? aki + 6 : aki, ski,
	                 "AKI of a self-signed certificate is its SKI");
	free(ski);
	free(aki);
	free(text);

	/* a valid self-signed TLS server certificate at its not_before (+1 min) */
	long at = (long)cli_time_parse(cli_js(j, "not_before")) + 60;
	s = cli_out("openssl verify -attime %ld -x509_strict -purpose sslserver -CAfile '%s' '%s' "
	            "2>&1; echo rc=$?",
	            at, pem, pem);
	cr_assert(strstr(s, ": OK") != NULL && strstr(s, "rc=0") != NULL, "openssl verify: %s", s);
	free(s);
}

/* Custody from `cert verify --json` and from the device itself. */
static inline void cli_check_custody(const cli_expect *e, const json_t *show, const char *pem)
{
	kwt_result r;
	char v[16];
	snprintf(v, sizeof(v), "%d", e->version);
	cli_ok(&r, NULL, e->store, CLI_ARGS("cert", "verify", e->name, "--version", v, "--json"));
	json_t *j = cli_json(r.out, "cert verify --json");
	cli_assert_jbool(j, "exportable", 0, "verify");
	cli_assert_jbool(j, "generated_on_device", 1, "verify");
	cli_assert_jbool(j, "certificate_matches_key", 1, "verify");
	cr_assert_str_eq(cli_js(j, "name"), e->name);
	cr_assert_eq(json_integer_value(json_object_get(j, "version")), e->version);
	cr_assert_str_eq(cli_js(j, "backend"), e->backend);
	cr_assert_str_eq(cli_js(j, "key_type"), e->key_type);
	const json_t *a = json_object_get(j, "attributes");
	char *cert_pub = cli_cert_pubkey(pem);
	cr_assert(strstr(cert_pub, "BEGIN PUBLIC KEY") != NULL, "no public key in %s", pem);
	if (strcmp(e->backend, "hsm") == 0) {
		cli_assert_jbool(a, "CKA_EXTRACTABLE", 0, "verify attributes");
		cli_assert_jbool(a, "CKA_SENSITIVE", 1, "verify attributes");
		cli_assert_jbool(a, "CKA_NEVER_EXTRACTABLE", 1, "verify attributes");
		cli_assert_jbool(a, "CKA_ALWAYS_SENSITIVE", 1, "verify attributes");
		cli_assert_jbool(a, "CKA_TOKEN", 1, "verify attributes");
		cli_assert_jbool(a, "CKA_PRIVATE", 1, "verify attributes");
		cli_assert_jbool(a, "CKA_LOCAL", 1, "verify attributes");
		const char *id =
		    cli_js(json_object_get(json_object_get(show, "key"), "attributes"), "CKA_ID");
		cr_assert_str_eq(cli_js(a, "CKA_ID"), id);
		cr_assert(cli_is_lower_hex(id, strlen(id)) && strlen(id) >= 2, "CKA_ID %s", id);
		/* the token's own listing: a private key object, ours, never extractable */
		char *obj = cli_p11_object("Private Key Object", id);
		char label[128];
		snprintf(label, sizeof(label), "  label:      keyward:%s\n", e->name);
		cr_assert(obj != NULL, "pkcs11-tool lists no private key with ID %s", id);
		cr_assert(strstr(obj, label) != NULL,
		          "private key %s is not labelled keyward:%s: %s", id, e->name, obj);
		cr_assert(strstr(obj, "never extractable") != NULL &&
		              strstr(obj, "always sensitive") != NULL,
		          "pkcs11-tool: %s", obj);
		free(obj);
		/* public key as the token hands it out, two ways */
		char *p11 = cli_p11tool_pubkey(id);
		cr_assert_str_eq(p11, cert_pub,
		                 "p11tool's public key for ID %s differs from the "
		                 "certificate's",
		                 id);
		free(p11);
		if (strcmp(e->key_type, "ec-p384") != 0) { /* OpenSC 0.23 cannot read P-384 */
			p11 = cli_pkcs11tool_pubkey(id);
			cr_assert_str_eq(p11, cert_pub,
			                 "pkcs11-tool's public key for ID %s differs", id);
			free(p11);
		}
	} else {
		cli_assert_jbool(a, "fixedTPM", 1, "verify attributes");
		cli_assert_jbool(a, "fixedParent", 1, "verify attributes");
		cli_assert_jbool(a, "sensitiveDataOrigin", 1, "verify attributes");
		cli_assert_jbool(a, "userWithAuth", 1, "verify attributes");
		cli_assert_jbool(a, "sign", 1, "verify attributes");
		char *attrs = NULL;
		char *tpm = cli_tpm_pubkey(e->store, e->name, e->version, &attrs);
		cr_assert_str_eq(tpm, cert_pub,
		                 "the TPM's public key differs from the certificate's");
		cr_assert(strstr(attrs, "fixedtpm") && strstr(attrs, "fixedparent") &&
		              strstr(attrs, "sensitivedataorigin"),
		          "tpm2_readpublic attributes: %s", attrs);
		free(attrs);
		free(tpm);
	}
	free(cert_pub);
	json_decref(j);
	kwt_result_free(&r);
}

/* cert csr: signed by the device, same key and subject as the certificate. */
static inline void cli_check_csr(const cli_expect *e, const char *pem, const char *dir)
{
	kwt_result r;
	char *csr = NULL;
	cr_assert(asprintf(&csr, "%s/%s.csr", dir, e->name) > 0);
	cli_ok(&r, NULL, e->store, CLI_ARGS("cert", "csr", e->name, "--out", csr));
	cr_assert_str_empty(r.out);
	kwt_result_free(&r);
	char *s = cli_out("openssl req -in '%s' -noout -verify 2>&1; echo rc=$?", csr);
	cr_assert(strstr(s, "verify OK") != NULL && strstr(s, "rc=0") != NULL,
	          "openssl req -verify: %s", s);
	free(s);
	char *req_pub = cli_out("openssl req -in '%s' -noout -pubkey", csr);
	char *cert_pub = cli_cert_pubkey(pem);
	cr_assert_str_eq(req_pub, cert_pub, "the CSR's key is not the certificate's");
	free(req_pub);
	free(cert_pub);
	s = cli_out("openssl req -in '%s' -noout -subject -nameopt RFC2253", csr);
	cr_assert_str_eq(s + 8, e->subject, "CSR subject");
	free(s);
	s = cli_out("openssl req -in '%s' -noout -text", csr);
	cr_assert(strstr(s, "Requested Extensions") != NULL, "CSR requests no extensions: %s", s);
	for (size_t i = 0; e->sans && e->sans[i]; i++)
		if (strncmp(e->sans[i], "DNS:", 4) == 0)
			cr_assert(strstr(s, e->sans[i]) != NULL, "CSR lacks %s", e->sans[i]);
	free(s);
	/* without --out: PEM on stdout */
	cli_ok(&r, NULL, e->store, CLI_ARGS("cert", "csr", e->name));
	cr_assert(strncmp(r.out, "-----BEGIN CERTIFICATE REQUEST-----\n", 36) == 0, "csr: %s",
	          r.out);
	kwt_result_free(&r);
	free(csr);
}

/*
 * Everything about one version: show --json, export (file and stdout), what
 * openssl reads, custody from the device, and (current version) the CSR.
 * Returns show --json (caller frees).
 */
static inline json_t *cli_check_cert(const cli_expect *e)
{
	kwt_result r;
	char v[16];
	json_t *j = cli_show(e->store, e->name, e->version);
	cli_check_show(e, j);
	char *dir = kwt_tmpdir("cert");
	char *pem = NULL;
	cr_assert(asprintf(&pem, "%s/%s.v%d.pem", dir, e->name, e->version) > 0);
	snprintf(v, sizeof(v), "%d", e->version);
	cli_ok(&r, NULL, e->store,
	       CLI_ARGS("cert", "export", e->name, "--version", v, "--out", pem));
	cr_assert_str_empty(r.out, "export --out printed: %s", r.out);
	kwt_result_free(&r);
	char *file = kwt_read_file(pem, NULL);
	cr_assert(file != NULL, "export --out wrote no %s", pem);
	cr_assert(strncmp(file, "-----BEGIN CERTIFICATE-----\n", 28) == 0, "export: %s", file);
	cr_assert(strstr(file, "PRIVATE") == NULL, "export wrote something private: %s", file);
	cr_assert_eq(cli_status("test $(grep -c 'BEGIN CERTIFICATE' '%s') -eq 1", pem), 0,
	             "export without --chain wrote more than one certificate");
	cli_ok(&r, NULL, e->store, CLI_ARGS("cert", "export", e->name, "--version", v));
	cr_assert_str_eq(r.out, file, "export to stdout differs from export --out");
	kwt_result_free(&r);
	free(file);
	cli_check_pem(e, j, pem);
	cli_check_custody(e, j, pem);
	if (e->current)
		cli_check_csr(e, pem, dir);
	free(pem);
	free(dir);
	return j;
}

/* The public key of a version's certificate (PEM, malloc'd). */
static inline char *cli_version_pubkey(const char *store, const char *name, int version)
{
	char *dir = kwt_tmpdir("pub");
	char *pem = NULL;
	char v[16];
	kwt_result r;
	snprintf(v, sizeof(v), "%d", version);
	cr_assert(asprintf(&pem, "%s/c.pem", dir) > 0);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "export", name, "--version", v, "--out", pem));
	kwt_result_free(&r);
	char *pub = cli_cert_pubkey(pem);
	cr_assert(strstr(pub, "BEGIN PUBLIC KEY") != NULL);
	free(pem);
	free(dir);
	return pub;
}

/* ---- renew and delete, the same story on every backend ---- */

/*
 * create (v1) → renew --new-key at CLI_LATER (v2: new key, v1 superseded) →
 * renew --reuse-key (v3: v2's key, new serial) → list shows v3 only. On the
 * token, only the new key adds objects.
 */
static inline void cli_scenario_renew(const char *store, const char *backend, const char *name,
                                      const char *key_type)
{
	int p11 = strcmp(backend, "hsm") == 0;
	char subject[128];
	char san[128];
	kwt_result r;
	snprintf(subject, sizeof(subject), "CN=%s.example.net,O=Renewals", name);
	snprintf(san, sizeof(san), "DNS:%s.example.net", name);
	const char *sans[] = {san, NULL};
	int objects0 = p11 ? kwt_p11_object_count() : 0;
	cli_create(store, CLI_NOW, name, backend, key_type, subject, 90, sans);
	if (p11)
		cr_assert_eq(kwt_p11_object_count(), objects0 + 3,
		             "create: private key, public key and the certificate");
	json_t *v1 = cli_show(store, name, 0);
	char *pub1 = cli_version_pubkey(store, name, 1);

	char *later[] = {"KEYWARD_NOW=" CLI_LATER, NULL};
	cli_ok(&r, later, store, CLI_ARGS("cert", "renew", name));
	cr_assert(strstr(r.out, "version 2") != NULL, "renew said: %s", r.out);
	kwt_result_free(&r);
	if (p11)
		cr_assert_eq(kwt_p11_object_count(), objects0 + 6,
		             "renew --new-key: a second key pair and its certificate");

	/* the comma form is already RFC 2253: show prints it back as given */
	cli_expect e2 = {store, name, 2, 1, backend, key_type, subject, sans, CLI_LATER, 90};
	json_t *v2 = cli_check_cert(&e2);
	cli_expect e1 = e2;
	e1.version = 1;
	e1.current = 0;
	e1.now = CLI_NOW;
	json_t *v1_after = cli_check_cert(&e1); /* still there, superseded, key still usable */
	cr_assert_str_eq(cli_js(v1_after, "thumbprint_sha256"), cli_js(v1, "thumbprint_sha256"),
	                 "renewal rewrote version 1");
	char *pub2 = cli_version_pubkey(store, name, 2);
	cr_assert_str_neq(pub2, pub1, "renew --new-key kept the old public key");
	cr_assert_str_neq(cli_js(v2, "thumbprint_sha256"), cli_js(v1, "thumbprint_sha256"));
	cr_assert_str_neq(cli_js(v2, "thumbprint_sha1"), cli_js(v1, "thumbprint_sha1"));
	cr_assert_str_neq(cli_js(v2, "serial"), cli_js(v1, "serial"));

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", name, "--reuse-key"));
	cr_assert(strstr(r.out, "version 3") != NULL, "renew said: %s", r.out);
	kwt_result_free(&r);
	if (p11)
		cr_assert_eq(kwt_p11_object_count(), objects0 + 6,
		             "renew --reuse-key made a key or kept two certificates for one key");
	json_t *v3 = cli_show(store, name, 0);
	cr_assert_eq(json_integer_value(json_object_get(v3, "version")), 3);
	cli_assert_jbool(v3, "current", 1, "v3");
	cr_assert_str_eq(cli_js(v3, "status"), "active");
	char *pub3 = cli_version_pubkey(store, name, 3);
	cr_assert_str_eq(pub3, pub2, "renew --reuse-key changed the public key");
	cr_assert_str_neq(cli_js(v3, "serial"), cli_js(v2, "serial"), "same serial after renew");
	cr_assert_str_neq(cli_js(v3, "thumbprint_sha256"), cli_js(v2, "thumbprint_sha256"));
	json_t *v2_after = cli_show(store, name, 2);
	cr_assert_str_eq(cli_js(v2_after, "status"), "superseded");
	cli_assert_jbool(v2_after, "current", 0, "v2 after v3");
	if (p11)
		cr_assert_str_eq(
		    cli_js(json_object_get(json_object_get(v3, "key"), "attributes"), "CKA_ID"),
		    cli_js(json_object_get(json_object_get(v2, "key"), "attributes"), "CKA_ID"),
		    "--reuse-key must point at the same token key");

	/* list: current versions only, one entry for this name */
	json_t *list = cli_list(store, "cert list");
	size_t i, seen = 0;
	json_t *c;
	json_array_foreach(list, i, c)
	{
		cli_assert_jbool(c, "current", 1, "cert list entry");
		cr_assert_str_eq(cli_js(c, "status"), "active", "cert list shows a superseded one");
		if (strcmp(cli_js(c, "name"), name) == 0) {
			seen++;
			cr_assert_eq(json_integer_value(json_object_get(c, "version")), 3);
			cr_assert_str_eq(cli_js(c, "thumbprint_sha256"),
			                 cli_js(v3, "thumbprint_sha256"));
		}
	}
	cr_assert_eq(seen, 1, "cert list shows %s %zu times", name, seen);
	cr_assert_eq(cli_sql_count(store, "SELECT COUNT(*) FROM versions v JOIN certs c ON "
	                                  "c.id = v.cert_id WHERE v.status = 'active'"),
	             (int)json_array_size(list), "one active version per certificate in the store");

	json_decref(list);
	json_decref(v1);
	json_decref(v1_after);
	json_decref(v2);
	json_decref(v2_after);
	json_decref(v3);
	free(pub1);
	free(pub2);
	free(pub3);
}

/* delete: keys destroyed on the device, certificate gone everywhere. */
static inline void cli_scenario_delete(const char *store, const char *backend, const char *name)
{
	int p11 = strcmp(backend, "hsm") == 0;
	kwt_result r;
	char label[128];
	char subject[128];
	snprintf(label, sizeof(label), "keyward:%s", name);
	snprintf(subject, sizeof(subject), "CN=%s.example.org", name);
	json_t *backends0 = cli_list(store, "backend list");
	json_int_t certs0 =
	    json_integer_value(json_object_get(cli_find_named(backends0, backend), "certificates"));
	int objects0 = p11 ? kwt_p11_object_count() : 0;
	cli_create(store, CLI_NOW, name, backend, "ec-p256", subject, 30, NULL);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "renew", name, "--new-key"));
	kwt_result_free(&r);
	if (p11) {
		cr_assert_eq(kwt_p11_object_count(), objects0 + 6);
		cr_assert_eq(cli_p11_label_count(label), 6,
		             "two key pairs and their certificates labelled %s", label);
	}
	json_t *backends1 = cli_list(store, "backend list");
	cr_assert_eq(
	    json_integer_value(json_object_get(cli_find_named(backends1, backend), "certificates")),
	    certs0 + 1);

	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", name, "--purge"));
	cr_assert(strstr(r.out, "purged") != NULL, "delete said: %s", r.out);
	kwt_result_free(&r);
	if (p11) {
		cr_assert_eq(kwt_p11_object_count(), objects0, "delete left objects on the token");
		cr_assert_eq(cli_p11_label_count(label), 0, "objects labelled %s remain", label);
	}
	const char *const cmds[][6] = {
	    {"cert", "show", name, NULL},
	    {"cert", "export", name, NULL},
	    {"cert", "verify", name, NULL},
	    {"cert", "show", name, "--version", "1", NULL},
	};
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		cli_runv(&r, NULL, store, cmds[k]);
		cli_assert_error(&r, 1, cli_args_str(cmds[k]));
		cli_assert_err_has(&r, "unknown certificate", cli_args_str(cmds[k]));
		kwt_result_free(&r);
	}
	json_t *list = cli_list(store, "cert list");
	cr_assert(cli_find_named(list, name) == NULL, "cert list still shows %s", name);
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(*) FROM versions WHERE cert_id NOT IN (SELECT id FROM certs)");
	cr_assert_eq(cli_sql_count(store, sql), 0, "versions of a deleted certificate remain");
	json_t *backends2 = cli_list(store, "backend list");
	cr_assert_eq(
	    json_integer_value(json_object_get(cli_find_named(backends2, backend), "certificates")),
	    certs0);
	/* the name is free again */
	cli_create(store, CLI_NOW, name, backend, "ec-p256", subject, 30, NULL);
	cli_ok(&r, NULL, store, CLI_ARGS("cert", "delete", name, "--purge"));
	kwt_result_free(&r);
	if (p11)
		cr_assert_eq(kwt_p11_object_count(), objects0);
	json_decref(list);
	json_decref(backends0);
	json_decref(backends1);
	json_decref(backends2);
}

#endif
