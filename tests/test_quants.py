"""Quant tag matching on real GGUF repository listings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beyond_vibes.store.quants import entry_file, select

LISTINGS = json.loads((Path(__file__).parent / "data" / "hf_listings.json").read_text())
QWEN, GLM, GEMMA = LISTINGS["unsloth/Qwen3-0.6B-GGUF"], LISTINGS["unsloth/GLM-4.6-GGUF"], LISTINGS["unsloth/gemma-3-4b-it-GGUF"]


def names(files):
    return [f.path for f in files]


@pytest.mark.parametrize("tag, expected", [
    ("Q4_K_M", ["Qwen3-0.6B-Q4_K_M.gguf"]),
    ("Q6_K_XL", ["Qwen3-0.6B-UD-Q6_K_XL.gguf"]),
    ("Q6_K", ["Qwen3-0.6B-Q6_K.gguf"]),
    ("Q2_K", ["Qwen3-0.6B-Q2_K.gguf"]),
    ("IQ4_XS", ["Qwen3-0.6B-IQ4_XS.gguf"]),
    ("Q4_0", ["Qwen3-0.6B-Q4_0.gguf"]),
    ("BF16", ["Qwen3-0.6B-BF16.gguf"]),
    ("q8_k_xl", ["Qwen3-0.6B-UD-Q8_K_XL.gguf"]),
    ("Q7_K", []),
])
def test_single_file_quants(tag, expected):
    assert names(select(QWEN, tag)) == expected


def test_sharded_quants_in_folders():
    q4 = select(GLM, "Q4_K_M")
    assert names(q4) == [f"Q4_K_M/GLM-4.6-Q4_K_M-0000{i}-of-00005.gguf" for i in range(1, 6)]
    assert entry_file(q4).path.endswith("00001-of-00005.gguf") and q4[0].shards == 5
    assert names(select(GLM, "Q4_K_XL")) == [f"UD-Q4_K_XL/GLM-4.6-UD-Q4_K_XL-0000{i}-of-00004.gguf" for i in range(1, 5)]
    assert len(select(GLM, "BF16")) == 3
    assert names(select(GLM, "TQ1_0")) == ["UD-TQ1_0/GLM-4.6-UD-TQ1_0.gguf"]
    assert names(select(GLM, "IQ4_XS")) == ["IQ4_XS/GLM-4.6-IQ4_XS-00001-of-00004.gguf"]


def test_mmproj_is_opt_in():
    assert names(select(GEMMA, "BF16")) == ["gemma-3-4b-it-BF16.gguf"]
    assert names(select(GEMMA, "Q4_K_M", include_mmproj=True)) == [
        "gemma-3-4b-it-Q4_K_M.gguf", "mmproj-BF16.gguf", "mmproj-F16.gguf", "mmproj-F32.gguf"]
    assert entry_file(select(GEMMA, "Q4_K_M", include_mmproj=True)).path == "gemma-3-4b-it-Q4_K_M.gguf"


def test_lowercase_and_dotted_names():
    demo = LISTINGS["lowercase/demo"]
    assert names(select(demo, "Q4_K_M")) == ["gemma-3-270m-q4_k_m.gguf"]
    assert names(select(demo, "Q8_0")) == ["model.Q8_0.gguf"]


def test_every_qwen_file_belongs_to_exactly_its_own_quant():
    ggufs = [f for f in QWEN if f.endswith(".gguf")]
    tags = [f.removeprefix("Qwen3-0.6B-").removeprefix("UD-").removesuffix(".gguf") for f in ggufs]
    assert len(tags) == 26
    for tag, file in zip(tags, ggufs):
        assert names(select(QWEN, tag)) == [file], tag
    for file in ggufs:  # no file is claimed by two tags
        assert sum(file in names(select(QWEN, t)) for t in tags) == 1, file
