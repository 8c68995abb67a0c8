"""The HTML diff report opened in headless Chromium (Debian's chromium package): a
screenshot of the expected size that is not blank, and a report of hostile client IDs in
which no script runs and no element is injected."""
import html.parser
import os
import shutil
import struct
import subprocess
import zlib

import cs
import harness
from harness import Sim

WIDTH, HEIGHT = 1000, 800


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("no chromium on PATH: .ci/run installs Debian's chromium package")


def chromium_run(args, d):
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--no-first-run", "--disable-quic",
           "--disable-component-update", "--disable-sync", "--disable-extensions",
           "--user-data-dir=" + os.path.join(d, "chromium-profile")] + args
    p = subprocess.run(cmd, capture_output=True, timeout=120)
    assert p.returncode == 0, "chromium failed: %s\n%s" % (cmd, p.stderr.decode()[-2000:])
    return p.stdout.decode("utf-8", "replace")


def png_pixels(path):
    """Decodes an 8-bit RGB/RGBA non-interlaced PNG: (width, height, rows of bytes, bpp)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if ctype == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            bpp = 3 if color == 2 else 4
        elif ctype == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ftype == 4:
                p_ = a + b - c
                pa, pb, pc = abs(p_ - a), abs(p_ - b), abs(p_ - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def make_report(ids_added, d):
    db = os.path.join(d, "inv.db")
    data = {"mqtt-a": {"GID_a": ["GID_a@@@dev-%03d" % i for i in range(40)]}}
    with Sim("--dataset", cs.write_dataset(os.path.join(d, "data.json"), data)) as sim:
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-a", "endpoint": sim.endpoint, "groups": ["GID_a"]}], database=db)
        cs.expect(cs.run(["-c", cfg, "sync"]), 0)
    data["mqtt-a"]["GID_a"] = data["mqtt-a"]["GID_a"][5:] + ids_added
    with Sim("--dataset", cs.write_dataset(os.path.join(d, "data.json"), data)) as sim:
        cfg = cs.write_config(os.path.join(d, "c.yaml"), [
            {"id": "mqtt-a", "endpoint": sim.endpoint, "groups": ["GID_a"]}], database=db)
        cs.expect(cs.run(["-c", cfg, "sync"]), 0)
    out = os.path.join(d, "report.html")
    cs.expect(cs.run(["-d", db, "diff", "--format", "html", "-o", out]), 0)
    return out


def test_screenshot_not_blank():
    d = harness.tmpdir()
    report = make_report(["GID_a@@@new-%d" % i for i in range(7)], d)
    shot = os.path.join(d, "shot.png")
    chromium_run(["--window-size=%d,%d" % (WIDTH, HEIGHT), "--screenshot=" + shot,
                  "file://" + report], d)
    w, h, rows, bpp = png_pixels(shot)
    assert (w, h) == (WIDTH, HEIGHT), (w, h)
    colours = set()
    dark = 0
    for row in rows[::4]:
        for x in range(0, w * bpp, bpp * 4):
            px = row[x:x + 3]
            colours.add(px)
            if sum(px) < 200:
                dark += 1
    # text, table borders, the chart's blue line and red/orange markers
    assert len(colours) > 20, "the screenshot is nearly blank (%d colours)" % len(colours)
    assert dark > 100, "no text was drawn (%d dark pixels)" % dark
    assert any(p[2] > 150 and p[0] < 100 for p in colours), "the chart's line is missing"


def test_hostile_ids_do_not_execute():
    d = harness.tmpdir()
    hostile = ["GID_a@@@<script>document.title='PWNED'</script>",
               "GID_a@@@<img src=x onerror=\"document.title='PWNED'\">",
               "GID_a@@@\"><svg onload=document.title='PWNED'>",
               "GID_a@@@</code></li></ul><script>document.title='PWNED'</script>",
               "GID_a@@@&lt;amp'quote"]
    report = make_report(hostile, d)
    dom = chromium_run(["--dump-dom", "file://" + report], d)
    assert "PWNED" not in dom.split("</title>")[0] and "<title>credsync diff" in dom, dom[:500]

    class Tags(html.parser.HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.tags, self.handlers, self.text = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.handlers += [k for k, _ in attrs if k.lower().startswith("on")]

        def handle_data(self, data):
            self.text.append(data)

    t = Tags()
    t.feed(dom)
    assert "script" not in t.tags, "a script element reached the DOM"
    assert "img" not in t.tags, "an img element reached the DOM"
    assert t.tags.count("svg") == 1, "only the chart may be an svg: %d" % t.tags.count("svg")
    assert not t.handlers, "event handler attributes in the DOM: %s" % t.handlers
    text = "".join(t.text)
    for h in hostile:          # every hostile ID is shown as text, exactly
        assert h in text, h


if __name__ == "__main__":
    cs.main([test_screenshot_not_blank, test_hostile_ids_do_not_execute])
