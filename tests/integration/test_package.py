"""The Debian package: contrib/package.sh builds it with CPack, lintian finds no error in it,
`dpkg -i` installs it, the installed credsync and credsync-sim work together on 127.0.0.1
(a sync, the installed completion), and `dpkg --purge` leaves no file behind.

It installs into /usr/bin and /lib/systemd/system, so it needs root and skips otherwise
(exit 77, which ctest reports as skipped, never as passed); it also refuses to run where a
credsync is already installed.  Everything it needs comes from the machine (tests/run.sh
installs dpkg-dev and lintian before the network is cut): nothing is downloaded."""
import os
import shutil
import subprocess
import sys

import cs
import harness

SRC = os.environ.get("CREDSYNC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SKIP = 77
PKG = "credsync"


def skip(why):
    print("SKIP: %s" % why, flush=True)
    sys.exit(SKIP)


def sh(args, **kw):
    p = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    return p


def must(args, what, **kw):
    p = sh(args, **kw)
    assert p.returncode == 0, "%s: %s exited %d\nstdout:\n%s\nstderr:\n%s" % (
        what, " ".join(args), p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    return p


def installed():
    p = sh(["dpkg-query", "-W", "-f=${Status}", PKG])
    return p.returncode == 0 and "installed" in p.stdout and "not-installed" not in p.stdout


def preconditions():
    if os.geteuid() != 0:
        skip("needs root: it installs the package with dpkg -i and purges it")
    for tool in ("cmake", "cpack", "dpkg", "dpkg-deb", "dpkg-shlibdeps", "lintian"):
        if not shutil.which(tool):
            skip("%s is not installed (tests/run.sh installs dpkg-dev and lintian)" % tool)
    if installed():
        skip("a credsync package is installed on this machine; refusing to replace it")
    for path in ("/usr/bin/credsync", "/usr/bin/credsync-sim"):
        if os.path.lexists(path):
            skip("%s exists outside any package; refusing to overwrite it" % path)


def build(d):
    env = cs.clean_env({"BUILD": os.path.join(d, "build-deb")})
    env.pop("CMAKE_ARGS", None)
    p = must(["bash", os.path.join(SRC, "contrib", "package.sh")], "package.sh", env=env)
    deb = p.stdout.strip().splitlines()[-1]
    assert deb.endswith("_amd64.deb") or deb.endswith(".deb"), p.stdout
    return deb


def check_control(deb):
    info = must(["dpkg-deb", "-f", deb, "Depends"], "dpkg-deb -f").stdout
    # from dpkg-shlibdeps: each linked library's package, never a hand-written list
    for lib in ("libc6", "libcurl4", "libsqlite3-0", "libcjson1", "libyaml-0-2", "libssl3",
                "libmicrohttpd12"):
        assert lib in info, (lib, info)


def package_files(deb):
    """The paths the package ships (files and symlinks) and its directories."""
    out = must(["dpkg-deb", "-c", deb], "dpkg-deb -c").stdout
    files, dirs = [], []
    for line in out.splitlines():
        path = line.split(None, 5)[5].split(" -> ")[0]
        path = "/" + path.lstrip("./")
        (dirs if line.startswith("d") else files).append(path.rstrip("/") or "/")
    return files, dirs


def lint(deb):
    p = sh(["lintian", "--no-cfg", deb])
    print(p.stdout, end="", flush=True)
    errors = [l for l in p.stdout.splitlines() if l.startswith("E:")]
    assert not errors, "lintian errors:\n" + "\n".join(errors)
    assert p.returncode in (0, 1) and "E:" not in p.stdout, p.stderr


def use_installed(d):
    p = must(["/usr/bin/credsync", "--version"], "installed --version")
    assert p.stdout.startswith("credsync 0.1.0"), p.stdout
    p = must(["zcat", "/usr/share/man/man1/credsync.1.gz"], "the installed man page")
    assert ".SH EXIT STATUS" in p.stdout
    # the installed simulator and credsync, on loopback only
    port_file = os.path.join(d, "port")
    sim = subprocess.Popen(["/usr/bin/credsync-sim", "--listen", "127.0.0.1:0", "--port-file",
                            port_file, "--instances", "1", "--groups", "2", "--devices", "150"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    try:
        port = None
        for _ in range(1000):
            if os.path.exists(port_file):
                with open(port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    port = int(text)
                    break
            assert sim.poll() is None, sim.stderr.read()
            subprocess.run(["sleep", "0.01"])
        assert port, "credsync-sim wrote no port file"
        db = os.path.join(d, "inv.db")
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-sim-1", "endpoint": "http://127.0.0.1:%d" % port, "groups": "all"}],
            database=db)
        p = sh(["/usr/bin/credsync", "-c", cfg, "sync"], env=cs.cred_env())
        assert p.returncode == 0, p.stdout + p.stderr
        n = cs.query(db, "SELECT count(*) FROM current_clients")[0][0]
        assert n == 300, n
        # README's first minute with the installed binary: init, check --online, sync
        # (the region's endpoint is the simulator, through the documented override)
        env = cs.cred_env(extra={"CREDSYNC_ENDPOINT_TEMPLATE": "http://{region}.localhost:%d" % port})
        out, db2 = os.path.join(d, "first.yaml"), os.path.join(d, "first.db")
        p = must(["/usr/bin/credsync", "-d", db2, "init", "--region", "cn-hangzhou", "-o", out],
                 "installed init", env=env)
        assert "credsync -c %s check --online" % out in p.stdout, p.stdout
        p = must(["/usr/bin/credsync", "-c", out, "check", "--online"], "installed check", env=env)
        assert p.stdout.count(": OK") == 2, p.stdout
        must(["/usr/bin/credsync", "-c", out, "sync"], "installed sync of init's config", env=env)
        assert cs.query(db2, "SELECT count(*) FROM current_clients")[0][0] == 300
    finally:
        sim.terminate()
        sim.wait(timeout=15)
    # the installed bash completion finds the installed credsync on PATH
    p = must(["bash", "-c", "source /usr/share/bash-completion/completions/credsync; "
              "COMP_WORDS=(credsync sn); COMP_CWORD=1; _credsync; echo \"${COMPREPLY[*]}\""],
             "installed completion", env=dict(cs.clean_env(), PATH="/usr/bin:/bin"))
    assert p.stdout.strip() == "snapshots", p.stdout
    # the units are installed, and the package enabled nothing
    for unit in ("credsync.service", "credsync.timer"):
        assert os.path.exists("/lib/systemd/system/" + unit), unit
        for wants in ("timers.target.wants", "multi-user.target.wants"):
            assert not os.path.lexists("/etc/systemd/system/%s/%s" % (wants, unit)), unit
    with open("/lib/systemd/system/credsync.service") as f:
        assert "ExecStart=/usr/bin/credsync " in f.read()
    if shutil.which("systemd-analyze"):
        must(["systemd-analyze", "verify", "/lib/systemd/system/credsync.service",
              "/lib/systemd/system/credsync.timer"], "systemd-analyze verify")
    else:
        print("systemd-analyze not installed: the units' syntax is not verified")


def test_package():
    preconditions()
    d = harness.tmpdir()
    deb = build(d)
    check_control(deb)
    lint(deb)
    files, dirs = package_files(deb)
    for want in ("/usr/bin/credsync", "/usr/bin/credsync-sim", "/usr/share/man/man1/credsync.1.gz",
                 "/usr/share/man/man1/credsync-sim.1.gz",
                 "/usr/share/doc/credsync/examples/example.yaml",
                 "/usr/share/doc/credsync/examples/credsync",
                 "/usr/share/doc/credsync/queries/churn_by_group.sql",
                 "/usr/share/doc/credsync/copyright",
                 "/lib/systemd/system/credsync.service", "/lib/systemd/system/credsync.timer",
                 "/usr/share/bash-completion/completions/credsync",
                 "/usr/share/zsh/vendor-completions/_credsync"):
        assert want in files, (want, files)
    dirs_before = {x for x in dirs if os.path.isdir(x)}
    try:
        must(["dpkg", "-i", deb], "dpkg -i")
        assert installed()
        use_installed(d)
    finally:
        p = sh(["dpkg", "--purge", PKG])
    assert p.returncode == 0, p.stdout + p.stderr
    assert not installed()
    left = [f for f in files if os.path.lexists(f)]
    left += [x for x in dirs if x not in dirs_before and os.path.lexists(x)]
    assert not left, "left behind after purge: %s" % left


if __name__ == "__main__":
    cs.main([test_package])
