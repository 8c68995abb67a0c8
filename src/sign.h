/*
 * sign.h - Alibaba Cloud request signing: percent-encoding, signature v1 (HMAC-SHA1 over the
 * query) and v3 (ACS3-HMAC-SHA256 over a canonical request), nonces.  See API.md.
 *
 * Nothing here keeps a secret: keys derived from it live on the stack and are cleansed
 * before return.
 */
#ifndef CREDSYNC_SIGN_H
#define CREDSYNC_SIGN_H

#include <stddef.h>

#include "buf.h"

struct sign_param {
	const char *name;
	const char *value;
};

/* Appends s percent-encoded over its bytes: A-Z a-z 0-9 - _ . ~ stay, all else %XX. */
void sign_percent_encode(struct cs_buf *out, const char *s, size_t len);

/* Appends the canonical query: encoded name=value pairs sorted by encoded name (byte order),
 * joined by '&'.  Returns 0, or -1 when out ran out of memory or a name repeats. */
int sign_canonical_query(struct cs_buf *out, const struct sign_param *params, size_t n);

/* Appends the v1 StringToSign: METHOD&%2F&enc(canonical_query). */
void sign_v1_string_to_sign(struct cs_buf *out, const char *method, const char *canonical_query);

/* Computes the v1 signature (base64 of HMAC-SHA1 keyed with secret + "&") into out
 * (at least 29 bytes).  Returns 0 or -1. */
int sign_v1(char *out, size_t outlen, const char *method, const char *canonical_query,
	    const char *secret);

/* v3: headers are lower-case names with values, any order; they are all signed.
 * Writes hex(SHA-256(canonical request)) into hashed (65 bytes), the signature (65 bytes) and
 * the signed header list ("a;b;c") into signed_headers.  Returns 0 or -1. */
int sign_v3(char hashed[65], char signature[65], struct cs_buf *signed_headers, const char *method,
	    const char *canonical_query, const struct sign_param *headers, size_t nheaders,
	    const char *payload_sha256_hex, const char *secret);

/* The hex SHA-256 of an empty body. */
#define SIGN_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Writes a random (CSPRNG) UUIDv4 nonce, 37 bytes with the NUL.  Returns 0, or -1 when the
 * CSPRNG failed (never falls back to a weak source). */
int sign_nonce(char out[37]);

#endif
