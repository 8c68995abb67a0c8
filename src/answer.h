/*
 * answer.h - what one finished request means, for the crawl's pages and discovery's
 * listings alike: the transport's outcome first, then the body through the action's parser,
 * then the service's Code classified by retry.h (a 5xx is retried whatever its Code says).
 * Every text that comes back is scrubbed of the credentials that signed the request
 * (scrub.h), so no caller can forget to.
 */
#ifndef CREDSYNC_ANSWER_H
#define CREDSYNC_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "creds.h"
#include "http.h"
#include "retry.h"

/* Parses a 200 body into arg, or classifies it (the api_parse_* functions, adapted). */
typedef enum api_result (*answer_parse_fn)(long status, const char *body, size_t len,
					   void *arg, struct api_error *aerr, char *detail,
					   size_t detail_len);

struct answer {
	enum api_result res;     /* API_OK: parsed into arg; API_NOMEM: ours; else see cls */
	enum retry_class cls;    /* what to do when res is not API_OK or API_NOMEM */
	int timeout;             /* the transport timed out (a retry costs more) */
	int64_t retry_after_ms;  /* x-acs-retry-after, or -1 */
	char code[128];          /* the service's Code, or Timeout, ConnectionFailed,
				  * BadResponse, BadData */
	char message[768];       /* the service's Message, or what went wrong */
	char request_id[128];    /* the service's RequestId, or "" */
	char what[1024];         /* one line for a retry's log: with the Code and HTTP status */
};

/* Judges finished request r to endpoint (named in transport messages), signed by signer. */
void answer_judge(const struct http_request *r, const char *endpoint, answer_parse_fn parse,
		  void *arg, const struct creds *signer, struct answer *a);

#endif
