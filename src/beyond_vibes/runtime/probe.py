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

import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def _gpu_used_mb() -> float | None:
    """Total VRAM in use across GPUs, from nvidia-smi or rocm-smi when present; None without a GPU tool."""
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=5,
            ).stdout
            return sum(float(x) for x in out.split() if x.strip())
        except (OSError, ValueError, subprocess.SubprocessError):
            return None
    if shutil.which("rocm-smi"):
        try:
            out = subprocess.run(
                ["rocm-smi", "--showmeminfo", "vram", "--json"], capture_output=True, text=True, timeout=5
            ).stdout
            return parse_rocm_vram_mb(json.loads(out))
        except (OSError, ValueError, subprocess.SubprocessError):
            return None
    return None


def parse_rocm_vram_mb(data: dict) -> float:
    total = 0.0
    for card in data.values():
        for key, value in card.items():
            if "used" in key.lower() and "vram" in key.lower():
                total += float(value) / (1024 * 1024)
    return total


class MemorySampler:
    """Samples peak RSS of a process tree and peak GPU memory in a background thread."""

    def __init__(self, pid: int, interval: float = 0.2, gpu_interval: float = 1.0):
        self.pid = pid
        self.interval = interval
        self.gpu_interval = gpu_interval
        self.peak_rss_mb = 0.0
        self.peak_vram_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"mem-sampler-{pid}", daemon=True)
        self._gpu = shutil.which("nvidia-smi") or shutil.which("rocm-smi")

    def __enter__(self) -> "MemorySampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        try:
            proc = psutil.Process(self.pid)
            rss = proc.memory_info().rss
            for child in proc.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_rss_mb = max(self.peak_rss_mb, rss / (1024 * 1024))
        except psutil.Error:
            pass

    def _run(self) -> None:
        last_gpu = 0.0
        while not self._stop.wait(self.interval):
            self.sample()
            if self._gpu and time.monotonic() - last_gpu >= self.gpu_interval:
                last_gpu = time.monotonic()
                used = _gpu_used_mb()
                if used is not None:
                    self.peak_vram_mb = max(self.peak_vram_mb, used)
