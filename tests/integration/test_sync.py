"""credsync sync against credsync-sim: exact inventories, throttling, transient faults,
failing groups and instances, rejected credentials, bad configs, every paging style."""
import os

import cs
import harness
from harness import Sim

SIZES = {"GID_empty": 0, "GID_one": 1, "GID_99": 99, "GID_100": 100, "GID_101": 101,
         "GID_2500": 2500}


def dataset(d):
    data = {}
    for inst in ("mqtt-a", "mqtt-b"):
        data[inst] = {g: ["%s@@@%s-dev-%05d" % (g, inst, i) for i in range(n)]
                      for g, n in SIZES.items()}
    return cs.write_dataset(os.path.join(d, "data.json"), data)


def two_instances(sim, d, db, groups=None, a_yaml="", b_yaml="", defaults=None):
    groups = groups or list(SIZES)
    return cs.write_config(os.path.join(d, "c.yaml"), [
        {"id": "mqtt-a", "endpoint": sim.endpoint, "groups": groups,
         "yaml": "signature: v1\n" + a_yaml},
        {"id": "mqtt-b", "endpoint": sim.endpoint, "groups": groups,
         "yaml": "signature: v3\n" + b_yaml},
    ], database=db, defaults=defaults)


ALL = [(i, g) for i in ("mqtt-a", "mqtt-b") for g in SIZES]


def test_exact_inventory_of_every_size():
    d = harness.tmpdir()
    db = os.path.join(d, "inv.db")
    with Sim("--dataset", dataset(d)) as sim:
        cfg = two_instances(sim, d, db)
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 0, "sync")
        assert p.stderr == "", "a successful sync under cron prints nothing: %r" % p.stderr
        cs.assert_inventory(db, sim, ALL)
        snaps = cs.snapshots(db)
        assert len(snaps) == len(ALL)
        for s in snaps:
            n = SIZES[s["group_id"]]
            assert s["status"] == "complete" and s["consistent"] == 1, s
            assert s["client_count"] == n and s["total_reported"] == n and s["added"] == n, s
            assert s["removed"] == 0 and s["error_code"] is None, s
            # 100 per page: an empty group still costs one page, a full last page one more
            assert s["pages"] == max(1, -(-n // 100)) or s["pages"] == n // 100 + 1, s
        runs = cs.query(db, "SELECT status, groups_ok, groups_failed, requests FROM runs")
        assert runs == [("complete", 12, 0, runs[0][3])], runs
        stats = sim.stats()
        for forbidden in ("GetDeviceCredential", "RegisterDeviceCredential", "RefreshDeviceCredential"):
            assert stats["by_action"].get(forbidden, 0) == 0
        assert stats["by_action"]["ListDeviceCredentialClientId"] == runs[0][3]
        # device_id is the part after @@@
        rows = cs.query(db, "SELECT client_id, device_id FROM current_clients WHERE group_id = 'GID_one'")
        assert sorted(rows) == [("GID_one@@@mqtt-a-dev-00000", "mqtt-a-dev-00000"),
                                ("GID_one@@@mqtt-b-dev-00000", "mqtt-b-dev-00000")], rows
        # the database is private to its owner
        assert os.stat(db).st_mode & 0o077 == 0


def test_thirty_percent_throttling_still_exact():
    d = harness.tmpdir()
    db = os.path.join(d, "inv.db")
    with Sim("--dataset", dataset(d), "--fault", "SystemOverFlow=0.15",
             "--fault", "ApplyTokenOverFlow=0.15", "--seed", "7") as sim:
        cfg = two_instances(sim, d, db, defaults={"retry": cs.FAST_RETRY})
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 0, "sync under throttling")
        cs.assert_inventory(db, sim, ALL)
        (requests, retries, throttled), = cs.query(db, "SELECT requests, retries, throttled FROM runs")
        stats = sim.stats()
        assert throttled > 0 and retries >= throttled, (retries, throttled)
        assert stats["by_code"].get("SystemOverFlow", 0) + stats["by_code"].get("ApplyTokenOverFlow", 0) == throttled
        assert all(s["status"] == "complete" for s in cs.snapshots(db))


def test_transient_faults_still_exact():
    d = harness.tmpdir()
    db = os.path.join(d, "inv.db")
    with Sim("--dataset", dataset(d), "--fault", "InternalError=0.05", "--fault", "reset=0.05",
             "--fault", "truncated=0.05", "--fault", "garbage=0.05", "--fault", "html=0.05",
             "--fault", "ServiceUnavailable=0.05", "--fault", "timeout=0.02", "--hang", "3000",
             "--seed", "11") as sim:
        cfg = two_instances(sim, d, db, defaults={"retry": "{max_attempts: 12, base_delay: 10ms, max_delay: 100ms}",
                                                  "timeout": "{connect: 2s, request: 500ms}"})
        p = cs.run(["-c", cfg, "-v", "sync"])
        cs.expect(p, 0, "sync under transient faults")
        cs.assert_inventory(db, sim, ALL)
        faults = sim.stats()["faults"]
        assert faults.get("truncated", 0) and faults.get("html", 0) and faults.get("reset", 0), faults


def test_unknown_group_fails_alone():
    d = harness.tmpdir()
    db = os.path.join(d, "inv.db")
    with Sim("--dataset", dataset(d)) as sim:
        cfg = two_instances(sim, d, db, groups=["GID_99", "GID_nope", "GID_2500"])
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 1, "sync with an unknown group")
        assert "GID_nope" in p.stderr and "PermissionCheckFailed" in p.stderr, p.stderr
        failed = cs.snapshots(db, "status = 'failed'")
        assert len(failed) == 2 and {s["group_id"] for s in failed} == {"GID_nope"}, failed
        for s in failed:
            assert s["error_code"] == "PermissionCheckFailed", s
            assert "(request " in s["error_message"], s  # the RequestId, for support
        cs.assert_inventory(db, sim, [(i, g) for i in ("mqtt-a", "mqtt-b") for g in ("GID_99", "GID_2500")])
        assert cs.query(db, "SELECT status, groups_ok, groups_failed FROM runs") == [("partial", 4, 2)]
        # the failed group has no members and no interval was touched
        assert cs.query(db, "SELECT count(*) FROM current_clients WHERE group_id = 'GID_nope'") == [(0,)]


def test_unknown_instance_fails_its_groups_only():
    d = harness.tmpdir()
    db = os.path.join(d, "inv.db")
    with Sim("--dataset", dataset(d)) as sim:
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-gone", "endpoint": sim.endpoint, "groups": ["GID_1", "GID_2", "GID_3"]},
            {"id": "mqtt-a", "endpoint": sim.endpoint, "groups": ["GID_101"]},
        ], database=db)
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 1)
        failed = cs.snapshots(db, "status = 'failed'")
        assert {s["group_id"] for s in failed} == {"GID_1", "GID_2", "GID_3"}, failed
        assert all(s["error_code"] == "InstancePermissionCheckFailed" for s in failed), failed
        cs.assert_inventory(db, sim, [("mqtt-a", "GID_101")])
        # one refusal condemns the instance: its other groups are not asked again and again
        assert sim.stats()["by_code"]["InstancePermissionCheckFailed"] <= 3


def test_wrong_secret_exits_77():
    d = harness.tmpdir()
    db = os.path.join(d, "inv.db")
    with Sim("--dataset", dataset(d)) as sim:
        cfg = two_instances(sim, d, db)
        p = cs.run(["-c", cfg, "sync"], env=cs.cred_env(secret="not-the-secret"))
        cs.expect(p, 77, "wrong secret")
        assert "SignatureDoesNotMatch" in p.stderr, p.stderr
        assert "not-the-secret" not in p.stderr + p.stdout
        assert cs.query(db, "SELECT count(*) FROM snapshots WHERE status = 'complete'") == [(0,)]
        assert cs.query(db, "SELECT status FROM runs") == [("failed",)]
        p = cs.run(["-c", cfg, "sync"], env=cs.cred_env(key_id="nobody"))
        cs.expect(p, 77, "unknown key")
        assert "InvalidAccessKeyId.NotFound" in p.stderr
        # no credentials at all: 77 before anything is written
        env = cs.cred_env()
        del env["ALIBABA_CLOUD_ACCESS_KEY_ID"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
        env["HOME"] = d
        db2 = os.path.join(d, "none.db")
        cfg2 = two_instances(sim, d, db2)
        p = cs.run(["-c", cfg2, "sync"], env=env)
        cs.expect(p, 77, "no credentials")
        assert not os.path.exists(db2)


def test_bad_config_exits_78_and_creates_nothing():
    d = harness.tmpdir()
    db = os.path.join(d, "never.db")
    cfg = os.path.join(d, "bad.yaml")
    with open(cfg, "w") as f:
        f.write("database: %s\ndefaults:\n  page_sise: 100\ninstances:\n  - id: x\n    region: cn-hangzhou\n    groups: [G]\n" % db)
    p = cs.run(["-c", cfg, "sync"])
    cs.expect(p, 78, "bad config")
    assert "bad.yaml:3:3:" in p.stderr and "page_sise" in p.stderr and "page_size" in p.stderr, p.stderr
    assert os.listdir(d) == ["bad.yaml"], os.listdir(d)
    # a missing config file is a configuration error too
    p = cs.run(["-c", os.path.join(d, "missing.yaml"), "sync"])
    cs.expect(p, 78)
    # plain http to a non-loopback host is refused before anything is written
    with open(cfg, "w") as f:
        f.write("database: %s\ninstances:\n  - id: x\n    endpoint: http://example.com\n    groups: [G]\n" % db)
    p = cs.run(["-c", cfg, "sync"])
    cs.expect(p, 78)
    assert "loopback" in p.stderr, p.stderr
    assert os.listdir(d) == ["bad.yaml"], os.listdir(d)


def test_paging_styles():
    """Every stop rule of API.md: tokens absent, empty or repeated on the last page, no
    tokens at all, short pages, Total as a number."""
    styles = [["--last-token", "absent"], ["--last-token", "empty"], ["--last-token", "same"],
              ["--no-token"], ["--page-cap", "37"], ["--page-cap", "37", "--no-token"],
              ["--total-as-number"]]
    for style in styles:
        d = harness.tmpdir()
        db = os.path.join(d, "inv.db")
        with Sim("--dataset", dataset(d), *style) as sim:
            cfg = two_instances(sim, d, db)
            p = cs.run(["-c", cfg, "sync"])
            cs.expect(p, 0, "paging %s" % style)
            cs.assert_inventory(db, sim, ALL)
            bad = cs.snapshots(db, "status != 'complete' OR consistent != 1")
            assert not bad, (style, bad)
            pages = sum(s["pages"] for s in cs.snapshots(db))
            # never more than one page beyond what the data needs, per group
            cap = 37 if "--page-cap" in style else 100
            need = sum(max(1, -(-n // cap)) for n in SIZES.values()) * 2
            assert need <= pages <= need + 2 * len(SIZES), (style, pages, need)


def test_second_sync_records_changes():
    d = harness.tmpdir()
    db = os.path.join(d, "inv.db")
    with Sim("--dataset", dataset(d)) as sim:
        cfg = two_instances(sim, d, db)
        cs.expect(cs.run(["-c", cfg, "sync"]), 0)
        m = sim.mutate(add=3, remove=2, instance="mqtt-a", group="GID_101")
        cs.expect(cs.run(["-c", cfg, "sync"]), 0)
        cs.assert_inventory(db, sim, ALL)
        last = cs.snapshots(db, "group_id = 'GID_101' AND instance_id = 'mqtt-a'")[-1]
        assert last["added"] == 3 and last["removed"] == 2 and last["client_count"] == 102, last
        ch = cs.query(db, "SELECT change, client_id FROM changes WHERE snapshot_id = ?", (last["snapshot_id"],))
        assert sorted(c for ch_, c in ch if ch_ == "added") == sorted(m["added"])
        assert sorted(c for ch_, c in ch if ch_ == "removed") == sorted(m["removed"])
        # the unchanged groups recorded nothing
        others = cs.snapshots(db, "run_id = 2 AND NOT (group_id = 'GID_101' AND instance_id = 'mqtt-a')")
        assert all(s["added"] == 0 and s["removed"] == 0 for s in others)


def test_group_and_instance_selection():
    d = harness.tmpdir()
    db = os.path.join(d, "inv.db")
    with Sim("--dataset", dataset(d)) as sim:
        cfg = two_instances(sim, d, db)
        cs.expect(cs.run(["-c", cfg, "sync", "--instance", "mqtt-b", "--group", "GID_99"]), 0)
        assert [(s["instance_id"], s["group_id"]) for s in cs.snapshots(db)] == [("mqtt-b", "GID_99")]
        p = cs.run(["-c", cfg, "sync", "--instance", "mqtt-zzz"])
        cs.expect(p, 64)
        assert "mqtt-zzz" in p.stderr
        p = cs.run(["-c", cfg, "sync", "--bogus"])
        cs.expect(p, 64)


def test_database_flag_overrides_config():
    d = harness.tmpdir()
    db = os.path.join(d, "inv.db")
    other = os.path.join(d, "other.db")
    with Sim("--dataset", dataset(d)) as sim:
        cfg = two_instances(sim, d, db, groups=["GID_one"])
        cs.expect(cs.run(["-c", cfg, "-d", other, "sync"]), 0)
        assert os.path.exists(other) and not os.path.exists(db)
        # CREDSYNC_CONFIG finds the file when -c is not given
        env = cs.cred_env(extra={"CREDSYNC_CONFIG": cfg})
        cs.expect(cs.run(["sync"], env=env), 0)
        assert os.path.exists(db)


def test_dry_run_writes_nothing():
    d = harness.tmpdir()
    db = os.path.join(d, "inv.db")
    with Sim("--dataset", dataset(d)) as sim:
        cfg = two_instances(sim, d, db, groups=["GID_101", "GID_one"])
        # no database yet: a dry run reports everything as new and creates nothing
        p = cs.run(["-c", cfg, "sync", "--dry-run"])
        cs.expect(p, 0)
        assert "mqtt-a/GID_101: 101 clients, would add 101, remove 0" in p.stdout, p.stdout
        assert "nothing was written" in p.stdout
        assert sorted(os.listdir(d)) == ["c.yaml", "data.json"], os.listdir(d)
        cs.expect(cs.run(["-c", cfg, "sync"]), 0)
        m = sim.mutate(add=4, remove=3, instance="mqtt-b", group="GID_101")
        before = cs.query(db, "SELECT count(*) FROM cs_snapshot")[0][0], cs.query(db, "SELECT count(*) FROM runs")[0][0]
        p = cs.run(["-c", cfg, "sync", "--dry-run"])
        cs.expect(p, 0)
        assert "mqtt-b/GID_101: 102 clients, would add 4, remove 3" in p.stdout, p.stdout
        assert "mqtt-a/GID_101: 101 clients, would add 0, remove 0" in p.stdout, p.stdout
        after = cs.query(db, "SELECT count(*) FROM cs_snapshot")[0][0], cs.query(db, "SELECT count(*) FROM runs")[0][0]
        assert before == after
        cs.expect(cs.run(["-c", cfg, "sync"]), 0)
        last = cs.snapshots(db, "instance_id = 'mqtt-b' AND group_id = 'GID_101'")[-1]
        assert last["added"] == 4 and last["removed"] == 3, last
        assert len(m["added"]) == 4


if __name__ == "__main__":
    cs.main([test_exact_inventory_of_every_size, test_thirty_percent_throttling_still_exact,
             test_transient_faults_still_exact, test_unknown_group_fails_alone,
             test_unknown_instance_fails_its_groups_only, test_wrong_secret_exits_77,
             test_bad_config_exits_78_and_creates_nothing, test_paging_styles,
             test_second_sync_records_changes, test_group_and_instance_selection,
             test_database_flag_overrides_config, test_dry_run_writes_nothing])
