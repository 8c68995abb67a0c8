/* cli.c - option and config helpers shared by the commands; see cli.h. */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"

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

int cli_common_option(const char *cmd, struct cli_globals *g, int c, char **argv,
		      struct cs_error *err)
{
	if (c == '?')
		return cs_error_set(err, CS_ERR_USAGE, "%s: unknown or incomplete option '%s'", cmd,
				    argv[optind - 1]);
	return cli_global_option(g, c, optarg, err) < 0 ? -1 : 0;
}

int cli_no_operands(const char *cmd, int argc, char **argv, struct cs_error *err)
{
	if (optind < argc)
		return cs_error_set(err, CS_ERR_USAGE, "%s: unexpected argument '%s'", cmd,
				    argv[optind]);
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
