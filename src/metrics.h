/*
 * metrics.h - the node_exporter textfile collector format, written atomically after a run
 * (a temporary file beside the target, then rename), so node_exporter never reads half a file.
 */
#ifndef CREDSYNC_METRICS_H
#define CREDSYNC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "crawl.h"
#include "creds.h"
#include "error.h"

struct metrics_run {
	int64_t run_id;
	int64_t started_epoch;
	int64_t duration_ms;
	int64_t last_success_epoch;   /* the last run where every group completed (this one
				       * included), as the database recorded it; 0 = never */
	const struct crawl_target *targets;
	const struct crawl_result *results;
	size_t n;
	const struct crawl_totals *totals;
	int ok;                       /* every group completed */
	int retention;                /* a retention policy ran after the run */
	int64_t pruned_snapshots, pruned_runs;  /* what it deleted */
	const struct creds *const *identities;  /* the run's identities (may be NULL) */
	size_t nidentities;
};

/* Renders the metrics text into out (for tests and for metrics_write). */
struct cs_buf;
void metrics_render(struct cs_buf *out, const struct metrics_run *m);

/* Writes path atomically with mode 0600.  Fails with CS_ERR_RUNTIME naming the path. */
int metrics_write(const char *path, const struct metrics_run *m, struct cs_error *err);

#endif
