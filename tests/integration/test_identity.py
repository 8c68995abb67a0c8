"""No long-lived keys: every identity provider end to end against credsync-sim (which plays
STS, the ECS metadata service and a credentials URI on its own listener), the faults of
issue 10, renewal of short-lived credentials during a crawl, the default chain's error, and
the temporary secrets and tokens appearing nowhere.

The network rule: every environment here either disables the metadata provider or points
CREDSYNC_METADATA_ENDPOINT at the simulator; STS is always ALIBABA_CLOUD_STS_ENDPOINT=sim."""
import json
import os
import re
import socket
import threading
import time

import cs
import harness
from harness import Sim

ROLE = "acs:ram::1234567890123456:role/credsync-reader"
ROLE2 = "acs:ram::2222222222222222:role/credsync-second"
OIDC_PROVIDER = "acs:ram::1234567890123456:oidc-provider/ack-rrsa"


def base_env(d, extra=None):
    """No credentials, HOME in d, the metadata provider off."""
    env = cs.clean_env({"HOME": d})
    env.pop("CREDSYNC_METADATA_ENDPOINT", None)
    env.update(extra or {})
    return env


def imds_env(d, sim, extra=None):
    """The ECS RAM role from the simulator: metadata enabled, but pointed at loopback."""
    env = base_env(d, {"CREDSYNC_METADATA_ENDPOINT": sim.endpoint})
    env.pop("ALIBABA_CLOUD_ECS_METADATA_DISABLED")
    env.update(extra or {})
    return env


def write_private(path, text, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def cfg_for(sim, d, groups=("GID_sim_1", "GID_sim_2"), top="", extra_yaml="", name="c.yaml",
            instances=None):
    db = os.path.join(d, "inv.db")
    insts = instances or [{"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": list(groups),
                           "yaml": extra_yaml}]
    cfg = cs.write_config(os.path.join(d, name), insts, database=db, extra=top,
                          defaults={"qps": 1000, "concurrency": 4, "retry": cs.FAST_RETRY})
    return cfg, db


def run(args, env, timeout=600):
    return cs.run(args, env=env, timeout=timeout)


def groups_of(sim):
    return [("mqtt-sim-1", g) for g in sim.dump()["instances"]["mqtt-sim-1"]["groups"]]


def when_crawling(sim, pages=3, then=None, delay=0.0, limit=60.0):
    """A thread that waits until the simulator has served `pages` pages (the crawl is under
    way, however slowly credsync started, e.g. under valgrind), sleeps delay, calls then()."""
    def body():
        end = time.monotonic() + limit
        while time.monotonic() < end and sim.stats()["pages"] < pages:
            time.sleep(0.02)
        time.sleep(delay)
        then()
    th = threading.Thread(target=body)
    th.start()
    return th


def ini_role(d, sim, role=ROLE, extra=""):
    ini = os.path.join(d, ".alibabacloud", "credentials")
    write_private(ini, "[default]\ntype = ram_role_arn\naccess_key_id = testid\n"
                       "access_key_secret = %s\nrole_arn = %s\nrole_session_name = it\n%s"
                  % (cs.SECRET, role, extra))
    return ini


# ---- ECS RAM role ----

def test_ecs_ram_role():
    d = harness.tmpdir()
    with Sim("--devices", "150") as sim:
        cfg, db = cfg_for(sim, d)
        p = run(["-c", cfg, "check"], imds_env(d, sim))
        cs.expect(p, 0, "check")
        assert "ecs_ram_role credsync-ecs STS." in p.stdout, p.stdout
        assert "ECS RAM role from %s" % sim.endpoint in p.stdout and "expires 20" in p.stdout
        cs.expect(run(["-c", cfg, "sync"], imds_env(d, sim)), 0, "sync")
        cs.assert_inventory(db, sim, groups_of(sim))
        # the role named instead of discovered
        p = run(["-c", cfg, "check"], imds_env(d, sim, {"ALIBABA_CLOUD_ECS_METADATA": "credsync-ecs"}))
        cs.expect(p, 0)
        p = run(["-c", cfg, "check"], imds_env(d, sim, {"ALIBABA_CLOUD_ECS_METADATA": "other"}))
        cs.expect(p, 77, "a role that is not attached")
        assert "'other'" in p.stderr and "not attached" in p.stderr, p.stderr
        # an ecs_ram_role profile
        write_private(os.path.join(d, ".alibabacloud", "credentials"),
                      "[default]\ntype = ecs_ram_role\nrole_name = credsync-ecs\n")
        p = run(["-c", cfg, "sync"], base_env(d, {"CREDSYNC_METADATA_ENDPOINT": sim.endpoint}))
        cs.expect(p, 0, "ecs_ram_role profile")
        os.remove(os.path.join(d, ".alibabacloud", "credentials"))


def test_imds_modes():
    d = harness.tmpdir()
    # hardened instance: v1 refused; we never need it
    with Sim("--imds", "v2-only") as sim:
        cfg, _ = cfg_for(sim, d)
        cs.expect(run(["-c", cfg, "sync"], imds_env(d, sim, {"ALIBABA_CLOUD_IMDSV1_DISABLED": "true"})), 0)
    # no token service (an old proxy): falls back to v1 unless v1 is disabled
    with Sim("--imds", "v1-only") as sim:
        cfg, _ = cfg_for(sim, d)
        p = run(["-c", cfg, "-vv", "sync"], imds_env(d, sim))
        cs.expect(p, 0, "v1 fallback")
        assert "falling back to IMDSv1" in p.stderr, p.stderr
        p = run(["-c", cfg, "sync"], imds_env(d, sim, {"ALIBABA_CLOUD_IMDSV1_DISABLED": "true"}))
        cs.expect(p, 77, "v1 disabled")
        assert "ALIBABA_CLOUD_IMDSV1_DISABLED=true forbids" in p.stderr, p.stderr
    # no role attached
    with Sim("--imds-role", "") as sim:
        cfg, _ = cfg_for(sim, d)
        p = run(["-c", cfg, "check"], imds_env(d, sim))
        cs.expect(p, 77)
        assert "no RAM role is attached" in p.stderr, p.stderr


def test_metadata_absent_fails_fast():
    """A listener that never answers: the chain gives up on it in about a second."""
    d = harness.tmpdir()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    try:
        with Sim() as sim:
            cfg, _ = cfg_for(sim, d)
            env = base_env(d, {"CREDSYNC_METADATA_ENDPOINT": "http://127.0.0.1:%d" % s.getsockname()[1]})
            env.pop("ALIBABA_CLOUD_ECS_METADATA_DISABLED")
            t0 = time.monotonic()
            p = run(["-c", cfg, "check"], env)
            took = time.monotonic() - t0
            cs.expect(p, 77)
            assert "did not answer" in p.stderr and "ALIBABA_CLOUD_ECS_METADATA_DISABLED" in p.stderr, p.stderr
            # valgrind (CREDSYNC_WRAPPER) adds its own start-up to the wall time
            assert took < (10.0 if os.environ.get("CREDSYNC_WRAPPER") else 4.0), took
            # plain http to a non-loopback metadata proxy is refused (never contacted)
            env["CREDSYNC_METADATA_ENDPOINT"] = "http://192.0.2.1"
            p = run(["-c", cfg, "check"], env)
            cs.expect(p, 77)
            assert "plain http is allowed only to loopback" in p.stderr, p.stderr
    finally:
        s.close()


def test_default_metadata_address():
    """Without the harness's settings, the provider would ask 100.100.100.200 (shown by check,
    which stops at the environment AccessKey and so never connects); with them it is off."""
    d = harness.tmpdir()
    with Sim() as sim:
        cfg, _ = cfg_for(sim, d)
        env = cs.cred_env()
        env.pop("ALIBABA_CLOUD_ECS_METADATA_DISABLED")
        env.pop("CREDSYNC_METADATA_ENDPOINT", None)
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 0)
        assert "metadata service: http://100.100.100.200 (enabled)" in p.stdout, p.stdout
        assert "environment (ALIBABA_CLOUD_ACCESS_KEY_ID)" in p.stdout
        # what every test runs with
        for e in (cs.cred_env(), cs.clean_env()):
            assert e.get("ALIBABA_CLOUD_ECS_METADATA_DISABLED") == "true"
        p = run(["-c", cfg, "check"], cs.cred_env())
        assert "metadata service: http://100.100.100.200 (disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED)" in p.stdout, p.stdout


# ---- RAM role ARN ----

def test_ram_role_arn():
    d = harness.tmpdir()
    with Sim("--devices", "120", "--role", ROLE, "--role", ROLE2 + "#audit-2026",
             "--deny-role", "acs:ram::1:role/denied") as sim:
        cfg, db = cfg_for(sim, d)
        ini = ini_role(d, sim)
        env = base_env(d, {"ALIBABA_CLOUD_STS_ENDPOINT": sim.endpoint})
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 0)
        assert "ram_role_arn %s" % ROLE in p.stdout and "role assumed from" in p.stdout, p.stdout
        cs.expect(run(["-c", cfg, "sync"], env), 0)
        cs.assert_inventory(db, sim, groups_of(sim))
        assert sim.stats()["by_action"].get("AssumeRole", 0) >= 2
        # ExternalId required by the second role
        ini_role(d, sim, ROLE2)
        p = run(["-c", cfg, "sync"], env)
        cs.expect(p, 77, "no ExternalId")
        assert "NoPermission" in p.stderr and "request " in p.stderr, p.stderr
        ini_role(d, sim, ROLE2, "external_id = audit-2026\n")
        cs.expect(run(["-c", cfg, "sync"], env), 0, "with ExternalId")
        # denied and unknown roles: Code, Message, RequestId
        for role, code in (("acs:ram::1:role/denied", "NoPermission"),
                           ("acs:ram::1:role/nope", "EntityNotExist.Role")):
            ini_role(d, sim, role)
            p = run(["-c", cfg, "sync"], env)
            cs.expect(p, 77, code)
            assert code in p.stderr and re.search(r"request [0-9A-F-]{36}", p.stderr), p.stderr
            assert role in p.stderr
        # duration out of bounds in the profile
        ini_role(d, sim, ROLE, "role_session_expiration = 60\n")
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 77)
        assert "900..43200" in p.stderr, p.stderr
        # throttled twice, then granted
        ini_role(d, sim, ROLE)
        sim.control("POST", "/_sim/identity-fail", {"count": 2, "code": "Throttling.User"})
        p = run(["-c", cfg, "-v", "sync"], env)
        cs.expect(p, 0, "throttled STS")
        assert p.stderr.count("Throttling.User") == 2, p.stderr
        os.remove(ini)


def test_chain_of_two_roles():
    d = harness.tmpdir()
    with Sim("--role", ROLE, "--role", ROLE2) as sim:
        cfg, db = cfg_for(sim, d)
        write_private(os.path.join(d, ".aliyun", "config.json"), json.dumps({
            "current": "second", "profiles": [
                {"name": "base", "mode": "AK", "access_key_id": "testid", "access_key_secret": cs.SECRET},
                {"name": "first", "mode": "ChainableRamRoleArn", "source_profile": "base",
                 "ram_role_arn": ROLE, "ram_session_name": "one"},
                {"name": "second", "mode": "ChainableRamRoleArn", "source_profile": "first",
                 "ram_role_arn": ROLE2, "ram_session_name": "two", "expired_seconds": 900}]}))
        env = base_env(d, {"ALIBABA_CLOUD_STS_ENDPOINT": sim.endpoint})
        sim.reset_stats()
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 0)
        assert "ram_role_arn %s" % ROLE2 in p.stdout, p.stdout
        assert sim.stats()["by_action"].get("AssumeRole") == 2
        cs.expect(run(["-c", cfg, "sync"], env), 0)
        # a loop of source profiles is an error, not a hang
        write_private(os.path.join(d, ".aliyun", "config.json"), json.dumps({
            "current": "a", "profiles": [
                {"name": "a", "mode": "ChainableRamRoleArn", "source_profile": "b", "ram_role_arn": ROLE},
                {"name": "b", "mode": "ChainableRamRoleArn", "source_profile": "a", "ram_role_arn": ROLE}]}))
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 77)
        assert "a loop?" in p.stderr, p.stderr
        # an unknown mode names the file, the profile and the value
        write_private(os.path.join(d, ".aliyun", "config.json"), json.dumps({
            "current": "x", "profiles": [{"name": "x", "mode": "CloudSSO"}]}))
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 77)
        assert "profile 'x'" in p.stderr and "config.json" in p.stderr and "'CloudSSO'" in p.stderr, p.stderr
        os.remove(os.path.join(d, ".aliyun", "config.json"))


# ---- OIDC ----

def test_oidc():
    d = harness.tmpdir()
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("eyJ.first.token\n")
    with Sim("--devices", "400", "--oidc-token-file", tok, "--credential-lifetime", "2",
             "--page-cap", "10", "--latency", "25") as sim:
        cfg, db = cfg_for(sim, d, extra_yaml="concurrency: 1")
        env = base_env(d, {"ALIBABA_CLOUD_STS_ENDPOINT": sim.endpoint,
                           "ALIBABA_CLOUD_ROLE_ARN": ROLE,
                           "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": OIDC_PROVIDER,
                           "ALIBABA_CLOUD_OIDC_TOKEN_FILE": tok})
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 0)
        assert "oidc_role_arn %s" % ROLE in p.stdout, p.stdout

        # the platform rotates the token mid-run: the next renewal must read the new one
        def rotate():
            with open(tok + ".new", "w") as f:
                f.write("eyJ.second.token")
            os.rename(tok + ".new", tok)
        sim.reset_stats()
        th = when_crawling(sim, 3, rotate, delay=0.5)
        p = run(["-c", cfg, "-v", "sync"], env)
        th.join()
        cs.expect(p, 0, "oidc with rotation")
        assert p.stderr.count("credentials renewed") >= 2, p.stderr
        cs.assert_inventory(db, sim, groups_of(sim))
        # empty and missing token files
        with open(tok, "w") as f:
            f.write("")
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 77)
        assert "is empty" in p.stderr, p.stderr
        os.remove(tok)
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 77)
        assert "OIDC token file %s" % tok in p.stderr, p.stderr
        # a token the service does not accept
        with open(tok, "w") as f:
            f.write("eyJ.current")
        stale = os.path.join(d, "stale-token")
        with open(stale, "w") as f:
            f.write("eyJ.stale")
        p = run(["-c", cfg, "check"], dict(env, ALIBABA_CLOUD_OIDC_TOKEN_FILE=stale))
        cs.expect(p, 77)
        assert "AuthenticationFail.OIDCToken.Invalid" in p.stderr, p.stderr


# ---- credentials URI ----

def test_credentials_uri():
    d = harness.tmpdir()
    with Sim() as sim:
        cfg, db = cfg_for(sim, d)
        uri = sim.endpoint + "/_sim/credentials-uri"
        env = base_env(d, {"ALIBABA_CLOUD_CREDENTIALS_URI": uri})
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 0)
        assert "credentials_uri STS." in p.stdout, p.stdout
        cs.expect(run(["-c", cfg, "sync"], env), 0)
        for mode, want in (("garbage", "not JSON"), ("fail", "Code is 'Forbidden'"),
                           ("missing", "lacks AccessKeySecret"), ("past", "expired at 2001-01-01T00:00:00Z")):
            p = run(["-c", cfg, "check"], base_env(d, {"ALIBABA_CLOUD_CREDENTIALS_URI": uri + "?mode=" + mode}))
            cs.expect(p, 77, mode)
            assert want in p.stderr, (mode, p.stderr)
        # a credentials_uri profile
        write_private(os.path.join(d, ".alibabacloud", "credentials"),
                      "[default]\ntype = credentials_uri\ncredentials_uri = %s\n" % uri)
        cs.expect(run(["-c", cfg, "sync"], base_env(d)), 0)
        os.remove(os.path.join(d, ".alibabacloud", "credentials"))


# ---- the chain ----

def test_chain_error_lists_every_source():
    d = harness.tmpdir()
    with Sim() as sim:
        cfg, _ = cfg_for(sim, d)
        p = run(["-c", cfg, "check"], base_env(d))
        cs.expect(p, 77)
        for what in ("environment: ALIBABA_CLOUD_ACCESS_KEY_ID is not set",
                     "OIDC: ALIBABA_CLOUD_ROLE_ARN is not set",
                     "config.json: %s/.aliyun/config.json does not exist" % d,
                     "credentials file: %s/.alibabacloud/credentials does not exist" % d,
                     "ECS RAM role: ALIBABA_CLOUD_ECS_METADATA_DISABLED=true",
                     "credentials URI: ALIBABA_CLOUD_CREDENTIALS_URI is not set"):
            assert what in p.stderr, (what, p.stderr)
        # the order of IDENTITY.md: the environment wins over a profile, OIDC over files
        assert p.stderr.index("environment") < p.stderr.index("OIDC") < p.stderr.index("config.json") \
            < p.stderr.index("credentials file") < p.stderr.index("ECS RAM role") < p.stderr.index("credentials URI")


# ---- renewal during a crawl ----

def test_refresh_during_crawl():
    """Credentials living 2 s through a crawl of several seconds: renewed between requests,
    one renewal failing on the way, every page kept."""
    d = harness.tmpdir()
    devices = 3000  # a timing test, not a size test: the crawl must outlive the credentials
    with Sim("--groups", "4", "--devices", str(devices), "--credential-lifetime", "2",
             "--page-cap", "20", "--latency", "30") as sim:
        cfg, db = cfg_for(sim, d, groups=["GID_sim_%d" % i for i in range(1, 5)])
        ini_role(d, sim)
        env = base_env(d, {"ALIBABA_CLOUD_STS_ENDPOINT": sim.endpoint})

        # NoPermission is not retried inside one STS call: the renewal itself fails once
        th = when_crawling(sim, 10, lambda: sim.control(
            "POST", "/_sim/identity-fail", {"count": 1, "code": "NoPermission"}))
        t0 = time.monotonic()
        p = run(["-c", cfg, "-v", "sync"], env)
        took = time.monotonic() - t0
        th.join()
        cs.expect(p, 0, "sync on 2 s credentials")
        renewals = p.stderr.count("credentials renewed")
        print("refresh: %d renewals in %.1f s" % (renewals, took))
        assert renewals >= 3, p.stderr[-3000:]
        assert p.stderr.count("renewing the credentials failed") == 1, p.stderr[-3000:]
        cs.assert_inventory(db, sim, groups_of(sim))
        assert sim.stats()["by_code"].get("InvalidSecurityToken.Expired", 0) == 0, sim.stats()


def test_expired_page_forces_one_renewal():
    d = harness.tmpdir()
    with Sim("--groups", "2", "--devices", "400", "--page-cap", "10", "--latency", "30") as sim:
        cfg, db = cfg_for(sim, d, extra_yaml="concurrency: 1")
        ini_role(d, sim)
        env = base_env(d, {"ALIBABA_CLOUD_STS_ENDPOINT": sim.endpoint})

        th = when_crawling(sim, 5, lambda: sim.control("POST", "/_sim/expire-all"))
        p = run(["-c", cfg, "-v", "sync"], env)
        th.join()
        cs.expect(p, 0, "sync with credentials revoked mid-run")
        assert "InvalidSecurityToken.Expired: renewing the credentials and sending the page again" in p.stderr, p.stderr
        assert sim.stats()["by_code"].get("InvalidSecurityToken.Expired", 0) >= 1
        cs.assert_inventory(db, sim, groups_of(sim))


def test_renewal_impossible_fails_groups():
    d = harness.tmpdir()
    # 2-second credentials leave a 1-second window for a renewal that fails while they are
    # still valid; under valgrind a page can take longer than that, so they live 4 s there,
    # and the walk has 120 pages of 40 ms (at least 4.8 s, at any speed), so they expire
    # before it ends (60 pages, 2.4 s, against 2-second ones otherwise)
    slow = bool(os.environ.get("CREDSYNC_WRAPPER"))
    lifetime, devices = ("4", "600") if slow else ("2", "300")
    with Sim("--groups", "2", "--devices", devices, "--credential-lifetime", lifetime, "--page-cap", "10",
             "--latency", "40") as sim:
        cfg, db = cfg_for(sim, d, extra_yaml="concurrency: 1")
        ini_role(d, sim)
        env = base_env(d, {"ALIBABA_CLOUD_STS_ENDPOINT": sim.endpoint})

        th = when_crawling(sim, 2, lambda: sim.control(
            "POST", "/_sim/identity-fail", {"count": 1000, "code": "NoPermission"}))
        p = run(["-c", cfg, "sync"], env)
        th.join()
        assert p.returncode in (1, 77), p.returncode
        assert "CredentialsExpired" in p.stderr and "NoPermission" in p.stderr, p.stderr
        # while the current set was valid, the failures were only warnings, retried
        assert "renewing the credentials failed" in p.stderr and "stay valid for" in p.stderr, p.stderr
        snaps = cs.snapshots(db)
        failed = [s for s in snaps if s["status"] == "failed"]
        assert failed and all(s["error_code"] == "CredentialsExpired" for s in failed), snaps
        assert all("NoPermission" in s["error_message"] and "request " in s["error_message"]
                   for s in failed), failed


# ---- many accounts in one run ----

def two_instances(sim, d, own_yaml, top="credentials:\n  profile: default\n"):
    insts = [{"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": "all"},
             {"id": "mqtt-sim-2", "endpoint": sim.endpoint, "groups": "all", "yaml": own_yaml}]
    return cfg_for(sim, d, instances=insts, top=top)


def static_profile(d):
    write_private(os.path.join(d, ".alibabacloud", "credentials"),
                  "[default]\ntype = access_key\naccess_key_id = testid\naccess_key_secret = %s\n" % cs.SECRET)


def test_two_accounts_one_database():
    d = harness.tmpdir()
    with Sim("--instances", "2", "--groups", "2", "--devices", "120", "--role", ROLE + "#audit-2026",
             "--deny-role", ROLE2) as sim:
        static_profile(d)
        env = base_env(d, {"ALIBABA_CLOUD_STS_ENDPOINT": sim.endpoint})
        own = "credentials:\n  role_arn: %s\n  external_id: audit-2026\n  duration: 15m\n" % ROLE
        prom = os.path.join(d, "m.prom")
        cfg, db = two_instances(sim, d, own, top="credentials:\n  profile: default\nmetrics_file: %s\n" % prom)
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 0)
        assert "mqtt-sim-1: credentials: access_key ****" in p.stdout, p.stdout
        assert "mqtt-sim-2: credentials: ram_role_arn %s" % ROLE in p.stdout, p.stdout
        sim.reset_stats()
        p = run(["-c", cfg, "sync"], env)
        cs.expect(p, 0)
        assert sim.stats()["by_action"].get("AssumeRole") == 1  # resolved once per run
        with open(prom) as f:
            metrics = f.read()
        assert 'credsync_credentials_expiry_timestamp_seconds{identity="access_key ****"} 0' in metrics, metrics
        m = re.search(r'credsync_credentials_expiry_timestamp_seconds\{identity="ram_role_arn %s"\} (\d+)'
                      % re.escape(ROLE), metrics)
        assert m and abs(int(m.group(1)) - time.time() - 900) < 60, metrics
        groups = [(i, g) for i in ("mqtt-sim-1", "mqtt-sim-2") for g in ("GID_sim_1", "GID_sim_2")]
        cs.assert_inventory(db, sim, groups)
        rows = cs.query(db, "SELECT instance_id, identity FROM snapshots ORDER BY snapshot_id")
        assert {r for r in rows} == {("mqtt-sim-1", "access_key ****"),
                                     ("mqtt-sim-2", "ram_role_arn " + ROLE)}, rows
        p = run(["-c", cfg, "snapshots", "--format", "json"], env)
        ids = {(r["instance_id"], r["identity"]) for r in json.loads(p.stdout)}
        assert ("mqtt-sim-2", "ram_role_arn " + ROLE) in ids, ids
        p = run(["-c", cfg, "snapshots"], env)
        assert "IDENTITY" in p.stdout.splitlines()[0] and ("ram_role_arn " + ROLE) in p.stdout, p.stdout

        # the second account's role is denied: only its groups fail, with the STS error
        cfg, db2 = two_instances(sim, d, "credentials: { role_arn: %s }\n" % ROLE2)
        p = run(["-c", cfg, "sync"], env)
        cs.expect(p, 1, "one identity denied")
        assert "NoPermission" in p.stderr, p.stderr
        snaps = {s["instance_id"]: s for s in cs.snapshots(db2, "run_id = (SELECT max(run_id) FROM snapshots)")}
        assert snaps["mqtt-sim-1"]["status"] == "complete", snaps
        p = run(["-c", cfg, "check"], env)
        cs.expect(p, 77)
        assert "mqtt-sim-2: credentials: FAILED" in p.stdout and "NoPermission" in p.stdout, p.stdout

        # the second account's own profile has a key the service rejects: only it fails
        with open(os.path.join(d, ".alibabacloud", "credentials"), "a") as f:
            f.write("\n[wrong]\ntype = access_key\naccess_key_id = testid\naccess_key_secret = nope\n")
        cfg, db3 = two_instances(sim, d, "credentials: { profile: wrong }\n")
        p = run(["-c", cfg, "sync"], env)
        cs.expect(p, 1, "one account's key rejected")
        snaps = {s["instance_id"]: s for s in cs.snapshots(db3, "run_id = (SELECT max(run_id) FROM snapshots)")}
        assert snaps["mqtt-sim-1"]["status"] == "complete", snaps
        # groups: all could not even be listed for the second account
        assert "mqtt-sim-2" not in snaps and "SignatureDoesNotMatch" in p.stderr, (snaps, p.stderr)

        # no identity at all can sign: exit 77
        insts = [{"id": "mqtt-sim-%d" % i, "endpoint": sim.endpoint, "groups": ["GID_sim_1"],
                  "yaml": "credentials: { profile: default, role_arn: %s }\n" % ROLE2} for i in (1, 2)]
        cfg, _ = cfg_for(sim, d, instances=insts, name="c3.yaml")
        p = run(["-c", cfg, "sync"], env)
        cs.expect(p, 77, "every identity denied")
        assert "no group could run" in p.stderr and "NoPermission" in p.stderr, p.stderr


def test_big_fleet_on_short_credentials():
    """10 groups on credentials that live a few seconds, rate-limited so the crawl outlives
    them many times: exact inventory, no page lost, every renewal logged at -v.
    CREDSYNC_IDENTITY_FULL=1 runs the full size (200,000 devices, 5 s credentials)."""
    d = harness.tmpdir()
    full = os.environ.get("CREDSYNC_IDENTITY_FULL") == "1"
    per_group = 20000 if full else cs.scale(1000, 100)
    lifetime, qps, page = (5, 60, 100) if full else (2, 50, 50)
    if not full:
        # a scaled-down fleet is crawled more slowly, so it still outlives its credentials
        qps = max(2, min(qps, 10 * per_group // page // 5))
    with Sim("--groups", "10", "--devices", str(per_group), "--credential-lifetime", str(lifetime)) as sim:
        static_profile(d)
        env = base_env(d, {"ALIBABA_CLOUD_STS_ENDPOINT": sim.endpoint})
        insts = [{"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": "all",
                  "yaml": "page_size: %d\nqps: %d\nrate_control: fixed\n"
                          "credentials: { role_arn: %s }\n" % (page, qps, ROLE)}]
        cfg, db = cfg_for(sim, d, instances=insts, top="credentials:\n  profile: default\n")
        t0 = time.monotonic()
        p = run(["-c", cfg, "-v", "sync"], env, timeout=1200)
        took = time.monotonic() - t0
        cs.expect(p, 0, "big sync on short credentials")
        renewals = [l for l in p.stderr.splitlines() if "credentials renewed" in l]
        st = sim.stats()
        pages = cs.query(db, "SELECT sum(pages) FROM snapshots")[0][0]
        print("big fleet: %d devices, %d pages, %.1f s, %d renewals (credentials of %d s), "
              "%d STS calls, %d Expired answers" % (10 * per_group, pages, took, len(renewals),
              lifetime, st["by_action"].get("AssumeRole", 0),
              st["by_code"].get("InvalidSecurityToken.Expired", 0)))
        assert len(renewals) >= (10 if full else 3), len(renewals)
        assert pages == 10 * -(-per_group // page), pages  # every page once
        assert st["pages"] == pages, (st["pages"], pages)  # none served twice, none lost
        cs.assert_inventory(db, sim, groups_of(sim))


# ---- secrets ----

def test_temporary_secrets_appear_nowhere():
    d = harness.tmpdir()
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("eyJ.oidc.secret-token-value")
    prom = os.path.join(d, "m.prom")
    with Sim("--groups", "2", "--devices", "200", "--oidc-token-file", tok,
             "--credential-lifetime", "2", "--page-cap", "20", "--latency", "20") as sim:
        cfg, db = cfg_for(sim, d, top="metrics_file: %s\n" % prom)
        # v1 signing carries the session token in the query string: it must not leak either
        cfg_v1, _ = cfg_for(sim, d, top="metrics_file: %s\n" % prom, extra_yaml="signature: v1",
                            name="c1.yaml")
        outputs = []
        envs = [imds_env(d, sim),
                base_env(d, {"ALIBABA_CLOUD_STS_ENDPOINT": sim.endpoint, "ALIBABA_CLOUD_ROLE_ARN": ROLE,
                             "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": OIDC_PROVIDER,
                             "ALIBABA_CLOUD_OIDC_TOKEN_FILE": tok}),
                base_env(d, {"ALIBABA_CLOUD_CREDENTIALS_URI": sim.endpoint + "/_sim/credentials-uri"})]
        for env in envs:
            for c, args in ((cfg, ["-vvv", "sync"]), (cfg, ["--log-format", "json", "-vvv", "sync"]),
                            (cfg_v1, ["-vvv", "sync"]), (cfg, ["-vvv", "check", "--online"]),
                            (cfg, ["snapshots"])):
                p = run(["-c", c] + args, env)
                cs.expect(p, 0, " ".join(args))
                outputs.append(p.stdout + p.stderr)
        issued = sim.control("GET", "/_sim/issued")
        needles = issued["secrets"] + issued["imds_tokens"] + ["eyJ.oidc.secret-token-value"]
        assert len(issued["secrets"]) >= 12, issued
        blob = "\n".join(outputs)
        for n in needles:
            assert n not in blob, "a temporary secret or token was printed"
        files = [f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f)) and f != "token"]
        assert any(f.startswith("inv.db") for f in files), files
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                data = fh.read()
            for n in needles:
                assert n.encode() not in data, "a temporary secret or token is in %s" % f


if __name__ == "__main__":
    cs.main([test_ecs_ram_role, test_imds_modes, test_metadata_absent_fails_fast,
             test_default_metadata_address, test_ram_role_arn, test_chain_of_two_roles, test_oidc,
             test_credentials_uri, test_chain_error_lists_every_source, test_refresh_during_crawl,
             test_expired_page_forces_one_renewal, test_renewal_impossible_fails_groups,
             test_two_accounts_one_database, test_big_fleet_on_short_credentials,
             test_temporary_secrets_appear_nowhere])
