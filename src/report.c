/* report.c - diff and snapshot reports in text, JSON, CSV and HTML; see report.h. */
#include "report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

int report_parse_format(const char *s, unsigned allowed)
{
	static const char *const names[] = { "text", "json", "csv", "html", "ndjson" };
	int i;

	for (i = 0; i < 5; i++)
		if (!strcmp(s, names[i]) && (allowed & (1u << i)))
			return i;
	return -1;
}

void report_csv_field(struct cs_buf *out, const char *s, size_t len)
{
	size_t i;
	int quote = 0;

	for (i = 0; i < len && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
	if (!quote) {
		buf_append(out, s, len);
		return;
	}
	buf_putc(out, '"');
	for (i = 0; i < len; i++) {
		if (s[i] == '"')
			buf_putc(out, '"');
		buf_putc(out, s[i]);
	}
	buf_putc(out, '"');
}

void report_html_escape(struct cs_buf *out, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		switch (s[i]) {
		case '&': buf_puts(out, "&amp;"); break;
		case '<': buf_puts(out, "&lt;"); break;
		case '>': buf_puts(out, "&gt;"); break;
		case '"': buf_puts(out, "&quot;"); break;
		case '\'': buf_puts(out, "&#39;"); break;
		default: buf_putc(out, s[i]);
		}
	}
}

void report_text_id(struct cs_buf *out, const char *s, size_t len)
{
	size_t i;
	int plain = 1;

	for (i = 0; i < len && plain; i++)
		plain = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f && s[i] != '\\' && s[i] != '"';
	if (plain) {
		buf_append(out, s, len);
		return;
	}
	/* quoted like git's core.quotePath, so one ID stays one line */
	buf_putc(out, '"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			buf_puts(out, "\\n");
		else if (c == '\t')
			buf_puts(out, "\\t");
		else if (c == '\r')
			buf_puts(out, "\\r");
		else if (c == '\\' || c == '"') {
			buf_putc(out, '\\');
			buf_putc(out, (char)c);
		} else if (c < 0x20 || c == 0x7f)
			buf_printf(out, "\\%03o", c);
		else
			buf_putc(out, (char)c);
	}
	buf_putc(out, '"');
}

static void json_string(struct cs_buf *b, const char *s)
{
	buf_putc(b, '"');
	log_json_escape(b, s);
	buf_putc(b, '"');
}

void report_json_string(struct cs_buf *b, const char *s)
{
	json_string(b, s);
}

/* Flushes a buffer to the stream once it is large, so memory stays bounded. */
static int flush(FILE *out, struct cs_buf *b, int force, struct cs_error *err)
{
	if (b->oom)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	if (!force && b->len < 65536)
		return 0;
	if (b->len && fwrite(b->data, 1, b->len, out) != b->len)
		return cs_error_set(err, CS_ERR_RUNTIME, "cannot write the report");
	buf_reset(b);
	return 0;
}

struct id_sink {
	FILE *out;
	struct cs_buf *b;
	enum report_format fmt;
	const struct diff_report *r;
	const struct diff_group *dg;
	int added;
	int64_t n;
	struct cs_error *err;
};

int report_flush(FILE *out, struct cs_buf *b, int force, struct cs_error *err)
{
	return flush(out, b, force, err);
}

const char *report_device_part(const char *id, size_t len, size_t *dlen)
{
	const char *at = NULL;
	size_t i;

	for (i = 0; i + 3 <= len; i++) {
		if (id[i] == '@' && id[i + 1] == '@' && id[i + 2] == '@') {
			at = id + i + 3;
			break;
		}
	}
	*dlen = at ? len - (size_t)(at - id) : 0;
	return at;
}

static int on_id(void *arg, const char *id, size_t len)
{
	struct id_sink *k = arg;
	struct cs_buf *b = k->b;
	const char *dev;
	size_t dlen;

	switch (k->fmt) {
	case REPORT_TEXT:
		if (k->r->color)
			buf_puts(b, k->added ? "\033[32m" : "\033[31m");
		buf_puts(b, k->added ? "  + " : "  - ");
		report_text_id(b, id, len);
		if (k->r->color)
			buf_puts(b, "\033[0m");
		buf_putc(b, '\n');
		break;
	case REPORT_JSON:
		buf_puts(b, k->n ? ", " : "");
		/* stored IDs never hold a NUL (api.c refuses them), so the string is whole */
		json_string(b, id);
		break;
	case REPORT_CSV:
		report_csv_field(b, k->dg->g->instance_id, strlen(k->dg->g->instance_id));
		buf_putc(b, ',');
		report_csv_field(b, k->dg->g->group_id, strlen(k->dg->g->group_id));
		buf_puts(b, k->added ? ",added," : ",removed,");
		report_csv_field(b, id, len);
		buf_putc(b, ',');
		dev = report_device_part(id, len, &dlen);
		if (dev)
			report_csv_field(b, dev, dlen);
		buf_printf(b, ",%" PRId64 ",%" PRId64 "\r\n", k->dg->from, k->dg->to);
		break;
	case REPORT_HTML:
		buf_puts(b, "<li><code>");
		report_html_escape(b, id, len);
		buf_puts(b, "</code></li>\n");
		break;
	case REPORT_NDJSON:
		buf_puts(b, "{\"type\": \"change\", \"instance_id\": ");
		json_string(b, k->dg->g->instance_id);
		buf_puts(b, ", \"group_id\": ");
		json_string(b, k->dg->g->group_id);
		buf_printf(b, ", \"change\": \"%s\", \"client_id\": ", k->added ? "added" : "removed");
		json_string(b, id);
		buf_puts(b, ", \"device_id\": ");
		dev = report_device_part(id, len, &dlen);
		if (dev)
			json_string(b, dev);
		else
			buf_puts(b, "null");
		buf_printf(b, ", \"from_snapshot\": %" PRId64 ", \"to_snapshot\": %" PRId64 "}\n",
			   k->dg->from, k->dg->to);
		break;
	}
	k->n++;
	return flush(k->out, b, 0, k->err) < 0 ? -1 : 0;
}

static int stream_ids(FILE *out, struct cs_buf *b, enum report_format fmt,
		      const struct diff_report *r, const struct diff_group *dg, int added,
		      struct cs_error *err)
{
	struct id_sink k = { out, b, fmt, r, dg, added, 0, err };
	int rc;

	if (dg->status != DIFF_OK)
		return 0;
	rc = history_diff_ids(r->st, dg->g->group_key, dg->from, dg->to, added, on_id, &k, err);
	return rc ? -1 : 0;
}

static const char *status_note(const struct diff_report *r, const struct diff_group *dg,
			       char *buf, size_t len)
{
	switch (dg->status) {
	case DIFF_NO_TO:
		snprintf(buf, len, "no complete snapshot for '%s'", r->to_text);
		break;
	case DIFF_NO_FROM:
		snprintf(buf, len, "no complete snapshot for '%s' (before snapshot %" PRId64 ")",
			 r->from_text, dg->to);
		break;
	default:
		buf[0] = '\0';
	}
	return buf;
}

static int render_text(FILE *out, struct cs_buf *b, const struct diff_report *r,
		       struct cs_error *err)
{
	char note[256];
	size_t i;

	buf_printf(b, "diff %s..%s: %zu group(s), %" PRId64 " added, %" PRId64 " removed\n",
		   r->from_text, r->to_text, r->n, r->added, r->removed);
	for (i = 0; i < r->n; i++) {
		const struct diff_group *dg = &r->groups[i];

		buf_printf(b, "%s/%s: ", dg->g->instance_id, dg->g->group_id);
		if (dg->status != DIFF_OK) {
			buf_printf(b, "%s; nothing to compare\n", status_note(r, dg, note, sizeof(note)));
			continue;
		}
		buf_printf(b, "snapshot %" PRId64 " -> %" PRId64 ": ", dg->from, dg->to);
		if (!dg->added && !dg->removed)
			buf_puts(b, "no changes\n");
		else
			buf_printf(b, "+%" PRId64 " -%" PRId64 "\n", dg->added, dg->removed);
		if (stream_ids(out, b, REPORT_TEXT, r, dg, 1, err) < 0 ||
		    stream_ids(out, b, REPORT_TEXT, r, dg, 0, err) < 0)
			return -1;
	}
	return 0;
}

static void json_snapshot(struct cs_buf *b, int64_t id)
{
	if (id)
		buf_printf(b, "%" PRId64, id);
	else
		buf_puts(b, "null");
}

static int render_json(FILE *out, struct cs_buf *b, const struct diff_report *r,
		       struct cs_error *err)
{
	static const char *const status[] = { "ok", "no_from_snapshot", "no_to_snapshot" };
	char note[256];
	size_t i;

	buf_puts(b, "{\"from\": ");
	json_string(b, r->from_text);
	buf_puts(b, ", \"to\": ");
	json_string(b, r->to_text);
	buf_puts(b, ", \"groups\": [");
	for (i = 0; i < r->n; i++) {
		const struct diff_group *dg = &r->groups[i];

		buf_puts(b, i ? ",\n  {" : "\n  {");
		buf_puts(b, "\"instance_id\": ");
		json_string(b, dg->g->instance_id);
		buf_puts(b, ", \"group_id\": ");
		json_string(b, dg->g->group_id);
		buf_puts(b, ", \"from_snapshot\": ");
		json_snapshot(b, dg->from);
		buf_puts(b, ", \"to_snapshot\": ");
		json_snapshot(b, dg->to);
		buf_printf(b, ", \"status\": \"%s\"", status[dg->status]);
		if (dg->status != DIFF_OK) {
			buf_puts(b, ", \"note\": ");
			json_string(b, status_note(r, dg, note, sizeof(note)));
		}
		buf_puts(b, ", \"added\": [");
		if (stream_ids(out, b, REPORT_JSON, r, dg, 1, err) < 0)
			return -1;
		buf_puts(b, "], \"removed\": [");
		if (stream_ids(out, b, REPORT_JSON, r, dg, 0, err) < 0)
			return -1;
		buf_puts(b, "]}");
	}
	buf_printf(b, "%s], \"summary\": {\"groups\": %zu, \"added\": %" PRId64 ", \"removed\": %" PRId64
		   "}}\n", r->n ? "\n" : "", r->n, r->added, r->removed);
	return 0;
}

static int render_csv(FILE *out, struct cs_buf *b, const struct diff_report *r,
		      struct cs_error *err)
{
	size_t i;

	buf_puts(b, "instance_id,group_id,change,client_id,device_id,from_snapshot,to_snapshot\r\n");
	for (i = 0; i < r->n; i++)
		if (stream_ids(out, b, REPORT_CSV, r, &r->groups[i], 1, err) < 0 ||
		    stream_ids(out, b, REPORT_CSV, r, &r->groups[i], 0, err) < 0)
			return -1;
	return 0;
}

/* One "group" line per group (its status and counts), then one "change" line per ID. */
static int render_ndjson(FILE *out, struct cs_buf *b, const struct diff_report *r,
			 struct cs_error *err)
{
	static const char *const status[] = { "ok", "no_from_snapshot", "no_to_snapshot" };
	char note[256];
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct diff_group *dg = &r->groups[i];

		buf_puts(b, "{\"type\": \"group\", \"instance_id\": ");
		json_string(b, dg->g->instance_id);
		buf_puts(b, ", \"group_id\": ");
		json_string(b, dg->g->group_id);
		buf_puts(b, ", \"from\": ");
		json_string(b, r->from_text);
		buf_puts(b, ", \"to\": ");
		json_string(b, r->to_text);
		buf_puts(b, ", \"from_snapshot\": ");
		json_snapshot(b, dg->from);
		buf_puts(b, ", \"to_snapshot\": ");
		json_snapshot(b, dg->to);
		buf_printf(b, ", \"status\": \"%s\"", status[dg->status]);
		if (dg->status != DIFF_OK) {
			buf_puts(b, ", \"note\": ");
			json_string(b, status_note(r, dg, note, sizeof(note)));
		}
		buf_printf(b, ", \"added\": %" PRId64 ", \"removed\": %" PRId64 "}\n", dg->added,
			   dg->removed);
		if (stream_ids(out, b, REPORT_NDJSON, r, dg, 1, err) < 0 ||
		    stream_ids(out, b, REPORT_NDJSON, r, dg, 0, err) < 0)
			return -1;
	}
	return 0;
}

void report_html_begin(struct cs_buf *b, const char *title)
{
	/* No script, no external asset; the CSP makes a stray script inert as well. */
	buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		    "style-src 'unsafe-inline'; img-src data:\">\n<title>");
	report_html_escape(b, title, strlen(title));
	buf_puts(b, "</title>\n<style>\n"
		    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;background:#fff}\n"
		    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;"
		    "padding:4px 10px;text-align:left}th{background:#f0f0f0}\n"
		    "td.num{text-align:right}.added{color:#276749}.removed{color:#c53030}"
		    ".muted{color:#777}\n"
		    "code{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}\n"
		    "ul{margin:0.3em 0 1em 0}section{margin-bottom:2em}\n"
		    "</style>\n</head>\n<body>\n");
}

/* An inline SVG line chart of the group's client count over its complete snapshots, with
 * the compared two marked. */
static int html_chart(struct cs_buf *b, const struct diff_report *r, const struct diff_group *dg,
		      struct cs_error *err)
{
	int64_t *ids = NULL, *epochs = NULL, *counts = NULL, lo = INT64_MAX, hi = 0;
	const double w = 640, h = 160, pad = 30;
	size_t n = 0, i;
	char when[21];

	if (history_series(r->st, dg->g->group_key, &ids, &epochs, &counts, &n, err) < 0)
		return -1;
	if (n == 0) {
		buf_puts(b, "<p class=\"muted\">no complete snapshot to chart</p>\n");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (counts[i] < lo)
			lo = counts[i];
		if (counts[i] > hi)
			hi = counts[i];
	}
	if (hi == lo) {
		hi = lo + 1;
		lo = lo > 0 ? lo - 1 : 0;
	}
	buf_printf(b, "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
		   "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"client count "
		   "per snapshot\">\n", w, h, w, h);
	buf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
		   "stroke=\"#ddd\"/>\n", w, h);
	buf_printf(b, "<text x=\"4\" y=\"14\" font-size=\"11\" fill=\"#555\">%" PRId64 "</text>\n", hi);
	buf_printf(b, "<text x=\"4\" y=\"%.0f\" font-size=\"11\" fill=\"#555\">%" PRId64 "</text>\n",
		   h - pad + 4, lo);
	buf_puts(b, "<polyline fill=\"none\" stroke=\"#2b6cb0\" stroke-width=\"2\" points=\"");
	for (i = 0; i < n; i++) {
		double x = n == 1 ? w / 2 : pad + (w - 2 * pad) * (double)i / (double)(n - 1);
		double y = h - pad - (h - 2 * pad) * (double)(counts[i] - lo) / (double)(hi - lo);

		buf_printf(b, "%s%.1f,%.1f", i ? " " : "", x, y);
	}
	buf_puts(b, "\"/>\n");
	for (i = 0; i < n; i++) {
		double x = n == 1 ? w / 2 : pad + (w - 2 * pad) * (double)i / (double)(n - 1);
		double y = h - pad - (h - 2 * pad) * (double)(counts[i] - lo) / (double)(hi - lo);
		int mark = ids[i] == dg->from || ids[i] == dg->to;

		util_format_utc(epochs[i], when);
		buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\"%s><title>snapshot %"
			   PRId64 " at %s: %" PRId64 " clients</title></circle>\n", x, y, mark ? 6 : 3,
			   ids[i] == dg->to ? "#c53030" : ids[i] == dg->from ? "#dd6b20" : "#2b6cb0",
			   mark ? " class=\"compared\"" : "", ids[i], when, counts[i]);
		if (mark)
			buf_printf(b, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"middle\" "
				   "fill=\"#333\">%s %" PRId64 "</text>\n", x, h - 8,
				   ids[i] == dg->to ? "to" : "from", ids[i]);
	}
	buf_puts(b, "</svg>\n");
out:
	free(ids);
	free(epochs);
	free(counts);
	return 0;
}

static int render_html(FILE *out, struct cs_buf *b, const struct diff_report *r,
		       struct cs_error *err)
{
	char when[21], note[256];
	size_t i;

	util_format_utc(r->generated_epoch, when);
	{
		struct cs_buf title = CS_BUF_INIT;

		buf_printf(&title, "credsync diff %s..%s", r->from_text, r->to_text);
		report_html_begin(b, title.oom ? "credsync diff" : buf_str(&title));
		buf_release(&title);
	}
	buf_puts(b, "<h1>credsync diff</h1>\n<p>From <strong>");
	report_html_escape(b, r->from_text, strlen(r->from_text));
	buf_puts(b, "</strong> to <strong>");
	report_html_escape(b, r->to_text, strlen(r->to_text));
	buf_printf(b, "</strong>, generated %s.</p>\n", when);
	buf_printf(b, "<table id=\"summary\">\n<tr><th>groups</th><th>added</th><th>removed</th></tr>\n"
		   "<tr><td class=\"num\" id=\"sum-groups\">%zu</td><td class=\"num added\" "
		   "id=\"sum-added\">%" PRId64 "</td><td class=\"num removed\" id=\"sum-removed\">%"
		   PRId64 "</td></tr>\n</table>\n", r->n, r->added, r->removed);
	buf_puts(b, "<table id=\"groups\">\n<tr><th>instance</th><th>group</th><th>from</th>"
		    "<th>to</th><th>added</th><th>removed</th><th>note</th></tr>\n");
	for (i = 0; i < r->n; i++) {
		const struct diff_group *dg = &r->groups[i];

		buf_puts(b, "<tr><td>");
		report_html_escape(b, dg->g->instance_id, strlen(dg->g->instance_id));
		buf_puts(b, "</td><td>");
		report_html_escape(b, dg->g->group_id, strlen(dg->g->group_id));
		buf_puts(b, "</td><td class=\"num\">");
		if (dg->from)
			buf_printf(b, "%" PRId64, dg->from);
		buf_puts(b, "</td><td class=\"num\">");
		if (dg->to)
			buf_printf(b, "%" PRId64, dg->to);
		buf_printf(b, "</td><td class=\"num added\">%" PRId64 "</td><td class=\"num removed\">%"
			   PRId64 "</td><td>", dg->added, dg->removed);
		status_note(r, dg, note, sizeof(note));
		report_html_escape(b, note, strlen(note));
		buf_puts(b, "</td></tr>\n");
	}
	buf_puts(b, "</table>\n");
	for (i = 0; i < r->n; i++) {
		const struct diff_group *dg = &r->groups[i];

		buf_puts(b, "<section class=\"group\">\n<h2>");
		report_html_escape(b, dg->g->instance_id, strlen(dg->g->instance_id));
		buf_puts(b, " / ");
		report_html_escape(b, dg->g->group_id, strlen(dg->g->group_id));
		buf_puts(b, "</h2>\n");
		if (html_chart(b, r, dg, err) < 0)
			return -1;
		if (dg->status != DIFF_OK) {
			buf_puts(b, "<p class=\"muted\">");
			status_note(r, dg, note, sizeof(note));
			report_html_escape(b, note, strlen(note));
			buf_puts(b, "; nothing to compare.</p>\n</section>\n");
			continue;
		}
		buf_printf(b, "<h3 class=\"added\">added (%" PRId64 ")</h3>\n<ul class=\"added-list\">\n",
			   dg->added);
		if (stream_ids(out, b, REPORT_HTML, r, dg, 1, err) < 0)
			return -1;
		buf_printf(b, "</ul>\n<h3 class=\"removed\">removed (%" PRId64 ")</h3>\n"
			   "<ul class=\"removed-list\">\n", dg->removed);
		if (stream_ids(out, b, REPORT_HTML, r, dg, 0, err) < 0)
			return -1;
		buf_puts(b, "</ul>\n</section>\n");
	}
	buf_puts(b, "</body>\n</html>\n");
	return 0;
}

int report_diff(FILE *out, enum report_format fmt, const struct diff_report *r,
		struct cs_error *err)
{
	struct cs_buf b = CS_BUF_INIT;
	int rc;

	switch (fmt) {
	case REPORT_TEXT: rc = render_text(out, &b, r, err); break;
	case REPORT_JSON: rc = render_json(out, &b, r, err); break;
	case REPORT_CSV: rc = render_csv(out, &b, r, err); break;
	case REPORT_NDJSON: rc = render_ndjson(out, &b, r, err); break;
	default: rc = render_html(out, &b, r, err); break;
	}
	if (rc == 0)
		rc = flush(out, &b, 1, err);
	buf_release(&b);
	return rc;
}

void report_snapshots_begin(struct snap_writer *w)
{
	w->rows = 0;
	if (w->fmt == REPORT_TEXT)
		fprintf(w->out, "%-6s %-5s %-34s %-8s %-20s %9s %7s %7s %4s  %-28s %s\n", "ID", "RUN",
			"INSTANCE/GROUP", "STATUS", "TIME", "CLIENTS", "ADDED", "REMOVED", "CONS",
			"IDENTITY", "ERROR");
	else if (w->fmt == REPORT_JSON)
		fputs("[", w->out);
	else if (w->fmt == REPORT_NDJSON)
		;
	else
		fputs("snapshot_id,run_id,instance_id,group_id,status,started_at,finished_at,"
		      "client_count,added,removed,consistent,error_code,error_message,identity\r\n", w->out);
}

static void opt_int(struct cs_buf *b, int64_t v, const char *null_text)
{
	if (v < 0)
		buf_puts(b, null_text);
	else
		buf_printf(b, "%" PRId64, v);
}

int report_snapshots_row(void *arg, const struct snap_row *r)
{
	struct snap_writer *w = arg;
	struct cs_buf b = CS_BUF_INIT;
	char name[300];

	if (w->fmt == REPORT_TEXT) {
		snprintf(name, sizeof(name), "%s/%s", r->instance_id, r->group_id);
		buf_printf(&b, "%-6" PRId64 " %-5" PRId64 " %-34s %-8s %-20s ", r->snapshot_id,
			   r->run_id, name, r->status, r->finished_at[0] ? r->finished_at : r->started_at);
		if (r->client_count >= 0)
			buf_printf(&b, "%9" PRId64 " %7" PRId64 " %7" PRId64 " %4s  ", r->client_count,
				   r->added, r->removed, r->consistent == 1 ? "yes" : "NO");
		else
			buf_printf(&b, "%9s %7s %7s %4s  ", "-", "-", "-", "-");
		buf_printf(&b, "%-28s ", r->identity[0] ? r->identity : "-");
		if (r->error_code[0]) {
			buf_printf(&b, "%s: ", r->error_code);
			report_text_id(&b, r->error_message, strlen(r->error_message));
		}
		buf_putc(&b, '\n');
	} else if (w->fmt == REPORT_JSON || w->fmt == REPORT_NDJSON) {
		if (w->fmt == REPORT_JSON)
			buf_printf(&b, "%s\n ", w->rows ? "," : "");
		buf_printf(&b, "{\"snapshot_id\": %" PRId64 ", \"run_id\": %" PRId64
			   ", \"instance_id\": ", r->snapshot_id, r->run_id);
		json_string(&b, r->instance_id);
		buf_puts(&b, ", \"group_id\": ");
		json_string(&b, r->group_id);
		buf_printf(&b, ", \"status\": \"%s\", \"started_at\": \"%s\", \"finished_at\": ",
			   r->status, r->started_at);
		if (r->finished_at[0])
			buf_printf(&b, "\"%s\"", r->finished_at);
		else
			buf_puts(&b, "null");
		buf_puts(&b, ", \"pages\": ");
		opt_int(&b, r->pages, "null");
		buf_puts(&b, ", \"client_count\": ");
		opt_int(&b, r->client_count, "null");
		buf_puts(&b, ", \"total_reported\": ");
		opt_int(&b, r->total_reported, "null");
		buf_puts(&b, ", \"added\": ");
		opt_int(&b, r->added, "null");
		buf_puts(&b, ", \"removed\": ");
		opt_int(&b, r->removed, "null");
		buf_puts(&b, ", \"consistent\": ");
		buf_puts(&b, r->consistent < 0 ? "null" : r->consistent ? "true" : "false");
		buf_puts(&b, ", \"error_code\": ");
		if (r->error_code[0])
			json_string(&b, r->error_code);
		else
			buf_puts(&b, "null");
		buf_puts(&b, ", \"error_message\": ");
		if (r->error_message[0])
			json_string(&b, r->error_message);
		else
			buf_puts(&b, "null");
		buf_puts(&b, ", \"identity\": ");
		if (r->identity[0])
			json_string(&b, r->identity);
		else
			buf_puts(&b, "null");
		buf_puts(&b, w->fmt == REPORT_NDJSON ? "}\n" : "}");
	} else {
		buf_printf(&b, "%" PRId64 ",%" PRId64 ",", r->snapshot_id, r->run_id);
		report_csv_field(&b, r->instance_id, strlen(r->instance_id));
		buf_putc(&b, ',');
		report_csv_field(&b, r->group_id, strlen(r->group_id));
		buf_printf(&b, ",%s,%s,%s,", r->status, r->started_at, r->finished_at);
		opt_int(&b, r->client_count, "");
		buf_putc(&b, ',');
		opt_int(&b, r->added, "");
		buf_putc(&b, ',');
		opt_int(&b, r->removed, "");
		buf_putc(&b, ',');
		opt_int(&b, r->consistent, "");
		buf_putc(&b, ',');
		report_csv_field(&b, r->error_code, strlen(r->error_code));
		buf_putc(&b, ',');
		report_csv_field(&b, r->error_message, strlen(r->error_message));
		buf_putc(&b, ',');
		report_csv_field(&b, r->identity, strlen(r->identity));
		buf_puts(&b, "\r\n");
	}
	if (!b.oom)
		fwrite(b.data, 1, b.len, w->out);
	buf_release(&b);
	w->rows++;
	return 0;
}

void report_snapshots_end(struct snap_writer *w)
{
	if (w->fmt == REPORT_JSON)
		fputs(w->rows ? "\n]\n" : "]\n", w->out);
}

int report_out_open(struct report_out *o, const char *path, struct cs_error *err)
{
	memset(o, 0, sizeof(*o));
	o->f = stdout;
	if (!path)
		return 0;
	if (atomic_open(&o->af, path, 0666, err) < 0)
		return -1;
	o->atomic = 1;
	o->f = o->af.f;
	return 0;
}

int report_out_commit(struct report_out *o, struct cs_error *err)
{
	if (o->atomic) {
		o->atomic = 0;
		o->f = NULL;
		return atomic_commit(&o->af, err);
	}
	if (fflush(stdout) != 0)
		return cs_error_set(err, CS_ERR_RUNTIME, "cannot write the report to standard output");
	return 0;
}

void report_out_abort(struct report_out *o)
{
	if (o->atomic)
		atomic_abort(&o->af);
	o->atomic = 0;
}
