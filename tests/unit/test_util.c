/* Durations, UTC times, UTF-8 validation, loopback hosts, quoting. */
#include "test.h"
#include "util.h"

int main(void)
{
	int64_t v = 0;
	char out[64];

	CHECK(util_parse_duration("250ms", &v) == 0 && v == 250);
	CHECK(util_parse_duration("5s", &v) == 0 && v == 5000);
	CHECK(util_parse_duration("10m", &v) == 0 && v == 600000);
	CHECK(util_parse_duration("1h30m", &v) == 0 && v == 5400000);
	CHECK(util_parse_duration("30d", &v) == 0 && v == 2592000000LL);
	CHECK(util_parse_duration("", &v) == -1);
	CHECK(util_parse_duration("5", &v) == -1);
	CHECK(util_parse_duration("5 s", &v) == -1);
	CHECK(util_parse_duration("s", &v) == -1);
	CHECK(util_parse_duration("-5s", &v) == -1);
	CHECK(util_parse_duration("99999999999999999999d", &v) == -1);
	CHECK(util_parse_duration("9223372036854775807d", &v) == -1);
	util_format_duration(3600000, out, sizeof(out));
	CHECK_STR(out, "1h");
	util_format_duration(1500, out, sizeof(out));
	CHECK_STR(out, "1500ms");

	CHECK(util_parse_utc("2026-11-27", &v) == 0);
	CHECK_INT(v, 1795737600);
	CHECK(util_parse_utc("2026-11-27T02:00:00Z", &v) == 0);
	CHECK_INT(v, 1795737600 + 7200);
	util_format_utc(v, out);
	CHECK_STR(out, "2026-11-27T02:00:00Z");
	CHECK(util_parse_utc("2024-02-29", &v) == 0);
	CHECK(util_parse_utc("2026-02-29", &v) == -1);
	CHECK(util_parse_utc("2026-13-01", &v) == -1);
	CHECK(util_parse_utc("2026-11-27T24:00:00Z", &v) == -1);
	CHECK(util_parse_utc("2026-11-27 02:00:00", &v) == -1);
	CHECK(util_parse_utc("17", &v) == -1);

	CHECK(util_utf8_valid("plain", 5));
	CHECK(util_utf8_valid("\xe8\xae\xbe\xe5\xa4\x87", 6));
	CHECK(util_utf8_valid("\xf0\x9f\x98\x80", 4));
	CHECK(!util_utf8_valid("\xc3\x28", 2));
	CHECK(!util_utf8_valid("\xc0\xaf", 2));          /* overlong */
	CHECK(!util_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
	CHECK(!util_utf8_valid("\xe8\xae", 2));          /* cut */
	CHECK(!util_utf8_valid("a\0b", 3));
	CHECK(!util_utf8_valid("\xf4\x90\x80\x80", 4));  /* above U+10FFFF */

	CHECK(util_host_is_loopback("127.0.0.1"));
	CHECK(util_host_is_loopback("127.8.9.10"));
	CHECK(util_host_is_loopback("localhost"));
	CHECK(util_host_is_loopback("[::1]"));
	CHECK(!util_host_is_loopback("10.0.0.1"));
	CHECK(!util_host_is_loopback("localhost.example.com"));
	CHECK(util_host_is_loopback("cn-hangzhou.localhost"));
	CHECK(util_host_is_loopback("a.b.LOCALHOST"));
	CHECK(!util_host_is_loopback(".localhost"));
	CHECK(!util_host_is_loopback("evillocalhost"));
	CHECK(!util_host_is_loopback("localhost.evil"));
	CHECK(!util_host_is_loopback("[::2]"));
	CHECK(!util_host_is_loopback("onsmqtt.cn-hangzhou.aliyuncs.com"));

	util_quote_bytes("a\nb\xff", 4, out, sizeof(out));
	CHECK_STR(out, "a\\x0ab\\xff");
	util_quote_bytes("abcdefghijklmnop", 16, out, 10);
	CHECK_STR(out, "abcdef...");
	TEST_DONE();
}
