/* libkeyward internals shared by deploy.c, notify.c, notify_send.c and
 * contacts.c. */
#ifndef KEYWARD_NOTIFY_INTERNAL_H
#define KEYWARD_NOTIFY_INTERNAL_H

#include <jansson.h>

#include "internal.h"

/* Store settings (the settings table) that tune deploy and notify:
 *   deploy_hook_timeout  seconds a deploy hook may run (default 60)
 *   notify_timeout       seconds a notification channel may take (default 10) */
#define KWI_SETTING_HOOK_TIMEOUT   "deploy_hook_timeout"
#define KWI_DEFAULT_HOOK_TIMEOUT   60
#define KWI_SETTING_NOTIFY_TIMEOUT "notify_timeout"
#define KWI_DEFAULT_NOTIFY_TIMEOUT 10

/* An integer setting in 1..86400, or def when unset or not such a number. */
int kwi_setting_seconds(kw_store *s, const char *key, int def);

/* 1 if email is a plain addr-spec keyward will put in a To: header: one '@',
 * a non-empty local part and domain, printable ASCII without spaces, quotes,
 * angle brackets, commas or anything else that could end or split a header. */
int kwi_email_valid(const char *email);

/* in, made fit for a one-line message: control characters become \n, \r,
 * \t or \xNN, and it is cut to fit out (len > 4). Returns out. */
const char *kwi_printable(const char *in, char *out, size_t len);

/* The notice every channel sends (built once by kwi_notify). */
typedef struct {
	json_t *doc;      /* the webhook/command JSON: event, certificate, version, subject,
	                     not_after, thumbprint_sha256, threshold, details, contacts, at */
	json_t *contacts; /* [{email, name}] (borrowed from doc's owner) */
	time_t at;
	int timeout_ms;
} kwi_notice;

/* Sends through one channel; KW_OK or an error saying why it failed.
 * A sendmail channel with no contacts sends nothing: *skipped = 1. */
kw_rc kwi_channel_send(const char *kind, const json_t *config, const kwi_notice *n,
                       int *skipped) KW_MUST_USE;

/* The RFC 5322 message the sendmail channel writes (malloc'd). */
kw_rc kwi_mail_message(const kwi_notice *n, char **out) KW_MUST_USE;

#endif
