/*
 * store_sql.c - the SQL of the store's own statements, one table indexed by enum stmt_id
 * (store_int.h).  Every statement is bound, never built from values.
 */
#include "store_int.h"

const char *const store_stmt_sql[S_COUNT] = {
	[S_RUN_INSERT] = "INSERT INTO cs_run (started_at, status, pid) VALUES (?1, 'running', ?2)",
	[S_RUN_FINISH] =
		"UPDATE cs_run SET finished_at = ?2, status = ?3, groups_ok = ?4, groups_failed = ?5,"
		" requests = ?6, retries = ?7, throttled = ?8 WHERE run_id = ?1",
	[S_GROUP_INSERT] = "INSERT OR IGNORE INTO cs_group (instance_id, group_id) VALUES (?1, ?2)",
	[S_GROUP_SELECT] = "SELECT group_key FROM cs_group WHERE instance_id = ?1 AND group_id = ?2",
	[S_CKPT_SELECT] =
		"SELECT snapshot_id, page_no, next_token, pages, staged_ids, total_reported,"
		" rewalked, updated_epoch, sorted, last_id, read_first_epoch, read_last_epoch"
		" FROM cs_checkpoint WHERE group_key = ?1",
	[S_CKPT_DELETE] = "DELETE FROM cs_checkpoint WHERE group_key = ?1",
	/* an update in place on every page, not a delete and insert */
	[S_CKPT_UPSERT] =
		"INSERT INTO cs_checkpoint (group_key, snapshot_id, page_no, next_token,"
		" pages, staged_ids, total_reported, rewalked, updated_epoch, sorted, last_id,"
		" read_first_epoch, read_last_epoch)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
		" ON CONFLICT (group_key) DO UPDATE SET snapshot_id = excluded.snapshot_id,"
		" page_no = excluded.page_no, next_token = excluded.next_token,"
		" pages = excluded.pages, staged_ids = excluded.staged_ids,"
		" total_reported = excluded.total_reported, rewalked = excluded.rewalked,"
		" updated_epoch = excluded.updated_epoch, sorted = excluded.sorted,"
		" last_id = excluded.last_id, read_first_epoch = excluded.read_first_epoch,"
		" read_last_epoch = excluded.read_last_epoch",
	[S_STAGE_INSERT] = "INSERT OR REPLACE INTO cs_stage (group_key, seq, n, ids) VALUES (?1, ?2, ?3, ?4)",
	[S_STAGE_CLEAR] = "DELETE FROM cs_stage WHERE group_key = ?1",
	[S_SNAP_INSERT] =
		"INSERT INTO cs_snapshot (run_id, group_key, status, started_at) VALUES (?1, ?2, 'running', ?3)",
	[S_SNAP_RESUMED] =
		"UPDATE cs_snapshot SET status = 'failed', finished_at = coalesce(finished_at, ?2),"
		" error_code = coalesce(error_code, 'Interrupted'),"
		" error_message = coalesce(error_message, 'crawl interrupted') || '; resumed by snapshot ' || ?3"
		" WHERE snapshot_id = ?1",
	[S_SNAP_FAIL] =
		"UPDATE cs_snapshot SET status = 'failed', finished_at = ?2, finished_epoch = ?3,"
		" pages = ?4, total_reported = ?5, error_code = ?6, error_message = ?7, request_id = ?8,"
		" read_first_epoch = ?9, read_last_epoch = ?10 WHERE snapshot_id = ?1",
	[S_SNAP_COMPLETE] =
		"UPDATE cs_snapshot SET status = 'complete', finished_at = ?2, finished_epoch = ?3,"
		" pages = ?4, client_count = ?5, total_reported = ?6, consistent = ?7, added = ?8,"
		" removed = ?9, read_first_epoch = ?10, read_last_epoch = ?11 WHERE snapshot_id = ?1",
	/* The staged IDs in byte order (SQLite sorts them, spilling to disk for huge groups)
	 * and the group's intervals in primary-key order: the two sides of the merge. */
	[S_MERGE_STAGED] =
		"SELECT j.value FROM cs_stage p, json_each(p.ids) j WHERE p.group_key = ?1"
		" ORDER BY j.value",
	/* the pages themselves, in crawl order: for walks whose IDs rose in byte order, and for
	 * a group's first snapshot, the IDs are decoded in C as they are read, with no sorter
	 * and no json_each */
	[S_STAGE_PAGES] = "SELECT ids FROM cs_stage WHERE group_key = ?1 ORDER BY seq",
	[S_MERGE_INTERVALS] =
		"SELECT client_id, from_snap, to_snap, first_seen FROM cs_interval"
		" WHERE group_key = ?1 ORDER BY client_id, from_snap",
	[S_INTERVAL_OPEN] =
		"INSERT INTO cs_interval (group_key, client_id, from_snap, to_snap, first_seen)"
		" VALUES (?1, ?2, ?3, NULL, ?4)",
	[S_INTERVAL_CLOSE] =
		"UPDATE cs_interval SET to_snap = ?4 WHERE group_key = ?1 AND client_id = ?2"
		" AND from_snap = ?3",
	[S_HAS_INTERVALS] = "SELECT count(*) FROM (SELECT 1 FROM cs_interval WHERE group_key = ?1 LIMIT 1)",
	[S_FIRST_SNAPSHOT] =
		"INSERT OR IGNORE INTO cs_interval (group_key, client_id, from_snap, to_snap, first_seen)"
		" SELECT ?1, j.value, ?2, NULL, ?3 FROM cs_stage p, json_each(p.ids) j"
		" WHERE p.group_key = ?1",
	[S_STAGED_TOTAL] = "SELECT coalesce(sum(n), 0) FROM cs_stage WHERE group_key = ?1",
	[S_RUN_PROGRESS] =
		"UPDATE cs_run SET groups_ok = ?2, groups_failed = ?3, requests = ?4, retries = ?5,"
		" throttled = ?6 WHERE run_id = ?1",
	/* as S_FIRST_SNAPSHOT, for a group some of whose clients prune has forgotten: they come
	 * back with the first-seen time they had */
	[S_FIRST_SNAPSHOT_FS] =
		"INSERT OR IGNORE INTO cs_interval (group_key, client_id, from_snap, to_snap, first_seen)"
		" SELECT ?1, j.value, ?2, NULL, coalesce((SELECT f.first_seen FROM cs_first_seen f"
		"  WHERE f.group_key = ?1 AND f.client_id = j.value), ?3)"
		" FROM cs_stage p, json_each(p.ids) j WHERE p.group_key = ?1",
	[S_FIRST_SEEN_LOOKUP] =
		"SELECT first_seen FROM cs_first_seen WHERE group_key = ?1 AND client_id = ?2",
	[S_HAS_FIRST_SEEN] =
		"SELECT count(*) FROM (SELECT 1 FROM cs_first_seen WHERE group_key = ?1 LIMIT 1)",
	[S_RATE_GET] = "SELECT rate FROM main.cs_rate WHERE host = ?1 AND updated_epoch >= ?2",
	[S_RATE_PUT] =
		"INSERT INTO main.cs_rate (host, rate, updated_epoch) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (host) DO UPDATE SET rate = excluded.rate,"
		" updated_epoch = excluded.updated_epoch",
};
