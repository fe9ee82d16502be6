"""Where the agent's commands run (pi and its tools, a task's setup, the checks, answers' code): confined by
bubblewrap (`bwrap`, the default wherever it works), in a container, or unconfined (`none`, only when asked).

A confined command sees the host's system folders read-only, its workspace read-write at /workspace, a private
home and /tmp, the agent toolchain read-only at /opt/bv/toolchain, and nothing else of the host: not the
harness's project, caches, model store or the user's home. It has no network (the model proxy comes in through
a unix socket) unless asked for the package index, and its processes live in their own PID namespace, so nothing
it starts outlives it. A root harness runs it as an unprivileged user (BV_AGENT_USER, default `nobody`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from beyond_vibes.errors import ConfigError
from beyond_vibes.procs import spawn, stop_group

WORKSPACE = "/workspace"
HOME = "/home/agent"
OPT = "/opt/bv"
TOOLCHAIN = f"{OPT}/toolchain"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
NETWORKS = ("none", "packages")

# The package index as the user configured it for pip, uv and npm: passed to commands that may reach it (network
# `packages`) and to nothing else. Path-valued ones are mounted read-only where they point.
INDEX_ENV = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST", "PIP_CERT", "PIP_CLIENT_CERT",
             "PIP_CONFIG_FILE", "PIP_DEFAULT_TIMEOUT", "UV_INDEX", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX",
             "UV_FIND_LINKS", "UV_NATIVE_TLS", "UV_INDEX_STRATEGY", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
             "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy",
             "https_proxy", "no_proxy", "all_proxy", "npm_config_registry", "NPM_CONFIG_REGISTRY")
INDEX_PATH_ENV = ("PIP_FIND_LINKS", "PIP_CERT", "PIP_CLIENT_CERT", "PIP_CONFIG_FILE", "UV_FIND_LINKS", "SSL_CERT_FILE",
                  "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
INDEX_FILES = (".config/pip/pip.conf", ".pip/pip.conf", ".config/uv/uv.toml", ".npmrc")  # in the user's home
_LOCALE_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ")


@dataclass(frozen=True)
class Mount:
    src: Path  # on the host
    dest: str  # inside a confined command
    rw: bool = False


@dataclass
class Command:
    """One command to run in a sandbox: argv as seen inside, the host folders it needs, its network."""

    argv: list[str]
    mounts: list[Mount]
    env: dict[str, str]
    cwd: str
    network: str = "none"
    user: tuple[int, int] | None = None  # (uid, gid) a root harness runs it as


class Sandbox(Protocol):
    name: str

    def problem(self) -> str | None:
        """Why this sandbox cannot run here, as one line with the fix; None when it works."""

    def inside(self, mount: Mount) -> str:
        """Where a mounted host folder appears to the command."""

    def start(self, cmd: Command, stdout, stderr) -> "Launch":
        """The command running; stdout a pipe (`Launch.lines`) or a file."""


class Launch(Protocol):
    returncode: int | None

    def lines(self) -> Iterator[bytes]: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def stop(self, grace_s: float = 5.0) -> None: ...


class ProcessLaunch:
    """A host process (bwrap, or the command itself for `none`) in its own process group, tied to the harness."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, user, stdout, stderr):
        from beyond_vibes.errors import SimulationError

        try:
            self.proc = spawn(argv, cwd=cwd, env=env, user=user, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise SimulationError(f"could not start {argv[0]}: {e}") from e

    def lines(self) -> Iterator[bytes]:
        yield from self.proc.stdout

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, grace_s: float = 5.0) -> None:
        stop_group(self.proc, grace_s)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode


def agent_user() -> tuple[int, int] | None:
    """The unprivileged user a root harness runs confined commands as (BV_AGENT_USER, default `nobody`); None
    when the harness is not root (the command keeps the user's uid, and the sandbox is what confines it)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    name = os.environ.get("BV_AGENT_USER", "nobody")
    if not name:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"BV_AGENT_USER: no user {name!r} on this machine; create it, or set BV_AGENT_USER= to run "
                          "the agent as root") from None
    return entry.pw_uid, entry.pw_gid


def user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _system_binds() -> list[str]:
    """The host's system folders, read-only; merged-/usr symlinks (/bin -> usr/bin) stay symlinks."""
    args: list[str] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    # /etc/resolv.conf often points into /run (systemd-resolved): a command on the host network needs it.
    resolv = os.path.realpath("/etc/resolv.conf")
    if os.path.exists(resolv) and not resolv.startswith(("/etc/", "/usr/")):
        args += ["--ro-bind", resolv, resolv]
    return args


def _mkdirs(dest: str, made: set[str]) -> list[str]:
    """Parent folders of a mount point, world-traversable (a root bwrap makes them 0700 otherwise)."""
    args: list[str] = []
    parts = Path(dest).parent.parts
    for i in range(2, len(parts) + 1):
        d = str(Path(*parts[:i]))
        if d not in made and not any(d == s or d.startswith(s + "/") for s in SYSTEM_DIRS):
            made.add(d)
            args += ["--perms", "0755", "--dir", d]
    return args


@functools.lru_cache(maxsize=8)
def _probe_bwrap(binary: str, user: tuple[int, int] | None) -> str | None:
    """Run `true` in the tightest sandbox we use; None when it works, else bwrap's own last line."""
    cmd = BwrapSandbox(binary).wrap(Command(["true"], [], {"PATH": SYSTEM_PATH}, "/", "none", user))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)
    if out.returncode == 0:
        return None
    lines = (out.stderr or out.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {out.returncode}"


class BwrapSandbox:
    """bubblewrap: new mount, PID, IPC, UTS and (unless `packages`) network namespaces; a root harness runs bwrap
    itself (it can mount any folder) and drops to the agent's user inside with setpriv, so the command holds no
    capability and no root uid; any other harness runs bwrap in an unprivileged user namespace as itself."""

    name = "bwrap"

    def __init__(self, binary: str | None = None):
        self.binary = binary or os.environ.get("BV_BWRAP") or shutil.which("bwrap") or "bwrap"

    def problem(self) -> str | None:
        found = shutil.which(self.binary) if "/" not in self.binary else (self.binary if os.access(self.binary, os.X_OK) else None)
        if not found:
            return ("bubblewrap (bwrap) is not installed: apt-get install bubblewrap (dnf/pacman/nix: bubblewrap), "
                    "or choose --sandbox container, or --sandbox none to run the agent unconfined")
        user = agent_user()
        if user is not None and not shutil.which("setpriv"):
            return "setpriv (util-linux) is missing: a root harness needs it to drop the agent to its user; install util-linux"
        why = _probe_bwrap(found, user)
        if why is None:
            return None
        if any(s in why.lower() for s in ("namespace", "permission", "not permitted", "uid map", "setting up uid")):
            return (f"bwrap cannot create its namespaces here ({why}): unprivileged user namespaces are disabled; enable "
                    "them (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces=15000; on Ubuntu 24.04+ "
                    "an AppArmor profile for bwrap), or choose --sandbox container or none")
        return f"bwrap does not work here ({why}); choose --sandbox container or none"

    def inside(self, mount: Mount) -> str:
        return mount.dest

    def wrap(self, cmd: Command) -> list[str]:
        args = [self.binary, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-uts",
                "--unshare-cgroup-try"]
        if cmd.network == "none":
            args.append("--unshare-net")
        root = os.geteuid() == 0
        if not root:
            args.append("--unshare-user")
        args += _system_binds() + ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
        made: set[str] = set()
        for m in cmd.mounts:
            args += _mkdirs(m.dest, made) + ["--bind" if m.rw else "--ro-bind", str(m.src), m.dest]
        args += ["--chdir", cmd.cwd, "--"]
        if root and cmd.user is not None:
            uid, gid = cmd.user
            args += ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs",
                     "--inh-caps=-all", "--bounding-set=-all", "--"]
        return args + cmd.argv

    def start(self, cmd: Command, stdout, stderr) -> ProcessLaunch:
        return ProcessLaunch(self.wrap(cmd), cmd.env, "/", None, stdout, stderr)


class NoSandbox:
    """The command on the host as the harness's own user: everything the user can reach, it can (`--sandbox none`)."""

    name = "none"

    def problem(self) -> str | None:
        return None

    def inside(self, mount: Mount) -> str:
        return str(mount.src)

    def start(self, cmd: Command, stdout, stderr) -> ProcessLaunch:
        return ProcessLaunch(cmd.argv, cmd.env, cmd.cwd, None, stdout, stderr)


class ContainerSandbox:
    """A container (Docker or podman's Docker API) on an empty image: the host's system folders read-only, the
    mounts at their destinations, no network unless `packages` (then the host's)."""

    name = "container"

    def __init__(self, settings=None):
        from beyond_vibes.settings import get_settings

        self.settings = settings or get_settings()
        self._client = None

    def client(self):
        if self._client is None:
            from beyond_vibes.runtime.container import docker_client

            self._client = docker_client(self.settings)
        return self._client

    def problem(self) -> str | None:
        try:
            self.client()
            return None
        except ConfigError as e:
            return f"no container engine answers ({e}); install podman or Docker, or choose --sandbox bwrap or none"

    def inside(self, mount: Mount) -> str:
        return mount.dest

    def start(self, cmd: Command, stdout, stderr):
        from beyond_vibes.agents.launch import ContainerLaunch

        return ContainerLaunch(self.client(), cmd, stdout, stderr)


SANDBOXES: dict[str, Callable[[], Sandbox]] = {"bwrap": BwrapSandbox, "container": ContainerSandbox, "none": NoSandbox}
CHOICES = ("auto", *SANDBOXES)


def get_sandbox(name: str = "auto") -> Sandbox:
    """The sandbox by name; `auto` is bwrap where it works, else a container engine, else a one-line refusal
    (never a silent fall back to none). A named sandbox that cannot work here is a one-line error too."""
    if name == "auto":
        problems = []
        for candidate in ("bwrap", "container"):
            sandbox = SANDBOXES[candidate]()
            why = sandbox.problem()
            if why is None:
                return sandbox
            problems.append(f"{candidate}: {why}")
        raise ConfigError("--sandbox: no agent sandbox works here (" + "; ".join(problems) + "); install bubblewrap "
                          "(apt-get install bubblewrap), or pass --sandbox none to run the agent unconfined")
    if name not in SANDBOXES:
        raise ConfigError(f"--sandbox: unknown sandbox {name!r}; choose one of {', '.join(CHOICES)}")
    sandbox = SANDBOXES[name]()
    why = sandbox.problem()
    if why is not None:
        raise ConfigError(f"--sandbox {name}: {why}")
    return sandbox


def available() -> dict[str, str | None]:
    """Each sandbox and why it does not work here (None: it works), for `doctor`."""
    return {name: factory().problem() for name, factory in SANDBOXES.items() if name != "none"}


def toolchain_dir() -> Path:
    """The agent toolchain setup.sh built (BV_TOOLCHAIN overrides): a relocatable venv with pip, pytest and uv."""
    override = os.environ.get("BV_TOOLCHAIN")
    if override:
        path = Path(override)
    else:
        from beyond_vibes.settings import get_settings, project_root

        import hashlib

        parts = [project_root() / "tools" / "toolchain" / f for f in ("requirements.txt", "pythons.txt")]
        sha = (hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()[:16]
               if all(p.exists() for p in parts) else "missing")
        path = get_settings().cache_dir / "toolchain" / sha
    if not (path / "bin" / "python").exists():
        raise ConfigError(f"BV_TOOLCHAIN: the agent toolchain (pip, pytest, uv) is missing at {path}: run ./setup.sh")
    return path


def toolchain_id(path: Path) -> str:
    """What the toolchain is, for the run key: its folder name (the lock's sha) and Python version."""
    cfg = (path / "pyvenv.cfg").read_text() if (path / "pyvenv.cfg").exists() else ""
    version = next((line.split("=", 1)[1].strip() for line in cfg.splitlines() if line.startswith("version_info")), "?")
    return f"{path.name}/py{version}"


def index_settings(home_dest: str) -> tuple[dict[str, str], list[Mount]]:
    """The package index settings of this machine (see INDEX_ENV): variables, and mounts for the files they name
    and for the user's pip/uv/npm config files (copied into the command's home)."""
    env = {k: os.environ[k] for k in INDEX_ENV if os.environ.get(k)}
    mounts: list[Mount] = []
    for k in INDEX_PATH_ENV:
        for value in env.get(k, "").split():
            path = value[len("file://"):] if value.startswith("file://") else value
            if path.startswith("/") and os.path.exists(path) and not path.startswith(("/usr/", "/etc/")):
                mounts.append(Mount(Path(path), path))
    for rel in INDEX_FILES:
        src = Path.home() / rel
        if src.is_file():
            mounts.append(Mount(src, f"{home_dest}/{rel}"))
    return env, mounts


def index_secrets() -> list[str]:
    """Credentials inside the package index settings (an index URL's password, an .npmrc token): commands with
    `network: packages` get them, so everything they print is redacted for them."""
    from beyond_vibes.redact import uri_password

    found = [uri_password(v) for k in INDEX_ENV for v in os.environ.get(k, "").split()]
    npmrc = Path.home() / ".npmrc"
    try:
        for line in npmrc.read_text().splitlines() if npmrc.is_file() else []:
            key, _, value = line.partition("=")
            if key.strip().endswith(("_authToken", "_auth", "_password")) and value.strip():
                found.append(value.strip().strip('"'))
    except OSError:
        pass
    return [v for v in found if v]


@dataclass
class View:
    """Where a command's folders are, as the command sees them."""

    workspace: str
    home: str
    tmp: str
    toolchain_bin: str
    extra: dict[str, str] = field(default_factory=dict)


def base_env(view: View, user: tuple[int, int] | None, network: str = "none") -> dict[str, str]:
    """The environment a confined command gets: built, never inherited. PATH is the toolchain, its extra Python
    interpreters (pythons/bin: python3.12, ...) and the system's folders (no harness venv, whatever was activated); no user site-packages; every cache in its own home."""
    env = {k: os.environ[k] for k in _LOCALE_ENV if k in os.environ}
    home = view.home
    name = user_name(user[0] if user else os.getuid())
    env.update(
        PATH=f"{view.toolchain_bin}:{view.toolchain_bin.removesuffix('/bin')}/pythons/bin:{SYSTEM_PATH}", HOME=home,
        TMPDIR=view.tmp, USER=name, LOGNAME=name, SHELL="/bin/bash",
        XDG_CONFIG_HOME=f"{home}/.config", XDG_CACHE_HOME=f"{home}/.cache", XDG_DATA_HOME=f"{home}/.local/share",
        XDG_STATE_HOME=f"{home}/.local/state", UV_CACHE_DIR=f"{home}/.cache/uv", PIP_CACHE_DIR=f"{home}/.cache/pip",
        npm_config_cache=f"{home}/.npm", PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1", UV_PYTHON_DOWNLOADS="never",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    env.setdefault("LANG", "C.UTF-8")
    if network == "packages":
        env.update(index_settings(home)[0])
    return env


def run_to_end(sandbox: Sandbox, cmd: Command, out_path: Path, timeout_s: float) -> tuple[int | None, bytes, float]:
    """Run a command to its end (or its timeout: exit code None); output to a file, not a pipe, so a process it
    leaves behind cannot hold the harness. Returns (exit code, output, seconds)."""
    start = time.monotonic()
    with out_path.open("wb") as out:
        launch = sandbox.start(cmd, out, subprocess.STDOUT)
    code: int | None
    try:
        code = launch.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        launch.stop(grace_s=1.0)
    if code is None:
        with out_path.open("ab") as out:
            out.write(f"\n[killed after {timeout_s:g}s]".encode())
    return code, out_path.read_bytes(), time.monotonic() - start
