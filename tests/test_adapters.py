"""LoRA adapters as candidates: a real adapter GGUF written with the `gguf` package for the demo model, served by the
real llama-server (`--lora`), recorded as its own configuration, compared with its base in a quick eval, never
re-using the base's answers; a mismatched or unknown adapter is one line, exit 2, nothing recorded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from beyond_vibes import names as N
from beyond_vibes.catalog import load_catalog
from beyond_vibes.errors import ConfigError
from conftest import SMOLLM, make_test_ggufs, make_test_lora, our_processes
from test_quick_eval import ARITH, write_set  # the 135M model gets some of these right and some wrong

FACTS = [
    {"id": "f1", "prompt": "What is the capital of France?", "expected": "Paris", "difficulty": "easy"},
    {"id": "f2", "prompt": "Which planet is known as the red planet?", "expected": "Mars", "difficulty": "easy"},
    {"id": "f3", "prompt": "What is the chemical symbol of gold?", "expected": "Au", "difficulty": "medium"},
]


@pytest.fixture(scope="module")
def loras(tmp_path_factory):
    base = make_test_ggufs()["Q8_0"]
    folder = tmp_path_factory.mktemp("loras")
    return base, {"shift": make_test_lora(base, folder / "shift.gguf"),
                  "gemma": make_test_lora(base, folder / "gemma.gguf", arch="gemma3")}


def catalog_file(tmp_path, base: Path, adapters: dict) -> Path:
    model = {**SMOLLM, "name": "smol", "quant_tags": ["Q8_0"], "sources": {"Q8_0": {"path": str(base)}},
             "adapters": adapters}
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"default": "smol", "models": [model]}))
    return path


def ask(served, prompt: str) -> str:
    r = httpx.post(f"{served.server.base_url}/chat/completions", timeout=120,
                   json={"messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 24})
    return r.json()["choices"][0]["message"]["content"]


def test_adapters_in_the_catalog_are_checked(tmp_path, loras):
    base, files = loras
    catalog = load_catalog(catalog_file(tmp_path, base, {"shift": {"path": str(files["shift"]), "scale": 0.5}}))
    model = catalog.model("smol")
    assert model.with_adapter("shift").label == "smol+shift" and model.with_adapter(None).adapter is None
    with pytest.raises(ConfigError, match=r"--adapter: model smol has no adapter 'nope' \(models.yaml adapters: shift\)"):
        model.with_adapter("nope")
    bad = tmp_path / "bad"
    bad.mkdir()
    for adapters, message in (({"x": {"path": "a.gguf", "repo_id": "o/r", "file": "a.gguf"}}, "exactly one of"),
                              ({"x": {"package": "pkg"}}, "models.0.adapters.x: .*needs exactly one of file or call"),
                              ({"x": {"repo_id": "o/r"}}, "a repo_id adapter needs file")):
        with pytest.raises(ConfigError, match=message):
            load_catalog(catalog_file(bad, base, adapters))
    # The adapter is chosen per run, never pinned in models.yaml (simulate and quick-eval would disagree about it).
    pinned = catalog_file(bad, base, {"shift": {"path": str(files["shift"])}})
    data = yaml.safe_load(pinned.read_text())
    data["models"][0]["adapter"] = "shift"
    pinned.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"models.0: Value error, adapter is chosen per run \(--adapter NAME"):
        load_catalog(pinned)
    # Two quants with --adapter: each adapter is compared with its own quant's base; the first base is the baseline.
    from beyond_vibes.quick_eval.matrix import baseline_target, targets

    two = catalog_file(bad, base, {"shift": {"path": str(files["shift"])}})
    data = yaml.safe_load(two.read_text())
    data["models"][0]["quant_tags"] = ["Q8_0", "Q4_0"]
    data["models"][0]["sources"]["Q4_0"] = {"path": str(make_test_ggufs()["Q4_0"])}
    two.write_text(yaml.safe_dump(data))
    found = targets(load_catalog(two), "smol", "Q8_0,Q4_0", "shift")
    assert [t.label for t in found] == ["smol:Q8_0", "smol+shift:Q8_0", "smol:Q4_0", "smol+shift:Q4_0"]
    assert baseline_target(found, None, "shift").label == "smol:Q8_0"


def test_a_real_adapter_changes_greedy_answers_and_is_its_own_configuration(settings, tmp_path, loras):
    from beyond_vibes.identity import served_id, served_parts
    from beyond_vibes.serving import serve_model

    base, files = loras
    catalog = load_catalog(catalog_file(tmp_path, base, {"shift": {"path": str(files["shift"])},
                                                         "half": {"path": str(files["shift"]), "scale": 0.5}}))
    model = catalog.model("smol")
    answers, ids, parts = {}, {}, {}
    for name in (None, "shift", "half"):
        variant = model.with_adapter(name)
        with serve_model(variant, "Q8_0", settings, models_dir=tmp_path) as served:
            answers[name] = ask(served, "What is the capital of France?")
            ids[name], parts[name] = served_id(served_parts(served)), served_parts(served)
            args = served.server.engine_args
            if name == "shift":
                assert args[args.index("--lora") + 1] == str(files["shift"])
            elif name == "half":
                assert args[args.index("--lora-scaled") + 1] == f"{files['shift']}:0.5"
            else:
                assert "--lora" not in args and "--lora-scaled" not in args
    # Temperature 0, the same prompt: the adapter answers otherwise (it was loaded and applied).
    assert answers[None] != answers["shift"], answers
    assert len(set(ids.values())) == 3  # three configurations: never pooled
    assert "adapter" not in parts[None]
    assert parts["shift"]["adapter"]["name"] == "shift" and len(parts["shift"]["adapter"]["sha256"]) == 64
    assert parts["half"]["adapter"]["scale"] == 0.5
    assert our_processes() == []


def test_a_mismatched_or_tampered_adapter_is_one_line_exit_2_and_records_nothing(settings, tmp_path, loras):
    base, files = loras
    config = catalog_file(tmp_path, base, {"gemma": {"path": str(files["gemma"])},
                                           "tampered": {"path": str(files["shift"]), "sha256": "0" * 64},
                                           "model": {"path": str(base)}})
    write_set(tmp_path / "evals", "arith", ARITH[:2])
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "BV_EXPERIMENT": settings.mlflow_experiment,
           "BV_HOME": str(settings.home), "BV_EVALS_DIR": str(tmp_path / "evals")}
    exe = Path(sys.executable).parent / "beyond-vibes"
    for adapter, message in (("gemma", "the adapter is for architecture gemma3, the model smol is llama"),
                             ("tampered", "models.yaml says 000000000000"),
                             ("model", "is a GGUF of type model, not an adapter"),
                             ("nope", "no evaluated model has an adapter 'nope' (adapters: smol+gemma")):
        out = subprocess.run([str(exe), "quick-eval", "--set", "arith", "--adapter", adapter, "--config", str(config)],
                             env=env, capture_output=True, text=True, timeout=300)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and message in lines[0], (adapter, out.stderr)
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    assert not [e for e in client.search_experiments() if e.name.startswith(settings.mlflow_experiment)
                and client.search_runs([e.experiment_id])]
    assert our_processes() == []


class Frontier:
    """A stand-in for a frontier API (unreachable from here), speaking OpenAI's protocol: it knows every answer."""

    def __init__(self):
        from scripted_llm import ScriptedLLM, Step

        answers = {i["prompt"]: i["expected"] for i in ARITH + FACTS}

        class Oracle(ScriptedLLM):
            def step_for(self, body: dict) -> Step:
                return Step(content=f"Answer: {answers[body['messages'][-1]['content']]}")

        self.server = Oracle([], model_id="frontier-1")


def test_base_and_adapter_side_by_side_with_out_of_domain_sets(settings, tmp_path, loras):
    from beyond_vibes.quick_eval.matrix import run_matrix

    base, files = loras
    settings = settings.model_copy(update={"evals_dir": tmp_path / "evals"})
    write_set(tmp_path / "evals", "arith", ARITH)
    write_set(tmp_path / "evals", "facts", FACTS, scorer="analysis")
    frontier = Frontier().server
    with frontier:
        path = catalog_file(tmp_path, base, {"shift": {"path": str(files["shift"])}})
        data = yaml.safe_load(path.read_text())
        data["models"].append({"name": "frontier", "family": "api", "provider": "frontier-co", "model_id": "frontier-1",
                               "base_url": frontier.base_url, "context_window": 4096})
        path.write_text(yaml.safe_dump(data))
        catalog = load_catalog(path)

        def run():
            return run_matrix(settings, catalog, ["arith"], "smol,frontier", None, adapter="shift", ood=["facts"],
                              ood_points=5)

        first = run()
        # The upper bound: the frontier model once per set (it has no adapter), against the same base.
        upper = [r for r in first.runs if r.model == "frontier"]
        assert [(r.set.name, r.metrics["accuracy"]) for r in upper] == [("arith", 1.0), ("facts", 1.0)]
        assert [c.scope for c in first.comparisons if c.candidate == "frontier:api"] == ["arith", "facts"]
        first.runs = [r for r in first.runs if r.model != "frontier"]
        first.comparisons = [c for c in first.comparisons if c.candidate != "frontier:api"]
        again = run()
        again.runs = [r for r in again.runs if r.model != "frontier"]
    assert first.baseline == "smol:Q8_0" and first.ood_sets == ["facts"]
    by = {(r.model, r.set.name): r for r in first.runs}
    assert sorted(by) == [("smol", "arith"), ("smol", "facts"), ("smol+shift", "arith"), ("smol+shift", "facts")]
    # The base ran first; none of its answers was re-used for the adapter: every adapter item was asked.
    assert by[("smol+shift", "arith")].requests == len(ARITH) and by[("smol+shift", "facts")].requests == len(FACTS)
    assert by[("smol+shift", "arith")].metrics["n_reused"] == 0
    [arith] = [c for c in first.comparisons if c.scope == "arith"]
    [facts] = [c for c in first.comparisons if c.scope == "facts"]
    assert (arith.baseline, arith.candidate, arith.n_paired) == ("smol:Q8_0", "smol+shift:Q8_0", len(ARITH))
    base_ok, adapter_ok = by[("smol", "arith")].outcomes(), by[("smol+shift", "arith")].outcomes()
    assert arith.lost == sum(base_ok[i] and not adapter_ok[i] for i in base_ok)  # flips counted from the items
    assert arith.gained == sum(adapter_ok[i] and not base_ok[i] for i in base_ok)
    assert first.ood_verdict(arith) is None  # in-domain: the usual decision
    verdict = first.ood_verdict(facts)
    assert re.match(r"^(within 5 points of base|outside|inconclusive): [+-]\d+\.\d points \[[+-]", verdict), verdict
    # The two are two configurations in MLflow, with the adapter named, and the report's quick-eval rows.
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    runs = {r.data.tags.get(N.TAG_ADAPTER, ""): r for r in (client.get_run(x.run_id) for x in first.runs
                                                              if x.set.name == "arith")}
    assert runs["shift"].data.tags[N.TAG_CONFIG_ID] != runs[""].data.tags[N.TAG_CONFIG_ID]
    assert runs["shift"].data.params[N.PARAM_ADAPTER_SHA256] == json.loads(
        runs["shift"].data.params[N.PARAM_CONFIG_IDENTITY])["adapter"]["sha256"]
    facts_run = client.get_run(by[("smol+shift", "facts")].run_id)
    assert facts_run.data.tags["bv.ood_verdict"] == verdict
    # Again: everything is re-used, each from its own configuration.
    assert [r.requests for r in again.runs] == [0, 0, 0, 0]
    assert {(r.model, r.set.name): r.outcomes() for r in again.runs} == {k: v.outcomes() for k, v in by.items()}
    from beyond_vibes.report import build_report

    rows = json.loads(build_report(settings, None, tmp_path / "reports").results_json.read_text())["quick_evals"]
    assert sorted((r["model"], r["set"]) for r in rows) == sorted([*by, ("frontier", "arith"), ("frontier", "facts")]), \
        [(r["model"], r["set"], r["config_id"], r["run_id"]) for r in rows]
    [row] = [r for r in rows if r["model"] == "smol+shift" and r["set"] == "arith"]
    assert row["identity"]["adapter"]["name"] == "shift" and row["identity"]["sampling"]["temperature"] == 0.0
    assert set(row["by_difficulty"]) == {"easy", "medium", "hard"}
    assert our_processes() == []


def test_a_plan_sweeps_base_and_adapter_as_two_groups(settings, tmp_path, loras):
    from beyond_vibes.sweep.plan import SweepPlan, expand

    base, files = loras
    catalog = load_catalog(catalog_file(tmp_path, base, {"shift": {"path": str(files["shift"])}}))
    plan = SweepPlan(name="a", models=[{"name": "smol", "adapters": [None, "shift"]}], tasks=["fix_failing_test"])
    groups = expand(plan, tmp_path / "plan.yaml", catalog, settings)
    assert [g.label for g in groups] == ["smol:Q8_0 · cpu", "smol+shift:Q8_0 · cpu"]
    assert groups[0].cells[0].key != groups[1].cells[0].key  # a base's result is never "done" for its adapter
    bad = SweepPlan(name="a", models=[{"name": "smol", "adapters": ["nope"]}], tasks=["fix_failing_test"])
    with pytest.raises(ConfigError, match=r"plan.yaml: models.0.adapters: model smol has no adapter 'nope'"):
        expand(bad, tmp_path / "plan.yaml", catalog, settings)


def test_the_out_of_domain_verdict_is_decided_on_the_interval_of_the_change():
    from beyond_vibes.quick_eval.matrix import ood_verdict

    # 20 items, the same answers: a change of 0, but Newcombe's floor from Wilson(20/20) = [0.838876, 1] is ±16.1
    # points, which spans -5: twenty items cannot show "within 5 points".
    same = {f"i{k}": True for k in range(20)}
    assert ood_verdict(same, same, 5) == "inconclusive: +0.0 points [-16.1, +16.1] spans -5; more items would tell"
    # 200 items: Wilson(200/200) low = 0.981170 -> ±1.9 points: within 5.
    many = {f"i{k}": True for k in range(200)}
    assert ood_verdict(many, many, 5) == "within 5 points of base: +0.0 points [-1.9, +1.9]"
    # 50 items all lost: -100 points, the interval far below -5.
    lost = {f"i{k}": False for k in range(50)}
    assert ood_verdict({k: True for k in lost}, lost, 5).startswith("outside: -100.0 points [-100.0, -")
    assert ood_verdict({"a": True}, {"b": True}, 5) == "no shared items"
