"""The 1.5B demo coder (real GGUF, llama-server, real pi, in the sandbox) on real work: a seed task on its pinned
lighthearted commit and a task `tasks mine` made from a repository's history. The outcome is the model's; what is
asserted is that the harness records it end to end and calls it right (success exactly when every check passed,
never a harness error)."""

from __future__ import annotations

import json

import pytest

from beyond_vibes import names as N
from beyond_vibes.catalog import load_catalog
from beyond_vibes.mine import mine
from beyond_vibes.simulate import SimulateOptions, simulate
from beyond_vibes.tasks import load_task
from beyond_vibes.tracking import tracking_client
from conftest import REPO, artifact_text, our_processes
from test_mine import history  # noqa: F401  (the fixture: a calculator repository with four commits)

pytestmark = pytest.mark.integration


def run_1_5b(task, settings, max_turns: int):
    model, quant = load_catalog(REPO / "models.yaml").choose("qwen2.5-coder-1.5b")
    result = simulate(task, model, quant, settings, SimulateOptions(max_turns=max_turns, timeout_s=1500),
                      models_dir=REPO)
    client, _ = tracking_client(settings)
    run = client.get_run(result.run_id)
    calls = [json.loads(x) for x in artifact_text(client, result.run_id, N.A_TOOL_OUTPUTS).splitlines() if x]
    requests = [x for x in artifact_text(client, result.run_id, N.A_PROXY_REQUESTS).splitlines() if x]
    print(f"1.5B on {task.name}: {result.status}, checks {[(c.name, c.passed) for c in result.checks]}, "
          f"turns {result.metrics.get(N.M_TURNS)}, tools {[c['name'] for c in calls]}")
    assert run.info.status == "FINISHED" and run.data.tags[N.TAG_STATUS] == result.status
    assert result.status == (N.STATUS_SUCCESS if all(c.passed for c in result.checks) else N.STATUS_FAILED)
    assert run.data.tags[N.TAG_SANDBOX] == "bwrap" and run.data.params[N.PARAM_REPO_COMMIT] == task.repository.ref
    assert result.metrics[N.M_CHECKS_TOTAL] == len(task.checks) and len(requests) >= 1
    assert our_processes() == []
    return result, calls, artifact_text(client, result.run_id, N.A_DIFF)


def test_the_1_5b_on_poetry_to_uv_is_recorded_end_to_end(settings):
    task = load_task("poetry_to_uv", REPO / "tasks")
    result, calls, diff = run_1_5b(task, settings, max_turns=6)
    checks = {c.name: c for c in result.checks}
    # Whatever it did, the checks judged the real repository: a uv.lock only counts if uv made it for this project.
    if checks["uv_lock_resolves"].passed:
        assert "uv.lock" in diff
    if "poetry.lock" not in diff:
        assert not checks["no_poetry_lock"].passed


def test_the_1_5b_on_a_mined_task(settings, tmp_path, history):  # noqa: F811
    [kept] = [o for o in mine(history["repo"], None, 5, tmp_path / "mined") if o.kept]
    [path] = (tmp_path / "mined").glob("*.yaml")
    task = load_task(str(path), tmp_path / "mined")
    assert task.prompt.startswith("Add mul")
    result, calls, diff = run_1_5b(task, settings, max_turns=6)
    if result.status == N.STATUS_SUCCESS:
        assert "def mul" in diff and any(c["name"] in ("edit", "write") for c in calls)
