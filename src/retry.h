/*
 * retry.h - what to do after a failed attempt: classification by the service's Code (never
 * by HTTP status alone: ApplyTokenOverFlow is a 400), exponential backoff with full jitter,
 * a per-run retry budget, and the client-side rate limiter that adapts to throttling.
 *
 * Pure computation, no I/O; time is passed in, so all of it is unit-testable.
 */
#ifndef CREDSYNC_RETRY_H
#define CREDSYNC_RETRY_H

#include <stdint.h>

enum retry_class {
	RETRY_THROTTLE,       /* the service pushed back: retry later, slow down */
	RETRY_TRANSIENT,      /* a fault that may pass: retry later */
	FAIL_GROUP,           /* this group cannot be crawled: record and go on */
	FAIL_INSTANCE,        /* no group of this instance can be crawled */
	FAIL_CREDENTIALS,     /* the AccessKey is missing, unknown or the signature is refused */
	FAIL_RUN,             /* nothing can work (clock skew, unsupported API): stop the run */
};

/* Classifies a service error Code (as in the error body). */
enum retry_class retry_classify_code(const char *code);
const char *retry_class_name(enum retry_class c);

/* A small, fast PRNG for jitter (not for secrets); seeded from the CSPRNG. */
struct retry_rng {
	uint64_t s;
};
void retry_rng_seed(struct retry_rng *r);
uint64_t retry_rng_next(struct retry_rng *r);
double retry_rng_unit(struct retry_rng *r); /* [0, 1) */

/* The cap of attempt n's delay (n = 1 for the first retry): min(max_ms, base_ms * 2^(n-1)). */
int64_t retry_backoff_cap_ms(int n, int64_t base_ms, int64_t max_ms);
/* Full jitter: uniform in [0, retry_backoff_cap_ms(n, ...)]. */
int64_t retry_backoff_ms(struct retry_rng *r, int n, int64_t base_ms, int64_t max_ms);

/*
 * The retry budget of AWS's standard retry mode: a retry spends tokens (more after a
 * timeout), an attempt that succeeds gives back what its retries spent, or one token when it
 * needed none.  An outage drains it and stops the retry storm; ordinary throttling that
 * recovers costs nothing in the end.
 */
#define RETRY_COST 5
#define RETRY_COST_TIMEOUT 10
struct retry_budget {
	int64_t tokens;
	int64_t capacity;
};
void retry_budget_init(struct retry_budget *b, int64_t capacity);
/* Takes cost tokens; returns 0, or -1 (and takes nothing) when not enough are left. */
int retry_budget_take(struct retry_budget *b, int64_t cost);
void retry_budget_refund(struct retry_budget *b, int64_t amount);

/*
 * The client-side rate limiter of one endpoint: a token bucket whose rate starts at the
 * configured qps (the ceiling).  In adaptive mode a throttled response cuts the rate to 0.7
 * times what the service actually accepted over the last second (or 0.7 times the current
 * rate, if lower), at most once per 500 ms so a burst of rejections in flight counts once;
 * every success raises it additively by about 1 qps per second.  So the rate settles just
 * under the service's real limit (AIMD, as TCP and AWS's adaptive retry mode do), even when
 * the configured ceiling is far above it.
 */
struct rate_limiter {
	double ceiling;      /* configured qps */
	double rate;         /* current qps */
	double floor;        /* never below this */
	double tokens;
	double burst;
	int64_t last_ms;
	int64_t last_cut_ms;
	int adaptive;
	/* successes per second, measured over whole windows of about a second */
	int64_t window_start_ms;
	int64_t window_ok;
	double measured_ok_rate; /* of the last full window; < 0 before one ended */
};
void rate_init(struct rate_limiter *rl, double qps, int adaptive, int64_t now_ms);
/* Takes a token: returns 0, or the milliseconds until one is available. */
int64_t rate_take(struct rate_limiter *rl, int64_t now_ms);
void rate_on_throttle(struct rate_limiter *rl, int64_t now_ms);
void rate_on_success(struct rate_limiter *rl, int64_t now_ms);

#endif
