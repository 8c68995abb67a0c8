/*
 * fuzz.h - what every credsync fuzz target shares: the libFuzzer entry point and FUZZ_CHECK.
 *
 * A target checks invariants, not just survival: FUZZ_CHECK aborts with the condition that
 * failed, so libFuzzer keeps the input as a crash and the replay driver's ctest run fails.
 */
#ifndef CREDSYNC_FUZZ_H
#define CREDSYNC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs one input; must free everything it allocates.  Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

#endif
