"""Memory probes: RSS of a real process tree; VRAM parsing with stand-in GPU tools (no GPU on CI)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

from beyond_vibes.runtime.probe import MemorySampler, parse_rocm_vram_mb


def fake_tool(folder, name: str, output: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}\nOUT\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_rss_of_a_process_tree_and_nvidia_vram(tmp_path, monkeypatch):
    fake_tool(tmp_path, "nvidia-smi", "1234\n567")  # two GPUs, MiB used each
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    # A child that holds ~60 MB, so the tree's RSS is visibly above the parent's.
    proc = subprocess.Popen([sys.executable, "-c", "b = bytearray(60 * 1024 * 1024); import time; time.sleep(30)"])
    try:
        with MemorySampler(os.getpid(), interval=0.05, gpu_interval=0.05) as sampler:
            time.sleep(0.6)
    finally:
        proc.kill()
        proc.wait()
    assert sampler.peak_vram_mb == 1801
    assert sampler.peak_rss_mb > 80


def test_rocm_smi_json():
    data = {"card0": {"VRAM Total Memory (B)": "17163091968", "VRAM Total Used Memory (B)": "1073741824"},
            "card1": {"VRAM Total Memory (B)": "17163091968", "VRAM Total Used Memory (B)": "536870912"}}
    assert parse_rocm_vram_mb(data) == 1536
