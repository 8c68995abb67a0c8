/* sign.c - percent-encoding and the v1/v3 signatures; see sign.h and API.md. */
#include "sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hexdig[] = "0123456789ABCDEF";

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

void sign_percent_encode(struct cs_buf *out, const char *s, size_t len)
{
	size_t i = 0, run;

	while (i < len) {
		/* runs of characters that stay go in with one append: this is on every request */
		for (run = i; run < len && unreserved((unsigned char)s[run]); run++)
			;
		buf_append(out, s + i, run - i);
		if (run == len)
			break;
		{
			unsigned char c = (unsigned char)s[run];
			char esc[3] = { '%', hexdig[c >> 4], hexdig[c & 15] };

			buf_append(out, esc, 3);
		}
		i = run + 1;
	}
}

struct encoded_pair {
	char *name;
	char *value;
};

static int cmp_pair(const void *a, const void *b)
{
	return strcmp(((const struct encoded_pair *)a)->name, ((const struct encoded_pair *)b)->name);
}

static char *encode_dup(const char *s)
{
	struct cs_buf b = CS_BUF_INIT;

	sign_percent_encode(&b, s, strlen(s));
	return buf_detach(&b);
}

int sign_canonical_query(struct cs_buf *out, const struct sign_param *params, size_t n)
{
	struct encoded_pair *pairs = calloc(n ? n : 1, sizeof(*pairs));
	size_t i;
	int ret = -1;

	if (!pairs)
		return -1;
	for (i = 0; i < n; i++) {
		pairs[i].name = encode_dup(params[i].name);
		pairs[i].value = encode_dup(params[i].value);
		if (!pairs[i].name || !pairs[i].value)
			goto out;
	}
	qsort(pairs, n, sizeof(*pairs), cmp_pair);
	for (i = 0; i < n; i++) {
		if (i && !strcmp(pairs[i - 1].name, pairs[i].name))
			goto out;
		if (i)
			buf_putc(out, '&');
		buf_puts(out, pairs[i].name);
		buf_putc(out, '=');
		buf_puts(out, pairs[i].value);
	}
	ret = out->oom ? -1 : 0;
out:
	for (i = 0; i < n; i++) {
		free(pairs[i].name);
		/* values may carry a security token */
		if (pairs[i].value)
			OPENSSL_cleanse(pairs[i].value, strlen(pairs[i].value));
		free(pairs[i].value);
	}
	free(pairs);
	return ret;
}

void sign_v1_string_to_sign(struct cs_buf *out, const char *method, const char *canonical_query)
{
	buf_puts(out, method);
	buf_puts(out, "&%2F&");
	sign_percent_encode(out, canonical_query, strlen(canonical_query));
}

int sign_v1(char *out, size_t outlen, const char *method, const char *canonical_query,
	    const char *secret)
{
	struct cs_buf sts = CS_BUF_INIT, key = CS_BUF_INIT;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int ret = -1;

	if (outlen < 29)
		return -1;
	sign_v1_string_to_sign(&sts, method, canonical_query);
	buf_puts(&key, secret);
	buf_putc(&key, '&');
	if (sts.oom || key.oom)
		goto out;
	if (!HMAC(EVP_sha1(), key.data, (int)key.len, (const unsigned char *)sts.data, sts.len, mac,
		  &maclen))
		goto out;
	EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
	ret = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	buf_release_wipe(&key);
	buf_release(&sts);
	return ret;
}

static void hex_lower(char *out, const unsigned char *in, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int cmp_header(const void *a, const void *b)
{
	return strcmp(((const struct sign_param *)a)->name, ((const struct sign_param *)b)->name);
}

int sign_v3(char hashed[65], char signature[65], struct cs_buf *signed_headers, const char *method,
	    const char *canonical_query, const struct sign_param *headers, size_t nheaders,
	    const char *payload_sha256_hex, const char *secret)
{
	struct sign_param *sorted = NULL;
	struct cs_buf creq = CS_BUF_INIT, sts = CS_BUF_INIT;
	unsigned char digest[SHA256_DIGEST_LENGTH], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t i;
	int ret = -1;

	sorted = malloc((nheaders ? nheaders : 1) * sizeof(*sorted));
	if (!sorted)
		goto out;
	memcpy(sorted, headers, nheaders * sizeof(*sorted));
	qsort(sorted, nheaders, sizeof(*sorted), cmp_header);

	buf_puts(&creq, method);
	buf_puts(&creq, "\n/\n");
	buf_puts(&creq, canonical_query);
	buf_putc(&creq, '\n');
	for (i = 0; i < nheaders; i++)
		buf_printf(&creq, "%s:%s\n", sorted[i].name, sorted[i].value);
	buf_putc(&creq, '\n');
	for (i = 0; i < nheaders; i++) {
		if (i)
			buf_putc(signed_headers, ';');
		buf_puts(signed_headers, sorted[i].name);
	}
	buf_puts(&creq, buf_str(signed_headers));
	buf_putc(&creq, '\n');
	buf_puts(&creq, payload_sha256_hex);
	if (creq.oom || signed_headers->oom)
		goto out;

	SHA256((const unsigned char *)creq.data, creq.len, digest);
	hex_lower(hashed, digest, sizeof(digest));
	buf_puts(&sts, "ACS3-HMAC-SHA256\n");
	buf_puts(&sts, hashed);
	if (sts.oom)
		goto out;
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)sts.data,
		  sts.len, mac, &maclen))
		goto out;
	hex_lower(signature, mac, maclen);
	ret = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	/* the canonical request may hold a security token header */
	buf_release_wipe(&creq);
	buf_release(&sts);
	free(sorted);
	return ret;
}

int sign_nonce(char out[37])
{
	unsigned char r[16];
	char hx[33];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	r[6] = (r[6] & 0x0F) | 0x40; /* version 4 */
	r[8] = (r[8] & 0x3F) | 0x80; /* RFC 4122 variant */
	hex_lower(hx, r, sizeof(r));
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hx, hx + 8, hx + 12, hx + 16, hx + 20);
	return 0;
}
