/*
 * cmd_history.c - `credsync history ID|GLOB`: every retained event of a client ID (or a
 * device ID, or the IDs a glob matches) and the periods during which it held a credential.
 *
 * One validity interval is one period: its start is an "added" event (a "re-added" one after
 * the client's first period in the group), its end a "removed" one.  Intervals arrive by
 * client, so only the current client's lines are held in memory.  When older snapshots of a
 * group were pruned the report says so (history_pruned_before) instead of pretending the
 * earliest retained event is the first.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "history.h"
#include "report.h"
#include "util.h"

struct history_args {
	const char *pattern;
	struct cli_common c;        /* --format, -o, --instance, --group */
};

static int parse_args(int argc, char **argv, struct cli_globals *g, struct history_args *a,
		      struct cs_error *err)
{
	static const struct option longopts[] = {
		{ "instance", required_argument, NULL, CLI_OPT_INSTANCE },
		{ "group", required_argument, NULL, CLI_OPT_GROUP },
		{ "format", required_argument, NULL, CLI_OPT_FORMAT },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_options o = { "history", CLI_OPERANDS, "o:", longopts, NULL, NULL };
	int rc = cli_parse_options(&o, argc, argv, g, &a->c, err);

	if (rc != 0)
		return rc;
	if (optind >= argc)
		return cs_error_set(err, CS_ERR_USAGE,
				    "history: name a client ID, a device ID or a glob (like 'meter-*')");
	a->pattern = argv[optind++];
	if (!*a->pattern)
		return cs_error_set(err, CS_ERR_USAGE, "history: the ID is empty");
	if (optind < argc)
		return cs_error_set(err, CS_ERR_USAGE, "history: unexpected argument '%s'",
				    argv[optind]);
	return 0;
}

struct sink {
	FILE *out;
	int fmt;
	struct cs_buf b;         /* what goes out */
	struct cs_buf periods;   /* the current client's periods (text, JSON) */
	struct cs_buf client;    /* the current client's ID */
	const struct group_row *g;
	int64_t pruned_before, latest;
	int64_t nperiods;        /* of the current client */
	int64_t clients, events;
	struct cs_error *err;
};

static void json_opt_snap(struct cs_buf *b, int64_t id)
{
	if (id)
		buf_printf(b, "%" PRId64, id);
	else
		buf_puts(b, "null");
}

static void json_opt_text(struct cs_buf *b, const char *s)
{
	if (*s)
		report_json_string(b, s);
	else
		buf_puts(b, "null");
}

static void json_ident(struct sink *k, const char *id, size_t len)
{
	struct cs_buf *b = &k->b;
	size_t dlen;
	const char *dev = report_device_part(id, len, &dlen);

	buf_puts(b, "\"instance_id\": ");
	report_json_string(b, k->g->instance_id);
	buf_puts(b, ", \"group_id\": ");
	report_json_string(b, k->g->group_id);
	buf_puts(b, ", \"client_id\": ");
	report_json_string(b, id);
	buf_puts(b, ", \"device_id\": ");
	if (dev)
		report_json_string(b, dev);
	else
		buf_puts(b, "null");
}

/* Closes the current client's record (JSON) or prints its periods (text). */
static void end_client(struct sink *k)
{
	if (!k->client.len)
		return;
	if (k->fmt == REPORT_TEXT) {
		buf_append(&k->b, k->periods.data, k->periods.len);
	} else if (k->fmt == REPORT_JSON) {
		buf_puts(&k->b, "], \"periods\": [");
		buf_append(&k->b, k->periods.data, k->periods.len);
		buf_puts(&k->b, "]}");
	}
	buf_reset(&k->periods);
	buf_reset(&k->client);
}

static void begin_client(struct sink *k, const char *id, size_t len)
{
	struct cs_buf *b = &k->b;

	end_client(k);
	buf_append(&k->client, id, len);
	k->nperiods = 0;
	if (k->fmt == REPORT_TEXT) {
		buf_printf(b, "%s/%s ", k->g->instance_id, k->g->group_id);
		report_text_id(b, id, len);
		buf_putc(b, '\n');
	} else if (k->fmt == REPORT_JSON) {
		buf_puts(b, k->clients ? ",\n  {" : "\n  {");
		json_ident(k, id, len);
		buf_puts(b, ", \"history_pruned_before\": ");
		json_opt_snap(b, k->pruned_before);
		buf_puts(b, ", \"events\": [");
	}
	k->clients++;
}

static void event(struct sink *k, const struct history_interval *iv, const char *what,
		  int64_t snap, int64_t run, const char *at)
{
	struct cs_buf *b = &k->b;

	switch (k->fmt) {
	case REPORT_TEXT:
		buf_printf(b, "  %-8s  snapshot %" PRId64, what, snap);
		if (run)
			buf_printf(b, "  run %" PRId64 "  %s\n", run, at);
		else
			buf_puts(b, "  (pruned: its run and time are gone)\n");
		break;
	case REPORT_JSON:
		buf_puts(b, k->nperiods || strcmp(what, "added") ? ", " : "");
		buf_printf(b, "{\"event\": \"%s\", \"snapshot_id\": %" PRId64 ", \"run_id\": ", what,
			   snap);
		json_opt_snap(b, run);
		buf_puts(b, ", \"at\": ");
		json_opt_text(b, at);
		buf_putc(b, '}');
		break;
	case REPORT_CSV:
		report_csv_field(b, k->g->instance_id, strlen(k->g->instance_id));
		buf_putc(b, ',');
		report_csv_field(b, k->g->group_id, strlen(k->g->group_id));
		buf_putc(b, ',');
		report_csv_field(b, iv->client_id, iv->client_len);
		buf_putc(b, ',');
		{
			size_t dlen;
			const char *dev = report_device_part(iv->client_id, iv->client_len, &dlen);

			if (dev)
				report_csv_field(b, dev, dlen);
		}
		buf_printf(b, ",%s,%" PRId64 ",", what, snap);
		if (run)
			buf_printf(b, "%" PRId64, run);
		buf_printf(b, ",%s,", at);
		if (k->pruned_before)
			buf_printf(b, "%" PRId64, k->pruned_before);
		buf_puts(b, "\r\n");
		break;
	case REPORT_NDJSON:
		buf_puts(b, "{\"type\": \"event\", ");
		json_ident(k, iv->client_id, iv->client_len);
		buf_printf(b, ", \"event\": \"%s\", \"snapshot_id\": %" PRId64 ", \"run_id\": ", what,
			   snap);
		json_opt_snap(b, run);
		buf_puts(b, ", \"at\": ");
		json_opt_text(b, at);
		buf_puts(b, ", \"history_pruned_before\": ");
		json_opt_snap(b, k->pruned_before);
		buf_puts(b, "}\n");
		break;
	}
	k->events++;
}

static void period(struct sink *k, const struct history_interval *iv)
{
	struct cs_buf *p = &k->periods, *b = &k->b;

	switch (k->fmt) {
	case REPORT_TEXT:
		buf_printf(p, "  held from snapshot %" PRId64 " (%s) ", iv->from_snap,
			   iv->from_at[0] ? iv->from_at : "pruned");
		if (iv->to_snap)
			buf_printf(p, "until snapshot %" PRId64 " (%s)\n", iv->to_snap,
				   iv->to_at[0] ? iv->to_at : "pruned");
		else
			buf_printf(p, "until now (still held at snapshot %" PRId64 ")\n", k->latest);
		break;
	case REPORT_JSON:
	case REPORT_NDJSON:
		if (k->fmt == REPORT_NDJSON) {
			p = b;
			buf_puts(p, "{\"type\": \"period\", ");
			json_ident(k, iv->client_id, iv->client_len);
			buf_puts(p, ", ");
		} else {
			buf_puts(p, k->nperiods ? ", {" : "{");
		}
		buf_printf(p, "\"from_snapshot\": %" PRId64 ", \"from\": ", iv->from_snap);
		json_opt_text(p, iv->from_at);
		buf_puts(p, ", \"to_snapshot\": ");
		json_opt_snap(p, iv->to_snap);
		buf_puts(p, ", \"to\": ");
		json_opt_text(p, iv->to_at);
		buf_printf(p, ", \"held\": %s}%s", iv->to_snap ? "false" : "true",
			   k->fmt == REPORT_NDJSON ? "\n" : "");
		break;
	default:
		break;
	}
}

static int on_interval(void *arg, const struct history_interval *iv)
{
	struct sink *k = arg;

	if (k->client.len != iv->client_len || memcmp(k->client.data, iv->client_id, iv->client_len))
		begin_client(k, iv->client_id, iv->client_len);
	event(k, iv, k->nperiods ? "re-added" : "added", iv->from_snap, iv->from_run, iv->from_at);
	if (iv->to_snap)
		event(k, iv, "removed", iv->to_snap, iv->to_run, iv->to_at);
	period(k, iv);
	k->nperiods++;
	return report_flush(k->out, &k->b, 0, k->err) < 0 ? -1 : 0;
}

int cmd_history(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	static const struct diff_ref latest = { REF_LATEST, 0, "latest" };
	struct history_args a;
	struct config *cfg = NULL;
	struct store *st = NULL;
	struct group_row *groups = NULL;
	struct report_out out;
	struct sink k;
	struct cs_buf pruned = CS_BUF_INIT, pruned_json = CS_BUF_INIT;
	const char *db_path;
	size_t ngroups = 0, i;
	int ret, rc, is_glob;

	memset(&a, 0, sizeof(a));
	memset(&out, 0, sizeof(out));
	memset(&k, 0, sizeof(k));
	ret = parse_args(argc, argv, g, &a, err);
	if (ret != 0)
		goto out;
	ret = -1;
	cli_setup_logging(g);
	/* an ID holding a glob character can still be asked for exactly: [*] matches '*' */
	is_glob = strpbrk(a.pattern, "*?[") != NULL;
	if (cli_database(g, 0, &cfg, &db_path, err) < 0 ||
	    store_open(&st, db_path, STORE_READ, err) < 0 ||
	    cli_select_groups("history", st, db_path, &a.c, &groups, &ngroups, err) < 0)
		goto out;
	if (report_out_open(&out, a.c.output, err) < 0)
		goto out;
	k.out = out.f;
	k.fmt = a.c.format;
	k.err = err;
	if (a.c.format == REPORT_JSON) {
		buf_puts(&k.b, "{\"query\": ");
		report_json_string(&k.b, a.pattern);
		buf_printf(&k.b, ", \"glob\": %s, \"clients\": [", is_glob ? "true" : "false");
	} else if (a.c.format == REPORT_CSV) {
		buf_puts(&k.b, "instance_id,group_id,client_id,device_id,event,snapshot_id,run_id,at,"
			       "history_pruned_before\r\n");
	}
	for (i = 0; i < ngroups; i++) {
		int64_t before_clients = k.clients;

		k.g = &groups[i];
		if (history_pruned_before(st, groups[i].group_key, &k.pruned_before, err) < 0 ||
		    history_resolve(st, groups[i].group_key, &latest, 0, &k.latest, err) < 0)
			goto out;
		rc = history_intervals(st, groups[i].group_key, a.pattern, is_glob, on_interval, &k, err);
		if (rc != 0)
			goto out;
		end_client(&k);
		if (!k.pruned_before)
			continue;
		/* the notice, for every selected group: an ID absent now may be in what was pruned */
		if (a.c.format == REPORT_TEXT && k.clients > before_clients)
			buf_printf(&k.b, "%s/%s: history before snapshot %" PRId64 " was pruned\n",
				   groups[i].instance_id, groups[i].group_id, k.pruned_before);
		if (pruned.len) {
			buf_puts(&pruned, "; ");
			buf_puts(&pruned_json, ", ");
		}
		buf_printf(&pruned, "%s/%s: history before snapshot %" PRId64 " was pruned",
			   groups[i].instance_id, groups[i].group_id, k.pruned_before);
		buf_puts(&pruned_json, "{\"instance_id\": ");
		report_json_string(&pruned_json, groups[i].instance_id);
		buf_puts(&pruned_json, ", \"group_id\": ");
		report_json_string(&pruned_json, groups[i].group_id);
		buf_printf(&pruned_json, ", \"before_snapshot\": %" PRId64 "}", k.pruned_before);
	}
	if (a.c.format == REPORT_JSON)
		buf_printf(&k.b, "%s], \"pruned\": [%s], \"summary\": {\"clients\": %" PRId64
			   ", \"events\": %" PRId64 "}}\n", k.clients ? "\n" : "", buf_str(&pruned_json),
			   k.clients, k.events);
	if (pruned.oom || pruned_json.oom) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!k.clients) {
		/* nothing is written: a script sees exit 1 and no half report */
		cs_error_set(err, CS_ERR_RUNTIME, "history: no client ID or device ID %s '%s' in any "
			     "retained snapshot of %zu group(s)%s%s", is_glob ? "matches" : "equals",
			     a.pattern, ngroups, pruned.len ? "; " : "", buf_str(&pruned));
		goto out;
	}
	if (report_flush(out.f, &k.b, 1, err) < 0 || report_out_commit(&out, err) < 0)
		goto out;
	ret = CMD_OK;
out:
	report_out_abort(&out);
	buf_release(&k.b);
	buf_release(&k.periods);
	buf_release(&k.client);
	buf_release(&pruned);
	buf_release(&pruned_json);
	history_groups_free(groups, ngroups);
	store_close(st);
	config_free(cfg);
	cli_common_release(&a.c);
	return ret;
}
