"""Deterministic checks run in the workspace after the agent: pass means exit code 0."""

from __future__ import annotations

import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from beyond_vibes.procs import spawn, stop_group
from beyond_vibes.tasks import Check

TAIL_CHARS = 2000


@dataclass(frozen=True)
class CheckResult:
    name: str
    command: str
    passed: bool
    exit_code: int | None  # None: killed at its timeout
    duration_s: float
    output_tail: str

    def to_json(self) -> dict:
        return asdict(self)


def run_check(check: Check, cwd: Path, env: dict[str, str], user: tuple[int, int] | None = None) -> CheckResult:
    """One check, as the agent's user when there is one: the workspace is hostile (a planted conftest.py runs
    with whatever rights the check has)."""
    start = time.monotonic()
    proc = spawn(["bash", "-c", check.command], cwd=cwd, env=env, user=user, stdout=subprocess.PIPE,
                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        out, _ = proc.communicate(timeout=check.timeout_s)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        stop_group(proc, grace_s=1.0)
        out, _ = proc.communicate()
        out = (out or b"") + f"\n[killed after {check.timeout_s}s]".encode()
        code = None
    finally:
        stop_group(proc, grace_s=1.0)
    text = out.decode(errors="replace")
    return CheckResult(check.name, check.command, code == 0, code, time.monotonic() - start, text[-TAIL_CHARS:])


def run_checks(checks: list[Check], cwd: Path, env: dict[str, str], user: tuple[int, int] | None = None) -> list[CheckResult]:
    """`env` is the workspace's `check_env`: the agent's variables, BV_BASE_COMMIT and the harness's git."""
    return [run_check(c, cwd, env, user) for c in checks]
