"""Do the agent's tests catch bugs? (stdlib only.) For each planted bug (a patch in MUTANTS, the harness's hidden
check files): copy the workspace, apply the patch, run the agent's tests on the copy; every run must fail. An
unpatched copy runs first and must pass, so a failure is the bug's and not the copy's.

    python /opt/bv/checktools/mutant_check.py /opt/bv/task-checks/mutants --python .venv/bin/python -- -q tests

The copy comes first on PYTHONPATH (`<copy>/src` and `<copy>`), ahead of an editable install of the original.
A test suite of `assert True` passes every mutant and fails here, one line per surviving bug.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SKIP = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".coverage", "node_modules")
NO_TESTS = 5  # pytest's exit code when it collected nothing


def run_tests(copy: Path, python: str, args: list[str], timeout: float) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(copy / "src"), str(copy), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        out = subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=copy, env=env,
                             capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    tail = (out.stdout + out.stderr).strip().splitlines()
    return out.returncode, tail[-1] if tail else ""


def apply(patch: Path, copy: Path) -> str | None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    out = subprocess.run(["git", "apply", str(patch)], cwd=copy, env=env, capture_output=True, text=True)
    return None if out.returncode == 0 else out.stderr.strip()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mutants", type=Path)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--timeout", type=float, default=300)
    ours, pytest_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    a = p.parse_args(ours)
    a.pytest_args = pytest_args
    python = str(Path(a.python).absolute()) if os.sep in a.python else a.python
    patches = sorted(a.mutants.glob("*.patch"))
    if not patches:
        print(f"{a.mutants}: no *.patch mutants (the task's check files are missing)")
        return 1
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "clean"
        shutil.copytree(".", clean, ignore=SKIP, symlinks=True)
        code, last = run_tests(clean, python, a.pytest_args, a.timeout)
        if code != 0:
            print(f"the tests do not pass on an unchanged copy of the workspace (exit {code}): {last}")
            return 1
        for patch in patches:
            copy = Path(tmp) / patch.stem
            shutil.copytree(clean, copy, symlinks=True)
            error = apply(patch, copy)
            if error:
                problems.append(f"{patch.stem}: the planted bug does not apply (the code under test changed): {error}")
                continue
            code, last = run_tests(copy, python, a.pytest_args, a.timeout)
            if code == 0:
                problems.append(f"{patch.stem}: the tests still pass with this bug planted ({last})")
            elif code == NO_TESTS:
                problems.append(f"{patch.stem}: no tests ran ({last})")
            else:
                print(f"{patch.stem}: caught (exit {code}: {last})")
            shutil.rmtree(copy, ignore_errors=True)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
