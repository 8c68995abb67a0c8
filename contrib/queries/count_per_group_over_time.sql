-- Client count per group over time: one row per complete snapshot, with the change from the
-- group's previous complete snapshot.
SELECT instance_id, group_id, finished_at, snapshot_id, client_count, added, removed,
       consistent
FROM snapshots
WHERE status = 'complete'
ORDER BY instance_id, group_id, snapshot_id;
