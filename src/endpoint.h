/*
 * endpoint.h - the one rule for which service endpoint URLs credsync may talk to.
 *
 * An endpoint is scheme://host[:port] and nothing else: https to any host, plain http only to
 * a loopback host (localhost, *.localhost, 127.0.0.0/8, [::1]), no user name or password, no
 * path beyond "/", no query or fragment, a valid host name or IPv4/IPv6 address, a port in
 * 1..65535.  The config checks an instance's endpoint with it and http.c checks again when
 * it opens one, taking curl's allowed protocols from the verdict, so the two cannot drift.
 * The policy has no way to turn TLS verification off: http.c always verifies peer and host.
 */
#ifndef CREDSYNC_ENDPOINT_H
#define CREDSYNC_ENDPOINT_H

#include <stddef.h>

#include "error.h"

/* A host name is at most 253 bytes and a bracketed IPv6 address far less. */
#define ENDPOINT_HOST_MAX 260
#define ENDPOINT_AUTHORITY_MAX (ENDPOINT_HOST_MAX + 6)        /* host + ":65535" */
#define ENDPOINT_URL_MAX (ENDPOINT_AUTHORITY_MAX + 8)         /* "https://" + authority */

enum endpoint_host_kind {
	ENDPOINT_HOST_NAME,   /* a DNS name (localhost and *.localhost included) */
	ENDPOINT_HOST_IPV4,
	ENDPOINT_HOST_IPV6,   /* kept in brackets, as in the URL */
};

/* What an accepted URL names.  Every string is NUL-terminated and owned by the struct. */
struct endpoint_info {
	char url[ENDPOINT_URL_MAX];         /* "https://" or "http://" + authority: the scheme
					     * in lower case, no trailing slash */
	char authority[ENDPOINT_AUTHORITY_MAX]; /* host[:port] as written: the Host header */
	char host[ENDPOINT_HOST_MAX];       /* as written; IPv6 in brackets */
	int port;                           /* 0 when the URL names none */
	int tls;                            /* 1 for https, 0 for http (then loopback is 1) */
	int loopback;                       /* util_host_is_loopback(host) */
	enum endpoint_host_kind host_kind;
	const char *curl_protocols;         /* for CURLOPT_PROTOCOLS_STR and
					     * CURLOPT_REDIR_PROTOCOLS_STR: the URL's scheme only */
};

/* Checks url against the policy above.  Returns 0 with *out filled, or -1 with err set to
 * CS_ERR_CONFIG and a message "endpoint: ..." that says what was expected; the message quotes
 * the URL escaped and cut, but never a user name, password, query or fragment. */
int endpoint_policy_check(const char *url, struct endpoint_info *out, struct cs_error *err);

/* 1 when h[0..len) is a DNS host name: labels of 1..63 letters, digits and '-', not starting
 * or ending with '-', at most 253 bytes in all. */
int endpoint_hostname_valid(const char *h, size_t len);

#endif
