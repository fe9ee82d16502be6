"""Objective criteria, measured in code: hand-made cases for each rule, then real pi runs driven by scripted models
(a broken tool call, an alternating read/list loop, an unrelated file reformatted, plans citing real and invented
paths), read back from MLflow as CODE assessments and run metrics."""

from __future__ import annotations

import json

import mlflow
import pytest

from beyond_vibes.objective import (citation_grounding, diff_hygiene, format_only, objective_criteria,
                                    repeated_cycle, schema_problems)
from beyond_vibes.runtime.proxy import ProxyRecord
from beyond_vibes.simulate import simulate
from beyond_vibes.tasks import load_task
from beyond_vibes.tracking import tracking_client
from conftest import REPO, write_catalog
from scripted_llm import ScriptedLLM, Step, bash
from test_success_path import scripted_model

READ = ("read", {"path": "a.py"})
LS = ("bash", {"command": "ls"})


def test_a_call_or_a_cycle_of_calls_three_times_in_a_row_is_a_loop():
    assert repeated_cycle([READ, LS, READ, LS, READ, LS]) == "calls 1-6: [read(a.py), bash(ls)] x3"
    assert repeated_cycle([LS, READ, READ, READ]) == "calls 2-4: [read(a.py)] x3"
    edit = ("edit", {"path": "a.py"})
    assert repeated_cycle([READ, LS, edit, READ, LS, edit, READ, LS, edit]).startswith("calls 1-9: [read(a.py), bash(ls), edit")
    # Twice is not a loop; nor is reading and listing with work between.
    assert repeated_cycle([READ, LS, READ, LS]) is None
    assert repeated_cycle([READ, LS, edit, READ, ("bash", {"command": "pytest"}), READ, LS]) is None


DIFF = """diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -1,2 +1,2 @@
-def f(x): return x+1
+def f(x): return x + 2
diff --git a/other.py b/other.py
--- a/other.py
+++ b/other.py
@@ -1,3 +1,4 @@
-def g(a,b):
-    return a
+def g(a,b):  
+
+        return a
diff --git a/uv.lock b/uv.lock
--- a/uv.lock
+++ b/uv.lock
@@ -1 +1 @@
-version = 1
+version = 2
"""


def test_diff_hygiene_names_reformatting_and_scope_and_sets_lockfiles_apart():
    assert format_only(["def g(a,b):", "    return a"], ["def g(a,b):  ", "", "        return a"])
    assert not format_only(["x = 1"], ["x = 2"]) and not format_only([], ["new line"])
    h = diff_hygiene(DIFF, ["app.py"])
    assert h.value is False
    assert h.metrics == {"diff_files": 2.0, "diff_format_only_hunks": 1.0, "diff_noise_files": 1.0,
                         "diff_out_of_scope_files": 1.0}
    assert "outside the task's scope: other.py" in h.rationale and "format-only hunks: other.py (1)" in h.rationale
    assert "lockfile/generated (not counted): uv.lock" in h.rationale
    only_app = DIFF.split("diff --git a/other.py")[0]
    assert diff_hygiene(only_app, ["app.py"]).value is True
    # No declared scope: nothing is "outside" it, and the metric is absent rather than 0.
    assert "diff_out_of_scope_files" not in diff_hygiene(only_app, None).metrics
    assert diff_hygiene("", ["app.py"]) is None


def _completion(calls: list[dict], tools: list[dict]) -> ProxyRecord:
    return ProxyRecord(index=0, method="POST", path="/v1/chat/completions", started_at=0.0,
                       request={"messages": [], "tools": tools}, response_tool_calls=calls)


BASH_TOOL = {"type": "function", "function": {"name": "bash", "parameters": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}


def test_schema_adherence_counts_broken_json_and_arguments_off_the_tools_schema():
    rec = _completion([{"name": "bash", "arguments": '{"command": "ls"}'},
                       {"name": "bash", "arguments": '{"command": "ls'},
                       {"name": "bash", "arguments": '{"cmd": "ls"}'},
                       {"name": "unknown_tool", "arguments": '{}'}], [BASH_TOOL])
    total, problems = schema_problems([rec])
    assert total == 4 and len(problems) == 2
    assert "arguments are not valid JSON" in problems[0] and "'command' is a required property" in problems[1]


def test_grounding_looks_cited_paths_up_in_the_base_commit():
    base = {"notes/app.py", "notes/config.py", "README.md"}
    plan = ("diff --git a/docs/plan.md b/docs/plan.md\n--- /dev/null\n+++ b/docs/plan.md\n@@ -0,0 +1,3 @@\n"
            "+Change notes/app.py and notes/config.py.\n+Also notes/limits/bucket.py and docs/plan.md.\n"
            "+Add notes/ratelimit.py (new).\n")
    g = citation_grounding(plan, "", base)
    # notes/ratelimit.py is proposed as new on its line; docs/plan.md is the agent's own file.
    assert g.value == pytest.approx(2 / 3, abs=1e-4) and g.metrics == {"citations": 3.0, "citations_ungrounded": 1.0}
    assert g.rationale == "2/3 cited paths exist at the base commit: not found notes/limits/bucket.py"
    assert citation_grounding(plan, "", None) is None  # the files were not listed: not measured
    assert citation_grounding("", "No paths here.", base) is None  # nothing cited: absent, not a pass


# --- real pi, scripted models ----------------------------------------------------------------------------------

SLOPPY = [
    Step(tool_calls=[{"name": "bash", "raw": '{"command": "ls'}]),  # broken JSON, as a small model sends it
    Step(tool_calls=[{"name": "read", "arguments": {"path": "mathutils.py"}}]),
    bash("ls"),
    Step(tool_calls=[{"name": "read", "arguments": {"path": "mathutils.py"}}]),
    bash("ls"),
    Step(tool_calls=[{"name": "read", "arguments": {"path": "mathutils.py"}}]),
    bash("ls"),
    Step(tool_calls=[{"name": "edit", "arguments": {"path": "mathutils.py", "edits": [
        {"oldText": "return sum(values) / (len(values) - 1)", "newText": "return sum(values) / len(values)"}]}}]),
    bash("sed -i 's/$/   /' README.md"),  # trailing spaces on every line of a file the task is not about
    Step(content="Fixed mean()."),
]


def _assessments(trace_id: str) -> dict:
    mlflow.flush_trace_async_logging()
    return {a.name: a for a in mlflow.get_trace(trace_id).info.assessments or [] if a.source.source_type == "CODE"}


@pytest.mark.integration
def test_a_sloppy_run_is_measured_broken_call_loop_and_reformat(settings, tmp_path):
    with ScriptedLLM(SLOPPY) as llm:
        model, quant = load_catalog_for(llm, tmp_path)
        result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings)
    assert result.status == "success", result.error  # the checks pass: only the objective criteria see the mess
    client, _ = tracking_client(settings)
    m = client.get_run(result.run_id).data.metrics
    assert m["tool_calls_malformed"] == 1 and m["tool_call_error_rate"] == pytest.approx(1 / 10, abs=0.02)
    assert m["loop_detected"] == 1.0 and m["objective_determinism"] == 1.0
    assert m["objective_diff_hygiene"] == 0.0 and m["diff_out_of_scope_files"] == 1 and m["diff_format_only_hunks"] == 1
    found = _assessments(result.trace_id)
    assert set(found) == {"objective.schema_adherence", "objective.tool_loop", "objective.determinism",
                          "objective.diff_hygiene", "objective.no_hardcoded_secrets"}
    assert found["objective.no_hardcoded_secrets"].feedback.value is True
    assert all(a.source.source_id == "bv-objective@1" for a in found.values())
    assert "not valid JSON" in found["objective.schema_adherence"].rationale
    assert found["objective.tool_loop"].feedback.value is True
    # pi repaired the broken call into `ls`, so the cycle starts there: the proxy saw what the model really sent.
    assert found["objective.tool_loop"].rationale == "calls 1-6: [bash(ls), read(mathutils.py)] x3"
    assert "outside the task's scope: README.md" in found["objective.diff_hygiene"].rationale
    assert json.loads(found["objective.diff_hygiene"].metadata["metrics"])["diff_format_only_hunks"] == 1


def load_catalog_for(llm, tmp_path):
    from beyond_vibes.catalog import load_catalog

    return load_catalog(write_catalog(tmp_path, [scripted_model(llm)])).choose("scripted")


def _plan(body: str) -> list[Step]:
    return [bash(f"mkdir -p docs && cat > docs/rate-limit-plan.md <<'EOF'\n{body}\nEOF"), Step(content="Plan written.")]


@pytest.mark.integration
@pytest.mark.parametrize("body, grounded, missing", [
    ("# Plan\nChange notes/app.py and notes/config.py; test in tests/test_notes.py.", 1.0, None),
    ("# Plan\nChange notes/app.py and notes/middleware/limits.py; see notes/throttle.py.", 1 / 3, "notes/throttle.py"),
])
def test_a_plan_citing_invented_paths_fails_grounding(settings, tmp_path, body, grounded, missing):
    with ScriptedLLM(_plan(body)) as llm:
        model, quant = load_catalog_for(llm, tmp_path)
        result = simulate(load_task("plan_rate_limit", REPO / "tasks"), model, quant, settings)
    assert result.status in ("success", "failed"), result.error
    found = _assessments(result.trace_id)
    g = found["objective.citation_grounding"]
    assert g.feedback.value == pytest.approx(grounded, abs=1e-3)
    assert (missing in g.rationale) if missing else "not found" not in g.rationale
    assert found["objective.diff_hygiene"].feedback.value is True  # only docs/ changed


def test_only_planning_and_research_runs_are_graded_on_citations():
    from beyond_vibes.record import SimulationRecord

    rec = SimulationRecord(prompt="", started_at=0.0, archetype="repo_maintenance", base_files=set(),
                           diff="diff --git a/x.md b/x.md\n@@ -0,0 +1 @@\n+see a/b.py\n")
    assert "citation_grounding" not in {o.name for o in objective_criteria(rec)}
    rec.archetype = "architectural_planning"
    assert {o.name for o in objective_criteria(rec)} == {"diff_hygiene", "no_hardcoded_secrets", "citation_grounding"}


def test_a_hardcoded_secret_is_found_and_never_repeated():
    from beyond_vibes.objective import no_hardcoded_secrets

    key = "sk-" + "a1B2c3D4e5F6g7H8i9J0kLmN"
    diff = ("diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1,4 @@\n+import os\n"
            f"+OPENAI_KEY = \"{key}\"\n+DB_PASSWORD = 'hunter2hunter2'\n+token = os.environ['TOKEN']\n")
    o = no_hardcoded_secrets(diff)
    assert o.value is False and o.metrics == {"secrets_added": 2.0}
    assert "app.py (added line 2): API key (sk-...)" in o.rationale and "app.py (added line 3): credential literal" in o.rationale
    assert key not in o.rationale and "hunter2" not in o.rationale
    clean = diff.replace(f'"{key}"', "os.environ['OPENAI_KEY']").replace("'hunter2hunter2'", "'changeme-in-prod'")
    assert no_hardcoded_secrets(clean).value is True
