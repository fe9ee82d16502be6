"""The local model cache: `<cache>/models/<repo_id>/<path>` plus a sidecar recording sha256 and revision."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from beyond_vibes.locks import file_lock, lock_path, private_tmp
from beyond_vibes.store import sha256_file


@dataclass(frozen=True)
class CachedFile:
    path: Path
    sha256: str
    size: int
    revision: str
    source: str


class ModelCache:
    def __init__(self, model_dir: Path):
        self.root = Path(model_dir)
        self.index_dir = Path(model_dir)  # where the sha256 index (path, size, mtime -> sha) lives

    def path(self, repo_id: str, file_path: str) -> Path:
        return self.root / repo_id / file_path

    def _meta(self, path: Path) -> Path:
        return path.with_name(path.name + ".bv.json")

    def sha256(self, path: Path) -> str:
        return sha256_file(path, self.index_dir)

    def record(self, path: Path, sha256: str | None, revision: str, source: str) -> None:
        """Write the sidecar; a file whose source gave no sha256 is hashed here."""
        sha256 = sha256 or self.sha256(path)
        meta = {"sha256": sha256, "size": path.stat().st_size, "revision": revision, "source": source}
        tmp = private_tmp(self._meta(path))
        tmp.write_text(json.dumps(meta))
        tmp.replace(self._meta(path))

    def lookup(self, repo_id: str, file_path: str) -> CachedFile | None:
        """The cached file if its sidecar exists and its size still matches (cheap: no hashing)."""
        path = self.path(repo_id, file_path)
        meta_path = self._meta(path)
        if not path.exists() or not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            return None
        if path.stat().st_size != meta.get("size"):
            return None
        return CachedFile(path, meta["sha256"], meta["size"], meta.get("revision", ""), meta.get("source", ""))

    def verified(self, repo_id: str, file_path: str) -> CachedFile | None:
        """The cached file only if its content still hashes to the recorded sha256."""
        found = self.lookup(repo_id, file_path)
        if found is None or self.sha256(found.path) != found.sha256:
            return None
        return found

    def fetch(self, repo_id: str, file_path: str, sha256: str | None, download: Callable[[Path], Path],
              revision: str, source: str) -> Path:
        """Fetch one file into the cache once, even when several processes ask at the same time: the first
        downloads under a lock (its `.part` is its own), the others wait and find it recorded."""
        dest = self.path(repo_id, file_path)
        with file_lock(lock_path(self.root, dest)):
            found = self.verified(repo_id, file_path)
            if found is not None and (sha256 is None or found.sha256 == sha256):
                return found.path
            dest = download(dest)
            self.record(dest, sha256, revision, source)
        return dest

    def fetch_from_hub(self, hf, repo_id: str, commit: str, file, progress: Callable[[int], None]) -> Path:
        """Download one hub file into the cache (verified by `hf.download`) and record where it came from."""
        return self.fetch(repo_id, file.path, file.sha256, lambda dest: hf.download(repo_id, commit, file, dest, progress=progress),
                          commit, f"hf:{repo_id}@{commit}")

    def files(self, repo_id: str) -> list[str]:
        base = self.root / repo_id
        if not base.exists():
            return []
        return sorted(str(p.relative_to(base)) for p in base.rglob("*.gguf"))
