"""The files a model is read from, for the audit's certificate (their SHA-256 digests)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._loading import KNOWN_MODELS, _gemma_path, _qwen_path, _smollm2_path

__all__ = ["model_files"]


def model_files(name_or_path: Any) -> list[Path]:
    """The files ``load(name_or_path)`` reads: the GGUF of an embedded model, a file, every
    file of a folder; none for a model object or a hub id (nothing local to hash)."""
    if not isinstance(name_or_path, str | os.PathLike):
        return []
    s = os.fspath(name_or_path)
    key = s.strip().lower()
    if key in KNOWN_MODELS:
        canon = KNOWN_MODELS[key]
        where = {"smollm2": _smollm2_path, "gemma-3-270m": _gemma_path}
        return [where.get(canon, _qwen_path)()]
    p = Path(s).expanduser()
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(q for q in p.rglob("*") if q.is_file())
    return []
