/*
 * Debian's nginx 1.22, unmodified, serves TLS with a key that never leaves
 * the TPM or the SoftHSM token: `ssl_certificate_key` names keyward's key
 * reference file, OPENSSL_CONF activates keyward's provider. Two worker
 * processes (the master loads the key, the workers sign), TLS 1.3 and 1.2,
 * sequential and concurrent clients; then a renewal reaches clients through
 * `nginx -s reload` alone. See tls_server.h.
 */
#include <stdlib.h>

#include "tls_server.h"

TestSuite(nginx, .fini = tls_teardown, .timeout = 180);

Test(nginx, software_key_control_with_keyward_provider_loaded)
{
	tls_assert_software_control(TLS_NGINX);
}

Test(nginx, tpm_key_behind_abrmd_serves_and_follows_renewal)
{
	tls_server *s = tls_keyward(TLS_NGINX, "tpm", "ec-p256");
	tls_start(s);
	tls_assert_serves_both(s);
	tls_assert_tabrmd_only_in_workers(s);
	tls_assert_renewal_seen_after_reload(s);
	tls_assert_tabrmd_only_in_workers(s);
	tls_stop(s);
}

Test(nginx, softhsm_key_serves_and_follows_renewal)
{
	tls_server *s = tls_keyward(TLS_NGINX, "hsm", "rsa-2048");
	tls_start(s);
	tls_assert_serves_both(s);
	tls_assert_tls12_sigalgs(s, "RSA+SHA256");
	tls_assert_renewal_seen_after_reload(s);
	tls_stop(s);
}

/* A keyward command that must succeed. */
#define NGINX_KW(store, ...)                                                                       \
	do {                                                                                       \
		kwt_result r_;                                                                     \
		kwt_kw(&r_, (store), __VA_ARGS__, NULL);                                           \
		cr_assert_eq(r_.status, 0, "keyward failed: %s", r_.err);                          \
		kwt_result_free(&r_);                                                              \
	} while (0)

/* The local CA: a root and an intermediate whose keys stay in the token sign
 * "web"; nginx serves leaf + intermediate + root (cert export --chain) and a
 * client that trusts only the root verifies it, which it could not without
 * the intermediate nginx sends. */
Test(nginx, local_ca_chain_served_to_a_client_trusting_the_root)
{
	tls_server *s = tls_keyward_store(TLS_NGINX, "hsm");
	char *root = NULL;
	cr_assert(asprintf(&root, "%s/root.pem", s->dir) > 0);
	NGINX_KW(s->store, "cert", "create", "root", "--backend", "hsm", "--subject",
	         "CN=Keyward Test Root", "--ca", "--pathlen", "1");
	NGINX_KW(s->store, "cert", "create", "inter", "--backend", "hsm", "--subject",
	         "CN=Keyward Test Intermediate", "--ca", "--issuer", "ca:root");
	NGINX_KW(s->store, "cert", "create", "web", "--backend", "hsm", "--subject", "CN=localhost",
	         "--san", "DNS:localhost", "--san", "IP:127.0.0.1", "--issuer", "ca:inter");
	NGINX_KW(s->store, "cert", "export", "root", "--out", root);
	NGINX_KW(s->store, "cert", "export", "web", "--chain", "--out", s->cert);
	NGINX_KW(s->store, "cert", "key-ref", "web", "--out", s->key);
	cr_assert_eq(kwt_sh("test $(grep -c 'BEGIN CERTIFICATE' '%s') = 3", s->cert), 0,
	             "cert export --chain is not leaf, intermediate, root");
	tls_start(s);
	tls_assert_serves(s, root, "1.3", 5, 3);
	tls_assert_serves(s, root, "1.2", 5, 3);
	tls_stop(s);
	free(root);
}
