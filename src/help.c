/*
 * help.c - the usage texts of `credsync --help`, `credsync help COMMAND` and COMMAND --help.
 * They follow the man page (contrib/man/credsync.1); change both together
 * (tests/integration/test_docs.py compares them).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct help_text {
	const char *cmd;
	const char *text;
};

static const char overview[] =
	"usage: credsync [-c FILE] [-d DB] [-v|-q] [--log-format text|json] COMMAND [ARGS]\n"
	"\n"
	"Keeps a SQLite inventory of the MQTT client IDs that hold per-device credentials on\n"
	"Alibaba Cloud's MQTT service (OnsMqtt ListDeviceCredentialClientId).\n"
	"\n"
	"commands:\n"
	"  sync       crawl every configured group and record one snapshot per group\n"
	"  diff       report client IDs added and removed between two snapshots\n"
	"  snapshots  list snapshots\n"
	"  prune      delete old snapshots, keeping what the kept ones contain\n"
	"  check      validate the config and credentials (--online: one page per group)\n"
	"  help       show help for a command\n"
	"\n"
	"global options:\n"
	"  -c, --config FILE     config file (default: $CREDSYNC_CONFIG, ./credsync.yaml,\n"
	"                        $XDG_CONFIG_HOME/credsync/config.yaml, /etc/credsync/config.yaml)\n"
	"  -d, --database DB     database file (overrides the config's 'database')\n"
	"  -v, --verbose         more detail on stderr (repeat for debug and trace)\n"
	"  -q, --quiet           errors only\n"
	"      --log-format FMT  text (default) or json (one object per line)\n"
	"      --help            this text;  --version  versions of credsync and its libraries\n"
	"\n"
	"exit status: 0 success, 1 failure (sync: a group failed), 2 diff --detailed-exitcode with\n"
	"changes, 64 usage, 75 database locked by another run, 77 credentials missing or rejected,\n"
	"78 configuration invalid.  See credsync(1).\n";

static const struct help_text texts[] = {
	{ "sync",
	  "usage: credsync sync [--instance ID]... [--group GID]... [--dry-run] [--restart]\n"
	  "                     [--wait DURATION] [--metrics-file PATH] [--[no-]progress]\n"
	  "\n"
	  "Crawls every page of every configured group (or those selected) into the database and\n"
	  "records one snapshot per group.  Throttling and transient faults are retried with\n"
	  "backoff; a crawl that fails never marks a device removed.  An interrupted crawl is\n"
	  "resumed by the next run.\n"
	  "\n"
	  "  --instance ID      only this instance (repeatable)\n"
	  "  --group GID        only this group (repeatable)\n"
	  "  --dry-run          crawl and report what would change; write nothing\n"
	  "  --restart          start every crawl over instead of resuming a checkpoint\n"
	  "  --wait DURATION    wait up to DURATION for another run's lock (default: exit 75)\n"
	  "  --metrics-file P   write Prometheus textfile metrics to P after the run\n"
	  "  --progress         show the progress display even when stderr is not a terminal\n"
	  "  --no-progress      never show it\n" },
	{ "diff",
	  "usage: credsync diff [--from REF] [--to REF] [--instance ID] [--group GID]\n"
	  "                     [--format text|json|csv|html] [-o FILE] [--detailed-exitcode]\n"
	  "\n"
	  "Reports the client IDs added and removed between two complete snapshots of each group.\n"
	  "Default: each group's latest complete snapshot against the one before it.\n"
	  "\n"
	  "REF: a snapshot id (17), a run (run:5), a date or UTC time (2026-11-27,\n"
	  "     2026-11-27T02:00:00Z: per group, its latest complete snapshot at or before it),\n"
	  "     an age (7d: the same, 7 days ago), latest, previous.\n"
	  "\n"
	  "  --format FMT          text (default), json, csv or html (one self-contained file)\n"
	  "  -o, --output FILE     write the report to FILE (atomically) instead of stdout\n"
	  "  --detailed-exitcode   exit 0 without changes, 2 with changes, 1 on error\n" },
	{ "snapshots",
	  "usage: credsync snapshots [--instance ID] [--group GID] [--limit N]\n"
	  "                          [--format text|json|csv]\n"
	  "\n"
	  "Lists snapshots, newest first: id, run, instance, group, status, time, client count,\n"
	  "added, removed, consistent, the identity that produced it (source kind and masked\n"
	  "AccessKeyId, or role ARN), error.\n" },
	{ "prune",
	  "usage: credsync prune (--keep-last N | --older-than DURATION) [--dry-run] [--vacuum]\n"
	  "                      [--wait DURATION]\n"
	  "\n"
	  "Deletes old snapshots and the interval data only they need.  What every kept snapshot\n"
	  "contains is unchanged, and each group's latest complete snapshot is always kept.\n"
	  "\n"
	  "  --keep-last N          keep the N newest snapshots of each group\n"
	  "  --older-than DURATION  delete snapshots finished more than DURATION ago (e.g. 90d)\n"
	  "  --dry-run              print what would be deleted\n"
	  "  --vacuum               compact the database file afterwards\n"
	  "  --wait DURATION        wait up to DURATION for a running sync's lock\n" },
	{ "check",
	  "usage: credsync check [--online]\n"
	  "\n"
	  "Validates the configuration, shows the metadata service the ECS RAM role source would\n"
	  "ask, and resolves credentials (fetching temporary ones from STS, the metadata service\n"
	  "or a credentials URI), printing per instance the identity it would use: kind, source,\n"
	  "role ARN, AccessKeyId masked, expiry (never the secret).  With --online, fetches one\n"
	  "page of every group and prints OK or the service's Code, Message and RequestId per\n"
	  "group.\n" },
	{ "help", "usage: credsync help [COMMAND]\n" },
};

void cli_usage(const char *cmd, FILE *f)
{
	size_t i;

	if (cmd) {
		for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
			if (!strcmp(texts[i].cmd, cmd)) {
				fputs(texts[i].text, f);
				return;
			}
		}
	}
	fputs(overview, f);
}

int cli_has_help(const char *cmd)
{
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (!strcmp(texts[i].cmd, cmd))
			return 1;
	return 0;
}
