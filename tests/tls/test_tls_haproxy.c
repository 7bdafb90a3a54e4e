/*
 * Debian's haproxy 2.6, unmodified, in master-worker mode (one worker, two
 * threads) serves TLS with a key that never leaves the TPM or the SoftHSM
 * token: `crt cert.pem` holds the certificate only, and haproxy takes the
 * key from cert.pem.key (ssl-load-extra-files key), which is keyward's key
 * reference; OPENSSL_CONF activates keyward's provider. TLS 1.3 and 1.2,
 * sequential and concurrent clients; then a renewal reaches clients through
 * a reload of the master (SIGUSR2) alone. See tls_server.h.
 */
#include <stdlib.h>

#include "tls_server.h"

TestSuite(haproxy, .fini = tls_teardown, .timeout = 180);

Test(haproxy, software_key_control_with_keyward_provider_loaded)
{
	tls_assert_software_control(TLS_HAPROXY);
}

Test(haproxy, tpm_key_behind_abrmd_serves_and_follows_renewal)
{
	tls_server *s = tls_keyward(TLS_HAPROXY, "tpm", "rsa-2048");
	tls_start(s);
	tls_assert_serves_both(s);
	tls_assert_tls12_sigalgs(s, "RSA+SHA256");
	tls_assert_tabrmd_only_in_workers(s);
	tls_assert_renewal_seen_after_reload(s);
	tls_assert_tabrmd_only_in_workers(s);
	tls_stop(s);
}

Test(haproxy, softhsm_key_serves_and_follows_renewal)
{
	tls_server *s = tls_keyward(TLS_HAPROXY, "hsm", "ec-p384");
	tls_start(s);
	tls_assert_serves_both(s);
	tls_assert_renewal_seen_after_reload(s);
	tls_stop(s);
}
