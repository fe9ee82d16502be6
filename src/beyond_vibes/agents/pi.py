"""The pi coding agent (npm @mariozechner/pi-coding-agent), run non-interactively with a JSON event stream."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from beyond_vibes.agents import AgentEndpoint, AgentEvent, AgentJob, AgentResult, ToolCall, Turn
from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.agents.launch import forwarder_script, node_binary, pi_root, proxy_bridge
from beyond_vibes.confinement import OPT, Mount
from beyond_vibes.sandbox import hand_over
from beyond_vibes.settings import Settings

PROVIDER = "beyondvibes"
# pi's settings for unattended, comparable runs: no compaction (it would change what the model sees),
# no retries (a failed request is a result), no telemetry or update checks.
PI_SETTINGS = {
    "compaction": {"enabled": False},
    "retry": {"enabled": False, "provider": {"maxRetries": 0}},
    "enableInstallTelemetry": False,
    "quietStartup": True,
}


@lru_cache(maxsize=8)
def pi_version(binary: Path) -> str:
    """pi's version from its package.json (instant); `pi --version` (a node start-up, ~1 s) as a fallback."""
    for parent in Path(binary).resolve().parents:
        manifest = parent / "package.json"
        if manifest.exists():
            try:
                data = json.loads(manifest.read_text())
            except ValueError:
                break
            if data.get("name") == "@mariozechner/pi-coding-agent":
                return str(data.get("version", "unknown"))
            break
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PI_OFFLINE": "1"})
        return (out.stdout.strip() or out.stderr.strip()).splitlines()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def pi_models_json(endpoint: AgentEndpoint) -> dict:
    return {
        "providers": {
            PROVIDER: {
                "baseUrl": endpoint.base_url,
                "api": "openai-completions",
                "apiKey": endpoint.api_key,
                "compat": {"supportsDeveloperRole": False, "supportsReasoningEffort": False, "maxTokensField": "max_tokens"},
                "models": [{
                    "id": endpoint.model_id,
                    "name": endpoint.model_id,
                    "contextWindow": endpoint.context_window,
                    "maxTokens": endpoint.max_tokens,
                    "input": ["text"],
                    "reasoning": False,
                    "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                }],
            }
        }
    }


def pi_command(pi_bin: Path, job: AgentJob, endpoint: AgentEndpoint, extension: Path) -> list[str]:
    cmd = [
        str(pi_bin), "-p", "--mode", "json", "--no-session", "--offline",
        "--provider", PROVIDER, "--model", endpoint.model_id,
        "--tools", ",".join(job.tools), "--thinking", "off",
        "--no-context-files", "--no-skills", "--no-extensions", "-e", str(extension),
    ]
    if job.system_prompt:
        cmd += ["--append-system-prompt", job.system_prompt]
    return cmd + [job.prompt]


class PiAgent:
    name = "pi"

    def __init__(self, settings: Settings):
        self.settings = settings
        self._version: str | None = None

    def binary(self) -> Path:
        pi = self.settings.find_pi()
        if pi is None:
            raise ConfigError("pi not found: run ./setup.sh (installs it under .tools/pi), or set PI_BIN")
        return pi

    def version(self) -> str:
        if self._version is None:
            self._version = pi_version(self.binary())
        return self._version

    def run(self, job: AgentJob, endpoint: AgentEndpoint) -> AgentResult:
        ws = job.ws
        agent_dir = ws.root / "pi-agent"
        agent_dir.mkdir(parents=True, exist_ok=True)
        (agent_dir / "models.json").write_text(json.dumps(pi_models_json(endpoint), indent=2))
        (agent_dir / "settings.json").write_text(json.dumps(PI_SETTINGS, indent=2))
        (agent_dir / "bv_turn_limit.ts").write_text(resources.files("beyond_vibes.agents").joinpath("pi_turn_limit.ts").read_text())
        hand_over(agent_dir, ws.user)  # pi writes lock files beside its settings
        result = AgentResult(agent=self.name, version=self.version(), started_at=time.time())
        stderr_path = ws.root / "pi.stderr"
        with stderr_path.open("wb") as stderr, self._launch(job, endpoint, agent_dir, stderr) as proc:
            done = threading.Event()
            # The wall-clock budget is ours to enforce (pi has no timeout, a hung request never returns), and
            # so is stopping pi when its model server dies.
            watcher = threading.Thread(target=_watch, args=(proc, job, result, done), name="pi-watch", daemon=True)
            watcher.start()
            try:
                read_events(proc.lines(), result)
                proc.wait()
            finally:
                done.set()
                proc.stop()
                watcher.join(timeout=10)
        result.exit_code = proc.returncode
        result.ended_at = time.time()
        result.stderr_tail = stderr_path.read_text(errors="replace")[-4000:]
        parse_events(result, job.tools)
        result.turn_limit_hit = "turn budget of" in result.stderr_tail and result.stop_reason == "aborted"
        return result

    @contextmanager
    def _launch(self, job: AgentJob, endpoint: AgentEndpoint, agent_dir: Path, stderr):
        """pi in the workspace's sandbox: pi's install and its config come in at fixed paths; without network, the
        proxy comes in through a unix socket that a forwarder serves on the proxy's port at 127.0.0.1 inside."""
        ws = job.ws
        pi_mount = Mount(pi_root(self.binary()), f"{OPT}/pi")
        dir_mount = Mount(agent_dir, f"{OPT}/pi-agent", rw=True)
        extra = [pi_mount, dir_mount]
        inside = ws.sandbox.inside
        real = Path(os.path.realpath(self.binary()))
        pi_bin = f"{inside(pi_mount)}/{real.relative_to(pi_mount.src)}" if ws.sandbox.name != "none" else str(self.binary())
        node = node_mount()
        if node is not None:
            extra.append(node)
        cmd = ws.command([], job.network, extra=extra)
        cmd.env.update(PI_CODING_AGENT_DIR=inside(dir_mount), PI_OFFLINE="1", PI_SKIP_VERSION_CHECK="1",
                       BV_MAX_TURNS=str(job.max_turns))
        if node is not None:
            cmd.env["PATH"] = f"{inside(node)}/bin:{cmd.env['PATH']}"
        argv = pi_command(Path(pi_bin), job, endpoint, Path(f"{inside(dir_mount)}/bv_turn_limit.ts"))
        if ws.sandbox.name == "none" or job.network == "packages":  # the host's network: the proxy is right there
            cmd.argv = argv
            launch = ws.sandbox.start(cmd, subprocess.PIPE, stderr)
            try:
                yield launch
            finally:
                launch.stop(grace_s=2)
            return
        port = urlsplit(endpoint.base_url).port
        forwarder_script(agent_dir / "forward.js")
        net = Mount(ws.root / "net", f"{OPT}/net", rw=True)
        with proxy_bridge(ws.root / "net" / "proxy.sock", port):
            cmd.mounts.append(net)
            # The forwarder must listen before pi's first request: wait (bounded) for its port.
            cmd.argv = ["bash", "-c", 'node "$1" "$2" "$3" & for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$2") '
                        '2>/dev/null && break; sleep 0.025; done; shift 3; exec "$@"', "bv-agent",
                        f"{inside(dir_mount)}/forward.js", str(port), f"{inside(net)}/proxy.sock", *argv]
            launch = ws.sandbox.start(cmd, subprocess.PIPE, stderr)
            try:
                yield launch
            finally:
                launch.stop(grace_s=2)


def node_mount() -> Mount | None:
    """node's installation, when it is not in the system's folders (nvm, a tarball in the user's home)."""
    real = Path(os.path.realpath(node_binary()))
    if str(real).startswith(("/usr/", "/bin/")):
        return None
    return Mount(real.parent.parent, f"{OPT}/node")


def _watch(proc, job: AgentJob, result: AgentResult, done: threading.Event) -> None:
    deadline = time.monotonic() + job.timeout_s
    while not done.wait(0.1):
        if job.abort is not None and job.abort.is_set():
            result.cancelled = True
        elif time.monotonic() >= deadline:
            result.timed_out = True
        else:
            continue
        proc.stop(grace_s=2.0)
        return


def read_events(stream, result: AgentResult) -> None:
    """pi's JSONL events, line by line. Each `message_update` repeats the whole partial message, so only the
    latest one of the message being streamed is kept (a run stopped mid-message still shows what it had)."""
    pending_update: int | None = None
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        event = AgentEvent(str(data.get("type", "")), time.time(), data)
        if event.kind == "message_update":
            if pending_update is not None:
                result.events[pending_update] = event
                continue
            pending_update = len(result.events)
        elif event.kind == "message_end" and pending_update is not None:
            del result.events[pending_update]  # message_end carries the whole message
            pending_update = None
        elif event.kind == "message_start":
            pending_update = None
        if event.kind == "agent_end":
            result.ended_cleanly = True
        result.events.append(event)


def _text(content) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(block.get("text", ""))
    return "".join(parts)


def parse_events(result: AgentResult, enabled_tools: list[str]) -> None:
    """Turns, tool calls, final text and stop reason from pi's event stream (in place)."""
    turn_start: float | None = None
    assistant: dict | None = None
    starts: dict[str, tuple[float, str, dict]] = {}
    for ev in result.events:
        d = ev.data
        if ev.kind == "turn_start":
            turn_start, assistant = ev.t, None
        elif ev.kind == "message_end" and (d.get("message") or {}).get("role") == "assistant":
            assistant = d["message"]
            result.stop_reason = assistant.get("stopReason") or result.stop_reason
            if assistant.get("errorMessage"):
                result.error = str(assistant["errorMessage"])
            text = _text(assistant.get("content"))
            if text.strip():
                result.final_text = text
        elif ev.kind == "turn_end":
            msg = assistant or d.get("message") or {}
            usage = msg.get("usage") or {}
            if msg.get("stopReason") == "aborted" and not _text(msg.get("content")) and not usage.get("output"):
                # After an abort (the turn budget) pi opens one more turn that never reaches the model.
                turn_start, assistant = None, None
                continue
            result.turns.append(Turn(
                index=len(result.turns), started_at=turn_start or ev.t, ended_at=ev.t, text=_text(msg.get("content")),
                stop_reason=msg.get("stopReason"), input_tokens=int(usage.get("input") or 0),
                output_tokens=int(usage.get("output") or 0), error=msg.get("errorMessage"),
            ))
            turn_start, assistant = None, None
        elif ev.kind == "tool_execution_start":
            starts[d.get("toolCallId", "")] = (ev.t, d.get("toolName", ""), d.get("args") or {})
        elif ev.kind == "tool_execution_end":
            call_id = d.get("toolCallId", "")
            t0, name, args = starts.pop(call_id, (ev.t, d.get("toolName", ""), {}))
            res = d.get("result")
            text = _text(res.get("content")) if isinstance(res, dict) else (res if isinstance(res, str) else json.dumps(res))
            result.tool_calls.append(ToolCall(
                id=call_id, name=name or d.get("toolName", ""), args=args if isinstance(args, dict) else {"args": args},
                result=text, is_error=bool(d.get("isError")), started_at=t0, ended_at=ev.t,
                known_tool=(name or d.get("toolName", "")) in enabled_tools,
            ))
        elif ev.kind == "agent_end":
            msgs = d.get("messages") or []
            for msg in reversed(msgs):
                if isinstance(msg, dict) and msg.get("role") == "assistant":
                    result.stop_reason = msg.get("stopReason") or result.stop_reason
                    break
    if result.turns and not result.final_text:
        result.final_text = result.turns[-1].text
