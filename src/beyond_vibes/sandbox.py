"""The agent's workspace: the task's repository at its pinned commit, a scrubbed environment, the diff.

The workspace is hostile ground: the agent can write anything into it, `.git/config` included (an fsmonitor
hook, a clean filter, an external diff driver all run programs). So the harness never runs git against the
agent's `.git`: it keeps its own bare copy of the base commit in a private folder and runs every git command
(snapshot, diff, the checks' `git diff "$BV_BASE_COMMIT"`) with that git directory, the allowlisted
environment, no system or global config, and hooks/fsmonitor/external diff/textconv switched off.

What the agent, the task's setup and the checks run in is the workspace's sandbox (confinement.py): they see the
checkout at /workspace, a private home, the agent toolchain, and nothing of the harness.
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

from beyond_vibes.confinement import (HOME, OPT, TOOLCHAIN, WORKSPACE, Command, Mount, Sandbox, View, agent_user,
                                      base_env, get_sandbox, index_settings, run_to_end, toolchain_dir)
from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.materials import MOUNT as MATERIALS, Unpacked, fetch_materials
from beyond_vibes.tasks import Task

# The harness's own git commands get these variables of ours and nothing else (the agent's environment is built
# from scratch: confinement.base_env).
ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME", "SHELL")
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
# Build droppings and the environments a task's setup makes (`uv venv`, `npm ci`) are not the agent's work.
_EXCLUDES = ("__pycache__/\n*.pyc\n.pytest_cache/\n.mypy_cache/\n.ruff_cache/\nnode_modules/\n/.venv/\n/venv/\n.tox/\n"
             "*.egg-info/\n.coverage\n")
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
    root: Path  # the run's folder: the checkout, the agent's home and config
    repo: Path  # the checkout the agent works in (on the host)
    commit: str  # the pinned base commit
    git: HarnessGit  # the harness's view of the repo (never the agent's .git)
    sandbox: Sandbox  # where the agent, the setup and the checks run
    toolchain: Path  # pip, pytest, uv: mounted read-only for every command
    user: tuple[int, int] | None = None  # (uid, gid) a root harness runs them as; None: the harness's own
    check_files: Path | None = None  # the task's `check_files` folder (hidden tests...), mounted for checks only
    materials: tuple[Unpacked, ...] = ()  # read-only at /materials/<name> for the agent, its setup and the checks

    @property
    def home(self) -> Path:
        return self.root / "home"

    def view(self, home: Path | None = None) -> View:
        mounts = self.mounts(home)
        inside = [self.sandbox.inside(m) for m in mounts[:3]]
        tmp = "/tmp" if self.sandbox.name != "none" else f"{inside[1]}/tmp"
        return View(workspace=inside[0], home=inside[1], tmp=tmp, toolchain_bin=f"{inside[2]}/bin")

    def mounts(self, home: Path | None = None) -> list[Mount]:
        return [Mount(self.repo, WORKSPACE, True), Mount(home or self.home, HOME, True), Mount(self.toolchain, TOOLCHAIN),
                *(Mount(m.folder, f"{MATERIALS}/{m.name}") for m in self.materials)]

    @property
    def materials_root(self) -> str:
        """The folder holding /materials/<name> as commands see it (unconfined: links in the run's folder)."""
        return MATERIALS if self.sandbox.name != "none" else str(self.root / "materials")

    @property
    def env(self) -> dict[str, str]:
        """The agent's environment as it sees it (built, never inherited: see confinement.base_env)."""
        return self.agent_env()

    def agent_env(self, network: str = "none", home: Path | None = None) -> dict[str, str]:
        env = base_env(self.view(home), self.user, network)
        if self.materials:
            env["BV_MATERIALS"] = self.materials_root
        env.update(GIT_AUTHOR_NAME="agent", GIT_AUTHOR_EMAIL="agent@beyond-vibes.invalid",
                   GIT_COMMITTER_NAME="agent", GIT_COMMITTER_EMAIL="agent@beyond-vibes.invalid")
        return env

    def command(self, argv: list[str], network: str = "none", home: Path | None = None,
                extra: list[Mount] | None = None, env: dict[str, str] | None = None) -> Command:
        """A command in this workspace's sandbox: the workspace, a home, the toolchain, and `extra` mounts."""
        mounts = self.mounts(home) + list(extra or [])
        if network == "packages":
            mounts += index_settings(self.sandbox.inside(mounts[1]))[1]
        return Command(argv, mounts, env if env is not None else self.agent_env(network, home),
                       self.sandbox.inside(mounts[0]), network, self.user)

    def fresh_home(self, name: str) -> Path:
        """A new, empty home (the checks get one: nothing the agent left in its home reaches them)."""
        home = self.root / name
        shutil.rmtree(home, ignore_errors=True)
        (home / "tmp").mkdir(parents=True)
        hand_over(home, self.user)
        return home

    def run(self, script: str, timeout_s: float, network: str = "none", home: Path | None = None,
            with_git: bool = False) -> tuple[int | None, str, float]:
        """`bash -c script` in the sandbox to its end: (exit code or None at the timeout, output, seconds). With
        `with_git`, the harness's base commit comes in read-only, for checks that compare with BV_BASE_COMMIT."""
        extra: list[Mount] = []
        env = None
        if with_git:
            extra = [Mount(self.git.git_dir, f"{OPT}/base.git"), Mount(self.git.index, f"{OPT}/git-index"),
                     Mount(CHECKTOOLS, f"{OPT}/checktools")]
            if self.check_files is not None:  # the task's hidden check files: the checks see them, the agent never
                extra.append(Mount(self.check_files, f"{OPT}/task-checks"))
            env = {**self.agent_env(network, home), **hardened_git_env(), "BV_BASE_COMMIT": self.commit,
                   "GIT_DIR": self.sandbox.inside(extra[0]), "GIT_INDEX_FILE": self.sandbox.inside(extra[1]),
                   "GIT_WORK_TREE": self.view(home).workspace}
        cmd = self.command(["bash", "-c", script], network, home, extra, env)
        out_file = self.root / f".out-{os.urandom(4).hex()}"
        try:
            code, out, seconds = run_to_end(self.sandbox, cmd, out_file, timeout_s)
        finally:
            out_file.unlink(missing_ok=True)
        return code, out.decode(errors="replace"), seconds

    def diff(self) -> str:
        """Everything the agent changed since the pinned commit, new files included (commits cannot hide it)."""
        self.git.run("add", "-A")
        return self.git.run("diff", "--cached", "--binary", "--no-ext-diff", "--no-textconv", self.commit)


def agent_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The unconfined (`none`) agent environment with `home` as its home (tests, tools outside a workspace)."""
    view = View(workspace=str(home), home=str(home), tmp=str(home / "tmp"), toolchain_bin=str(toolchain_dir() / "bin"))
    return {**base_env(view, None), **(extra or {})}


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
    if src is None:  # a URL: from the machine's mirror cache (BV_GIT_MIRRORS, then the network, only if missing)
        pinned = pin_task(task)
        url, want = str(pinned.mirror), pinned.commit
    else:
        url, want = str(src), repo_cfg.ref or repo_cfg.branch or "HEAD"
    env = {**_clean_env(), **hardened_git_env(), "HOME": str(private)}  # a local clone (a URL's comes from its mirror)
    try:
        # A local repository gives its committed state only: untracked files (.env...) never travel.
        _git(["clone", "-q", "--bare", "--no-hardlinks", url, str(git_dir)], env)
        rev = f"refs/heads/{repo_cfg.branch}" if src is not None and repo_cfg.branch and not repo_cfg.ref else want
        commit = _git(["--git-dir", str(git_dir), "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}"], env)
    except subprocess.CalledProcessError as e:
        lines = (e.stderr or "").strip().splitlines()
        raise SimulationError(f"{task.source}: repository: could not get {url} at {want}: {lines[-1] if lines else e}") from None
    return git_dir, commit


CHECKTOOLS = Path(__file__).resolve().parent / "checktools"  # stdlib check scripts (plan_check.py), at /opt/bv/checktools


def task_check_files(task: Task) -> Path | None:
    if not task.check_files:
        return None
    folder = (task.source.resolve().parent / task.check_files).resolve()
    if not folder.is_dir():
        raise ConfigError(f"{task.source}: check_files: {task.check_files} is not a folder (paths are relative to the tasks folder)")
    return folder


def pin_task(task: Task):
    """A URL task's commit in the machine's mirror cache (fetched from BV_GIT_MIRRORS or the URL only when missing),
    and its materials in the materials cache; a commit no source has, or a material whose sha256 is wrong, is a
    one-line ConfigError."""
    from beyond_vibes.gitsource import pin
    from beyond_vibes.settings import get_settings

    settings = get_settings()
    repo_cfg = task.repository
    mirrors = os.environ.get("BV_GIT_MIRRORS") or settings.git_mirrors
    fetch_materials(task)  # the pinned materials too: a wrong sha256 is one line before any model loads
    return pin(repo_cfg.url, repo_cfg.ref or repo_cfg.branch, settings.cache_dir, Path(mirrors) if mirrors else None,
               where=f"{task.source}: repository.{'ref' if repo_cfg.ref else 'branch'}")


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


def user_folder() -> Path:
    """This user's own folder under the temp folder (`<tmp>/bv-<uid>`, mode 0700): workspaces, per-run scratch. Users
    of one machine never share it; one that someone else made (or a symlink) is refused, not used."""
    uid = os.getuid()
    path = Path(tempfile.gettempdir()) / f"bv-{uid}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    import stat

    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise ConfigError(f"{path}: not a private folder of this user (uid {uid}); remove it, or set TMPDIR to a "
                          "folder of your own")
    return path


@contextmanager
def workspace_slot(task: Task) -> Iterator[Path]:
    """A workspace folder whose path is the same from run to run: pi puts the working directory into the
    model's prompt, so a random temp name would make two runs of one experiment differ in their prompt (and,
    at temperature 0, in their outcome). Concurrent runs take the next free slot: <tmp>/bv-<uid>/workspaces/<task>-<n>. (Inside bwrap or a container
    the agent sees /workspace whatever the slot.)"""
    base = user_folder() / "workspaces"
    base.mkdir(mode=0o700, exist_ok=True)
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
def workspace(task: Task, keep: bool = False, sandbox: Sandbox | str = "auto") -> Iterator[Workspace]:
    """The agent's workspace in its sandbox; with `keep`, it is moved aside afterwards (`Workspace.root` says where)."""
    box = get_sandbox(sandbox) if isinstance(sandbox, str) else sandbox
    materials = tuple(fetch_materials(task))  # verified before anything is checked out or run
    user = agent_user() if box.name != "none" else None
    toolchain = toolchain_dir()
    private = Path(tempfile.mkdtemp(prefix="bv-harness-", dir=user_folder()))  # the harness's own: the agent never sees it
    try:
        with workspace_slot(task) as root:
            repo = root / "repo"
            git, commit = checkout(task, private, repo)
            (root / "home" / "tmp").mkdir(parents=True)
            if box.name == "none" and materials:  # no mounts unconfined: BV_MATERIALS names links to them
                (root / "materials").mkdir()
                for m in materials:
                    (root / "materials" / m.name).symlink_to(m.folder)
            hand_over(root, user)
            ws = Workspace(root=root, repo=repo, commit=commit, git=git, sandbox=box, toolchain=toolchain, user=user,
                           check_files=task_check_files(task), materials=materials)
            try:
                yield ws
            finally:
                if keep:
                    kept = Path(tempfile.mkdtemp(prefix=f"bv-kept-{task.name}-", dir=user_folder()))
                    root.rename(kept / "workspace")
                    ws.root, ws.repo = kept / "workspace", kept / "workspace" / "repo"
                else:
                    shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(private, ignore_errors=True)
