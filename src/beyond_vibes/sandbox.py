"""The agent's workspace: the task's repository at its pinned commit, a scrubbed environment, the diff.

The workspace is hostile ground: the agent can write anything into it, `.git/config` included (an fsmonitor
hook, a clean filter, an external diff driver all run programs). So the harness never runs git against the
agent's `.git`: it keeps its own bare copy of the base commit in a private folder and runs every git command
(snapshot, diff, the checks' `git diff "$BV_BASE_COMMIT"`) with that git directory, the allowlisted
environment, no system or global config, and hooks/fsmonitor/external diff/textconv switched off.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.tasks import Task

# The agent gets these variables from our environment and nothing else: no S3, HF, judge, MLflow or API
# secrets can reach it (or the tools it runs) by accident.
ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME", "SHELL")
# Cloning a URL may need the host's proxy and CA settings (never the agent's business).
_CLONE_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE",
              "SSL_CERT_DIR", "GIT_SSL_CAINFO")
# Config given on the "command line" (GIT_CONFIG_*), which wins over any repository config.
_GIT_OVERRIDES = {"core.fsmonitor": "false", "core.hooksPath": "/dev/null", "core.untrackedCache": "false",
                  "core.attributesFile": "/dev/null", "protocol.ext.allow": "never", "commit.gpgsign": "false",
                  "safe.directory": "*"}
# Fixed identity and dates make a snapshot of a plain folder the same commit on every machine.
_SNAPSHOT_ID = {
    "GIT_AUTHOR_NAME": "beyond-vibes", "GIT_AUTHOR_EMAIL": "tasks@beyond-vibes.invalid",
    "GIT_COMMITTER_NAME": "beyond-vibes", "GIT_COMMITTER_EMAIL": "tasks@beyond-vibes.invalid",
    "GIT_AUTHOR_DATE": "2025-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+0000",
}
# Build droppings that are not the agent's work.
_EXCLUDES = "__pycache__/\n*.pyc\n.pytest_cache/\n.mypy_cache/\n.ruff_cache/\nnode_modules/\n"
# Never copied from a plain local folder into a workspace (a `path: .` must not hand the agent our .env).
SECRET_FILES = (".git", ".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".npmrc",
                ".pypirc", ".aws", ".ssh", ".gnupg", ".docker", ".kube", ".venv", "venv", ".tools", ".beyond-vibes",
                "node_modules", "__pycache__", "*.pyc", "mlruns")
_SAFE_ENV_FILES = (".env.example", ".env.sample", ".env.template")


def _clean_env(names: tuple[str, ...] = ENV_ALLOWLIST) -> dict[str, str]:
    env = {k: os.environ[k] for k in names if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return env


def hardened_git_env() -> dict[str, str]:
    """Variables that make any git process ignore system/global config and run no hooks or monitors."""
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0",
           "GIT_OPTIONAL_LOCKS": "0", "GIT_CONFIG_COUNT": str(len(_GIT_OVERRIDES))}
    for i, (k, v) in enumerate(_GIT_OVERRIDES.items()):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = k, v
    return env


@dataclass(frozen=True)
class HarnessGit:
    """git with the harness's own git directory and index over the agent's work tree."""

    git_dir: Path
    index: Path
    work_tree: Path

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        base = base or {**_clean_env(), "HOME": str(self.git_dir.parent)}
        return {**base, **hardened_git_env(), "GIT_DIR": str(self.git_dir),
                "GIT_WORK_TREE": str(self.work_tree), "GIT_INDEX_FILE": str(self.index)}

    def run(self, *args: str, extra_env: dict[str, str] | None = None, check: bool = True) -> str:
        out = subprocess.run(["git", *args], cwd=self.work_tree, env={**self.env(), **(extra_env or {})},
                             capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
        if check and out.returncode != 0:
            raise SimulationError(f"git {args[0]} failed: {(out.stderr or out.stdout).strip()[-500:]}")
        return out.stdout


def agent_user() -> tuple[int, int] | None:
    """The unprivileged user the agent and the checks run as when the harness runs as root (BV_AGENT_USER, default
    `nobody`; empty to keep root): then the agent can write only its workspace and /tmp, and cannot read the
    harness's environment (/proc/<pid>/environ) or root's files. None when the harness is not root (it cannot
    switch users; run the agent in a container for that isolation)."""
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


def hand_over(path: Path, user: tuple[int, int] | None) -> None:
    """Give the agent's user a folder tree (its workspace, home, config)."""
    if user is None:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, *user, follow_symlinks=False)
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), *user, follow_symlinks=False)


@dataclass
class Workspace:
    root: Path  # the agent's scratch: its config and home
    repo: Path  # the checkout the agent works in
    commit: str  # the pinned base commit
    env: dict[str, str]  # the agent's environment
    git: HarnessGit  # the harness's view of the repo (never the agent's .git)
    user: tuple[int, int] | None = None  # (uid, gid) the agent and the checks run as; None: the harness's own

    @property
    def check_env(self) -> dict[str, str]:
        """The checks run with the agent's environment, the base commit, and the harness's hardened git."""
        return {**self.git.env(self.env), "BV_BASE_COMMIT": self.commit}

    def diff(self) -> str:
        """Everything the agent changed since the pinned commit, new files included (commits cannot hide it)."""
        self.git.run("add", "-A")
        return self.git.run("diff", "--cached", "--binary", "--no-ext-diff", "--no-textconv", self.commit)


def agent_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = _clean_env()
    env.update(HOME=str(home), TMPDIR=str(home / "tmp"), PYTHONDONTWRITEBYTECODE="1",
               GIT_AUTHOR_NAME="agent", GIT_AUTHOR_EMAIL="agent@beyond-vibes.invalid",
               GIT_COMMITTER_NAME="agent", GIT_COMMITTER_EMAIL="agent@beyond-vibes.invalid")
    env.update(extra or {})
    return env


def copy_folder(folder: Path, dest: Path) -> None:
    """A plain folder's files, without secrets, environments or build droppings (SECRET_FILES)."""
    patterns = shutil.ignore_patterns(*SECRET_FILES)

    def ignore(src: str, names: list[str]) -> set[str]:
        return {n for n in patterns(src, names) if n not in _SAFE_ENV_FILES}

    shutil.copytree(folder, dest, ignore=ignore, symlinks=True)


def _git(args: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, errors="replace",
                         stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise subprocess.CalledProcessError(out.returncode, args, out.stdout, out.stderr)
    return out.stdout.strip()


def snapshot_commit(folder: Path, git_dir: Path, staging: Path) -> str:
    """A plain folder as a one-commit bare repository `git_dir`; the sha depends only on the content."""
    copy_folder(folder, staging)
    env = {**_clean_env(), **hardened_git_env(), "HOME": str(git_dir.parent), **_SNAPSHOT_ID}
    _git(["init", "-q", "--bare", "-b", "main", str(git_dir)], env)
    env.update(GIT_DIR=str(git_dir), GIT_WORK_TREE=str(staging), GIT_INDEX_FILE=str(git_dir.parent / "snapshot.index"))
    _git(["add", "-A"], env, cwd=staging)
    _git(["commit", "-q", "-m", "task snapshot"], env, cwd=staging)
    return _git(["rev-parse", "HEAD"], env, cwd=staging)


def local_repository(task: Task) -> Path | None:
    """The task's local repository folder (None for a URL); a missing one is a config error."""
    if not task.repository.path:
        return None
    src = (task.base_dir / task.repository.path).resolve()
    if not src.exists():
        raise ConfigError(f"{task.source}: repository.path: {src} does not exist")
    return src


def base_repository(task: Task, private: Path) -> tuple[Path, str]:
    """The task's repository as a bare git directory the harness owns, and the pinned commit in it."""
    repo_cfg = task.repository
    git_dir = private / "base.git"
    src = local_repository(task)
    if src is not None and not (src / ".git").exists():
        commit = snapshot_commit(src, git_dir, private / "snapshot")
        shutil.rmtree(private / "snapshot", ignore_errors=True)
        if repo_cfg.ref and not commit.startswith(repo_cfg.ref):
            raise ConfigError(f"{task.source}: repository.ref: {repo_cfg.ref} does not match the folder's snapshot {commit[:12]}; update ref")
        return git_dir, commit
    url = str(src) if src is not None else repo_cfg.url
    want = repo_cfg.ref or repo_cfg.branch or "HEAD"
    env = {**_clean_env(ENV_ALLOWLIST + _CLONE_ENV), **hardened_git_env(), "HOME": str(private)}
    try:
        # A local repository gives its committed state only: untracked files (.env...) never travel.
        _git(["clone", "-q", "--bare", "--no-hardlinks", url, str(git_dir)], env)
        rev = f"refs/heads/{repo_cfg.branch}" if repo_cfg.branch and not repo_cfg.ref else want
        commit = _git(["--git-dir", str(git_dir), "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}"], env)
    except subprocess.CalledProcessError as e:
        lines = (e.stderr or "").strip().splitlines()
        raise SimulationError(f"{task.source}: repository: could not get {url} at {want}: {lines[-1] if lines else e}") from None
    return git_dir, commit


def checkout(task: Task, private: Path, dest: Path) -> tuple[HarnessGit, str]:
    """The agent's clone of the base commit in `dest`, and the harness's git over it."""
    git_dir, commit = base_repository(task, private)
    env = {**_clean_env(), **hardened_git_env(), "HOME": str(private)}
    branch = task.repository.branch or "main"
    try:
        _git(["clone", "-q", "--no-hardlinks", "--no-checkout", str(git_dir), str(dest)], env)
        _git(["checkout", "-q", "-B", branch, commit], env, cwd=dest)
        # The agent's clone must not point back at the harness's private copy.
        _git(["remote", "remove", "origin"], env, cwd=dest)
        if task.repository.url:
            _git(["remote", "add", "origin", task.repository.url], env, cwd=dest)
    except subprocess.CalledProcessError as e:
        raise SimulationError(f"{task.source}: repository: could not check out {commit[:12]}: {(e.stderr or '').strip()[-300:]}") from None
    for exclude in (git_dir / "info" / "exclude", dest / ".git" / "info" / "exclude"):
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a") as f:
            f.write(_EXCLUDES)
    git = HarnessGit(git_dir, private / "index", dest)
    git.run("read-tree", commit)
    return git, commit


@contextmanager
def workspace_slot(task: Task) -> Iterator[Path]:
    """A workspace folder whose path is the same from run to run: pi puts the working directory into the
    model's prompt, so a random temp name would make two runs of one experiment differ in their prompt (and,
    at temperature 0, in their outcome). Concurrent runs take the next free slot: <tmp>/bv-workspaces/<task>-<n>."""
    base = Path(tempfile.gettempdir()) / "bv-workspaces"
    base.mkdir(mode=0o711, exist_ok=True)
    base.chmod(0o711)  # the agent's user may pass through to its own slot, not list the others
    for slot in itertools.count():
        fd = os.open(base / f".{task.name}-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            root = base / f"{task.name}-{slot}"
            shutil.rmtree(root, ignore_errors=True)  # left by a run that was killed
            root.mkdir()
            yield root
        finally:
            os.close(fd)  # releases the slot
        return


@contextmanager
def workspace(task: Task, keep: bool = False) -> Iterator[Workspace]:
    """The agent's workspace; with `keep`, it is moved aside afterwards (`Workspace.root` says where)."""
    user = agent_user()
    private = Path(tempfile.mkdtemp(prefix="bv-harness-"))  # outside the agent's folders, owned by the harness
    if user is not None:
        private.chmod(0o755)  # the checks (as the agent's user) read the base commit from it; nobody else writes it
    try:
        with workspace_slot(task) as root:
            repo = root / "repo"
            git, commit = checkout(task, private, repo)
            home = root / "home"
            (home / "tmp").mkdir(parents=True)
            hand_over(root, user)
            ws = Workspace(root=root, repo=repo, commit=commit, env=agent_env(home), git=git, user=user)
            try:
                yield ws
            finally:
                if keep:
                    kept = Path(tempfile.mkdtemp(prefix=f"bv-kept-{task.name}-"))
                    root.rename(kept / "workspace")
                    ws.root, ws.repo = kept / "workspace", kept / "workspace" / "repo"
                else:
                    shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(private, ignore_errors=True)
