/*
 * http.h - HTTP transfers over one libcurl multi handle, on the caller's thread.
 *
 * An endpoint is a base URL with its own timeouts and CA file and a pool of easy handles that
 * are reused, so connections stay alive between pages.  Plain http is refused unless the host
 * is loopback, and TLS verification is never turned off.  A response body is capped while
 * it arrives.
 */
#ifndef CREDSYNC_HTTP_H
#define CREDSYNC_HTTP_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

#define HTTP_DEFAULT_MAX_BODY (8 * 1024 * 1024)

struct http_client;
struct http_endpoint;

struct http_endpoint_opts {
	int64_t connect_timeout_ms;
	int64_t request_timeout_ms;
	const char *ca_file;     /* NULL: $CURL_CA_BUNDLE, else the system bundle */
	size_t max_body;         /* 0: HTTP_DEFAULT_MAX_BODY */
};

struct http_request {
	struct http_endpoint *ep;
	CURL *easy;
	struct curl_slist *headers;    /* owned */
	struct cs_buf body;
	int body_too_large;            /* the body passed max_body and was cut */
	long status;                   /* HTTP status, 0 when no response came */
	int64_t retry_after_ms;        /* x-acs-retry-after, -1 when absent */
	CURLcode result;
	char errbuf[CURL_ERROR_SIZE];
	void *user;
	struct http_request *next;     /* the client's list of finished requests */
	struct http_request *act_prev, *act_next; /* the client's list of transfers in flight */
};

/* A client with no endpoint yet (libcurl initialised once per process). */
int http_client_new(struct http_client **out, struct cs_error *err);
/* Aborts what is in flight and frees the client and its endpoints; NULL is accepted. */
void http_client_free(struct http_client *c);

/* Parses and checks base_url ("https://host[:port]"; http only for loopback hosts).  The
 * endpoint belongs to the client and is freed with it. */
int http_endpoint_open(struct http_client *c, const char *base_url,
		       const struct http_endpoint_opts *opts, struct http_endpoint **out,
		       struct cs_error *err);
/* The host[:port] of the endpoint, as sent in the Host header. */
const char *http_endpoint_host(const struct http_endpoint *ep);
const char *http_endpoint_url(const struct http_endpoint *ep);

/* Starts a POST (empty body) or GET of url.  Takes ownership of headers, even on failure. */
int http_submit(struct http_client *c, struct http_endpoint *ep, const char *method,
		const char *url, struct curl_slist *headers, void *user,
		struct cs_error *err);

/* Drives transfers for up to timeout_ms (returns early when one finishes or on a wakeup). */
int http_poll(struct http_client *c, int timeout_ms, struct cs_error *err);
/* Wakes a http_poll in progress (async-signal-safe). */
void http_wakeup(struct http_client *c);

/* A finished request, or NULL.  Release it with http_request_release. */
struct http_request *http_next_done(struct http_client *c);
/* Returns the request's easy handle to its endpoint's pool. */
void http_request_release(struct http_client *c, struct http_request *r);
/* Aborts every transfer in flight (their requests are released). */
void http_abort_all(struct http_client *c);
int http_in_flight(const struct http_client *c);

/* True for transport results that a retry may fix (timeouts, resets, refused). */
int http_result_transient(CURLcode rc);

#endif
