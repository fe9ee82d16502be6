"""Where the agent process runs: on the host (its own process group, the workspace's unprivileged user), or in a
container (`--sandbox container`) that sees the host's system folders read-only, its workspace read-write, no
network, and the model proxy through a unix socket bridged to 127.0.0.1 inside."""

from __future__ import annotations

import io
import os
import shutil
import socket
import socketserver
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.procs import spawn, stop_group

AGENT_IMAGE = "localhost/bv-agent-base:latest"  # an empty root: the host's /usr, /lib, /etc... come in read-only
SYSTEM_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc")


class LocalLaunch:
    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str], user, stderr):
        try:
            self.proc = spawn(cmd, cwd=cwd, env=env, user=user, stdout=subprocess.PIPE, stderr=stderr,
                              stdin=subprocess.DEVNULL)
        except OSError as e:
            raise SimulationError(f"could not start {cmd[0]}: {e}") from e

    def lines(self) -> Iterator[bytes]:
        yield from self.proc.stdout

    def wait(self) -> int:
        return self.proc.wait()

    def stop(self, grace_s: float = 5.0) -> None:
        stop_group(self.proc, grace_s)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode


def agent_image(client) -> str:
    """The empty base image for agent containers, made on first use (no registry needed)."""
    try:
        client.images.get(AGENT_IMAGE)
        return AGENT_IMAGE
    except Exception:  # noqa: BLE001
        pass
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
    client.api.import_image_from_data(buf.getvalue(), repository=AGENT_IMAGE.split(":")[0], tag="latest")
    return AGENT_IMAGE


class ContainerLaunch:
    """The agent's command in a container; stdout streams back line by line like a local process's."""

    def __init__(self, client, cmd: list[str], cwd: Path, env: dict[str, str], user, mounts: dict[str, str], stderr):
        image = agent_image(client)
        volumes = {d: {"bind": d, "mode": "ro"} for d in SYSTEM_DIRS if os.path.isdir(d)}
        volumes.update({path: {"bind": path, "mode": mode} for path, mode in mounts.items()})
        self._stderr = stderr
        self.returncode: int | None = None
        self.container = client.containers.run(
            image, cmd, detach=True, working_dir=str(cwd), environment=env, network_mode="none", volumes=volumes,
            tmpfs={"/tmp": ""}, user=f"{user[0]}:{user[1]}" if user else None, labels=owner_labels(),
            name=f"bv-agent-{os.urandom(5).hex()}")

    def lines(self) -> Iterator[bytes]:
        buffer = b""
        for chunk in self.container.logs(stream=True, follow=True, stdout=True, stderr=False):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line + b"\n"
        if buffer:
            yield buffer

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = int(self.container.wait().get("StatusCode", -1))
            try:
                self._stderr.write(self.container.logs(stdout=False, stderr=True))
                self._stderr.flush()
            except Exception:  # noqa: BLE001
                pass
        return self.returncode

    def stop(self, grace_s: float = 5.0) -> None:
        try:
            self.container.stop(timeout=int(max(1, grace_s)))
        except Exception:  # noqa: BLE001
            pass
        try:
            if self.returncode is None:
                self.returncode = int(self.container.wait(timeout=30).get("StatusCode", -1))
        except Exception:  # noqa: BLE001
            pass
        try:
            self.container.remove(force=True)
        except Exception:  # noqa: BLE001
            pass


def owner_labels() -> dict[str, str]:
    from beyond_vibes.runtime.container import HOST, OWNER

    return {OWNER: str(os.getpid()), HOST: socket.gethostname()}


class _Bridge(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    target: tuple[str, int]


class _Pipe(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        upstream = socket.create_connection(self.server.target)
        done = threading.Event()

        def pump(src, dst):
            try:
                while chunk := src.recv(65536):
                    dst.sendall(chunk)
            except OSError:
                pass
            finally:
                done.set()

        threading.Thread(target=pump, args=(upstream, self.request), daemon=True).start()
        pump(self.request, upstream)
        done.wait(timeout=600)
        upstream.close()


@contextmanager
def proxy_bridge(socket_path: Path, port: int) -> Iterator[Path]:
    """A unix socket that forwards to 127.0.0.1:port (the recording proxy), for an agent without network."""
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    server = _Bridge(str(socket_path), _Pipe)
    server.target = ("127.0.0.1", port)
    os.chmod(socket_path, 0o777)  # the agent's unprivileged user connects to it
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="proxy-bridge")
    thread.start()
    try:
        yield socket_path
    finally:
        server.shutdown()
        server.server_close()
        socket_path.unlink(missing_ok=True)


def forwarder_script(dest: Path) -> Path:
    dest.write_text(resources.files("beyond_vibes.agents").joinpath("forward.js").read_text())
    return dest


def pi_root(pi_bin: Path) -> Path:
    """The folder holding pi's installation (mounted read-only into the agent container at the same path)."""
    real = Path(os.path.realpath(pi_bin))
    for parent in real.parents:
        if parent.name == "node_modules":
            return parent.parent
    raise ConfigError(f"pi at {pi_bin}: not inside a node_modules folder; install it with ./setup.sh for --sandbox container")


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise ConfigError("node not found: pi needs node >= 20.6")
    return node
