/* see keyward/error.h */
#include <stdio.h>
#include <string.h>

#include <keyward/error.h>

struct error_record {
	kw_rc code;
	unsigned long device_code;
	char where[96];
	char message[512];
	kw_hint hint;
	char hint_arg[128];
};

static _Thread_local struct error_record record;

kw_rc kw_error_vset(kw_rc code, unsigned long device_code, const char *file, int line,
                    const char *fmt, va_list ap)
{
	if (record.code != KW_OK)
		return code;
	record.code = code;
	record.device_code = device_code;
	const char *base = strrchr(file, '/');
	snprintf(record.where, sizeof(record.where), "%s:%d", base ? base + 1 : file, line);
	vsnprintf(record.message, sizeof(record.message), fmt, ap);
	return code;
}

kw_rc kw_error_set(kw_rc code, unsigned long device_code, const char *file, int line,
                   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kw_error_vset(code, device_code, file, line, fmt, ap);
	va_end(ap);
	return code;
}

kw_rc kw_error_set_hint(kw_rc code, kw_hint hint, const char *hint_arg, const char *file, int line,
                        const char *fmt, ...)
{
	if (record.code != KW_OK)
		return code;
	va_list ap;
	va_start(ap, fmt);
	kw_error_vset(code, 0, file, line, fmt, ap);
	va_end(ap);
	record.hint = hint;
	snprintf(record.hint_arg, sizeof(record.hint_arg), "%s", hint_arg ? hint_arg : "");
	return code;
}

void kw_error_clear(void)
{
	memset(&record, 0, sizeof(record));
}

kw_rc kw_error_code(void)
{
	return record.code;
}

unsigned long kw_error_device_code(void)
{
	return record.device_code;
}

const char *kw_error_message(void)
{
	return record.message;
}

kw_hint kw_error_hint(void)
{
	return record.hint;
}

const char *kw_error_hint_arg(void)
{
	return record.hint_arg;
}

const char *kw_error_where(void)
{
	return record.where;
}

const char *kw_rc_name(kw_rc rc)
{
	switch (rc) {
	case KW_OK: return "ok";
	case KW_ERR_USAGE: return "usage";
	case KW_ERR_NOT_FOUND: return "not found";
	case KW_ERR_EXISTS: return "already exists";
	case KW_ERR_PARSE: return "malformed input";
	case KW_ERR_AUTH: return "authentication failed";
	case KW_ERR_BACKEND: return "device error";
	case KW_ERR_UNAVAILABLE: return "device unavailable";
	case KW_ERR_UNSUPPORTED: return "unsupported";
	case KW_ERR_IO: return "i/o error";
	case KW_ERR_STORE: return "store error";
	case KW_ERR_STATE: return "wrong state";
	case KW_ERR_PERM: return "unsafe permissions";
	case KW_ERR_NOMEM: return "out of memory";
	case KW_ERR_INTERNAL: return "internal error";
	case KW_ERR_DEPLOY: return "deploy failed";
	}
	return "unknown error";
}
