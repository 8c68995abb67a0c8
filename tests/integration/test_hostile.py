"""Hostile input, both sides: a table of malformed server responses played by a scripted
HTTP server on 127.0.0.1 (each with the error or warning credsync must give, and the group
never marked complete unless the data allows), a table of malformed configs (each refused
with its file:line:column and nothing created), and the modes of the files credsync makes."""
import http.server
import json
import os
import socketserver
import stat
import threading
import time

import cs
import harness
from harness import Sim

GOOD_PAGE = {"RequestId": "R-1", "DeviceCredentialClientIdList": {
    "Total": "2", "ClientIdList": ["G@@@a", "G@@@b"], "PageNo": "1", "PageSize": "100"}}


def err_body(code, msg="m", rid="REQ-42"):
    return json.dumps({"RequestId": rid, "HostId": "h", "Code": code, "Message": msg}).encode()


def page(ids, total=None, token=None, page_no=1, size=100):
    lst = {"Total": str(len(ids) if total is None else total), "ClientIdList": ids,
           "PageNo": str(page_no), "PageSize": str(size)}
    if token is not None:
        lst["NextToken"] = token
    return json.dumps({"RequestId": "R-%d" % page_no, "DeviceCredentialClientIdList": lst}).encode()


def deep(n):
    return ("{\"DeviceCredentialClientIdList\":" + "[" * n + "]" * n + "}").encode()


class Script:
    """responses(request_number, params) -> (status, body bytes, headers dict) or "reset"."""

    def __init__(self, fn):
        self.fn = fn
        self.count = 0
        self.times = []
        self.lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        from urllib.parse import urlparse, parse_qs
        q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        sc = self.server.script
        with sc.lock:
            sc.count += 1
            n = sc.count
            sc.times.append(time.monotonic())
        r = sc.fn(n, q)
        if r == "reset":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        status, body, headers = r
        self.send_response(status)
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *a):
        pass


class QuietServer(socketserver.ThreadingTCPServer):
    def handle_error(self, request, client_address):
        pass  # resets are part of the script


class FakeService:
    def __init__(self, fn):
        self.srv = QuietServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.srv.script = Script(fn)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    @property
    def requests(self):
        return self.srv.script.count

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def always(status, body, headers=None):
    return lambda n, q: (status, body, dict(headers or {}))


def first_then_good(status, body):
    return lambda n, q: (status, body, {}) if n == 1 else (200, json.dumps(GOOD_PAGE).encode(), {})


def paged(pages):
    """pages: list of (ids, token); PageNo picks the page, beyond the list an empty page."""
    def fn(n, q):
        i = int(q.get("PageNo", "1")) - 1
        if i < len(pages):
            ids, tok, total = pages[i]
            return 200, page(ids, total=total, token=tok, page_no=i + 1), {}
        return 200, page([], total=0, page_no=i + 1), {}
    return fn


FAST = "retry: {max_attempts: 3, base_delay: 1ms, max_delay: 5ms}\ntimeout: {connect: 2s, request: 2s}"

# (name, script, expected exit, expected error_code (None: complete), text in stderr or message,
#  expected consistent for complete snapshots)
CASES = [
    ("html 502", always(502, b"<html><head><title>502 Bad Gateway</title></head></html>",
                        {"Content-Type": "text/html"}), 1, "BadResponse", "an HTML page", None),
    ("truncated json", always(200, page(["G@@@a"])[:40]), 1, "BadResponse", "truncated", None),
    ("garbage bytes", always(200, b"\xff\xfe\x00garbage"), 1, "BadResponse", "\\xff\\xfe\\x00garbage", None),
    ("garbage text", always(200, b"hello, world"), 1, "BadResponse", "not JSON", None),
    ("empty body", always(200, b""), 1, "BadResponse", "empty body", None),
    ("json array", always(200, b"[1,2,3]"), 1, "BadResponse", "not an object", None),
    ("no payload", always(200, b"{\"RequestId\":\"x\"}"), 1, "BadResponse", "without the expected payload", None),
    ("500 without code", always(500, b"{\"message\":\"oops\"}"), 1, "BadResponse", "without a Code", None),
    ("list is a string", always(200, b"{\"DeviceCredentialClientIdList\":{\"ClientIdList\":\"G@@@a\"}}"),
     1, "BadResponse", "ClientIdList is not a list", None),
    ("ids not strings", always(200, b"{\"DeviceCredentialClientIdList\":{\"ClientIdList\":[1,{}]}}"),
     1, "BadResponse", "other than strings", None),
    ("total is words", always(200, b"{\"DeviceCredentialClientIdList\":{\"Total\":\"ten\",\"ClientIdList\":[]}}"),
     1, "BadResponse", "Total is not a count", None),
    ("total negative", always(200, b"{\"DeviceCredentialClientIdList\":{\"Total\":-5,\"ClientIdList\":[]}}"),
     1, "BadResponse", "Total is not a count", None),
    ("total beyond 2^53", always(200, b"{\"DeviceCredentialClientIdList\":{\"Total\":1e300,\"ClientIdList\":[]}}"),
     1, "BadResponse", "Total is not a count", None),
    ("pagesize bool", always(200, b"{\"DeviceCredentialClientIdList\":{\"PageSize\":true,\"ClientIdList\":[]}}"),
     1, "BadResponse", "PageNo or PageSize", None),
    ("token a number", always(200, b"{\"DeviceCredentialClientIdList\":{\"NextToken\":7,\"ClientIdList\":[]}}"),
     1, "BadResponse", "NextToken is not a string", None),
    ("nested 40 deep", always(200, deep(40)), 1, "BadResponse", "nested too deep", None),
    ("body of 9 MiB", always(200, b"{\"x\":\"" + b"a" * (9 << 20) + b"\"}"), 1, "BadResponse",
     "passed 8388608 bytes", None),
    ("NUL in an id", always(200, b"{\"DeviceCredentialClientIdList\":{\"Total\":\"1\",\"ClientIdList\":[\"G@@@a\\u0000b\"]}}"),
     1, "BadData", "NUL", None),
    ("unknown error code", always(400, err_body("SomethingNew", "new rule")), 1, "SomethingNew", "REQ-42", None),
    ("200 with error code", always(200, err_body("InternalError")), 1, "InternalError", "gave up after 3", None),
    ("instance refused", always(400, err_body("InstancePermissionCheckFailed")), 1,
     "InstancePermissionCheckFailed", "REQ-42", None),
    ("throttled then fine", first_then_good(400, err_body("ApplyTokenOverFlow")), 0, None, None, 1),
    ("reset then fine", lambda n, q: "reset" if n == 1 else (200, json.dumps(GOOD_PAGE).encode(), {}),
     0, None, None, 1),
    ("clock skew", always(400, err_body("InvalidTimeStamp.Expired", "expired")), 1,
     "InvalidTimeStamp.Expired", "expired", None),
    ("over-long id skipped", always(200, page(["G@@@ok", "G@@@" + "x" * 2000], total=2)), 0, None,
     "longer than 1024 bytes", 0),
    ("non-utf8 id skipped", always(200, b"{\"DeviceCredentialClientIdList\":{\"Total\":\"2\",\"ClientIdList\":[\"G@@@ok\",\"G@@@\xc3\x28\"]}}"),
     0, None, "not UTF-8", 0),
    ("fewer ids than Total", paged([(["G@@@a", "G@@@b"], None, 5)]), 1, "IncompleteWalk",
     "short by 3", None),
    ("duplicates across pages", paged([(["G@@@a", "G@@@b"], "t1", 3), (["G@@@b", "G@@@c"], None, 3)]),
     0, None, "duplicates", 0),
    ("token loop", lambda n, q: (200, page(["G@@@%d" % n], total=10 ** 6, token="t%d" % (n % 3)), {}),
     1, "PagingLoop", "already returned", None),
    ("endless pages", lambda n, q: (200, page(["G@@@%d" % n], total=2, token="t%d" % n), {}),
     1, "PagingLoop", "did not end", None),
    ("retry-after honoured", lambda n, q: (500, err_body("SystemOverFlow"), {"x-acs-retry-after": "700"})
     if n == 1 else (200, json.dumps(GOOD_PAGE).encode(), {}), 0, None, None, 1),
]


def test_malformed_responses():
    for name, fn, status, code, text, consistent in CASES:
        d = harness.tmpdir()
        svc = FakeService(fn)
        try:
            db = os.path.join(d, "inv.db")
            cfg = cs.write_config(os.path.join(d, "c.yaml"), [
                {"id": "mqtt-x", "endpoint": "http://127.0.0.1:%d" % svc.port, "groups": ["G"],
                 "yaml": FAST}], database=db)
            p = cs.run(["-c", cfg, "sync"])
            assert p.returncode == status, (name, p.returncode, p.stderr[-2000:])
            s, = cs.snapshots(db)
            if code:
                assert s["status"] == "failed" and s["error_code"] == code, (name, s)
                assert text in (s["error_message"] or "") + p.stderr, (name, s, p.stderr[-1000:])
                assert cs.query(db, "SELECT count(*) FROM current_clients") == [(0,)], name
            else:
                assert s["status"] == "complete" and s["consistent"] == consistent, (name, s)
                if text:
                    assert text in p.stderr, (name, p.stderr)
            if name == "retry-after honoured":
                t = svc.srv.script.times
                assert t[1] - t[0] >= 0.69, "x-acs-retry-after ignored: %.3f s" % (t[1] - t[0])
        finally:
            svc.close()


BAD_CONFIGS = [
    ("page_sise: 100\n", "unknown key 'page_sise'"),
    ("defaults:\n  page_size: 0\n", "page_size"),
    ("defaults:\n  page_size: 101\n", "page_size"),
    ("defaults:\n  page_size: abc\n", "page_size"),
    ("defaults:\n  qps: -1\n", "qps"),
    ("defaults:\n  concurrency: 0\n", "concurrency"),
    ("defaults:\n  timeout: {connect: 5 seconds}\n", "duration"),
    ("defaults:\n  retry: {base_delay: 10s, max_delay: 1s}\n", "max_delay"),
    ("defaults:\n  signature: v2\n", "signature"),
    ("defaults:\n  rate_control: sometimes\n", "rate_control"),
    ("defaults:\n  retry: {max_attemps: 3}\n", "max_attemps"),
    ("instances: []\n", "instances"),
    ("instances: {}\n", "instances"),
    ("instances:\n  - region: cn-hangzhou\n    groups: [G]\n", "id"),
    ("instances:\n  - id: a\n    groups: [G]\n", "region"),
    ("instances:\n  - id: a\n    endpoint: ftp://x\n    groups: [G]\n", "endpoint"),
    ("instances:\n  - id: a\n    endpoint: http://10.0.0.1\n    groups: [G]\n", "loopback"),
    ("instances:\n  - id: a\n    endpoint: https://h/path\n    groups: [G]\n", "endpoint"),
    ("instances:\n  - id: a\n    region: cn-hangzhou\n    groups: []\n", "groups"),
    ("instances:\n  - id: a\n    region: cn-hangzhou\n    groups: [G, G]\n", "G"),
    ("instances:\n  - id: a\n    region: cn-hangzhou\n    groups: some\n", "groups"),
    ("instances:\n  - id: a\n    region: cn-hangzhou\n    groups: [G]\n  - id: a\n    region: cn-hangzhou\n    groups: [G]\n", "a"),
    ("instances:\n  - id: a\n    region: cn-hangzhou\n    groups: [\"G x\"]\n", "G x"),
    ("instances: [\n", ""),
    ("instances:\n\t- id: a\n", "tab"),
    ("database: [a, b]\n", "database"),
    ("credentials: {profile: default, key: x}\n", "key"),
    ("- just\n- a list\n", ""),
    ("a: b\n---\nc: d\n", ""),
    ("x: " + "[" * 40 + "]" * 40 + "\n", ""),
]


def test_malformed_configs_create_nothing():
    for i, (text, fragment) in enumerate(BAD_CONFIGS):
        d = harness.tmpdir()
        cfg = os.path.join(d, "bad.yaml")
        db = os.path.join(d, "inv.db")
        with open(cfg, "w") as f:
            f.write("database: %s\n" % db if not text.startswith(("database", "- ", "a: b")) else "")
            f.write(text)
        # each command alike; under valgrind (slow) sync alone stands for them
        cmds = [["sync"]] if os.environ.get("CREDSYNC_WRAPPER") else [["sync"], ["check"], ["sync", "--dry-run"]]
        for cmd in cmds:
            p = cs.run(["-c", cfg] + cmd)
            assert p.returncode == 78, (i, text, cmd, p.returncode, p.stderr)
            assert "bad.yaml:" in p.stderr, (i, p.stderr)
            first = p.stderr.splitlines()[0]
            if fragment:
                assert fragment in first, (i, text, first)
            assert os.listdir(d) == ["bad.yaml"], (i, os.listdir(d))


def test_file_modes_and_symlink_warning():
    d = harness.tmpdir()
    prom = os.path.join(d, "m.prom")
    with Sim("--instances", "1", "--groups", "1", "--devices", "10") as sim:
        db = os.path.join(d, "inv.db")
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-sim-1", "endpoint": sim.endpoint, "groups": ["GID_sim_1"]}],
            database=db, extra="metrics_file: %s\n" % prom)
        old = os.umask(0o022)
        try:
            cs.expect(cs.run(["-c", cfg, "sync"]), 0)
        finally:
            os.umask(old)
        for f in (db, db + ".lock", prom, db + "-wal", db + "-shm"):
            if os.path.exists(f):
                mode = stat.S_IMODE(os.stat(f).st_mode)
                assert mode & 0o077 == 0, (f, oct(mode))
        assert os.path.exists(db + ".lock")
        # a symlinked database in a world-writable directory: a warning, then it works
        wdir = os.path.join(d, "public")
        os.mkdir(wdir)
        os.chmod(wdir, 0o1777)
        link = os.path.join(wdir, "inv.db")
        os.symlink(db, link)
        p = cs.run(["-c", cfg, "-d", link, "sync"])
        cs.expect(p, 0)
        assert "symbolic link in the world-writable directory" in p.stderr, p.stderr


if __name__ == "__main__":
    cs.main([test_malformed_responses, test_malformed_configs_create_nothing,
             test_file_modes_and_symlink_warning])
