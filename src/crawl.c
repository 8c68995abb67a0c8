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
#include "crawl_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void crawl_observe(struct crawl *c, struct job *j)
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
void crawl_job_fail(struct crawl *c, struct job *j, const char *code, const char *request_id,
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

void crawl_fail_run(struct crawl *c, enum cs_error_kind kind, const char *fmt, ...)
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

/* The run's counters, as the writer writes them into the run row with each transaction. */
struct writer_counts crawl_counts(const struct crawl *c)
{
	struct writer_counts k = { c->totals->requests, c->totals->retries, c->totals->throttled };

	return k;
}

/* The walk as the checkpoint persists it. */
struct writer_walk crawl_walk(const struct job *j)
{
	const struct store_crawl_state *cs = &j->snap.cs;
	struct writer_walk wk = { cs->page_no, cs->next_token, cs->pages, cs->staged_ids,
				  cs->total_reported, cs->rewalked, cs->read_first, cs->read_last };

	return wk;
}

int crawl_set_next_token(struct job *j, const char *tok, struct cs_error *err)
{
	free(j->snap.cs.next_token);
	j->snap.cs.next_token = NULL;
	if (tok && !(j->snap.cs.next_token = strdup(tok)))
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
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
	if (crawl_set_next_token(j, NULL, err) < 0)
		return -1;
	wk = crawl_walk(j);
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
	struct writer_counts k = crawl_counts(c);

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
		j->state = J_READY; /* so that crawl_job_fail records it */
		crawl_job_fail(c, j, "IncompleteWalk", NULL, 0,
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
			k = crawl_counts(c);
			/* a job that never began keeps any checkpoint it had for the next run */
			if (writer_fail(c->w, job_slot(c, j), j->t->inst->id, j->t->group_id,
					res->code, res->message, res->request_id,
					j->keep_checkpoint || !j->began, &k, err) < 0)
				return -1;
			j->waiting++;
		} else {
			continue;
		}
		crawl_observe(c, j);
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
		crawl_observe(c, j);
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
			crawl_job_fail(c, j, "DeadlineExceeded", NULL, 1,
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
		if (crawl_job_send(c, j, err) < 0)
			return -1;
		crawl_observe(c, j);
	}
	return 0;
}

static void stop_all(struct crawl *c, const char *code, int keep, const char *why)
{
	size_t i;

	for (i = 0; i < c->njobs; i++)
		if (job_active(&c->jobs[i]))
			crawl_job_fail(c, &c->jobs[i], code, NULL, keep, "%s", why);
}

/*
 * The database failed mid-run (disk full, I/O error, read-only): every snapshot still open
 * is closed as failed with that code, keeping its checkpoint so the next run resumes, as far
 * as the database can still be written.  These few rows usually fit where the failed
 * transaction's WAL frames were; only when they do not is the WAL copied back (a copy that
 * fails halfway takes room of its own), and they are tried once more.
 */
static void record_storage_failure(struct crawl *c, const struct cs_error *cause)
{
	const char *code = store_failure_code(c->st);
	struct cs_error ignore = { 0 };
	size_t i;
	int pass, left = 0;

	http_abort_all(c->http);
	for (i = 0; i < c->njobs; i++) {
		struct job *j = &c->jobs[i];

		if (!j->began || j->recorded)
			continue;
		snprintf(j->res->code, sizeof(j->res->code), "%s", code);
		snprintf(j->res->message, sizeof(j->res->message), "%s", cause->msg);
		j->res->complete = 0;
		c->totals->groups_failed++;
	}
	for (pass = 0; pass < 2; pass++) {
		if (pass && left && store_wal_checkpoint(c->st, 1, &ignore) < 0)
			log_msg(LOG_DEBUG, NULL, "%s", ignore.msg);
		for (i = 0, left = 0; i < c->njobs; i++) {
			struct job *j = &c->jobs[i];

			if (!j->began || j->recorded)
				continue;
			if (store_snapshot_fail(c->st, &j->snap, code, cause->msg, NULL, 1, &ignore) == 0) {
				j->recorded = 1;
			} else {
				left++;
				log_msg(LOG_DEBUG, NULL, "%s", ignore.msg);
			}
		}
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
		j->snap.stage.last_id = (struct cs_buf)CS_BUF_INIT;
		for (k = 0; k < c.ninsts && c.insts[k] != targets[i].inst; k++)
			;
		if (k == c.ninsts)
			c.insts[c.ninsts++] = targets[i].inst;
		j->inst_index = k;
		j->deadline_ms = start + targets[i].inst->s.deadline_ms;
		if (!(j->ep = crawl_endpoint_for(&c, targets[i].inst, err)))
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
			int rc = crawl_job_response(&c, (struct job *)r->user, r, err);

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
		crawl_remember_rates(&c);
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
