"""Which files of a GGUF repository belong to a quant tag.

Real repositories name quants inside file names (`Qwen3-0.6B-UD-Q6_K_XL.gguf`, `model.q4_k_m.gguf`), shard
big ones (`GLM-4.6-Q4_K_M-00001-of-00005.gguf`) and often put each quant in its own folder (`BF16/...`,
`UD-Q2_K_XL/...`). A tag matches a *whole* token of the name or folder, case-insensitively, with tokens split on
`-` and `.` only: so `Q4_K_M` never matches `Q4_K_M_XL` or `IQ4_XS`, and `Q6_K_XL` matches `UD-Q6_K_XL`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

_SHARD = re.compile(r"-(\d{5})-of-(\d{5})$", re.IGNORECASE)
_SPLIT = re.compile(r"[-.]")


@dataclass(frozen=True)
class GgufFile:
    path: str
    shard: int | None = None
    shards: int | None = None

    @property
    def is_mmproj(self) -> bool:
        return PurePosixPath(self.path).name.lower().startswith("mmproj")


def parse(path: str) -> GgufFile | None:
    p = PurePosixPath(path)
    if p.suffix.lower() != ".gguf":
        return None
    m = _SHARD.search(p.stem)
    return GgufFile(path, int(m.group(1)), int(m.group(2))) if m else GgufFile(path)


def _tokens(text: str) -> set[str]:
    return {t.upper() for t in _SPLIT.split(text) if t}


def quant_matches(path: str, tag: str) -> bool:
    p = PurePosixPath(path)
    stem = _SHARD.sub("", p.stem)
    tag = tag.upper()
    if tag in _tokens(stem):
        return True
    # A per-quant folder: `BF16/x.gguf`, `UD-Q2_K_XL/x.gguf`.
    return any(tag in _tokens(part) for part in p.parent.parts)


def select(paths: list[str], tag: str, include_mmproj: bool = False) -> list[GgufFile]:
    """The files of one quant (all shards, sorted), plus mmproj files when asked for."""
    chosen = []
    for path in paths:
        f = parse(path)
        if f is None:
            continue
        if f.is_mmproj:
            if include_mmproj:
                chosen.append(f)
            continue
        if quant_matches(path, tag):
            chosen.append(f)
    return sorted(chosen, key=lambda f: (f.is_mmproj, f.path))


def entry_file(files: list[GgufFile]) -> GgufFile:
    """The file llama-server is given: the first shard (it finds the others beside it)."""
    models = [f for f in files if not f.is_mmproj]
    return min(models, key=lambda f: (f.shard or 0, f.path))


def available_quants(paths: list[str], candidates: list[str]) -> list[str]:
    return [t for t in candidates if select(paths, t)]
