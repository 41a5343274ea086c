"""Reuse of the vocabulary-sized QR factors during one audit (an exact speed-up).

Every property call that needs the geometry of the unembeddings computes the triangular
factor ``R`` of ``G - shift`` (a tall-skinny QR of a V x d matrix: 49152 x 576 for SmolLM2),
and many calls see the same ``G`` (copied by ``subset``). Inside :func:`shared_r_factors`
those factors are memoised by content (shape, dtype, a hash of the bytes of ``X`` and of
``shift``), so identical inputs give the identical result computed once.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .. import linalg

_MODULES = (
    "allornone.structure",
    "allornone.properties._common",
    "allornone.properties.parallelism",
    "allornone.properties.probing",
    "allornone.properties.relational",
    "allornone.properties.steering",
)
#: Only matrices with at least this many rows are memoised (small ones are cheap).
MIN_ROWS = 4096


def _digest(X: np.ndarray, shift: np.ndarray | None) -> tuple:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(X).view(np.uint8).data)
    if shift is not None:
        h.update(np.ascontiguousarray(shift, dtype=np.float64).view(np.uint8).data)
    return (X.shape, str(X.dtype), shift is None, h.hexdigest())


@contextmanager
def shared_r_factors() -> Iterator[dict]:
    cache: dict[tuple, np.ndarray] = {}
    original = linalg.r_factor

    def r_factor(X: np.ndarray, *, shift: np.ndarray | None = None, **kw: Any) -> np.ndarray:
        if kw or X.shape[0] < MIN_ROWS:
            return original(X, shift=shift, **kw)
        key = _digest(X, shift)
        if key not in cache:
            cache[key] = original(X, shift=shift)
        return cache[key].copy()

    patched = []
    try:
        for name in _MODULES:
            try:
                mod = importlib.import_module(name)
            except ImportError:
                continue
            if getattr(mod, "r_factor", None) is original:
                mod.r_factor = r_factor
                patched.append(mod)
        yield cache
    finally:
        for mod in patched:
            mod.r_factor = original
