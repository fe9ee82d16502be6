"""Secrets nowhere: fake keys in the environment and a password in the tracking URI; every command that writes to
MLflow (quick-eval, speed, judge compile and evaluate, curate, a sweep of real pi on llama-server) against a real
`mlflow server`, secrets planted on purpose in what is logged; then everything in the store, the report folder and
the console is searched for each secret value. Plus the one writer on its own, URIs as shown, and what Ray sends."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from beyond_vibes.catalog import load_catalog
from beyond_vibes.redact import MASK, safe_uri
from beyond_vibes.runtime.probe import free_port
from beyond_vibes.settings import Settings
from beyond_vibes.tracking import tracking_client
from conftest import FAKE_SECRETS, REPO, SMOLLM, all_logged_text, have_pi, leaked, make_test_ggufs, our_processes
from scripted_llm import ScriptedLLM, Step
from test_judges import ARCHETYPE, dummy_answer, judges_dir  # noqa: F401 - judges_dir is a fixture
from test_quick_eval import write_set

PASSWORD = "tracking-pw-5f3c9a1e7b"  # the tracking URI's: as secret as the keys
SECRETS = [*FAKE_SECRETS.values(), PASSWORD]
EXE = str(Path(sys.executable).parent / "beyond-vibes")


def test_safe_uri_leaves_credentials_out():
    assert safe_uri("http://user:pw@host:5000") == "http://***@host:5000"
    assert safe_uri("postgresql+psycopg2://u:p%40w@h:5432/db") == "postgresql+psycopg2://***@h:5432/db"
    assert safe_uri("https://token@h/x and s3://a:b@c/d") == "https://***@h/x and s3://***@c/d"
    assert safe_uri("http://user:pw@host:5000", drop=True) == "http://host:5000"
    for plain in ("sqlite:////tmp/mlflow.db", "http://127.0.0.1:5000/#/experiments/1", "git@github.com:a/b.git"):
        assert safe_uri(plain) == plain


def test_the_writer_redacts_everything_it_writes(settings, tmp_path):
    """Every write method of the one writer, each given a secret: none reaches the store, the mask does."""
    from mlflow.entities import AssessmentSource, Metric, Param, RunTag, SpanStatus, SpanStatusCode

    key, token = FAKE_SECRETS["S3_SECRET_KEY"], FAKE_SECRETS["HF_TOKEN"]
    client, exp_id = tracking_client(settings)
    run = client.create_run(exp_id, run_name=f"run {key}", tags={"t": f"tag {key}", f"k-{token}": "v"})
    rid = run.info.run_id
    client.set_tag(rid, "set", f"x {token}")
    client.log_param(rid, "p", f"param {key}")
    client.log_metric(rid, f"m_{token}", 1.0)
    client.log_batch(rid, metrics=[Metric(f"b_{key}", 2.0, 0, 0)], params=[Param("bp", token)], tags=[RunTag("bt", key)])
    client.log_text(rid, f"text {key}", "t.txt")
    client.log_dict(rid, {"d": [token]}, "d.json")
    client.log_table(rid, data=pd.DataFrame({"prompt": [f"say {key}"], "n": [1]}), artifact_file="table.json")
    (tmp_path / "one.log").write_text(f"log {token}\n")
    client.log_artifact(rid, str(tmp_path / "one.log"))
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "sub" / "a.md").write_text(f"# {key}")
    (tmp_path / "dir" / "b.bin").write_bytes(b"\x00\xff\x00 binary")
    client.log_artifacts(rid, str(tmp_path / "dir"), "folder")
    client.set_experiment_tag(exp_id, "e", f"exp {token}")
    root = client.start_trace(f"trace {key}", inputs={"q": key}, tags={"tt": token}, experiment_id=exp_id, run_id=rid)
    span = client.start_span("s", trace_id=root.trace_id, parent_id=root.span_id, inputs=[token], attributes={"a": key})
    client.end_span(root.trace_id, span.span_id, outputs=f"out {key}", status=SpanStatus(SpanStatusCode.ERROR, token))
    client.end_trace(root.trace_id, outputs={"o": token})
    client.log_feedback(trace_id=root.trace_id, name="quality", value=3, rationale=f"because {key}",
                        source=AssessmentSource(source_type="LLM_JUDGE", source_id="j"), metadata={"m": token})
    client.set_terminated(rid)
    text = all_logged_text(client, rid, root.trace_id) + json.dumps(client.get_experiment(exp_id).tags)
    assert leaked(text, SECRETS) == []
    assert text.count(MASK) >= 15 and text.count("REDACTED") >= 3  # what was written is there, masked
    assert (Path(client.download_artifacts(rid, "folder/b.bin")).read_bytes()) == b"\x00\xff\x00 binary"


def test_ray_workers_get_no_secret_and_take_theirs_from_their_environment(settings, monkeypatch):
    from beyond_vibes.sweep.plan import SweepPlan, expand
    from beyond_vibes.sweep.ray_executor import worker_settings

    uri = f"http://bv:{PASSWORD}@127.0.0.1:9"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    full = Settings(BV_TASKS_DIR=str(REPO / "tasks"))
    assert full.hf_token.get_secret_value() == FAKE_SECRETS["HF_TOKEN"] and full.mlflow_tracking_uri == uri
    catalog = load_catalog(REPO / "models.yaml")
    plan = SweepPlan(name="p", models=[{"name": "smollm2-135m"}], tasks=["fix_failing_test"])
    [group] = expand(plan, REPO / "plans" / "p.yaml", catalog, full)
    sent = full.without_secrets()
    payload = pickle.dumps((sent, plan, group, group.cells))  # what RayExecutor hands to ray (besides its queue)
    assert [s for s in SECRETS if s.encode() in payload] == []
    assert sent.mlflow_tracking_uri == "http://***@127.0.0.1:9"
    there = worker_settings(pickle.loads(pickle.dumps(sent)))  # the worker: same environment as here (a local Ray)
    assert there.hf_token.get_secret_value() == FAKE_SECRETS["HF_TOKEN"]
    assert there.s3_secret_key.get_secret_value() == FAKE_SECRETS["S3_SECRET_KEY"]
    assert there.judge_api_key.get_secret_value() == FAKE_SECRETS["JUDGE_API_KEY"]
    assert there.mlflow_tracking_uri == uri and there.tasks_dir == full.tasks_dir
    monkeypatch.delenv("HF_TOKEN")  # a remote worker without the secret in its environment has none
    assert worker_settings(sent).hf_token is None


def test_a_store_uri_with_credentials_is_never_printed(settings, tmp_path):
    # (A SQL URI is shown by the same code; MLflow retries connecting to one for ~100 s, too long for a test.)
    uri = f"http://bv:{PASSWORD}@127.0.0.1:9"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "BV_HOME": str(settings.home), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    out = subprocess.run([EXE, "report", "--experiment", "x", "--out", str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2 and "cannot read the tracking store" in out.stderr, out.stderr
    assert "://***@127.0.0.1:9" in out.stderr and PASSWORD not in out.stdout + out.stderr


# ---- everything, for real, against a tracking server reached with a password ------------------------------------

@pytest.fixture
def tracking_server(tmp_path):
    """`mlflow server` on SQLite in tmp, artifacts proxied to a tmp folder; yields (store folder, URI with a password).
    (The server needs no password: the client sends it anyway, so it is in every request's URL.)"""
    store = tmp_path / "store"
    store.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in FAKE_SECRETS}
    log = (tmp_path / "mlflow-server.log").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                             f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", str(store / "artifacts"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "mlflow-server.log").read_text()
                time.sleep(0.3)
        yield store, f"http://bv:{PASSWORD}@127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)
        log.close()


class JudgeLLM(ScriptedLLM):
    """A judge that always answers the rubric's JSON, a secret in every rationale (the judge LM echoing a key)."""

    def __init__(self, answer: dict):
        super().__init__([])
        self.answer = answer

    def step_for(self, body: dict) -> Step:
        return Step(content=json.dumps(self.answer))


def everything_logged(uri: str) -> str:
    """Every experiment's tags, every run (params, tags, metric names, artifacts, its trace) and every trace with its
    assessments, as one string."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    parts = []
    for exp in client.search_experiments():
        parts.append(json.dumps(exp.tags))
        for run in client.search_runs([exp.experiment_id], max_results=1000):
            parts.append(all_logged_text(client, run.info.run_id, None) + json.dumps(run.info.run_name))
        for trace in client.search_traces(locations=[exp.experiment_id], max_results=100):
            parts.append(trace.to_json())
    return "\n".join(parts)


@pytest.mark.integration
@pytest.mark.skipif(not have_pi(), reason="pi not installed: run ./setup.sh")
def test_no_secret_reaches_the_store_the_report_or_the_console(settings, tmp_path, tracking_server, judges_dir,
                                                               monkeypatch, capfd):
    from beyond_vibes.curate import curate, dataset_records
    from beyond_vibes.judges.compile import compile_judge
    from beyond_vibes.judges.evaluate import evaluate
    from beyond_vibes.judges.rubric import load_rubric
    from beyond_vibes.quick_eval.run import ITEMS_TABLE, run_quick_eval
    from beyond_vibes.quick_eval.sets import load_set
    from beyond_vibes.speed import run_speed

    store, uri = tracking_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the CLI commands below, and their recording processes
    s = settings.model_copy(update={"mlflow_tracking_uri": uri, "evals_dir": tmp_path / "evals"})
    console = []

    # A model file under a folder named with a secret: its path is in llama-bench's output, the servers' params...
    ggufs = make_test_ggufs()
    hidden = tmp_path / f"models-{FAKE_SECRETS['AWS_SECRET_ACCESS_KEY']}"
    hidden.mkdir()
    (hidden / "smol.gguf").symlink_to(ggufs["Q8_0"])
    model_spec = {**SMOLLM, "name": "smol", "quant_tags": ["Q8_0"], "sources": {"Q8_0": {"path": str(hidden / "smol.gguf")}},
                  "engine": {"ctx": 2048, "threads": 2}}
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"default": "smol", "models": [model_spec]}))
    catalog = load_catalog(tmp_path / "models.yaml")
    model, quant = catalog.choose("smol", "Q8_0")
    engine = catalog.engine_for(model)
    spec = catalog.engine_spec(engine.engine)

    # Quick-eval: an item whose text holds a key (the items table would carry it, and the model may echo it).
    write_set(s.evals_dir, "leaky", [{"id": "a1", "prompt": "What is 2 + 3?", "expected": 5},
                                     {"id": "a2", "prompt": f"Repeat {FAKE_SECRETS['HF_TOKEN']}, then: what is 1 + 1?",
                                      "expected": 2}], max_tokens=24)
    [qe] = run_quick_eval(s, model, quant, engine, spec, [load_set("leaky", s.evals_dir)], tmp_path)
    assert qe.run_id and len(qe.scored) == 2

    # Speed: llama-bench's JSON names the model file (the secret folder).
    speed = run_speed(s, model, quant, engine, spec, repetitions=1)
    assert speed.raw and FAKE_SECRETS["AWS_SECRET_ACCESS_KEY"] in json.dumps(speed.raw)  # it was there to leak

    # A sweep of real pi on llama-server, from the command line (its console is searched too).
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"name": "leak", "models": [{"name": "smol", "quants": ["Q8_0"]}],
                                    "tasks": ["fix_failing_test"], "repeats": 1, "max_turns": 1, "timeout_s": 300}))
    env = {**os.environ, "BV_EXPERIMENT": s.mlflow_experiment, "BV_HOME": str(s.home), "BV_TASKS_DIR": str(REPO / "tasks")}
    out = subprocess.run([EXE, "sweep", str(plan), "--config", str(tmp_path / "models.yaml")], env=env,
                         capture_output=True, text=True, timeout=900)
    console.append(out.stdout + out.stderr)
    assert out.returncode == 0 and "[1/1]" in out.stdout, out.stderr

    # Judges: compile against an API judge whose model name holds a key (it is in the run name, params, meta.json),
    # then curate the sweep's run and evaluate it with rationales that hold another.
    labels = (judges_dir / "labels" / f"{ARCHETYPE}.jsonl").read_text().splitlines()[:7]
    (judges_dir / "labels" / f"{ARCHETYPE}.jsonl").write_text("\n".join(labels) + "\n")
    rubric = load_rubric(ARCHETYPE, judges_dir)
    answer = {k: (f"as {FAKE_SECRETS['S3_SECRET_KEY']} shows" if k.endswith("_rationale") else v)
              for k, v in dummy_answer(rubric, 4).items()}
    with JudgeLLM(answer) as judge:
        js = s.model_copy(update={"judges_dir": judges_dir, "judge_base_url": judge.base_url,
                                  "judge_model": f"judge-{FAKE_SECRETS['JUDGE_API_KEY']}"})
        compiled = compile_judge(js, ARCHETYPE, "bootstrap", seed=1)
        assert compiled.run_id and compiled.requests > 0
        assert curate(js, "leak-v1").added == 1
        result = evaluate(js, "leak-v1")
        assert result.by_archetype[ARCHETYPE].scored == 1

    # The report, from the command line, against the server reached with the password.
    rep = subprocess.run([EXE, "report", "--experiment", s.mlflow_experiment, "--out", str(tmp_path / "reports")],
                         env=env, capture_output=True, text=True, timeout=600)
    console.append(rep.stdout + rep.stderr)
    assert rep.returncode == 0, rep.stderr
    [folder] = list((tmp_path / "reports").iterdir())
    report_text = "\n".join(f.read_text(errors="replace") for f in folder.rglob("*") if f.is_file())
    assert "http://***@127.0.0.1:" in (folder / "report.md").read_text()

    logged = everything_logged(uri)
    assert MASK in logged and ITEMS_TABLE in logged  # the planted secrets were written, masked
    assert leaked(logged, SECRETS) == []
    assert leaked(report_text, SECRETS) == []
    here = capfd.readouterr()  # what this process printed (MLflow's own "View run <link>" lines among it)
    assert leaked("\n".join([*console, here.out, here.err]), SECRETS) == []
    # And the store's own files (database, artifacts) and the server's log, byte for byte.
    for f in [*store.rglob("*"), tmp_path / "mlflow-server.log"]:
        if f.is_file():
            data = f.read_bytes()
            assert [x for x in SECRETS if x.encode() in data] == [], f
    [record] = dataset_records(js, "leak-v1")
    trace_id = record["trace_id"]
    judged = [a for a in mlflow.get_trace(trace_id).info.assessments if a.source.source_type == "LLM_JUDGE"]
    feedback = [a for a in judged if a.source.source_id.startswith("bv-judge/")]
    assert feedback and all(a.rationale == f"as {MASK} shows" for a in feedback)  # written, and masked
    # MLflow's Guidelines judge ran on the same judge endpoint too (this stand-in answers it nothing it can read:
    # error assessments, whose messages went through the same masking as everything above).
    assert {a.name for a in judged if a.source.source_id.startswith("mlflow-guidelines@")} == \
        {f"guideline.{k}" for k in record["guidelines"]} != set()
    assert our_processes() == []
    shutil.rmtree(hidden, ignore_errors=True)
