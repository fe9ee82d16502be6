"""An OpenAI-compatible API model (a second llama-server enforcing an API key) through the same path."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request

import pytest

from beyond_vibes import names as N
from beyond_vibes.catalog import EngineConfig, load_catalog
from beyond_vibes.runtime.process import ProcessRuntime
from beyond_vibes.runtime.proxy import DUMMY_KEY
from beyond_vibes.simulate import SimulateOptions, simulate
from beyond_vibes.store.resolve import resolve_model
from beyond_vibes.tasks import load_task
from beyond_vibes.tracking import tracking_client
from conftest import REPO, SMOLLM, all_logged_text, artifact_text, leaked, write_catalog

pytestmark = pytest.mark.integration
API_KEY = "sk-real-api-key-for-the-test-0123456789"


@pytest.fixture
def api_server(settings, tmp_path):
    """llama-server with --api-key: it answers 401 to any other key, so a 200 proves the proxy injected it."""
    model, quant = load_catalog(write_catalog(tmp_path, [SMOLLM])).choose("smollm2-135m")
    engine = EngineConfig(ctx=8192, threads=2, extra_args=["--api-key", API_KEY])
    with ProcessRuntime(settings).serve(resolve_model(model, quant, settings), engine) as server:
        yield server


def test_api_model_runs_through_the_proxy_and_the_agent_sees_a_dummy_key(settings, tmp_path, api_server, monkeypatch):
    monkeypatch.setenv("BV_TEST_API_KEY", API_KEY)
    spec = {"name": "remote-smollm", "family": "smollm", "provider": "openai", "model_id": "smollm2-135m",
            "base_url": api_server.base_url, "api_key_env": "BV_TEST_API_KEY", "context_window": 8192,
            "sampling": {"max_tokens": 64}, "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    model, quant = load_catalog(write_catalog(tmp_path, [spec])).choose(provider="openai")
    assert quant is None
    result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings,
                      SimulateOptions(max_turns=2, keep_workspace=True))
    try:
        pi_models = json.loads((result.workspace / "pi-agent" / "models.json").read_text())
        env_values = json.dumps(pi_models)
    finally:
        shutil.rmtree(result.workspace, ignore_errors=True)
    assert pi_models["providers"]["beyondvibes"]["apiKey"] == DUMMY_KEY and API_KEY not in env_values

    client, _ = tracking_client(settings)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and result.status == N.STATUS_FAILED
    assert run.data.tags[N.TAG_RUNTIME] == "api" and run.data.tags[N.TAG_PROVIDER] == "openai"
    proxied = [json.loads(x) for x in artifact_text(client, result.run_id, N.A_PROXY_REQUESTS).splitlines()]
    assert proxied and all(p["status"] == 200 for p in proxied)
    m = run.data.metrics
    expected_cost = m[N.M_TOKENS_PROMPT] * 1.0 / 1e6 + m[N.M_TOKENS_COMPLETION] * 2.0 / 1e6
    assert m[N.M_COST_USD] == pytest.approx(expected_cost) and m[N.M_COST_USD] > 0
    assert not leaked(all_logged_text(client, result.run_id, result.trace_id), [API_KEY])

    # Without the injected key the same server refuses the agent's dummy key.
    req = urllib.request.Request(f"{api_server.base_url}/chat/completions", method="POST",
                                 data=json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}).encode(),
                                 headers={"Authorization": f"Bearer {DUMMY_KEY}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 401


def test_missing_api_key_variable_is_a_config_error_before_any_run(settings, tmp_path, monkeypatch):
    from beyond_vibes.errors import ConfigError

    monkeypatch.delenv("BV_TEST_API_KEY", raising=False)
    spec = {"name": "remote", "provider": "openai", "model_id": "m", "base_url": "http://127.0.0.1:9/v1",
            "api_key_env": "BV_TEST_API_KEY"}
    model, quant = load_catalog(write_catalog(tmp_path, [spec])).choose("remote")
    with pytest.raises(ConfigError, match="BV_TEST_API_KEY is not set"):
        simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings)
    client, exp_id = tracking_client(settings)
    assert client.search_runs([exp_id]) == []
