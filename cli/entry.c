/* keyward's main(): process set-up around cli_main (main.c) */
#include <stdio.h>

#include <openssl/crypto.h>

#include <keyward/import.h>

#include "cli.h"

int main(int argc, char **argv)
{
	/* before anything allocates through OpenSSL: cert import decodes keys */
	(void)kw_openssl_wipe_on_free();
	/* before any PIN, password or key is read (issue 14: a killed import
	 * left the key in a core file) */
	if (!kw_process_protect()) {
		fprintf(stderr, "keyward: cannot keep this process out of core dumps\n");
		return 1;
	}
	int rc = cli_main(argc, argv);
	OPENSSL_cleanup();
	return rc;
}
