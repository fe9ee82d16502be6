"""Pieces the sandboxes share: the container launch (`--sandbox container`), the unix-socket bridge that brings the
model proxy into a command without network, and its forwarder to 127.0.0.1 inside."""

from __future__ import annotations

import io
import os
import shutil
import socket
import socketserver
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from beyond_vibes.confinement import SYSTEM_DIRS
from beyond_vibes.errors import ConfigError

AGENT_IMAGE = "localhost/bv-agent-base:latest"  # an empty root: the host's /usr, /lib, /etc... come in read-only


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
    """A confined command in a container; stdout streams back line by line like a process's (or, when `stdout` is
    a file, is written there at the end)."""

    def __init__(self, client, cmd, stdout, stderr):
        image = agent_image(client)
        volumes = {d: {"bind": d, "mode": "ro"} for d in SYSTEM_DIRS if os.path.isdir(d)}
        volumes.update({str(m.src): {"bind": m.dest, "mode": "rw" if m.rw else "ro"} for m in cmd.mounts})
        self._stdout = None if stdout is subprocess.PIPE else stdout
        self._stderr = stderr
        self.returncode: int | None = None
        self.container = client.containers.run(
            image, cmd.argv, detach=True, working_dir=cmd.cwd, environment=cmd.env,
            network_mode="host" if cmd.network == "packages" else "none", volumes=volumes, tmpfs={"/tmp": "mode=1777"},
            user=f"{cmd.user[0]}:{cmd.user[1]}" if cmd.user else None, labels=owner_labels(),
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

    def wait(self, timeout: float | None = None) -> int:
        """Polls the container's state (podman's Docker-compatible wait busy-polls inside the service)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            try:
                self.container.reload()
                state = self.container.attrs.get("State", {})
            except Exception:  # noqa: BLE001 - gone: removed by someone else
                self.returncode = -1
                break
            if state.get("Status") in ("exited", "dead", "stopped"):
                self.returncode = int(state.get("ExitCode", -1))
                self._collect_output()
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired("container", timeout)
            time.sleep(0.1)
        return self.returncode

    def _collect_output(self) -> None:
        try:
            if self._stdout is not None:
                self._stdout.write(self.container.logs(stdout=True, stderr=self._stderr is subprocess.STDOUT))
                self._stdout.flush()
            if self._stderr not in (None, subprocess.STDOUT, subprocess.DEVNULL):
                self._stderr.write(self.container.logs(stdout=False, stderr=True))
                self._stderr.flush()
        except Exception:  # noqa: BLE001
            pass

    def stop(self, grace_s: float = 5.0) -> None:
        try:
            self.container.stop(timeout=int(max(1, grace_s)))
        except Exception:  # noqa: BLE001
            pass
        try:
            if self.returncode is None:
                self.wait(timeout=30)
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
    """The folder holding pi's installation (mounted read-only into the sandbox at /opt/bv/pi): the folder above its
    node_modules, or, for a pi that is not an npm install (a wrapper script), the binary's own folder."""
    real = Path(os.path.realpath(pi_bin))
    for parent in real.parents:
        if parent.name == "node_modules":
            return parent.parent
    return real.parent


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise ConfigError("node not found: pi needs node >= 20.6")
    return node
