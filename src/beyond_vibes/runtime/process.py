"""llama-server as a local process: free loopback port, health wait, load time, peak memory, log."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from beyond_vibes.catalog import EngineConfig
from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.procs import stop_group
from beyond_vibes.runtime import Server
from beyond_vibes.runtime.probe import MemorySampler, build_info, free_port, get_json, wait_healthy
from beyond_vibes.settings import Settings
from beyond_vibes.store import ResolvedModel


def llama_server_command(binary: Path, model: ResolvedModel, engine: EngineConfig, port: int) -> list[str]:
    return [
        str(binary), "--model", str(model.path), "--host", "127.0.0.1", "--port", str(port),
        "--alias", model.model.name,
        "--jinja",  # chat template with tool calling, which agents need
        "--metrics", "--no-webui",
        *engine.server_args(),
    ]


class ProcessRuntime:
    name = "process"

    def __init__(self, settings: Settings, health_timeout_s: float = 300.0):
        self.settings = settings
        self.health_timeout_s = health_timeout_s

    def binary(self) -> Path:
        binary = self.settings.find_llama_server()
        if binary is None:
            raise ConfigError("llama-server not found: run ./setup.sh, or set LLAMA_SERVER_BIN to its path")
        return binary

    def preflight(self, model: ResolvedModel) -> None:
        self.binary()
        if model.path is None:
            raise ConfigError(f"model {model.model.name} has no local file to serve")

    @contextmanager
    def serve(self, model: ResolvedModel, engine: EngineConfig) -> Iterator[Server]:
        self.preflight(model)
        binary = self.binary()
        port = free_port()
        cmd = llama_server_command(binary, model, engine, port)
        log_path = Path(tempfile.mkdtemp(prefix="bv-llama-")) / "llama-server.log"
        with log_path.open("wb") as log:
            started = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            if not wait_healthy(f"{base}/health", self.health_timeout_s, alive=lambda: proc.poll() is None):
                tail = log_path.read_text(errors="replace")[-1500:]
                why = f"exited with code {proc.poll()}" if proc.poll() is not None else f"not healthy after {self.health_timeout_s:.0f}s"
                raise SimulationError(f"llama-server {why}; log tail:\n{tail}")
            load_s = time.monotonic() - started
            _, props = get_json(f"{base}/props")
            with MemorySampler(proc.pid) as memory:
                yield Server(
                    base_url=f"{base}/v1", model_id=model.model.name, runtime=self.name,
                    engine=engine.engine.value, build=build_info(props), load_s=load_s,
                    engine_args=cmd[1:], log_path=log_path, pid=proc.pid,
                    peak_rss_mb=lambda: memory.peak_rss_mb, peak_vram_mb=lambda: memory.peak_vram_mb,
                )
        finally:
            stop_group(proc)
            shutil.rmtree(log_path.parent, ignore_errors=True)  # callers read the log inside the `with`
