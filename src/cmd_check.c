/*
 * cmd_check.c - `credsync check [--online]`: is the configuration valid, where do the
 * credentials come from, and (online) can every group be read?  The answer goes to stdout,
 * one line per item; nothing is written anywhere.
 *
 * The online probe runs the sync's own crawl engine, stopped after each group's first page,
 * against an in-memory database, so it retries and classifies errors exactly as sync would.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "crawl.h"
#include "creds.h"
#include "discover.h"
#include "identity.h"
#include "plan.h"
#include "store.h"
#include "util.h"

/* One identity: AccessKeyId masked, where from, and when it expires. */
static void print_identity(const char *label, const struct creds *c)
{
	char id[64], exp[21];

	creds_mask_id(c->access_key_id, id, sizeof(id));
	printf("%s: %s: AccessKeyId %s%s from %s", label, c->identity, id,
	       c->security_token ? " with an STS token" : "", c->source);
	if (c->expiration) {
		util_format_utc(c->expiration, exp);
		printf(", expires %s", exp);
	}
	putchar('\n');
}

static size_t count_groups(const struct config *cfg, int *discovered)
{
	size_t i, n = 0;

	*discovered = 0;
	for (i = 0; i < cfg->ninstances; i++) {
		if (cfg->instances[i].groups_all)
			(*discovered)++;
		else
			n += cfg->instances[i].ngroups;
	}
	return n;
}

static int check_online(const struct config *cfg, struct identities *ids,
			struct cs_error *err)
{
	struct http_client *http = NULL;
	struct store *mem = NULL;
	struct discovered *disc = NULL;
	struct crawl_target *targets = NULL;
	struct crawl_result *results = NULL;
	struct crawl_totals totals;
	struct crawl_opts opts;
	struct plan_filter none;
	size_t n = 0, i;
	int ret = -1, failed = 0, rc;

	memset(&none, 0, sizeof(none));
	disc = calloc(cfg->ninstances ? cfg->ninstances : 1, sizeof(*disc));
	if (!disc) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (http_client_new(&http, err) < 0 || store_open(&mem, NULL, STORE_DRYRUN, err) < 0)
		goto out;
	for (i = 0; i < cfg->ninstances; i++) {
		const struct cfg_instance *inst = &cfg->instances[i];

		if (!inst->groups_all)
			continue;
		if (!identities_for(ids, inst)->access_key_id) {
			printf("%s: FAILED listing groups: CredentialsUnavailable: %s\n", inst->id,
			       identities_for(ids, inst)->last_error);
			failed++;
			continue;
		}
		if (discover_instance(inst, http, identities_for(ids, inst), &cli_stop_signal,
				      &disc[i], err) < 0)
			goto out;
		if (disc[i].failed) {
			printf("%s: FAILED listing groups: %s: %s\n", inst->id, disc[i].code,
			       disc[i].message);
			failed++;
		} else {
			printf("%s: groups: all -> %zu group(s) listed by ListGroupId\n", inst->id,
			       disc[i].ngroups);
		}
	}
	if (plan_targets(cfg, &none, disc, &targets, &n, err) < 0)
		goto out;
	results = calloc(n ? n : 1, sizeof(*results));
	if (!results) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	memset(&opts, 0, sizeof(opts));
	opts.probe = 1;
	opts.run_id = 1;
	opts.retry_budget = cfg->defaults.retry_budget;
	opts.checkpoint_max_age_s = 0;
	opts.stop = &cli_stop_signal;
	opts.creds_for = identities_for;
	opts.creds_arg = ids;
	cli_signals_arm(http);
	rc = crawl_run(mem, http, ids->top, targets, n, &opts, results, &totals, err);
	for (i = 0; i < n; i++) {
		const struct crawl_result *r = &results[i];

		if (r->complete) {
			printf("%s/%s: OK", targets[i].inst->id, targets[i].group_id);
			if (r->total_reported >= 0)
				printf(" (Total %" PRId64 ")", r->total_reported);
			putchar('\n');
		} else {
			printf("%s/%s: FAILED %s: %s", targets[i].inst->id, targets[i].group_id,
			       r->code, r->message);
			if (r->request_id[0])
				printf(" (request %s)", r->request_id);
			putchar('\n');
			failed++;
		}
	}
	if (rc < 0)
		goto out;
	ret = failed ? CMD_FAILED : CMD_OK;
out:
	fflush(stdout);
	if (disc) {
		for (i = 0; i < cfg->ninstances; i++)
			discovered_release(&disc[i]);
		free(disc);
	}
	free(results);
	free(targets);
	store_close(mem);
	http_client_free(http);
	return ret;
}

/* The database as a sync would find it: credsync's own, readable, and sound (quick_check).
 * Returns 1 when it is not. */
static int check_database(const char *db)
{
	struct cs_error derr = { 0 };
	struct store *st = NULL;
	int bad = 0;

	if (store_open(&st, db, STORE_READ, &derr) < 0) {
		/* a file made by no sync yet is fine; anything else would stop the sync */
		if (strstr(derr.msg, "no inventory yet")) {
			printf("database: %s (exists, no inventory yet)\n", db);
			return 0;
		}
		printf("database: %s: FAILED: %s\n", db, derr.msg);
		return 1;
	}
	if (store_quick_check(st, &derr) < 0) {
		printf("database: %s: FAILED quick_check: %s\n", db, derr.msg);
		bad = 1;
	} else {
		printf("database: %s (exists, schema version %d, quick_check ok)\n", db,
		       store_schema_version(st));
	}
	store_close(st);
	return bad;
}

enum { O_ONLINE = 0x2401 };

static int on_option(void *arg, int c, const char *v, struct cs_error *err)
{
	(void)v;
	(void)err;
	if (c == O_ONLINE)
		*(int *)arg = 1;
	return 0;
}

int cmd_check(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	static const struct option longopts[] = {
		{ "online", no_argument, NULL, O_ONLINE },
		{ NULL, 0, NULL, 0 },
	};
	int online = 0;
	const struct cli_options o = { "check", 0, "", longopts, on_option, &online };
	struct cli_common common;
	struct config *cfg = NULL;
	struct identities ids;
	struct stat sb;
	const char *db;
	char meta[512];
	int c, ret, discovered, db_bad = 0;
	size_t ngroups, i, bad = 0;

	memset(&ids, 0, sizeof(ids));
	ret = cli_parse_options(&o, argc, argv, g, &common, err);
	if (ret != 0)
		goto out;
	ret = -1;
	cli_setup_logging(g);
	if (cli_load_config(g, &cfg, err) < 0)
		goto out;
	ngroups = count_groups(cfg, &discovered);
	printf("config: %s: ok (%zu instance(s), %zu group(s)%s)\n", cfg->path, cfg->ninstances,
	       ngroups, discovered ? " plus those listed by ListGroupId" : "");
	db = g->db_path ? g->db_path : cfg->database;
	if (db && stat(db, &sb) == 0) {
		db_bad = check_database(db);
	} else if (db) {
		printf("database: %s (created by the first sync)\n", db);
	} else {
		printf("database: not set: add 'database' to the config or pass -d\n");
	}
	creds_metadata_status(meta, sizeof(meta));
	printf("metadata service: %s\n", meta);
	creds_set_stop(&cli_stop_signal);
	c = identities_resolve(&ids, cfg, NULL, 0, err);
	creds_wipe_environment();
	if (c < 0)
		goto out;
	if (ids.top)
		print_identity("credentials", ids.top);
	for (i = 0; i < cfg->ninstances; i++) {
		const struct creds *own = identities_for(&ids, &cfg->instances[i]);
		char label[300];

		snprintf(label, sizeof(label), "%s: credentials", cfg->instances[i].id);
		if (own && own->access_key_id)
			print_identity(label, own);
		else if (own && !bad++)
			cs_error_set(err, CS_ERR_CREDENTIALS, "instance %s: %s", cfg->instances[i].id,
				     own->last_error);
		if (own && !own->access_key_id)
			printf("%s: FAILED %s: %s\n", label, own->identity, own->last_error);
	}
	if (bad)
		goto out;
	if (!online) {
		ret = db_bad ? CMD_FAILED : CMD_OK;
		goto out;
	}
	ret = check_online(cfg, &ids, err);
	if (ret == CMD_OK && db_bad)
		ret = CMD_FAILED;
out:
	fflush(stdout);
	identities_release(&ids);
	config_free(cfg);
	cli_common_release(&common);
	return ret;
}
