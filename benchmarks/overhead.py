"""Harness overhead: the same task run by `simulate` and by bare `pi` against the same warm server.

Two servers: the demo model (SmolLM2-135M on llama-server, sampling pinned server-side so bare pi gets the same
deterministic answers) and the scripted success-path server (three tool calls, model time ~0). Runs alternate
bare/simulate so machine noise hits both; model load is excluded (the server is warm and shared). Also measures
the latency the recording proxy adds per request. Last line: overhead_ratio=<x> overhead_s=<y> proxy_ms=<z>
(from the scripted task, where harness cost is not hidden behind model time).

Run: .venv/bin/python benchmarks/overhead.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from scripted_llm import ScriptedLLM, Step, bash  # noqa: E402

from beyond_vibes.agents import AgentEndpoint  # noqa: E402
from beyond_vibes.agents.pi import PI_SETTINGS, pi_models_json  # noqa: E402
from beyond_vibes.catalog import EngineConfig, Model, Sampling, load_catalog  # noqa: E402
from beyond_vibes.runtime.process import ProcessRuntime  # noqa: E402
from beyond_vibes.runtime.proxy import RecordingProxy  # noqa: E402
from beyond_vibes.sandbox import agent_env, snapshot_commit  # noqa: E402
from beyond_vibes.settings import Settings  # noqa: E402
from beyond_vibes.simulate import SimulateOptions, simulate  # noqa: E402
from beyond_vibes.store.resolve import resolve_model  # noqa: E402
from beyond_vibes.tasks import load_task  # noqa: E402

THREE_TOOLS = [
    bash("python3 -m unittest discover -s tests 2>&1 | tail -3"),
    Step(tool_calls=[{"name": "edit", "arguments": {"path": "mathutils.py", "edits": [
        {"oldText": "return sum(values) / (len(values) - 1)", "newText": "return sum(values) / len(values)"}]}}]),
    bash("python3 -m unittest discover -s tests 2>&1 | tail -3"),
    Step(content="Fixed."),
]
MAX_TOKENS = 256


def bare_pi(settings: Settings, task, base_url: str, model_id: str) -> float:
    """pi as a user would run it by hand, in a fresh snapshot of the task repository."""
    scratch = Path(tempfile.mkdtemp(prefix="bv-bench-"))
    try:
        start = time.perf_counter()
        repo = scratch / "repo"
        snapshot_commit(task.base_dir / task.repository.path, repo)
        agent_dir = scratch / "agent"
        agent_dir.mkdir()
        endpoint = AgentEndpoint(base_url, model_id, "local", 8192, MAX_TOKENS)
        (agent_dir / "models.json").write_text(json.dumps(pi_models_json(endpoint)))
        (agent_dir / "settings.json").write_text(json.dumps(PI_SETTINGS))
        (scratch / "home" / "tmp").mkdir(parents=True)
        env = {**agent_env(scratch / "home"), "PI_CODING_AGENT_DIR": str(agent_dir), "PI_OFFLINE": "1"}
        cmd = [str(settings.find_pi()), "-p", "--mode", "json", "--no-session", "--offline", "--provider", "beyondvibes",
               "--model", model_id, "--tools", "read,bash,edit,write", "--thinking", "off", "--no-context-files",
               "--no-skills", "--no-extensions", task.render_prompt()]
        subprocess.run(cmd, cwd=repo, env=env, capture_output=True, timeout=600, check=True)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def harness(settings: Settings, task, model: Model) -> tuple[float, float]:
    start = time.perf_counter()
    result = simulate(task, model, None, settings, SimulateOptions(max_turns=10))
    return time.perf_counter() - start, result.metrics["turns"]


def compare(label: str, settings: Settings, task, base_url: str, model_id: str, repeats: int) -> tuple[float, float]:
    model = Model(name=f"bench-{label}", provider="bench", model_id=model_id, base_url=base_url, context_window=8192,
                  sampling=Sampling(temperature=0.0, seed=42, max_tokens=MAX_TOKENS))
    harness(settings, task, model)  # warm-up: imports, first MLflow write, page cache
    bare_pi(settings, task, base_url, model_id)
    bare, sim = [], []
    for _ in range(repeats):
        bare.append(bare_pi(settings, task, base_url, model_id))
        wall, turns = harness(settings, task, model)
        sim.append(wall)
    b, s = statistics.median(bare), statistics.median(sim)
    print(f"{label:>9}: bare pi {b:.2f} s  simulate {s:.2f} s  ratio {s / b:.2f}  adds {s - b:+.2f} s "
          f"(median of {repeats}; turns {turns:.0f}; runs: bare {', '.join(f'{x:.2f}' for x in bare)} | "
          f"simulate {', '.join(f'{x:.2f}' for x in sim)})")
    return s / b, s - b


def proxy_latency_ms(upstream: str, model_id: str, n: int = 40) -> float:
    body = json.dumps({"model": model_id, "messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()

    def once(url: str) -> float:
        req = urllib.request.Request(f"{url}/chat/completions", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer x"})
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
        return time.perf_counter() - t

    with RecordingProxy(upstream, model_id, Sampling()) as proxy:
        direct, proxied = [], []
        for _ in range(n):  # interleaved, so both see the same machine state
            direct.append(once(upstream))
            proxied.append(once(proxy.base_url))
    return (statistics.median(proxied) - statistics.median(direct)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bv-bench-home-") as home:
        settings = Settings(BV_HOME=home, MLFLOW_TRACKING_URI=f"sqlite:///{home}/mlflow.db", BV_EXPERIMENT="overhead")
        task = load_task("fix_failing_test", ROOT / "tasks")
        catalog = load_catalog(ROOT / "models.yaml")
        demo, quant = catalog.choose("smollm2-135m")
        # Sampling pinned on the server too, so bare pi (which sends no temperature/seed) decodes the same way.
        engine = EngineConfig(ctx=8192, threads=2, extra_args=["--temp", "0", "--seed", "42"])
        with ProcessRuntime(settings).serve(resolve_model(demo, quant, settings), engine) as server:
            compare("demo", settings, task, server.base_url, server.model_id, args.repeats)
        with ScriptedLLM(THREE_TOOLS) as llm:
            ratio, extra = compare("scripted", settings, task, llm.base_url, llm.model_id, args.repeats)
            proxy_ms = proxy_latency_ms(llm.base_url, llm.model_id)
    print(f"proxy adds {proxy_ms:.2f} ms per streamed request (median, scripted upstream)")
    print(f"overhead_ratio={ratio:.2f} overhead_s={extra:.2f} proxy_ms={proxy_ms:.2f}")


if __name__ == "__main__":
    main()
