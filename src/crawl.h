/*
 * crawl.h - walks every page of every selected group into the store.
 *
 * One thread, one libcurl multi handle: groups are crawled side by side (up to each
 * instance's `concurrency` requests in flight) while the pages of one group stay in order,
 * since each needs the previous page's NextToken.  Each endpoint has one rate limiter that
 * all its groups share.  Every page is staged with its checkpoint in one transaction; a group
 * whose paging ends normally is finalized into a complete snapshot, any other ending records
 * a failed snapshot and never touches the inventory.
 */
#ifndef CREDSYNC_CRAWL_H
#define CREDSYNC_CRAWL_H

#include <signal.h>
#include <stdint.h>

#include "config.h"
#include "creds.h"
#include "error.h"
#include "http.h"
#include "store.h"

struct crawl_target {
	const struct cfg_instance *inst;
	const char *group_id;
};

/* What became of one target; filled for every target, in order. */
struct crawl_result {
	int64_t snapshot_id;
	int complete;          /* 1 when the snapshot is complete */
	int consistent;
	int resumed;           /* the crawl continued an interrupted one */
	int64_t clients, added, removed, total_reported;
	int64_t pages, requests, retries, throttled;
	int64_t started_ms, finished_ms; /* monotonic */
	char code[128];        /* the service's Code or ours (Interrupted, DeadlineExceeded...) */
	char message[768];
	char request_id[128];
};

struct crawl_totals {
	int64_t requests, retries, throttled, pages;
	int64_t groups_ok, groups_failed;
};

/* Live view for the progress display (optional). */
struct crawl_observer {
	void (*on_update)(void *arg, const struct crawl_target *t, const struct crawl_result *r,
			  int active, int64_t ids_so_far, int64_t total_reported);
	void *arg;
};

struct crawl_opts {
	int64_t run_id;
	int restart;                        /* --restart: never resume a checkpoint */
	int64_t checkpoint_max_age_s;
	int64_t finalize_max_age_s;         /* an ended walk older than this is walked again */
	int64_t retry_budget;               /* tokens for the whole run */
	volatile sig_atomic_t *stop;        /* set by SIGINT/SIGTERM: stop and checkpoint */
	const struct crawl_observer *observer;
	int probe;                          /* `check --online`: stop after each group's first page */
	/* the identity of an instance with its own `credentials`; NULL (or NULL returned): the
	 * run's */
	struct creds *(*creds_for)(void *arg, const struct cfg_instance *inst);
	void *creds_arg;
};

/*
 * Crawls targets[0..n).  results must have room for n.  Returns 0 when the run went
 * through, even if groups failed (see results and totals).  Returns -1 with err set when the
 * whole run had to stop: CS_ERR_CREDENTIALS when the service refused the AccessKey,
 * CS_ERR_INTERRUPTED after *opts->stop, CS_ERR_RUNTIME for a database error or a fault that
 * no group can survive.  Every target has a snapshot recorded either way (unless the database
 * itself failed).
 */
int crawl_run(struct store *st, struct http_client *http, struct creds *creds,
	      const struct crawl_target *targets, size_t n, const struct crawl_opts *opts,
	      struct crawl_result *results, struct crawl_totals *totals, struct cs_error *err);

#endif
