/* keyward fuzz targets: each file defines LLVMFuzzerTestOneInput. Built with
 * libFuzzer under -DKEYWARD_FUZZ=ON (clang); otherwise replay.c runs each
 * target over its seed corpus as a regular test, so the corpus never rots. */
#ifndef KW_FUZZ_H
#define KW_FUZZ_H

#include <ftw.h>
#include <stddef.h>
#include <stdio.h>
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

static inline int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes a temporary directory tree the target made. */
static inline void fuzz_rm_tree(const char *dir)
{
	(void)nftw(dir, fuzz_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
