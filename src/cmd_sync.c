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

/* Everything one sync holds, so that each step below is a function of it and one
 * release frees whatever the steps got to. */
struct sync_run {
	/* options */
	struct cli_common common;   /* --instance, --group */
	struct plan_filter f;       /* points into common */
	int dry_run, restart;
	int64_t wait_ms;
	const char *metrics_file;   /* --metrics-file, else the config's */
	int progress;               /* -1 auto (terminal), 0 off, 1 on */
	/* what the steps set up */
	struct config *cfg;
	const char *db_path;
	char *db_real;
	struct identities ids;
	struct http_client *http;
	struct run_lock lock;
	struct store *st;
	struct discovered *disc;    /* per cfg instance */
	int disc_failed;            /* instances whose groups could not be listed */
	struct crawl_target *targets;
	size_t n;
	int planned;
	struct crawl_result *results;
	struct crawl_totals totals;
	int64_t run_id, started, started_epoch;
	int run_open;               /* run_begin done, run_finish not yet */
	int crawl_rc;               /* crawl_run's result: -1 keeps err for the exit status */
	struct prune_result pruned;
	int retained;
};

enum { O_DRY = 0x2001, O_RESTART, O_WAIT, O_METRICS, O_PROGRESS, O_NO_PROGRESS };

static int on_option(void *arg, int c, const char *v, struct cs_error *err)
{
	struct sync_run *r = arg;

	switch (c) {
	case O_DRY:
		r->dry_run = 1;
		break;
	case O_RESTART:
		r->restart = 1;
		break;
	case O_WAIT:
		if (util_parse_duration(v, &r->wait_ms) < 0)
			return cs_error_set(err, CS_ERR_USAGE,
					    "sync: --wait expects a duration like 30s or 5m, not '%s'", v);
		break;
	case O_METRICS:
		r->metrics_file = v;
		break;
	case O_PROGRESS:
		r->progress = 1;
		break;
	case O_NO_PROGRESS:
		r->progress = 0;
		break;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct cli_globals *g, struct sync_run *r,
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
	const struct cli_options o = { "sync", 0, "", longopts, on_option, r };
	int rc;

	r->progress = -1;
	rc = cli_parse_options(&o, argc, argv, g, &r->common, err);
	r->f.instances = r->common.instances;
	r->f.ninstances = r->common.ninstances;
	r->f.groups = r->common.groups;
	r->f.ngroups = r->common.ngroups;
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
static void no_identity_could_run(const struct crawl_result *r, size_t n,
				  const struct crawl_totals *totals, int *rc, struct cs_error *err)
{
	size_t i;

	if (!n || totals->groups_ok || *rc < 0)
		return;
	for (i = 0; i < n; i++)
		if (strncmp(r[i].code, "Credentials", 11) &&
		    retry_classify_code(r[i].code) != FAIL_CREDENTIALS)
			return;
	cs_error_set(err, CS_ERR_CREDENTIALS, "no group could run: %s", r[0].message);
	*rc = -1;
}

static int load_config(const struct cli_globals *g, struct sync_run *r, struct cs_error *err)
{
	if (cli_database(g, 1, &r->cfg, &r->db_path, err) < 0)
		return -1;
	if (!r->metrics_file)
		r->metrics_file = r->cfg->metrics_file;
	r->disc = calloc(r->cfg->ninstances ? r->cfg->ninstances : 1, sizeof(*r->disc));
	if (!r->disc)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	return 0;
}

/* The targets, planned once (they point into cfg and disc). */
static int plan(struct sync_run *r, struct cs_error *err)
{
	if (r->planned)
		return 0;
	if (plan_targets(r->cfg, &r->f, r->disc, &r->targets, &r->n, err) < 0) {
		cs_error_prefix(err, "sync: ");
		return -1;
	}
	r->planned = 1;
	return 0;
}

/* The selections are checked before anything is created: the whole plan when the config
 * lists every group, only the --instance values when a selected instance has `groups: all`
 * (its groups can only be checked once discovery has listed them). */
static int plan_early(struct sync_run *r, struct cs_error *err)
{
	if (!needs_discovery(r->cfg, &r->f))
		return plan(r, err);
	if (plan_check_instances(r->cfg, &r->f, err) < 0) {
		cs_error_prefix(err, "sync: ");
		return -1;
	}
	return 0;
}

static int resolve_identities(struct sync_run *r, struct cs_error *err)
{
	int rc;

	creds_set_stop(&cli_stop_signal);
	rc = identities_resolve(&r->ids, r->cfg, r->f.instances, r->f.ninstances, err);
	creds_wipe_environment();
	if (rc < 0)
		return -1;
	if (r->ids.top)
		log_msg(LOG_DEBUG, NULL, "credentials from %s (%s)", r->ids.top->source,
			r->ids.top->identity);
	if (http_client_new(&r->http, err) < 0)
		return -1;
	cli_signals_arm(r->http);
	return 0;
}

/* Lock, open, check and repair the database, then begin the run. */
static int open_store(struct sync_run *r, struct cs_error *err)
{
	int64_t recovered = 0;

	/* every name of the database shares one lock: the lock is taken on its real path, and
	 * a file with two hard links (two WALs) is refused before anything is written */
	if (cli_stopped(err) < 0 || (!r->dry_run && store_locate(r->db_path, &r->db_real, err) < 0))
		return -1;
	if (!r->dry_run && lock_acquire(&r->lock, r->db_real, r->wait_ms, err) < 0)
		return -1;
	if (cli_stopped(err) < 0 ||
	    store_open(&r->st, r->db_path, r->dry_run ? STORE_DRYRUN : STORE_WRITE, err) < 0)
		return -1;
	/* a damaged file is refused before any page is fetched into it */
	if (!r->dry_run && store_quick_check(r->st, err) < 0)
		return -1;
	if (!r->dry_run) {
		if (store_recover(r->st, &recovered, err) < 0)
			return -1;
		if (recovered)
			log_msg(LOG_INFO, NULL,
				"%" PRId64 " snapshot(s) of an earlier run that was stopped are marked failed",
				recovered);
	}
	if (cli_stopped(err) < 0 || store_run_begin(r->st, &r->run_id, err) < 0)
		return -1;
	r->run_open = 1;
	return 0;
}

static int discover(struct sync_run *r, struct cs_error *err)
{
	size_t i;

	if (discover_all_for(r->cfg, r->f.instances, r->f.ninstances, r->http, identities_for,
			     &r->ids, r->ids.top, r->st, r->run_id, &cli_stop_signal, r->disc,
			     err) < 0)
		return -1;
	for (i = 0; i < r->cfg->ninstances; i++)
		r->disc_failed += r->disc[i].failed;
	return 0;
}

/* Crawls the targets.  -1 only when the database itself failed (nothing more can be
 * recorded); a crawl that failed otherwise leaves crawl_rc -1 and err for the exit status,
 * and the run is still recorded. */
static int crawl(const struct cli_globals *g, struct sync_run *r, struct cs_error *err)
{
	struct crawl_opts opts;
	struct crawl_observer observer;
	struct progress *prog = NULL;

	r->results = calloc(r->n ? r->n : 1, sizeof(*r->results));
	if (!r->results)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	memset(&opts, 0, sizeof(opts));
	opts.run_id = r->run_id;
	opts.restart = r->restart;
	opts.checkpoint_max_age_s = r->cfg->checkpoint_max_age_ms / 1000;
	opts.finalize_max_age_s = r->cfg->finalize_max_age_ms / 1000;
	opts.retry_budget = r->cfg->defaults.retry_budget;
	opts.stop = &cli_stop_signal;
	opts.creds_for = identities_for;
	opts.creds_arg = &r->ids;
	if (r->progress == 1 || (r->progress == -1 && isatty(STDERR_FILENO) && g->verbosity >= 0 &&
				 g->log_format == LOG_TEXT)) {
		if (progress_new(&prog, stderr, r->targets, r->n) == 0) {
			observer.on_update = progress_update;
			observer.arg = prog;
			opts.observer = &observer;
		}
	}
	log_msg(LOG_INFO, NULL, "run %" PRId64 ": crawling %zu group(s)%s", r->run_id, r->n,
		r->dry_run ? " (dry run)" : "");
	r->crawl_rc = crawl_run(r->st, r->http, r->ids.top, r->targets, r->n, &opts, r->results,
				&r->totals, err);
	progress_free(prog);
	record_identities(r->st, &r->ids, r->targets, r->results, r->n);
	no_identity_could_run(r->results, r->n, &r->totals, &r->crawl_rc, err);
	if (r->crawl_rc < 0 && err->kind != CS_ERR_CREDENTIALS && err->kind != CS_ERR_INTERRUPTED &&
	    r->totals.groups_ok + r->totals.groups_failed < (int64_t)r->n)
		return -1;
	/* an instance whose groups could not be listed counts as a failed group */
	r->totals.groups_failed += r->disc_failed;
	return 0;
}

static struct store_run_stats run_stats(const char *status, const struct crawl_totals *t)
{
	struct store_run_stats rs = { status, t->groups_ok, t->groups_failed, t->requests,
				      t->retries, t->throttled };

	return rs;
}

static int finish_run(struct sync_run *r, struct cs_error *err)
{
	const struct crawl_totals *t = &r->totals;
	struct store_run_stats rs = run_stats(t->groups_failed == 0 && r->crawl_rc == 0
					      ? "complete" : t->groups_ok ? "partial" : "failed", t);
	struct cs_error ferr = { 0 };

	/* a failed crawl keeps its own error: this one only when the crawl had none */
	if (store_run_finish(r->st, r->run_id, &rs, &ferr) < 0 && r->crawl_rc == 0) {
		*err = ferr;
		return -1;
	}
	/* the run's WAL back into the file, and the file shrunk to nothing */
	if (store_wal_checkpoint(r->st, 1, &ferr) < 0)
		log_msg(LOG_WARN, NULL, "%s", ferr.msg);
	r->run_open = 0;
	return 0;
}

/* Retention: exactly `prune` with the config's policy, under this run's lock, after a run
 * that completed some group (prune never deletes a group's latest complete one). */
static int retention(struct sync_run *r, struct cs_error *err)
{
	const struct config *cfg = r->cfg;

	if (r->crawl_rc < 0 || r->dry_run || r->totals.groups_ok <= 0 ||
	    !(cfg->retention_keep_last || cfg->retention_keep_for_ms))
		return 0;
	if (history_prune(r->st, cfg->retention_keep_last, cfg->retention_keep_for_ms
			  ? util_now_epoch() - cfg->retention_keep_for_ms / 1000 : 0, 0,
			  &r->pruned, err) < 0) {
		cs_error_prefix(err, "sync: retention: ");
		return -1;
	}
	r->retained = 1;
	return 0;
}

/* A metrics file that cannot be written is logged: the run itself is recorded. */
static void write_metrics(struct sync_run *r)
{
	struct metrics_run m = {
		.run_id = r->run_id, .started_epoch = r->started_epoch,
		.duration_ms = util_mono_ms() - r->started, .targets = r->targets,
		.results = r->results, .n = r->n, .totals = &r->totals,
		.ok = r->crawl_rc == 0 && !r->totals.groups_failed,
		.retention = r->retained, .pruned_snapshots = r->pruned.snapshots,
		.pruned_runs = r->pruned.runs,
	};
	struct cs_error merr = { 0 };
	const struct creds *idl[64];

	m.nidentities = identities_list(&r->ids, idl, sizeof(idl) / sizeof(idl[0]));
	m.identities = idl;
	/* a failed run reports when the last good one was, from the database */
	if (store_last_success(r->st, &m.last_success_epoch, &merr) < 0 ||
	    metrics_write(r->metrics_file, &m, &merr) < 0)
		log_msg(LOG_ERROR, NULL, "%s", merr.msg);
}

/* What a person reads: the would-be changes of a dry run, and the run's summary. */
static void report(const struct cli_globals *g, const struct sync_run *r)
{
	if (r->dry_run)
		print_dry_run(r->targets, r->results, r->n);
	print_summary(g, r->run_id, r->results, r->n, &r->totals, util_mono_ms() - r->started,
		      r->retained ? &r->pruned : NULL);
}

static void sync_release(struct sync_run *r)
{
	size_t i;

	if (r->run_open && r->st) {
		struct store_run_stats rs = run_stats("failed", &r->totals);
		struct cs_error ignore = { 0 };

		store_run_finish(r->st, r->run_id, &rs, &ignore);
	}
	cli_signals_arm(NULL);
	if (r->disc) {
		for (i = 0; r->cfg && i < r->cfg->ninstances; i++)
			discovered_release(&r->disc[i]);
		free(r->disc);
	}
	free(r->results);
	free(r->targets);
	store_close(r->st);
	lock_release(&r->lock);
	free(r->db_real);
	http_client_free(r->http);
	identities_release(&r->ids);
	config_free(r->cfg);
	cli_common_release(&r->common);
}

int cmd_sync(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	struct sync_run r;
	int ret;

	memset(&r, 0, sizeof(r));
	r.lock.fd = -1;
	r.started = util_mono_ms();
	r.started_epoch = util_now_epoch();
	/* from here a signal asks to stop; each step below checks before it creates anything */
	cli_signals_arm(NULL);
	ret = parse_args(argc, argv, g, &r, err);
	if (ret != 0)
		goto out;
	cli_setup_logging(g);
	ret = -1;
	/* what can be refused without side effects (config, selections, credentials) comes
	 * before the lock file or the database is created */
	if (load_config(g, &r, err) < 0 || plan_early(&r, err) < 0 ||
	    resolve_identities(&r, err) < 0 || open_store(&r, err) < 0 || discover(&r, err) < 0 ||
	    plan(&r, err) < 0 || crawl(g, &r, err) < 0 || finish_run(&r, err) < 0 ||
	    retention(&r, err) < 0)
		goto out;
	if (r.metrics_file && !r.dry_run)
		write_metrics(&r);
	report(g, &r);
	if (r.crawl_rc == 0)
		ret = r.totals.groups_failed ? CMD_FAILED : CMD_OK;
out:
	sync_release(&r);
	return ret;
}
