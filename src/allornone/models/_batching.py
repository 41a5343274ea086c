"""Batching and padding of token-id contexts for a transformers forward pass.

Contexts are sorted by length before batching (little padding) and put back in the input
order by the caller. Padding uses explicit attention masks and position ids, so left and right
padding give the same hidden states.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

import numpy as np
import torch

from .._validation import AllOrNoneError

__all__ = [
    "CUDA_PAD_MULTIPLE",
    "accepts",
    "as_text_list",
    "free_device_memory",
    "has_hooks",
    "is_out_of_memory",
    "length_batches",
    "model_kwargs",
    "pad_batch",
    "user_stacklevel",
    "warn_truncated",
]

#: Padded lengths on CUDA are rounded up to a multiple of this (see :func:`pad_batch`).
CUDA_PAD_MULTIPLE = 16


def accepts(fn: Any, name: str) -> bool:
    """Whether callable ``fn`` takes a keyword argument ``name``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def user_stacklevel() -> int:
    """``stacklevel`` that points a warning at the first frame outside this package."""
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame: FrameType | None = sys._getframe(1)  # noqa: SLF001
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(pkg):
        frame, level = frame.f_back, level + 1
    return level


def has_hooks(model: torch.nn.Module) -> bool:
    return any(
        m._forward_hooks or m._forward_pre_hooks
        for m in model.modules()  # noqa: SLF001
    )


def as_text_list(contexts: Sequence[str] | str, what: str = "contexts") -> list[str]:
    """A non-empty list of non-empty strings, or a clear error naming the bad entry."""
    if isinstance(contexts, str):
        contexts = [contexts]
    try:
        out = list(contexts)
    except TypeError:
        raise AllOrNoneError(
            f"{what} must be a list of strings, got {type(contexts).__name__}"
        ) from None
    if not out:
        raise AllOrNoneError(f"{what} is empty: pass at least one string")
    for i, c in enumerate(out):
        if not isinstance(c, str):
            raise AllOrNoneError(f"{what}[{i}] is a {type(c).__name__}, expected a string")
        if c == "":
            raise AllOrNoneError(
                f"{what}[{i}] is the empty string: a next-token prediction needs at least "
                "one token of context; drop it or give it text"
            )
    return out


def warn_truncated(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=user_stacklevel())


def length_batches(
    encoded: list[list[int]], batch_size: int, max_batch_tokens: int
) -> Iterator[np.ndarray]:
    """Index batches of contexts sorted by decreasing length (bounded padded tokens)."""
    lengths = np.array([len(e) for e in encoded])
    order = np.argsort(-lengths, kind="stable")
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        size = max(1, min(batch_size, max_batch_tokens // max(longest, 1)))
        yield order[start : start + size]
        start += size


def pad_batch(
    seqs: list[list[int]], side: str, *, pad_id: int, device: torch.device, max_length: int
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Pad to a batch: ``input_ids``, ``attention_mask``, ``position_ids`` (all B x T) and the
    index of the last real token of each row (B,).

    ``attention_mask`` is None when no row is padded (all of one length): the model then
    takes its plain causal path (no mask to build or inspect; on CUDA, flash attention).
    On CUDA the padded length of a padded batch is rounded up to a multiple of
    :data:`CUDA_PAD_MULTIPLE`, so length-sorted batches reuse a few kernel shapes (a new
    GEMM/attention shape costs a heuristic search on first use); the extra positions are
    masked padding. Host tensors are built with numpy and, on CUDA, copied from pinned
    memory without blocking (the copy overlaps the previous batch's compute)."""
    lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    T = int(lens.max())
    padded = bool((lens != T).any())
    if padded and device.type == "cuda":
        T = min(-(-T // CUDA_PAD_MULTIPLE) * CUDA_PAD_MULTIPLE, max(T, max_length))
    ids = np.full((len(seqs), T), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), T), dtype=np.int64)
    for i, s in enumerate(seqs):
        if side == "left":
            ids[i, T - len(s) :] = s
            mask[i, T - len(s) :] = 1
        else:
            ids[i, : len(s)] = s
            mask[i, : len(s)] = 1
    pos = np.maximum(mask.cumsum(-1) - 1, 0)
    last = np.full(len(seqs), T - 1) if side == "left" else lens - 1
    host = [torch.from_numpy(a) for a in (ids, mask, pos, last)]
    if device.type == "cuda":
        host = [t.pin_memory() for t in host]
    dev = [t.to(device, non_blocking=device.type == "cuda") for t in host]
    return dev[0], (dev[1] if padded else None), dev[2], dev[3]


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure of torch: CUDA (``OutOfMemoryError``), MPS
    (``MPS backend out of memory``) or the CPU allocator (``can't allocate memory``)."""
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom | torch.cuda.OutOfMemoryError):
        return True
    if isinstance(exc, RuntimeError | MemoryError):
        msg = str(exc).lower()
        return isinstance(exc, MemoryError) or any(
            k in msg for k in ("out of memory", "can't allocate memory", "cannot allocate memory")
        )
    return False


def free_device_memory(device: torch.device) -> None:
    """Give cached blocks back after an out-of-memory error, so a smaller batch can fit."""
    import gc

    gc.collect()
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device.type == "mps":
        mps = getattr(torch, "mps", None)
        if mps is not None and hasattr(mps, "empty_cache"):
            mps.empty_cache()


def model_kwargs(
    ids: torch.Tensor,
    mask: torch.Tensor | None,
    pos: torch.Tensor,
    *,
    pass_positions: bool,
    pass_use_cache: bool,
) -> dict[str, Any]:
    kw: dict[str, Any] = {"input_ids": ids}
    if mask is not None:
        kw["attention_mask"] = mask
        if pass_positions:
            kw["position_ids"] = pos
    if pass_use_cache:
        kw["use_cache"] = False
    return kw
