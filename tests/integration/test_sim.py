"""test_sim.py - credsync-sim against its contract (PRODUCT.md "The simulator", API.md):
startup, v1/v3 authentication and its errors, paging, validation, faults, rate limits,
control endpoints and hostile data.  Every test_* function runs; any failure makes the
process exit 1 after printing what failed.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import traceback
import urllib.parse
import uuid

from harness import (Sim, canonical_query, list_page, pct, request, rpc_v1, rpc_v3, sim_path,
                     tmpdir, utc_now, v1_params, v1_signature, v1_string_to_sign, v3_sign)

LIST = "ListDeviceCredentialClientId"
MSG_INSTANCE = ("An error occurred while validating the permissions of the instance. Please "
                "verify the account that created the instance and its permissions settings.")


def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what or "value", got, want))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_error(resp, status, code, what=""):
    st, headers, body = resp
    label = what or code
    check(isinstance(body, dict), "%s: body is not JSON: %r" % (label, body))
    eq(st, status, "%s: HTTP status (body %r)" % (label, body))
    eq(body.get("Code"), code, "%s: Code (body %r)" % (label, body))
    for k in ("RequestId", "HostId", "Message", "Recommend"):
        check(k in body, "%s: error body lacks %s: %r" % (label, k, body))
    eq(body["HostId"], "onsmqtt.sim.aliyuncs.com", label + ": HostId")
    eq(body["Recommend"], "https://api.aliyun.com/troubleshoot?q=" + code, label + ": Recommend")
    eq(headers.get("x-acs-request-id"), body["RequestId"], label + ": x-acs-request-id")
    return body


def ok_page(resp, what="page"):
    st, _, body = resp
    check(st == 200 and isinstance(body, dict), "%s: HTTP %d %r" % (what, st, body))
    return body["DeviceCredentialClientIdList"]


def device_ids(group, n):
    return ["%s@@@dev-%07d" % (group, i) for i in range(1, n + 1)]


def crawl_by_token(sim, instance, group, page_size=100):
    """Follows NextToken to the end; returns (ids in order, pages)."""
    ids, pages, token, page_no = [], [], None, 1
    while True:
        page = ok_page(list_page(sim, instance, group, page_no, page_size, next_token=token))
        pages.append(page)
        ids += page["ClientIdList"]
        token = page.get("NextToken")
        if not token:
            return ids, pages
        page_no += 1
        check(page_no < 100000, "crawl does not end")


def crawl_by_page_no(sim, instance, group, page_size=100):
    ids, pages, page_no = [], [], 1
    while True:
        page = ok_page(list_page(sim, instance, group, page_no, page_size))
        pages.append(page)
        if not page["ClientIdList"]:
            return ids, pages
        ids += page["ClientIdList"]
        page_no += 1
        check(page_no < 100000, "crawl does not end")


# ---- startup and options ----

def test_port_file_and_banner():
    with Sim() as sim:
        with open(sim.port_file) as f:
            eq(f.read(), "%d\n" % sim.port, "port file")
        check(sim.port > 0, "port 0 was not replaced")
        check("credsync-sim listening on http://127.0.0.1:%d" % sim.port in sim.stderr(),
              "banner missing: " + sim.stderr())
        leftovers = [n for n in os.listdir(sim.dir) if n.startswith("port.tmp")]
        eq(leftovers, [], "temporary port files left behind")


def run_sim(*args, env=None, timeout=20):
    return subprocess.run([sim_path()] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, env=env)


def test_help_and_bad_options():
    r = run_sim("--help")
    eq(r.returncode, 0, "--help status")
    check(b"--fault CODE=RATE" in r.stdout, "usage lacks --fault")
    bad = [
        (["--qps", "fast"], b"--qps"),
        (["--listen", "127.0.0.1"], b"--listen"),
        (["--listen", "127.0.0.1:70000"], b"port"),
        (["--fault", "SystemOverFlow"], b"--fault"),
        (["--fault", "SystemOverFlow=1.5"], b"--fault rate"),
        (["--fault", "InternalError=0.6", "--fault", "reset=0.6"], b"add up to"),
        (["--fault", "InternalError=0.6@mqtt-a", "--fault", "reset=0.6@mqtt-a/GID_b"],
         b"mqtt-a/GID_b"),
        (["--fault", "bad code=0.1"], b"not a valid code"),
        (["--last-token", "sometimes"], b"absent, empty or same"),
        (["--page-cap", "0"], b"--page-cap"),
        (["--dataset", "x.json", "--devices", "5"], b"exclude"),
        (["--devices", "-1"], b"--devices"),
        (["--instances", "1000", "--groups", "1000", "--devices", "1000"], b"client IDs"),
        (["--max-skew", "soon"], b"--max-skew"),
        (["--churn-during-crawl", "2"], b"--churn-during-crawl"),
        (["--no-such-option"], b"--no-such-option"),
        (["--access-key-id", ""], b"--access-key-id"),
        (["stray"], b"stray"),
    ]
    for args, needle in bad:
        r = run_sim(*args)
        eq(r.returncode, 64, "status of %s (stderr %r)" % (args, r.stderr))
        check(needle in r.stderr, "%s: message %r lacks %r" % (args, r.stderr, needle))
    # scoped faults on different scopes may add up past 1 in total
    with Sim("--fault", "InternalError=0.6@mqtt-a", "--fault", "reset=0.6@mqtt-b"):
        pass


def test_dataset_errors():
    d = tmpdir()
    r = run_sim("--dataset", os.path.join(d, "missing.json"))
    eq(r.returncode, 66, "missing dataset status")
    check(b"missing.json" in r.stderr, "missing dataset message: %r" % r.stderr)
    cases = [
        ('{"instances": {"a": {"groups": {"G": [1]}}}}', b"'a'.groups.'G'[0]"),
        ('{"instances": {"a": {"groups": {"G": "x"}}}}', b"expected an array"),
        ('{"instances": {"a": {"grops": {}}}}', b"unknown key 'grops'"),
        ('{"instances": []}', b"expected"),
        ('{"instances": {"a": {"groups": {"G": ["x",]}}}}', b":1:"),
        ('{"instances": {"a": {"groups": {"G": [""]}}}}', b"non-empty"),
    ]
    for i, (text, needle) in enumerate(cases):
        path = os.path.join(d, "bad%d.json" % i)
        with open(path, "w") as f:
            f.write(text)
        r = run_sim("--dataset", path)
        eq(r.returncode, 65, "status for %s (stderr %r)" % (text, r.stderr))
        check(needle in r.stderr, "%s: message %r lacks %r" % (text, r.stderr, needle))


def test_sigint_exits_zero():
    sim = Sim().start()
    sim.proc.send_signal(2)
    eq(sim.proc.wait(timeout=10), 0, "exit status after SIGINT")
    sim._stderr.close()
    sim.proc = None


def test_startup_large_datasets():
    for args in (["--groups", "10", "--devices", "100000"],
                 ["--groups", "1", "--devices", "1000000"]):
        t0 = time.monotonic()
        with Sim(*args) as sim:
            took = time.monotonic() - t0
            print("    startup with %s: %.2f s" % (" ".join(args), took))
            check(took < 4.0, "startup took %.2f s" % took)
            n = int(args[3])
            page = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", n // 100, 100))
            eq(page["Total"], str(n), "Total")
            eq(page["ClientIdList"][-1], "GID_sim_1@@@dev-%07d" % n, "last ID of the last page")
            page = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 100,
                                     next_token=page.get("NextToken") or None))


# ---- v1 authentication ----

def test_v1_accepted_get_post_form():
    with Sim() as sim:
        for method in ("GET", "POST"):
            page = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 5, method=method), method)
            eq(page["ClientIdList"], device_ids("GID_sim_1", 5), method + " ids")
        page = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_2", 1, 5, form=True), "form body")
        eq(page["ClientIdList"], device_ids("GID_sim_2", 5), "form body ids")
        eq(sim.stats()["pages"], 3, "pages counted")


def test_v1_auth_errors():
    with Sim() as sim:
        q = {"Action": LIST, "InstanceId": "mqtt-sim-1", "GroupId": "GID_sim_1", "PageNo": 1,
             "PageSize": 10}
        # wrong secret: the message carries the server's string-to-sign, which must be ours
        nonce, ts = str(uuid.uuid4()), utc_now()
        body = expect_error(rpc_v1(sim, q, secret="wrong", nonce=nonce, timestamp=ts), 400,
                            "SignatureDoesNotMatch")
        want = v1_string_to_sign("POST", v1_params(q, nonce=nonce, timestamp=ts))
        eq(body["Message"], "Specified signature is not matched with our calculation. "
           "server string to sign is:" + want, "SignatureDoesNotMatch message")
        # signed for GET, sent as POST
        p = v1_params(q)
        expect_error(rpc_v1(sim, q, nonce=p["SignatureNonce"], timestamp=p["Timestamp"],
                            signature=v1_signature("GET", p)), 400, "SignatureDoesNotMatch",
                     "method is signed")
        body = expect_error(rpc_v1(sim, q, key_id="nobody"), 404, "InvalidAccessKeyId.NotFound")
        eq(body["Message"], "Specified access key is not found.", "message")
        for ts in (utc_now(-3600), utc_now(3600), "2026-13-01T00:00:00Z", "yesterday",
                   "2026-01-01 00:00:00"):
            body = expect_error(rpc_v1(sim, q, timestamp=ts), 400, "InvalidTimeStamp.Expired", ts)
            eq(body["Message"], "Specified time stamp or date value is expired.", "message")
        nonce = str(uuid.uuid4())
        ok_page(rpc_v1(sim, q, nonce=nonce), "first use of a nonce")
        body = expect_error(rpc_v1(sim, q, nonce=nonce), 400, "SignatureNonceUsed")
        eq(body["Message"], "Specified signature nonce was used already.", "message")
        # a request that failed its signature does not burn its nonce
        nonce = str(uuid.uuid4())
        expect_error(rpc_v1(sim, q, nonce=nonce, secret="wrong"), 400, "SignatureDoesNotMatch")
        ok_page(rpc_v1(sim, q, nonce=nonce), "nonce of a rejected request")
        body = expect_error(rpc_v1(sim, q, sign=False), 400, "MissingParameter")
        check('"Signature"' in body["Message"], "message names Signature: " + body["Message"])
        for name in ("AccessKeyId", "Timestamp", "SignatureNonce", "Action"):
            body = expect_error(rpc_v1(sim, dict(q, **{name: None})), 400, "MissingParameter",
                                name)
            check('"%s"' % name in body["Message"], "message names %s: %s"
                  % (name, body["Message"]))
        expect_error(rpc_v1(sim, dict(q, SignatureMethod="HMAC-SHA256")), 400,
                     "InvalidSignatureMethod")
        st = sim.stats()
        eq(st["by_code"].get("SignatureDoesNotMatch"), 3, "by_code SignatureDoesNotMatch")
        eq(st["by_code"].get("InvalidTimeStamp.Expired"), 5, "by_code InvalidTimeStamp.Expired")
        eq(st["by_code"].get("MissingParameter"), 5, "by_code MissingParameter")
        eq(st["by_code"].get("InvalidAccessKeyId.NotFound"), 1, "by_code unknown key")
        eq(st["by_code"].get("SignatureNonceUsed"), 1, "by_code nonce")


def test_custom_credentials_and_token():
    env = {"CREDSYNC_SIM_ACCESS_KEY_SECRET": "envsecret"}
    with Sim("--access-key-id", "LTAIsim", "--security-token", "sts+tok/en==", env=env) as sim:
        q = {"Action": LIST, "InstanceId": "mqtt-sim-1", "GroupId": "GID_sim_1", "PageNo": 1,
             "PageSize": 1}
        ok_page(rpc_v1(sim, dict(q, SecurityToken="sts+tok/en=="), key_id="LTAIsim",
                       secret="envsecret"), "secret from the environment, token")
        expect_error(rpc_v1(sim, q, key_id="LTAIsim", secret="envsecret"), 400,
                     "InvalidSecurityToken.Mismatch", "no token")
        expect_error(rpc_v1(sim, dict(q, SecurityToken="sts tok/en=="), key_id="LTAIsim",
                            secret="envsecret"), 400, "InvalidSecurityToken.Mismatch",
                     "other token")
        expect_error(rpc_v1(sim, dict(q, SecurityToken="sts+tok/en=="), key_id="testid",
                            secret="envsecret"), 404, "InvalidAccessKeyId.NotFound")
        ok_page(rpc_v3(sim, LIST, {"InstanceId": "mqtt-sim-1", "GroupId": "GID_sim_1",
                                   "PageNo": 1, "PageSize": 1}, key_id="LTAIsim",
                       secret="envsecret",
                       extra_headers={"x-acs-security-token": "sts+tok/en=="}), "v3 with token")
        expect_error(rpc_v3(sim, LIST, {"InstanceId": "mqtt-sim-1", "GroupId": "GID_sim_1",
                                        "PageNo": 1, "PageSize": 1}, key_id="LTAIsim",
                            secret="envsecret"), 400, "InvalidSecurityToken.Mismatch", "v3")


def test_values_round_trip_through_signing():
    tricky = "a+b c*d~e/f=g&h%20\u4e2d\u6587"
    d = tmpdir()
    path = os.path.join(d, "data.json")
    data = {"instances": {tricky: {"groups": {tricky: [tricky + "@@@" + tricky]}}}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    with Sim("--dataset", path) as sim:
        for method in ("GET", "POST"):
            for form in ((False, True) if method == "POST" else (False,)):
                page = ok_page(list_page(sim, tricky, tricky, 1, 10, method=method, form=form),
                               "%s form=%s" % (method, form))
                eq(page["ClientIdList"], [tricky + "@@@" + tricky], "served ID")
        # an extra parameter is signed like the rest
        ok_page(rpc_v1(sim, {"Action": LIST, "InstanceId": tricky, "GroupId": tricky,
                             "PageNo": 1, "PageSize": 1, "Extra": tricky}), "extra parameter")
        ok_page(rpc_v3(sim, LIST, {"InstanceId": tricky, "GroupId": tricky, "PageNo": 1,
                                   "PageSize": 1}), "v3 with escapes")
        # %2B is '+', %20 is ' ': both reach the server as sent
        p = v1_params({"Action": LIST, "InstanceId": tricky, "GroupId": tricky,
                       "PageNo": "1", "PageSize": "1"})
        p["Signature"] = v1_signature("GET", p)
        target = "/?" + "&".join("%s=%s" % (pct(k), pct(v)) for k, v in p.items())
        check("%2B" in target and "%20" in target, "test request lacks %2B / %20")
        st, _, body = request(sim, "GET", target)
        eq(st, 200, "explicit %%2B/%%20 request: %r" % body)
    with Sim() as sim:
        # a bare '+' in a query is a space, as form decoding and the real gateway read it
        p = v1_params({"Action": LIST, "InstanceId": "mqtt-sim-1", "GroupId": "GID_sim_1",
                       "PageNo": "1", "PageSize": "1", "Extra": "a b"})
        p["Signature"] = v1_signature("GET", p)
        target = "/?" + "&".join("%s=%s" % (pct(k), pct(v)) for k, v in p.items())
        check("Extra=a%20b" in target, "test request lacks Extra=a%20b")
        st, _, body = request(sim, "GET", target.replace("Extra=a%20b", "Extra=a+b"))
        eq(st, 200, "bare '+' read as a space: %r" % body)


def test_max_skew():
    with Sim("--max-skew", "60") as sim:
        q = {"Action": LIST, "InstanceId": "mqtt-sim-1", "GroupId": "GID_sim_1", "PageNo": 1,
             "PageSize": 1}
        ok_page(rpc_v1(sim, q, timestamp=utc_now(-30)), "30 s old")
        expect_error(rpc_v1(sim, q, timestamp=utc_now(-120)), 400, "InvalidTimeStamp.Expired")
        expect_error(rpc_v1(sim, q, timestamp=utc_now(120)), 400, "InvalidTimeStamp.Expired")
    with Sim("--max-skew", "2h") as sim:
        ok_page(rpc_v1(sim, q, timestamp=utc_now(-3600)), "an hour old under --max-skew 2h")


# ---- v3 authentication ----

def test_v3_vector_and_requests():
    # the harness signer against API.md's vector, so a passing test means a correct server
    _, sig, hashed = v3_sign("POST", "onsmqtt.cn-hangzhou.aliyuncs.com",
                             {"GroupId": "GID_test", "InstanceId": "mqtt-cn-xxxx", "PageNo": "1",
                              "PageSize": "100"},
                             {"x-acs-action": LIST, "x-acs-version": "2020-04-20",
                              "x-acs-date": "2026-01-01T00:00:00Z",
                              "x-acs-signature-nonce": "00000000-0000-4000-8000-000000000000",
                              "x-acs-content-sha256": hashlib.sha256(b"").hexdigest()},
                             b"", "testsecret")
    eq(hashed, "36fb8c98699d5e9426f3f8f0316b73d0bcb05291235a18b57cabec5e3a9681b1", "v3 hash")
    eq(sig, "8c74fef228fa769f71f89eca4ca2e51665ff700d3c86d7d469b64eef6ba3c22d", "v3 signature")

    q = {"InstanceId": "mqtt-sim-1", "GroupId": "GID_sim_2", "PageNo": 1, "PageSize": 4}
    with Sim() as sim:
        for method in ("POST", "GET"):
            page = ok_page(rpc_v3(sim, LIST, q, method=method), "v3 " + method)
            eq(page["ClientIdList"], device_ids("GID_sim_2", 4), "v3 ids")

        def change_page(query, headers):
            query["PageNo"] = "2"
        date, nonce = utc_now(), uuid.uuid4().hex
        body = expect_error(rpc_v3(sim, LIST, q, tamper=change_page, date=date, nonce=nonce),
                            400, "SignatureDoesNotMatch", "v3 query tampered")
        # the server's string-to-sign is over what it received: the tampered query
        _, _, want_hash = v3_sign("POST", "127.0.0.1:%d" % sim.port,
                                  {k: str(v) for k, v in dict(q, PageNo="2").items()}, {
                                      "x-acs-action": LIST, "x-acs-version": "2020-04-20",
                                      "x-acs-date": date, "x-acs-signature-nonce": nonce,
                                      "x-acs-content-sha256": hashlib.sha256(b"").hexdigest()},
                                  b"")
        eq(body["Message"], "Specified signature is not matched with our calculation. server "
           "string to sign is:ACS3-HMAC-SHA256\n" + want_hash, "v3 message")

        def change_sig(query, headers):
            headers["Authorization"] = headers["Authorization"][:-4] + "0000"
        expect_error(rpc_v3(sim, LIST, q, tamper=change_sig), 400, "SignatureDoesNotMatch",
                     "v3 signature tampered")

        def change_date(query, headers):
            headers["x-acs-date"] = utc_now(1)
        expect_error(rpc_v3(sim, LIST, q, tamper=change_date), 400, "SignatureDoesNotMatch",
                     "v3 signed header tampered")
        expect_error(rpc_v3(sim, LIST, q, secret="nope"), 400, "SignatureDoesNotMatch",
                     "v3 wrong secret")
        expect_error(rpc_v3(sim, LIST, q, key_id="nobody"), 404, "InvalidAccessKeyId.NotFound")
        expect_error(rpc_v3(sim, LIST, q, date=utc_now(-7200)), 400, "InvalidTimeStamp.Expired")
        nonce = uuid.uuid4().hex
        ok_page(rpc_v3(sim, LIST, q, nonce=nonce), "v3 nonce first use")
        expect_error(rpc_v3(sim, LIST, q, nonce=nonce), 400, "SignatureNonceUsed")

        # a body that does not match x-acs-content-sha256
        def change_body_hash(query, headers):
            headers["x-acs-content-sha256"] = hashlib.sha256(b"x").hexdigest()
        expect_error(rpc_v3(sim, LIST, q, tamper=change_body_hash), 400,
                     "SignatureDoesNotMatch", "v3 payload hash")

        def drop_date(query, headers):
            del headers["x-acs-date"]
        body = expect_error(rpc_v3(sim, LIST, q, tamper=drop_date), 400, "MissingParameter")
        check("x-acs-date" in body["Message"], "names x-acs-date: " + body["Message"])
        for auth in ("Bearer x", "ACS3-HMAC-SHA256 Credential=testid,Signature=ab",
                     "ACS3-HMAC-SHA256 SignedHeaders=host,Signature=ab",
                     "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host"):
            def set_auth(query, headers, auth=auth):
                headers["Authorization"] = auth
            expect_error(rpc_v3(sim, LIST, q, tamper=set_auth), 400, "IncompleteSignature", auth)
        expect_error(rpc_v3(sim, LIST, q, extra_headers={"x-acs-version": "2019-01-01"}), 400,
                     "InvalidVersion")


# Canonicalisations a client could get wrong, each visible on the value below.  The
# simulator verifies with its own code (sim_sign.c), so it must refuse every one of them.
MISCANONICAL = {
    "space as +": lambda pairs: _join(pairs, lambda s: urllib.parse.quote_plus(s, safe="-_.~")),
    "* kept": lambda pairs: _join(pairs, lambda s: pct(s).replace("%2A", "*")),
    "~ encoded": lambda pairs: _join(pairs, lambda s: pct(s).replace("~", "%7E")),
    "lower-case hex": lambda pairs: _join(
        pairs, lambda s: re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), pct(s))),
    "not encoded": lambda pairs: _join(pairs, lambda s: s),
    "not sorted": lambda pairs: "&".join("%s=%s" % (pct(k), pct(v)) for k, v in pairs.items()),
}
TRICKY_VALUE = "a b*c~d/e"


def _join(pairs, enc):
    return "&".join("%s=%s" % kv for kv in sorted((enc(k), enc(v)) for k, v in pairs.items()))


def test_miscanonicalised_signatures_refused():
    q = {"Action": LIST, "InstanceId": "mqtt-sim-1", "GroupId": "GID_sim_1", "PageNo": 1,
         "PageSize": 1, "Extra": TRICKY_VALUE}
    with Sim() as sim:
        ok_page(rpc_v1(sim, q), "v1 signed right")
        for bug, canon in MISCANONICAL.items():
            nonce, ts = str(uuid.uuid4()), utc_now()
            p = {k: str(v) for k, v in v1_params(q, nonce=nonce, timestamp=ts).items()}
            check(canon(p) != canonical_query(p), bug + ": the bug must show on the value")
            sts = "POST&%2F&" + pct(canon(p))
            sig = base64.b64encode(hmac.new(b"testsecret&", sts.encode(),
                                            hashlib.sha1).digest()).decode()
            expect_error(rpc_v1(sim, q, nonce=nonce, timestamp=ts, signature=sig), 400,
                         "SignatureDoesNotMatch", "v1 " + bug)
        # the signing by hand itself is right: with the true canonical query it is accepted
        nonce, ts = str(uuid.uuid4()), utc_now()
        p = {k: str(v) for k, v in v1_params(q, nonce=nonce, timestamp=ts).items()}
        sig = base64.b64encode(hmac.new(b"testsecret&", ("POST&%2F&" + pct(canonical_query(p)))
                                        .encode(), hashlib.sha1).digest()).decode()
        ok_page(rpc_v1(sim, q, nonce=nonce, timestamp=ts, signature=sig), "v1 signed by hand")

        v3q = {"InstanceId": "mqtt-sim-1", "GroupId": "GID_sim_1", "PageNo": 1, "PageSize": 1,
               "Extra": TRICKY_VALUE}
        ok_page(rpc_v3(sim, LIST, v3q), "v3 signed right")
        for bug, canon in MISCANONICAL.items():
            def resign(query, headers, canon=canon):
                signed = {k.lower(): str(v).strip() for k, v in headers.items()
                          if k != "Authorization"}
                signed["host"] = "127.0.0.1:%d" % sim.port
                names = sorted(signed)
                creq = "\n".join(["POST", "/", canon(query),
                                  "".join("%s:%s\n" % (n, signed[n]) for n in names),
                                  ";".join(names), hashlib.sha256(b"").hexdigest()])
                sig = hmac.new(b"testsecret", ("ACS3-HMAC-SHA256\n" + hashlib.sha256(
                    creq.encode()).hexdigest()).encode(), hashlib.sha256).hexdigest()
                headers["Authorization"] = ("ACS3-HMAC-SHA256 Credential=testid,"
                                            "SignedHeaders=%s,Signature=%s"
                                            % (";".join(names), sig))
            expect_error(rpc_v3(sim, LIST, v3q, tamper=resign), 400, "SignatureDoesNotMatch",
                         "v3 " + bug)
        # the resigning itself is right: with the true canonical query it is accepted
        ok_page(rpc_v3(sim, LIST, v3q, tamper=lambda query, headers: resign(
            query, headers, canon=canonical_query)), "v3 resigned right")


# ---- paging ----

def test_paging_by_token():
    with Sim("--devices", "1234") as sim:
        ids, pages = crawl_by_token(sim, "mqtt-sim-1", "GID_sim_1", 100)
        eq(ids, device_ids("GID_sim_1", 1234), "ids by NextToken")
        eq(len(pages), 13, "pages")
        check(all(p["Total"] == "1234" for p in pages), "Total on every page")
        check(all(p["PageSize"] == "100" for p in pages), "PageSize echoed")
        check("NextToken" not in pages[-1], "last page has a NextToken: %r" % pages[-1])
        # the token is a keyset cursor: PageNo does not matter once a token is given
        tok = pages[0]["NextToken"]
        page = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 7, 3, next_token=tok))
        eq(page["ClientIdList"], device_ids("GID_sim_1", 103)[100:], "page after token")
        eq(page["PageNo"], "7", "PageNo echoed")
        # exactly at the end: the last ID's token gives an empty page
        ids_all = device_ids("GID_sim_1", 1234)
        eq(ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 34,
                             next_token=pages[-2]["NextToken"]))["ClientIdList"],
           ids_all[1200:], "last page by token")
        # page by PageNo too (the default serves both)
        ids2, _ = crawl_by_page_no(sim, "mqtt-sim-1", "GID_sim_1", 100)
        eq(ids2, ids_all, "ids by PageNo")


def test_paging_no_token():
    with Sim("--devices", "250", "--no-token") as sim:
        ids, pages = crawl_by_page_no(sim, "mqtt-sim-1", "GID_sim_2", 100)
        eq(ids, device_ids("GID_sim_2", 250), "ids by PageNo")
        check(all("NextToken" not in p for p in pages), "a NextToken under --no-token")
        eq(len(pages), 4, "3 pages and an empty one")
        eq(pages[-1]["Total"], "250", "Total on the empty page")
        # a token sent anyway is ignored (pure PageNo paging)
        page = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_2", 2, 100, next_token="junk"))
        eq(page["ClientIdList"], ids[100:200], "token ignored")


def test_page_cap():
    with Sim("--devices", "50", "--page-cap", "7") as sim:
        page = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 100))
        eq(page["PageSize"], "7", "PageSize echoes the cap")
        eq(len(page["ClientIdList"]), 7, "items per page")
        ids, pages = crawl_by_token(sim, "mqtt-sim-1", "GID_sim_1", 100)
        eq(ids, device_ids("GID_sim_1", 50), "capped crawl by token")
        eq(len(pages), 8, "pages")
        ids, _ = crawl_by_page_no(sim, "mqtt-sim-1", "GID_sim_1", 100)
        eq(ids, device_ids("GID_sim_1", 50), "capped crawl by PageNo")
        page = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 3))
        eq(page["PageSize"], "3", "below the cap, PageSize is the request's")


def test_last_token_modes():
    with Sim("--devices", "5", "--last-token", "empty") as sim:
        page = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 10))
        eq(page.get("NextToken"), "", "empty mode")
        p1 = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 3))
        check(p1["NextToken"], "a middle page has a real token")
    with Sim("--devices", "5", "--last-token", "same") as sim:
        p1 = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 3))
        p2 = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 2, 3, next_token=p1["NextToken"]))
        eq(p2["ClientIdList"], device_ids("GID_sim_1", 5)[3:], "second page")
        eq(p2.get("NextToken"), p1["NextToken"], "same mode echoes the token sent")
        page = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 10))
        check("NextToken" not in page, "same mode with no token sent: %r" % page)
    with Sim("--devices", "5") as sim:
        page = ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 10))
        check("NextToken" not in page, "absent mode: %r" % page)


def test_total_as_number_and_empty_group():
    d = tmpdir()
    path = os.path.join(d, "data.json")
    with open(path, "w") as f:
        json.dump({"instances": {"mqtt-a": {"groups": {"GID_empty": [], "GID_x": ["GID_x@@@1"]}},
                                 "mqtt-nogroups": {}}}, f)
    with Sim("--dataset", path, "--total-as-number") as sim:
        page = ok_page(list_page(sim, "mqtt-a", "GID_x", 1, 10))
        eq(page["Total"], 1, "Total as a number")
        st, _, raw = request(sim, "GET", "/?" + "&".join(
            "%s=%s" % (pct(k), pct(v)) for k, v in signed("GET", {
                "Action": LIST, "InstanceId": "mqtt-a", "GroupId": "GID_x", "PageNo": "1",
                "PageSize": "10"}).items()))
        check(b'"Total":1,' in raw, "raw body: %r" % raw)
        page = ok_page(list_page(sim, "mqtt-a", "GID_empty", 1, 10))
        eq((page["Total"], page["ClientIdList"]), (0, []), "empty group")
        st, _, body = rpc_v1(sim, {"Action": "ListGroupId", "InstanceId": "mqtt-nogroups"})
        eq((st, body.get("Data")), (200, []), "instance without groups")
    with Sim("--dataset", path) as sim:
        page = ok_page(list_page(sim, "mqtt-a", "GID_empty", 1, 10))
        eq((page["Total"], page["ClientIdList"]), ("0", []), "empty group, Total as string")


def signed(method, params):
    p = v1_params(params)
    p["Signature"] = v1_signature(method, p)
    return p


# ---- validation ----

def test_parameter_validation():
    with Sim("--devices", "20") as sim:
        base = {"Action": LIST, "InstanceId": "mqtt-sim-1", "GroupId": "GID_sim_1", "PageNo": 1,
                "PageSize": 10}
        for name in ("InstanceId", "GroupId", "PageNo", "PageSize"):
            for value in (None, ""):
                body = expect_error(rpc_v1(sim, dict(base, **{name: value})), 400,
                                    "ParameterCheckFailed", "missing " + name)
                check(body["Message"].startswith(
                    "An error occurred while validating the parameters. The parameters may be "
                    "missing or invalid.") and name in body["Message"],
                    "message: " + body["Message"])
        for v in ("0", "101", "abc", "-1", "1.5", " 10", "99999999999999999999"):
            body = expect_error(rpc_v1(sim, dict(base, PageSize=v)), 400,
                                "InvalidParameter.PageSize", "PageSize " + v)
        for v in ("100", "1", "007"):
            ok_page(rpc_v1(sim, dict(base, PageSize=v)), "PageSize " + v)
        for v in ("0", "-1", "x", "1e3"):
            expect_error(rpc_v1(sim, dict(base, PageNo=v)), 400, "InvalidParameter.PageNo",
                         "PageNo " + v)
        page = ok_page(rpc_v1(sim, dict(base, PageNo="999999999999")), "huge PageNo")
        eq(page["ClientIdList"], [], "huge PageNo is past the end")
        good = ok_page(rpc_v1(sim, base))["NextToken"]
        for tok in ("garbage", "c1", good[:-1] + ("0" if good[-1] != "0" else "1"),
                    good[:2] + "00" + good[2:], good.upper()):
            expect_error(rpc_v1(sim, dict(base, NextToken=tok)), 400,
                         "InvalidParameter.NextToken", "token " + tok)
        body = expect_error(rpc_v1(sim, dict(base, InstanceId="mqtt-nope")), 400,
                            "InstancePermissionCheckFailed")
        eq(body["Message"], MSG_INSTANCE, "InstancePermissionCheckFailed message")
        body = expect_error(rpc_v1(sim, dict(base, GroupId="GID_nope")), 400,
                            "PermissionCheckFailed")
        check("resource permissions" in body["Message"], "message: " + body["Message"])
        expect_error(rpc_v1(sim, dict(base, Version="2019-01-01")), 400, "InvalidVersion")
        expect_error(rpc_v1(sim, dict(base, Action="DescribeNothing")), 404,
                     "InvalidAction.NotFound")
        for action in ("GetDeviceCredential", "RegisterDeviceCredential",
                       "RefreshDeviceCredential"):
            expect_error(rpc_v1(sim, dict(base, Action=action, ClientId="GID_sim_1@@@x")), 400,
                         "Forbidden.Simulator", action)
        st = sim.stats()
        for action in ("GetDeviceCredential", "RegisterDeviceCredential",
                       "RefreshDeviceCredential"):
            eq(st["by_action"].get(action), 1, "by_action " + action)
        st, _, body = request(sim, "GET", "/elsewhere")
        eq((st, body and json.loads(body)["Code"]), (404, "InvalidPath"), "other path")
        st, _, body = request(sim, "PUT", "/")
        eq(st, 405, "PUT")
        # the same parameter twice
        p = signed("GET", dict(base, PageNo="1"))
        target = "/?" + "&".join("%s=%s" % (pct(k), pct(v)) for k, v in p.items()) + "&PageNo=2"
        eq(json.loads(request(sim, "GET", target)[2])["Code"], "InvalidParameter.Duplicate",
           "duplicate parameter")


# ---- faults ----

FAULT_ERRORS = [
    ("SystemOverFlow", 500, "An error occurred while processing your request. Please try again.", True),
    ("ApplyTokenOverFlow", 400, "You have applied for tokens too many times. Please try again later.", True),
    ("InternalError", 500, None, False),
    ("Throttling", 400, "Request was denied due to user flow control.", True),
    ("Throttling.User", 400, "Request was denied due to user flow control.", True),
    ("Throttling.Api", 400, "Request was denied due to user flow control.", True),
    ("ServiceUnavailable", 503, None, False),
    ("Custom.Failure", 400, None, False),
]


def test_fault_error_codes():
    args = ["--retry-after", "1500"]
    for code, _, _, _ in FAULT_ERRORS:
        args += ["--fault", "%s=1@inst-%s" % (code, code)]
    d = tmpdir()
    path = os.path.join(d, "data.json")
    with open(path, "w") as f:
        json.dump({"instances": {"inst-" + c: {"groups": {"GID_a": ["GID_a@@@1"]}}
                                 for c, _, _, _ in FAULT_ERRORS}}, f)
    with Sim("--dataset", path, *args) as sim:
        for code, status, message, throttle in FAULT_ERRORS:
            resp = list_page(sim, "inst-" + code, "GID_a")
            body = expect_error(resp, status, code)
            if message:
                eq(body["Message"], message, code + " message")
            eq(resp[1].get("x-acs-retry-after"), "1500" if throttle else None,
               code + " x-acs-retry-after")
            # errors are injected after authentication
            expect_error(list_page(sim, "inst-" + code, "GID_a", secret="wrong"), 400,
                         "SignatureDoesNotMatch", code + " with a bad signature")
        st = sim.stats()
        for code, _, _, _ in FAULT_ERRORS:
            eq(st["faults"].get(code), 1, "faults counter " + code)
            eq(st["by_code"].get(code), 1, "by_code " + code)
        eq(st["throttled"], 5, "throttled counter")
        eq(st["pages"], 0, "pages")


def test_network_faults():
    with Sim("--fault", "reset=1@mqtt-sim-1/GID_sim_1", "--fault", "timeout=1@mqtt-sim-1/GID_sim_2",
             "--fault", "garbage=1@mqtt-sim-2/GID_sim_1", "--fault", "html=1@mqtt-sim-2/GID_sim_2",
             "--fault", "truncated=1@mqtt-sim-3", "--instances", "4", "--hang", "300") as sim:
        for secret in ("testsecret", "wrong"):  # network faults strike before authentication
            try:
                list_page(sim, "mqtt-sim-1", "GID_sim_1", secret=secret)
                raise AssertionError("reset: got a response")
            except ConnectionError:
                pass
        t0 = time.monotonic()
        try:
            list_page(sim, "mqtt-sim-1", "GID_sim_2")
            raise AssertionError("timeout: got a response")
        except ConnectionError:
            pass
        took = time.monotonic() - t0
        check(0.25 <= took < 5, "timeout hung %.2f s, want about 0.3" % took)
        st, headers, body = list_page(sim, "mqtt-sim-2", "GID_sim_1", secret="wrong")
        eq(st, 200, "garbage status")
        check(isinstance(body, bytes) and len(body) == 64, "garbage body %r" % (body,))
        check(headers["content-type"].startswith("application/json"), "garbage content type")
        try:
            body.decode("utf-8")
            raise AssertionError("garbage is valid UTF-8")
        except UnicodeDecodeError:
            pass
        st, headers, body = list_page(sim, "mqtt-sim-2", "GID_sim_2")
        eq(st, 502, "html status")
        check(headers["content-type"].startswith("text/html"), "html content type")
        check(b"<title>502 Bad Gateway</title>" in body, "html body %r" % body)
        st, headers, body = list_page(sim, "mqtt-sim-3", "GID_sim_1", 1, 20)
        eq(st, 200, "truncated status")
        check(isinstance(body, bytes), "truncated body parsed as JSON: %r" % (body,))
        eq(int(headers["content-length"]), len(body), "truncated Content-Length")
        check(body.startswith(b'{"RequestId":"') and len(body) > 200,
              "truncated body: %r" % body)
        # the other instance is untouched
        ok_page(list_page(sim, "mqtt-sim-4", "GID_sim_1"), "unscoped instance")
        st = sim.stats()
        eq(st["faults"], {"reset": 2, "timeout": 1, "garbage": 1, "html": 1, "truncated": 1},
           "fault counters")
        eq(st["pages"], 2, "pages (the truncated one counts as served)")


def test_truncated_is_half_of_a_real_page():
    with Sim("--fault", "truncated=1@mqtt-sim-1/GID_sim_2", "--devices", "30") as sim:
        full = list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 30)
        eq(full[0], 200, "full page")
        st, headers, cut = list_page(sim, "mqtt-sim-1", "GID_sim_2", 1, 30)
        whole = json.dumps(full[2], separators=(",", ":")).encode()
        eq(len(cut), len(whole) // 2, "half the length of a real page")
        # the same page of the other group, RequestId aside
        rid_end = len('{"RequestId":"') + 36
        eq(cut[rid_end:], whole.replace(b"GID_sim_1", b"GID_sim_2")[rid_end:len(cut)],
           "a real prefix")


def test_fault_rates_and_unscoped():
    with Sim("--fault", "InternalError=0.3", "--fault", "SystemOverFlow=0.2", "--seed", "7",
             "--devices", "3") as sim:
        codes = {}
        for _ in range(300):
            st, _, body = list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 3)
            code = body.get("Code", "OK") if isinstance(body, dict) else "?"
            codes[code] = codes.get(code, 0) + 1
        check(50 <= codes.get("InternalError", 0) <= 130, "InternalError count %r" % codes)
        check(30 <= codes.get("SystemOverFlow", 0) <= 100, "SystemOverFlow count %r" % codes)
        check(100 <= codes.get("OK", 0) <= 200, "OK count %r" % codes)
        eq(sum(codes.values()), 300, "every request answered")


def test_qps_limit():
    # 2/s with a burst of 1: however slow this machine, most of 20 quick requests fail
    with Sim("--qps", "2", "--retry-after", "250") as sim:
        t0 = time.monotonic()
        results = [list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 1) for _ in range(20)]
        took = time.monotonic() - t0
        passed = [r for r in results if r[0] == 200]
        over = [r for r in results if r[0] != 200]
        check(1 <= len(passed) <= 2 + 2 * took, "%d of 20 requests in %.2f s passed at 2/s"
              % (len(passed), took))
        for r in over:
            expect_error(r, 500, "SystemOverFlow")
            eq(r[1].get("x-acs-retry-after"), "250", "retry-after on qps rejection")
        time.sleep(0.6)
        ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 1), "after the bucket refilled")
        st = sim.stats()
        eq(st["throttled"], len(over), "throttled counter")
        eq(st["by_code"].get("SystemOverFlow"), len(over), "by_code SystemOverFlow")
        # rejections by authentication never reach the bucket
        time.sleep(0.6)
        for _ in range(5):
            expect_error(list_page(sim, "mqtt-sim-1", "GID_sim_1", secret="x"), 400,
                         "SignatureDoesNotMatch")
        ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 1), "bucket untouched by rejects")


def test_latency():
    with Sim("--latency", "400") as sim:
        t0 = time.monotonic()
        ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1"))
        took = time.monotonic() - t0
        check(0.39 <= took < 5, "latency %.3f s" % took)
        t0 = time.monotonic()
        expect_error(list_page(sim, "mqtt-sim-1", "GID_sim_1", secret="x"), 400,
                     "SignatureDoesNotMatch")
        check(time.monotonic() - t0 >= 0.39, "errors are delayed too")
        t0 = time.monotonic()
        sim.stats()
        check(time.monotonic() - t0 < 0.35, "control endpoints are not delayed")


# ---- control endpoints ----

def test_mutate_and_dump():
    with Sim("--instances", "2", "--devices", "10", "--seed", "1") as sim:
        before = sim.dump()
        eq(sorted(before["instances"]), ["mqtt-sim-1", "mqtt-sim-2"], "instances")
        eq(before["instances"]["mqtt-sim-1"]["groups"]["GID_sim_1"], device_ids("GID_sim_1", 10),
           "dumped ids")
        r = sim.mutate(add=3, remove=2, instance="mqtt-sim-1", group="GID_sim_1")
        eq(r["added"], ["GID_sim_1@@@dev-%07d" % i for i in (11, 12, 13)], "added")
        eq(len(r["removed"]), 2, "removed")
        check(set(r["removed"]) <= set(device_ids("GID_sim_1", 10)), "removed existing ids")
        after = sim.dump()
        want = sorted(set(device_ids("GID_sim_1", 10)) - set(r["removed"]) | set(r["added"]))
        eq(after["instances"]["mqtt-sim-1"]["groups"]["GID_sim_1"], want, "dump after mutate")
        eq(after["instances"]["mqtt-sim-2"], before["instances"]["mqtt-sim-2"], "other instance")
        ids, pages = crawl_by_token(sim, "mqtt-sim-1", "GID_sim_1", 4)
        eq(ids, want, "crawl after mutate")
        eq(pages[0]["Total"], "11", "Total after mutate")
        r = sim.mutate(add=1)
        eq(len(r["added"]), 4, "one per group in every instance")
        r = sim.mutate(remove=100, group="GID_sim_2")
        eq(len(r["removed"]), 22, "remove more than there are")
        eq(ok_page(list_page(sim, "mqtt-sim-2", "GID_sim_2"))["Total"], "0", "emptied group")
        st, _, body = request(sim, "POST", "/_sim/mutate?add=1&group=GID_nope")
        eq(st, 404, "unknown group: %r" % body)
        check(b"GID_nope" in body, "message names the group: %r" % body)
        st, _, body = request(sim, "POST", "/_sim/mutate?add=lots")
        eq(st, 400, "bad add")
        check(b"add" in body and b"lots" in body, "message: %r" % body)
        eq(request(sim, "GET", "/_sim/mutate")[0], 405, "GET mutate")
        eq(request(sim, "GET", "/_sim/nothing")[0], 404, "unknown control path")
        st = sim.stats()
        eq((st["requests"], st["rpc_requests"]), (4, 4), "control requests are not counted")


def test_file_dataset_mutation_names():
    d = tmpdir()
    path = os.path.join(d, "data.json")
    with open(path, "w") as f:
        json.dump({"instances": {"mqtt-a": {"groups": {"GID_a": ["GID_a@@@churn-1", "GID_a@@@x"]}}}},
                  f)
    with Sim("--dataset", path) as sim:
        r = sim.mutate(add=2)
        eq(r["added"], ["GID_a@@@churn-2", "GID_a@@@churn-3"], "file dataset: new names skip taken")


def test_stats_counters():
    with Sim("--devices", "5", "--fault", "InternalError=1@mqtt-sim-1/GID_sim_2") as sim:
        ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1"))
        ok_page(list_page(sim, "mqtt-sim-1", "GID_sim_1", method="GET"))
        expect_error(list_page(sim, "mqtt-sim-1", "GID_sim_2"), 500, "InternalError")
        expect_error(list_page(sim, "mqtt-sim-1", "GID_sim_1", secret="x"), 400,
                     "SignatureDoesNotMatch")
        rpc_v1(sim, {"Action": "ListGroupId", "InstanceId": "mqtt-sim-1"})
        st = sim.stats()
        eq(st["requests"], 5, "requests")
        eq(st["rpc_requests"], 5, "rpc_requests")
        eq(st["pages"], 2, "pages")
        eq(st["throttled"], 0, "throttled")
        eq(st["by_action"], {LIST: 4, "ListGroupId": 1}, "by_action")
        eq(st["by_code"], {"InternalError": 1, "SignatureDoesNotMatch": 1}, "by_code")
        eq(st["faults"], {"InternalError": 1}, "faults")
        eq(st["blocks"], 0, "blocks")
        sim.reset_stats()
        eq(sim.stats(), {"requests": 0, "rpc_requests": 0, "pages": 0, "throttled": 0, "issued": 0,
                         "by_action": {}, "by_code": {}, "faults": {}, "blocks": 0}, "after reset")


def test_request_ids_unique():
    with Sim() as sim:
        seen = set()
        for _ in range(50):
            st, headers, body = list_page(sim, "mqtt-sim-1", "GID_sim_1", 1, 1)
            rid = body["RequestId"]
            check(len(rid) == 36 and rid == rid.upper() and rid.count("-") == 4,
                  "RequestId shape %r" % rid)
            seen.add(rid)
        eq(len(seen), 50, "distinct RequestIds")


# ---- data ----

HOSTILE = [
    'GID_h@@@quote"d',
    "GID_h@@@back\\slash",
    "GID_h@@@new\nline",
    "GID_h@@@tab\tand\x01ctl\x1f",
    "GID_h@@@<script>alert(1)</script>",
    "GID_h@@@100%",
    "GID_h@@@%2B%20",
    "GID_h@@@two@@@ats",
    "GID_h@@@\u4e2d\u6587\u8bbe\u5907",
    "GID_h@@@emoji\U0001F600",
    "GID_h@@@ space ",
    "GID_h@@@'single'",
    "GID_h@@@\u2028sep",
]


def test_hostile_ids():
    d = tmpdir()
    path = os.path.join(d, "hostile.json")
    ids = HOSTILE + HOSTILE[:3]  # duplicates collapse
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"instances": {"mqtt-h": {"groups": {"GID_h": ids, "GID_empty": []}},
                                 "mqtt-empty": {"groups": {}}}}, f, ensure_ascii=False)
    want = sorted(set(HOSTILE), key=lambda s: s.encode("utf-8"))
    with Sim("--dataset", path) as sim:
        for size in (100, 1, 4):
            got, pages = crawl_by_token(sim, "mqtt-h", "GID_h", size)
            eq(got, want, "hostile ids by token, page size %d" % size)
            eq(pages[0]["Total"], str(len(want)), "Total")
        got, _ = crawl_by_page_no(sim, "mqtt-h", "GID_h", 5)
        eq(got, want, "hostile ids by PageNo")
        dump = sim.dump()
        eq(dump["instances"]["mqtt-h"]["groups"]["GID_h"], want, "dump")
        eq(dump["instances"]["mqtt-h"]["groups"]["GID_empty"], [], "dump of an empty group")
        eq(dump["instances"]["mqtt-empty"], {"groups": {}}, "dump of an instance without groups")
        st, _, raw = list_page(sim, "mqtt-h", "GID_h")
        st, _, raw = request(sim, "GET", "/?" + "&".join("%s=%s" % (pct(k), pct(v)) for k, v in
                                                         signed("GET", {
                                                             "Action": LIST, "InstanceId": "mqtt-h",
                                                             "GroupId": "GID_h", "PageNo": "1",
                                                             "PageSize": "100"}).items()))
        check(b"new\\u000Aline" in raw, "newline escaped as \\u000A: %r" % raw)
        check(b"<script>" in raw and b'quote\\"d' in raw and b"back\\\\slash" in raw,
              "escaping in %r" % raw)
        check("\u4e2d\u6587".encode() in raw, "UTF-8 passed through")
        raw.decode("utf-8")
        json.loads(raw)
        r = sim.mutate(add=1, instance="mqtt-h", group="GID_h")
        eq(r["added"], ["GID_h@@@churn-1"], "added in a file dataset")


def test_churn_during_crawl():
    with Sim("--devices", "500", "--churn-during-crawl", "1", "--seed", "3") as sim:
        ids, pages = crawl_by_token(sim, "mqtt-sim-1", "GID_sim_1", 50)
        check(all(p["Total"] == "500" for p in pages), "Total stays 500 under churn")
        after = sim.dump()["instances"]["mqtt-sim-1"]["groups"]["GID_sim_1"]
        eq(len(after), 500, "size after churn")
        new = [i for i in after if i > "GID_sim_1@@@dev-0000500"]
        eq(len(new), len(pages) - 1, "one new ID before each page that continues the walk")
        eq(new[0], "GID_sim_1@@@dev-0000501", "new IDs continue the numbering")
        untouched = sim.dump()["instances"]["mqtt-sim-1"]["groups"]["GID_sim_2"]
        eq(untouched, device_ids("GID_sim_2", 500), "other group untouched")


def test_list_group_id():
    with Sim("--instances", "2", "--groups", "3", "--devices", "1",
             "--list-group-qps", "5", "--retry-after", "100") as sim:
        st, _, body = rpc_v1(sim, {"Action": "ListGroupId", "InstanceId": "mqtt-sim-2"})
        eq(st, 200, "ListGroupId: %r" % body)
        eq([g["GroupId"] for g in body["Data"]], ["GID_sim_1", "GID_sim_2", "GID_sim_3"], "groups")
        for g in body["Data"]:
            eq(g["InstanceId"], "mqtt-sim-2", "InstanceId")
            check(isinstance(g["CreateTime"], int) and g["CreateTime"] > 1.5e12, "CreateTime")
            check(isinstance(g["UpdateTime"], int), "UpdateTime")
            eq((g["IndependentNaming"], g["Tags"]), (True, []), "IndependentNaming, Tags")
        expect_error(rpc_v1(sim, {"Action": "ListGroupId", "InstanceId": "mqtt-x"}), 400,
                     "InstancePermissionCheckFailed")
        time.sleep(1.0)
        t0 = time.monotonic()
        results = [rpc_v1(sim, {"Action": "ListGroupId", "InstanceId": "mqtt-sim-1"})
                   for _ in range(12)]
        took = time.monotonic() - t0
        ok = [r for r in results if r[0] == 200]
        over = [r for r in results if r[0] != 200]
        check(5 <= len(ok) <= 6 + 5 * took and over,
              "%d of 12 ListGroupId calls in %.2f s passed at 5/s" % (len(ok), took))
        for r in over:
            body = expect_error(r, 400, "Throttling.User")
            eq(body["Message"], "Request was denied due to user flow control.", "message")
            eq(r[1].get("x-acs-retry-after"), "100", "retry-after")
        eq(sim.stats()["throttled"], len(over), "throttled counter")
    with Sim("--list-group-qps", "0") as sim:
        for _ in range(30):
            eq(rpc_v1(sim, {"Action": "ListGroupId", "InstanceId": "mqtt-sim-1"})[0], 200,
               "unlimited ListGroupId")


def test_keep_alive_connection():
    import http.client
    with Sim() as sim:
        conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
        for i in range(20):
            p = signed("POST", {"Action": LIST, "InstanceId": "mqtt-sim-1",
                                "GroupId": "GID_sim_1", "PageNo": "1", "PageSize": "2"})
            conn.request("POST", "/?" + "&".join("%s=%s" % (pct(k), pct(v))
                                                 for k, v in p.items()), body=b"")
            resp = conn.getresponse()
            eq(resp.status, 200, "keep-alive request %d" % i)
            resp.read()
        conn.close()


def main():
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    only = sys.argv[1:]
    failed = []
    for name, fn in tests:
        if only and not any(o in name for o in only):
            continue
        t0 = time.monotonic()
        try:
            fn()
            print("ok   %s (%.2f s)" % (name, time.monotonic() - t0))
        except Exception:
            failed.append(name)
            print("FAIL %s\n%s" % (name, traceback.format_exc()))
        sys.stdout.flush()
    if failed:
        print("%d failed: %s" % (len(failed), ", ".join(failed)))
        return 1
    print("all %d passed" % len(tests) if not only else "selected tests passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
