/* retry.c - classification, backoff, budget and rate control; see retry.h. */
#include "retry.h"

#include <openssl/rand.h>
#include <string.h>
#include <time.h>

struct code_class {
	const char *code;
	enum retry_class cls;
	int prefix; /* match Code or "Code.*" */
};

/* API.md's table plus the gateway codes seen across Alibaba Cloud. */
static const struct code_class classes[] = {
	{ "ApplyTokenOverFlow", RETRY_THROTTLE, 0 },
	{ "SystemOverFlow", RETRY_THROTTLE, 0 },
	{ "Throttling", RETRY_THROTTLE, 1 },
	{ "ServiceUnavailable", RETRY_TRANSIENT, 1 },
	{ "InternalError", RETRY_TRANSIENT, 0 },
	{ "InternalFailure", RETRY_TRANSIENT, 0 },
	{ "UnknownError", RETRY_TRANSIENT, 0 },
	/* our nonces are random: a reuse is a fluke that a fresh nonce fixes */
	{ "SignatureNonceUsed", RETRY_TRANSIENT, 0 },
	{ "SignatureDoesNotMatch", FAIL_CREDENTIALS, 0 },
	{ "IncompleteSignature", FAIL_CREDENTIALS, 0 },
	{ "InvalidSecurityToken", FAIL_CREDENTIALS, 1 },
	{ "CheckAccountInfoFailed", FAIL_CREDENTIALS, 0 },
	{ "Forbidden.AccessKeyDisabled", FAIL_CREDENTIALS, 0 },
	{ "InvalidTimeStamp", FAIL_RUN, 1 },
	{ "ApiNotSupport", FAIL_RUN, 0 },
	{ "InvalidAction", FAIL_RUN, 1 },
	{ "InvalidVersion", FAIL_RUN, 0 },
	{ "InstancePermissionCheckFailed", FAIL_INSTANCE, 0 },
	{ "InvalidInstanceId", FAIL_INSTANCE, 1 },
};

enum retry_class retry_classify_code(const char *code)
{
	size_t i;

	if (!code)
		return RETRY_TRANSIENT;
	/* any unknown or disabled key: the whole run is unauthenticated */
	if (!strncmp(code, "InvalidAccessKeyId", 18))
		return FAIL_CREDENTIALS;
	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		size_t n = strlen(classes[i].code);

		if (!strcmp(code, classes[i].code))
			return classes[i].cls;
		if (classes[i].prefix && !strncmp(code, classes[i].code, n) && code[n] == '.')
			return classes[i].cls;
	}
	return FAIL_GROUP;
}

const char *retry_class_name(enum retry_class c)
{
	switch (c) {
	case RETRY_THROTTLE: return "throttled";
	case RETRY_TRANSIENT: return "transient";
	case FAIL_GROUP: return "group error";
	case FAIL_INSTANCE: return "instance error";
	case FAIL_CREDENTIALS: return "credentials error";
	case FAIL_RUN: return "fatal error";
	}
	return "?";
}

void retry_rng_seed(struct retry_rng *r)
{
	if (RAND_bytes((unsigned char *)&r->s, sizeof(r->s)) != 1)
		r->s = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ULL;
	if (!r->s)
		r->s = 1;
}

uint64_t retry_rng_next(struct retry_rng *r)
{
	/* xorshift64* */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1DULL;
}

double retry_rng_unit(struct retry_rng *r)
{
	return (double)(retry_rng_next(r) >> 11) / 9007199254740992.0;
}

int64_t retry_backoff_cap_ms(int n, int64_t base_ms, int64_t max_ms)
{
	int64_t cap = base_ms;
	int i;

	if (n < 1)
		n = 1;
	for (i = 1; i < n && cap < max_ms; i++)
		cap *= 2;
	return cap < max_ms ? cap : max_ms;
}

int64_t retry_backoff_ms(struct retry_rng *r, int n, int64_t base_ms, int64_t max_ms)
{
	int64_t cap = retry_backoff_cap_ms(n, base_ms, max_ms);

	return (int64_t)(retry_rng_unit(r) * (double)(cap + 1));
}

void retry_budget_init(struct retry_budget *b, int64_t capacity)
{
	b->tokens = b->capacity = capacity;
}

int retry_budget_take(struct retry_budget *b, int64_t cost)
{
	if (b->tokens < cost)
		return -1;
	b->tokens -= cost;
	return 0;
}

void retry_budget_refund(struct retry_budget *b, int64_t amount)
{
	b->tokens += amount;
	if (b->tokens > b->capacity)
		b->tokens = b->capacity;
}

static void set_burst(struct rate_limiter *rl)
{
	/* a small burst: requests go out evenly spaced instead of in clumps that a server-side
	 * bucket would reject */
	rl->burst = rl->rate >= 10 ? rl->rate / 10 : 1;
	if (rl->tokens > rl->burst)
		rl->tokens = rl->burst;
}

/* Where slow start begins: RATE_START, or a small share of a ceiling set far above the
 * default (a user who raised qps and qps_hard_cap to thousands should not wait for ten
 * doublings from 20/s), never above the ceiling. */
static double rate_start(double qps)
{
	double start = qps * RATE_START_SHARE;

	if (start < RATE_START)
		start = RATE_START;
	return start < qps ? start : qps;
}

void rate_init(struct rate_limiter *rl, double qps, int adaptive, int64_t now_ms)
{
	memset(rl, 0, sizeof(*rl));
	rl->ceiling = qps;
	rl->rate = adaptive ? rate_start(qps) : qps;
	rl->floor = qps < 0.5 ? qps : 0.5;
	rl->tokens = 1;
	set_burst(rl);
	rl->last_ms = now_ms;
	rl->last_cut_ms = -1000000;
	rl->last_step_ms = now_ms;
	rl->adaptive = adaptive;
	rl->slow_start = adaptive;
	rl->cut_window_start_ms = now_ms;
	rl->window_start_ms = now_ms;
	rl->measured_ok_rate = -1;
}

void rate_resume(struct rate_limiter *rl, double remembered, int64_t now_ms)
{
	if (!rl->adaptive || !(remembered > 0))
		return;
	rl->rate = remembered < rl->ceiling ? remembered : rl->ceiling;
	if (rl->rate < rl->floor)
		rl->rate = rl->floor;
	rl->slow_start = 0;
	rl->learned = 1;
	/* the remembered rate was at most the limit measured then: probe past it gently */
	rl->limit = rl->rate;
	rl->last_step_ms = now_ms;
	set_burst(rl);
}

int rate_learned(const struct rate_limiter *rl, double *out)
{
	double v = rl->rate, hi;

	if (!rl->adaptive || !rl->learned)
		return 0;
	/* near the limit measured: not lower (a cut for noise late in a run must not become the
	 * next run's start), not higher (the next run would start by overshooting it).  A run
	 * that was never cut may raise it by 5%: a limit that grew is found over a few runs,
	 * and a bucket's burst that hid an excess costs one cut in the next run at most. */
	hi = rl->cut ? rl->limit : 1.05 * rl->limit;
	if (rl->limit > 0 && v < 0.85 * rl->limit)
		v = 0.85 * rl->limit;
	if (rl->limit > 0 && v > hi)
		v = hi;
	*out = v < rl->ceiling ? v : rl->ceiling;
	return 1;
}

int64_t rate_take(struct rate_limiter *rl, int64_t now_ms)
{
	double elapsed = (double)(now_ms - rl->last_ms) / 1000.0;

	if (elapsed > 0) {
		rl->tokens += elapsed * rl->rate;
		if (rl->tokens > rl->burst)
			rl->tokens = rl->burst;
		rl->last_ms = now_ms;
	}
	if (rl->tokens >= 1.0) {
		rl->tokens -= 1.0;
		return 0;
	}
	return (int64_t)((1.0 - rl->tokens) / rl->rate * 1000.0) + 1;
}

/* Closes the success window once it has lasted a second. */
static void roll_window(struct rate_limiter *rl, int64_t now_ms)
{
	int64_t span = now_ms - rl->window_start_ms;

	if (span >= 1000) {
		rl->measured_ok_rate = (double)rl->window_ok * 1000.0 / (double)span;
		rl->window_ok = 0;
		rl->window_start_ms = now_ms;
	}
}

/* Counts an answer into the share of throttles, which forgets the old half of itself
 * every 4 * RATE_CUT_SAMPLES answers so that it tells about now. */
static void count_answer(struct rate_limiter *rl, int throttled)
{
	rl->cut_window_seen++;
	rl->share_seen++;
	rl->share_throttled += throttled;
	if (rl->share_seen >= 4 * RATE_CUT_SAMPLES) {
		rl->share_seen /= 2;
		rl->share_throttled /= 2;
	}
}

/*
 * Most answers since the last cut were throttled: not noise but a rate still far over the
 * limit, as after a slow start that outran a service bucket's burst (the burst let the
 * rate double unseen, so halving it is not enough).  Waiting for RATE_CUT_SAMPLES answers
 * would cost a throttle for every answer accepted; a tenth of a second says enough.
 */
static int overrun(const struct rate_limiter *rl, int64_t span)
{
	int64_t throttled = rl->cut_window_seen - rl->cut_window_ok;

	return span >= RATE_CUT_GUARD_MS && rl->cut_window_seen >= RATE_OVERRUN_SAMPLES &&
	       throttled * 2 >= rl->cut_window_seen;
}

void rate_on_throttle(struct rate_limiter *rl, int64_t now_ms)
{
	int64_t span = now_ms - rl->cut_window_start_ms;
	double measured = -1, target;

	count_answer(rl, 1);
	if (!rl->adaptive || now_ms - rl->last_cut_ms < RATE_CUT_GUARD_MS)
		return;
	/* Past slow start, a throttle now and then is noise the service makes at any rate:
	 * only a share of RATE_CUT_SHARE over RATE_CUT_SAMPLES answers says "too fast".
	 * Cutting on every one would drive the rate down to the floor for nothing. */
	if (!rl->slow_start && (rl->share_seen < RATE_CUT_SAMPLES ||
				rl->share_throttled < rl->share_seen * RATE_CUT_SHARE) &&
	    !overrun(rl, span))
		return;
	roll_window(rl, now_ms);
	/* what the service accepted since the last cut: while it throttles, that is its
	 * sustained rate, without the burst it let through at first */
	if (span >= RATE_CUT_GUARD_MS && span <= 2000 &&
	    (rl->cut_window_seen >= RATE_CUT_SAMPLES || overrun(rl, span)))
		measured = (double)rl->cut_window_ok * 1000.0 / (double)span;
	else if (rl->measured_ok_rate * 1.0 >= RATE_CUT_SAMPLES)
		measured = rl->measured_ok_rate; /* a whole second of at least that many answers */
	rl->limit = measured > 0 ? measured : rl->rate;
	target = rl->rate * (rl->slow_start ? 0.25 : 0.85);
	if (measured > 0 && measured * 0.85 < target)
		target = measured * 0.85;
	rl->rate = target < rl->floor ? rl->floor : target;
	rl->last_cut_ms = rl->last_step_ms = rl->cut_window_start_ms = now_ms;
	rl->cut_window_ok = rl->cut_window_seen = 0;
	rl->share_seen = rl->share_throttled = 0;
	rl->slow_start = 0;
	rl->learned = 1;
	rl->cut = 1;
	if (rl->tokens > 0)
		rl->tokens = 0;
	set_burst(rl);
}

void rate_observe_rtt(struct rate_limiter *rl, int64_t rtt_ms)
{
	double x = rtt_ms < 0 ? 0 : (double)rtt_ms;

	/* TCP's smoothing (RFC 6298): one answer moves the estimate by an eighth */
	rl->srtt_ms = rl->srtt_ms > 0 ? rl->srtt_ms + (x - rl->srtt_ms) / 8 : (x > 0 ? x : 0.001);
}

/* How long slow start holds a rate before doubling it: one round trip, within bounds. */
static int64_t slow_start_step_ms(const struct rate_limiter *rl)
{
	if (!(rl->srtt_ms > 0))
		return RATE_GROW_MS;
	if (rl->srtt_ms < RATE_GROW_MIN_MS)
		return RATE_GROW_MIN_MS;
	return rl->srtt_ms > RATE_GROW_MS ? RATE_GROW_MS : (int64_t)rl->srtt_ms;
}

void rate_on_success(struct rate_limiter *rl, int64_t now_ms)
{
	int64_t step = now_ms - rl->last_step_ms;
	/* far under the limit last measured (after a cut for noise), regain it quickly */
	int fast = rl->slow_start || (rl->limit > 0 && rl->rate < 0.5 * rl->limit);

	rl->window_ok++;
	rl->cut_window_ok++;
	count_answer(rl, 0);
	roll_window(rl, now_ms);
	if (!rl->adaptive || rl->rate >= rl->ceiling)
		return;
	if (fast && step >= (rl->slow_start ? slow_start_step_ms(rl) : RATE_GROW_MS)) {
		rl->rate *= 2;
		if (!rl->slow_start && rl->rate > 0.85 * rl->limit)
			rl->rate = 0.85 * rl->limit;
		rl->last_step_ms = now_ms;
	} else if (!fast && step >= 1000) {
		/* toward the limit last measured, briskly; past it, a gentle probe */
		rl->rate *= rl->limit > 0 && rl->rate >= 0.95 * rl->limit ? 1.01 : 1.05;
		/* The estimate is not raised by what is accepted above it without a throttle: a
		 * service bucket's burst lets a rate over the limit through for seconds, and a
		 * remembered rate learned that way would start the next run over the limit.  A
		 * higher limit is found by this probe and measured at the next cut. */
		rl->last_step_ms = now_ms;
	} else {
		return;
	}
	if (rl->rate > rl->ceiling)
		rl->rate = rl->ceiling;
	set_burst(rl);
}
