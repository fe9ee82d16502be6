"""The recording proxy in front of a real llama-server: relay, pinning, timings, errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from beyond_vibes.catalog import EngineConfig, Sampling, load_catalog
from beyond_vibes.recorder import speed_metrics
from beyond_vibes.runtime.process import ProcessRuntime
from beyond_vibes.runtime.proxy import RecordingProxy, pin_sampling
from beyond_vibes.settings import Settings
from beyond_vibes.store.resolve import resolve_model
from conftest import SMOLLM, our_processes, write_catalog
from scripted_llm import ScriptedLLM, bash

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    settings = Settings()
    model, quant = load_catalog(write_catalog(tmp_path_factory.mktemp("cat"), [SMOLLM])).choose("smollm2-135m")
    with ProcessRuntime(settings).serve(resolve_model(model, quant, settings), EngineConfig(ctx=2048, threads=2)) as server:
        yield server
    assert our_processes() == []


def post(url: str, body: dict, key: str = "dummy") -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


CHAT = {"messages": [{"role": "user", "content": "Count from one to ten in words."}], "max_tokens": 24, "stream": True}


def sse_text(raw: bytes) -> str:
    out = ""
    for line in raw.decode().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            for c in json.loads(line[6:]).get("choices", []):
                out += (c.get("delta") or {}).get("content") or ""
    return out


def test_stream_relay_is_faithful_and_recorded(llama):
    direct = sse_text(post(f"{llama.base_url}/chat/completions", {**CHAT, "temperature": 0.0, "seed": 42})[1])
    with RecordingProxy(llama.base_url, llama.model_id, Sampling(temperature=0.0, seed=42)) as proxy:
        # The agent asks for temperature 1.3; the experiment pins 0.0, so the answer equals the direct one.
        status, raw = post(f"{proxy.base_url}/chat/completions", {**CHAT, "temperature": 1.3})
    assert status == 200 and sse_text(raw) == direct and direct
    [rec] = proxy.records
    assert rec.stream and rec.status == 200 and rec.request["temperature"] == 0.0 and rec.request["seed"] == 42
    assert rec.response_text == direct
    assert rec.completion_tokens == 24 and rec.prompt_tokens > 5  # usage asked for by the proxy
    assert rec.timings["predicted_n"] == 24 and rec.gen_tps == rec.timings["predicted_per_second"]
    assert 0 < rec.ttft_s < rec.duration_s and rec.finish_reason == "length"
    assert rec.proxy_overhead_ms < 50


def test_non_stream_and_get_pass_through(llama):
    with RecordingProxy(llama.base_url, llama.model_id, Sampling(max_tokens=8)) as proxy:
        status, raw = post(f"{proxy.base_url}/chat/completions", {**CHAT, "stream": False, "max_tokens": 500})
        with urllib.request.urlopen(f"{proxy.base_url}/models", timeout=10) as resp:
            models = json.loads(resp.read())
    body = json.loads(raw)
    assert status == 200 and body["usage"]["completion_tokens"] == 8  # max_tokens pinned to 8
    assert models["data"][0]["id"] == "smollm2-135m"
    completion, listing = proxy.records
    assert completion.completion_tokens == 8 and completion.response_text and completion.timings
    assert not listing.is_completion
    metrics = speed_metrics(proxy.records)
    assert metrics["tokens_completion"] == 8 and metrics["gen_tps"] == pytest.approx(completion.gen_tps)


def test_api_key_injected_and_tool_calls_parsed():
    with ScriptedLLM([bash("ls")], api_key="real-key-123456") as llm:
        with RecordingProxy(llm.base_url, "scripted", Sampling(), api_key="real-key-123456") as proxy:
            status, raw = post(f"{proxy.base_url}/chat/completions", {**CHAT, "stream": True}, key="dummy")
    assert status == 200
    assert llm.requests[0]["headers"]["Authorization"] == "Bearer real-key-123456"
    [rec] = proxy.records
    assert rec.response_tool_calls[0]["name"] == "bash" and json.loads(rec.response_tool_calls[0]["arguments"]) == {"command": "ls"}
    assert rec.finish_reason == "tool_calls" and rec.first_token_at is not None


def test_unreachable_upstream_is_a_502_and_a_recorded_error():
    with RecordingProxy("http://127.0.0.1:9/v1", "m", Sampling()) as proxy:
        status, raw = post(f"{proxy.base_url}/chat/completions", CHAT)
    assert status == 502 and b"upstream unreachable" in raw
    assert proxy.records[0].error and proxy.records[0].status == 502


def test_pin_sampling_keeps_the_rest():
    body = pin_sampling({"model": "x", "messages": [], "stream": True, "max_completion_tokens": 5, "top_k": 3},
                        Sampling(temperature=0.2, seed=None, top_p=0.9, max_tokens=100), "served")
    assert body == {"model": "served", "messages": [], "stream": True, "top_k": 3, "temperature": 0.2, "top_p": 0.9,
                    "max_tokens": 100, "stream_options": {"include_usage": True}}
