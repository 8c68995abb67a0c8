/*
 * cmd_diff.c - `credsync diff`: resolve the two REFs per group, count, then render.
 *
 * The database is opened read-only, so a diff runs beside a sync without waiting for it.
 * A group without a complete snapshot on one side is reported as such, never as if every
 * client had been added or removed.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "history.h"
#include "report.h"
#include "util.h"

struct diff_args {
	const char *from, *to;
	const char *instance, *group;  /* the last --instance, --group */
	struct cli_common c;           /* --format, -o, --instance, --group */
	int detailed;
};

enum { O_FROM = 0x2101, O_TO, O_DETAILED };

static int on_option(void *arg, int c, const char *v, struct cs_error *err)
{
	struct diff_args *a = arg;

	(void)err;
	switch (c) {
	case O_FROM: a->from = v; break;
	case O_TO: a->to = v; break;
	case O_DETAILED: a->detailed = 1; break;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct cli_globals *g, struct diff_args *a,
		      struct cs_error *err)
{
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, O_FROM },
		{ "to", required_argument, NULL, O_TO },
		{ "instance", required_argument, NULL, CLI_OPT_INSTANCE },
		{ "group", required_argument, NULL, CLI_OPT_GROUP },
		{ "format", required_argument, NULL, CLI_OPT_FORMAT },
		{ "output", required_argument, NULL, 'o' },
		{ "detailed-exitcode", no_argument, NULL, O_DETAILED },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_options o = { "diff", CLI_HTML, "o:", longopts, on_option, a };
	int rc = cli_parse_options(&o, argc, argv, g, &a->c, err);

	/* a diff selects one instance and one group at the most: the last given counts */
	if (a->c.ninstances)
		a->instance = a->c.instances[a->c.ninstances - 1];
	if (a->c.ngroups)
		a->group = a->c.groups[a->c.ngroups - 1];
	return rc;
}

/* A snapshot REF pins the diff to that snapshot's group. */
static int pin_group(struct store *st, const struct diff_ref *ref, int64_t *group_key,
		     struct cs_error *err)
{
	struct snap_row row;
	int found;

	if (ref->kind != REF_SNAPSHOT)
		return 0;
	if (history_snapshot(st, ref->value, &row, &found, err) < 0)
		return -1;
	if (!found)
		return cs_error_set(err, CS_ERR_USAGE, "diff: there is no snapshot %s", ref->text);
	if (strcmp(row.status, "complete"))
		return cs_error_set(err, CS_ERR_USAGE,
				    "diff: snapshot %s is %s, not complete (%s: %s); a diff compares "
				    "complete snapshots only", ref->text, row.status, row.error_code,
				    row.error_message);
	if (*group_key && *group_key != row.group_key)
		return cs_error_set(err, CS_ERR_USAGE,
				    "diff: snapshots of different groups cannot be compared");
	*group_key = row.group_key;
	return 0;
}

int cmd_diff(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	struct diff_args a;
	struct config *cfg = NULL;
	struct store *st = NULL;
	struct group_row *groups = NULL;
	struct diff_group *dg = NULL;
	struct diff_report r;
	struct diff_ref from, to;
	struct report_out out;
	const char *db_path;
	int64_t pinned = 0, now = util_now_epoch();
	size_t ngroups = 0, i, k = 0;
	int ret;

	memset(&a, 0, sizeof(a));
	memset(&r, 0, sizeof(r));
	memset(&out, 0, sizeof(out));
	ret = parse_args(argc, argv, g, &a, err);
	if (ret != 0)
		goto out;
	ret = -1;
	cli_setup_logging(g);
	if (history_parse_ref(a.from ? a.from : "previous", now, &from, err) < 0 ||
	    history_parse_ref(a.to ? a.to : "latest", now, &to, err) < 0) {
		cs_error_prefix(err, "diff: ");
		goto out;
	}
	if (cli_database(g, 0, &cfg, &db_path, err) < 0 ||
	    store_open(&st, db_path, STORE_READ, err) < 0)
		goto out;
	if (pin_group(st, &from, &pinned, err) < 0 || pin_group(st, &to, &pinned, err) < 0)
		goto out;
	if (history_groups(st, a.instance, a.group, &groups, &ngroups, err) < 0)
		goto out;
	if (!ngroups && (a.instance || a.group)) {
		cs_error_set(err, CS_ERR_USAGE, "diff: no group in %s matches%s%s%s%s", db_path,
			     a.instance ? " --instance " : "", a.instance ? a.instance : "",
			     a.group ? " --group " : "", a.group ? a.group : "");
		goto out;
	}
	dg = calloc(ngroups ? ngroups : 1, sizeof(*dg));
	if (!dg) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < ngroups; i++) {
		struct diff_group *d = &dg[k];

		if (pinned && groups[i].group_key != pinned)
			continue;
		d->g = &groups[i];
		if (history_resolve(st, groups[i].group_key, &to, 0, &d->to, err) < 0 ||
		    (d->to && history_resolve(st, groups[i].group_key, &from, d->to, &d->from, err) < 0))
			goto out;
		d->status = !d->to ? DIFF_NO_TO : !d->from ? DIFF_NO_FROM : DIFF_OK;
		if (d->status == DIFF_OK &&
		    history_diff_counts(st, groups[i].group_key, d->from, d->to, &d->added,
					&d->removed, err) < 0)
			goto out;
		r.added += d->added;
		r.removed += d->removed;
		k++;
	}
	r.st = st;
	r.from_text = from.text;
	r.to_text = to.text;
	r.groups = dg;
	r.n = k;
	r.generated_epoch = now;
	r.color = !a.c.output && a.c.format == REPORT_TEXT && isatty(STDOUT_FILENO) &&
		  !getenv("NO_COLOR") && !(getenv("TERM") && !strcmp(getenv("TERM"), "dumb"));
	if (report_out_open(&out, a.c.output, err) < 0 ||
	    report_diff(out.f, a.c.format, &r, err) < 0 || report_out_commit(&out, err) < 0)
		goto out;
	for (i = 0; i < k; i++)
		if (dg[i].status != DIFF_OK)
			log_msg(LOG_INFO, NULL, "%s/%s: nothing to compare (no complete snapshot on one side)",
				dg[i].g->instance_id, dg[i].g->group_id);
	ret = a.detailed && (r.added || r.removed) ? CMD_CHANGES : CMD_OK;
out:
	report_out_abort(&out);
	free(dg);
	history_groups_free(groups, ngroups);
	store_close(st);
	config_free(cfg);
	cli_common_release(&a.c);
	return ret;
}
