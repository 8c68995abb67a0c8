/*
 * REFs (PRODUCT.md, README "diff"): every form parsed, every malformed one refused with the
 * one message, and each form resolved per group against a store built here through the
 * store API: snapshot ids (of the group, complete only), run:N (the latest complete
 * snapshot of run N or before), a date, a UTC time or an age (the latest complete snapshot
 * whose data was read at or before it, to the second; the higher id wins a tie), latest and
 * previous (before the other side, or before latest).
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "history.h"
#include "store.h"
#include "test.h"
#include "util.h"

static char dir[] = "/tmp/credsync-test-history-XXXXXX";
static char path[256];

#define NOW 1795000000LL   /* 2026-11-18T11:06:40Z: the "now" ages are measured from */

static const char bad_msg_tail[] =
	"' is not a REF: expected a snapshot id (17), run:N, a date (2026-11-27), a UTC time "
	"(2026-11-27T02:00:00Z), an age (7d), latest or previous";

static void test_parse(void)
{
	static const struct {
		const char *s;
		enum ref_kind kind;
		int64_t value;
	} good[] = {
		{ "17", REF_SNAPSHOT, 17 },
		{ "1", REF_SNAPSHOT, 1 },
		{ "0017", REF_SNAPSHOT, 17 },
		{ "2026", REF_SNAPSHOT, 2026 },          /* digits alone are an id, not a year */
		{ "20261127", REF_SNAPSHOT, 20261127 },  /* nor a compact date */
		{ "999999999999999999", REF_SNAPSHOT, 999999999999999999LL }, /* 18 digits */
		{ "snapshot:17", REF_SNAPSHOT, 17 },
		{ "snapshot:007", REF_SNAPSHOT, 7 },
		{ "run:5", REF_RUN, 5 },
		{ "run:999999999999999999", REF_RUN, 999999999999999999LL },
		{ "latest", REF_LATEST, 0 },
		{ "previous", REF_PREVIOUS, 0 },
		{ "2026-11-27", REF_TIME, 1795737600LL },            /* midnight UTC */
		{ "2026-11-27T02:00:00Z", REF_TIME, 1795744800LL },
		{ "1970-01-01", REF_TIME, 0 },
		{ "2028-02-29T23:59:59Z", REF_TIME, 1835481599LL },  /* a leap day */
		{ "7d", REF_TIME, NOW - 7 * 86400 },
		{ "36h", REF_TIME, NOW - 36 * 3600 },
		{ "1h30m", REF_TIME, NOW - 5400 },
		{ "90s", REF_TIME, NOW - 90 },
		{ "1500ms", REF_TIME, NOW - 1 },   /* whole seconds */
		{ "0s", REF_TIME, NOW },
	};
	static const char *const bad[] = {
		"", "0", "000", "-1", "+17", " 17", "17 ", "17x", "1e3", "0x11",
		"1234567890123456789",                 /* 19 digits */
		"run:", "run:0", "run:-1", "run:x", "run:5x", "run: 5", "run:1234567890123456789",
		"snapshot:", "snapshot:0", "snapshot:abc", "snap:17", "run5", "RUN:5",
		"Latest", "LATEST", "latest~1", "latest^", "HEAD", "prev", "previous~1",
		"yesterday-ish", "yesterday", "today", "now",
		"2026-13-01", "2026-02-30", "2026-11-31", "2027-02-29", "1969-12-31", "2026-1-27",
		"2026-11-27T02:00:00", "2026-11-27 02:00:00Z", "2026-11-27T24:00:00Z",
		"2026-11-27T02:60:00Z", "2026-11-27T02:00:60Z", "2026-11-27T02:00Z",
		"2026-11-27T02:00:00+01:00", "2026-11-27T02:00:00.000Z",
		"7", /* (an id, see above: not an age) */
		"7w", "7y", "d", "1d2", "-7d", "7 d", "7D",
		"\xe2\x80\x8b" "17",                    /* a zero-width space */
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct diff_ref r;
		struct cs_error err = { 0 };

		CHECK_INT(history_parse_ref(good[i].s, NOW, &r, &err), 0);
		CHECK_INT(r.kind, good[i].kind);
		CHECK_INT(r.value, good[i].value);
		CHECK_STR(r.text, good[i].s);       /* kept as written, for reports */
		CHECK_INT(err.kind, CS_ERR_NONE);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct diff_ref r;
		struct cs_error err = { 0 };
		char want[512];

		if (!strcmp(bad[i], "7"))
			continue;
		snprintf(want, sizeof(want), "'%s%s", bad[i], bad_msg_tail);
		CHECK_INT(history_parse_ref(bad[i], NOW, &r, &err), -1);
		CHECK_INT(err.kind, CS_ERR_USAGE);
		CHECK_STR(err.msg, want);
		if (strcmp(err.msg, want))
			fprintf(stderr, "  (REF '%s')\n", bad[i]);
	}
	/* "7" is snapshot 7, never seven of anything */
	{
		struct diff_ref r;
		struct cs_error err = { 0 };

		CHECK_INT(history_parse_ref("7", NOW, &r, &err), 0);
		CHECK_INT(r.kind, REF_SNAPSHOT);
		CHECK_INT(r.value, 7);
	}
	/* a REF too long to keep is refused, and the message quotes at most 64 bytes of it */
	{
		struct diff_ref r;
		struct cs_error err = { 0 };
		char longref[200], want[512];

		memset(longref, '1', sizeof(longref) - 1);
		longref[sizeof(longref) - 1] = '\0';
		CHECK_INT(history_parse_ref(longref, NOW, &r, &err), -1);
		CHECK_INT(err.kind, CS_ERR_USAGE);
		snprintf(want, sizeof(want), "'%.64s%s", longref, bad_msg_tail);
		CHECK_STR(err.msg, want);
		/* 63 bytes still fit (and are then judged on their form) */
		memcpy(longref, "2026-11-27T02:00:00Z", 20);
		longref[63] = '\0';
		cs_error_clear(&err);
		CHECK_INT(history_parse_ref(longref, NOW, &r, &err), -1);
		CHECK_INT(err.kind, CS_ERR_USAGE);
	}
}

/* --- resolution against a store ------------------------------------------------------- */

static const struct store_resume resume = { 0, 3600, 3600 };

/* A complete snapshot of (inst, group) in run whose last page was read at read_epoch. */
static int64_t complete(struct store *st, int64_t run, const char *inst, const char *group,
			const char *const *ids, size_t n, int64_t read_epoch)
{
	struct store_snap snap;
	struct store_tally t;
	struct cs_error err = { 0 };
	size_t lens[16], i;
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
	snap.cs.read_first = read_epoch - 1;
	snap.cs.read_last = read_epoch;
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

/* A failed snapshot (no checkpoint kept), read at read_epoch. */
static int64_t failed(struct store *st, int64_t run, const char *inst, const char *group,
		      int64_t read_epoch)
{
	struct store_snap snap;
	struct cs_error err = { 0 };
	int64_t id;

	CHECK(store_snapshot_begin(st, run, inst, group, &resume, &snap, &err) == 0);
	snap.cs.read_first = snap.cs.read_last = read_epoch;
	CHECK(store_snapshot_fail(st, &snap, "PermissionCheckFailed", "denied", "REQ-1", 0, &err) == 0);
	id = snap.snapshot_id;
	store_snap_release(&snap);
	return id;
}

static int64_t run_begin(struct store *st)
{
	struct cs_error err = { 0 };
	int64_t run = 0;

	CHECK(store_run_begin(st, &run, &err) == 0);
	return run;
}

static void run_end(struct store *st, int64_t run)
{
	struct cs_error err = { 0 };
	struct store_run_stats stats = { "complete", 1, 0, 1, 0, 0 };

	CHECK(store_run_finish(st, run, &stats, &err) == 0);
}

static int64_t group_key(struct store *st, const char *inst, const char *group)
{
	struct group_row *rows = NULL;
	size_t n = 0;
	struct cs_error err = { 0 };
	int64_t k = 0;

	CHECK(history_groups(st, inst, group, &rows, &n, &err) == 0);
	CHECK_INT(n, 1);
	if (n == 1)
		k = rows[0].group_key;
	history_groups_free(rows, n);
	return k;
}

static int64_t resolve(struct store *st, int64_t gk, const char *ref, int64_t other)
{
	struct diff_ref r;
	struct cs_error err = { 0 };
	int64_t id = -1;

	if (history_parse_ref(ref, NOW, &r, &err) < 0) {
		fprintf(stderr, "bad REF in test: %s: %s\n", ref, err.msg);
		return -2;
	}
	if (history_resolve(st, gk, &r, other, &id, &err) < 0) {
		fprintf(stderr, "history_resolve %s: %s\n", ref, err.msg);
		return -3;
	}
	return id;
}

static int64_t epoch(const char *utc)
{
	int64_t e = 0;

	CHECK(util_parse_utc(utc, &e) == 0);
	return e;
}

static void test_resolve(void)
{
	static const char *const ids1[] = { "GID_a@@@d1", "GID_a@@@d2" };
	static const char *const ids2[] = { "GID_a@@@d1", "GID_a@@@d2", "GID_a@@@d3" };
	static const char *const ids3[] = { "GID_a@@@d2", "GID_a@@@d3" };
	static const char *const idsb[] = { "GID_b@@@x" };
	struct store *st = NULL;
	struct cs_error err = { 0 };
	int64_t r1, r2, r3, r4, r5, r6;
	int64_t a1, a2f, a3, a4, a5, b1, b2, b3, c3, c5, other_a;
	int64_t ga, gb, gc, go;
	size_t i;

	CHECK(store_open(&st, path, STORE_WRITE, &err) == 0);
	if (!st) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		return;
	}
	/*
	 * run 1: A, B complete (read 2026-11-25T10:00:00Z)
	 * run 2: A fails; B complete (read 2026-11-26T10:00:00Z)
	 * run 3: A, B complete in the same second (2026-11-27T02:00:00Z); C (another instance's
	 *        GID_a) appears
	 * run 4: A again in that same second: the higher id wins a tie
	 * run 5: A, C complete (2026-11-28T00:00:00Z); B not crawled
	 * run 6: only mqtt-o/GID_o (a group of its own); nothing else
	 */
	r1 = run_begin(st);
	a1 = complete(st, r1, "mqtt-a", "GID_a", ids1, 2, epoch("2026-11-25T10:00:00Z"));
	b1 = complete(st, r1, "mqtt-a", "GID_b", idsb, 1, epoch("2026-11-25T10:00:00Z"));
	run_end(st, r1);
	r2 = run_begin(st);
	a2f = failed(st, r2, "mqtt-a", "GID_a", epoch("2026-11-26T10:00:00Z"));
	b2 = complete(st, r2, "mqtt-a", "GID_b", idsb, 1, epoch("2026-11-26T10:00:00Z"));
	run_end(st, r2);
	r3 = run_begin(st);
	a3 = complete(st, r3, "mqtt-a", "GID_a", ids2, 3, epoch("2026-11-27T02:00:00Z"));
	b3 = complete(st, r3, "mqtt-a", "GID_b", idsb, 1, epoch("2026-11-27T02:00:00Z"));
	c3 = complete(st, r3, "mqtt-c", "GID_a", ids1, 2, epoch("2026-11-27T02:00:00Z"));
	run_end(st, r3);
	r4 = run_begin(st);
	a4 = complete(st, r4, "mqtt-a", "GID_a", ids3, 2, epoch("2026-11-27T02:00:00Z"));
	run_end(st, r4);
	r5 = run_begin(st);
	a5 = complete(st, r5, "mqtt-a", "GID_a", ids3, 2, epoch("2026-11-28T00:00:00Z"));
	c5 = complete(st, r5, "mqtt-c", "GID_a", ids2, 3, epoch("2026-11-28T00:00:00Z"));
	run_end(st, r5);
	r6 = run_begin(st);
	other_a = complete(st, r6, "mqtt-o", "GID_o", idsb, 1, epoch("2026-11-29T00:00:00Z"));
	run_end(st, r6);

	ga = group_key(st, "mqtt-a", "GID_a");
	gb = group_key(st, "mqtt-a", "GID_b");
	gc = group_key(st, "mqtt-c", "GID_a");
	go = group_key(st, "mqtt-o", "GID_o");
	CHECK(ga && gb && gc && go && ga != gc);
	/* ids are global and rise */
	CHECK(a1 < b1 && b1 < a2f && a2f < b2 && b2 < a3 && a3 < b3 && b3 < c3 && c3 < a4 &&
	      a4 < a5 && a5 < c5 && c5 < other_a);

	{
		char s_a1[32], s_b1[32], s_a2f[32], s_a3[32], s_a4[32], s_a5[32], s_b3[32];
		char snap_a1[40], s_c5[32], s_big[32], run_r1[32], run_r2[32], run_r3[32], run_r4[32];
		char run_r5[32], run_r6[32], run_big[32];
		const struct {
			int64_t group;
			const char *ref;
			int64_t other;
			int64_t want;
		} cases[] = {
			/* a snapshot id names that snapshot in its own group, when complete */
			{ ga, s_a1, 0, a1 },
			{ ga, snap_a1, 0, a1 },
			{ ga, s_a3, 0, a3 },
			{ gb, s_a1, 0, 0 },        /* another group's */
			{ gc, s_a3, 0, 0 },        /* the same group id, another instance */
			{ ga, s_b1, 0, 0 },
			{ ga, s_a2f, 0, 0 },       /* failed: not complete */
			{ ga, s_big, 0, 0 },       /* no such snapshot */
			{ gc, s_c5, 0, c5 },
			/* latest: the newest complete one */
			{ ga, "latest", 0, a5 },
			{ gb, "latest", 0, b3 },
			{ gc, "latest", 0, c5 },
			{ go, "latest", 0, other_a },
			/* previous: before the other side, or before latest; failed ones skipped */
			{ ga, "previous", 0, a4 },
			{ ga, "previous", a5, a4 },
			{ ga, "previous", a4, a3 },
			{ ga, "previous", a3, a1 },  /* a2f failed */
			{ ga, "previous", a1, 0 },   /* nothing before the first */
			{ gb, "previous", 0, b2 },
			{ gb, "previous", b2, b1 },
			{ go, "previous", 0, 0 },    /* a single snapshot */
			{ gc, "previous", 0, c3 },
			/* run:N: the latest complete snapshot of run N or before */
			{ ga, run_r1, 0, a1 },
			{ ga, run_r2, 0, a1 },     /* A failed in run 2 */
			{ ga, run_r3, 0, a3 },
			{ ga, run_r4, 0, a4 },
			{ ga, run_r5, 0, a5 },
			{ ga, run_r6, 0, a5 },     /* run 6 did not crawl A */
			{ ga, run_big, 0, a5 },
			{ gb, run_r5, 0, b3 },
			{ gc, run_r2, 0, 0 },      /* C is younger than run 2 */
			{ gc, run_r3, 0, c3 },
			{ go, run_r5, 0, 0 },
			/* a date is midnight UTC: at or before it */
			{ ga, "2026-11-25", 0, 0 },
			{ ga, "2026-11-26", 0, a1 },
			{ ga, "2026-11-27", 0, a1 },   /* a2f (read 11-26) failed */
			{ gb, "2026-11-27", 0, b2 },
			{ ga, "2026-11-28", 0, a5 },   /* read at midnight exactly: included */
			{ gc, "2026-11-28", 0, c5 },
			{ gb, "2026-11-28", 0, b3 },
			{ ga, "2030-01-01", 0, a5 },
			{ ga, "1970-01-01", 0, 0 },
			/* a UTC time, to the second */
			{ ga, "2026-11-25T09:59:59Z", 0, 0 },
			{ ga, "2026-11-25T10:00:00Z", 0, a1 },  /* the very second: counts */
			{ ga, "2026-11-27T01:59:59Z", 0, a1 },
			{ ga, "2026-11-27T02:00:00Z", 0, a4 },  /* a3 and a4 tie: the higher id */
			{ gb, "2026-11-27T02:00:00Z", 0, b3 },
			{ gc, "2026-11-27T02:00:00Z", 0, c3 },
			{ gc, "2026-11-27T01:59:59Z", 0, 0 },
			{ ga, "2026-11-27T23:59:59Z", 0, a4 },
			{ ga, "2026-11-28T00:00:00Z", 0, a5 },
			/* an age: at or before now minus it (now is 2026-11-18 here: all are younger) */
			{ ga, "7d", 0, 0 },
			{ ga, "0s", 0, 0 },
		};

		snprintf(s_a1, sizeof(s_a1), "%lld", (long long)a1);
		snprintf(snap_a1, sizeof(snap_a1), "snapshot:%lld", (long long)a1);
		snprintf(s_b1, sizeof(s_b1), "%lld", (long long)b1);
		snprintf(s_a2f, sizeof(s_a2f), "%lld", (long long)a2f);
		snprintf(s_a3, sizeof(s_a3), "%lld", (long long)a3);
		snprintf(s_a4, sizeof(s_a4), "%lld", (long long)a4);
		snprintf(s_a5, sizeof(s_a5), "%lld", (long long)a5);
		snprintf(s_b3, sizeof(s_b3), "%lld", (long long)b3);
		snprintf(s_c5, sizeof(s_c5), "%lld", (long long)c5);
		snprintf(s_big, sizeof(s_big), "%lld", (long long)other_a + 1000);
		snprintf(run_r1, sizeof(run_r1), "run:%lld", (long long)r1);
		snprintf(run_r2, sizeof(run_r2), "run:%lld", (long long)r2);
		snprintf(run_r3, sizeof(run_r3), "run:%lld", (long long)r3);
		snprintf(run_r4, sizeof(run_r4), "run:%lld", (long long)r4);
		snprintf(run_r5, sizeof(run_r5), "run:%lld", (long long)r5);
		snprintf(run_r6, sizeof(run_r6), "run:%lld", (long long)r6);
		snprintf(run_big, sizeof(run_big), "run:%lld", (long long)r6 + 1000);
		(void)s_a4;
		(void)s_a5;
		(void)s_b3;

		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			int64_t got = resolve(st, cases[i].group, cases[i].ref, cases[i].other);

			if (got != cases[i].want)
				fprintf(stderr, "  case %zu: REF '%s' (other %lld)\n", i, cases[i].ref,
					(long long)cases[i].other);
			CHECK_INT(got, cases[i].want);
		}
	}

	/* an age, measured from the now given to the parser */
	{
		struct diff_ref r;
		int64_t id = -1;
		int64_t now = epoch("2026-11-28T00:00:00Z") + 3600;  /* an hour after a5's read */

		CHECK(history_parse_ref("1h", now, &r, &err) == 0);
		CHECK(history_resolve(st, ga, &r, 0, &id, &err) == 0);
		CHECK_INT(id, a5);
		CHECK(history_parse_ref("3601s", now, &r, &err) == 0);
		CHECK(history_resolve(st, ga, &r, 0, &id, &err) == 0);
		CHECK_INT(id, a4);
		CHECK(history_parse_ref("2d", now, &r, &err) == 0);  /* 2026-11-26T01:00:00Z */
		CHECK(history_resolve(st, ga, &r, 0, &id, &err) == 0);
		CHECK_INT(id, a1);
		CHECK(history_resolve(st, gb, &r, 0, &id, &err) == 0);
		CHECK_INT(id, b1);
	}

	/* a group the database does not know resolves to nothing, for every form */
	{
		static const char *const refs[] = { "1", "run:1", "latest", "previous", "2030-01-01" };

		for (i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
			CHECK_INT(resolve(st, 424242, refs[i], 0), 0);
	}

	/* "at or before" for a time falls back to the finish time when the read time is
	 * unknown (a snapshot written before read times were recorded) */
	{
		sqlite3_stmt *s = NULL;
		sqlite3 *db = NULL;
		char q[160];

		/* on a connection of the test's own: the store lends its handle to nobody */
		snprintf(q, sizeof(q), "UPDATE cs_snapshot SET read_last_epoch = NULL, finished_epoch = %lld"
			 " WHERE snapshot_id = %lld", (long long)epoch("2026-11-29T12:00:00Z"),
			 (long long)other_a);
		CHECK(sqlite3_open_v2(store_path(st), &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
		sqlite3_busy_timeout(db, 5000);
		CHECK(sqlite3_prepare_v2(db, q, -1, &s, NULL) == SQLITE_OK);
		CHECK(sqlite3_step(s) == SQLITE_DONE);
		sqlite3_finalize(s);
		sqlite3_close(db);
		CHECK_INT(resolve(st, go, "2026-11-29T11:59:59Z", 0), 0);
		CHECK_INT(resolve(st, go, "2026-11-29T12:00:00Z", 0), other_a);
	}

	/* the groups a REF is resolved for: by instance, then group; filters */
	{
		struct group_row *rows = NULL;
		size_t n = 0;
		const char *insts[] = { "mqtt-c", "mqtt-a" };
		const char *groups[] = { "GID_a" };
		const char *nowhere[] = { "GID_zzz" };

		CHECK(history_groups(st, NULL, NULL, &rows, &n, &err) == 0);
		CHECK_INT(n, 4);
		if (n == 4) {
			CHECK_STR(rows[0].instance_id, "mqtt-a");
			CHECK_STR(rows[0].group_id, "GID_a");
			CHECK_STR(rows[1].instance_id, "mqtt-a");
			CHECK_STR(rows[1].group_id, "GID_b");
			CHECK_STR(rows[2].instance_id, "mqtt-c");
			CHECK_STR(rows[3].instance_id, "mqtt-o");
		}
		history_groups_free(rows, n);
		CHECK(history_groups(st, NULL, "GID_a", &rows, &n, &err) == 0);
		CHECK_INT(n, 2);
		if (n == 2)
			CHECK(rows[0].group_key == ga && rows[1].group_key == gc);
		history_groups_free(rows, n);
		CHECK(history_groups(st, "mqtt-zzz", NULL, &rows, &n, &err) == 0);
		CHECK_INT(n, 0);
		history_groups_free(rows, n);

		/* repeated --instance/--group: the database's order, not the command line's */
		CHECK(history_select_groups(st, insts, 2, groups, 1, &rows, &n, &err) == 0);
		CHECK_INT(n, 2);
		if (n == 2) {
			CHECK_STR(rows[0].instance_id, "mqtt-a");
			CHECK_STR(rows[1].instance_id, "mqtt-c");
		}
		history_groups_free(rows, n);
		CHECK(history_select_groups(st, insts, 1, NULL, 0, &rows, &n, &err) == 0);
		CHECK_INT(n, 1);
		if (n == 1)
			CHECK(rows[0].group_key == gc);
		history_groups_free(rows, n);
		CHECK(history_select_groups(st, NULL, 0, nowhere, 1, &rows, &n, &err) == 0);
		CHECK_INT(n, 0);
		history_groups_free(rows, n);
	}

	/* the snapshot a REF found, loaded back */
	{
		struct snap_row row;
		int found = -1;

		CHECK(history_snapshot(st, a2f, &row, &found, &err) == 0);
		CHECK_INT(found, 1);
		CHECK_STR(row.status, "failed");
		CHECK_STR(row.error_code, "PermissionCheckFailed");
		CHECK_INT(row.run_id, r2);
		CHECK(history_snapshot(st, a5, &row, &found, &err) == 0);
		CHECK_INT(found, 1);
		CHECK_STR(row.status, "complete");
		CHECK_STR(row.instance_id, "mqtt-a");
		CHECK_STR(row.group_id, "GID_a");
		CHECK_INT(row.client_count, 2);
		CHECK_INT(row.run_id, r5);
		CHECK(history_snapshot(st, other_a + 1000, &row, &found, &err) == 0);
		CHECK_INT(found, 0);
	}
	store_close(st);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/credsync.db", dir);
	test_parse();
	test_resolve();
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
