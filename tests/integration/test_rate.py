"""Rate control against the service's own limits as credsync-sim models them: a token bucket
per source and API answering SystemOverFlow (also with HTTP 403, as the service does now),
the per-IP block above a rate, the remembered rate a second run starts from, and the hard cap
no setting of qps passes silently."""
import os
import re

import cs
import harness
from harness import Sim

RETRY = "{max_attempts: 30, base_delay: 20ms, max_delay: 500ms}"


def config(sim, d, groups, defaults, name="c.yaml"):
    return cs.write_config(os.path.join(d, name), [
        {"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": groups}],
        database=os.path.join(d, "inv.db"), defaults=defaults)


def test_remembered_rate_is_where_the_next_run_starts():
    d = harness.tmpdir()
    devices = cs.scale(3000, 600)
    with Sim("--instances", "1", "--groups", "2", "--devices", str(devices),
             "--bucket", "20:5") as sim:
        cfg = config(sim, d, ["GID_sim_1", "GID_sim_2"],
                     {"qps": 200, "concurrency": 4, "retry": RETRY})
        db = os.path.join(d, "inv.db")
        p = cs.run(["-c", cfg, "-vv", "sync"])
        cs.expect(p, 0, "first run")
        assert "(slow start)" in p.stderr, p.stderr[-2000:]
        assert sim.stats()["throttled"] > 0, "the bucket never pushed back"
        (host, rate), = cs.query(db, "SELECT host, rate FROM cs_rate")
        assert host == "127.0.0.1:%d" % sim.port, host
        # what was learned is near the bucket's 20/s, not the ceiling
        assert 5 < rate < 40, rate
        cs.assert_inventory(db, sim, [("mqtt-sim-1", "GID_sim_1"), ("mqtt-sim-1", "GID_sim_2")])
        p = cs.run(["-c", cfg, "-vv", "sync"])
        cs.expect(p, 0, "second run")
        m = re.search(r"requests start at ([0-9.]+)/s \(the rate it accepted last time\)", p.stderr)
        assert m, p.stderr[-2000:]
        assert abs(float(m.group(1)) - rate) < 0.051, (m.group(1), rate)
        # a dry run learns nothing into the database
        before = cs.query(db, "SELECT host, rate, updated_epoch FROM cs_rate")
        cs.expect(cs.run(["-c", cfg, "sync", "--dry-run"]), 0, "dry run")
        assert cs.query(db, "SELECT host, rate, updated_epoch FROM cs_rate") == before


def test_throttling_answered_with_403_is_retried():
    d = harness.tmpdir()
    devices = cs.scale(2000, 400)
    with Sim("--instances", "1", "--groups", "1", "--devices", str(devices),
             "--bucket", "30:2", "--throttle-status", "403") as sim:
        cfg = config(sim, d, ["GID_sim_1"], {"qps": 250, "concurrency": 4,
                                              "rate_control": "fixed", "retry": RETRY})
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 0, "403 SystemOverFlow is a throttle")
        st = sim.stats()
        assert st["throttled"] > 0 and st["by_code"].get("SystemOverFlow", 0) > 0, st
        cs.assert_inventory(os.path.join(d, "inv.db"), sim, [("mqtt-sim-1", "GID_sim_1")])


def test_hard_cap_refuses_a_qps_above_it():
    d = harness.tmpdir()
    db = os.path.join(d, "inv.db")
    cfg = os.path.join(d, "c.yaml")
    with open(cfg, "w") as f:
        f.write("database: %s\ndefaults:\n  qps: 300\ninstances:\n  - id: a\n"
                "    endpoint: http://127.0.0.1:9\n    groups: [G]\n" % db)
    for cmd in (["sync"], ["check"]):
        p = cs.run(["-c", cfg] + cmd)
        cs.expect(p, 78, "qps above the hard cap")
        assert "c.yaml:5:5: instance 'a': qps 300 is above qps_hard_cap 250" in p.stderr, p.stderr
    assert not os.path.exists(db)
    # raising it is the one explicit way
    with open(cfg, "w") as f:
        f.write("database: %s\ndefaults:\n  qps: 300\n  qps_hard_cap: 400\ninstances:\n  - id: a\n"
                "    endpoint: http://127.0.0.1:9\n    groups: [G]\n" % db)
    p = cs.run(["-c", cfg, "check"])
    assert p.returncode != 78, p.stderr


def test_block_mode_is_never_reached_under_the_cap():
    """The simulator's per-IP block (--block-above) refuses everything once a source passes
    its rate; a client held under it never triggers it, one allowed above it does."""
    d = harness.tmpdir()
    devices = cs.scale(4000, 1000)
    # the second case blocks at 5/s, so that even a slow build (valgrind) passes the rate
    for qps, cap, block_at, want_block in ((40, 40, 60, False), (1000, 1000, 5, True)):
        with Sim("--instances", "1", "--groups", "4", "--devices", str(devices),
                 "--block-above", str(block_at), "--block-for", "2s") as sim:
            cfg = config(sim, d, ["GID_sim_%d" % i for i in range(1, 5)],
                         {"qps": qps, "qps_hard_cap": cap, "concurrency": 8, "rate_control": "fixed",
                          "retry": "{max_attempts: 2, base_delay: 1ms, max_delay: 2ms}"},
                         name="c%d.yaml" % qps)
            p = cs.run(["-c", cfg, "-d", os.path.join(d, "b%d.db" % qps), "sync"])
            blocks = sim.stats()["blocks"]
            if want_block:
                assert blocks >= 1 and p.returncode == 1, (blocks, p.returncode)
                assert "Forbidden.IpBlocked" in p.stderr, p.stderr[-1000:]
            else:
                cs.expect(p, 0, "under the block rate")
                assert blocks == 0, blocks


if __name__ == "__main__":
    cs.main([test_remembered_rate_is_where_the_next_run_starts,
             test_throttling_answered_with_403_is_retried,
             test_hard_cap_refuses_a_qps_above_it,
             test_block_mode_is_never_reached_under_the_cap])
