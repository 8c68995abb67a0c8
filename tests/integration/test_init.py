"""credsync init against credsync-sim: each region's endpoint is
http://{region}.localhost:PORT through $CREDSYNC_ENDPOINT_TEMPLATE (curl and credsync pin
*.localhost to 127.0.0.1: no name is resolved, nothing leaves loopback), and the simulator
serves each region only its own instances (--regions), so a config that syncs proves that
every instance was written with the endpoint of its region.

golden/init_one_region.yaml holds config/example.yaml's defaults (init embeds them): after
changing the example, regenerate it with
  CREDSYNC_UPDATE_GOLDEN=1 python3 tests/integration/test_init.py test_one_region_golden_loads_and_syncs
and review the diff."""
import os
import re
import signal
import stat
import subprocess
import time

import cs
import harness

SRC = os.environ.get("CREDSYNC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
GOLDEN = os.path.join(SRC, "tests", "integration", "golden")
ALL_REGIONS = ["cn-qingdao", "cn-beijing", "cn-zhangjiakou", "cn-huhehaote", "cn-wulanchabu",
               "cn-hangzhou", "cn-shanghai", "cn-shenzhen", "cn-guangzhou", "cn-chengdu",
               "cn-hongkong", "ap-northeast-1", "ap-southeast-1", "ap-southeast-3",
               "ap-southeast-5", "ap-southeast-6"]


def env_for(sim, extra=None):
    e = cs.cred_env(extra={"CREDSYNC_ENDPOINT_TEMPLATE": "http://{region}.localhost:%d" % sim.port})
    e.update(extra or {})
    return e


def init(sim, d, *args, env=None):
    out = os.path.join(d, "credsync.yaml")
    db = os.path.join(d, "inventory.db")
    p = cs.run(["-d", db, "init", "-o", out] + list(args), env=env or env_for(sim))
    return p, out, db


def normalize(text, sim, d):
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", text)
    text = text.replace(":%d" % sim.port, ":PORT").replace(d, "DIR")
    return text


def actions(sim):
    return sim.stats()["by_action"]


def sync_and_compare(sim, out, db, groups):
    p = cs.run(["-c", out, "sync"], env=env_for(sim))
    cs.expect(p, 0, "sync with the written config")
    cs.assert_inventory(db, sim, groups)


def test_one_region_golden_loads_and_syncs():
    d = harness.tmpdir()
    with harness.Sim("--instances", "2", "--groups", "2", "--devices", "30") as sim:
        p, out, db = init(sim, d, "--region", "cn-hangzhou")
        cs.expect(p, 0, "init")
        assert "cn-hangzhou: 2 instance(s)" in p.stdout, p.stdout
        assert "mqtt-sim-1: 2 group(s)" in p.stdout, p.stdout
        # the next two commands, with -c because this file is not where the search looks
        assert ("next:\n  credsync -c %s check --online\n  credsync -c %s sync\n" % (out, out)
                in p.stdout), p.stdout
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
        assert not [f for f in os.listdir(d) if ".tmp." in f]
        with open(out) as f:
            text = f.read()
        with open(os.path.join(GOLDEN, "init_one_region.yaml")) as f:
            golden = f.read()
        if os.environ.get("CREDSYNC_UPDATE_GOLDEN"):
            with open(os.path.join(GOLDEN, "init_one_region.yaml"), "w") as f:
                f.write(normalize(text, sim, d))
            golden = normalize(text, sim, d)
        assert normalize(text, sim, d) == golden, "differs from golden/init_one_region.yaml:\n" + \
            normalize(text, sim, d)
        p = cs.run(["-c", out, "check"], env=env_for(sim))
        cs.expect(p, 0, "check")
        assert "2 instance(s), 4 group(s)" in p.stdout, p.stdout
        sync_and_compare(sim, out, db, [("mqtt-sim-1", "GID_sim_1"), ("mqtt-sim-1", "GID_sim_2"),
                                        ("mqtt-sim-2", "GID_sim_1"), ("mqtt-sim-2", "GID_sim_2")])
        # the only calls: ListInstances once, ListGroupId per instance, then the sync's
        a = actions(sim)
        assert a.get("ListInstances") == 1 and a.get("ListGroupId") == 2, a


def test_regions_one_failing():
    d = harness.tmpdir()
    with harness.Sim("--instances", "3", "--groups", "1", "--devices", "10",
                     "--regions", "cn-hangzhou,cn-shanghai",
                     "--deny", "ListInstances@cn-beijing") as sim:
        p, out, db = init(sim, d, "--region", "cn-hangzhou", "--region", "cn-beijing",
                          "--region", "cn-shanghai")
        cs.expect(p, 1, "init with a failing region")
        assert "cn-hangzhou: 2 instance(s)" in p.stdout, p.stdout
        assert re.search(r"^cn-beijing: FAILED: ListInstances: Forbidden\.RAM: .*\(request [0-9A-F-]+\)$",
                         p.stdout, re.M), p.stdout
        # the region after the failing one was still asked
        assert "cn-shanghai: 1 instance(s)" in p.stdout, p.stdout
        with open(out) as f:
            text = f.read()
        assert "region: cn-shanghai" in text and "mqtt-sim-2" in text
        # the simulator serves mqtt-sim-2 at cn-shanghai's endpoint only: the sync proves
        # each instance got its own region's endpoint
        sync_and_compare(sim, out, db, [("mqtt-sim-1", "GID_sim_1"), ("mqtt-sim-2", "GID_sim_1"),
                                        ("mqtt-sim-3", "GID_sim_1")])
        # ... because the wrong region's endpoint does not know the instance
        wrong = cs.write_config(os.path.join(d, "wrong.yaml"), [
            {"id": "mqtt-sim-2", "endpoint": "http://cn-hangzhou.localhost:%d" % sim.port,
             "groups": ["GID_sim_1"]}], database=os.path.join(d, "wrong.db"))
        p = cs.run(["-c", wrong, "sync"], env=env_for(sim))
        cs.expect(p, 1, "sync at another region's endpoint")
        assert "InstancePermissionCheckFailed" in p.stderr, p.stderr


def test_all_regions():
    d = harness.tmpdir()
    regions = ["ap-southeast-1", "cn-qingdao", "cn-hongkong"]
    with harness.Sim("--instances", "3", "--groups", "1", "--devices", "5",
                     "--regions", ",".join(regions)) as sim:
        p, out, db = init(sim, d, "--all-regions", "--groups-all")
        cs.expect(p, 0, "init --all-regions")
        for r in ALL_REGIONS:
            assert re.search(r"^%s: " % r, p.stdout, re.M), (r, p.stdout)
        assert p.stdout.count(": no instance") == len(ALL_REGIONS) - 3, p.stdout
        assert actions(sim).get("ListInstances") == len(ALL_REGIONS)
        with open(out) as f:
            text = f.read()
        for i, r in enumerate(regions, 1):
            assert re.search(r"- id: mqtt-sim-%d\n    region: %s\n" % (i, r), text), text
        assert len(re.findall(r"^    groups: all ", text, re.M)) == 3, text
        sync_and_compare(sim, out, db, [("mqtt-sim-%d" % i, "GID_sim_1") for i in (1, 2, 3)])


def test_existing_file_refused_without_force():
    d = harness.tmpdir()
    with harness.Sim("--instances", "1", "--groups", "1", "--devices", "3") as sim:
        out = os.path.join(d, "credsync.yaml")
        with open(out, "w") as f:
            f.write("mine\n")
        p, out, db = init(sim, d, "--region", "cn-hangzhou")
        cs.expect(p, 64, "init over an existing file")
        assert "exists; pass --force" in p.stderr, p.stderr
        with open(out) as f:
            assert f.read() == "mine\n"
        # refused before any request
        assert sim.stats()["requests"] == 0, sim.stats()
        p, out, db = init(sim, d, "--region", "cn-hangzhou", "--force")
        cs.expect(p, 0, "init --force")
        with open(out) as f:
            assert "- id: mqtt-sim-1" in f.read()
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


def test_account_without_instance():
    d = harness.tmpdir()
    with harness.Sim("--instances", "1", "--regions", "cn-shanghai") as sim:
        p, out, db = init(sim, d, "--region", "cn-hangzhou", "--region", "cn-beijing")
        cs.expect(p, 1, "init with no instance")
        assert "cn-hangzhou: no instance" in p.stdout and "cn-beijing: no instance" in p.stdout
        assert "no MQTT instance in the region(s) asked; nothing written" in p.stderr, p.stderr
        assert not os.path.exists(out)
        assert not [f for f in os.listdir(d) if ".tmp." in f]


def test_denied_list_group_id():
    d = harness.tmpdir()
    with harness.Sim("--instances", "2", "--groups", "2", "--devices", "4",
                     "--deny", "ListGroupId@mqtt-sim-2") as sim:
        p, out, db = init(sim, d, "--region", "cn-hangzhou")
        cs.expect(p, 1, "init with a denied ListGroupId")
        assert re.search(r"^  mqtt-sim-2: FAILED: ListGroupId: Forbidden\.RAM: ", p.stdout, re.M), p.stdout
        assert "1 instance(s), 1 more commented out" in p.stdout, p.stdout
        with open(out) as f:
            text = f.read()
        assert "  # not enabled: ListGroupId answered Forbidden.RAM" in text, text
        assert "  # - id: mqtt-sim-2\n" in text and "  - id: mqtt-sim-1\n" in text, text
        sync_and_compare(sim, out, db, [("mqtt-sim-1", "GID_sim_1"), ("mqtt-sim-1", "GID_sim_2")])
    # every instance denied: nothing to write
    d = harness.tmpdir()
    with harness.Sim("--instances", "1", "--deny", "ListGroupId") as sim:
        p, out, db = init(sim, d, "--region", "cn-hangzhou")
        cs.expect(p, 1)
        assert "nothing written" in p.stderr and not os.path.exists(out), p.stderr


def test_throttling_retried_and_interrupt():
    # throttled listings are retried as a sync retries them
    d = harness.tmpdir()
    with harness.Sim("--instances", "3", "--groups", "1", "--devices", "2", "--seed", "7",
                     "--regions", "cn-hangzhou,cn-shanghai,cn-beijing",
                     "--fault", "Throttling.User=0.3") as sim:
        p, out, db = init(sim, d, "--region", "cn-hangzhou", "--region", "cn-shanghai",
                          "--region", "cn-beijing")
        cs.expect(p, 0, "init under throttling")
        st = sim.stats()
        assert st["faults"].get("Throttling.User", 0) > 0, st
        with open(out) as f:
            assert len(re.findall(r"^  - id: mqtt-sim-", f.read(), re.M)) == 3
    # ^C while the service is slow: stops at once, writes nothing
    d = harness.tmpdir()
    with harness.Sim("--instances", "1", "--latency", "5000") as sim:
        out = os.path.join(d, "credsync.yaml")
        proc = subprocess.Popen(cs.command() + ["init", "--region", "cn-hangzhou", "-o", out],
                                env=env_for(sim), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # once ListInstances is waiting for its answer (slow under valgrind)
        deadline = time.monotonic() + 60
        while sim.stats()["rpc_requests"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 130, (proc.returncode, err)
        assert time.monotonic() - t0 < 3, "init took %.1f s to stop" % (time.monotonic() - t0)
        assert not os.path.exists(out) and not [f for f in os.listdir(d) if ".tmp." in f]


def test_profile_from_credentials_file():
    # credentials from a profile of ~/.alibabacloud/credentials: init records the profile,
    # so that sync, without the variable, reads the same one
    d = harness.tmpdir()
    os.makedirs(os.path.join(d, ".alibabacloud"))
    path = os.path.join(d, ".alibabacloud", "credentials")
    with open(path, "w") as f:
        f.write("[ops]\ntype = access_key\naccess_key_id = %s\naccess_key_secret = %s\n"
                % (harness.ACCESS_KEY_ID, cs.SECRET))
    os.chmod(path, 0o600)
    with harness.Sim("--instances", "1", "--groups", "1", "--devices", "3") as sim:
        tmpl = {"CREDSYNC_ENDPOINT_TEMPLATE": "http://{region}.localhost:%d" % sim.port, "HOME": d}
        p, out, db = init(sim, d, "--region", "cn-hangzhou",
                          env=cs.clean_env(dict(tmpl, ALIBABA_CLOUD_PROFILE="ops")))
        cs.expect(p, 0, "init with a profile")
        with open(out) as f:
            text = f.read()
        assert "\ncredentials:\n  profile: ops " in text, text
        assert cs.SECRET not in text
        p = cs.run(["-c", out, "sync"], env=cs.clean_env(tmpl))
        cs.expect(p, 0, "sync with the recorded profile")


def test_credentials_and_usage():
    d = harness.tmpdir()
    with harness.Sim("--instances", "1") as sim:
        env = cs.clean_env({"HOME": d, "CREDSYNC_ENDPOINT_TEMPLATE": "http://{region}.localhost:%d" % sim.port})
        p, out, db = init(sim, d, "--region", "cn-hangzhou", env=env)
        cs.expect(p, 77, "init without credentials")
        p, out, db = init(sim, d, "--region", "cn-hangzhou",
                          env=env_for(sim, {"ALIBABA_CLOUD_ACCESS_KEY_ID": "nosuchkey"}))
        cs.expect(p, 77, "init with a rejected AccessKey")
        assert not os.path.exists(out)
        p, out, db = init(sim, d)
        cs.expect(p, 64, "init without a region")
        assert "--region R" in p.stderr
        p, out, db = init(sim, d, "--region", "cn hangzhou")
        cs.expect(p, 64, "a bad region name")
    # the default file: ~/.config/credsync/config.yaml for a user, found without -c later
    # (root's default is /etc/credsync/config.yaml, not touched by a test)
    if os.geteuid() != 0:
        with harness.Sim("--instances", "1", "--groups", "1", "--devices", "2") as sim:
            home = harness.tmpdir()
            env = env_for(sim, {"HOME": home})
            env.pop("XDG_CONFIG_HOME", None)
            env.pop("XDG_DATA_HOME", None)
            p = cs.run(["init", "--region", "cn-hangzhou"], env=env)
            cs.expect(p, 0)
            assert "next:\n  credsync check --online\n  credsync sync\n" in p.stdout, p.stdout
            assert os.path.exists(os.path.join(home, ".config", "credsync", "config.yaml"))


if __name__ == "__main__":
    cs.main([test_one_region_golden_loads_and_syncs, test_regions_one_failing, test_all_regions,
             test_existing_file_refused_without_force, test_account_without_instance,
             test_denied_list_group_id, test_throttling_retried_and_interrupt,
             test_profile_from_credentials_file,
             test_credentials_and_usage])
