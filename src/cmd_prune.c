/*
 * cmd_prune.c - `credsync prune`: delete old snapshots under the run lock, keeping what
 * every kept snapshot contains (see history_prune).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "history.h"
#include "lock.h"
#include "util.h"

enum { O_KEEP = 0x2301, O_OLDER, O_DRY, O_VACUUM, O_WAIT };

struct prune_args {
	long long keep;
	int64_t older_ms, wait_ms;
	int dry, vacuum;
};

static int on_option(void *arg, int c, const char *v, struct cs_error *err)
{
	struct prune_args *a = arg;
	char *end;

	switch (c) {
	case O_KEEP:
		a->keep = strtoll(v, &end, 10);
		if (end == v || *end || a->keep < 1)
			return cs_error_set(err, CS_ERR_USAGE,
					    "prune: --keep-last expects a count of at least 1, not '%s'",
					    v);
		break;
	case O_OLDER:
		if (util_parse_duration(v, &a->older_ms) < 0 || a->older_ms <= 0)
			return cs_error_set(err, CS_ERR_USAGE,
					    "prune: --older-than expects a duration like 90d, not '%s'",
					    v);
		break;
	case O_WAIT:
		if (util_parse_duration(v, &a->wait_ms) < 0)
			return cs_error_set(err, CS_ERR_USAGE,
					    "prune: --wait expects a duration like 30s, not '%s'", v);
		break;
	case O_DRY: a->dry = 1; break;
	case O_VACUUM: a->vacuum = 1; break;
	}
	return 0;
}

int cmd_prune(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	static const struct option longopts[] = {
		{ "keep-last", required_argument, NULL, O_KEEP },
		{ "older-than", required_argument, NULL, O_OLDER },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "vacuum", no_argument, NULL, O_VACUUM },
		{ "wait", required_argument, NULL, O_WAIT },
		{ NULL, 0, NULL, 0 },
	};
	struct prune_args a = { 0, 0, 0, 0, 0 };
	const struct cli_options o = { "prune", 0, "", longopts, on_option, &a };
	struct cli_common common;
	struct config *cfg = NULL;
	struct store *st = NULL;
	struct run_lock lock = { -1, NULL };
	struct prune_result res;
	const char *db_path;
	char *db_real = NULL;
	int ret;

	ret = cli_parse_options(&o, argc, argv, g, &common, err);
	if (ret != 0)
		goto out;
	ret = -1;
	if (!a.keep && !a.older_ms) {
		cs_error_set(err, CS_ERR_USAGE,
			     "prune: give --keep-last N, --older-than DURATION, or both (then a "
			     "snapshot is kept while either keeps it)");
		goto out;
	}
	cli_setup_logging(g);
	if (cli_database(g, 0, &cfg, &db_path, err) < 0)
		goto out;
	/* the lock of the file itself, whatever name leads to it (as sync takes it) */
	if (store_locate(db_path, &db_real, err) < 0 ||
	    lock_acquire(&lock, db_real, a.wait_ms, err) < 0 ||
	    store_open(&st, db_path, STORE_WRITE, err) < 0)
		goto out;
	if (history_prune(st, a.keep, a.older_ms ? util_now_epoch() - a.older_ms / 1000 : 0, a.dry,
			  &res, err) < 0)
		goto out;
	printf("%s %" PRId64 " snapshot(s), %" PRId64 " interval row(s) no kept snapshot needs, and %"
	       PRId64 " run(s) left without snapshots\n", a.dry ? "would delete" : "deleted",
	       res.snapshots, res.intervals, res.runs);
	if (a.vacuum && !a.dry) {
		if (store_vacuum(st, err) < 0)
			goto out;
		printf("vacuumed %s\n", db_path);
	}
	ret = CMD_OK;
out:
	store_close(st);
	lock_release(&lock);
	free(db_real);
	config_free(cfg);
	cli_common_release(&common);
	return ret;
}
