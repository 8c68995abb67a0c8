/*
 * sim_sign.c - the simulator's own arithmetic of the two request signatures, written from
 * API.md's description and not from credsync's src/sign.c: when the client and the server
 * each build the canonical strings their own way, a canonicalisation bug in one of them
 * shows up as SignatureDoesNotMatch instead of being agreed on.
 *
 * A leaf: it knows nothing of requests or the server, only strings, OpenSSL and cs_buf.
 */
#include "sim.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

void sim_sign_encode(struct cs_buf *out, const char *s, size_t len)
{
	static const char upper_hex[] = "0123456789ABCDEF";
	size_t i = 0;

	/* runs of unreserved bytes go in whole: most names and values are nothing else, and
	 * every v1 request is encoded here twice */
	while (i < len) {
		size_t run = i;
		char esc[3];

		while (run < len && unreserved((unsigned char)s[run]))
			run++;
		buf_append(out, s + i, run - i);
		if (run == len)
			break;
		esc[0] = '%';
		esc[1] = upper_hex[(unsigned char)s[run] >> 4];
		esc[2] = upper_hex[(unsigned char)s[run] & 15];
		buf_append(out, esc, sizeof(esc));
		i = run + 1;
	}
}

/* One encoded pair in the scratch buffer.  Offsets while the buffer still grows (and may
 * move), pointers once it is complete. */
struct enc_pair {
	size_t name_off, value_off;
	const char *name, *value;
};

static int cmp_enc_pair(const void *a, const void *b)
{
	const struct enc_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	/* names are distinct in a request the simulator accepts; ordering by value too only
	 * keeps the result independent of qsort's order should they not be */
	return c ? c : strcmp(x->value, y->value);
}

int sim_sign_query(struct cs_buf *out, const struct sim_kv *params, size_t n)
{
	struct cs_buf scratch = CS_BUF_INIT;
	struct enc_pair stack_pairs[SIM_MAX_PARAMS], *pairs = stack_pairs;
	size_t i;
	int ret = -1;

	if (n > SIM_MAX_PARAMS && !(pairs = malloc(n * sizeof(*pairs))))
		return -1;
	for (i = 0; i < n; i++) {
		pairs[i].name_off = scratch.len;
		sim_sign_encode(&scratch, params[i].name, strlen(params[i].name));
		buf_putc(&scratch, '\0');
		pairs[i].value_off = scratch.len;
		sim_sign_encode(&scratch, params[i].value, strlen(params[i].value));
		buf_putc(&scratch, '\0');
	}
	if (scratch.oom)
		goto out;
	for (i = 0; i < n; i++) {
		pairs[i].name = scratch.data + pairs[i].name_off;
		pairs[i].value = scratch.data + pairs[i].value_off;
	}
	/* sorted by the encoded names, byte by byte, as API.md says */
	qsort(pairs, n, sizeof(*pairs), cmp_enc_pair);
	for (i = 0; i < n; i++) {
		if (i)
			buf_putc(out, '&');
		buf_puts(out, pairs[i].name);
		buf_putc(out, '=');
		buf_puts(out, pairs[i].value);
	}
	ret = out->oom ? -1 : 0;
out:
	/* the values may include a SecurityToken */
	buf_release_wipe(&scratch);
	if (pairs != stack_pairs)
		free(pairs);
	return ret;
}

void sim_sign_v1_string(struct cs_buf *out, const char *method, const char *query)
{
	buf_puts(out, method);
	buf_puts(out, "&%2F&");
	sim_sign_encode(out, query, strlen(query));
}

int sim_sign_v1(char out[29], const char *string_to_sign, const char *secret)
{
	struct cs_buf key = CS_BUF_INIT;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int ret = -1;

	/* v1 keys the HMAC with the secret and a trailing '&' */
	buf_puts(&key, secret);
	buf_putc(&key, '&');
	if (key.oom)
		goto out;
	if (!HMAC(EVP_sha1(), key.data, (int)key.len, (const unsigned char *)string_to_sign,
		  strlen(string_to_sign), mac, &maclen) || maclen != SHA_DIGEST_LENGTH)
		goto out;
	/* 20 bytes are 28 base64 characters; EVP_EncodeBlock adds the NUL */
	EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
	ret = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	buf_release_wipe(&key);
	return ret;
}

static void to_hex(char *out, const unsigned char *d, size_t n)
{
	static const char lower_hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = lower_hex[d[i] >> 4];
		out[2 * i + 1] = lower_hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void sim_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char d[SHA256_DIGEST_LENGTH];

	SHA256(data, len, d);
	to_hex(out, d, sizeof(d));
}

static int cmp_kv_name(const void *a, const void *b)
{
	const struct sim_kv *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

int sim_sign_v3_request(struct cs_buf *out, const char *method, const char *query,
			const struct sim_kv *headers, size_t n, const char *payload_hex)
{
	const struct sim_kv **sorted;
	size_t i;

	sorted = malloc((n ? n : 1) * sizeof(*sorted));
	if (!sorted)
		return -1;
	for (i = 0; i < n; i++)
		sorted[i] = &headers[i];
	qsort(sorted, n, sizeof(*sorted), cmp_kv_name);
	buf_puts(out, method);
	buf_puts(out, "\n/\n");
	buf_puts(out, query);
	buf_putc(out, '\n');
	for (i = 0; i < n; i++) {
		buf_puts(out, sorted[i]->name);
		buf_putc(out, ':');
		buf_puts(out, sorted[i]->value);
		buf_putc(out, '\n');
	}
	buf_putc(out, '\n');
	for (i = 0; i < n; i++) {
		if (i)
			buf_putc(out, ';');
		buf_puts(out, sorted[i]->name);
	}
	buf_putc(out, '\n');
	buf_puts(out, payload_hex);
	free(sorted);
	return out->oom ? -1 : 0;
}

int sim_sign_v3(char hashed[65], char signature[65], const char *canonical_request,
		const char *secret)
{
	static const char prefix[] = SIM_V3_ALGORITHM "\n";
	char string_to_sign[sizeof(prefix) + 64];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	sim_sha256_hex(canonical_request, strlen(canonical_request), hashed);
	memcpy(string_to_sign, prefix, sizeof(prefix) - 1);
	memcpy(string_to_sign + sizeof(prefix) - 1, hashed, 65);
	/* v3 keys the HMAC with the bare secret */
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)string_to_sign,
		  strlen(string_to_sign), mac, &maclen) || maclen != SHA256_DIGEST_LENGTH) {
		OPENSSL_cleanse(mac, sizeof(mac));
		return -1;
	}
	to_hex(signature, mac, maclen);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}
