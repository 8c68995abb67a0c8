/* discover.c - ListGroupId for `groups: all` and ListInstances for init; see discover.h. */
#include "discover.h"

#include <stdlib.h>
#include <string.h>

#include "answer.h"
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

/* One listing call to make (ListGroupId of an instance, ListInstances of a region) and its
 * state in the engine below. */
struct listing_job {
	const char *subject;          /* "instance 'x'", "region 'y'": for messages */
	const char *instance;         /* the instance id for the log context, or NULL */
	const char *endpoint;
	const struct cfg_settings *s;
	const char *action;
	const struct sign_param *p;
	size_t np;
	answer_parse_fn parse;
	void *arg;
	int *failed;                  /* set when the listing failed; code/message say why */
	char *code;                   /* [128] */
	char *message;                /* [768] */
	struct http_endpoint *ep;
	int attempt, in_flight, done;
	int64_t not_before;           /* monotonic ms: a retry waits for its backoff */
	int64_t deadline;             /* monotonic ms: retry.deadline from the start */
};

static void abort_listings(struct http_client *http)
{
	struct http_request *r;

	http_abort_all(http);
	while ((r = http_next_done(http)))
		http_request_release(http, r);
}

/* The listing fails for good with code and message. */
static int listing_failed(struct listing_job *j, const char *code, const char *message,
			  const char *request_id)
{
	snprintf(j->code, 128, "%s", code);
	snprintf(j->message, 768, "%s%s%s%s", message, request_id && *request_id ? " (request " : "",
		 request_id ? request_id : "", request_id && *request_id ? ")" : "");
	*j->failed = 1;
	return 1;
}

/* A finished attempt: 1 when the job is done (parsed, or failed for good), 0 when it is to
 * be retried (not_before set), -1 for rejected credentials or no memory (err set).  What the
 * answer means is the crawl's judgement (answer.h), and so are the retry rules. */
static int listing_finished(struct listing_job *j, struct http_request *r, struct rate_limiter *rl,
			    struct retry_rng *rng, const struct creds *creds, struct cs_error *err)
{
	const struct cfg_settings *s = j->s;
	struct log_ctx ctx = { 0 };
	struct answer a;
	int64_t wait, now = util_mono_ms();

	answer_judge(r, j->endpoint, j->parse, j->arg, creds, &a);
	if (a.res == API_OK) {
		rate_on_success(rl, now);
		return 1;
	}
	if (a.res == API_NOMEM)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	if (a.cls == FAIL_CREDENTIALS) {
		/* an instance's own identity fails that instance alone: code and message say why */
		listing_failed(j, a.code, a.message, a.request_id);
		return cs_error_set(err, CS_ERR_CREDENTIALS,
				    "%s: the service rejected the credentials: %s: %s", j->subject,
				    a.code, a.message);
	}
	if ((a.cls != RETRY_THROTTLE && a.cls != RETRY_TRANSIENT) || j->attempt >= s->max_attempts)
		return listing_failed(j, a.code, a.message, a.request_id);
	if (a.cls == RETRY_THROTTLE)
		rate_on_throttle(rl, now);
	wait = retry_backoff_ms(rng, j->attempt, s->base_delay_ms, s->max_delay_ms);
	if (a.retry_after_ms > wait)
		wait = a.retry_after_ms;
	if (now + wait > j->deadline)
		return listing_failed(j, "DeadlineExceeded", "the next attempt would pass the run "
				      "deadline (retry.deadline)", NULL);
	ctx.instance = j->instance;
	ctx.code = a.code;
	log_msg(LOG_DEBUG, &ctx, "%s: %s; retrying in %lld ms", j->action, a.what,
		(long long)wait);
	j->not_before = now + wait;
	return 0;
}

/*
 * The one engine for listing calls: runs jobs concurrently (at most max_in_flight at once)
 * under the rate limiter rl, with the crawl's retry rules (throttling and transient faults
 * retried with backoff and x-acs-retry-after up to max_attempts; other failures classified
 * by Code and final), within retry.deadline.  Waiting (for a backoff, a rate token or an
 * answer) is http_poll's, which a signal wakes.  Returns 0 with every job parsed or marked
 * failed, or -1 for rejected credentials (CS_ERR_CREDENTIALS) and for *stop becoming
 * non-zero (CS_ERR_INTERRUPTED).
 */
static int run_listings(struct listing_job *jobs, size_t n, size_t max_in_flight,
			struct rate_limiter *rl, struct http_client *http, const struct creds *creds,
			volatile sig_atomic_t *stop, struct cs_error *err)
{
	struct retry_rng rng;
	size_t i, left = n, in_flight = 0;

	retry_rng_seed(&rng);
	for (i = 0; i < n; i++) {
		const struct cfg_settings *s = jobs[i].s;
		struct http_endpoint_opts hopts = { s->connect_timeout_ms, s->request_timeout_ms,
						    s->ca_file, 0 };

		if (http_endpoint_open(http, jobs[i].endpoint, &hopts, &jobs[i].ep, err) < 0)
			return -1;
		jobs[i].deadline = util_mono_ms() + s->deadline_ms;
	}
	while (left) {
		struct http_request *r;
		int64_t now = util_mono_ms(), next = now + 1000, wait;

		if (stop && *stop) {
			abort_listings(http);
			return cs_error_set(err, CS_ERR_INTERRUPTED, "stopped by a signal");
		}
		for (i = 0; i < n && in_flight < max_in_flight; i++) {
			struct listing_job *j = &jobs[i];
			struct cs_buf url = CS_BUF_INIT;
			struct curl_slist *headers = NULL;

			if (j->done || j->in_flight)
				continue;
			if (now >= j->deadline) {
				listing_failed(j, "DeadlineExceeded", "the run deadline (retry.deadline) "
					       "passed before the listing succeeded", NULL);
				j->done = 1;
				left--;
				continue;
			}
			if (j->not_before > now) {
				if (j->not_before < next)
					next = j->not_before;
				continue;
			}
			if ((wait = rate_take(rl, now)) > 0) {
				if (now + wait < next)
					next = now + wait;
				break;
			}
			if (api_build_request(&url, &headers, http_endpoint_url(j->ep),
					      http_endpoint_host(j->ep), "POST", j->action, j->p, j->np,
					      creds, j->s->signature, err) < 0 ||
			    http_submit(http, j->ep, "POST", buf_str(&url), headers, j, err) < 0) {
				buf_release(&url);
				abort_listings(http);
				return -1;
			}
			buf_release(&url);
			j->attempt++;
			j->in_flight = 1;
			in_flight++;
		}
		if (!left)
			break;
		wait = next - now;
		if (wait < 0)
			wait = 0;
		if (http_poll(http, (int)(wait < 1000 ? wait : 1000), err) < 0) {
			abort_listings(http);
			return -1;
		}
		while ((r = http_next_done(http))) {
			struct listing_job *j = r->user;
			int rc = listing_finished(j, r, rl, &rng, creds, err);

			http_request_release(http, r);
			j->in_flight = 0;
			in_flight--;
			if (rc < 0) {
				abort_listings(http);
				return -1;
			}
			if (rc > 0) {
				j->done = 1;
				left--;
			}
		}
	}
	return 0;
}

static enum api_result parse_groups(long status, const char *body, size_t len, void *arg,
				    struct api_error *aerr, char *detail, size_t detail_len)
{
	struct discovered *d = arg;

	return api_parse_groups(status, body, len, &d->groups, &d->ngroups, aerr, detail,
				detail_len);
}

/* discover_groups under the caller's limiter (ListGroupId's 10/s is per account: one
 * limiter serves every listing of a run). */
static int list_groups(const struct cfg_instance *insts, size_t n, struct http_client *http,
		       const struct creds *creds, volatile sig_atomic_t *stop,
		       struct rate_limiter *rl, struct discovered *out, struct cs_error *err)
{
	struct listing_job *jobs = NULL;
	struct sign_param *params = NULL;
	char (*subjects)[300] = NULL;
	size_t i, k;
	int ret = -1;

	for (i = 0; i < n; i++)
		memset(&out[i], 0, sizeof(out[i]));
	if (!n)
		return 0;
	jobs = calloc(n, sizeof(*jobs));
	params = calloc(n, sizeof(*params));
	subjects = calloc(n, sizeof(*subjects));
	if (!jobs || !params || !subjects) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		snprintf(subjects[i], sizeof(subjects[i]), "instance '%s'", insts[i].id);
		params[i] = (struct sign_param){ "InstanceId", insts[i].id };
		jobs[i] = (struct listing_job){ .subject = subjects[i], .instance = insts[i].id,
						.endpoint = insts[i].endpoint,
						.s = &insts[i].s, .action = "ListGroupId",
						.p = &params[i], .np = 1, .parse = parse_groups,
						.arg = &out[i], .failed = &out[i].failed,
						.code = out[i].code, .message = out[i].message };
	}
	if (run_listings(jobs, n, (size_t)insts[0].s.concurrency, rl, http, creds, stop, err) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (out[i].failed) {
			/* a parse that failed after a partial success leaves nothing behind */
			for (k = 0; k < out[i].ngroups; k++)
				free(out[i].groups[k]);
			free(out[i].groups);
			out[i].groups = NULL;
			out[i].ngroups = 0;
			continue;
		}
		qsort(out[i].groups, out[i].ngroups, sizeof(*out[i].groups), cmp_str);
		dedupe(&out[i]);
	}
	ret = 0;
out:
	free(jobs);
	free(params);
	free(subjects);
	return ret;
}

int discover_groups(const struct cfg_instance *insts, size_t n, struct http_client *http,
		    const struct creds *creds, volatile sig_atomic_t *stop, struct discovered *out,
		    struct cs_error *err)
{
	struct rate_limiter rl;

	rate_init(&rl, DISCOVER_QPS, 1, util_mono_ms());
	return list_groups(insts, n, http, creds, stop, &rl, out, err);
}

int discover_instance(const struct cfg_instance *inst, struct http_client *http,
		      const struct creds *creds, volatile sig_atomic_t *stop,
		      struct discovered *out, struct cs_error *err)
{
	return discover_groups(inst, 1, http, creds, stop, out, err);
}

static enum api_result parse_instances(long status, const char *body, size_t len, void *arg,
				       struct api_error *aerr, char *detail, size_t detail_len)
{
	struct discovered_instances *d = arg;

	return api_parse_instances(status, body, len, &d->instances, &d->n, aerr, detail,
				   detail_len);
}

int discover_instances(const char *const *regions, const char *const *endpoints, size_t n,
		       const struct cfg_settings *s, struct http_client *http,
		       const struct creds *creds, volatile sig_atomic_t *stop,
		       struct discovered_instances *out, struct cs_error *err)
{
	struct rate_limiter rl;          /* at ListGroupId's documented rate: none is published */
	struct listing_job *jobs = NULL;
	char (*subjects)[128] = NULL;
	size_t i;
	int ret = -1;

	for (i = 0; i < n; i++)
		memset(&out[i], 0, sizeof(out[i]));
	if (!n)
		return 0;
	jobs = calloc(n, sizeof(*jobs));
	subjects = calloc(n, sizeof(*subjects));
	if (!jobs || !subjects) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	rate_init(&rl, DISCOVER_QPS, 1, util_mono_ms());
	for (i = 0; i < n; i++) {
		snprintf(subjects[i], sizeof(subjects[i]), "region '%s'", regions[i]);
		jobs[i] = (struct listing_job){ .subject = subjects[i], .endpoint = endpoints[i],
						.s = s, .action = "ListInstances",
						.parse = parse_instances, .arg = &out[i],
						.failed = &out[i].failed, .code = out[i].code,
						.message = out[i].message };
	}
	ret = run_listings(jobs, n, (size_t)s->concurrency, &rl, http, creds, stop, err);
out:
	free(jobs);
	free(subjects);
	return ret;
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
		 int64_t run_id, volatile sig_atomic_t *stop, struct discovered *out,
		 struct cs_error *err)
{
	return discover_all_for(cfg, only, nonly, http, NULL, NULL, creds, st, run_id, stop, out,
				err);
}

int discover_all_for(const struct config *cfg, const char **only, size_t nonly,
		     struct http_client *http,
		     struct creds *(*creds_for)(void *arg, const struct cfg_instance *inst),
		     void *arg, const struct creds *creds, struct store *st, int64_t run_id,
		     volatile sig_atomic_t *stop, struct discovered *out, struct cs_error *err)
{
	struct rate_limiter rl;
	size_t i, k;

	rate_init(&rl, DISCOVER_QPS, 1, util_mono_ms());

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

			if (list_groups(inst, 1, http, use, stop, &rl, &out[i], &derr) < 0) {
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
