"""Git sources: pinned commits from a per-machine mirror cache, fed by BV_GIT_MIRRORS before the network; a
commit no source has is one line before anything starts. Real git, real bundles (../shared/repos)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from beyond_vibes import gitsource
from beyond_vibes.errors import ConfigError
from beyond_vibes.gitsource import owner_name, pin
from beyond_vibes.sandbox import workspace
from beyond_vibes.tasks import load_task
from conftest import REPO, git, write_task

SHARED = REPO.parent / "shared" / "repos"
LIGHTHEARTED = "d4b6719c28dd2b40e33a56de36c96fb99502a3c2"  # HEAD of the bundle (its README)


@pytest.fixture
def upstream(tmp_path, git_repo):
    """The two-commit repository as a bare one behind a file:// URL (a network clone's stand-in git really fetches)."""
    work, first = git_repo
    bare = tmp_path / "up" / "acme" / "widgets.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare, first, git(work, "rev-parse", "HEAD")


def test_owner_name_of_forge_urls():
    assert owner_name("https://github.com/blake-hamm/lighthearted") == "blake-hamm/lighthearted"
    assert owner_name("https://github.com/blake-hamm/lighthearted.git") == "blake-hamm/lighthearted"
    assert owner_name("git@github.com:blake-hamm/kube-ai-stack.git") == "blake-hamm/kube-ai-stack"


def test_a_pinned_commit_is_fetched_once_then_cloned_from_the_cache(tmp_path, upstream, monkeypatch):
    bare, first, second = upstream
    url = bare.as_uri()
    cache = tmp_path / "cache"
    gitsource.FETCHES.clear()
    a = pin(url, first, cache, None)
    b = pin(url, first, cache, None)
    assert (a.commit, b.commit) == (first, first) and a.source == url and b.source == "cache"
    assert len(gitsource.FETCHES) == 1  # the second run made no fetch
    assert pin(url, "main", cache, None).commit == second and len(gitsource.FETCHES) == 1  # the branch is in the mirror
    # A commit pushed later is missing from the mirror: that, and only that, fetches again.
    work = tmp_path / "later"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    (work / "b.txt").write_text("new\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "three")
    git(work, "push", "-q", "origin", "main")
    assert pin(url, git(work, "rev-parse", "HEAD"), cache, None).source == url and len(gitsource.FETCHES) == 2


def test_mirrors_are_consulted_before_the_network(tmp_path, upstream):
    bare, first, _ = upstream
    mirrors = tmp_path / "mirrors" / "acme"
    mirrors.mkdir(parents=True)
    git(tmp_path, "--git-dir", str(bare), "bundle", "create", str(mirrors / "widgets.bundle"), "--all")
    gitsource.FETCHES.clear()
    got = pin("https://git.invalid/acme/widgets", first, tmp_path / "cache", tmp_path / "mirrors")
    assert got.commit == first and got.source.endswith("acme/widgets.bundle") and len(gitsource.FETCHES) == 1


def test_a_commit_no_source_has_is_one_line(tmp_path, upstream):
    bare, _, _ = upstream
    with pytest.raises(ConfigError, match=r"repository: 0123456789abcdef0123456789abcdef01234567 of .* is in none of its sources"):
        pin(bare.as_uri(), "0123456789abcdef0123456789abcdef01234567", tmp_path / "cache", None)


def test_the_seed_bundles_serve_a_url_task_offline(tmp_path, monkeypatch):
    from beyond_vibes.confinement import toolchain_dir

    monkeypatch.setenv("BV_TOOLCHAIN", str(toolchain_dir()))
    monkeypatch.setenv("BV_GIT_MIRRORS", str(SHARED))
    monkeypatch.setenv("BV_CACHE_DIR", str(tmp_path / "cache"))
    from beyond_vibes.settings import get_settings

    get_settings.cache_clear()
    task = load_task(str(write_task(tmp_path, "lh", repository={"url": "https://github.com/blake-hamm/lighthearted",
                                                                "ref": LIGHTHEARTED})), tmp_path / "tasks")
    gitsource.FETCHES.clear()
    try:
        with workspace(task, sandbox="none") as ws:
            assert ws.commit == LIGHTHEARTED and (ws.repo / "poetry.lock").exists()
        with workspace(task, sandbox="none") as ws:
            assert ws.commit == LIGHTHEARTED
    finally:
        get_settings.cache_clear()
    assert len(gitsource.FETCHES) == 1 and "lighthearted.bundle" in gitsource.FETCHES[0]


def test_simulate_refuses_a_missing_commit_before_any_model_loads(tmp_path):
    task = write_task(tmp_path, "gone", repository={"url": "https://git.invalid/acme/widgets",
                                                    "ref": "0123456789abcdef0123456789abcdef01234567"})
    env = {**os.environ, "BV_TASKS_DIR": str(tmp_path / "tasks"), "BV_CACHE_DIR": str(tmp_path / "cache"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "GIT_TERMINAL_PROMPT": "0",
           "BV_TOOLCHAIN": str(__import__("beyond_vibes.confinement").confinement.toolchain_dir())}
    out = subprocess.run([str(Path(sys.executable).parent / "beyond-vibes"), "simulate", "--task", str(task),
                          "--model", "smollm2-135m", "--config", str(REPO / "models.yaml")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "is in none of its sources" in out.stderr and "BV_GIT_MIRRORS" in out.stderr
    assert "llama-server" not in out.stdout + out.stderr and not (tmp_path / "mlflow.db").exists()  # nothing opened
