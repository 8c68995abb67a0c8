-- Groups ranked by churn: credentials added plus removed over all complete snapshots after
-- each group's first (the baseline), with the current size for scale.
SELECT s.instance_id, s.group_id,
       sum(s.added) AS added, sum(s.removed) AS removed,
       sum(s.added) + sum(s.removed) AS churn,
       (SELECT count(*) FROM current_clients c
        WHERE c.instance_id = s.instance_id AND c.group_id = s.group_id) AS clients_now,
       count(*) AS snapshots
FROM snapshots s
WHERE s.status = 'complete'
  AND s.snapshot_id > (SELECT min(f.snapshot_id) FROM snapshots f
                       WHERE f.instance_id = s.instance_id AND f.group_id = s.group_id
                         AND f.status = 'complete')
GROUP BY s.instance_id, s.group_id
ORDER BY churn DESC, s.instance_id, s.group_id;
