"""Audit records that never change meaning (issue 16): ids never reused after prune,
first_seen_at kept across prune, a killed run's row repaired with what it did, the read
times of a snapshot whose walk ended before a kill (finalized or walked again per
finalize_max_age), time REFs on crawl_finished_at, SIGTERM / SIGINT in the first
milliseconds, and a table-less file read as "no inventory yet"."""
import json
import os
import signal
import sqlite3
import subprocess
import time

import cs
import harness
from harness import Sim

INST = "mqtt-a"


def gen(gid, n, start=0):
    return ["%s@@@dev-%05d" % (gid, i) for i in range(start, start + n)]


def start_sync(cfg, *args, bare=False):
    """bare: without $CREDSYNC_WRAPPER (valgrind catches every signal itself, so the
    process's signal mask would not say whether credsync's own code runs yet)."""
    cmd = [harness.credsync_path()] if bare else cs.command()
    return subprocess.Popen(cmd + ["-c", cfg, "sync"] + list(args),
                            env=cs.cred_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)


def ro_query(db, sql, params=()):
    """A read beside a running sync: None when the file is not readable yet."""
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return None


def wait_next_second():
    """Sleeps past the next whole second of the UTC clock (times have 1 s resolution)."""
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.05)


def all_ids(db):
    runs = [r[0] for r in cs.query(db, "SELECT run_id FROM runs ORDER BY 1")]
    snaps = [r[0] for r in cs.query(db, "SELECT snapshot_id FROM snapshots ORDER BY 1")]
    return runs, snaps


def test_prune_then_sync_reuses_no_id():
    """The top run and snapshots are failed ones; prune deletes them; the next sync must
    not hand out their ids again (run:2 and snapshot 3 would then mean something else)."""
    w = cs.World({"GID_a": gen("GID_a", 5), "GID_b": gen("GID_b", 3)})
    try:
        w.sync()                                               # run 1: snapshots 1, 2
        w.faults = ["PermissionCheckFailed=1@%s/GID_a" % INST,
                    "PermissionCheckFailed=1@%s/GID_b" % INST]
        w.edit(None)
        w.sync(status=1)                                       # run 2: snapshots 3, 4 failed
        runs, snaps = all_ids(w.db)
        assert runs == [1, 2] and snaps == [1, 2, 3, 4], (runs, snaps)
        assert cs.query(w.db, "SELECT status FROM runs WHERE run_id = 2") == [("failed",)]
        high_run, high_snap = max(runs), max(snaps)
        wait_next_second()
        wait_next_second()
        cs.expect(cs.run(["-c", w.cfg, "prune", "--older-than", "1s"]), 0, "prune")
        runs, snaps = all_ids(w.db)
        assert snaps == [1, 2] and runs == [1], (runs, snaps)   # the failed top rows are gone
        w.faults = []
        w.edit(None)
        w.sync()
        runs2, snaps2 = all_ids(w.db)
        new_runs = [r for r in runs2 if r not in runs]
        new_snaps = [s for s in snaps2 if s not in snaps]
        assert len(new_runs) == 1 and len(new_snaps) == 2, (runs2, snaps2)
        assert new_runs[0] > high_run, "run id %d reused after prune (highest ever %d)" % (
            new_runs[0], high_run)
        assert min(new_snaps) > high_snap, "snapshot ids %s reused after prune (highest ever %d)" % (
            new_snaps, high_snap)
        # and REFs to the pruned ids still name nothing
        p = cs.run(["-c", w.cfg, "diff", "--from", str(high_snap)])
        cs.expect(p, 64, "diff --from a pruned snapshot id")
        doc = w.diff_json("--from", "run:%d" % high_run, "--to", "run:%d" % high_run)
        for g in doc["groups"]:   # run:2 is still "as of run 2": snapshots 1 and 2
            assert g["to_snapshot"] in (1, 2), doc
        # the same with --keep-last pruning a top failed snapshot between complete ones
        w.faults = ["PermissionCheckFailed=1@%s/GID_b" % INST]
        w.edit(None)
        w.sync(status=1)
        w.faults = []
        w.edit(None)
        w.sync()
        before_runs, before_snaps = all_ids(w.db)
        cs.expect(cs.run(["-c", w.cfg, "prune", "--keep-last", "1"]), 0, "prune --keep-last 1")
        w.sync()
        runs3, snaps3 = all_ids(w.db)
        assert min(set(runs3) - set(before_runs)) > max(before_runs), (before_runs, runs3)
        assert min(set(snaps3) - set(before_snaps)) > max(before_snaps), (before_snaps, snaps3)
    finally:
        w.close()


def first_seen(db, group, client):
    r = cs.query(db, "SELECT first_seen_at FROM current_clients WHERE group_id = ? AND client_id = ?",
                 (group, client))
    return r[0][0] if r else None


def test_first_seen_survives_prune():
    """Removed, pruned past, re-added: first_seen_at is the first time, not the re-add time.
    The same for a group emptied and pruned down to its empty snapshots."""
    a, b = gen("GID_a", 6), gen("GID_b", 4)
    w = cs.World({"GID_a": a, "GID_b": b})
    try:
        w.sync()                                                  # run 1
        seen_a = {c: first_seen(w.db, "GID_a", c) for c in a}
        seen_b = {c: first_seen(w.db, "GID_b", c) for c in b}
        assert None not in seen_a.values() and None not in seen_b.values()
        x = a[2]
        wait_next_second()
        wait_next_second()
        w.edit(lambda d: (d[INST]["GID_a"].remove(x), d[INST].__setitem__("GID_b", [])))
        w.sync()                                                  # run 2: x removed, GID_b empty
        assert first_seen(w.db, "GID_a", x) is None
        w.sync()                                                  # run 3: unchanged
        cs.expect(cs.run(["-c", w.cfg, "prune", "--keep-last", "1"]), 0, "prune")
        # nothing of the old membership is left: the history that held x and GID_b is gone
        assert cs.query(w.db, "SELECT count(*) FROM snapshot_clients WHERE client_id = ?", (x,)) == [(0,)]
        assert cs.query(w.db, "SELECT count(*) FROM snapshot_clients WHERE group_id = 'GID_b'") == [(0,)]
        assert cs.query(w.db, "SELECT count(*) FROM changes WHERE client_id = ? OR group_id = 'GID_b'",
                        (x,)) == [(0,)]
        wait_next_second()
        w.edit(lambda d: (d[INST]["GID_a"].append(x), d[INST].__setitem__("GID_b", list(b))))
        w.sync()                                                  # run 4: re-added
        last = cs.query(w.db, "SELECT max(finished_at) FROM snapshots")[0][0]
        got = first_seen(w.db, "GID_a", x)
        assert got == seen_a[x], "re-added %s: first_seen_at %s, first seen at %s (run 4 at %s)" % (
            x, got, seen_a[x], last)
        for c in b:
            got = first_seen(w.db, "GID_b", c)
            assert got == seen_b[c], "GID_b re-filled after prune: %s first_seen_at %s, was %s" % (
                c, got, seen_b[c])
        for c in a:
            assert first_seen(w.db, "GID_a", c) == seen_a[c], c
        # it also survives a prune of everything but the latest and a vacuum
        cs.expect(cs.run(["-c", w.cfg, "prune", "--keep-last", "1", "--vacuum"]), 0, "prune --vacuum")
        assert first_seen(w.db, "GID_a", x) == seen_a[x]
    finally:
        w.close()


def test_kill9_run_row_counts_completed_groups():
    """A run killed after one group completed: its row counts that group and the requests
    made so far while it runs, and the next run marks it 'interrupted', keeping them."""
    d = harness.tmpdir()
    big = cs.scale(30000, 4000)
    data = {INST: {"GID_small": gen("GID_small", 30), "GID_big": gen("GID_big", big)}}
    path = cs.write_dataset(os.path.join(d, "data.json"), data)
    with Sim("--dataset", path, "--latency", "3") as sim:
        db = os.path.join(d, "inv.db")
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": INST, "endpoint": sim.endpoint, "groups": ["GID_small", "GID_big"]}], database=db)
        p = start_sync(cfg)

        def progressed():
            r = ro_query(db, "SELECT (SELECT count(*) FROM snapshots WHERE status = 'complete'),"
                             " (SELECT coalesce(max(pages), 0) FROM cs_checkpoint)")
            return r is not None and r[0][0] >= 1 and r[0][1] >= 5
        deadline = time.monotonic() + 120
        while p.poll() is None and not progressed() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert p.poll() is None, "the sync ended before it could be killed: %s" % (p.communicate(),)
        p.kill()
        p.wait()
        served = sim.stats()["rpc_requests"]
        small, = cs.snapshots(db, "group_id = 'GID_small'")
        assert small["status"] == "complete" and small["run_id"] == 1, small
        (staged,), = cs.query(db, "SELECT pages FROM cs_checkpoint c JOIN cs_group g USING (group_key)"
                                  " WHERE g.group_id = 'GID_big'")
        assert staged >= 5
        done_requests = small["pages"] + staged
        # kept up to date as the crawl goes, before any repair
        (status, ok, failed, requests), = cs.query(
            db, "SELECT status, groups_ok, groups_failed, requests FROM runs WHERE run_id = 1")
        assert status == "running", status
        assert ok == 1 and failed == 0, ("the killed run's row, before repair", ok, failed)
        assert done_requests <= requests <= served, (done_requests, requests, served)
        cs.expect(cs.run(["-c", cfg, "sync"]), 0, "the run after the kill")
        (status, fin, ok2, failed2, requests2), = cs.query(
            db, "SELECT status, finished_at, groups_ok, groups_failed, requests FROM runs WHERE run_id = 1")
        assert status == "interrupted", "killed run marked %r, expected 'interrupted'" % status
        assert fin is not None
        assert (ok2, failed2, requests2) == (1, 0, requests), (ok2, failed2, requests2, requests)
        # the run that finished the job has its own honest row
        (status, ok, failed), = cs.query(db, "SELECT status, groups_ok, groups_failed FROM runs WHERE run_id = 2")
        assert (status, ok, failed) == ("complete", 2, 0), (status, ok, failed)
        small2 = cs.snapshots(db, "group_id = 'GID_small'")[0]
        assert small2 == small   # the completed group's snapshot still points at run 1
        cs.assert_inventory(db, sim, [(INST, "GID_small"), (INST, "GID_big")])


def catch_finalize_window(sim_args, d):
    """Starts syncs of a big group and kills each one as soon as its walk has ended (the
    checkpoint's page_no is 0) until one dies before finalizing.  Returns (cfg, db) with
    that state left in the database, and the simulator stopped."""
    db = os.path.join(d, "inv.db")
    with Sim(*sim_args) as sim:
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": ["GID_sim_1"]}], database=db)
        for attempt in range(8):
            if attempt:
                sim.mutate(add=1)          # the finalize has changes to record
            p = start_sync(cfg)
            deadline = time.monotonic() + 120
            while p.poll() is None and time.monotonic() < deadline:
                if ro_query(db, "SELECT 1 FROM cs_checkpoint WHERE page_no = 0"):
                    break
                time.sleep(0.002)
            p.kill()
            p.wait()
            if cs.query(db, "SELECT count(*) FROM cs_checkpoint WHERE page_no = 0") == [(1,)]:
                return cfg, db
            cs.expect(cs.run(["-c", cfg, "sync"]), 0, "clean-up sync")
    raise AssertionError("never killed between the last page and the finalize")


def refused_sim(sim_args):
    return Sim(*(list(sim_args) + ["--fault", "PermissionCheckFailed=1@mqtt-sim-1/GID_sim_1"]))


def reconfigure(cfg, db, sim, extra=""):
    cs.write_config(cfg, [{"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": ["GID_sim_1"]}],
                    database=db, extra=extra)


def test_finalize_window_fresh_walk_finalized_with_its_read_times():
    """Killed between the last page and the finalize, then the service refuses the group:
    within finalize_max_age (default 5m) the next run finalizes the staged walk without a
    request, and the snapshot is dated when its pages were read, not when it was finalized.
    Time REFs see it from then on."""
    d = harness.tmpdir()
    n = cs.scale(300000, 20000)
    args = ["--instances", "1", "--groups", "1", "--devices", str(n)]
    cfg, db = catch_finalize_window(args, d)
    staged = cs.query(db, "SELECT staged_ids FROM cs_checkpoint")[0][0]
    complete_before = cs.snapshots(db, "status = 'complete'")
    wait_next_second()
    wait_next_second()
    with refused_sim(args) as sim:
        reconfigure(cfg, db, sim)
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 0, "finalize of a fresh ended walk")
        assert sim.stats()["rpc_requests"] == 0, sim.stats()
    run_id, started = cs.query(db, "SELECT run_id, started_at FROM runs ORDER BY run_id DESC LIMIT 1")[0]
    (sid, status, cstart, cfin, fin, count), = cs.query(
        db, "SELECT snapshot_id, status, crawl_started_at, crawl_finished_at, finished_at, client_count"
            " FROM snapshots WHERE run_id = ?", (run_id,))
    assert status == "complete" and count <= staged, (status, count, staged)
    assert cstart and cfin and cstart <= cfin, (cstart, cfin)
    assert cfin < started <= fin, "read %s, run started %s, finalized %s" % (cfin, started, fin)
    (requests, status), = cs.query(db, "SELECT requests, status FROM runs WHERE run_id = ?", (run_id,))
    assert requests == 0 and status == "complete", (requests, status)
    at = cs.query(db, "SELECT DISTINCT at FROM changes WHERE snapshot_id = ?", (sid,))
    assert at == [(cfin,)], (at, cfin)
    # a time REF at the read time sees the new snapshot (it did not exist yet by finished_at)
    p = cs.run(["-d", db, "diff", "--format", "json", "--from", cfin, "--to", cfin])
    cs.expect(p, 0, "diff at the read time")
    g, = json.loads(p.stdout)["groups"]
    assert g["to_snapshot"] == sid, (g, sid, cfin, fin)
    prev = [s["snapshot_id"] for s in complete_before]
    if prev:   # one second before the read time: the previous complete snapshot
        p = cs.run(["-d", db, "diff", "--format", "json", "--to", "latest", "--from", "run:%d" % (run_id - 1)])
        cs.expect(p, 0)
        g, = json.loads(p.stdout)["groups"]
        assert g["from_snapshot"] == prev[-1] and g["to_snapshot"] == sid, g


def test_finalize_window_stale_walk_walked_again():
    """The same kill, but finalize_max_age (1s) has passed: the staged pages are dropped and
    the group is walked again, so a group the service now refuses fails."""
    d = harness.tmpdir()
    n = cs.scale(300000, 20000)
    args = ["--instances", "1", "--groups", "1", "--devices", str(n)]
    cfg, db = catch_finalize_window(args, d)
    before = cs.query(db, "SELECT client_id FROM current_clients ORDER BY 1")
    complete_before = len(cs.snapshots(db, "status = 'complete'"))
    time.sleep(1.2)
    wait_next_second()
    wait_next_second()
    with refused_sim(args) as sim:
        reconfigure(cfg, db, sim, extra="finalize_max_age: 1s\n")
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 1, "a stale ended walk of a refused group")
        assert sim.stats()["rpc_requests"] >= 1, sim.stats()
    last = cs.snapshots(db)[-1]
    assert last["status"] == "failed" and last["error_code"] == "PermissionCheckFailed", last
    assert len(cs.snapshots(db, "status = 'complete'")) == complete_before
    assert cs.query(db, "SELECT client_id FROM current_clients ORDER BY 1") == before
    assert cs.query(db, "SELECT count(*) FROM cs_stage") == [(0,)], "stale staged pages kept"
    # the service answers again: a whole fresh walk
    with Sim(*args) as sim:
        reconfigure(cfg, db, sim, extra="finalize_max_age: 1s\n")
        cs.expect(cs.run(["-c", cfg, "sync"]), 0, "after the refusal")
        assert sim.stats()["pages"] == (n + 99) // 100, sim.stats()
        cs.assert_inventory(db, sim, [("mqtt-sim-1", "GID_sim_1")])


def handler_installed(pid, sig):
    """Whether the process catches sig (its SigCgt mask in /proc): then our code runs."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


def early_signal(sig, status, times):
    """Sends sig in the first milliseconds of a sync: right after it is started, a few ms
    after its heap appears, or the moment its lock file or database appears.  The exit
    status must be 128 + sig; a process the signal killed by the kernel's default action is
    a failure when credsync's code was surely running then: the database or its lock file
    existed, or the process already caught the signal (a signal during the dynamic loader,
    before any code of ours runs, cannot be caught by any program)."""
    d = harness.tmpdir()
    delays = [0, 1, 2, 3, 4, 6, 8, 10]
    with Sim("--instances", "1", "--groups", "2", "--devices", "300") as sim:
        got = []
        for i in range(times):
            sub = os.path.join(d, str(i))
            os.makedirs(sub)
            db = os.path.join(sub, "inv.db")
            cfg = cs.write_config(os.path.join(sub, "c.yaml"), [
                {"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": ["GID_sim_1", "GID_sim_2"]}],
                database=db)
            files = (db, db + ".lock", os.path.realpath(db) + ".lock")
            mode = i % 3
            delay = delays[(i // 3) % len(delays)] / 1000.0
            p = start_sync(cfg, bare=True)
            deadline = time.monotonic() + 2
            if mode == 1:     # a few ms after the heap appears
                while time.monotonic() < deadline and p.poll() is None:
                    try:
                        with open("/proc/%d/maps" % p.pid) as f:
                            if "[heap]" in f.read():
                                break
                    except OSError:
                        break
                time.sleep(delay)
            elif mode == 2:   # the moment the lock file or the database exists
                while time.monotonic() < deadline and p.poll() is None:
                    if any(os.path.exists(x) for x in files):
                        break
            if p.poll() is not None:
                got.append(None)     # it had finished already: nothing was tested
                continue
            running = handler_installed(p.pid, sig) or any(os.path.exists(x) for x in files)
            p.send_signal(sig)
            out, err = p.communicate(timeout=60)
            got.append(p.returncode)
            what = "signal %d (mode %d, %.0f ms; our code running: %s): exit %d\n%s" % (
                sig, mode, delay * 1000, running, p.returncode, err.decode()[-2000:])
            assert p.returncode in (status, -sig), what
            assert p.returncode == status or not running, what
            if os.path.exists(db):   # whatever it left is a usable inventory
                q = cs.run(["-d", db, "snapshots"])
                assert "schema version" not in q.stdout + q.stderr, q.stderr
        assert got.count(status) >= times // 3, got


def test_sigterm_in_the_first_milliseconds_exits_143():
    early_signal(signal.SIGTERM, 143, 15)


def test_sigint_in_the_first_milliseconds_exits_130():
    early_signal(signal.SIGINT, 130, 15)


def test_tableless_file_is_no_inventory_yet():
    """A WAL-mode file with no tables (what a kill during creation could leave before the
    schema was one transaction) and an empty file: diff and snapshots say "no inventory
    yet", never "schema version 0"."""
    d = harness.tmpdir()
    wal = os.path.join(d, "wal.db")
    con = sqlite3.connect(wal)
    assert con.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    con.close()
    assert os.path.getsize(wal) > 0
    empty = os.path.join(d, "empty.db")
    open(empty, "w").close()
    for db in (wal, empty):
        for cmd in (["diff"], ["snapshots"], ["diff", "--format", "json"]):
            p = cs.run(["-d", db] + cmd)
            text = p.stdout + p.stderr
            assert "no inventory yet" in text, (db, cmd, p.returncode, text)
            assert "schema version" not in text, (db, cmd, text)
            assert p.returncode in (0, 1), (db, cmd, p.returncode, text)
    # a sync killed in its first milliseconds leaves nothing a reader misreads
    with Sim("--instances", "1", "--groups", "1", "--devices", "50") as sim:
        for i in range(8):
            db = os.path.join(d, "k%d.db" % i)
            cfg = cs.write_config(os.path.join(d, "k%d.yaml" % i), [
                {"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": ["GID_sim_1"]}], database=db)
            p = start_sync(cfg)
            time.sleep(0.001 * i)
            p.kill()
            p.wait()
            if not os.path.exists(db):
                continue
            for cmd in (["diff"], ["snapshots"]):
                q = cs.run(["-d", db] + cmd)
                assert "schema version" not in q.stdout + q.stderr, (i, cmd, q.stderr)
                assert q.returncode in (0, 1), (i, cmd, q.returncode, q.stderr)
            cs.expect(cs.run(["-c", cfg, "sync"]), 0, "sync after an early kill -9")


if __name__ == "__main__":
    cs.main([test_prune_then_sync_reuses_no_id, test_first_seen_survives_prune,
             test_kill9_run_row_counts_completed_groups,
             test_finalize_window_fresh_walk_finalized_with_its_read_times,
             test_finalize_window_stale_walk_walked_again,
             test_sigterm_in_the_first_milliseconds_exits_143,
             test_sigint_in_the_first_milliseconds_exits_130,
             test_tableless_file_is_no_inventory_yet])
