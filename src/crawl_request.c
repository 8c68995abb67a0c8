/*
 * crawl_request.c - the requests of a crawl (see crawl_int.h): each endpoint host with its
 * HTTP handle and rate limiter (starting from the rate remembered for the host), sending a
 * page request signed with the job's identity, and what an answer means for the walk: a
 * page staged and the stop rules applied, a retry with backoff, or a failure classified by
 * the service's Code.
 */
#include "crawl_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "answer.h"
#include "sign.h"

/* A remembered rate older than this is rediscovered by slow start. */
#define RATE_MEMORY_S (7 * 86400)

/* The endpoint's limiter at the instance's qps, starting from the rate the host accepted
 * last time, when one is remembered. */
static int endpoint_rate_init(struct crawl *c, struct endpoint_state *ep,
			      const struct cfg_instance *inst, struct cs_error *err)
{
	int adaptive = inst->s.rate_control == CFG_RATE_ADAPTIVE;
	double remembered = 0;

	rate_init(&ep->rl, inst->s.qps, adaptive, now_ms());
	if (!adaptive)
		return 0;
	if (store_rate_get(c->st, http_endpoint_host(ep->http), RATE_MEMORY_S, &remembered, err) < 0)
		return -1;
	rate_resume(&ep->rl, remembered, now_ms());
	log_msg(LOG_DEBUG, NULL, "%s: requests start at %.1f/s (%s), ceiling %.1f/s",
		http_endpoint_host(ep->http), ep->rl.rate,
		remembered > 0 ? "the rate it accepted last time" : "slow start", ep->rl.ceiling);
	return 0;
}

/* Remembers, per host, the rate each endpoint ended at once it met the service's limit. */
void crawl_remember_rates(struct crawl *c)
{
	struct cs_error ignore = { 0 };
	size_t i;
	double rate;

	for (i = 0; i < c->neps; i++) {
		struct endpoint_state *ep = &c->eps[i];

		if (!rate_learned(&ep->rl, &rate))
			continue;
		log_msg(LOG_INFO, NULL, "%s: the service accepted about %.1f requests/s; the next "
			"run starts there", http_endpoint_host(ep->http), rate);
		if (store_rate_put(c->st, http_endpoint_host(ep->http), rate, &ignore) < 0)
			log_msg(LOG_WARN, NULL, "%s", ignore.msg);
	}
}

struct endpoint_state *crawl_endpoint_for(struct crawl *c, const struct cfg_instance *inst,
					   struct cs_error *err)
{
	struct http_endpoint_opts hopts;
	struct endpoint_state *ep;
	size_t i;

	for (i = 0; i < c->neps; i++) {
		if (!strcmp(c->eps[i].url, inst->endpoint)) {
			/* instances sharing an endpoint share its limit: the lowest qps wins */
			if (inst->s.qps < c->eps[i].rl.ceiling &&
			    endpoint_rate_init(c, &c->eps[i], inst, err) < 0)
				return NULL;
			return &c->eps[i];
		}
	}
	ep = &c->eps[c->neps];
	memset(ep, 0, sizeof(*ep));
	memset(&hopts, 0, sizeof(hopts));
	hopts.connect_timeout_ms = inst->s.connect_timeout_ms;
	hopts.request_timeout_ms = inst->s.request_timeout_ms;
	hopts.ca_file = inst->s.ca_file;
	if (!(ep->url = strdup(inst->endpoint))) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	if (http_endpoint_open(c->http, inst->endpoint, &hopts, &ep->http, err) < 0) {
		free(ep->url);
		ep->url = NULL;
		cs_error_prefix(err, "instance '%s': ", inst->id);
		return NULL;
	}
	c->neps++;
	if (endpoint_rate_init(c, ep, inst, err) < 0)
		return NULL;
	return ep;
}

/* The identity the job's instance signs with. */
static struct creds *job_creds(struct crawl *c, const struct job *j)
{
	struct creds *cr = NULL;

	if (c->opts->creds_for)
		cr = c->opts->creds_for(c->opts->creds_arg, j->t->inst);
	return cr ? cr : c->creds;
}

int crawl_job_send(struct crawl *c, struct job *j, struct cs_error *err)
{
	const struct cfg_instance *inst = j->t->inst;
	struct sign_param p[5];
	struct cs_buf url = CS_BUF_INIT;
	struct curl_slist *headers = NULL;
	struct creds *cr = job_creds(c, j);
	struct cs_error cerr = { 0 };
	char page_no[24], page_size[24];
	size_t np = 0;
	int ret = -1;

	/* temporary credentials are renewed here, between requests; the three strings change
	 * together, and requests already signed keep the set they were signed with */
	if (creds_fresh(cr, 0, &cerr) < 0) {
		if (cerr.kind == CS_ERR_INTERRUPTED)
			return 0;
		/* expired after only a few failed renewals: wait for the next attempt */
		if (cr->prov && cr->failures < CREDS_RENEW_TRIES && cr->next_try_ms > now_ms()) {
			j->not_before_ms = cr->next_try_ms;
			return 0;
		}
		crawl_job_fail(c, j, cr->access_key_id ? "CredentialsExpired" : "CredentialsUnavailable",
			 NULL, 1, "%s", cerr.msg);
		return 0;
	}
	j->sent_cred_gen = cr->generation;

	snprintf(page_no, sizeof(page_no), "%" PRId64, j->snap.cs.page_no);
	snprintf(page_size, sizeof(page_size), "%d", inst->s.page_size);
	p[np++] = (struct sign_param){ "InstanceId", inst->id };
	p[np++] = (struct sign_param){ "GroupId", j->t->group_id };
	p[np++] = (struct sign_param){ "PageNo", page_no };
	p[np++] = (struct sign_param){ "PageSize", page_size };
	if (j->snap.cs.next_token)
		p[np++] = (struct sign_param){ "NextToken", j->snap.cs.next_token };
	if (api_build_request(&url, &headers, http_endpoint_url(j->ep->http),
			      http_endpoint_host(j->ep->http), "POST",
			      "ListDeviceCredentialClientId", p, np, cr, inst->s.signature,
			      err) < 0)
		goto out;
	free(j->sent_token);
	j->sent_token = NULL;
	if (j->snap.cs.next_token && !(j->sent_token = strdup(j->snap.cs.next_token))) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (http_submit(c->http, j->ep->http, "POST", buf_str(&url), headers, j, err) < 0) {
		headers = NULL;
		goto out;
	}
	headers = NULL;
	j->state = J_INFLIGHT;
	j->sent_ms = now_ms();
	c->inst_inflight[j->inst_index]++;
	c->totals->requests++;
	j->res->requests++;
	if (j->attempt > 0) {
		c->totals->retries++;
		j->res->retries++;
	}
	ret = 0;
out:
	curl_slist_free_all(headers);
	buf_release(&url);
	return ret;
}

/* Feeds an answer to the endpoint's rate limiter; -vv shows every change of its rate. */
static void rate_changed(struct endpoint_state *ep, void (*feed)(struct rate_limiter *, int64_t),
			 int64_t now, const char *what)
{
	double before = ep->rl.rate;

	feed(&ep->rl, now);
	if (ep->rl.rate != before)
		log_msg(LOG_DEBUG, NULL, "rate for %s: %.1f/s -> %.1f/s (%s%s)", ep->url, before,
			ep->rl.rate, what, ep->rl.slow_start ? ", slow start" : "");
}

/* Schedules another attempt of the current page, or fails the job when it may not. */
static void job_retry(struct crawl *c, struct job *j, enum retry_class cls, int timeout,
		      int64_t retry_after_ms, const char *code, const char *request_id,
		      const char *what)
{
	const struct cfg_settings *s = &j->t->inst->s;
	int64_t now = now_ms(), delay, cost = timeout ? RETRY_COST_TIMEOUT : RETRY_COST;
	struct log_ctx ctx;

	if (cls == RETRY_THROTTLE) {
		c->totals->throttled++;
		j->res->throttled++;
		rate_changed(j->ep, rate_on_throttle, now, "throttled");
	}
	j->attempt++;
	if (j->attempt >= s->max_attempts) {
		crawl_job_fail(c, j, code, request_id, 1, "%s; gave up after %d attempts", what,
			 j->attempt);
		return;
	}
	if (retry_budget_take(&c->budget, cost) < 0) {
		crawl_job_fail(c, j, "RetryBudgetExhausted", request_id, 1,
			 "%s; the run's retry budget is spent (too many failures across groups)", what);
		return;
	}
	j->retry_spent += cost;
	delay = retry_backoff_ms(&c->rng, j->attempt, s->base_delay_ms, s->max_delay_ms);
	if (retry_after_ms > delay)
		delay = retry_after_ms;
	if (now + delay > j->deadline_ms) {
		crawl_job_fail(c, j, "DeadlineExceeded", request_id, 1,
			 "%s; the next attempt would pass the run deadline", what);
		return;
	}
	j->not_before_ms = now + delay;
	j->state = J_READY;
	job_ctx(j, &ctx);
	ctx.run = c->opts->run_id;
	ctx.code = code;
	ctx.request_id = request_id && *request_id ? request_id : NULL;
	log_msg(LOG_DEBUG, &ctx, "%s; attempt %d of %d in %" PRId64 " ms", what, j->attempt + 1,
		s->max_attempts, delay);
}

/* Fails every unfinished job of the instance (InstancePermissionCheckFailed and the like). */
static void fail_instance(struct crawl *c, struct job *origin, const char *code,
			  const char *request_id, const char *message)
{
	size_t i;

	for (i = 0; i < c->njobs; i++) {
		struct job *j = &c->jobs[i];

		if (j->inst_index != origin->inst_index || j == origin)
			continue;
		crawl_job_fail(c, j, code, NULL, 0, "%s (instance-wide error, seen on group '%s')", message,
			 origin->t->group_id);
	}
	crawl_job_fail(c, origin, code, request_id, 0, "%s", message);
}

/* Hands the page (sequence number seq of the walk) to the writer, with the walk as it stands
 * now as the checkpoint of the same transaction. */
static int stage(struct crawl *c, struct job *j, int64_t seq, const struct api_list_page *page,
		 int checkpoint, struct cs_error *err)
{
	struct writer_walk wk = crawl_walk(j);
	struct writer_counts k = crawl_counts(c);

	return writer_page(c->w, job_slot(c, j), seq, (const char *const *)page->ids, page->lens,
			   page->n, checkpoint, &wk, &k, err);
}

/* A page arrived: stage it and decide, by API.md's stop rules, whether paging goes on. */
static int job_page(struct crawl *c, struct job *j, struct api_list_page *page,
		    struct cs_error *err)
{
	const struct cfg_instance *inst = j->t->inst;
	struct store_crawl_state *cs = &j->snap.cs;
	struct paging_decision d;
	struct paging_page pp;
	struct log_ctx ctx;
	int64_t seq;

	job_ctx(j, &ctx);
	ctx.run = c->opts->run_id;
	ctx.request_id = page->request_id;
	/* success gives back what this page's retries spent (AWS standard mode) */
	retry_budget_refund(&c->budget, j->retry_spent ? j->retry_spent : 1);
	j->retry_spent = 0;
	j->attempt = 0;
	rate_observe_rtt(&j->ep->rl, now_ms() - j->sent_ms);
	rate_changed(j->ep, rate_on_success, now_ms(), "accepted");

	if (page->skipped) {
		log_msg(LOG_WARN, &ctx,
			"skipped %zu client ID(s) longer than %d bytes or not UTF-8, e.g. \"%s\"",
			page->skipped, API_MAX_CLIENT_ID, page->skipped_example);
		j->skipped += (int64_t)page->skipped;
	}
	seq = cs->pages;
	/* when the data was read: a resumed walk keeps the time of its first page */
	cs->read_last = util_now_epoch();
	if (!cs->read_first)
		cs->read_first = cs->read_last;
	cs->pages++;
	cs->staged_ids += (int64_t)page->n;
	if (page->total >= 0)
		cs->total_reported = page->total;
	c->totals->pages++;
	j->res->pages = cs->pages;
	log_msg(LOG_TRACE, &ctx, "page %" PRId64 ": %zu IDs, Total %" PRId64, cs->page_no, page->n,
		page->total);

	if (c->opts->probe) {
		/* one page proves access; nothing is finalized */
		j->res->complete = 1;
		j->res->total_reported = page->total;
		j->res->clients = (int64_t)page->n;
		j->state = J_DONE;
		return stage(c, j, seq, page, 0, err);
	}
	pp = (struct paging_page){ page->ids, page->lens, page->n, page->skipped, page->total,
				   page->page_size, page->next_token, j->sent_token,
				   cs->staged_ids + j->skipped };
	if (paging_page(&j->walk, &pp, cs->page_no, inst->s.page_size, &d) < 0)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	switch (d.next) {
	case PAGING_LOOP:
		crawl_job_fail(c, j, "PagingLoop", page->request_id, 0, "%s", d.why);
		return 0; /* the walk is no inventory: nothing of it is kept */
	case PAGING_MORE_BY_TOKEN:
	case PAGING_MORE_BY_PAGENO:
		cs->page_no++;
		if (crawl_set_next_token(j, d.next == PAGING_MORE_BY_TOKEN ? page->next_token : NULL,
				   err) < 0)
			return -1;
		j->state = J_READY;
		j->not_before_ms = 0;
		return stage(c, j, seq, page, 1, err);
	case PAGING_END:
		break;
	}
	/* Paging ended normally; settle() finalizes and checks the tally against Total.  The
	 * checkpoint says so (page 0), so a run killed while finalizing finalizes on resume
	 * instead of fetching the last page again. */
	cs->page_no = 0;
	j->action = A_FINALIZE;
	j->state = J_DONE;
	return stage(c, j, seq, page, 1, err);
}

static enum api_result parse_page(long status, const char *body, size_t len, void *arg,
				  struct api_error *aerr, char *detail, size_t detail_len)
{
	return api_parse_list(status, body, len, arg, aerr, detail, detail_len);
}

int crawl_job_response(struct crawl *c, struct job *j, struct http_request *r,
		       struct cs_error *err)
{
	struct api_list_page page;
	struct answer a;
	int rc;

	c->inst_inflight[j->inst_index]--;
	if (j->state != J_INFLIGHT)
		return 0; /* the job was failed meanwhile (instance-wide error); drop the answer */
	j->state = J_READY;

	answer_judge(r, j->t->inst->endpoint, parse_page, &page, job_creds(c, j), &a);
	if (a.res == API_OK) {
		j->cred_retried = 0;
		rc = job_page(c, j, &page, err);
		api_page_release(&page);
		return rc;
	}
	if (a.res == API_NOMEM)
		/* ours, not the service's: retrying the page would not help */
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");

	if ((!strcmp(a.code, "InvalidSecurityToken.Expired") ||
	     !strcmp(a.code, "InvalidSecurityToken.MismatchWithAccessKey")) && !j->cred_retried &&
	    job_creds(c, j)->prov) {
		struct creds *cr = job_creds(c, j);
		struct cs_error cerr = { 0 };
		struct log_ctx ctx;

		/* the service thinks they expired (clock skew, early revocation): renew once, unless
		 * another page already did since this one was signed, and send the page again */
		j->cred_retried = 1;
		job_ctx(j, &ctx);
		ctx.run = c->opts->run_id;
		ctx.code = a.code;
		log_msg(LOG_INFO, &ctx, "%s: renewing the credentials and sending the page again",
			a.code);
		if (cr->generation == j->sent_cred_gen && creds_fresh(cr, 1, &cerr) < 0 &&
		    cerr.kind != CS_ERR_INTERRUPTED) {
			crawl_job_fail(c, j, "CredentialsExpired", a.request_id, 1, "%s", cerr.msg);
			return 0;
		}
		return 0;  /* J_READY: the page goes out again with the renewed set */
	}
	switch (a.cls) {
	case RETRY_THROTTLE:
	case RETRY_TRANSIENT:
		job_retry(c, j, a.cls, a.timeout, a.retry_after_ms, a.code, a.request_id, a.what);
		break;
	case FAIL_GROUP:
		crawl_job_fail(c, j, a.code, a.request_id, 0, "%s", a.message);
		break;
	case FAIL_INSTANCE:
		fail_instance(c, j, a.code, a.request_id, a.message);
		break;
	case FAIL_CREDENTIALS:
		if (job_creds(c, j) != c->creds) {
			/* an instance's own identity: the run's other identities go on */
			fail_instance(c, j, a.code, a.request_id, a.message);
			break;
		}
		crawl_job_fail(c, j, a.code, a.request_id, 1, "%s", a.message);
		crawl_fail_run(c, CS_ERR_CREDENTIALS,
			       "the service rejected the credentials: %s: %s (request %s)", a.code,
			       a.message, a.request_id[0] ? a.request_id : "unknown");
		break;
	case FAIL_RUN:
		crawl_job_fail(c, j, a.code, a.request_id, 1, "%s", a.message);
		crawl_fail_run(c, CS_ERR_RUNTIME, "%s: %s (request %s)", a.code, a.message,
			       a.request_id[0] ? a.request_id : "unknown");
		break;
	}
	return 0;
}
