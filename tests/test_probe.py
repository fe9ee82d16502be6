"""Memory probes: RSS of a real process tree; VRAM of *this server's* processes, with stand-in GPU tools (no GPU
on CI); "not available" (None), never 0, where no GPU tool exists."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import psutil

from beyond_vibes.runtime.probe import MemorySampler, gpu_used_mb, parse_nvidia_apps_mb, parse_rocm_pids_mb


def fake_tool(folder, name: str, output: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}\nOUT\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def hold_memory(mb: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"b = bytearray({mb} * 1024 * 1024); import time; time.sleep(30)"])


def test_rss_is_the_process_trees_and_vram_only_its_own_pids(tmp_path, monkeypatch):
    # A parent holding ~20 MB with a child holding ~120 MB: the tree's peak must include the child.
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time; b = bytearray(20 * 1024 * 1024); "
                               "c = subprocess.Popen([sys.executable, '-c', 'b = bytearray(120 * 1024 * 1024); "
                               "import time; time.sleep(30)']); time.sleep(30)"])
    other = hold_memory(10)
    try:
        deadline = time.monotonic() + 20
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = psutil.Process(parent.pid).children()[0].pid
        # GPU apps: our parent, our child, and a process that is not ours (another server on the same GPU).
        fake_tool(tmp_path, "nvidia-smi", f"{parent.pid}, 300\n{child}, 1200\n{other.pid}, 5000")
        monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
        time.sleep(1.0)  # let the child touch its memory
        with MemorySampler(parent.pid, interval=0.05, gpu_interval=0.05) as sampler:
            with sampler.window() as window:
                time.sleep(0.5)
    finally:
        for p in (parent, other):
            for c in psutil.Process(p.pid).children(recursive=True):
                c.kill()
            p.kill()
            p.wait()
    assert window.peak_vram_mb == 1500  # 300 + 1200: not the other process's 5000
    assert sampler.total.peak_vram_mb == 1500
    # The child's 120 MB counts: a sampler of the parent alone would see ~30 MB.
    assert window.peak_rss_mb > 130


def test_no_gpu_tool_means_not_available(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither nvidia-smi nor rocm-smi
    assert gpu_used_mb({os.getpid()}) is None
    with MemorySampler(os.getpid(), interval=0.05) as sampler:
        with sampler.window() as window:
            time.sleep(0.2)
    assert window.peak_vram_mb is None and window.peak_rss_mb > 0


def test_a_failing_gpu_tool_is_not_a_zero(tmp_path, monkeypatch):
    path = tmp_path / "nvidia-smi"
    path.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert gpu_used_mb({os.getpid()}) is None


def test_nvidia_and_rocm_per_process_parsing():
    assert parse_nvidia_apps_mb("11, 100\n12, 50\n13, [N/A]\n99, 7000\n", {11, 12, 13}) == 150
    rocm = {"system": {"PID11": "llama-server, 1, 1073741824, 0, 0", "PID99": "other, 1, 536870912, 0, 0",
                       "PID12": "llama-server, 2, 536870912, 0, 0"}}
    assert parse_rocm_pids_mb(json.loads(json.dumps(rocm)), {11, 12}) == 1536
    # The server's processes not listed (a container's pid namespace, MIG) or their memory unreadable: not measured.
    assert parse_nvidia_apps_mb("99, 7000\n", {11}) is None and parse_nvidia_apps_mb("11, [N/A]\n", {11}) is None
    assert parse_nvidia_apps_mb("", {11}) is None and parse_rocm_pids_mb(rocm, {42}) is None


def test_container_memory_peaks_from_engine_stats_and_a_failed_sample_is_no_zero():
    from beyond_vibes.runtime.container import ContainerMemory

    class FakeContainer:  # the engine's stats API: usage minus inactive file cache (cgroup v2)
        def __init__(self):
            self.usages = [300, 500, None, 400]

        def stats(self, stream=False):
            usage = self.usages.pop(0) if self.usages else 400
            if usage is None:
                raise RuntimeError("engine busy")
            return {"memory_stats": {"usage": usage * 1024 * 1024, "stats": {"inactive_file": 100 * 1024 * 1024}}}

    with ContainerMemory(FakeContainer(), interval=0.01) as memory:
        with memory.window() as window:
            time.sleep(0.1)
    assert memory.total.peak_rss_mb == 400 and window.peak_rss_mb == 400  # 500 - 100
    assert window.peak_vram_mb is None  # not measured inside a container: absent, never 0
    empty = ContainerMemory(type("Gone", (), {"stats": lambda self, stream=False: (_ for _ in ()).throw(OSError())})())
    empty.sample()
    assert empty.total.peak_rss_mb is None
