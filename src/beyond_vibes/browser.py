"""Headless Chromium driven over the DevTools protocol: open a page, wait for what a user would wait for, click,
take a screenshot. Used to look at the MLflow UI and the HTML report the way a person does."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from beyond_vibes.errors import ConfigError
from beyond_vibes.procs import spawn, stop_group

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-port=0"]


def find_chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        raise ConfigError("chromium not found: apt-get install -y chromium (Debian), or put a Chrome on PATH")
    return found


class Browser:
    """One headless Chromium and one page, for a `with` block."""

    def __init__(self, width: int = 1600, height: int = 1100):
        self.width, self.height = width, height
        self._proc = None
        self._ws = None
        self._id = 0

    def __enter__(self) -> "Browser":
        import websocket

        self._profile = Path(tempfile.mkdtemp(prefix="bv-chromium-"))
        self._proc = spawn([find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}",
                            f"--window-size={self.width},{self.height}", "about:blank"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self._proc.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.loads(r.read()) if t["type"] == "page")
        self._ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                  mobile=False)
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._ws is not None:
                self._ws.close()
        finally:
            if self._proc is not None:
                stop_group(self._proc, grace_s=3)
            shutil.rmtree(self._profile, ignore_errors=True)

    def send(self, method: str, **params):
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return (result.get("result") or {}).get("value")

    def goto(self, url: str, timeout: float = 60) -> None:
        """Navigate and wait until the document is parsed whole (a large page is still streaming in when the
        first of its text shows)."""
        self.send("Page.navigate", url=url)
        self.wait_until("location.href !== 'about:blank' && document.readyState === 'complete'", timeout)

    def wait_until(self, expression: str, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return True
            time.sleep(0.3)
        return False

    def wait_for_text(self, text: str, timeout: float = 60) -> bool:
        """Until the page shows `text` (the app has loaded its data), or the timeout."""
        return self.wait_until(f"document.body && document.body.innerText.includes({json.dumps(text)})", timeout)

    def click_text(self, text: str, selector: str = "button, a, [role=button], [role=treeitem], span, div") -> bool:
        """Click the innermost visible element whose text is exactly `text`."""
        js = f"""(() => {{
          const want = {json.dumps(text)};
          const els = [...document.querySelectorAll({json.dumps(selector)})]
            .filter(e => e.innerText && e.innerText.trim() === want && e.offsetParent !== null);
          const el = els[els.length - 1];
          if (!el) return false;
          el.scrollIntoView({{block: 'center'}}); el.click(); return true; }})()"""
        return bool(self.evaluate(js))

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)
