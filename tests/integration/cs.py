"""cs.py - credsync-side helpers for the integration tests: configs, running the real
binary with credentials in its environment, and reading the database through the public
SQL relations.  Python 3 standard library only."""
import json
import os
import sqlite3
import subprocess
import sys
import traceback

import harness

SECRET = harness.ACCESS_KEY_SECRET

# The network rule: no test may reach the real ECS metadata address (100.100.100.200) or an
# STS host, not even through the default credential chain.  Every environment a test builds
# starts from this one, which turns the metadata provider off (a test of that provider points
# CREDSYNC_METADATA_ENDPOINT at credsync-sim instead).
NO_METADATA = {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}


def clean_env(extra=None):
    """The test process's environment without any credential variable, metadata disabled."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ALIBABA_CLOUD_", "ALICLOUD_", "CREDSYNC_CONFIG"))}
    env.update(NO_METADATA)
    env.update(extra or {})
    return env


def cred_env(key_id=harness.ACCESS_KEY_ID, secret=SECRET, extra=None):
    env = clean_env()
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = key_id
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = secret
    env.pop("CREDSYNC_CONFIG", None)
    if extra:
        env.update(extra)
    return env


def yaml_str(s):
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def write_config(path, instances, database=None, defaults=None, extra=""):
    """instances: list of dicts with id, endpoint, groups (list or 'all') and any override
    keys (given as YAML text in 'yaml')."""
    lines = []
    if database:
        lines.append("database: %s" % yaml_str(database))
    lines.append("defaults:")
    # the simulator is on loopback: raising the hard cap that guards a real service's per-IP
    # block is the explicit step credsync asks for
    d = {"qps": 1000, "qps_hard_cap": 10000, "concurrency": 4}
    d.update(defaults or {})
    for k, v in d.items():
        lines.append("  %s: %s" % (k, v))
    lines.append("instances:")
    for inst in instances:
        lines.append("  - id: %s" % yaml_str(inst["id"]))
        lines.append("    endpoint: %s" % yaml_str(inst["endpoint"]))
        g = inst["groups"]
        lines.append("    groups: %s" % ("all" if g == "all" else "[" + ", ".join(yaml_str(x) for x in g) + "]"))
        for extra_line in inst.get("yaml", "").splitlines():
            lines.append("    " + extra_line)
    text = "\n".join(lines) + "\n" + extra
    with open(path, "w") as f:
        f.write(text)
    return path


FAST_RETRY = "{max_attempts: 10, base_delay: 10ms, max_delay: 100ms}"


def command():
    """How to start credsync: the binary, behind $CREDSYNC_WRAPPER when set (tests/run.sh
    sets it to valgrind memcheck for one pass of the suite)."""
    wrapper = os.environ.get("CREDSYNC_WRAPPER", "").split()
    return wrapper + [harness.credsync_path()]


def scale(n, minimum=1):
    """A size scaled by $CREDSYNC_TEST_SCALE (the valgrind pass runs smaller fleets)."""
    return max(minimum, int(n * float(os.environ.get("CREDSYNC_TEST_SCALE", "1"))))


def run(args, env=None, timeout=1800, check_secret=True, stdin=None):
    """Runs credsync; returns CompletedProcess with text stdout/stderr.  Fails the test if
    the secret ever appears in what it printed."""
    cmd = command() + [str(a) for a in args]
    p = subprocess.run(cmd, env=env if env is not None else cred_env(), capture_output=True,
                       timeout=timeout, stdin=stdin if stdin is not None else subprocess.DEVNULL)
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    if check_secret:
        for s in (SECRET,):
            assert s not in p.stdout and s not in p.stderr, "the secret was printed by %s" % cmd
    return p


def expect(p, status, what=""):
    assert p.returncode == status, "%s: exit %d, expected %d\nargs: %s\nstdout:\n%s\nstderr:\n%s" % (
        what, p.returncode, status, p.args, p.stdout[-3000:], p.stderr[-3000:])


def query(db, sql, params=()):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def inventory(db):
    """{(instance, group): set(client ids)} of the latest complete snapshots."""
    out = {}
    for inst, grp, cid in query(db, "SELECT instance_id, group_id, client_id FROM current_clients"):
        out.setdefault((inst, grp), set()).add(cid)
    return out


def sim_inventory(sim, only=None):
    out = {}
    for inst, body in sim.dump()["instances"].items():
        for grp, ids in body.get("groups", {}).items():
            if only is None or (inst, grp) in only:
                out[(inst, grp)] = set(ids)
    return out


def assert_inventory(db, sim, groups):
    """The database's current inventory of `groups` equals the simulator's, exactly."""
    got = inventory(db)
    want = sim_inventory(sim, set(groups))
    for key in groups:
        g, w = got.get(key, set()), want.get(key, set())
        assert g == w, "%s/%s: %d stored, %d served; missing %s, extra %s" % (
            key[0], key[1], len(g), len(w), sorted(w - g)[:5], sorted(g - w)[:5])


def snapshots(db, where="1", params=()):
    cols = ["snapshot_id", "run_id", "instance_id", "group_id", "status", "started_at",
            "finished_at", "pages", "client_count", "total_reported", "consistent", "added",
            "removed", "error_code", "error_message"]
    rows = query(db, "SELECT %s FROM snapshots WHERE %s ORDER BY snapshot_id" % (", ".join(cols), where), params)
    return [dict(zip(cols, r)) for r in rows]


def write_dataset(path, data):
    """data: {instance: {group: [ids]}}"""
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"instances": {i: {"groups": g} for i, g in data.items()}}, f, ensure_ascii=False)
    return path


class World:
    """A simulator whose dataset the test edits between syncs (restarting it), a config
    and a database.  Keeps the dataset itself so restarts lose nothing."""

    def __init__(self, groups, instance="mqtt-a"):
        self.instance = instance
        self.dir = harness.tmpdir()
        self.db = os.path.join(self.dir, "inv.db")
        self.data = {self.instance: dict(groups)}
        self.sim = None
        self.faults = []
        self.config_groups = list(groups)
        self.edit(None)

    def write_config(self):
        self.cfg = write_config(os.path.join(self.dir, "c.yaml"), [
            {"id": self.instance, "endpoint": self.sim.endpoint, "groups": self.config_groups}],
            database=self.db)

    def edit(self, fn):
        """fn(data) changes {instance: {group: [ids]}} (None: nothing); the simulator
        restarts with the result and self.faults."""
        if self.sim:
            self.data = {i: {g: list(ids) for g, ids in b["groups"].items()}
                         for i, b in self.sim.dump()["instances"].items()}
            self.sim.stop()
            self.sim = None
        if fn:
            fn(self.data)
        path = write_dataset(os.path.join(self.dir, "data.json"), self.data)
        args = ["--dataset", path]
        for f in self.faults:
            args += ["--fault", f]
        self.sim = harness.Sim(*args).start()
        self.write_config()

    def sync(self, status=0):
        p = run(["-c", self.cfg, "sync"])
        expect(p, status, "sync")
        return p

    def diff(self, *args, status=0):
        p = run(["-c", self.cfg, "diff"] + list(args))
        expect(p, status, "diff %s" % (args,))
        return p

    def diff_json(self, *args):
        p = self.diff("--format", "json", *args)
        doc = json.loads(p.stdout)
        # cJSON must read it exactly as Python does
        c = subprocess.run([tool("json_canon")], input=p.stdout.encode(), capture_output=True)
        assert c.returncode == 0, c.stderr
        assert json.loads(c.stdout.decode()) == doc
        return doc

    def group(self, doc, gid):
        return next(g for g in doc["groups"] if g["group_id"] == gid)

    def close(self):
        if self.sim:
            self.sim.stop()


def tool(name):
    """A helper program built with the tests (tests/tools)."""
    return os.path.join(os.environ.get("CREDSYNC_TOOLS", os.path.join(harness.BUILD, "bin")), name)


def main(tests):
    """Runs test functions in order; prints each result; exits 1 if any failed."""
    only = sys.argv[1:]
    failed = 0
    for t in tests:
        if only and t.__name__ not in only:
            continue
        try:
            t()
            print("ok   %s" % t.__name__, flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % t.__name__, flush=True)
            traceback.print_exc()
    print("%d test(s) failed" % failed if failed else "all passed", flush=True)
    sys.exit(1 if failed else 0)
