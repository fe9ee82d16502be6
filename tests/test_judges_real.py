"""Curate, label, compile and evaluate on real parts: simulations recorded by real pi in a SQLite MLflow store,
human assessments written through MLflow's API, a real llama-server judge (SmolLM2) behind the recording proxy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import AssessmentSource

from beyond_vibes.catalog import load_catalog
from beyond_vibes.curate import curate, dataset_records
from beyond_vibes.errors import ConfigError
from beyond_vibes.judges.compile import compile_judge, judge_inputs, judge_state
from beyond_vibes.judges.evaluate import evaluate
from beyond_vibes.judges.rubric import load_rubric
from beyond_vibes.simulate import simulate
from beyond_vibes.tasks import load_task
from beyond_vibes.tracking import tracking_client
from conftest import REPO, SMOLLM, our_processes, write_catalog
from scripted_llm import ScriptedLLM, Step, bash
from test_success_path import FIX_SCRIPT

pytestmark = pytest.mark.integration
ARCHETYPE = "repo_maintenance"


def scripted_runs(settings, tmp_path, scripts: list[list[Step]]):
    results = []
    for steps in scripts:
        with ScriptedLLM(steps) as llm:
            spec = {"name": "scripted", "family": "test", "provider": "scripted", "model_id": llm.model_id,
                    "base_url": llm.base_url, "context_window": 16384}
            model, quant = load_catalog(write_catalog(tmp_path, [spec])).choose("scripted")
            results.append(simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings))
    return results


def test_curate_is_self_contained_deduplicated_and_incremental(settings, tmp_path):
    first = scripted_runs(settings, tmp_path, [FIX_SCRIPT, [bash("ls"), Step(content="Nothing to fix.")]])
    r1 = curate(settings, "fix-v1", task="fix_failing_test")
    assert (r1.added, r1.already) == (2, 0)
    again = curate(settings, "fix-v1", task="fix_failing_test")
    assert (again.added, again.already) == (0, 2)  # re-curating adds nothing
    scripted_runs(settings, tmp_path, [[Step(content="I won't do that.")]])
    r3 = curate(settings, "fix-v1", task="fix_failing_test")
    assert (r3.added, r3.already) == (1, 2)
    records = {r["run_id"]: r for r in dataset_records(settings, "fix-v1")}
    assert len(records) == 3
    good = records[first[0].run_id]
    # Self-contained for a judge: task, guidelines, outcome, checks, diff, final message, transcript, metrics.
    assert good["archetype"] == ARCHETYPE and "fix_the_code" in good["guidelines"] and good["status"] == "success"
    assert [c["name"] for c in good["checks"]] == ["tests_pass", "tests_untouched"]
    assert "+    return sum(values) / len(values)" in good["diff"] and "off-by-one" in good["final_message"]
    assert good["transcript"][0].startswith("1. bash: python3 -m unittest") and good["trace_id"] == first[0].trace_id
    assert good["metrics"]["tool_calls"] == 6
    assert curate(settings, "fix-v1", status=["success"]).matched == 1
    with pytest.raises(ConfigError, match="--since: 'yesterday' is not a date"):
        curate(settings, "fix-v1", since="yesterday")


def test_a_file_store_is_refused_with_the_fix(tmp_path):
    from beyond_vibes.settings import Settings

    with pytest.raises(ConfigError, match="is a file store; evaluation datasets need a SQL store"):
        curate(Settings(MLFLOW_TRACKING_URI=str(tmp_path / "mlruns")), "x")


def test_human_assessments_in_mlflow_are_labels(settings, tmp_path, monkeypatch):
    judges = tmp_path / "judges"
    shutil.copytree(REPO / "judges", judges, ignore=shutil.ignore_patterns("compiled", "labels"))
    s = settings.model_copy(update={"judges_dir": judges})
    [run] = scripted_runs(s, tmp_path, [FIX_SCRIPT])
    before = judge_inputs(s, ARCHETYPE)
    assert before.labels == []
    source = AssessmentSource(source_type="HUMAN", source_id="reviewer@example.com")
    mlflow.log_feedback(trace_id=run.trace_id, name="determinism", value=5, rationale="tests pass", source=source)
    mlflow.log_feedback(trace_id=run.trace_id, name="diff_hygiene", value=4, source=source)
    mlflow.log_feedback(trace_id=run.trace_id, name="not_a_criterion", value=1, source=source)  # ignored
    after = judge_inputs(s, ARCHETYPE)
    [label] = after.labels
    assert label.scores == {"determinism": 5, "diff_hygiene": 4} and label.labeller == "reviewer@example.com"
    assert label.record["run_id"] == run.run_id and label.record["status"] == "success"
    assert after.labels_sha256 != before.labels_sha256  # a new human label makes the judge stale


def test_real_judge_compiles_and_scores_and_evaluating_again_costs_nothing(settings, tmp_path):
    judges = tmp_path / "judges"
    shutil.copytree(REPO / "judges", judges, ignore=shutil.ignore_patterns("compiled"))
    (tmp_path / "judge").mkdir()
    catalog = write_catalog(tmp_path / "judge", [{**SMOLLM, "engine": {"ctx": 8192, "threads": 2, "parallel": 2}}])
    s = settings.model_copy(update={"judges_dir": judges, "models_file": catalog, "judge_model": "smollm2-135m"})
    # Small labels file of real records (the shipped ones, trimmed to 7) so compile stays short on a CPU.
    labels = (REPO / "judges" / "labels" / f"{ARCHETYPE}.jsonl").read_text().splitlines()[:7]
    (judges / "labels" / f"{ARCHETYPE}.jsonl").write_text("\n".join(labels) + "\n")
    result = compile_judge(s, ARCHETYPE, "bootstrap", seed=1)
    meta = result.meta
    assert meta["judge_lm"] == "local:smollm2-135m:Q4_1" and len(meta["judge_model_sha256"]) == 64
    assert (meta["train"], meta["heldout"]) == (4, 3) and result.requests > 0
    assert judge_state(s, ARCHETYPE).state == "fresh"
    client, _ = tracking_client(s, f"{s.mlflow_experiment}-judges")
    compile_run = client.get_run(result.run_id)
    assert compile_run.data.tags["bv.kind"] == "judge_compile" and "agreement.md" in {f.path for f in client.list_artifacts(result.run_id)}
    # Two runs to judge, curated; evaluate: every criterion lands on each trace as feedback from this judge.
    runs = scripted_runs(s, tmp_path, [FIX_SCRIPT, [bash("ls"), Step(content="Nothing to fix.")]])
    curate(s, "eval-v1")
    first = evaluate(s, "eval-v1", kinds=("dspy",))
    res = first.by_archetype[ARCHETYPE]
    assert res.scored + res.errors == 2 and first.requests >= 2
    rubric = load_rubric(ARCHETYPE, judges)
    for run in runs:
        trace = mlflow.get_trace(run.trace_id)
        judged = [a for a in trace.info.assessments if a.source.source_id == f"bv-judge/{ARCHETYPE}@{meta['version']}"]
        assert {a.name for a in judged} == {c.name for c in rubric.criteria}
        for a in judged:  # schema-valid by construction: on the scale, or an error, never anything else
            c = rubric.criterion(a.name)
            assert (a.feedback.error is not None) or a.feedback.value in c.values
            assert a.metadata["judge_version"] == meta["version"]
        run_data = tracking_client(s)[0].get_run(run.run_id).data
        if res.errors == 0:
            assert "judge_determinism" in run_data.metrics and run_data.tags["bv.judge"].endswith(meta["version"])
    # The proxy counted every judge request; the second evaluation makes none.
    # (A record the judge could not answer is an error assessment, not a score: it is asked again.)
    second = evaluate(s, "eval-v1", kinds=("dspy",))
    assert second.by_archetype[ARCHETYPE].skipped == res.scored and (second.requests == 0) == (res.errors == 0)
    # A stale judge is refused with the command that fixes it.
    (judges / "labels" / f"{ARCHETYPE}.jsonl").write_text("\n".join(labels[:6] + [labels[0].replace('"id": "', '"id": "x-')]) + "\n")
    with pytest.raises(ConfigError, match="judge repo_maintenance is stale \\(the labels changed\\); run `beyond-vibes judges compile"):
        evaluate(s, "eval-v1")
    print(json.dumps(meta["agreement"]["compiled"], indent=None)[:300])


class Pty:
    """A CLI in a real pseudo-terminal, driven as a person would: wait for a prompt, type a line."""

    def __init__(self, args: list[str], env: dict):
        import pty

        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 120) -> str:
        import select

        deadline = time.time() + timeout
        while text not in self.seen:
            left = deadline - time.time()
            assert left > 0, f"no {text!r} in:\n{self.seen[-3000:]}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    chunk = ""
                assert chunk or text in self.seen, f"ended before {text!r}:\n{self.seen[-3000:]}"
                self.seen += chunk
        head, _, self.seen = self.seen.partition(text)
        return head + text

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def close(self) -> int:
        code = self.proc.wait(timeout=60)
        os.close(self.master)
        return code


def test_judges_label_in_a_terminal_writes_human_labels_that_compile_reads(settings, tmp_path):
    judges = tmp_path / "judges"
    shutil.copytree(REPO / "judges", judges, ignore=shutil.ignore_patterns("compiled", "labels"))
    s = settings.model_copy(update={"judges_dir": judges})
    good, lazy = scripted_runs(s, tmp_path, [FIX_SCRIPT, [bash("ls"), Step(content="Nothing to fix.")]])
    env = {**os.environ, "MLFLOW_TRACKING_URI": s.tracking_uri, "BV_EXPERIMENT": s.mlflow_experiment,
           "BV_HOME": str(s.home), "BV_JUDGES_DIR": str(judges), "COLUMNS": "120"}
    exe = [str(Path(sys.executable).parent / "beyond-vibes"), "judges", "label", "--archetype", ARCHETYPE,
           "--labeller", "alice@example.com"]
    term = Pty(exe, env)
    shown = term.expect("determinism score (1-5)")
    assert "2 repo_maintenance record(s)" in shown and f"run {good.run_id}" in shown and "OUTCOME: success" in shown
    term.send("7")  # off the scale: asked again
    term.expect("'7' is not on the scale 1-5")
    term.send("5")
    term.expect("why")
    term.send("")  # a label needs its reason: asked again
    term.expect("why")
    term.send("all tests pass after a one-line fix")
    term.expect("diff_hygiene score")
    term.send("s")  # skipped: never written
    term.expect("reproducibility score")
    term.send("q")
    assert "stopped (run again to resume)" in term.expect("resume)") and term.close() == 0
    # A second session resumes: determinism is not asked again for the first record.
    term = Pty(exe, env)
    shown = term.expect("score (")
    assert "diff_hygiene score" in shown.splitlines()[-1] and f"run {good.run_id}" in shown
    term.send("4")
    term.expect("why")
    term.send("only mathutils.py changed")
    for _ in ("reproducibility", "sycophancy", "false_refusal"):
        term.expect("score (")
        term.send("s")
    shown = term.expect("determinism score")  # the second record
    assert f"run {lazy.run_id}" in shown and "OUTCOME: failed" in shown
    term.send("1")
    term.expect("why")
    term.send("it listed the files and gave up; tests still fail")
    term.expect("score (")
    term.send("q")
    term.expect("resume)")
    assert term.close() == 0
    labels = {lb.record["run_id"]: lb for lb in judge_inputs(s, ARCHETYPE).labels}
    assert set(labels) == {good.run_id, lazy.run_id}
    assert labels[good.run_id].scores == {"determinism": 5, "diff_hygiene": 4}
    assert labels[good.run_id].rationales == {"determinism": "all tests pass after a one-line fix",
                                              "diff_hygiene": "only mathutils.py changed"}
    assert labels[lazy.run_id].scores == {"determinism": 1}
    assert all(lb.source == "human" and lb.labeller == "alice@example.com" for lb in labels.values())


def test_mlflow_guidelines_judge_each_task_guideline_with_the_real_1_5b(settings, tmp_path):
    """MLflow's built-in Guidelines scorer on the local 1.5B judge (models.yaml `judge:`): a yes/no verdict with a
    rationale per task guideline on each trace, requests counted at the proxy, none the second time."""
    judges = tmp_path / "judges"
    shutil.copytree(REPO / "judges", judges, ignore=shutil.ignore_patterns("compiled"))
    s = settings.model_copy(update={"judges_dir": judges})
    [run] = scripted_runs(s, tmp_path, [FIX_SCRIPT])
    curate(s, "guide-v1")
    first = evaluate(s, "guide-v1", kinds=("guidelines",))
    g = first.guidelines
    assert g.judge_lm == "local:qwen2.5-coder-1.5b:Q4_K_M" and first.by_archetype == {}
    assert g.verdicts + g.errors == 2 and first.requests >= 2 and g.self_judged == 0
    found = {a.name: a for a in mlflow.get_trace(run.trace_id).info.assessments
             if a.source.source_id == "mlflow-guidelines@local:qwen2.5-coder-1.5b:Q4_K_M"}
    assert set(found) == {"guideline.fix_the_code", "guideline.minimal_change"}
    for a in found.values():
        assert a.metadata["judge_kind"] == "mlflow.Guidelines" and a.metadata["guideline"]
        assert (a.feedback.error is not None) or (a.feedback.value in ("yes", "no") and a.rationale)
    print("guidelines:", {n: (a.feedback.value, (a.rationale or "")[:120]) for n, a in found.items()})
    second = evaluate(s, "guide-v1", kinds=("guidelines",))
    assert second.guidelines.skipped == g.verdicts and (second.requests == 0) == (g.errors == 0)
    assert our_processes() == []


def tiny_labels(n: int) -> list[dict]:
    """Short reviewer labels of `determinism` only: a fix whose checks pass (5) or a run that changed nothing and
    whose checks fail (1), so alignment on a CPU stays short."""
    out = []
    for i in range(n):
        good = i % 2 == 0
        record = {"task": "fix_failing_test", "archetype": ARCHETYPE, "prompt": "Make the failing test pass.",
                  "final_message": "Fixed mean()." if good else "I could not find the problem.",
                  "checks": [{"name": "tests", "passed": good}],
                  "diff": "-    return sum(values) / (len(values) - 1)\n+    return sum(values) / len(values)" if good else ""}
        out.append({"id": f"tiny-{i}", "record": record, "scores": {"determinism": 5 if good else 1},
                    "rationales": {"determinism": "the checks pass" if good else "the checks fail"},
                    "source": "reviewer:test-script", "labeller": "tests/test_judges_real.py"})
    return out


def test_an_aligned_make_judge_judge_with_the_real_1_5b(settings, tmp_path):
    """MLflow make_judge aligned to the labels with MLflow's SIMBA optimizer on the local 1.5B judge, measured on
    held-out labels; evaluate writes its scores on the trace, requests counted at the proxy, none the second time."""
    from beyond_vibes.judges.aligned import align_archetype, aligned_path

    judges = tmp_path / "judges"
    shutil.copytree(REPO / "judges", judges, ignore=shutil.ignore_patterns("compiled", "aligned"))
    (judges / "labels" / f"{ARCHETYPE}.jsonl").write_text("".join(json.dumps(lb) + "\n" for lb in tiny_labels(17)))
    s = settings.model_copy(update={"judges_dir": judges})
    aligned = align_archetype(s, ARCHETYPE, ["determinism", "diff_hygiene"], bsize=2, candidates=1)
    assert aligned.skipped == {"diff_hygiene": "0 training and 0 held-out label(s); MLflow's alignment needs 10 to "
                                               "train on and 1 held out"}
    c = aligned.criteria["determinism"]
    assert (c["train"], c["heldout"]) == (10, 7) and c["train_sources"] == {"reviewer:test-script": 10}
    a = c["agreement"]["aligned"]
    assert a["n"] == 7 and a["majority_exact"] is not None and len(a["exact_ci"]) == 2
    assert c["trust"].startswith("trusted" if a["exact"] > a["majority_exact"] else "untrusted")
    assert aligned.requests >= 2 * 7 + 2  # held out twice (unaligned, aligned) plus SIMBA's own calls
    data = json.loads(aligned_path(judges, ARCHETYPE).read_text())
    assert data["judge_lm"] == "local:qwen2.5-coder-1.5b:Q4_K_M" and data["label_sources"] == {"reviewer:test-script": 17}
    print("aligned determinism:", {k: a[k] for k in ("exact", "exact_ci", "majority_exact")},
          "unaligned", c["agreement"]["unaligned"]["exact"], "requests", aligned.requests, "s", round(aligned.seconds))

    [run] = scripted_runs(s, tmp_path, [FIX_SCRIPT])
    curate(s, "aligned-v1")
    first = evaluate(s, "aligned-v1", kinds=("aligned",))
    got = first.aligned[ARCHETYPE]
    assert got.scored + got.errors == 1 and first.requests >= 1 and first.by_archetype == {}
    [found] = [x for x in mlflow.get_trace(run.trace_id).info.assessments if x.name == "aligned.determinism"]
    assert found.source.source_id == f"mlflow-aligned/{ARCHETYPE}.determinism@{c['version']}"
    assert found.metadata["judge_lm"] == "local:qwen2.5-coder-1.5b:Q4_K_M" and found.metadata["trust"] == c["trust"]
    assert (found.feedback.error is not None) or (found.feedback.value in range(1, 6) and found.rationale)
    second = evaluate(s, "aligned-v1", kinds=("aligned",))
    assert (second.requests == 0) == (got.errors == 0) and second.aligned[ARCHETYPE].skipped == got.scored
    assert our_processes() == []
