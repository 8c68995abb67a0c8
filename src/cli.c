/* cli.c - option and config helpers shared by the commands; see cli.h. */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "history.h"
#include "http.h"
#include "report.h"

volatile sig_atomic_t cli_stop_signal;
static volatile sig_atomic_t stop_armed;
static struct http_client *volatile stop_http;

/*
 * Until a command arms it, a signal ends the process at once with 128 + the signal, as the
 * default action would but with an exit status a scheduler reads the same way; once armed
 * (a sync that has something to checkpoint), the first signal only asks to stop, and a
 * second one exits at once.
 */
static void on_stop_signal(int sig)
{
	if (!stop_armed || cli_stop_signal)
		_exit(128 + sig);
	cli_stop_signal = sig;
	if (stop_http)
		http_wakeup(stop_http);
}

void cli_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void cli_signals_arm(struct http_client *http)
{
	stop_http = http;
	stop_armed = 1;
}

int cli_stopped(struct cs_error *err)
{
	if (!cli_stop_signal)
		return 0;
	return cs_error_set(err, CS_ERR_INTERRUPTED, "interrupted");
}

int cli_global_option(struct cli_globals *g, int c, const char *arg, struct cs_error *err)
{
	switch (c) {
	case 'c':
		g->config_path = arg;
		return 1;
	case 'd':
		g->db_path = arg;
		return 1;
	case 'v':
		g->verbosity = g->verbosity < 0 ? 1 : g->verbosity + 1;
		return 1;
	case 'q':
		g->verbosity = -1;
		return 1;
	case CLI_OPT_LOG_FORMAT:
		if (!strcmp(arg, "text"))
			g->log_format = LOG_TEXT;
		else if (!strcmp(arg, "json"))
			g->log_format = LOG_JSON;
		else
			return cs_error_set(err, CS_ERR_USAGE,
					    "--log-format expects 'text' or 'json', not '%s'", arg);
		return 1;
	}
	return cs_error_set(err, CS_ERR_USAGE, "unknown option");
}

static int push(const char ***list, size_t *n, const char *s, struct cs_error *err)
{
	const char **p = realloc(*list, (*n + 1) * sizeof(*p));

	if (!p)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	p[(*n)++] = s;
	*list = p;
	return 0;
}

/* 1 when c was one of the shared options (and applied it), 0 when not, -1 on a bad value. */
static int shared_option(const struct cli_options *o, struct cli_common *common, int c,
			 const char *arg, struct cs_error *err)
{
	int html = !!(o->flags & CLI_HTML);

	switch (c) {
	case CLI_OPT_FORMAT:
		common->format = report_parse_format(arg, html ? REPORT_ALL : REPORT_LISTS);
		if (common->format < 0)
			return cs_error_set(err, CS_ERR_USAGE, "%s: --format expects %s, not '%s'",
					    o->cmd, html ? "text, json, csv, ndjson or html"
					    : "text, json, csv or ndjson", arg);
		return 1;
	case 'o':
		common->output = arg;
		return 1;
	case CLI_OPT_INSTANCE:
		return push(&common->instances, &common->ninstances, arg, err) < 0 ? -1 : 1;
	case CLI_OPT_GROUP:
		return push(&common->groups, &common->ngroups, arg, err) < 0 ? -1 : 1;
	}
	return 0;
}

static int is_global(int c)
{
	return c == 'c' || c == 'd' || c == 'v' || c == 'q' || c == CLI_OPT_LOG_FORMAT;
}

int cli_parse_options(const struct cli_options *o, int argc, char **argv,
		      struct cli_globals *g, struct cli_common *common, struct cs_error *err)
{
	static const struct option globals[] = { CLI_GLOBAL_LONG };
	static const struct option help = { "help", no_argument, NULL, 'h' };
	const size_t nglobals = sizeof(globals) / sizeof(globals[0]);
	struct option all[48];
	char shortopts[64];
	size_t n = 0;
	int c, rc;

	memset(common, 0, sizeof(*common));
	common->format = REPORT_TEXT;
	while (o->longopts[n].name)
		n++;
	if (nglobals + n + 2 > sizeof(all) / sizeof(all[0]) ||
	    strlen(o->shortopts) + sizeof(CLI_GLOBAL_SHORT) + 3 > sizeof(shortopts))
		return cs_error_set(err, CS_ERR_RUNTIME, "%s: too many options", o->cmd);
	memcpy(all, globals, sizeof(globals));
	memcpy(all + nglobals, o->longopts, n * sizeof(all[0]));
	all[nglobals + n] = help;
	memset(&all[nglobals + n + 1], 0, sizeof(all[0]));
	/* '+': the options end at the first operand, unless the command takes operands */
	snprintf(shortopts, sizeof(shortopts), "%s%s%sh", o->flags & CLI_OPERANDS ? "" : "+",
		 CLI_GLOBAL_SHORT, o->shortopts);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, all, NULL)) != -1) {
		if (c == 'h')
			return CMD_HELP;
		if (c == '?')
			return cs_error_set(err, CS_ERR_USAGE, "%s: unknown or incomplete option '%s'",
					    o->cmd, argv[optind - 1]);
		if (is_global(c))
			rc = cli_global_option(g, c, optarg, err);
		else if ((rc = shared_option(o, common, c, optarg, err)) == 0)
			rc = o->option ? o->option(o->arg, c, optarg, err) : 0;
		if (rc < 0)
			return -1;
	}
	if (!(o->flags & CLI_OPERANDS) && optind < argc)
		return cs_error_set(err, CS_ERR_USAGE, "%s: unexpected argument '%s'", o->cmd,
				    argv[optind]);
	return 0;
}

void cli_common_release(struct cli_common *common)
{
	free(common->instances);
	free(common->groups);
	common->instances = common->groups = NULL;
	common->ninstances = common->ngroups = 0;
}

int cli_select_groups(const char *cmd, struct store *st, const char *db_path,
		      const struct cli_common *common, struct group_row **rows, size_t *n,
		      struct cs_error *err)
{
	if (history_select_groups(st, common->instances, common->ninstances, common->groups,
				  common->ngroups, rows, n, err) < 0)
		return -1;
	if (!*n && (common->ninstances || common->ngroups))
		return cs_error_set(err, CS_ERR_USAGE, "%s: no group in %s matches the --instance "
				    "and --group given", cmd, db_path);
	return 0;
}

void cli_setup_logging(const struct cli_globals *g)
{
	enum log_level level = LOG_WARN;

	if (g->verbosity < 0)
		level = LOG_ERROR;
	else if (g->verbosity == 1)
		level = LOG_INFO;
	else if (g->verbosity == 2)
		level = LOG_DEBUG;
	else if (g->verbosity >= 3)
		level = LOG_TRACE;
	log_setup(level, g->log_format, stderr);
}

int cli_load_config(const struct cli_globals *g, struct config **cfg, struct cs_error *err)
{
	char *path = config_find(g->config_path);
	int rc;

	*cfg = NULL;
	if (!path)
		return cs_error_set(err, CS_ERR_CONFIG,
				    "no configuration file: pass -c FILE, set CREDSYNC_CONFIG, or create "
				    "./credsync.yaml, ~/.config/credsync/config.yaml or "
				    "/etc/credsync/config.yaml");
	rc = config_load_file(cfg, path, err);
	free(path);
	return rc;
}

int cli_database(const struct cli_globals *g, int need_config, struct config **cfg,
		 const char **db_path, struct cs_error *err)
{
	*cfg = NULL;
	*db_path = NULL;
	if (g->db_path && !need_config) {
		*db_path = g->db_path;
		return 0;
	}
	if (cli_load_config(g, cfg, err) < 0)
		return -1;
	*db_path = g->db_path ? g->db_path : (*cfg)->database;
	if (!*db_path)
		return cs_error_set(err, CS_ERR_CONFIG,
				    "%s: no 'database' is set; add one or pass -d DB", (*cfg)->path);
	return 0;
}
