"""Operator experience: every credential source (and the refusal of an open file), v3 and
v1 signing, `groups: all`, `check`, JSON logs, the progress display, the metrics file, and
the secret never appearing anywhere."""
import glob
import json
import os
import pty
import re
import select
import signal
import subprocess
import time

import cs
import harness
from harness import Sim

SECRET = "S3cr3t-Key-That-Must-Not-Leak+/="


def base_env(d, extra=None):
    """An environment with no credentials at all and HOME in d."""
    env = cs.clean_env({"HOME": d})
    env.update(extra or {})
    return env


def sim_with_secret(*args):
    return Sim("--instances", "1", "--groups", "2", "--devices", "150", *args,
               env={"CREDSYNC_SIM_ACCESS_KEY_SECRET": SECRET})


def cfg_for(sim, d, extra_yaml="", groups=("GID_sim_1", "GID_sim_2"), top="", name="c.yaml"):
    db = os.path.join(d, "inv.db")
    cfg = cs.write_config(os.path.join(d, name), [
        {"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": list(groups),
         "yaml": extra_yaml}], database=db, extra=top)
    return cfg, db


def write_private(path, text, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def run(args, env):
    p = cs.run(args, env=env, check_secret=False)
    assert SECRET not in p.stdout + p.stderr, "the secret was printed"
    return p


def test_credential_sources():
    d = harness.tmpdir()
    with sim_with_secret("--security-token", "sts+token/==") as sim:
        cfg, db = cfg_for(sim, d)
        cases = [
            ("ALIBABA_CLOUD_* environment", {"ALIBABA_CLOUD_ACCESS_KEY_ID": "testid",
                                             "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
                                             "ALIBABA_CLOUD_SECURITY_TOKEN": "sts+token/=="},
             None, "environment (ALIBABA_CLOUD_ACCESS_KEY_ID)"),
            ("ALICLOUD_* environment", {"ALICLOUD_ACCESS_KEY": "testid", "ALICLOUD_SECRET_KEY": SECRET,
                                        "ALICLOUD_SECURITY_TOKEN": "sts+token/=="},
             None, "environment (ALICLOUD_ACCESS_KEY)"),
        ]
        for name, extra, _, source in cases:
            env = base_env(d, extra)
            p = run(["-c", cfg, "check"], env)
            cs.expect(p, 0, name)
            assert source in p.stdout and "with an STS token" in p.stdout, p.stdout
            assert "testid" not in p.stdout.replace("****", "")  # the id is masked too
            cs.expect(run(["-c", cfg, "sync"], env), 0, name)

        # ~/.alibabacloud/credentials, default profile then a named one
        ini = os.path.join(d, ".alibabacloud", "credentials")
        write_private(ini, "[default]\ntype = access_key\naccess_key_id = nobody\naccess_key_secret = x\n\n"
                           "[prod]\ntype = sts\naccess_key_id = testid\naccess_key_secret = %s\n"
                           "security_token = sts+token/==\n" % SECRET)
        env = base_env(d)
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 0)
        assert "profile 'default' in %s" % ini in p.stdout, p.stdout
        cs.expect(run(["-c", cfg, "sync"], env), 77, "wrong key in the default profile")
        env = base_env(d, {"ALIBABA_CLOUD_PROFILE": "prod"})
        p = run(["-c", cfg, "check"], env)
        assert "profile 'prod' in %s" % ini in p.stdout, p.stdout
        cs.expect(run(["-c", cfg, "sync"], env), 0, "profile from ALIBABA_CLOUD_PROFILE")
        # credentials.profile in the config selects it too
        cfg2, _ = cfg_for(sim, d, top="credentials:\n  profile: prod\n", name="c2.yaml")
        cs.expect(run(["-c", cfg2, "sync"], base_env(d)), 0, "profile from the config")
        # ALIBABA_CLOUD_CREDENTIALS_FILE moves the file
        moved = os.path.join(d, "elsewhere.ini")
        write_private(moved, "[default]\naccess_key_id = testid\naccess_key_secret = %s\n"
                             "type = sts\nsecurity_token = sts+token/==\n" % SECRET)
        env = base_env(d, {"ALIBABA_CLOUD_CREDENTIALS_FILE": moved})
        p = run(["-c", cfg, "check"], env)
        assert moved in p.stdout, p.stdout
        cs.expect(run(["-c", cfg, "sync"], env), 0)
        # a file readable by others is refused, as ssh refuses an open key
        os.chmod(moved, 0o644)
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 77, "open credentials file")
        assert "too open" in p.stderr and "chmod 600" in p.stderr, p.stderr
        os.remove(moved)
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 77, "a named credentials file that does not exist")
        os.remove(ini)

        # ~/.aliyun/config.json: StsToken mode, current profile
        aliyun = os.path.join(d, ".aliyun", "config.json")
        write_private(aliyun, json.dumps({"current": "work", "profiles": [
            {"name": "default", "mode": "AK", "access_key_id": "nobody", "access_key_secret": "x"},
            {"name": "work", "mode": "StsToken", "access_key_id": "testid",
             "access_key_secret": SECRET, "sts_token": "sts+token/==", "region_id": "cn-hangzhou"}]}))
        p = run(["-c", cfg, "check"], base_env(d))
        cs.expect(p, 0)
        assert "profile 'work' in %s" % aliyun in p.stdout and "STS" in p.stdout, p.stdout
        cs.expect(run(["-c", cfg, "sync"], base_env(d)), 0, "aliyun config.json")
        os.chmod(aliyun, 0o640)
        p = run(["-c", cfg, "sync"], base_env(d))
        cs.expect(p, 77)
        assert "too open" in p.stderr
        os.remove(aliyun)
        # nothing anywhere
        p = run(["-c", cfg, "check"], base_env(d))
        cs.expect(p, 77)
        assert "no credentials" in p.stderr
        # half a pair is named
        p = run(["-c", cfg, "check"], base_env(d, {"ALIBABA_CLOUD_ACCESS_KEY_ID": "testid"}))
        cs.expect(p, 77)
        assert "ALIBABA_CLOUD_ACCESS_KEY_SECRET" in p.stderr


def test_v1_and_v3_sync():
    d = harness.tmpdir()
    with sim_with_secret() as sim:
        for sig in ("v1", "v3"):
            cfg, db = cfg_for(sim, d, "signature: %s" % sig)
            env = base_env(d, {"ALIBABA_CLOUD_ACCESS_KEY_ID": "testid",
                               "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET})
            cs.expect(run(["-c", cfg, "sync"], env), 0, sig)
            cs.assert_inventory(db, sim, [("mqtt-sim-1", "GID_sim_1"), ("mqtt-sim-1", "GID_sim_2")])


def test_groups_all_discovery():
    d = harness.tmpdir()
    data = {"mqtt-a": {"GID_x": ["GID_x@@@1", "GID_x@@@2"], "GID_y": ["GID_y@@@1"], "GID_z": []}}
    path = cs.write_dataset(os.path.join(d, "data.json"), data)
    db = os.path.join(d, "inv.db")
    with Sim("--dataset", path, "--list-group-qps", "1") as sim:
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-a", "endpoint": sim.endpoint, "groups": "all"}], database=db)
        p = cs.run(["-c", cfg, "-v", "sync"])
        cs.expect(p, 0)
        assert "ListGroupId: 3 group(s)" in p.stderr
        assert {s["group_id"] for s in cs.snapshots(db)} == {"GID_x", "GID_y", "GID_z"}
        cs.assert_inventory(db, sim, [("mqtt-a", g) for g in ("GID_x", "GID_y", "GID_z")])
        # --group filters discovered groups; an unknown one is a usage error
        cs.expect(cs.run(["-c", cfg, "sync", "--group", "GID_y"]), 0)
        cs.expect(cs.run(["-c", cfg, "sync", "--group", "GID_nope"]), 64)
        # ListGroupId throttled at 1/s: the next runs retry it rather than fail
        cs.expect(cs.run(["-c", cfg, "sync"]), 0)
        assert sim.stats()["by_action"]["ListGroupId"] >= 4
    # a group that disappears from the listing is reported, not silently forgotten
    del data["mqtt-a"]["GID_y"]
    path = cs.write_dataset(os.path.join(d, "data.json"), data)
    with Sim("--dataset", path) as sim:
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-a", "endpoint": sim.endpoint, "groups": "all"}], database=db)
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 0)
        assert "group 'GID_y' is no longer listed by ListGroupId" in p.stderr, p.stderr
        # its last snapshot stays as it was
        assert cs.query(db, "SELECT count(*) FROM current_clients WHERE group_id = 'GID_y'") == [(1,)]
    # an instance the listing refuses fails alone
    with Sim("--dataset", path) as sim:
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-gone", "endpoint": sim.endpoint, "groups": "all"},
            {"id": "mqtt-a", "endpoint": sim.endpoint, "groups": ["GID_x"]}], database=db)
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 1)
        assert "InstancePermissionCheckFailed" in p.stderr
        assert cs.query(db, "SELECT status, groups_failed FROM runs ORDER BY run_id DESC LIMIT 1") == [("partial", 1)]


def test_discovery_stops_on_signal_and_deadline():
    """ListGroupId runs under the crawl's rules: ^C ends a listing that waits for its answer
    at once, and retry.deadline ends one that is throttled on and on."""
    d = harness.tmpdir()
    data = {"mqtt-a": {"GID_x": ["GID_x@@@1"]}}
    path = cs.write_dataset(os.path.join(d, "data.json"), data)
    db = os.path.join(d, "inv.db")
    with Sim("--dataset", path, "--latency", "8000") as sim:
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-a", "endpoint": sim.endpoint, "groups": "all"}], database=db,
            defaults={"timeout": {"request": "20s"}})
        p = subprocess.Popen(cs.command() + ["-c", cfg, "sync"], env=cs.cred_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while sim.stats()["by_action"].get("ListGroupId", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        took = time.monotonic() - t0
        assert p.returncode == 130, (p.returncode, err)
        assert took < 4, "the listing's 8 s answer was waited for (%.1f s)" % took
    with Sim("--dataset", path, "--fault", "SystemOverFlow=1@mqtt-a") as sim:
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-a", "endpoint": sim.endpoint, "groups": "all"}], database=db,
            defaults={"retry": {"max_attempts": 100, "base_delay": "100ms", "max_delay": "300ms",
                                "deadline": "2s"}})
        t0 = time.monotonic()
        p = cs.run(["-c", cfg, "sync"])
        took = time.monotonic() - t0
        cs.expect(p, 1)
        assert "DeadlineExceeded" in p.stderr and "ListGroupId" not in p.stdout, p.stderr
        assert took < 30, took
        assert sim.stats()["by_action"]["ListGroupId"] >= 3


def test_check_online():
    d = harness.tmpdir()
    with Sim("--instances", "1", "--groups", "2", "--devices", "321") as sim:
        cfg, db = cfg_for(sim, d, groups=("GID_sim_1", "GID_nope", "GID_sim_2"))
        p = cs.run(["-c", cfg, "check", "--online"])
        cs.expect(p, 1)
        lines = p.stdout.splitlines()
        assert "mqtt-sim-1/GID_sim_1: OK (Total 321)" in lines, lines
        assert "mqtt-sim-1/GID_sim_2: OK (Total 321)" in lines, lines
        bad = [l for l in lines if l.startswith("mqtt-sim-1/GID_nope: FAILED PermissionCheckFailed: ")]
        assert bad and re.search(r"\(request [0-9A-F-]{20,}\)$", bad[0]), lines
        assert not os.path.exists(db), "check wrote a database"
        cfg, db = cfg_for(sim, d)
        p = cs.run(["-c", cfg, "check", "--online"])
        cs.expect(p, 0)
        p = cs.run(["-c", cfg, "check", "--online"], env=cs.cred_env(secret="wrong"))
        cs.expect(p, 77)
        assert "SignatureDoesNotMatch" in p.stdout + p.stderr


def test_json_logs():
    d = harness.tmpdir()
    with Sim("--instances", "1", "--groups", "2", "--devices", "250", "--fault", "SystemOverFlow=0.3",
             "--seed", "3") as sim:
        cfg, db = cfg_for(sim, d, groups=("GID_sim_1", "GID_nope"),
                          extra_yaml="retry: {base_delay: 5ms, max_delay: 20ms, max_attempts: 20}")
        p = cs.run(["-c", cfg, "--log-format", "json", "-vvv", "sync"])
        cs.expect(p, 1)
        lines = [json.loads(l) for l in p.stderr.splitlines()]   # every line is one object
        assert len(lines) >= 8, lines
        for l in lines:
            assert {"ts", "level", "msg"} <= set(l) and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", l["ts"])
        err = [l for l in lines if l["level"] == "error" and l.get("group") == "GID_nope"]
        assert err and err[0]["code"] == "PermissionCheckFailed" and err[0]["instance"] == "mqtt-sim-1", err
        assert err[0]["request_id"] and err[0]["run"] == 1
        retries = [l for l in lines if l.get("code") == "SystemOverFlow"]
        assert retries and all("page" in l for l in retries), retries[:2]
        levels = {l["level"] for l in lines}
        assert {"error", "info", "debug"} <= levels, levels


def test_quiet_without_terminal_and_progress_on_one():
    d = harness.tmpdir()
    with Sim("--instances", "1", "--groups", "2", "--devices", "3000", "--latency", "5") as sim:
        cfg, db = cfg_for(sim, d)
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 0)
        assert p.stdout == "" and p.stderr == "", "cron would mail this: %r" % p.stderr
        # on a terminal: the live display, then a summary line
        status, out = on_pty([harness.credsync_path(), "-c", cfg, "sync"])
        assert status == 0, out
        text = out.decode("utf-8", "replace")
        assert re.search(r"GID_sim_\d  page \d+  \d+/3000 IDs", text), text[-2000:]
        assert "groups done" in text and "\033[" in text
        assert "run 2: 2 of 2 group(s) complete" in text
        # -q silences it even on a terminal; --no-progress too
        for args in (["-q", "sync"], ["sync", "--no-progress"]):
            status, out = on_pty([harness.credsync_path(), "-c", cfg] + args)
            assert status == 0 and b"groups done" not in out, (args, out)


def on_pty(argv):
    """Runs argv with a pseudo-terminal as its stdin/stdout/stderr: (exit status, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, cs.cred_env())
    out = b""
    while True:
        r, _, _ = select.select([fd], [], [], 60)
        if not r:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out


PROM_LINE = re.compile(r'^([a-z_]+)(\{([a-z_]+="(?:[^"\\]|\\.)*"(?:,[a-z_]+="(?:[^"\\]|\\.)*")*)\})? (-?[0-9.e+]+)$')


def parse_prom(path):
    samples, types = {}, {}
    with open(path) as f:
        for line in f.read().splitlines():
            if line.startswith("# HELP "):
                continue
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                types[name] = kind
                continue
            m = PROM_LINE.match(line)
            assert m, "not exposition format: %r" % line
            assert m.group(1) in types, "sample without TYPE: %s" % line
            labels = tuple(sorted(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or "")))
            samples[(m.group(1), labels)] = float(m.group(4))
    return samples


def test_metrics_file():
    d = harness.tmpdir()
    prom = os.path.join(d, "credsync.prom")
    with Sim("--instances", "1", "--groups", "2", "--devices", "777") as sim:
        cfg, db = cfg_for(sim, d, top="metrics_file: %s\n" % prom)
        t0 = time.time()
        cs.expect(cs.run(["-c", cfg, "sync"]), 0)
        m = parse_prom(prom)
        assert os.stat(prom).st_mode & 0o077 == 0
        assert m[("credsync_last_run_success", ())] == 1
        ok_at = m[("credsync_last_success_timestamp_seconds", ())]
        assert t0 - 2 <= ok_at <= time.time() + 2
        g1 = (("group", "GID_sim_1"), ("instance", "mqtt-sim-1"))
        assert m[("credsync_group_clients", g1)] == 777 and m[("credsync_group_success", g1)] == 1
        assert m[("credsync_last_run_requests", ())] == sim.stats()["rpc_requests"]
        assert m[("credsync_last_run_groups_failed", ())] == 0
        assert ("credsync_last_run_duration_seconds", ()) in m
        # a failing run: success 0, the last success time kept, the failed group counted
        cfg, db = cfg_for(sim, d, top="metrics_file: %s\n" % prom, groups=("GID_sim_1", "GID_nope"))
        time.sleep(1.1)
        cs.expect(cs.run(["-c", cfg, "sync"]), 1)
        m = parse_prom(prom)
        assert m[("credsync_last_run_success", ())] == 0
        assert m[("credsync_last_success_timestamp_seconds", ())] == ok_at
        assert m[("credsync_last_run_groups_failed", ())] == 1
        assert m[("credsync_group_success", (("group", "GID_nope"), ("instance", "mqtt-sim-1")))] == 0
        assert ("credsync_group_clients", (("group", "GID_nope"), ("instance", "mqtt-sim-1"))) not in m
        # --metrics-file on the command line wins
        other = os.path.join(d, "other.prom")
        cs.expect(cs.run(["-c", cfg, "sync", "--metrics-file", other]), 1)
        assert os.path.exists(other)
        assert not [f for f in os.listdir(d) if ".tmp" in f], os.listdir(d)


def test_secret_appears_nowhere():
    """After failing and succeeding runs at the highest verbosity, the secret is in no
    output, log, metric, or database byte."""
    d = harness.tmpdir()
    prom = os.path.join(d, "m.prom")
    with sim_with_secret("--fault", "SystemOverFlow=0.2", "--fault", "garbage=0.05") as sim:
        cfg, db = cfg_for(sim, d, top="metrics_file: %s\n" % prom,
                          extra_yaml="retry: {base_delay: 5ms, max_delay: 10ms, max_attempts: 20}")
        env = base_env(d, {"ALIBABA_CLOUD_ACCESS_KEY_ID": "testid",
                           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET})
        outputs = []
        for args in (["-vvv", "sync"], ["--log-format", "json", "-vvv", "sync"],
                     ["-vvv", "check", "--online"], ["-vvv", "diff"], ["snapshots"]):
            p = run(["-c", cfg] + args, env)
            outputs.append(p.stdout + p.stderr)
        bad = base_env(d, {"ALIBABA_CLOUD_ACCESS_KEY_ID": "testid",
                           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET + "x"})
        p = run(["-c", cfg, "-vvv", "sync"], bad)
        cs.expect(p, 77)
        outputs.append(p.stdout + p.stderr)
        blob = "\n".join(outputs)
        for needle in (SECRET, SECRET + "&"):
            assert needle not in blob
        # the secret is not derivable from what was printed either: no Signature= echo of the key
        files = glob.glob(os.path.join(d, "*"))
        assert files
        for f in files:
            if os.path.isfile(f):
                with open(f, "rb") as fh:
                    data = fh.read()
                assert SECRET.encode() not in data, "the secret is in %s" % f


if __name__ == "__main__":
    cs.main([test_credential_sources, test_v1_and_v3_sync, test_groups_all_discovery,
             test_discovery_stops_on_signal_and_deadline,
             test_check_online, test_json_logs, test_quiet_without_terminal_and_progress_on_one,
             test_metrics_file, test_secret_appears_nowhere])
