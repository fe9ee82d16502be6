"""Faults end cleanly (real llama-server, real pi, real MLflow): SIGTERM/SIGHUP, a dying model server, a crashing
agent, kill -9 of the harness, a failing MLflow call. Nothing a run starts outlives it; no run stays RUNNING."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from beyond_vibes import names as N
from beyond_vibes.catalog import load_catalog
from beyond_vibes.simulate import SimulateOptions, simulate
from beyond_vibes.tasks import load_task
from beyond_vibes.tracking import reap_orphaned_runs, tracking_client
from conftest import REPO, SMOLLM, our_processes, server_run, write_catalog
from scripted_llm import ScriptedLLM, Step, bash

pytestmark = pytest.mark.integration
# SmolLM2 answering for up to 4000 tokens: a model busy for tens of seconds, so signals land mid-request.
LONG_SMOLLM = {**SMOLLM, "sampling": {"temperature": 0.0, "seed": 42, "max_tokens": 4000}}


def cli(settings, catalog: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "BV_EXPERIMENT": settings.mlflow_experiment,
           "BV_HOME": str(settings.home), "BV_TASKS_DIR": str(REPO / "tasks")}
    exe = Path(sys.executable).parent / "beyond-vibes"
    return subprocess.Popen([str(exe), "simulate", "--task", "fix_failing_test", "--config", str(catalog), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def cmd(p: psutil.Process) -> str:
    """A process's command line, or "" once it is gone or a zombie (they come and go while a run goes on)."""
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def wait_for(predicate, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def llama_busy(root_pid: int) -> bool:
    """llama-server (a descendant of root_pid) is decoding a request right now (its /metrics says so)."""
    for p in tree(root_pid):
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if cmd and cmd[0].endswith("llama-server") and "--port" in cmd:
            port = cmd[cmd.index("--port") + 1]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    text = resp.read().decode()
            except OSError:
                return False
            return any(line.startswith("llamacpp:requests_processing") and float(line.split()[-1]) > 0
                       for line in text.splitlines())
    return False


def alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            pass
    return out


def only_run(settings):
    client, exp_id = tracking_client(settings)
    [run] = client.search_runs([exp_id])
    return client, run


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_mid_run_stops_everything_and_ends_the_run_killed(settings, tmp_path, sig):
    catalog = write_catalog(tmp_path, [LONG_SMOLLM])
    proc = cli(settings, catalog)
    wait_for(lambda: llama_busy(proc.pid) or proc.poll() is not None, what="llama-server decoding")
    assert proc.poll() is None, proc.stderr.read()
    started = tree(proc.pid)
    assert any("llama-server" in cmd(p) for p in started) and len(started) >= 3  # server, pi, guardian
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and signal.Signals(sig).name in err and "Traceback" not in err
    assert alive(started) == [] and our_processes() == []
    client, run = only_run(settings)
    assert run.info.status == "KILLED" and run.data.tags[N.TAG_STATUS] == "error"
    assert run.data.tags[N.TAG_ERROR] == f"interrupted ({signal.Signals(sig).name})"
    assert run.data.tags.get(N.TAG_TRACE_ID)  # what was recorded so far is kept, the trace included
    server = server_run(settings, run.data.tags[N.TAG_SERVER_ID])
    assert server.info.status == "KILLED"


def test_llama_server_killed_mid_run_is_an_error_naming_it(settings, tmp_path):
    model, quant = load_catalog(write_catalog(tmp_path, [LONG_SMOLLM])).choose("smollm2-135m")
    task = load_task("fix_failing_test", REPO / "tasks")
    box: dict = {}
    worker = threading.Thread(target=lambda: box.update(result=simulate(task, model, quant, settings)))
    worker.start()
    me = os.getpid()
    try:
        wait_for(lambda: llama_busy(me), what="llama-server decoding")
        [server] = [p for p in tree(me) if "llama-server" in cmd(p)]
        pis = [p for p in tree(me) if "bv_turn_limit.ts" in cmd(p)]
        server.send_signal(signal.SIGKILL)
        worker.join(timeout=60)
    finally:  # a failed step must not leave the run (and its server) going on into the next tests
        if worker.is_alive():
            for p in tree(me):
                if "llama-server" in cmd(p):
                    p.kill()
            worker.join(timeout=120)
    result = box["result"]
    assert result.status == N.STATUS_ERROR and result.error == "llama-server exited with signal 9 (SIGKILL)"
    assert alive(pis) == [] and our_processes() == []
    client, run = only_run(settings)
    assert run.info.status == "FAILED" and run.data.tags[N.TAG_ERROR] == result.error
    assert "slot" in Path(client.download_artifacts(run.info.run_id, N.A_SERVER_LOG)).read_text()  # its log is kept
    server = server_run(settings, result.server_id)
    assert server.info.status == "FAILED" and server.data.tags[N.TAG_ERROR] == result.error


def test_kill_9_of_the_harness_leaves_no_process_and_the_next_start_reaps_its_run(settings, tmp_path):
    catalog = write_catalog(tmp_path, [LONG_SMOLLM])
    proc = cli(settings, catalog)
    wait_for(lambda: llama_busy(proc.pid) or proc.poll() is not None, what="llama-server decoding")
    # The run is recorded by the recording process alongside the agent: kill the harness once it exists (killed
    # before that, nothing is left RUNNING at all, which is not what this test is about).
    client, exp_id = tracking_client(settings)
    wait_for(lambda: client.search_runs([exp_id]) or proc.poll() is not None, what="the run to be recorded")
    started = tree(proc.pid)
    proc.kill()
    proc.wait()
    # llama-server and pi get a parent-death signal; the guardian kills their groups and labelled strays.
    wait_for(lambda: alive(started) == [], timeout=20, what="children to die with the harness")
    assert our_processes() == []
    client, run = only_run(settings)
    assert run.info.status == "RUNNING"  # nobody could end it...
    assert reap_orphaned_runs(client, [run.info.experiment_id]) == [run.info.run_id]  # ...until the next start
    run = client.get_run(run.info.run_id)
    assert run.info.status == "KILLED" and run.data.tags[N.TAG_STATUS] == "error"
    assert f"process {proc.pid}" in run.data.tags[N.TAG_ERROR]


def test_kill_9_of_the_harness_also_ends_the_agents_background_commands(settings, tmp_path):
    """pi runs each tool detached (a process group of its own); what a tool leaves behind must still go."""
    marker = f"bv-sleeper-{os.getpid()}"
    steps = [bash(f"(exec -a {marker} sleep 300 &) ; setsid bash -c 'exec -a {marker} sleep 301' & sleep 0.5; echo started"),
             bash("sleep 120")]
    with ScriptedLLM(steps) as llm:
        spec = {"name": "scripted", "family": "test", "provider": "scripted", "model_id": llm.model_id,
                "base_url": llm.base_url, "context_window": 16384}
        proc = cli(settings, write_catalog(tmp_path, [spec]))
        sleepers = lambda: [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
        wait_for(lambda: len(sleepers()) == 2 and len(llm.requests) >= 2, what="the agent's background sleepers")
        proc.kill()
        proc.wait()
        wait_for(lambda: sleepers() == [], timeout=20, what="background commands to be killed")
    assert our_processes() == []


def test_background_commands_end_with_the_run(settings, tmp_path):
    """On a normal end too: a server the agent started in the background does not outlive the run."""
    marker = f"bv-bg-{os.getpid()}"
    steps = [bash(f"(exec -a {marker} sleep 300 &); echo ok"), Step(content="Started a server.")]
    with ScriptedLLM(steps) as llm:
        spec = {"name": "scripted", "family": "test", "provider": "scripted", "model_id": llm.model_id,
                "base_url": llm.base_url, "context_window": 16384}
        model, quant = load_catalog(write_catalog(tmp_path, [spec])).choose("scripted")
        simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings)
    assert [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])] == []


def test_a_crashing_agent_is_an_error_not_a_failed_task(settings, tmp_path):
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="bv-test-pi-"))  # where the agent's unprivileged user can run it
    shared.chmod(0o755)
    fake = shared / "pi"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && { echo 0.0.0; exit 0; }\n"
                    "echo '{\"type\":\"session\"}'; echo 'Error: Cannot find module ./dist/cli.js' >&2; exit 3\n")
    fake.chmod(0o755)
    with ScriptedLLM([Step(content="hi")]) as llm:
        spec = {"name": "scripted", "family": "test", "provider": "scripted", "model_id": llm.model_id,
                "base_url": llm.base_url, "context_window": 16384}
        model, quant = load_catalog(write_catalog(tmp_path, [spec])).choose("scripted")
        result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant,
                          settings.model_copy(update={"pi_bin": fake}))
    assert result.status == N.STATUS_ERROR
    assert result.error == "pi exited with code 3: Error: Cannot find module ./dist/cli.js"
    _, run = only_run(settings)
    assert run.info.status == "FAILED" and run.data.tags[N.TAG_STATUS] == "error"


def test_a_failing_mlflow_call_loses_only_its_part_and_the_run_still_ends(settings, tmp_path, caplog):
    # An experiment whose artifact store cannot be written (not even by root): every artifact upload fails.
    client, _ = tracking_client(settings)
    client.create_experiment("no-artifacts", artifact_location="file:///proc/bv-no-artifacts")
    broken = settings.model_copy(update={"mlflow_experiment": "no-artifacts"})
    with ScriptedLLM([Step(content="Nothing to do.")]) as llm:
        spec = {"name": "scripted", "family": "test", "provider": "scripted", "model_id": llm.model_id,
                "base_url": llm.base_url, "context_window": 16384}
        model, quant = load_catalog(write_catalog(tmp_path, [spec])).choose("scripted")
        result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, broken)
    _, run = only_run(broken)
    assert run.info.status == "FINISHED" and run.data.tags[N.TAG_STATUS] == "failed"
    assert run.data.metrics[N.M_CHECKS_TOTAL] == 2 and run.data.tags[N.TAG_TRACE_ID] == result.trace_id
    assert "could not record artifacts:" in caplog.text and "the run is recorded without it" in caplog.text
