-- 002_audit_trust.sql: audit records that never change meaning, and a file that says it is
-- credsync's.
--
-- * Run and snapshot ids are AUTOINCREMENT: SQLite otherwise hands out max(rowid) + 1, so
--   pruning the newest rows would give their ids to new ones and "snapshot 7" in last
--   month's report would mean something else today.  Existing ids are kept as they are.
-- * cs_first_seen keeps the first time a client was seen in a group once prune has deleted
--   every interval that carried it, so first_seen_at survives retention.
-- * Each snapshot records when its data was read (its walk's first and last page), and the
--   checkpoint carries those times so a resumed walk keeps them.  Time REFs resolve on the
--   time the data was read, not on when it was written.
-- * Runs get the status 'interrupted' (a run killed before it could finish, repaired by the
--   next one with the counts it had kept as it went).
-- * application_id and cs_meta mark the file as credsync's, so a file of another application
--   is never adopted.
-- * identity: which credentials produced each snapshot (kind and masked key id or role ARN).
-- * cs_rate: the request rate each endpoint host accepted, remembered across runs.

DROP VIEW runs;
DROP VIEW snapshots;
DROP VIEW current_clients;
DROP VIEW snapshot_clients;
DROP VIEW changes;

CREATE TABLE cs_meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO cs_meta (key, value) VALUES ('application', 'credsync');

CREATE TABLE cs_run_v2 (
	run_id        INTEGER PRIMARY KEY AUTOINCREMENT,
	started_at    TEXT NOT NULL,
	finished_at   TEXT,
	status        TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed',
	                                              'interrupted')),
	groups_ok     INTEGER NOT NULL DEFAULT 0,
	groups_failed INTEGER NOT NULL DEFAULT 0,
	requests      INTEGER NOT NULL DEFAULT 0,
	retries       INTEGER NOT NULL DEFAULT 0,
	throttled     INTEGER NOT NULL DEFAULT 0,
	pid           INTEGER
);
INSERT INTO cs_run_v2 (run_id, started_at, finished_at, status, groups_ok, groups_failed,
                       requests, retries, throttled, pid)
SELECT run_id, started_at, finished_at, status, groups_ok, groups_failed, requests, retries,
       throttled, pid FROM cs_run;
DROP TABLE cs_run;
ALTER TABLE cs_run_v2 RENAME TO cs_run;

CREATE TABLE cs_snapshot_v2 (
	snapshot_id      INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id           INTEGER NOT NULL,
	group_key        INTEGER NOT NULL,
	status           TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
	started_at       TEXT NOT NULL,
	finished_at      TEXT,
	finished_epoch   INTEGER,        -- finished_at as epoch seconds
	pages            INTEGER NOT NULL DEFAULT 0,
	client_count     INTEGER,
	total_reported   INTEGER,
	consistent       INTEGER,
	added            INTEGER,
	removed          INTEGER,
	error_code       TEXT,
	error_message    TEXT,
	request_id       TEXT,
	read_first_epoch INTEGER,        -- when the walk's first page was read
	read_last_epoch  INTEGER,        -- when its last page was read: the time REFs resolve on
	identity         TEXT
);
-- Snapshots made before this migration: the walk began about when the snapshot did, and its
-- last page was read shortly before it was finalized.
INSERT INTO cs_snapshot_v2 (snapshot_id, run_id, group_key, status, started_at, finished_at,
                            finished_epoch, pages, client_count, total_reported, consistent,
                            added, removed, error_code, error_message, request_id,
                            read_first_epoch, read_last_epoch)
SELECT snapshot_id, run_id, group_key, status, started_at, finished_at, finished_epoch, pages,
       client_count, total_reported, consistent, added, removed, error_code, error_message,
       request_id, CAST(strftime('%s', started_at) AS INTEGER),
       CASE WHEN status = 'complete' THEN finished_epoch END
FROM cs_snapshot;
DROP TABLE cs_snapshot;
ALTER TABLE cs_snapshot_v2 RENAME TO cs_snapshot;
CREATE INDEX cs_snapshot_by_group ON cs_snapshot (group_key, status, snapshot_id);
CREATE INDEX cs_snapshot_by_run ON cs_snapshot (run_id);

-- The first-seen time of clients whose every interval prune has deleted (the intervals carry
-- it otherwise).  A client opening a new interval takes its first_seen from here.
CREATE TABLE cs_first_seen (
	group_key  INTEGER NOT NULL,
	client_id  TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	PRIMARY KEY (group_key, client_id)
) WITHOUT ROWID;

-- The request rate each endpoint host accepted when a run last met its limit (or started
-- from this), so the next run starts just under it instead of discovering it again.
CREATE TABLE cs_rate (
	host          TEXT PRIMARY KEY,
	rate          REAL NOT NULL,       -- requests per second
	updated_epoch INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE cs_checkpoint ADD COLUMN read_first_epoch INTEGER;
ALTER TABLE cs_checkpoint ADD COLUMN read_last_epoch INTEGER;

CREATE VIEW runs AS
SELECT run_id, started_at, finished_at, status, groups_ok, groups_failed, requests, retries,
       throttled
FROM cs_run;

CREATE VIEW snapshots AS
SELECT s.snapshot_id, s.run_id, g.instance_id, g.group_id, s.status, s.started_at,
       s.finished_at, s.pages, s.client_count, s.total_reported, s.consistent, s.added,
       s.removed, s.error_code, s.error_message, s.identity,
       strftime('%Y-%m-%dT%H:%M:%SZ', s.read_first_epoch, 'unixepoch') AS crawl_started_at,
       strftime('%Y-%m-%dT%H:%M:%SZ', s.read_last_epoch, 'unixepoch') AS crawl_finished_at
FROM cs_snapshot s JOIN cs_group g ON g.group_key = s.group_key;

CREATE VIEW current_clients AS
SELECT g.instance_id, g.group_id, i.client_id,
       CASE WHEN instr(i.client_id, '@@@') > 0
            THEN substr(i.client_id, instr(i.client_id, '@@@') + 3) END AS device_id,
       strftime('%Y-%m-%dT%H:%M:%SZ', i.first_seen, 'unixepoch') AS first_seen_at
FROM cs_interval i JOIN cs_group g ON g.group_key = i.group_key
WHERE i.to_snap IS NULL;

CREATE VIEW snapshot_clients AS
SELECT s.snapshot_id, g.instance_id, g.group_id, i.client_id,
       CASE WHEN instr(i.client_id, '@@@') > 0
            THEN substr(i.client_id, instr(i.client_id, '@@@') + 3) END AS device_id
FROM cs_snapshot s
JOIN cs_group g ON g.group_key = s.group_key
JOIN cs_interval i ON i.group_key = s.group_key AND i.from_snap <= s.snapshot_id
                  AND (i.to_snap IS NULL OR i.to_snap > s.snapshot_id)
WHERE s.status = 'complete';

CREATE VIEW changes AS
SELECT s.snapshot_id, g.instance_id, g.group_id, 'added' AS change, i.client_id,
       CASE WHEN instr(i.client_id, '@@@') > 0
            THEN substr(i.client_id, instr(i.client_id, '@@@') + 3) END AS device_id,
       strftime('%Y-%m-%dT%H:%M:%SZ', coalesce(s.read_last_epoch, s.finished_epoch),
                'unixepoch') AS at
FROM cs_snapshot s
JOIN cs_group g ON g.group_key = s.group_key
JOIN cs_interval i ON i.group_key = s.group_key AND i.from_snap = s.snapshot_id
WHERE s.status = 'complete'
UNION ALL
SELECT s.snapshot_id, g.instance_id, g.group_id, 'removed' AS change, i.client_id,
       CASE WHEN instr(i.client_id, '@@@') > 0
            THEN substr(i.client_id, instr(i.client_id, '@@@') + 3) END AS device_id,
       strftime('%Y-%m-%dT%H:%M:%SZ', coalesce(s.read_last_epoch, s.finished_epoch),
                'unixepoch') AS at
FROM cs_snapshot s
JOIN cs_group g ON g.group_key = s.group_key
JOIN cs_interval i ON i.group_key = s.group_key AND i.to_snap = s.snapshot_id
WHERE s.status = 'complete';

PRAGMA application_id = 1129468761;  -- 0x43525359, "CRSY"
