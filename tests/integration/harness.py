"""harness.py - what the integration tests share: finding the binaries, running credsync-sim
on 127.0.0.1 port 0, and talking to it the way an Alibaba Cloud client does (v1 and v3
signatures per API.md).  Python 3 standard library only.
"""
import atexit
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.normpath(os.path.join(HERE, "..", "..", "build"))

ACCESS_KEY_ID = "testid"
ACCESS_KEY_SECRET = "testsecret"
API_VERSION = "2020-04-20"


def _built(name, subdir):
    """A binary of the default build tree: build/bin (where the project puts executables),
    else beside its CMakeLists.txt."""
    for path in (os.path.join(BUILD, "bin", name), os.path.join(BUILD, subdir, name)):
        if os.path.exists(path):
            return path
    return os.path.join(BUILD, "bin", name)


def sim_path():
    return os.environ.get("CREDSYNC_SIM") or _built("credsync-sim", "contrib/simulator")


def credsync_path():
    return os.environ.get("CREDSYNC_BIN") or _built("credsync", "src")


_tmpdirs = []


def _cleanup_tmpdirs():
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup_tmpdirs)


def tmpdir():
    """A fresh directory, removed when the test process exits."""
    d = tempfile.mkdtemp(prefix="credsync-it-")
    _tmpdirs.append(d)
    return d


class Sim:
    """credsync-sim on 127.0.0.1, port 0, as a context manager.

    Sim("--devices", "250") passes extra arguments.  The port is read from the port file;
    stderr goes to a file shown whenever the process turns out to have died.
    """

    def __init__(self, *args, env=None, start_timeout=10.0):
        self.args = [str(a) for a in args]
        self.env = env
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self.dir = tmpdir()
        self.port_file = os.path.join(self.dir, "port")
        self.stderr_path = os.path.join(self.dir, "stderr")

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop(check=exc_type is None)
        return False

    def start(self):
        cmd = [sim_path(), "--listen", "127.0.0.1:0", "--port-file", self.port_file] + self.args
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, env=env)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail("credsync-sim exited with status %d before it was ready"
                           % self.proc.returncode)
            try:
                with open(self.port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.port = int(text)
                    return self
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        self.proc.kill()
        self.proc.wait()
        self._fail("credsync-sim wrote no port file within %.0f s" % self.start_timeout)

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _fail(self, what):
        raise AssertionError("%s\ncommand: %s\nstderr:\n%s" % (what, " ".join(self.args),
                                                              self.stderr()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check=True):
        """SIGTERMs the simulator and waits; fails if it had died or did not exit 0."""
        if self.proc is None:
            return None
        died = self.proc.poll()
        if died is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    self._fail("credsync-sim did not stop within 15 s of SIGTERM")
        self._stderr.close()
        proc, self.proc = self.proc, None
        if check and died is not None:
            raise AssertionError("credsync-sim died early with status %d\nstderr:\n%s"
                                 % (died, self.stderr()))
        if check and proc.returncode != 0:
            raise AssertionError("credsync-sim exited %d after SIGTERM\nstderr:\n%s"
                                 % (proc.returncode, self.stderr()))
        return proc.returncode

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def url(self):
        return self.endpoint + "/"

    def control(self, method, path, query=None):
        q = "?" + urllib.parse.urlencode(query) if query else ""
        status, _, body = request(self, method, path + q)
        if status != 200:
            raise AssertionError("%s %s -> %d %r" % (method, path, status, body))
        return json.loads(body)

    def stats(self):
        return self.control("GET", "/_sim/stats")

    def reset_stats(self):
        return self.control("POST", "/_sim/reset-stats")

    def mutate(self, add=0, remove=0, instance=None, group=None):
        q = {"add": add, "remove": remove}
        if instance is not None:
            q["instance"] = instance
        if group is not None:
            q["group"] = group
        return self.control("POST", "/_sim/mutate", q)

    def dump(self):
        return self.control("GET", "/_sim/dump")


def request(sim, method, target, body=None, headers=None, timeout=30):
    """One HTTP request on a fresh connection: (status, headers dict lower-cased, bytes).
    A connection closed without a response raises ConnectionError."""
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
        raise ConnectionError("connection closed without a response: %r" % (e,))
    finally:
        conn.close()


def pct(s):
    """Percent-encoding of API.md: unreserved A-Z a-z 0-9 - _ . ~ stay, the rest %XX over
    UTF-8, space as %20."""
    return urllib.parse.quote(s, safe="-_.~", encoding="utf-8")


def canonical_query(params):
    pairs = sorted((pct(k), pct(v)) for k, v in params.items())
    return "&".join("%s=%s" % kv for kv in pairs)


def v1_string_to_sign(method, params):
    return method + "&" + pct("/") + "&" + pct(canonical_query(params))


def v1_signature(method, params, secret=ACCESS_KEY_SECRET):
    mac = hmac.new((secret + "&").encode(), v1_string_to_sign(method, params).encode(),
                   hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def utc_now(offset_s=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def v1_params(params, key_id=ACCESS_KEY_ID, timestamp=None, nonce=None):
    """The common v1 parameters around params; a value of None in params drops that key."""
    p = {
        "AccessKeyId": key_id,
        "Format": "JSON",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce or str(uuid.uuid4()),
        "SignatureVersion": "1.0",
        "Timestamp": timestamp or utc_now(),
        "Version": API_VERSION,
    }
    p.update(params)
    return {k: str(v) for k, v in p.items() if v is not None}


def _decode(status, headers, data):
    try:
        return status, headers, json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return status, headers, data


def rpc_v1(sim, params, secret=ACCESS_KEY_SECRET, method="POST", key_id=ACCESS_KEY_ID,
           timestamp=None, nonce=None, sign=True, signature=None, form=False, timeout=30):
    """Sends a v1-signed RPC request.  params are the action's (Action included) plus any
    overrides of the common ones.  form=True moves the parameters into a form body.
    Returns (status, headers, parsed JSON or raw bytes)."""
    p = v1_params(params, key_id=key_id, timestamp=timestamp, nonce=nonce)
    if sign:
        p["Signature"] = signature or v1_signature(method, p, secret)
    encoded = "&".join("%s=%s" % (pct(k), pct(v)) for k, v in p.items())
    if form:
        return _decode(*request(sim, method, "/", body=encoded.encode(), timeout=timeout,
                                headers={"Content-Type": "application/x-www-form-urlencoded"}))
    return _decode(*request(sim, method, "/?" + encoded, body=b"" if method == "POST" else None,
                            timeout=timeout))


def v3_sign(method, host, query, headers, body, secret=ACCESS_KEY_SECRET):
    """Returns (signed header names, signature hex, hashed canonical request) for v3."""
    payload = hashlib.sha256(body).hexdigest()
    names = sorted(k.lower() for k in headers)
    lower = {k.lower(): str(v).strip() for k, v in headers.items()}
    lower["host"] = host
    if "host" not in names:
        names = sorted(names + ["host"])
    creq = "\n".join([method, "/", canonical_query(query),
                      "".join("%s:%s\n" % (n, lower[n]) for n in names),
                      ";".join(names), payload])
    hashed = hashlib.sha256(creq.encode()).hexdigest()
    sig = hmac.new(secret.encode(), ("ACS3-HMAC-SHA256\n" + hashed).encode(),
                   hashlib.sha256).hexdigest()
    return ";".join(names), sig, hashed


def rpc_v3(sim, action, query, secret=ACCESS_KEY_SECRET, method="POST", key_id=ACCESS_KEY_ID,
           date=None, nonce=None, extra_headers=None, tamper=None, body=b""):
    """Sends a v3 (ACS3-HMAC-SHA256) request.  tamper(query, headers) may change what is
    sent after signing.  Returns (status, headers, parsed JSON or raw bytes)."""
    host = "127.0.0.1:%d" % sim.port
    headers = {
        "x-acs-action": action,
        "x-acs-version": API_VERSION,
        "x-acs-date": date or utc_now(),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    headers.update(extra_headers or {})
    query = {k: str(v) for k, v in query.items()}
    names, sig, _ = v3_sign(method, host, query, headers, body, secret)
    headers["Authorization"] = "ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s" % (
        key_id, names, sig)
    if tamper:
        tamper(query, headers)
    target = "/?" + "&".join("%s=%s" % (pct(k), pct(v)) for k, v in query.items())
    return _decode(*request(sim, method, target, body=body, headers=headers))


def list_page(sim, instance, group, page_no=1, page_size=100, next_token=None, **kw):
    params = {"Action": "ListDeviceCredentialClientId", "InstanceId": instance,
              "GroupId": group, "PageNo": page_no, "PageSize": page_size}
    if next_token is not None:
        params["NextToken"] = next_token
    return rpc_v1(sim, params, **kw)
