"""A headless Chromium driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``:
JSON messages ending in NUL, commands on fd 3, replies and events on fd 4), for tests that open a
page and check what a person would see: every chart drawn, no console errors, no network."""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

__all__ = ["Chromium", "PageReport", "find_chromium"]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--no-default-browser-check",
         # nothing may leave the machine even if the page tried: every host name fails to resolve
         "--host-resolver-rules=MAP * ~NOTFOUND"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class PageReport:
    """What happened while a page was open."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.console_warnings: list[str] = []
        self.exceptions: list[str] = []
        self.log_errors: list[str] = []
        self.state: dict | None = None
        self.counts: dict = {}
        self.screenshot: bytes = b""
        self.probe: object = None


class Chromium:
    """One headless browser; use as a context manager."""

    def __init__(self, exe: str | None = None, width: int = 1280, height: int = 900) -> None:
        self.exe = exe or find_chromium()
        if self.exe is None:
            raise RuntimeError("chromium not found")
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="denet-chromium-")
        cmd_r, cmd_w = os.pipe()  # we write commands, the browser reads fd 3
        ev_r, ev_w = os.pipe()  # the browser writes fd 4, we read

        def fds() -> None:
            os.dup2(cmd_r, 3)
            os.dup2(ev_w, 4)

        self.proc = subprocess.Popen(
            [self.exe, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=fds, pass_fds=(3, 4), start_new_session=True)
        os.close(cmd_r)
        os.close(ev_w)
        self._w = cmd_w
        self._r = ev_r
        self._id = 0
        self._replies: dict[int, dict] = {}
        self._events: queue.Queue = queue.Queue()
        self._cv = threading.Condition()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    # -- plumbing

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cv:
                    self._cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cv:
                        self._replies[msg["id"]] = msg
                        self._cv.notify_all()
                else:
                    self._events.put(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60.0):
        self._id += 1
        mid = self._id
        msg: dict = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cv:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"no reply to {method} from chromium; stderr: "
                                       + b"".join(self._stderr[-20:]).decode(errors="replace"))
                self._cv.wait(min(left, 0.5))
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _collect(self, rep: PageReport) -> None:
        while True:
            try:
                ev = self._events.get_nowait()
            except queue.Empty:
                return
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Network.requestWillBeSent":
                rep.requests.append(p["request"]["url"])
            elif m == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                if p.get("type") in ("error", "assert"):
                    rep.console_errors.append(text)
                elif p.get("type") == "warning":
                    rep.console_warnings.append(text)
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                rep.exceptions.append(d.get("exception", {}).get("description") or d.get("text", ""))
            elif m == "Log.entryAdded":
                e = p.get("entry", {})
                if e.get("level") == "error":
                    rep.log_errors.append(f"{e.get('source')}: {e.get('text')} {e.get('url', '')}")

    # -- what tests use

    def open_report(self, path: str, *, timeout: float = 90.0, screenshot: bool = True,
                    probe: str | None = None) -> PageReport:
        """Open ``path`` (a file), wait until the page says its charts are done, count what was
        drawn, and take a full-page screenshot."""
        rep = PageReport()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for m in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable"):
            self.send(m, session=sid)
        self.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False}, session=sid)
        self.send("Page.navigate", {"url": "file://" + os.path.abspath(path)}, session=sid)
        deadline = time.monotonic() + timeout
        while True:
            res = self.send("Runtime.evaluate", {"expression": "JSON.stringify(window.denetReport || null)",
                                                 "returnByValue": True}, session=sid)
            value = res.get("result", {}).get("value")
            rep.state = json.loads(value) if value else None
            if rep.state and rep.state.get("done"):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(0.3)  # let late console messages arrive
        counts = self.send("Runtime.evaluate", {"returnByValue": True, "expression": """JSON.stringify({
            containers: document.querySelectorAll('.chart').length,
            embeds: document.querySelectorAll('.vega-embed').length,
            drawn: document.querySelectorAll('.vega-embed > .chart-wrapper > svg.marks, '
                                             + '.vega-embed > .chart-wrapper > canvas.marks').length,
            empty: Array.from(document.querySelectorAll('.vega-embed > .chart-wrapper > .marks')).filter(
                e => !(e.getBoundingClientRect().width > 50 && e.getBoundingClientRect().height > 50
                       && (e.tagName.toLowerCase() === 'canvas' || e.querySelectorAll('path, line, rect').length > 3))
            ).length,
            chartErrors: document.querySelectorAll('.chart-error').length,
            runOptions: document.querySelectorAll('#run-select option').length,
            tables: document.querySelectorAll('table.sortable').length,
            title: document.title})"""}, session=sid)
        rep.counts = json.loads(counts["result"]["value"])
        if probe is not None:
            rep.probe = self.send("Runtime.evaluate", {"expression": probe, "returnByValue": True,
                                                       "awaitPromise": True}, session=sid).get("result", {}).get("value")
        if screenshot:
            m = self.send("Page.getLayoutMetrics", session=sid)
            size = m.get("cssContentSize") or m.get("contentSize")
            h = min(int(size["height"]), 12000)
            shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                       "clip": {"x": 0, "y": 0, "width": self.width, "height": h,
                                                                "scale": 1}}, session=sid)
            rep.screenshot = base64.b64decode(shot["data"])
        self._collect(rep)
        self.send("Target.closeTarget", {"targetId": target})
        return rep

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=10)
                except RuntimeError:
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, 9)
                    self.proc.wait(timeout=10)
        finally:
            for fd in (self._w, self._r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
