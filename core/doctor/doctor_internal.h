/* libkeyward internals: keyward doctor's parts (doctor/doctor.c: the store,
 * doctor_device.c: the devices). see keyward/doctor.h */
#ifndef KEYWARD_DOCTOR_INTERNAL_H
#define KEYWARD_DOCTOR_INTERNAL_H

#include <keyward/doctor.h>

#include "internal.h"

typedef struct {
	kw_store *s;
	int repair;
	json_t *problems; /* array of problem objects */
} kwi_doctor;

/* Appends a problem: kind, detail, action, repaired, and the optional
 * fields in where (stolen, may be NULL). */
kw_rc kwi_doctor_problem(kwi_doctor *d, const char *kind, int repaired, json_t *where,
                         const char *action, const char *fmt, ...)
    __attribute__((format(printf, 6, 7))) KW_MUST_USE;

/* Marks a version failed (never the current one) with an event, in one
 * transaction; *done is 0 when the version had become current meanwhile. */
kw_rc kwi_doctor_fail_version(kwi_doctor *d, int64_t cert_id, const char *cert, int version,
                              const char *reason, int *done) KW_MUST_USE;

/* Checks every backend's device: keys of versions, keys nobody references. */
kw_rc kwi_doctor_devices(kwi_doctor *d) KW_MUST_USE;

#endif
