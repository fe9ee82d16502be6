"""The report from a real MLflow store: hand-computed statistics, baseline flips, quick evals, promotion gates,
the CLI's bad-input path and the HTML as headless Chromium renders it."""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from beyond_vibes import names as N
from beyond_vibes.errors import ConfigError
from beyond_vibes.report import build_report
from beyond_vibes.report.collect import SimRun
from beyond_vibes.report.promote import RolesFile, load_roles, promote
from beyond_vibes.stats import Thresholds
from beyond_vibes.tracking import tracking_client

S, F, E, T = N.STATUS_SUCCESS, N.STATUS_FAILED, N.STATUS_ERROR, N.STATUS_TIMEOUT
T1, T2 = ("fix_failing_test", "repo_maintenance"), ("add_slugify", "feature_implementation")

# Configurations: A is the baseline (local, on a GPU), B a smaller quant of it, D a priced API model.
A = ("qwen3-8b", "Q8_0", "cuda", "qwen")
B = ("qwen3-8b", "Q4_K_M", "cuda", "qwen")
D = ("gpt-4o-mini", "api", "api", "openai")
OUTCOMES = {  # per task, repeat 0..2
    A: {T1: [S, S, S], T2: [S, S, F]},  # 5/6
    B: {T1: [S, T, S], T2: [E, S, F]},  # 3/6, two hard failures (timeout, error)
    D: {T1: [S, S, S], T2: [S, S, S]},  # 6/6
}
GEN_TPS = {A: [40, 42, 44, 46, 48, 50], B: [60, 62, 64, 66, 68, 70], D: [90] * 6}
TTFT = {A: [0.2, 0.3, 0.4, 0.5, 0.6, 0.7], B: [0.1] * 6, D: [0.8] * 6}


def _sim(client, exp_id, cfg, task, archetype, repeat, status, i, extra_metrics=None):
    model, quant, engine, family = cfg
    local = engine != "api"
    tags = {N.TAG_KIND: "simulation", N.TAG_MODEL: model, N.TAG_FAMILY: family, N.TAG_QUANT: quant,
            N.TAG_ENGINE: engine, N.TAG_RUNTIME: "process" if local else "api", N.TAG_TASK: task,
            N.TAG_ARCHETYPE: archetype, N.TAG_REPEAT: str(repeat), N.TAG_STATUS: status,
            N.TAG_PROVIDER: "local" if local else "openai", N.TAG_RUN_KEY: f"{model}-{quant}-{task}-{repeat}",
            N.TAG_HOST: "bench-1"}
    if local:
        tags[N.TAG_SERVER_ID] = f"srv-{quant}"
        tags[N.TAG_SERVED_ID] = f"served-{quant}"
    run = client.create_run(exp_id, tags=tags, start_time=1_700_000_000_000 + i)
    rid = run.info.run_id
    metrics = {N.M_SUCCESS: 1.0 if status == S else 0.0, N.M_CHECKS_PASSED: 2.0 if status == S else 1.0,
               N.M_CHECKS_TOTAL: 2.0, N.M_TURNS: 6.0, N.M_TOOL_CALLS: 5.0, N.M_TOOL_ERRORS: 1.0 if local else 0.0,
               N.M_TOKENS_PROMPT: 1000.0, N.M_TOKENS_COMPLETION: 200.0, N.M_WALL_S: 30.0,
               N.M_GEN_TPS: float(GEN_TPS[cfg][i % 6]), N.M_TTFT_S: TTFT[cfg][i % 6]}
    if cfg == A:
        metrics[N.M_PEAK_VRAM_MB] = 8800.0
    if not local:
        metrics[N.M_COST_USD] = 0.02
    metrics.update(extra_metrics or {})
    for k, v in metrics.items():
        client.log_metric(rid, k, v)
    for k, v in {N.PARAM_TEMPERATURE: "0.0", N.PARAM_SEED: "42", N.PARAM_MAX_TOKENS: "2048",
                 N.PARAM_LLAMA_BUILD: "b6000 (abc1234)" if local else "", N.PARAM_AGENT_VERSION: "0.73.1",
                 N.PARAM_ENGINE_FLAGS: json.dumps({"ctx": 16384, "flash_attn": "on"}) if local else ""}.items():
        if v:
            client.log_param(rid, k, v)
    client.set_terminated(rid, "FINISHED")
    return rid


def _side(settings, suffix: str):
    return tracking_client(settings, f"{settings.mlflow_experiment}-{suffix}")


def _quick_eval(settings, cfg, passed: list):
    client, exp_id = _side(settings, "quick-eval")
    model, quant, engine, family = cfg
    run = client.create_run(exp_id, tags={N.TAG_KIND: "quick_eval", N.TAG_SET: "math", N.TAG_MODEL: model,
                                          N.TAG_FAMILY: family, N.TAG_QUANT: quant, N.TAG_ENGINE: engine})
    rid = run.info.run_id
    scored = [p for p in passed if p is not None]
    client.log_metric(rid, "accuracy", sum(scored) / len(scored))
    client.log_metric(rid, "n_items", float(len(scored)))
    client.log_param(rid, N.PARAM_SET_VERSION, "3")
    levels = ["easy"] * 4 + ["medium"] * 3 + ["hard"] * 3
    client.log_table(rid, data=pd.DataFrame({"id": [f"q{i + 1}" for i in range(10)], "difficulty": levels,
                                             "passed": passed}), artifact_file="quick_eval_items.json")
    client.set_terminated(rid, "FINISHED")


@pytest.fixture
def recorded(settings, tmp_path):
    """The main store: 3 configs x 2 tasks x 3 repeats, a server record per local quant, a llama-bench reference for
    A, quick evals of A and B, and a compiled judge's meta for repo_maintenance."""
    client, exp_id = tracking_client(settings)
    i = 0
    for cfg, per_task in OUTCOMES.items():
        for (task, arch), statuses in per_task.items():
            for repeat, status in enumerate(statuses):
                judge = {"judge_determinism": [4.0, 5.0, 3.0][repeat]} if cfg == A and task == T1[0] else None
                _sim(client, exp_id, cfg, task, arch, repeat, status, i, judge)
                i += 1
    sc, sexp = _side(settings, "servers")
    for sid, load, vram in (("srv-Q8_0", 12.5, 9100.0), ("srv-Q4_K_M", 8.0, None)):
        r = sc.create_run(sexp, tags={N.TAG_KIND: "server", N.TAG_SERVER_ID: sid})
        sc.log_metric(r.info.run_id, N.M_LOAD_S, load)
        if vram:
            sc.log_metric(r.info.run_id, N.M_PEAK_VRAM_MB, vram)
    pc, pexp = _side(settings, "speed")
    # A's reference, and one of B's model/quant/engine on another build (another served id): no reference for B.
    for cfg, served, tg in ((A, "served-Q8_0", 55.5), (B, "served-Q4_K_M-other-build", 70.0)):
        r = pc.create_run(pexp, tags={N.TAG_KIND: "speed", N.TAG_MODEL: cfg[0], N.TAG_QUANT: cfg[1], N.TAG_ENGINE: cfg[2],
                                      N.TAG_SERVED_ID: served})
        for k, v in {"pp512_tps": 900.0, "pp512_tps_std": 5.0, "tg128_tps": tg, "tg128_tps_std": 0.5}.items():
            pc.log_metric(r.info.run_id, k, v)
    # Quick evals: q10 was not scored for A (request failed): None, not a failure.
    _quick_eval(settings, A, [True] * 8 + [False, None])
    _quick_eval(settings, B, [True] * 4 + [False, True, True, False, True, True])
    judges = tmp_path / "judges"
    (judges / "compiled").mkdir(parents=True)
    (judges / "compiled" / "repo_maintenance.meta.json").write_text(json.dumps(
        {"archetype": "repo_maintenance", "version": "abc123def456", "judge_lm": "qwen3-8b:Q8_0",
         "agreement": {"compiled": {"kappa": 0.71, "exact": 0.8}, "baseline": {"kappa": 0.4, "exact": 0.5}}}))
    return settings.model_copy(update={"judges_dir": judges})


def _by(rows, **want):
    return next(r for r in rows if all(r.get(k) == v for k, v in want.items()))


def test_statistics_by_hand(recorded, tmp_path):
    r = build_report(recorded, None, tmp_path / "reports", baseline="qwen3-8b:Q8_0")
    assert r.folder.parent == tmp_path / "reports" and len(r.folder.name) == 10  # YYYY-MM-DD
    assert r.baseline == "qwen3-8b:Q8_0:cuda" and r.n_runs == 18
    res = json.loads(r.results_json.read_text())
    cfg = res["aggregates"]["by_config"]
    a = _by(cfg, model="qwen3-8b", quant="Q8_0")
    b = _by(cfg, model="qwen3-8b", quant="Q4_K_M")
    d = _by(cfg, model="gpt-4o-mini")
    # A: 5 of 6 over 2 tasks x 3 repeats: clustered by task. Task passes 3 and 2 of 3; p = 5/6; residuals 3 - 2.5 and
    # 2 - 2.5; SE = sqrt(2/1 · 0.5)/6 = 0.1667; t(0.975, 1 df) = 12.706 -> ±2.12: [0, 1]. Two tasks say little,
    # whatever the repeats (Wilson over 6 "independent" runs would claim [0.4365, 0.9699]).
    assert (a["n"], a["passes"], a["pass_rate"]) == (6, 5, pytest.approx(5 / 6))
    assert (a["ci_low"], a["ci_high"], a["ci_method"]) == (0.0, 1.0, "clustered by task")
    # B: 3 of 6, tasks 2 and 1 of 3: the same residuals, the same [0, 1].
    assert b["pass_rate"] == 0.5 and (b["ci_low"], b["ci_high"]) == (0.0, 1.0)
    # D: 6 of 6: every task the same rate, SE 0, so Wilson over the 6 runs is the floor: center = (1 + 0.320122)/
    # 1.640243 = 0.804834; half = z·sqrt(z²/144)/denom = 0.195168 -> (0.6097, 1).
    assert d["ci_low"] == pytest.approx(0.6097, abs=5e-5) and d["ci_high"] == 1.0
    # pass@k = 1 - C(n-c, k)/C(n, k) per task, averaged over the two tasks (n = 3 each).
    # A: t1 c=3 -> 1, 1, 1; t2 c=2 -> @1 2/3, @2 1 - C(1,2)/C(3,2) = 1, @3 1  => @1 (1 + 2/3)/2 = 0.8333, @2 1, @3 1.
    assert a["pass_at_k"] == {"1": pytest.approx(5 / 6), "2": pytest.approx(1.0), "3": pytest.approx(1.0)}
    # B: t1 c=2 -> 2/3, 1, 1; t2 c=1 -> @1 1/3, @2 1 - C(2,2)/C(3,2) = 2/3, @3 1  => @1 0.5, @2 (1 + 2/3)/2 = 0.8333, @3 1.
    assert b["pass_at_k"] == {"1": pytest.approx(0.5), "2": pytest.approx(5 / 6), "3": pytest.approx(1.0)}
    # Hard failures: B's timeout and error = 2/6; A's failed run is a failure, not a hard one.
    assert (a["hard_failures"], b["hard_failures"], b["hard_failure_rate"]) == (0, 2, pytest.approx(1 / 3))
    # Medians: A gen tok/s 40..50 -> (44 + 46)/2 = 45; TTFT 0.2..0.7 -> (0.4 + 0.5)/2 = 0.45; beside llama-bench of
    # the same served configuration (B's bench ran on another build: no reference, not a wrong one).
    assert a["gen_tps_median"] == 45.0 and a["ttft_s_median"] == pytest.approx(0.45)
    assert (a["speed_tg128_tps"], a["speed_pp512_tps"], b["speed_tg128_tps"]) == (55.5, 900.0, None)
    # Peak VRAM: max(runs 8800, server 9100); B measured none -> None (n/a), never 0. Load time from the servers.
    assert (a["peak_vram_mb"], b["peak_vram_mb"]) == (9100.0, None)
    assert (a["load_s_median"], b["load_s_median"], d["load_s_median"]) == (12.5, 8.0, None)
    # Tokens 1000 + 200 per run; cost only for D: 0.02/task -> TCO 0.02 x 1000 tasks/month x 12 = 240.
    assert a["tokens_mean"] == 1200.0 and a["cost_per_task"] is None and a["tco_12m"] is None
    assert d["cost_per_task"] == pytest.approx(0.02) and d["tco_12m"] == pytest.approx(240.0) and d["cost_tier"] == 2
    # Judge: A on fix_failing_test scored 4, 5, 3 -> mean 4.0, shown with the judge's held-out agreement.
    arch = _by(res["aggregates"]["by_archetype"], model="qwen3-8b", quant="Q8_0", archetype="repo_maintenance")
    assert arch["judge"]["determinism"]["mean"] == pytest.approx(4.0) and arch["judge"]["determinism"]["n"] == 3
    assert 3.0 <= arch["judge"]["determinism"]["ci_low"] <= 4.0 <= arch["judge"]["determinism"]["ci_high"] <= 5.0
    assert arch["judge_agreement"]["repo_maintenance"]["kappa"] == 0.71
    unjudged = _by(res["aggregates"]["by_archetype"], model="gpt-4o-mini", archetype="repo_maintenance")
    assert unjudged["judge"] == {} and unjudged["judge_agreement"] == {}
    task = _by(res["aggregates"]["by_task"], model="qwen3-8b", quant="Q4_K_M", task="add_slugify")
    assert (task["n"], task["passes"]) == (3, 1)

    # Against A, paired by (task, repeat):
    #   B: t1 r0 P/P, r1 P/F lost, r2 P/P; t2 r0 P/F lost, r1 P/P, r2 F/F -> both pass 3, lost 2, gained 0, both fail 1
    #      drop (5/6 - 3/6)·100 = 33.3 points -> too high; flip rate 2/6; McNemar binom(2 of 2, 0.5) two-sided = 0.5
    #   D: t2 r2 F/P gained, the other five both pass -> drop (5/6 - 6/6)·100 = -16.7 -> ship; p = binom(0 of 1) = 1
    cmp_b = _by(res["comparisons"], candidate="qwen3-8b:Q4_K_M:cuda", scope="all")
    assert (cmp_b["both_pass"], cmp_b["lost"], cmp_b["gained"], cmp_b["both_fail"]) == (3, 2, 0, 1)
    assert cmp_b["drop_points"] == pytest.approx(100 / 3) and cmp_b["flip_rate"] == pytest.approx(1 / 3)
    assert cmp_b["p_value"] == pytest.approx(0.5) and cmp_b["decision"] == "too high"
    cmp_d = _by(res["comparisons"], candidate="gpt-4o-mini:api:api", scope="all")
    assert (cmp_d["both_pass"], cmp_d["lost"], cmp_d["gained"], cmp_d["n_paired"]) == (5, 0, 1, 6)
    assert cmp_d["drop_points"] == pytest.approx(-100 / 6) and cmp_d["p_value"] == 1.0 and cmp_d["decision"] == "ship"
    # Per archetype: repo_maintenance (t1 only) A 3/3 vs B 2/3 -> lost 1, drop 33.3.
    cmp_b_rm = _by(res["comparisons"], candidate="qwen3-8b:Q4_K_M:cuda", scope="repo_maintenance")
    assert (cmp_b_rm["n_paired"], cmp_b_rm["lost"], cmp_b_rm["drop_points"]) == (3, 1, pytest.approx(100 / 3))

    # Quick evals ("math"): A scored 9 (q10 not scored), 8 pass; easy 4/4, medium 3/3, hard q8 pass q9 fail = 1/2.
    qa = _by(res["quick_evals"], model="qwen3-8b", quant="Q8_0")
    assert (qa["accuracy"]["passes"], qa["accuracy"]["n"]) == (8, 9)
    assert qa["accuracy"]["ci_low"] == pytest.approx(0.5650, abs=5e-5)  # Wilson 8/9
    assert {k: (v["passes"], v["n"]) for k, v in qa["by_difficulty"].items()} == {"easy": (4, 4), "medium": (3, 3), "hard": (1, 2)}
    # B vs A by item id over the 9 both scored: q5 and q8 lost, q9 gained, 6 both pass -> flip 3/9, drop
    # (8/9 - 7/9)·100 = 11.1 -> too high; McNemar binom(2 of 3, 0.5) two-sided = 1.0.
    [qc] = res["quick_eval_comparisons"]
    assert (qc["scope"], qc["n_paired"], qc["lost"], qc["gained"], qc["both_pass"]) == ("math", 9, 2, 1, 6)
    assert qc["drop_points"] == pytest.approx(100 / 9) and qc["flip_rate"] == pytest.approx(1 / 3) and qc["p_value"] == 1.0

    # The same numbers in report.md, with the formulas.
    md = r.report_md.read_text()
    assert "83.3% [0.0%, 100.0%] (clustered)" in md and "50.0% [0.0%, 100.0%] (clustered)" in md
    assert "@1 0.83 · @2 1.00 · @3 1.00" in md and "45.0 (tg128 55.5)" in md and "$240.00" in md
    assert "TCO_12m = cost per task" in md and "determinism 4.00" in md and "κ 0.71" in md
    assert "| qwen3-8b:Q4_K_M:cuda | all | 6 | 83.3% → 50.0% | +33.3 | 2 | 0 | 33.3% | 0.5 | too high |" in md
    env = res["environment"]
    assert env["recorded"]["llama_cpp_builds"] == ["b6000 (abc1234)"] and env["packages"]["mlflow"]
    assert env["report_host"]["cpu_count"] >= 1 and env["recorded"]["quick_eval_sets"] == {"math": ["3"]}
    assert len(res["runs"]) == 18 and res["runs"][0]["metrics"]


def test_run_ids_and_filter_restrict(recorded, tmp_path):
    client, exp_id = tracking_client(recorded)
    ids = [r.info.run_id for r in client.search_runs([exp_id], f"tags.`{N.TAG_QUANT}` = 'Q8_0'")]
    r = build_report(recorded, None, tmp_path, run_ids=ids[:4] + ["0" * 32])
    res = json.loads(r.results_json.read_text())
    assert r.n_runs == 4 and res["missing_run_ids"] == ["0" * 32]
    r = build_report(recorded, None, tmp_path, filter_string="tags.`bv.task` = 'add_slugify'")
    assert r.n_runs == 9 and {g.tasks for g in r.configs} == {1}
    with pytest.raises(ConfigError, match="--filter: .* not a valid MLflow search filter"):
        build_report(recorded, None, tmp_path, filter_string="tags.bv.task === nope")


def test_run_ids_file(tmp_path):
    from beyond_vibes.report.build import read_run_ids

    f = tmp_path / "ids.txt"
    f.write_text("# sweep 2026-01-01\nabc\n\n def  # resumed\n")
    assert read_run_ids(f) == ["abc", "def"]
    with pytest.raises(ConfigError, match="--run-ids-file: .*missing.txt: cannot read it"):
        read_run_ids(tmp_path / "missing.txt")
    f.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no run ids in it"):
        read_run_ids(f)


def test_absent_sections_say_none_recorded(settings, tmp_path):
    client, exp_id = tracking_client(settings)
    for i, status in enumerate([S, F]):
        _sim(client, exp_id, D, *T1, i, status, i)
    r = build_report(settings, None, tmp_path)
    md = r.report_md.read_text()
    assert md.count("_none recorded_") == 2  # judge scores, quick evals
    assert "none chosen" in md and r.promotion_md is None
    page = r.index_html.read_text()
    assert page.count("<svg") == 4  # no load time, but TTFT; cost: D is priced


def test_unknown_baseline_is_a_config_error(recorded, tmp_path):
    out = tmp_path / "reports"
    with pytest.raises(ConfigError, match=r"--baseline: nope:Q4_0 has no runs in experiment .*choose one of: .*qwen3-8b:Q8_0:cuda"):
        build_report(recorded, None, out, baseline="nope:Q4_0")
    with pytest.raises(ConfigError, match="write model:quant, model:quant:engine or model:quant:engine#<config id>"):
        build_report(recorded, None, out, baseline="qwen3-8b")
    with pytest.raises(ConfigError, match="no experiment named"):
        build_report(recorded, "no-such-experiment-xyz", out)
    assert not out.exists()  # nothing written


def test_cli_bad_baseline_exits_2_with_one_line(recorded, monkeypatch, tmp_path):
    from beyond_vibes.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", recorded.tracking_uri)
    monkeypatch.setenv("BV_EXPERIMENT", recorded.mlflow_experiment)
    result = CliRunner().invoke(main, ["report", "--baseline", "nope:Q4_0", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --baseline: nope:Q4_0 has no runs"), result.stderr
    assert not (tmp_path / "r").exists()


def test_cli_report_with_promotion(recorded, monkeypatch, tmp_path):
    from beyond_vibes.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", recorded.tracking_uri)
    monkeypatch.setenv("BV_EXPERIMENT", recorded.mlflow_experiment)
    monkeypatch.setenv("BV_JUDGES_DIR", str(recorded.judges_dir))
    roles = tmp_path / "roles.yaml"
    roles.write_text("roles:\n  coder:\n    incumbent: qwen3-8b:Q8_0\n"
                     "    challengers: [qwen3-8b:Q4_K_M, gpt-4o-mini:api]\n")
    result = CliRunner().invoke(main, ["report", "--baseline", "qwen3-8b:Q8_0", "--promote", str(roles),
                                       "--out", str(tmp_path / "r"), "--tasks-per-month", "500"])
    assert result.exit_code == 0, result.output
    assert "index.html" in result.stdout and "qwen3-8b:Q4_K_M:cuda" in result.stdout and "too high" in result.stdout
    # B: 3/6 < 5/6 blocks it. D: 6/6, 0 tool errors vs 1, no hard failures, but $0.02/task is tier 2 > A's 0.
    assert "role coder: keep qwen3-8b:Q8_0:cuda" in result.stdout
    [folder] = (tmp_path / "r").iterdir()
    promo = (folder / "promotion.md").read_text()
    assert "| gpt-4o-mini:api:api (openai) | cost_tier |" in promo and "blocked by cost_tier" in promo
    assert "blocked by acceptance, hard_failures" in promo  # B
    res = json.loads((folder / "results.json").read_text())
    assert _by(res["aggregates"]["by_config"], model="gpt-4o-mini")["tco_12m"] == pytest.approx(0.02 * 500 * 12)
    bad = tmp_path / "bad.yaml"
    bad.write_text("roles:\n  coder:\n    incumbent: qwen3-8b:Q8_0\n    challenger: [x:y]\n")
    result = CliRunner().invoke(main, ["report", "--promote", str(bad), "--out", str(tmp_path / "r2")])
    assert result.exit_code == 2 and "bad.yaml: roles.coder.challengers: field required" in result.stderr


# ---- Promotion gates, each blocking on its own (runs built in memory: the gates are pure functions of runs)

INC, C1, C2 = ("llama-8b", "Q4_K_M", "cpu"), ("qwen-8b", "Q4_K_M", "cpu"), ("gemma-9b", "Q4_K_M", "cpu")


def _runs(config, family, statuses: dict, tool_errors=1.0, **metrics) -> list[SimRun]:
    out = []
    for (task, arch), sts in statuses.items():
        for rep, st in enumerate(sts):
            m = {N.M_SUCCESS: 1.0 if st == S else 0.0, N.M_TOOL_ERRORS: tool_errors, N.M_TOOL_CALLS: 10.0, **metrics}
            out.append(SimRun(f"{config[0]}-{task}-{rep}", *config, task=task, archetype=arch, status=st,
                              family=family, repeat=rep, metrics=m))
    return out


def _scenario(block: str | None = None) -> list[SimRun]:
    """Incumbent 4/6 with 2 tool errors/run; C1 5/6 with 1 (passes every gate); C2 1/6 (fails acceptance only).
    `block` changes one thing so that exactly one of C1's gates fails."""
    c1 = {T1: [S, S, S], T2: [S, F, S]}
    c1_kw: dict = {}
    c2_family = "gemma"
    if block == "acceptance":
        c1 = {T1: [S, S, F], T2: [F, F, S]}  # 3/6 < 4/6
    elif block == "review_pain":
        c1_kw["tool_errors"] = 3.0  # 3 > 2
    elif block == "hard_failures":
        c1 = {T1: [S, S, S], T2: [S, E, S]}  # still 5/6, but 1/6 errors > 0/6
    elif block == "cost_tier":
        c1_kw[N.M_COST_USD] = 0.005  # tier 1 > unpriced 0
    elif block == "diversity":
        c2_family = "qwen"  # after the swap: C1 (qwen) + C2 (qwen) = one family
    return (_runs(INC, "llama", {T1: [S, S, F], T2: [S, F, S]}, tool_errors=2.0)
            + _runs(C1, "qwen", c1, **c1_kw) + _runs(C2, c2_family, {T1: [F, F, F], T2: [F, F, S]}))


ROLES = RolesFile.model_validate({"roles": {"coder": {"incumbent": "llama-8b:Q4_K_M",
                                                      "challengers": ["qwen-8b:Q4_K_M", "gemma-9b:Q4_K_M"]}}})


def _decide(runs, roles=ROLES, judges=None):
    [d] = promote(roles, runs, judges or {}, Path("roles.yaml"), "exp")
    return d


def test_promotion_all_gates_hold():
    d = _decide(_scenario())
    c1 = d.challengers[0]
    assert c1.promotable and d.winner == "qwen-8b:Q4_K_M:cpu" and d.verdict.startswith("promote qwen-8b")
    assert (c1.gate("acceptance").incumbent, c1.gate("acceptance").challenger) == (pytest.approx(4 / 6), pytest.approx(5 / 6))
    assert (c1.gate("review_pain").incumbent, c1.gate("review_pain").challenger) == (0.2, 0.1)  # per call: 2/10, 1/10
    assert c1.gate("review_pain").detail == "from tool_errors_per_call"
    assert [g.name for g in d.challengers[1].gates if not g.passed] == ["acceptance"]


@pytest.mark.parametrize("gate", ["acceptance", "review_pain", "hard_failures", "cost_tier", "diversity"])
def test_each_gate_blocks_on_its_own(gate):
    d = _decide(_scenario(block=gate))
    c1 = d.challengers[0]
    assert [g.name for g in c1.gates if not g.passed] == [gate]
    assert d.winner is None and d.verdict == "keep llama-8b:Q4_K_M:cpu"


def _trusted_judges(runs, trusted=True, untrusted_criteria=()):
    from beyond_vibes.report.judging import JudgeInfo

    line = "trusted: exact 0.80 > majority baseline 0.50 (n 40)" if trusted else \
        "untrusted: exact 0.50 <= majority baseline 0.65 (n 40)"
    return {a: JudgeInfo(a, version="v1", trusted=trusted, trust=line, untrusted_criteria=tuple(untrusted_criteria))
            for a in {r.archetype for r in runs}}


def test_review_pain_from_judges_when_every_run_is_judged():
    # Judge score s on 1..5 normalises to (s - 1)/4: incumbent 3 -> pain 1 - 0.5 = 0.5; C1 4 -> 0.25 (passes),
    # C1 2 -> 0.75 (blocks, although its tool errors, 1 < 2, would have passed).
    runs = _scenario()
    for r in runs:
        r.metrics["judge_determinism"] = 3.0 if r.model == "llama-8b" else 4.0
    judges = _trusted_judges(runs)
    c1 = _decide(runs, judges=judges).challengers[0]
    assert c1.gate("review_pain").detail == "from judge" and c1.promotable
    assert (c1.gate("review_pain").incumbent, c1.gate("review_pain").challenger) == (0.5, 0.25)
    for r in runs:
        if r.model == "qwen-8b":
            r.metrics["judge_determinism"] = 2.0
    c1 = _decide(runs, judges=judges).challengers[0]
    assert c1.gate("review_pain").challenger == 0.75 and [g.name for g in c1.gates if not g.passed] == ["review_pain"]


def _verdicts(d):
    return d.winner, [(c.challenger, [(g.name, g.passed, g.incumbent, g.challenger) for g in c.gates]) for c in d.challengers]


def test_an_untrusted_judge_changes_no_decision_and_the_gate_says_it_was_ignored():
    """The same damning scores that block C1 under a trusted judge (test above) are ignored under an untrusted one:
    the decision is exactly the one made with the scores removed, and the gate names what it ignored."""
    runs = _scenario()
    unjudged = _decide(runs)
    for r in runs:
        r.metrics["judge_determinism"] = 3.0 if r.model == "llama-8b" else 1.0
    assert not _decide(runs, judges=_trusted_judges(runs)).challengers[0].promotable  # trusted: the scores block C1
    for judges in (_trusted_judges(runs, trusted=False), {},  # untrusted, or no compiled judge at all
                   _trusted_judges(runs, untrusted_criteria=["determinism"])):  # its only criterion untrusted
        d = _decide(runs, judges=judges)
        assert _verdicts(d) == _verdicts(unjudged) and d.winner == "qwen-8b:Q4_K_M:cpu"
        note = d.challengers[0].gate("review_pain").detail
        assert note.startswith("from tool_errors_per_call; ") and "ignored" in note, note
    d = _decide(runs, judges=_trusted_judges(runs, trusted=False))
    assert "judge scores ignored (untrusted: exact 0.50 <= majority baseline 0.65 (n 40))" in \
        d.challengers[0].gate("review_pain").detail
    # Judged by its own model: ignored as well, however trusted the judge.
    for r in runs:
        r.tags["bv.judge_self_judged"] = "true"
    d = _decide(runs, judges=_trusted_judges(runs))
    assert _verdicts(d) == _verdicts(unjudged) and "judged by their own model" in d.challengers[0].gate("review_pain").detail


def test_role_tasks_and_bad_roles(tmp_path):
    roles = RolesFile.model_validate({"roles": {"coder": {"incumbent": "llama-8b:Q4_K_M", "tasks": ["repo_maintenance"],
                                                          "challengers": ["qwen-8b:Q4_K_M", "gemma-9b:Q4_K_M"]}}})
    c1 = _decide(_scenario(), roles).challengers[0]
    # Only fix_failing_test: incumbent 2/3, C1 3/3.
    assert c1.tasks == ["fix_failing_test"] and c1.gate("acceptance").challenger == 1.0
    roles.roles["coder"].tasks = ["no_such_task"]
    with pytest.raises(ConfigError, match=r"roles.yaml: roles.coder.tasks.0: 'no_such_task' matches no task"):
        _decide(_scenario(), roles)
    roles.roles["coder"].tasks, roles.roles["coder"].challengers = [], ["mistral:Q4_0"]
    with pytest.raises(ConfigError, match=r"roles.yaml: roles.coder.challengers.0: mistral:Q4_0 has no runs"):
        _decide(_scenario(), roles)
    bad = tmp_path / "roles.yaml"
    bad.write_text("roles:\n  coder:\n    incumbent: a:b\n    challengers: []\n")
    with pytest.raises(ConfigError, match="roles.yaml: roles.coder.challengers: "):
        load_roles(bad)
    bad.write_text("roles: {coder: {incumbent: a:b, challengers: [c:d]}}\nthresholds: {repo_maintenance: {ship: 3, acceptable: 2, marginal: 5}}\n")
    with pytest.raises(ConfigError, match="thresholds.repo_maintenance"):
        load_roles(bad)


def test_per_archetype_thresholds(recorded, tmp_path):
    roles = tmp_path / "roles.yaml"
    roles.write_text("roles: {coder: {incumbent: 'qwen3-8b:Q8_0', challengers: ['gpt-4o-mini:api']}}\n"
                     "thresholds: {repo_maintenance: {ship: 0, acceptable: 0, marginal: 0}}\n")
    r = build_report(recorded, None, tmp_path, baseline="qwen3-8b:Q8_0", roles_file=roles, thresholds=Thresholds())
    # D on repo_maintenance: A 3/3 vs D 3/3 -> drop 0. Default thresholds: 0 < 1 -> ship; this archetype's strict
    # ones (0, 0, 0): not < 0, not < 0, 0 <= 0 -> marginal. Elsewhere the defaults still apply.
    d = {c.scope: c for c in r.comparisons if c.candidate == "gpt-4o-mini:api:api"}
    assert d["repo_maintenance"].drop_points == 0.0 and d["repo_maintenance"].decision == "marginal"
    assert d["all"].decision == "ship" and d["feature_implementation"].decision == "ship"


# ---- The HTML as a browser shows it

@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_html_renders_in_chromium(recorded, tmp_path):
    from beyond_vibes.browser import Browser

    r = build_report(recorded, None, tmp_path, baseline="qwen3-8b:Q8_0")
    page = r.index_html.read_text()
    assert "<script" not in page and not re.search(r'(?:src|href)="https?:', page)  # self-contained
    with Browser(width=1500, height=1800) as b:
        b.goto(r.index_html.resolve().as_uri())
        assert b.wait_for_text("Summary per configuration", timeout=30)
        counts = b.evaluate("""(() => Object.fromEntries(['quality-speed', 'pass-rate', 'latency', 'cost'].map(k => {
            const svg = document.querySelector('#plot-' + k + ' svg');
            if (!svg) return [k, null];
            const box = svg.getBoundingClientRect();
            return [k, {shapes: svg.querySelectorAll('path, rect, circle, use, line, polyline').length,
                        texts: svg.querySelectorAll('text').length, w: box.width, h: box.height}];
        })))()""")
        for key, c in counts.items():
            assert c is not None, f"plot {key}: no <svg>"
            assert c["shapes"] > 10 and c["texts"] > 3 and c["w"] > 200 and c["h"] > 150, (key, c)
        labels = b.evaluate("[...document.querySelectorAll('#plot-quality-speed svg text')].map(t => t.textContent)")
        assert any("qwen3-8b:Q8_0" in t for t in labels) and any("gpt-4o-mini:api" in t for t in labels)
        tables = b.evaluate("document.querySelectorAll('table').length")
        assert tables >= 6
        cell = b.evaluate("[...document.querySelectorAll('#summary td')].map(td => td.innerText).join('|')")
        assert "83.3% [0.0%, 100.0%] (clustered)" in cell
        shot = b.screenshot(tmp_path / "report.png")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000
    shutil.copyfile(shot, "/tmp/report_shot.png")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_the_first_screen_in_chromium_is_the_decision(settings, tmp_path):
    """Two stores: one where two configurations differ clearly (A solves 8 tasks, B none), one where they do not
    (one run each of one task). The first thing on the page is the decision, in words, with its numbers."""
    from beyond_vibes.browser import Browser

    screens = {}
    for name, outcomes in (("clear", {A: [S] * 8, B: [F] * 8}), ("unclear", {A: [S], B: [F]})):
        s = settings.model_copy(update={"mlflow_experiment": f"first-screen-{name}"})
        client, exp_id = tracking_client(s)
        i = 0
        for cfg, statuses in outcomes.items():
            for t, status in enumerate(statuses):
                _sim(client, exp_id, cfg, f"task{t}", "repo_maintenance", 0, status, i)
                i += 1
        r = build_report(s, None, tmp_path / name)
        with Browser(width=1300, height=700) as b:
            b.goto(r.index_html.resolve().as_uri())
            assert b.wait_for_text("Decision", timeout=30)
            first = b.evaluate("document.querySelector('main section, body section').id")
            screens[name] = b.evaluate("document.querySelector('#decision').innerText")
            top = b.evaluate("document.querySelector('#decision').getBoundingClientRect().top")
            b.screenshot(tmp_path / f"first-{name}.png")
        shutil.copyfile(tmp_path / f"first-{name}.png", f"/tmp/first-screen-{name}.png")
        assert first == "decision" and top < 400  # above the fold, before every table
    # 8 of 8 against 0 of 8, paired over 8 tasks: +100 points; Newcombe's floor from Wilson(8/8) low = 0.675592:
    # 1 - sqrt(2) · 0.324408 = 0.541215 -> +54.
    assert "qwen3-8b:Q8_0:cuda wins over the runner-up qwen3-8b:Q4_K_M:cuda by +100 points [+54, +100]" in screens["clear"]
    # 1 of 1 against 0 of 1: one shared task, Newcombe's interval includes 0; 100 points seen needs
    # (1.95996 · sqrt(2 · 0.5 · 0.5) + 0.84162 · 0)² / 1² = 1.92 -> 2 runs each: 2 repeats of the one task, 1 more.
    assert "cannot tell apart yet" in screens["unclear"] and "includes 0" in screens["unclear"]
    assert "2 repeats of each of the 1 task(s) (1 more than the 1 run now)" in screens["unclear"]


def test_reproducibility_is_the_share_of_repeats_with_the_most_common_outcome():
    from beyond_vibes.report.aggregate import repeat_consistency

    runs = _runs(("m", "Q4", "cpu"), "f", {T1: [S, S, F]})
    assert repeat_consistency(runs) == pytest.approx(2 / 3)
    # The same status with a different number of checks passed is a different outcome.
    runs[2].status, runs[2].metrics[N.M_SUCCESS] = S, 1.0
    runs[0].metrics[N.M_CHECKS_PASSED], runs[1].metrics[N.M_CHECKS_PASSED], runs[2].metrics[N.M_CHECKS_PASSED] = 2, 2, 1
    assert repeat_consistency(runs) == pytest.approx(2 / 3)
    runs[2].metrics[N.M_CHECKS_PASSED] = 2
    assert repeat_consistency(runs) == 1.0
    assert repeat_consistency(runs[:1]) is None  # one run says nothing about consistency


def _run(task: str, passed: bool, start: int, repeat: int | None = None, seed: str | None = "1", config_id: str = "",
         identity: dict | None = None) -> SimRun:
    params = {N.PARAM_SEED: seed} if seed is not None else {}
    if identity is not None:
        params[N.PARAM_CONFIG_IDENTITY] = json.dumps(identity)
    return SimRun(run_id=f"r{start}", model="m", quant="Q4_0", engine="cpu", task=task, archetype="repo_maintenance",
                  status="success" if passed else "failed", repeat=repeat, start_time=start, params=params,
                  metrics={N.M_SUCCESS: float(passed)}, config_id=config_id)


def test_pairs_hold_across_seeds_and_ad_hoc_runs_pair_by_start_order():
    from beyond_vibes.report.compare import paired_outcomes

    # Two plan seeds x two repeats: repeat numbering restarts per seed; four pairs, not two.
    runs = [_run("t", i % 2 == 0, i, repeat=i % 2, seed=str(seed)) for i, seed in enumerate([7, 7, 8, 8])]
    assert sorted(paired_outcomes(runs)) == ["t#seed 7#r0", "t#seed 7#r1", "t#seed 8#r0", "t#seed 8#r1"]
    # Ad-hoc runs (no repeat index): each is its own pair, by start order, and a rerun of a repeat still replaces it.
    adhoc = [_run("t", True, 3), _run("t", False, 1), _run("t", True, 2, repeat=0), _run("t", False, 5, repeat=0)]
    assert paired_outcomes(adhoc) == {"t#seed 1#adhoc 0": False, "t#seed 1#adhoc 1": True, "t#seed 1#r0": False}


def test_configurations_that_share_a_name_are_rows_of_their_own_naming_what_differs():
    from beyond_vibes.report.aggregate import aggregate
    from beyond_vibes.report.collect import Collected, config_label
    from beyond_vibes.report.tables import variants_table

    base = {"model": "m", "llama_build": "b100", "engine_flags": {"batch": 2048, "ctx": 4096}, "agent": "pi"}
    other = {**base, "engine_flags": {"batch": 256, "ctx": 4096}}
    runs = [_run("t", True, 1, 0, config_id="aaaaaa111", identity=base),
            _run("t", False, 2, 0, config_id="bbbbbb222", identity=other),
            _run("t", True, 3, 1, config_id="aaaaaa111", identity=base)]
    agg = aggregate(Collected("e", runs, {}, {}, []), {})
    assert [(config_label(g.config), g.n) for g in agg.by_config] == [("m:Q4_0:cpu#aaaaaa", 2), ("m:Q4_0:cpu#bbbbbb", 1)]
    rows = variants_table(runs).rows
    assert rows == [["m:Q4_0:cpu#aaaaaa", "2", "(the first recorded)"],
                    ["m:Q4_0:cpu#bbbbbb", "1", "engine_flags.batch: 2048 -> 256"]]


def test_doing_nothing_has_no_review_pain_rather_than_the_best():
    from beyond_vibes.report.aggregate import review_pain

    idle = _runs(C1, "qwen", {T1: [F, F]}, tool_errors=0.0, **{N.M_TOOL_CALLS: 0.0})
    busy = _runs(INC, "llama", {T1: [S, F]}, tool_errors=3.0)  # 3 errors in 10 calls per run
    assert review_pain(idle, {}) == (None, None)  # no call made: nothing to review, not "0.00"
    assert review_pain(busy, {}) == (pytest.approx(0.3), "tool_errors_per_call")


def test_the_first_screen_is_the_decision():
    from beyond_vibes.report.aggregate import aggregate
    from beyond_vibes.report.collect import Collected
    from beyond_vibes.report.verdict import runs_needed, verdict

    # Hand value: 50% vs 40%, 5% two-sided, 80% power: (1.95996·sqrt(2·0.45·0.55) + 0.84162·sqrt(0.25 + 0.24))² / 0.01
    # = (1.37897 + 0.58913)² / 0.01 = 387.3 -> 388 runs per configuration.
    assert runs_needed(0.5, 0.4) == 388 and runs_needed(0.3, 0.3) is None

    def runs(model, outcomes):  # one run per task: independent, Wilson
        return [SimRun(run_id=f"{model}{i}", model=model, quant="Q4_0", engine="cpu", task=f"t{i}", archetype="a",
                       status="success" if ok else "failed", start_time=i, metrics={N.M_SUCCESS: float(ok)})
                for i, ok in enumerate(outcomes)]

    def first(sims):
        return verdict(aggregate(Collected("e", sims, {}, {}, []), {}), sims)

    strong, weak = runs("strong", [True] * 20), runs("weak", [False] * 20)
    [line] = first(strong + weak)
    # Paired over 20 tasks, +1 each: +100 points, floored by Newcombe at +77 (see test_stats).
    assert line.startswith("**All tasks**: **strong:Q4_0:cpu wins**") and "+100 points [+77, +100]" in line
    close = runs("a", [True] * 6 + [False] * 4) + runs("b", [True] * 5 + [False] * 5)
    [line] = first(close)
    assert line.startswith("**All tasks**: **cannot tell apart yet**") and "10 points (as seen)" in line
    need = runs_needed(0.6, 0.5)  # 385 runs over 10 tasks: 39 repeats each, 38 more than the one run now
    assert f"about {need} runs per configuration, i.e. {math.ceil(need / 10)} repeats of each of the 10 task(s) " \
           f"({math.ceil(need / 10) - 1} more than the 1 run now)" in line
    nothing = runs("x", [False] * 3) + runs("y", [False] * 3)
    [line] = first(nothing)
    assert line.startswith("**All tasks**: no configuration passed a task") and "none is usable" in line
    # Two task sets: the decision for each. On set "b" the weak one wins; over all tasks nobody can tell.
    def arch(runs_, name):
        return [replace(r, archetype=name, task=f"{name}-{r.task}", run_id=f"{name}-{r.run_id}") for r in runs_]

    mixed = arch(strong, "a") + arch(weak, "a") + arch(runs("strong", [False] * 20), "b") + \
        arch(runs("weak", [True] * 20), "b")
    # Ranked first over all its tasks (20 of 25), yet worse on the 5 both ran (0 of 5 against 5 of 5): the paired
    # difference is below 0 (Newcombe: 0 - 1 + sqrt(0.434² + 0.434²) = -0.386 -> [-100, -39]), and it says so.
    def named(runs_, prefix):
        return [replace(r, task=f"{prefix}{r.task}", run_id=f"{prefix}{r.run_id}") for r in runs_]

    a_runs = named(runs("a", [False] * 5), "s") + named(runs("a", [True] * 20), "ua")
    b_runs = named(runs("b", [True] * 5), "s") + named(runs("b", [False] * 20), "ub")
    [line] = first(a_runs + b_runs)
    assert line.startswith("**All tasks**: **b:Q4_0:cpu wins on the tasks both ran**") and "-100 points [-100, -39]" in line
    overall, on_a, on_b = first(mixed)
    assert overall.startswith("**All tasks**: **cannot tell apart yet**")
    assert on_a.startswith("**a**: **strong:Q4_0:cpu wins**") and on_b.startswith("**b**: **weak:Q4_0:cpu wins**")


def test_a_machine_hour_is_shared_among_the_runs_that_use_it_at_the_same_time():
    from beyond_vibes.serving import Occupancy

    occ = Occupancy()
    occ.enter(0.0)
    occ.enter(5.0)
    # A ran 0-10, B 5-15 on one server: A alone 0-5, both 5-10 -> A pays 5 + 5/2 = 7.5 s of machine time.
    assert occ.share_s(0.0, 10.0) == pytest.approx(7.5)
    occ.leave(10.0)
    assert occ.share_s(5.0, 15.0) == pytest.approx(7.5)  # 5/2 shared, then 5 alone
    occ.leave(15.0)
    occ.enter(20.0)
    assert occ.share_s(20.0, 30.0) == pytest.approx(10.0)  # alone: the whole time
