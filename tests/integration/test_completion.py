"""Shell completion: contrib/completion/credsync.bash driven the way bash drives it (the
function called with COMP_WORDS and COMP_CWORD set, COMPREPLY read back), against the built
credsync.  The commands and options it offers must be exactly those the help texts name, so
a command added to the help is completed without editing the script."""
import os
import re
import subprocess

import cs
import harness

SRC = os.environ.get("CREDSYNC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(SRC, "contrib", "completion", "credsync.bash")
ZSH_SCRIPT = os.path.join(SRC, "contrib", "completion", "_credsync")

DRIVER = r'''
source "$1"; shift
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
_credsync
printf '%s\n' "${COMPREPLY[@]}"
'''


def complete(*words, env=None, cwd=None):
    """The words bash would offer for the command line `words` (the last one being
    completed); the first word is the built credsync."""
    p = subprocess.run(["bash", "-c", DRIVER, "driver", SCRIPT, os.path.abspath(harness.credsync_path())] + list(words),
                       capture_output=True, env=env or cs.clean_env(), cwd=cwd, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    # completion must never write to the terminal
    assert p.stderr == b"", p.stderr.decode()
    return [w for w in p.stdout.decode().split("\n") if w]


def config(d):
    # the second instance's endpoint is a closed port and it lists its groups with
    # ListGroupId: completion must answer without trying either
    return cs.write_config(os.path.join(d, "c.yaml"), [
        {"id": "mqtt-cn-alpha", "endpoint": "http://127.0.0.1:9", "groups": ["GID_meters", "GID_gw"]},
        {"id": "mqtt-cn-beta", "endpoint": "http://127.0.0.1:9", "groups": ["GID_beta_only"]},
        {"id": "mqtt-cn-gamma", "endpoint": "http://127.0.0.1:9", "groups": "all"},
    ])


def help_commands():
    p = cs.run(["--help"], env=cs.clean_env())
    section = p.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return sorted(re.findall(r"^  ([a-z][a-z0-9-]*) ", section, re.M))


def test_commands_come_from_help():
    cmds = help_commands()
    assert "sync" in cmds and "diff" in cmds and len(cmds) >= 6, cmds
    assert sorted(complete("")) == cmds
    assert complete("sn") == ["snapshots"]
    assert sorted(complete("help", "")) == cmds
    # the hidden helper is never offered
    assert not [w for w in complete("") if w.startswith("_")]
    # after global options the command is still completed
    assert complete("-v", "-c", "x.yaml", "pr") == ["prune"]


def test_options_per_command():
    for cmd in help_commands():
        if cmd == "help":
            continue
        text = cs.run(["help", cmd], env=cs.clean_env()).stdout
        want = set(re.findall(r"--[a-z][a-z0-9-]*", text))
        got = set(complete(cmd, "--"))
        assert want <= got, (cmd, want - got)
        # the global options too, and no other command's
        assert {"--config", "--database", "--verbose", "--log-format"} <= got, (cmd, got)
    assert "--online" in complete("check", "--")
    assert "--online" not in complete("sync", "--")
    assert "--detailed-exitcode" not in complete("sync", "--")
    assert sorted(complete("diff", "--f")) == ["--format", "--from"]
    assert "-o" in complete("diff", "-")


def test_values():
    assert complete("diff", "--format", "") == ["text", "json", "csv", "ndjson", "html"]
    assert complete("snapshots", "--format", "") == ["text", "json", "csv", "ndjson"]
    # --format=j arrives split at '=' as bash splits it
    assert complete("snapshots", "--format", "=", "j") == ["json"]
    assert complete("--log-format", "") == ["text", "json"]
    assert complete("diff", "--from", "") == ["latest", "previous", "run:"]
    assert complete("diff", "--to", "p") == ["previous"]
    # regions for init, from the list credsync knows
    assert sorted(complete("init", "--region", "cn-h")) == ["cn-hangzhou", "cn-hongkong", "cn-huhehaote"]
    assert complete("init", "--all") == ["--all-regions"]
    # an option whose argument has no fixed words offers nothing, not options
    assert complete("sync", "--wait", "") == []


def test_ids_from_config_without_network():
    d = harness.tmpdir()
    cfg = config(d)
    assert complete("-c", cfg, "sync", "--instance", "") == [
        "mqtt-cn-alpha", "mqtt-cn-beta", "mqtt-cn-gamma"]
    assert complete("sync", "-c", cfg, "--instance", "mqtt-cn-b") == ["mqtt-cn-beta"]
    assert sorted(complete("-c", cfg, "sync", "--group", "")) == ["GID_beta_only", "GID_gw", "GID_meters"]
    assert sorted(complete("-c", cfg, "sync", "--instance", "mqtt-cn-alpha", "--group", "")) == [
        "GID_gw", "GID_meters"]
    # the config found through $CREDSYNC_CONFIG, as the command itself would find it
    env = cs.clean_env({"CREDSYNC_CONFIG": cfg})
    assert complete("diff", "--instance", "mqtt-cn-g", env=env) == ["mqtt-cn-gamma"]
    # ... and ./credsync.yaml
    os.rename(cfg, os.path.join(d, "credsync.yaml"))
    assert complete("snapshots", "--group", "GID_m", cwd=d) == ["GID_meters"]
    # no config, or a broken one: nothing offered, nothing printed
    e = harness.tmpdir()
    assert complete("-c", os.path.join(e, "missing.yaml"), "sync", "--instance", "") == []
    with open(os.path.join(e, "bad.yaml"), "w") as f:
        f.write("instances: [\n")
    assert complete("-c", os.path.join(e, "bad.yaml"), "sync", "--group", "") == []


def test_files_where_a_file_is_expected():
    d = harness.tmpdir()
    for name in ("report.html", "report.json", "other.txt"):
        open(os.path.join(d, name), "w").close()
    prefix = os.path.join(d, "rep")
    assert sorted(complete("diff", "-o", prefix)) == [prefix + "ort.html", prefix + "ort.json"]
    assert sorted(complete("diff", "--output", prefix)) == [prefix + "ort.html", prefix + "ort.json"]
    assert complete("-c", os.path.join(d, "oth")) == [os.path.join(d, "other.txt")]
    assert complete("sync", "--metrics-file", os.path.join(d, "oth")) == [os.path.join(d, "other.txt")]


def test_zsh_script_parses():
    # zsh is optional on a build machine; when present, the script must at least parse
    if subprocess.run(["sh", "-c", "command -v zsh"], capture_output=True).returncode != 0:
        print("zsh not installed: only the bash script is exercised")
        return
    p = subprocess.run(["zsh", "-n", ZSH_SCRIPT], capture_output=True)
    assert p.returncode == 0, p.stderr.decode()


if __name__ == "__main__":
    cs.main([test_commands_come_from_help, test_options_per_command, test_values,
             test_ids_from_config_without_network, test_files_where_a_file_is_expected,
             test_zsh_script_parses])
