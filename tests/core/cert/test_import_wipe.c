/*
 * cert import canary: after kw_cert_import returns, the imported private key's
 * raw bytes (EC P-256 scalar) appear nowhere in this process's readable,
 * writable memory. The scalar is learned from `openssl pkey -text` (another
 * process) and kept only in guarded memory, whose pages the scan skips.
 * Without kw_openssl_wipe_on_free() this fails: OpenSSL's ASN.1 decoder frees
 * the ECPrivateKey octet string uncleansed. What it does not prove: that no
 * copy existed while the import ran, or outside this process (swtpm, the
 * SoftHSM module's own files are on disk by design).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>

#include <sodium.h>

#include <keyward/import.h>
#include <keyward/keyward.h>

#include "kwtest.h"

#define SCALAR_LEN 32
#define CHUNK      (1 << 20)

/* as keyward's main() does, before anything uses OpenSSL */
static int wipe_set;
__attribute__((constructor(101))) static void wipe_setup(void)
{
	wipe_set = kw_openssl_wipe_on_free();
}

/* hex with colons and whitespace → bytes; returns count */
static size_t hex_bytes(const char *text, unsigned char *out, size_t max)
{
	size_t n = 0;
	int hi = -1;
	for (; *text && n < max; text++) {
		int v = *text >= '0' && *text <= '9'   ? *text - '0'
		        : *text >= 'a' && *text <= 'f' ? *text - 'a' + 10
		                                       : -1;
		if (v < 0)
			continue;
		if (hi < 0)
			hi = v;
		else {
			out[n++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	return n;
}

/* Counts occurrences of needle in readable+writable mappings, except
 * [skip_lo, skip_hi) and the scratch buffer. */
static int memory_count(const unsigned char *needle, size_t len, uintptr_t skip_lo,
                        uintptr_t skip_hi, char *where, size_t where_len)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	int mem = open("/proc/self/mem", O_RDONLY);
	unsigned char *buf = mmap(NULL, CHUNK + SCALAR_LEN, PROT_READ | PROT_WRITE,
	                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char line[512];
	int hits = 0;

	cr_assert(maps != NULL && mem >= 0 && buf != MAP_FAILED);
	while (fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[5];
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
		    perms[1] != 'w')
			continue;
		if ((lo < skip_hi && hi > skip_lo) || (lo <= (uintptr_t)buf && (uintptr_t)buf < hi))
			continue;
		/* ASan's shadow memory: terabytes reserved, never data (no heap
		 * of this program comes near 4 GiB) */
		if (hi - lo > (1UL << 32))
			continue;
		for (unsigned long a = lo; a < hi; a += CHUNK) {
			size_t want = hi - a < CHUNK + len ? hi - a : CHUNK + len;
			ssize_t got = pread(mem, buf, want, (off_t)a);
			for (ssize_t i = 0; got >= (ssize_t)len && i <= got - (ssize_t)len; i++)
				if (buf[i] == needle[0] && memcmp(buf + i, needle, len) == 0 &&
				    (i < CHUNK)) {
					hits++;
					snprintf(where, where_len, "%s", line);
				}
		}
	}
	munmap(buf, CHUNK + SCALAR_LEN);
	close(mem);
	fclose(maps);
	return hits;
}

static void canary(const char *backend, int pkcs12)
{
	char *store = kwt_store_new(strcmp(backend, "tpm") == 0, strcmp(backend, "hsm") == 0);
	char *dir = kwt_tmpdir("wipe");
	char where[512] = "";
	kw_store *s = NULL;
	json_t *res = NULL;

	cr_assert_eq(sodium_init() >= 0, 1);
	cr_assert_eq(wipe_set, 1, "OpenSSL allocated before the constructor ran");
	cr_assert_eq(kwt_sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
	                    "ec_paramgen_curve:P-256 -nodes -keyout k.pem -out c.pem -subj "
	                    "/CN=wipe -days 30 >/dev/null 2>&1 && cat c.pem k.pem > in.pem && "
	                    "openssl pkcs12 -export -in c.pem -inkey k.pem -passout pass: "
	                    "-out in.p12",
	                    dir),
	             0);
	/* the scalar as hex text from another process, into guarded memory */
	char *text = kwt_sh_out(
	    "openssl pkey -in '%s/k.pem' -noout -text | sed -n '/^priv:/,/^pub:/p'", dir);
	unsigned char *needle = sodium_malloc(SCALAR_LEN);
	cr_assert_not_null(needle);
	cr_assert_eq(hex_bytes(strchr(text, '\n'), needle, SCALAR_LEN), SCALAR_LEN);
	sodium_memzero(text, strlen(text));
	free(text);
	uintptr_t lo = (uintptr_t)needle & ~(uintptr_t)4095, hi = lo + 4096;

	/* the scan can fail: a live copy of the scalar is found */
	unsigned char *live = malloc(SCALAR_LEN);
	cr_assert_not_null(live);
	memcpy(live, needle, SCALAR_LEN);
	cr_assert_geq(memory_count(needle, SCALAR_LEN, lo, hi, where, sizeof(where)), 1,
	              "the scan misses a live copy");
	sodium_memzero(live, SCALAR_LEN);
	free(live);
	char path[600];
	snprintf(path, sizeof(path), "%s/in.%s", dir, pkcs12 ? "p12" : "pem");
	cr_assert_eq(kw_store_open(store, &s), KW_OK);
	kw_cert_import_request req = {.name = "wiped", .backend = backend};
	if (pkcs12)
		req.pkcs12_path = path;
	else
		req.pem_path = path;
	if (strcmp(backend, "nope") == 0)
		cr_assert_neq(kw_cert_import(s, &req, &res), KW_OK);
	else
		cr_assert_eq(kw_cert_import(s, &req, &res), KW_OK, "import: %s",
		             kw_error_message());
	json_decref(res);
	kw_store_close(s);
	int hits = memory_count(needle, SCALAR_LEN, lo, hi, where, sizeof(where));
	cr_assert_eq(hits, 0, "%s: the private scalar is still in memory %d time(s), e.g. %s",
	             backend, hits, where);
	sodium_free(needle);
	free(dir);
	free(store);
}

Test(import_wipe, tpm_scalar_gone_after_import)
{
	canary("tpm", 0);
}

Test(import_wipe, hsm_scalar_gone_after_import)
{
	canary("hsm", 0);
}

/* refused after the key was decoded (no such backend): no copy either */
Test(import_wipe, refused_import_leaves_no_copy)
{
	canary("nope", 0);
}

/* PKCS#12: the key comes out of PKCS12_parse's own decoding (PKCS#8 bags) */
Test(import_wipe, hsm_pkcs12_scalar_gone_after_import)
{
	canary("hsm", 1);
}
