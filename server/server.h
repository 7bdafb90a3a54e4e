/*
 * keyward serve: the management API, an HTTPS REST API modelled on Azure Key
 * Vault's certificate API (see README "Management API"). A layer beside the
 * CLI: it calls libkeyward's public API only, and its TLS key is used through
 * keyward's OpenSSL provider, so it never leaves its TPM or token.
 */
#ifndef KEYWARD_SERVER_H
#define KEYWARD_SERVER_H

#include <stddef.h>

typedef struct {
	const char *store_dir; /* the store (its management CA decides who gets in) */
	const char *host;      /* address to listen on */
	int port;              /* 0: any free port (printed on stdout) */
	const char *tls_cert;  /* keyward certificate whose key serves TLS */
	size_t max_body;       /* largest request body accepted (bytes) */
	int timeout_seconds;   /* a whole request, or the reply taken, within this */
	int handshake_seconds; /* the TLS handshake done within this of the connect */
	int max_connections;   /* connections served at once; more are refused */
	int max_per_address;   /* of them from one IPv4 address or IPv6 /64 */
} kws_config;

#define KWS_DEFAULT_MAX_BODY     (64 * 1024)
#define KWS_DEFAULT_TIMEOUT      30
#define KWS_DEFAULT_HANDSHAKE    10
#define KWS_DEFAULT_MAX_CONNS    64
#define KWS_DEFAULT_MAX_PER_ADDR 16

/* Serves until SIGINT or SIGTERM. Prints "listening on HOST:PORT" on stdout
 * once it accepts connections. Returns the process exit code (errors are
 * printed as one "keyward: " line on stderr). */
int kws_serve(const kws_config *cfg);

#endif
