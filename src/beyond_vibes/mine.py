"""`tasks mine`: real tasks from a repository's history. For each commit that changes both code and tests, a task
whose base is the commit's parent, whose prompt is the commit message, whose checks are the tests the commit makes
pass (fail before, pass after) and the tests that passed before and still pass, and whose reference solution is
the commit's non-test diff. Only candidates that `tasks validate` proves are kept; every other commit is reported
with why it was dropped (no tests touched, no code changed, tests that fail on the commit itself: services or
set-up they need, flaky tests, nothing the commit makes pass).

The tests run in the agent sandbox (no network), as the checks later will: a test that needs a service fails there.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from beyond_vibes.errors import ConfigError

TEST_FILE = re.compile(r"(^|/)(tests?/.*\.py|test_[^/]*\.py|[^/]*_test\.py|conftest\.py)$")
CODE_FILE = re.compile(r"\.py$")
RESULT = re.compile(r"^(PASSED|FAILED|ERROR) (\S+)", re.M)
ISSUE_REF = re.compile(r"(?:#|GH-)(\d+)")
# The tests run with the environment a --setup made (.venv), else the toolchain's Python.
PYTEST = ('"$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)" -m pytest -q -p no:cacheprovider')


@dataclass
class Outcome:
    commit: str
    subject: str
    kept: bool
    why: str  # the task's name when kept; why it was dropped otherwise
    fail_to_pass: list[str] = field(default_factory=list)
    pass_to_pass: list[str] = field(default_factory=list)


def _git(repo: Path, *args: str) -> str:
    from beyond_vibes.gitsource import run_git

    out = run_git(["-C", str(repo), *args], check=False)
    if out.returncode != 0:
        raise ConfigError(f"{repo}: git {args[0]} failed: {out.stderr.strip()[-300:]}")
    return out.stdout


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "commit"


def _results(output: str) -> dict[str, str]:
    return {m.group(2): m.group(1) for m in RESULT.finditer(output)}


def _issue_text(repo: Path, message: str, commit: str) -> str:
    """The issue or PR text a message references (`#12`), when the history holds it (a merge or squash message
    naming that number, other than this commit)."""
    parts = []
    for number in dict.fromkeys(ISSUE_REF.findall(message)):
        log = _git(repo, "log", "--all", "--format=%H%x00%B%x01", f"--grep=#{number}\\b", "-E")
        for entry in log.split("\x01"):
            sha, _, body = entry.strip().partition("\x00")
            if sha and sha != commit and body.strip() and body.strip() != message.strip():
                parts.append(f"Referenced #{number}:\n{body.strip()}")
                break
    return "\n\n".join(parts)


def mine(repo_arg: str, ref: str | None, max_tasks: int, out: Path, scan: int = 200,
         setup: list[str] | None = None) -> list[Outcome]:
    """Mine up to `max_tasks` proved tasks from the history of `repo_arg` (a local git repository) at `ref`. `setup`:
    commands that give the tests what they import (e.g. `uv venv && uv pip install -e .[test]`), run in the sandbox
    with the package index before each test run and written into every task (`setup:`); the tests then run with
    the `.venv` they make, if any."""
    repo = Path(repo_arg).resolve()
    if not (repo / ".git").exists() and not (repo / "HEAD").exists():
        raise ConfigError(f"{repo_arg}: not a git repository (tasks mine reads a local clone; clone a URL first)")
    out = Path(out)
    (out / "solutions").mkdir(parents=True, exist_ok=True)
    name_base = _slug(repo.name.removesuffix(".git"))
    outcomes: list[Outcome] = []
    commits = _git(repo, "rev-list", "--no-merges", f"--max-count={scan}", ref or "HEAD").split()
    for commit in commits:
        if sum(o.kept for o in outcomes) >= max_tasks:
            break
        subject = _git(repo, "log", "-1", "--format=%s", commit).strip()
        parents = _git(repo, "log", "-1", "--format=%P", commit).split()
        if len(parents) != 1:
            outcomes.append(Outcome(commit, subject, False, "the root commit (no parent to start from)"))
            continue
        changed = _git(repo, "diff", "--name-only", parents[0], commit).split("\n")
        tests = [f for f in changed if TEST_FILE.search(f)]
        code = [f for f in changed if f and CODE_FILE.search(f) and f not in tests]
        if not tests:
            outcomes.append(Outcome(commit, subject, False, "no tests touched"))
            continue
        if not code:
            outcomes.append(Outcome(commit, subject, False, "no code changed (only tests)"))
            continue
        outcomes.append(_candidate(repo, commit, parents[0], subject, tests, code, out, f"{name_base}_{commit[:8]}",
                                   setup or []))
    return outcomes


def _candidate(repo: Path, commit: str, parent: str, subject: str, tests: list[str], code: list[str], out: Path,
               name: str, setup: list[str]) -> Outcome:
    from beyond_vibes.tasks import load_task
    from beyond_vibes.validate import validate_task

    message = _git(repo, "log", "-1", "--format=%B", commit).strip()
    issue = _issue_text(repo, message, commit)
    # The commit's tests, hidden from the agent: the checks copy them into the workspace first.
    files = out / "check-files" / name
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    for t in tests:  # a test file the commit deleted has no version to bring
        shown = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{t}"], capture_output=True)
        if shown.returncode == 0:
            (files / t).parent.mkdir(parents=True, exist_ok=True)
            (files / t).write_bytes(shown.stdout)
    solution = _git(repo, "diff", "--binary", parent, commit, "--", *code)
    (out / "solutions" / f"{name}.patch").write_text(solution)
    pytest = f"cp -r /opt/bv/task-checks/. . && {PYTEST} "  # the hidden tests, then pytest
    patch = out / "solutions" / f"{name}.patch"
    before, _ = _pytest_outcomes(repo, parent, files, None, setup)  # the commit's tests on the parent's code
    before_own = _pytest_outcomes(repo, parent, None, None, setup)[0] or {}  # the parent's own tests, as they were
    after, why_not = _pytest_outcomes(repo, parent, files, patch, setup)
    again, _ = _pytest_outcomes(repo, parent, files, patch, setup)
    if after is None:
        hint = "" if setup else "; --setup installs what they import"
        return _drop(commit, subject, files, out, name, f"the tests do not run ({why_not}){hint}")
    if after != again:
        flaky = sorted(t for t in after if after.get(t) != (again or {}).get(t))
        return _drop(commit, subject, files, out, name, f"flaky: {', '.join(flaky[:3])} changed between two runs")
    failing_after = sorted(t for t, r in after.items() if r != "PASSED")
    before = before or {}
    # Passed before (with the tests as they were) and still passes: pass-to-pass; the rest that passes now and
    # did not with the commit's tests on the old code: fail-to-pass (an import of a new function fails a whole file).
    p2p = sorted(t for t, r in after.items() if r == "PASSED" and before_own.get(t) == "PASSED")
    f2p = sorted(t for t, r in after.items() if r == "PASSED" and before.get(t) != "PASSED" and t not in p2p)
    if failing_after and not f2p:
        hint = "" if setup else "; --setup installs what they import"
        return _drop(commit, subject, files, out, name, f"tests fail on the commit itself (a service or set-up they need?): "
                     f"{', '.join(failing_after[:3])} ({why_not}){hint}")
    if not f2p:
        return _drop(commit, subject, files, out, name, "no test that the commit makes pass")
    prompt = message + (f"\n\n{issue}" if issue else "")
    checks = [{"name": "fail_to_pass", "command": pytest + " ".join(map(shlex.quote, f2p))}]
    if p2p:
        checks.append({"name": "pass_to_pass", "command": pytest + " ".join(map(shlex.quote, p2p))})
    archetype = "repo_maintenance" if re.match(r"(fix|bug|repair|correct)", subject.lower()) else "feature_implementation"
    task = {
        "name": name, "description": f"Mined from {repo.name} commit {commit[:12]}: {subject}", "archetype": archetype,
        "repository": {"path": str(repo), "ref": parent}, "max_turns": 30, "timeout_s": 1800,
        "guidelines": {"matches_the_commit": f"The change does what commit {commit[:12]} did: {subject}",
                       "tests_hidden": "The commit's tests are the harness's: the agent is not shown them"},
        "prompt": prompt + "\n", **({"setup": setup} if setup else {}), "checks": checks,
        "check_files": f"check-files/{name}",
        "solution": {"patch": f"solutions/{name}.patch"},
    }
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(task, sort_keys=False, allow_unicode=True, width=120))
    result = validate_task(load_task(str(path), out))
    if not result.sound:
        path.unlink()
        return _drop(commit, subject, files, out, name, f"tasks validate: {result.problem}")
    return Outcome(commit, subject, True, name, f2p, p2p)


def _drop(commit: str, subject: str, files: Path, out: Path, name: str, why: str) -> Outcome:
    shutil.rmtree(files, ignore_errors=True)
    (out / "solutions" / f"{name}.patch").unlink(missing_ok=True)
    return Outcome(commit, subject, False, why)


def _pytest_outcomes(repo: Path, base: str, test_files: Path | None, patch: Path | None,
                     setup: list[str]) -> tuple[dict[str, str] | None, str]:
    """Each test's outcome at `base` with the commit's test files (and `patch` applied), in the agent sandbox, after
    `setup`; (None, why) when the setup failed or pytest collected nothing or could not run."""
    from beyond_vibes.checks import run_setup
    from beyond_vibes.sandbox import hand_over, workspace
    from beyond_vibes.tasks import Task

    with tempfile.TemporaryDirectory(prefix="bv-mine-") as tmp:
        task = Task(name="mine-probe", archetype="repo_maintenance", prompt="-", repository={"path": str(repo), "ref": base},
                    setup=setup, source=Path(tmp) / "tasks" / "mine-probe.yaml")
        with workspace(task) as ws:
            if patch is not None:
                ws.git.run("apply", "--whitespace=nowarn", str(patch))
            if test_files is not None:
                shutil.copytree(test_files, ws.repo, dirs_exist_ok=True)
            hand_over(ws.repo, ws.user)
            _, problem = run_setup(task, ws)
            if problem:
                return None, problem
            code, output, _ = ws.run(f"{PYTEST} -rA", 600)
    results = _results(output)
    return (results or None), _first_error(output)


def _first_error(output: str) -> str:
    """The line that says why pytest ran nothing: the first `E   ...Error: ...`, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    found = next((line.removeprefix("E").strip() for line in lines if re.match(r"E\s+\w*(Error|Exception)\b", line)),
                 None)
    return (found or (lines[-1] if lines else "no output"))[:160]
