"""llama-server as a local process: free loopback port, health wait, load time, peak memory, log, death watch."""

from __future__ import annotations

import functools
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from beyond_vibes.catalog import Engine, EngineConfig, EngineSpec
from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.procs import spawn, stop_group
from beyond_vibes.runtime import Server
from beyond_vibes.runtime.probe import MemorySampler, build_info, free_port, get_json, listens_on, wait_healthy
from beyond_vibes.settings import Settings, scrubbed_environ
from beyond_vibes.store import ResolvedModel

_BIND_ERRORS = ("couldn't bind", "address already in use", "failed to bind")
BIND_ATTEMPTS = 4


def server_args(model_path: str, template_path: str | None, alias: str, engine: EngineConfig, host: str,
                port: int, adapter: tuple[str, float] | None = None) -> list[str]:
    """llama-server's arguments, the same for every runtime (only paths and the address differ). `adapter`: a
    LoRA adapter's (path, scale), applied to every request (`--lora`, or `--lora-scaled` for a scale other than 1)."""
    args = ["--model", model_path, "--host", host, "--port", str(port), "--alias", alias,
            "--jinja",  # chat template with tool calling, which agents need
            "--metrics", "--no-webui"]
    if template_path is not None:
        args += ["--chat-template-file", template_path]
    if adapter is not None:
        path, scale = adapter
        args += ["--lora", path] if scale == 1.0 else ["--lora-scaled", f"{path}:{scale:g}"]
    if engine.engine == Engine.cpu:
        args += ["--device", "none"]  # a CPU run stays on the CPU even with a GPU build
    return args + engine.server_args()


def llama_server_command(binary: Path, model: ResolvedModel, engine: EngineConfig, port: int) -> list[str]:
    template = str(model.chat_template) if model.chat_template is not None else None
    adapter = (str(model.adapter.path), model.adapter.scale) if model.adapter is not None else None
    return [str(binary), *server_args(str(model.path), template, model.model.name, engine, "127.0.0.1", port, adapter)]


# How each GPU backend names its devices in `llama-server --list-devices` ("CUDA0: NVIDIA H100 ...").
DEVICE_PREFIX = {Engine.cuda: ("CUDA",), Engine.rocm: ("ROCm", "HIP"), Engine.vulkan: ("Vulkan",)}


@lru_cache(maxsize=16)
def list_devices(binary: str) -> tuple[str, ...]:
    try:
        out = subprocess.run([binary, "--list-devices"], capture_output=True, text=True, timeout=60,
                             env=scrubbed_environ())
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in (out.stdout + out.stderr).splitlines()
                 if re.match(r"^\s+\w+\d+:", line))


def binary_build(binary: Path) -> str:
    """The llama.cpp build a binary is, known before it serves: its `--version` line and its sha256 (two builds
    of one version, or a rebuilt binary, differ in the hash)."""
    st = Path(binary).stat()
    return _binary_build(str(binary), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _binary_build(path: str, mtime_ns: int, size: int) -> str:
    import hashlib

    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60, env=scrubbed_environ())
        text = out.stdout + out.stderr
    except (OSError, subprocess.SubprocessError):
        text = ""
    version = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("version:")), "unknown")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"{version} sha256:{digest.hexdigest()[:16]}"


def exit_description(name: str, returncode: int) -> str:
    if returncode < 0:
        try:
            signame = signal.Signals(-returncode).name
        except ValueError:
            signame = "unknown signal"
        return f"{name} exited with signal {-returncode} ({signame})"
    return f"{name} exited with code {returncode}"


class ProcessRuntime:
    name = "process"

    def __init__(self, settings: Settings, health_timeout_s: float = 300.0):
        self.settings = settings
        self.health_timeout_s = health_timeout_s

    def binary(self, engine: EngineConfig | None = None, spec: EngineSpec | None = None) -> Path:
        kind = engine.engine if engine is not None else Engine.cpu
        if spec is not None and spec.binary:
            binary = Path(spec.binary).expanduser()
            if not binary.exists():
                raise ConfigError(f"engines.{kind.value}.binary: {binary} does not exist")
            return binary
        if kind != Engine.cpu:
            raise ConfigError(f"engine {kind.value}: no llama-server binary for it; set engines.{kind.value}.binary in "
                              f"models.yaml to a {kind.value.upper()} build, or use --runtime container")
        binary = self.settings.find_llama_server()
        if binary is None:
            raise ConfigError("llama-server not found: run ./setup.sh, or set LLAMA_SERVER_BIN to its path")
        return binary

    def preflight(self, model: ResolvedModel, engine: EngineConfig | None = None, spec: EngineSpec | None = None) -> None:
        binary = self.binary(engine, spec)
        if model.path is None:
            raise ConfigError(f"model {model.model.name} has no local file to serve")
        if engine is not None and engine.engine != Engine.cpu:
            # What serves the run is what the binary can do, not what the config says: a CPU build is not "cuda".
            devices = list_devices(str(binary))
            if not any(d.startswith(DEVICE_PREFIX[engine.engine]) for d in devices):
                seen = ", ".join(devices) or "none"
                raise ConfigError(f"engine {engine.engine.value}: {binary} sees no {engine.engine.value.upper()} device "
                                  f"(devices: {seen}); use a {engine.engine.value.upper()} build on a machine with that GPU")

    def _start(self, cmd_for_port, log_path: Path) -> tuple[subprocess.Popen, int, list[str], float]:
        """Start llama-server, retrying on another port when the chosen one was taken in the meantime."""
        for attempt in range(BIND_ATTEMPTS):
            port = free_port()
            cmd = cmd_for_port(port)
            with log_path.open("ab") as log:
                started = time.monotonic()
                proc = spawn(cmd, env=scrubbed_environ(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            base = f"http://127.0.0.1:{port}"
            if wait_healthy(f"{base}/health", self.health_timeout_s, alive=lambda: proc.poll() is None):
                if listens_on(proc.pid, port):
                    return proc, port, cmd, time.monotonic() - started
                # Someone else answered on "our" port (another run picked the same one): ours will not bind.
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                if proc.poll() is not None and attempt + 1 < BIND_ATTEMPTS:
                    stop_group(proc)
                    continue
            code = proc.poll()  # None: still starting when the health wait gave up
            stop_group(proc)
            tail = log_path.read_text(errors="replace")[-1500:]
            if code is not None and any(e in tail.lower() for e in _BIND_ERRORS) and attempt + 1 < BIND_ATTEMPTS:
                continue
            why = exit_description("llama-server", code) if code is not None else \
                f"llama-server not healthy after {self.health_timeout_s:.0f}s"
            raise SimulationError(f"{why}; log tail:\n{tail}")
        raise SimulationError("llama-server could not bind a loopback port")  # not reached

    @contextmanager
    def serve(self, model: ResolvedModel, engine: EngineConfig, spec: EngineSpec | None = None) -> Iterator[Server]:
        self.preflight(model, engine, spec)
        binary = self.binary(engine, spec)
        log_path = Path(tempfile.mkdtemp(prefix="bv-llama-")) / "llama-server.log"
        proc = None
        stopping = threading.Event()
        try:
            proc, port, cmd, load_s = self._start(lambda p: llama_server_command(binary, model, engine, p), log_path)
            base = f"http://127.0.0.1:{port}"
            _, props = get_json(f"{base}/props")
            server = Server(
                base_url=f"{base}/v1", model_id=model.model.name, runtime=self.name,
                engine=engine.engine.value, build=build_info(props), load_s=load_s, binary=binary_build(binary),
                engine_args=cmd[1:], log_path=log_path, pid=proc.pid, parallel=engine.parallel,
            )

            def failure() -> str | None:
                code = proc.poll()
                return None if code is None or stopping.is_set() else exit_description("llama-server", code)

            server.failure = failure
            # The harness notices a dead server itself, at once, and tells whoever is using it.
            watcher = threading.Thread(target=_watch, args=(proc, stopping, server.dead), name="llama-server-watch", daemon=True)
            watcher.start()
            with MemorySampler(proc.pid) as memory:
                server.memory = memory
                yield server
        finally:
            stopping.set()
            if proc is not None:
                stop_group(proc)
            shutil.rmtree(log_path.parent, ignore_errors=True)  # callers read the log inside the `with`


def _watch(proc: subprocess.Popen, stopping: threading.Event, dead: threading.Event) -> None:
    proc.wait()
    if not stopping.is_set():
        dead.set()
