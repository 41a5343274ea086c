"""SHA-256 digests of files and folders (the audit's certificate); the digest of ordered
contexts is :func:`allornone.store.contexts_digest`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

__all__ = ["file_sha256", "paths_sha256"]

_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def paths_sha256(paths: Iterable[str | Path]) -> dict[str, str]:
    """``path -> sha256`` of every file named, or inside a folder named (sorted, recursive)."""
    out: dict[str, str] = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for q in sorted(x for x in p.rglob("*") if x.is_file()):
                out[str(q)] = file_sha256(q)
        elif p.is_file():
            out[str(p)] = file_sha256(p)
    return out
