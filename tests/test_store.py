"""Model store on real parts: a hub stand-in serving real GGUF files, rclone and moto S3 servers on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from beyond_vibes import names as N
from beyond_vibes.catalog import load_catalog
from beyond_vibes.cli import main
from beyond_vibes.settings import Settings, get_settings
from beyond_vibes.store.cache import ModelCache
from beyond_vibes.store.hf import ChecksumError, HuggingFace
from beyond_vibes.store.mirror import plan_mirror, run_mirror
from beyond_vibes.store.resolve import resolve_model
from beyond_vibes.store.s3 import S3Store, object_key
from conftest import REPO, make_test_ggufs, write_catalog
from hf_hub_server import FakeHub, FakeRepo, file_sha256
from s3_servers import ACCESS, SECRET, MotoS3, RcloneS3

pytestmark = pytest.mark.integration
REPO_ID = "bv-test/SmolLM2-135M-Instruct-GGUF"
BUCKET = "bv-models"
COMMIT1, COMMIT2 = "1" * 40, "2" * 40


@pytest.fixture(scope="session")
def ggufs() -> dict[str, Path]:
    return make_test_ggufs()


def repo_files(ggufs) -> dict[str, Path]:
    return {f"SmolLM2-135M-Instruct-{q}.gguf": p for q, p in ggufs.items()} | {"README.md": REPO / "README.md"}


@pytest.fixture
def hub(ggufs):
    with FakeHub({REPO_ID: FakeRepo(repo_files(ggufs), commit=COMMIT1),
                  "bv-test/gated-GGUF": FakeRepo({"m-Q4_0.gguf": ggufs["Q4_0"]}, gated=True)}, token="hf_goodtoken123") as h:
        yield h


@pytest.fixture(params=[RcloneS3, MotoS3], ids=["rclone", "moto"])
def s3_server(request):
    with request.param() as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture
def rclone():
    with RcloneS3() as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


def store_env(monkeypatch, tmp_path, hub, server=None, **extra) -> Settings:
    env = {"HF_ENDPOINT": hub.endpoint, "BV_MODEL_DIR": str(tmp_path / "cache" / "models"), "BV_HOME": str(tmp_path / "home"),
           "BV_MODELS_FILE": str(write_catalog(tmp_path, [{"name": "smol", "family": "smollm", "repo_id": REPO_ID,
                                                           "quant_tags": ["Q4_0", "Q8_0", "Q4_1"],
                                                           "engine": {"threads": 2}, "sampling": {"max_tokens": 64}}])),
           **(server.env(BUCKET) if server else {}), **extra}
    for k in ("S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY", "HF_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    return Settings()


class CallCounter:
    def __init__(self, store: S3Store):
        self.calls: list[str] = []
        store.client.meta.events.register("before-call.s3.*", lambda event_name, **kw: self.calls.append(event_name.split(".")[-1]))

    def count(self, *ops: str) -> int:
        return sum(self.calls.count(o) for o in ops)


def mirror(settings: Settings, quant: str | None = None):
    catalog = load_catalog(settings.models_file)
    hf, cache, s3 = HuggingFace(settings), ModelCache(settings.model_dir), S3Store(settings)
    counter = CallCounter(s3)
    plan = plan_mirror(catalog, hf, cache, s3, quant=quant)
    report = run_mirror(plan, hf, cache, s3, show_progress=False)
    return plan, report, counter


def test_dry_run_plans_and_changes_nothing(monkeypatch, tmp_path, hub, rclone):
    store_env(monkeypatch, tmp_path, hub, rclone)
    result = CliRunner().invoke(main, ["download", "--dry-run"])
    assert result.exit_code == 0, result.output + result.stderr
    out = result.output
    for q in ("Q4_0", "Q8_0", "Q4_1"):
        assert f"SmolLM2-135M-Instruct-{q}.gguf" in out
    assert "README.md" not in out and COMMIT1[:12] in out and out.count("upload") >= 3
    assert "3 to transfer" in out and "0 up to date" in out
    assert rclone.client().list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert not (tmp_path / "cache" / "models").exists()


def test_full_mirror_then_rerun_is_free(monkeypatch, tmp_path, hub, s3_server, ggufs):
    settings = store_env(monkeypatch, tmp_path, hub, s3_server)
    plan, report, counter = mirror(settings)
    assert [p.action for p in plan] == ["upload"] * 3 and len(report.uploaded) == 3
    client = s3_server.client()
    for q, path in ggufs.items():
        key = object_key(REPO_ID, f"SmolLM2-135M-Instruct-{q}.gguf")
        head = client.head_object(Bucket=BUCKET, Key=key)
        meta = {k.lower(): v for k, v in head["Metadata"].items()}
        assert meta == {"sha256": file_sha256(path), "hf-revision": COMMIT1}
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == file_sha256(path)
    assert counter.count("CreateMultipartUpload") >= 1  # the 145 MB Q8_0 went up in parts

    plan, report, counter = mirror(settings)
    assert [p.action for p in plan] == ["skip"] * 3 and report.uploaded == []
    assert counter.count("PutObject", "CreateMultipartUpload", "UploadPart") == 0
    assert counter.count("HeadObject") == 3 and len(counter.calls) == 4  # head_bucket + one HEAD per file


def test_changed_upstream_file_is_replaced(monkeypatch, tmp_path, hub, rclone, ggufs):
    settings = store_env(monkeypatch, tmp_path, hub, rclone)
    mirror(settings)
    changed = tmp_path / "q4_0-v2.gguf"
    shutil.copy(ggufs["Q4_0"], changed)
    with changed.open("ab") as f:
        f.write(b"\0" * 4096)  # a new upload upstream: other bytes, other sha256
    hub.repos[REPO_ID].update("SmolLM2-135M-Instruct-Q4_0.gguf", changed, COMMIT2)
    plan, report, counter = mirror(settings)
    assert {p.quant: p.action for p in plan} == {"Q4_0": "replace", "Q8_0": "skip", "Q4_1": "skip"}
    assert [p.quant for p in report.uploaded] == ["Q4_0"]
    head = rclone.client().head_object(Bucket=BUCKET, Key=object_key(REPO_ID, "SmolLM2-135M-Instruct-Q4_0.gguf"))
    meta = {k.lower(): v for k, v in head["Metadata"].items()}
    assert meta == {"sha256": file_sha256(changed), "hf-revision": COMMIT2}


KILLER = textwrap.dedent("""
    import os, signal, sys
    import beyond_vibes.store.s3 as s3mod
    real_upload = s3mod.S3Store.upload
    def upload(self, path, key, sha256, revision, progress=lambda n: None):
        sent = [0]
        def cb(n):
            sent[0] += n
            if sent[0] > 40 * 1024 * 1024:   # some parts are in: die as a power cut would
                os.killpg(os.getpid(), signal.SIGKILL)
            progress(n)
        return real_upload(self, path, key, sha256, revision, cb)
    s3mod.S3Store.upload = upload
    from beyond_vibes.cli import main
    sys.argv = ["beyond-vibes", "download", "--quant", "Q8_0"]
    main()
""")


def test_killed_multipart_upload_leaves_nothing_visible_and_resumes(monkeypatch, tmp_path, hub, rclone, ggufs):
    settings = store_env(monkeypatch, tmp_path, hub, rclone)
    key = object_key(REPO_ID, "SmolLM2-135M-Instruct-Q8_0.gguf")
    proc = subprocess.run([sys.executable, "-c", KILLER], env=os.environ.copy(), capture_output=True, timeout=300,
                          start_new_session=True)
    assert proc.returncode == -9
    client = rclone.client()
    assert "Contents" not in client.list_objects_v2(Bucket=BUCKET, Prefix=key)  # no partial object
    assert [u["Key"] for u in client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])] == [key]
    result = CliRunner().invoke(main, ["download", "--quant", "Q8_0"])
    assert result.exit_code == 0, result.output + result.stderr
    assert client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []  # the leftover was aborted
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == file_sha256(ggufs["Q8_0"])
    # The hub download of the killed run was complete and verified, so the resume only re-uploaded.
    downloads = [p for m, p in hub.requests if m == "GET" and p.endswith("Q8_0.gguf")]
    assert len(downloads) == 1


def test_checksum_mismatch_is_refused_before_s3(monkeypatch, tmp_path, hub, rclone):
    store_env(monkeypatch, tmp_path, hub, rclone)
    hub.repos[REPO_ID].lie_sha256.add("SmolLM2-135M-Instruct-Q4_0.gguf")
    result = CliRunner().invoke(main, ["download", "--quant", "Q4_0"])
    assert result.exit_code == 1 and "refused" in result.stderr
    assert rclone.client().list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert list((tmp_path / "cache").rglob("*.gguf*")) == []  # neither the file nor a .part is kept


@pytest.mark.parametrize("change, message", [
    ({"S3_SECRET_KEY": "wrong-secret-value-999"}, "S3: access denied to s3://bv-models"),
    ({"S3_BUCKET": "no-such-bucket"}, "S3: bucket 'no-such-bucket' does not exist"),
    ({"S3_ENDPOINT": "http://127.0.0.1:9"}, "S3: cannot reach endpoint http://127.0.0.1:9"),
])
def test_s3_errors_are_one_line_exit_2_and_secret_free(monkeypatch, tmp_path, hub, rclone, change, message):
    store_env(monkeypatch, tmp_path, hub, rclone, **change)
    result = CliRunner().invoke(main, ["download", "--dry-run"])
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    for secret in (SECRET, "wrong-secret-value-999", ACCESS):
        assert secret not in result.stderr + result.output


def test_hub_errors(monkeypatch, tmp_path, hub):
    store_env(monkeypatch, tmp_path, hub)
    runner = CliRunner()

    def download_of(repo_id: str, extra_env: dict | None = None) -> str:
        cat = write_catalog(tmp_path, [{"name": "m", "repo_id": repo_id, "quant_tags": ["Q4_0"]}])
        for k, v in (extra_env or {}).items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        result = runner.invoke(main, ["download", "--dry-run", "--config", str(cat)])
        assert result.exit_code == 2, result.output + result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        return result.stderr

    assert "repository 'bv-test/nope' not found" in download_of("bv-test/nope")
    assert "is gated: accept its license on the hub and set HF_TOKEN" in download_of("bv-test/gated-GGUF")
    monkeypatch.setenv("HF_TOKEN", "hf_goodtoken123")
    get_settings.cache_clear()
    ok = runner.invoke(main, ["download", "--dry-run", "--config", str(tmp_path / "models.yaml")])
    assert ok.exit_code == 0 and "m-Q4_0.gguf" in ok.output
    monkeypatch.setenv("HF_TOKEN", "hf_wrongtoken456")
    get_settings.cache_clear()
    denied = runner.invoke(main, ["download", "--dry-run", "--config", str(tmp_path / "models.yaml")])
    assert denied.exit_code == 2 and "HF_TOKEN is set but has no access" in denied.stderr
    assert "hf_wrongtoken456" not in denied.stderr + denied.output
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("BV_MODELS_FILE", str(write_catalog(tmp_path, [{"name": "smol", "repo_id": REPO_ID,
                                                                        "quant_tags": ["Q4_0", "Q8_0", "Q4_1"]}])))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    get_settings.cache_clear()
    result = runner.invoke(main, ["download", "--dry-run"])
    assert result.exit_code == 2 and "cannot reach http://127.0.0.1:9" in result.stderr
    result = runner.invoke(main, ["download", "--quant", "Q5_K_M"])
    assert result.exit_code == 2 and "has no quant 'Q5_K_M'; quant_tags: Q4_0, Q8_0, Q4_1" in result.stderr


def test_local_store_without_s3(monkeypatch, tmp_path, hub, ggufs):
    settings = store_env(monkeypatch, tmp_path, hub)
    result = CliRunner().invoke(main, ["download", "--quant", "Q4_0"])
    assert result.exit_code == 0, result.output + result.stderr
    cached = tmp_path / "cache" / "models" / REPO_ID / "SmolLM2-135M-Instruct-Q4_0.gguf"
    assert file_sha256(cached) == file_sha256(ggufs["Q4_0"])
    again = CliRunner().invoke(main, ["download", "--quant", "Q4_0"])
    assert "0 to transfer" in again.output
    resolved = resolve_model(load_catalog(settings.models_file).model("smol"), "Q4_0", settings)
    assert resolved.path == cached and resolved.source == f"cache:hf:{REPO_ID}@{COMMIT1}" and resolved.revision == COMMIT1


def test_tampered_cache_file_is_fetched_again(monkeypatch, tmp_path, hub, ggufs):
    settings = store_env(monkeypatch, tmp_path, hub)
    model = load_catalog(settings.models_file).model("smol")
    first = resolve_model(model, "Q4_0", settings)
    assert first.source == f"hf:{REPO_ID}@{COMMIT1}"
    with first.path.open("r+b") as f:  # same size, other bytes: only a checksum notices
        f.seek(1000)
        f.write(b"\xff" * 16)
    again = resolve_model(model, "Q4_0", settings)
    assert again.source == f"hf:{REPO_ID}@{COMMIT1}" and file_sha256(again.path) == file_sha256(ggufs["Q4_0"])


def test_simulate_from_s3_into_an_empty_cache(monkeypatch, tmp_path, hub, rclone, ggufs, tracking_uri):
    settings = store_env(monkeypatch, tmp_path, hub, rclone)
    mirror(settings, quant="Q4_0")
    shutil.rmtree(tmp_path / "cache")  # a fresh machine: nothing local
    hub_requests = len(hub.requests)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("BV_TASKS_DIR", str(REPO / "tasks"))
    get_settings.cache_clear()
    result = CliRunner().invoke(main, ["simulate", "--task", "fix_failing_test", "--quant", "Q4_0", "--max-turns", "1",
                                       "--experiment", "from-s3"])
    assert result.exit_code == 0, result.output + result.stderr
    assert len(hub.requests) == hub_requests  # everything came from S3
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    [run] = client.search_runs([client.get_experiment_by_name("from-s3").experiment_id])
    params = run.data.params
    assert params[N.PARAM_MODEL_SOURCE] == f"s3://{BUCKET}/{object_key(REPO_ID, 'SmolLM2-135M-Instruct-Q4_0.gguf')}"
    assert params[N.PARAM_MODEL_REVISION] == COMMIT1
    assert params[N.PARAM_MODEL_SHA256] == file_sha256(ggufs["Q4_0"])
    assert run.info.status == "FINISHED" and run.data.tags[N.TAG_QUANT] == "Q4_0"
    assert ACCESS not in json.dumps(params) and SECRET not in json.dumps(params)


def test_interrupted_hub_download_resumes_with_a_range_request(monkeypatch, tmp_path, hub, ggufs):
    settings = store_env(monkeypatch, tmp_path, hub)
    hf = HuggingFace(settings)
    snap = hf.snapshot(REPO_ID)
    file = next(f for f in snap.files if f.path.endswith("Q4_0.gguf"))
    dest = tmp_path / "dl" / "q4_0.gguf"
    dest.parent.mkdir()
    half = file.size // 2
    with ggufs["Q4_0"].open("rb") as src:  # what an interrupted run left behind
        dest.with_name(dest.name + ".part").write_bytes(src.read(half))
    seen = []
    hf.download(REPO_ID, snap.commit, file, dest, progress=seen.append)
    assert file_sha256(dest) == file_sha256(ggufs["Q4_0"]) and not dest.with_name(dest.name + ".part").exists()
    assert seen[0] == half and sum(seen) == file.size  # only the missing half came over the wire
    with pytest.raises(ChecksumError):  # a corrupt partial file is caught by the checksum, never kept
        dest.unlink()
        dest.with_name(dest.name + ".part").write_bytes(b"\0" * half)
        hf.download(REPO_ID, snap.commit, file, dest)
    assert not dest.exists()


def test_an_adapter_on_the_hub_is_mirrored_then_served_from_the_mirror_verified(monkeypatch, tmp_path, rclone, ggufs):
    """A model's LoRA adapter (repo_id + file) is mirrored with its quants; a machine then resolves it from S3, not the
    hub, checked against its sha256; a tampered mirror copy is refused."""
    from conftest import make_test_lora

    from beyond_vibes.store.resolve import resolve_model

    lora = make_test_lora(ggufs["Q4_0"], tmp_path / "smol-lora.gguf")
    with FakeHub({REPO_ID: FakeRepo(repo_files(ggufs), commit=COMMIT1),
                  "bv-test/smol-lora": FakeRepo({"smol-lora.gguf": lora}, commit=COMMIT2)}) as hub:
        settings = store_env(monkeypatch, tmp_path, hub, rclone)
        write_catalog(tmp_path, [{"name": "smol", "family": "smollm", "repo_id": REPO_ID, "quant_tags": ["Q4_0"],
                                  "adapters": {"lora": {"repo_id": "bv-test/smol-lora", "file": "smol-lora.gguf",
                                                        "sha256": file_sha256(lora)}}}])
        plan, report, _ = mirror(settings, quant="Q4_0")
        assert [(p.quant, p.action) for p in plan] == [("Q4_0", "upload"), ("adapter:lora", "upload")]
        head = rclone.client().head_object(Bucket=BUCKET, Key=object_key("bv-test/smol-lora", "smol-lora.gguf"))
        assert {k.lower(): v for k, v in head["Metadata"].items()}["sha256"] == file_sha256(lora)
        asked = len(hub.requests)
        shutil.rmtree(tmp_path / "cache" / "models")  # another machine: nothing cached
        model = load_catalog(settings.models_file).model("smol").with_adapter("lora")
        resolved = resolve_model(model, "Q4_0", settings)
        assert resolved.adapter.source.startswith(f"s3://{BUCKET}/") and resolved.adapter.sha256 == file_sha256(lora)
        assert len(hub.requests) == asked  # the hub was not asked again
        assert mirror(settings, quant="Q4_0")[0][1].action == "skip"
