"""The recording proxy in front of a real llama-server: relay, pinning, timings, errors."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request

import pytest

from beyond_vibes.catalog import EngineConfig, Sampling, load_catalog
from beyond_vibes.record import speed_metrics
from beyond_vibes.runtime.process import ProcessRuntime
from beyond_vibes.runtime.proxy import ProxyRecord, RecordingProxy, pin_sampling
from beyond_vibes.settings import Settings
from beyond_vibes.store.resolve import resolve_model
from conftest import SMOLLM, our_processes, write_catalog
from scripted_llm import ScriptedLLM, Step, bash

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
    assert rec.timings["predicted_n"] == 24 and rec.token_chunks >= 20
    # Two independent measurements of one request agree: llama-server's own timing, and the stream as seen
    # on the wire (first to last token chunk), which is what a server without timings is measured by.
    wire = dataclasses.replace(rec, timings={})
    assert wire.gen_tps == pytest.approx(rec.gen_tps, rel=0.5)
    assert 0 < rec.ttft_s < rec.duration_s and rec.finish_reason == "length"
    assert rec.proxy_overhead_ms < 50


def test_the_prompt_cache_is_recorded_and_cold_and_warm_ttft_are_apart(llama):
    """The same prompt twice on one server: the second request is served its prefix from llama-server's cache;
    the records say how much, and the run's TTFT is split into cold (nothing cached) and warm."""
    long_chat = {**CHAT, "messages": [{"role": "system", "content": "You answer briefly. " * 60}, *CHAT["messages"]]}
    with RecordingProxy(llama.base_url, llama.model_id, Sampling(max_tokens=4)) as proxy:
        for _ in range(2):
            post(f"{proxy.base_url}/chat/completions", {**long_chat, "stream": True})
    first, second = proxy.records
    assert first.cached is not None and second.cached > first.cached  # llama-server's timings.cache_n
    assert second.timings["prompt_n"] < first.timings["prompt_n"]  # only the uncached tokens were processed
    m = speed_metrics(proxy.records)
    assert m["tokens_prompt_cached"] == first.cached + second.cached
    if first.cached == 0:  # a fresh slot: one cold and one warm request
        assert m["ttft_cold_s"] == first.ttft_s and m["ttft_warm_s"] == second.ttft_s
    # An API that reports cached tokens in its usage: the stream's prompt speed counts only the uncached ones.
    api = dataclasses.replace(second, timings={}, cached_prompt_tokens=second.prompt_tokens - 10)
    assert api.cached == second.prompt_tokens - 10 and api.prompt_tps == pytest.approx(10 / api.ttft_s)


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
    assert not listing.is_completion and not completion.stream
    # Not streamed: the answer arrives whole, so TTFT is the server's prompt time, never the whole latency.
    assert completion.ttft_s == pytest.approx(completion.timings["prompt_ms"] / 1000)
    assert completion.ttft_s < completion.duration_s
    metrics = speed_metrics(proxy.records)
    assert metrics["tokens_completion"] == 8 and metrics["ttft_s"] == completion.ttft_s
    # Without server timings a non-streamed answer says nothing about speed: absent, not invented.
    bare = dataclasses.replace(completion, timings={})
    assert bare.ttft_s is None and bare.gen_tps is None and bare.prompt_tps is None
    assert set(speed_metrics([bare])) == {"tokens_prompt", "tokens_completion", "requests", "requests_with_usage",
                                          "tokens_prompt_cached"}  # the usage says it too
    assert completion.cached is not None and "tokens_prompt_cached" in metrics


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


def _record(i: int, **kw) -> ProxyRecord:
    return ProxyRecord(index=i, method="POST", path="/v1/chat/completions", started_at=100.0, usage_reported=True, **kw)


def test_speed_over_several_requests_is_total_tokens_over_total_time():
    """Hand-computed: 100 tokens in 1 s and 10 tokens in 10 s is 110 / 11 = 10 tokens/s (a mean of the two rates,
    55, would hide the slow request)."""
    fast = _record(0, stream=True, timings={"prompt_n": 300, "prompt_per_second": 300.0, "predicted_n": 100,
                                            "predicted_per_second": 100.0}, first_token_at=101.0, ended_at=102.0)
    slow = _record(1, stream=True, timings={"prompt_n": 30, "prompt_per_second": 3.0, "predicted_n": 10,
                                            "predicted_per_second": 1.0}, first_token_at=103.0, ended_at=113.0)
    m = speed_metrics([fast, slow])
    assert m["gen_tps"] == pytest.approx(10.0) and m["prompt_tps"] == pytest.approx(330 / 11)
    assert m["ttft_s"] == pytest.approx(2.0)  # median of 1.0 and 3.0


def test_speed_without_server_timings_comes_from_the_stream():
    # An API without `timings`: 41 tokens, first chunk at +0.5 s, last at +2.5 s -> 40 tokens / 2 s = 20 tokens/s;
    # the proxy's own end (+9 s, e.g. a slow client) does not enter.
    streamed = _record(0, stream=True, prompt_tokens=200, completion_tokens=41, first_token_at=100.5,
                       last_token_at=102.5, token_chunks=41, ended_at=109.0)
    assert streamed.gen_tps == pytest.approx(20.0) and streamed.ttft_s == pytest.approx(0.5)
    assert streamed.prompt_tps == pytest.approx(400.0)
    # Everything in one chunk (a buffering API): nothing to measure a rate on.
    burst = _record(1, stream=True, completion_tokens=500, first_token_at=100.5, last_token_at=100.5, token_chunks=1,
                    ended_at=100.6)
    assert burst.gen_tps is None
    m = speed_metrics([streamed, burst])
    assert m["gen_tps"] == pytest.approx(20.0) and m["tokens_completion"] == 541
    # No usage reported at all: token counts are unknown, not zero.
    assert "tokens_prompt" not in speed_metrics([dataclasses.replace(streamed, usage_reported=False)])
    # One of two requests reported none: a total would count it as 0 tokens, so there is none; the counts say why.
    partial = speed_metrics([streamed, dataclasses.replace(burst, usage_reported=False)])
    assert "tokens_prompt" not in partial and "tokens_completion" not in partial
    assert (partial["requests"], partial["requests_with_usage"]) == (2, 1)


@pytest.mark.parametrize("stream", [False, True])
def test_a_record_is_complete_when_its_client_has_the_answer(stream):
    """quick-eval reads the records the moment its last answer is in (CI once saw latency 0.0: the proxy wrote the
    answer, then stamped its end). Each record must be whole before its client sees the end of the answer."""
    from scripted_llm import Step

    with ScriptedLLM([Step(content="four words of answer")]) as llm:
        with RecordingProxy(llm.base_url, "scripted", Sampling()) as proxy:
            for i in range(40):
                status, _ = post(f"{proxy.base_url}/chat/completions", {**CHAT, "stream": stream})
                rec = proxy.records[i]  # read at once, as quick-eval does
                assert status == 200 and rec.ended_at > rec.started_at, i
                assert rec.completion_tokens > 0 and rec.response_text == "four words of answer", i


def test_the_proxy_keeps_one_upstream_connection_alive_across_requests(llama):
    """TTFT measures the model, not a TCP/TLS set-up: sequential requests reuse one kept-alive upstream
    connection. (llama-server closes a connection after a streamed answer; the next request notices and asks on a
    fresh one, and no request fails.)"""
    with RecordingProxy(llama.base_url, llama.model_id, Sampling(max_tokens=2)) as proxy:
        for _ in range(3):
            assert post(f"{proxy.base_url}/chat/completions", {**CHAT, "stream": False})[0] == 200
        assert proxy.connections_opened == 1
        for stream in (True, False, True, False):
            assert post(f"{proxy.base_url}/chat/completions", {**CHAT, "stream": stream})[0] == 200
    assert len(proxy.records) == 7 and all(not r.error and r.status == 200 for r in proxy.records)


def test_a_kept_alive_connection_the_server_closed_is_retried_on_a_fresh_one():
    with ScriptedLLM([Step(content="one"), Step(content="two")]) as llm:
        with RecordingProxy(llm.base_url, "scripted", Sampling()) as proxy:
            assert post(f"{proxy.base_url}/chat/completions", {**CHAT, "stream": False})[0] == 200
            for conn in proxy._idle:  # the server side goes away (an idle timeout): the socket is dead
                conn.sock.shutdown(2)
            status, raw = post(f"{proxy.base_url}/chat/completions", {**CHAT, "stream": False})
    assert status == 200 and json.loads(raw)["choices"] and not proxy.records[1].error
    assert proxy.connections_opened == 2  # the dead one, then a fresh one
