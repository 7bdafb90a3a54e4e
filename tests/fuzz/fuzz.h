/* keyward fuzz targets: each file defines LLVMFuzzerTestOneInput. Built with
 * libFuzzer under -DKEYWARD_FUZZ=ON (clang); otherwise replay.c runs each
 * target over its seed corpus as a regular test, so the corpus never rots. */
#ifndef KW_FUZZ_H
#define KW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of the input (malloc'd). */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

#endif
