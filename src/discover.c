/* discover.c - ListGroupId for `groups: all`; see discover.h. */
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

/* One blocking call of ListGroupId with retries; the run has nothing else to do meanwhile. */
int discover_instance(const struct cfg_instance *inst, struct http_client *http,
		      const struct creds *creds, struct discovered *out, struct cs_error *err)
{
	static struct rate_limiter rl;   /* per process: the 10/s limit is per account */
	static int rl_ready;
	const struct cfg_settings *s = &inst->s;
	struct http_endpoint_opts hopts = { s->connect_timeout_ms, s->request_timeout_ms,
					    s->ca_file, 0 };
	struct http_endpoint *ep;
	struct sign_param p[1] = { { "InstanceId", inst->id } };
	struct retry_rng rng;
	struct log_ctx ctx = { 0 };
	int attempt;

	memset(out, 0, sizeof(*out));
	ctx.instance = inst->id;
	retry_rng_seed(&rng);
	if (!rl_ready) {
		rate_init(&rl, DISCOVER_QPS, 1, util_mono_ms());
		rl_ready = 1;
	}
	if (http_endpoint_open(http, inst->endpoint, &hopts, &ep, err) < 0)
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

		while ((wait = rate_take(&rl, util_mono_ms())) > 0) {
			struct timespec ts = { wait / 1000, (wait % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
		if (api_build_request(&url, &headers, http_endpoint_url(ep), http_endpoint_host(ep),
				      "POST", "ListGroupId", p, 1, creds, s->signature, err) < 0 ||
		    http_submit(http, ep, "POST", buf_str(&url), headers, NULL, err) < 0) {
			buf_release(&url);
			return -1;
		}
		buf_release(&url);
		while (!(r = http_next_done(http)))
			if (http_poll(http, 1000, err) < 0)
				return -1;
		if (r->result != CURLE_OK) {
			snprintf(out->code, sizeof(out->code), "%s",
				 r->result == CURLE_OPERATION_TIMEDOUT ? "Timeout" : "ConnectionFailed");
			snprintf(out->message, sizeof(out->message), "%s: %s", inst->endpoint,
				 r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result));
			if (!http_result_transient(r->result))
				cls = FAIL_INSTANCE;
		} else {
			res = api_parse_groups(r->status, buf_str(&r->body), r->body.len, &out->groups,
					       &out->ngroups, &aerr, detail, sizeof(detail));
			if (res == API_OK) {
				http_request_release(http, r);
				qsort(out->groups, out->ngroups, sizeof(*out->groups), cmp_str);
				dedupe(out);
				rate_on_success(&rl, util_mono_ms());
				return 0;
			}
			if (res == API_SERVICE_ERROR) {
				snprintf(out->code, sizeof(out->code), "%s", aerr.code);
				snprintf(out->message, sizeof(out->message), "%s%s%s%s", aerr.message,
					 aerr.request_id[0] ? " (request " : "", aerr.request_id,
					 aerr.request_id[0] ? ")" : "");
				cls = retry_classify_code(aerr.code);
				if (cls == FAIL_GROUP && r->status >= 500)
					cls = RETRY_TRANSIENT;
				retry_after = r->retry_after_ms;
			} else {
				snprintf(out->code, sizeof(out->code), "BadResponse");
				snprintf(out->message, sizeof(out->message), "%s", detail);
			}
		}
		http_request_release(http, r);
		if (cls == FAIL_CREDENTIALS)
			return cs_error_set(err, CS_ERR_CREDENTIALS,
					    "instance '%s': the service rejected the credentials: %s: %s",
					    inst->id, out->code, out->message);
		if ((cls != RETRY_THROTTLE && cls != RETRY_TRANSIENT) || attempt >= s->max_attempts) {
			out->failed = 1;
			return 0;
		}
		if (cls == RETRY_THROTTLE)
			rate_on_throttle(&rl, util_mono_ms());
		wait = retry_backoff_ms(&rng, attempt, s->base_delay_ms, s->max_delay_ms);
		if (retry_after > wait)
			wait = retry_after;
		ctx.code = out->code;
		log_msg(LOG_DEBUG, &ctx, "ListGroupId: %s: %s; retrying in %lld ms", out->code,
			out->message, (long long)wait);
		{
			struct timespec ts = { wait / 1000, (wait % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
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
	return discover_all_for(cfg, only, nonly, http, NULL, NULL, creds, st, run_id, out, err);
}

int discover_all_for(const struct config *cfg, const char **only, size_t nonly,
		     struct http_client *http,
		     struct creds *(*creds_for)(void *arg, const struct cfg_instance *inst),
		     void *arg, const struct creds *creds, struct store *st, int64_t run_id,
		     struct discovered *out, struct cs_error *err)
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
		if (creds_for) {
			struct creds *own = creds_for(arg, inst);
			struct cs_error cerr = { 0 };

			/* the instance's own identity; one that cannot sign fails this instance only */
			if (creds_fresh(own, 0, &cerr) < 0) {
				if (cerr.kind == CS_ERR_INTERRUPTED)
					return cs_error_set(err, CS_ERR_INTERRUPTED, "interrupted");
				out[i].failed = 1;
				snprintf(out[i].code, sizeof(out[i].code), "CredentialsUnavailable");
				snprintf(out[i].message, sizeof(out[i].message), "%s", cerr.msg);
				log_msg(LOG_ERROR, &ctx, "cannot list the instance's groups: %s",
					cerr.msg);
				continue;
			}
		}
		{
			const struct creds *use = creds_for ? creds_for(arg, inst) : creds;
			struct cs_error derr = { 0 };

			if (discover_instance(inst, http, use, &out[i], &derr) < 0) {
				/* a rejected identity of the instance's own fails that instance only */
				if (derr.kind != CS_ERR_CREDENTIALS || use == creds)
					return cs_error_set(err, derr.kind, "%s", derr.msg);
				out[i].failed = 1;
			}
		}
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
