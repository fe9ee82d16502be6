"""Each task guideline judged by MLflow's built-in `Guidelines` scorer: one yes/no verdict with a rationale per
guideline, as the original system did, beside the compiled DSPy judges.

The scorer talks to the same judge LM as the DSPy judges (a local llama-server or JUDGE_BASE_URL), through a
recording proxy, as the MLflow judge URI `openai:/<model id>`. MLflow reads the endpoint from OPENAI_API_BASE, so
that variable is set only while a judgement runs (under a lock: one process-wide environment).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass

KIND = "mlflow.Guidelines"
PREFIX = "guideline."  # assessment names: guideline.<key of the task's guidelines>
_ENV_LOCK = threading.Lock()


def guideline_source_id(judge_lm_name: str) -> str:
    return f"mlflow-guidelines@{judge_lm_name}"


@dataclass(frozen=True)
class Verdict:
    guideline: str  # the task's key
    value: str | None  # "yes" / "no"; None when the judge failed
    rationale: str = ""
    error: str | None = None

    @property
    def assessment_name(self) -> str:
        return PREFIX + self.guideline


@contextmanager
def openai_endpoint(base_url: str):
    """MLflow's judges find an OpenAI-compatible endpoint in the environment; set it for this block only."""
    from beyond_vibes.runtime.proxy import DUMMY_KEY

    keys = ("OPENAI_API_BASE", "OPENAI_BASE_URL", "OPENAI_API_KEY")
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in keys}
        os.environ.update({"OPENAI_API_BASE": base_url, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": DUMMY_KEY})
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def judged_output(record: dict) -> str:
    """What the agent produced, as the scorer's `outputs`: its final message, the checks and the diff."""
    checks = "\n".join(f"- {c['name']}: {'pass' if c['passed'] else 'FAIL'}" for c in record.get("checks") or [])
    return (f"FINAL MESSAGE:\n{record.get('final_message') or '(none)'}\n\nCHECKS:\n{checks or '(none)'}\n\n"
            f"DIFF:\n{record.get('diff') or '(no changes)'}")


def judge_guidelines(record: dict, base_url: str, model_id: str, skip: set[str] = frozenset()) -> list[Verdict]:
    """One verdict per guideline of the record's task not in `skip`; a failure is an error verdict, never a score."""
    from mlflow.genai.scorers import Guidelines

    out = []
    inputs = {"task": record.get("prompt", "")}
    for key, text in (record.get("guidelines") or {}).items():
        if key in skip:
            continue
        scorer = Guidelines(name=PREFIX + key, guidelines=text, model=f"openai:/{model_id}")
        try:
            with openai_endpoint(base_url):
                fb = scorer(inputs=inputs, outputs=judged_output(record))
        except Exception as e:  # noqa: BLE001 - recorded as an error assessment
            out.append(Verdict(key, None, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"))
            continue
        value = getattr(fb, "value", None)
        value = str(getattr(value, "value", value)).lower() if value is not None else None
        if value not in ("yes", "no"):
            error = getattr(fb, "error", None)
            out.append(Verdict(key, None, error=f"no yes/no verdict: {error or value!r}"[:300]))
            continue
        out.append(Verdict(key, value, fb.rationale or ""))
    return out
