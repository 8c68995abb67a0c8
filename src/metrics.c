/* metrics.c - Prometheus textfile output; see metrics.h. */
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "atomic.h"
#include "buf.h"
#include "util.h"

/* Label values escape backslash, double quote and newline (exposition format). */
static void label(struct cs_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_puts(b, "\\\\");
		else if (*s == '"')
			buf_puts(b, "\\\"");
		else if (*s == '\n')
			buf_puts(b, "\\n");
		else
			buf_putc(b, *s);
	}
}

static void header(struct cs_buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void group_metric(struct cs_buf *b, const struct metrics_run *m, const char *name,
			 const char *help, int only_complete, int64_t (*value)(const struct crawl_result *))
{
	size_t i;

	header(b, name, "gauge", help);
	for (i = 0; i < m->n; i++) {
		if (only_complete && !m->results[i].complete)
			continue;
		buf_printf(b, "%s{instance=\"", name);
		label(b, m->targets[i].inst->id);
		buf_puts(b, "\",group=\"");
		label(b, m->targets[i].group_id);
		buf_printf(b, "\"} %" PRId64 "\n", value(&m->results[i]));
	}
}

static int64_t v_clients(const struct crawl_result *r) { return r->clients; }
static int64_t v_added(const struct crawl_result *r) { return r->added; }
static int64_t v_removed(const struct crawl_result *r) { return r->removed; }
static int64_t v_success(const struct crawl_result *r) { return r->complete; }
static int64_t v_consistent(const struct crawl_result *r) { return r->complete && r->consistent; }
static int64_t v_requests(const struct crawl_result *r) { return r->requests; }

/* Per identity: when its credentials expire (0 never) and how often they were renewed. */
static void identity_metrics(struct cs_buf *b, const struct metrics_run *m)
{
	size_t i;

	if (!m->nidentities)
		return;
	header(b, "credsync_credentials_expiry_timestamp_seconds", "gauge",
	       "Unix time the identity's current credentials expire; 0 when they do not.");
	for (i = 0; i < m->nidentities; i++) {
		buf_puts(b, "credsync_credentials_expiry_timestamp_seconds{identity=\"");
		label(b, m->identities[i]->identity);
		buf_printf(b, "\"} %" PRId64 "\n", m->identities[i]->expiration);
	}
	header(b, "credsync_credentials_renewals", "gauge",
	       "Times the identity's credentials were renewed during the last run.");
	for (i = 0; i < m->nidentities; i++) {
		buf_puts(b, "credsync_credentials_renewals{identity=\"");
		label(b, m->identities[i]->identity);
		buf_printf(b, "\"} %" PRId64 "\n", m->identities[i]->refreshes);
	}
}

void metrics_render(struct cs_buf *b, const struct metrics_run *m)
{
	int64_t finished = m->started_epoch + m->duration_ms / 1000;

	header(b, "credsync_last_run_timestamp_seconds", "gauge",
	       "Unix time the last credsync sync run finished.");
	buf_printf(b, "credsync_last_run_timestamp_seconds %" PRId64 "\n", finished);
	header(b, "credsync_last_success_timestamp_seconds", "gauge",
	       "Unix time of the last run in which every group completed (0: never).");
	buf_printf(b, "credsync_last_success_timestamp_seconds %" PRId64 "\n",
		   m->last_success_epoch);
	header(b, "credsync_last_run_success", "gauge",
	       "1 when every group of the last run completed, else 0.");
	buf_printf(b, "credsync_last_run_success %d\n", m->ok ? 1 : 0);
	header(b, "credsync_last_run_id", "gauge", "run_id of the last run in the database.");
	buf_printf(b, "credsync_last_run_id %" PRId64 "\n", m->run_id);
	header(b, "credsync_last_run_duration_seconds", "gauge", "Wall time of the last run.");
	buf_printf(b, "credsync_last_run_duration_seconds %.3f\n", (double)m->duration_ms / 1000.0);
	header(b, "credsync_last_run_requests", "gauge", "API requests sent by the last run.");
	buf_printf(b, "credsync_last_run_requests %" PRId64 "\n", m->totals->requests);
	header(b, "credsync_last_run_retries", "gauge", "Retried requests in the last run.");
	buf_printf(b, "credsync_last_run_retries %" PRId64 "\n", m->totals->retries);
	header(b, "credsync_last_run_throttled", "gauge",
	       "Throttled responses (SystemOverFlow, ApplyTokenOverFlow, Throttling*) in the last run.");
	buf_printf(b, "credsync_last_run_throttled %" PRId64 "\n", m->totals->throttled);
	header(b, "credsync_last_run_groups_failed", "gauge", "Groups that failed in the last run.");
	buf_printf(b, "credsync_last_run_groups_failed %" PRId64 "\n", m->totals->groups_failed);
	if (m->retention) {
		header(b, "credsync_last_run_pruned_snapshots", "gauge",
		       "Snapshots deleted by the retention policy after the last run.");
		buf_printf(b, "credsync_last_run_pruned_snapshots %" PRId64 "\n", m->pruned_snapshots);
		header(b, "credsync_last_run_pruned_runs", "gauge",
		       "Runs left without snapshots and deleted by the retention policy after the last run.");
		buf_printf(b, "credsync_last_run_pruned_runs %" PRId64 "\n", m->pruned_runs);
	}
	group_metric(b, m, "credsync_group_success", "1 when the group's snapshot in the last run is complete.",
		     0, v_success);
	group_metric(b, m, "credsync_group_consistent",
		     "1 when the group's distinct client count matched the service's Total.", 0,
		     v_consistent);
	group_metric(b, m, "credsync_group_clients",
		     "Client IDs holding a device credential, per group (complete snapshots only).", 1,
		     v_clients);
	group_metric(b, m, "credsync_group_added", "Client IDs added since the group's previous snapshot.",
		     1, v_added);
	group_metric(b, m, "credsync_group_removed",
		     "Client IDs removed since the group's previous snapshot.", 1, v_removed);
	group_metric(b, m, "credsync_group_requests", "API requests for the group in the last run.", 0,
		     v_requests);
	identity_metrics(b, m);
}

int metrics_write(const char *path, const struct metrics_run *m, struct cs_error *err)
{
	struct cs_buf text = CS_BUF_INIT;
	struct atomic_file af;
	int ret = -1;

	metrics_render(&text, m);
	if (text.oom) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (atomic_open(&af, path, 0600, err) < 0)
		goto out;
	fwrite(text.data, 1, text.len, af.f);
	ret = atomic_commit(&af, err);
out:
	if (ret < 0)
		cs_error_prefix(err, "metrics file: ");
	buf_release(&text);
	return ret;
}
