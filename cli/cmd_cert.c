/* keyward cert ...: the command table */
#include "cli.h"

int cmd_cert(int argc, char **argv)
{
	static const cli_command table[] = {
	    {"create", cert_create,
	     "NAME --backend B --subject DN [--san DNS:x|IP:y ...] [--key TYPE] [--days N] "
	     "[--issuer self|unknown|ca:NAME|acme:NAME] [--http01-listen ADDR:PORT | "
	     "--http01-webroot DIR] [--ca [--pathlen N]] [--revocable] [--policy FILE]",
	     "Creates a key inside the backend's device and a certificate signed by it.\n"
	     "DN: CN=web01,O=Example or /O=Example/CN=web01. Without --san, a CN that is a "
	     "host name\nor IP address becomes the one SAN. TYPE: ec-p256 (default), ec-p384, "
	     "rsa-2048,\nrsa-3072, rsa-4096 (a TPM may not support rsa-4096). N: validity in days "
	     "(default 365).\n--policy FILE: create from a policy document (see: keyward policy "
	     "default --help);\nthe flags given override its fields, --san replaces its SANs.\n"
	     "--issuer unknown: an external CA issues. Version 1 waits, pending, with a CSR "
	     "signed in\nthe device (cert csr) until the certificate comes back (cert merge).\n"
	     "--issuer ca:NAME: keyward certificate NAME (a CA, on any backend) signs in its "
	     "device;\nthe certificate's chain is NAME's certificate and chain; renewals "
	     "re-issue from NAME.\n--ca: a CA certificate (CA:TRUE, keyCertSign|cRLSign, no "
	     "EKU, default 3650 days);\nself-signed (a root) or, with --issuer ca:ROOT, an "
	     "intermediate. --pathlen N: at\nmost N CAs below it (0 to 16).\n"
	     "--issuer acme:NAME: ACME issuer NAME (keyward issuer add) issues for a CSR signed "
	     "in\nthe device; its account key signs every request in its own device. http-01\n"
	     "challenges are answered by a responder of keyward's own on ADDR:PORT\n"
	     "(--http01-listen 0.0.0.0:80) or as files under DIR/.well-known/acme-challenge/ for\n"
	     "the web server already there (--http01-webroot); the choice stays in the policy\n"
	     "(issuer.http01) for renewals. Without either, the issuer's default is used.\n"
	     "--revocable (policy key.revocable): keys a purge can end for good, copies\n"
	     "included. TPM: the key is bound to an NV counter of its own (TPM2_PolicyNV) that\n"
	     "a purge moves on and removes, so no copy of its wrapped blob (a key-ref --format\n"
	     "tss2 file, a store backup) signs again; each signature runs the policy (three\n"
	     "TPM commands instead of one), the counter takes a little NV space until the\n"
	     "purge, and defining it needs the owner hierarchy's empty auth value. Without it\n"
	     "a purge only forgets a TPM key. PKCS#11 keys are destroyed on purge either way."},
	    {"adopt", cert_adopt,
	     "NAME --backend B (--key-uri pkcs11:... | --tss2 FILE) [--cert FILE] [--json]",
	     "Brings a key other software made on the device under management without\n"
	     "touching it. PKCS#11: the URI (id= and/or object=) must name exactly one private\n"
	     "key with a CKA_ID that is sensitive and not extractable; the certificate is\n"
	     "--cert FILE (PEM, chain after it), else the token's certificate object with the\n"
	     "key's CKA_ID. TPM: a TSS2 PRIVATE KEY file (tpm2-openssl) that loads under this\n"
	     "TPM's SRK, with --cert. The certificate must match the key; the policy is\n"
	     "derived from it."},
	    {"import", cert_import,
	     "NAME --backend B (--pem FILE | --pkcs12 FILE) [--password-source file:PATH|env:VAR] "
	     "[--shred-input] [--json]",
	     "Imports an existing certificate, its chain and its private key into the backend's\n"
	     "device as a non-exportable key (TPM: TPM2_Import under the SRK; PKCS#11: a\n"
	     "sensitive, non-extractable object). FILE: PEM with the certificate and its key\n"
	     "(PKCS#8, traditional RSA/EC, encrypted) or PKCS#12. Keys: EC P-256/P-384, RSA\n"
	     "2048/3072/4096. The policy is derived from the certificate. keyward's own copies\n"
	     "of the key are wiped once the device holds it; FILE is left as it was unless\n"
	     "--shred-input (overwritten with random bytes, then zeros, then removed)."},
	    {"list", cert_list, "[--json]", "Lists certificates (their current versions)."},
	    {"show", cert_show, "NAME [--version N] [--json]",
	     "Shows a certificate version (default: the current one)."},
	    {"access", cert_access,
	     "NAME [--allow-user USER] [--allow-group GROUP] [--deny-user USER] "
	     "[--deny-group GROUP] [--json]",
	     "Shows and changes who may use the certificate's key through keyward agent:\n"
	     "the users and groups of its access list, and always the store's owner and root\n"
	     "(an empty list: only them). USER and GROUP: names or numbers that exist on this\n"
	     "host; each option may be repeated. A change takes effect at the next signature,\n"
	     "without restarting the agent or the servers. Then prints the list."},
	    {"export", cert_export, "NAME [--version N] [--chain] [--out FILE]",
	     "Writes the certificate (and with --chain its chain) as PEM. Never a private key."},
	    {"csr", cert_csr, "NAME [--out FILE]",
	     "Writes a PEM CSR signed inside the device, for the pending version if any.\n"
	     "A pending version's CSR is the same bytes every time; without one, a new CSR for\n"
	     "the current key."},
	    {"merge", cert_merge, "NAME FILE [--json]",
	     "Brings back the certificate an external CA issued for the pending version's CSR.\n"
	     "FILE (- reads stdin): PEM with the certificate and any of its chain in any "
	     "order,\nPKCS#7 (.p7b), or DER. It must hold the pending key, be an end-entity\n"
	     "certificate and be valid now. The chain is ordered from FILE's issuers; what is\n"
	     "not part of it is dropped (and said). The version becomes current in one step;\n"
	     "a refusal changes nothing. Replacing a version deploys the new one: if the\n"
	     "deploy fails, the merge stands and the exit code is 3."},
	    {"revoke", cert_revoke, "NAME [--reason R]",
	     "Revokes the current version of NAME, a certificate a keyward CA issued (issuer\n"
	     "ca:CA); the CA's next CRL lists it (keyward ca crl CA). An ACME certificate (issuer\n"
	     "acme:NAME) is revoked at its CA, the request signed by the account key. R:\n"
	     "unspecified (default), keyCompromise, cACompromise, affiliationChanged, superseded,\n"
	     "cessationOfOperation."},
	    {"pending", cert_pending, "cancel NAME",
	     "The version waiting for its certificate: cancel ends its key (as cert purge does)\n"
	     "and removes it."},
	    {"renew", cert_renew,
	     "NAME [--new-key|--reuse-key] [--http01-listen ADDR:PORT | --http01-webroot DIR]",
	     "Adds a version with a new certificate and makes it current in one step.\n"
	     "With issuer unknown the new version is pending instead: a CSR for your CA (the\n"
	     "contacts are told); the current version serves until cert merge.\n"
	     "By default the policy's key.reuse_key decides (a new key unless it is true);\n"
	     "--new-key generates a new key in the device; --reuse-key keeps the current one.\n"
	     "ACME (issuer acme:NAME): a new order for the same names; --http01-* override the\n"
	     "policy's way of answering http-01 for this run. A failure leaves the current\n"
	     "version as it was (exit 1). Then the new version is deployed: if the deploy\n"
	     "(files or a hook) fails, the renewal stands and the exit code is 3."},
	    {"delete", cert_lifecycle_delete, "NAME [--purge]",
	     "Deletes a certificate softly: hidden from list, show and the provider, its keys\n"
	     "kept until it is purged (cert purge, or renew --due after retention_days; see\n"
	     "keyward config). --purge purges it at once (see cert purge)."},
	    {"versions", cert_versions, "NAME [--json]",
	     "Lists every version, oldest first, marking the current one."},
	    {"rollback", cert_rollback, "NAME VERSION",
	     "Makes an older version current again if it has not expired and its key is still\n"
	     "on its device, then deploys it: if the deploy fails, the rollback stands and the\n"
	     "exit code is 3."},
	    {"set", cert_set, "NAME --enabled true|false",
	     "Enables or disables a certificate: the provider refuses a disabled one's key and\n"
	     "renew --due skips it."},
	    {"recover", cert_recover, "NAME", "Brings a deleted certificate back."},
	    {"purge", cert_purge, "NAME [--force]",
	     "Ends the key of every version of a deleted certificate and forgets it, and says\n"
	     "what each device did: PKCS#11 keys are destroyed on the token; revocable TPM keys\n"
	     "(cert create --revocable) are revoked, so no copy of their blob signs again;\n"
	     "other TPM keys are only forgotten: the store drops their wrapped blobs, but a\n"
	     "copy (a key-ref --format tss2 file, a store backup) still signs on that TPM.\n"
	     "--force purges a certificate that is not deleted."},
	    {"deleted", cert_deleted, "[--json]",
	     "Lists deleted certificates and when renew --due purges them."},
	    {"verify", cert_verify, "NAME [--version N] [--json]",
	     "Reads the key's custody attributes back from the device: why it cannot leave it."},
	    {"key-ref", cert_key_ref, "NAME [--format keyward|tss2|pkcs11-uri] [--out FILE]",
	     "Writes a reference to the certificate's key for other software; never the key.\n"
	     "keyward (default): a PEM that OpenSSL with the keyward provider loads as the key\n"
	     "  (e.g. nginx ssl_certificate_key); it names the certificate, so it follows "
	     "renewals.\n"
	     "tss2: a TPM key's standard TSS2 PRIVATE KEY file (tpm2-openssl, tpm2-tools).\n"
	     "pkcs11-uri: the RFC 7512 URI of a PKCS#11 key (pkcs11-tool, p11tool, "
	     "pkcs11-provider).\n"
	     "tss2 and pkcs11-uri name the current key: renewing with a new key needs a new one."},
	    {"deploy", cert_deploy, "NAME [--json]",
	     "Writes the files of the deploy target the policy names (cert, chain, fullchain,\n"
	     "key_ref) atomically and runs its hooks: pre, then the files, then deploy, then\n"
	     "post (see keyward deploy-target). keyward renew "
	     "does this after\nevery renewal; run it by hand after changing the policy. The "
	     "files are all\nreplaced or none is. Exit 3: the deploy ran and failed (its "
	     "target, a file or a\nhook); 1: it could not start (an unknown certificate)."},
	    {NULL, NULL, NULL, NULL},
	};
	return cli_dispatch("cert", table, argc, argv);
}
