-- Devices whose credential was removed and later seen again in the same group: each
-- removal followed by a re-add, with both times.
SELECT r.instance_id, r.group_id, r.device_id, r.client_id,
       r.at AS removed_at, min(a.at) AS readded_at
FROM changes r
JOIN changes a ON a.instance_id = r.instance_id AND a.group_id = r.group_id
              AND a.client_id = r.client_id AND a.change = 'added'
              AND a.snapshot_id > r.snapshot_id
WHERE r.change = 'removed'
GROUP BY r.instance_id, r.group_id, r.client_id, r.snapshot_id
ORDER BY removed_at, r.instance_id, r.group_id, r.client_id;
