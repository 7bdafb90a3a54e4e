/*
 * keyward serve's own TLS key stays in hardware: the certificate the server
 * presents is the keyward certificate (same SHA-256 thumbprint), its public
 * key is the one the TPM (tpm2-tools) or the token (pkcs11-tool) holds, the
 * key is not exportable, and the server loaded it through keyward.so. The
 * TPM sits behind tpm2-abrmd: the server keeps its key's connection while
 * API calls create keys in the same TPM.
 */
#include "../cli/cli_devices.h"
#include "server_test.h"

/* What the server presents: PEM of its certificate (malloc'd). */
static char *served_cert(const srv_ctx *c)
{
	char *pem =
	    cli_out("openssl s_client -connect 127.0.0.1:%d -CAfile '%s' -verify_return_error "
	            "</dev/null 2>/dev/null | openssl x509",
	            c->port, c->ca);
	cr_assert(strstr(pem, "BEGIN CERTIFICATE") != NULL, "no certificate served: %s", pem);
	return pem;
}

/* Checks the served certificate is keyward-mgmt-server's; returns its public key PEM. */
static char *assert_served_is_keyward(const srv_ctx *c)
{
	char *pem = served_cert(c);
	free(kwt_write_file(c->dir, "served.pem", pem, strlen(pem), 0600));
	char *fp = cli_out("openssl x509 -in '%s/served.pem' -noout -fingerprint -sha256", c->dir);
	cli_hex_norm(fp);
	json_t *shown = cli_show(c->store, "keyward-mgmt-server", 0);
	cr_assert_str_eq(fp, cli_js(shown, "thumbprint_sha256"),
	                 "the served certificate is not keyward-mgmt-server's");
	cli_assert_jbool(json_object_get(shown, "key"), "exportable", 0, "server key");
	json_decref(shown);
	/* the server's process has keyward's provider loaded */
	char *maps = cli_out("grep -c 'keyward.so' /proc/%d/maps || true", (int)c->pid);
	cr_assert(atoi(maps) > 0, "keyward serve has not loaded keyward.so");
	free(maps);
	char *pub = cli_out("openssl x509 -in '%s/served.pem' -noout -pubkey", c->dir);
	free(fp);
	free(pem);
	return pub;
}

Test(server_key, tpm_key_serves_tls_and_api_calls_share_the_tpm)
{
	srv_ctx c;
	srv_reply r;
	srv_setup(&c, 1, 1, "tpm");
	srv_start(&c);
	char *pub = assert_served_is_keyward(&c);
	char *attrs = NULL;
	char *tpm = cli_tpm_pubkey(c.store, "keyward-mgmt-server", 1, &attrs);
	cr_assert_str_eq(pub, tpm, "the served public key is not the TPM's key");
	cr_assert(strstr(attrs, "fixedtpm") && strstr(attrs, "fixedparent") &&
	              strstr(attrs, "sensitivedataorigin"),
	          "TPM attributes of the server key: %s", attrs);
	/* the CA that signs clients is in the TPM too */
	char *ca = cli_tpm_pubkey(c.store, "keyward-mgmt-ca", 1, NULL);
	char *ca_pub = cli_out("openssl x509 -in '%s' -noout -pubkey", c.ca);
	cr_assert_str_eq(ca, ca_pub, "the management CA's key is not the TPM's");
	srv_curl(&c, &r, "alice", "POST", "/certificates/web01/create",
	         "{\"policy\": {\"key\": {\"backend\": \"tpm\"}, \"x509\": {\"subject\": "
	         "\"CN=web01\"}}}");
	srv_assert_status(&r, 201, "create in the TPM while serving from it");
	srv_reply_free(&r);
	srv_curl(&c, &r, "bob", "GET", "/certificates/web01", NULL);
	srv_assert_status(&r, 200, "read back");
	cr_assert_str_eq(cli_js(r.json, "backend"), "tpm");
	srv_reply_free(&r);
	free(ca);
	free(ca_pub);
	free(attrs);
	free(tpm);
	free(pub);
	srv_teardown(&c);
}

Test(server_key, token_key_serves_tls)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	char *pub = assert_served_is_keyward(&c);
	json_t *shown = cli_show(c.store, "keyward-mgmt-server", 0);
	json_t *a = json_object_get(json_object_get(shown, "key"), "attributes");
	cli_assert_jbool(a, "CKA_EXTRACTABLE", 0, "server key");
	cli_assert_jbool(a, "CKA_SENSITIVE", 1, "server key");
	cli_assert_jbool(a, "CKA_NEVER_EXTRACTABLE", 1, "server key");
	char *p11 = cli_pkcs11tool_pubkey(cli_js(a, "CKA_ID"));
	cr_assert_str_eq(pub, p11, "the served public key is not the token's key");
	free(p11);
	json_decref(shown);
	free(pub);
	srv_teardown(&c);
}

Test(server_key, tls_cert_option_picks_another_keyward_certificate)
{
	srv_ctx c;
	srv_reply r;
	kwt_result k;
	srv_setup(&c, 0, 1, "hsm");
	cli_ok(&k, NULL, c.store,
	       CLI_ARGS("cert", "create", "api-tls", "--backend", "hsm", "--subject",
	                "CN=localhost", "--san", "IP:127.0.0.1", "--issuer", "ca:keyward-mgmt-ca"));
	kwt_result_free(&k);
	srv_start_with(&c, CLI_ARGS("--tls-cert", "api-tls"), NULL);
	char *pem = served_cert(&c);
	free(kwt_write_file(c.dir, "served.pem", pem, strlen(pem), 0600));
	char *fp = cli_out("openssl x509 -in '%s/served.pem' -noout -fingerprint -sha256", c.dir);
	cli_hex_norm(fp);
	json_t *shown = cli_show(c.store, "api-tls", 0);
	cr_assert_str_eq(fp, cli_js(shown, "thumbprint_sha256"), "--tls-cert api-tls not served");
	json_decref(shown);
	srv_curl(&c, &r, "alice", "GET", "/certificates", NULL);
	srv_assert_status(&r, 200, "served with api-tls");
	srv_reply_free(&r);
	free(fp);
	free(pem);
	srv_teardown(&c);
}
