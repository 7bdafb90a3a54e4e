/* kw_key: the provider's view of a certificate's key, on real devices. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <keyward/key.h>

#include "kwtest.h"

static char *store_with(const char *name, const char *backend, const char *type)
{
	char *store = kwt_store_new(1, 1);
	kwt_result r;
	kwt_kw(&r, store, "cert", "create", name, "--backend", backend, "--subject", "CN=key.test",
	       "--key", type, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	return store;
}

static EVP_PKEY *pub_of(const kw_key *k)
{
	size_t len = 0;
	const unsigned char *der = kw_key_spki(k, &len);
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &der, (long)len);
	cr_assert_not_null(pk);
	return pk;
}

/* Signs SHA-256("msg" + i) with k and verifies it in software; 1 if valid. */
static int sign_verify(kw_key *k, const kw_sign_params *p, int i)
{
	unsigned char dgst[32], sig[600];
	size_t sig_len = sizeof(sig);
	char msg[32];
	snprintf(msg, sizeof(msg), "msg-%d", i);
	EVP_Digest(msg, strlen(msg), dgst, NULL, EVP_sha256(), NULL);
	if (kw_key_sign(k, p, dgst, sizeof(dgst), sig, &sig_len) != KW_OK)
		return 0;
	EVP_PKEY *pk = pub_of(k);
	EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(pk, NULL);
	int ok = v && EVP_PKEY_verify_init(v) == 1 &&
	         EVP_PKEY_CTX_set_signature_md(v, EVP_sha256()) == 1;
	if (ok && p->scheme == KW_SIG_RSA_PSS)
		ok = EVP_PKEY_CTX_set_rsa_padding(v, RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(v, RSA_PSS_SALTLEN_DIGEST) == 1;
	ok = ok && EVP_PKEY_verify(v, sig, sig_len, dgst, sizeof(dgst)) == 1;
	EVP_PKEY_CTX_free(v);
	EVP_PKEY_free(pk);
	return ok;
}

static const kw_sign_params ecdsa = {KW_SIG_ECDSA, NID_sha256, -1};
static const kw_sign_params pkcs1 = {KW_SIG_RSA_PKCS1, NID_sha256, -1};
static const kw_sign_params pss = {KW_SIG_RSA_PSS, NID_sha256, -1};

static void opens_and_signs(const char *backend)
{
	char *store = store_with("web", backend, "ec-p256");
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(store, "web", 0, &k), KW_OK, "%s", kw_error_message());
	cr_assert_str_eq(kw_key_name(k), "web");
	cr_assert_eq(kw_key_version(k), 1);
	cr_assert_eq(kw_key_get_type(k), KW_KEY_EC_P256);
	size_t len = 0;
	const unsigned char *der = kw_key_cert(k, &len);
	X509 *x = d2i_X509(NULL, &der, (long)len);
	cr_assert_not_null(x);
	EVP_PKEY *pk = pub_of(k);
	cr_assert_eq(EVP_PKEY_eq(X509_get0_pubkey(x), pk), 1, "SPKI is the certificate's key");
	EVP_PKEY_free(pk);
	X509_free(x);
	cr_assert_eq(kw_key_chain_count(k), 0);
	cr_assert(sign_verify(k, &ecdsa, 1));
	cr_assert_not(kw_key_can_sign(k, &pkcs1), "an EC key makes no RSA signatures");
	kw_key_free(kw_key_up_ref(k));
	cr_assert(sign_verify(k, &ecdsa, 2), "still usable after dropping the extra reference");
	kw_key_free(k);
	kw_key_free(NULL);
	free(store);
}

Test(key, opens_and_signs_on_the_tpm)
{
	opens_and_signs("tpm");
}

Test(key, opens_and_signs_on_the_token)
{
	opens_and_signs("hsm");
}

Test(key, rsa_pkcs1_and_pss_on_both_devices)
{
	char *store = store_with("r1", "tpm", "rsa-2048");
	kwt_result r;
	kwt_kw(&r, store, "cert", "create", "r2", "--backend", "hsm", "--subject", "CN=r2", "--key",
	       "rsa-2048", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	const char *names[] = {"r1", "r2"};
	for (int i = 0; i < 2; i++) {
		kw_key *k = NULL;
		cr_assert_eq(kw_key_open(store, names[i], 0, &k), KW_OK, "%s", kw_error_message());
		cr_assert(sign_verify(k, &pkcs1, i), "%s PKCS#1", names[i]);
		cr_assert(sign_verify(k, &pss, i), "%s PSS", names[i]);
		cr_assert_not(kw_key_can_sign(k, &ecdsa));
		kw_key_free(k);
	}
	kw_key *t = NULL;
	cr_assert_eq(kw_key_open(store, "r1", 0, &t), KW_OK);
	kw_sign_params max_salt = {KW_SIG_RSA_PSS, NID_sha256, 222};
	cr_assert_not(kw_key_can_sign(t, &max_salt),
	              "the TPM salts PSS with the digest length only");
	kw_key_free(t);
	free(store);
}

Test(key, follows_renewal_and_pins_versions)
{
	char *store = store_with("web", "hsm", "ec-p256");
	kwt_result r;
	kwt_kw(&r, store, "cert", "renew", "web", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	kw_key *cur = NULL, *v1 = NULL;
	cr_assert_eq(kw_key_open(store, "web", 0, &cur), KW_OK);
	cr_assert_eq(kw_key_version(cur), 2);
	cr_assert_eq(kw_key_open(store, "web", 1, &v1), KW_OK);
	cr_assert_eq(kw_key_version(v1), 1);
	EVP_PKEY *a = pub_of(cur), *b = pub_of(v1);
	cr_assert_neq(EVP_PKEY_eq(a, b), 1, "renewal made a new key");
	cr_assert(sign_verify(cur, &ecdsa, 1) && sign_verify(v1, &ecdsa, 1));
	kw_key *none = NULL;
	kw_error_clear();
	cr_assert_eq(kw_key_open(store, "web", 3, &none), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(), "no version 3") != NULL);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	kw_key_free(cur);
	kw_key_free(v1);
	free(store);
}

Test(key, refuses_unknown_disabled_and_missing_store)
{
	char *store = store_with("web", "hsm", "ec-p256");
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(store, "nope", 0, &k), KW_ERR_NOT_FOUND);
	cr_assert(strstr(kw_error_message(), "unknown certificate 'nope'") != NULL);
	cr_assert_eq(kwt_sh("sqlite3 '%s/keyward.db' \"UPDATE certs SET enabled = 0\"", store), 0);
	cr_assert_eq(kw_key_open(store, "web", 0, &k), KW_ERR_STATE);
	cr_assert(strstr(kw_error_message(), "disabled") != NULL, "%s", kw_error_message());
	cr_assert_eq(kw_key_open("/nonexistent/store", "web", 0, &k), KW_ERR_NOT_FOUND);
	cr_assert_eq(kw_key_open(NULL, "web", 0, &k), KW_ERR_USAGE);
	cr_assert_null(k);
	free(store);
}

Test(key, a_destroyed_key_fails_to_open)
{
	char *store = store_with("web", "hsm", "ec-p256");
	char *id = kwt_sh_out("'%s' --store '%s' cert show web --json | "
	                      "sed -n 's/.*\"CKA_ID\": \"\\([0-9a-f]*\\)\".*/\\1/p'",
	                      kwt_env("KW_TEST_KEYWARD_BIN"), store);
	id[strcspn(id, "\n")] = '\0';
	cr_assert(strlen(id) > 0);
	cr_assert_eq(kwt_sh("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
	                    "--delete-object --type privkey --id %s >/dev/null 2>&1",
	                    kwt_env("KW_TEST_P11_MODULE"), kwt_env("KW_TEST_P11_TOKEN"),
	                    kwt_env("KW_TEST_P11_PIN"), id),
	             0);
	kw_key *k = NULL;
	kw_error_clear();
	cr_assert_eq(kw_key_open(store, "web", 0, &k), KW_ERR_NOT_FOUND, "%s", kw_error_message());
	free(id);
	free(store);
}

/* Issue 14, item 2: a row edited so that web's version points at other's key
 * (same device, same type) must not sign for web; a version set to failed,
 * or to a status this build does not know, signs nothing. */
Test(key, a_swapped_key_or_a_failed_version_does_not_open)
{
	char *store = store_with("web", "hsm", "ec-p256");
	kwt_result r;
	kwt_kw(&r, store, "cert", "create", "other", "--backend", "hsm", "--subject", "CN=other",
	       NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	kw_key *k = NULL;
	cr_assert_eq(kwt_sh("sqlite3 '%s/keyward.db' \"UPDATE versions SET key_ref = (SELECT "
	                    "v.key_ref FROM versions v JOIN certs c ON c.id = v.cert_id WHERE "
	                    "c.name = 'other') WHERE cert_id = (SELECT id FROM certs WHERE name = "
	                    "'web')\"",
	                    store),
	             0);
	kw_error_clear();
	cr_assert_eq(kw_key_open(store, "web", 0, &k), KW_ERR_STATE, "%s", kw_error_message());
	cr_assert(strstr(kw_error_message(), "does not match"), "%s", kw_error_message());
	cr_assert_null(k);

	/* other's own key still opens; set to failed, it does not */
	cr_assert_eq(kw_key_open(store, "other", 0, &k), KW_OK, "%s", kw_error_message());
	kw_key_free(k);
	k = NULL;
	const char *const statuses[] = {"failed", "pending"};
	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(kwt_sh("sqlite3 '%s/keyward.db' \"UPDATE versions SET status = '%s' "
		                    "WHERE cert_id = (SELECT id FROM certs WHERE name = 'other')\"",
		                    store, statuses[i]),
		             0);
		kw_error_clear();
		cr_assert_eq(kw_key_open(store, "other", 1, &k), KW_ERR_STATE, "%s: %s",
		             statuses[i], kw_error_message());
		cr_assert(strstr(kw_error_message(), statuses[i]), "%s", kw_error_message());
		cr_assert_null(k);
	}
	free(store);
}

Test(key, reconnects_after_the_tpm_comes_back)
{
	char *store = store_with("web", "tpm", "ec-p256");
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(store, "web", 0, &k), KW_OK, "%s", kw_error_message());
	cr_assert(sign_verify(k, &ecdsa, 1));
	kwt_swtpm_stop();
	unsigned char dgst[32] = {1}, sig[128];
	size_t len = sizeof(sig);
	kw_error_clear();
	cr_assert_eq(kw_key_sign(k, &ecdsa, dgst, sizeof(dgst), sig, &len), KW_ERR_UNAVAILABLE);
	cr_assert(strstr(kw_error_message(), "TPM") != NULL, "%s", kw_error_message());
	kwt_swtpm_start();
	cr_assert(sign_verify(k, &ecdsa, 2), "the same kw_key signs again: %s", kw_error_message());
	kw_key_free(k);
	free(store);
}

typedef struct {
	kw_key *k;
	const kw_sign_params *p;
	int ok;
} job;

static void *signer(void *arg)
{
	job *j = arg;
	j->ok = 1;
	for (int i = 0; i < 25; i++)
		j->ok &= sign_verify(j->k, j->p, i);
	return NULL;
}

static void threads_sign(const char *backend, const char *type, const kw_sign_params *p)
{
	char *store = store_with("web", backend, type);
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(store, "web", 0, &k), KW_OK, "%s", kw_error_message());
	pthread_t t[8];
	job jobs[8];
	for (int i = 0; i < 8; i++) {
		jobs[i] = (job){k, p, 0};
		cr_assert_eq(pthread_create(&t[i], NULL, signer, &jobs[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		cr_assert(jobs[i].ok, "thread %d made a bad signature", i);
	}
	kw_key_free(k);
	free(store);
}

Test(key, eight_threads_sign_on_the_tpm)
{
	threads_sign("tpm", "ec-p256", &ecdsa);
}

Test(key, eight_threads_sign_on_the_token)
{
	threads_sign("hsm", "rsa-2048", &pss);
}

/* nginx's shape: the master loads the key, forked workers sign with it. */
static void children_sign(const char *backend, int parent_signs_first)
{
	char *store = store_with("web", backend, "ec-p256");
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(store, "web", 0, &k), KW_OK, "%s", kw_error_message());
	if (parent_signs_first)
		cr_assert(sign_verify(k, &ecdsa, 0), "the parent signs before fork");
	pid_t kids[4];
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		cr_assert(kids[i] >= 0);
		if (kids[i] == 0) {
			int ok = 1;
			for (int n = 0; n < 10; n++)
				ok &= sign_verify(k, &ecdsa, n);
			_exit(ok ? 0 : 1);
		}
	}
	for (int i = 0; i < 4; i++) {
		int st = 0;
		waitpid(kids[i], &st, 0);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed", i);
	}
	cr_assert(sign_verify(k, &ecdsa, 99), "the parent still signs after its children");
	kw_key_free(k);
	free(store);
}

Test(key, forked_children_sign_on_the_token)
{
	children_sign("hsm", 1);
}

/* test_key_abrmd only (KWT_ABRMD): tpm2-abrmd in front of swtpm. */
#ifdef KWT_ABRMD
Test(key, forked_children_sign_on_the_tpm_through_abrmd)
{
	/* Without a resource manager a TPM serves one connection at a time:
	 * test_key_abrmd runs with tpm2-abrmd in front of swtpm. */
	cr_assert(strncmp(kwt_env("KW_TEST_TCTI"), "tabrmd", 6) == 0, "needs --abrmd");
	children_sign("tpm", 0);
}

Test(key, a_child_after_abrmd_use_fails_fast_instead_of_hanging)
{
	cr_assert(strncmp(kwt_env("KW_TEST_TCTI"), "tabrmd", 6) == 0, "needs --abrmd");
	char *store = store_with("web", "tpm", "ec-p256");
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(store, "web", 0, &k), KW_OK, "%s", kw_error_message());
	cr_assert(sign_verify(k, &ecdsa, 0), "the parent itself signs through tabrmd");
	pid_t kid = fork();
	cr_assert(kid >= 0);
	if (kid == 0) {
		alarm(20); /* a hang shows up as SIGALRM */
		unsigned char dgst[32] = {0}, sig[128];
		size_t len = sizeof(sig);
		kw_rc rc = kw_key_sign(k, &ecdsa, dgst, sizeof(dgst), sig, &len);
		_exit(rc == KW_ERR_UNAVAILABLE && strstr(kw_error_message(), "fork") ? 0 : 1);
	}
	int st = 0;
	waitpid(kid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	cr_assert(sign_verify(k, &ecdsa, 1), "the parent is unaffected");
	kw_key_free(k);
	free(store);
}
#endif

Test(keyref, round_trips_and_refuses_garbage)
{
	unsigned char *der = NULL;
	size_t len = 0;
	char *name = NULL, *dir = NULL;
	int v = -1;
	cr_assert_eq(kw_keyref_encode("web01", "/var/lib/keyward", 0, &der, &len), KW_OK);
	cr_assert_eq(kw_keyref_decode(der, len, &name, &dir, &v), KW_OK);
	cr_assert_str_eq(name, "web01");
	cr_assert_str_eq(dir, "/var/lib/keyward");
	cr_assert_eq(v, 0);
	free(name);
	free(dir);
	cr_assert_eq(kw_keyref_decode(der, len - 1, &name, &dir, &v), KW_ERR_PARSE, "truncated");
	der[5] ^= 0x20; /* inside the magic string */
	cr_assert_eq(kw_keyref_decode(der, len, &name, &dir, &v), KW_ERR_PARSE, "wrong magic");
	OPENSSL_free(der);
	cr_assert_eq(kw_keyref_encode("web01", NULL, 7, &der, &len), KW_OK);
	cr_assert_eq(kw_keyref_decode(der, len, &name, &dir, &v), KW_OK);
	cr_assert_null(dir);
	cr_assert_eq(v, 7);
	free(name);
	OPENSSL_free(der);
	static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	cr_assert_eq(kw_keyref_decode(junk, sizeof(junk), &name, &dir, &v), KW_ERR_PARSE);
	cr_assert_eq(kw_keyref_encode("bad name", NULL, 0, &der, &len), KW_ERR_USAGE);
}

Test(keyref, uris)
{
	char *name = NULL;
	int v = -1;
	cr_assert_eq(kw_uri_parse("keyward:web01", &name, &v), KW_OK);
	cr_assert_str_eq(name, "web01");
	cr_assert_eq(v, 0);
	free(name);
	cr_assert_eq(kw_uri_parse("keyward:web01?version=12", &name, &v), KW_OK);
	cr_assert_eq(v, 12);
	free(name);
	const char *bad[] = {"web01",
	                     "keyward:",
	                     "keyward:a b",
	                     "keyward:web?version=0",
	                     "keyward:web?version=x",
	                     "keyward:web?v=1",
	                     "keyward:web?version=1x",
	                     "file:keyward:web",
	                     "keyward:../etc"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(kw_uri_parse(bad[i], &name, &v), KW_ERR_PARSE, "%s", bad[i]);
}

/* nginx's shape with privileges dropped: the master (root) loads the key and
 * reads the PIN; a worker running as another user, who may not read the pin
 * file or the store, still signs. */
Test(key, a_worker_that_dropped_privileges_signs_with_the_pin_its_master_read)
{
	if (geteuid() != 0)
		kwt_skip("needs root to drop privileges");
	char *store = store_with("web", "hsm", "ec-p256");
	const char *tmp = kwt_env("KW_TEST_TMP");
	/* the token (not the PIN, not the store) is reachable by the worker user */
	cr_assert_eq(kwt_sh("chmod 711 '%s' && chmod -R a+rwX '%s/softhsm'", tmp, tmp), 0);
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(store, "web", 0, &k), KW_OK, "%s", kw_error_message());
	pid_t kid = fork();
	cr_assert(kid >= 0);
	if (kid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(3);
		FILE *f = fopen(kwt_env("KW_TEST_P11_PIN_FILE"), "r");
		if (f != NULL)
			_exit(4); /* the test would prove nothing */
		_exit(sign_verify(k, &ecdsa, 1) ? 0 : 1);
	}
	int st = 0;
	waitpid(kid, &st, 0);
	cr_assert(WIFEXITED(st), "worker died: %d", st);
	cr_assert_neq(WEXITSTATUS(st), 4, "the worker could read the pin file");
	cr_assert_eq(WEXITSTATUS(st), 0, "the unprivileged worker could not sign (%d)",
	             WEXITSTATUS(st));
	kw_key_free(k);
	free(store);
}

/* Enhanced packet blocks in a pcapng file: one per TPM command or response. */
static int pcap_packets(const char *path)
{
	size_t len = 0;
	char *data = kwt_read_file(path, &len);
	int n = 0;
	for (size_t off = 0; data && off + 8 <= len;) {
		uint32_t type, size;
		memcpy(&type, data + off, 4);
		memcpy(&size, data + off + 4, 4);
		if (size < 12 || off + size > len)
			break;
		n += type == 6;
		off += size;
	}
	free(data);
	return n;
}

/* The handshake path: a signature is one TPM command (the key stays loaded;
 * no TPM random numbers, no TPM hashing), counted at the TCTI with tpm2-tss's
 * pcap recorder between keyward and swtpm. */
Test(key, a_tpm_signature_costs_one_tpm_command)
{
	char *store = kwt_store_new(0, 0), *tcti = NULL, *pcap = NULL;
	cr_assert(asprintf(&tcti, "pcap:%s", kwt_env("KW_TEST_TCTI")) > 0);
	cr_assert(asprintf(&pcap, "%s/tpm.pcap", kwt_env("KW_TEST_TMP")) > 0);
	cr_assert_eq(setenv("TCTI_PCAP_FILE", pcap, 1), 0);
	kwt_result r;
	kwt_kw(&r, store, "backend", "add", "tpm", "tpm2", "--tcti", tcti, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	kwt_kw(&r, store, "cert", "create", "web", "--backend", "tpm", "--subject", "CN=web", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	kwt_result_free(&r);
	kw_key *k = NULL;
	cr_assert_eq(kw_key_open(store, "web", 0, &k), KW_OK, "%s", kw_error_message());
	cr_assert(sign_verify(k, &ecdsa, 0), "the first signature loads the key");
	int before = pcap_packets(pcap);
	cr_assert(before > 0, "the pcap TCTI recorded nothing");
	for (int i = 1; i <= 10; i++)
		cr_assert(sign_verify(k, &ecdsa, i));
	int after = pcap_packets(pcap);
	cr_assert_eq(after - before, 2 * 10, "10 signatures took %d TPM commands",
	             (after - before) / 2);
	kw_key_free(k);
	free(tcti);
	free(pcap);
	free(store);
}
