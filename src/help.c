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
	"  clients    list who held a credential at a REF\n"
	"  history    every event of a client ID, device ID or glob\n"
	"  audit      compare the inventory with an asset register\n"
	"  init       write a config listing the account's instances and groups\n"
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
	"exit status: 0 success, 1 failure (sync: a group failed), 2 diff/audit --detailed-exitcode\n"
	"with changes or drift, 64 usage, 75 database locked by another run, 77 credentials missing or rejected,\n"
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
	  "                     [--format text|json|csv|ndjson|html] [-o FILE] [--detailed-exitcode]\n"
	  "\n"
	  "Reports the client IDs added and removed between two complete snapshots of each group.\n"
	  "Default: each group's latest complete snapshot against the one before it.\n"
	  "\n"
	  "REF: a snapshot id (17), a run (run:5), a date or UTC time (2026-11-27,\n"
	  "     2026-11-27T02:00:00Z: per group, its latest complete snapshot at or before it),\n"
	  "     an age (7d: the same, 7 days ago), latest, previous.\n"
	  "\n"
	  "  --format FMT          text (default), json, csv, ndjson (one object per line) or html\n"
	  "                        (one self-contained file)\n"
	  "  -o, --output FILE     write the report to FILE (atomically) instead of stdout\n"
	  "  --detailed-exitcode   exit 0 without changes, 2 with changes, 1 on error\n" },
	{ "snapshots",
	  "usage: credsync snapshots [--instance ID] [--group GID] [--limit N]\n"
	  "                          [--format text|json|csv|ndjson]\n"
	  "\n"
	  "Lists snapshots, newest first: id, run, instance, group, status, time, client count,\n"
	  "added, removed, consistent, the identity that produced it (source kind and masked\n"
	  "AccessKeyId, or role ARN), error.\n" },
	{ "prune",
	  "usage: credsync prune [--keep-last N] [--older-than DURATION] [--dry-run] [--vacuum]\n"
	  "                      [--wait DURATION]\n"
	  "\n"
	  "Deletes old snapshots and the interval data only they need.  What every kept snapshot\n"
	  "contains is unchanged, and each group's latest complete snapshot is always kept.\n"
	  "Give one rule or both (then a snapshot is kept while either keeps it).  The config's\n"
	  "retention: { keep_last: N, keep_for: DURATION } applies the same after every sync.\n"
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
	{ "clients",
	  "usage: credsync clients [--at REF] [--instance ID]... [--group GID]... [--match GLOB]\n"
	  "                        [--format text|json|csv|ndjson] [-o FILE]\n"
	  "\n"
	  "Lists the members of each selected group at REF (default latest) with the snapshot\n"
	  "each comes from.  A group with no complete snapshot at REF is reported as such.\n"
	  "\n"
	  "  --at REF           as for diff: a time or age means each group's latest complete\n"
	  "                     snapshot at or before it\n"
	  "  --instance ID      only this instance (repeatable)\n"
	  "  --group GID        only this group (repeatable)\n"
	  "  --match GLOB       only IDs whose client ID or device ID matches GLOB\n"
	  "  --format FMT       text (default; tab-separated), json, csv or ndjson\n"
	  "  -o, --output FILE  write to FILE (atomically) instead of stdout\n" },
	{ "history",
	  "usage: credsync history ID|GLOB [--instance ID]... [--group GID]...\n"
	  "                        [--format text|json|csv|ndjson] [-o FILE]\n"
	  "\n"
	  "Every retained event (added, removed, re-added, with snapshot, run and time) of a\n"
	  "client ID, a device ID (after @@@) or the IDs a glob (*, ?, [) matches, and the periods\n"
	  "during which it held a credential.  Exit 1 when nothing matches.  Says \"history\n"
	  "before snapshot N was pruned\" where older snapshots were pruned.\n"
	  "\n"
	  "  --instance ID      only this instance (repeatable)\n"
	  "  --group GID        only this group (repeatable)\n"
	  "  --format FMT       text (default), json, csv or ndjson\n"
	  "  -o, --output FILE  write to FILE (atomically) instead of stdout\n" },
	{ "audit",
	  "usage: credsync audit --expected FILE [--column NAME] [--at REF] [--by device|client]\n"
	  "                      [--instance ID]... [--group GID]...\n"
	  "                      [--format text|json|csv|ndjson|html] [-o FILE] [--detailed-exitcode]\n"
	  "\n"
	  "Compares the inventory at REF (default latest) with an asset register: unexpected\n"
	  "(holds a credential, not in the register) per group, missing (in the register, holds\n"
	  "none), and counts.  A group with no complete snapshot at REF makes it exit 1.\n"
	  "\n"
	  "  --expected FILE      one ID per line ('#' comments; - for stdin), or CSV with --column\n"
	  "  --column NAME        read FILE as CSV, IDs from the column NAME of its header\n"
	  "  --at REF             as for clients\n"
	  "  --by device|client   match device IDs (default; the part after @@@) or client IDs\n"
	  "  --instance ID        only this instance (repeatable)\n"
	  "  --group GID          only this group (repeatable)\n"
	  "  --format FMT         text (default), json, csv, ndjson or html\n"
	  "  -o, --output FILE    write the report to FILE (atomically) instead of stdout\n"
	  "  --detailed-exitcode  exit 0 when clean, 2 with drift, 1 on error\n" },
	{ "init",
	  "usage: credsync init (--region R... | --all-regions) [--groups-all] [-o FILE]\n"
	  "                     [--force]\n"
	  "\n"
	  "Lists the account's MQTT instances with ListInstances in the given regions and each\n"
	  "instance's groups with ListGroupId, then writes a commented config (atomically, mode\n"
	  "0600) and prints the next two commands.  A region or instance that fails is reported\n"
	  "and left out; the rest is written (exit 1 when something failed).  Endpoints are\n"
	  "https://onsmqtt.REGION.aliyuncs.com, or $CREDSYNC_ENDPOINT_TEMPLATE with {region}\n"
	  "replaced (then each instance's endpoint is written too).\n"
	  "\n"
	  "  --region R         look in region R (repeatable), e.g. cn-hangzhou\n"
	  "  --all-regions      look in every region credsync knows (see credsync(1))\n"
	  "  --groups-all       write groups: all (listed at every sync) instead of the list\n"
	  "  -o, --output FILE  the file to write (default: -c, $CREDSYNC_CONFIG, else\n"
	  "                     /etc/credsync/config.yaml as root, ~/.config/credsync/config.yaml)\n"
	  "  --force            replace FILE when it exists (default: refuse)\n"
	  "\n"
	  "The database is -d DB, else /var/lib/credsync/credsync.db as root, else\n"
	  "~/.local/share/credsync/credsync.db; its directory is created.\n" },
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
