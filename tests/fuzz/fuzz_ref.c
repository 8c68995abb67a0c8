/*
 * fuzz_ref.c - the REF grammar of `credsync diff` and the helpers under it:
 * history_parse_ref, util_parse_duration, util_parse_utc; plus util_utf8_valid against an
 * independent decoder and util_quote_bytes' output contract, which see the same bytes.
 *
 * Input: any bytes; the string functions get a NUL-terminated copy (cut at the first NUL).
 * Durations and times must survive a format/parse round trip; a REF must be of the kind its
 * text says, with its value in range.
 */
#include <ctype.h>
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "history.h"
#include "util.h"

#define NOW ((int64_t)1795000000) /* 2026-11-18: a fixed clock keeps runs reproducible */
#define MAX_ID 999999999999999999LL /* 18 digits */
#define MAX_EPOCH ((int64_t)253402300799) /* 9999-12-31T23:59:59Z */

static int all_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

static void check_duration(const char *s)
{
	int64_t ms, again;
	char text[32];

	if (util_parse_duration(s, &ms) < 0)
		return;
	FUZZ_CHECK(ms >= 0);
	FUZZ_CHECK(isdigit((unsigned char)s[0]));
	util_format_duration(ms, text, sizeof(text));
	FUZZ_CHECK(util_parse_duration(text, &again) == 0 && again == ms);
}

static void check_utc(const char *s)
{
	int64_t epoch, again;
	char text[21];

	if (util_parse_utc(s, &epoch) < 0)
		return;
	FUZZ_CHECK(epoch >= 0 && epoch <= MAX_EPOCH);
	memset(text, 'x', sizeof(text));
	util_format_utc(epoch, text);
	FUZZ_CHECK(memchr(text, '\0', sizeof(text)) != NULL);
	FUZZ_CHECK(util_parse_utc(text, &again) == 0 && again == epoch);
	/* the canonical form is the input itself, or the date with midnight added */
	if (strlen(s) == 20)
		FUZZ_CHECK(!strcmp(text, s));
	else
		FUZZ_CHECK(!strncmp(text, s, 10) && !strcmp(text + 10, "T00:00:00Z"));
}

static void check_ref(const char *s)
{
	struct cs_error err = { CS_ERR_NONE, "" };
	struct diff_ref ref;
	int64_t v, ms;

	if (history_parse_ref(s, NOW, &ref, &err) < 0) {
		FUZZ_CHECK(err.kind == CS_ERR_USAGE);
		FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)) && err.msg[0] == '\'');
		return;
	}
	FUZZ_CHECK(err.kind == CS_ERR_NONE);
	FUZZ_CHECK(strlen(s) < sizeof(ref.text) && !strcmp(ref.text, s));
	switch (ref.kind) {
	case REF_LATEST:
		FUZZ_CHECK(!strcmp(s, "latest"));
		break;
	case REF_PREVIOUS:
		FUZZ_CHECK(!strcmp(s, "previous"));
		break;
	case REF_RUN:
		FUZZ_CHECK(!strncmp(s, "run:", 4) && all_digits(s + 4));
		FUZZ_CHECK(ref.value >= 1 && ref.value <= MAX_ID);
		FUZZ_CHECK(strtoll(s + 4, NULL, 10) == ref.value);
		break;
	case REF_SNAPSHOT: {
		const char *d = !strncmp(s, "snapshot:", 9) ? s + 9 : s;

		FUZZ_CHECK(all_digits(d));
		FUZZ_CHECK(ref.value >= 1 && ref.value <= MAX_ID);
		FUZZ_CHECK(strtoll(d, NULL, 10) == ref.value);
		break;
	}
	case REF_TIME: {
		char text[21];

		if (util_parse_utc(s, &v) == 0) {
			FUZZ_CHECK(ref.value == v);
		} else {
			FUZZ_CHECK(util_parse_duration(s, &ms) == 0);
			FUZZ_CHECK(ref.value == NOW - ms / 1000 && ref.value <= NOW);
		}
		/* a report may print the time a REF stands for: always a terminated string */
		memset(text, 'x', sizeof(text));
		util_format_utc(ref.value, text);
		FUZZ_CHECK(memchr(text, '\0', sizeof(text)) != NULL);
		break;
	}
	default:
		FUZZ_CHECK(!"unknown REF kind");
	}
}

/* UTF-8 by the book (RFC 3629), written independently of util.c. */
static int utf8_reference(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n, k;

		if (s[i] == 0)
			return 0;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xE0) == 0xC0) {
			n = 2;
			cp = s[i] & 0x1F;
		} else if ((s[i] & 0xF0) == 0xE0) {
			n = 3;
			cp = s[i] & 0x0F;
		} else if ((s[i] & 0xF8) == 0xF0) {
			n = 4;
			cp = s[i] & 0x07;
		} else {
			return 0;
		}
		if (len - i < n)
			return 0;
		for (k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += n;
	}
	return 1;
}

static void check_quote(const uint8_t *data, size_t size)
{
	static const size_t sizes[] = { 1, 4, 5, 16, 96 };
	char out[96];
	size_t i, k, len;

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		memset(out, 'x', sizeof(out));
		util_quote_bytes((const char *)data, size, out, sizes[k]);
		FUZZ_CHECK(memchr(out, '\0', sizes[k]) != NULL);
		len = strlen(out);
		for (i = 0; i < len; i++)
			FUZZ_CHECK(out[i] >= 0x20 && out[i] < 0x7f);
		/* nothing written past the size given */
		for (i = sizes[k]; i < sizeof(out); i++)
			FUZZ_CHECK(out[i] == 'x');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	FUZZ_CHECK(s != NULL);
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	check_ref(s);
	check_duration(s);
	check_utc(s);
	FUZZ_CHECK(util_utf8_valid((const char *)data, size) == utf8_reference(data, size));
	check_quote(data, size);
	free(s);
	return 0;
}
