-- Devices that gained a credential in the last 7 days (newest first).
-- A group's first complete snapshot records all its members as added; leave such baseline
-- snapshots out with the NOT EXISTS clause below.
SELECT c.at, c.instance_id, c.group_id, c.device_id, c.client_id, c.snapshot_id
FROM changes c
WHERE c.change = 'added'
  AND c.at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-7 days')
  AND EXISTS (SELECT 1 FROM snapshots p
              WHERE p.instance_id = c.instance_id AND p.group_id = c.group_id
                AND p.status = 'complete' AND p.snapshot_id < c.snapshot_id)
ORDER BY c.at DESC, c.instance_id, c.group_id, c.client_id;
