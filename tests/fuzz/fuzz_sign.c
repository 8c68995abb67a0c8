/*
 * fuzz_sign.c - percent-encoding, the canonical query and both signatures.
 *
 * Input: NUL-separated fields read as name, value, name, value, ... (at most MAX_PAIRS
 * pairs); an odd field left over is the secret (else "testsecret").  The canonical query
 * must use only unreserved characters, '%XX' (upper-case hex), '=' and '&'; decode back to
 * exactly the pairs given, sorted by encoded name; and be refused when a name repeats.  The
 * v3 hash is checked against a canonical request rebuilt here from API.md's definition.
 */
#include <openssl/sha.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "sign.h"

#define MAX_PAIRS 20
#define MAX_FIELDS (2 * MAX_PAIRS + 1)

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lower case is not what the signature scheme produces */
}

/* Decodes [s, s+len) of an encoded text into out (at least len + 1 bytes); returns the
 * decoded length.  Aborts on anything an encoder of API.md's rules would not write. */
static size_t percent_decode(const char *s, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c != '%') {
			FUZZ_CHECK(unreserved(c));
			out[o++] = (char)c;
			continue;
		}
		FUZZ_CHECK(i + 2 < len);
		FUZZ_CHECK(hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0);
		c = (unsigned char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
		/* an unreserved byte is never escaped */
		FUZZ_CHECK(!unreserved(c));
		out[o++] = (char)c;
		i += 2;
	}
	out[o] = '\0';
	return o;
}

/* Percent-encodes the whole input (NULs included) and decodes it back. */
static void check_encode_roundtrip(const uint8_t *data, size_t size)
{
	struct cs_buf b = CS_BUF_INIT;
	char *dec;

	sign_percent_encode(&b, (const char *)data, size);
	FUZZ_CHECK(!b.oom);
	dec = malloc(b.len + 1);
	FUZZ_CHECK(dec != NULL);
	FUZZ_CHECK(percent_decode(buf_str(&b), b.len, dec) == size);
	FUZZ_CHECK(!size || !memcmp(dec, data, size));
	free(dec);
	buf_release(&b);
}

static int has_duplicate_name(const struct sign_param *p, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j < i; j++)
			if (!strcmp(p[i].name, p[j].name))
				return 1;
	return 0;
}

/* Splits the canonical query and checks that it holds exactly params, in order. */
static void check_canonical(const char *q, const struct sign_param *params, size_t n)
{
	size_t qlen = strlen(q), i, found = 0;
	char *dec = malloc(qlen + 1), *prev_name = NULL;
	int *used = calloc(n ? n : 1, sizeof(*used));
	const char *p = q;

	FUZZ_CHECK(dec && used);
	for (i = 0; i < qlen; i++) {
		unsigned char c = (unsigned char)q[i];

		FUZZ_CHECK(unreserved(c) || c == '%' || c == '=' || c == '&');
		if (c == '%')
			FUZZ_CHECK(i + 2 < qlen && hexval(q[i + 1]) >= 0 && hexval(q[i + 2]) >= 0);
	}
	if (!n) {
		FUZZ_CHECK(qlen == 0);
		goto out;
	}
	for (;;) {
		const char *amp = strchr(p, '&'), *eq;
		size_t plen = amp ? (size_t)(amp - p) : strlen(p), nlen, vlen, k;
		char *name, *value;

		eq = memchr(p, '=', plen);
		FUZZ_CHECK(eq != NULL);
		FUZZ_CHECK(!memchr(eq + 1, '=', plen - (size_t)(eq - p) - 1));
		/* byte order of the encoded names, strictly rising (no repeats) */
		name = strndup(p, (size_t)(eq - p));
		FUZZ_CHECK(name != NULL);
		if (prev_name)
			FUZZ_CHECK(strcmp(prev_name, name) < 0);
		free(prev_name);
		prev_name = name;

		nlen = percent_decode(p, (size_t)(eq - p), dec);
		for (k = 0; k < n; k++)
			if (!used[k] && strlen(params[k].name) == nlen &&
			    !memcmp(params[k].name, dec, nlen))
				break;
		FUZZ_CHECK(k < n);
		used[k] = 1;
		value = dec + nlen + 1;
		vlen = percent_decode(eq + 1, plen - (size_t)(eq - p) - 1, value);
		FUZZ_CHECK(strlen(params[k].value) == vlen && !memcmp(params[k].value, value, vlen));
		found++;
		if (!amp)
			break;
		p = amp + 1;
	}
	FUZZ_CHECK(found == n);
out:
	free(prev_name);
	free(used);
	free(dec);
}

static int is_hex_lower(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

static int cmp_param(const void *a, const void *b)
{
	return strcmp(((const struct sign_param *)a)->name, ((const struct sign_param *)b)->name);
}

/* The v3 canonical request built independently; returns hex(SHA-256(it)) in out. */
static void expected_v3_hash(char out[65], const char *method, const char *query,
			     const struct sign_param *headers, size_t n, const char *payload)
{
	static const char hx[] = "0123456789abcdef";
	struct sign_param sorted[MAX_PAIRS + 8];
	struct cs_buf c = CS_BUF_INIT;
	unsigned char d[SHA256_DIGEST_LENGTH];
	size_t i;

	memcpy(sorted, headers, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_param);
	buf_printf(&c, "%s\n/\n%s\n", method, query);
	for (i = 0; i < n; i++)
		buf_printf(&c, "%s:%s\n", sorted[i].name, sorted[i].value);
	buf_putc(&c, '\n');
	for (i = 0; i < n; i++)
		buf_printf(&c, "%s%s", i ? ";" : "", sorted[i].name);
	buf_printf(&c, "\n%s", payload);
	FUZZ_CHECK(!c.oom);
	SHA256((const unsigned char *)buf_str(&c), c.len, d);
	for (i = 0; i < sizeof(d); i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[64] = '\0';
	buf_release(&c);
}

static void check_v3(const char *query, const struct sign_param *headers, size_t n,
		     const char *secret)
{
	struct cs_buf signed_headers = CS_BUF_INIT;
	char hashed[65], signature[65], want[65];
	size_t i, off = 0;

	FUZZ_CHECK(sign_v3(hashed, signature, &signed_headers, "POST", query, headers, n,
			   SIGN_EMPTY_SHA256, secret) == 0);
	FUZZ_CHECK(is_hex_lower(hashed, 64) && is_hex_lower(signature, 64));
	expected_v3_hash(want, "POST", query, headers, n, SIGN_EMPTY_SHA256);
	FUZZ_CHECK(!strcmp(hashed, want));
	/* every header name is listed once in signed_headers */
	for (i = 0; i < n; i++)
		off += strlen(headers[i].name) + (i ? 1 : 0);
	FUZZ_CHECK(signed_headers.len == off);
	buf_release(&signed_headers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *fields[MAX_FIELDS];
	struct sign_param params[MAX_PAIRS], hdr[8];
	struct cs_buf query = CS_BUF_INIT, sts = CS_BUF_INIT;
	size_t nfields = 0, npairs, i, start = 0;
	const char *secret = "testsecret";
	char *text, sig1[32], sig1_again[32];
	int rc, dup;

	check_encode_roundtrip(data, size);

	/* a terminated copy, so that each field is a C string */
	text = malloc(size + 1);
	FUZZ_CHECK(text != NULL);
	if (size)
		memcpy(text, data, size);
	text[size] = '\0';
	for (i = 0; i <= size && nfields < MAX_FIELDS; i++) {
		if (i == size || text[i] == '\0') {
			if (i == size && i == start && nfields)
				break; /* a trailing NUL ends the list, it adds no empty field */
			fields[nfields++] = text + start;
			start = i + 1;
		}
	}
	npairs = nfields / 2;
	if (npairs > MAX_PAIRS)
		npairs = MAX_PAIRS;
	if (nfields > 2 * npairs)
		secret = fields[2 * npairs];
	for (i = 0; i < npairs; i++) {
		params[i].name = fields[2 * i];
		params[i].value = fields[2 * i + 1];
	}

	dup = has_duplicate_name(params, npairs);
	rc = sign_canonical_query(&query, params, npairs);
	FUZZ_CHECK(rc == (dup ? -1 : 0));
	if (rc == 0) {
		check_canonical(buf_str(&query), params, npairs);

		/* v1: base64 of a 20-byte HMAC, and deterministic */
		FUZZ_CHECK(sign_v1(sig1, sizeof(sig1), "GET", buf_str(&query), secret) == 0);
		FUZZ_CHECK(strlen(sig1) == 28 && sig1[27] == '=');
		FUZZ_CHECK(strspn(sig1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					"0123456789+/=") == 28);
		FUZZ_CHECK(sign_v1(sig1_again, sizeof(sig1_again), "GET", buf_str(&query),
				   secret) == 0);
		FUZZ_CHECK(!strcmp(sig1, sig1_again));
		/* too small an output buffer is refused, not overrun */
		FUZZ_CHECK(sign_v1(sig1_again, 28, "GET", buf_str(&query), secret) == -1);

		/* the v1 string to sign decodes back to the canonical query */
		sign_v1_string_to_sign(&sts, "GET", buf_str(&query));
		FUZZ_CHECK(!sts.oom && !strncmp(buf_str(&sts), "GET&%2F&", 8));
		{
			char *dec = malloc(sts.len + 1);

			FUZZ_CHECK(dec != NULL);
			FUZZ_CHECK(percent_decode(buf_str(&sts) + 8, sts.len - 8, dec) == query.len);
			FUZZ_CHECK(!strcmp(dec, buf_str(&query)));
			free(dec);
		}

		/* v3 with credsync's own headers, then with the input's pairs as headers */
		hdr[0] = (struct sign_param){ "host", "onsmqtt.cn-hangzhou.aliyuncs.com" };
		hdr[1] = (struct sign_param){ "x-acs-action", "ListDeviceCredentialClientId" };
		hdr[2] = (struct sign_param){ "x-acs-version", "2020-04-20" };
		hdr[3] = (struct sign_param){ "x-acs-date", "2026-01-01T00:00:00Z" };
		hdr[4] = (struct sign_param){ "x-acs-signature-nonce",
					      "00000000-0000-4000-8000-000000000000" };
		hdr[5] = (struct sign_param){ "x-acs-content-sha256", SIGN_EMPTY_SHA256 };
		check_v3(buf_str(&query), hdr, 6, secret);
		check_v3(buf_str(&query), params, npairs, secret);
	}
	buf_release(&sts);
	buf_release(&query);
	free(text);
	return 0;
}
