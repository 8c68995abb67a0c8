/*
 * store_sql.c - the store's SQL: its own statements (enum stmt_id, store_int.h) and the named
 * queries other modules run through store_query (enum store_query_id, store.h), each table
 * indexed by its enum and prepared once per connection.  Every statement is bound, never
 * built from values.
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

#define SNAP_COLUMNS \
	"s.snapshot_id, s.run_id, s.group_key, g.instance_id, g.group_id, s.status," \
	" s.started_at, s.finished_at, s.pages, s.client_count, s.total_reported, s.added," \
	" s.removed, s.consistent, s.error_code, s.error_message, s.identity" \
	" FROM cs_snapshot s JOIN cs_group g ON g.group_key = s.group_key"

/* Intervals that start or end between the two snapshots, grouped per client; in_a / in_b say
 * whether the client is in each.  ?1 group, ?2 a, ?3 b, ?4 min(a, b), ?5 max(a, b). */
#define DIFF_CORE \
	" SELECT client_id," \
	"  max(from_snap <= ?2 AND (to_snap IS NULL OR to_snap > ?2)) AS in_a," \
	"  max(from_snap <= ?3 AND (to_snap IS NULL OR to_snap > ?3)) AS in_b" \
	" FROM cs_interval WHERE group_key = ?1" \
	"  AND ((from_snap > ?4 AND from_snap <= ?5) OR (to_snap > ?4 AND to_snap <= ?5))" \
	" GROUP BY client_id"

#define DEVICE_OF(col) \
	"CASE WHEN instr(" col ", '@@@') > 0 THEN substr(" col ", instr(" col ", '@@@') + 3) END"

#define INTERVAL_COLUMNS \
	"SELECT i.client_id, i.from_snap, coalesce(i.to_snap, 0)," \
	" coalesce(f.run_id, 0), f.finished_at, coalesce(t.run_id, 0), t.finished_at" \
	" FROM cs_interval i" \
	" LEFT JOIN cs_snapshot f ON f.snapshot_id = i.from_snap" \
	" LEFT JOIN cs_snapshot t ON t.snapshot_id = i.to_snap"

/* a closed interval no kept complete snapshot needs (see history_prune) */
#define PRUNE_UNNEEDED \
	" WHERE to_snap IS NOT NULL" \
	" AND NOT EXISTS (SELECT 1 FROM cs_snapshot s WHERE s.group_key = cs_interval.group_key" \
	"  AND s.status = 'complete' AND s.snapshot_id >= cs_interval.from_snap" \
	"  AND s.snapshot_id <= cs_interval.to_snap)"

/* the STORE_AUDIT_BATCH - 1 more rows of a batched audit insert: ", (?, ?)" each, numbered on
 * from the first row's ?1 and ?2 */
#define PAIRS1 ", (?, ?)"
#define PAIRS2 PAIRS1 PAIRS1
#define PAIRS4 PAIRS2 PAIRS2
#define PAIRS8 PAIRS4 PAIRS4
#define PAIRS16 PAIRS8 PAIRS8
#define PAIRS32 PAIRS16 PAIRS16
#define BATCH_PAIRS PAIRS32 PAIRS16 PAIRS8 PAIRS4 PAIRS2 PAIRS1
_Static_assert(STORE_AUDIT_BATCH == 64, "BATCH_PAIRS holds STORE_AUDIT_BATCH - 1 rows");

const char *const store_query_sql[STORE_Q_COUNT] = {
	[STORE_Q_GROUPS] =
		"SELECT group_key, instance_id, group_id FROM cs_group"
		" WHERE (?1 IS NULL OR instance_id = ?1) AND (?2 IS NULL OR group_id = ?2)"
		" ORDER BY instance_id, group_id",
	[STORE_Q_RESOLVE_SNAPSHOT] =
		"SELECT snapshot_id FROM cs_snapshot WHERE group_key = ?1"
		" AND status = 'complete' AND snapshot_id = ?2",
	[STORE_Q_RESOLVE_RUN] =
		"SELECT max(snapshot_id) FROM cs_snapshot WHERE group_key = ?1"
		" AND status = 'complete' AND run_id <= ?2",
	/* a time means what the service said then: when the data was read */
	[STORE_Q_RESOLVE_TIME] =
		"SELECT max(snapshot_id) FROM cs_snapshot WHERE group_key = ?1"
		" AND status = 'complete'"
		" AND coalesce(read_last_epoch, finished_epoch) <= ?2",
	[STORE_Q_RESOLVE_LATEST] =
		"SELECT max(snapshot_id) FROM cs_snapshot WHERE group_key = ?1"
		" AND status = 'complete'",
	[STORE_Q_RESOLVE_PREVIOUS] =
		"SELECT max(snapshot_id) FROM cs_snapshot WHERE group_key = ?1"
		" AND status = 'complete' AND snapshot_id < ?2",
	[STORE_Q_SNAPSHOT] = "SELECT " SNAP_COLUMNS " WHERE s.snapshot_id = ?1",
	[STORE_Q_SNAPSHOTS] =
		"SELECT " SNAP_COLUMNS
		" WHERE (?1 IS NULL OR g.instance_id = ?1) AND (?2 IS NULL OR g.group_id = ?2)"
		" ORDER BY s.snapshot_id DESC LIMIT ?3",
	[STORE_Q_DIFF_COUNTS] =
		"SELECT coalesce(sum(in_b AND NOT in_a), 0), coalesce(sum(in_a AND NOT in_b), 0)"
		" FROM (" DIFF_CORE ")",
	[STORE_Q_DIFF_ADDED] =
		"SELECT client_id FROM (" DIFF_CORE ") WHERE in_b AND NOT in_a ORDER BY client_id",
	[STORE_Q_DIFF_REMOVED] =
		"SELECT client_id FROM (" DIFF_CORE ") WHERE in_a AND NOT in_b ORDER BY client_id",
	/* the primary key's order: streamed, never sorted */
	[STORE_Q_MEMBERS] =
		"SELECT client_id FROM cs_interval WHERE group_key = ?1 AND from_snap <= ?2"
		" AND (to_snap IS NULL OR to_snap > ?2)"
		" AND (?3 IS NULL OR client_id GLOB ?3 OR " DEVICE_OF("client_id") " GLOB ?3)"
		" ORDER BY client_id",
	[STORE_Q_INTERVALS_GLOB] =
		INTERVAL_COLUMNS
		" WHERE i.group_key = ?1 AND (i.client_id GLOB ?2"
		"  OR " DEVICE_OF("i.client_id") " GLOB ?2)"
		" ORDER BY i.client_id, i.from_snap",
	[STORE_Q_INTERVALS_EXACT] =
		INTERVAL_COLUMNS
		" WHERE i.group_key = ?1 AND (i.client_id = ?2"
		"  OR " DEVICE_OF("i.client_id") " = ?2)"
		" ORDER BY i.client_id, i.from_snap",
	/*
	 * A group's first complete snapshot added every client it holds and removed none; an
	 * interval opened before the earliest retained snapshot names one that is gone.  Either
	 * proves that older history existed and was deleted by prune.  (What neither shows: a
	 * pruned past in which the group was empty and every interval closed.)
	 */
	[STORE_Q_PRUNED_BEFORE] =
		"SELECT e.snapshot_id, (coalesce(e.removed, 0) != 0"
		"  OR coalesce(e.added, 0) != coalesce(e.client_count, 0)"
		"  OR EXISTS (SELECT 1 FROM cs_interval i WHERE i.group_key = e.group_key"
		"   AND i.from_snap < e.snapshot_id))"
		" FROM cs_snapshot e WHERE e.group_key = ?1 AND e.status = 'complete'"
		" ORDER BY e.snapshot_id LIMIT 1",
	[STORE_Q_SERIES] =
		"SELECT snapshot_id, coalesce(read_last_epoch, finished_epoch), client_count"
		" FROM cs_snapshot"
		" WHERE group_key = ?1 AND status = 'complete' ORDER BY snapshot_id",
	[STORE_Q_PRUNE_CREATE] =
		"CREATE TEMP TABLE IF NOT EXISTS prune_doomed (snapshot_id INTEGER PRIMARY KEY)",
	[STORE_Q_PRUNE_CLEAR] = "DELETE FROM temp.prune_doomed",
	/* beyond the ?1 newest complete snapshots of its group */
	[STORE_Q_PRUNE_KEEP_LAST] =
		"INSERT OR IGNORE INTO temp.prune_doomed SELECT s.snapshot_id FROM cs_snapshot s"
		" WHERE s.status != 'running' AND (SELECT count(*) FROM cs_snapshot k"
		"  WHERE k.group_key = s.group_key AND k.status = 'complete'"
		"  AND k.snapshot_id > s.snapshot_id) >= ?1",
	/* spares from keep_last the snapshots finished at or after ?1 */
	[STORE_Q_PRUNE_SPARE_YOUNG] =
		"DELETE FROM temp.prune_doomed WHERE snapshot_id IN (SELECT snapshot_id FROM"
		" cs_snapshot WHERE coalesce(finished_epoch,"
		" CAST(strftime('%s', started_at) AS INTEGER)) >= ?1)",
	[STORE_Q_PRUNE_OLDER_THAN] =
		"INSERT OR IGNORE INTO temp.prune_doomed SELECT snapshot_id FROM cs_snapshot"
		" WHERE status != 'running'"
		" AND coalesce(finished_epoch, CAST(strftime('%s', started_at) AS INTEGER)) < ?1",
	/* never: a group's latest complete snapshot, nor one a checkpoint resumes */
	[STORE_Q_PRUNE_SPARE_NEEDED] =
		"DELETE FROM temp.prune_doomed WHERE snapshot_id IN"
		" (SELECT max(snapshot_id) FROM cs_snapshot WHERE status = 'complete'"
		"  GROUP BY group_key) OR snapshot_id IN (SELECT snapshot_id FROM cs_checkpoint)",
	[STORE_Q_PRUNE_SNAPSHOTS] =
		"DELETE FROM cs_snapshot WHERE snapshot_id IN (SELECT snapshot_id FROM"
		" temp.prune_doomed)",
	[STORE_Q_PRUNE_FIRST_SEEN] =
		"INSERT OR IGNORE INTO cs_first_seen (group_key, client_id, first_seen)"
		" SELECT group_key, client_id, min(first_seen) FROM cs_interval"
		PRUNE_UNNEEDED
		" GROUP BY group_key, client_id",
	[STORE_Q_PRUNE_INTERVALS] = "DELETE FROM cs_interval" PRUNE_UNNEEDED,
	[STORE_Q_PRUNE_RUNS] =
		"DELETE FROM cs_run WHERE status != 'running' AND NOT EXISTS"
		" (SELECT 1 FROM cs_snapshot s WHERE s.run_id = cs_run.run_id)",
	/* audit.c: the register (a virtual table) and its temporary tables (one read
	 * transaction; see the top of audit.c) */
	/* The temporary tables (see the top of audit.c); no index but the primary keys. */
	[STORE_Q_AUDIT_CREATE_GROUP] =
		"CREATE TEMP TABLE audit_group (group_key INTEGER PRIMARY KEY, snapshot_id INTEGER NOT NULL,"
		" ord INTEGER NOT NULL, by_key INTEGER NOT NULL DEFAULT 0, clients INTEGER NOT NULL DEFAULT 0,"
		" unexpected INTEGER NOT NULL DEFAULT 0)",
	[STORE_Q_AUDIT_CREATE_UNEXPECTED] =
		"CREATE TEMP TABLE audit_unexpected (group_key INTEGER NOT NULL, client_id TEXT NOT NULL,"
		" PRIMARY KEY (group_key, client_id)) WITHOUT ROWID",
	[STORE_Q_AUDIT_CREATE_GONE] =
		"CREATE TEMP TABLE audit_gone (line INTEGER NOT NULL, id TEXT NOT NULL)",
	/* the comparison */
	[STORE_Q_AUDIT_REGISTER_BY_ID] =
		"SELECT id, line FROM audit_register ORDER BY id, line",
	[STORE_Q_AUDIT_GROUPS] =
		"SELECT group_key, snapshot_id FROM temp.audit_group ORDER BY ord",
	/* a group's clients at its snapshot, in the primary key's order (no sort) */
	[STORE_Q_AUDIT_GROUP_BY_CLIENT] =
		"SELECT client_id FROM cs_interval WHERE group_key = ?1 AND from_snap <= ?2"
		" AND (to_snap IS NULL OR to_snap > ?2) ORDER BY client_id",
	/* its first and last client IDs, through the same key */
	[STORE_Q_AUDIT_GROUP_FIRST_LAST] =
		"SELECT (SELECT client_id FROM cs_interval WHERE group_key = ?1 AND from_snap <= ?2"
		"  AND (to_snap IS NULL OR to_snap > ?2) ORDER BY client_id LIMIT 1),"
		" (SELECT client_id FROM cs_interval WHERE group_key = ?1 AND from_snap <= ?2"
		"  AND (to_snap IS NULL OR to_snap > ?2) ORDER BY client_id DESC LIMIT 1)",
	[STORE_Q_AUDIT_SET_BY_KEY] =
		"UPDATE temp.audit_group SET by_key = 1 WHERE ord = ?1",
	/* the by_key groups' clients, sorted by device ID (the key) */
	[STORE_Q_AUDIT_BY_KEY] =
		"SELECT CASE WHEN instr(i.client_id, '@@@') > 0"
		"  THEN substr(i.client_id, instr(i.client_id, '@@@') + 3) ELSE i.client_id END AS k,"
		" g.ord, i.client_id FROM temp.audit_group g JOIN cs_interval i"
		" ON i.group_key = g.group_key AND i.from_snap <= g.snapshot_id"
		" AND (i.to_snap IS NULL OR i.to_snap > g.snapshot_id) WHERE g.by_key ORDER BY k",
	[STORE_Q_AUDIT_ADD_UNEXPECTED] =
		"INSERT INTO temp.audit_unexpected (group_key, client_id) VALUES (?1, ?2)",
	[STORE_Q_AUDIT_ADD_GONE] =
		"INSERT INTO temp.audit_gone (line, id) VALUES (?1, ?2)",
	[STORE_Q_AUDIT_SET_COUNTS] =
		"UPDATE temp.audit_group SET clients = ?2, unexpected = ?3 WHERE ord = ?1",
	[STORE_Q_AUDIT_TEMP_NO_JOURNAL] =
		"PRAGMA temp.journal_mode = OFF",
	[STORE_Q_AUDIT_TEMP_CACHE] =
		"PRAGMA temp.cache_size = -8192",
	[STORE_Q_AUDIT_ADD_GROUP] =
		"INSERT INTO temp.audit_group (group_key, snapshot_id, ord)"
		" VALUES (?1, ?2, (SELECT count(*) FROM temp.audit_group))",
	[STORE_Q_AUDIT_GROUP_COUNT] =
		"SELECT count(*) FROM temp.audit_group",
	[STORE_Q_AUDIT_GROUP_COUNTS] =
		"SELECT clients, unexpected FROM temp.audit_group WHERE group_key = ?1",
	[STORE_Q_AUDIT_MISSING_COUNT] =
		"SELECT count(*) FROM temp.audit_gone",
	[STORE_Q_AUDIT_UNEXPECTED] =
		"SELECT client_id, 0 FROM temp.audit_unexpected WHERE group_key = ?1"
		" ORDER BY client_id",
	[STORE_Q_AUDIT_MISSING] =
		"SELECT id, line FROM temp.audit_gone ORDER BY line",
	[STORE_Q_AUDIT_ADD_UNEXPECTED_BATCH] =
		"INSERT INTO temp.audit_unexpected (group_key, client_id) VALUES (?1, ?2)" BATCH_PAIRS,
	[STORE_Q_AUDIT_ADD_GONE_BATCH] =
		"INSERT INTO temp.audit_gone (line, id) VALUES (?1, ?2)" BATCH_PAIRS,
};

sqlite3_stmt *store_query(struct store *st, enum store_query_id id, struct cs_error *err)
{
	sqlite3_stmt *s = st->queries[id];

	if (!s) {
		if (sqlite3_prepare_v3(st->db, store_query_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
				       &s, NULL) != SQLITE_OK) {
			store_db_error(st, err, "query");
			return NULL;
		}
		st->queries[id] = s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

sqlite3_stmt *store_query_new(struct store *st, enum store_query_id id, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(st->db, store_query_sql[id], -1, &s, NULL) != SQLITE_OK) {
		sqlite3_finalize(s);
		store_db_error(st, err, "query");
		return NULL;
	}
	return s;
}

int store_query_run(struct store *st, enum store_query_id id, struct cs_error *err)
{
	sqlite3_stmt *s = store_query(st, id, err);

	return s ? store_step_done(st, s, err) : -1;
}

int store_create_module(struct store *st, const char *name, const struct sqlite3_module *module,
			void *aux, struct cs_error *err)
{
	if (sqlite3_create_module(st->db, name, module, aux) != SQLITE_OK)
		return store_db_error(st, err, "virtual table");
	return 0;
}

int64_t store_changes(struct store *st)
{
	return sqlite3_changes(st->db);
}
