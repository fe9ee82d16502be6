"""Probing a model server: health, build info, and peak memory (RSS of the process tree, GPU VRAM)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds the listening socket on loopback `port` (not some other server)."""
    try:
        conns = psutil.Process(pid).net_connections(kind="inet")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns)


def get_json(url: str, timeout: float = 2.0) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read()
            return resp.status, json.loads(body) if body else None
    except urllib.error.HTTPError as e:
        return e.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None


def wait_healthy(url: str, timeout_s: float, alive=lambda: True, interval: float = 0.05) -> bool:
    """Poll `url` until 200 (llama-server answers 503 while loading). False on timeout or process death."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            return False
        status, _ = get_json(url, timeout=1.0)
        if status == 200:
            return True
        time.sleep(interval)
    return False


def build_info(props: dict | None) -> str:
    if not props:
        return "unknown"
    return str(props.get("build_info") or props.get("build") or "unknown")


def gpu_tool() -> str | None:
    """The GPU memory tool on this host, or None: then VRAM is "not available", never 0."""
    for tool in ("nvidia-smi", "rocm-smi"):
        if shutil.which(tool):
            return tool
    return None


def gpu_used_mb(pids: set[int], tool: str | None = None) -> float | None:
    """VRAM used by these processes (all GPUs), from nvidia-smi or rocm-smi; None without a GPU tool or
    when the tool fails. Other processes on the GPUs (another server, a desktop) are not counted."""
    tool = tool or gpu_tool()
    try:
        if tool == "nvidia-smi":
            out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5)
            return None if out.returncode else parse_nvidia_apps_mb(out.stdout, pids)
        if tool == "rocm-smi":
            out = subprocess.run(["rocm-smi", "--showpids", "--json"], capture_output=True, text=True, timeout=5)
            return None if out.returncode else parse_rocm_pids_mb(json.loads(out.stdout or "{}"), pids)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return None


def parse_nvidia_apps_mb(csv_text: str, pids: set[int]) -> float | None:
    """`nvidia-smi --query-compute-apps=pid,used_memory` lines: "1234, 512" (MiB). None when none of `pids` is
    listed (a container's pid namespace, MIG) or their memory reads `[N/A]`: not measured, never 0."""
    total, seen = 0.0, False
    for line in csv_text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0].isdigit() and int(parts[0]) in pids:
            try:
                total += float(parts[1])
                seen = True
            except ValueError:
                pass
    return total if seen else None


def parse_rocm_pids_mb(data: dict, pids: set[int]) -> float | None:
    """`rocm-smi --showpids --json`: {"system": {"PID1234": "name, gpus, vram_bytes, sdma, cu"}}; None when none of
    `pids` is listed with a readable amount."""
    total, seen = 0.0, False
    for section in data.values():
        if not isinstance(section, dict):
            continue
        for key, value in section.items():
            if not key.startswith("PID") or not key[3:].isdigit() or int(key[3:]) not in pids:
                continue
            fields = [f.strip() for f in str(value).split(",")]
            if len(fields) >= 3:
                try:
                    total += float(fields[2]) / (1024 * 1024)
                    seen = True
                except ValueError:
                    pass
    return total if seen else None


class MemoryWindow:
    """Peak memory while a window is open (one run on a shared server); None where nothing was measured."""

    def __init__(self):
        self.peak_rss_mb: float | None = None
        self.peak_vram_mb: float | None = None

    def update(self, rss_mb: float | None, vram_mb: float | None) -> None:
        if rss_mb is not None:
            self.peak_rss_mb = max(self.peak_rss_mb or 0.0, rss_mb)
        if vram_mb is not None:
            self.peak_vram_mb = max(self.peak_vram_mb or 0.0, vram_mb)


class WindowedSampler:
    """Peak memory sampled in a background thread. The whole life of the server is one window (`total`); each run
    opens its own with `window()`. Subclasses say how to measure (`measure`)."""

    def __init__(self, interval: float, name: str):
        self.interval = interval
        self.total = MemoryWindow()
        self._windows: list[MemoryWindow] = [self.total]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def measure(self, gpu: bool) -> tuple[float | None, float | None]:
        """(RSS MB, VRAM MB), None for what cannot be measured."""
        raise NotImplementedError

    def gpu_due(self) -> bool:
        return False

    def __enter__(self):
        self.sample(gpu=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @contextmanager
    def window(self) -> Iterator[MemoryWindow]:
        w = MemoryWindow()
        with self._lock:
            self._windows.append(w)
        self.sample(gpu=True)
        try:
            yield w
        finally:
            self.sample(gpu=False)
            with self._lock:
                self._windows.remove(w)

    def sample(self, gpu: bool = False) -> None:
        rss_mb, vram_mb = self.measure(gpu)
        with self._lock:
            for w in self._windows:
                w.update(rss_mb, vram_mb)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample(gpu=self.gpu_due())


class MemorySampler(WindowedSampler):
    """RSS of a process tree and its GPU memory."""

    def __init__(self, pid: int, interval: float = 0.2, gpu_interval: float = 1.0, tool: str | None = None):
        super().__init__(interval, f"mem-sampler-{pid}")
        self.pid = pid
        self.gpu_interval = gpu_interval
        self._gpu = tool or gpu_tool()
        self._last_vram: float | None = None
        self._last_gpu = time.monotonic()

    def pids(self) -> set[int]:
        try:
            proc = psutil.Process(self.pid)
            return {proc.pid, *(c.pid for c in proc.children(recursive=True))}
        except psutil.Error:
            return set()

    def measure(self, gpu: bool) -> tuple[float | None, float | None]:
        rss = 0
        pids = self.pids()
        for pid in pids:
            try:
                rss += psutil.Process(pid).memory_info().rss
            except psutil.Error:
                pass
        if gpu and self._gpu and pids:
            self._last_vram = gpu_used_mb(pids, self._gpu)
        return (rss / (1024 * 1024) if pids else None), self._last_vram

    def gpu_due(self) -> bool:
        if self._gpu is None or time.monotonic() - self._last_gpu < self.gpu_interval:
            return False
        self._last_gpu = time.monotonic()
        return True
