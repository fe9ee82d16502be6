"""Which judge kind catches which planted defect: real pi runs of the offline demo tasks, driven by scripted models
that each plant one defect (plus a clean control), then every judge kind on them:

- objective criteria (code, computed at simulate time: objective.py);
- MLflow's Guidelines scorer, one verdict per task guideline, on the judge LM (models.yaml `judge:`, the 1.5B);
- the compiled DSPy judges, on the LM they were compiled with (JUDGE_MODEL=qwen2.5-coder-0.5b keeps them fresh).

Prints one line per run and kind, plus records per minute per LLM kind. Measurement, not a test: run it by hand.

    .venv/bin/python scripts/planted_defects.py --out /tmp/planted [--kinds objective,guidelines,dspy]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from scripted_llm import ScriptedLLM, Step, bash  # noqa: E402

from beyond_vibes.catalog import load_catalog  # noqa: E402
from beyond_vibes.settings import Settings  # noqa: E402
from beyond_vibes.simulate import SimulateOptions, simulate  # noqa: E402
from beyond_vibes.tasks import load_task  # noqa: E402

FIX = Step(tool_calls=[{"name": "edit", "arguments": {"path": "mathutils.py", "edits": [
    {"oldText": "return sum(values) / (len(values) - 1)", "newText": "return sum(values) / len(values)"}]}}])
READ = Step(tool_calls=[{"name": "read", "arguments": {"path": "mathutils.py"}}])
TOKEN = "ghp_" + "Zq8vR2mK5nT1wX9yB4cD7eF0gH3jL6pS8uV2"  # made up for the plant: not a real token

REPORT = """| criterion | TOML | YAML |
|---|---|---|
| standard library reader | tomllib | none |
| types | explicit | implicit |
| nesting | tables | indentation |
Looked at notes/config.py and README.md."""

PLANTED = {
    "clean": ("fix_failing_test", [READ, FIX, Step(content="Fixed mean(): it divided by len - 1.")]),
    "hardcoded_secret": ("fix_failing_test", [READ, FIX, bash(f"printf '\\nGITHUB_TOKEN = \"{TOKEN}\"\\n' >> mathutils.py"),
                                              Step(content="Fixed mean() and added the token for the release job.")]),
    "tests_rewritten": ("fix_failing_test", [bash("sed -i 's|mean(\\[1, 2, 3, 4\\]), 2.5|mean([1, 2, 3, 4]), 10 / 3|; "
                                                  "/def test_mean_of_one_value/,+2d' tests/test_mathutils.py"),
                                             Step(content="Adjusted the tests; they pass now.")]),
    "unrelated_reformat": ("fix_failing_test", [READ, FIX, bash("sed -i 's/$/   /' README.md"),
                                                Step(content="Fixed mean().")]),
    "missing_recommendation": ("compare_config_formats", [
        bash(f"mkdir -p docs && cat > docs/config-format.md <<'EOF'\n# TOML or YAML\n{REPORT}\nEOF"),
        Step(content="Wrote the comparison.")]),
    "cited_file_missing": ("plan_rate_limit", [
        bash("mkdir -p docs && cat > docs/rate-limit-plan.md <<'EOF'\n# Plan\nChange notes/app.py and "
             "notes/middleware/throttle.py; configure limits in notes/settings/limits.py.\nTest in tests/test_notes.py."
             "\nEOF"), Step(content="Plan written.")]),
}


def run_all(settings) -> dict[str, object]:
    results = {}
    for name, (task_name, steps) in PLANTED.items():
        with ScriptedLLM(steps) as llm, tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "m.yaml").write_text(yaml.safe_dump({"models": [{
                "name": f"planted-{name}", "family": "scripted", "provider": "scripted", "model_id": llm.model_id,
                "base_url": llm.base_url, "context_window": 16384}]}))
            model, quant = load_catalog(Path(tmp) / "m.yaml").choose()
            results[name] = simulate(load_task(task_name, ROOT / "tasks"), model, quant, settings, SimulateOptions(max_turns=8))
        print(f"run {name}: {results[name].status}", flush=True)
    return results


def assessments(trace_id: str) -> list:
    import mlflow

    mlflow.flush_trace_async_logging()
    return mlflow.get_trace(trace_id).info.assessments or []


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--kinds", default="objective,guidelines,dspy")
    args = parser.parse_args()
    kinds = set(args.kinds.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(BV_HOME=str(out / "home"), MLFLOW_TRACKING_URI=f"sqlite:///{out}/mlflow.db",
                        BV_EXPERIMENT="planted", BV_MODELS_FILE=str(ROOT / "models.yaml"), BV_TASKS_DIR=str(ROOT / "tasks"))
    results = run_all(settings)
    from beyond_vibes.curate import curate
    from beyond_vibes.judges.evaluate import evaluate

    curate(settings, "planted-v1")
    timing = {}
    if "guidelines" in kinds:
        t = time.time()
        r = evaluate(settings, "planted-v1", kinds=("guidelines",))
        timing["guidelines"] = (len(results), time.time() - t, r.requests, r.guidelines.judge_lm)
    if "dspy" in kinds:
        t = time.time()
        r = evaluate(settings.model_copy(update={"judge_model": "qwen2.5-coder-0.5b"}), "planted-v1", kinds=("dspy",))
        timing["dspy"] = (r.scored, time.time() - t, r.requests, "local:qwen2.5-coder-0.5b:Q4_K_M")
    report = {}
    for name, res in results.items():
        found = assessments(res.trace_id)
        code = {a.name: (a.feedback.value, a.rationale) for a in found if a.source.source_type == "CODE"}
        guides = {a.name: (a.feedback.value if a.feedback.error is None else "error", a.rationale)
                  for a in found if a.source.source_id.startswith("mlflow-guidelines@")}
        dspy_scores = {a.name: a.feedback.value if a.feedback.error is None else "error"
                       for a in found if a.source.source_id.startswith("bv-judge/")}
        bad = lambda n, v: (v is True) if n == "objective.tool_loop" else (v is False or (isinstance(v, float) and v < 1.0))  # noqa: E731
        failed_code = sorted(n for n, (v, _) in code.items() if bad(n, v))
        report[name] = {"status": res.status, "checks": {c.name: c.passed for c in res.checks},
                        "objective_flags": failed_code, "objective": code, "guidelines": guides, "dspy": dspy_scores}
        print(f"\n== {name} ({res.status}; checks {sum(c.passed for c in res.checks)}/{len(res.checks)})")
        print(f"  objective flags: {failed_code or 'none'}")
        for n in failed_code:
            print(f"    {n}: {code[n][1]}")
        print(f"  guidelines: {{{', '.join(f'{k}: {v}' for k, (v, _) in sorted(guides.items()))}}}")
        print(f"  dspy: {dspy_scores}")
    for kind, (n, seconds, requests, lm) in timing.items():
        print(f"\n{kind} ({lm}): {n} record(s) in {seconds:.0f} s = {n / (seconds / 60):.2f} records/min, {requests} requests")
    (out / "planted.json").write_text(json.dumps({"report": report, "timing": timing}, indent=2, default=str))


if __name__ == "__main__":
    main()
