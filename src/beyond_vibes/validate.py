"""Task soundness: checks must fail on the untouched repository and all pass after the reference solution."""

from __future__ import annotations

from dataclasses import dataclass, field

from beyond_vibes.checks import CheckResult, harness_problem, run_checks, run_setup
from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.sandbox import Workspace, workspace
from beyond_vibes.tasks import Task


@dataclass
class Soundness:
    task: str
    before: list[CheckResult] = field(default_factory=list)
    after: list[CheckResult] = field(default_factory=list)
    problem: str | None = None

    @property
    def sound(self) -> bool:
        return self.problem is None


def apply_solution(task: Task, ws: Workspace) -> None:
    sol = task.solution
    if sol.patch:
        patch = task.source.resolve().parent / sol.patch
        if not patch.exists():
            raise ConfigError(f"{task.source}: solution.patch: {sol.patch} not found (paths are relative to the tasks folder)")
        try:
            ws.git.run("apply", "--whitespace=nowarn", str(patch.resolve()))
        except SimulationError as e:
            raise SimulationError(f"{task.source}: solution.patch does not apply: {e}") from None
    for cmd in sol.commands:  # in the sandbox, as the agent would run them
        code, out, _ = ws.run(cmd, 600, network=task.network, with_git=True)
        if code != 0:
            raise SimulationError(f"{task.source}: solution command failed ({cmd!r}): {out.strip()[-500:]}")


def validate_task(task: Task, sandbox: str = "auto") -> Soundness:
    result = Soundness(task.name)
    if task.solution is None:
        result.problem = "no reference solution"
        return result
    if not task.checks:
        result.problem = "no checks"
        return result
    with workspace(task, sandbox=sandbox) as ws:
        _, setup_failure = run_setup(task, ws)
        if setup_failure:
            result.problem = setup_failure
            return result
        result.before = run_checks(task.checks, ws)
        apply_solution(task, ws)
        result.after = run_checks(task.checks, ws)
    if cannot := harness_problem(result.before + result.after):
        result.problem = cannot
    elif all(c.passed for c in result.before):
        result.problem = "every check already passes on the untouched repository (nothing for the agent to do)"
    elif not all(c.passed for c in result.after):
        failing = ", ".join(c.name for c in result.after if not c.passed)
        result.problem = f"checks still fail after the reference solution: {failing}"
    return result
