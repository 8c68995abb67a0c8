/*
 * test.h - the unit tests' few macros.  A failed check prints file:line and the values and
 * makes the binary exit non-zero; tests keep going so one run shows every failure.
 */
#ifndef CREDSYNC_TEST_H
#define CREDSYNC_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		test_checks++;                                                           \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			test_failures++;                                                 \
		}                                                                        \
	} while (0)

#define CHECK_STR(got, want)                                                             \
	do {                                                                             \
		const char *g_ = (got), *w_ = (want);                                    \
		test_checks++;                                                           \
		if (!g_ || strcmp(g_, w_)) {                                             \
			fprintf(stderr, "%s:%d: %s\n   got: %s\n  want: %s\n", __FILE__,  \
				__LINE__, #got, g_ ? g_ : "(null)", w_);                 \
			test_failures++;                                                 \
		}                                                                        \
	} while (0)

#define CHECK_INT(got, want)                                                             \
	do {                                                                             \
		long long g_ = (long long)(got), w_ = (long long)(want);                \
		test_checks++;                                                           \
		if (g_ != w_) {                                                          \
			fprintf(stderr, "%s:%d: %s: got %lld, want %lld\n", __FILE__,      \
				__LINE__, #got, g_, w_);                                 \
			test_failures++;                                                 \
		}                                                                        \
	} while (0)

#define CHECK_CONTAINS(hay, needle)                                                      \
	do {                                                                             \
		const char *h_ = (hay), *n_ = (needle);                                  \
		test_checks++;                                                           \
		if (!h_ || !strstr(h_, n_)) {                                            \
			fprintf(stderr, "%s:%d: %s does not contain \"%s\"\n   got: %s\n",  \
				__FILE__, __LINE__, #hay, n_, h_ ? h_ : "(null)");       \
			test_failures++;                                                 \
		}                                                                        \
	} while (0)

#define TEST_DONE()                                                                      \
	do {                                                                             \
		fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures);   \
		return test_failures ? 1 : (test_checks ? 0 : 1);                        \
	} while (0)

#endif
