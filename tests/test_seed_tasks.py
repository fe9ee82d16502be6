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
