/* answer.c - what one finished request means; see answer.h. */
#include "answer.h"

#include <stdio.h>
#include <string.h>

#include "scrub.h"

static void transport(const struct http_request *r, const char *endpoint, struct answer *a)
{
	const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);

	a->res = API_MALFORMED;
	if (r->body_too_large) {
		a->cls = RETRY_TRANSIENT;
		snprintf(a->code, sizeof(a->code), "BadResponse");
		snprintf(a->message, sizeof(a->message), "the response body passed %zu bytes",
			 (size_t)HTTP_DEFAULT_MAX_BODY);
	} else {
		/* a refused TLS handshake or an unknown host will not pass by retrying */
		a->cls = http_result_transient(r->result) ? RETRY_TRANSIENT : FAIL_INSTANCE;
		a->timeout = r->result == CURLE_OPERATION_TIMEDOUT;
		snprintf(a->code, sizeof(a->code), "%s",
			 a->timeout && a->cls == RETRY_TRANSIENT ? "Timeout" : "ConnectionFailed");
		snprintf(a->message, sizeof(a->message), "%s: %s", endpoint, why);
	}
	snprintf(a->what, sizeof(a->what), "%s", a->message);
}

void answer_judge(const struct http_request *r, const char *endpoint, answer_parse_fn parse,
		  void *arg, const struct creds *signer, struct answer *a)
{
	const char *secrets[] = { signer ? signer->access_key_secret : NULL,
				  signer ? signer->security_token : NULL };
	struct api_error aerr;
	char detail[512] = "";

	memset(a, 0, sizeof(*a));
	a->retry_after_ms = -1;
	if (r->result != CURLE_OK) {
		transport(r, endpoint, a);
		return;
	}
	memset(&aerr, 0, sizeof(aerr));
	a->res = parse(r->status, buf_str(&r->body), r->body.len, arg, &aerr, detail,
		       sizeof(detail));
	if (a->res == API_OK || a->res == API_NOMEM)
		return;
	/* a service message or a quoted body must not carry the signer's secret onwards */
	scrub_text(aerr.message, sizeof(aerr.message), secrets, 2);
	scrub_text(detail, sizeof(detail), secrets, 2);
	switch (a->res) {
	case API_MALFORMED:
		a->cls = RETRY_TRANSIENT;
		snprintf(a->code, sizeof(a->code), "BadResponse");
		snprintf(a->message, sizeof(a->message), "%s", detail);
		break;
	case API_BAD_DATA:
		a->cls = FAIL_GROUP;
		snprintf(a->code, sizeof(a->code), "BadData");
		snprintf(a->message, sizeof(a->message), "%s", detail);
		break;
	default:
		a->cls = retry_classify_code(aerr.code);
		/* 5xx are retried whatever the Code says */
		if (a->cls == FAIL_GROUP && r->status >= 500)
			a->cls = RETRY_TRANSIENT;
		a->retry_after_ms = r->retry_after_ms;
		snprintf(a->code, sizeof(a->code), "%s", aerr.code);
		snprintf(a->message, sizeof(a->message), "%s", aerr.message);
		snprintf(a->request_id, sizeof(a->request_id), "%s", aerr.request_id);
		snprintf(a->what, sizeof(a->what), "%s: %s (HTTP %ld)", aerr.code,
			 aerr.message[0] ? aerr.message : "(no message)", r->status);
		return;
	}
	snprintf(a->what, sizeof(a->what), "%s", a->message);
}
