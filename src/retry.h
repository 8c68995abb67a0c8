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
/* A full budget of capacity tokens. */
void retry_budget_init(struct retry_budget *b, int64_t capacity);
/* Takes cost tokens; returns 0, or -1 (and takes nothing) when not enough are left. */
int retry_budget_take(struct retry_budget *b, int64_t cost);
void retry_budget_refund(struct retry_budget *b, int64_t amount);

/*
 * The client-side rate limiter of one endpoint host: a token bucket whose rate is adapted to
 * what the service accepts, never above the configured qps (the ceiling, itself never above
 * qps_hard_cap).
 *
 * - Slow start: a run that knows nothing of the service's limit starts at RATE_START (or
 *   RATE_START_SHARE of the ceiling when that is more, or the ceiling if lower) and doubles
 *   the rate once a round trip while nothing is throttled,
 *   as TCP's slow start does: the round trip is the smoothed time answers take
 *   (rate_observe_rtt), kept between RATE_GROW_MIN_MS and RATE_GROW_MS (RATE_GROW_MS
 *   before the first answer).  A throttle cannot be seen sooner than a round trip after the
 *   rate that caused it, so a rate doubled more often would overshoot unseen; doubled less
 *   often, a service 1 ms away waits seconds for a ceiling it could take at once.
 * - On a throttle (at most once per RATE_CUT_GUARD_MS, so a burst of rejections in flight
 *   counts once) the rate is cut to 0.85 times what the service actually accepted since the
 *   previous cut (or over the last second), and to at most a quarter of the rate during
 *   slow start (a rate doubled each round trip may be far over a limit that a burst hid);
 *   slow start ends, and what was accepted is the limit estimate.
 * - After that (congestion avoidance) the rate grows by 5% a second up to 95% of the limit
 *   estimate and by 1% a second past it, so it settles just under the limit and probes it
 *   only gently; a throttle cuts again only when at least
 *   RATE_CUT_SHARE of RATE_CUT_SAMPLES or more answers since the last cut were throttled, so
 *   the odd throttle a service sends at any rate does not drive the rate to the floor, or
 *   when half of RATE_OVERRUN_SAMPLES or more answers over RATE_CUT_GUARD_MS were (a rate
 *   still far over the limit, as when slow start outran a bucket's burst).  Far
 *   under the limit estimate (below half of it) the rate doubles every RATE_GROW_MS again.
 * - The estimate is what was accepted while throttled, never what was accepted above it
 *   without a throttle: a service bucket's burst lets an excess through unseen for seconds.
 * - Remembered: the rate a run ended at after meeting the limit (kept between 0.85 times the
 *   estimate and the estimate, or 1.05 times it when nothing was cut in the run) is kept
 *   per host in the database (rate_learned); the next run starts there (rate_resume),
 *   without slow start, with that rate as its estimate.
 * Fixed mode (rate_control: fixed) is a plain token bucket at the ceiling.
 */
#define RATE_START 20.0
#define RATE_START_SHARE 0.02   /* or this share of the ceiling, when that is more */
#define RATE_GROW_MS 250
#define RATE_GROW_MIN_MS 5
#define RATE_CUT_GUARD_MS 100
#define RATE_CUT_SAMPLES 20     /* past slow start, answers needed before a cut ... */
#define RATE_CUT_SHARE 0.2      /* ... and the share of them throttled */
#define RATE_OVERRUN_SAMPLES 8  /* or this many, half of them throttled (see overrun()) */

struct rate_limiter {
	double ceiling;      /* configured qps */
	double rate;         /* current qps */
	double floor;        /* never below this */
	double tokens;
	double burst;
	int64_t last_ms;
	int64_t last_cut_ms;
	int64_t last_step_ms; /* the last growth step */
	int adaptive;
	int slow_start;      /* 1 until the first throttle (or a resume) */
	int learned;         /* the run met the limit, or started from a remembered rate */
	int cut;             /* a throttle cut the rate in this run */
	/* answers since the last cut, to measure what the service accepts */
	int64_t cut_window_start_ms;
	int64_t cut_window_ok;
	int64_t cut_window_seen;       /* successes and throttles */
	int64_t share_seen, share_throttled; /* recent answers, and how many were throttles */
	double limit;                  /* the accepted rate measured at the last cut, 0 before */
	/* successes per second, measured over whole windows of about a second */
	int64_t window_start_ms;
	int64_t window_ok;
	double measured_ok_rate; /* of the last full window; < 0 before one ended */
	double srtt_ms;          /* smoothed round trip of the answers, 0 before the first */
};
void rate_init(struct rate_limiter *rl, double qps, int adaptive, int64_t now_ms);
/* Starts from a rate remembered from an earlier run (adaptive mode only; capped by the
 * ceiling): no slow start. */
void rate_resume(struct rate_limiter *rl, double remembered, int64_t now_ms);
/* The rate worth remembering for the next run: 1 and *out when this run met the service's
 * limit (or started from a remembered rate), 0 when it learned nothing. */
int rate_learned(const struct rate_limiter *rl, double *out);
/* Takes a token: returns 0, or the milliseconds until one is available. */
int64_t rate_take(struct rate_limiter *rl, int64_t now_ms);
void rate_on_throttle(struct rate_limiter *rl, int64_t now_ms);
void rate_on_success(struct rate_limiter *rl, int64_t now_ms);
/* Records how long one answer took (send to answer, retries apart): it paces slow start. */
void rate_observe_rtt(struct rate_limiter *rl, int64_t rtt_ms);

#endif
