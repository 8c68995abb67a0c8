/*
 * crawl.c - the paging engine; see crawl.h.
 *
 * Each target is a job moving through PENDING (no snapshot yet) -> BEGINNING (the writer
 * begins or resumes its snapshot) -> READY (may send when its backoff has passed, its
 * instance has a free slot and its endpoint a rate token) -> INFLIGHT -> READY ... -> DONE
 * (FINALIZING while the writer merges and judges it) or FAILED.
 *
 * This thread only fetches and decides; every database write goes through the writer thread
 * (writer.h) in the transactions the checkpoint guarantees rest on, so pages keep arriving
 * while SQLite stages pages or finalizes a group.  The store is touched directly only before
 * the writer starts (remembered rates) and after it stops (failures, sweep, rates).
 */
#include "crawl.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "paging.h"
#include "retry.h"
#include "scrub.h"
#include "util.h"
#include "writer.h"

enum job_state {
	J_PENDING,
	J_BEGINNING,
	J_READY,
	J_INFLIGHT,
	J_DONE,
	J_FINALIZING,
	J_FAILED,
};

enum job_action {
	A_NONE,
	A_FINALIZE,
	A_FAIL,
};

struct endpoint_state {
	char *url;
	struct http_endpoint *http;
	struct rate_limiter rl;
};

struct job {
	const struct crawl_target *t;
	struct crawl_result *res;
	struct endpoint_state *ep;
	size_t inst_index;
	enum job_state state;
	enum job_action action;
	int keep_checkpoint;          /* for A_FAIL */
	int began;                    /* a snapshot row exists */
	struct store_snap snap;
	int64_t not_before_ms;
	int64_t sent_ms;              /* when the request in flight was sent */
	int64_t deadline_ms;
	int attempt;                  /* failed attempts of the current page */
	int64_t retry_spent;          /* budget spent on the current page's retries */
	char *sent_token;             /* the NextToken of the request in flight */
	struct paging_walk walk;      /* the current walk's stop rules and guards */
	uint64_t sent_cred_gen;       /* the credentials' generation that signed it */
	int cred_retried;             /* the current page was retried for expired credentials */
	int64_t skipped;              /* IDs skipped in this walk */
	int consistent;               /* the verdict of the last tally */
	int recorded;                 /* its snapshot was written as complete or failed */
	int waiting;                  /* operations of the writer's still to report back */
};

struct crawl {
	struct store *st;
	struct http_client *http;
	struct creds *creds;
	const struct crawl_opts *opts;
	struct crawl_totals *totals;
	struct job *jobs;
	size_t njobs;
	struct endpoint_state *eps;
	size_t neps;
	int *inst_inflight;           /* by instance index */
	const struct cfg_instance **insts;
	size_t ninsts;
	struct retry_budget budget;
	struct retry_rng rng;
	int fatal;                    /* a run-wide failure happened */
	enum cs_error_kind fatal_kind;
	char fatal_msg[1024];
	struct writer *w;             /* owns the store while the crawl runs */
	int *inst_starting;           /* by instance index: jobs BEGINNING, holding a slot */
};

static int64_t now_ms(void)
{
	return util_mono_ms();
}

static void job_ctx(const struct job *j, struct log_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->instance = j->t->inst->id;
	ctx->group = j->t->group_id;
	ctx->page = j->snap.cs.page_no;
}

static void observe(struct crawl *c, struct job *j)
{
	const struct crawl_observer *o = c->opts->observer;

	if (o && o->on_update)
		o->on_update(o->arg, j->t, j->res, j->state == J_READY || j->state == J_INFLIGHT,
			     j->snap.cs.staged_ids, j->snap.cs.total_reported);
}

static void walk_reset(struct job *j)
{
	paging_release(&j->walk);
	paging_init(&j->walk, j->t->inst->s.max_pages);
	j->skipped = 0;
}

/* Records why a job failed; the snapshot is written after the turn's commit. */
static void job_fail(struct crawl *c, struct job *j, const char *code, const char *request_id,
		     int keep_checkpoint, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void job_fail(struct crawl *c, struct job *j, const char *code, const char *request_id,
		     int keep_checkpoint, const char *fmt, ...)
{
	struct log_ctx ctx;
	enum log_level level;
	va_list ap;

	if (j->state == J_DONE || j->state == J_FINALIZING || j->state == J_FAILED)
		return;
	va_start(ap, fmt);
	vsnprintf(j->res->message, sizeof(j->res->message), fmt, ap);
	va_end(ap);
	snprintf(j->res->code, sizeof(j->res->code), "%s", code ? code : "");
	snprintf(j->res->request_id, sizeof(j->res->request_id), "%s", request_id ? request_id : "");
	j->state = J_FAILED;
	j->action = A_FAIL;
	j->keep_checkpoint = keep_checkpoint;
	j->res->finished_ms = now_ms();
	job_ctx(j, &ctx);
	ctx.run = c->opts->run_id;
	ctx.code = j->res->code;
	ctx.request_id = request_id && *request_id ? request_id : NULL;
	/* `check` prints each failure itself; a sync logs it as the error it is */
	level = c->opts->probe ? LOG_DEBUG : LOG_ERROR;
	if (ctx.request_id)
		log_msg(level, &ctx, "%s: %s (request %s)", j->res->code, j->res->message,
			ctx.request_id);
	else
		log_msg(level, &ctx, "%s: %s", j->res->code, j->res->message);
}

static void fail_run(struct crawl *c, enum cs_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail_run(struct crawl *c, enum cs_error_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (c->fatal)
		return;
	c->fatal = 1;
	c->fatal_kind = kind;
	va_start(ap, fmt);
	vsnprintf(c->fatal_msg, sizeof(c->fatal_msg), fmt, ap);
	va_end(ap);
}

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
static void remember_rates(struct crawl *c)
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

static struct endpoint_state *endpoint_for(struct crawl *c, const struct cfg_instance *inst,
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

static size_t job_slot(const struct crawl *c, const struct job *j)
{
	return (size_t)(j - c->jobs);
}

/* The job may start: the writer begins (or resumes) its snapshot, it holds a slot meanwhile. */
static int job_begin(struct crawl *c, struct job *j, struct cs_error *err)
{
	struct store_resume policy = { c->opts->restart, c->opts->checkpoint_max_age_s,
				       c->opts->finalize_max_age_s };

	if (writer_begin(c->w, job_slot(c, j), j->t->inst->id, j->t->group_id, &policy, err) < 0)
		return -1;
	j->state = J_BEGINNING;
	j->waiting++;
	c->inst_starting[j->inst_index]++;
	return 0;
}

/* The writer began the job's snapshot (snap: ours now). */
static void job_begun(struct crawl *c, struct job *j, struct store_snap *snap)
{
	struct log_ctx ctx;

	c->inst_starting[j->inst_index]--;
	store_snap_release(&j->snap);
	j->snap = *snap;
	j->began = 1;
	j->res->snapshot_id = j->snap.snapshot_id;
	if (j->state != J_BEGINNING)
		return; /* failed meanwhile (stopped, instance-wide error): its failure is queued */
	j->state = J_READY;
	j->res->started_ms = now_ms();
	j->res->resumed = j->snap.resumed_from != 0;
	walk_reset(j);
	if (j->snap.resumed_from && j->snap.cs.page_no == 0) {
		/* the walk had ended; only finalizing was left */
		j->state = J_DONE;
		j->action = A_FINALIZE;
	}
	job_ctx(j, &ctx);
	ctx.run = c->opts->run_id;
	if (j->snap.resumed_from)
		log_msg(LOG_INFO, &ctx,
			"resuming the crawl of snapshot %" PRId64 " at page %" PRId64 " (%" PRId64
			" IDs already stored)", j->snap.resumed_from, j->snap.cs.page_no,
			j->snap.cs.staged_ids);
	else if (j->snap.discarded_from)
		log_msg(LOG_INFO, &ctx, "discarded the checkpoint of snapshot %" PRId64 " (%s)",
			j->snap.discarded_from, j->snap.discarded_why);
}

/* The identity the job's instance signs with. */
static struct creds *job_creds(struct crawl *c, const struct job *j)
{
	struct creds *cr = NULL;

	if (c->opts->creds_for)
		cr = c->opts->creds_for(c->opts->creds_arg, j->t->inst);
	return cr ? cr : c->creds;
}

static int job_send(struct crawl *c, struct job *j, struct cs_error *err)
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
		job_fail(c, j, cr->access_key_id ? "CredentialsExpired" : "CredentialsUnavailable",
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
		job_fail(c, j, code, request_id, 1, "%s; gave up after %d attempts", what,
			 j->attempt);
		return;
	}
	if (retry_budget_take(&c->budget, cost) < 0) {
		job_fail(c, j, "RetryBudgetExhausted", request_id, 1,
			 "%s; the run's retry budget is spent (too many failures across groups)", what);
		return;
	}
	j->retry_spent += cost;
	delay = retry_backoff_ms(&c->rng, j->attempt, s->base_delay_ms, s->max_delay_ms);
	if (retry_after_ms > delay)
		delay = retry_after_ms;
	if (now + delay > j->deadline_ms) {
		job_fail(c, j, "DeadlineExceeded", request_id, 1,
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
		job_fail(c, j, code, NULL, 0, "%s (instance-wide error, seen on group '%s')", message,
			 origin->t->group_id);
	}
	job_fail(c, origin, code, request_id, 0, "%s", message);
}

/* The run's counters, as the writer writes them into the run row with each transaction. */
static struct writer_counts counts_of(const struct crawl *c)
{
	struct writer_counts k = { c->totals->requests, c->totals->retries, c->totals->throttled };

	return k;
}

/* The walk as the checkpoint persists it. */
static struct writer_walk walk_of(const struct job *j)
{
	const struct store_crawl_state *cs = &j->snap.cs;
	struct writer_walk wk = { cs->page_no, cs->next_token, cs->pages, cs->staged_ids,
				  cs->total_reported, cs->rewalked, cs->read_first, cs->read_last };

	return wk;
}

static int set_next_token(struct job *j, const char *tok, struct cs_error *err)
{
	free(j->snap.cs.next_token);
	j->snap.cs.next_token = NULL;
	if (tok && !(j->snap.cs.next_token = strdup(tok)))
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	return 0;
}

/* Hands the page (sequence number seq of the walk) to the writer, with the walk as it stands
 * now as the checkpoint of the same transaction. */
static int stage(struct crawl *c, struct job *j, int64_t seq, const struct api_list_page *page,
		 int checkpoint, struct cs_error *err)
{
	struct writer_walk wk = walk_of(j);
	struct writer_counts k = counts_of(c);

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
		job_fail(c, j, "PagingLoop", page->request_id, 0, "%s", d.why);
		return 0; /* the walk is no inventory: nothing of it is kept */
	case PAGING_MORE_BY_TOKEN:
	case PAGING_MORE_BY_PAGENO:
		cs->page_no++;
		if (set_next_token(j, d.next == PAGING_MORE_BY_TOKEN ? page->next_token : NULL,
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

/* What the service said, without anything of the credentials it may quote (scrub.h). */
static void scrub_service_text(const struct creds *cr, struct api_error *aerr, char *detail,
			       size_t detail_len)
{
	const char *secrets[] = { cr->access_key_secret, cr->security_token };

	scrub_text(aerr->message, sizeof(aerr->message), secrets, 2);
	scrub_text(detail, detail_len, secrets, 2);
}

/* Handles one finished transfer of job j. */
static int job_response(struct crawl *c, struct job *j, struct http_request *r,
			struct cs_error *err)
{
	const struct cfg_instance *inst = j->t->inst;
	struct api_list_page page;
	struct api_error aerr = { 0 };
	char detail[512] = "", what[1024];
	enum api_result res;
	enum retry_class cls;
	int rc = 0;

	c->inst_inflight[j->inst_index]--;
	if (j->state != J_INFLIGHT)
		return 0; /* the job was failed meanwhile (instance-wide error); drop the answer */
	j->state = J_READY;

	if (r->result != CURLE_OK) {
		const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);

		if (r->body_too_large) {
			snprintf(what, sizeof(what), "the response body passed %zu bytes",
				 (size_t)HTTP_DEFAULT_MAX_BODY);
			job_retry(c, j, RETRY_TRANSIENT, 0, -1, "BadResponse", NULL, what);
		} else if (http_result_transient(r->result)) {
			snprintf(what, sizeof(what), "%s: %s", inst->endpoint, why);
			job_retry(c, j, RETRY_TRANSIENT, r->result == CURLE_OPERATION_TIMEDOUT, -1,
				  r->result == CURLE_OPERATION_TIMEDOUT ? "Timeout" : "ConnectionFailed",
				  NULL, what);
		} else {
			snprintf(what, sizeof(what), "%s: %s", inst->endpoint, why);
			fail_instance(c, j, "ConnectionFailed", NULL, what);
		}
		return 0;
	}

	res = api_parse_list(r->status, buf_str(&r->body), r->body.len, &page, &aerr, detail,
			     sizeof(detail));
	if (res != API_OK)
		scrub_service_text(job_creds(c, j), &aerr, detail, sizeof(detail));
	switch (res) {
	case API_OK:
		j->cred_retried = 0;
		rc = job_page(c, j, &page, err);
		api_page_release(&page);
		return rc;
	case API_MALFORMED:
		job_retry(c, j, RETRY_TRANSIENT, 0, -1, "BadResponse", NULL, detail);
		return 0;
	case API_BAD_DATA:
		job_fail(c, j, "BadData", NULL, 0, "%s", detail);
		return 0;
	case API_NOMEM:
		/* ours, not the service's: retrying the page would not help */
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	case API_SERVICE_ERROR:
		break;
	}

	if ((!strcmp(aerr.code, "InvalidSecurityToken.Expired") ||
	     !strcmp(aerr.code, "InvalidSecurityToken.MismatchWithAccessKey")) && !j->cred_retried &&
	    job_creds(c, j)->prov) {
		struct creds *cr = job_creds(c, j);
		struct cs_error cerr = { 0 };
		struct log_ctx ctx;

		/* the service thinks they expired (clock skew, early revocation): renew once, unless
		 * another page already did since this one was signed, and send the page again */
		j->cred_retried = 1;
		job_ctx(j, &ctx);
		ctx.run = c->opts->run_id;
		ctx.code = aerr.code;
		log_msg(LOG_INFO, &ctx, "%s: renewing the credentials and sending the page again",
			aerr.code);
		if (cr->generation == j->sent_cred_gen && creds_fresh(cr, 1, &cerr) < 0 &&
		    cerr.kind != CS_ERR_INTERRUPTED) {
			job_fail(c, j, "CredentialsExpired", aerr.request_id, 1, "%s", cerr.msg);
			return 0;
		}
		return 0;  /* J_READY: the page goes out again with the renewed set */
	}
	cls = retry_classify_code(aerr.code);
	/* 5xx are retried whatever the Code says */
	if (cls == FAIL_GROUP && r->status >= 500)
		cls = RETRY_TRANSIENT;
	snprintf(what, sizeof(what), "%s: %s (HTTP %ld)", aerr.code,
		 aerr.message[0] ? aerr.message : "(no message)", r->status);
	switch (cls) {
	case RETRY_THROTTLE:
	case RETRY_TRANSIENT:
		job_retry(c, j, cls, 0, r->retry_after_ms, aerr.code, aerr.request_id, what);
		break;
	case FAIL_GROUP:
		job_fail(c, j, aerr.code, aerr.request_id, 0, "%s", aerr.message);
		break;
	case FAIL_INSTANCE:
		fail_instance(c, j, aerr.code, aerr.request_id, aerr.message);
		break;
	case FAIL_CREDENTIALS:
		if (job_creds(c, j) != c->creds) {
			/* an instance's own identity: the run's other identities go on */
			fail_instance(c, j, aerr.code, aerr.request_id, aerr.message);
			break;
		}
		job_fail(c, j, aerr.code, aerr.request_id, 1, "%s", aerr.message);
		fail_run(c, CS_ERR_CREDENTIALS,
			 "the service rejected the credentials: %s: %s (request %s)", aerr.code,
			 aerr.message, aerr.request_id[0] ? aerr.request_id : "unknown");
		break;
	case FAIL_RUN:
		job_fail(c, j, aerr.code, aerr.request_id, 1, "%s", aerr.message);
		fail_run(c, CS_ERR_RUNTIME, "%s: %s (request %s)", aerr.code, aerr.message,
			 aerr.request_id[0] ? aerr.request_id : "unknown");
		break;
	}
	return 0;
}

/* What was collected did not add up: forget it and walk the group once more. */
static int rewalk(struct crawl *c, struct job *j, const struct store_tally *t,
		  struct cs_error *err)
{
	struct store_crawl_state *cs = &j->snap.cs;
	struct writer_walk wk;
	struct log_ctx ctx;

	job_ctx(j, &ctx);
	ctx.run = c->opts->run_id;
	log_msg(LOG_WARN, &ctx,
		"collected %" PRId64 " distinct IDs (%" PRId64 " duplicates, %" PRId64
		" skipped) but the service reports Total %" PRId64 "; walking the group again",
		t->distinct, t->duplicates, j->skipped, cs->total_reported);
	cs->rewalked = 1;
	cs->page_no = 1;
	cs->pages = 0;
	cs->staged_ids = 0;
	cs->read_first = cs->read_last = 0; /* the snapshot will be the second walk's */
	walk_reset(j);
	j->action = A_NONE;
	j->state = J_READY;
	j->not_before_ms = 0;
	if (set_next_token(j, NULL, err) < 0)
		return -1;
	wk = walk_of(j);
	return writer_restart(c->w, job_slot(c, j), &wk, err);
}

static void log_finalized(struct crawl *c, struct job *j, const struct store_tally *t,
			  int64_t ms)
{
	struct log_ctx ctx;

	job_ctx(j, &ctx);
	ctx.run = c->opts->run_id;
	if (!j->consistent)
		log_msg(LOG_WARN, &ctx,
			"collected %" PRId64 " distinct IDs but the service reports Total %" PRId64
			" (%" PRId64 " duplicates, %" PRId64 " skipped), also on a second walk; "
			"snapshot %" PRId64 " is marked inconsistent (consistent = 0): its additions are "
			"recorded, and the %" PRId64 " earlier member(s) it did not see are kept until "
			"a consistent walk proves them gone", t->distinct, j->snap.cs.total_reported,
			t->duplicates, j->skipped, j->snap.snapshot_id, t->carried);
	log_msg(LOG_INFO, &ctx,
		"snapshot %" PRId64 " complete: %" PRId64 " clients (+%" PRId64 " -%" PRId64
		") in %" PRId64 " pages", j->snap.snapshot_id, t->members, t->added, t->removed,
		j->snap.cs.pages);
	log_msg(LOG_DEBUG, &ctx, "finalized in %" PRId64 " ms", ms);
}

/* A walk ended: the writer merges it and judges the tally (finalized() takes the verdict). */
static int finalize(struct crawl *c, struct job *j, struct cs_error *err)
{
	const struct cfg_settings *cfg = &j->t->inst->s;
	int64_t total = j->snap.cs.total_reported;
	struct writer_counts k = counts_of(c);

	if (writer_finalize(c->w, job_slot(c, j), total, j->skipped, config_tolerance(cfg, total),
			    &k, err) < 0)
		return -1;
	j->state = J_FINALIZING;
	j->waiting++;
	return 0;
}

/* The writer's verdict on a walk: recorded (consistent or not), walked again, or failed. */
static int finalized(struct crawl *c, struct job *j, const struct writer_done *d,
		     struct cs_error *err)
{
	const struct cfg_settings *cfg = &j->t->inst->s;
	struct crawl_result *res = j->res;
	int64_t total = j->snap.cs.total_reported;
	const struct store_tally *t = &d->tally;

	switch (d->verdict) {
	case PAGING_REWALK:
		return rewalk(c, j, t, err);
	case PAGING_INCOMPLETE:
		j->action = A_NONE;
		j->state = J_READY; /* so that job_fail records it */
		job_fail(c, j, "IncompleteWalk", NULL, 0,
			 "collected %" PRId64 " distinct client IDs (%" PRId64 " skipped) but the "
			 "service reports Total %" PRId64 ", short by %" PRId64 " (tolerance %" PRId64
			 "), also on a second walk: this walk is no inventory, nothing was recorded",
			 t->distinct, j->skipped, total, total - t->distinct - j->skipped,
			 config_tolerance(cfg, total));
		return 0;
	case PAGING_INCONSISTENT:
	case PAGING_CONSISTENT:
		break;
	}
	j->state = J_DONE;
	j->consistent = d->verdict == PAGING_CONSISTENT;
	c->totals->groups_ok++;
	res->consistent = j->consistent;
	res->clients = t->members;
	res->added = t->added;
	res->removed = t->removed;
	res->complete = 1;
	res->total_reported = total;
	res->finished_ms = now_ms();
	j->recorded = 1;
	log_finalized(c, j, t, d->ms);
	paging_release(&j->walk);
	return 0;
}

/* Hands the writer the finalizing and failing of jobs that finished or failed this turn. */
static int settle(struct crawl *c, struct cs_error *err)
{
	size_t i;

	for (i = 0; i < c->njobs; i++) {
		struct job *j = &c->jobs[i];
		struct crawl_result *res = j->res;
		struct writer_counts k;

		if (j->action == A_FINALIZE) {
			j->action = A_NONE;
			if (finalize(c, j, err) < 0)
				return -1;
		} else if (j->action == A_FAIL) {
			j->action = A_NONE;
			k = counts_of(c);
			/* a job that never began keeps any checkpoint it had for the next run */
			if (writer_fail(c->w, job_slot(c, j), j->t->inst->id, j->t->group_id,
					res->code, res->message, res->request_id,
					j->keep_checkpoint || !j->began, &k, err) < 0)
				return -1;
			j->waiting++;
		} else {
			continue;
		}
		observe(c, j);
	}
	return 0;
}

/* Takes what the writer reported back; returns how many, or -1. */
static int take_done(struct crawl *c, struct cs_error *err)
{
	struct writer_done d;
	int n = 0;

	while (writer_next_done(c->w, &d)) {
		struct job *j = &c->jobs[d.slot];

		n++;
		j->waiting--;
		switch (d.kind) {
		case WRITER_BEGUN:
			job_begun(c, j, &d.snap);
			break;
		case WRITER_FINALIZED:
			if (finalized(c, j, &d, err) < 0)
				return -1;
			break;
		case WRITER_FAILED:
			if (!j->began) {
				j->began = 1;
				j->res->snapshot_id = d.snap.snapshot_id;
			}
			c->totals->groups_failed++;
			j->recorded = 1;
			paging_release(&j->walk);
			break;
		}
		observe(c, j);
	}
	return n;
}

/* The job is still to walk (and may be stopped). */
static int job_active(const struct job *j)
{
	return j->state == J_PENDING || j->state == J_BEGINNING || j->state == J_READY ||
	       j->state == J_INFLIGHT;
}

/* Something of the crawl is left: a job to walk, or an operation to hand over or hear of. */
static int crawl_busy(const struct crawl *c)
{
	size_t i;

	for (i = 0; i < c->njobs; i++) {
		const struct job *j = &c->jobs[i];

		if (job_active(j) || j->waiting || j->action != A_NONE)
			return 1;
	}
	return 0;
}

/* Starts what may start now; returns the ms until something else may. */
static int launch(struct crawl *c, int64_t now, int64_t *wait_ms, struct cs_error *err)
{
	size_t i;

	for (i = 0; i < c->njobs && !c->fatal; i++) {
		struct job *j = &c->jobs[i];
		const struct cfg_instance *inst = j->t->inst;
		int64_t w;

		if (j->state != J_PENDING && j->state != J_READY)
			continue;
		if (now >= j->deadline_ms) {
			job_fail(c, j, "DeadlineExceeded", NULL, 1,
				 "the run deadline (retry.deadline) passed before the crawl finished");
			continue;
		}
		if (c->inst_inflight[j->inst_index] + c->inst_starting[j->inst_index] >=
		    inst->s.concurrency)
			continue;
		if (j->state == J_PENDING) {
			if (job_begin(c, j, err) < 0)
				return -1;
			continue; /* READY once the writer has begun its snapshot */
		}
		if (j->not_before_ms > now) {
			if (j->not_before_ms - now < *wait_ms)
				*wait_ms = j->not_before_ms - now;
			continue;
		}
		w = rate_take(&j->ep->rl, now);
		if (w > 0) {
			if (w < *wait_ms)
				*wait_ms = w;
			continue;
		}
		if (job_send(c, j, err) < 0)
			return -1;
		observe(c, j);
	}
	return 0;
}

static void stop_all(struct crawl *c, const char *code, int keep, const char *why)
{
	size_t i;

	for (i = 0; i < c->njobs; i++)
		if (job_active(&c->jobs[i]))
			job_fail(c, &c->jobs[i], code, NULL, keep, "%s", why);
}

/*
 * The database failed mid-run (disk full, I/O error, read-only): every snapshot still open
 * is closed as failed with that code, keeping its checkpoint so the next run resumes, as far
 * as the database can still be written.  Copying the WAL back first may free the room a
 * full disk needs for these few rows.
 */
static void record_storage_failure(struct crawl *c, const struct cs_error *cause)
{
	const char *code = store_failure_code(c->st);
	struct cs_error ignore = { 0 };
	size_t i;

	http_abort_all(c->http);
	store_wal_checkpoint(c->st, 1, &ignore);
	for (i = 0; i < c->njobs; i++) {
		struct job *j = &c->jobs[i];

		if (!j->began || j->recorded)
			continue;
		snprintf(j->res->code, sizeof(j->res->code), "%s", code);
		snprintf(j->res->message, sizeof(j->res->message), "%s", cause->msg);
		j->res->complete = 0;
		if (store_snapshot_fail(c->st, &j->snap, code, cause->msg, NULL, 1, &ignore) == 0)
			j->recorded = 1;
		c->totals->groups_failed++;
	}
}

/* The writer posted something: the poll must not sleep through it. */
static void wake_poll(void *http)
{
	http_wakeup(http);
}

/*
 * Stops every job still to walk with code, and waits until the writer has recorded all of
 * it: finalizes already handed over complete (a re-walk they ask for is stopped in turn).
 */
static int quiesce(struct crawl *c, const char *code, const char *why, struct cs_error *err)
{
	int n;

	do {
		stop_all(c, code, 1, why);
		if (settle(c, err) < 0)
			return -1;
		writer_drain(c->w);
		if (writer_status(c->w, err) < 0 || (n = take_done(c, err)) < 0)
			return -1;
	} while (n > 0);
	return 0;
}

int crawl_run(struct store *st, struct http_client *http, struct creds *creds,
	      const struct crawl_target *targets, size_t n, const struct crawl_opts *opts,
	      struct crawl_result *results, struct crawl_totals *totals, struct cs_error *err)
{
	struct crawl c;
	int64_t start = now_ms();
	size_t i, k;
	int ret = -1, interrupted = 0;

	memset(&c, 0, sizeof(c));
	memset(totals, 0, sizeof(*totals));
	memset(results, 0, n * sizeof(*results));
	c.st = st;
	c.http = http;
	c.creds = creds;
	c.opts = opts;
	c.totals = totals;
	c.njobs = n;
	retry_budget_init(&c.budget, opts->retry_budget > 0 ? opts->retry_budget : 500);
	retry_rng_seed(&c.rng);
	c.jobs = calloc(n ? n : 1, sizeof(*c.jobs));
	c.eps = calloc(n ? n : 1, sizeof(*c.eps));
	c.insts = calloc(n ? n : 1, sizeof(*c.insts));
	c.inst_inflight = calloc(n ? n : 1, sizeof(*c.inst_inflight));
	c.inst_starting = calloc(n ? n : 1, sizeof(*c.inst_starting));
	if (!c.jobs || !c.eps || !c.insts || !c.inst_inflight || !c.inst_starting) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct job *j = &c.jobs[i];

		j->t = &targets[i];
		j->res = &results[i];
		j->snap.cs.last_id = (struct cs_buf)CS_BUF_INIT;
		for (k = 0; k < c.ninsts && c.insts[k] != targets[i].inst; k++)
			;
		if (k == c.ninsts)
			c.insts[c.ninsts++] = targets[i].inst;
		j->inst_index = k;
		j->deadline_ms = start + targets[i].inst->s.deadline_ms;
		if (!(j->ep = endpoint_for(&c, targets[i].inst, err)))
			goto out;
	}
	/* from here on the store is the writer's until writer_stop */
	if (writer_start(&c.w, st, n, opts->run_id, wake_poll, http, err) < 0)
		goto out;

	for (;;) {
		int64_t wait = 1000;
		struct http_request *r;

		if (opts->stop && *opts->stop) {
			interrupted = 1;
			break;
		}
		if (c.fatal)
			break;
		/* what the writer reported, then what it is to do, before anything is sent */
		if (writer_status(c.w, err) < 0 || take_done(&c, err) < 0 || settle(&c, err) < 0 ||
		    launch(&c, now_ms(), &wait, err) < 0 || settle(&c, err) < 0)
			goto out;
		if (!crawl_busy(&c) && !http_in_flight(http))
			break;
		if (http_poll(http, (int)(wait < 0 ? 0 : wait), err) < 0)
			goto out;
		while ((r = http_next_done(http))) {
			int rc = job_response(&c, (struct job *)r->user, r, err);

			http_request_release(http, r);
			if (rc < 0)
				goto out;
		}
	}

	if (interrupted || c.fatal) {
		/* in-flight answers are abandoned: their pages were never staged, and the
		 * checkpoints say where to resume */
		http_abort_all(http);
		for (i = 0; i < n; i++)
			if (c.jobs[i].state == J_INFLIGHT)
				c.inst_inflight[c.jobs[i].inst_index]--;
		if (quiesce(&c, interrupted ? "Interrupted" : "NotAttempted",
			    interrupted ? "stopped by a signal; the next run resumes here" : c.fatal_msg,
			    err) < 0)
			goto out;
		if (interrupted)
			cs_error_set(err, CS_ERR_INTERRUPTED, "interrupted");
		else
			cs_error_set(err, c.fatal_kind, "%s", c.fatal_msg);
		goto out;
	}
	ret = 0;
out:
	if (c.w) {
		struct cs_error ignore = { 0 };

		/* after a failure: what the writer did before it is taken, then the store is ours */
		writer_drain(c.w);
		take_done(&c, &ignore);
		writer_stop(c.w);
	}
	if (ret < 0 && c.jobs && store_failure_code(st))
		record_storage_failure(&c, err);
	else if (c.jobs)
		remember_rates(&c);
	if (c.jobs) {
		struct cs_error ignore = { 0 };

		/* the finished crawls' pages are garbage now; failing to free them loses nothing */
		if (store_stage_sweep(st, ret < 0 ? &ignore : err) < 0 && ret == 0)
			ret = -1;
	}
	for (i = 0; c.jobs && i < n; i++) {
		store_snap_release(&c.jobs[i].snap);
		free(c.jobs[i].sent_token);
		paging_release(&c.jobs[i].walk);
	}
	for (i = 0; i < c.neps; i++)
		free(c.eps[i].url);
	free(c.jobs);
	free(c.eps);
	free(c.insts);
	free(c.inst_inflight);
	free(c.inst_starting);
	return ret;
}
