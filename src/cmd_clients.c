/*
 * cmd_clients.c - `credsync clients`: the members of each selected group at a REF, with the
 * snapshot each row comes from.
 *
 * The IDs are streamed from SQLite in the interval table's key order, so memory does not grow
 * with the inventory.  A group with no complete snapshot at the REF is said to have none (a
 * note on stderr, a status in JSON), never shown as empty.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "history.h"
#include "report.h"
#include "util.h"

struct clients_args {
	const char *at, *match;
	struct cli_common c;        /* --format, -o, --instance, --group */
};

enum { O_AT = 0x2501, O_MATCH };

static int on_option(void *arg, int c, const char *v, struct cs_error *err)
{
	struct clients_args *a = arg;

	(void)err;
	if (c == O_AT)
		a->at = v;
	else if (c == O_MATCH)
		a->match = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct cli_globals *g, struct clients_args *a,
		      struct cs_error *err)
{
	static const struct option longopts[] = {
		{ "at", required_argument, NULL, O_AT },
		{ "instance", required_argument, NULL, CLI_OPT_INSTANCE },
		{ "group", required_argument, NULL, CLI_OPT_GROUP },
		{ "match", required_argument, NULL, O_MATCH },
		{ "format", required_argument, NULL, CLI_OPT_FORMAT },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_options o = { "clients", 0, "o:", longopts, on_option, a };

	return cli_parse_options(&o, argc, argv, g, &a->c, err);
}

struct sink {
	FILE *out;
	struct cs_buf b;
	int fmt;
	const struct group_row *g;
	int64_t snapshot_id;
	const char *snapshot_at;
	int64_t n, total;
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

static int on_client(void *arg, const char *id, size_t len)
{
	struct sink *k = arg;
	struct cs_buf *b = &k->b;
	const char *dev;
	size_t dlen;

	switch (k->fmt) {
	case REPORT_TEXT:
		buf_puts(b, k->g->instance_id);
		buf_putc(b, '\t');
		buf_puts(b, k->g->group_id);
		buf_printf(b, "\t%" PRId64 "\t", k->snapshot_id);
		report_text_id(b, id, len);
		buf_putc(b, '\n');
		break;
	case REPORT_JSON:
		buf_puts(b, k->n ? ",\n    " : "\n    ");
		report_json_string(b, id);
		break;
	case REPORT_CSV:
		report_csv_field(b, k->g->instance_id, strlen(k->g->instance_id));
		buf_putc(b, ',');
		report_csv_field(b, k->g->group_id, strlen(k->g->group_id));
		buf_printf(b, ",%" PRId64 ",%s,", k->snapshot_id, k->snapshot_at);
		report_csv_field(b, id, len);
		buf_putc(b, ',');
		dev = report_device_part(id, len, &dlen);
		if (dev)
			report_csv_field(b, dev, dlen);
		buf_puts(b, "\r\n");
		break;
	case REPORT_NDJSON:
		buf_puts(b, "{\"type\": \"client\", \"instance_id\": ");
		report_json_string(b, k->g->instance_id);
		buf_puts(b, ", \"group_id\": ");
		report_json_string(b, k->g->group_id);
		buf_printf(b, ", \"snapshot_id\": %" PRId64 ", \"snapshot_at\": \"%s\", \"client_id\": ",
			   k->snapshot_id, k->snapshot_at);
		report_json_string(b, id);
		buf_puts(b, ", \"device_id\": ");
		json_device(b, id, len);
		buf_puts(b, "}\n");
		break;
	}
	k->n++;
	return report_flush(k->out, b, 0, k->err) < 0 ? -1 : 0;
}

/* A snapshot REF names one group's snapshot: that group alone is listed. */
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
		return cs_error_set(err, CS_ERR_USAGE, "clients: there is no snapshot %s", ref->text);
	if (strcmp(row.status, "complete"))
		return cs_error_set(err, CS_ERR_USAGE,
				    "clients: snapshot %s is %s, not complete; only a complete snapshot "
				    "says who held a credential", ref->text, row.status);
	*group_key = row.group_key;
	return 0;
}

static void group_head(struct sink *k, const char *status, const char *ref_text)
{
	struct cs_buf *b = &k->b;

	if (k->fmt == REPORT_JSON) {
		buf_puts(b, k->total ? ",\n  {\"instance_id\": " : "\n  {\"instance_id\": ");
		report_json_string(b, k->g->instance_id);
		buf_puts(b, ", \"group_id\": ");
		report_json_string(b, k->g->group_id);
		buf_printf(b, ", \"status\": \"%s\", \"snapshot_id\": ", status);
		if (k->snapshot_id)
			buf_printf(b, "%" PRId64 ", \"snapshot_at\": \"%s\"", k->snapshot_id,
				   k->snapshot_at);
		else
			buf_puts(b, "null, \"snapshot_at\": null");
		buf_puts(b, ", \"clients\": [");
	} else if (k->fmt == REPORT_NDJSON && !k->snapshot_id) {
		buf_puts(b, "{\"type\": \"group\", \"instance_id\": ");
		report_json_string(b, k->g->instance_id);
		buf_puts(b, ", \"group_id\": ");
		report_json_string(b, k->g->group_id);
		buf_puts(b, ", \"status\": \"no_snapshot\", \"at\": ");
		report_json_string(b, ref_text);
		buf_puts(b, "}\n");
	}
}

int cmd_clients(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	struct clients_args a;
	struct config *cfg = NULL;
	struct store *st = NULL;
	struct group_row *groups = NULL;
	struct report_out out;
	struct diff_ref at;
	struct sink k;
	const char *db_path;
	int64_t pinned = 0, clients = 0, missing = 0;
	size_t ngroups = 0, i, listed = 0;
	int ret;

	memset(&a, 0, sizeof(a));
	memset(&out, 0, sizeof(out));
	memset(&k, 0, sizeof(k));
	ret = parse_args(argc, argv, g, &a, err);
	if (ret != 0)
		goto out;
	ret = -1;
	cli_setup_logging(g);
	if (history_parse_ref(a.at ? a.at : "latest", util_now_epoch(), &at, err) < 0) {
		cs_error_prefix(err, "clients: --at: ");
		goto out;
	}
	if (cli_database(g, 0, &cfg, &db_path, err) < 0 ||
	    store_open(&st, db_path, STORE_READ, err) < 0 || pin_group(st, &at, &pinned, err) < 0 ||
	    cli_select_groups("clients", st, db_path, &a.c, &groups, &ngroups, err) < 0)
		goto out;
	if (report_out_open(&out, a.c.output, err) < 0)
		goto out;
	k.out = out.f;
	k.fmt = a.c.format;
	k.err = err;
	if (a.c.format == REPORT_JSON) {
		buf_puts(&k.b, "{\"at\": ");
		report_json_string(&k.b, at.text);
		buf_puts(&k.b, ", \"match\": ");
		if (a.match)
			report_json_string(&k.b, a.match);
		else
			buf_puts(&k.b, "null");
		buf_puts(&k.b, ", \"groups\": [");
	} else if (a.c.format == REPORT_CSV) {
		buf_puts(&k.b, "instance_id,group_id,snapshot_id,snapshot_at,client_id,device_id\r\n");
	}
	for (i = 0; i < ngroups; i++) {
		struct snap_row row;
		int found = 0;

		if (pinned && groups[i].group_key != pinned)
			continue;
		k.g = &groups[i];
		k.n = 0;
		k.snapshot_at = "";
		if (history_resolve(st, groups[i].group_key, &at, 0, &k.snapshot_id, err) < 0 ||
		    (k.snapshot_id && history_snapshot(st, k.snapshot_id, &row, &found, err) < 0))
			goto out;
		if (found)
			k.snapshot_at = row.finished_at;
		group_head(&k, k.snapshot_id ? "ok" : "no_snapshot", at.text);
		if (!k.snapshot_id) {
			log_msg(LOG_WARN, NULL, "clients: %s/%s: no complete snapshot at '%s'",
				groups[i].instance_id, groups[i].group_id, at.text);
			missing++;
		} else if (history_members(st, groups[i].group_key, k.snapshot_id, a.match, on_client,
					   &k, err) != 0) {
			goto out;
		}
		if (a.c.format == REPORT_JSON)
			buf_printf(&k.b, "%s], \"count\": %" PRId64 "}", k.n ? "\n  " : "", k.n);
		clients += k.n;
		k.total++;
		listed++;
	}
	if (a.c.format == REPORT_JSON)
		buf_printf(&k.b, "%s], \"summary\": {\"groups\": %zu, \"groups_without_snapshot\": %"
			   PRId64 ", \"clients\": %" PRId64 "}}\n", listed ? "\n" : "", listed, missing,
			   clients);
	if (report_flush(out.f, &k.b, 1, err) < 0 || report_out_commit(&out, err) < 0)
		goto out;
	log_msg(LOG_INFO, NULL, "clients at '%s': %" PRId64 " client(s) in %zu group(s)", at.text,
		clients, listed);
	ret = CMD_OK;
out:
	report_out_abort(&out);
	buf_release(&k.b);
	history_groups_free(groups, ngroups);
	store_close(st);
	config_free(cfg);
	cli_common_release(&a.c);
	return ret;
}
