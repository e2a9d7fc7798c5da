"""The incident browser (/ui/) in Debian's headless chromium, on real
incidents: a storm of strict-context 1011s from the real backend (one grouped
row with its count, one waterfall row per backend stage, the failing one
marked, the missing attribute and its source named), the link the 1011 alert
carries, and an incident whose close reason and request target hold markup
(rendered as text, no element created). Screenshots go to the build tree."""
import html.parser
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse

from incident_harness import (WSGATE, FakeUpstream, http_get, incident, make_token, procs_fixture,
                              requires_binaries, run_session, start_backend, start_proxy)

pytestmark = requires_binaries()

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
STORM = 5
SCRIPT = "<script>document.title='pwned'</script>"
IMG = "\"><img/src=x/onerror=document.title='pwned'>"


def artifact_dir():
    """build-tree/test-artifacts/incident-browser (WSGATE_BIN is build-tree/bin/wsgate)."""
    root = os.environ.get("WSGATE_ARTIFACT_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(WSGATE))), "test-artifacts")
    path = os.path.join(root, "incident-browser")
    os.makedirs(path, exist_ok=True)
    return path


class Chromium:
    """One headless chromium run per call, with a profile of its own in a tmp
    dir and a hard timeout."""

    def __init__(self, workdir):
        assert CHROMIUM, "chromium is not installed (deploy/bootstrap.sh installs it)"
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)

    def _run(self, args, timeout=40):
        cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars",
               f"--user-data-dir={self.profile}"] + args
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"chromium failed ({out.returncode}): {out.stderr[-2000:]}"
        return out.stdout

    def dump_dom(self, url):
        return self._run(["--virtual-time-budget=2000", "--dump-dom", url])

    def screenshot(self, url, path, size="1400,1100"):
        self._run([f"--screenshot={path}", f"--window-size={size}", url])
        assert os.path.getsize(path) > 1000, path
        print(f"screenshot: {path}")


class Element:
    def __init__(self, tag, attrs):
        self.tag, self.attrs, self.children, self.text_parts = tag, dict(attrs), [], []

    @property
    def classes(self):
        return (self.attrs.get("class") or "").split()

    def text(self):
        return "".join(self.text_parts + [c.text() for c in self.children])

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def find_all(self, tag=None, cls=None, **attrs):
        return [e for e in self.walk() if (tag is None or e.tag == tag)
                and (cls is None or cls in e.classes)
                and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]


VOID = {"meta", "link", "br", "img", "input", "hr", "rect", "circle"}


class Dom(html.parser.HTMLParser):
    """The serialized DOM chromium dumps, as a tree."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        e = Element(tag, attrs)
        self.stack[-1].children.append(e)
        if tag not in VOID:
            self.stack.append(e)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].text_parts.append(data)


def raw_session(port, target, cid, timeout=10):
    """A handshake with a request target no WebSocket library would send as
    is; reads until the upstream's close, answers it and waits for the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall((f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   f"Sec-WebSocket-Version: 13\r\nX-Correlation-ID: {cid}\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, f"closed during the handshake: {data!r}"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(data) >= 2 and data[0] & 0x0F == 8:
                n = data[1] & 0x7F
                if len(data) >= 2 + n:
                    payload = data[2:2 + n]
                    # Echo the close, masked (zero mask keeps the bytes).
                    s.sendall(bytes([0x88, 0x80 | len(payload[:2])]) + b"\0\0\0\0" + payload[:2])
                    break
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        return int.from_bytes(payload[:2], "big"), payload[2:].decode(errors="replace")


procs = procs_fixture()


def test_incident_browser_in_chromium(tmp_path, procs):
    workdir = str(tmp_path)
    shots = artifact_dir()
    browser = Chromium(workdir)
    backend = start_backend(workdir, policy="strict")
    procs.append(backend)
    proxy = start_proxy(workdir, f"ws://127.0.0.1:{backend.listen}",
                        f"http://127.0.0.1:{backend.admin}/debug/traces/{{correlation_id}}",
                        threads=1)
    procs.append(proxy)

    # A storm: the staging failure, STORM times (no thread_id anywhere).
    since = int(time.time()) - 1
    token = make_token(workdir)
    cids = [f"ui-storm-{i:04d}" for i in range(STORM)]
    for cid in cids:
        code, reason, _ = run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid,
                                      headers=[("Authorization", "Bearer " + token)])
        assert (code, reason) == (1011, "Factory SSOT validation failed")
    records = [incident(proxy, cid) for cid in cids]
    stage = records[0]["failing_stage"]
    assert stage == "context.validate" and all(r["summary"] == records[0]["summary"] for r in records)

    # The list at the link the 1011 alert carries.
    alert_url = proxy.admin_url(f"/ui/?code=1011&stage={stage}&since={since}")
    status, headers, _ = http_get(alert_url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src" not in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    dom = Dom(browser.dump_dom(alert_url)).root
    groups = dom.find_all("tr", cls="group-summary")
    assert len(groups) == 1, [g.text() for g in groups]
    assert groups[0].find_all("td", cls="count")[0].text() == str(STORM)
    assert groups[0].find_all("td", cls="group-key")[0].text() == records[0]["summary"]
    by_stage = dom.find_all("tr", cls="group-stage")
    assert [(g.attrs["data-stage"], g.find_all("td", cls="count")[0].text()) for g in by_stage] == \
        [(stage, str(STORM))]
    rows = dom.find_all("tr", cls="incident")
    assert [r.attrs["data-correlation-id"] for r in rows] == list(reversed(cids))  # newest first
    # The raw JSON link lists the same incidents.
    raw = dom.find_all("a", id="raw-json")[0].attrs["href"]
    assert raw.startswith("../incidents?")
    status, _, body = http_get(urllib.parse.urljoin(alert_url, raw))
    assert status == 200 and f'"count":{STORM}' in body
    browser.screenshot(alert_url, os.path.join(shots, "incident-list.png"), "1400,900")

    # One incident: a row per backend stage, the failing one marked, the
    # missing attribute named with where it comes from.
    page_url = proxy.admin_url(f"/ui/incidents/{cids[-1]}")
    dom = Dom(browser.dump_dom(page_url)).root
    trace_stages = records[-1]["backend_trace"]["stages"]
    stage_rows = dom.find_all("tr", cls="stage")
    assert [r.attrs["data-stage"] for r in stage_rows] == [s["stage"] for s in trace_stages]
    failing = [r for r in stage_rows if "failing" in r.classes]
    assert [r.attrs["data-stage"] for r in failing] == [stage]
    assert "failing stage" in failing[0].text() and "missing thread_id" in failing[0].text()
    assert len(failing[0].find_all("rect", cls="bar-error")) == 1
    missing = dom.find_all("tr", cls="missing-attribute")
    assert [m.attrs["data-attribute"] for m in missing] == ["thread_id"]
    source = missing[0].find_all("td", cls="source")[0].text()
    assert "JWT claim thread_id" in source and "X-Thread-ID" in source
    assert dom.find_all(id="summary")[0].text() == records[-1]["summary"]
    assert dom.find_all(id="user-id")[0].text() == "staging-e2e-user-001"
    assert dom.find_all(id="close-code")[0].text() == "1011"
    assert dom.find_all(id="hint")[0].text() == records[-1]["hint"]
    assert dom.find_all("a", id="raw-json")[0].attrs["href"] == f"../../incidents/{cids[-1]}"
    browser.screenshot(page_url, os.path.join(shots, "incident-page.png"), "1400,1100")

    # Markup in the close reason and the request target stays text.
    fake = FakeUpstream(close_code=1011, close_reason=SCRIPT)
    try:
        proxy2 = start_proxy(workdir, fake.url, name="wsgate-xss", threads=1)
        procs.append(proxy2)
        cid = "ui-xss-0001"
        target = "/ws/" + SCRIPT + IMG
        assert raw_session(proxy2.listen, target, cid) == (1011, SCRIPT)
        rec = incident(proxy2, cid)
        assert rec["close"]["reason"] == SCRIPT and SCRIPT in rec["path"]
        for url in (proxy2.admin_url(f"/ui/incidents/{cid}"), proxy2.admin_url("/ui/")):
            text = browser.dump_dom(url)
            dom = Dom(text).root
            assert dom.find_all("script") == [] and dom.find_all("img") == [], url
            assert dom.find_all("title")[0].text().startswith("wsgate incident")
            assert "pwned" not in dom.find_all("title")[0].text()
            assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in text
        page = Dom(browser.dump_dom(proxy2.admin_url(f"/ui/incidents/{cid}"))).root
        assert page.find_all(id="close-reason")[0].text() == SCRIPT
        assert page.find_all(id="path")[0].text() == "/ws/" + SCRIPT + IMG
    finally:
        fake.stop()
