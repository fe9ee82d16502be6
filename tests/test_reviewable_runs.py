"""What a reviewer sees in MLflow, checked through MLflow's API on real runs (real pi, real git, a scripted model):
the trace alone tells the outcome and why, a `checks` span follows the turns, the run has a description, run
names lead with model:quant, numbers are rounded, unmeasured values are absent."""

from __future__ import annotations

import json

import mlflow
import pytest

from beyond_vibes import names as N
from beyond_vibes.catalog import load_catalog
from beyond_vibes.simulate import SimulateOptions, simulate
from beyond_vibes.tasks import load_task
from beyond_vibes.tracking import tracking_client
from conftest import REPO, artifact_text, write_catalog
from scripted_llm import ScriptedLLM, Step, bash
from test_success_path import FIX_SCRIPT

pytestmark = pytest.mark.integration


def run_scripted(settings, tmp_path, steps, options=None, api_key=None, **spec):
    with ScriptedLLM(steps, api_key=api_key) as llm:
        model_spec = {"name": "scripted", "family": "test", "provider": "scripted", "model_id": llm.model_id,
                      "base_url": llm.base_url, "context_window": 16384, **spec}
        model, quant = load_catalog(write_catalog(tmp_path, [model_spec])).choose("scripted")
        result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings, options)
    client, _ = tracking_client(settings)
    mlflow.flush_trace_async_logging()
    return result, client.get_run(result.run_id), mlflow.get_trace(result.trace_id)


def root_of(trace):
    return next(s for s in trace.data.spans if s.parent_id is None)


def checks_of(trace):
    group = next(s for s in trace.data.spans if s.name == "checks")
    return group, [s for s in trace.data.spans if s.parent_id == group.span_id]


def test_a_success_reads_as_one(settings, tmp_path):
    result, run, trace = run_scripted(settings, tmp_path, FIX_SCRIPT)
    root = root_of(trace)
    assert trace.info.state == "OK" and root.status.status_code == "OK"
    out = root.outputs
    assert out["status"] == "success" and out["reason"] is None
    assert [(c["name"], c["passed"]) for c in out["checks"]] == [("tests_pass", True), ("tests_untouched", True)]
    assert "+    return sum(values) / len(values)" in out["diff"] and out["diff"].startswith("```diff\n")
    assert root.inputs["task"] == "fix_failing_test" and "fix_the_code" in root.inputs["guidelines"]
    group, checks = checks_of(trace)
    assert group.parent_id == root.span_id and [c.name for c in checks] == ["tests_pass", "tests_untouched"]
    last_turn = max(s.end_time_ns for s in trace.data.spans if s.span_type in ("LLM", "TOOL"))
    assert group.start_time_ns >= last_turn  # after the agent's turns
    assert all(c.status.status_code == "OK" and c.outputs.startswith("passed (exit 0)") for c in checks)
    # The run: its name leads with model:quant, a description says the same as the trace.
    assert run.info.run_name == "scripted:api · fix_failing_test"
    note = run.data.tags[N.TAG_DESCRIPTION]
    assert note.startswith("### SUCCESS") and "| `tests_pass` | pass (exit 0)" in note
    assert f"selectedEvaluationId={result.trace_id}" in note and "7 turns, 6 tool calls (1 errors" in note
    # The three durations agree: run start/end, wall_s, the trace.
    wall = run.data.metrics[N.M_WALL_S]
    assert (run.info.end_time - run.info.start_time) / 1000 == pytest.approx(wall, abs=0.02)
    assert trace.info.execution_duration / 1000 == pytest.approx(wall, abs=0.02)
    # The diff is an artifact the UI previews (.txt), and it is in the trace.
    assert "+    return sum(values) / len(values)" in artifact_text(tracking_client(settings)[0], run.info.run_id, "diff.txt")
    # The experiment carries the review view: the runs table opens with outcome and key numbers as columns.
    client, exp_id = tracking_client(settings)
    view = json.loads(client.get_experiment(exp_id).tags["mlflow.sharedViewState.beyond-vibes"])
    assert {"tags.`bv.status`", "metrics.`success`", "metrics.`gen_tps`"} <= set(view["selectedColumns"])


def test_failed_checks_are_an_error_trace_that_says_which_and_why(settings, tmp_path):
    result, run, trace = run_scripted(settings, tmp_path, [bash("ls"), Step(content="All good, nothing to fix.")])
    root = root_of(trace)
    why = "checks failed: tests_pass (ZeroDivisionError: division by zero)"
    assert result.status == "failed" and trace.info.state == "ERROR"
    assert root.status.status_code == "ERROR" and root.status.description == why
    assert root.outputs["reason"] == why and run.data.tags[N.TAG_REASON] == why
    group, checks = checks_of(trace)
    assert group.status.status_code == "ERROR" and group.outputs == "1/2 checks passed"
    failed = next(c for c in checks if c.name == "tests_pass")
    assert failed.status.description == "ZeroDivisionError: division by zero"
    assert "```" in failed.outputs and "\nFAILED (" in failed.outputs  # the output tail, line breaks kept
    note = run.data.tags[N.TAG_DESCRIPTION]
    assert note.startswith(f"### FAILED: {why}") and "| `tests_pass` | FAIL (exit 1) | ZeroDivisionError" in note
    assert run.info.status == "FINISHED"


def test_a_timeout_says_so(settings, tmp_path):
    result, run, trace = run_scripted(settings, tmp_path, [Step(content="...", delay_s=30)], SimulateOptions(timeout_s=2))
    root = root_of(trace)
    assert result.status == "timeout" and trace.info.state == "ERROR"
    assert root.status.description == "timed out after 2 s" == run.data.tags[N.TAG_REASON]
    assert run.data.tags[N.TAG_DESCRIPTION].startswith("### TIMEOUT: timed out after 2 s")


def test_an_error_says_what_broke_and_unmeasured_values_are_absent(settings, tmp_path, monkeypatch):
    # The endpoint wants a key the catalog does not give (401): the model request fails, the run is an error.
    result, run, trace = run_scripted(settings, tmp_path, [bash("ls")], api_key="the-real-key-0123456789")
    root = root_of(trace)
    assert result.status == "error" and run.info.status == "FAILED" and trace.info.state == "ERROR"
    assert root.status.description.startswith("the model request failed: ") and "401" in root.status.description
    # Not measured, not logged: no pricing, no GPU tool, nothing loaded (an API), no tokens (nothing answered).
    for name in (N.M_COST_USD, N.M_PEAK_VRAM_MB, N.M_LOAD_S, N.M_PEAK_RSS_MB, N.M_TTFT_S, N.M_GEN_TPS, N.M_TOKENS_PROMPT):
        assert name not in run.data.metrics, name
    assert "n/a" in run.data.tags[N.TAG_DESCRIPTION]


def test_metrics_are_rounded_to_what_is_meaningful(settings, tmp_path):
    _, run, _ = run_scripted(settings, tmp_path, FIX_SCRIPT)
    m = run.data.metrics
    for name, digits in ((N.M_TTFT_S, 3), (N.M_GEN_TPS, 1), (N.M_PROMPT_TPS, 1), (N.M_WALL_S, 2)):
        if name in m:
            assert round(m[name], digits) == m[name], (name, m[name])


def test_turn_spans_do_not_repeat_the_conversation(settings, tmp_path):
    """A 12-turn run: each LLM span shows the messages new in its turn; earlier ones are referenced."""
    steps = [bash(f"echo step {i}; seq 1 40") for i in range(11)] + [Step(content="Done.")]
    result, run, trace = run_scripted(settings, tmp_path, steps, SimulateOptions(max_turns=12))
    turns = sorted((s for s in trace.data.spans if s.span_type == "LLM"), key=lambda s: s.start_time_ns)
    assert len(turns) == 12
    requests = [json.loads(x)["request"] for x in
                artifact_text(tracking_client(settings)[0], run.info.run_id, N.A_PROXY_REQUESTS).splitlines()]
    shown = 0
    for span, request in zip(turns, requests):
        new = span.inputs["messages"]
        assert new == request["messages"][shown:]
        assert len(new) <= 3 or not shown  # after the first: the last answer and its tool results
        shown = len(request["messages"])
    assert turns[-1].inputs["earlier_messages"].startswith(f"{len(requests[-1]['messages']) - len(turns[-1].inputs['messages'])} ")
    full = sum(len(json.dumps(r["messages"])) for r in requests)
    light = sum(len(json.dumps(s.inputs["messages"])) for s in turns)
    assert light * 4 < full  # the whole conversation 12 times over vs once
