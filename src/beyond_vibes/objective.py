"""Objective criteria: what code can measure about a run, with no LLM opinion in it.

Computed at simulate time from the run's own record (the proxy's raw tool calls, the agent's calls, the diff, the
checks, the files of the base commit) and written twice: as run metrics, and as feedback assessments on the trace
(source CODE, so a reviewer and `judges agreement` can tell them from an LLM judge's). A criterion that does not
apply (no tool call, no checks, nothing cited) is absent, never a fake 0 or a pass.

- schema_adherence: the model's tool calls whose arguments are not valid JSON, or do not match the schema of the
  tool the agent offered (the request's `tools`), per call and as a rate.
- tool_loop: the agent repeating itself, one call (A A A) or a cycle of two or three (read, ls, read, ls, ...).
- determinism: the pass/fail of the task's own build and test checks (the seed's "binary pass/fail on uv sync,
  pytest or build commands").
- diff_hygiene: files touched outside the task's declared `scope`, whitespace- or format-only hunks (a reformatted
  file), with lockfile and generated-file noise reported apart (counted, never penalised).
- no_hardcoded_secrets: the diff adds no private key, cloud/API token or credential-named literal (the finding
  names file and line, never the value).
- citation_grounding (plans and reports): every repository path the agent's documents and final message cite,
  looked up in the base commit's files; a path its own diff creates, or that its line proposes as new, is not a
  citation.

Reproducibility (the same outcome across repeats) needs several runs, so the report computes it, not this module.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field

from beyond_vibes.checktools.plan_check import NEW, cited, is_claim, suffixes, with_folders

SOURCE_ID = "bv-objective@1"  # the assessments' source (CODE); bump when a criterion's meaning changes
PREFIX = "objective."  # assessment names: objective.<criterion>, apart from the LLM rubric's criteria

LOCKFILES = {"uv.lock", "poetry.lock", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "Cargo.lock", "go.sum",
             "flake.lock", "Gemfile.lock", "composer.lock", "Pipfile.lock", "pdm.lock", "bun.lockb"}
GENERATED = ("__pycache__/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", "node_modules/", ".venv/", "dist/",
             "build/", ".egg-info/", ".coverage", ".tox/")
GENERATED_SUFFIXES = (".pyc", ".pyo", ".min.js", ".map", ".egg-info")
DOC_EXTS = (".md", ".rst", ".txt", ".adoc")
LOOP_REPEATS = 3  # a call, or a cycle of calls, this many times in a row


@dataclass(frozen=True)
class Objective:
    name: str  # the criterion (the assessment is PREFIX + name)
    value: float | bool
    rationale: str
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def assessment_name(self) -> str:
        return PREFIX + self.name


# --- schema adherence ------------------------------------------------------------------------------------------


def _tool_schemas(request: dict | None) -> dict[str, dict]:
    out = {}
    for tool in (request or {}).get("tools") or []:
        fn = tool.get("function") or {}
        if fn.get("name"):
            out[fn["name"]] = fn.get("parameters") or {}
    return out


def schema_problems(completions) -> tuple[int, list[str]]:
    """(tool calls the model made, one line per malformed call), from the proxy's raw records: what the model sent,
    before the agent repaired or rejected it. A call to a tool the agent does not have is a hallucinated tool
    (counted apart), not a schema error."""
    import jsonschema

    total, problems = 0, []
    for n, rec in enumerate(completions, start=1):
        schemas = _tool_schemas(rec.request)
        for call in rec.response_tool_calls:
            total += 1
            name, raw = call.get("name") or "?", call.get("arguments") or ""
            try:
                args = json.loads(raw) if raw.strip() else {}
            except ValueError as e:
                problems.append(f"turn {n}: {name}: arguments are not valid JSON ({e.msg} at {e.pos}): {raw[:80]!r}")
                continue
            if name not in schemas:
                continue
            try:
                jsonschema.validate(args, schemas[name])
            except jsonschema.ValidationError as e:
                where = "/".join(str(p) for p in e.absolute_path) or "arguments"
                problems.append(f"turn {n}: {name}: {where}: {e.message[:160]}")
            except jsonschema.SchemaError:
                continue  # the agent's own schema is broken: not the model's error
    return total, problems


def schema_adherence(completions) -> Objective | None:
    total, problems = schema_problems(completions)
    if not total:
        return None
    bad = len(problems)
    why = f"{total - bad}/{total} tool calls well-formed" + (": " + "; ".join(problems[:5]) if problems else "")
    if bad > 5:
        why += f"; and {bad - 5} more"
    return Objective("schema_adherence", round((total - bad) / total, 4), why,
                     {"tool_calls_malformed": float(bad), "tool_call_error_rate": round(bad / total, 4)})


# --- loops -----------------------------------------------------------------------------------------------------


def _call_label(name: str, args: dict) -> str:
    first = next((str(v) for v in args.values() if isinstance(v, str)), "")
    return f"{name}({first[:40]})" if first else name


def repeated_cycle(calls: list[tuple[str, dict]], repeats: int = LOOP_REPEATS, longest: int = 3) -> str | None:
    """The first stretch where one call, or a cycle of up to `longest` calls, repeats `repeats` times in a row;
    None if the agent never does. Calls are equal when their tool and arguments are."""
    keys = [(name, json.dumps(args, sort_keys=True)) for name, args in calls]
    for i in range(len(keys)):
        for period in range(1, longest + 1):
            cycle = keys[i:i + period]
            if len(cycle) < period or (period > 1 and len(set(cycle)) < period):
                continue
            if keys[i:i + period * repeats] == cycle * repeats:
                shown = ", ".join(_call_label(*calls[i + k]) for k in range(period))
                return f"calls {i + 1}-{i + period * repeats}: [{shown}] x{repeats}"
    return None


def tool_loop(agent) -> Objective | None:
    if agent is None or not agent.tool_calls:
        return None
    found = repeated_cycle([(c.name, c.args) for c in agent.tool_calls])
    return Objective("tool_loop", found is not None, found or f"no call or cycle repeated {LOOP_REPEATS} times in a row "
                     f"({len(agent.tool_calls)} calls)")


# --- determinism -----------------------------------------------------------------------------------------------


def determinism(checks) -> Objective | None:
    if not checks:
        return None
    passed = [c for c in checks if c.passed]
    failed = [c.name for c in checks if not c.passed]
    why = f"{len(passed)}/{len(checks)} of the task's checks pass" + (f"; failing: {', '.join(failed)}" if failed else "")
    return Objective("determinism", not failed, why)


# --- diff hygiene ----------------------------------------------------------------------------------------------


@dataclass
class FileDiff:
    path: str
    hunks: list[tuple[list[str], list[str]]] = field(default_factory=list)  # (removed lines, added lines)
    binary: bool = False
    deleted: bool = False


_DIFF_HEADER = re.compile(r"^diff --git a/(.*) b/(.*)$")


def parse_diff(diff: str) -> list[FileDiff]:
    files: list[FileDiff] = []
    cur: FileDiff | None = None
    for line in diff.splitlines():
        if m := _DIFF_HEADER.match(line):
            cur = FileDiff(m.group(2))
            files.append(cur)
            continue
        if cur is None:
            continue
        if line.startswith("deleted file mode"):
            cur.deleted = True
        elif line.startswith(("GIT binary patch", "Binary files")):
            cur.binary = True
        elif line.startswith("@@"):
            cur.hunks.append(([], []))
        elif cur.hunks and line.startswith("-") and not line.startswith("--- "):
            cur.hunks[-1][0].append(line[1:])
        elif cur.hunks and line.startswith("+") and not line.startswith("+++ "):
            cur.hunks[-1][1].append(line[1:])
    return files


def noise(path: str) -> bool:
    """Lockfiles and generated files: a change there is reported apart, never counted as hygiene."""
    name = path.rsplit("/", 1)[-1]
    return (name in LOCKFILES or path.endswith(GENERATED_SUFFIXES)
            or any(path.startswith(g) or f"/{g}" in path or name == g.rstrip("/") for g in GENERATED))


def format_only(removed: list[str], added: list[str]) -> bool:
    """A hunk that only changes whitespace or line breaks: the same characters once all whitespace is gone."""
    if not removed or not added:
        return False
    squash = lambda lines: re.sub(r"\s+", "", "".join(lines))  # noqa: E731
    return squash(removed) == squash(added)


def in_scope(path: str, scope: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in scope)


def diff_hygiene(diff: str, scope: list[str] | None) -> Objective | None:
    files = parse_diff(diff)
    if not files:
        return None
    noisy = [f.path for f in files if noise(f.path)]
    real = [f for f in files if not noise(f.path)]
    reformatted = [(f.path, sum(format_only(r, a) for r, a in f.hunks)) for f in real]
    reformatted = [(p, n) for p, n in reformatted if n]
    outside = [f.path for f in real if scope is not None and not in_scope(f.path, scope)]
    parts = []
    if outside:
        parts.append(f"outside the task's scope: {', '.join(outside[:6])}" + (" ..." if len(outside) > 6 else ""))
    if reformatted:
        parts.append("whitespace/format-only hunks: " + ", ".join(f"{p} ({n})" for p, n in reformatted[:6]))
    if noisy:
        parts.append(f"lockfile/generated (not counted): {', '.join(noisy[:6])}")
    metrics = {"diff_files": float(len(real)), "diff_format_only_hunks": float(sum(n for _, n in reformatted)),
               "diff_noise_files": float(len(noisy))}
    if scope is not None:
        metrics["diff_out_of_scope_files"] = float(len(outside))
    clean = not outside and not reformatted
    head = f"{len(real)} files changed" + ("" if scope is not None else " (the task declares no scope)")
    return Objective("diff_hygiene", clean, "; ".join([head, *parts]), metrics)


# --- hardcoded secrets -----------------------------------------------------------------------------------------

SECRET_PATTERNS = [
    ("private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("API key (sk-...)", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b")),
    # A credential-looking name assigned a literal of 8+ characters that is not a placeholder or a variable.
    ("credential literal", re.compile(r"(?i)\b[\w.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)[\w.-]*"
                                      r"[\"']?\s*[:=]\s*[\"']([^\"'\s$<{}]{8,})[\"']")),
]
PLACEHOLDER = re.compile(r"(?i)(change[-_]?me|example|placeholder|dummy|redacted|xxx+|\*{3,}|your[-_]|<|test)")


def secret_findings(diff: str) -> list[str]:
    """file:line and kind of every secret-looking value the diff adds; never the value itself."""
    found = []
    for f in parse_diff(diff):
        if noise(f.path):
            continue
        n = 0
        for _, added in f.hunks:
            for line in added:
                n += 1
                for kind, pattern in SECRET_PATTERNS:
                    m = pattern.search(line)
                    if m and not PLACEHOLDER.search(m.group(m.lastindex or 0)):
                        found.append(f"{f.path} (added line {n}): {kind}")
                        break
    return found


def no_hardcoded_secrets(diff: str) -> Objective | None:
    if not parse_diff(diff):
        return None
    found = secret_findings(diff)
    why = "no secret-looking value added" if not found else "secret-looking values added: " + "; ".join(found[:6])
    return Objective("no_hardcoded_secrets", not found, why, {"secrets_added": float(len(found))})


# --- citation grounding ----------------------------------------------------------------------------------------


def documents(files: list[FileDiff]) -> str:
    """What the agent wrote as prose: the added lines of its documents."""
    return "\n".join(line for f in files if f.path.lower().endswith(DOC_EXTS) and not f.deleted
                     for _, added in f.hunks for line in added)


def citation_grounding(diff: str, final_message: str, base_files: set[str] | None) -> Objective | None:
    if base_files is None:
        return None
    files = parse_diff(diff)
    known = with_folders(base_files)
    created = with_folders({f.path for f in files if not f.deleted})
    top = {p.split("/", 1)[0] for p in known}
    tails = suffixes(known)
    claims, ungrounded = set(), set()
    for line in (documents(files) + "\n" + (final_message or "")).splitlines():
        for word in cited(line):
            if not is_claim(word, top):
                continue
            path = word.rstrip("/")
            if path in created or path + "/" in created or NEW.search(line):
                continue  # the agent's own new file, or one this line proposes: not a citation
            claims.add(path)
            if not (path in known or path + "/" in known or path in tails or path + "/" in tails):
                ungrounded.add(path)
    if not claims:
        return None
    grounded = len(claims) - len(ungrounded)
    why = f"{grounded}/{len(claims)} cited paths exist at the base commit"
    if ungrounded:
        why += ": not found " + ", ".join(sorted(ungrounded)[:8]) + (" ..." if len(ungrounded) > 8 else "")
    return Objective("citation_grounding", round(grounded / len(claims), 4), why,
                     {"citations": float(len(claims)), "citations_ungrounded": float(len(ungrounded))})


CITING_ARCHETYPES = ("architectural_planning", "comparative_research")


def objective_criteria(rec) -> list[Objective]:
    """Every criterion that applies to this run (SimulationRecord), in a fixed order."""
    found = [schema_adherence(rec.completions), tool_loop(rec.agent), determinism(rec.checks),
             diff_hygiene(rec.diff, rec.scope), no_hardcoded_secrets(rec.diff)]
    if rec.archetype in CITING_ARCHETYPES:
        found.append(citation_grounding(rec.diff, rec.agent.final_text if rec.agent else "", rec.base_files))
    return [o for o in found if o is not None]


def objective_metrics(found: list[Objective]) -> dict[str, float]:
    out: dict[str, float] = {}
    for o in found:
        out[f"objective_{o.name}"] = float(o.value)
        out.update(o.metrics)
    return out
