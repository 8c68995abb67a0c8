/* cmd_snapshots.c - `credsync snapshots`: the snapshot list, newest first. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "history.h"
#include "report.h"

enum { O_LIMIT = 0x2201 };

static int on_option(void *arg, int c, const char *v, struct cs_error *err)
{
	long long *limit = arg;
	char *end;

	if (c == O_LIMIT) {
		*limit = strtoll(v, &end, 10);
		if (end == v || *end || *limit < 0)
			return cs_error_set(err, CS_ERR_USAGE,
					    "snapshots: --limit expects a count, not '%s'", v);
	}
	return 0;
}

int cmd_snapshots(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	static const struct option longopts[] = {
		{ "instance", required_argument, NULL, CLI_OPT_INSTANCE },
		{ "group", required_argument, NULL, CLI_OPT_GROUP },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "format", required_argument, NULL, CLI_OPT_FORMAT },
		{ NULL, 0, NULL, 0 },
	};
	long long limit = 0;
	const struct cli_options o = { "snapshots", 0, "", longopts, on_option, &limit };
	struct cli_common c;
	const char *instance = NULL, *group = NULL, *db_path;
	struct snap_writer w = { stdout, REPORT_TEXT, 0 };
	struct config *cfg = NULL;
	struct store *st = NULL;
	int ret;

	ret = cli_parse_options(&o, argc, argv, g, &c, err);
	if (ret != 0)
		goto out;
	ret = -1;
	/* one instance and one group at the most: the last given counts */
	if (c.ninstances)
		instance = c.instances[c.ninstances - 1];
	if (c.ngroups)
		group = c.groups[c.ngroups - 1];
	w.fmt = c.format;
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
	cli_common_release(&c);
	return ret;
}
