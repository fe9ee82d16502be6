"""models.yaml and task files: choosing a model, and one-line errors for bad input."""

from __future__ import annotations

import pytest

from beyond_vibes.catalog import EngineConfig, load_catalog
from beyond_vibes.errors import ConfigError
from beyond_vibes.tasks import load_task, load_tasks, parse_prompt_vars
from conftest import REPO, write_catalog, write_task

LOCAL = lambda name, quants, **kw: {"name": name, "quant_tags": quants, **kw}  # noqa: E731


@pytest.fixture
def catalog(tmp_path):
    return load_catalog(write_catalog(tmp_path, [
        LOCAL("qwen3-0.6B", ["Q6_K_XL", "Q8_K_XL", "BF16"]),
        LOCAL("small", ["Q4_1", "Q8_0"]),
        LOCAL("other", ["Q8_0"]),
        {"name": "gpt-4o", "provider": "openai", "model_id": "gpt-4o", "base_url": "https://x/v1", "api_key_env": "K"},
    ], default="small"))


def test_default_model_and_its_first_quant(catalog):
    model, quant = catalog.choose()
    assert (model.name, quant) == ("small", "Q4_1")


def test_quant_without_model_picks_the_only_model_offering_it(catalog):
    model, quant = catalog.choose(quant="Q6_K_XL")
    assert (model.name, quant) == ("qwen3-0.6B", "Q6_K_XL")


def test_quant_offered_by_the_default_prefers_the_default(catalog):
    assert catalog.choose(quant="Q8_0")[0].name == "small"


def test_ambiguous_quant_lists_candidates(tmp_path):
    cat = load_catalog(write_catalog(tmp_path, [LOCAL("a", ["Q8_0"]), LOCAL("b", ["Q8_0"]), LOCAL("c", ["Q4_0"])], default="c"))
    with pytest.raises(ConfigError, match=r"offered by several models \(a, b\); pass --model"):
        cat.choose(quant="Q8_0")


def test_unknown_quant_lists_available_quants(catalog):
    with pytest.raises(ConfigError, match="has no quant 'Q2_K'; available: Q4_1, Q8_0"):
        catalog.choose("small", "Q2_K")
    with pytest.raises(ConfigError, match="no model offers quant 'IQ1_S'; available: qwen3-0.6B: Q6_K_XL/Q8_K_XL/BF16"):
        catalog.choose(quant="IQ1_S")


def test_unknown_model_lists_models(catalog):
    with pytest.raises(ConfigError, match="unknown model 'nope'; choose one of qwen3-0.6B, small, other, gpt-4o"):
        catalog.choose("nope")


def test_provider_filter_and_api_model(catalog):
    model, quant = catalog.choose(provider="openai")
    assert model.name == "gpt-4o" and quant is None
    with pytest.raises(ConfigError, match="API model and has no quant"):
        catalog.choose("gpt-4o", "Q4_1")


@pytest.mark.parametrize("body, message", [
    ("models: [{name: x, quant_tags: [Q4], famly: y}]", "models.0.famly: unknown field"),
    ("models: [{name: x}]", "models.0: Value error, a local model needs quant_tags"),
    ("models: [{name: x, provider: openai}]", "needs model_id, base_url"),
    ("default: z\nmodels: [{name: x, quant_tags: [Q4]}]", "default 'z' is not a model in this file"),
    ("models: [{name: x, quant_tags: [Q4]}, {name: x, quant_tags: [Q4]}]", "duplicate model names: x"),
    ("models: [{name: x, quant_tags: [Q4], engine: {ctx: -1}}]", "models.0.engine.ctx: Input should be greater than 0"),
    ("models: [oops", "not valid YAML"),
    ("- just a list", "expected a mapping"),
])
def test_bad_catalog_is_one_line_naming_file_and_field(tmp_path, body, message):
    path = tmp_path / "models.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as e:
        load_catalog(path)
    assert str(path) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_engine_args():
    args = EngineConfig(ctx=4096, parallel=2, threads=4, cache_type_k="q8_0", n_gpu_layers=99, extra_args=["--mlock"]).server_args()
    assert args == ["--ctx-size", "8192", "--parallel", "2", "--threads", "4", "--cache-type-k", "q8_0",
                    "--n-gpu-layers", "99", "--mlock"]


def test_shipped_tasks_and_catalog_load():
    tasks = {t.name: t for t in load_tasks(REPO / "tasks")}
    assert {"fix_failing_test", "add_slugify", "poetry_to_uv", "unit_tests", "auth_plan", "fastapi_endpoints",
            "observability_comparison", "litellm_vs_kong", "chart_tests"} <= set(tasks)
    assert {t.archetype.value for t in tasks.values()} == {"architectural_planning", "repo_maintenance",
                                                            "feature_implementation", "comparative_research"}
    catalog = load_catalog(REPO / "models.yaml")
    assert catalog.choose(quant="Q6_K_XL")[0].name == "qwen3-0.6B"
    assert catalog.choose()[0].name == "qwen2.5-coder-0.5b"  # the default demo model calls tools
    assert catalog.model("qwen2.5-coder-1.5b").sources["Q4_K_M"].sha256.startswith("cc324af0")


def _part_packages(root, chunks: list[bytes]) -> list[str]:
    names = []
    for i, chunk in enumerate(chunks, start=1):
        pkg = root / f"bv_test_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        names.append(pkg.name)
    return names


def test_chunk_packages_assemble_into_a_verified_model(tmp_path, monkeypatch):
    import hashlib
    import importlib

    from beyond_vibes.settings import Settings
    from beyond_vibes.store.resolve import resolve_model

    chunks = [b"GGUF" + b"a" * 1000, b"b" * 2000, b"c" * 10]
    names = _part_packages(tmp_path / "site", chunks)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    good = hashlib.sha256(b"".join(chunks)).hexdigest()
    spec = lambda sha: {"name": "chunked", "quant_tags": ["Q4_K_M"],  # noqa: E731
                        "sources": {"Q4_K_M": {"parts": names, "sha256": sha}}}
    settings = Settings(BV_CACHE_DIR=str(tmp_path / "cache"))
    model = load_catalog(write_catalog(tmp_path, [spec(good)])).model("chunked")
    resolved = resolve_model(model, "Q4_K_M", settings)
    assert resolved.path.read_bytes() == b"".join(chunks) and resolved.sha256 == good
    # A part that changed (a corrupt or substituted package) is refused, and nothing half-made is left.
    (tmp_path / "site" / names[1] / "data" / "part02.bin").write_bytes(b"x" * 2000)
    resolved.path.unlink()
    with pytest.raises(ConfigError, match=r"the parts assemble to sha256 [0-9a-f]{12}, expected .*reinstall the part packages"):
        resolve_model(model, "Q4_K_M", settings)
    assert list(resolved.path.parent.glob("*")) == []
    with pytest.raises(ConfigError, match="parts need the sha256"):
        load_catalog(write_catalog(tmp_path, [spec(None)]))


def test_bad_archetype_lists_allowed_values(tmp_path):
    path = write_task(tmp_path, "t", archetype="repo_maintainance", repository={"path": "x"})
    with pytest.raises(ConfigError) as e:
        load_task(str(path), tmp_path / "tasks")
    assert str(e.value) == (f"{path}: archetype: 'repo_maintainance' is not one of architectural_planning, "
                            "repo_maintenance, feature_implementation, comparative_research")


def test_task_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such task file; tasks in .*fix_failing_test"):
        load_task("nope", REPO / "tasks")
    path = write_task(tmp_path, "t", repository={"path": "x", "url": "https://y"})
    with pytest.raises(ConfigError, match="repository: Value error, give exactly one of url or path"):
        load_task(str(path), tmp_path / "tasks")
    path = write_task(tmp_path, "u", name="other", repository={"path": "x"})
    with pytest.raises(ConfigError, match="must match the file name"):
        load_task(str(path), tmp_path / "tasks")


def test_prompt_vars(tmp_path):
    path = write_task(tmp_path, "t", repository={"path": "x"}, prompt="Migrate. {extra} Use {tool}.",
                      prompt_vars={"extra": ""})
    task = load_task(str(path), tmp_path / "tasks")
    assert task.render_prompt({"tool": "uv"}) == "Migrate.  Use uv."
    assert task.render_prompt({"tool": "uv", "extra": "Be brief."}) == "Migrate. Be brief. Use uv."
    with pytest.raises(ConfigError, match=r"prompt: no value for \{tool\}; pass --prompt-vars"):
        task.render_prompt({})
    assert parse_prompt_vars('{"a": "b", "n": 3}') == {"a": "b", "n": "3"}
    with pytest.raises(ConfigError, match="--prompt-vars: not valid JSON"):
        parse_prompt_vars("{extra: x}")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        parse_prompt_vars("[1]")
