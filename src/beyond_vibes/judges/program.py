"""The judge as a DSPy program: rubric in the instructions, one record in, a rationale and a score per criterion out.

Its answer is one JSON object. Where the judge LM is a llama-server, the recording proxy pins `response_format` to
a JSON schema whose scores are enums of their scales, so even a tiny local model returns well-formed scores by
construction (grammar-constrained decoding); an API judge gets the same schema in its structured-output mode.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from beyond_vibes.errors import ConfigError
from beyond_vibes.judges.rubric import Rubric

RATIONALE_CHARS = 300


def quiet_dspy() -> None:
    # litellm (DSPy's client) would fetch its price map from the internet at import; we are offline and price runs.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("DSPY_CACHEDIR", os.path.join(os.path.expanduser("~"), ".cache", "beyond-vibes", "dspy"))


def instructions(rubric: Rubric) -> str:
    return (f"You are a strict reviewer of a coding agent's run. {rubric.text()}\n\n"
            "Read the record (task, outcome, checks, tool calls, diff, final message). For every criterion give a "
            "short rationale that cites the record, then the score on the criterion's scale. Judge what the record "
            "shows, not what the agent claims.")


def output_fields(rubric: Rubric) -> list[str]:
    return [f for c in rubric.criteria for f in (f"{c.name}_rationale", c.name)]


def judge_signature(rubric: Rubric):
    import dspy

    fields: dict = {"record": (str, dspy.InputField(desc="the agent's run"))}
    for c in rubric.criteria:
        fields[f"{c.name}_rationale"] = (str, dspy.OutputField(desc=f"why this {c.name} score, citing the record"))
        fields[c.name] = (Literal[tuple(c.values)], dspy.OutputField(desc=c.question))
    return dspy.Signature(fields, instructions(rubric))


def response_schema(rubric: Rubric) -> dict:
    """The JSON object the judge must return: a bounded rationale then an enum score per criterion, in order."""
    props: dict = {}
    for c in rubric.criteria:
        props[f"{c.name}_rationale"] = {"type": "string", "minLength": 1, "maxLength": RATIONALE_CHARS}
        props[c.name] = {"type": "integer", "enum": c.values}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def response_format(rubric: Rubric) -> dict:
    return {"type": "json_schema", "json_schema": {"name": f"judge_{rubric.archetype.value}", "strict": True,
                                                   "schema": response_schema(rubric)}}


def make_program(rubric: Rubric):
    import dspy

    return dspy.Predict(judge_signature(rubric))


def scores_of(rubric: Rubric, prediction) -> tuple[dict[str, int], dict[str, str]]:
    """(scores, rationales) from a prediction; a missing or off-scale score raises ValueError."""
    scores, rationales = {}, {}
    for c in rubric.criteria:
        value = getattr(prediction, c.name, None)
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{c.name}: not a number ({value!r})") from None
        if value not in c.values:
            raise ValueError(f"{c.name}: {value} is off the scale {c.min}-{c.max}")
        scores[c.name] = value
        rationales[c.name] = str(getattr(prediction, f"{c.name}_rationale", "") or "")
    return scores, rationales


@dataclass
class JudgeLM:
    """A judge LM reached through a recording proxy: `lm` for DSPy, what identifies it, how many requests at once."""

    lm: object  # dspy.LM
    name: str  # e.g. "local:qwen2.5-coder-0.5b:Q4_K_M" or "api:gpt-4o-mini@https://..."
    model_sha256: str
    parallel: int
    proxy: object  # the RecordingProxy: its records count the judge's requests and tokens
    prompt_lm: object = None  # the same model without the answer schema, for optimizers' own prompts
    open_proxy: object = None  # the proxy without the answer schema (MLflow's judges bring their own format)
    model_id: str = ""  # what the endpoint calls the model (for an MLflow judge URI: openai:/<model_id>)


def api_model_id(judge_model: str | None) -> str:
    """JUDGE_MODEL as the API's model id; an MLflow-style judge URI (`openai:/gpt-4o-mini`) is accepted. Only
    OpenAI-compatible endpoints are spoken, so another provider is refused with the fix."""
    if not judge_model:
        return "judge"
    if ":/" in judge_model:
        provider, name = judge_model.split(":/", 1)
        if provider != "openai" or not name:
            raise ConfigError(f"JUDGE_MODEL: {judge_model!r}: only OpenAI-compatible judges are supported; write "
                              "openai:/<model> and point JUDGE_BASE_URL at the endpoint")
        return name
    return judge_model


@contextmanager
def judge_lm(settings, rubric: Rubric, served=None, experiment: str | None = None) -> Iterator[JudgeLM]:
    """The judge LM for `rubric`: JUDGE_BASE_URL (+ JUDGE_MODEL, JUDGE_API_KEY) for an OpenAI-compatible API, else a
    local model from models.yaml (JUDGE_MODEL names it, else the file's `judge:`; never the candidates' default), served through the same
    runtime and a recording proxy as the agents. Pass `served` to reuse a model already being served."""
    quiet_dspy()
    import dspy

    from beyond_vibes.catalog import Sampling
    from beyond_vibes.runtime.proxy import RecordingProxy

    sampling = Sampling(temperature=0.0, seed=42, max_tokens=200 * len(rubric.criteria) + 100)
    fmt = response_format(rubric)
    if settings.judge_base_url and served is None:
        key = settings.judge_api_key.get_secret_value() if settings.judge_api_key else None
        model_id = api_model_id(settings.judge_model)
        with RecordingProxy(settings.judge_base_url, model_id, sampling, key, response_format=fmt) as proxy, \
                RecordingProxy(settings.judge_base_url, model_id, sampling, key) as free:
            yield JudgeLM(_lm(dspy, model_id, proxy, sampling), f"api:{model_id}@{settings.judge_base_url}", "", 4, proxy,
                          _lm(dspy, model_id, free, sampling), free, model_id)
        return
    with _served_judge(settings, served, experiment) as served:
        server = served.server
        with RecordingProxy(server.base_url, server.model_id, sampling, server.api_key, response_format=fmt) as proxy, \
                RecordingProxy(server.base_url, server.model_id, sampling, server.api_key) as free:
            yield JudgeLM(_lm(dspy, server.model_id, proxy, sampling), f"local:{served.model.name}:{served.quant}",
                          served.resolved.sha256, server.parallel, proxy, _lm(dspy, server.model_id, free, sampling),
                          free, server.model_id)


def _lm(dspy, model_id: str, proxy, sampling):
    from beyond_vibes.runtime.proxy import DUMMY_KEY

    return dspy.LM(f"openai/{model_id}", api_base=proxy.base_url, api_key=DUMMY_KEY, temperature=0.0,
                   max_tokens=sampling.max_tokens, cache=False, num_retries=0)


@contextmanager
def _served_judge(settings, served, experiment):
    if served is not None:
        yield served
        return
    from beyond_vibes.catalog import load_catalog
    from beyond_vibes.serving import serve_model

    catalog = load_catalog(settings.models_file)
    model, quant = catalog.choose(catalog.judge_model(settings.judge_model))
    with serve_model(model, quant, settings, models_dir=catalog.path.resolve().parent, experiment=experiment) as s:
        yield s


def judge_lm_identity(settings) -> tuple[str, str]:
    """(name, model sha256) of the judge LM the settings select, without starting it (for staleness)."""
    if settings.judge_base_url:
        return f"api:{api_model_id(settings.judge_model)}@{settings.judge_base_url}", ""
    from beyond_vibes.catalog import load_catalog
    from beyond_vibes.store.resolve import resolve_model

    catalog = load_catalog(settings.models_file)
    model, quant = catalog.choose(catalog.judge_model(settings.judge_model))
    resolved = resolve_model(model, quant, settings, base_dir=catalog.path.resolve().parent)
    return f"local:{model.name}:{quant}", resolved.sha256
