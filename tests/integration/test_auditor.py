"""The auditor's questions: `clients`, `history` and `audit` against snapshots built through
credsync-sim and /_sim/mutate (every REF form, globs, a removed-then-re-added device, pruned
history, every format read back by a parser with hostile IDs), `audit` with each bad
register, and retention after sync compared snapshot for snapshot with `prune`."""
import csv
import html.parser
import io
import json
import os
import random
import re
import subprocess
import time

import cs
import harness

INST = "mqtt-a"
# IDs that break naive CSV, JSON, HTML and text writers
HOSTILE = ['GID_a@@@q"uote', 'GID_a@@@com,ma', 'GID_a@@@new\nline', 'GID_a@@@<script>x</script>',
           'GID_a@@@semi;colon', 'GID_a@@@tab\there', 'GID_a@@@dev@@@twice', 'GID_a@@@设备-1',
           "GID_a@@@apo'strophe"]


def gen(gid, n, start=0):
    return ["%s@@@dev-%04d" % (gid, i) for i in range(start, start + n)]


def device(cid):
    return cid.split("@@@", 1)[1] if "@@@" in cid else None


def run(w, *args, status=0):
    p = cs.run(["-c", w.cfg] + list(args))
    cs.expect(p, status, " ".join(str(a) for a in args))
    return p


def parse_json(text):
    doc = json.loads(text)
    c = subprocess.run([cs.tool("json_canon")], input=text.encode(), capture_output=True)
    assert c.returncode == 0, c.stderr
    assert json.loads(c.stdout.decode()) == doc   # cJSON reads it as Python does
    return doc


def parse_ndjson(text):
    assert text == "" or text.endswith("\n"), text[-200:]
    return [json.loads(line) for line in text.split("\n")[:-1]]


def parse_csv(text):
    rows = list(csv.reader(io.StringIO(text, newline="")))
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    assert out.getvalue() == text       # RFC 4180 exactly as Python writes it
    return [dict(zip(rows[0], r)) for r in rows[1:]], rows[0]


def snapshot_members(db, snap):
    return sorted(r[0] for r in cs.query(db, "SELECT client_id FROM snapshot_clients WHERE snapshot_id = ?", (snap,)))


def complete(db, gid):
    return [s["snapshot_id"] for s in cs.snapshots(db, "group_id = ? AND status = 'complete'", (gid,))]


def build_history():
    """GID_a with hostile IDs and GID_b; five syncs: mutate, remove-then-re-add, a failure."""
    w = cs.World({"GID_a": gen("GID_a", cs.scale(40, 12)) + HOSTILE, "GID_b": gen("GID_b", 6)})
    w.sync()                                                        # run 1
    w.t1 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)
    w.added = w.sim.mutate(add=3, remove=2, instance=INST, group="GID_a")
    # /_sim/mutate removes at random: the hostile IDs stay (every format is checked on them)
    # and at least one ordinary device goes
    back = [h for h in w.added["removed"] if h in HOSTILE]
    w.added["removed"] = [r for r in w.added["removed"] if r not in HOSTILE] or ["GID_a@@@dev-0001"]
    w.edit(lambda d: d[INST]["GID_a"].extend(back) or [d[INST]["GID_a"].remove(r) for r in
                                                         w.added["removed"] if r in d[INST]["GID_a"]])
    w.sync()                                                        # run 2
    w.x = next(c for c in gen("GID_a", 12)[3:] if c not in w.added["removed"])
    w.edit(lambda d: d[INST]["GID_a"].remove(w.x))
    w.sync()                                                        # run 3: x removed
    w.edit(lambda d: d[INST]["GID_a"].append(w.x))
    w.sync()                                                        # run 4: x re-added
    w.faults = ["PermissionCheckFailed=1@%s/GID_b" % INST]
    w.edit(lambda d: None)
    w.sync(status=1)                                                # run 5: GID_b fails
    w.faults = []
    w.edit(lambda d: None)
    return w


def test_clients():
    w = build_history()
    try:
        snaps_a, snaps_b = complete(w.db, "GID_a"), complete(w.db, "GID_b")
        assert len(snaps_a) == 5 and len(snaps_b) == 4
        failed_b = cs.snapshots(w.db, "group_id = 'GID_b' AND status = 'failed'")[0]["snapshot_id"]

        def groups_at(*args):
            doc = parse_json(run(w, "clients", "--format", "json", *args).stdout)
            return {g["group_id"]: g for g in doc["groups"]}, doc

        g, doc = groups_at()
        inv = cs.inventory(w.db)
        for gid in ("GID_a", "GID_b"):
            assert g[gid]["status"] == "ok" and g[gid]["clients"] == sorted(inv[(INST, gid)]), gid
            assert g[gid]["count"] == len(inv[(INST, gid)])
        assert g["GID_b"]["snapshot_id"] == snaps_b[-1]          # the failed one is skipped
        assert doc["summary"]["clients"] == sum(len(v) for v in inv.values())
        assert set(HOSTILE) <= set(g["GID_a"]["clients"])

        # every REF form: the same members as the public view holds for that snapshot
        forms = {
            "run:1": {"GID_a": snaps_a[0], "GID_b": snaps_b[0]},
            "run:3": {"GID_a": snaps_a[2], "GID_b": snaps_b[2]},
            w.t1: {"GID_a": snaps_a[0], "GID_b": snaps_b[0]},
            "latest": {"GID_a": snaps_a[-1], "GID_b": snaps_b[-1]},
            "previous": {"GID_a": snaps_a[-2], "GID_b": snaps_b[-2]},
        }
        for ref, want in forms.items():
            g, doc = groups_at("--at", ref)
            assert doc["at"] == ref
            for gid, snap in want.items():
                assert g[gid]["snapshot_id"] == snap, (ref, gid, g[gid])
                assert g[gid]["clients"] == snapshot_members(w.db, snap), (ref, gid)
        for ref in (str(snaps_a[1]), "snapshot:%d" % snaps_a[1]):     # an id pins its group
            g, _ = groups_at("--at", ref)
            assert list(g) == ["GID_a"] and g["GID_a"]["snapshot_id"] == snaps_a[1], g
        # before the first snapshot: a status, never an empty list
        for ref in (time.strftime("%Y-%m-%d", time.gmtime()), "7d"):
            g, doc = groups_at("--at", ref)
            assert all(x["status"] == "no_snapshot" and x["snapshot_id"] is None for x in g.values()), g
            assert doc["summary"]["groups_without_snapshot"] == 2
        p = run(w, "clients", "--at", "7d")
        assert p.stdout == "" and "no complete snapshot at '7d'" in p.stderr, p.stderr
        nd = parse_ndjson(run(w, "clients", "--at", "7d", "--format", "ndjson").stdout)
        assert [r["status"] for r in nd] == ["no_snapshot", "no_snapshot"], nd

        # globs, on the client ID or the device ID
        g, _ = groups_at("--match", "dev-000[0-4]")
        assert g["GID_a"]["clients"] == [c for c in sorted(inv[(INST, "GID_a")]) if c.split("@@@")[1] in
                                         ["dev-%04d" % i for i in range(5)]], g["GID_a"]
        assert g["GID_b"]["clients"] == gen("GID_b", 5)
        g, _ = groups_at("--match", "GID_b@@@*", "--group", "GID_b", "--instance", INST)
        assert list(g) == ["GID_b"] and len(g["GID_b"]["clients"]) == 6
        g, _ = groups_at("--match", "*<script>*")
        assert g["GID_a"]["clients"] == ["GID_a@@@<script>x</script>"] and g["GID_b"]["clients"] == []

        # formats read back by parsers: csv, ndjson, text
        rows, head = parse_csv(run(w, "clients", "--format", "csv").stdout)
        assert head == ["instance_id", "group_id", "snapshot_id", "snapshot_at", "client_id", "device_id"]
        assert sorted(r["client_id"] for r in rows if r["group_id"] == "GID_a") == sorted(inv[(INST, "GID_a")])
        for r in rows:
            assert r["device_id"] == device(r["client_id"]) and r["snapshot_at"].endswith("Z"), r
        nd = parse_ndjson(run(w, "clients", "--format", "ndjson").stdout)
        assert sorted((r["group_id"], r["client_id"]) for r in nd) == sorted(
            (k[1], c) for k, v in inv.items() for c in v)
        assert all(r["type"] == "client" and r["device_id"] == device(r["client_id"]) for r in nd)
        lines = run(w, "clients", "--group", "GID_a").stdout.splitlines()
        assert len(lines) == len(inv[(INST, "GID_a")])
        assert '%s\tGID_a\t%d\t"GID_a@@@new\\nline"' % (INST, snaps_a[-1]) in lines, lines[:3]
        assert '%s\tGID_a\t%d\tGID_a@@@设备-1' % (INST, snaps_a[-1]) in lines
        # -o: atomic, same bytes as stdout
        out = os.path.join(w.dir, "clients.csv")
        p = run(w, "clients", "--format", "csv", "-o", out)
        assert p.stdout == "" and open(out, newline="").read() == run(w, "clients", "--format", "csv").stdout
        assert not [f for f in os.listdir(w.dir) if ".tmp" in f]
        # -d without a config
        cs.expect(cs.run(["-d", w.db, "clients", "--format", "json"]), 0)

        # ndjson for diff and snapshots: the same records as their JSON
        for refs in (("--from", "run:1"),):
            doc = parse_json(run(w, "diff", "--format", "json", *refs).stdout)
            nd = parse_ndjson(run(w, "diff", "--format", "ndjson", *refs).stdout)
            heads = [r for r in nd if r["type"] == "group"]
            assert [(r["group_id"], r["from_snapshot"], r["to_snapshot"], r["status"]) for r in heads] == [
                (g["group_id"], g["from_snapshot"], g["to_snapshot"], g["status"]) for g in doc["groups"]]
            for g in doc["groups"]:
                for change in ("added", "removed"):
                    got = [r["client_id"] for r in nd if r["type"] == "change" and r["change"] == change
                           and r["group_id"] == g["group_id"]]
                    assert got == g[change], (refs, change, got, g[change])
                    assert sum(1 for r in heads if r["group_id"] == g["group_id"] and r[change] == len(got)) == 1
        assert any(r["type"] == "change" for r in nd)
        snaps = parse_json(run(w, "snapshots", "--format", "json").stdout)
        assert parse_ndjson(run(w, "snapshots", "--format", "ndjson").stdout) == snaps
        run(w, "snapshots", "--format", "html", status=64)

        # errors
        assert "is not a REF" in run(w, "clients", "--at", "soon", status=64).stderr
        assert "not complete" in run(w, "clients", "--at", str(failed_b), status=64).stderr
        run(w, "clients", "--group", "GID_zzz", status=64)
        run(w, "clients", "--format", "html", status=64)
        run(w, "clients", "extra", status=64)
    finally:
        w.close()


def test_history():
    w = build_history()
    try:
        x, dev = w.x, device(w.x)
        snaps_a = complete(w.db, "GID_a")
        ch = cs.query(w.db, "SELECT change, snapshot_id FROM changes WHERE client_id = ? ORDER BY snapshot_id", (x,))
        assert [c for c, _ in ch] == ["added", "removed", "added"], ch
        for q in (x, dev):            # by client ID and by device ID
            doc = parse_json(run(w, "history", q, "--format", "json", "--group", "GID_a").stdout)
            assert doc["query"] == q and doc["glob"] is False and doc["pruned"] == []
            (c,) = doc["clients"]
            assert c["client_id"] == x and c["device_id"] == dev and c["history_pruned_before"] is None
            assert [(e["event"], e["snapshot_id"]) for e in c["events"]] == [
                ("added", ch[0][1]), ("removed", ch[1][1]), ("re-added", ch[2][1])], c["events"]
            runs = dict(cs.query(w.db, "SELECT snapshot_id, run_id FROM snapshots"))
            ats = dict(cs.query(w.db, "SELECT snapshot_id, finished_at FROM snapshots"))
            for e in c["events"]:
                assert e["run_id"] == runs[e["snapshot_id"]] and e["at"] == ats[e["snapshot_id"]], e
            assert c["periods"] == [
                {"from_snapshot": ch[0][1], "from": ats[ch[0][1]], "to_snapshot": ch[1][1],
                 "to": ats[ch[1][1]], "held": False},
                {"from_snapshot": ch[2][1], "from": ats[ch[2][1]], "to_snapshot": None, "to": None,
                 "held": True}], c["periods"]
        # the same device ID in two groups: both listed
        doc = parse_json(run(w, "history", dev, "--format", "json").stdout)
        assert [(c["group_id"], c["client_id"]) for c in doc["clients"]] == [("GID_a", x), ("GID_b", "GID_b@@@" + dev)]
        doc = parse_json(run(w, "history", dev, "--format", "json", "--group", "GID_b").stdout)
        assert len(doc["clients"]) == 1
        # a glob
        doc = parse_json(run(w, "history", "GID_b@@@dev-000[0-2]", "--format", "json").stdout)
        assert doc["glob"] is True and [c["client_id"] for c in doc["clients"]] == gen("GID_b", 3)
        assert all(c["events"][0]["event"] == "added" for c in doc["clients"])
        # hostile IDs in every format
        doc = parse_json(run(w, "history", "GID_a@@@*", "--format", "json").stdout)
        assert {c["client_id"] for c in doc["clients"]} >= set(HOSTILE)
        doc = parse_json(run(w, "history", HOSTILE[0], "--format", "json").stdout)   # exact
        assert [c["client_id"] for c in doc["clients"]] == [HOSTILE[0]]
        nd = parse_ndjson(run(w, "history", "GID_a@@@*", "--format", "ndjson").stdout)
        ev = [r for r in nd if r["type"] == "event"]
        assert {r["client_id"] for r in ev} >= set(HOSTILE)
        assert [r["event"] for r in ev if r["client_id"] == x] == ["added", "removed", "re-added"]
        assert len([r for r in nd if r["type"] == "period" and r["client_id"] == x]) == 2
        rows, head = parse_csv(run(w, "history", "GID_a@@@*", "--format", "csv").stdout)
        assert head == ["instance_id", "group_id", "client_id", "device_id", "event", "snapshot_id",
                        "run_id", "at", "history_pruned_before"]
        assert {r["client_id"] for r in rows} >= set(HOSTILE)
        assert [r["event"] for r in rows if r["client_id"] == x] == ["added", "removed", "re-added"]
        assert all(r["device_id"] == device(r["client_id"]) for r in rows)
        text = run(w, "history", x).stdout
        assert "re-added" in text and "until now (still held" in text and "pruned" not in text, text
        assert '"GID_a@@@new\\nline"' in run(w, "history", "GID_a@@@new*").stdout
        # nothing matches: exit 1, a message, no report
        p = run(w, "history", "no-such-device", status=1)
        assert p.stdout == "" and "no client ID or device ID equals 'no-such-device'" in p.stderr, p.stderr
        run(w, "history", status=64)
        run(w, "history", "a", "b", status=64)

        # pruned history: said honestly; a device that only lived in pruned snapshots is gone
        removed_early = w.added["removed"][0]
        assert run(w, "history", removed_early).stdout
        run(w, "prune", "--keep-last", "2")
        kept_a = complete(w.db, "GID_a")
        assert len(kept_a) == 2
        p = run(w, "history", removed_early, status=1)
        assert "history before snapshot %d was pruned" % kept_a[0] in p.stderr, p.stderr
        doc = parse_json(run(w, "history", x, "--format", "json", "--group", "GID_a").stdout)
        (c,) = doc["clients"]
        assert c["history_pruned_before"] == kept_a[0]
        assert {"instance_id": INST, "group_id": "GID_a", "before_snapshot": kept_a[0]} in doc["pruned"]
        # what survives: the interval still open; its start snapshot is pruned (no run, no time)
        # the period that ended before the kept snapshots is gone with them; the re-add is the
        # first event left, at a kept snapshot
        runs = dict(cs.query(w.db, "SELECT snapshot_id, run_id FROM snapshots"))
        assert ch[2][1] in kept_a
        assert [(e["event"], e["snapshot_id"], e["run_id"]) for e in c["events"]] == [
            ("added", ch[2][1], runs[ch[2][1]])], c["events"]
        assert c["periods"][0]["from_snapshot"] == ch[2][1] and c["periods"][0]["held"] is True
        # a device held since the first (pruned) snapshot keeps that snapshot's id, without
        # run or time
        old = next(c for c in gen("GID_a", 12) if c not in w.added["removed"] and c != x)
        doc = parse_json(run(w, "history", old, "--format", "json").stdout)
        (c,) = doc["clients"]
        assert c["events"] == [{"event": "added", "snapshot_id": snaps_a[0], "run_id": None, "at": None}], c
        assert snaps_a[0] not in kept_a and c["periods"][0]["from"] is None
        text = run(w, "history", x, "--group", "GID_a").stdout
        assert "history before snapshot %d was pruned" % kept_a[0] in text, text
        nd = parse_ndjson(run(w, "history", x, "--format", "ndjson").stdout)
        assert all(r["history_pruned_before"] == kept_a[0] for r in nd if r["type"] == "event" and r["group_id"] == "GID_a")
    finally:
        w.close()


def write(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)
    return path


def test_audit():
    w = cs.World({"GID_a": gen("GID_a", cs.scale(30, 10)) + HOSTILE, "GID_b": gen("GID_b", 5)})
    try:
        w.sync()
        w.sim.mutate(add=2, instance=INST, group="GID_a")
        w.sync()
        inv = cs.inventory(w.db)
        held_devices = {device(c) for v in inv.values() for c in v}
        d = w.dir
        # the register: every held device but two, plus two that hold nothing; BOM, CRLF,
        # comments, blank lines and blanks around an ID
        drop = ["dev-0001", "设备-1", "<script>x</script>"]
        register = sorted(held_devices - set(drop) - {h.split("@@@", 1)[1] for h in HOSTILE if "\n" in h})
        text = "\ufeff# asset register\r\n\r\n" + "".join("  %s \r\n" % r if i % 3 == 0 else "%s\n" % r
                                                          for i, r in enumerate(register))
        text += "ghost-1\n# decommissioned\nghost-2"       # no final newline
        reg = write(os.path.join(d, "reg.txt"), text.encode("utf-8"))
        doc = parse_json(run(w, "audit", "--expected", reg, "--format", "json").stdout)
        unexpected = sorted(u for g in doc["groups"] for u in g["unexpected"])
        want_unexpected = sorted(c for v in inv.values() for c in v if device(c) not in register)
        assert unexpected == want_unexpected, (unexpected, want_unexpected)
        assert "GID_a@@@dev-0001" in unexpected and "GID_b@@@dev-0001" in unexpected
        assert "GID_a@@@new\nline" in unexpected
        lines = text.split("\n")
        assert doc["missing"] == [{"id": "ghost-1", "line": lines.index("ghost-1") + 1},
                                  {"id": "ghost-2", "line": len(lines)}], doc["missing"]
        s = doc["summary"]
        assert s["register_ids"] == len(register) + 2 and s["unexpected"] == len(want_unexpected)
        assert s["missing"] == 2 and s["drift"] is True and s["groups"] == 2
        for g in doc["groups"]:
            assert g["clients"] == len(inv[(INST, g["group_id"])]) and g["status"] == "ok"
            assert g["expected"] + g["unexpected_count"] == g["clients"]
        # --detailed-exitcode: 2 with drift, 0 clean
        run(w, "audit", "--expected", reg, "--detailed-exitcode", status=2)
        run(w, "audit", "--expected", reg, status=0)
        clean = write(os.path.join(d, "clean.csv"), b"")
        with open(clean, "w", newline="", encoding="utf-8") as f:
            wr = csv.writer(f, lineterminator="\r\n")
            wr.writerow(["site", "client", "note"])
            for c in sorted(c for v in inv.values() for c in v):
                wr.writerow(["x,y", c, 'said "hi"\nthere'])
            wr.writerow(["z", "", "not provisioned"])          # empty value: skipped, counted
        p = run(w, "audit", "--expected", clean, "--column", "client", "--by", "client",
                "--detailed-exitcode")
        assert " 0 unexpected, 0 missing" in p.stdout and "1 row(s) with an empty 'client'" in p.stderr, p.stdout + p.stderr
        # --by client against device IDs: nothing matches
        doc = parse_json(run(w, "audit", "--expected", reg, "--by", "client", "--format", "json").stdout)
        assert doc["summary"]["missing"] == doc["summary"]["register_ids"]
        # --at and --group
        doc = parse_json(run(w, "audit", "--expected", reg, "--at", "run:1", "--group", "GID_b",
                             "--format", "json").stdout)
        assert [g["group_id"] for g in doc["groups"]] == ["GID_b"] and doc["at"] == "run:1"
        # a group without a snapshot at the REF: reported, and the audit is incomplete
        p = run(w, "audit", "--expected", reg, "--at", "7d", "--format", "json", status=1)
        assert all(g["status"] == "no_snapshot" for g in json.loads(p.stdout)["groups"])
        assert "the audit is incomplete" in p.stderr

        # formats read back: csv, ndjson, text, html
        rows, head = parse_csv(run(w, "audit", "--expected", reg, "--format", "csv").stdout)
        assert head == ["finding", "instance_id", "group_id", "snapshot_id", "client_id", "device_id",
                        "register_id", "register_line"]
        assert sorted(r["client_id"] for r in rows if r["finding"] == "unexpected") == want_unexpected
        assert [(r["register_id"], r["register_line"]) for r in rows if r["finding"] == "missing"] == [
            ("ghost-1", str(lines.index("ghost-1") + 1)), ("ghost-2", str(len(lines)))]
        nd = parse_ndjson(run(w, "audit", "--expected", reg, "--format", "ndjson").stdout)
        assert [r["type"] for r in nd][:1] == ["group"] and nd[-1]["type"] == "summary"
        assert sorted(r["client_id"] for r in nd if r["type"] == "unexpected") == want_unexpected
        assert [r["id"] for r in nd if r["type"] == "missing"] == ["ghost-1", "ghost-2"]
        assert nd[-1]["summary"]["drift"] is True
        text = run(w, "audit", "--expected", reg).stdout
        assert '  unexpected  "GID_a@@@new\\nline"' in text and "  missing  ghost-1" in text, text
        out = os.path.join(d, "audit.html")
        p = run(w, "audit", "--expected", reg, "--format", "html", "-o", out)
        assert p.stdout == "" and not [f for f in os.listdir(d) if ".tmp" in f]
        page = open(out, encoding="utf-8").read()
        chk = Checker()
        chk.feed(page)
        chk.close()
        assert not chk.errors and chk.stack == [] and chk.scripts == 0, (chk.errors, chk.stack)
        assert "Content-Security-Policy" in page and "default-src 'none'" in page
        assert chk.cells == {"sum-groups": "2", "sum-clients": str(sum(len(v) for v in inv.values())),
                             "sum-unexpected": str(len(want_unexpected)), "sum-missing": "2"}, chk.cells
        assert chk.items == {"unexpected-list": len(want_unexpected), "missing-list": 2}, chk.items
        assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
        assert "http://" not in page

        # each bad register: a clear error naming FILE:LINE, or a usage error
        bad = [
            ("empty", b"", None, "the register is empty"),
            ("comments only", b"# nothing\n\n  \n", None, "the register is empty"),
            ("header only", b"client\r\n", "client", "the register is empty (no IDs below the header)"),
            ("no column", b"site,device\r\nx,dev-1\r\n", "client",
             ":1: the header has no column 'client' (columns: site, device)"),
            ("duplicate", b"dev-1\ndev-2\n# x\ndev-1\n", None, ":4: 'dev-1' repeats line 1"),
            ("duplicate csv", b"id\n\"dev-1\"\ndev-1\n", "id", ":3: 'dev-1' repeats line 2"),
            ("latin-1", b"dev-1\ncaf\xe9\n", None, ":2: byte 4 (0xe9) is not UTF-8"),
            ("utf-16", "dev-1\n".encode("utf-16"), None, ":1: the register is UTF-16"),
            ("nul", b"dev-1\nde\x00v\n", None, ":2: byte 3 (0x00) is not UTF-8"),
            ("unclosed quote", b"id\n\"dev-1\ndev-2\n", "id", ":2: a quoted field is never closed"),
            ("after quote", b"id\n\"dev\"x\n", "id", ":2: a character after a closing quote"),
            ("short row", b"a,id\nx,dev-1\ny\n", "id", ":3: no value for column 'id' (the row has 1 field(s))"),
            ("long line", b"x" * 70000 + b"\n", None, ":1: line longer than 65536 bytes"),
        ]
        for name, data, column, msg in bad:
            path = write(os.path.join(d, "bad-%s.txt" % name.replace(" ", "-")), data)
            args = ["audit", "--expected", path] + (["--column", column] if column else [])
            p = run(w, *args, "--detailed-exitcode", status=1)
            assert msg in p.stderr and path in p.stderr, (name, p.stderr)
            assert p.stdout == "", name
        run(w, "audit", status=64)                                        # no --expected
        p = run(w, "audit", "--expected", write(os.path.join(d, "r.csv"), b"id\nx\n"), status=64)
        assert "--column" in p.stderr
        p = run(w, "audit", "--expected", os.path.join(d, "nope.txt"), status=1)
        assert "cannot open the register" in p.stderr
        run(w, "audit", "--expected", reg, "--by", "serial", status=64)
        run(w, "audit", "--expected", reg, "--at", "nope", status=64)
        # the register from standard input
        with open(reg, "rb") as f:
            p = cs.run(["-c", w.cfg, "audit", "--expected", "-", "--format", "json"], stdin=f)
        cs.expect(p, 0)
        assert json.loads(p.stdout)["summary"]["missing"] == 2
    finally:
        w.close()


def audit_key(cid, by):
    """What a register entry is matched against (the contract of audit.h)."""
    return cid.split("@@@", 1)[1] if by == "device" and "@@@" in cid else cid


def test_audit_merge():
    """The merge against a model, by device and by client: a group whose client IDs share
    "GroupID@@@" (read in order), groups whose IDs do not (sorted by device ID: other
    prefixes, no "@@@", an empty device part, a first "@@@" that is not the last), a client
    ID held by two groups and a device held by several; then which repeated ID is named."""
    mixed = ["GID_m@@@d-2", "AAA@@@d-1", "plain", "zzz@@@plain", "GID_m@@@d-9", "b@@@", "a@@@@b",
             "GID_m@@@d-1", "x@@@d-7@@@y", "GID_n@@@d-3"]
    ordered = gen("GID_n", 6) + ["GID_n@@@d-1", "GID_n@@@d-3", "GID_n@@@"]
    w = cs.World({"GID_m": mixed, "GID_n": ordered, "GID_o": ["only@@@one"], "GID_p": gen("GID_p", 200)})
    try:
        w.sync()
        inv = {g: sorted(ids) for (_, g), ids in cs.inventory(w.db).items()}
        assert sorted(inv) == ["GID_m", "GID_n", "GID_o", "GID_p"], inv
        held = [c for ids in inv.values() for c in ids]
        # entries that match (device IDs, whole IDs), ones that match nothing, shuffled; GID_p
        # and the ghosts make more findings of each kind than one batch of writes holds
        entries = ["d-1", "d-3", "plain", "", "@b", "d-7@@@y", "dev-0002", "GID_n@@@d-3", "one",
                   "ghost", "GID_m@@@d-2", "AAA", "only@@@one", "d-0"]
        extra = ["dev-%04d" % i for i in range(0, 200, 3)] + ["ghost-%03d" % i for i in range(140)]
        random.Random(3).shuffle(extra)
        entries.remove("")   # a blank line is no entry
        entries[7:7] = extra
        lines = ["# register", ""] + entries[7:] + ["  %s  " % e for e in entries[:7]]
        reg = write(os.path.join(w.dir, "reg.txt"), ("\n".join(lines) + "\n").encode())
        line_of = {l.strip(): i + 1 for i, l in enumerate(lines) if l.strip() and not l.startswith("#")}
        for by in ("device", "client"):
            doc = parse_json(run(w, "audit", "--expected", reg, "--by", by, "--format", "json").stdout)
            for g in doc["groups"]:
                want = [c for c in inv[g["group_id"]] if audit_key(c, by) not in entries]
                assert g["unexpected"] == want, (by, g["group_id"], g["unexpected"], want)
                assert g["clients"] == len(inv[g["group_id"]]) and g["unexpected_count"] == len(want)
            keys = {audit_key(c, by) for c in held}
            want_missing = sorted(({"id": e, "line": line_of[e]} for e in entries if e not in keys),
                                  key=lambda m: m["line"])
            assert doc["missing"] == want_missing, (by, doc["missing"], want_missing)
            assert doc["summary"]["register_ids"] == len(entries)
        # the repeat named is the one whose second line comes first, whatever the ID order
        for data, msg in [(b"z\na\nz\nq\na\n", ":3: 'z' repeats line 1"),
                          (b"b\na\na\nb\n", ":3: 'a' repeats line 2"),
                          (b"x\ny\nx\nx\ny\n", ":3: 'x' repeats line 1")]:
            path = write(os.path.join(w.dir, "dup.txt"), data)
            for by in ("device", "client"):
                p = run(w, "audit", "--expected", path, "--by", by, status=1)
                assert msg in p.stderr and p.stdout == "", (data, by, p.stderr)
        # a bad register from standard input (read once, as it is sorted)
        with open(write(os.path.join(w.dir, "bad.txt"), b"d-1\nd\xff\n"), "rb") as f:
            p = cs.run(["-c", w.cfg, "audit", "--expected", "-"], stdin=f)
        cs.expect(p, 1)
        assert "-:2: byte 2 (0xff) is not UTF-8" in p.stderr, p.stderr
    finally:
        w.close()


class Checker(html.parser.HTMLParser):
    """Well-formedness (every non-void element closed in order), counts and list sizes."""
    VOID = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.cells, self.items = [], [], {}, {}
        self.cur_id, self.cur_list, self.scripts = None, None, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag not in self.VOID:
            self.stack.append(tag)
        self.cur_id = a.get("id")
        if tag == "ul":
            self.cur_list = a.get("class")
            self.items.setdefault(self.cur_list, 0)
        if tag == "li" and self.cur_list:
            self.items[self.cur_list] += 1

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


def test_retention_equals_prune():
    """Two databases fed from one simulator: one with a retention policy, the other pruned by
    hand with the same policy after every sync.  They must hold the same snapshots, members
    and changes, run for run."""
    sim = harness.Sim("--dataset", cs.write_dataset(os.path.join(harness.tmpdir(), "d.json"), {
        INST: {"GID_a": gen("GID_a", cs.scale(60, 15)) + HOSTILE, "GID_b": gen("GID_b", 8)}})).start()
    d = harness.tmpdir()
    try:
        inst = [{"id": INST, "endpoint": sim.endpoint, "groups": ["GID_a", "GID_b"]}]
        metrics = os.path.join(d, "m.prom")
        auto_db, hand_db = os.path.join(d, "auto.db"), os.path.join(d, "hand.db")

        def auto_config(policy):
            return cs.write_config(os.path.join(d, "auto.yaml"), inst, database=auto_db,
                                   extra="retention: %s\nmetrics_file: %s\n" % (policy, cs.yaml_str(metrics)))
        auto = auto_config("{ keep_last: 2 }")
        hand = cs.write_config(os.path.join(d, "hand.yaml"), inst, database=hand_db)

        def sync(cfg, *extra):
            p = cs.run(["-c", cfg, "-v", "sync"] + list(extra))
            cs.expect(p, 0, "sync " + cfg)
            return p

        def pruned_metric():
            prom = open(metrics).read()
            assert re.search(r"^credsync_last_run_pruned_runs \d+$", prom, re.M), prom
            return int(re.search(r"^credsync_last_run_pruned_snapshots (\d+)$", prom, re.M).group(1))

        def state(db):
            snaps = [(s["snapshot_id"], s["run_id"], s["group_id"], s["status"], s["client_count"],
                      s["added"], s["removed"]) for s in cs.snapshots(db)]
            members = cs.query(db, "SELECT snapshot_id, group_id, client_id FROM snapshot_clients ORDER BY 1, 3")
            changes = cs.query(db, "SELECT snapshot_id, change, client_id FROM changes ORDER BY 1, 2, 3")
            runs = cs.query(db, "SELECT run_id FROM runs ORDER BY 1")
            return snaps, members, changes, runs

        pruned_total = 0
        for step in range(4):
            if step:
                sim.mutate(add=2, remove=1, instance=INST)
            p = sync(auto)
            n = pruned_metric()
            assert "retention pruned %d snapshot(s)" % n in p.stderr, p.stderr
            pruned_total += n
            sync(hand)
            cs.expect(cs.run(["-c", hand, "prune", "--keep-last", "2"]), 0)
            assert state(auto_db) == state(hand_db), "step %d: retention differs from prune --keep-last 2" % step
        assert pruned_total == 4          # two groups, from the third sync on
        for gid in ("GID_a", "GID_b"):
            assert len(complete(auto_db, gid)) == 2
        # a dry run prunes nothing
        before = cs.snapshots(auto_db)
        cs.expect(cs.run(["-c", auto, "sync", "--dry-run"]), 0)
        assert cs.snapshots(auto_db) == before
        # both rules: kept while either keeps it; everything is younger than 1h, so nothing goes
        auto = auto_config("{ keep_last: 1, keep_for: 1h }")
        sync(auto)
        assert pruned_metric() == 0 and len(complete(auto_db, "GID_a")) == 3
        sync(hand)
        p = cs.run(["-c", hand, "prune", "--keep-last", "1", "--older-than", "1h"])
        cs.expect(p, 0)
        assert p.stdout.startswith("deleted 0 snapshot(s)"), p.stdout
        assert state(auto_db) == state(hand_db)
        # keep_for alone: what finished before the policy's horizon goes, the latest stays
        time.sleep(2.1)      # finish times are whole seconds
        auto = auto_config("{ keep_for: 1s }")
        sync(auto)
        assert pruned_metric() > 0 and len(complete(auto_db, "GID_a")) == 1
        sync(hand)
        cs.expect(cs.run(["-c", hand, "prune", "--older-than", "1s"]), 0)
        assert state(auto_db) == state(hand_db), "retention differs from prune --older-than 1s"
        cs.assert_inventory(auto_db, sim, [(INST, "GID_a"), (INST, "GID_b")])
    finally:
        sim.stop()


if __name__ == "__main__":
    cs.main([test_clients, test_history, test_audit, test_audit_merge, test_retention_equals_prune])
