/*
 * test_sim_sign.c - the simulator's own signature code (contrib/simulator/sim_sign.c) against
 * every vector of API.md, written down from API.md and not from src/sign.c's output: the
 * simulator is the referee of credsync's signing, so it must be right on its own.
 */
#include "sim.h"

#include "test.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void check_encode(const char *in, const char *want)
{
	struct cs_buf b = CS_BUF_INIT;

	sim_sign_encode(&b, in, strlen(in));
	CHECK_STR(buf_str(&b), want);
	buf_release(&b);
}

/* API.md, v1 step 1: RFC 3986 unreserved bytes stay, the rest %XX upper-case. */
static void test_encode(void)
{
	struct cs_buf b = CS_BUF_INIT;

	check_encode("AZaz09-_.~", "AZaz09-_.~");
	check_encode(" ", "%20");
	check_encode("*", "%2A");
	check_encode("~", "~");
	check_encode("+/=:&", "%2B%2F%3D%3A%26");
	check_encode("a+b/c=d e*f~g", "a%2Bb%2Fc%3Dd%20e%2Af~g");
	/* over UTF-8 bytes, upper-case hex; control bytes and 0xFF too */
	check_encode("\xc3\xa9", "%C3%A9");
	check_encode("\x01\x7f\xff", "%01%7F%FF");
	/* the length is honoured: an embedded NUL is a byte like any other */
	sim_sign_encode(&b, "a\0b", 3);
	CHECK_STR(buf_str(&b), "a%00b");
	buf_release(&b);
}

/* API.md's doc example for v1. */
static void test_v1_doc_example(void)
{
	/* given out of order: the canonical query sorts them */
	static const struct sim_kv p[] = {
		{ "Version", "2014-05-26" },
		{ "Timestamp", "2016-02-23T12:46:24Z" },
		{ "SignatureVersion", "1.0" },
		{ "SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf" },
		{ "SignatureMethod", "HMAC-SHA1" },
		{ "Format", "XML" },
		{ "Action", "DescribeRegions" },
		{ "AccessKeyId", "testid" },
	};
	struct cs_buf q = CS_BUF_INIT, sts = CS_BUF_INIT;
	char sig[29] = "";

	CHECK_INT(sim_sign_query(&q, p, sizeof(p) / sizeof(p[0])), 0);
	CHECK_STR(buf_str(&q),
		  "AccessKeyId=testid&Action=DescribeRegions&Format=XML&SignatureMethod=HMAC-SHA1"
		  "&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0"
		  "&Timestamp=2016-02-23T12%3A46%3A24Z&Version=2014-05-26");
	sim_sign_v1_string(&sts, "GET", buf_str(&q));
	CHECK_STR(buf_str(&sts),
		  "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
		  "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
		  "%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z"
		  "%26Version%3D2014-05-26");
	CHECK_INT(sim_sign_v1(sig, buf_str(&sts), "testsecret"), 0);
	CHECK_STR(sig, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
	/* a different secret gives a different signature */
	CHECK_INT(sim_sign_v1(sig, buf_str(&sts), "testsecreT"), 0);
	CHECK(strcmp(sig, "OLeaidS1JvxuMvnyHOwuJ+uX5qY="));
	buf_release(&q);
	buf_release(&sts);
}

/* API.md: ListDeviceCredentialClientId as the official SDK signs it (POST). */
static void test_v1_sdk_post(void)
{
	static const struct sim_kv p[] = {
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
		{ "Timestamp", "2026-01-01T00:00:00Z" },
		{ "Version", "2020-04-20" },
	};
	struct cs_buf q = CS_BUF_INIT, sts = CS_BUF_INIT;
	char sig[29] = "";

	CHECK_INT(sim_sign_query(&q, p, sizeof(p) / sizeof(p[0])), 0);
	sim_sign_v1_string(&sts, "POST", buf_str(&q));
	CHECK(!strncmp(buf_str(&sts), "POST&%2F&AccessKeyId%3Dtestid%26", 32));
	CHECK_INT(sim_sign_v1(sig, buf_str(&sts), "testsecret"), 0);
	CHECK_STR(sig, "uExKYmNN0jhGj01yxhd1kwQ//7I=");
	buf_release(&q);
	buf_release(&sts);
}

/* API.md: GET with STS and a NextToken that needs escapes. */
static void test_v1_sts_get(void)
{
	static const struct sim_kv p[] = {
		{ "SecurityToken", "sts+tok/en==" },
		{ "NextToken", "a+b/c=d e*f~g" },
		{ "AccessKeyId", "testid" },
		{ "Action", "ListDeviceCredentialClientId" },
		{ "Format", "JSON" },
		{ "GroupId", "GID_test" },
		{ "InstanceId", "mqtt-cn-xxxx" },
		{ "PageNo", "2" },
		{ "PageSize", "100" },
		{ "SignatureMethod", "HMAC-SHA1" },
		{ "SignatureNonce", "11111111-2222-4333-8444-555555555555" },
		{ "SignatureVersion", "1.0" },
		{ "Timestamp", "2026-01-01T00:00:00Z" },
		{ "Version", "2020-04-20" },
	};
	struct cs_buf q = CS_BUF_INIT, sts = CS_BUF_INIT;
	char sig[29] = "";

	CHECK_INT(sim_sign_query(&q, p, sizeof(p) / sizeof(p[0])), 0);
	CHECK_CONTAINS(buf_str(&q), "&NextToken=a%2Bb%2Fc%3Dd%20e%2Af~g&");
	CHECK_CONTAINS(buf_str(&q), "&SecurityToken=sts%2Btok%2Fen%3D%3D&");
	/* sorted by name: NextToken between InstanceId and PageNo, SecurityToken after PageSize */
	CHECK_CONTAINS(buf_str(&q), "InstanceId=mqtt-cn-xxxx&NextToken=");
	CHECK_CONTAINS(buf_str(&q), "PageSize=100&SecurityToken=");
	sim_sign_v1_string(&sts, "GET", buf_str(&q));
	/* the value is encoded twice in the StringToSign */
	CHECK_CONTAINS(buf_str(&sts), "NextToken%3Da%252Bb%252Fc%253Dd%2520e%252Af~g");
	CHECK_INT(sim_sign_v1(sig, buf_str(&sts), "testsecret"), 0);
	CHECK_STR(sig, "Km4/vbeDrivvCrbSxjdm3gsNthQ=");
	buf_release(&q);
	buf_release(&sts);
}

/* Sorting is by the encoded name in byte order: upper case before lower case, and an
 * encoded byte ('%') before '~' even when the raw byte (0x7F) sorts after it. */
static void test_query_order(void)
{
	static const struct sim_kv p[] = {
		{ "b", "2" }, { "a~", "6" }, { "a", "" }, { "B", "3" }, { "a\x7f", "7" },
		{ "a b", "4" }, { "_", "5" },
	};
	struct cs_buf q = CS_BUF_INIT;

	CHECK_INT(sim_sign_query(&q, p, sizeof(p) / sizeof(p[0])), 0);
	CHECK_STR(buf_str(&q), "B=3&_=5&a=&a%20b=4&a%7F=7&a~=6&b=2");
	buf_reset(&q);
	CHECK_INT(sim_sign_query(&q, NULL, 0), 0);
	CHECK_STR(buf_str(&q), "");
	buf_release(&q);
}

/* API.md's v3 vector for this action, the canonical request written out by hand. */
static void test_v3_action(void)
{
	static const struct sim_kv query[] = {
		{ "PageSize", "100" },
		{ "PageNo", "1" },
		{ "InstanceId", "mqtt-cn-xxxx" },
		{ "GroupId", "GID_test" },
	};
	/* out of order, as a request's headers arrive */
	static const struct sim_kv hdr[] = {
		{ "x-acs-version", "2020-04-20" },
		{ "host", "onsmqtt.cn-hangzhou.aliyuncs.com" },
		{ "x-acs-action", "ListDeviceCredentialClientId" },
		{ "x-acs-content-sha256", EMPTY_SHA256 },
		{ "x-acs-date", "2026-01-01T00:00:00Z" },
		{ "x-acs-signature-nonce", "00000000-0000-4000-8000-000000000000" },
	};
	struct cs_buf q = CS_BUF_INIT, creq = CS_BUF_INIT;
	char hashed[65] = "", sig[65] = "", empty[65] = "";

	sim_sha256_hex("", 0, empty);
	CHECK_STR(empty, EMPTY_SHA256);
	CHECK_INT(sim_sign_query(&q, query, sizeof(query) / sizeof(query[0])), 0);
	CHECK_STR(buf_str(&q), "GroupId=GID_test&InstanceId=mqtt-cn-xxxx&PageNo=1&PageSize=100");
	CHECK_INT(sim_sign_v3_request(&creq, "POST", buf_str(&q), hdr, sizeof(hdr) / sizeof(hdr[0]),
				      EMPTY_SHA256), 0);
	CHECK_STR(buf_str(&creq),
		  "POST\n"
		  "/\n"
		  "GroupId=GID_test&InstanceId=mqtt-cn-xxxx&PageNo=1&PageSize=100\n"
		  "host:onsmqtt.cn-hangzhou.aliyuncs.com\n"
		  "x-acs-action:ListDeviceCredentialClientId\n"
		  "x-acs-content-sha256:" EMPTY_SHA256 "\n"
		  "x-acs-date:2026-01-01T00:00:00Z\n"
		  "x-acs-signature-nonce:00000000-0000-4000-8000-000000000000\n"
		  "x-acs-version:2020-04-20\n"
		  "\n"
		  "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
		  EMPTY_SHA256);
	CHECK_INT(sim_sign_v3(hashed, sig, buf_str(&creq), "testsecret"), 0);
	CHECK_STR(hashed, "36fb8c98699d5e9426f3f8f0316b73d0bcb05291235a18b57cabec5e3a9681b1");
	CHECK_STR(sig, "8c74fef228fa769f71f89eca4ca2e51665ff700d3c86d7d469b64eef6ba3c22d");
	/* the v3 key is the bare secret: with v1's trailing '&' the signature differs */
	CHECK_INT(sim_sign_v3(hashed, sig, buf_str(&creq), "testsecret&"), 0);
	CHECK(strcmp(sig, "8c74fef228fa769f71f89eca4ca2e51665ff700d3c86d7d469b64eef6ba3c22d"));
	buf_release(&q);
	buf_release(&creq);
}

/* API.md's v3 doc example (ECS RunInstances). */
static void test_v3_doc_example(void)
{
	static const struct sim_kv query[] = {
		{ "RegionId", "cn-shanghai" },
		{ "ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd" },
	};
	static const struct sim_kv hdr[] = {
		{ "host", "ecs.cn-shanghai.aliyuncs.com" },
		{ "x-acs-action", "RunInstances" },
		{ "x-acs-content-sha256", EMPTY_SHA256 },
		{ "x-acs-date", "2023-10-26T10:22:32Z" },
		{ "x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d" },
		{ "x-acs-version", "2014-05-26" },
	};
	struct cs_buf q = CS_BUF_INIT, creq = CS_BUF_INIT;
	char hashed[65] = "", sig[65] = "";

	CHECK_INT(sim_sign_query(&q, query, sizeof(query) / sizeof(query[0])), 0);
	CHECK_STR(buf_str(&q),
		  "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai");
	CHECK_INT(sim_sign_v3_request(&creq, "POST", buf_str(&q), hdr, sizeof(hdr) / sizeof(hdr[0]),
				      EMPTY_SHA256), 0);
	CHECK_INT(sim_sign_v3(hashed, sig, buf_str(&creq), "YourAccessKeySecret"), 0);
	CHECK_STR(sig, "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
	buf_release(&q);
	buf_release(&creq);
}

int main(void)
{
	test_encode();
	test_v1_doc_example();
	test_v1_sdk_post();
	test_v1_sts_get();
	test_query_order();
	test_v3_action();
	test_v3_doc_example();
	TEST_DONE();
}
