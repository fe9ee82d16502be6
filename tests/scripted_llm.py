"""A scripted OpenAI-compatible chat server: a test double for the *model only*.

The demo models are too small to call tools, so the success path runs the real pi agent against this
server, whose fixed replies call pi's real tools (pi really edits files and runs commands). Each reply is
chosen by how many assistant messages the request already holds, so the script is stateless and replayable.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from beyond_vibes.runtime.loopback import LoopbackServer, QuietHandler, send_json


@dataclass
class Step:
    content: str = ""
    # [{"name": "bash", "arguments": {...}}], or {"name": ..., "raw": "..."}: arguments sent as written (broken JSON)
    tool_calls: list[dict] = field(default_factory=list)
    delay_s: float = 0.0  # wait before answering (a hung model)


def bash(command: str) -> Step:
    return Step(tool_calls=[{"name": "bash", "arguments": {"command": command}}])


class ScriptedLLM(LoopbackServer):
    def __init__(self, steps: list[Step], model_id: str = "scripted", api_key: str | None = None):
        super().__init__()
        self.steps = steps
        self.model_id = model_id
        self.api_key = api_key
        self.requests: list[dict] = []  # {"headers": {...}, "body": {...}}

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def step_for(self, body: dict) -> Step:
        n = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        return self.steps[n] if n < len(self.steps) else Step(content="Done.")


class _Handler(QuietHandler):
    owner: ScriptedLLM

    def do_GET(self) -> None:
        send_json(self, 200, {"object": "list", "data": [{"id": self.owner.model_id, "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.owner.requests.append({"headers": dict(self.headers.items()), "body": body})
        if self.owner.api_key and self.headers.get("Authorization") != f"Bearer {self.owner.api_key}":
            return send_json(self, 401, {"error": {"message": "invalid api key", "type": "authentication_error"}})
        step = self.owner.step_for(body)
        if step.delay_s:
            time.sleep(step.delay_s)
        prompt_tokens = sum(len(json.dumps(m)) // 4 for m in body.get("messages", []))
        completion_tokens = max(1, len(step.content) // 4 + 10 * len(step.tool_calls))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        calls = [{"index": i, "id": f"call_{int(time.time() * 1000)}_{i}", "type": "function",
                  "function": {"name": c["name"], "arguments": c["raw"] if "raw" in c else json.dumps(c["arguments"])}}
                 for i, c in enumerate(step.tool_calls)]
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            msg = {"role": "assistant", "content": step.content or None}
            if calls:
                msg["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
            return send_json(self, 200, {"id": "chatcmpl-scripted", "object": "chat.completion", "model": self.owner.model_id,
                                    "choices": [{"index": 0, "message": msg, "finish_reason": finish}], "usage": usage})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "model": self.owner.model_id}

        def send(obj) -> None:
            data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        send({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": step.content or ""}, "finish_reason": None}]})
        if calls:
            send({**base, "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]})
        send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        send({**base, "choices": [], "usage": usage})
        send(b"[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()



ScriptedLLM.handler = _Handler
