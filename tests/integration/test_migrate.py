"""Migrations: a database made by the previous release (schema 001, user_version 1, no
application_id) is upgraded in place without changing any existing snapshot's members,
changes or id; the upgraded file then syncs on as usual and never reuses an id.  The old
database is built here from schema/001_initial.sql itself, with rows as that release wrote
them, so the test needs no old binary."""
import os
import sqlite3

import cs
import harness
from harness import Sim

SRC = os.environ.get("CREDSYNC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def old_database(path, instance, group, ids_by_snapshot):
    """Snapshots 1..n (ids with gaps, as after a prune) of one group, as intervals."""
    con = sqlite3.connect(path)
    with open(os.path.join(SRC, "schema", "001_initial.sql")) as f:
        con.executescript(f.read())
    con.execute("PRAGMA user_version = 1")
    con.execute("INSERT INTO cs_group (group_key, instance_id, group_id) VALUES (1, ?, ?)",
                (instance, group))
    present = {}
    snap_ids = []
    for n, (snap_id, ids) in enumerate(ids_by_snapshot):
        t = 1764547200 + 3600 * n
        ts = "2025-12-01T%02d:00:00Z" % n
        con.execute("INSERT OR IGNORE INTO cs_run (run_id, started_at, finished_at, status, groups_ok)"
                    " VALUES (?, ?, ?, 'complete', 1)", (snap_id, ts, ts))
        added = [i for i in ids if i not in present]
        removed = [i for i in present if i not in ids]
        for i in added:
            con.execute("INSERT INTO cs_interval VALUES (1, ?, ?, NULL, ?)", (i, snap_id, t))
            present[i] = snap_id
        for i in removed:
            con.execute("UPDATE cs_interval SET to_snap = ? WHERE group_key = 1 AND client_id = ?"
                        " AND from_snap = ?", (snap_id, i, present.pop(i)))
        con.execute("INSERT INTO cs_snapshot (snapshot_id, run_id, group_key, status, started_at,"
                    " finished_at, finished_epoch, pages, client_count, total_reported, consistent,"
                    " added, removed) VALUES (?, ?, 1, 'complete', ?, ?, ?, 1, ?, ?, 1, ?, ?)",
                    (snap_id, snap_id, ts, ts, t, len(ids), len(ids), len(added), len(removed)))
        snap_ids.append(snap_id)
    # a failed snapshot at the top of the id range, as a failed run leaves it
    con.execute("INSERT INTO cs_run (run_id, started_at, finished_at, status, groups_failed)"
                " VALUES (90, '2025-12-02T00:00:00Z', '2025-12-02T00:00:01Z', 'failed', 1)")
    con.execute("INSERT INTO cs_snapshot (snapshot_id, run_id, group_key, status, started_at,"
                " finished_at, finished_epoch, error_code) VALUES (90, 90, 1, 'failed',"
                " '2025-12-02T00:00:00Z', '2025-12-02T00:00:01Z', 1764633601, 'InternalError')")
    con.commit()
    con.close()
    return snap_ids


def read(db):
    return (cs.query(db, "SELECT snapshot_id, client_id FROM snapshot_clients ORDER BY 1, 2"),
            cs.query(db, "SELECT snapshot_id, change, client_id FROM changes ORDER BY 1, 2, 3"),
            cs.query(db, "SELECT snapshot_id, run_id, status, client_count, added, removed"
                         " FROM snapshots ORDER BY 1"),
            cs.query(db, "SELECT client_id, first_seen_at FROM current_clients ORDER BY 1"))


def test_old_database_upgrades_without_changing_history():
    d = harness.tmpdir()
    db = os.path.join(d, "old.db")
    with Sim("--instances", "1", "--groups", "1", "--devices", "30") as sim:
        now = sorted(sim.dump()["instances"]["mqtt-sim-1"]["groups"]["GID_sim_1"])
        history = [(3, now[:20]), (7, now[5:25] + ["GID_sim_1@@@gone"]),
                   (12, now[:28] + ["GID_sim_1@@@gone"])]
        old_database(db, "mqtt-sim-1", "GID_sim_1", history)
        members, changes, snaps, current = read(db)
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": ["GID_sim_1"]}], database=db)
        # readers refuse to upgrade; a sync upgrades
        p = cs.run(["-c", cfg, "snapshots"])
        assert p.returncode == 1 and "run 'credsync sync' once to upgrade" in p.stderr, p.stderr
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 0, "sync on the upgraded file")
        assert cs.query(db, "PRAGMA application_id") == [(0x43525359,)]
        assert cs.query(db, "PRAGMA user_version")[0][0] >= 2
        m2 = cs.query(db, "SELECT snapshot_id, client_id FROM snapshot_clients WHERE snapshot_id <= 12"
                          " ORDER BY 1, 2")
        c2 = cs.query(db, "SELECT snapshot_id, change, client_id FROM changes WHERE snapshot_id <= 12"
                          " ORDER BY 1, 2, 3")
        s2 = cs.query(db, "SELECT snapshot_id, run_id, status, client_count, added, removed"
                          " FROM snapshots WHERE snapshot_id <= 90 ORDER BY 1")
        assert m2 == members and c2 == changes and s2 == snaps, "history changed by the upgrade"
        # the new snapshot's id is above every old one, the failed 90 included
        new, = cs.query(db, "SELECT max(snapshot_id) FROM snapshots")[0]
        assert new > 90, new
        runs = [r[0] for r in cs.query(db, "SELECT run_id FROM runs")]
        assert max(runs) > 90, runs
        # first-seen times of clients still present are kept
        fs = dict(cs.query(db, "SELECT client_id, first_seen_at FROM current_clients"))
        for cid, seen in current:
            if cid != "GID_sim_1@@@gone":  # removed by this sync
                assert fs[cid] == seen, (cid, fs[cid], seen)
        # the gone device is removed now, new ones added: an ordinary sync on top
        last = cs.snapshots(db)[-1]
        assert last["status"] == "complete" and last["removed"] == 1 and last["added"] == 2, last
        # prune the failed top snapshot and sync: still no id reused
        cs.expect(cs.run(["-c", cfg, "prune", "--keep-last", "1"]), 0)
        cs.expect(cs.run(["-c", cfg, "sync"]), 0)
        assert cs.query(db, "SELECT max(snapshot_id) FROM snapshots")[0][0] == new + 1


if __name__ == "__main__":
    cs.main([test_old_database_upgrades_without_changing_history])
