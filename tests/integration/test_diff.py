"""credsync diff / snapshots / prune over sequences of syncs driven through credsync-sim:
adds, removes, remove-then-re-add, an emptied group, a new group, a failed snapshot in
between, filters, every REF form and every output format read back by a parser."""
import csv
import html.parser
import io
import json
import os
import re
import subprocess
import time

import cs
import harness
from harness import Sim

INST = "mqtt-a"
# IDs that break naive CSV, JSON, HTML and text writers
HOSTILE = ['GID_a@@@q"uote', 'GID_a@@@com,ma', 'GID_a@@@new\nline', 'GID_a@@@<script>x</script>',
           'GID_a@@@semi;colon', 'GID_a@@@per%cent', 'GID_a@@@dev@@@twice', 'GID_a@@@设备-1']


def gen(gid, n, start=0):
    return ["%s@@@dev-%04d" % (gid, i) for i in range(start, start + n)]


def test_sequences_and_refs():
    w = cs.World({"GID_a": gen("GID_a", 10), "GID_b": gen("GID_b", 5)})
    try:
        w.sync()                                                   # run 1: snapshots 1, 2
        t_after_1 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        time.sleep(1.2)
        doc = w.diff_json()
        for g in doc["groups"]:  # only one snapshot each: reported as such, not "all added"
            assert g["status"] == "no_from_snapshot" and g["added"] == [] and g["from_snapshot"] is None, g
        assert doc["summary"] == {"groups": 2, "added": 0, "removed": 0}

        added = w.sim.mutate(add=3, instance=INST, group="GID_a")["added"]
        w.sync()                                                   # run 2
        doc = w.diff_json()
        a = w.group(doc, "GID_a")
        assert sorted(a["added"]) == sorted(added) and a["removed"] == [], a
        assert w.group(doc, "GID_b")["added"] == [] and doc["summary"]["added"] == 3
        # --detailed-exitcode: 2 with changes, 0 without
        w.diff("--detailed-exitcode", status=2)
        w.diff("--detailed-exitcode", "--group", "GID_b", status=0)
        w.diff("--detailed-exitcode", "--from", "latest", "--to", "latest", status=0)

        removed = w.sim.mutate(remove=2, instance=INST, group="GID_a")["removed"]
        w.sync()                                                   # run 3
        a = w.group(w.diff_json(), "GID_a")
        assert a["added"] == [] and sorted(a["removed"]) == sorted(removed), a

        # remove then re-add one device
        x = next(i for i in gen("GID_a", 10) if i not in removed)
        w.edit(lambda d: d[INST]["GID_a"].remove(x))
        w.sync()                                                   # run 4
        w.edit(lambda d: d[INST]["GID_a"].append(x))
        w.sync()                                                   # run 5
        a = w.group(w.diff_json(), "GID_a")
        assert a["added"] == [x] and a["removed"] == [], a
        a = w.group(w.diff_json("--from", "run:3", "--to", "run:5"), "GID_a")
        assert a["added"] == [] and a["removed"] == [], a       # there at both ends
        a = w.group(w.diff_json("--from", "run:4", "--to", "run:3"), "GID_a")
        assert a["added"] == [x], a                              # reversed: run 4 lacked x
        ch = cs.query(w.db, "SELECT change, snapshot_id FROM changes WHERE client_id = ? ORDER BY snapshot_id", (x,))
        assert [c for c, _ in ch] == ["added", "removed", "added"], ch
        first = cs.query(w.db, "SELECT first_seen_at FROM current_clients WHERE client_id = ?", (x,))[0][0]
        assert first <= t_after_1, (first, t_after_1)

        # the group emptied
        w.edit(lambda d: d[INST].__setitem__("GID_b", []))
        w.sync()                                                   # run 6
        b = w.group(w.diff_json(), "GID_b")
        assert sorted(b["removed"]) == gen("GID_b", 5) and b["added"] == [], b
        assert cs.query(w.db, "SELECT count(*) FROM current_clients WHERE group_id = 'GID_b'") == [(0,)]
        last_b = cs.snapshots(w.db, "group_id = 'GID_b'")[-1]
        assert last_b["status"] == "complete" and last_b["client_count"] == 0

        # a group new to the config: nothing to compare yet, never "everything added"
        w.edit(lambda d: d[INST].__setitem__("GID_c", gen("GID_c", 4)))
        w.config_groups.append("GID_c")
        w.write_config()
        w.sync()                                                   # run 7
        c = w.group(w.diff_json(), "GID_c")
        assert c["status"] == "no_from_snapshot" and c["added"] == [] and c["to_snapshot"], c
        text = w.diff("--group", "GID_c").stdout
        assert "nothing to compare" in text, text

        # a failed snapshot in between is ignored
        before = cs.snapshots(w.db, "group_id = 'GID_a' AND status = 'complete'")[-1]["snapshot_id"]
        w.faults = ["PermissionCheckFailed=1@%s/GID_a" % INST]
        w.edit(lambda d: d[INST]["GID_a"].append("GID_a@@@late-1"))
        w.sync(status=1)                                           # run 8: GID_a fails
        failed = cs.snapshots(w.db, "group_id = 'GID_a'")[-1]
        assert failed["status"] == "failed" and failed["error_code"] == "PermissionCheckFailed"
        a = w.group(w.diff_json(), "GID_a")
        assert a["to_snapshot"] == before and a["added"] == [], a  # still run 6 -> run 7
        w.faults = []
        w.edit(lambda d: None)
        w.sync()                                                   # run 9
        a = w.group(w.diff_json(), "GID_a")
        assert a["from_snapshot"] == before and a["added"] == ["GID_a@@@late-1"], a
        assert a["removed"] == []

        # REF forms
        snap_a = [s["snapshot_id"] for s in cs.snapshots(w.db, "group_id = 'GID_a' AND status = 'complete'")]
        doc = w.diff_json("--from", str(snap_a[0]), "--to", str(snap_a[1]))
        assert [g["group_id"] for g in doc["groups"]] == ["GID_a"]     # an id pins its group
        assert sorted(doc["groups"][0]["added"]) == sorted(added)
        doc = w.diff_json("--from", "snapshot:%d" % snap_a[0], "--to", "latest", "--group", "GID_a")
        assert doc["groups"][0]["from_snapshot"] == snap_a[0]
        doc = w.diff_json("--from", t_after_1)                           # a UTC time
        a = w.group(doc, "GID_a")
        assert a["from_snapshot"] == snap_a[0] and a["to_snapshot"] == snap_a[-1], a
        assert w.group(doc, "GID_c")["status"] == "no_from_snapshot"   # GID_c is younger
        today = time.strftime("%Y-%m-%d", time.gmtime())
        doc = w.diff_json("--from", today)                               # midnight: before all
        assert all(g["status"] == "no_from_snapshot" for g in doc["groups"]), doc
        doc = w.diff_json("--from", "7d")                                # an age
        assert all(g["status"] == "no_from_snapshot" for g in doc["groups"]), doc
        doc = w.diff_json("--from", "previous", "--to", "previous")
        a = w.group(doc, "GID_a")
        assert a["to_snapshot"] == snap_a[-2] and a["from_snapshot"] == snap_a[-3], a
        doc = w.diff_json("--from", "run:1", "--to", "run:2", "--instance", INST)
        assert w.group(doc, "GID_a")["from_snapshot"] == snap_a[0]
        # errors
        p = w.diff("--from", "yesterday-ish", status=64)
        assert "is not a REF" in p.stderr
        w.diff("--group", "GID_zzz", status=64)
        failed_id = failed["snapshot_id"]
        p = w.diff("--from", str(failed_id), status=64)
        assert "not complete" in p.stderr, p.stderr
        w.diff("--from", "99999", status=64)
        p = cs.run(["-d", os.path.join(w.dir, "missing.db"), "diff", "--detailed-exitcode"])
        cs.expect(p, 1, "diff of a missing database")

        # diff needs no config when -d is given
        p = cs.run(["-d", w.db, "diff", "--format", "json"])
        cs.expect(p, 0)
        assert json.loads(p.stdout)["summary"]["groups"] == 3
    finally:
        w.close()


class Checker(html.parser.HTMLParser):
    """Well-formedness (every non-void element closed in order) and the report's counts."""
    VOID = {"meta", "br", "hr", "img", "input", "link", "circle", "rect", "polyline", "path", "line"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.cells, self.items = [], [], {}, {}
        self.cur_id, self.cur_list, self.scripts, self.text = None, None, 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag not in self.VOID:
            self.stack.append(tag)
        self.cur_id = a.get("id")
        if tag == "ul":
            self.cur_list = a.get("class")
            self.items[self.cur_list] = self.items.get(self.cur_list, 0)
        if tag == "li" and self.cur_list:
            self.items[self.cur_list] += 1

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("unexpected </%s> (open: %s)" % (tag, self.stack[-3:]))
            return
        self.stack.pop()
        if tag == "ul":
            self.cur_list = None

    def handle_data(self, data):
        if self.cur_id and self.cur_id.startswith("sum-"):
            self.cells[self.cur_id] = data.strip()
            self.cur_id = None
        self.text.append(data)


def test_formats_round_trip():
    w = cs.World({"GID_a": gen("GID_a", 20)})
    try:
        w.sync()
        w.edit(lambda d: d[INST]["GID_a"].extend(HOSTILE))
        w.edit(lambda d: d[INST]["GID_a"].remove("GID_a@@@dev-0003"))
        w.sync()
        want_added = sorted(HOSTILE)
        doc = w.diff_json()
        a = w.group(doc, "GID_a")
        assert sorted(a["added"]) == want_added, a["added"]
        assert a["removed"] == ["GID_a@@@dev-0003"]

        # CSV: RFC 4180, read back by the csv module exactly
        p = w.diff("--format", "csv")
        rows = list(csv.reader(io.StringIO(p.stdout, newline="")))
        assert rows[0] == ["instance_id", "group_id", "change", "client_id", "device_id",
                           "from_snapshot", "to_snapshot"], rows[0]
        body = rows[1:]
        assert sorted(r[3] for r in body if r[2] == "added") == want_added
        assert [r[3] for r in body if r[2] == "removed"] == ["GID_a@@@dev-0003"]
        for r in body:
            assert r[4] == r[3].split("@@@", 1)[1], r          # device_id after the first @@@
            assert r[0] == INST and r[1] == "GID_a" and r[5] == str(a["from_snapshot"])
        # writing the parsed rows again gives the same bytes
        out = io.StringIO(newline="")
        csv.writer(out, lineterminator="\r\n").writerows(rows)
        assert out.getvalue() == p.stdout

        # text: one line per ID, control characters quoted
        p = w.diff()
        lines = p.stdout.splitlines()
        assert '  + "GID_a@@@new\\nline"' in lines and '  + "GID_a@@@q\\"uote"' in lines, lines
        assert "  + GID_a@@@设备-1" in lines and "  - GID_a@@@dev-0003" in lines
        assert "\033[" not in p.stdout   # no colour when not on a terminal

        # HTML: well-formed, no script, right counts, hostile IDs escaped
        out_path = os.path.join(w.dir, "report.html")
        p = w.diff("--format", "html", "-o", out_path)
        assert p.stdout == "" and sorted(os.listdir(w.dir)).count("report.html") == 1
        assert not [f for f in os.listdir(w.dir) if ".tmp." in f]
        with open(out_path, encoding="utf-8") as f:
            page = f.read()
        chk = Checker()
        chk.feed(page)
        chk.close()
        assert not chk.errors and chk.stack == [], (chk.errors, chk.stack)
        assert chk.scripts == 0
        assert chk.cells == {"sum-groups": "1", "sum-added": str(len(HOSTILE)), "sum-removed": "1"}, chk.cells
        assert chk.items == {"added-list": len(HOSTILE), "removed-list": 1}, chk.items
        assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
        text = "".join(chk.text)
        for h in HOSTILE:
            assert h in text, h
        assert "<svg" in page and 'class="compared"' in page
        assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # no external asset
        # -o is atomic and the same content as stdout
        stamp = re.compile(r"generated [0-9TZ:-]+")
        assert stamp.sub("", w.diff("--format", "html").stdout) == stamp.sub("", page)
    finally:
        w.close()


def test_snapshots_command():
    w = cs.World({"GID_a": gen("GID_a", 3), "GID_b": gen("GID_b", 2)})
    try:
        w.sync()
        w.sync()
        p = cs.run(["-c", w.cfg, "snapshots", "--format", "json"])
        cs.expect(p, 0)
        rows = json.loads(p.stdout)
        assert [r["snapshot_id"] for r in rows] == [4, 3, 2, 1], rows   # newest first
        assert rows[0]["status"] == "complete" and rows[0]["consistent"] is True
        for key in ("run_id", "instance_id", "group_id", "finished_at", "client_count", "added",
                    "removed", "error_code"):
            assert key in rows[0]
        p = cs.run(["-c", w.cfg, "snapshots", "--limit", "1", "--group", "GID_a", "--format", "csv"])
        rows = list(csv.DictReader(io.StringIO(p.stdout, newline="")))
        assert len(rows) == 1 and rows[0]["group_id"] == "GID_a" and rows[0]["client_count"] == "3", rows
        p = cs.run(["-c", w.cfg, "snapshots"])
        assert p.stdout.splitlines()[0].startswith("ID") and len(p.stdout.splitlines()) == 5
        cs.expect(cs.run(["-c", w.cfg, "snapshots", "--format", "html"]), 64)
    finally:
        w.close()


def members(db):
    return cs.query(db, "SELECT snapshot_id, client_id FROM snapshot_clients ORDER BY 1, 2")


def test_prune_keeps_kept_snapshots_identical():
    w = cs.World({"GID_a": gen("GID_a", 30), "GID_b": gen("GID_b", 10)})
    try:
        w.sync()
        for i in range(6):
            w.sim.mutate(add=2, remove=2, instance=INST)
            if i == 2:
                w.faults = ["PermissionCheckFailed=1@%s/GID_b" % INST]
                w.edit(lambda d: None)
                w.sync(status=1)
                w.faults = []
                w.edit(lambda d: None)
            else:
                w.sync()
        before = members(w.db)
        changes_before = cs.query(w.db, "SELECT * FROM changes ORDER BY 1, 4, 5")
        snaps = [s["snapshot_id"] for s in cs.snapshots(w.db)]
        # dry run changes nothing
        p = cs.run(["-c", w.cfg, "prune", "--keep-last", "3", "--dry-run"])
        cs.expect(p, 0)
        assert "would delete" in p.stdout
        assert members(w.db) == before
        p = cs.run(["-c", w.cfg, "prune", "--keep-last", "3", "--vacuum"])
        cs.expect(p, 0)
        kept = [s["snapshot_id"] for s in cs.snapshots(w.db)]
        assert len(kept) < len(snaps)
        for g in ("GID_a", "GID_b"):
            complete = cs.snapshots(w.db, "group_id = ? AND status = 'complete'", (g,))
            assert len(complete) == 3, (g, complete)
        after = members(w.db)
        assert after == [r for r in before if r[0] in kept], "a kept snapshot's membership changed"
        changes_after = cs.query(w.db, "SELECT * FROM changes ORDER BY 1, 4, 5")
        assert changes_after == [r for r in changes_before if r[0] in kept]
        # interval rows only the pruned snapshots needed are gone
        assert cs.query(w.db, "SELECT count(*) FROM cs_interval WHERE to_snap IS NOT NULL AND to_snap < ?",
                        (min(kept),)) == [(0,)]
        # --older-than never deletes a group's latest complete snapshot
        p = cs.run(["-c", w.cfg, "prune", "--older-than", "1ms"])
        cs.expect(p, 0)
        left = cs.snapshots(w.db)
        assert {s["group_id"] for s in left if s["status"] == "complete"} == {"GID_a", "GID_b"}
        assert members(w.db) == [r for r in before if r[0] in {s["snapshot_id"] for s in left}]
        cs.assert_inventory(w.db, w.sim, [(INST, "GID_a"), (INST, "GID_b")])
        # and syncing goes on normally after a prune
        w.sim.mutate(add=1, instance=INST, group="GID_a")
        w.sync()
        cs.assert_inventory(w.db, w.sim, [(INST, "GID_a"), (INST, "GID_b")])
        cs.expect(cs.run(["-c", w.cfg, "prune"]), 64)
        cs.expect(cs.run(["-c", w.cfg, "prune", "--keep-last", "0"]), 64)
    finally:
        w.close()


if __name__ == "__main__":
    cs.main([test_sequences_and_refs, test_formats_round_trip, test_snapshots_command,
             test_prune_keeps_kept_snapshots_identical])
