"""Trust (issue 14): a full disk.  The database lives on a small tmpfs mounted in a private
mount namespace of this test (unshare -m); a sync that runs out of space ends its snapshot
and its run 'failed' with DiskFull, and once there is room again the next sync completes.
Mounting needs root (or CAP_SYS_ADMIN): without it the test exits 77, which ctest counts as
skipped (SKIP_RETURN_CODE), never as passed."""
import atexit
import os
import shutil
import subprocess
import sys

import cs
import harness

SKIP = 77


def skip(why):
    print("SKIP: %s" % why, flush=True)
    sys.exit(SKIP)


def enter_namespace():
    """Re-runs this script inside a private mount namespace (or skips)."""
    if os.environ.get("CREDSYNC_IT_MNTNS") == "1":
        return
    if os.geteuid() != 0:
        skip("mounting a tmpfs needs root; running as uid %d" % os.geteuid())
    if not shutil.which("unshare"):
        skip("no unshare(1) to make a private mount namespace")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        skip("cannot make a mount namespace: %s" % probe.stderr.decode().strip())
    env = dict(os.environ, CREDSYNC_IT_MNTNS="1")
    p = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                        os.path.abspath(__file__)] + sys.argv[1:], env=env)
    sys.exit(p.returncode)


def mount_tmpfs(size):
    d = harness.tmpdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", d],
                       capture_output=True)
    if p.returncode != 0:
        skip("mount -t tmpfs failed: %s" % p.stderr.decode().strip())
    # unmounted before harness removes its directories (atexit runs the newest first), so
    # the mount point, made in the shared /tmp, goes too
    atexit.register(subprocess.run, ["umount", d])
    return d


def fill(d, leave):
    """Writes a file that leaves about `leave` bytes free on d's file system."""
    path = os.path.join(d, "filler")
    st = os.statvfs(d)
    room = st.f_bavail * st.f_frsize - leave
    chunk = b"\0" * (1 << 20)
    with open(path, "wb") as f:
        while room > 0:
            n = min(room, len(chunk))
            f.write(chunk[:n])
            room -= n
    return path


def test_disk_full():
    d = mount_tmpfs("24m")
    n0, n1 = 200, cs.scale(20000, 8000)
    with harness.Sim("--instances", "1", "--groups", "1", "--devices", n0) as sim:
        db = os.path.join(d, "inv.db")
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": ["GID_sim_1"]}], database=db)
        cs.expect(cs.run(["-c", cfg, "sync"]), 0, "seed")
        sim.mutate(add=n1, group="GID_sim_1")
        filler = fill(d, 512 << 10)
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 1, "sync on a full disk")
        # room again, to read what was recorded (a reader needs its -shm)
        os.unlink(filler)
        last = cs.snapshots(db, "run_id = (SELECT max(run_id) FROM runs)")
        assert len(last) == 1, ("the run that ran out of space left no snapshot", last)
        s = last[0]
        assert s["run_id"] == 2 and s["status"] == "failed" and s["error_code"] == "DiskFull", s
        assert s["finished_at"], s
        run = cs.query(db, "SELECT status, finished_at FROM runs ORDER BY run_id DESC LIMIT 1")[0]
        assert run[0] == "failed" and run[1], run
        assert "DiskFull" in p.stderr or "disk" in p.stderr.lower(), p.stderr
        assert len(cs.inventory(db)[("mqtt-sim-1", "GID_sim_1")]) == n0
        p = cs.run(["-c", cfg, "sync"])
        cs.expect(p, 0, "sync after space was freed")
        s = cs.snapshots(db)[-1]
        assert s["status"] == "complete" and s["client_count"] == n0 + n1, s
        cs.assert_inventory(db, sim, [("mqtt-sim-1", "GID_sim_1")])


if __name__ == "__main__":
    enter_namespace()
    cs.main([test_disk_full])
