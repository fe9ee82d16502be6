"""A loopback OpenAI-compatible proxy between the agent and the model server.

It records every request (start, first byte, first token, end, usage, llama-server `timings`, status),
pins sampling (temperature, seed...) from the model's config, and injects the real API key so the agent
only ever holds a dummy one. LLM spans and speed metrics come from these records, whatever the agent.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from beyond_vibes.catalog import Sampling
from beyond_vibes.runtime.loopback import LoopbackServer, QuietHandler, send_json

DUMMY_KEY = "bv-proxy-dummy-key"
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "authorization",
                "proxy-authorization", "te", "trailer", "upgrade", "accept-encoding"}


@dataclass
class ProxyRecord:
    index: int
    method: str
    path: str
    started_at: float  # epoch seconds
    ended_at: float = 0.0
    first_byte_at: float | None = None
    first_token_at: float | None = None  # streaming: when the first chunk with content arrived from upstream
    last_token_at: float | None = None  # streaming: when the last chunk with content arrived
    token_chunks: int = 0  # streamed chunks that carried content
    status: int = 0
    stream: bool = False
    usage_reported: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings: dict = field(default_factory=dict)
    cached_prompt_tokens: int | None = None  # prompt tokens the server served from its cache (None: not said)
    finish_reason: str | None = None
    request: dict | None = None  # the (pinned) request body: messages, tools, sampling
    response_text: str = ""
    response_tool_calls: list = field(default_factory=list)
    error: str | None = None
    proxy_overhead_ms: float = 0.0  # time spent in the proxy before the upstream request was sent

    @property
    def cached(self) -> int | None:
        """Prompt tokens served from the server's cache: llama-server's `timings.cache_n`, else the usage's
        `prompt_tokens_details.cached_tokens`; None when the server said neither."""
        if self.timings.get("cache_n") is not None:
            return int(self.timings["cache_n"])
        return self.cached_prompt_tokens

    @property
    def is_completion(self) -> bool:
        return self.path.rstrip("/").endswith("completions")

    @property
    def duration_s(self) -> float:
        return max(0.0, self.ended_at - self.started_at)

    @property
    def ttft_s(self) -> float | None:
        """Time to first token. Streaming: seen on the wire. Not streaming: the whole answer arrives at once,
        so only the server's own prompt time says it (None without server timings)."""
        if self.stream:
            return None if self.first_token_at is None else self.first_token_at - self.started_at
        if self.timings.get("prompt_ms"):
            return float(self.timings["prompt_ms"]) / 1000
        return None

    def prompt_timing(self) -> tuple[float, float] | None:
        """(tokens, seconds) of prompt processing: the server's timings, else tokens / TTFT from the stream."""
        t = self.timings
        if t.get("prompt_n") and t.get("prompt_per_second"):  # the server's own rate, kept exact
            return float(t["prompt_n"]), float(t["prompt_n"]) / float(t["prompt_per_second"])
        if self.stream and self.usage_reported and self.prompt_tokens and self.ttft_s:
            uncached = self.prompt_tokens - (self.cached or 0)  # cached tokens cost no prompt time
            return (float(uncached), self.ttft_s) if uncached > 0 else None
        return None

    def gen_timing(self) -> tuple[float, float] | None:
        """(tokens, seconds) of generation: the server's timings, else first to last content chunk of the
        stream (never the proxy's own write time). None when it cannot be measured (one chunk, no stream)."""
        t = self.timings
        if t.get("predicted_n") and t.get("predicted_per_second"):
            return float(t["predicted_n"]), float(t["predicted_n"]) / float(t["predicted_per_second"])
        if (self.stream and self.usage_reported and self.completion_tokens > 1 and self.token_chunks >= 2
                and self.first_token_at and self.last_token_at and self.last_token_at > self.first_token_at):
            return float(self.completion_tokens - 1), self.last_token_at - self.first_token_at
        return None

    @property
    def prompt_tps(self) -> float | None:
        pt = self.prompt_timing()
        return pt[0] / pt[1] if pt and pt[1] > 0 else None

    @property
    def gen_tps(self) -> float | None:
        gt = self.gen_timing()
        return gt[0] / gt[1] if gt and gt[1] > 0 else None

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(ttft_s=self.ttft_s, duration_s=self.duration_s, prompt_tps=self.prompt_tps, gen_tps=self.gen_tps)
        return d


def pin_sampling(body: dict, sampling: Sampling, model_id: str, response_format: dict | None = None) -> dict:
    """Force the sampling settings the experiment declares (and, for a judge, the JSON schema of its answer),
    whatever the client sent."""
    body = dict(body)
    if response_format is not None:
        body["response_format"] = response_format
    body["model"] = model_id
    body["temperature"] = sampling.temperature
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if sampling.top_p is not None:
        body["top_p"] = sampling.top_p
    if sampling.max_tokens is not None:
        body["max_tokens"] = sampling.max_tokens
        body.pop("max_completion_tokens", None)
    if body.get("stream"):
        # Ask for usage on the stream so tokens are counted even when the agent did not ask.
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return body


class _StreamParser:
    """Follows an SSE chat-completions stream: first token time, text, tool calls, usage, timings."""

    def __init__(self, record: ProxyRecord):
        self.record = record
        self.buffer = b""
        self.tool_calls: dict[int, dict] = {}

    def feed(self, chunk: bytes, now: float) -> None:
        self.buffer += chunk
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self._line(line.strip(), now)

    def _line(self, line: bytes, now: float) -> None:
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return
        try:
            event = json.loads(payload)
        except ValueError:
            return
        absorb_completion(self.record, event, self.tool_calls, now)

    def finish(self) -> None:
        self.record.response_tool_calls = [self.tool_calls[i] for i in sorted(self.tool_calls)]


def absorb_completion(record: ProxyRecord, event: dict, tool_calls: dict[int, dict], now: float) -> None:
    """Fold one completion object (a stream chunk or a whole response) into the record."""
    if usage := event.get("usage"):
        record.usage_reported = True
        record.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        record.completion_tokens = int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        if details.get("cached_tokens") is not None:
            record.cached_prompt_tokens = int(details["cached_tokens"])
    if timings := event.get("timings"):
        record.timings = timings
    if event.get("error"):
        record.error = json.dumps(event["error"])[:2000]
    for choice in event.get("choices") or []:
        part = choice.get("delta") or choice.get("message") or {}
        text = part.get("content") or ""
        reasoning = part.get("reasoning_content") or ""
        calls = part.get("tool_calls") or []
        if (text or reasoning or calls) and record.stream:
            record.first_token_at = record.first_token_at or now
            record.last_token_at = now
            record.token_chunks += 1
        record.response_text += text
        for n, call in enumerate(calls):
            slot = tool_calls.setdefault(call.get("index", n), {"id": "", "name": "", "arguments": ""})
            slot["id"] = call.get("id") or slot["id"]
            fn = call.get("function") or {}
            slot["name"] += fn.get("name") or ""
            slot["arguments"] += fn.get("arguments") or ""
        if choice.get("finish_reason"):
            record.finish_reason = choice["finish_reason"]


class RecordingProxy(LoopbackServer):
    """Use as a context manager; `base_url` is what the agent talks to, `records` what happened."""

    def __init__(self, upstream_base_url: str, model_id: str, sampling: Sampling, api_key: str | None = None,
                 timeout_s: float = 3600.0, response_format: dict | None = None):
        parts = urlsplit(upstream_base_url.rstrip("/"))
        self.upstream_scheme = parts.scheme or "http"
        self.upstream_netloc = parts.netloc
        self.upstream_prefix = parts.path  # e.g. /v1
        self.model_id = model_id
        self.sampling = sampling
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.response_format = response_format
        self.records: list[ProxyRecord] = []
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []  # kept-alive upstream connections (TTFT without set-up)
        self.connections_opened = 0
        super().__init__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    @property
    def upstream_base_url(self) -> str:
        """Where this proxy forwards to (another proxy in front of the same server can use it)."""
        return f"{self.upstream_scheme}://{self.upstream_netloc}{self.upstream_prefix}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def new_record(self, method: str, path: str) -> ProxyRecord:
        with self._lock:
            record = ProxyRecord(index=len(self.records), method=method, path=path, started_at=time.time())
            self.records.append(record)
            return record

    def connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """(an upstream connection, whether it was reused): an idle kept-alive one when there is one, so a
        request's TTFT measures the model and not a TCP/TLS handshake."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self.fresh_connection(), False

    def fresh_connection(self) -> http.client.HTTPConnection:
        with self._lock:
            self.connections_opened += 1
        cls = http.client.HTTPSConnection if self.upstream_scheme == "https" else http.client.HTTPConnection
        return cls(self.upstream_netloc, timeout=self.timeout_s)

    def release(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse | None) -> None:
        """Back to the pool when the answer was read whole and the server keeps the connection open."""
        if resp is not None and resp.isclosed() and not resp.will_close:
            with self._lock:
                self._idle.append(conn)
                return
        conn.close()

    def upstream_path(self, path: str) -> str:
        # The agent calls /v1/<rest>; the upstream base may have another prefix (e.g. /api/v1).
        rest = path[3:] if path.startswith("/v1") else path
        return f"{self.upstream_prefix}{rest}"


class _ProxyHandler(QuietHandler):
    owner: RecordingProxy

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._forward(self.rfile.read(length) if length else b"")

    def _forward(self, raw: bytes | None) -> None:
        proxy = self.owner
        record = proxy.new_record(self.command, self.path)
        body = raw
        if raw and self.headers.get_content_type() == "application/json":
            try:
                data = json.loads(raw)
            except ValueError:
                data = None
            if isinstance(data, dict) and record.is_completion:
                data = pin_sampling(data, proxy.sampling, proxy.model_id, proxy.response_format)
                record.stream = bool(data.get("stream"))
                record.request = data
                body = json.dumps(data).encode()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        if proxy.api_key:
            headers["Authorization"] = f"Bearer {proxy.api_key}"
        if body is not None:
            headers["Content-Length"] = str(len(body))
        conn, reused = proxy.connection()
        resp = None
        try:
            record.proxy_overhead_ms = (time.time() - record.started_at) * 1000
            try:
                conn.request(self.command, proxy.upstream_path(self.path), body=body, headers=headers)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                conn.close()  # the server closed an idle kept-alive connection: once more on a fresh one
                conn = proxy.fresh_connection()
                conn.request(self.command, proxy.upstream_path(self.path), body=body, headers=headers)
                resp = conn.getresponse()
            record.status = resp.status
            self._relay(resp, record, lambda: proxy.release(conn, resp))
            conn = None  # released by _relay as soon as the upstream answer was read whole
        except (OSError, http.client.HTTPException) as e:
            record.error = f"{type(e).__name__}: {e}"
            record.status = record.status or 502
            resp = None
            if not record.first_byte_at:  # nothing sent to the agent yet: answer with an error it understands
                self._send_error_json(502, f"upstream unreachable: {e}")
        finally:
            record.ended_at = record.ended_at or time.time()
            if conn is not None:
                conn.close()

    def _relay(self, resp: http.client.HTTPResponse, record: ProxyRecord, done_upstream) -> None:
        """Pass the answer on; `done_upstream()` hands the upstream connection back as soon as its answer is read
        whole, before the client has the end of it (so the client's next request finds it idle)."""
        content_type = resp.getheader("Content-Type", "")
        is_sse = "text/event-stream" in content_type
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP_HEADERS:
                self.send_header(k, v)
        if is_sse:
            record.stream = True
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            parser = _StreamParser(record)
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                now = time.time()  # when the chunk arrived from upstream, before we pass it on
                if record.first_byte_at is None:
                    record.first_byte_at = now
                parser.feed(chunk, now)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            # The record is complete before the client sees the end of the stream: a client that reads the
            # records as soon as its answer is in must never find a half-written one (duration 0, no usage).
            parser.finish()
            record.ended_at = time.time()
            done_upstream()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        data = resp.read()
        record.first_byte_at = time.time()
        if record.is_completion:
            try:
                calls: dict[int, dict] = {}
                absorb_completion(record, json.loads(data), calls, record.first_byte_at)
                record.response_tool_calls = [calls[i] for i in sorted(calls)]
            except ValueError:
                record.error = record.error or data[:500].decode(errors="replace")
        if resp.status >= 400 and not record.error:
            record.error = data[:2000].decode(errors="replace")
        record.ended_at = time.time()  # complete before the client has its answer (see the stream above)
        done_upstream()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error_json(self, status: int, message: str) -> None:
        try:
            send_json(self, status, {"error": {"message": message, "type": "proxy_error"}})
        except OSError:
            pass


RecordingProxy.handler = _ProxyHandler
