"""Runtimes serve one model over an OpenAI-compatible HTTP API for the duration of a `with` block."""

from __future__ import annotations

from contextlib import AbstractContextManager
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from beyond_vibes.catalog import EngineConfig, EngineSpec
from beyond_vibes.registry import pick
from beyond_vibes.runtime.probe import MemorySampler
from beyond_vibes.settings import Settings
from beyond_vibes.store import ResolvedModel


@dataclass
class Server:
    """A running model endpoint. `api_key` is the real key (API models); only the proxy ever sees it."""

    base_url: str  # ends with /v1
    model_id: str
    runtime: str
    engine: str
    build: str = "unknown"
    load_s: float | None = None  # None: nothing was loaded by us (an API)
    engine_args: list[str] = field(default_factory=list)
    api_key: str | None = None
    log_path: Path | None = None
    pid: int | None = None
    parallel: int = 1  # requests the server decodes at once
    image: str | None = None  # the container image (by digest) that serves, for the container runtime
    binary: str | None = None  # the process runtime's llama-server: `--version` and sha256 (runtime.process.binary_build)
    memory: MemorySampler | None = None  # peak RSS/VRAM of the server's processes (None: not measurable)
    # Set when the server dies on its own; `failure()` says how ("llama-server exited with signal 9 (SIGKILL)").
    dead: threading.Event = field(default_factory=threading.Event)
    failure: Callable[[], str | None] = lambda: None

    def log_text(self, start: int = 0) -> str:
        """The server's log from byte `start` (the runtime keeps it until the server is gone)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path and self.log_path.exists() else 0


class Runtime(Protocol):
    name: str

    def preflight(self, model: ResolvedModel, engine: EngineConfig, spec: EngineSpec) -> None:
        """Raise ConfigError for anything missing (binary, image, GPU, key) before a run is recorded."""
        ...

    def serve(self, model: ResolvedModel, engine: EngineConfig, spec: EngineSpec) -> AbstractContextManager[Server]: ...


def _process(settings: Settings) -> Runtime:
    from beyond_vibes.runtime.process import ProcessRuntime

    return ProcessRuntime(settings)


def _container(settings: Settings) -> Runtime:
    from beyond_vibes.runtime.container import ContainerRuntime

    return ContainerRuntime(settings)


def _api(settings: Settings) -> Runtime:
    from beyond_vibes.runtime.api import ApiRuntime

    return ApiRuntime(settings)


RUNTIMES: dict[str, Callable[[Settings], Runtime]] = {"process": _process, "container": _container, "api": _api}


def get_runtime(name: str, settings: Settings) -> Runtime:
    return pick(RUNTIMES, "runtime", name, settings)
