/* see provider.h: KEYWARD_DEBUG tracing and error reporting */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "provider.h"

static pthread_once_t debug_once = PTHREAD_ONCE_INIT;
static int debug_on; /* written once, under debug_once */

static void debug_read_env(void)
{
	const char *v = getenv("KEYWARD_DEBUG");
	debug_on = v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

int kwp_debug_enabled(void)
{
	pthread_once(&debug_once, debug_read_env);
	return debug_on;
}

/* One write per line so that lines of concurrent threads do not interleave. */
__attribute__((format(printf, 2, 0))) static void debug_vline(const char *prefix, const char *fmt,
                                                              va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "keyward: %s", prefix);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	size_t len = strlen(line);
	if (len == sizeof(line) - 1)
		len--;
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
	fflush(stderr);
}

void kwp_debug(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	debug_vline("", fmt, ap);
	va_end(ap);
}

const char *kwp_kw_message(void)
{
	const char *m = kw_error_message();
	return m != NULL && m[0] != '\0' ? m : "unknown keyward error";
}

void kwp_raise_at(const kwp_ctx *prov, int reason, const char *file, int line, const char *func,
                  const char *fmt, ...)
{
	va_list ap;
	if (kwp_debug_enabled()) {
		va_start(ap, fmt);
		debug_vline("error: ", fmt, ap);
		va_end(ap);
	}
	va_start(ap, fmt);
	if (prov != NULL && prov->new_error != NULL && prov->vset_error != NULL) {
		prov->new_error(prov->handle);
		if (prov->set_error_debug != NULL)
			prov->set_error_debug(prov->handle, file, line, func);
		prov->vset_error(prov->handle, (uint32_t)reason, fmt, ap);
	} else {
		ERR_new();
		ERR_set_debug(file, line, func);
		ERR_vset_error(ERR_LIB_PROV, reason, fmt, ap);
	}
	va_end(ap);
}
