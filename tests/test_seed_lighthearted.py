"""The lighthearted seed tasks against lazy answers: each check named in the task fails for the shortcut it exists
to catch (the soundness of every seed task is tests/test_seed_tasks.py's)."""

from __future__ import annotations

import subprocess

import pytest
from packaging.version import Version

from beyond_vibes.checks import run_checks
from beyond_vibes.checktools.poetry_deps_check import poetry_range, problems
from beyond_vibes.sandbox import workspace
from beyond_vibes.tasks import load_task
from conftest import REPO


@pytest.mark.parametrize("constraint, low, high", [
    ("^2.5.43", "2.5.43", "3"), ("^0.5.7", "0.5.7", "0.6"), ("^0.0.3", "0.0.3", "0.0.4"), ("^3.12", "3.12", "4"),
    ("~1.2.3", "1.2.3", "1.3"), ("~1.2", "1.2", "1.3"), ("~1", "1", "2"), ("~=1.2", "1.2", "2"), ("1.0.1", "1.0.1", "2"),
])
def test_poetry_constraints_mean_what_poetry_means(constraint, low, high):
    assert poetry_range(constraint) == (Version(low), Version(high))
    assert poetry_range("==1.4") == (Version("1.4"), None) and poetry_range("*") is None


OLD = {"tool": {"poetry": {"dependencies": {"python": "^3.12", "dspy": "^2.5.43", "ruff-like": "^0.5.7"},
                           "group": {"dev": {"dependencies": {"pytest": "^8.3.2"}}}}}}


def test_a_dropped_upper_bound_a_lost_group_and_a_left_poetry_section_each_name_their_problem():
    good = {"project": {"requires-python": ">=3.12,<4", "dependencies": ["dspy>=2.5.43,<3", "ruff_like~=0.5.7"]},
            "dependency-groups": {"dev": ["pytest>=8.3.2,<9"]}}
    assert problems(OLD, good) == []
    lazy = {"project": {"requires-python": ">=3.11", "dependencies": ["dspy>=2.5.43"]},
            "tool": {"poetry": {}}, "build-system": {"build-backend": "poetry.core.masonry.api"}}
    found = problems(OLD, lazy)
    assert "pyproject.toml still has [tool.poetry] sections" in found
    assert "pyproject.toml: build-system.build-backend is still 'poetry.core.masonry.api'" in found
    assert "project.requires-python: >=3.11 admits 4, which poetry's '^3.12' excludes (keep the upper bound: <4)" in found
    assert "dspy (project.dependencies): >=2.5.43 admits 3, which poetry's '^2.5.43' excludes (keep the upper bound: <3)" \
        in found
    assert "ruff-like (project.dependencies): missing" in found and "pytest (group dev): missing" in found
    moved = {**good, "dependency-groups": {"test": ["pytest>=8.3.2,<9"]}}
    assert problems(OLD, moved) == ["pytest (group dev): missing (found in group 'test' instead)"]
    raised = {**good, "project": {**good["project"], "dependencies": ["dspy>=2.6,<3", "ruff_like~=0.5.7"]}}
    assert problems(OLD, raised) == ["dspy (project.dependencies): <3,>=2.6 excludes 2.5.43, which poetry's '^2.5.43' "
                                     "admits"]



@pytest.mark.integration
def test_touching_uv_lock_and_deleting_poetry_lock_fails_what_matters():
    """The issue's shortcut: `touch uv.lock; rm poetry.lock` (plus a [project] table) passed two of the old four
    checks. Now only no_poetry_lock passes; the lock is not uv's, nothing installs, dependencies are gone."""
    task = load_task("poetry_to_uv", REPO / "tasks")
    with workspace(task) as ws:
        subprocess.run("touch uv.lock && rm poetry.lock && sed -i 's/^\\[tool.poetry\\]$/[project]/' pyproject.toml",
                       shell=True, cwd=ws.repo, check=True)
        checks = {c.name: c for c in run_checks(task.checks, ws)}
    assert checks["no_poetry_lock"].passed
    failed = {n for n, c in checks.items() if not c.passed}
    assert failed == {"dependencies_survive", "uv_lock_resolves", "uv_sync_frozen", "docs_and_ci_use_uv"}, failed
    assert "pyproject.toml still has [tool.poetry] sections" in checks["dependencies_survive"].output_tail
