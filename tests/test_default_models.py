"""The shipped demo models act: real Qwen2.5-Coder GGUFs (from PyPI chunk packages) on llama-server, driving real pi."""

from __future__ import annotations

import json

import pytest

from beyond_vibes import names as N
from beyond_vibes.catalog import load_catalog
from beyond_vibes.simulate import SimulateOptions, simulate
from beyond_vibes.tasks import load_task
from beyond_vibes.tracking import tracking_client
from conftest import REPO, artifact_text, our_processes

pytestmark = pytest.mark.integration
PI_TOOLS = {"read", "bash", "edit", "write"}


def longest_repeat(calls: list[dict]) -> int:
    """The longest run of identical consecutive tool calls (name and arguments), from the run's artifact."""
    best, run, last = 0, 0, None
    for c in calls:
        key = (c["name"], json.dumps(c["args"], sort_keys=True))
        run = run + 1 if key == last else 1
        best, last = max(best, run), key
    return best


def test_default_model_makes_real_tool_calls_and_its_loop_is_flagged(settings):
    catalog = load_catalog(REPO / "models.yaml")
    model, quant = catalog.choose()  # the catalog's default
    assert model.name == "qwen2.5-coder-0.5b"
    result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings,
                      SimulateOptions(max_turns=6), models_dir=REPO)
    client, _ = tracking_client(settings)
    calls = [json.loads(x) for x in artifact_text(client, result.run_id, N.A_TOOL_OUTPUTS).splitlines()]
    # pi really ran the tools the model called (the results are real file contents / command output).
    assert len(calls) >= 3 and {c["name"] for c in calls} <= PI_TOOLS
    assert result.metrics[N.M_TOOL_CALLS] == len(calls)
    assert result.status in (N.STATUS_FAILED, N.STATUS_SUCCESS)  # an outcome, not a harness error
    # The 0.5B repeats one call over and over: the detector must see what the artifact shows.
    assert longest_repeat(calls) >= 3
    assert result.metrics[N.M_LOOP_DETECTED] == 1.0
    assert our_processes() == []


def test_the_1_5b_coder_works_the_task_for_real(settings):
    """Runs until the checks pass or its turn budget ends. With the workspace at a host path the 1.5B ran the tests,
    fixed mean() and re-ran them in 2 of 3 runs; inside the sandbox (cwd /workspace, pi at /opt/bv/pi: the only change
    to its prompt) it re-ran the tests on every turn in 5 of 7 runs (3 and 6 turns). Either way the harness must
    tell: a real fix is in the diff, a repetition is flagged as a loop."""
    model, quant = load_catalog(REPO / "models.yaml").choose("qwen2.5-coder-1.5b")
    result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings,
                      SimulateOptions(max_turns=3, timeout_s=600), models_dir=REPO)
    client, _ = tracking_client(settings)
    calls = [json.loads(x) for x in artifact_text(client, result.run_id, N.A_TOOL_OUTPUTS).splitlines()]
    diff = artifact_text(client, result.run_id, N.A_DIFF)
    print(f"1.5B on fix_failing_test: {result.status}, checks {[(c.name, c.passed) for c in result.checks]}, "
          f"tools {[c['name'] for c in calls]}")
    assert result.status in (N.STATUS_SUCCESS, N.STATUS_FAILED) and len(calls) >= 2
    assert any(c["name"] == "bash" and "unittest" in json.dumps(c["args"]) for c in calls)  # it ran the tests
    tests_pass = next(c for c in result.checks if c.name == "tests_pass")
    edited = any(c["name"] in ("edit", "write") for c in calls)
    if tests_pass.passed:
        assert edited and "+    return sum(values) / len(values)" in diff and result.status == N.STATUS_SUCCESS
    else:
        assert result.status == N.STATUS_FAILED  # the model's outcome, not a harness error
    if not edited:  # the same test command every turn: the loop detector sees it
        assert len({json.dumps(c["args"], sort_keys=True) for c in calls}) == 1 and result.metrics[N.M_LOOP_DETECTED] == 1.0
    assert our_processes() == []
