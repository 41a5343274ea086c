"""Atomic writes: a file or folder appears complete or not at all (never half-written).

Every cache, checkpoint and report in allornone goes through these helpers: the content is
written to a temporary sibling and moved into place with ``os.replace`` (atomic on POSIX).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``.

    For writers that want a file name (``np.save``, ``torch.save``, ``fig.savefig``,
    safetensors). On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)  # mkstemp makes files private; caches may be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, obj: Any, *, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent))


def replace_dir(tmp_dir: Path, final: Path) -> None:
    """Move a fully written folder ``tmp_dir`` to ``final``, replacing any old one.

    ``os.replace`` cannot replace a non-empty folder, so an existing ``final`` is first
    renamed out of the way (atomically) and deleted after the new one is in place; if that
    fails the old one is put back. If another process put a folder there in the meantime,
    ours is discarded and theirs kept.
    """
    trash = None
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(final, trash)
        except OSError:
            trash = None
    try:
        os.replace(tmp_dir, final)
    except OSError:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if trash is not None and not final.exists():
            os.replace(trash, final)
            trash = None
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def atomic_dir(final: str | Path, write: Callable[[Path], Any]) -> Any:
    """Run ``write(tmp)`` on a temporary folder next to ``final``, then move it to ``final``.

    Returns what ``write`` returned. On any error or interrupt (Ctrl-C included) the
    temporary folder is removed and an existing ``final`` is left as it was.
    """
    final = Path(final).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        value = write(tmp)
        replace_dir(tmp, final)
        return value
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def to_jsonable(x: Any) -> Any:
    """A JSON-ready copy: arrays to lists, numpy scalars to Python, NaN/inf to None (strict
    JSON has no NaN), other objects to a type tag ``"<TypeName>"``."""
    import math

    import numpy as np

    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else None
    if x is None or isinstance(x, str):
        return x
    return f"<{type(x).__name__}>"
