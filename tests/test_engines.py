"""Engines as an axis: named engine configs, GPU container specs per engine, a process runtime that refuses to call a
CPU build "cuda", the container runtime on podman's Docker API (real llama-server image, real pi, real MLflow),
containers gone on every exit path, and llama-bench speed references."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from beyond_vibes import names as N
from beyond_vibes.catalog import DEFAULT_IMAGES, Engine, EngineSpec, load_catalog
from beyond_vibes.errors import ConfigError
from beyond_vibes.runtime.container import gpu_access, reap_containers
from beyond_vibes.settings import Settings
from beyond_vibes.simulate import SimulateOptions, simulate
from beyond_vibes.speed import parse_bench, run_speed
from beyond_vibes.tasks import load_task
from beyond_vibes.tracking import tracking_client
from conftest import REPO, SMOLLM, our_processes

BIN = Settings().find_llama_server()


def catalog_file(tmp_path, model=SMOLLM, **top) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"default": model["name"], "models": [model], **top}))
    return path


def test_gpu_device_access_per_engine(monkeypatch):
    import grp

    cuda = gpu_access(Engine.cuda)["device_requests"][0]
    assert (cuda["Count"], cuda["DeviceIDs"] or None, cuda["Capabilities"]) == (-1, None, [["gpu"]])
    chosen = gpu_access(Engine.cuda, "0, 2")["device_requests"][0]
    assert chosen["DeviceIDs"] == ["0", "2"] and chosen.get("Count") in (None, 0)
    groups = {"video": 44, "render": 105}
    monkeypatch.setattr(grp, "getgrnam", lambda n: type("G", (), {"gr_gid": groups[n]})() if n in groups else (_ for _ in ()).throw(KeyError(n)))
    rocm = gpu_access(Engine.rocm)
    assert rocm["devices"] == ["/dev/kfd:/dev/kfd:rwm", "/dev/dri:/dev/dri:rwm"] and rocm["group_add"] == ["44", "105"]
    assert gpu_access(Engine.vulkan) == {"devices": ["/dev/dri:/dev/dri:rwm"], "group_add": ["44", "105"]}
    assert gpu_access(Engine.cpu) == {}
    assert DEFAULT_IMAGES[Engine.cuda] == "ghcr.io/ggml-org/llama.cpp:server-cuda"


def test_named_engine_configs_overlay_the_models_and_change_the_run_key(tmp_path):
    catalog = load_catalog(catalog_file(tmp_path, engine_configs={"fast-kv": {"cache_type_k": "q8_0", "cache_type_v": "q8_0",
                                                                               "flash_attn": "on", "batch": 1024}},
                                        engines={"cuda": {"binary": "/opt/llama-cuda/llama-server", "gpus": "1"}}))
    model = catalog.model("smollm2-135m")
    plain, fast = catalog.engine_for(model), catalog.engine_for(model, "vulkan", "fast-kv", "container")
    assert (plain.name, plain.engine, plain.runtime) == ("default", Engine.cpu, "process")
    assert (fast.name, fast.engine, fast.runtime, fast.threads) == ("fast-kv", Engine.vulkan, "container", 2)
    assert ["--cache-type-k", "q8_0"] == fast.server_args()[fast.server_args().index("--cache-type-k"):][:2]
    assert plain.flags() != fast.flags() and "name" not in fast.flags()
    assert catalog.engine_spec(Engine.cuda).binary == "/opt/llama-cuda/llama-server"
    assert catalog.engine_spec(Engine.cuda).image == DEFAULT_IMAGES[Engine.cuda]
    with pytest.raises(ConfigError, match="no engine config 'turbo'; choose one of fast-kv"):
        catalog.engine_for(model, config="turbo")
    with pytest.raises(ConfigError, match="unknown engine 'tpu'; choose one of cpu, cuda, rocm, vulkan"):
        catalog.engine_for(model, "tpu")


def test_a_cpu_build_is_never_recorded_as_cuda(settings, tmp_path):
    """The process runtime asks the binary which devices it has: a CPU build configured as the CUDA engine is refused."""
    catalog = load_catalog(catalog_file(tmp_path, engines={"cuda": {"binary": str(BIN)}}))
    model, quant = catalog.choose()
    engine = catalog.engine_for(model, "cuda")
    with pytest.raises(ConfigError, match=r"engine cuda: .*llama-server sees no CUDA device \(devices: none\)"):
        simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings,
                 SimulateOptions(engine=engine, engine_spec=catalog.engine_spec(engine.engine)))
    with pytest.raises(ConfigError, match="engine rocm: no llama-server binary for it; set engines.rocm.binary"):
        simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings,
                 SimulateOptions(engine=catalog.engine_for(model, "rocm")))
    assert tracking_client(settings)[0].search_runs([tracking_client(settings)[1]]) == []  # no run left behind


def test_gpu_container_engines_on_a_host_without_that_gpu_are_refused(settings, tmp_path):
    catalog = load_catalog(catalog_file(tmp_path))
    model, quant = catalog.choose()
    engine = catalog.engine_for(model, "cuda", runtime="container")
    with pytest.raises(ConfigError, match="engine cuda: no NVIDIA GPU on this host"):
        simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings,
                 SimulateOptions(engine=engine, engine_spec=catalog.engine_spec(engine.engine)))


def test_an_unreachable_container_engine_is_one_line(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    catalog = load_catalog(catalog_file(tmp_path))
    model, quant = catalog.choose()
    engine = catalog.engine_for(model, runtime="container")
    with pytest.raises(ConfigError, match="container engine not reachable at unix://.*nothing.sock.*podman system service"):
        simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, Settings(**{
            "MLFLOW_TRACKING_URI": settings.tracking_uri, "BV_EXPERIMENT": settings.mlflow_experiment}),
            SimulateOptions(engine=engine, engine_spec=EngineSpec(image="localhost/none:x")))


def test_llama_bench_output_is_parsed_to_its_own_numbers():
    text = json.dumps([{"build_commit": "abc", "build_number": 7, "n_prompt": 512, "n_gen": 0, "avg_ts": 250.5,
                        "stddev_ts": 3.25, "samples_ts": [247.0, 254.0]},
                       {"build_commit": "abc", "build_number": 7, "n_prompt": 0, "n_gen": 128, "avg_ts": 40.0,
                        "stddev_ts": 1.0, "samples_ts": [39.0, 41.0]}])
    tests, build = parse_bench("log line\n" + text)
    assert build == "b7-abc" and [(t.name, t.tps, t.stddev, t.n) for t in tests] == [("pp512", 250.5, 3.25, 2), ("tg128", 40.0, 1.0, 2)]


@pytest.mark.integration
def test_speed_records_llama_bench_figures_with_their_spread(settings, tmp_path):
    catalog = load_catalog(catalog_file(tmp_path))
    model, quant = catalog.choose()
    engine = catalog.engine_for(model)
    r = run_speed(settings, model, quant, engine, catalog.engine_spec(engine.engine), repetitions=2)
    client, _ = tracking_client(settings, f"{settings.mlflow_experiment}-speed")
    run = client.get_run(r.run_id)
    m = run.data.metrics
    assert run.data.tags[N.TAG_KIND] == "speed" and run.data.params[N.PARAM_LLAMA_BUILD].startswith("b1-")
    assert m["pp512_tps"] > 0 and m["tg128_tps"] > 0 and "pp512_tps_std" in m and "tg128_tps_std" in m
    # The same binary run directly agrees (a machine this size varies run to run: within a factor of two).
    out = subprocess.run([str(BIN.with_name("llama-bench")), "-m", str(r.raw[0]["model_filename"]), "-p", "512", "-n", "128",
                          "-r", "2", "-o", "json", "-t", "2", "-ngl", "0"], capture_output=True, text=True, timeout=900)
    direct = {f"pp{e['n_prompt']}" if e["n_prompt"] else f"tg{e['n_gen']}": e["avg_ts"] for e in json.loads(out.stdout)}
    assert 0.5 < m["pp512_tps"] / direct["pp512"] < 2 and 0.5 < m["tg128_tps"] / direct["tg128"] < 2
    # It is the reference of exactly the configuration a simulation is served as: the same served id, from the
    # same parts (the report matches speed references on it).
    from beyond_vibes.identity import served_id, served_parts
    from beyond_vibes.serving import serve_model

    with serve_model(model, quant, settings, engine, None, None, None, catalog.engine_spec(engine.engine)) as served:
        assert run.data.tags[N.TAG_SERVED_ID] == served_id(served_parts(served))
        assert json.loads(run.data.params[N.PARAM_CONFIG_IDENTITY]) == json.loads(json.dumps(served_parts(served),
                                                                                             default=str))
    assert our_processes() == []


# ---- the container runtime on podman's Docker-compatible API ------------------------------------------------------

needs_podman = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def podman():
    from podman_server import PodmanService

    with PodmanService() as service:
        image = service.build_llama_image(BIN.parent)
        yield service, image


def containers(url: str) -> list[str]:
    import docker

    return [c.name for c in docker.DockerClient(base_url=url).containers.list(all=True, filters={"name": "bv-llama"})]


def container_setup(tmp_path, podman, monkeypatch, **model_extra):
    service, image = podman
    monkeypatch.setenv("DOCKER_HOST", service.url)
    spec = {**SMOLLM, **model_extra}
    catalog = load_catalog(catalog_file(tmp_path, model=spec, engines={"cpu": {"image": image}}))
    model, quant = catalog.choose()
    engine = catalog.engine_for(model, runtime="container")
    return catalog, model, quant, engine


@needs_podman
@pytest.mark.integration
def test_container_runtime_records_the_same_run_shape(settings, tmp_path, podman, monkeypatch):
    service, image = podman
    catalog, model, quant, engine = container_setup(tmp_path, podman, monkeypatch)
    s = settings.model_copy(update={"docker_host": service.url})
    result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, s,
                      SimulateOptions(max_turns=2, engine=engine, engine_spec=catalog.engine_spec(engine.engine)))
    client, _ = tracking_client(s)
    run = client.get_run(result.run_id)
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags[N.TAG_RUNTIME] == "container" and tags[N.TAG_ENGINE] == "cpu" and run.info.status == "FINISHED"
    assert params[N.PARAM_IMAGE].startswith("localhost/bv-llama-cpu@sha256:") and params[N.PARAM_LLAMA_BUILD].startswith("b1-")
    assert "--device none" in params[N.PARAM_ENGINE_ARGS] and "/models/" in params[N.PARAM_ENGINE_ARGS]
    assert metrics[N.M_LOAD_S] > 0 and metrics[N.M_PEAK_RSS_MB] > 50 and metrics[N.M_TOKENS_COMPLETION] > 0
    assert result.status in ("failed", "success") and "stop processing" in Path(
        client.download_artifacts(result.run_id, N.A_SERVER_LOG)).read_text()
    assert containers(service.url) == []


@needs_podman
@pytest.mark.integration
def test_containers_are_gone_after_a_timeout_an_error_and_a_sigterm(settings, tmp_path, podman, monkeypatch):
    service, image = podman
    catalog, model, quant, engine = container_setup(tmp_path, podman, monkeypatch,
                                                    sampling={"temperature": 0.0, "seed": 42, "max_tokens": 4000})
    s = settings.model_copy(update={"docker_host": service.url})
    task = load_task("fix_failing_test", REPO / "tasks")
    opts = SimulateOptions(timeout_s=3, engine=engine, engine_spec=catalog.engine_spec(engine.engine))
    assert simulate(task, model, quant, s, opts).status == "timeout"
    assert containers(service.url) == []
    # The container dies mid-run: an error that names it, and nothing left.
    import docker

    box = {}
    worker = threading.Thread(target=lambda: box.update(r=simulate(task, model, quant, s, SimulateOptions(
        engine=engine, engine_spec=catalog.engine_spec(engine.engine)))))
    worker.start()
    client = docker.DockerClient(base_url=service.url)
    deadline = time.monotonic() + 120
    while not client.containers.list(filters={"name": "bv-llama"}) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(8)  # health, then the agent's first request
    client.containers.list(filters={"name": "bv-llama"})[0].kill()
    worker.join(timeout=120)
    assert box["r"].status == "error" and "llama-server container exited" in box["r"].error
    assert containers(service.url) == []
    # SIGTERM to the CLI: the container is removed with everything else.
    catalog_path = catalog_file(tmp_path, model={**SMOLLM, "sampling": {"max_tokens": 4000}},
                                engines={"cpu": {"image": image}}, engine_configs={})
    env = {**os.environ, "MLFLOW_TRACKING_URI": s.tracking_uri, "BV_EXPERIMENT": s.mlflow_experiment, "BV_HOME": str(s.home),
           "DOCKER_HOST": service.url, "BV_TASKS_DIR": str(REPO / "tasks")}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "beyond-vibes"), "simulate", "--task", "fix_failing_test",
                             "--config", str(catalog_path), "--runtime", "container"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not client.containers.list(filters={"name": "bv-llama"}) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(5)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 143 and containers(service.url) == [] and our_processes() == []


@needs_podman
@pytest.mark.integration
def test_a_container_left_by_a_dead_harness_is_reaped(podman, monkeypatch):
    import docker

    service, image = podman
    client = docker.DockerClient(base_url=service.url)
    dead = subprocess.Popen(["true"])
    dead.wait()
    c = client.containers.create(image, command=["--version"], name="bv-llama-orphan",
                                 labels={"bv.owner_pid": str(dead.pid), "bv.owner_host": __import__("socket").gethostname()})
    assert "bv-llama-orphan" in containers(service.url)
    assert reap_containers(client) == ["bv-llama-orphan"] and containers(service.url) == []
    del c


def test_engines_list_says_what_this_host_can_run(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from beyond_vibes.cli import main

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    result = CliRunner().invoke(main, ["engines", "list", "--config", str(catalog_file(tmp_path, engine_configs={"fast-kv": {"batch": 512}}))])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "container engine: not reachable" in out and "engine configs: fast-kv" in out
    assert "none (CPU)" in out and "no NVIDIA GPU on this host" in out


@needs_podman
@pytest.mark.integration
def test_the_agent_sandboxed_in_a_container_reaches_only_the_model(settings, tmp_path, podman, monkeypatch):
    from scripted_llm import ScriptedLLM, Step, bash
    from test_success_path import FIX_SCRIPT

    service, _ = podman
    monkeypatch.setenv("DOCKER_HOST", service.url)
    s = settings.model_copy(update={"docker_host": service.url})
    with ScriptedLLM([]) as probe_target:
        port = probe_target.port
    with ScriptedLLM([bash(f"python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/v1/models', "
                          f"timeout=3)\" 2>&1 | tail -1; ls /root 2>&1; echo project: $(ls -A {REPO}); id -un"), *FIX_SCRIPT]) as llm:
        spec = {"name": "scripted", "family": "test", "provider": "scripted", "model_id": llm.model_id,
                "base_url": llm.base_url, "context_window": 16384}
        model, quant = load_catalog(catalog_file(tmp_path, model=spec)).choose()
        result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, s, SimulateOptions(sandbox="container"))
    first = llm.requests[1]["body"]["messages"][-1]["content"]
    text = json.dumps(first)
    # No network but the model: the host's other servers are unreachable; no /root, no project folders.
    assert "Connection refused" in text or "Errno 111" in text or "Network is unreachable" in text
    # pi's own folder comes in read-only at /opt/bv/pi; nothing of the project is there.
    assert "/root': No such file or directory" in text and f"cannot access '{REPO}'" in text
    # It still does the task with the host's tools (read-only), and the run says where it ran.
    assert result.status == "success", result.error
    run = tracking_client(s)[0].get_run(result.run_id)
    assert run.data.tags[N.TAG_SANDBOX] == "container"
    import docker

    assert docker.DockerClient(base_url=service.url).containers.list(all=True, filters={"name": "bv-agent"}) == []
