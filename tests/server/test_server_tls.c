/*
 * keyward serve's TLS: what a client may negotiate. TLS 1.2 only with
 * forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305), TLS
 * 1.3 as OpenSSL offers it; a client that offers only CBC suites gets no
 * handshake. Driven with openssl s_client, the way an auditor would probe.
 */
#include "server_test.h"

/* s_client against the server with these options: "ok <cipher>" when the
 * handshake completed, "refused" when it did not. */
static char *probe(const srv_ctx *c, const char *opts)
{
	return cli_out("cd '%s' && out=$(openssl s_client -connect 127.0.0.1:%d -CAfile ca.pem "
	               "%s < /dev/null 2>&1); c=$(printf '%%s\\n' \"$out\" | "
	               "sed -n 's/^New, .*, Cipher is \\(.*\\)$/\\1/p' | head -1); "
	               "if [ -n \"$c\" ] && [ \"$c\" != '(NONE)' ]; then echo \"ok $c\"; "
	               "else echo refused; fi",
	               c->dir, c->port, opts);
}

static void assert_probe(const srv_ctx *c, const char *opts, const char *want)
{
	char *got = probe(c, opts);
	cr_assert_str_eq(got, want, "openssl s_client %s: %s, expected %s", opts, got, want);
	free(got);
}

Test(server_tls, tls12_accepts_only_forward_secret_aead_suites_with_an_ec_key)
{
	srv_ctx c;
	srv_setup(&c, 0, 1, "hsm");
	srv_start(&c);
	/* CBC with HMAC-SHA1 or HMAC-SHA384: no handshake */
	assert_probe(&c, "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA", "refused");
	assert_probe(&c, "-tls1_2 -cipher ECDHE-ECDSA-AES256-SHA384", "refused");
	/* the AEAD suites a TLS 1.2 client offers */
	assert_probe(&c, "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256",
	             "ok ECDHE-ECDSA-AES128-GCM-SHA256");
	assert_probe(&c, "-tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384",
	             "ok ECDHE-ECDSA-AES256-GCM-SHA384");
	assert_probe(&c, "-tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305",
	             "ok ECDHE-ECDSA-CHACHA20-POLY1305");
	/* a client offering CBC first and GCM last gets GCM */
	assert_probe(&c, "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256",
	             "ok ECDHE-ECDSA-AES128-GCM-SHA256");
	/* TLS 1.3 as OpenSSL offers it */
	assert_probe(&c, "-tls1_3", "ok TLS_AES_256_GCM_SHA384");
	/* and nothing older than TLS 1.2 */
	assert_probe(&c, "-tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'", "refused");
	srv_teardown(&c);
}

Test(server_tls, tls12_accepts_only_forward_secret_aead_suites_with_an_rsa_key)
{
	srv_ctx c;
	kwt_result k;
	srv_setup(&c, 0, 1, "hsm");
	cli_ok(&k, NULL, c.store,
	       CLI_ARGS("cert", "create", "api-rsa", "--backend", "hsm", "--key", "rsa-2048",
	                "--subject", "CN=localhost", "--san", "IP:127.0.0.1", "--issuer",
	                "ca:keyward-mgmt-ca"));
	kwt_result_free(&k);
	srv_start_with(&c, CLI_ARGS("--tls-cert", "api-rsa"), NULL);
	/* CBC, with ECDHE or with the static RSA key exchange: no handshake */
	assert_probe(&c, "-tls1_2 -cipher ECDHE-RSA-AES128-SHA", "refused");
	assert_probe(&c, "-tls1_2 -cipher AES128-SHA:AES256-SHA256", "refused");
	/* GCM without forward secrecy (static RSA key exchange): no handshake */
	assert_probe(&c, "-tls1_2 -cipher AES128-GCM-SHA256:AES256-GCM-SHA384", "refused");
	assert_probe(&c, "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256",
	             "ok ECDHE-RSA-AES128-GCM-SHA256");
	assert_probe(&c, "-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305",
	             "ok ECDHE-RSA-CHACHA20-POLY1305");
	assert_probe(&c, "-tls1_3", "ok TLS_AES_256_GCM_SHA384");
	srv_teardown(&c);
}
