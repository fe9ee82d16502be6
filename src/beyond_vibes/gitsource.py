"""Where a task's git repository comes from: a per-machine mirror cache, fed by BV_GIT_MIRRORS (bundles or bare
repositories: an air-gapped team's mirror) before the network, and fetched only when the pinned commit is missing.

One bare mirror per URL under `<cache>/git/`; a repeat run or a sweep clones from it locally. A `ref` that is a
commit sha is used as is; a branch or tag is resolved against the mirror (fetched once when the mirror lacks it)
and the resolved commit is what the run records. A commit that no source has is a one-line ConfigError, raised
before any model loads (`simulate` resolves it first).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from beyond_vibes.errors import ConfigError
from beyond_vibes.locks import file_lock

SHA = re.compile(r"^[0-9a-f]{7,40}$")
# Cloning a URL may need the host's proxy and CA settings (never the agent's business).
CLONE_ENV = ("PATH", "LANG", "HOME", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
             "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO")
FETCHES: list[str] = []  # every fetch this process made, "<source> -> <mirror>" (the tests count them)


@dataclass(frozen=True)
class Pinned:
    mirror: Path  # the bare mirror in the cache
    commit: str  # the full sha
    source: str  # where the commit came from (the cache, a mirror bundle, the URL)


def owner_name(url: str) -> str | None:
    """`owner/name` of a forge URL (https://github.com/owner/name(.git), git@host:owner/name.git)."""
    path = urlsplit(url).path if "://" in url else url.split(":", 1)[-1]
    parts = [p for p in path.strip("/").removesuffix(".git").split("/") if p]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def mirror_sources(url: str, mirrors: Path | None) -> list[str]:
    """BV_GIT_MIRRORS entries for `url`, in order (`<owner>/<name>.bundle`, `.git`, or a bare folder), then the URL."""
    found: list[str] = []
    name = owner_name(url)
    if mirrors and name:
        for candidate in (f"{name}.bundle", f"{name}.git", name):
            path = Path(mirrors) / candidate
            if path.is_file() or (path / "HEAD").is_file():
                found.append(str(path))
    return found + [url]


def run_git(args: list[str], git_dir: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """git with the host's clone settings (proxy, CA) and the hardened config (no hooks, no system/global config)."""
    from beyond_vibes.sandbox import hardened_git_env

    env = {k: os.environ[k] for k in CLONE_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(hardened_git_env())
    cmd = ["git"] + (["--git-dir", str(git_dir)] if git_dir else []) + args
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
    if check and out.returncode != 0:
        raise subprocess.CalledProcessError(out.returncode, cmd, out.stdout, out.stderr)
    return out


def resolve(mirror: Path, want: str) -> str | None:
    for rev in ([want] if SHA.match(want) else []) + [f"refs/heads/{want}", f"refs/tags/{want}", want]:
        out = run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], mirror, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return None


def mirror_path(cache_dir: Path, url: str) -> Path:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", owner_name(url) or "repo")
    return Path(cache_dir) / "git" / f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.git"


def pin(url: str, want: str | None, cache_dir: Path, mirrors: Path | None, where: str = "repository") -> Pinned:
    """The commit `want` (a sha, branch or tag; None: the default branch) of `url`, in the local mirror."""
    mirror = mirror_path(cache_dir, url)
    mirror.parent.mkdir(parents=True, exist_ok=True)
    want = want or "HEAD"
    with file_lock(mirror.with_suffix(".lock")):
        if not (mirror / "HEAD").exists():
            run_git(["init", "-q", "--bare", str(mirror)])
        commit = resolve(mirror, want) if want != "HEAD" or _has_refs(mirror) else None
        if commit:
            return Pinned(mirror, commit, "cache")
        errors = []
        for source in mirror_sources(url, mirrors):
            try:
                FETCHES.append(f"{source} -> {mirror}")
                run_git(["fetch", "-q", "--tags", "--force", source, "+refs/heads/*:refs/heads/*"], mirror)
                if want == "HEAD":
                    _set_head(mirror, source)
            except subprocess.CalledProcessError as e:
                lines = (e.stderr or "").strip().splitlines()
                errors.append(f"{source}: {lines[-1] if lines else 'fetch failed'}")
                continue
            commit = resolve(mirror, want)
            if commit:
                return Pinned(mirror, commit, source)
            errors.append(f"{source}: has no {want}")
    raise ConfigError(f"{where}: {want} of {url} is in none of its sources ({'; '.join(errors)}); pin a commit that "
                      "exists, or add the repository to BV_GIT_MIRRORS")


def _has_refs(mirror: Path) -> bool:
    return bool(run_git(["for-each-ref", "--count=1"], mirror).stdout.strip())


def _set_head(mirror: Path, source: str) -> None:
    """The mirror's HEAD follows the source's default branch (so `HEAD` means what it means upstream)."""
    out = run_git(["ls-remote", "--symref", source, "HEAD"], check=False)
    for line in out.stdout.splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            run_git(["symbolic-ref", "HEAD", line[5:].split("\t")[0]], mirror)
            return
