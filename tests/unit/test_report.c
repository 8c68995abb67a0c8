/*
 * Report formatting (report.c): a small diff of hostile client IDs (quotes, commas, CR/LF,
 * tabs, backslashes, control bytes, <script>, non-ASCII, a second "@@@", a formula) written
 * as text (exact, with and without colour), CSV (exact: RFC 4180 quoting, CRLF), JSON and
 * NDJSON (parsed back with cJSON: every ID byte for byte) and HTML (escaped, no script, the
 * CSP line); snapshot lists in every list format; and the escapers on their own.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "history.h"
#include "report.h"
#include "store.h"
#include "test.h"
#include "util.h"

static char dir[] = "/tmp/credsync-test-report-XXXXXX";
static char path[256];

/* The added IDs in the store's (byte) order, and the removed ones. */
static const char *const added_ids[] = {
	"=cmd|' /C calc'!A0",
	"GID_a@@@<script>x</script>",
	"GID_a@@@amp&'x",
	"GID_a@@@back\\slash",
	"GID_a@@@com,ma",
	"GID_a@@@cr\rx",
	"GID_a@@@ctl\001x",
	"GID_a@@@dev@@@twice",
	"GID_a@@@new\nline",
	"GID_a@@@q\"uote",
	"GID_a@@@tab\tx",
	"GID_a@@@\xe8\xae\xbe\xe5\xa4\x87-1",   /* 设备-1 */
};
#define NADDED (sizeof(added_ids) / sizeof(added_ids[0]))
static const char *const removed_ids[] = { "GID_a@@@gone", "GID_a@@@gone\"2" };

static const struct store_resume resume = { 0, 3600, 3600 };

static int64_t complete(struct store *st, int64_t run, const char *inst, const char *group,
			const char *const *ids, size_t n)
{
	struct store_snap snap;
	struct store_tally t;
	struct cs_error err = { 0 };
	size_t lens[32], i;
	int64_t id;

	for (i = 0; i < n; i++)
		lens[i] = strlen(ids[i]);
	CHECK(store_snapshot_begin(st, run, inst, group, &resume, &snap, &err) == 0);
	CHECK(store_begin(st, &err) == 0);
	CHECK(store_stage_page(st, &snap, ids, lens, n, &err) == 0);
	snap.cs.page_no = 0;
	snap.cs.pages = 1;
	snap.cs.staged_ids = (int64_t)n;
	snap.cs.total_reported = (int64_t)n;
	CHECK(store_checkpoint(st, &snap, &err) == 0);
	CHECK(store_commit(st, &err) == 0);
	CHECK(store_finalize_begin(st, &snap, 0, &t, &err) == 0);
	CHECK(store_finalize_commit(st, &snap, STORE_CONSISTENT, &t, &err) == 0);
	id = snap.snapshot_id;
	store_snap_release(&snap);
	if (err.kind)
		fprintf(stderr, "store error: %s\n", err.msg);
	return id;
}

/* SQL of the test's own, on a connection of its own to the store's file (the store lends
 * its handle to nobody). */
static void exec(struct store *st, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	if (sqlite3_open_v2(store_path(st), &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(db, 5000) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "test SQL %s: %s\n", sql, msg ? msg : sqlite3_errmsg(db));
		CHECK(0);
	}
	sqlite3_free(msg);
	sqlite3_close(db);
}

static struct store *st;
static int64_t a1, a2, b2, bf;
static struct group_row rows[3];
static struct diff_group dgs[3];
static struct diff_report rep;

/*
 * run 1: mqtt-a/GID_a {keep, gone, gone"2}          snapshot a1
 * run 2: mqtt-a/GID_a {keep, the hostile 12}        snapshot a2
 *        mqtt-a/GID_b {x}                           snapshot b2 (its first)
 * run 3: mqtt-a/GID_b fails (a hostile message)     snapshot bf
 * mqtt-b/GID_c is known to no snapshot at all.
 */
static int build(void)
{
	static const char *const first[] = { "GID_a@@@keep", "GID_a@@@gone", "GID_a@@@gone\"2" };
	const char *second[NADDED + 1];
	static const char *const gb[] = { "GID_b@@@x" };
	struct cs_error err = { 0 };
	struct store_run_stats stats = { "complete", 1, 0, 1, 0, 0 };
	struct store_snap snap;
	int64_t run;
	size_t i;

	if (store_open(&st, path, STORE_WRITE, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		return -1;
	}
	second[0] = "GID_a@@@keep";
	for (i = 0; i < NADDED; i++)
		second[i + 1] = added_ids[i];
	CHECK(store_run_begin(st, &run, &err) == 0);
	a1 = complete(st, run, "mqtt-a", "GID_a", first, 3);
	CHECK(store_run_finish(st, run, &stats, &err) == 0);
	CHECK(store_run_begin(st, &run, &err) == 0);
	a2 = complete(st, run, "mqtt-a", "GID_a", second, NADDED + 1);
	b2 = complete(st, run, "mqtt-a", "GID_b", gb, 1);
	CHECK(store_snapshot_set_identity(st, b2, "profile:ops, AccessKey LTAI****abcd", &err) == 0);
	CHECK(store_run_finish(st, run, &stats, &err) == 0);
	CHECK(store_run_begin(st, &run, &err) == 0);
	CHECK(store_snapshot_begin(st, run, "mqtt-a", "GID_b", &resume, &snap, &err) == 0);
	CHECK(store_snapshot_fail(st, &snap, "Throttling.User", "say \"hi\",\nthen <b>", "REQ-9", 0,
				  &err) == 0);
	bf = snap.snapshot_id;
	store_snap_release(&snap);
	stats.status = "partial";
	CHECK(store_run_finish(st, run, &stats, &err) == 0);
	/* fixed times, so the lists can be compared exactly */
	exec(st, "UPDATE cs_snapshot SET started_at = '2026-11-27T01:00:00Z',"
		 " finished_at = '2026-11-27T01:00:05Z'");
	exec(st, "UPDATE cs_snapshot SET read_last_epoch = 1795741200 + snapshot_id");
	CHECK(a1 == 1 && a2 == 2 && b2 == 3 && bf == 4);

	rows[0].instance_id = "mqtt-a";
	rows[0].group_id = "GID_a";
	rows[1].instance_id = "mqtt-a";
	rows[1].group_id = "GID_b";
	rows[2].instance_id = "mqtt-b";
	rows[2].group_id = "GID_c";
	{
		struct group_row *g = NULL;
		size_t n = 0;

		CHECK(history_groups(st, NULL, NULL, &g, &n, &err) == 0);
		CHECK_INT(n, 2);
		for (i = 0; i < n && i < 2; i++)
			rows[i].group_key = g[i].group_key;
		history_groups_free(g, n);
	}
	rows[2].group_key = 999;
	dgs[0].g = &rows[0];
	dgs[0].status = DIFF_OK;
	dgs[0].from = a1;
	dgs[0].to = a2;
	CHECK(history_diff_counts(st, rows[0].group_key, a1, a2, &dgs[0].added, &dgs[0].removed,
				  &err) == 0);
	CHECK_INT(dgs[0].added, NADDED);
	CHECK_INT(dgs[0].removed, 2);
	dgs[1].g = &rows[1];
	dgs[1].status = DIFF_NO_FROM;
	dgs[1].to = b2;
	dgs[2].g = &rows[2];
	dgs[2].status = DIFF_NO_TO;
	rep.st = st;
	rep.from_text = "previous";
	rep.to_text = "latest";
	rep.groups = dgs;
	rep.n = 3;
	rep.added = dgs[0].added;
	rep.removed = dgs[0].removed;
	rep.generated_epoch = 1795744800;  /* 2026-11-27T02:00:00Z */
	return 0;
}

/* Renders a diff report into a malloc'd string. */
static char *render(enum report_format fmt, const struct diff_report *r, size_t *len)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	struct cs_error err = { 0 };

	if (!f)
		return NULL;
	CHECK_INT(report_diff(f, fmt, r, &err), 0);
	if (err.kind)
		fprintf(stderr, "report_diff: %s\n", err.msg);
	fclose(f);
	if (len)
		*len = n;
	return out;
}

static void test_text(void)
{
	static const char want[] =
		"diff previous..latest: 3 group(s), 12 added, 2 removed\n"
		"mqtt-a/GID_a: snapshot 1 -> 2: +12 -2\n"
		"  + =cmd|' /C calc'!A0\n"
		"  + GID_a@@@<script>x</script>\n"
		"  + GID_a@@@amp&'x\n"
		"  + \"GID_a@@@back\\\\slash\"\n"
		"  + GID_a@@@com,ma\n"
		"  + \"GID_a@@@cr\\rx\"\n"
		"  + \"GID_a@@@ctl\\001x\"\n"
		"  + GID_a@@@dev@@@twice\n"
		"  + \"GID_a@@@new\\nline\"\n"
		"  + \"GID_a@@@q\\\"uote\"\n"
		"  + \"GID_a@@@tab\\tx\"\n"
		"  + GID_a@@@\xe8\xae\xbe\xe5\xa4\x87-1\n"
		"  - GID_a@@@gone\n"
		"  - \"GID_a@@@gone\\\"2\"\n"
		"mqtt-a/GID_b: no complete snapshot for 'previous' (before snapshot 3); nothing to compare\n"
		"mqtt-b/GID_c: no complete snapshot for 'latest'; nothing to compare\n";
	struct diff_report r = rep;
	struct diff_group same = dgs[0];
	char *out = render(REPORT_TEXT, &rep, NULL);

	CHECK_STR(out, want);
	free(out);

	/* on a terminal: each line in its colour, the ID still quoted */
	r.color = 1;
	out = render(REPORT_TEXT, &r, NULL);
	CHECK_CONTAINS(out, "\n\033[32m  + GID_a@@@com,ma\033[0m\n");
	CHECK_CONTAINS(out, "\n\033[32m  + \"GID_a@@@new\\nline\"\033[0m\n");
	CHECK_CONTAINS(out, "\n\033[31m  - GID_a@@@gone\033[0m\n");
	free(out);

	/* the same snapshot on both sides */
	same.from = same.to = a2;
	same.added = same.removed = 0;
	r.color = 0;
	r.groups = &same;
	r.n = 1;
	r.added = r.removed = 0;
	r.from_text = r.to_text = "latest";
	out = render(REPORT_TEXT, &r, NULL);
	CHECK_STR(out, "diff latest..latest: 1 group(s), 0 added, 0 removed\n"
		       "mqtt-a/GID_a: snapshot 2 -> 2: no changes\n");
	free(out);

	/* no group at all */
	r.n = 0;
	out = render(REPORT_TEXT, &r, NULL);
	CHECK_STR(out, "diff latest..latest: 0 group(s), 0 added, 0 removed\n");
	free(out);
}

static void test_csv(void)
{
	static const char want[] =
		"instance_id,group_id,change,client_id,device_id,from_snapshot,to_snapshot\r\n"
		"mqtt-a,GID_a,added,=cmd|' /C calc'!A0,,1,2\r\n"
		"mqtt-a,GID_a,added,GID_a@@@<script>x</script>,<script>x</script>,1,2\r\n"
		"mqtt-a,GID_a,added,GID_a@@@amp&'x,amp&'x,1,2\r\n"
		"mqtt-a,GID_a,added,GID_a@@@back\\slash,back\\slash,1,2\r\n"
		"mqtt-a,GID_a,added,\"GID_a@@@com,ma\",\"com,ma\",1,2\r\n"
		"mqtt-a,GID_a,added,\"GID_a@@@cr\rx\",\"cr\rx\",1,2\r\n"
		"mqtt-a,GID_a,added,GID_a@@@ctl\001x,ctl\001x,1,2\r\n"
		"mqtt-a,GID_a,added,GID_a@@@dev@@@twice,dev@@@twice,1,2\r\n"
		"mqtt-a,GID_a,added,\"GID_a@@@new\nline\",\"new\nline\",1,2\r\n"
		"mqtt-a,GID_a,added,\"GID_a@@@q\"\"uote\",\"q\"\"uote\",1,2\r\n"
		"mqtt-a,GID_a,added,GID_a@@@tab\tx,tab\tx,1,2\r\n"
		"mqtt-a,GID_a,added,GID_a@@@\xe8\xae\xbe\xe5\xa4\x87-1,\xe8\xae\xbe\xe5\xa4\x87-1,1,2\r\n"
		"mqtt-a,GID_a,removed,GID_a@@@gone,gone,1,2\r\n"
		"mqtt-a,GID_a,removed,\"GID_a@@@gone\"\"2\",\"gone\"\"2\",1,2\r\n";
	char *out = render(REPORT_CSV, &rep, NULL);

	/* groups without both sides have no rows: CSV lists changes only */
	CHECK_STR(out, want);
	free(out);
}

static const cJSON *item(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = item(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long long num(const cJSON *o, const char *k)
{
	const cJSON *v = item(o, k);

	return cJSON_IsNumber(v) ? (long long)v->valuedouble : -12345;
}

/* The strings of a JSON array are exactly want[0..n). */
static void check_ids(const cJSON *arr, const char *const *want, size_t n)
{
	size_t i = 0;
	const cJSON *v;

	CHECK(cJSON_IsArray(arr));
	CHECK_INT(cJSON_GetArraySize(arr), n);
	cJSON_ArrayForEach(v, arr) {
		CHECK(cJSON_IsString(v));
		if (i < n && cJSON_IsString(v))
			CHECK_STR(v->valuestring, want[i]);
		i++;
	}
}

static void test_json(void)
{
	char *out = render(REPORT_JSON, &rep, NULL);
	cJSON *doc = out ? cJSON_Parse(out) : NULL;
	const cJSON *groups, *g, *sum;

	CHECK(doc != NULL);
	if (!doc) {
		fprintf(stderr, "not JSON: %s\n", out ? out : "(null)");
		free(out);
		return;
	}
	/* the hostile bytes are escaped: one document, nothing raw that JSON forbids */
	CHECK(!strchr(out, '\r') && !strchr(out, '\t') && !strchr(out, '\001'));
	CHECK_CONTAINS(out, "\"GID_a@@@ctl\\u0001x\"");
	CHECK_CONTAINS(out, "\"GID_a@@@\xe8\xae\xbe\xe5\xa4\x87-1\"");  /* UTF-8 kept as is */
	CHECK_STR(str(doc, "from"), "previous");
	CHECK_STR(str(doc, "to"), "latest");
	groups = item(doc, "groups");
	CHECK_INT(cJSON_GetArraySize(groups), 3);

	g = cJSON_GetArrayItem(groups, 0);
	CHECK_STR(str(g, "instance_id"), "mqtt-a");
	CHECK_STR(str(g, "group_id"), "GID_a");
	CHECK_INT(num(g, "from_snapshot"), 1);
	CHECK_INT(num(g, "to_snapshot"), 2);
	CHECK_STR(str(g, "status"), "ok");
	CHECK(item(g, "note") == NULL);
	check_ids(item(g, "added"), added_ids, NADDED);
	check_ids(item(g, "removed"), removed_ids, 2);

	g = cJSON_GetArrayItem(groups, 1);
	CHECK_STR(str(g, "group_id"), "GID_b");
	CHECK(cJSON_IsNull(item(g, "from_snapshot")));
	CHECK_INT(num(g, "to_snapshot"), 3);
	CHECK_STR(str(g, "status"), "no_from_snapshot");
	CHECK_STR(str(g, "note"), "no complete snapshot for 'previous' (before snapshot 3)");
	check_ids(item(g, "added"), NULL, 0);
	check_ids(item(g, "removed"), NULL, 0);

	g = cJSON_GetArrayItem(groups, 2);
	CHECK_STR(str(g, "instance_id"), "mqtt-b");
	CHECK(cJSON_IsNull(item(g, "from_snapshot")));
	CHECK(cJSON_IsNull(item(g, "to_snapshot")));
	CHECK_STR(str(g, "status"), "no_to_snapshot");
	CHECK_STR(str(g, "note"), "no complete snapshot for 'latest'");
	check_ids(item(g, "added"), NULL, 0);

	sum = item(doc, "summary");
	CHECK_INT(cJSON_GetArraySize(sum), 3);
	CHECK_INT(num(sum, "groups"), 3);
	CHECK_INT(num(sum, "added"), 12);
	CHECK_INT(num(sum, "removed"), 2);
	cJSON_Delete(doc);
	free(out);

	/* no group: still one document */
	{
		struct diff_report r = rep;

		r.n = 0;
		r.added = r.removed = 0;
		out = render(REPORT_JSON, &r, NULL);
		CHECK_STR(out, "{\"from\": \"previous\", \"to\": \"latest\", \"groups\": [], \"summary\": "
			       "{\"groups\": 0, \"added\": 0, \"removed\": 0}}\n");
		free(out);
	}
}

static void test_ndjson(void)
{
	char *out = render(REPORT_NDJSON, &rep, NULL), *line, *save = NULL;
	size_t nlines = 0, nchanges = 0;

	CHECK(out != NULL);
	if (!out)
		return;
	CHECK(strlen(out) > 0 && out[strlen(out) - 1] == '\n');
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cJSON *o = cJSON_Parse(line);   /* every line a whole object on its own */

		CHECK(o != NULL);
		if (!o) {
			fprintf(stderr, "line %zu is not JSON: %s\n", nlines, line);
			nlines++;
			continue;
		}
		if (nlines == 0 || nlines == 15 || nlines == 16) {
			CHECK_STR(str(o, "type"), "group");
			CHECK_STR(str(o, "from"), "previous");
			CHECK_STR(str(o, "to"), "latest");
		}
		if (nlines == 0) {
			CHECK_STR(str(o, "group_id"), "GID_a");
			CHECK_STR(str(o, "status"), "ok");
			CHECK_INT(num(o, "from_snapshot"), 1);
			CHECK_INT(num(o, "to_snapshot"), 2);
			CHECK_INT(num(o, "added"), 12);
			CHECK_INT(num(o, "removed"), 2);
			CHECK(item(o, "note") == NULL);
		} else if (nlines <= 14) {
			size_t k = nlines - 1;
			const char *id = k < NADDED ? added_ids[k] : removed_ids[k - NADDED];
			const char *at = strstr(id, "@@@");

			CHECK_STR(str(o, "type"), "change");
			CHECK_STR(str(o, "instance_id"), "mqtt-a");
			CHECK_STR(str(o, "group_id"), "GID_a");
			CHECK_STR(str(o, "change"), k < NADDED ? "added" : "removed");
			CHECK_STR(str(o, "client_id"), id);
			if (at)
				CHECK_STR(str(o, "device_id"), at + 3);
			else
				CHECK(cJSON_IsNull(item(o, "device_id")));
			CHECK_INT(num(o, "from_snapshot"), 1);
			CHECK_INT(num(o, "to_snapshot"), 2);
			nchanges++;
		} else if (nlines == 15) {
			CHECK_STR(str(o, "group_id"), "GID_b");
			CHECK_STR(str(o, "status"), "no_from_snapshot");
			CHECK(cJSON_IsNull(item(o, "from_snapshot")));
			CHECK_INT(num(o, "to_snapshot"), 3);
			CHECK_STR(str(o, "note"), "no complete snapshot for 'previous' (before snapshot 3)");
			CHECK_INT(num(o, "added"), 0);
		} else if (nlines == 16) {
			CHECK_STR(str(o, "instance_id"), "mqtt-b");
			CHECK_STR(str(o, "status"), "no_to_snapshot");
			CHECK(cJSON_IsNull(item(o, "to_snapshot")));
		}
		cJSON_Delete(o);
		nlines++;
	}
	CHECK_INT(nlines, 17);
	CHECK_INT(nchanges, 14);
	free(out);
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (; (hay = strstr(hay, needle)); hay += strlen(needle))
		n++;
	return n;
}

/* An attribute like onload= or onerror= (s lowercased). */
static int has_handler(const char *s)
{
	for (; (s = strstr(s, " on")); s += 3) {
		const char *p = s + 3;

		while (*p >= 'a' && *p <= 'z')
			p++;
		if (p > s + 3 && *p == '=')
			return 1;
	}
	return 0;
}

static void test_html(void)
{
	static const char head[] =
		"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
	char *out = render(REPORT_HTML, &rep, NULL);
	char *lower;
	size_t i;

	CHECK(out != NULL);
	if (!out)
		return;
	CHECK(!strncmp(out, head, sizeof(head) - 1));
	CHECK_CONTAINS(out, "\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
			    "'none'; style-src 'unsafe-inline'; img-src data:\">\n");
	CHECK_CONTAINS(out, "<title>credsync diff previous..latest</title>\n");
	CHECK_CONTAINS(out, "<p>From <strong>previous</strong> to <strong>latest</strong>, "
			    "generated 2026-11-27T02:00:00Z.</p>\n");
	CHECK_CONTAINS(out, "<td class=\"num\" id=\"sum-groups\">3</td>");
	CHECK_CONTAINS(out, "id=\"sum-added\">12</td>");
	CHECK_CONTAINS(out, "id=\"sum-removed\">2</td>");
	/* every ID escaped for HTML */
	CHECK_CONTAINS(out, "<li><code>GID_a@@@&lt;script&gt;x&lt;/script&gt;</code></li>\n");
	CHECK_CONTAINS(out, "<li><code>GID_a@@@q&quot;uote</code></li>\n");
	CHECK_CONTAINS(out, "<li><code>GID_a@@@amp&amp;&#39;x</code></li>\n");
	CHECK_CONTAINS(out, "<li><code>=cmd|&#39; /C calc&#39;!A0</code></li>\n");
	CHECK_CONTAINS(out, "<li><code>GID_a@@@new\nline</code></li>\n");
	CHECK_CONTAINS(out, "<li><code>GID_a@@@\xe8\xae\xbe\xe5\xa4\x87-1</code></li>\n");
	CHECK_CONTAINS(out, "<li><code>GID_a@@@gone&quot;2</code></li>\n");
	CHECK_INT(count_of(out, "<li>"), 14);
	CHECK_CONTAINS(out, "<h3 class=\"added\">added (12)</h3>\n<ul class=\"added-list\">\n");
	CHECK_CONTAINS(out, "<h3 class=\"removed\">removed (2)</h3>\n<ul class=\"removed-list\">\n");
	/* the notes, escaped too */
	CHECK_CONTAINS(out, "<p class=\"muted\">no complete snapshot for &#39;previous&#39; (before "
			    "snapshot 3); nothing to compare.</p>\n");
	CHECK_CONTAINS(out, "<p class=\"muted\">no complete snapshot for &#39;latest&#39;; nothing to "
			    "compare.</p>\n");
	/* a chart for the groups with snapshots, the compared two marked; none for GID_c */
	CHECK_INT(count_of(out, "<svg class=\"chart\""), 2);
	CHECK_INT(count_of(out, " class=\"compared\""), 3);  /* GID_a: 1 and 2; GID_b: 3 */
	CHECK_CONTAINS(out, "<title>snapshot 2 at 2026-11-27T01:00:02Z: 13 clients</title>");
	CHECK_CONTAINS(out, "<p class=\"muted\">no complete snapshot to chart</p>\n");
	CHECK(strlen(out) > 16 && !strcmp(out + strlen(out) - 16, "</body>\n</html>\n"));

	/* self-contained: no script, no element that loads anything */
	lower = strdup(out);
	for (i = 0; lower && lower[i]; i++)
		lower[i] = (char)tolower((unsigned char)lower[i]);
	CHECK(lower && !strstr(lower, "<script"));
	CHECK(lower && !strstr(lower, "src="));
	CHECK(lower && !strstr(lower, "href="));
	CHECK(lower && !strstr(lower, "<link"));
	CHECK(lower && !strstr(lower, "<img"));
	CHECK(lower && !strstr(lower, "<iframe"));
	CHECK(lower && !has_handler(lower));     /* no event handler attribute */
	/* the only URLs: the SVG namespace of each chart */
	CHECK_INT(count_of(out, "://"), 2);
	CHECK_INT(count_of(out, "xmlns=\"http://www.w3.org/2000/svg\""), 2);
	free(lower);
	free(out);
}

/* --- snapshot lists -------------------------------------------------------------------- */

static char *list(enum report_format fmt)
{
	struct snap_writer w = { 0 };
	struct cs_error err = { 0 };
	char *out = NULL;
	size_t n = 0;

	w.out = open_memstream(&out, &n);
	w.fmt = fmt;
	if (!w.out)
		return NULL;
	report_snapshots_begin(&w);
	CHECK_INT(history_snapshots(st, NULL, NULL, 0, report_snapshots_row, &w, &err), 0);
	report_snapshots_end(&w);
	CHECK_INT(w.rows, 4);
	fclose(w.out);
	return out;
}

static void test_snapshot_lists(void)
{
	static const char want_csv[] =
		"snapshot_id,run_id,instance_id,group_id,status,started_at,finished_at,client_count,"
		"added,removed,consistent,error_code,error_message,identity\r\n"
		"4,3,mqtt-a,GID_b,failed,2026-11-27T01:00:00Z,2026-11-27T01:00:05Z,,,,,Throttling.User,"
		"\"say \"\"hi\"\",\nthen <b> (request REQ-9)\",\r\n"
		"3,2,mqtt-a,GID_b,complete,2026-11-27T01:00:00Z,2026-11-27T01:00:05Z,1,1,0,1,,,"
		"\"profile:ops, AccessKey LTAI****abcd\"\r\n"
		"2,2,mqtt-a,GID_a,complete,2026-11-27T01:00:00Z,2026-11-27T01:00:05Z,13,12,2,1,,,\r\n"
		"1,1,mqtt-a,GID_a,complete,2026-11-27T01:00:00Z,2026-11-27T01:00:05Z,3,3,0,1,,,\r\n";
	char *out, *line, *save = NULL;
	cJSON *doc;
	const cJSON *r;
	size_t n = 0;

	out = list(REPORT_CSV);
	CHECK_STR(out, want_csv);
	free(out);

	out = list(REPORT_JSON);
	doc = out ? cJSON_Parse(out) : NULL;
	CHECK(cJSON_IsArray(doc));
	CHECK_INT(cJSON_GetArraySize(doc), 4);
	r = cJSON_GetArrayItem(doc, 0);           /* newest first: the failed one */
	CHECK_INT(num(r, "snapshot_id"), 4);
	CHECK_INT(num(r, "run_id"), 3);
	CHECK_STR(str(r, "status"), "failed");
	CHECK_STR(str(r, "started_at"), "2026-11-27T01:00:00Z");
	CHECK_STR(str(r, "finished_at"), "2026-11-27T01:00:05Z");
	CHECK(cJSON_IsNull(item(r, "client_count")));
	CHECK(cJSON_IsNull(item(r, "added")));
	CHECK(cJSON_IsNull(item(r, "consistent")));
	CHECK(cJSON_IsNull(item(r, "identity")));
	CHECK_STR(str(r, "error_code"), "Throttling.User");
	CHECK_STR(str(r, "error_message"), "say \"hi\",\nthen <b> (request REQ-9)");
	r = cJSON_GetArrayItem(doc, 1);
	CHECK_INT(num(r, "snapshot_id"), 3);
	CHECK_INT(num(r, "pages"), 1);
	CHECK_INT(num(r, "client_count"), 1);
	CHECK_INT(num(r, "total_reported"), 1);
	CHECK(cJSON_IsTrue(item(r, "consistent")));
	CHECK(cJSON_IsNull(item(r, "error_code")));
	CHECK(cJSON_IsNull(item(r, "error_message")));
	CHECK_STR(str(r, "identity"), "profile:ops, AccessKey LTAI****abcd");
	r = cJSON_GetArrayItem(doc, 2);
	CHECK_INT(num(r, "client_count"), 13);
	CHECK_INT(num(r, "added"), 12);
	CHECK_INT(num(r, "removed"), 2);
	cJSON_Delete(doc);
	free(out);

	out = list(REPORT_NDJSON);
	for (line = out ? strtok_r(out, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		cJSON *o = cJSON_Parse(line);

		CHECK(cJSON_IsObject(o));
		CHECK_INT(num(o, "snapshot_id"), 4 - (long long)n);
		if (n == 0)
			CHECK_STR(str(o, "error_message"), "say \"hi\",\nthen <b> (request REQ-9)");
		cJSON_Delete(o);
		n++;
	}
	CHECK_INT(n, 4);
	free(out);

	/* text: a header, one line per snapshot, the failed one's message quoted on its line */
	out = list(REPORT_TEXT);
	CHECK(out && !strncmp(out, "ID     RUN   INSTANCE/GROUP ", 27));
	CHECK_INT(out ? count_of(out, "\n") : 0, 5);
	CHECK_CONTAINS(out, "\n4      3     mqtt-a/GID_b ");
	CHECK_CONTAINS(out, " failed   2026-11-27T01:00:05Z ");
	CHECK_CONTAINS(out, " Throttling.User: \"say \\\"hi\\\",\\nthen <b> (request REQ-9)\"\n");
	CHECK_CONTAINS(out, " profile:ops, AccessKey LTAI****abcd ");
	CHECK_CONTAINS(out, "\n2      2     mqtt-a/GID_a ");
	CHECK_CONTAINS(out, "       13      12       2  yes  ");
	free(out);

	/* an empty JSON list is still a document */
	{
		struct snap_writer w = { 0 };
		char *o = NULL;
		size_t len = 0;

		w.out = open_memstream(&o, &len);
		w.fmt = REPORT_JSON;
		report_snapshots_begin(&w);
		report_snapshots_end(&w);
		fclose(w.out);
		CHECK_STR(o, "[]\n");
		free(o);
	}
}

/*
 * FINDING (not fixed here; src/ belongs to others): instance and group IDs are written raw
 * in the text reports.  Configured group IDs are printable ASCII without spaces
 * (config.c), but those of `groups: all` come from ListGroupId, where api_parse_groups
 * only demands UTF-8: a listed "GID_x\n..." would print a line of its own in `diff` (and
 * `snapshots`) text, where client IDs are quoted.  JSON, CSV and HTML escape them.  The
 * check below asserts today's behaviour so that a fix shows up here; flip it then.
 */
static void test_finding_group_id_in_text(void)
{
	struct group_row g = { 998, "mqtt-a", "GID_x\nmqtt-a/GID_y: snapshot 1 -> 2: no changes" };
	struct diff_group d = { &g, DIFF_NO_TO, 0, 0, 0, 0 };
	struct diff_report r = rep;
	char *out;

	r.groups = &d;
	r.n = 1;
	r.added = r.removed = 0;
	out = render(REPORT_TEXT, &r, NULL);
	CHECK_STR(out, "diff previous..latest: 1 group(s), 0 added, 0 removed\n"
		       "mqtt-a/GID_x\n"                                      /* <- the raw newline */
		       "mqtt-a/GID_y: snapshot 1 -> 2: no changes: no complete snapshot for "
		       "'latest'; nothing to compare\n");
	free(out);
	/* the other formats are safe */
	out = render(REPORT_JSON, &r, NULL);
	CHECK_CONTAINS(out, "\"group_id\": \"GID_x\\nmqtt-a/GID_y: snapshot 1 -> 2: no changes\"");
	free(out);
}

/* --- the escapers and helpers --------------------------------------------------------- */

static void test_escapers(void)
{
	static const struct {
		const char *in;
		size_t len;          /* of in, and of csv and html when they hold a NUL */
		const char *csv, *html, *text;
	} cases[] = {
		{ "plain", 5, "plain", "plain", "plain" },
		{ "", 0, "", "", "" },
		{ "a,b", 3, "\"a,b\"", "a,b", "a,b" },
		{ "a\"b", 3, "\"a\"\"b\"", "a&quot;b", "\"a\\\"b\"" },
		{ "\"", 1, "\"\"\"\"", "&quot;", "\"\\\"\"" },
		{ "a\nb", 3, "\"a\nb\"", "a\nb", "\"a\\nb\"" },
		{ "a\rb", 3, "\"a\rb\"", "a\rb", "\"a\\rb\"" },
		{ "a\tb", 3, "a\tb", "a\tb", "\"a\\tb\"" },
		{ "a\\b", 3, "a\\b", "a\\b", "\"a\\\\b\"" },
		{ "a;b", 3, "a;b", "a;b", "a;b" },
		{ " lead", 5, " lead", " lead", " lead" },
		{ "<b>&'", 5, "<b>&'", "&lt;b&gt;&amp;&#39;", "<b>&'" },
		{ "\001\033\177", 3, "\001\033\177", "\001\033\177", "\"\\001\\033\\177\"" },
		{ "x\0y", 3, "x\0y", "x\0y", "\"x\\000y\"" },   /* a length, not a C string */
		{ "\xe8\xae\xbe", 3, "\xe8\xae\xbe", "\xe8\xae\xbe", "\xe8\xae\xbe" },
		{ "=1+1", 4, "=1+1", "=1+1", "=1+1" },          /* no formula guard: RFC 4180 only */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cs_buf b = CS_BUF_INIT;
		size_t wl;

		report_csv_field(&b, cases[i].in, cases[i].len);
		wl = memchr(cases[i].in, '\0', cases[i].len) ? cases[i].len : strlen(cases[i].csv);
		CHECK_INT(b.len, wl);
		CHECK(b.len == wl && !memcmp(b.data ? b.data : "", cases[i].csv, wl));
		buf_reset(&b);
		report_html_escape(&b, cases[i].in, cases[i].len);
		wl = memchr(cases[i].in, '\0', cases[i].len) ? cases[i].len : strlen(cases[i].html);
		CHECK_INT(b.len, wl);
		CHECK(b.len == wl && !memcmp(b.data ? b.data : "", cases[i].html, wl));
		buf_reset(&b);
		report_text_id(&b, cases[i].in, cases[i].len);
		CHECK_STR(buf_str(&b), cases[i].text);
		buf_release(&b);
	}
	/* JSON strings: escaped per RFC 8259, UTF-8 kept */
	{
		static const struct {
			const char *in, *want;
		} js[] = {
			{ "plain", "\"plain\"" },
			{ "", "\"\"" },
			{ "q\"b\\s/", "\"q\\\"b\\\\s/\"" },
			{ "n\nr\rt\t", "\"n\\nr\\rt\\t\"" },
			{ "\001\037\177", "\"\\u0001\\u001f\\u007f\"" },
			{ "</script>", "\"</script>\"" },
			{ "\xe8\xae\xbe\xe5\xa4\x87", "\"\xe8\xae\xbe\xe5\xa4\x87\"" },
		};

		for (i = 0; i < sizeof(js) / sizeof(js[0]); i++) {
			struct cs_buf b = CS_BUF_INIT;
			cJSON *v;

			report_json_string(&b, js[i].in);
			CHECK_STR(buf_str(&b), js[i].want);
			v = cJSON_Parse(buf_str(&b));
			CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, js[i].in));
			cJSON_Delete(v);
			buf_release(&b);
		}
	}
	/* the device part: after the first "@@@" */
	{
		static const struct {
			const char *id, *dev;
		} dp[] = {
			{ "GID_a@@@dev-1", "dev-1" },
			{ "GID_a@@@dev@@@twice", "dev@@@twice" },
			{ "GID_a@@@", "" },
			{ "@@@x", "x" },
			{ "GID_a@@dev", NULL },
			{ "GID_a", NULL },
			{ "", NULL },
		};

		for (i = 0; i < sizeof(dp) / sizeof(dp[0]); i++) {
			size_t dlen = 99;
			const char *d = report_device_part(dp[i].id, strlen(dp[i].id), &dlen);

			if (dp[i].dev) {
				CHECK(d != NULL);
				CHECK_INT(dlen, strlen(dp[i].dev));
				CHECK(d && !strncmp(d, dp[i].dev, dlen));
			} else {
				CHECK(d == NULL);
				CHECK_INT(dlen, 0);
			}
		}
	}
	/* format names: exact, and only those a command allows */
	{
		static const struct {
			const char *s;
			unsigned allowed;
			int want;
		} fm[] = {
			{ "text", REPORT_ALL, REPORT_TEXT },
			{ "json", REPORT_ALL, REPORT_JSON },
			{ "csv", REPORT_ALL, REPORT_CSV },
			{ "html", REPORT_ALL, REPORT_HTML },
			{ "ndjson", REPORT_ALL, REPORT_NDJSON },
			{ "ndjson", REPORT_LISTS, REPORT_NDJSON },
			{ "html", REPORT_LISTS, -1 },
			{ "JSON", REPORT_ALL, -1 },
			{ "jsonl", REPORT_ALL, -1 },
			{ "", REPORT_ALL, -1 },
			{ "csv ", REPORT_ALL, -1 },
			{ "text", 0, -1 },
		};

		for (i = 0; i < sizeof(fm) / sizeof(fm[0]); i++)
			CHECK_INT(report_parse_format(fm[i].s, fm[i].allowed), fm[i].want);
	}
	/* the HTML head escapes its title */
	{
		struct cs_buf b = CS_BUF_INIT;

		report_html_begin(&b, "a <b> & \"c\"");
		CHECK_CONTAINS(buf_str(&b), "<title>a &lt;b&gt; &amp; &quot;c&quot;</title>\n");
		CHECK(!strstr(buf_str(&b), "<b>"));
		CHECK(b.len > 7 && !strcmp(buf_str(&b) + b.len - 7, "<body>\n"));
		buf_release(&b);
	}
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/credsync.db", dir);
	test_escapers();
	if (build() == 0) {
		test_text();
		test_csv();
		test_json();
		test_ndjson();
		test_html();
		test_snapshot_lists();
		test_finding_group_id_in_text();
	}
	store_close(st);
	{
		char p[300];

		snprintf(p, sizeof(p), "%s-wal", path);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", path);
		unlink(p);
		unlink(path);
		rmdir(dir);
	}
	TEST_DONE();
}
