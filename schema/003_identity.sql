-- 003_identity.sql: which identity produced each snapshot (issue 10).  The source kind and
-- the AccessKeyId's first and last characters, or the role ARN; never a secret.  NULL for
-- snapshots taken before this migration.
ALTER TABLE cs_snapshot ADD COLUMN identity TEXT;

DROP VIEW snapshots;
CREATE VIEW snapshots AS
SELECT s.snapshot_id, s.run_id, g.instance_id, g.group_id, s.status, s.started_at,
       s.finished_at, s.pages, s.client_count, s.total_reported, s.consistent, s.added,
       s.removed, s.error_code, s.error_message, s.identity
FROM cs_snapshot s JOIN cs_group g ON g.group_key = s.group_key;
