"""Harness overhead as a user pays it: the whole `beyond-vibes simulate` process vs bare `pi`, same warm server.

Two servers, both warm and shared, so model load is excluded: the scripted success-path server (three tool calls,
model time ~0: what is left is harness cost) and the default demo model on llama-server (sampling pinned on the
server too, so bare pi, which sends no temperature or seed, decodes the same way). The CLI reaches them as an
OpenAI-compatible API model. Bare pi runs as a user would run it by hand in a fresh snapshot of the task
repository; on the demo model both get the same turn budget (pi's -e extension), since the model loops. Runs
alternate bare/CLI so machine noise hits both. Wall time and CPU time (this process's waited-for children: the
CLI or pi and everything they ran) are reported as medians. Also measures the latency the recording proxy adds
per request. Last line: overhead_ratio=<x> overhead_s=<y> proxy_ms=<z> (CLI path, scripted task).

Run: .venv/bin/python benchmarks/overhead.py [--repeats 7] [--demo-turns 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import resources
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from scripted_llm import ScriptedLLM, Step, bash  # noqa: E402

from beyond_vibes.agents import AgentEndpoint  # noqa: E402
from beyond_vibes.agents.pi import PI_SETTINGS, pi_models_json  # noqa: E402
from beyond_vibes.catalog import Sampling, load_catalog  # noqa: E402
from beyond_vibes.runtime.process import ProcessRuntime  # noqa: E402
from beyond_vibes.runtime.proxy import RecordingProxy  # noqa: E402
from beyond_vibes.sandbox import agent_env  # noqa: E402
from beyond_vibes.settings import Settings  # noqa: E402
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


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], **kwargs) -> tuple[float, float]:
    """(wall, cpu) of one command and everything it waited for."""
    cpu0, t0 = children_cpu(), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if out.returncode not in (0,):
        raise SystemExit(f"{cmd[0]} failed ({out.returncode}): {out.stderr[-2000:]}")
    return wall, cpu


def bare_pi(pi: Path, task, base_url: str, model_id: str, turns: int | None) -> tuple[float, float]:
    """pi as a user would run it by hand, in a fresh git snapshot of the task repository."""
    scratch = Path(tempfile.mkdtemp(prefix="bv-bench-"))
    try:
        repo = scratch / "repo"
        agent_dir = scratch / "agent"
        agent_dir.mkdir()
        (scratch / "home" / "tmp").mkdir(parents=True)
        endpoint = AgentEndpoint(base_url, model_id, "local", 8192, MAX_TOKENS)
        (agent_dir / "models.json").write_text(json.dumps(pi_models_json(endpoint)))
        (agent_dir / "settings.json").write_text(json.dumps(PI_SETTINGS))
        env = {**agent_env(scratch / "home"), "PI_CODING_AGENT_DIR": str(agent_dir), "PI_OFFLINE": "1"}
        cmd = [str(pi), "-p", "--mode", "json", "--no-session", "--offline", "--provider", "beyondvibes", "--model",
               model_id, "--tools", "read,bash,edit,write", "--thinking", "off", "--no-context-files", "--no-skills",
               "--no-extensions"]
        if turns:
            ext = agent_dir / "turns.ts"
            ext.write_text(resources.files("beyond_vibes.agents").joinpath("pi_turn_limit.ts").read_text())
            cmd += ["-e", str(ext)]
            env["BV_MAX_TURNS"] = str(turns)
        snapshot = ["bash", "-c", f"cp -r {task.base_dir / task.repository.path} {repo} && cd {repo} && git init -q && "
                    "git add -A && git -c user.name=u -c user.email=u@x commit -qm base"]
        w0, c0 = timed(snapshot)
        w1, c1 = timed(cmd + [task.render_prompt()], cwd=repo, env=env)
        return w0 + w1, c0 + c1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def cli(home: Path, catalog: Path, turns: int | None) -> tuple[float, float]:
    env = {**os.environ, "BV_HOME": str(home), "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
           "BV_EXPERIMENT": "overhead", "BV_TASKS_DIR": str(ROOT / "tasks")}
    cmd = [str(Path(sys.executable).parent / "beyond-vibes"), "simulate", "--task", "fix_failing_test", "--config", str(catalog)]
    return timed(cmd + (["--max-turns", str(turns)] if turns else []), env=env)


def compare(label: str, home: Path, pi: Path, task, base_url: str, model_id: str, repeats: int,
            turns: int | None) -> tuple[float, float]:
    catalog = home / f"{label}.yaml"
    catalog.write_text(yaml.safe_dump({"models": [{
        "name": f"bench-{label}", "provider": "bench", "model_id": model_id, "base_url": base_url,
        "context_window": 8192, "sampling": {"temperature": 0.0, "seed": 42, "max_tokens": MAX_TOKENS}}]}))
    cli(home, catalog, turns)  # warm-up: page cache, the store's schema
    bare_pi(pi, task, base_url, model_id, turns)
    bare, sim = [], []
    for _ in range(repeats):
        bare.append(bare_pi(pi, task, base_url, model_id, turns))
        sim.append(cli(home, catalog, turns))
    bw, bc = statistics.median(w for w, _ in bare), statistics.median(c for _, c in bare)
    sw, sc = statistics.median(w for w, _ in sim), statistics.median(c for _, c in sim)
    print(f"{label:>9}: bare pi wall {bw:.2f} s cpu {bc:.2f} s | CLI simulate wall {sw:.2f} s cpu {sc:.2f} s | "
          f"wall ratio {sw / bw:.2f} adds {sw - bw:+.2f} s, cpu adds {sc - bc:+.2f} s (median of {repeats}; walls: bare "
          f"{', '.join(f'{w:.2f}' for w, _ in bare)} | CLI {', '.join(f'{w:.2f}' for w, _ in sim)})", flush=True)
    return sw / bw, sw - bw


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
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--demo-turns", type=int, default=3)
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    pi = settings.find_pi()
    task = load_task("fix_failing_test", ROOT / "tasks")
    with tempfile.TemporaryDirectory(prefix="bv-bench-home-") as tmp:
        home = Path(tmp)
        if not args.skip_demo:
            catalog = load_catalog(ROOT / "models.yaml")
            demo, quant = catalog.choose()
            resolved = resolve_model(demo, quant, settings, base_dir=ROOT)
            # Sampling pinned on the server too, so bare pi (which sends no temperature/seed) decodes the same way.
            engine = demo.engine.model_copy(update={"extra_args": ["--temp", "0", "--seed", "42"]})
            with ProcessRuntime(settings).serve(resolved, engine) as server:
                print(f"demo model: {demo.name}:{quant}", flush=True)
                compare("demo", home, pi, task, server.base_url, server.model_id, args.repeats, args.demo_turns)
        with ScriptedLLM(THREE_TOOLS) as llm:
            ratio, extra = compare("scripted", home, pi, task, llm.base_url, llm.model_id, args.repeats, None)
            proxy_ms = proxy_latency_ms(llm.base_url, llm.model_id)
    print(f"proxy adds {proxy_ms:.2f} ms per streamed request (median, scripted upstream)")
    print(f"overhead_ratio={ratio:.2f} overhead_s={extra:.2f} proxy_ms={proxy_ms:.2f}")


if __name__ == "__main__":
    main()
