/* Signature v1 and v3 against the verified vectors of API.md, and the percent-encoder. */
#include <stdlib.h>

#include "sign.h"
#include "test.h"

static void test_percent_encode(void)
{
	struct cs_buf b = CS_BUF_INIT;
	const char in[] = "a b*c~d+e/f=g\xe4\xb8\xad";

	sign_percent_encode(&b, in, strlen(in));
	CHECK_STR(buf_str(&b), "a%20b%2Ac~d%2Be%2Ff%3Dg%E4%B8%AD");
	buf_release(&b);
}

static void test_v1_doc_example(void)
{
	const struct sign_param p[] = {
		{ "AccessKeyId", "testid" },
		{ "Action", "DescribeRegions" },
		{ "Format", "XML" },
		{ "SignatureMethod", "HMAC-SHA1" },
		{ "SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf" },
		{ "SignatureVersion", "1.0" },
		{ "Timestamp", "2016-02-23T12:46:24Z" },
		{ "Version", "2014-05-26" },
	};
	struct cs_buf q = CS_BUF_INIT, sts = CS_BUF_INIT;
	char sig[64];

	CHECK(sign_canonical_query(&q, p, sizeof(p) / sizeof(p[0])) == 0);
	sign_v1_string_to_sign(&sts, "GET", buf_str(&q));
	CHECK_STR(buf_str(&sts),
		  "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26"
		  "SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
		  "%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26");
	CHECK(sign_v1(sig, sizeof(sig), "GET", buf_str(&q), "testsecret") == 0);
	CHECK_STR(sig, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
	buf_release(&q);
	buf_release(&sts);
}

static void test_v1_this_action(void)
{
	/* given out of order on purpose: the canonical query sorts */
	const struct sign_param p[] = {
		{ "Version", "2020-04-20" },
		{ "Timestamp", "2026-01-01T00:00:00Z" },
		{ "AccessKeyId", "testid" },
		{ "Action", "ListDeviceCredentialClientId" },
		{ "Format", "json" },
		{ "GroupId", "GID_test" },
		{ "InstanceId", "mqtt-cn-xxxx" },
		{ "PageNo", "1" },
		{ "PageSize", "100" },
		{ "SignatureMethod", "HMAC-SHA1" },
		{ "SignatureNonce", "00000000-0000-4000-8000-000000000000" },
		{ "SignatureVersion", "1.0" },
	};
	struct cs_buf q = CS_BUF_INIT;
	char sig[64];

	CHECK(sign_canonical_query(&q, p, sizeof(p) / sizeof(p[0])) == 0);
	CHECK(sign_v1(sig, sizeof(sig), "POST", buf_str(&q), "testsecret") == 0);
	CHECK_STR(sig, "uExKYmNN0jhGj01yxhd1kwQ//7I=");
	buf_release(&q);
}

static void test_v1_sts_escapes(void)
{
	const struct sign_param p[] = {
		{ "AccessKeyId", "testid" },
		{ "Action", "ListDeviceCredentialClientId" },
		{ "Format", "JSON" },
		{ "GroupId", "GID_test" },
		{ "InstanceId", "mqtt-cn-xxxx" },
		{ "NextToken", "a+b/c=d e*f~g" },
		{ "PageNo", "2" },
		{ "PageSize", "100" },
		{ "SecurityToken", "sts+tok/en==" },
		{ "SignatureMethod", "HMAC-SHA1" },
		{ "SignatureNonce", "11111111-2222-4333-8444-555555555555" },
		{ "SignatureVersion", "1.0" },
		{ "Timestamp", "2026-01-01T00:00:00Z" },
		{ "Version", "2020-04-20" },
	};
	struct cs_buf q = CS_BUF_INIT;
	char sig[64];

	CHECK(sign_canonical_query(&q, p, sizeof(p) / sizeof(p[0])) == 0);
	CHECK_CONTAINS(buf_str(&q), "NextToken=a%2Bb%2Fc%3Dd%20e%2Af~g");
	CHECK_CONTAINS(buf_str(&q), "SecurityToken=sts%2Btok%2Fen%3D%3D");
	CHECK(sign_v1(sig, sizeof(sig), "GET", buf_str(&q), "testsecret") == 0);
	CHECK_STR(sig, "Km4/vbeDrivvCrbSxjdm3gsNthQ=");
	buf_release(&q);
}

static void test_v3_this_action(void)
{
	const struct sign_param q[] = {
		{ "PageSize", "100" },
		{ "GroupId", "GID_test" },
		{ "InstanceId", "mqtt-cn-xxxx" },
		{ "PageNo", "1" },
	};
	const struct sign_param h[] = {
		{ "x-acs-version", "2020-04-20" },
		{ "host", "onsmqtt.cn-hangzhou.aliyuncs.com" },
		{ "x-acs-action", "ListDeviceCredentialClientId" },
		{ "x-acs-content-sha256", SIGN_EMPTY_SHA256 },
		{ "x-acs-date", "2026-01-01T00:00:00Z" },
		{ "x-acs-signature-nonce", "00000000-0000-4000-8000-000000000000" },
	};
	struct cs_buf cq = CS_BUF_INIT, sh = CS_BUF_INIT;
	char hashed[65], sig[65];

	CHECK(sign_canonical_query(&cq, q, 4) == 0);
	CHECK_STR(buf_str(&cq), "GroupId=GID_test&InstanceId=mqtt-cn-xxxx&PageNo=1&PageSize=100");
	CHECK(sign_v3(hashed, sig, &sh, "POST", buf_str(&cq), h, 6, SIGN_EMPTY_SHA256,
		      "testsecret") == 0);
	CHECK_STR(buf_str(&sh),
		  "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version");
	CHECK_STR(hashed, "36fb8c98699d5e9426f3f8f0316b73d0bcb05291235a18b57cabec5e3a9681b1");
	CHECK_STR(sig, "8c74fef228fa769f71f89eca4ca2e51665ff700d3c86d7d469b64eef6ba3c22d");
	buf_release(&cq);
	buf_release(&sh);
}

static void test_v3_doc_example(void)
{
	const struct sign_param q[] = {
		{ "ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd" },
		{ "RegionId", "cn-shanghai" },
	};
	const struct sign_param h[] = {
		{ "host", "ecs.cn-shanghai.aliyuncs.com" },
		{ "x-acs-action", "RunInstances" },
		{ "x-acs-content-sha256", SIGN_EMPTY_SHA256 },
		{ "x-acs-date", "2023-10-26T10:22:32Z" },
		{ "x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d" },
		{ "x-acs-version", "2014-05-26" },
	};
	struct cs_buf cq = CS_BUF_INIT, sh = CS_BUF_INIT;
	char hashed[65], sig[65];

	CHECK(sign_canonical_query(&cq, q, 2) == 0);
	CHECK(sign_v3(hashed, sig, &sh, "POST", buf_str(&cq), h, 6, SIGN_EMPTY_SHA256,
		      "YourAccessKeySecret") == 0);
	CHECK_STR(sig, "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
	buf_release(&cq);
	buf_release(&sh);
}

static void test_nonce(void)
{
	char a[37], b[37];

	CHECK(sign_nonce(a) == 0);
	CHECK(sign_nonce(b) == 0);
	CHECK_INT(strlen(a), 36);
	CHECK(a[14] == '4');
	CHECK(strchr("89ab", a[19]) != NULL);
	CHECK(strcmp(a, b) != 0);
}

static void test_duplicate_name_refused(void)
{
	const struct sign_param p[] = { { "A", "1" }, { "A", "2" } };
	struct cs_buf q = CS_BUF_INIT;

	CHECK(sign_canonical_query(&q, p, 2) == -1);
	buf_release(&q);
}

int main(void)
{
	test_percent_encode();
	test_v1_doc_example();
	test_v1_this_action();
	test_v1_sts_escapes();
	test_v3_this_action();
	test_v3_doc_example();
	test_nonce();
	test_duplicate_name_refused();
	TEST_DONE();
}
