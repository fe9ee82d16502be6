"""The environment behind the numbers: the report host's hardware and package versions, and what the runs
themselves recorded (llama.cpp builds, engine flags, sampling, agent, dataset and judge versions, hosts)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections import defaultdict
from importlib.metadata import PackageNotFoundError, version

from beyond_vibes import names as N
from beyond_vibes.report.collect import Collected, config_label
from beyond_vibes.report.judging import JudgeInfo

PACKAGES = ("beyond-vibes", "mlflow", "dspy")


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # noqa: BLE001 - psutil missing or no /proc: leave it out
        return None


def _gpus() -> list[str]:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else []


def hardware() -> dict:
    """The machine that built the report (the runs' own hosts are listed separately: they may differ)."""
    return {"cpu_model": _cpu_model(), "cpu_count": os.cpu_count(), "ram_gb": _ram_gb(), "gpus": _gpus(),
            "platform": platform.platform(), "python": platform.python_version()}


def packages() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def _seen(values) -> list[str]:
    return sorted({str(v) for v in values if v not in (None, "")})


def recorded(data: Collected, judges: dict[str, JudgeInfo]) -> dict:
    sims = data.sims
    per_config: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for r in sims:
        slot = per_config[config_label(r.config)]
        for key in (N.PARAM_LLAMA_BUILD, N.PARAM_ENGINE_CONFIG, N.PARAM_ENGINE_FLAGS, N.PARAM_TEMPERATURE, N.PARAM_SEED,
                    N.PARAM_TOP_P, N.PARAM_MAX_TOKENS, N.PARAM_MODEL_SHA256, N.PARAM_IMAGE):
            if r.params.get(key) not in (None, ""):
                slot[key].add(r.params[key])
    return {
        "llama_cpp_builds": _seen(r.params.get(N.PARAM_LLAMA_BUILD) for r in sims),
        "per_config": {c: {k: sorted(v) for k, v in d.items()} for c, d in sorted(per_config.items())},
        "agent_versions": _seen(r.params.get(N.PARAM_AGENT_VERSION) for r in sims),
        "task_files": {t: _seen(r.params.get(N.PARAM_TASK_FILE_SHA256) for r in sims if r.task == t)
                       for t in sorted({r.task for r in sims})},
        "hosts": _seen(r.tags.get(N.TAG_HOST) for r in sims),
        "judge_versions_on_runs": _seen(r.tags.get("bv.judge") for r in sims),
        "judges": {a: j.as_dict() for a, j in judges.items() if j.version},
        "quick_eval_sets": {q.set: _seen(x.params.get(N.PARAM_SET_VERSION) for x in data.quick_evals if x.set == q.set)
                            for q in data.quick_evals},
        "quick_eval_fingerprints": {q.set: _seen(x.params.get(N.PARAM_SET_FINGERPRINT) for x in data.quick_evals
                                                 if x.set == q.set) for q in data.quick_evals},
    }


def environment(data: Collected, judges: dict[str, JudgeInfo]) -> dict:
    return {"report_host": hardware(), "packages": packages(), "recorded": recorded(data, judges)}
