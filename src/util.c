/* util.c - stateless helpers; see util.h. */
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int util_parse_duration(const char *s, int64_t *out_ms)
{
	int64_t total = 0;
	int parts = 0;

	if (!s || !*s)
		return -1;
	while (*s) {
		int64_t n = 0, unit;
		int digits = 0;

		while (isdigit((unsigned char)*s)) {
			int digit = *s++ - '0';

			/* the exact bound: "n > INT64_MAX / 10 - 10" refused some 19-digit counts
			 * that fit, so util_format_duration's text did not always parse back
			 * (found by fuzz_ref) */
			if (n > (INT64_MAX - digit) / 10)
				return -1;
			n = n * 10 + digit;
			digits++;
		}
		if (!digits)
			return -1;
		if (!strncmp(s, "ms", 2)) {
			unit = 1;
			s += 2;
		} else if (*s == 's') {
			unit = 1000;
			s++;
		} else if (*s == 'm') {
			unit = 60 * 1000;
			s++;
		} else if (*s == 'h') {
			unit = 3600 * 1000;
			s++;
		} else if (*s == 'd') {
			unit = 86400 * 1000;
			s++;
		} else {
			return -1;
		}
		if (n > (INT64_MAX - total) / unit)
			return -1;
		total += n * unit;
		parts++;
	}
	*out_ms = total;
	return parts ? 0 : -1;
}

void util_format_duration(int64_t ms, char *out, size_t outlen)
{
	static const struct { int64_t ms; const char *unit; } units[] = {
		{ 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" },
	};
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms >= units[i].ms && ms % units[i].ms == 0) {
			snprintf(out, outlen, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
			return;
		}
	}
	snprintf(out, outlen, "%lldms", (long long)ms);
}

static int days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int parse_digits(const char *s, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int util_parse_utc(const char *s, int64_t *out_epoch)
{
	int y, mo, d, h = 0, mi = 0, se = 0;
	size_t len = strlen(s);

	if (len != 10 && len != 20)
		return -1;
	if (parse_digits(s, 4, &y) || s[4] != '-' || parse_digits(s + 5, 2, &mo) || s[7] != '-' ||
	    parse_digits(s + 8, 2, &d))
		return -1;
	if (len == 20) {
		if (s[10] != 'T' || parse_digits(s + 11, 2, &h) || s[13] != ':' ||
		    parse_digits(s + 14, 2, &mi) || s[16] != ':' || parse_digits(s + 17, 2, &se) ||
		    s[19] != 'Z')
			return -1;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
	    mi > 59 || se > 59)
		return -1;
	*out_epoch = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}

void util_format_utc(int64_t epoch, char out[21])
{
	time_t t;
	struct tm tm;

	/* strftime leaves out undefined (unterminated, with glibc) when the text does not fit,
	 * as with a REF age reaching back before year 0 (found by fuzz_ref): clamp to the
	 * years that four digits can show */
	if (epoch < -62167219200LL)
		epoch = -62167219200LL; /* 0000-01-01T00:00:00Z */
	if (epoch > 253402300799LL)
		epoch = 253402300799LL; /* 9999-12-31T23:59:59Z */
	t = (time_t)epoch;
	if (!gmtime_r(&t, &tm) || !strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm))
		out[0] = '\0';
}

int64_t util_now_epoch(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t util_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int util_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str, *end = s + len;

	while (s < end) {
		unsigned c = *s;
		int n;
		uint32_t cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (end - s <= n)
			return 0;
		for (int i = 1; i <= n; i++) {
			if ((s[i] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		s += n + 1;
	}
	return 1;
}

int util_host_is_loopback(const char *host)
{
	char tmp[64];
	size_t len = strlen(host);
	struct in_addr a4;
	struct in6_addr a6;

	if (!strcasecmp(host, "localhost"))
		return 1;
	/* RFC 6761: names under .localhost are loopback; http.c pins them to 127.0.0.1, so no
	 * resolver can send them elsewhere (tests give each region such a name) */
	if (len > 10 && !strcasecmp(host + len - 10, ".localhost") && host[0] != '.')
		return 1;
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		if (len - 2 >= sizeof(tmp))
			return 0;
		memcpy(tmp, host + 1, len - 2);
		tmp[len - 2] = '\0';
		return inet_pton(AF_INET6, tmp, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return 0;
}

void util_quote_bytes(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0, i;

	if (!outlen)
		return;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[5];
		size_t n;

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			tmp[0] = (char)c;
			n = 1;
		} else {
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		}
		if (o + n + 4 > outlen) {
			if (outlen >= 4 && o + 3 < outlen) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o < outlen ? o : outlen - 1] = '\0';
}
