"""Trust (issue 14): exit 0 means a complete inventory, whatever the server, the disk or the
neighbours do.  Small scripted servers on 127.0.0.1 (the FakeService of test_hostile.py) and
credsync-sim play a service that answers short walks, pages forever, echoes the session token;
the database is reached through symlinks and hard links, replaced by another application's
SQLite file, damaged.  The cases that need root (tmpfs, another user) are test_trust_priv.py."""
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time

import cs
import harness
from test_hostile import FakeService

INST = "mqtt-t"
GID = "GID_t"
FAST = "retry: {max_attempts: 3, base_delay: 1ms, max_delay: 5ms, deadline: 60s}\ntimeout: {connect: 2s, request: 5s}"


def ids(n, start=0):
    return ["%s@@@dev-%05d" % (GID, i) for i in range(start, start + n)]


def body(lst, total, page_no, size, token):
    d = {"Total": str(total), "ClientIdList": lst, "PageNo": str(page_no), "PageSize": str(size)}
    if token:
        d["NextToken"] = token
    return json.dumps({"RequestId": "R-%d" % page_no, "DeviceCredentialClientIdList": d}).encode()


class Listing:
    """A group served by PageNo, 100 per page, with a NextToken on every page but the last.
    .served is the list it serves now, .total the Total it claims (None: the truth),
    .pages (when set) a list of explicit pages that replaces .served.  Every request's
    (PageNo, NextToken) is kept in .asked."""

    def __init__(self, served):
        self.served = list(served)
        self.total = None
        self.pages = None
        self.asked = []
        self.lock = threading.Lock()

    def __call__(self, n, q):
        page_no = int(q.get("PageNo", "1"))
        with self.lock:
            self.asked.append((page_no, q.get("NextToken")))
        size = 100
        if self.pages is not None:
            chunks = self.pages
        else:
            chunks = [self.served[i:i + size] for i in range(0, len(self.served), size)]
        total = len(self.served) if self.total is None else self.total
        i = page_no - 1
        lst = chunks[i] if 0 <= i < len(chunks) else []
        token = "tok-%d" % (page_no + 1) if i + 1 < len(chunks) else None
        return 200, body(lst, total, page_no, size, token), {}


def config(d, port, db, inst_yaml="", extra="", defaults=None):
    return cs.write_config(os.path.join(d, "c.yaml"), [
        {"id": INST, "endpoint": "http://127.0.0.1:%d" % port, "groups": [GID],
         "yaml": FAST + ("\n" + inst_yaml if inst_yaml else "")}], database=db, extra=extra,
        defaults=defaults)


def members(db, snapshot_id=None):
    if snapshot_id is None:
        return {r[0] for r in cs.query(db, "SELECT client_id FROM current_clients")}
    return {r[0] for r in cs.query(db, "SELECT client_id FROM snapshot_clients WHERE snapshot_id = ?",
                                   (snapshot_id,))}


def changes(db):
    return cs.query(db, "SELECT snapshot_id, change, client_id FROM changes ORDER BY 1, 2, 3")


def diff_summary(cfg):
    p = cs.run(["-c", cfg, "diff", "--format", "json"])
    cs.expect(p, 0, "diff")
    return json.loads(p.stdout)["summary"]


# (name, how the second walk is served, consistency_tolerance line or None for the default,
#  expected: "fail" (IncompleteWalk) or the set of IDs the walk saw)
SEED = 500


def _short(k):
    def change(L):
        L.served, L.total = ids(SEED - k), SEED
    return change


def _empty(L):
    L.served, L.total = [], SEED


def _early(L):
    L.pages, L.total = [ids(100)], SEED     # page 1 full, page 2 empty: the walk ends


def _over(L):
    L.served = ids(SEED + 1)                # one more than the Total it claims
    L.total = SEED


SHORT_CASES = [
    # name, change, tolerance, verdict, collected distinct
    ("empty list, Total 500", _empty, None, "fail", 0),
    ("empty list, Total 500, tolerance 100%", _empty, "consistency_tolerance: \"100%\"", "fail", 0),
    ("early end: page 1 full, page 2 empty", _early, None, "fail", 100),
    ("one short (default tolerance 1)", _short(1), None, "ok", SEED - 1),
    ("one short, tolerance 0", _short(1), "consistency_tolerance: 0", "fail", SEED - 1),
    ("three short (beyond the default)", _short(3), None, "fail", SEED - 3),
    ("three short, tolerance 5", _short(3), "consistency_tolerance: 5", "ok", SEED - 3),
    ("three short, tolerance 5 in defaults", _short(3), "defaults: 5", "ok", SEED - 3),
    ("five short, tolerance 1%", _short(5), "consistency_tolerance: \"1%\"", "ok", SEED - 5),
    ("six short, tolerance 1%", _short(6), "consistency_tolerance: \"1%\"", "fail", SEED - 6),
    ("one over", _over, None, "ok", SEED + 1),
]


def test_short_walks():
    """Seed 500, then serve the group short (or over) in several shapes: removals are never
    recorded from such a walk; beyond the tolerance the group fails IncompleteWalk."""
    failures = []
    cases = SHORT_CASES
    if os.environ.get("CREDSYNC_WRAPPER"):
        # under valgrind a run costs seconds: one shape of each path (the plain pass runs all)
        cases = [c for c in SHORT_CASES if c[0] in WRAPPED_SHORT_CASES]
        print("note: %d of %d short-walk shapes under $CREDSYNC_WRAPPER" % (len(cases), len(SHORT_CASES)))
    template = _seeded_template()
    for case in cases:
        try:
            _short_walk(template, *case)
        except AssertionError as e:
            failures.append("%s: %s" % (case[0], str(e)[:1500]))
    assert not failures, "%d of %d cases failed:\n" % (len(failures), len(SHORT_CASES)) + "\n".join(failures)


def _seeded_template():
    """A database after one good walk of SEED IDs (copied for each case)."""
    d = harness.tmpdir()
    svc = FakeService(Listing(ids(SEED)))
    try:
        db = os.path.join(d, "inv.db")
        cs.expect(cs.run(["-c", config(d, svc.port, db), "sync"]), 0, "seed")
    finally:
        svc.close()
    seed, = cs.snapshots(db)
    assert seed["status"] == "complete" and seed["consistent"] == 1 and seed["client_count"] == SEED, seed
    con = sqlite3.connect(db)         # everything into the main file, which is what is copied
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return db


WRAPPED_SHORT_CASES = ("early end: page 1 full, page 2 empty", "one short (default tolerance 1)",
                       "five short, tolerance 1%", "one over")


def _short_walk(template, name, change, tol, verdict, distinct):
    d = harness.tmpdir()
    L = Listing(ids(SEED))
    svc = FakeService(L)
    try:
        db = os.path.join(d, "inv.db")
        shutil.copyfile(template, db)
        if tol and tol.startswith("defaults: "):
            cfg = config(d, svc.port, db, defaults={"consistency_tolerance": tol[len("defaults: "):]})
        else:
            cfg = config(d, svc.port, db, inst_yaml=tol or "")
        before_members, before_changes = members(db), changes(db)
        assert len(before_members) == SEED
        change(L)
        L.asked.clear()
        p = cs.run(["-c", cfg, "sync"])
        s = cs.snapshots(db)[-1]
        # a mismatch is walked once more before the verdict
        assert len([a for a in L.asked if a[0] == 1]) == 2, (name, "expected two walks", L.asked)
        if verdict == "fail":
            cs.expect(p, 1, name)
            assert s["status"] == "failed" and s["error_code"] == "IncompleteWalk", (name, s)
            msg = s["error_message"] or ""
            assert ("collected %d distinct client IDs" % distinct) in msg and "Total %d" % SEED in msg, (name, msg)
            assert members(db) == before_members, name
            assert changes(db) == before_changes, name
            run, = cs.query(db, "SELECT status FROM runs ORDER BY run_id DESC LIMIT 1")
            assert run[0] != "complete", (name, run)
        else:
            cs.expect(p, 0, name)
            assert s["status"] == "complete" and s["consistent"] == 0, (name, s)
            assert "consistent = 0" in p.stderr, (name, p.stderr)
            assert s["removed"] == 0, (name, s)
            new = set(ids(SEED + 1)) - before_members if distinct > SEED else set()
            assert s["added"] == len(new), (name, s)
            # members the walk missed are carried forward, not removed
            want = before_members | new
            assert members(db) == want, (name, len(members(db)))
            assert members(db, s["snapshot_id"]) == want, name
            assert s["client_count"] == len(want), (name, s)
            assert changes(db) == sorted(before_changes + [(s["snapshot_id"], "added", x) for x in new]), name
        summary = diff_summary(cfg)
        assert summary["removed"] == 0, (name, summary)
        if name.startswith("one short (default"):
            # a consistent walk later records the removal the short walk could not
            L.total = None
            cs.expect(cs.run(["-c", cfg, "sync"]), 0, name + ": consistent walk")
            s = cs.snapshots(db)[-1]
            assert s["consistent"] == 1 and s["removed"] == 1, (name, s)
            assert members(db) == set(ids(SEED - 1)), name
    finally:
        svc.close()


def test_same_page_forever():
    """The same page again and again with a fresh NextToken and a huge Total: PagingLoop in
    seconds, nothing much stored, and the next run starts over at page 1."""
    d = harness.tmpdir()
    same = ids(100)
    asked = []

    def fn(n, q):
        asked.append((int(q.get("PageNo", "1")), q.get("NextToken")))
        return 200, body(same, "999999999999", int(q.get("PageNo", "1")), 100, "fresh-%d" % n), {}
    svc = FakeService(fn)
    try:
        db = os.path.join(d, "inv.db")
        cfg = config(d, svc.port, db)
        t0 = time.monotonic()
        try:
            p = cs.run(["-c", cfg, "sync"], timeout=40)
        except subprocess.TimeoutExpired:
            raise AssertionError("still paging after 40 s (%d requests)" % svc.requests)
        elapsed = time.monotonic() - t0
        cs.expect(p, 1, "same page forever")
        assert elapsed < 10, "took %.1f s, %d requests" % (elapsed, svc.requests)
        s = cs.snapshots(db)[-1]
        assert s["status"] == "failed" and s["error_code"] == "PagingLoop", s
        size = sum(os.path.getsize(db + x) for x in ("", "-wal") if os.path.exists(db + x))
        assert size < 2 << 20, "database and WAL hold %d bytes" % size
        assert cs.query(db, "SELECT count(*) FROM cs_stage") == [(0,)], "staged pages kept"
        assert members(db) == set()
        asked.clear()
        p = cs.run(["-c", cfg, "sync"], timeout=40)
        cs.expect(p, 1, "same page forever, second run")
        assert asked and asked[0] == (1, None), ("resumed the loop", asked[:3])
    finally:
        svc.close()


def test_page_cycle():
    """A long cycle of pages (each new for a while, then the same 40 pages again), fresh
    tokens, a huge Total: no new ID for a few pages is PagingLoop, whatever the window."""
    d = harness.tmpdir()
    cycle = 40

    def fn(n, q):
        no = int(q.get("PageNo", "1"))
        return 200, body(ids(100, start=100 * ((n - 1) % cycle)), "999999999999", no, 100, "c-%d" % n), {}
    svc = FakeService(fn)
    try:
        db = os.path.join(d, "inv.db")
        cfg = config(d, svc.port, db)
        try:
            p = cs.run(["-c", cfg, "sync"], timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError("still paging after 20 s (%d requests)" % svc.requests)
        cs.expect(p, 1, "page cycle")
        s = cs.snapshots(db)[-1]
        assert s["status"] == "failed" and s["error_code"] == "PagingLoop", s
        assert svc.requests <= 2 * (cycle + 4), svc.requests
        assert cs.query(db, "SELECT count(*) FROM cs_stage") == [(0,)], "staged pages kept"
    finally:
        svc.close()


def test_page_ceiling():
    """Every page new IDs, a fresh token, a huge Total: max_pages stops the walk."""
    d = harness.tmpdir()

    def fn(n, q):
        no = int(q.get("PageNo", "1"))
        return 200, body(ids(100, start=100 * n), "999999999999", no, 100, "t-%d" % n), {}
    svc = FakeService(fn)
    try:
        db = os.path.join(d, "inv.db")
        cfg = config(d, svc.port, db, inst_yaml="max_pages: 20")
        try:
            p = cs.run(["-c", cfg, "sync"], timeout=40)
        except subprocess.TimeoutExpired:
            raise AssertionError("still paging after 40 s (%d requests)" % svc.requests)
        cs.expect(p, 1, "max_pages")
        s = cs.snapshots(db)[-1]
        assert s["status"] == "failed" and s["error_code"] == "PagingLoop", s
        assert svc.requests <= 2 * 20 + 2, svc.requests
        assert cs.query(db, "SELECT count(*) FROM cs_stage") == [(0,)], "staged pages kept"
    finally:
        svc.close()


class Gated(Listing):
    """A Listing whose answers wait (at most 60 s) until .gate is set: a server as slow as
    the test needs, whatever the machine's speed."""

    def __init__(self, served):
        super().__init__(served)
        self.gate = threading.Event()
        self.arrived = threading.Event()

    def __call__(self, n, q):
        self.arrived.set()
        self.gate.wait(60)
        return super().__call__(n, q)


def test_lock_follows_the_file():
    """The same file through a symlink and through dir/../dir shares the first run's lock."""
    d = harness.tmpdir()
    n = 300
    L = Gated(ids(n))
    svc = FakeService(L)
    try:
        sub = os.path.join(d, "data")
        os.mkdir(sub)
        db = os.path.join(sub, "inv.db")
        cfg = config(d, svc.port, db)
        link = os.path.join(d, "link.db")
        os.symlink(db, link)
        dotdot = os.path.join(sub, "..", "data", "inv.db")
        # the first sync holds the lock while its first request waits for the gate
        proc = subprocess.Popen(cs.command() + ["-c", cfg, "sync"], env=cs.cred_env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert L.arrived.wait(60), "the first sync sent nothing in 60 s"
            for other in (link, dotdot):
                p = cs.run(["-c", cfg, "-d", other, "sync"])
                cs.expect(p, 75, "second sync through %s" % other)
                assert proc.poll() is None, "the first sync ended before the second was tried"
        finally:
            L.gate.set()
            out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        s, = cs.snapshots(db)
        assert s["status"] == "complete" and s["error_code"] is None and s["client_count"] == n, s
    finally:
        L.gate.set()
        svc.close()


def test_hard_link_refused():
    """A second name for the same file (a hard link): SQLite's WAL and lock files go by name,
    so either name is refused before anything is written."""
    d = harness.tmpdir()
    with harness.Sim("--instances", "1", "--groups", "1", "--devices", 300) as sim:
        sub = os.path.join(d, "data")
        os.mkdir(sub)
        db = os.path.join(sub, "inv.db")
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": ["GID_sim_1"]}], database=db)
        cs.expect(cs.run(["-c", cfg, "sync"]), 0, "seed")
        sim.mutate(add=10)
        hard = os.path.join(d, "hard.db")
        os.link(db, hard)
        for name in (hard, db):
            before = _digest(db)
            files = sorted(os.listdir(sub)), sorted(os.listdir(d))
            had = {x for x in (hard + "-wal", hard + "-shm", db + "-wal", db + "-shm") if os.path.exists(x)}
            sim.reset_stats()
            p = cs.run(["-c", cfg, "-d", name, "sync"])
            cs.expect(p, 1, "sync of a hard-linked database")
            assert "hard link" in p.stderr, p.stderr
            assert _digest(db) == before, "the hard-linked database was written"
            assert sim.stats()["requests"] == 0
            now = {x for x in (hard + "-wal", hard + "-shm", db + "-wal", db + "-shm") if os.path.exists(x)}
            assert now <= had, ("created", now - had, files)


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _foreign(path, user_version, application_id=0):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)")
    con.executemany("INSERT INTO accounts (name) VALUES (?)", [("user-%d" % i,) for i in range(50)])
    con.execute("CREATE TABLE notes (body TEXT)")
    con.execute("PRAGMA user_version = %d" % user_version)
    if application_id:
        con.execute("PRAGMA application_id = %d" % application_id)
    con.commit()
    con.close()


def test_foreign_sqlite_file_untouched():
    d = harness.tmpdir()
    svc = FakeService(Listing(ids(10)))
    try:
        wrapped = bool(os.environ.get("CREDSYNC_WRAPPER"))
        for uv, app in ((0, 0), (1, 0), (0, 0x12345678), (1, 0x12345678)):
            sub = harness.tmpdir()
            db = os.path.join(sub, "other.db")
            _foreign(db, uv, app)
            cfg = config(d, svc.port, db)
            before = _digest(db)
            # under valgrind (slow) sync alone stands for the commands after the first file
            cmds = [["sync"], ["diff"], ["snapshots"], ["check"]]
            for cmd in cmds[:1] if wrapped and (uv, app) != (0, 0) else cmds:
                p = cs.run(["-c", cfg] + cmd)
                what = "%s on a foreign file (user_version %d, application_id %#x)" % (cmd[0], uv, app)
                cs.expect(p, 1, what)
                # check reports on stdout, the others on stderr
                assert "not a credsync database" in p.stdout + p.stderr, (what, p.stdout, p.stderr)
                assert _digest(db) == before, what + ": the file changed"
                left = sorted(f for f in os.listdir(sub) if f.startswith("other.db-"))
                assert left == [], (what, left)
        assert svc.requests == 0, svc.requests
        # an old credsync database (user_version 1, exactly the 001 tables, no application_id)
        # is credsync's own: it is migrated and used
        db = os.path.join(d, "old.db")
        schema = os.path.join(os.environ.get("CREDSYNC_SOURCE_DIR", os.path.join(harness.HERE, "..", "..")),
                              "schema", "001_initial.sql")
        con = sqlite3.connect(db)
        with open(schema) as f:
            con.executescript(f.read())
        con.execute("PRAGMA user_version = 1")
        con.commit()
        con.close()
        cfg = config(d, svc.port, db)
        cs.expect(cs.run(["-c", cfg, "sync"]), 0, "sync into an old credsync database")
        assert members(db) == set(ids(10))
        # an empty file is adopted
        db = os.path.join(d, "empty.db")
        open(db, "w").close()
        cfg = config(d, svc.port, db)
        cs.expect(cs.run(["-c", cfg, "sync"]), 0, "sync into an empty file")
        assert members(db) == set(ids(10))
        assert cs.query(db, "PRAGMA application_id") == [(0x43525359,)]
    finally:
        svc.close()


def test_damage_found_before_any_request():
    d = harness.tmpdir()
    n = cs.scale(5000, 2000)
    with harness.Sim("--instances", "1", "--groups", "1", "--devices", n) as sim:
        db = os.path.join(d, "inv.db")
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": ["GID_sim_1"]}], database=db)
        cs.expect(cs.run(["-c", cfg, "sync"]), 0, "seed")
        con = sqlite3.connect(db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pgsize = con.execute("PRAGMA page_size").fetchone()[0]
        pages = [r[0] for r in con.execute(
            "SELECT pageno FROM dbstat WHERE name = 'cs_interval' AND pagetype = 'leaf' ORDER BY pageno")]
        con.close()
        assert len(pages) >= 5, pages
        victim = pages[len(pages) // 2]
        with open(db, "r+b") as f:      # the middle of a leaf page of cs_interval: its cells
            f.seek((victim - 1) * pgsize + 8)
            f.write(b"\xa5" * (pgsize // 2))
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
        qc = con.execute("PRAGMA quick_check").fetchall()
        con.close()
        assert qc != [("ok",)], "the damage is not visible to quick_check; the test is wrong"
        sim.reset_stats()
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 1, "sync into a damaged database")
        assert "damaged" in p.stderr, p.stderr
        assert sim.stats()["requests"] == 0, "requests sent before the damage was found: %d" % sim.stats()["requests"]
        p = cs.run(["-c", cfg, "check"])
        assert p.returncode != 0, "check passed a damaged database:\n" + p.stdout + p.stderr
        assert "quick_check" in p.stdout + p.stderr, p.stdout + p.stderr


TOKEN = "CAIS+stsTok/Zq9xWv8Kp3==Lm2Tr5Hg"
SECRET = "Sk3t+cr/Et=Qy7Pw4Nz"


def _forms(s):
    one = harness.pct(s)
    return [s, one, harness.pct(one)] + [p for p in s.replace("+", " ").replace("/", " ").replace("=", " ").split() if len(p) >= 6]


def test_echoed_token_found_nowhere():
    """SignatureDoesNotMatch whose Message quotes the string-to-sign (with the
    SecurityToken), the raw token and the secret: none of them is printed, logged or stored."""
    d = harness.tmpdir()

    sent = []

    def fn(n, q):
        sent.append(q.get("SecurityToken"))
        params = {k: v for k, v in q.items() if k != "Signature"}
        sts = harness.v1_string_to_sign("POST", params)
        msg = ("Specified signature is not matched with our calculation (token %s, key %s). "
               "server string to sign is:%s" % (TOKEN, harness.pct(SECRET), sts))
        return 400, json.dumps({"RequestId": "REQ-SIG", "HostId": "h", "Code": "SignatureDoesNotMatch",
                                "Message": msg, "Recommend": "r"}).encode(), {}
    svc = FakeService(fn)
    try:
        db = os.path.join(d, "inv.db")
        prom = os.path.join(d, "m.prom")
        cfg = config(d, svc.port, db, inst_yaml="signature: v1", extra="metrics_file: %s\n" % prom)
        env = cs.cred_env(secret=SECRET, extra={"ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN})
        outputs = []
        for args in (["-vvv", "sync"], ["--log-format", "json", "-vvv", "sync"]):
            p = cs.run(["-c", cfg] + args, env=env, check_secret=False)
            assert p.returncode in (1, 77), (args, p.returncode, p.stderr[-2000:])
            assert "SignatureDoesNotMatch" in p.stderr, p.stderr[-2000:]
            outputs += [("stdout of %s" % args, p.stdout), ("stderr of %s" % args, p.stderr)]
        assert svc.requests >= 2
        assert TOKEN in sent, ("the token was not sent as SecurityToken", sent[:2])
        for args in (["snapshots"], ["snapshots", "--format", "json"], ["diff"]):
            p = cs.run(["-c", cfg] + args, env=env, check_secret=False)
            outputs += [("stdout of %s" % args, p.stdout), ("stderr of %s" % args, p.stderr)]
        s = cs.snapshots(db)[-1]
        assert s["error_code"] == "SignatureDoesNotMatch", s
        for path in (db, db + "-wal", db + ".lock", prom):
            if os.path.exists(path):
                with open(path, "rb") as f:
                    outputs.append((path, f.read().decode("latin-1")))
        assert os.path.exists(prom)
        for where, text in outputs:
            for form in _forms(TOKEN) + _forms(SECRET):
                assert form not in text, "%r found in %s:\n%s" % (form, where, text[-1500:])
        # scrubbed, not dropped: the message keeps its RequestId and marks what it hid
        assert "***" in (s["error_message"] or ""), s
        assert "REQ-SIG" in (s["error_message"] or "") + outputs[1][1], (s, outputs[1][1][-1000:])
    finally:
        svc.close()


def wal_size(db):
    """The WAL's size: 0 when it was truncated, or removed with the last connection."""
    return os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0


def test_wal_growth_warns_about_a_reader():
    """A reader holding an old snapshot keeps the WAL from shrinking: the sync says so, naming
    the cause; without the reader the WAL is copied back and truncated, and nothing is said."""
    from harness import Sim
    d = harness.tmpdir()
    n = cs.scale(40000, 8000)
    with Sim("--instances", "1", "--groups", "2", "--devices", str(n)) as sim:
        db = os.path.join(d, "inv.db")
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": ["GID_sim_1", "GID_sim_2"]}],
            database=db)
        env = cs.cred_env(extra={"CREDSYNC_WAL_WARN_MIB": "1"})
        p = cs.run(["-c", cfg, "sync"], env=env)
        cs.expect(p, 0, "first sync")
        assert "write-ahead log" not in p.stderr, p.stderr[-1500:]
        assert wal_size(db) == 0, wal_size(db)
        sim.mutate(add=n // 2, remove=n // 4)
        reader = sqlite3.connect(db, timeout=5)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM snapshot_clients").fetchone()
            p = cs.run(["-c", cfg, "sync"], env=env)
            cs.expect(p, 0, "sync beside a long reader")
            assert "cannot shrink" in p.stderr and "read snapshot" in p.stderr, p.stderr[-1500:]
        finally:
            reader.close()
        p = cs.run(["-c", cfg, "sync"], env=env)
        cs.expect(p, 0, "sync after the reader closed")
        assert "cannot shrink" not in p.stderr, p.stderr[-1500:]
        assert wal_size(db) == 0, wal_size(db)


if __name__ == "__main__":
    cs.main([test_wal_growth_warns_about_a_reader, test_short_walks, test_same_page_forever, test_page_cycle, test_page_ceiling,
             test_lock_follows_the_file, test_hard_link_refused, test_foreign_sqlite_file_untouched,
             test_damage_found_before_any_request, test_echoed_token_found_nowhere])
