"""The seed's tasks on the seed's own repositories (bundles in ../shared/repos through BV_GIT_MIRRORS): each task
with a reference solution is sound (its checks fail on the pinned commit and pass after the solution), and a lazy
answer fails the checks it should."""

from __future__ import annotations

import pytest

from beyond_vibes.checks import run_checks
from beyond_vibes.sandbox import workspace
from beyond_vibes.tasks import load_task, load_tasks
from beyond_vibes.validate import validate_task
from conftest import REPO

pytestmark = pytest.mark.integration
SEED = [t.name for t in load_tasks(REPO / "tasks") if t.repository.url and t.solution]


@pytest.mark.parametrize("name", SEED)
def test_seed_task_is_sound_on_its_pinned_commit(name):
    s = validate_task(load_task(name, REPO / "tasks"))
    assert s.sound, s.problem
    assert not all(c.passed for c in s.before) and all(c.passed for c in s.after)


LAZY_PLAN = """# Auth plan
## Threat model
Attackers.
## Options
OIDC or sessions.
## Steps
1. Edit src/lighthearted/auth.py and app/middleware/session.py.
"""


def test_a_lazy_auth_plan_that_cites_invented_files_fails():
    task = load_task("auth_plan", REPO / "tasks")
    with workspace(task) as ws:
        (ws.repo / "docs").mkdir()
        (ws.repo / "docs" / "auth-plan.md").write_text(LAZY_PLAN)
        checks = {c.name: c for c in run_checks(task.checks, ws)}
    plan = checks["plan_sections_and_paths"]
    assert not plan.passed and "src/lighthearted/auth.py" in plan.output_tail and checks["no_source_changes"].passed


def test_tasks_list_shows_commit_offline_and_what_validate_proved(tmp_path, mathutils_repo):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import write_task

    task = write_task(tmp_path, "mine", repository={"path": str(mathutils_repo)},
                      checks=[{"name": "t", "command": "python -m pytest -q"}],
                      solution={"commands": ["sed -i 's|/ (len(values) - 1)|/ len(values)|' mathutils.py"]})
    write_task(tmp_path, "remote", repository={"url": "https://git.invalid/acme/widgets", "ref": "0" * 40},
               checks=[{"name": "t", "command": "true"}])
    write_task(tmp_path, "indexed", repository={"path": str(mathutils_repo)}, setup=["uv venv"], network="packages",
               checks=[{"name": "lock", "command": "uv lock --locked", "network": "packages"}])
    env = {**os.environ, "BV_TASKS_DIR": str(tmp_path / "tasks"), "BV_HOME": str(tmp_path / "home"), "COLUMNS": "250"}
    cli = lambda *a: subprocess.run([str(Path(sys.executable).parent / "beyond-vibes"), "tasks", *a], env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    assert cli("validate", str(task)).returncode == 0
    rows = {line.split("│")[1].strip(): line for line in cli("list").stdout.splitlines() if line.count("│") > 5}
    assert "proved 20" in rows["mine"] and "snapshot" in rows["mine"]
    assert "no: needs the network" in rows["remote"] and "000000000000" in rows["remote"]
    assert "needs only the package index (the agent, its setup, check lock); local" in rows["indexed"]
    task.write_text(task.read_text() + "\n# edited\n")
    assert "stale (task changed)" in cli("list").stdout
