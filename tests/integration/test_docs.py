"""The help texts match the man page (every option of every command in both), the shipped
example configs load, --version names the libraries, and `cmake --install` puts the
binaries, the man page and the examples where they belong."""
import os
import re
import subprocess

import cs
import harness

SRC = os.environ.get("CREDSYNC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MAN = os.path.join(SRC, "contrib", "man", "credsync.1")
COMMANDS = ["sync", "diff", "snapshots", "prune", "check", "clients", "history", "audit", "init"]
GLOBAL = {"--config", "--database", "--verbose", "--quiet", "--log-format", "--help", "--version"}


def man_text():
    with open(MAN) as f:
        return f.read().replace("\\-", "-")


def man_section(text, cmd):
    """The options of a command's .SS section in the man page."""
    m = re.search(r"^\.SS %s\n(.*?)(?=^\.SS |^\.SH )" % cmd, text, re.S | re.M)
    assert m, "no section for %s in the man page" % cmd
    return set(re.findall(r"--[a-z][a-z-]+", m.group(1)))


def test_help_matches_man_page():
    text = man_text()
    for cmd in COMMANDS:
        p = cs.run(["help", cmd])
        cs.expect(p, 0, "help " + cmd)
        help_opts = set(re.findall(r"--[a-z][a-z-]+", p.stdout))
        man_opts = man_section(text, cmd)
        assert help_opts - {"--help"} == man_opts - {"--help"}, (
            cmd, "only in help: %s" % (help_opts - man_opts), "only in man: %s" % (man_opts - help_opts))
        # and the command's option table has each of them
        with open(os.path.join(SRC, "src", "cmd_%s.c" % cmd)) as f:
            table = f.read()
        for opt in help_opts - {"--help"}:
            assert '{ "%s",' % opt[2:] in table, (cmd, opt)
        # COMMAND --help is the same text
        assert cs.run([cmd, "--help"]).stdout == p.stdout
    p = cs.run(["--help"])
    cs.expect(p, 0)
    for cmd in COMMANDS:
        assert re.search(r"^  %s " % cmd, p.stdout, re.M), cmd
        assert re.search(r"^\.SS %s$" % cmd, text, re.M), cmd
    for opt in GLOBAL:
        assert opt in p.stdout and opt in text, opt
    for status in ("64", "75", "77", "78"):
        assert status in p.stdout and re.search(r"^\.B %s$" % status, text, re.M), status
    cs.expect(cs.run(["help", "nonsense"]), 64)
    cs.expect(cs.run(["nonsense"]), 64)
    cs.expect(cs.run([]), 64)


def test_version_names_libraries():
    p = cs.run(["--version"])
    cs.expect(p, 0)
    for lib in ("credsync 0.1.0", "libcurl", "OpenSSL", "SQLite", "cJSON", "libyaml"):
        assert lib in p.stdout, p.stdout


def test_shipped_configs_load():
    d = harness.tmpdir()
    env = cs.clean_env({"HOME": d})
    for name in ("example.yaml", "demo.yaml"):
        p = cs.run(["-c", os.path.join(SRC, "config", name), "check"], env=env)
        # the config is fine; only credentials are missing in this environment
        assert p.stdout.startswith("config: "), p.stdout + p.stderr
        cs.expect(p, 77, name)


def test_install_tree():
    d = harness.tmpdir()
    build = os.path.dirname(os.path.dirname(harness.credsync_path()))
    p = subprocess.run(["cmake", "--install", build, "--prefix", d], capture_output=True)
    assert p.returncode == 0, p.stderr.decode()
    for rel in ("bin/credsync", "bin/credsync-sim", "share/man/man1/credsync.1.gz",
                "share/doc/credsync/examples/example.yaml",
                "share/doc/credsync/examples/credsync.service",
                "share/doc/credsync/examples/credsync.timer",
                "share/doc/credsync/examples/credsync",
                "share/doc/credsync/queries/churn_by_group.sql"):
        assert os.path.exists(os.path.join(d, rel)), rel
    p = subprocess.run([os.path.join(d, "bin", "credsync"), "--version"], capture_output=True)
    assert p.returncode == 0
    if subprocess.run(["which", "man"], capture_output=True).returncode == 0:
        p = subprocess.run(["man", "-l", os.path.join(d, "share/man/man1/credsync.1.gz")],
                           capture_output=True, env=dict(os.environ, MANWIDTH="100"))
        assert p.returncode == 0 and b"EXIT STATUS" in p.stdout, p.stderr


if __name__ == "__main__":
    cs.main([test_help_matches_man_page, test_version_names_libraries, test_shipped_configs_load,
             test_install_tree])
