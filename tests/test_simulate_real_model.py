"""End to end on real parts: llama-server + SmolLM2-135M + pi + SQLite MLflow + a demo task repo."""

from __future__ import annotations

import json
import statistics

import mlflow
import pytest

from beyond_vibes import names as N
from beyond_vibes.catalog import load_catalog
from beyond_vibes.errors import SimulationError
from beyond_vibes.simulate import SimulateOptions, simulate
from beyond_vibes.store.resolve import resolve_model
from beyond_vibes.tasks import load_task
from beyond_vibes.tracking import tracking_client
from conftest import FAKE_SECRETS, REPO, SMOLLM, all_logged_text, artifact_text, leaked, our_processes, server_run, write_catalog

pytestmark = pytest.mark.integration

DESIGN_TAGS = [N.TAG_TASK, N.TAG_ARCHETYPE, N.TAG_MODEL, N.TAG_FAMILY, N.TAG_QUANT, N.TAG_ENGINE, N.TAG_RUNTIME,
               N.TAG_AGENT, N.TAG_RUN_KEY, N.TAG_REPEAT, N.TAG_STATUS]
DESIGN_PARAMS = [N.PARAM_ENGINE_ARGS, N.PARAM_TEMPERATURE, N.PARAM_SEED, N.PARAM_MAX_TURNS, N.PARAM_LLAMA_BUILD,
                 N.PARAM_MODEL_SHA256, N.PARAM_REPO_COMMIT]


@pytest.fixture
def smollm(tmp_path):
    catalog = load_catalog(write_catalog(tmp_path, [SMOLLM]))
    return catalog.choose("smollm2-135m")


def test_real_model_run_is_recorded_completely(settings, smollm):
    model, quant = smollm
    task = load_task("fix_failing_test", REPO / "tasks")
    result = simulate(task, model, quant, settings, SimulateOptions(max_turns=3))
    client, _ = tracking_client(settings)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    # SmolLM2-135M answers in prose and calls no tools: the bug stays, the tests keep failing.
    assert result.status == N.STATUS_FAILED
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert [t for t in DESIGN_TAGS if t not in tags] == []
    assert tags[N.TAG_RUNTIME] == "process" and tags[N.TAG_ENGINE] == "cpu" and tags[N.TAG_QUANT] == "Q4_1"
    assert tags[N.TAG_STATUS] == "failed" and len(tags[N.TAG_RUN_KEY]) == 64
    assert [p for p in DESIGN_PARAMS if p not in params] == []
    assert params[N.PARAM_LLAMA_BUILD] not in ("", "unknown")
    assert len(params[N.PARAM_MODEL_SHA256]) == 64 and len(params[N.PARAM_REPO_COMMIT]) == 40
    assert "--jinja" in params[N.PARAM_ENGINE_ARGS] and "--ctx-size 8192" in params[N.PARAM_ENGINE_ARGS]
    # Measured values are logged; unmeasured ones are absent, never a fake 0: no GPU tool here, no pricing.
    assert [m for m in N.ALL_METRICS if m not in metrics] == [N.M_PEAK_VRAM_MB, N.M_COST_USD, N.M_SETUP_S]  # no setup: absent
    model_mb = resolve_model(model, quant, settings).path.stat().st_size / 2**20
    # llama-server touches every weight while decoding: its tree's RSS is above the file's size.
    assert metrics[N.M_LOAD_S] > 0 and model_mb < metrics[N.M_PEAK_RSS_MB] < 4 * model_mb + 1000
    assert metrics[N.M_CHECKS_TOTAL] == 2 and metrics[N.M_CHECKS_PASSED] == 1
    assert metrics[N.M_TURNS] >= 1

    artifacts = {f.path for f in client.list_artifacts(result.run_id)}
    for name in (N.A_DIFF, N.A_CHECKS, N.A_AGENT_EVENTS, N.A_PROXY_REQUESTS, N.A_SERVER_LOG):
        assert name in artifacts
    # The run keeps the server log written during it (its requests); the server's own record has the whole log.
    assert "stop processing" in artifact_text(client, result.run_id, N.A_SERVER_LOG)
    server = server_run(settings, tags[N.TAG_SERVER_ID])
    assert server.data.tags[N.TAG_KIND] == "server" and server.info.status == "FINISHED"
    assert server.data.params[N.PARAM_LLAMA_BUILD] == params[N.PARAM_LLAMA_BUILD]
    assert server.data.metrics[N.M_LOAD_S] == pytest.approx(metrics[N.M_LOAD_S], abs=1e-3)
    assert "loading model" in artifact_text(client, server.info.run_id, N.A_SERVER_LOG)
    checks = json.loads(artifact_text(client, result.run_id, N.A_CHECKS))
    assert [c["name"] for c in checks] == ["tests_pass", "tests_untouched"] and checks[0]["exit_code"] != 0
    events = [json.loads(x) for x in artifact_text(client, result.run_id, N.A_AGENT_EVENTS).splitlines()]
    assert events[0]["type"] == "session" and events[-1]["type"] == "agent_end"

    # The metrics are exactly what the proxy recorded, request by request.
    proxied = [json.loads(x) for x in artifact_text(client, result.run_id, N.A_PROXY_REQUESTS).splitlines()]
    completions = [p for p in proxied if p["path"].endswith("/chat/completions")]
    assert completions and all(p["status"] == 200 and p["stream"] for p in completions)
    assert all(p["request"]["temperature"] == 0.0 and p["request"]["seed"] == 42 for p in completions)
    assert all(p["timings"]["predicted_n"] > 0 for p in completions)  # llama-server's own timings came through
    assert metrics[N.M_TOKENS_PROMPT] == sum(p["prompt_tokens"] for p in completions) > 0
    assert metrics[N.M_TOKENS_COMPLETION] == sum(p["completion_tokens"] for p in completions) > 0
    assert metrics[N.M_TTFT_S] == round(statistics.median(p["ttft_s"] for p in completions), 3)
    assert metrics[N.M_GEN_TPS] > 0 and metrics[N.M_PROMPT_TPS] > 0

    # The trace: AGENT root, one LLM span per proxied request with token usage and TTFT.
    mlflow.flush_trace_async_logging()
    trace = mlflow.get_trace(result.trace_id)
    root = next(s for s in trace.data.spans if s.parent_id is None)
    assert root.span_type == "AGENT" and "unit tests" in json.dumps(root.inputs)
    llm_spans = sorted((s for s in trace.data.spans if s.span_type == "LLM"), key=lambda s: s.start_time_ns)
    assert len(llm_spans) == len(completions)
    for span, rec in zip(llm_spans, completions):
        usage = span.attributes["mlflow.chat.tokenUsage"]
        assert usage["input_tokens"] == rec["prompt_tokens"] and usage["output_tokens"] == rec["completion_tokens"]
        assert span.attributes["ttft_s"] == round(rec["ttft_s"], 3)
    assert trace.info.tags[N.TAG_TASK] == "fix_failing_test" and trace.info.tags[N.TAG_MODEL] == "smollm2-135m"
    assert tags[N.TAG_TRACE_ID] == result.trace_id
    assert not leaked(all_logged_text(client, result.run_id, result.trace_id), list(FAKE_SECRETS.values()))
    assert our_processes() == []


def test_timeout_ends_the_run_and_leaves_no_process(settings, smollm):
    model, quant = smollm
    model = model.model_copy(update={"sampling": model.sampling.model_copy(update={"max_tokens": 4000})})
    task = load_task("fix_failing_test", REPO / "tasks")
    result = simulate(task, model, quant, settings, SimulateOptions(timeout_s=2))
    client, _ = tracking_client(settings)
    run = client.get_run(result.run_id)
    assert result.status == N.STATUS_TIMEOUT
    assert run.info.status == "FINISHED" and run.data.tags[N.TAG_STATUS] == "timeout"
    assert 2 <= run.data.metrics[N.M_WALL_S] < 60
    assert our_processes() == []


def test_a_server_that_cannot_start_still_ends_the_run(settings, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)  # not a model llama-server can load
    spec = {**SMOLLM, "name": "broken", "quant_tags": ["Q4_1"], "sources": {"Q4_1": {"path": str(broken)}}}
    model, quant = load_catalog(write_catalog(tmp_path, [spec])).choose("broken")
    with pytest.raises(SimulationError, match="llama-server exited with code"):
        simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings)
    # A server that never served leaves no half-made record: no simulation run, no server run.
    client, exp_id = tracking_client(settings)
    assert client.search_runs([exp_id]) == []
    servers = client.get_experiment_by_name(f"{settings.mlflow_experiment}-servers")
    assert servers is None or client.search_runs([servers.experiment_id]) == []
    assert our_processes() == []
