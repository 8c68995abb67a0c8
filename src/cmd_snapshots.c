/* cmd_snapshots.c - `credsync snapshots`: the snapshot list, newest first. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "history.h"
#include "report.h"

int cmd_snapshots(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	enum { O_INSTANCE = 0x2201, O_GROUP, O_LIMIT, O_FORMAT };
	static const struct option longopts[] = {
		CLI_GLOBAL_LONG,
		{ "instance", required_argument, NULL, O_INSTANCE },
		{ "group", required_argument, NULL, O_GROUP },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *instance = NULL, *group = NULL, *db_path;
	struct snap_writer w = { stdout, REPORT_TEXT, 0 };
	struct config *cfg = NULL;
	struct store *st = NULL;
	long long limit = 0;
	char *end;
	int c, rc, ret = -1;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+" CLI_GLOBAL_SHORT "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_INSTANCE: instance = optarg; break;
		case O_GROUP: group = optarg; break;
		case O_LIMIT:
			limit = strtoll(optarg, &end, 10);
			if (end == optarg || *end || limit < 0)
				return cs_error_set(err, CS_ERR_USAGE,
						    "snapshots: --limit expects a count, not '%s'", optarg);
			break;
		case O_FORMAT:
			rc = report_parse_format(optarg, REPORT_LISTS);
			if (rc < 0)
				return cs_error_set(err, CS_ERR_USAGE,
						    "snapshots: --format expects text, json, csv or ndjson, not '%s'",
						    optarg);
			w.fmt = rc;
			break;
		case 'h':
			cli_usage("snapshots", stdout);
			return CMD_OK;
		default:
			if (cli_common_option("snapshots", g, c, argv, err) < 0)
				return -1;
		}
	}
	if (cli_no_operands("snapshots", argc, argv, err) < 0)
		return -1;
	cli_setup_logging(g);
	if (cli_database(g, 0, &cfg, &db_path, err) < 0 ||
	    store_open(&st, db_path, STORE_READ, err) < 0)
		goto out;
	report_snapshots_begin(&w);
	if (history_snapshots(st, instance, group, limit, report_snapshots_row, &w, err) < 0)
		goto out;
	report_snapshots_end(&w);
	if (fflush(stdout) != 0) {
		cs_error_set(err, CS_ERR_RUNTIME, "cannot write to standard output");
		goto out;
	}
	ret = CMD_OK;
out:
	store_close(st);
	config_free(cfg);
	return ret;
}
