/* discover.c - ListGroupId for `groups: all` and ListInstances for init; see discover.h. */
#include "discover.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "retry.h"
#include "util.h"

void discovered_release(struct discovered *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->ngroups; i++)
		free(d->groups[i]);
	free(d->groups);
	memset(d, 0, sizeof(*d));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A group listed twice would be crawled twice in one run, both crawls sharing its
 * checkpoint: keep one of each (the list is sorted). */
static void dedupe(struct discovered *d)
{
	size_t i, n = 0;

	for (i = 0; i < d->ngroups; i++) {
		if (n && !strcmp(d->groups[n - 1], d->groups[i])) {
			free(d->groups[i]);
			continue;
		}
		d->groups[n++] = d->groups[i];
	}
	d->ngroups = n;
}

/* What a listing call does with a 200 body: parse it into arg, or classify it. */
typedef enum api_result (*listing_parse_fn)(long status, const char *body, size_t len,
					   void *arg, struct api_error *aerr, char *detail,
					   size_t detail_len);

struct listing_outcome {
	int failed;
	char *code;          /* [128] */
	char *message;       /* [768] */
};

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * One blocking listing call (ListGroupId, ListInstances) with the crawl's retry rules:
 * throttling and transient faults are retried with backoff (x-acs-retry-after honoured) up
 * to s->max_attempts, under rl.  Returns 0 with the parse done or out->failed set, or -1 for
 * rejected credentials (CS_ERR_CREDENTIALS) and a stop signal (CS_ERR_INTERRUPTED, when stop
 * is given and becomes non-zero).  The run has nothing else to do meanwhile.
 */
static int call_listing(const char *subject, const char *endpoint, const struct cfg_settings *s,
			struct rate_limiter *rl, const char *action, const struct sign_param *p,
			size_t np, struct http_client *http, const struct creds *creds,
			volatile sig_atomic_t *stop, listing_parse_fn parse, void *arg,
			struct listing_outcome *out, struct cs_error *err)
{
	struct http_endpoint_opts hopts = { s->connect_timeout_ms, s->request_timeout_ms,
					    s->ca_file, 0 };
	struct http_endpoint *ep;
	struct retry_rng rng;
	struct log_ctx ctx = { 0 };
	int attempt;

	ctx.instance = subject;
	retry_rng_seed(&rng);
	if (http_endpoint_open(http, endpoint, &hopts, &ep, err) < 0)
		return -1;
	for (attempt = 1;; attempt++) {
		struct cs_buf url = CS_BUF_INIT;
		struct curl_slist *headers = NULL;
		struct http_request *r = NULL;
		struct api_error aerr;
		char detail[512];
		enum api_result res;
		enum retry_class cls = RETRY_TRANSIENT;
		int64_t wait, retry_after = -1;

		while ((wait = rate_take(rl, util_mono_ms())) > 0)
			sleep_ms(wait);
		if (stop && *stop)
			return cs_error_set(err, CS_ERR_INTERRUPTED, "stopped by a signal");
		if (api_build_request(&url, &headers, http_endpoint_url(ep), http_endpoint_host(ep),
				      "POST", action, p, np, creds, s->signature, err) < 0 ||
		    http_submit(http, ep, "POST", buf_str(&url), headers, NULL, err) < 0) {
			buf_release(&url);
			return -1;
		}
		buf_release(&url);
		while (!(r = http_next_done(http))) {
			if (http_poll(http, 1000, err) < 0)
				return -1;
			if (stop && *stop) {
				http_abort_all(http);
				while ((r = http_next_done(http)))
					http_request_release(http, r);
				return cs_error_set(err, CS_ERR_INTERRUPTED, "stopped by a signal");
			}
		}
		if (r->result != CURLE_OK) {
			snprintf(out->code, 128, "%s",
				 r->result == CURLE_OPERATION_TIMEDOUT ? "Timeout" : "ConnectionFailed");
			snprintf(out->message, 768, "%s: %s", endpoint,
				 r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result));
			if (!http_result_transient(r->result))
				cls = FAIL_INSTANCE;
		} else {
			res = parse(r->status, buf_str(&r->body), r->body.len, arg, &aerr, detail,
				    sizeof(detail));
			if (res == API_OK) {
				http_request_release(http, r);
				rate_on_success(rl, util_mono_ms());
				return 0;
			}
			if (res == API_SERVICE_ERROR) {
				snprintf(out->code, 128, "%s", aerr.code);
				snprintf(out->message, 768, "%s%s%s%s", aerr.message,
					 aerr.request_id[0] ? " (request " : "", aerr.request_id,
					 aerr.request_id[0] ? ")" : "");
				cls = retry_classify_code(aerr.code);
				if (cls == FAIL_GROUP && r->status >= 500)
					cls = RETRY_TRANSIENT;
				retry_after = r->retry_after_ms;
			} else {
				snprintf(out->code, 128, "BadResponse");
				snprintf(out->message, 768, "%s", detail);
			}
		}
		http_request_release(http, r);
		if (cls == FAIL_CREDENTIALS)
			return cs_error_set(err, CS_ERR_CREDENTIALS,
					    "%s: the service rejected the credentials: %s: %s", subject,
					    out->code, out->message);
		if ((cls != RETRY_THROTTLE && cls != RETRY_TRANSIENT) || attempt >= s->max_attempts) {
			out->failed = 1;
			return 0;
		}
		if (cls == RETRY_THROTTLE)
			rate_on_throttle(rl, util_mono_ms());
		wait = retry_backoff_ms(&rng, attempt, s->base_delay_ms, s->max_delay_ms);
		if (retry_after > wait)
			wait = retry_after;
		ctx.code = out->code;
		log_msg(LOG_DEBUG, &ctx, "%s: %s: %s; retrying in %lld ms", action, out->code,
			out->message, (long long)wait);
		sleep_ms(wait);
	}
}

static enum api_result parse_groups(long status, const char *body, size_t len, void *arg,
				    struct api_error *aerr, char *detail, size_t detail_len)
{
	struct discovered *d = arg;

	return api_parse_groups(status, body, len, &d->groups, &d->ngroups, aerr, detail,
				detail_len);
}

int discover_instance(const struct cfg_instance *inst, struct http_client *http,
		      const struct creds *creds, struct discovered *out, struct cs_error *err)
{
	static struct rate_limiter rl;   /* per process: the 10/s limit is per account */
	static int rl_ready;
	struct sign_param p[1] = { { "InstanceId", inst->id } };
	struct listing_outcome o;
	char subject[300];
	int rc;

	memset(out, 0, sizeof(*out));
	o.failed = 0;
	o.code = out->code;
	o.message = out->message;
	if (!rl_ready) {
		rate_init(&rl, DISCOVER_QPS, 1, util_mono_ms());
		rl_ready = 1;
	}
	snprintf(subject, sizeof(subject), "instance '%s'", inst->id);
	rc = call_listing(subject, inst->endpoint, &inst->s, &rl, "ListGroupId", p, 1, http,
			  creds, NULL, parse_groups, out, &o, err);
	out->failed = o.failed;
	if (rc == 0 && !o.failed) {
		qsort(out->groups, out->ngroups, sizeof(*out->groups), cmp_str);
		dedupe(out);
	}
	return rc;
}

static enum api_result parse_instances(long status, const char *body, size_t len, void *arg,
				       struct api_error *aerr, char *detail, size_t detail_len)
{
	struct discovered_instances *d = arg;

	return api_parse_instances(status, body, len, &d->instances, &d->n, aerr, detail,
				   detail_len);
}

int discover_instances(const char *region, const char *endpoint, const struct cfg_settings *s,
		       struct http_client *http, const struct creds *creds,
		       volatile sig_atomic_t *stop, struct discovered_instances *out,
		       struct cs_error *err)
{
	static struct rate_limiter rl;   /* per process, as ListGroupId's */
	static int rl_ready;
	struct listing_outcome o;
	char subject[128];
	int rc;

	memset(out, 0, sizeof(*out));
	o.failed = 0;
	o.code = out->code;
	o.message = out->message;
	if (!rl_ready) {
		rate_init(&rl, DISCOVER_QPS, 1, util_mono_ms());
		rl_ready = 1;
	}
	snprintf(subject, sizeof(subject), "region '%s'", region);
	rc = call_listing(subject, endpoint, s, &rl, "ListInstances", NULL, 0, http, creds, stop,
			  parse_instances, out, &o, err);
	out->failed = o.failed;
	return rc;
}

void discovered_instances_release(struct discovered_instances *d)
{
	if (!d)
		return;
	api_instances_free(d->instances, d->n);
	memset(d, 0, sizeof(*d));
}

static int in_list(const char **list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return 1;
	return 0;
}

int discover_all(const struct config *cfg, const char **only, size_t nonly,
		 struct http_client *http, const struct creds *creds, struct store *st,
		 int64_t run_id, struct discovered *out, struct cs_error *err)
{
	size_t i, k;

	for (i = 0; i < cfg->ninstances; i++) {
		const struct cfg_instance *inst = &cfg->instances[i];
		struct log_ctx ctx = { 0 };
		char **known = NULL;
		size_t nknown = 0;

		if (!inst->groups_all || (nonly && !in_list(only, nonly, inst->id)))
			continue;
		ctx.run = run_id;
		ctx.instance = inst->id;
		if (discover_instance(inst, http, creds, &out[i], err) < 0)
			return -1;
		if (out[i].failed) {
			ctx.code = out[i].code;
			log_msg(LOG_ERROR, &ctx, "cannot list the instance's groups: %s: %s",
				out[i].code, out[i].message);
			continue;
		}
		log_msg(LOG_INFO, &ctx, "ListGroupId: %zu group(s)", out[i].ngroups);
		if (store_known_groups(st, inst->id, &known, &nknown, err) < 0)
			return -1;
		for (k = 0; k < nknown; k++) {
			if (!bsearch(&known[k], out[i].groups, out[i].ngroups, sizeof(char *), cmp_str))
				log_msg(LOG_WARN, &ctx,
					"group '%s' is no longer listed by ListGroupId; its last snapshot "
					"is kept as it was and it is not crawled", known[k]);
			free(known[k]);
		}
		free(known);
	}
	return 0;
}
