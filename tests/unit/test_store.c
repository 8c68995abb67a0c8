/* The store: validity intervals across snapshots, the public views, failed crawls that
 * change nothing, checkpoints and resume, dry runs, file modes. */
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stage_codec.h"
#include "store.h"
#include "test.h"

static char dir[] = "/tmp/credsync-test-store-XXXXXX";
static char path[256];

static int64_t q_int(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t v = -1;

	sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		fprintf(stderr, "bad test SQL: %s: %s\n", sql, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -2;
	}
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* The members of a snapshot as "a,b,c" (sorted), from the public view. */
static const char *members(int64_t snap)
{
	static char out[512];
	char sql[256];
	sqlite3 *db;
	sqlite3_stmt *s;

	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(group_concat(client_id, ','), '') FROM (SELECT client_id FROM "
		 "snapshot_clients WHERE snapshot_id = %lld ORDER BY client_id)", (long long)snap);
	sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	out[0] = '\0';
	if (sqlite3_step(s) == SQLITE_ROW)
		snprintf(out, sizeof(out), "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return out;
}

/* How crawl_v ends the finalize it begins. */
enum fin_mode {
	FIN_CONSISTENT,   /* commit as merged */
	FIN_ABORT,        /* abort: nothing written (a re-walk) */
	FIN_KEEP_ABSENT,  /* merge keeping the absent, commit as inconsistent */
};

/* Stages ids as one page and finalizes; returns the snapshot id and fills the tally. */
static const struct store_resume resume = { 0, 3600, 3600 };
static const struct store_resume restart = { 1, 3600, 3600 };

static int64_t crawl_v(struct store *st, int64_t run, const char *group, const char **ids,
		       size_t n, enum fin_mode mode, struct store_tally *t)
{
	struct store_snap snap;
	struct cs_error err = { 0 };
	size_t lens[16], i;

	for (i = 0; i < n; i++)
		lens[i] = strlen(ids[i]);
	CHECK(store_snapshot_begin(st, run, "mqtt-a", group, &resume, &snap, &err) == 0);
	CHECK(store_begin(st, &err) == 0);
	CHECK(store_stage_page(st, &snap, ids, lens, n, &err) == 0);
	snap.cs.pages = 1;
	snap.cs.staged_ids = (int64_t)n;
	snap.cs.total_reported = (int64_t)n;
	CHECK(store_checkpoint(st, &snap, &err) == 0);
	CHECK(store_commit(st, &err) == 0);
	CHECK(store_finalize_begin(st, &snap, mode == FIN_KEEP_ABSENT, t, &err) == 0);
	if (mode == FIN_ABORT)
		store_finalize_abort(st);
	else
		CHECK(store_finalize_commit(st, &snap, mode == FIN_CONSISTENT ? STORE_CONSISTENT
						: STORE_INCONSISTENT, t, &err) == 0);
	store_snap_release(&snap);
	if (err.kind)
		fprintf(stderr, "store error: %s\n", err.msg);
	return snap.snapshot_id;
}

static int64_t crawl(struct store *st, int64_t run, const char *group, const char **ids, size_t n,
		     int64_t *added, int64_t *removed)
{
	struct store_tally t;
	int64_t id = crawl_v(st, run, group, ids, n, FIN_CONSISTENT, &t);

	*added = t.added;
	*removed = t.removed;
	return id;
}

static void test_intervals(void)
{
	struct store *st = NULL;
	struct cs_error err = { 0 };
	struct store_snap snap;
	const char *s1[] = { "G@@@a", "G@@@b", "G@@@c" };
	const char *s2[] = { "G@@@b", "G@@@c", "G@@@d", "G@@@b" };
	const char *sx[] = { "G@@@x" };
	const char *s4[] = { "G@@@a", "G@@@b", "G@@@c", "G@@@d" };
	size_t lx = 5;
	int64_t run, a, r, id1, id2, id4;
	struct store_tally t;
	struct stat sb;

	CHECK(store_open(&st, path, STORE_WRITE, &err) == 0);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	CHECK(store_run_begin(st, &run, &err) == 0);

	id1 = crawl(st, run, "GID_x", s1, 3, &a, &r);
	CHECK_INT(a, 3);
	CHECK_INT(r, 0);
	id2 = crawl(st, run, "GID_x", s2, 4, &a, &r);  /* b repeats: staged once */
	CHECK_INT(a, 1);
	CHECK_INT(r, 1);
	CHECK_STR(members(id1), "G@@@a,G@@@b,G@@@c");
	CHECK_STR(members(id2), "G@@@b,G@@@c,G@@@d");
	CHECK_INT(q_int("SELECT count(*) FROM changes WHERE change = 'added' AND client_id = 'G@@@d'"), 1);
	CHECK_INT(q_int("SELECT count(*) FROM changes WHERE change = 'removed' AND client_id = 'G@@@a'"), 1);

	/* a failed crawl stages x and fails: nothing changes, the snapshot is failed */
	CHECK(store_snapshot_begin(st, run, "mqtt-a", "GID_x", &resume, &snap, &err) == 0);
	CHECK(store_begin(st, &err) == 0);
	CHECK(store_stage_page(st, &snap, sx, &lx, 1, &err) == 0);
	CHECK(store_commit(st, &err) == 0);
	CHECK(store_snapshot_fail(st, &snap, "PermissionCheckFailed", "no", "REQ-1", 0, &err) == 0);
	CHECK_INT(q_int("SELECT count(*) FROM current_clients WHERE group_id = 'GID_x'"), 3);
	CHECK_INT(q_int("SELECT count(*) FROM cs_stage"), 0);
	CHECK_INT(q_int("SELECT count(*) FROM snapshots WHERE status = 'failed' AND error_code = "
			"'PermissionCheckFailed' AND error_message = 'no (request REQ-1)'"), 1);
	CHECK_INT(q_int("SELECT count(*) FROM snapshot_clients WHERE client_id = 'G@@@x'"), 0);
	store_snap_release(&snap);

	/* a group's first snapshot (the set-based path) counts duplicates too */
	{
		const char *dup[] = { "D@@@a", "D@@@b", "D@@@a" };

		crawl_v(st, run, "GID_d", dup, 3, FIN_CONSISTENT, &t);
		CHECK_INT(t.distinct, 2);
		CHECK_INT(t.duplicates, 1);
		CHECK_INT(t.added, 2);
		CHECK_INT(q_int("SELECT count(*) FROM current_clients WHERE group_id = 'GID_d'"), 2);
	}

	/* a completed crawl's pages wait for the sweep at the end of the run */
	crawl(st, run, "GID_y", s1, 3, &a, &r);
	CHECK_INT(q_int("SELECT count(*) FROM cs_stage s JOIN cs_group g USING (group_key)"
			" WHERE g.group_id = 'GID_y'"), 1);
	CHECK(store_stage_sweep(st, &err) == 0);
	CHECK_INT(q_int("SELECT count(*) FROM cs_stage"), 0);

	/* a re-added client keeps its first_seen_at */
	id4 = crawl(st, run, "GID_x", s4, 4, &a, &r);
	CHECK_INT(a, 1);
	CHECK_INT(r, 0);
	CHECK_STR(members(id4), "G@@@a,G@@@b,G@@@c,G@@@d");
	CHECK_STR(members(id2), "G@@@b,G@@@c,G@@@d");  /* history unchanged */
	CHECK_INT(q_int("SELECT count(*) FROM cs_interval WHERE client_id = 'G@@@a'"), 3); /* 2 in GID_x */
	CHECK_INT(q_int("SELECT count(DISTINCT first_seen) FROM cs_interval i JOIN cs_group g"
			" USING (group_key) WHERE client_id = 'G@@@a' AND g.group_id = 'GID_x'"), 1);
	CHECK_INT(q_int("SELECT count(*) FROM current_clients WHERE device_id = 'a'"), 3); /* GID_x, GID_y, GID_d */
	/* unchanged syncs add no interval rows */
	crawl(st, run, "GID_x", s4, 4, &a, &r);
	crawl(st, run, "GID_x", s4, 4, &a, &r);
	CHECK_INT(a + r, 0);
	CHECK_INT(q_int("SELECT count(*) FROM cs_interval i JOIN cs_group g USING (group_key)"
			" WHERE g.group_id = 'GID_x'"), 5);
	CHECK_INT(q_int("SELECT count(*) FROM snapshot_clients WHERE group_id = 'GID_x'"), 3 + 3 + 4 * 3);

	/* duplicates are counted, and an aborted finalize (a re-walk) writes nothing */
	crawl_v(st, run, "GID_x", s2, 4, FIN_ABORT, &t);
	CHECK_INT(t.distinct, 3);
	CHECK_INT(t.duplicates, 1);
	CHECK_INT(t.removed, 1);
	CHECK_INT(q_int("SELECT count(*) FROM current_clients WHERE group_id = 'GID_x'"), 4);
	CHECK_INT(q_int("SELECT count(*) FROM snapshots WHERE status = 'running'"), 1);
	CHECK_INT(q_int("SELECT count(*) FROM cs_stage"), 1);

	/* an inconsistent walk records its additions and keeps the members it did not see */
	{
		const char *part[] = { "G@@@b", "G@@@e" };
		int64_t idk;

		crawl(st, run, "GID_k", s4, 4, &a, &r);
		idk = crawl_v(st, run, "GID_k", part, 2, FIN_KEEP_ABSENT, &t);

		CHECK_INT(t.added, 1);
		CHECK_INT(t.removed, 0);
		CHECK_INT(t.carried, 3);
		CHECK_INT(t.members, 5);
		CHECK_STR(members(idk), "G@@@a,G@@@b,G@@@c,G@@@d,G@@@e");
		CHECK_INT(q_int("SELECT count(*) FROM changes WHERE change = 'removed' AND group_id = "
				"'GID_k'"), 0);
		CHECK_INT(q_int("SELECT count(*) FROM current_clients WHERE group_id = 'GID_k'"), 5);
		CHECK_INT(q_int("SELECT client_count * 10 + consistent FROM snapshots WHERE snapshot_id = "
				"(SELECT max(snapshot_id) FROM snapshots WHERE group_id = 'GID_k')"), 50);
	}
	store_close(st);
}

#define STAGE_H "SELECT count(*) FROM cs_stage WHERE group_key = " \
	"(SELECT group_key FROM cs_group WHERE group_id = 'GID_h')"

static void test_resume(void)
{
	struct store *st = NULL;
	struct cs_error err = { 0 };
	struct store_snap snap;
	const char *p1[] = { "H@@@p", "H@@@q" };
	const char *p2[] = { "H@@@r" };
	size_t l1[] = { 5, 5 }, l2[] = { 5 };
	int64_t run, rec = 0, old;
	struct store_tally t;

	CHECK(store_open(&st, path, STORE_WRITE, &err) == 0);
	CHECK(store_run_begin(st, &run, &err) == 0);
	CHECK(store_snapshot_begin(st, run, "mqtt-a", "GID_h", &resume, &snap, &err) == 0);
	old = snap.snapshot_id;
	CHECK(store_begin(st, &err) == 0);
	CHECK(store_stage_page(st, &snap, p1, l1, 2, &err) == 0);
	snap.cs.page_no = 2;
	snap.cs.pages = 1;
	snap.cs.staged_ids = 2;
	snap.cs.next_token = strdup("TOKEN-2");
	CHECK(store_checkpoint(st, &snap, &err) == 0);
	CHECK(store_commit(st, &err) == 0);
	store_snap_release(&snap);
	store_close(st); /* as if killed: the snapshot and run stay 'running' */

	CHECK(store_open(&st, path, STORE_WRITE, &err) == 0);
	CHECK(store_recover(st, &rec, &err) == 0);
	CHECK_INT(rec, 2); /* this one, and the one test_intervals left for a re-walk */
	CHECK_INT(q_int("SELECT count(*) FROM runs WHERE status = 'running'"), 0);
	CHECK(store_run_begin(st, &run, &err) == 0);
	CHECK(store_snapshot_begin(st, run, "mqtt-a", "GID_h", &resume, &snap, &err) == 0);
	CHECK_INT(snap.resumed_from, old);
	CHECK_INT(snap.cs.page_no, 2);
	CHECK_STR(snap.cs.next_token, "TOKEN-2");
	CHECK_INT(snap.cs.staged_ids, 2);
	CHECK_INT(snap.cs.pages, 1);
	CHECK(store_begin(st, &err) == 0);
	CHECK(store_stage_page(st, &snap, p2, l2, 1, &err) == 0);
	CHECK(store_commit(st, &err) == 0);
	CHECK(store_finalize_begin(st, &snap, 0, &t, &err) == 0);
	CHECK(store_finalize_commit(st, &snap, STORE_CONSISTENT, &t, &err) == 0);
	CHECK_INT(t.distinct, 3);
	CHECK_INT(t.added, 3);
	CHECK_INT(q_int("SELECT count(*) FROM snapshots WHERE error_message LIKE '%resumed by snapshot%'"), 1);
	store_snap_release(&snap);

	/* --restart drops a checkpoint */
	CHECK(store_snapshot_begin(st, run, "mqtt-a", "GID_h", &resume, &snap, &err) == 0);
	CHECK(store_begin(st, &err) == 0);
	CHECK(store_stage_page(st, &snap, p1, l1, 2, &err) == 0);
	snap.cs.page_no = 5;
	CHECK(store_checkpoint(st, &snap, &err) == 0);
	CHECK(store_commit(st, &err) == 0);
	CHECK(store_snapshot_fail(st, &snap, "Interrupted", "x", NULL, 1, &err) == 0);
	store_snap_release(&snap);
	CHECK_INT(q_int(STAGE_H), 1);
	CHECK(store_snapshot_begin(st, run, "mqtt-a", "GID_h", &restart, &snap, &err) == 0);
	CHECK(snap.resumed_from == 0 && snap.discarded_from != 0);
	CHECK_INT(snap.cs.page_no, 1);
	CHECK_INT(q_int(STAGE_H), 0);
	CHECK(store_snapshot_fail(st, &snap, "Interrupted", "x", NULL, 0, &err) == 0);
	store_snap_release(&snap);
	store_close(st);
}

/* Sorted staging is read without a sort; a wrong claim of order is caught and merged again
 * with one, so the result never depends on the claim. */
static void test_sorted_staging(void)
{
	struct store *st = NULL;
	struct cs_error err = { 0 };
	struct store_snap snap;
	struct store_tally t;
	const char *base[] = { "S@@@b", "S@@@d", "S@@@f" };
	const char *p1[] = { "S@@@a", "S@@@b" }, *p2[] = { "S@@@c", "S@@@d" };
	const char *bad[] = { "S@@@d", "S@@@a", "S@@@c" };
	size_t l[] = { 5, 5, 5 };
	int64_t run, a, r;

	CHECK(store_open(&st, path, STORE_WRITE, &err) == 0);
	CHECK(store_run_begin(st, &run, &err) == 0);
	crawl(st, run, "GID_s", base, 3, &a, &r);

	/* two pages in rising order: sorted stays on, the merge reads them as staged */
	CHECK(store_snapshot_begin(st, run, "mqtt-a", "GID_s", &resume, &snap, &err) == 0);
	CHECK(store_begin(st, &err) == 0);
	CHECK(store_stage_page(st, &snap, p1, l, 2, &err) == 0);
	snap.cs.pages = 1;
	snap.cs.staged_ids = 2;
	CHECK(store_stage_page(st, &snap, p2, l, 2, &err) == 0);
	snap.cs.pages = 2;
	snap.cs.staged_ids = 4;
	CHECK(snap.stage.sorted == 1);
	CHECK_STR(buf_str(&snap.stage.last_id), "S@@@d");
	CHECK(store_checkpoint(st, &snap, &err) == 0);
	CHECK(store_commit(st, &err) == 0);
	CHECK(store_finalize_begin(st, &snap, 0, &t, &err) == 0);
	CHECK(store_finalize_commit(st, &snap, STORE_CONSISTENT, &t, &err) == 0);
	CHECK_INT(t.distinct, 4);
	CHECK_INT(t.added, 2);   /* a, c */
	CHECK_INT(t.removed, 1); /* f */
	store_snap_release(&snap);

	/* out of order: staging notices */
	CHECK(store_snapshot_begin(st, run, "mqtt-a", "GID_s", &resume, &snap, &err) == 0);
	CHECK(store_begin(st, &err) == 0);
	CHECK(store_stage_page(st, &snap, bad, l, 3, &err) == 0);
	CHECK(snap.stage.sorted == 0);
	/* and a false claim of order is caught by the merge, which sorts after all */
	snap.stage.sorted = 1;
	snap.cs.pages = 1;
	snap.cs.staged_ids = 3;
	CHECK(store_commit(st, &err) == 0);
	CHECK(store_finalize_begin(st, &snap, 0, &t, &err) == 0);
	CHECK(store_finalize_commit(st, &snap, STORE_CONSISTENT, &t, &err) == 0);
	CHECK_INT(t.distinct, 3);
	CHECK_INT(t.added, 0);
	CHECK_INT(t.removed, 1); /* b */
	CHECK_INT(q_int("SELECT count(*) FROM current_clients WHERE group_id = 'GID_s'"), 3);
	store_snap_release(&snap);
	store_close(st);
}

/* 1 when the public snapshot_clients relation has exactly this client in the snapshot. */
static int has_member(int64_t snapshot_id, const char *client_id)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int found;

	sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	sqlite3_prepare_v2(db, "SELECT count(*) FROM snapshot_clients WHERE snapshot_id = ?1"
			   " AND client_id = ?2", -1, &q, NULL);
	sqlite3_bind_int64(q, 1, snapshot_id);
	sqlite3_bind_text(q, 2, client_id, -1, SQLITE_STATIC);
	found = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 1;
	sqlite3_finalize(q);
	sqlite3_close(db);
	return found;
}

/* Staged pages are decoded in C: every byte an ID may hold survives staging exactly, on the
 * first snapshot and through a merge. */
static void test_exact_bytes(void)
{
	struct store *st = NULL;
	struct cs_error err = { 0 };
	const char *ids[] = { "E@@@q\"uote", "E@@@back\\slash", "E@@@ctl\x01\x1f\x7f", "E@@@nl\n\t\r",
			      "E@@@/slash", "E@@@\xc3\xa9\xe8\xae\xbe", "E@@@<script>" };
	const char *more[] = { "E@@@/slash", "E@@@\xc3\xa9\xe8\xae\xbe", "E@@@z\x02" };
	int64_t run, a, r, id;
	size_t i;

	CHECK(store_open(&st, path, STORE_WRITE, &err) == 0);
	CHECK(store_run_begin(st, &run, &err) == 0);
	id = crawl(st, run, "GID_e", ids, 7, &a, &r);
	CHECK_INT(a, 7);
	for (i = 0; i < 7; i++)
		CHECK(has_member(id, ids[i]));
	crawl(st, run, "GID_e", more, 3, &a, &r);
	CHECK_INT(a, 1);
	CHECK_INT(r, 5);
	/* in byte order: the merge reads the pages as staged, decoding escapes in C */
	{
		const char *sorted[] = { "E@@@/slash", "E@@@<script>", "E@@@back\\slash",
					 "E@@@ctl\x01\x1f\x7f", "E@@@nl\n\t\r", "E@@@q\"uote", "E@@@z\x02",
					 "E@@@\xc3\xa9\xe8\xae\xbe" };

		id = crawl(st, run, "GID_e", sorted, 8, &a, &r);
		CHECK_INT(a, 5);
		CHECK_INT(r, 0);
		for (i = 0; i < 8; i++)
			CHECK(has_member(id, sorted[i]));
	}
	store_close(st);
}

static void test_dry_run(void)
{
	struct store *st = NULL;
	struct cs_error err = { 0 };
	struct store_snap snap;
	const char *ids[] = { "G@@@a", "G@@@z" };
	size_t lens[] = { 5, 5 };
	int64_t run;
	struct store_tally t;
	int64_t snaps_before = q_int("SELECT count(*) FROM cs_snapshot");

	CHECK(store_open(&st, path, STORE_DRYRUN, &err) == 0);
	CHECK(store_run_begin(st, &run, &err) == 0);
	CHECK(store_snapshot_begin(st, run, "mqtt-a", "GID_x", &resume, &snap, &err) == 0);
	CHECK(store_begin(st, &err) == 0);
	CHECK(store_stage_page(st, &snap, ids, lens, 2, &err) == 0);
	CHECK(store_commit(st, &err) == 0);
	CHECK(store_finalize_begin(st, &snap, 0, &t, &err) == 0);
	CHECK(store_finalize_commit(st, &snap, STORE_CONSISTENT, &t, &err) == 0);
	CHECK_INT(t.added, 1);    /* z */
	CHECK_INT(t.removed, 3);  /* b, c, d */
	store_snap_release(&snap);
	store_close(st);
	CHECK_INT(q_int("SELECT count(*) FROM cs_snapshot"), snaps_before);
	CHECK_INT(q_int("SELECT count(*) FROM current_clients WHERE group_id = 'GID_x'"), 4);

	/* a dry run without a database creates none */
	CHECK(store_open(&st, "/tmp/credsync-no-such-dir/x.db", STORE_DRYRUN, &err) == 0);
	store_close(st);
	CHECK(access("/tmp/credsync-no-such-dir/x.db", F_OK) != 0);
	/* reading a missing database is an error that says what to do */
	CHECK(store_open(&st, "/tmp/credsync-no-such.db", STORE_READ, &err) == -1);
	CHECK_CONTAINS(err.msg, "credsync sync");
}

/* The staged-page codec: every ID comes back byte for byte, whatever it holds, from the C
 * decoder and from SQLite's json_each (which reads the same pages when finalizing sorts). */
static void test_stage_codec(void)
{
	static char every[256], big[65536];
	const char *ids[] = { "", "x", big, "\xe8\xae\xbe\xe5\xa4\x87@@@\xc3\xa9", "\xff\xfe\x80 not utf-8",
			      every, "nul\0inside", "\"", "\\", "\\u0041", "/", "\x7f", "a\nb\tc\rd",
			      "\x01\x1f", "[\"],", "" };
	size_t lens[sizeof(ids) / sizeof(ids[0])];
	size_t i, n = sizeof(ids) / sizeof(ids[0]);
	struct cs_buf page = CS_BUF_INIT, key = CS_BUF_INIT;
	const char *p, *end;
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;

	for (i = 0; i < sizeof(every); i++)
		every[i] = (char)i;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)(i % 251 + 1); /* every byte but NUL, over and over */
	for (i = 0; i < n; i++)
		lens[i] = ids[i] == every ? sizeof(every) : ids[i] == big ? sizeof(big)
			  : ids[i][0] == 'n' ? 10 : strlen(ids[i]);
	stage_encode(&page, ids, lens, n);
	CHECK(!page.oom);
	p = page.data;
	end = page.data + page.len;
	for (i = 0; i < n; i++) {
		CHECK_INT(stage_decode_next(&p, end, &key), 1);
		CHECK_INT(key.len, lens[i]);
		CHECK(key.len == lens[i] && memcmp(buf_str(&key), ids[i], lens[i]) == 0);
	}
	CHECK_INT(stage_decode_next(&p, end, &key), 0);
	CHECK_INT(stage_decode_next(&p, end, &key), 0);

	/* the same page through SQL */
	CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "SELECT value FROM json_each(?1) ORDER BY key", -1, &s, NULL) ==
	      SQLITE_OK);
	sqlite3_bind_text(s, 1, page.data, (int)page.len, SQLITE_STATIC);
	for (i = 0; i < n; i++) {
		CHECK_INT(sqlite3_step(s), SQLITE_ROW);
		/* SQLite's text stops at a NUL it decodes; the C path above keeps it */
		if (memchr(ids[i], '\0', lens[i]))
			continue;
		CHECK_INT(sqlite3_column_bytes(s, 0), lens[i]);
		CHECK(memcmp(sqlite3_column_text(s, 0), ids[i], lens[i]) == 0);
	}
	CHECK_INT(sqlite3_step(s), SQLITE_DONE);
	sqlite3_finalize(s);
	sqlite3_close(db);

	/* an empty page, and text that is no page */
	buf_reset(&page);
	stage_encode(&page, ids, lens, 0);
	CHECK_STR(buf_str(&page), "[]");
	p = page.data;
	CHECK_INT(stage_decode_next(&p, page.data + page.len, &key), 0);
	{
		const char *bad[] = { "[\"open", "[x]", "[\"\\u0100\"]", "[\"\\q\"]", "[\"\\" };

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			p = bad[i];
			CHECK_INT(stage_decode_next(&p, bad[i] + strlen(bad[i]), &key), -1);
		}
	}
	buf_release(&page);
	buf_release(&key);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/t.db", dir);
	umask(022);
	test_intervals();
	test_resume();
	test_sorted_staging();
	test_exact_bytes();
	test_dry_run();
	test_stage_codec();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return 1;
	}
	TEST_DONE();
}
