/* Retry classification, backoff bounds and growth, the retry budget, the rate limiter. */
#include "retry.h"
#include "test.h"

static void test_classify(void)
{
	CHECK_INT(retry_classify_code("ApplyTokenOverFlow"), RETRY_THROTTLE);
	CHECK_INT(retry_classify_code("SystemOverFlow"), RETRY_THROTTLE);
	CHECK_INT(retry_classify_code("Throttling"), RETRY_THROTTLE);
	CHECK_INT(retry_classify_code("Throttling.User"), RETRY_THROTTLE);
	CHECK_INT(retry_classify_code("Throttling.Api"), RETRY_THROTTLE);
	CHECK_INT(retry_classify_code("ThrottlingX"), FAIL_GROUP);
	CHECK_INT(retry_classify_code("InternalError"), RETRY_TRANSIENT);
	CHECK_INT(retry_classify_code("ServiceUnavailable"), RETRY_TRANSIENT);
	CHECK_INT(retry_classify_code("SignatureNonceUsed"), RETRY_TRANSIENT);
	CHECK_INT(retry_classify_code("InvalidAccessKeyId.NotFound"), FAIL_CREDENTIALS);
	CHECK_INT(retry_classify_code("SignatureDoesNotMatch"), FAIL_CREDENTIALS);
	CHECK_INT(retry_classify_code("CheckAccountInfoFailed"), FAIL_CREDENTIALS);
	CHECK_INT(retry_classify_code("InvalidSecurityToken.Expired"), FAIL_CREDENTIALS);
	CHECK_INT(retry_classify_code("InvalidTimeStamp.Expired"), FAIL_RUN);
	CHECK_INT(retry_classify_code("ApiNotSupport"), FAIL_RUN);
	CHECK_INT(retry_classify_code("InstancePermissionCheckFailed"), FAIL_INSTANCE);
	CHECK_INT(retry_classify_code("PermissionCheckFailed"), FAIL_GROUP);
	CHECK_INT(retry_classify_code("ParameterCheckFailed"), FAIL_GROUP);
	CHECK_INT(retry_classify_code("InvalidParameter.PageSize"), FAIL_GROUP);
	CHECK_INT(retry_classify_code("SomethingNew"), FAIL_GROUP);
}

static void test_backoff(void)
{
	struct retry_rng r;
	int n, i;
	int64_t prev_cap = 0;
	double prev_mean = -1;

	retry_rng_seed(&r);
	for (n = 1; n <= 12; n++) {
		int64_t cap = retry_backoff_cap_ms(n, 1000, 30000), lo = INT64_MAX, hi = 0;
		double sum = 0;

		CHECK(cap >= prev_cap);
		CHECK(cap <= 30000);
		for (i = 0; i < 4000; i++) {
			int64_t d = retry_backoff_ms(&r, n, 1000, 30000);

			CHECK(d >= 0 && d <= cap);
			if (d < lo)
				lo = d;
			if (d > hi)
				hi = d;
			sum += (double)d;
		}
		/* full jitter covers the whole range, and the mean (cap/2) grows until the cap */
		CHECK(lo < cap / 10 + 1);
		CHECK(hi > cap - cap / 10 - 1);
		if (n <= 5)
			CHECK(sum / 4000 > prev_mean);
		prev_mean = sum / 4000;
		prev_cap = cap;
	}
	CHECK_INT(retry_backoff_cap_ms(1, 1000, 30000), 1000);
	CHECK_INT(retry_backoff_cap_ms(3, 1000, 30000), 4000);
	CHECK_INT(retry_backoff_cap_ms(6, 1000, 30000), 30000);
	CHECK_INT(retry_backoff_cap_ms(60, 1000, 30000), 30000);
}

static void test_budget(void)
{
	struct retry_budget b;
	int i, taken = 0;

	retry_budget_init(&b, 50);
	for (i = 0; i < 20; i++)
		taken += retry_budget_take(&b, RETRY_COST) == 0;
	CHECK_INT(taken, 10);
	CHECK(retry_budget_take(&b, 1) == -1);
	retry_budget_refund(&b, 1000);
	CHECK_INT(b.tokens, 50);
}

static void test_rate(void)
{
	struct rate_limiter rl;
	int64_t t = 0;
	int sent = 0;
	double v = 0;

	/* fixed 10 qps: about 10 requests in a simulated second */
	rate_init(&rl, 10, 0, 0);
	for (t = 0; t < 1000; t++)
		if (rate_take(&rl, t) == 0)
			sent++;
	CHECK(sent >= 9 && sent <= 12);
	rate_on_throttle(&rl, 1000);
	CHECK(rl.rate == 10); /* fixed mode never adapts */
	CHECK(rate_learned(&rl, &v) == 0);

	/* slow start: from RATE_START, doubling every RATE_GROW_MS, up to the ceiling */
	rate_init(&rl, 100, 1, 0);
	CHECK(rl.rate == RATE_START);
	CHECK(rate_learned(&rl, &v) == 0);
	rate_on_success(&rl, RATE_GROW_MS - 1);
	CHECK(rl.rate == RATE_START);
	rate_on_success(&rl, RATE_GROW_MS);
	CHECK(rl.rate == 2 * RATE_START);
	rate_on_success(&rl, 2 * RATE_GROW_MS);
	rate_on_success(&rl, 3 * RATE_GROW_MS);
	CHECK(rl.rate == 100);
	/* a ceiling below the start: the ceiling */
	rate_init(&rl, 5, 1, 0);
	CHECK(rl.rate == 5);
	/* a ceiling raised far above the default: 2% of it (RATE_START up to a ceiling of 1000) */
	rate_init(&rl, 10000, 1, 0);
	CHECK(rl.rate == 200);
	rate_init(&rl, 250, 1, 0);
	CHECK(rl.rate == RATE_START);

	/* the first throttle quarters the rate at most, and cuts to 0.85 x what the service
	 * accepted since the start (40/s here) when that is lower; a second throttle within
	 * the guard does not cut again */
	rate_init(&rl, 200, 1, 0);
	for (t = 25; t <= 1000; t += 25)
		rate_on_success(&rl, t);   /* 40 in 1 s; the slow start reached the ceiling */
	CHECK(rl.rate == 200);
	rate_on_throttle(&rl, 1000);
	CHECK(rl.rate > 33.9 && rl.rate < 34.1);
	CHECK(rl.slow_start == 0);
	rate_on_throttle(&rl, 1000 + RATE_CUT_GUARD_MS - 1);
	CHECK(rl.rate > 33.9 && rl.rate < 34.1);
	CHECK(rate_learned(&rl, &v) == 1 && v > 33.9 && v < 34.1);
	/* congestion avoidance: +5% a second of successes (at about the rate allowed) up to
	 * 95% of the estimate, then +1%; never above the ceiling */
	for (t = 1000; t <= 3100; t += 28)
		rate_on_success(&rl, t);
	CHECK(rl.rate > 34 * 1.05 * 1.05 - 0.1 && rl.rate < 34 * 1.05 * 1.05 + 0.1);
	for (; t <= 5200; t += 28)
		rate_on_success(&rl, t);  /* 37.5 -> 39.4 (5%), then past 38 only 1% */
	CHECK(rl.rate > 34 * 1.05 * 1.05 * 1.05 * 1.01 - 0.1 &&
	      rl.rate < 34 * 1.05 * 1.05 * 1.05 * 1.01 + 0.1);
	for (; t <= 400000; t += 5)
		rate_on_success(&rl, t);
	CHECK(rl.rate == 200);
	/* during slow start a throttle with nothing measured quarters the rate */
	rate_init(&rl, 200, 1, 0);
	rate_on_throttle(&rl, 1);
	CHECK(rl.rate == RATE_START / 4);

	/* noise: past slow start, a throttle in every 11 answers (9%, as a service sends at any
	 * rate) cuts nothing: the rate grows (briskly to the limit measured, gently past it),
	 * and what is remembered is not driven down; the estimate stays what was measured at
	 * the cut (a burst could have let the excess through) */
	rate_init(&rl, 200, 1, 0);
	rate_on_success(&rl, RATE_GROW_MS);        /* 40/s */
	rate_on_throttle(&rl, RATE_GROW_MS + 1);   /* slow start ends: a quarter */
	CHECK(rl.rate == 10 && rl.slow_start == 0);
	for (t = 400, sent = 0; t < 60000; t += 20, sent++) {
		if (sent % 11 == 10)
			rate_on_throttle(&rl, t);
		else
			rate_on_success(&rl, t);
	}
	CHECK(rl.rate > 45); /* grew all along, past the first estimate of 40 */
	CHECK(rl.limit == 40);
	CHECK(rate_learned(&rl, &v) == 1 && v == 40);
	/* but a quarter of the answers throttled is "too fast": cut */
	for (sent = 0; sent < 100; sent++) {
		t += 5;
		if (sent % 4 == 3)
			rate_on_throttle(&rl, t);
		else
			rate_on_success(&rl, t);
	}
	CHECK(rl.rate < 200);

	/* slow start paced by the round trip: 10 ms answers double the rate every 10 ms; 1 ms
	 * answers every RATE_GROW_MIN_MS, never faster; 900 ms answers every RATE_GROW_MS */
	rate_init(&rl, 1000, 1, 0);
	rate_observe_rtt(&rl, 10);
	rate_on_success(&rl, 9);
	CHECK(rl.rate == RATE_START);
	rate_on_success(&rl, 10);
	CHECK(rl.rate == 2 * RATE_START);
	rate_on_success(&rl, 20);
	CHECK(rl.rate == 4 * RATE_START);
	rate_init(&rl, 1000, 1, 0);
	for (t = 0; t < 200; t++)
		rate_observe_rtt(&rl, 1);
	CHECK(rl.srtt_ms > 0.9 && rl.srtt_ms < 1.1);
	rate_on_success(&rl, RATE_GROW_MIN_MS - 1);
	CHECK(rl.rate == RATE_START);
	rate_on_success(&rl, RATE_GROW_MIN_MS);
	CHECK(rl.rate == 2 * RATE_START);
	rate_init(&rl, 1000, 1, 0);
	rate_observe_rtt(&rl, 900);
	rate_on_success(&rl, RATE_GROW_MS - 1);
	CHECK(rl.rate == RATE_START);
	rate_on_success(&rl, RATE_GROW_MS);
	CHECK(rl.rate == 2 * RATE_START);
	/* past slow start the round trip paces nothing: far under the estimate the rate
	 * doubles every RATE_GROW_MS, however fast the answers */
	rate_on_throttle(&rl, RATE_GROW_MS + 1);
	CHECK(rl.slow_start == 0);
	for (t = 0; t < 200; t++)
		rate_observe_rtt(&rl, 1);
	sent = (int)rl.rate;
	rate_on_success(&rl, RATE_GROW_MS + 1 + 100);
	CHECK((int)rl.rate == sent);
	rate_on_success(&rl, 2 * RATE_GROW_MS + 1);
	CHECK((int)rl.rate == 2 * sent);

	/* overrun: slow start outran a bucket's burst (ceiling 200, service 40/s, burst 40).
	 * The first cut quarters it to 50/s; 100 ms later, with half or more of at least
	 * RATE_OVERRUN_SAMPLES answers throttled, the rate is cut at once to 0.85 x what was
	 * accepted meanwhile, without waiting for RATE_CUT_SAMPLES */
	rate_init(&rl, 200, 1, 0);
	rate_observe_rtt(&rl, 5);
	for (t = 0; t <= 300; t += 5)
		rate_on_success(&rl, t);
	CHECK(rl.rate == 200);
	rate_on_throttle(&rl, 300);
	CHECK(rl.rate == 50 && rl.slow_start == 0);
	for (t = 310, sent = 0; t <= 400; t += 10, sent++) {
		if (sent % 5 < 2)
			rate_on_success(&rl, t);   /* 4 accepted in 100 ms: 40/s */
		else if (t < 400)
			rate_on_throttle(&rl, t);  /* within the guard or too few: no cut */
	}
	CHECK(rl.rate == 50);
	rate_on_throttle(&rl, 401);
	CHECK(rl.rate > 25 && rl.rate < 40);
	CHECK(rl.limit > 30 && rl.limit < 47);
	/* a few throttles among many answers are not an overrun */
	rate_init(&rl, 200, 1, 0);
	rate_on_throttle(&rl, 1);       /* slow start ends: 10/s */
	for (t = 200; t < 1200; t += 10)
		rate_on_success(&rl, t);
	sent = (int)(rl.rate * 100);
	rate_on_throttle(&rl, 1200);
	CHECK((int)(rl.rate * 100) == sent);

	/* the estimate is not raised by what is accepted above it without a throttle, and what
	 * is remembered after a run without a cut rises by 5% at most */
	rate_init(&rl, 200, 1, 0);
	rate_resume(&rl, 40, 0);
	CHECK(rl.limit == 40);
	for (t = 0; t < 60000; t += 10)
		rate_on_success(&rl, t);  /* 100/s accepted: a burst, or a limit that grew */
	CHECK(rl.limit == 40 && rl.rate > 40);
	CHECK(rate_learned(&rl, &v) == 1 && v > 41.9 && v < 42.1);

	/* resumed from a remembered rate: no slow start, capped by the ceiling */
	rate_init(&rl, 100, 1, 0);
	rate_resume(&rl, 37, 0);
	CHECK(rl.rate == 37 && rl.slow_start == 0);
	CHECK(rate_learned(&rl, &v) == 1 && v == 37);
	rate_init(&rl, 30, 1, 0);
	rate_resume(&rl, 37, 0);
	CHECK(rl.rate == 30);
	rate_init(&rl, 30, 0, 0);
	rate_resume(&rl, 7, 0);
	CHECK(rl.rate == 30); /* fixed mode ignores it */

	/* the wait reported is the time to the next token */
	rate_init(&rl, 2, 0, 0);
	CHECK(rate_take(&rl, 0) == 0);
	CHECK(rate_take(&rl, 0) > 400);
}

int main(void)
{
	test_classify();
	test_backoff();
	test_budget();
	test_rate();
	TEST_DONE();
}
