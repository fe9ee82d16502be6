"""llama-server in a container (Docker, or podman's Docker-compatible API), one image per engine.

The model file (and a chat template) is mounted read-only, the port is published on loopback only, health is
awaited, logs are streamed to a file kept as an artifact, and the container is removed on every exit path. A
container outlives a killed harness (the engine owns it), so each carries labels naming its owner process; the
next start on the host removes those whose owner is gone. CUDA gets a GPU device request (all or chosen ids),
ROCm /dev/kfd + /dev/dri with the video/render groups, Vulkan /dev/dri.
"""

from __future__ import annotations

import grp
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from beyond_vibes.catalog import Engine, EngineConfig, EngineSpec
from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.runtime import Server
from beyond_vibes.runtime.probe import WindowedSampler, build_info, get_json, wait_healthy
from beyond_vibes.runtime.process import server_args
from beyond_vibes.settings import Settings
from beyond_vibes.store import ResolvedModel

PORT = 8080  # llama-server's port inside the container
OWNER, HOST = "bv.owner_pid", "bv.owner_host"


def gpu_access(engine: Engine, gpus: str = "all") -> dict:
    """docker `containers.run` keywords that give the container the engine's devices."""
    if engine == Engine.cuda:
        from docker.types import DeviceRequest

        ids = None if gpus == "all" else [g.strip() for g in gpus.split(",") if g.strip()]
        return {"device_requests": [DeviceRequest(count=-1 if ids is None else None, device_ids=ids, capabilities=[["gpu"]])]}
    if engine == Engine.rocm:
        return {"devices": ["/dev/kfd:/dev/kfd:rwm", "/dev/dri:/dev/dri:rwm"], "group_add": _groups("video", "render"),
                "security_opt": ["seccomp=unconfined"]}
    if engine == Engine.vulkan:
        return {"devices": ["/dev/dri:/dev/dri:rwm"], "group_add": _groups("video", "render")}
    return {}


def _groups(*names: str) -> list[str]:
    """Numeric ids of the host's device groups (names differ inside the image); names that do not exist are skipped."""
    out = []
    for name in names:
        try:
            out.append(str(grp.getgrnam(name).gr_gid))
        except KeyError:
            continue
    return out


def host_has(engine: Engine) -> str | None:
    """Why this host cannot run the engine's containers, or None."""
    if engine == Engine.cuda and not (Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi")):
        return "no NVIDIA GPU on this host (no /dev/nvidiactl, no nvidia-smi)"
    if engine == Engine.rocm and not Path("/dev/kfd").exists():
        return "no AMD GPU on this host (no /dev/kfd)"
    if engine == Engine.vulkan and not Path("/dev/dri").exists():
        return "no GPU render device on this host (no /dev/dri)"
    return None


def docker_client(settings: Settings):
    """The container engine: DOCKER_HOST (or settings), else Docker's default socket."""
    import docker

    base_url = settings.docker_host or os.environ.get("DOCKER_HOST")
    try:
        client = docker.DockerClient(base_url=base_url, timeout=120) if base_url else docker.from_env(timeout=120)
        client.ping()
        return client
    except Exception as e:  # noqa: BLE001 - unreachable, refused, no socket: one line with the fix
        where = base_url or "the default Docker socket"
        raise ConfigError(f"container engine not reachable at {where} ({type(e).__name__}); start Docker, or "
                          "`podman system service` and set DOCKER_HOST=unix:///path/podman.sock") from None


def reap_containers(client) -> list[str]:
    """Remove containers a killed harness on this host left behind (their owner process is gone)."""
    from beyond_vibes.tracking import pid_alive

    removed = []
    for c in client.containers.list(all=True, filters={"label": [f"{HOST}={socket.gethostname()}"]}):
        pid = c.labels.get(OWNER, "")
        created = c.attrs.get("Created", "")
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid), _created_ms(created)):
            try:
                c.remove(force=True)
                removed.append(c.name)
            except Exception:  # noqa: BLE001 - best effort; the next start tries again
                continue
    return removed


def _created_ms(created: str) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(created[:26].rstrip("Z")).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


class ContainerRuntime:
    name = "container"

    def __init__(self, settings: Settings, health_timeout_s: float = 300.0):
        self.settings = settings
        self.health_timeout_s = health_timeout_s
        self._client = None

    def client(self):
        if self._client is None:
            self._client = docker_client(self.settings)
        return self._client

    def image(self, spec: EngineSpec):
        """The engine's image, pulled if it is not here yet; its id/digest is what the run records."""
        client = self.client()
        try:
            return client.images.get(spec.image)
        except Exception:  # noqa: BLE001 - not here: try the registry once
            pass
        try:
            return client.images.pull(spec.image)
        except Exception as e:  # noqa: BLE001
            raise ConfigError(f"image {spec.image} is not on this host and could not be pulled "
                              f"({str(e).splitlines()[0][:160]}); pull or build it, or set engines.<engine>.image") from None

    def preflight(self, model: ResolvedModel, engine: EngineConfig, spec: EngineSpec) -> None:
        if model.path is None:
            raise ConfigError(f"model {model.model.name} has no local file to serve")
        if why := host_has(engine.engine):
            raise ConfigError(f"engine {engine.engine.value}: {why}; use --engine cpu or a host with that GPU")
        self.image(spec)

    @contextmanager
    def serve(self, model: ResolvedModel, engine: EngineConfig, spec: EngineSpec) -> Iterator[Server]:
        self.preflight(model, engine, spec)
        client = self.client()
        reap_containers(client)
        image = self.image(spec)
        digest = (image.attrs.get("RepoDigests") or [None])[0] or image.id
        volumes = {str(model.path.resolve()): {"bind": f"/models/{model.path.name}", "mode": "ro"}}
        template = None
        if model.chat_template is not None:
            template = f"/templates/{model.chat_template.name}"
            volumes[str(model.chat_template.resolve())] = {"bind": template, "mode": "ro"}
        adapter = None
        if model.adapter is not None:
            adapter = (f"/adapters/{model.adapter.path.name}", model.adapter.scale)
            volumes[str(model.adapter.path.resolve())] = {"bind": adapter[0], "mode": "ro"}
        args = server_args(f"/models/{model.path.name}", template, model.model.name, engine, "0.0.0.0", PORT, adapter)
        labels = {OWNER: str(os.getpid()), HOST: socket.gethostname(), "bv.model": model.model.name,
                  "bv.engine": engine.engine.value}
        log_dir = Path(tempfile.mkdtemp(prefix="bv-container-"))
        log_path = log_dir / "llama-server.log"
        container = None
        stopping = threading.Event()
        try:
            started = time.monotonic()
            container = client.containers.run(
                image.id, command=args, detach=True, name=f"bv-llama-{uuid.uuid4().hex[:10]}", labels=labels,
                volumes=volumes, ports={f"{PORT}/tcp": ("127.0.0.1", None)}, **gpu_access(engine.engine, spec.gpus))
            logger = threading.Thread(target=_stream_logs, args=(container, log_path), daemon=True, name="container-logs")
            logger.start()
            port = _host_port(container)
            base = f"http://127.0.0.1:{port}"
            if not wait_healthy(f"{base}/health", self.health_timeout_s, alive=lambda: _running(container)):
                code = _exit_code(container)
                tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
                why = f"exited with code {code}" if code is not None else f"not healthy after {self.health_timeout_s:.0f}s"
                raise SimulationError(f"llama-server container {why}; log tail:\n{tail}")
            load_s = time.monotonic() - started
            _, props = get_json(f"{base}/props")
            server = Server(base_url=f"{base}/v1", model_id=model.model.name, runtime=self.name, engine=engine.engine.value,
                            build=build_info(props), load_s=load_s, engine_args=args, log_path=log_path,
                            parallel=engine.parallel, image=digest)

            def failure() -> str | None:
                if stopping.is_set() or _running(container):
                    return None
                code = _exit_code(container)
                return f"llama-server container exited with code {code}" if code is not None else None

            server.failure = failure
            threading.Thread(target=_watch, args=(container, stopping, server.dead), daemon=True,
                             name="container-watch").start()
            with ContainerMemory(container) as memory:
                server.memory = memory
                yield server
        finally:
            stopping.set()
            if container is not None:
                try:
                    container.remove(force=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
            shutil.rmtree(log_dir, ignore_errors=True)


def _stream_logs(container, path: Path) -> None:
    try:
        with path.open("ab") as out:
            for chunk in container.logs(stream=True, follow=True):
                out.write(chunk)
                out.flush()
    except Exception:  # noqa: BLE001 - the container went away
        pass


def _host_port(container) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        container.reload()
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{PORT}/tcp")
        if bindings:
            return int(bindings[0]["HostPort"])
        time.sleep(0.2)
    raise SimulationError("the llama-server container published no port")


def _running(container) -> bool:
    try:
        container.reload()
        return container.status in ("created", "running")
    except Exception:  # noqa: BLE001
        return False


def _exit_code(container) -> int | None:
    try:
        container.reload()
        return (container.attrs.get("State") or {}).get("ExitCode")
    except Exception:  # noqa: BLE001
        return None


def wait_for_exit(container, timeout_s: float, interval_s: float = 0.5) -> int | None:
    """The container's exit code once it stopped (None: still running after `timeout_s`); polled, see `_watch`."""
    deadline = time.monotonic() + timeout_s
    while _running(container):
        if time.monotonic() > deadline:
            return None
        time.sleep(interval_s)
    return _exit_code(container)


def _watch(container, stopping: threading.Event, dead: threading.Event, interval_s: float = 0.5) -> None:
    """Polls the container's state. Not `container.wait()`: podman 4.3's Docker-compatible wait busy-polls inside
    the service, which burned 1.25 CPU cores for as long as a server ran (10 s of CPU per 8 s, measured; 0.08 s
    with polling), starving llama-server on a small machine."""
    while not stopping.wait(interval_s):
        if not _running(container):
            break
    if not stopping.is_set():
        dead.set()


class ContainerMemory(WindowedSampler):
    """Peak memory of the container (its cgroup, from the engine's stats). VRAM inside a container: not measured."""

    def __init__(self, container, interval: float = 1.0):
        super().__init__(interval, "container-memory")
        self.container = container

    def measure(self, gpu: bool) -> tuple[float | None, float | None]:
        try:
            stats = self.container.stats(stream=False)
        except Exception:  # noqa: BLE001 - a missed sample is no measurement, not a zero
            return None, None
        return container_rss_mb(stats), None


def container_rss_mb(stats: dict) -> float | None:
    """Resident memory of a container from engine stats: usage minus file cache (cgroup v1 or v2 fields)."""
    mem = stats.get("memory_stats") or {}
    usage = mem.get("usage")
    if usage is None:
        return None
    detail = mem.get("stats") or {}
    cache = detail.get("inactive_file", detail.get("total_inactive_file", detail.get("cache", 0))) or 0
    return max(0.0, (usage - cache) / (1024 * 1024))
