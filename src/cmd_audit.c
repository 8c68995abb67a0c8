/*
 * cmd_audit.c - `credsync audit --expected FILE`: the inventory at a REF against an asset
 * register.  Unexpected: holds a credential and is not in the register (the security
 * finding), per instance and group.  Missing: in the register and holding none in any
 * selected group.
 *
 * The comparison runs in SQLite (audit.c); this file resolves the REF per group, asks for
 * the counts and streams the lists into the chosen format.  A group with no complete
 * snapshot at the REF cannot be audited: the report says so and the command exits 1, since
 * "no drift" would be a claim about devices nobody looked at.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit.h"
#include "cli.h"
#include "history.h"
#include "report.h"
#include "util.h"

struct audit_args {
	const char *expected, *column, *at, *output;
	const char **instances, **groups;
	size_t ninstances, ngroups;
	int by_device;
	int format;
	int detailed;
};

struct agroup {
	const struct group_row *g;
	int64_t snapshot_id;     /* 0: none at the REF */
	char snapshot_at[21];
	int64_t clients, unexpected;
};

struct audit_view {
	struct store *st;
	const struct audit_args *a;
	const char *at_text;
	const struct audit_register *reg;
	struct agroup *groups;
	size_t n;
	int64_t clients, unexpected, missing, unaudited;
	int64_t generated_epoch;
};

static int push(const char ***list, size_t *n, const char *s, struct cs_error *err)
{
	const char **p = realloc(*list, (*n + 1) * sizeof(*p));

	if (!p)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	p[(*n)++] = s;
	*list = p;
	return 0;
}

static int ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);

	return a >= b && !strcasecmp(s + a - b, tail);
}

static int parse_args(int argc, char **argv, struct cli_globals *g, struct audit_args *a,
		      struct cs_error *err)
{
	enum { O_EXPECTED = 0x2701, O_COLUMN, O_AT, O_BY, O_INSTANCE, O_GROUP, O_FORMAT,
	       O_DETAILED };
	static const struct option longopts[] = {
		CLI_GLOBAL_LONG,
		{ "expected", required_argument, NULL, O_EXPECTED },
		{ "column", required_argument, NULL, O_COLUMN },
		{ "at", required_argument, NULL, O_AT },
		{ "by", required_argument, NULL, O_BY },
		{ "instance", required_argument, NULL, O_INSTANCE },
		{ "group", required_argument, NULL, O_GROUP },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "output", required_argument, NULL, 'o' },
		{ "detailed-exitcode", no_argument, NULL, O_DETAILED },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	a->format = REPORT_TEXT;
	a->by_device = 1;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+" CLI_GLOBAL_SHORT "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case O_EXPECTED: a->expected = optarg; break;
		case O_COLUMN: a->column = optarg; break;
		case O_AT: a->at = optarg; break;
		case 'o': a->output = optarg; break;
		case O_DETAILED: a->detailed = 1; break;
		case O_BY:
			if (!strcmp(optarg, "device"))
				a->by_device = 1;
			else if (!strcmp(optarg, "client"))
				a->by_device = 0;
			else
				return cs_error_set(err, CS_ERR_USAGE,
						    "audit: --by expects device or client, not '%s'", optarg);
			break;
		case O_INSTANCE:
			if (push(&a->instances, &a->ninstances, optarg, err) < 0)
				return -1;
			break;
		case O_GROUP:
			if (push(&a->groups, &a->ngroups, optarg, err) < 0)
				return -1;
			break;
		case O_FORMAT:
			a->format = report_parse_format(optarg, REPORT_ALL);
			if (a->format < 0)
				return cs_error_set(err, CS_ERR_USAGE,
						    "audit: --format expects text, json, csv, ndjson or html, "
						    "not '%s'", optarg);
			break;
		case 'h':
			cli_usage("audit", stdout);
			return 1;
		default:
			if (cli_common_option("audit", g, c, argv, err) < 0)
				return -1;
		}
	}
	if (cli_no_operands("audit", argc, argv, err) < 0)
		return -1;
	if (!a->expected)
		return cs_error_set(err, CS_ERR_USAGE, "audit: --expected FILE is required (the "
				    "register: one ID per line, or a CSV file with --column NAME)");
	if (a->column && !*a->column)
		return cs_error_set(err, CS_ERR_USAGE, "audit: --column needs a column name");
	if (!a->column && ends_with(a->expected, ".csv"))
		return cs_error_set(err, CS_ERR_USAGE, "audit: %s looks like CSV: name the column "
				    "holding the IDs with --column NAME", a->expected);
	return 0;
}

/* ---- rendering ---- */

struct sink {
	FILE *out;
	struct cs_buf *b;
	const struct audit_view *v;
	const struct agroup *ag;
	int64_t n;
	struct cs_error *err;
};

static void json_device(struct cs_buf *b, const char *id, size_t len)
{
	size_t dlen;
	const char *dev = report_device_part(id, len, &dlen);

	if (dev)
		report_json_string(b, dev);
	else
		buf_puts(b, "null");
}

static int on_unexpected(void *arg, const char *id, size_t len, int64_t line)
{
	struct sink *k = arg;
	struct cs_buf *b = k->b;
	const char *dev;
	size_t dlen;

	(void)line;
	switch (k->v->a->format) {
	case REPORT_TEXT:
		buf_puts(b, "  unexpected  ");
		report_text_id(b, id, len);
		buf_putc(b, '\n');
		break;
	case REPORT_JSON:
		buf_puts(b, k->n ? ", " : "");
		report_json_string(b, id);
		break;
	case REPORT_CSV:
		buf_puts(b, "unexpected,");
		report_csv_field(b, k->ag->g->instance_id, strlen(k->ag->g->instance_id));
		buf_putc(b, ',');
		report_csv_field(b, k->ag->g->group_id, strlen(k->ag->g->group_id));
		buf_printf(b, ",%" PRId64 ",", k->ag->snapshot_id);
		report_csv_field(b, id, len);
		buf_putc(b, ',');
		dev = report_device_part(id, len, &dlen);
		if (dev)
			report_csv_field(b, dev, dlen);
		buf_puts(b, ",,\r\n");
		break;
	case REPORT_NDJSON:
		buf_puts(b, "{\"type\": \"unexpected\", \"instance_id\": ");
		report_json_string(b, k->ag->g->instance_id);
		buf_puts(b, ", \"group_id\": ");
		report_json_string(b, k->ag->g->group_id);
		buf_printf(b, ", \"snapshot_id\": %" PRId64 ", \"client_id\": ", k->ag->snapshot_id);
		report_json_string(b, id);
		buf_puts(b, ", \"device_id\": ");
		json_device(b, id, len);
		buf_puts(b, "}\n");
		break;
	case REPORT_HTML:
		buf_puts(b, "<li><code>");
		report_html_escape(b, id, len);
		buf_puts(b, "</code> <span class=\"muted\">");
		report_html_escape(b, k->ag->g->instance_id, strlen(k->ag->g->instance_id));
		buf_puts(b, " / ");
		report_html_escape(b, k->ag->g->group_id, strlen(k->ag->g->group_id));
		buf_puts(b, "</span></li>\n");
		break;
	}
	k->n++;
	return report_flush(k->out, b, 0, k->err) < 0 ? -1 : 0;
}

static int on_missing(void *arg, const char *id, size_t len, int64_t line)
{
	struct sink *k = arg;
	struct cs_buf *b = k->b;

	switch (k->v->a->format) {
	case REPORT_TEXT:
		buf_puts(b, "  missing  ");
		report_text_id(b, id, len);
		buf_printf(b, "  (line %" PRId64 ")\n", line);
		break;
	case REPORT_JSON:
		buf_puts(b, k->n ? ",\n  {\"id\": " : "\n  {\"id\": ");
		report_json_string(b, id);
		buf_printf(b, ", \"line\": %" PRId64 "}", line);
		break;
	case REPORT_CSV:
		buf_puts(b, "missing,,,,,,");
		report_csv_field(b, id, len);
		buf_printf(b, ",%" PRId64 "\r\n", line);
		break;
	case REPORT_NDJSON:
		buf_puts(b, "{\"type\": \"missing\", \"id\": ");
		report_json_string(b, id);
		buf_printf(b, ", \"line\": %" PRId64 "}\n", line);
		break;
	case REPORT_HTML:
		buf_puts(b, "<li><code>");
		report_html_escape(b, id, len);
		buf_printf(b, "</code> <span class=\"muted\">line %" PRId64 "</span></li>\n", line);
		break;
	}
	k->n++;
	return report_flush(k->out, b, 0, k->err) < 0 ? -1 : 0;
}

static int list_unexpected(struct sink *k, const struct agroup *ag)
{
	k->ag = ag;
	k->n = 0;
	if (!ag->snapshot_id || !ag->unexpected)
		return 0;
	return audit_unexpected(k->v->st, ag->g->group_key, on_unexpected, k, k->err) ? -1 : 0;
}

static int list_missing(struct sink *k)
{
	k->n = 0;
	return audit_missing(k->v->st, on_missing, k, k->err) ? -1 : 0;
}

static void json_summary(struct cs_buf *b, const struct audit_view *v)
{
	buf_printf(b, "{\"groups\": %zu, \"groups_without_snapshot\": %" PRId64 ", \"register_ids\": %"
		   PRId64 ", \"skipped_rows\": %" PRId64 ", \"clients\": %" PRId64
		   ", \"unexpected\": %" PRId64 ", \"missing\": %" PRId64 ", \"drift\": %s}", v->n,
		   v->unaudited, v->reg->ids, v->reg->skipped, v->clients, v->unexpected, v->missing,
		   v->unexpected || v->missing ? "true" : "false");
}

static void json_group_head(struct cs_buf *b, const struct agroup *ag, int ndjson)
{
	buf_puts(b, ndjson ? "{\"type\": \"group\", \"instance_id\": " : "{\"instance_id\": ");
	report_json_string(b, ag->g->instance_id);
	buf_puts(b, ", \"group_id\": ");
	report_json_string(b, ag->g->group_id);
	if (ag->snapshot_id)
		buf_printf(b, ", \"status\": \"ok\", \"snapshot_id\": %" PRId64 ", \"snapshot_at\": \"%s\""
			   ", \"clients\": %" PRId64 ", \"expected\": %" PRId64 ", \"unexpected_count\": %"
			   PRId64, ag->snapshot_id, ag->snapshot_at, ag->clients,
			   ag->clients - ag->unexpected, ag->unexpected);
	else
		buf_puts(b, ", \"status\": \"no_snapshot\", \"snapshot_id\": null, \"snapshot_at\": null"
			    ", \"clients\": null, \"expected\": null, \"unexpected_count\": null");
}

static int render(FILE *out, struct cs_buf *b, const struct audit_view *v, struct cs_error *err)
{
	const struct audit_args *a = v->a;
	struct sink k = { out, b, v, NULL, 0, err };
	const char *by = a->by_device ? "device" : "client";
	char when[21];
	size_t i;

	switch (a->format) {
	case REPORT_TEXT:
		buf_printf(b, "audit at '%s' by %s against %s: %" PRId64 " register ID(s), %zu group(s), %"
			   PRId64 " client(s), %" PRId64 " unexpected, %" PRId64 " missing\n", v->at_text,
			   by, a->expected, v->reg->ids, v->n, v->clients, v->unexpected, v->missing);
		for (i = 0; i < v->n; i++) {
			const struct agroup *ag = &v->groups[i];

			buf_printf(b, "%s/%s: ", ag->g->instance_id, ag->g->group_id);
			if (!ag->snapshot_id) {
				buf_printf(b, "no complete snapshot at '%s'; not audited\n", v->at_text);
				continue;
			}
			buf_printf(b, "snapshot %" PRId64 " (%s): %" PRId64 " client(s), %" PRId64
				   " unexpected\n", ag->snapshot_id, ag->snapshot_at, ag->clients,
				   ag->unexpected);
			if (list_unexpected(&k, ag) < 0)
				return -1;
		}
		buf_printf(b, "missing (in the register, holding no credential): %" PRId64 "\n",
			   v->missing);
		return list_missing(&k);
	case REPORT_JSON:
		buf_puts(b, "{\"at\": ");
		report_json_string(b, v->at_text);
		buf_printf(b, ", \"by\": \"%s\", \"expected\": ", by);
		report_json_string(b, a->expected);
		buf_puts(b, ", \"column\": ");
		if (a->column)
			report_json_string(b, a->column);
		else
			buf_puts(b, "null");
		buf_puts(b, ", \"groups\": [");
		for (i = 0; i < v->n; i++) {
			buf_puts(b, i ? ",\n  " : "\n  ");
			json_group_head(b, &v->groups[i], 0);
			buf_puts(b, ", \"unexpected\": [");
			if (list_unexpected(&k, &v->groups[i]) < 0)
				return -1;
			buf_puts(b, "]}");
		}
		buf_puts(b, v->n ? "\n], \"missing\": [" : "], \"missing\": [");
		if (list_missing(&k) < 0)
			return -1;
		buf_puts(b, k.n ? "\n], \"summary\": " : "], \"summary\": ");
		json_summary(b, v);
		buf_puts(b, "}\n");
		return 0;
	case REPORT_CSV:
		buf_puts(b, "finding,instance_id,group_id,snapshot_id,client_id,device_id,register_id,"
			    "register_line\r\n");
		for (i = 0; i < v->n; i++)
			if (list_unexpected(&k, &v->groups[i]) < 0)
				return -1;
		return list_missing(&k);
	case REPORT_NDJSON:
		for (i = 0; i < v->n; i++) {
			json_group_head(b, &v->groups[i], 1);
			buf_puts(b, "}\n");
			if (list_unexpected(&k, &v->groups[i]) < 0)
				return -1;
		}
		if (list_missing(&k) < 0)
			return -1;
		buf_puts(b, "{\"type\": \"summary\", \"at\": ");
		report_json_string(b, v->at_text);
		buf_printf(b, ", \"by\": \"%s\", \"summary\": ", by);
		json_summary(b, v);
		buf_puts(b, "}\n");
		return 0;
	default:
		break;
	}
	/* HTML: the counts per group, then the unexpected and the missing lists */
	util_format_utc(v->generated_epoch, when);
	report_html_begin(b, "credsync audit");
	buf_puts(b, "<h1>credsync audit</h1>\n<p>The inventory at <strong>");
	report_html_escape(b, v->at_text, strlen(v->at_text));
	buf_printf(b, "</strong> by %s against <strong>", by);
	report_html_escape(b, a->expected, strlen(a->expected));
	buf_printf(b, "</strong> (%" PRId64 " register IDs), generated %s.</p>\n", v->reg->ids, when);
	buf_printf(b, "<table id=\"summary\">\n<tr><th>groups</th><th>clients</th><th>unexpected</th>"
		   "<th>missing</th></tr>\n<tr><td class=\"num\" id=\"sum-groups\">%zu</td>"
		   "<td class=\"num\" id=\"sum-clients\">%" PRId64 "</td><td class=\"num removed\" "
		   "id=\"sum-unexpected\">%" PRId64 "</td><td class=\"num removed\" id=\"sum-missing\">%"
		   PRId64 "</td></tr>\n</table>\n", v->n, v->clients, v->unexpected, v->missing);
	buf_puts(b, "<table id=\"groups\">\n<tr><th>instance</th><th>group</th><th>snapshot</th>"
		    "<th>time</th><th>clients</th><th>expected</th><th>unexpected</th></tr>\n");
	for (i = 0; i < v->n; i++) {
		const struct agroup *ag = &v->groups[i];

		buf_puts(b, "<tr><td>");
		report_html_escape(b, ag->g->instance_id, strlen(ag->g->instance_id));
		buf_puts(b, "</td><td>");
		report_html_escape(b, ag->g->group_id, strlen(ag->g->group_id));
		if (ag->snapshot_id)
			buf_printf(b, "</td><td class=\"num\">%" PRId64 "</td><td>%s</td><td class=\"num\">%"
				   PRId64 "</td><td class=\"num\">%" PRId64 "</td><td class=\"num removed\">%"
				   PRId64 "</td></tr>\n", ag->snapshot_id, ag->snapshot_at, ag->clients,
				   ag->clients - ag->unexpected, ag->unexpected);
		else
			buf_puts(b, "</td><td colspan=\"5\" class=\"muted\">no complete snapshot at this "
				    "REF; not audited</td></tr>\n");
	}
	buf_printf(b, "</table>\n<h2 class=\"removed\">unexpected: holding a credential, not in the "
		   "register (%" PRId64 ")</h2>\n<ul class=\"unexpected-list\">\n", v->unexpected);
	for (i = 0; i < v->n; i++)
		if (list_unexpected(&k, &v->groups[i]) < 0)
			return -1;
	buf_printf(b, "</ul>\n<h2 class=\"removed\">missing: in the register, holding no credential "
		   "(%" PRId64 ")</h2>\n<ul class=\"missing-list\">\n", v->missing);
	if (list_missing(&k) < 0)
		return -1;
	buf_puts(b, "</ul>\n</body>\n</html>\n");
	return 0;
}

/* A snapshot REF names one group's snapshot: that group alone is audited. */
static int pin_group(struct store *st, const struct diff_ref *ref, int64_t *group_key,
		     struct cs_error *err)
{
	struct snap_row row;
	int found;

	*group_key = 0;
	if (ref->kind != REF_SNAPSHOT)
		return 0;
	if (history_snapshot(st, ref->value, &row, &found, err) < 0)
		return -1;
	if (!found)
		return cs_error_set(err, CS_ERR_USAGE, "audit: there is no snapshot %s", ref->text);
	if (strcmp(row.status, "complete"))
		return cs_error_set(err, CS_ERR_USAGE, "audit: snapshot %s is %s, not complete",
				    ref->text, row.status);
	*group_key = row.group_key;
	return 0;
}

int cmd_audit(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	struct audit_args a;
	struct audit_view v;
	struct audit_register reg;
	struct config *cfg = NULL;
	struct store *st = NULL;
	struct group_row *groups = NULL;
	struct agroup *ag = NULL;
	struct report_out out;
	struct cs_buf b = CS_BUF_INIT;
	struct diff_ref at;
	const char *db_path;
	int64_t pinned = 0, t0;
	size_t ngroups = 0, i;
	int ret = -1, rc;

	memset(&a, 0, sizeof(a));
	memset(&v, 0, sizeof(v));
	memset(&reg, 0, sizeof(reg));
	memset(&out, 0, sizeof(out));
	rc = parse_args(argc, argv, g, &a, err);
	if (rc)
		goto out_args;
	cli_setup_logging(g);
	if (history_parse_ref(a.at ? a.at : "latest", util_now_epoch(), &at, err) < 0) {
		cs_error_prefix(err, "audit: --at: ");
		goto out;
	}
	if (cli_database(g, 0, &cfg, &db_path, err) < 0 ||
	    store_open(&st, db_path, STORE_READ, err) < 0 || pin_group(st, &at, &pinned, err) < 0 ||
	    history_select_groups(st, a.instances, a.ninstances, a.groups, a.ngroups, &groups,
				  &ngroups, err) < 0)
		goto out;
	if (!ngroups) {
		cs_error_set(err, a.ninstances || a.ngroups ? CS_ERR_USAGE : CS_ERR_RUNTIME,
			     "audit: no group in %s%s", db_path, a.ninstances || a.ngroups
			     ? " matches the --instance and --group given" : " (run 'credsync sync' first)");
		goto out;
	}
	t0 = util_mono_ms();
	if (audit_load_register(st, a.expected, a.column, &reg, err) < 0)
		goto out;
	log_msg(LOG_DEBUG, NULL, "audit: register opened in %" PRId64 " ms", util_mono_ms() - t0);
	if (!(ag = calloc(ngroups, sizeof(*ag)))) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < ngroups; i++) {
		struct agroup *x = &ag[v.n];
		struct snap_row row;
		int found = 0;

		if (pinned && groups[i].group_key != pinned)
			continue;
		x->g = &groups[i];
		if (history_resolve(st, groups[i].group_key, &at, 0, &x->snapshot_id, err) < 0 ||
		    (x->snapshot_id && history_snapshot(st, x->snapshot_id, &row, &found, err) < 0))
			goto out;
		if (found)
			memcpy(x->snapshot_at, row.finished_at, sizeof(x->snapshot_at));
		if (!x->snapshot_id)
			v.unaudited++;
		else if (audit_add_group(st, groups[i].group_key, x->snapshot_id, err) < 0)
			goto out;
		v.n++;
	}
	log_msg(LOG_DEBUG, NULL, "audit: groups resolved at %" PRId64 " ms", util_mono_ms() - t0);
	if (audit_compare(st, &reg, a.by_device, err) < 0)
		goto out;
	log_msg(LOG_DEBUG, NULL, "audit: register read, sorted and compared at %" PRId64 " ms",
		util_mono_ms() - t0);
	for (i = 0; i < v.n; i++) {
		if (ag[i].snapshot_id &&
		    audit_group_counts(st, ag[i].g->group_key, &ag[i].clients, &ag[i].unexpected,
				       err) < 0)
			goto out;
		v.clients += ag[i].clients;
		v.unexpected += ag[i].unexpected;
	}
	if (audit_missing_count(st, &v.missing, err) < 0)
		goto out;
	v.st = st;
	v.a = &a;
	v.at_text = at.text;
	v.reg = &reg;
	v.groups = ag;
	v.generated_epoch = util_now_epoch();
	if (report_out_open(&out, a.output, err) < 0 || render(out.f, &b, &v, err) < 0 ||
	    report_flush(out.f, &b, 1, err) < 0 || report_out_commit(&out, err) < 0)
		goto out;
	if (reg.skipped)
		log_msg(LOG_WARN, NULL, "audit: %s: %" PRId64 " row(s) with an empty '%s' were skipped",
			a.expected, reg.skipped, a.column);
	if (v.unaudited) {
		cs_error_set(err, CS_ERR_RUNTIME, "audit: %" PRId64 " group(s) have no complete snapshot "
			     "at '%s', so the audit is incomplete (see the report; select groups with "
			     "--instance and --group)", v.unaudited, at.text);
		goto out;
	}
	ret = a.detailed && (v.unexpected || v.missing) ? CMD_CHANGES : CMD_OK;
out:
	report_out_abort(&out);
	buf_release(&b);
	audit_end(st, &reg);
	free(ag);
	history_groups_free(groups, ngroups);
	store_close(st);
	config_free(cfg);
out_args:
	free(a.instances);
	free(a.groups);
	if (rc > 0)
		return CMD_OK;
	return ret;
}
