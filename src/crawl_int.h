/*
 * crawl_int.h - what the two files of the paging engine share: crawl.c (the jobs' state
 * machine, the writer's hand-over, the loop) and crawl_request.c (endpoints and their rate
 * limiters, sending a page request, and what its answer means for the walk).  Nothing
 * outside them includes it.
 */
#ifndef CREDSYNC_CRAWL_INT_H
#define CREDSYNC_CRAWL_INT_H

#include <stdint.h>
#include <string.h>

#include "api.h"
#include "crawl.h"
#include "http.h"
#include "log.h"
#include "paging.h"
#include "retry.h"
#include "store.h"
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

static inline int64_t now_ms(void)
{
	return util_mono_ms();
}

static inline void job_ctx(const struct job *j, struct log_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->instance = j->t->inst->id;
	ctx->group = j->t->group_id;
	ctx->page = j->snap.cs.page_no;
}


static inline size_t job_slot(const struct crawl *c, const struct job *j)
{
	return (size_t)(j - c->jobs);
}

/* crawl.c */
/* Records why a job failed; the writer records its snapshot at the next settle. */
void crawl_job_fail(struct crawl *c, struct job *j, const char *code, const char *request_id,
		    int keep_checkpoint, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Stops the whole run (kind and message as crawl_run returns them). */
void crawl_fail_run(struct crawl *c, enum cs_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Tells the progress display about the job. */
void crawl_observe(struct crawl *c, struct job *j);
/* The run's counters, the walk as the checkpoint persists it, and the NextToken to send. */
struct writer_counts crawl_counts(const struct crawl *c);
struct writer_walk crawl_walk(const struct job *j);
int crawl_set_next_token(struct job *j, const char *tok, struct cs_error *err);

/* crawl_request.c */
/* The endpoint state of inst's URL, opened (with its limiter) on first use. */
struct endpoint_state *crawl_endpoint_for(struct crawl *c, const struct cfg_instance *inst,
					  struct cs_error *err);
/* Remembers, per host, the rate each endpoint ended at once it met the service's limit. */
void crawl_remember_rates(struct crawl *c);
/* Sends the job's next page request (signed now, with the current credentials). */
int crawl_job_send(struct crawl *c, struct job *j, struct cs_error *err);
/* Handles one finished transfer of job j: stages a page, retries, or fails the job. */
int crawl_job_response(struct crawl *c, struct job *j, struct http_request *r,
		       struct cs_error *err);

#endif
