"""Inter-process file locks: several `simulate` processes (or a sweep's workers) share one store safely."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing), held for the block; released if the process dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def lock_path(root: Path, target: Path) -> Path:
    """The lock guarding `target`, kept in `root/.locks` so a store's folders hold only its files."""
    import hashlib

    return Path(root) / ".locks" / (hashlib.sha1(str(Path(target).resolve()).encode()).hexdigest()[:20] + ".lock")


def private_tmp(path: Path) -> Path:
    """A temp name beside `path` that no other process writes to (then `replace` it into place)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")
