-- 001_initial.sql: the first schema.
--
-- Internal tables (cs_*) are credsync's own and may change between versions; the views at the
-- end (runs, snapshots, current_clients, snapshot_clients, changes) are the public, stable
-- relations of PRODUCT.md.  Times are UTC ISO-8601 text, or epoch seconds where the view
-- formats them.
--
-- Membership is stored as validity intervals: a row in cs_interval says that client_id was in
-- its group from complete snapshot from_snap up to (not including) complete snapshot to_snap,
-- or up to now when to_snap is NULL.  Snapshot ids grow with time, and only a complete crawl
-- opens or closes intervals, so snapshot S of a group holds exactly the intervals with
-- from_snap <= S < coalesce(to_snap, infinity).  An unchanged device costs nothing per sync.

CREATE TABLE cs_run (
	run_id        INTEGER PRIMARY KEY,
	started_at    TEXT NOT NULL,
	finished_at   TEXT,
	status        TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed')),
	groups_ok     INTEGER NOT NULL DEFAULT 0,
	groups_failed INTEGER NOT NULL DEFAULT 0,
	requests      INTEGER NOT NULL DEFAULT 0,
	retries       INTEGER NOT NULL DEFAULT 0,
	throttled     INTEGER NOT NULL DEFAULT 0,
	pid           INTEGER
);

CREATE TABLE cs_group (
	group_key   INTEGER PRIMARY KEY,
	instance_id TEXT NOT NULL,
	group_id    TEXT NOT NULL,
	UNIQUE (instance_id, group_id)
);

CREATE TABLE cs_snapshot (
	snapshot_id    INTEGER PRIMARY KEY,
	run_id         INTEGER NOT NULL,
	group_key      INTEGER NOT NULL,
	status         TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
	started_at     TEXT NOT NULL,
	finished_at    TEXT,
	finished_epoch INTEGER,          -- finished_at as epoch seconds, for time REFs and prune
	pages          INTEGER NOT NULL DEFAULT 0,
	client_count   INTEGER,
	total_reported INTEGER,
	consistent     INTEGER,
	added          INTEGER,
	removed        INTEGER,
	error_code     TEXT,
	error_message  TEXT,
	request_id     TEXT
);
CREATE INDEX cs_snapshot_by_group ON cs_snapshot (group_key, status, snapshot_id);
CREATE INDEX cs_snapshot_by_run ON cs_snapshot (run_id);

CREATE TABLE cs_interval (
	group_key  INTEGER NOT NULL,
	client_id  TEXT NOT NULL,
	from_snap  INTEGER NOT NULL,    -- first complete snapshot holding the client
	to_snap    INTEGER,             -- first complete snapshot without it; NULL while present
	first_seen INTEGER NOT NULL,    -- epoch seconds the client was first ever seen in the group
	PRIMARY KEY (group_key, client_id, from_snap)
) WITHOUT ROWID;

-- The pages collected so far by a group's crawl in progress, one row per page with its IDs
-- as a JSON array (a page costs one row, not a hundred index entries); emptied when the
-- snapshot completes.  Keyed by group so that a resumed crawl keeps what the killed one
-- stored.  Finalizing sorts the staged IDs (json_each) and merges them with the group's
-- intervals in one pass.
CREATE TABLE cs_stage (
	group_key INTEGER NOT NULL,
	seq       INTEGER NOT NULL,       -- the page's position in the crawl
	n         INTEGER NOT NULL,       -- IDs in the page
	ids       TEXT NOT NULL,          -- JSON array of the page's client IDs
	PRIMARY KEY (group_key, seq)
);  -- a rowid table: its rows are kilobytes, too large for a WITHOUT ROWID b-tree

-- Where a group's crawl in progress stands, written with every page.
CREATE TABLE cs_checkpoint (
	group_key      INTEGER PRIMARY KEY,
	snapshot_id    INTEGER NOT NULL,
	page_no        INTEGER NOT NULL,   -- the next page to ask for
	next_token     TEXT,               -- the NextToken to send with it
	pages          INTEGER NOT NULL,   -- pages staged (the next page's seq)
	staged_ids     INTEGER NOT NULL,   -- IDs staged, duplicates included
	total_reported INTEGER,
	rewalked       INTEGER NOT NULL DEFAULT 0,
	sorted         INTEGER NOT NULL DEFAULT 1,  -- every ID so far came in rising byte order
	last_id        TEXT,               -- the last ID staged, to keep checking that
	updated_epoch  INTEGER NOT NULL
);

CREATE VIEW runs AS
SELECT run_id, started_at, finished_at, status, groups_ok, groups_failed, requests, retries,
       throttled
FROM cs_run;

CREATE VIEW snapshots AS
SELECT s.snapshot_id, s.run_id, g.instance_id, g.group_id, s.status, s.started_at,
       s.finished_at, s.pages, s.client_count, s.total_reported, s.consistent, s.added,
       s.removed, s.error_code, s.error_message
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
       s.finished_at AS at
FROM cs_snapshot s
JOIN cs_group g ON g.group_key = s.group_key
JOIN cs_interval i ON i.group_key = s.group_key AND i.from_snap = s.snapshot_id
WHERE s.status = 'complete'
UNION ALL
SELECT s.snapshot_id, g.instance_id, g.group_id, 'removed' AS change, i.client_id,
       CASE WHEN instr(i.client_id, '@@@') > 0
            THEN substr(i.client_id, instr(i.client_id, '@@@') + 3) END AS device_id,
       s.finished_at AS at
FROM cs_snapshot s
JOIN cs_group g ON g.group_key = s.group_key
JOIN cs_interval i ON i.group_key = s.group_key AND i.to_snap = s.snapshot_id
WHERE s.status = 'complete';
