"""Scorers: one model answer + the item -> pass/fail, what was read from the answer, and why.

`numeric` reads the final number (after `Answer:`, `####` or `\\boxed{}`, else the last number; commas, currency,
units and fractions understood) and compares it with a tolerance. `analysis` compares the normalised final answer
with the expected one(s). `code` runs the answer's Python against the item's tests in a subprocess (scratch
directory, the agent's unprivileged user, no secrets in its environment, time and memory limits): the model's code is
as untrusted as an agent. `judge` asks a compiled judge (see `judge_scorer`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from beyond_vibes.quick_eval.sets import EvalSet, Item


@dataclass
class Score:
    passed: bool
    extracted: str | None  # what the scorer read from the answer (None: nothing usable)
    detail: str = ""  # why it failed, one line
    value: float | None = None  # judge: the normalised score 0..1


Scorer = Callable[[EvalSet, Item, str], Score]

_NUMBER = re.compile(r"""
    (?<![\w.])                                   # not the tail of a word or of another number
    (?P<sign>[-−])?\s?
    [$€£]?\s?
    (?:
        (?P<frac>\d+\s*/\s*\d+)(?!\d)            # 3/4
      | (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?     # 1,234,567.89
        | \d+(?:\.\d+)?(?:[eE][-+]?\d+)?         # 1234.5, 1e6
        | \.\d+)                                 # .5
    )""", re.VERBOSE)
_ANSWER = re.compile(r"(?:final\s+answer|answer)\s*(?:is)?\s*[:=]?\s*[*_`]*\s*[:=]?(.+)", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_HASHES = re.compile(r"####\s*(.+)")


def answer_segment(text: str) -> str | None:
    """The model's declared final answer: the last `\\boxed{}`, `#### x` or `Answer: x` (bold or not), if any."""
    for pattern in (_BOXED, _HASHES, _ANSWER):
        found = pattern.findall(text)
        if found:
            return found[-1].strip().strip("*_` ")
    return None


def _numbers(text: str) -> list[float]:
    out = []
    for m in _NUMBER.finditer(text):
        sign = -1 if m.group("sign") else 1
        if m.group("frac"):
            a, b = (int(x) for x in m.group("frac").replace(" ", "").split("/"))
            if b == 0:
                continue
            out.append(sign * float(Fraction(a, b)))
        else:
            out.append(sign * float(m.group("num").replace(",", "")))
    return out


def parse_number(text: str) -> float | None:
    """The first number in a short text ("$1,234.50" -> 1234.5, "3/4 cup" -> 0.75, "-7 °C" -> -7)."""
    found = _numbers(text)
    return found[0] if found else None


def final_number(text: str) -> float | None:
    """The answer's final number: the first number of its declared answer, else the last number it wrote."""
    segment = answer_segment(text)
    if segment is not None:
        value = parse_number(segment)
        if value is not None:
            return value
    found = _numbers(text)
    return found[-1] if found else None


def numeric(s: EvalSet, item: Item, response: str) -> Score:
    expected = parse_number(str(item.expected))
    got = final_number(response)
    if got is None:
        return Score(False, None, "no number in the answer")
    ok = abs(got - expected) <= s.tolerance * max(1.0, abs(expected))
    shown = f"{got:g}"
    return Score(ok, shown, "" if ok else f"expected {expected:g}, got {shown}")


_SUPERSCRIPTS = str.maketrans({"²": "^2", "³": "^3", "ⁿ": "^n", "·": "*", "×": "*", "−": "-"})


def normalise(text: str) -> str:
    """Lower case; markdown and quotes gone; one space between words; `**`/superscripts as `^`; no trailing stop."""
    t = str(text).translate(_SUPERSCRIPTS).lower().replace("**", "^")
    t = re.sub(r"[*_`\"']", "", t)
    t = re.sub(r"\s+", " ", t).strip()
    return t.rstrip(".;:,!").strip()


def _squeezed(text: str) -> str:
    return text.replace(" ", "")


def analysis(s: EvalSet, item: Item, response: str) -> Score:
    """The declared answer equals an accepted one (spaces aside) or holds it as a whole token; without a declared
    answer, the whole reply must hold it as a whole token."""
    accepted = [normalise(a) for a in (item.expected if isinstance(item.expected, list) else [item.expected])]
    segment = answer_segment(response)
    if segment is not None:
        got = normalise(segment)
        ok = any(_squeezed(got) == _squeezed(a) or _contains(got, a) for a in accepted)
        return Score(ok, segment[:200], "" if ok else f"expected {item.expected!r}")
    got = normalise(response)
    ok = any(_contains(got, a) for a in accepted)
    return Score(ok, response.strip()[:200] if ok else None,
                 "" if ok else f"expected {item.expected!r} (no `Answer:` line)")


def _contains(text: str, token: str) -> bool:
    if not token:
        return False
    return re.search(rf"(?<![a-z0-9]){re.escape(token)}(?![a-z0-9])", text) is not None


_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code(response: str) -> str | None:
    """The answer's code: the last fenced block that defines something, else the last fenced block, else the whole
    answer when it looks like code."""
    blocks = _FENCE.findall(response)
    for block in reversed(blocks):
        if "def " in block or "class " in block or "import " in block:
            return block
    if blocks:
        return blocks[-1]
    return response if re.search(r"^\s*(def|class|import|from)\s", response, re.MULTILINE) else None


# The answer's code runs in the harness's process; its "all passed" line carries a nonce the harness reads from a
# file and removes before the answer runs, so an answer that prints "ok" and exits early does not pass.
_HARNESS = """import os, sys
nonce = open("nonce.txt").read().strip()
os.remove("nonce.txt")
ns = {"__name__": "solution"}
try:
    exec(compile(open("solution.py").read(), "solution.py", "exec"), ns)
except BaseException as e:
    print(f"the answer's code did not run: {type(e).__name__}: {e}"[:300]); sys.exit(3)
for i, test in enumerate(open("tests.txt").read().split("\\x00")):
    try:
        exec(compile(test, f"test {i + 1}", "exec"), ns)
    except BaseException as e:
        print(f"test {i + 1} failed: {test.strip()[:120]} ({type(e).__name__}: {str(e)[:120]})"); sys.exit(1)
print("passed", nonce)
"""


def code(s: EvalSet, item: Item, response: str) -> Score:
    source = extract_code(response)
    if source is None:
        return Score(False, None, "no code in the answer")
    ok, detail = run_python_tests(source, item.tests or [], s.time_limit_s, s.memory_limit_mb)
    return Score(ok, source[:2000], detail)


def run_python_tests(source: str, tests: list[str], time_limit_s: float, memory_limit_mb: int) -> tuple[bool, str]:
    """Run `source` then each test in one process in the agent sandbox (BV_SANDBOX, default auto: no network, none
    of the harness's files, the unprivileged user under a root harness): (all passed, one line on the first failure)."""
    import os
    import secrets

    from beyond_vibes.confinement import TOOLCHAIN, WORKSPACE, Command, Mount, View, agent_user, base_env, get_sandbox, run_to_end, toolchain_dir
    from beyond_vibes.sandbox import hand_over

    sandbox = get_sandbox(os.environ.get("BV_SANDBOX") or "auto")
    user = agent_user() if sandbox.name != "none" else None
    nonce = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="bv-code-") as tmp:
        folder = Path(tmp) / "work"
        folder.mkdir()
        (folder / "solution.py").write_text(source)
        (folder / "tests.txt").write_text("\x00".join(tests))
        (folder / "harness.py").write_text(_HARNESS)
        (folder / "nonce.txt").write_text(nonce)  # read and removed by the harness before the answer's code runs
        hand_over(folder, user)
        mounts = [Mount(folder, WORKSPACE, rw=True), Mount(toolchain_dir(), TOOLCHAIN)]
        work, tools = sandbox.inside(mounts[0]), sandbox.inside(mounts[1])
        env = base_env(View(workspace=work, home=work, tmp=work if sandbox.name == "none" else "/tmp",
                            toolchain_bin=f"{tools}/bin"), user)
        limits = f"ulimit -v {memory_limit_mb * 1024}; ulimit -t {int(time_limit_s) + 1}; ulimit -f 10240; "
        cmd = Command(["bash", "-c", limits + f"exec {tools}/bin/python -I harness.py"], mounts, env, work, "none", user)
        start = time.monotonic()
        code, out, _ = run_to_end(sandbox, cmd, Path(tmp) / "out.txt", time_limit_s)
        if code is None:
            return False, f"timed out after {time_limit_s:g} s"
        text = out[-20000:].decode(errors="replace").strip()
        last = text.splitlines()[-1] if text else ""
        if code == 0 and last == f"passed {nonce}":
            return True, ""
        if code < 0 or code > 128:
            sig = -code if code < 0 else code - 128
            return False, f"killed by signal {sig} after {time.monotonic() - start:.1f} s (time or memory limit)"
        if code == 0:
            return False, "the answer's code exited before the tests finished"
        return False, (last or f"exited with code {code}")[:300]


SCORERS: dict[str, Scorer] = {"numeric": numeric, "analysis": analysis, "code": code}
