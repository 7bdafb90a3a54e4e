/*
 * keyward tests: the test's own view of the TPM, independent of the
 * backend's code (its own TCTI and ESYS context on the harness's TCTI).
 */
#ifndef KWT_ESYS_DEV_H
#define KWT_ESYS_DEV_H

#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "kwtest.h"

typedef struct {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
} dev;

static inline void dev_open(dev *d)
{
	TSS2_RC rc = Tss2_TctiLdr_Initialize(kwt_env("KW_TEST_TCTI"), &d->tcti);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "test TCTI: %s", Tss2_RC_Decode(rc));
	rc = Esys_Initialize(&d->esys, d->tcti, NULL);
	cr_assert_eq(rc, TSS2_RC_SUCCESS, "test ESYS: %s", Tss2_RC_Decode(rc));
}

static inline void dev_close(dev *d)
{
	Esys_Finalize(&d->esys);
	Tss2_TctiLdr_Finalize(&d->tcti);
}

#endif
