"""Sweeps: plan expansion and cell keys, bad plans, one model load per group, and resume after kill -9 of a real
sweep process (none lost, none duplicated), on real llama-server + pi + MLflow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from beyond_vibes import names as N
from beyond_vibes.catalog import load_catalog
from beyond_vibes.errors import ConfigError
from beyond_vibes.sweep.plan import SweepPlan, expand
from conftest import REPO, SMOLLM, have_pi, make_test_ggufs, our_processes

pytestmark = pytest.mark.skipif(not have_pi(), reason="pi not installed: run ./setup.sh")


@pytest.fixture(scope="module")
def ggufs():
    return make_test_ggufs()


@pytest.fixture
def catalog_file(tmp_path, ggufs):
    model = {**SMOLLM, "name": "smol", "quant_tags": ["Q4_0", "Q8_0"],
             "sources": {q: {"path": str(ggufs[q])} for q in ("Q4_0", "Q8_0")}}
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"default": "smol", "models": [model],
                                    "engine_configs": {"small-batch": {"batch": 256, "ubatch": 128}}}))
    return path


def write_plan(tmp_path: Path, **fields) -> Path:
    plan = {"name": "t", "models": [{"name": "smol", "quants": ["Q4_0"]}], "tasks": ["fix_failing_test"],
            "repeats": 1, "max_turns": 1, "timeout_s": 300, **fields}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def cli(settings, *args: str, wait: bool = True):
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "BV_EXPERIMENT": settings.mlflow_experiment,
           "BV_HOME": str(settings.home), "BV_TASKS_DIR": str(REPO / "tasks")}
    cmd = [str(Path(sys.executable).parent / "beyond-vibes"), "sweep", *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)


def sim_runs(settings, suffix: str = ""):
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    exp = client.get_experiment_by_name(settings.mlflow_experiment + suffix)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def test_plan_expansion_groups_by_served_model_and_keys_cells(settings, catalog_file, tmp_path):
    catalog = load_catalog(catalog_file)
    plan = SweepPlan(name="p", models=[{"name": "smol", "quants": ["Q4_0", "Q8_0"]}],
                     engine_configs=[None, "small-batch"], tasks=["fix_failing_test", "add_slugify"], repeats=2)
    groups = expand(plan, tmp_path / "p.yaml", catalog, settings)
    assert [g.label for g in groups] == ["smol:Q4_0 · cpu", "smol:Q4_0 · cpu · small-batch", "smol:Q8_0 · cpu",
                                         "smol:Q8_0 · cpu · small-batch"]
    assert all(len(g.cells) == 4 for g in groups)  # 2 tasks x 2 repeats
    keys = [c.key for g in groups for c in g.cells]
    assert len(set(keys)) == 16
    assert keys == [c.key for g in expand(plan, tmp_path / "p.yaml", catalog, settings) for c in g.cells]  # stable
    # what changes an outcome changes the key; the plan's name does not
    other = lambda **kw: [c.key for g in expand(plan.model_copy(update=kw), tmp_path / "p.yaml", catalog, settings)  # noqa: E731
                          for c in g.cells]
    assert other(name="renamed") == keys
    assert not set(other(max_turns=3)) & set(keys)
    assert not set(other(seeds=[7])) & set(keys)
    # archetypes select tasks
    by_arch = expand(SweepPlan(name="a", models=[{"name": "smol"}], archetypes=["feature_implementation"]),
                     tmp_path / "p.yaml", catalog, settings)
    assert {c.task.archetype.value for c in by_arch[0].cells} == {"feature_implementation"}


@pytest.mark.parametrize("fields, message", [
    ({"models": [{"name": "nope"}]}, "plan.yaml: models.0.name: "),
    ({"models": [{"name": "smol", "quants": ["Q2_K"]}]}, "plan.yaml: models.0.quants: "),
    ({"tasks": ["no_such_task"]}, "plan.yaml: tasks: "),
    ({"engines": ["tpu"]}, "plan.yaml: engines: --engine: unknown engine 'tpu'"),
    ({"engine_configs": ["turbo"]}, "plan.yaml: engine_configs: "),
    ({"repeats": 0}, "plan.yaml: repeats: "),
    ({"tasks": [], "archetypes": []}, "name `tasks` or `archetypes`"),
])
def test_bad_plans_are_one_line_exit_2_and_start_nothing(settings, catalog_file, tmp_path, fields, message):
    out = cli(settings, str(write_plan(tmp_path, **fields)), "--config", str(catalog_file))
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert sim_runs(settings) == [] and sim_runs(settings, "-servers") == []


def test_an_unreachable_tracking_server_is_one_line(settings, catalog_file, tmp_path):
    settings = settings.model_copy(update={"mlflow_tracking_uri": "http://127.0.0.1:9"})
    out = cli(settings, str(write_plan(tmp_path)), "--config", str(catalog_file), "--dry-run")
    assert out.returncode == 2 and "127.0.0.1:9" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.mark.integration
def test_a_sweep_loads_each_model_once_and_resume_skips_what_is_done(settings, catalog_file, tmp_path):
    plan = write_plan(tmp_path, models=[{"name": "smol", "quants": ["Q4_0", "Q8_0"]}], repeats=2)
    dry = cli(settings, str(plan), "--config", str(catalog_file), "--dry-run")
    assert dry.returncode == 0 and "4 of 4 runs to do" in dry.stdout, dry.stderr
    out = cli(settings, str(plan), "--config", str(catalog_file))
    assert out.returncode == 0, out.stderr
    assert "[4/4]" in out.stdout and "2 model load(s)" in out.stdout
    runs = sim_runs(settings)
    servers = sim_runs(settings, "-servers")
    assert len(runs) == 4 and len(servers) == 2  # one load per group...
    per_server = Counter(r.data.tags[N.TAG_SERVER_ID] for r in runs)
    assert sorted(per_server.values()) == [2, 2] and set(per_server) == {s.data.tags[N.TAG_SERVER_ID] for s in servers}
    assert all(r.data.tags[N.TAG_SWEEP] == "t" and r.data.tags[N.TAG_CELL_KEY] for r in runs)
    again = cli(settings, str(plan), "--config", str(catalog_file))  # without --resume: refused, nothing runs
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = cli(settings, str(plan), "--config", str(catalog_file), "--resume")
    assert resumed.returncode == 0 and "4 skipped, 0 model load(s)" in resumed.stdout
    dry = cli(settings, str(plan), "--config", str(catalog_file), "--dry-run")
    assert "0 of 4 runs to do" in dry.stdout and "min of simulations" in dry.stdout
    assert len(sim_runs(settings)) == 4 and len(sim_runs(settings, "-servers")) == 2


@pytest.mark.integration
def test_kill_9_mid_sweep_then_resume_loses_and_duplicates_nothing(settings, catalog_file, tmp_path):
    plan = write_plan(tmp_path, repeats=3, parallel=1)
    proc = cli(settings, str(plan), "--config", str(catalog_file), wait=False)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # kill it once one run is finished and the next one is under way
        runs = sim_runs(settings)
        if any(r.info.status == "FINISHED" for r in runs) and any(r.info.status == "RUNNING" for r in runs):
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.5)
    else:
        pytest.fail("the sweep never had a finished run and a running one")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = sim_runs(settings)
    finished_before = {r.data.tags[N.TAG_CELL_KEY]: r.info.run_id for r in before if r.info.status == "FINISHED"}
    assert 1 <= len(finished_before) < 3
    time.sleep(1)
    out = cli(settings, str(plan), "--config", str(catalog_file), "--resume")
    assert out.returncode == 0, out.stderr
    assert "as KILLED" in out.stdout  # the run the killed sweep left RUNNING
    after = sim_runs(settings)
    finished = [r for r in after if r.info.status == "FINISHED"]
    keys = Counter(r.data.tags[N.TAG_CELL_KEY] for r in finished)
    assert len(keys) == 3 and set(keys.values()) == {1}  # every cell once: none lost, none duplicated
    assert {k: v for k, v in finished_before.items()} == {k: r.info.run_id for r in finished
                                                          for k in [r.data.tags[N.TAG_CELL_KEY]] if k in finished_before}
    assert [r.info.status for r in after if r.info.status != "FINISHED"] == ["KILLED"]
    assert our_processes() == []


def test_gpu_engines_ask_ray_for_a_gpu(settings, catalog_file, tmp_path):
    from beyond_vibes.sweep.ray_executor import group_resources

    catalog = load_catalog(catalog_file)
    [group] = expand(SweepPlan(name="p", models=[{"name": "smol"}], tasks=["fix_failing_test"]), tmp_path / "p.yaml",
                     catalog, settings)
    assert group_resources(group) == {"num_gpus": 0, "num_cpus": 1}
    for engine in ("cuda", "rocm", "vulkan"):
        gpu = group.__class__(group.model, group.quant, catalog.engine_for(group.model, engine), group.spec, "")
        assert group_resources(gpu) == {"num_gpus": 1, "num_cpus": 1}


@pytest.fixture
def ray_cluster():
    """A local Ray head with a declared (fake) GPU, started and stopped by the test."""
    import shutil
    import socket
    import tempfile

    temp = Path(tempfile.mkdtemp(prefix="bvray-"))  # short: Ray's unix sockets live under it (107-byte limit)

    ray_bin = Path(sys.executable).parent / "ray"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([str(ray_bin), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                    "--num-gpus=1", "--include-dashboard=false", "--disable-usage-stats",
                    f"--temp-dir={temp}"], env=env, check=True, capture_output=True, timeout=180)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.integration
def test_the_ray_executor_produces_the_same_runs_as_local(settings, catalog_file, tmp_path, ray_cluster):
    plan = write_plan(tmp_path, models=[{"name": "smol", "quants": ["Q4_0", "Q8_0"]}])
    out = cli(settings, str(plan), "--config", str(catalog_file), "--executor", "ray", "--ray-address", ray_cluster)
    assert out.returncode == 0, out.stderr
    assert "[2/2]" in out.stdout and "2 model load(s)" in out.stdout
    ray_runs = sim_runs(settings)
    local_settings = settings.model_copy(update={"mlflow_experiment": settings.mlflow_experiment + "-local"})
    out = cli(local_settings, str(plan), "--config", str(catalog_file))
    assert out.returncode == 0, out.stderr
    local_runs = sim_runs(local_settings)
    shape = lambda runs: sorted((r.data.tags[N.TAG_CELL_KEY], r.data.tags[N.TAG_QUANT], r.data.tags[N.TAG_TASK],  # noqa: E731
                                 r.data.tags[N.TAG_REPEAT], r.info.status, sorted(r.data.metrics)) for r in runs)
    assert len(ray_runs) == 2 and shape(ray_runs) == shape(local_runs)
    assert len(sim_runs(settings, "-servers")) == 2 and our_processes() == []


def test_an_unknown_executor_is_refused_before_anything_starts(settings, catalog_file, tmp_path):
    out = cli(settings, str(write_plan(tmp_path)), "--config", str(catalog_file), "--executor", "slurm")
    assert out.returncode == 2 and "unknown executor 'slurm'; choose one of local, ray" in out.stderr, out.stderr
    assert sim_runs(settings) == [] and sim_runs(settings, "-servers") == []


@pytest.mark.integration
def test_smoke_sweep_then_smoke_report_end_to_end(settings, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "BV_HOME": str(settings.home),
           "BV_TASKS_DIR": str(REPO / "tasks"), "BV_MODELS_FILE": str(REPO / "models.yaml")}
    exe = str(Path(sys.executable).parent / "beyond-vibes")
    out = subprocess.run([exe, "sweep", "--smoke"], env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr
    assert "[4/4]" in out.stdout and "2 model load(s)" in out.stdout  # the base, then base + demo adapter
    rep = subprocess.run([exe, "report", "--smoke", "--out", str(tmp_path / "reports")], env=env, capture_output=True,
                         text=True, timeout=600)
    assert rep.returncode == 0, rep.stderr
    [folder] = list((tmp_path / "reports").iterdir())
    import json

    results = json.loads((folder / "results.json").read_text())
    assert (folder / "index.html").stat().st_size > 10_000 and "smollm2-135m" in (folder / "report.md").read_text()
    assert sorted((r["model"], r["task"]) for r in results["runs"]) == \
        [("smollm2-135m", "fix_failing_test")] * 2 + [("smollm2-135m+demo-shift", "fix_failing_test")] * 2
    rows = {g["model"]: g for g in results["aggregates"]["by_config"]}
    assert sorted(rows) == ["smollm2-135m", "smollm2-135m+demo-shift"] and rows["smollm2-135m"]["n"] == 2
    assert rows["smollm2-135m"]["config_id"] != rows["smollm2-135m+demo-shift"]["config_id"]


def test_a_start_failure_reason_names_the_cause_from_the_log():
    from beyond_vibes.sweep.failed import start_failure_reason

    # As the process runtime raises it for a rejected flag, and for a model that does not fit in memory.
    assert start_failure_reason("llama-server exited with code 1; log tail:\nerror: invalid argument: --no-such-flag\n\n") \
        == "llama-server exited with code 1; log tail: error: invalid argument: --no-such-flag"
    oom = ("llama-server exited with code 1; log tail:\nload_tensors: loading model tensors\n"
           "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 9000 MiB on device 0: cudaMalloc failed: out of memory\n")
    assert start_failure_reason(oom).endswith("cudaMalloc failed: out of memory")
    assert start_failure_reason("llama-server not healthy after 300s; log tail:\n") == \
        "llama-server not healthy after 300s; log tail:"
    assert start_failure_reason("") == "no error text"


def test_two_engine_configs_are_two_report_rows_that_name_their_difference(settings, catalog_file, tmp_path):
    """One model and quant under two engine configs: two configurations (config ids), never pooled, and the report
    says what differs between them."""
    from beyond_vibes.report import build_report
    from beyond_vibes.report.collect import config_label

    plan = write_plan(tmp_path, engine_configs=[None, "small-batch"])
    out = cli(settings, str(plan), "--config", str(catalog_file))
    assert out.returncode == 0, out.stderr
    runs = sim_runs(settings)
    assert len(runs) == 2 and len({r.data.tags[N.TAG_CONFIG_ID] for r in runs}) == 2
    assert len({r.data.tags[N.TAG_SERVED_ID] for r in runs}) == 2
    report = build_report(settings, None, tmp_path / "reports")
    assert sorted(config_label(g.config)[:len("smol:Q4_0:cpu#")] for g in report.configs) == ["smol:Q4_0:cpu#"] * 2
    md = report.report_md.read_text()
    assert "Configurations that share a name" in md
    [row] = [line for line in md.splitlines() if "engine_flags.batch" in line]
    assert "-> 256" in row and "engine_flags.ubatch" in row


def test_a_group_whose_server_does_not_start_records_an_error_run_per_cell_and_the_sweep_goes_on(
        settings, catalog_file, tmp_path):
    from beyond_vibes.report import build_report

    data = yaml.safe_load(catalog_file.read_text())
    from conftest import FAKE_SECRETS

    from beyond_vibes.redact import MASK

    secret = FAKE_SECRETS["AWS_SECRET_ACCESS_KEY"]  # a flag carrying a secret: it must reach no tag, param or log
    data["engine_configs"]["bad-flag"] = {"extra_args": ["--no-such-flag", secret]}
    catalog_file.write_text(yaml.safe_dump(data))
    plan = write_plan(tmp_path, engine_configs=["bad-flag", None], repeats=2)
    out = cli(settings, str(plan), "--config", str(catalog_file))
    assert out.returncode == 0, out.stderr
    assert "server did not start" in out.stdout and "[4/4]" in out.stdout
    runs = sim_runs(settings)
    failed = [r for r in runs if r.data.tags[N.TAG_STATUS] == "error"]
    assert len(runs) == 4 and len(failed) == 2 and all(r.info.status == "FINISHED" or r.info.status == "FAILED" for r in runs)
    for r in failed:
        assert r.info.status == "FAILED" and "did not start" in r.data.tags[N.TAG_REASON]
        assert "error: invalid argument: --no-such-flag" in r.data.tags[N.TAG_REASON]  # the cause, not only "exited"
        assert json.loads(r.data.params["engine_flags"])["extra_args"] == ["--no-such-flag", MASK]
        assert not [v for v in [*r.data.tags.values(), *r.data.params.values()] if secret in v]
    assert {r.data.tags[N.TAG_REPEAT] for r in failed} == {"0", "1"}
    from mlflow import MlflowClient

    log = MlflowClient(settings.tracking_uri).download_artifacts(failed[0].info.run_id, N.A_SERVER_LOG, str(tmp_path))
    assert "no-such-flag" in Path(log).read_text() and secret not in Path(log).read_text()
    report = build_report(settings, None, tmp_path / "reports")
    hard = sorted((g.hard_failures, g.n) for g in report.configs)
    assert (2, 2) in hard and len(report.configs) == 2  # the failed configuration is a row with its failures
    assert our_processes() == []
