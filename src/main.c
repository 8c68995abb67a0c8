/*
 * main.c - the command table and the only place that turns results into exit statuses.
 *
 * Global options come before the command (git's convention); each command also accepts them
 * among its own.  Errors are printed here, once.
 */
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <yaml.h>

#include "cli.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv, struct cli_globals *g, struct cs_error *err);
};

static const struct command commands[] = {
	{ "sync", cmd_sync },
	{ "diff", cmd_diff },
	{ "snapshots", cmd_snapshots },
	{ "prune", cmd_prune },
	{ "check", cmd_check },
	{ "clients", cmd_clients },
	{ "history", cmd_history },
	{ "audit", cmd_audit },
	{ "init", cmd_init },
	/* hidden: the words the shell completion scripts offer */
	{ "__complete", cmd_complete },
};

static int exit_status(const struct cs_error *err)
{
	switch (err->kind) {
	case CS_ERR_NONE:
		return 0;
	case CS_ERR_USAGE:
		return EX_USAGE;
	case CS_ERR_CONFIG:
		return EX_CONFIG;
	case CS_ERR_CREDENTIALS:
		return EX_NOPERM;
	case CS_ERR_LOCKED:
		return EX_TEMPFAIL;
	case CS_ERR_INTERRUPTED:
		return 128 + (cli_stop_signal ? cli_stop_signal : 2);
	case CS_ERR_RUNTIME:
	case CS_ERR_NOMEM:
		return 1;
	}
	return 1;
}

static void print_version(void)
{
	curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	printf("credsync %s\n", CREDSYNC_VERSION);
	printf("libcurl %s (%s), %s, SQLite %s, cJSON %s, libyaml %s\n", cv->version,
	       cv->ssl_version ? cv->ssl_version : "no TLS", OpenSSL_version(OPENSSL_VERSION),
	       sqlite3_libversion(), cJSON_Version(), yaml_get_version_string());
}

/*
 * The AccessKey secret and session tokens live in this process's memory: made non-dumpable,
 * no other process of the same user can ptrace it or read its /proc files (environ, mem),
 * and a crash leaves no core file holding them.
 */
static void harden_process(void)
{
	struct rlimit none = { 0, 0 };

	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &none);
}

/* Before main, as early as our code can run: a SIGTERM in the first milliseconds (a
 * scheduler stopping a run it has just started) exits 143, not by the signal.  Only the
 * dynamic loader's own start-up comes before this. */
__attribute__((constructor)) static void early_start(void)
{
	harden_process();
	cli_signals_install();
}

int main(int argc, char **argv)
{
	enum { O_HELP = 0x3001, O_VERSION };
	static const struct option longopts[] = {
		CLI_GLOBAL_LONG,
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_globals g = { NULL, NULL, 0, LOG_TEXT };
	struct cs_error err = { CS_ERR_NONE, "" };
	const char *name;
	size_t i;
	int c, rc = -1;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+" CLI_GLOBAL_SHORT "hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case O_HELP:
			cli_usage(NULL, stdout);
			return 0;
		case 'V':
		case O_VERSION:
			print_version();
			return 0;
		case '?':
			fprintf(stderr, "credsync: unknown or incomplete option '%s'\n\n",
				argv[optind - 1]);
			cli_usage(NULL, stderr);
			return EX_USAGE;
		default:
			if (cli_global_option(&g, c, optarg, &err) < 0) {
				fprintf(stderr, "credsync: %s\n", err.msg);
				return EX_USAGE;
			}
		}
	}
	cli_setup_logging(&g);
	if (optind >= argc) {
		cli_usage(NULL, stderr);
		return EX_USAGE;
	}
	name = argv[optind];
	if (!strcmp(name, "help")) {
		if (optind + 1 < argc && !cli_has_help(argv[optind + 1])) {
			fprintf(stderr, "credsync: no such command '%s'\n", argv[optind + 1]);
			return EX_USAGE;
		}
		cli_usage(optind + 1 < argc ? argv[optind + 1] : NULL, stdout);
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(commands[i].name, name)) {
			rc = commands[i].fn(argc - optind, argv + optind, &g, &err);
			break;
		}
	}
	if (i == sizeof(commands) / sizeof(commands[0])) {
		fprintf(stderr, "credsync: '%s' is not a credsync command; see 'credsync --help'\n",
			name);
		return EX_USAGE;
	}
	if (rc == CMD_HELP) {
		/* COMMAND --help: the text of `credsync help COMMAND` */
		cli_usage(name, stdout);
		return 0;
	}
	if (rc >= 0)
		return rc;
	if (err.kind == CS_ERR_INTERRUPTED)
		log_msg(LOG_ERROR, NULL, "stopped by signal %d; progress is checkpointed and the next "
			"run resumes", (int)cli_stop_signal);
	else
		log_msg(LOG_ERROR, NULL, "%s", err.msg[0] ? err.msg : "failed");
	if (err.kind == CS_ERR_USAGE)
		fprintf(stderr, "see 'credsync help %s'\n", name);
	return exit_status(&err);
}
