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

	/* fixed 10 qps: about 10 requests in a simulated second */
	rate_init(&rl, 10, 0, 0);
	for (t = 0; t < 1000; t++)
		if (rate_take(&rl, t) == 0)
			sent++;
	CHECK(sent >= 9 && sent <= 12);
	rate_on_throttle(&rl, 1000);
	CHECK(rl.rate == 10); /* fixed mode never adapts */

	/* adaptive: a throttle cuts the rate, a second one within 500 ms does not cut again,
	 * successes bring it back to the ceiling and not above */
	rate_init(&rl, 50, 1, 0);
	rate_on_throttle(&rl, 1000);
	CHECK(rl.rate > 34.9 && rl.rate < 35.1);
	rate_on_throttle(&rl, 1200);
	CHECK(rl.rate > 34.9 && rl.rate < 35.1);
	rate_on_throttle(&rl, 1600);
	CHECK(rl.rate < 25);
	for (sent = 0; sent < 10000; sent++)
		rate_on_success(&rl, 2000 + sent);
	CHECK(rl.rate == 50);

	/* a ceiling far above the service's limit: the cut goes to what the service accepted
	 * (20/s measured over the last second), not merely 0.7 x 200 */
	rate_init(&rl, 200, 1, 0);
	for (t = 0; t < 1000; t += 50)
		rate_on_success(&rl, t);
	rate_on_success(&rl, 1000);   /* closes the first window: 21 in 1 s */
	rate_on_throttle(&rl, 1100);
	CHECK(rl.rate > 13 && rl.rate < 16);
	/* the additive increase is about 1 qps per second of successes */
	{
		double before = rl.rate;
		int64_t now = 1100;

		for (sent = 0; sent < 150; sent++)
			rate_on_success(&rl, now += 1000 / 15);
		CHECK(rl.rate > before + 7 && rl.rate < before + 13);
	}
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
