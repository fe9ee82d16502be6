"""The agent's workspace: the task's repository at its pinned commit, a scrubbed environment, the diff."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git

from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.tasks import Task

# The agent gets these variables from our environment and nothing else: no S3, HF, judge, MLflow or API
# secrets can reach it (or the tools it runs) by accident.
ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME", "SHELL")
# Fixed identity and dates make a snapshot of a plain folder the same commit on every machine.
_SNAPSHOT_ENV = {
    "GIT_AUTHOR_NAME": "beyond-vibes", "GIT_AUTHOR_EMAIL": "tasks@beyond-vibes.invalid",
    "GIT_COMMITTER_NAME": "beyond-vibes", "GIT_COMMITTER_EMAIL": "tasks@beyond-vibes.invalid",
    "GIT_AUTHOR_DATE": "2025-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+0000",
}
# Build droppings that are not the agent's work.
_EXCLUDES = "__pycache__/\n*.pyc\n.pytest_cache/\n.mypy_cache/\n.ruff_cache/\nnode_modules/\n"


@dataclass
class Workspace:
    root: Path  # private scratch: agent config, home
    repo: Path  # the checkout the agent works in
    commit: str
    env: dict[str, str]

    def diff(self) -> str:
        """Everything the agent changed since the pinned commit, new files included."""
        subprocess.run(["git", "add", "-A"], cwd=self.repo, check=True, capture_output=True)
        out = subprocess.run(["git", "diff", "--cached", "--binary", self.commit], cwd=self.repo, check=True,
                             capture_output=True, text=True, errors="replace")
        return out.stdout


def agent_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_ALLOWLIST if k in os.environ}
    env.update(HOME=str(home), TMPDIR=str(home / "tmp"), PYTHONDONTWRITEBYTECODE="1",
               GIT_AUTHOR_NAME="agent", GIT_AUTHOR_EMAIL="agent@beyond-vibes.invalid",
               GIT_COMMITTER_NAME="agent", GIT_COMMITTER_EMAIL="agent@beyond-vibes.invalid")
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(extra or {})
    return env


def snapshot_commit(folder: Path, dest: Path) -> str:
    """Copy a plain folder into `dest` as a one-commit git repository; the sha depends only on content."""
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc"))
    env = {**os.environ, **_SNAPSHOT_ENV}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "task snapshot"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True)
    return git.Repo(dest).head.commit.hexsha


def local_repository(task: Task) -> Path | None:
    """The task's local repository folder (None for a URL); a missing one is a config error."""
    if not task.repository.path:
        return None
    src = (task.base_dir / task.repository.path).resolve()
    if not src.exists():
        raise ConfigError(f"{task.source}: repository.path: {src} does not exist")
    return src


def checkout(task: Task, dest: Path) -> str:
    """The task's repository at its pinned ref in `dest`; returns the commit sha."""
    repo_cfg = task.repository
    src = local_repository(task)
    if src is not None:
        if not (src / ".git").exists():
            commit = snapshot_commit(src, dest)
            if repo_cfg.ref and not commit.startswith(repo_cfg.ref):
                raise ConfigError(f"{task.source}: repository.ref: {repo_cfg.ref} does not match the folder's snapshot {commit[:12]}; update ref")
            return commit
        url = str(src)
    else:
        url = repo_cfg.url
    try:
        kwargs = {"branch": repo_cfg.branch} if repo_cfg.branch and not repo_cfg.ref else {}
        repo = git.Repo.clone_from(url, dest, **kwargs)
        if repo_cfg.ref:
            repo.git.checkout("--detach", repo_cfg.ref)
        return repo.head.commit.hexsha
    except git.GitCommandError as e:
        detail = (e.stderr or str(e)).strip().splitlines()[-1] if (e.stderr or str(e)).strip() else str(e)
        raise SimulationError(f"{task.source}: repository: could not clone {url} at {repo_cfg.ref or repo_cfg.branch or 'HEAD'}: {detail}") from None


@contextmanager
def workspace(task: Task, keep: bool = False) -> Iterator[Workspace]:
    root = Path(tempfile.mkdtemp(prefix=f"bv-{task.name}-"))
    try:
        repo = root / "repo"
        commit = checkout(task, repo)
        exclude = repo / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a") as f:
            f.write(_EXCLUDES)
        home = root / "home"
        (home / "tmp").mkdir(parents=True)
        yield Workspace(root=root, repo=repo, commit=commit, env=agent_env(home))
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
