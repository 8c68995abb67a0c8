"""contrib/queries/*.sql run by the sqlite3 shell, as a user would, against a history built
through credsync-sim: each query's rows are checked against what was done."""
import csv
import io
import os
import shutil
import subprocess

import cs

QUERIES = os.path.join(os.environ.get("CREDSYNC_SOURCE_DIR",
                                      os.path.join(os.path.dirname(__file__), "..", "..")),
                       "contrib", "queries")


def run_query(db, name):
    """Rows of a query file, through the sqlite3 CLI when installed (else Python's sqlite3)."""
    with open(os.path.join(QUERIES, name)) as f:
        sql = f.read()
    if shutil.which("sqlite3"):
        p = subprocess.run(["sqlite3", "-readonly", "-csv", "-header", db], input=sql.encode(),
                           capture_output=True)
        assert p.returncode == 0, p.stderr.decode()
        rows = list(csv.reader(io.StringIO(p.stdout.decode(), newline="")))
        return rows[1:] if rows else []
    return [[("" if v is None else str(v)) for v in r] for r in cs.query(db, sql)]


def gen(gid, n, start=0):
    return ["%s@@@dev-%03d" % (gid, i) for i in range(start, start + n)]


def test_queries():
    w = cs.World({"GID_a": gen("GID_a", 10), "GID_b": gen("GID_b", 4)})
    try:
        w.sync()                                                          # baseline
        w.edit(lambda d: d["mqtt-a"]["GID_a"].extend(["GID_a@@@new-1", "GID_a@@@new-2"]))
        w.sync()                                                          # +2 in A
        w.edit(lambda d: d["mqtt-a"]["GID_a"].remove("GID_a@@@dev-003"))
        w.sync()                                                          # -1 in A
        w.edit(lambda d: d["mqtt-a"]["GID_a"].append("GID_a@@@dev-003"))
        w.sync()                                                          # re-add
        w.edit(lambda d: d["mqtt-a"].__setitem__("GID_b", gen("GID_b", 4)[2:] + ["GID_b@@@x"]))
        w.sync()                                                          # B: -2 +1

        rows = run_query(w.db, "added_last_7_days.sql")
        added = sorted(r[4] for r in rows)
        assert added == ["GID_a@@@dev-003", "GID_a@@@new-1", "GID_a@@@new-2", "GID_b@@@x"], rows
        assert all(r[3] == r[4].split("@@@")[1] for r in rows)          # device_id column

        rows = run_query(w.db, "churn_by_group.sql")
        assert [(r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
            ("GID_a", "3", "1", "4", "12"), ("GID_b", "1", "2", "3", "3")], rows

        rows = run_query(w.db, "removed_then_readded.sql")
        assert [(r[1], r[3]) for r in rows] == [("GID_a", "GID_a@@@dev-003")], rows
        assert rows[0][4] <= rows[0][5]

        rows = run_query(w.db, "count_per_group_over_time.sql")
        a = [int(r[4]) for r in rows if r[1] == "GID_a"]
        b = [int(r[4]) for r in rows if r[1] == "GID_b"]
        assert a == [10, 12, 11, 12, 12] and b == [4, 4, 4, 4, 3], (a, b)
    finally:
        w.close()


if __name__ == "__main__":
    cs.main([test_queries])
