"""podman's Docker-compatible API on a loopback unix socket, and a llama.cpp server image built from this project's
own llama-server and llama-bench (no registry is reachable): a rootfs with the binaries and their shared
libraries, imported with `podman import`, entry point /app/llama-server like the official images."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
IMAGE = "localhost/bv-llama-cpu:test"


class PodmanService:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="bv-podman-"))
        self.socket = self.dir / "podman.sock"
        self.conf = self.dir / "containers.conf"
        self.proc = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def __enter__(self) -> "PodmanService":
        self.conf.write_text(CONTAINERS_CONF)
        self.proc = subprocess.Popen(["podman", "system", "service", "--time=0", self.url], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while not self.socket.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("podman system service did not start")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
        shutil.rmtree(self.dir, ignore_errors=True)

    def build_llama_image(self, bin_dir: Path) -> str:
        """The image, from the llama-server/llama-bench this machine built (rebuilt only if missing)."""
        if subprocess.run(["podman", "image", "exists", IMAGE], env=self.env).returncode == 0:
            return IMAGE
        tools = [bin_dir / "llama-server", bin_dir / "llama-bench"]
        libs = set()
        for tool in tools:
            out = subprocess.run(["ldd", str(tool)], capture_output=True, text=True, check=True).stdout
            libs.update(part for line in out.splitlines() for part in line.split() if part.startswith("/"))
        tar_path = self.dir / "rootfs.tar"
        with tarfile.open(tar_path, "w") as tar:
            for tool in tools:
                tar.add(tool, arcname=f"app/{tool.name}")
            for lib in sorted(libs):
                tar.add(os.path.realpath(lib), arcname=lib.lstrip("/"))
            tmp = tarfile.TarInfo("tmp")
            tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
            tar.addfile(tmp)
        subprocess.run(["podman", "import", "--change", 'ENTRYPOINT ["/app/llama-server"]', str(tar_path), IMAGE],
                       env=self.env, check=True, capture_output=True)
        return IMAGE
