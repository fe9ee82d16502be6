"""Deterministic checks run in the workspace's sandbox after the agent: pass means exit code 0. A check that cannot
start (exit 126/127: a missing command or interpreter) says so: that is the harness's error, not the model's."""

from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass

from beyond_vibes.tasks import Check

TAIL_CHARS = 2000
CANNOT_START = (126, 127)  # bash: found but not executable / not found
_MISSING = re.compile(r"(?:^|\n)(?:bash: )?(?:line \d+: )?([^\s:]+): (command not found|No such file or directory|Permission denied)")


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

    @property
    def cannot_start(self) -> str | None:
        """Why the check could not even start (the harness's fault), naming the command; None when it ran."""
        if self.exit_code not in CANNOT_START:
            return None
        found = _MISSING.search(self.output_tail)
        what = f"{found.group(1)}: {found.group(2)}" if found else f"exit {self.exit_code}"
        return f"check {self.name} could not run: {what}"


def run_check(check: Check, ws) -> CheckResult:
    """One check in the workspace's sandbox, as the agent's user, with a fresh home: the workspace is hostile (a
    planted conftest.py runs with whatever rights the check has)."""
    home = ws.fresh_home("check-home")
    code, out, seconds = ws.run(check.command, check.timeout_s, network=check.network, home=home, with_git=True)
    return CheckResult(check.name, check.command, code == 0, code, seconds, out[-TAIL_CHARS:])


def run_checks(checks: list[Check], ws) -> list[CheckResult]:
    """Every check, after staging the workspace in the harness's index: a check's `git diff "$BV_BASE_COMMIT"` then
    sees the files the agent added, not only the ones it changed (after a run and in `tasks validate` alike)."""
    ws.git.run("add", "-A")
    return [run_check(c, ws) for c in checks]


def harness_problem(checks: list[CheckResult]) -> str | None:
    """The first check that could not start, as the run's error."""
    return next((c.cannot_start for c in checks if c.cannot_start), None)


def run_setup(task, ws) -> tuple[float | None, str | None]:
    """The task's `requires` and `setup` in the workspace's sandbox, as the agent's user, with the package index,
    before the agent starts: (seconds, None), or (seconds, why it failed: the command and its last output line).
    (None, None) when the task has neither."""
    if not task.setup and not task.requires:
        return None, None
    total = 0.0
    for tool in task.requires:
        code, out, seconds = ws.run(f"command -v {shlex.quote(tool)}", 30)
        total += seconds
        if code != 0:
            return total, f"setup: the task requires {tool!r}, which is not on the sandbox's PATH; install it on the host"
    for command in task.setup:
        code, out, seconds = ws.run(command, task.setup_timeout_s, network="packages")
        total += seconds
        if code != 0:
            lines = [line for line in out.strip().splitlines() if line.strip()]
            how = "timed out" if code is None else f"exit {code}"
            return total, f"setup command failed ({how}): {command}: {lines[-1][:300] if lines else 'no output'}"
    return total, None
