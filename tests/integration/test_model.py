"""A randomized model test (issue 16): seeded sequences of adds, removes, re-adds, emptied,
absent and refused groups, syncs, SIGKILLs at random moments, dry runs and prunes, each step
checked against a full copy in Python of every complete snapshot: members, `changes`, diffs
between random REFs, first_seen_at, ids never reused, run rows.

What the model encodes (README, history.c):
- a snapshot's `changes` are against the group's latest complete snapshot when it was made
  (every member 'added' for a group's first) and never change afterwards, prune or not;
- a REF resolves per group: an id to itself (it pins the diff to its group; a missing or
  failed one is a usage error), run:N to the latest complete snapshot of a run <= N, a time
  to the latest complete snapshot read (crawl_finished_at) at or before it, latest, and
  previous (the one before the other side, or before latest);
- prune --keep-last N deletes snapshots (of any status but running) that have N or more
  newer complete snapshots in their group, --older-than those finished before the cut;
  never a group's latest complete one nor one a checkpoint resumes; then runs left without
  snapshots;
- first_seen_at is the time a client was first seen in its group, forever.

CREDSYNC_MODEL_SEEDS="1,2,3" (or "1-50") and CREDSYNC_MODEL_STEPS override the fixed list.
Run as a script with --report it prints how many sequences passed (tests/bench/bench.py
--only model)."""
import calendar
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import traceback

import cs
import harness
from harness import Sim

INST = "mqtt-m"
GROUPS = ["GID_m1", "GID_m2", "GID_m3", "GID_m4"]
VALGRIND = "valgrind" in os.environ.get("CREDSYNC_WRAPPER", "")
CI_SEEDS = [11] if VALGRIND else [11, 23, 37, 41]
CI_STEPS = 8 if VALGRIND else 24


def epoch(iso):
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Failure(AssertionError):
    pass


class Model:
    def __init__(self, seed, steps):
        self.seed, self.steps = seed, steps
        self.rng = random.Random(seed)
        self.dir = harness.tmpdir()
        self.db = os.path.join(self.dir, "inv.db")
        self.data = {g: ["%s@@@dev-%03d" % (g, i) for i in range(self.rng.randint(0, 25))]
                     for g in GROUPS}
        self.absent, self.refused = set(), set()
        self.removed = {g: [] for g in GROUPS}      # ids once served and then removed
        self.counter = 1000
        self.sim = None
        self.snaps = {}        # snapshot_id -> dict(group, run, status, members, added, removed, read)
        self.gone = set()      # ids pruned
        self.runs = {}         # run_id -> dict(status, ok, failed, requests) as checked
        self.killed = {}       # run_id -> served requests while it ran, to check after repair
        self.high_run = self.high_snap = 0
        self.seen_ids = set()  # every snapshot id the database ever showed
        self.groups_known = set()
        self.first_seen = {}   # (group, client) -> first_seen_at
        self.pending = False   # a killed run may have left checkpoints: no data edit until a sync
        self.log = []
        self.read_col = None
        self.t_start = int(time.time())
        self.churn = False     # the simulator changes groups while they are walked
        self.restart()

    # ---- the world -------------------------------------------------------------------
    def restart(self):
        if self.sim:
            self.sim.stop()
        path = cs.write_dataset(os.path.join(self.dir, "data.json"),
                                {INST: {g: ids for g, ids in self.data.items() if g not in self.absent}})
        args = ["--dataset", path, "--latency", "1"]
        for g in sorted(self.refused):
            args += ["--fault", "PermissionCheckFailed=1@%s/%s" % (INST, g)]
        if self.churn:
            args += ["--churn-during-crawl", "0.5", "--seed", str(self.rng.randint(1, 1 << 30))]
        self.sim = Sim(*args).start()
        self.cfg = cs.write_config(os.path.join(self.dir, "c.yaml"), [
            {"id": INST, "endpoint": self.sim.endpoint, "groups": GROUPS}], database=self.db,
            defaults={"page_size": 4, "concurrency": 2, "retry": cs.FAST_RETRY})

    def served(self):
        """{group: set} of what a complete walk would see now; refused/absent groups omitted."""
        return {g: set(ids) for g, ids in self.data.items()
                if g not in self.absent and g not in self.refused}

    def mutate(self):
        r = self.rng
        g = r.choice(GROUPS)
        kind = r.choice(["add", "remove", "mutate", "readd", "empty", "absent", "refuse", "restore",
                         "add", "mutate", "readd"])
        ids = self.data[g]
        if kind == "add":
            for _ in range(r.randint(1, 6)):
                self.counter += 1
                ids.append("%s@@@dev-%d" % (g, self.counter))
        elif kind == "remove" and ids:
            for x in r.sample(ids, r.randint(1, min(4, len(ids)))):
                ids.remove(x)
                self.removed[g].append(x)
        elif kind == "readd" and [x for x in self.removed[g] if x not in ids]:
            x = r.choice([x for x in self.removed[g] if x not in ids])
            self.removed[g].remove(x)
            ids.append(x)
        elif kind == "empty":
            self.removed[g].extend(ids)
            del ids[:]
        elif kind == "absent":
            self.absent.add(g)
        elif kind == "refuse":
            self.refused.add(g)
        elif kind == "restore":
            self.absent.discard(g)
            self.refused.discard(g)
        elif kind == "mutate" and g not in self.absent:
            # through the simulator's control endpoint, without a restart
            res = self.sim.mutate(add=r.randint(0, 3), remove=r.randint(0, 2), instance=INST, group=g)
            for x in res["removed"]:
                ids.remove(x)
                self.removed[g].append(x)
            ids.extend(res["added"])
            self.removed[g] = [x for x in self.removed[g] if x not in res["added"]]
            self.note("mutate %s via /_sim/mutate: +%d -%d" % (g, len(res["added"]), len(res["removed"])))
            return
        else:
            return
        self.note("%s %s" % (kind, g))
        self.restart()

    def note(self, what):
        self.log.append(what)

    def fail(self, what):
        raise Failure("seed %d step %d (%s): %s\nsteps: %s" % (
            self.seed, len(self.log), self.log[-1] if self.log else "-", what,
            "; ".join(self.log)))

    def check(self, cond, what):
        if not cond:
            self.fail(what)

    # ---- reading the database --------------------------------------------------------
    def q(self, sql, params=()):
        return cs.query(self.db, sql, params)

    def read_column(self):
        if self.read_col is None:
            cols = [r[1] for r in self.q("PRAGMA table_info(snapshots)")]
            self.read_col = "crawl_finished_at" if "crawl_finished_at" in cols else "finished_at"
        return self.read_col

    def has_schema(self):
        if not os.path.exists(self.db):
            return False
        try:
            return bool(self.q("SELECT 1 FROM sqlite_master WHERE name = 'snapshots'"))
        except sqlite3.Error:
            return False

    def db_snaps(self):
        if not self.has_schema():
            return {}
        rows = self.q("SELECT snapshot_id, run_id, group_id, status, client_count, added, removed,"
                      " error_code, %s FROM snapshots" % self.read_column())
        return {r[0]: dict(run=r[1], group=r[2], status=r[3], count=r[4], added=r[5], removed=r[6],
                           code=r[7], read=r[8]) for r in rows}

    def members(self, sid):
        return {r[0] for r in self.q("SELECT client_id FROM snapshot_clients WHERE snapshot_id = ?", (sid,))}

    def latest_complete(self, g, below=None):
        ids = [s for s, v in self.snaps.items() if v["group"] == g and v["status"] == "complete"
               and s not in self.gone and (below is None or s < below)]
        return max(ids) if ids else None

    def learn_new(self, run_id, served, expect_all, adopt=False):
        """Reads the snapshots the database has and the model does not; checks ids, contents
        and changes against what the simulator served.  expect_all: every configured group
        has a snapshot of run_id."""
        db = self.db_snaps()
        for s in db:
            self.check(s not in self.gone, "snapshot id %d handed out again after it was pruned" % s)
        new = sorted(s for s in db if s not in self.snaps)
        for s in new:
            if s not in self.seen_ids:
                self.check(s > self.high_snap, "snapshot id %d reused (highest ever %d)" % (s, self.high_snap))
                self.high_snap = s
                self.seen_ids.add(s)
            self.groups_known.add(db[s]["group"])
        for s in new:
            v = db[s]
            g = v["group"]
            if v["status"] == "running":
                continue         # a killed run's: learnt when the next run marks it
            rec = dict(group=g, run=v["run"], status=v["status"], read=v["read"], code=v["code"])
            if v["status"] == "complete":
                self.check(g in served, "snapshot %d of %s complete, the group is refused" % (s, g))
                got = self.members(s)
                prev = self.latest_complete(g)
                before = self.snaps[prev]["members"] if prev else set()
                consistent = self.q("SELECT consistent FROM snapshots WHERE snapshot_id = ?", (s,))[0][0]
                if not adopt:
                    self.check(consistent == 1, "snapshot %d of %s: consistent = %s, the data stood still" % (
                        s, g, consistent))
                    self.check(got == served[g], "snapshot %d of %s: %d members, served %d; extra %s missing %s" % (
                        s, g, len(got), len(served[g]), sorted(got - served[g])[:3], sorted(served[g] - got)[:3]))
                if consistent == 0:
                    # a walk that does not add up proves no removal: the members of the
                    # previous snapshot it did not see are carried forward
                    self.check(got >= before, "snapshot %d of %s (consistent = 0) lost %s" % (
                        s, g, sorted(before - got)[:3]))
                rec.update(members=got, added=got - before,
                           removed=before - got if prev and consistent == 1 else set())
                for c in got:
                    key = (g, c)
                    if key not in self.first_seen:
                        fs = self.q("SELECT first_seen_at FROM current_clients WHERE group_id = ? AND client_id = ?",
                                    (g, c))
                        self.check(fs, "%s in snapshot %d but not in current_clients" % (c, s))
                        self.check(self.t_start - 1 <= epoch(fs[0][0]) <= time.time() + 1,
                                   "%s first seen at %s, outside the sequence (%s..now)" % (
                                       c, fs[0][0], iso(self.t_start)))
                        self.first_seen[key] = fs[0][0]
            else:
                # with churn: a walk short of Total beyond the tolerance, or a page of IDs the
                # walk already had (a full last page has no NextToken, and the PageNo after
                # it overlaps what the keyset pages gave once IDs were added in front)
                self.check(v["code"] in ("PermissionCheckFailed", "Interrupted") or (
                               adopt and v["code"] in ("IncompleteWalk", "PagingLoop")),
                           "snapshot %d of %s failed with %s: %s" % (s, g, v["code"], self.q(
                               "SELECT error_message FROM snapshots WHERE snapshot_id = ?", (s,))[0][0]))
                if v["code"] == "PermissionCheckFailed":
                    self.check(g not in served, "snapshot %d of %s failed, the group is served" % (s, g))
            self.snaps[s] = rec
            self.groups_known.add(g)
        if expect_all:
            mine = {self.snaps[s]["group"]: s for s in new if s in self.snaps and self.snaps[s]["run"] == run_id}
            self.check(set(mine) == set(GROUPS), "run %d has snapshots of %s, expected every group" % (
                run_id, sorted(mine)))

    # ---- the full check after each step ----------------------------------------------
    def full_check(self):
        db = self.db_snaps()
        live = {s for s in self.snaps if s not in self.gone}
        running = {s for s, v in db.items() if v["status"] == "running"}
        self.check(set(db) - running == live, "snapshot ids %s in the database, model %s" % (
            sorted(set(db) - running), sorted(live)))
        for s in live:
            m, v = self.snaps[s], db[s]
            self.check(v["status"] == m["status"] and v["group"] == m["group"] and v["run"] == m["run"],
                       "snapshot %d is %s/%s/run %s, model %s/%s/run %s" % (
                           s, v["status"], v["group"], v["run"], m["status"], m["group"], m["run"]))
            if m["status"] != "complete":
                continue
            got = self.members(s)
            self.check(got == m["members"], "snapshot %d members changed: extra %s missing %s" % (
                s, sorted(got - m["members"])[:3], sorted(m["members"] - got)[:3]))
            self.check(v["count"] == len(m["members"]), "snapshot %d client_count %s, %d members" % (
                s, v["count"], len(m["members"])))
            ch = self.q("SELECT change, client_id, at FROM changes WHERE snapshot_id = ?", (s,))
            add = {c for k, c, _ in ch if k == "added"}
            rem = {c for k, c, _ in ch if k == "removed"}
            self.check(add == m["added"] and rem == m["removed"],
                       "changes of snapshot %d: +%d -%d, model +%d -%d (added extra %s missing %s; removed extra %s missing %s)" % (
                           s, len(add), len(rem), len(m["added"]), len(m["removed"]),
                           sorted(add - m["added"])[:3], sorted(m["added"] - add)[:3],
                           sorted(rem - m["removed"])[:3], sorted(m["removed"] - rem)[:3]))
            self.check((v["added"], v["removed"]) == (len(m["added"]), len(m["removed"])),
                       "snapshot %d added/removed columns %s/%s" % (s, v["added"], v["removed"]))
            self.check(all(at == m["read"] for _, _, at in ch), "changes.at of %d: %s, read %s" % (
                s, sorted({a for _, _, a in ch}), m["read"]))
        # current_clients: each group's latest complete snapshot, with first_seen_at for ever
        cur = {}
        for g, c, fs in self.q("SELECT group_id, client_id, first_seen_at FROM current_clients"):
            cur.setdefault(g, {})[c] = fs
        for g in GROUPS:
            last = self.latest_complete(g)
            want = self.snaps[last]["members"] if last else set()
            have = cur.get(g, {})
            self.check(set(have) == want, "current_clients of %s: %d, latest complete %s has %d" % (
                g, len(have), last, len(want)))
            for c, fs in have.items():
                self.check(fs == self.first_seen[(g, c)], "first_seen_at of %s: %s, first seen %s" % (
                    c, fs, self.first_seen[(g, c)]))
        # run rows
        rows = {r[0]: r[1:] for r in self.q(
            "SELECT run_id, status, groups_ok, groups_failed, requests FROM runs")}
        for r, (status, ok, failed, requests) in rows.items():
            m = self.runs.get(r)
            if m is None:
                continue
            self.check((status, ok, failed) == (m["status"], m["ok"], m["failed"]),
                       "run %d row %s ok %d failed %d, model %s ok %d failed %d" % (
                           r, status, ok, failed, m["status"], m["ok"], m["failed"]))
            if m.get("requests") is not None:
                self.check(requests == m["requests"], "run %d requests %d, model %d" % (r, requests, m["requests"]))
        for r in self.runs:
            has = any(v["run"] == r for v in db.values())
            if r not in rows:
                self.check(not has, "run %d deleted while snapshot(s) point at it" % r)
        for _ in range(3):
            self.check_diff()

    # ---- REFs and diffs --------------------------------------------------------------
    def random_ref(self):
        r = self.rng
        complete = sorted(s for s in self.snaps if s not in self.gone and self.snaps[s]["status"] == "complete")
        kinds = ["latest", "previous", "run", "time", "time", "age"]
        if complete:
            kinds += ["id", "id"]
        k = r.choice(kinds)
        if k == "id":
            return str(r.choice(complete))
        if k == "run":
            return "run:%d" % r.randint(1, max(1, self.high_run + 1))
        if k == "time":
            reads = [epoch(v["read"]) for v in self.snaps.values() if v.get("read") and v["status"] == "complete"]
            if not reads:
                return "latest"
            return iso(r.choice(reads) + r.choice([-1, 0, 0, 1]))
        if k == "age":
            return r.choice(["1s", "2s", "1h"])
        return k

    def resolve(self, g, ref, other, now):
        comp = sorted(s for s, v in self.snaps.items() if s not in self.gone and v["group"] == g
                      and v["status"] == "complete")
        if ref == "latest":
            return comp[-1] if comp else None
        if ref == "previous":
            bound = other if other else (comp[-1] if comp else None)
            if bound is None:
                return None
            c = [s for s in comp if s < bound]
            return c[-1] if c else None
        if ref.startswith("run:"):
            n = int(ref[4:])
            c = [s for s in comp if self.snaps[s]["run"] <= n]
            return c[-1] if c else None
        if ref.isdigit():
            return int(ref) if int(ref) in comp else None
        if ref[-1] in "sh" and ref[:-1].isdigit():
            t = now - int(ref[:-1]) * (3600 if ref[-1] == "h" else 1)
        else:
            t = epoch(ref)
        c = [s for s in comp if epoch(self.snaps[s]["read"]) <= t]
        return c[-1] if c else None

    def check_diff(self):
        if self.gone and self.rng.random() < 0.15:
            # a pruned id names nothing, ever (it is never handed out again)
            x = self.rng.choice(sorted(self.gone))
            p = cs.run(["-d", self.db, "diff", "--from", str(x)])
            self.check(p.returncode == 64 and "no snapshot" in p.stderr,
                       "diff --from pruned snapshot %d: exit %d %s" % (x, p.returncode, p.stderr))
        a, b = self.random_ref(), self.random_ref()
        if any(x.endswith(("s", "h")) and x[:-1].isdigit() for x in (a, b)):
            # an age is relative to the clock: skip when a second boundary may fall between
            if time.time() % 1 > 0.7:
                time.sleep(1 - time.time() % 1 + 0.05)
        now = int(time.time())
        p = cs.run(["-d", self.db, "diff", "--format", "json", "--from", a, "--to", b])
        pinned = {self.snaps[int(x)]["group"] for x in (a, b) if x.isdigit()}
        if len(pinned) > 1:
            self.check(p.returncode == 64, "diff --from %s --to %s across groups: exit %d" % (a, b, p.returncode))
            return
        self.check(p.returncode == 0, "diff --from %s --to %s: exit %d %s" % (a, b, p.returncode, p.stderr))
        doc = json.loads(p.stdout)
        groups = sorted(pinned) if pinned else sorted(self.groups_known)
        got = {x["group_id"]: x for x in doc["groups"]}
        self.check(sorted(got) == groups, "diff --from %s --to %s lists %s, model %s" % (a, b, sorted(got), groups))
        for g in groups:
            to = self.resolve(g, b, None, now)
            frm = self.resolve(g, a, to, now) if to else None
            x = got[g]
            want_status = "no_to_snapshot" if not to else "no_from_snapshot" if not frm else "ok"
            self.check((x["from_snapshot"], x["to_snapshot"], x["status"]) == (frm, to, want_status),
                       "diff --from %s --to %s, %s: %s -> %s (%s), model %s -> %s (%s)" % (
                           a, b, g, x["from_snapshot"], x["to_snapshot"], x["status"], frm, to, want_status))
            if want_status == "ok":
                fa, fb = self.snaps[frm]["members"], self.snaps[to]["members"]
                self.check(set(x["added"]) == fb - fa and set(x["removed"]) == fa - fb,
                           "diff %d -> %d of %s: +%d -%d, model +%d -%d" % (
                               frm, to, g, len(x["added"]), len(x["removed"]), len(fb - fa), len(fa - fb)))
            else:
                self.check(x["added"] == [] and x["removed"] == [], "diff with no side reports IDs")

    # ---- steps -----------------------------------------------------------------------
    def sync(self):
        served = self.served()
        self.sim.reset_stats()
        t0 = int(time.time())
        p = cs.run(["-c", self.cfg, "sync"])
        want = 0 if len(served) == len(GROUPS) else 1
        self.check(p.returncode == want, "sync exit %d, expected %d: %s" % (p.returncode, want, p.stderr[-800:]))
        requests = self.sim.stats()["rpc_requests"]
        run_id = self.q("SELECT max(run_id) FROM runs")[0][0]
        self.check(run_id > self.high_run, "run id %d reused (highest ever %d)" % (run_id, self.high_run))
        self.high_run = run_id
        self.repair_killed(run_id)
        self.learn_new(run_id, served, True)
        ok = sum(1 for v in self.snaps.values() if v["run"] == run_id and v["status"] == "complete")
        failed = sum(1 for v in self.snaps.values() if v["run"] == run_id and v["status"] == "failed")
        self.check(ok == len(served), "run %d completed %d groups, %d served" % (run_id, ok, len(served)))
        self.runs[run_id] = dict(status="complete" if not failed else "partial" if ok else "failed",
                                 ok=ok, failed=failed, requests=requests)
        for s, v in self.snaps.items():
            if v["run"] == run_id and v["status"] == "complete":
                t = epoch(v["read"])
                self.check(t0 - 1 <= t <= time.time() + 1 or self.pending,
                           "snapshot %d read at %s, the run was %s..now" % (s, v["read"], iso(t0)))
        self.pending = False

    def churn_sync(self):
        """A sync while the simulator changes every group as it is walked (the only source of
        walks that do not add up): the result is not predictable, so the model takes what
        the database holds, after checking what must hold whatever the walk saw: a complete
        snapshot with consistent = 0 keeps every member of the one before and records no
        removal, a failed one is IncompleteWalk or PagingLoop; the run row counts them."""
        served = self.served()
        self.churn = True
        self.restart()
        self.sim.reset_stats()
        p = cs.run(["-c", self.cfg, "sync"])
        self.check(p.returncode in (0, 1), "sync with churn: exit %d %s" % (p.returncode, p.stderr[-800:]))
        requests = self.sim.stats()["rpc_requests"]
        run_id = self.q("SELECT max(run_id) FROM runs")[0][0]
        self.check(run_id > self.high_run, "run id %d reused (highest ever %d)" % (run_id, self.high_run))
        self.high_run = run_id
        self.repair_killed(run_id)
        self.learn_new(run_id, served, True, adopt=True)
        ok = sum(1 for v in self.snaps.values() if v["run"] == run_id and v["status"] == "complete")
        failed = sum(1 for v in self.snaps.values() if v["run"] == run_id and v["status"] == "failed")
        self.check(p.returncode == (1 if failed else 0), "sync with churn: exit %d, %d group(s) failed" % (
            p.returncode, failed))
        self.runs[run_id] = dict(status="complete" if not failed else "partial" if ok else "failed",
                                 ok=ok, failed=failed, requests=requests)
        # the data as the churn left it becomes the world
        dump = cs.sim_inventory(self.sim)
        for g in GROUPS:
            if (INST, g) not in dump:
                continue
            new = dump[(INST, g)]
            old = set(self.data[g])
            self.removed[g] = [x for x in self.removed[g] if x not in new] + sorted(old - new)
            self.data[g] = sorted(new)
        self.churn = False
        self.restart()
        self.pending = False

    def repair_killed(self, run_id):
        """After a run following a kill: the killed runs' rows are 'interrupted' and count
        what they completed; their running snapshots are failed 'Interrupted'."""
        for r, served in list(self.killed.items()):
            row = self.q("SELECT status, groups_ok, groups_failed, requests FROM runs WHERE run_id = ?", (r,))
            if not row:
                self.fail("killed run %d has no row after the next run" % r)
            status, ok, failed, requests = row[0]
            # what the model learnt of that run, pruned since or not
            done = sum(1 for v in self.snaps.values() if v["run"] == r and v["status"] == "complete")
            refused = sum(1 for v in self.snaps.values() if v["run"] == r and v["code"] == "PermissionCheckFailed")
            self.check(status == "interrupted", "killed run %d marked %r, expected 'interrupted'" % (r, status))
            self.check(ok == done, "killed run %d: groups_ok %d, it completed %d" % (r, ok, done))
            self.check(failed == refused, "killed run %d: groups_failed %d, %d refused" % (r, failed, refused))
            self.check(requests <= served, "killed run %d: requests %d, the service saw %d" % (r, requests, served))
            self.runs[r] = dict(status="interrupted", ok=ok, failed=failed, requests=requests)
            del self.killed[r]

    def kill(self):
        served = self.served()
        self.sim.reset_stats()
        before = self.q("SELECT max(run_id) FROM runs")[0][0] if self.has_schema() else None
        p = subprocess.Popen(cs.command() + ["-c", self.cfg, "sync"], env=cs.cred_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        delay = self.rng.uniform(0, 0.12 if not VALGRIND else 1.5)
        time.sleep(delay)
        p.kill()
        p.wait()
        self.note("kill -9 after %.0f ms (exit %d)" % (delay * 1000, p.returncode))
        if not self.has_schema():
            return          # killed before the schema existed
        run_id = self.q("SELECT max(run_id) FROM runs")[0][0]
        if run_id is None or run_id == before:
            return          # killed before the run began
        self.check(run_id > self.high_run, "run id %d reused (highest ever %d)" % (run_id, self.high_run))
        self.high_run = run_id
        status, ok, failed = self.q("SELECT status, groups_ok, groups_failed FROM runs WHERE run_id = ?",
                                    (run_id,))[0]
        self.learn_new(run_id, served, False)
        done = sum(1 for v in self.snaps.values() if v["run"] == run_id and v["status"] == "complete")
        if status == "running":
            # kept up to date as it went
            self.check(ok == done, "killed run %d (not yet repaired): groups_ok %d, completed %d" % (run_id, ok, done))
            self.killed[run_id] = self.sim.stats()["rpc_requests"]
            self.pending = True
        else:
            nfailed = sum(1 for v in self.snaps.values() if v["run"] == run_id and v["status"] == "failed")
            self.runs[run_id] = dict(status="complete" if not nfailed else "partial" if done else "failed",
                                     ok=done, failed=nfailed)

    def dump_all(self):
        if not self.has_schema():
            return None
        out = []
        for rel in ("runs", "snapshots", "current_clients", "snapshot_clients", "changes"):
            out.append(sorted(map(repr, self.q("SELECT * FROM %s" % rel))))
        return out

    def dry_run(self):
        before = self.dump_all()
        p = cs.run(["-c", self.cfg, "sync", "--dry-run"])
        want = 0 if len(self.served()) == len(GROUPS) else 1
        self.check(p.returncode == want, "sync --dry-run exit %d, expected %d: %s" % (p.returncode, want, p.stderr[-500:]))
        self.check(self.dump_all() == before, "sync --dry-run changed the database")

    def prune(self):
        r = self.rng
        db = self.db_snaps()
        ckpt = {x[0] for x in self.q("SELECT snapshot_id FROM cs_checkpoint")} if db else set()
        latest = {self.latest_complete(g) for g in GROUPS}
        protected = latest | ckpt | {s for s, v in db.items() if v["status"] == "running"}
        dry = r.random() < 0.2
        if r.random() < 0.6:
            n = r.randint(1, 3)
            args = ["--keep-last", str(n)]
            doomed = {s for s in db if s not in protected and sum(
                1 for k in db if db[k]["group"] == db[s]["group"] and db[k]["status"] == "complete"
                and k > s) >= n}
            lo = hi = doomed
        else:
            secs = r.choice([1, 2, 3])
            args = ["--older-than", "%ds" % secs]
            if r.random() < 0.5:
                # let everything age past the cut: failed snapshots at the top of the id
                # range go, which is what would make an id be handed out again
                time.sleep(secs + 1.1)
            fin = dict(self.q("SELECT snapshot_id, coalesce(finished_at, started_at) FROM snapshots"))
            now = time.time()
            lo = {s for s in db if s not in protected and epoch(fin[s]) < now - secs - 1.5}
            hi = {s for s in db if s not in protected and epoch(fin[s]) < now - secs + 1.5}
        before = self.dump_all()
        p = cs.run(["-c", self.cfg, "prune"] + args + (["--dry-run"] if dry else []))
        self.note("prune %s%s" % (" ".join(args), " --dry-run" if dry else ""))
        self.check(p.returncode == 0, "prune: exit %d %s" % (p.returncode, p.stderr))
        if dry:
            self.check(self.dump_all() == before, "prune --dry-run changed the database")
            return
        after = set(self.db_snaps())
        deleted = set(db) - after
        self.check(lo <= deleted <= hi, "prune %s deleted %s, model %s..%s" % (
            " ".join(args), sorted(deleted), sorted(lo), sorted(hi)))
        self.gone |= deleted
        left_runs = {x[0] for x in self.q("SELECT run_id FROM runs")}
        with_snaps = {v["run"] for s, v in self.db_snaps().items()}
        running = {x[0] for x in self.q("SELECT run_id FROM runs WHERE status = 'running'")}
        self.check(left_runs == with_snaps | running, "prune left runs %s, runs with snapshots %s" % (
            sorted(left_runs), sorted(with_snaps)))
        for rid in list(self.runs):
            if rid not in left_runs:
                del self.runs[rid]

    def step(self):
        r = self.rng
        x = r.random()
        if x < 0.35 and not self.pending:
            self.mutate()
            return
        if x > 0.95 and not self.pending:
            self.note("sync with churn during the crawl")
            self.churn_sync()
            self.full_check()
            return
        if x < 0.62:
            self.note("sync")
            self.sync()
        elif x < 0.77:
            self.kill()
        elif x < 0.85:
            self.note("sync --dry-run")
            self.dry_run()
        elif self.has_schema():
            self.prune()
            if r.random() < 0.5:   # time REFs and --older-than need times apart
                time.sleep(1 - time.time() % 1 + 0.02)
        if self.has_schema():
            self.full_check()

    def run(self):
        try:
            self.note("sync")
            self.sync()
            self.full_check()
            for _ in range(self.steps):
                self.step()
            # a last sync settles any killed run, then everything is checked once more
            self.note("final sync")
            self.sync()
            self.full_check()
        finally:
            if self.sim:
                self.sim.stop(check=False)


def seeds():
    spec = os.environ.get("CREDSYNC_MODEL_SEEDS")
    if not spec:
        return CI_SEEDS
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    return out


def steps():
    return int(os.environ.get("CREDSYNC_MODEL_STEPS", CI_STEPS))


def test_model_sequences():
    failures = []
    for seed in seeds():
        try:
            Model(seed, steps()).run()
        except Exception as e:
            failures.append("seed %d: %s" % (seed, e if isinstance(e, Failure) else traceback.format_exc()))
    assert not failures, "\n\n".join(failures)


def report():
    """For the benchmark script: every seed, then a count of the sequences that passed."""
    passed, failed = 0, []
    t0 = time.monotonic()
    for seed in seeds():
        try:
            Model(seed, steps()).run()
            passed += 1
        except Exception as e:
            failed.append(seed)
            print("seed %d failed: %s" % (seed, e if isinstance(e, Failure) else traceback.format_exc()),
                  flush=True)
    print("model: %d of %d sequences passed (%d steps each, %.0f s)%s" % (
        passed, passed + len(failed), steps(), time.monotonic() - t0,
        "; failed seeds: %s" % ",".join(map(str, failed)) if failed else ""), flush=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--report"]:
        sys.exit(report())
    cs.main([test_model_sequences])
