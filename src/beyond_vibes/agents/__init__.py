"""Coding agents behind one small interface: run in a workspace against an OpenAI-compatible endpoint."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from beyond_vibes.registry import pick
from beyond_vibes.settings import Settings

if TYPE_CHECKING:
    from beyond_vibes.sandbox import Workspace


@dataclass(frozen=True)
class AgentEvent:
    """One event of the agent's own stream, as received (`t` is when we read it, epoch seconds)."""

    kind: str
    t: float
    data: dict


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    args: dict
    result: str
    is_error: bool
    started_at: float
    ended_at: float
    known_tool: bool = True  # False: the model called a tool the agent does not have (hallucinated)


@dataclass(frozen=True)
class Turn:
    index: int
    started_at: float
    ended_at: float
    text: str
    stop_reason: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None


@dataclass
class AgentResult:
    agent: str
    version: str
    events: list[AgentEvent] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    final_text: str = ""
    stop_reason: str | None = None  # the agent's own: stop, toolUse, aborted, error, length...
    error: str | None = None  # a model/provider error the agent reported
    exit_code: int | None = None
    timed_out: bool = False
    cancelled: bool = False  # stopped by the harness because its model server died (job.abort)
    ended_cleanly: bool = False  # the agent's own end-of-run event arrived
    turn_limit_hit: bool = False
    stderr_tail: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0

    def crash(self) -> str | None:
        """Why the agent process itself failed (not the model): a non-zero exit or no end-of-run event,
        unless the harness stopped it (timeout, dead server)."""
        if self.timed_out or self.cancelled:
            return None
        last = self.stderr_tail.strip().splitlines()[-1][:300] if self.stderr_tail.strip() else ""
        if self.exit_code not in (0, None):
            how = f"signal {-self.exit_code}" if self.exit_code < 0 else f"code {self.exit_code}"
            return f"{self.agent} exited with {how}" + (f": {last}" if last else "")
        if not self.ended_cleanly:
            return f"{self.agent} ended without finishing its run" + (f": {last}" if last else "")
        return None


@dataclass(frozen=True)
class AgentEndpoint:
    """What the agent is pointed at: always the recording proxy, with a dummy key."""

    base_url: str
    model_id: str
    api_key: str
    context_window: int
    max_tokens: int


@dataclass(frozen=True)
class AgentJob:
    ws: "Workspace"  # the checkout, its sandbox, the agent's home and user
    prompt: str
    system_prompt: str | None
    tools: list[str]
    max_turns: int
    timeout_s: float
    abort: threading.Event | None = None  # set by the harness (the model server died): stop the agent now
    network: str = "none"  # the task's: none (the model proxy only) or packages (the package index too)


class Agent(Protocol):
    name: str

    def version(self) -> str: ...

    def run(self, job: AgentJob, endpoint: AgentEndpoint) -> AgentResult: ...


def _pi(settings: Settings) -> Agent:
    from beyond_vibes.agents.pi import PiAgent

    return PiAgent(settings)


AGENTS: dict[str, Callable[[Settings], Agent]] = {"pi": _pi}


def get_agent(name: str, settings: Settings) -> Agent:
    return pick(AGENTS, "agent", name, settings)
