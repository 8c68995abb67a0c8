/* endpoint.c - which endpoint URLs are acceptable; see endpoint.h. */
#include "endpoint.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define QUOTE_MAX 80

/* The URL is untrusted text from a file or the environment: escaped and cut in messages. */
static const char *quote(const char *s, size_t len, char *out, size_t outlen)
{
	char q[QUOTE_MAX];

	util_quote_bytes(s, len, q, sizeof(q));
	snprintf(out, outlen, "'%s'", q);
	return out;
}

int endpoint_hostname_valid(const char *h, size_t len)
{
	size_t i, label = 0;

	if (len > 253)
		return 0;
	for (i = 0; i <= len; i++) {
		char c = i < len ? h[i] : '.';

		if (c == '.') {
			if (!label || h[i - 1] == '-')
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)c) || c == '-') {
			if ((!label && c == '-') || ++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return 1;
}

int endpoint_policy_check(const char *url, struct endpoint_info *out, struct cs_error *err)
{
	static const char shape[] = "expected only scheme://host[:port]";
	char q[QUOTE_MAX + 2], inner[ENDPOINT_HOST_MAX];
	const char *rest, *tail, *p;
	size_t alen, hlen;
	struct in_addr a4;
	struct in6_addr a6;

	memset(out, 0, sizeof(*out));
	if (!strncasecmp(url, "https://", 8)) {
		out->tls = 1;
		rest = url + 8;
	} else if (!strncasecmp(url, "http://", 7)) {
		rest = url + 7;
	} else {
		return cs_error_set(err, CS_ERR_CONFIG, "endpoint: expected an http:// or https:// "
				    "URL, got %s", quote(url, strlen(url), q, sizeof(q)));
	}
	alen = strcspn(rest, "/?#");
	tail = rest + alen;
	/* user:password@ would put a secret in the config and in messages: never quote it */
	if (memchr(rest, '@', alen))
		return cs_error_set(err, CS_ERR_CONFIG, "endpoint: a user name or password in the "
				    "URL is not allowed (%s)", shape);
	if (*tail == '/' && tail[1]) {
		size_t plen = strcspn(tail, "?#");

		if (plen > 1)
			return cs_error_set(err, CS_ERR_CONFIG, "endpoint: unexpected path %s (%s)",
					    quote(tail, plen, q, sizeof(q)), shape);
		tail += plen;
	}
	/* a query or fragment may carry a token, so it is named but not quoted */
	if (*tail == '?')
		return cs_error_set(err, CS_ERR_CONFIG, "endpoint: a query string is not allowed "
				    "(%s)", shape);
	if (*tail == '#')
		return cs_error_set(err, CS_ERR_CONFIG, "endpoint: a fragment is not allowed (%s)",
				    shape);
	if (rest[0] == '[') {
		/* host keeps its brackets: util_host_is_loopback wants it as in the URL */
		p = memchr(rest, ']', alen);
		hlen = p ? (size_t)(p - rest) + 1 : alen;
		if (p && hlen < sizeof(inner)) {
			memcpy(inner, rest + 1, hlen - 2);
			inner[hlen - 2] = '\0';
		}
		if (!p || hlen >= sizeof(inner) || inet_pton(AF_INET6, inner, &a6) != 1)
			return cs_error_set(err, CS_ERR_CONFIG, "endpoint: expected an IPv6 address "
					    "in brackets, got %s", quote(rest, hlen, q, sizeof(q)));
		out->host_kind = ENDPOINT_HOST_IPV6;
	} else {
		p = memchr(rest, ':', alen);
		hlen = p ? (size_t)(p - rest) : alen;
		if (!hlen)
			return cs_error_set(err, CS_ERR_CONFIG, "endpoint: expected a host name "
					    "after the scheme, got %s",
					    quote(url, strlen(url), q, sizeof(q)));
		if (hlen >= sizeof(out->host) || !endpoint_hostname_valid(rest, hlen))
			return cs_error_set(err, CS_ERR_CONFIG, "endpoint: expected a host name or "
					    "address, got %s",
					    quote(rest, hlen, q, sizeof(q)));
		out->host_kind = ENDPOINT_HOST_NAME;
		/* all digits and dots is an IPv4 address or nothing: no 999.1.1.1 hosts */
		if (strspn(rest, "0123456789.") == hlen) {
			memcpy(inner, rest, hlen);
			inner[hlen] = '\0';
			if (inet_pton(AF_INET, inner, &a4) != 1)
				return cs_error_set(err, CS_ERR_CONFIG, "endpoint: expected an IPv4 "
						    "address, got %s",
						    quote(rest, hlen, q, sizeof(q)));
			out->host_kind = ENDPOINT_HOST_IPV4;
		}
	}
	memcpy(out->host, rest, hlen);
	out->host[hlen] = '\0';
	if (hlen < alen) {
		const char *ps = rest + hlen;
		size_t plen = alen - hlen;

		if (*ps != ':' || plen < 2 || plen > 6 || strspn(ps + 1, "0123456789") != plen - 1)
			return cs_error_set(err, CS_ERR_CONFIG, "endpoint: expected ':' and a port "
					    "number after the host, got %s",
					    quote(ps, plen, q, sizeof(q)));
		for (p = ps + 1; p < ps + plen; p++)
			out->port = out->port * 10 + (*p - '0');
		if (out->port < 1 || out->port > 65535)
			return cs_error_set(err, CS_ERR_CONFIG, "endpoint: port %s is out of range "
					    "(expected 1..65535)",
					    quote(ps + 1, plen - 1, q, sizeof(q)));
	}
	out->loopback = util_host_is_loopback(out->host);
	if (!out->tls && !out->loopback)
		return cs_error_set(err, CS_ERR_CONFIG, "endpoint: plain http:// to %s is not "
				    "allowed: TLS is required for non-loopback hosts (expected "
				    "https://, or http:// only to localhost, *.localhost, "
				    "127.0.0.0/8 or [::1])", quote(out->host, hlen, q, sizeof(q)));
	/* kept without the trailing slash and with the scheme in lower case, so that
	 * "https://" + host can be compared and joined with paths as is */
	memcpy(out->authority, rest, alen);
	out->authority[alen] = '\0';
	snprintf(out->url, sizeof(out->url), "%s%s", out->tls ? "https://" : "http://",
		 out->authority);
	out->curl_protocols = out->tls ? "https" : "http";
	return 0;
}
