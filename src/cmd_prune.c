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

int cmd_prune(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	enum { O_KEEP = 0x2301, O_OLDER, O_DRY, O_VACUUM, O_WAIT };
	static const struct option longopts[] = {
		CLI_GLOBAL_LONG,
		{ "keep-last", required_argument, NULL, O_KEEP },
		{ "older-than", required_argument, NULL, O_OLDER },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "vacuum", no_argument, NULL, O_VACUUM },
		{ "wait", required_argument, NULL, O_WAIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config *cfg = NULL;
	struct store *st = NULL;
	struct run_lock lock = { -1, NULL };
	struct prune_result res;
	const char *db_path;
	char *db_real = NULL;
	long long keep = 0;
	int64_t older_ms = 0, wait_ms = 0;
	int dry = 0, vacuum = 0, c, ret = -1;
	char *end;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+" CLI_GLOBAL_SHORT "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_KEEP:
			keep = strtoll(optarg, &end, 10);
			if (end == optarg || *end || keep < 1)
				return cs_error_set(err, CS_ERR_USAGE,
						    "prune: --keep-last expects a count of at least 1, not '%s'",
						    optarg);
			break;
		case O_OLDER:
			if (util_parse_duration(optarg, &older_ms) < 0 || older_ms <= 0)
				return cs_error_set(err, CS_ERR_USAGE,
						    "prune: --older-than expects a duration like 90d, not '%s'",
						    optarg);
			break;
		case O_WAIT:
			if (util_parse_duration(optarg, &wait_ms) < 0)
				return cs_error_set(err, CS_ERR_USAGE,
						    "prune: --wait expects a duration like 30s, not '%s'", optarg);
			break;
		case O_DRY: dry = 1; break;
		case O_VACUUM: vacuum = 1; break;
		case 'h':
			cli_usage("prune", stdout);
			return CMD_OK;
		default:
			if (cli_common_option("prune", g, c, argv, err) < 0)
				return -1;
		}
	}
	if (cli_no_operands("prune", argc, argv, err) < 0)
		return -1;
	if (!keep == !older_ms)
		return cs_error_set(err, CS_ERR_USAGE,
				    "prune: give exactly one of --keep-last N and --older-than DURATION");
	cli_setup_logging(g);
	if (cli_database(g, 0, &cfg, &db_path, err) < 0)
		goto out;
	/* the lock of the file itself, whatever name leads to it (as sync takes it) */
	if (store_locate(db_path, &db_real, err) < 0 ||
	    lock_acquire(&lock, db_real, wait_ms, err) < 0 ||
	    store_open(&st, db_path, STORE_WRITE, err) < 0)
		goto out;
	if (history_prune(st, keep, older_ms ? util_now_epoch() - older_ms / 1000 : 0, dry, &res,
			  err) < 0)
		goto out;
	printf("%s %" PRId64 " snapshot(s), %" PRId64 " interval row(s) no kept snapshot needs, and %"
	       PRId64 " run(s) left without snapshots\n", dry ? "would delete" : "deleted",
	       res.snapshots, res.intervals, res.runs);
	if (vacuum && !dry) {
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
	return ret;
}
