"""Success path: real pi against a scripted model that calls pi's real tools to fix the demo bug."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import pytest

from beyond_vibes import names as N
from beyond_vibes.catalog import load_catalog
from beyond_vibes.simulate import SimulateOptions, simulate
from beyond_vibes.tasks import load_task
from beyond_vibes.tracking import tracking_client
from conftest import FAKE_SECRETS, REPO, all_logged_text, artifact_text, leaked, our_processes, write_catalog, write_task
from scripted_llm import ScriptedLLM, Step, bash

pytestmark = pytest.mark.integration

FIX_SCRIPT = [
    bash("python3 -m unittest discover -s tests 2>&1 | tail -3"),
    Step(tool_calls=[{"name": "read", "arguments": {"path": "does_not_exist.py"}}]),  # a tool error
    Step(tool_calls=[{"name": "read", "arguments": {"path": "mathutils.py"}}]),
    Step(tool_calls=[{"name": "edit", "arguments": {"path": "mathutils.py", "edits": [
        {"oldText": "return sum(values) / (len(values) - 1)", "newText": "return sum(values) / len(values)"}]}}]),
    bash("env | sort > /dev/null; env"),  # the agent's environment, as its tools see it
    bash("python3 -m unittest discover -s tests 2>&1 | tail -3"),
    Step(content="Fixed the off-by-one in mean(): it divided by len - 1."),
]


def scripted_model(llm: ScriptedLLM, **extra) -> dict:
    return {"name": "scripted", "family": "test", "provider": "scripted", "model_id": llm.model_id,
            "base_url": llm.base_url, "context_window": 16384, **extra}


@pytest.fixture
def success_run(settings, tmp_path):
    with ScriptedLLM(FIX_SCRIPT) as llm:
        catalog = load_catalog(write_catalog(tmp_path, [scripted_model(llm)]))
        model, quant = catalog.choose("scripted")
        task = load_task("fix_failing_test", REPO / "tasks")
        result = simulate(task, model, quant, settings)
    return result, llm


def test_pi_really_fixes_the_repo_and_the_run_succeeds(settings, success_run):
    result, llm = success_run
    assert result.status == N.STATUS_SUCCESS, result.error
    assert [c.passed for c in result.checks] == [True, True]
    client, _ = tracking_client(settings)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[N.TAG_STATUS] == "success"
    assert run.data.metrics[N.M_SUCCESS] == 1.0
    assert run.data.metrics[N.M_TOOL_CALLS] == 6
    assert run.data.metrics[N.M_TOOL_ERRORS] == 1
    assert run.data.metrics[N.M_TURNS] == 7
    diff = artifact_text(client, result.run_id, N.A_DIFF)
    assert "+    return sum(values) / len(values)" in diff
    # pi was pointed at the proxy: every request reached the model with pinned sampling.
    assert len(llm.requests) == 7
    assert all(r["body"]["temperature"] == 0.0 and r["body"]["seed"] == 42 for r in llm.requests)


def test_trace_has_tool_spans_with_args_results_and_error_flags(settings, success_run):
    result, _ = success_run
    mlflow.flush_trace_async_logging()
    trace = mlflow.get_trace(result.trace_id)
    spans = trace.data.spans
    root = next(s for s in spans if s.parent_id is None)
    assert root.span_type == "AGENT" and root.name == "simulation"
    assert "mean" in json.dumps(root.outputs)
    llm_spans = [s for s in spans if s.span_type == "LLM"]
    tool_spans = [s for s in spans if s.span_type == "TOOL"]
    assert [s.name for s in llm_spans] == [f"turn-{i}" for i in range(1, 8)]
    # Named by what they did.
    assert [s.name for s in tool_spans] == [
        "bash: python3 -m unittest discover -s tests 2>&1 | tail -3", "read: does_not_exist.py", "read: mathutils.py",
        "edit: mathutils.py", "bash: env | sort > /dev/null; env", "bash: python3 -m unittest discover -s tests 2>&1 | tail -3"]
    edit = tool_spans[3]
    assert edit.inputs["path"] == "mathutils.py" and edit.attributes["is_error"] is False
    missing = tool_spans[1]
    assert missing.attributes["is_error"] is True and missing.status.status_code == "ERROR"
    assert "ENOENT" in missing.status.description
    # Results keep their line breaks in the UI: a fenced block, lines intact.
    last = tool_spans[-1].outputs
    assert last.startswith("```\n") and last.endswith("\n```") and "\nOK" in last
    assert all(s.parent_id == root.span_id for s in llm_spans + tool_spans)
    # The trace and the run point at each other.
    assert trace.info.request_metadata.get("mlflow.sourceRun") == result.run_id
    client, _ = tracking_client(settings)
    assert client.get_run(result.run_id).data.tags[N.TAG_TRACE_ID] == result.trace_id


def test_no_secret_reaches_the_agent_or_mlflow(settings, success_run):
    result, llm = success_run
    client, _ = tracking_client(settings)
    tool_outputs = artifact_text(client, result.run_id, N.A_TOOL_OUTPUTS)
    env_dump = [json.loads(line) for line in tool_outputs.splitlines() if "env | sort" in line][0]["result"]
    assert "PATH=" in env_dump and "HOME=" in env_dump  # the dump really is the agent's environment
    for name in FAKE_SECRETS:
        assert f"{name}=" not in env_dump
    assert not leaked(env_dump, list(FAKE_SECRETS.values()))
    assert not leaked(all_logged_text(client, result.run_id, result.trace_id), list(FAKE_SECRETS.values()))
    assert not leaked(json.dumps(llm.requests), list(FAKE_SECRETS.values()))


def test_secrets_in_a_task_check_environment(settings, tmp_path, mathutils_repo):
    """A task check prints its environment (the sandbox's, built for it): none of the secrets are in it."""
    task_file = write_task(tmp_path, "dump_env", repository={"path": str(mathutils_repo)},
                           checks=[{"name": "dump", "command": "env | sort"}])
    with ScriptedLLM([Step(content="Nothing to do.")]) as llm:
        catalog = load_catalog(write_catalog(tmp_path, [scripted_model(llm)]))
        model, quant = catalog.choose("scripted")
        result = simulate(load_task(str(task_file), tmp_path / "tasks"), model, quant, settings)
    text = result.checks[0].output_tail
    assert "PATH=/opt/bv/toolchain/bin:" in text and "BV_BASE_COMMIT=" in text and "HOME=/home/agent" in text
    assert not leaked(text, list(FAKE_SECRETS.values())) and not any(f"{k}=" in text for k in FAKE_SECRETS)
    client, _ = tracking_client(settings)
    assert not leaked(all_logged_text(client, result.run_id, result.trace_id), list(FAKE_SECRETS.values()))
    assert our_processes() == []


def test_hallucinated_tools_and_loops_are_counted(settings, tmp_path):
    steps = [Step(tool_calls=[{"name": "grep_everything", "arguments": {"q": "mean"}}]),
             bash("ls"), bash("ls"), bash("ls"), Step(content="I keep listing files.")]
    with ScriptedLLM(steps) as llm:
        model, quant = load_catalog(write_catalog(tmp_path, [scripted_model(llm)])).choose("scripted")
        result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings)
    m = result.metrics
    assert (m[N.M_TOOL_CALLS], m[N.M_TOOL_ERRORS], m[N.M_HALLUCINATED_TOOL_CALLS], m[N.M_LOOP_DETECTED]) == (4, 1, 1, 1)
    assert result.status == N.STATUS_FAILED
    trace = mlflow.get_trace(result.trace_id)
    ghost = next(s for s in trace.data.spans if s.name == "grep_everything")
    assert ghost.attributes["known_tool"] is False and "not found" in json.dumps(ghost.outputs)


def test_turn_budget_aborts_the_agent(settings, tmp_path):
    with ScriptedLLM([bash("echo step")] * 10) as llm:
        model, quant = load_catalog(write_catalog(tmp_path, [scripted_model(llm)])).choose("scripted")
        result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings,
                          SimulateOptions(max_turns=3))
    assert result.metrics[N.M_TURNS] == 3 and len(llm.requests) == 3
    summary = json.loads(artifact_text(tracking_client(settings)[0], result.run_id, N.A_SUMMARY))
    assert summary["agent_stop_reason"] == "aborted"


def test_ctrl_c_ends_the_run_killed_and_stops_everything(settings, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    with ScriptedLLM([Step(content="thinking...", delay_s=60)]) as llm:  # a model that hangs
        catalog = write_catalog(tmp_path, [scripted_model(llm)])
        env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "BV_EXPERIMENT": settings.mlflow_experiment,
               "BV_HOME": str(settings.home), "BV_TASKS_DIR": str(REPO / "tasks"), "PYTHONFAULTHANDLER": "1"}
        exe = Path(sys.executable).parent / "beyond-vibes"
        # Ctrl-C as a terminal sends it: to a process whose SIGINT is not ignored (a test run started in the
        # background, `cmd &`, inherits SIGINT ignored, and Python then rightly keeps ignoring it).
        proc = subprocess.Popen([str(exe), "simulate", "--task", "fix_failing_test", "--config", str(catalog)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 120
        while not llm.requests and time.monotonic() < deadline:  # wait until pi is waiting on the model
            time.sleep(0.1)
        assert llm.requests, proc.stderr.read() if proc.poll() is not None else "pi never called the model"
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # say where it hung: faulthandler dumps every thread on SIGABRT
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=30)
            pytest.fail("simulate did not end within 60 s of Ctrl-C; its threads:\n" + err.decode(errors="replace")[-6000:])
    assert proc.returncode != 0
    client, exp_id = tracking_client(settings)
    [run] = client.search_runs([exp_id])
    assert run.info.status == "KILLED" and run.data.tags[N.TAG_STATUS] == "error"
    assert "interrupted" in run.data.tags["bv.error"]
    assert our_processes() == []
