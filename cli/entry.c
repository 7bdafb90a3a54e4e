/* keyward's main(): process set-up around cli_main (main.c) */
#include <openssl/crypto.h>

#include <keyward/import.h>

#include "cli.h"

int main(int argc, char **argv)
{
	/* before anything allocates through OpenSSL: cert import decodes keys */
	(void)kw_openssl_wipe_on_free();
	int rc = cli_main(argc, argv);
	OPENSSL_cleanup();
	return rc;
}
