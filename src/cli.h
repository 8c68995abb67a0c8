/*
 * cli.h - what main.c shares with the cmd_*.c files: global options, the command contract,
 * the one option parser (cli_parse_options), and the helpers every command uses to load its
 * config and find its database.
 *
 * A command returns a CMD_* status (>= 0) or -1 with err set; main.c alone turns either into
 * an exit status, prints the error, and prints the usage for CMD_HELP.
 */
#ifndef CREDSYNC_CLI_H
#define CREDSYNC_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "config.h"
#include "error.h"
#include "log.h"

enum cmd_status {
	CMD_OK = 0,
	CMD_FAILED = 1,   /* ran, and some of the work failed (sync: a group failed) */
	CMD_CHANGES = 2,  /* diff/audit --detailed-exitcode: there are changes (drift) */
	CMD_HELP = 3,     /* -h/--help was given: main prints the command's usage, exits 0 */
};

struct cli_globals {
	const char *config_path;   /* -c */
	const char *db_path;       /* -d */
	int verbosity;             /* +1 per -v, -1 for -q */
	enum log_format log_format;
};

/* Signal bookkeeping shared by long-running commands: the number of the signal that asked us
 * to stop, 0 while none did. */
extern volatile sig_atomic_t cli_stop_signal;

struct http_client;
/* Installs the SIGINT/SIGTERM handler (first thing in main): until armed, a signal exits at
 * once with 128 + its number. */
void cli_signals_install(void);
/* From now on the first signal only sets cli_stop_signal (and wakes http's poll, if given);
 * may be called again to name the client. */
void cli_signals_arm(struct http_client *http);
/* -1 with CS_ERR_INTERRUPTED set when a signal asked us to stop, else 0. */
int cli_stopped(struct cs_error *err);

/* Long options every command accepts besides its own (so `credsync sync -v` works).  Returns
 * 1 when c was one of them (and applied it), 0 when not, -1 on a bad value. */
int cli_global_option(struct cli_globals *g, int c, const char *arg, struct cs_error *err);
#define CLI_GLOBAL_SHORT "c:d:vq"
#define CLI_OPT_LOG_FORMAT 0x1001
#define CLI_GLOBAL_LONG \
	{ "config", required_argument, NULL, 'c' }, \
	{ "database", required_argument, NULL, 'd' }, \
	{ "verbose", no_argument, NULL, 'v' }, \
	{ "quiet", no_argument, NULL, 'q' }, \
	{ "log-format", required_argument, NULL, CLI_OPT_LOG_FORMAT }

/* The options some commands share: a command lists those it takes in its option table
 * with these values (and 'o' for -o, --output FILE), and cli_parse_options handles them. */
#define CLI_OPT_FORMAT 0x1002    /* --format FMT: text, json, csv, ndjson (html: CLI_HTML) */
#define CLI_OPT_INSTANCE 0x1003  /* --instance ID, repeatable */
#define CLI_OPT_GROUP 0x1004     /* --group GID, repeatable */

enum cli_parse_flags {
	CLI_HTML = 1 << 0,      /* --format also accepts html */
	CLI_OPERANDS = 1 << 1,  /* operands may stand among the options; the command reads them
				 * from argv[optind..] (without it, any is a usage error) */
};

/* What the shared options said. */
struct cli_common {
	int format;                 /* a REPORT_* value; REPORT_TEXT without --format */
	const char *output;         /* -o; NULL: stdout */
	const char **instances, **groups;  /* malloc'd arrays of argv strings, in order */
	size_t ninstances, ngroups;
};

/* One command's options: its table (shared ones included; the global options and -h,
 * --help are added), and option() for those that are its own alone. */
struct cli_options {
	const char *cmd;                /* names the command in usage errors */
	unsigned flags;                 /* enum cli_parse_flags */
	const char *shortopts;          /* short options besides the global ones, getopt style */
	const struct option *longopts;  /* { NULL } terminated */
	int (*option)(void *arg, int c, const char *value, struct cs_error *err);
	void *arg;
};

/* Parses argv (argv[0] is the command) into g, common and option(), in order: -h or --help
 * ends the parse at once; an unknown or incomplete option is a usage error naming it.
 * Returns 0, CMD_HELP, or -1 with err set.  Free common with cli_common_release. */
int cli_parse_options(const struct cli_options *o, int argc, char **argv,
		      struct cli_globals *g, struct cli_common *common, struct cs_error *err);
/* Frees what cli_parse_options allocated in common. */
void cli_common_release(struct cli_common *common);

struct store;
struct group_row;
/* The groups of st (at db_path) that common's --instance and --group select, all without
 * them; a selection that matches none is a usage error of cmd.  Free *rows with
 * history_groups_free.  0, or -1 with err set. */
int cli_select_groups(const char *cmd, struct store *st, const char *db_path,
		      const struct cli_common *common, struct group_row **rows, size_t *n,
		      struct cs_error *err);

/* Applies the verbosity and format to the log module. */
void cli_setup_logging(const struct cli_globals *g);

/* Loads the config found by PRODUCT.md's search order. */
int cli_load_config(const struct cli_globals *g, struct config **cfg, struct cs_error *err);

/* The database path: -d, else the config's `database`.  When required_config is 0 and -d
 * is given, no config is needed at all (diff and snapshots only read the database). */
int cli_database(const struct cli_globals *g, int need_config, struct config **cfg,
		 const char **db_path, struct cs_error *err);

/* Prints the usage of cmd (NULL: the overview) to f. */
void cli_usage(const char *cmd, FILE *f);
/* 1 when cmd has a help text (is a command). */
int cli_has_help(const char *cmd);

/* The commands (one cmd_*.c each): argv[0] is the command's name; 0, CMD_HELP, or -1 with
 * err for main.c to report and map to the exit status once. */
int cmd_sync(int argc, char **argv, struct cli_globals *g, struct cs_error *err);
int cmd_diff(int argc, char **argv, struct cli_globals *g, struct cs_error *err);
int cmd_snapshots(int argc, char **argv, struct cli_globals *g, struct cs_error *err);
int cmd_prune(int argc, char **argv, struct cli_globals *g, struct cs_error *err);
int cmd_check(int argc, char **argv, struct cli_globals *g, struct cs_error *err);
int cmd_clients(int argc, char **argv, struct cli_globals *g, struct cs_error *err);
int cmd_history(int argc, char **argv, struct cli_globals *g, struct cs_error *err);
int cmd_audit(int argc, char **argv, struct cli_globals *g, struct cs_error *err);
int cmd_init(int argc, char **argv, struct cli_globals *g, struct cs_error *err);
int cmd_complete(int argc, char **argv, struct cli_globals *g, struct cs_error *err);

#endif
