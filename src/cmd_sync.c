/*
 * cmd_sync.c - `credsync sync`: config, credentials, lock, then crawl every selected group
 * into the store and record the run.
 *
 * The order matters: everything that can be refused without side effects (options, config,
 * credentials) is checked before the lock file or the database is created.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "crawl.h"
#include "creds.h"
#include "identity.h"
#include "retry.h"
#include "discover.h"
#include "history.h"
#include "lock.h"
#include "metrics.h"
#include "plan.h"
#include "progress.h"
#include "store.h"
#include "util.h"

struct sync_args {
	struct cli_common common;  /* --instance, --group */
	struct plan_filter f;      /* points into common */
	int dry_run;
	int restart;
	int64_t wait_ms;
	const char *metrics_file;
	int progress;  /* -1 auto (terminal), 0 off, 1 on */
};

enum { O_DRY = 0x2001, O_RESTART, O_WAIT, O_METRICS, O_PROGRESS, O_NO_PROGRESS };

static int on_option(void *arg, int c, const char *v, struct cs_error *err)
{
	struct sync_args *a = arg;

	switch (c) {
	case O_DRY:
		a->dry_run = 1;
		break;
	case O_RESTART:
		a->restart = 1;
		break;
	case O_WAIT:
		if (util_parse_duration(v, &a->wait_ms) < 0)
			return cs_error_set(err, CS_ERR_USAGE,
					    "sync: --wait expects a duration like 30s or 5m, not '%s'", v);
		break;
	case O_METRICS:
		a->metrics_file = v;
		break;
	case O_PROGRESS:
		a->progress = 1;
		break;
	case O_NO_PROGRESS:
		a->progress = 0;
		break;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct cli_globals *g, struct sync_args *a,
		      struct cs_error *err)
{
	static const struct option longopts[] = {
		{ "instance", required_argument, NULL, CLI_OPT_INSTANCE },
		{ "group", required_argument, NULL, CLI_OPT_GROUP },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "restart", no_argument, NULL, O_RESTART },
		{ "wait", required_argument, NULL, O_WAIT },
		{ "metrics-file", required_argument, NULL, O_METRICS },
		{ "progress", no_argument, NULL, O_PROGRESS },
		{ "no-progress", no_argument, NULL, O_NO_PROGRESS },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_options o = { "sync", 0, "", longopts, on_option, a };
	int rc;

	a->progress = -1;
	rc = cli_parse_options(&o, argc, argv, g, &a->common, err);
	a->f.instances = a->common.instances;
	a->f.ninstances = a->common.ninstances;
	a->f.groups = a->common.groups;
	a->f.ngroups = a->common.ngroups;
	return rc;
}

static int needs_discovery(const struct config *cfg, const struct plan_filter *f)
{
	size_t i;

	for (i = 0; i < cfg->ninstances; i++)
		if (cfg->instances[i].groups_all &&
		    (!f->ninstances || plan_in_list(f->instances, f->ninstances, cfg->instances[i].id)))
			return 1;
	return 0;
}

/* One line about the run: on a terminal always (a person is watching), otherwise only with
 * -v, as a log line so that --log-format json stays one object per line. */
static void print_summary(const struct cli_globals *g, int64_t run_id,
			  const struct crawl_result *r, size_t n, const struct crawl_totals *t,
			  int64_t ms, const struct prune_result *pruned)
{
	int64_t clients = 0, added = 0, removed = 0;
	char line[512];
	size_t i;

	for (i = 0; i < n; i++) {
		clients += r[i].clients;
		added += r[i].added;
		removed += r[i].removed;
	}
	snprintf(line, sizeof(line),
		 "run %" PRId64 ": %" PRId64 " of %zu group(s) complete, %" PRId64 " clients (+%" PRId64
		 " -%" PRId64 "), %" PRId64 " requests, %" PRId64 " retries, %" PRId64
		 " throttled, %.1fs", run_id, t->groups_ok, n, clients, added, removed, t->requests,
		 t->retries, t->throttled, (double)ms / 1000.0);
	if (pruned)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 ", retention pruned %" PRId64 " snapshot(s) and %" PRId64 " run(s)",
			 pruned->snapshots, pruned->runs);
	if (g->log_format == LOG_TEXT && isatty(STDERR_FILENO) && g->verbosity >= 0 &&
	    !log_enabled(LOG_INFO))
		fprintf(stderr, "credsync: %s\n", line);
	else
		log_msg(LOG_INFO, NULL, "%s", line);
}

static void print_dry_run(const struct crawl_target *t, const struct crawl_result *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (r[i].complete)
			printf("%s/%s: %" PRId64 " clients, would add %" PRId64 ", remove %" PRId64 "%s\n",
			       t[i].inst->id, t[i].group_id, r[i].clients, r[i].added, r[i].removed,
			       r[i].consistent ? "" : " (inconsistent with Total)");
		else
			printf("%s/%s: failed: %s: %s\n", t[i].inst->id, t[i].group_id, r[i].code,
			       r[i].message);
	}
	printf("dry run: nothing was written\n");
}

/* Each snapshot remembers the identity that produced it (never a secret).  A failure here
 * is logged: the snapshots themselves are already recorded. */
static int record_identities(struct store *st, struct identities *ids,
			     const struct crawl_target *t, const struct crawl_result *r, size_t n)
{
	struct cs_error e = { 0 };
	size_t i;

	for (i = 0; i < n; i++) {
		const struct creds *c = identities_for(ids, t[i].inst);

		if (r[i].snapshot_id > 0 && c && c->identity[0] &&
		    store_snapshot_set_identity(st, r[i].snapshot_id, c->identity, &e) < 0) {
			log_msg(LOG_ERROR, NULL, "%s", e.msg);
			return -1;
		}
	}
	return 0;
}

/* When not one group could run because no identity could sign, the run failed for want of
 * credentials (exit 77), with the first reason. */
static void no_identity_could_run(const struct identities *ids, const struct crawl_result *r,
				  size_t n, const struct crawl_totals *totals, int *rc,
				  struct cs_error *err)
{
	size_t i;

	(void)ids;
	if (!n || totals->groups_ok || *rc < 0)
		return;
	for (i = 0; i < n; i++)
		if (strncmp(r[i].code, "Credentials", 11) &&
		    retry_classify_code(r[i].code) != FAIL_CREDENTIALS)
			return;
	cs_error_set(err, CS_ERR_CREDENTIALS, "no group could run: %s", r[0].message);
	*rc = -1;
}

int cmd_sync(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	struct sync_args a;
	struct config *cfg = NULL;
	struct identities ids;
	struct run_lock lock = { -1, NULL };
	struct store *st = NULL;
	struct http_client *http = NULL;
	struct crawl_target *targets = NULL;
	struct crawl_result *results = NULL;
	struct crawl_totals totals;
	struct crawl_opts opts;
	struct discovered *disc = NULL;
	struct progress *prog = NULL;
	struct crawl_observer observer;
	struct store_run_stats rs;
	struct prune_result pruned = { 0, 0, 0 };
	int retained = 0;
	const char *db_path = NULL, *metrics_file;
	char *db_real = NULL;
	int64_t run_id = 0, recovered = 0, started = util_mono_ms(), started_epoch = util_now_epoch();
	size_t n = 0, i;
	int ret = -1, rc, run_open = 0, disc_failed = 0;

	memset(&a, 0, sizeof(a));
	memset(&ids, 0, sizeof(ids));
	memset(&totals, 0, sizeof(totals));
	/* from here a signal asks to stop; each step below checks before it creates anything */
	cli_signals_arm(NULL);
	ret = parse_args(argc, argv, g, &a, err);
	if (ret != 0)
		goto out_args;
	ret = -1;
	cli_setup_logging(g);
	if (cli_database(g, 1, &cfg, &db_path, err) < 0)
		goto out;
	metrics_file = a.metrics_file ? a.metrics_file : cfg->metrics_file;
	/* selections are checked before anything is created; groups of `groups: all` can
	 * only be checked once they are listed */
	if (plan_check_instances(cfg, &a.f, err) < 0) {
		cs_error_prefix(err, "sync: ");
		goto out;
	}
	disc = calloc(cfg->ninstances ? cfg->ninstances : 1, sizeof(*disc));
	if (!disc) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!needs_discovery(cfg, &a.f)) {
		if (plan_targets(cfg, &a.f, disc, &targets, &n, err) < 0) {
			cs_error_prefix(err, "sync: ");
			goto out;
		}
		free(targets);
		targets = NULL;
	}
	creds_set_stop(&cli_stop_signal);
	rc = identities_resolve(&ids, cfg, a.f.instances, a.f.ninstances, err);
	creds_wipe_environment();
	if (rc < 0)
		goto out;
	if (ids.top)
		log_msg(LOG_DEBUG, NULL, "credentials from %s (%s)", ids.top->source,
			ids.top->identity);
	if (http_client_new(&http, err) < 0)
		goto out;
	cli_signals_arm(http);

	/* every name of the database shares one lock: the lock is taken on its real path, and
	 * a file with two hard links (two WALs) is refused before anything is written */
	if (cli_stopped(err) < 0 || (!a.dry_run && store_locate(db_path, &db_real, err) < 0))
		goto out;
	if (!a.dry_run && lock_acquire(&lock, db_real, a.wait_ms, err) < 0)
		goto out;
	if (cli_stopped(err) < 0 ||
	    store_open(&st, db_path, a.dry_run ? STORE_DRYRUN : STORE_WRITE, err) < 0)
		goto out;
	/* a damaged file is refused before any page is fetched into it */
	if (!a.dry_run && store_quick_check(st, err) < 0)
		goto out;
	if (!a.dry_run) {
		if (store_recover(st, &recovered, err) < 0)
			goto out;
		if (recovered)
			log_msg(LOG_INFO, NULL,
				"%" PRId64 " snapshot(s) of an earlier run that was stopped are marked failed",
				recovered);
	}
	if (cli_stopped(err) < 0 || store_run_begin(st, &run_id, err) < 0)
		goto out;
	run_open = 1;

	if (discover_all_for(cfg, a.f.instances, a.f.ninstances, http, identities_for, &ids, ids.top,
			     st, run_id, disc, err) < 0)
		goto out;
	for (i = 0; i < cfg->ninstances; i++)
		disc_failed += disc[i].failed;
	if (plan_targets(cfg, &a.f, disc, &targets, &n, err) < 0) {
		cs_error_prefix(err, "sync: ");
		goto out;
	}
	results = calloc(n ? n : 1, sizeof(*results));
	if (!results) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	memset(&opts, 0, sizeof(opts));
	opts.run_id = run_id;
	opts.restart = a.restart;
	opts.checkpoint_max_age_s = cfg->checkpoint_max_age_ms / 1000;
	opts.finalize_max_age_s = cfg->finalize_max_age_ms / 1000;
	opts.retry_budget = cfg->defaults.retry_budget;
	opts.stop = &cli_stop_signal;
	opts.creds_for = identities_for;
	opts.creds_arg = &ids;
	if (a.progress == 1 || (a.progress == -1 && isatty(STDERR_FILENO) && g->verbosity >= 0 &&
				g->log_format == LOG_TEXT)) {
		if (progress_new(&prog, stderr, targets, n) == 0) {
			observer.on_update = progress_update;
			observer.arg = prog;
			opts.observer = &observer;
		}
	}
	log_msg(LOG_INFO, NULL, "run %" PRId64 ": crawling %zu group(s)%s", run_id, n,
		a.dry_run ? " (dry run)" : "");
	rc = crawl_run(st, http, ids.top, targets, n, &opts, results, &totals, err);
	progress_free(prog);
	prog = NULL;
	record_identities(st, &ids, targets, results, n);
	no_identity_could_run(&ids, results, n, &totals, &rc, err);
	if (rc < 0 && err->kind != CS_ERR_CREDENTIALS && err->kind != CS_ERR_INTERRUPTED &&
	    totals.groups_ok + totals.groups_failed < (int64_t)n)
		goto out; /* the database itself failed: nothing more can be recorded */

	/* an instance whose groups could not be listed counts as a failed group */
	totals.groups_failed += disc_failed;
	rs.status = totals.groups_failed == 0 && rc == 0 ? "complete"
		    : totals.groups_ok ? "partial" : "failed";
	rs.groups_ok = totals.groups_ok;
	rs.groups_failed = totals.groups_failed;
	rs.requests = totals.requests;
	rs.retries = totals.retries;
	rs.throttled = totals.throttled;
	{
		struct cs_error ferr = { 0 };

		if (store_run_finish(st, run_id, &rs, &ferr) < 0 && rc == 0) {
			*err = ferr;
			goto out;
		}
		/* the run's WAL back into the file, and the file shrunk to nothing */
		if (store_wal_checkpoint(st, 1, &ferr) < 0)
			log_msg(LOG_WARN, NULL, "%s", ferr.msg);
	}
	run_open = 0;
	/* retention: exactly `prune` with the config's policy, under this run's lock, after a
	 * run that completed some group (prune never deletes a group's latest complete one) */
	if (rc == 0 && !a.dry_run && totals.groups_ok > 0 &&
	    (cfg->retention_keep_last || cfg->retention_keep_for_ms)) {
		if (history_prune(st, cfg->retention_keep_last, cfg->retention_keep_for_ms
				  ? util_now_epoch() - cfg->retention_keep_for_ms / 1000 : 0, 0,
				  &pruned, err) < 0) {
			cs_error_prefix(err, "sync: retention: ");
			goto out;
		}
		retained = 1;
	}
	if (metrics_file && !a.dry_run) {
		struct metrics_run m = {
			.run_id = run_id, .started_epoch = started_epoch,
			.duration_ms = util_mono_ms() - started, .targets = targets,
			.results = results, .n = n, .totals = &totals, .ok = rc == 0 && !totals.groups_failed,
			.retention = retained, .pruned_snapshots = pruned.snapshots,
			.pruned_runs = pruned.runs,
		};
		struct cs_error merr = { 0 };
		const struct creds *idl[64];

		m.nidentities = identities_list(&ids, idl, sizeof(idl) / sizeof(idl[0]));
		m.identities = idl;
		/* a failed run reports when the last good one was, from the database */
		if (store_last_success(st, &m.last_success_epoch, &merr) < 0 ||
		    metrics_write(metrics_file, &m, &merr) < 0)
			log_msg(LOG_ERROR, NULL, "%s", merr.msg);
	}
	if (a.dry_run)
		print_dry_run(targets, results, n);
	print_summary(g, run_id, results, n, &totals, util_mono_ms() - started,
		      retained ? &pruned : NULL);
	if (rc < 0)
		goto out;
	ret = totals.groups_failed ? CMD_FAILED : CMD_OK;
out:
	if (run_open && st) {
		struct cs_error ignore = { 0 };

		rs = (struct store_run_stats){ "failed", totals.groups_ok, totals.groups_failed,
					       totals.requests, totals.retries, totals.throttled };
		store_run_finish(st, run_id, &rs, &ignore);
	}
	progress_free(prog);
	cli_signals_arm(NULL);
	if (disc) {
		for (i = 0; cfg && i < cfg->ninstances; i++)
			discovered_release(&disc[i]);
		free(disc);
	}
	free(results);
	free(targets);
	store_close(st);
	lock_release(&lock);
	free(db_real);
	http_client_free(http);
	identities_release(&ids);
	config_free(cfg);
out_args:
	cli_common_release(&a.common);
	return ret;
}
