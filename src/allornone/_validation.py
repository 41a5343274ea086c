"""Input validation shared by every module: arrays in, float64 numpy out, clear errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AllOrNoneError, AllOrNoneTypeError

__all__ = ["AllOrNoneError", "AllOrNoneTypeError"]


def to_numpy(x: Any, name: str) -> tuple[np.ndarray, float]:
    """Convert a numpy array or torch tensor (CPU or CUDA) to a float64 numpy array.

    Returns the array and the machine epsilon of the *source* dtype (used for default
    tolerances: float32 data keeps float32 rounding after conversion).
    Integer, boolean, complex and object arrays are refused: they are almost always a
    mistake (token ids passed instead of vectors).
    """
    if x is None:
        raise AllOrNoneError(f"{name} is None: pass a 2-D array of floats")
    torch = sys.modules.get("torch")  # a tensor exists only if torch is imported already
    if torch is not None and isinstance(x, torch.Tensor):
        check_has_data(x, name)
        if not x.dtype.is_floating_point or x.dtype.is_complex:
            raise AllOrNoneError(
                f"{name} is a torch tensor of dtype {x.dtype}; expected a floating dtype "
                "(float64, float32, float16 or bfloat16)"
            )
        eps = float(torch.finfo(x.dtype).eps)
        arr = x.detach().to("cpu", dtype=torch.float64).numpy()
        return _check_finite(arr, name), eps
    arr = np.asarray(x)
    if arr.dtype == object:
        raise AllOrNoneError(f"{name} is an object array; pass a numeric float array")
    if not np.issubdtype(arr.dtype, np.floating):
        raise AllOrNoneError(
            f"{name} has dtype {arr.dtype}; expected floats. If these are token ids or labels, "
            "you passed the wrong argument; otherwise convert with .astype(float)"
        )
    eps = float(np.finfo(arr.dtype).eps)
    return _check_finite(arr.astype(np.float64, copy=False), name), eps


def check_has_data(x: Any, name: str) -> None:
    """Refuse a torch tensor on the ``meta`` device: it has a shape but no values."""
    if getattr(getattr(x, "device", None), "type", None) == "meta":
        raise AllOrNoneError(
            f"{name} is a torch tensor on the meta device (shape {tuple(x.shape)}): it holds no "
            "values; load the weights first (e.g. from_pretrained without device_map='meta', "
            "or to_empty() then load_state_dict())"
        )


def available_memory() -> int | None:
    """Bytes this process can still allocate, as far as can be told: the smaller of the
    system's available memory (``MemAvailable`` on Linux, else the physical memory) and the
    room left under an address-space limit (``RLIMIT_AS``); None when unknown."""
    found: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            used = 0
            with open("/proc/self/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmSize:"):
                        used = int(line.split()[1]) * 1024
            found.append(max(0, soft - used))
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return min(found) if found else None


def human_bytes(n: float) -> str:
    """``n`` bytes as a short text, e.g. ``3.9 GiB``, ``728 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" or abs(n) >= 100 else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.0f} PiB"  # pragma: no cover - the loop returns


def _check_finite(arr: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))
        first = tuple(int(i) for i in bad[0])
        raise AllOrNoneError(
            f"{name} has {len(bad)} non-finite values (NaN or inf), first at index {first}; "
            "check the model weights / extraction (a bfloat16 overflow is a common cause)"
        )
    return arr


def as_matrix(x: Any, name: str) -> tuple[np.ndarray, float]:
    arr, src = to_numpy(x, name)
    if arr.ndim != 2:
        raise AllOrNoneError(f"{name} must be 2-D, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise AllOrNoneError(f"{name} is empty (shape {arr.shape})")
    return arr, src


def default_rank_tol(shape: tuple[int, ...], eps: float) -> float:
    """Default relative tolerance for numerical rank: ``max(shape) * eps``.

    Singular values below ``tol * sigma_max`` are treated as zero. This is the convention of
    ``numpy.linalg.matrix_rank`` and LAPACK, with ``eps`` the machine epsilon of the dtype the
    data came in (2.2e-16 for float64, 1.2e-7 for float32, 7.8e-3 for bfloat16).
    """
    return float(max(shape) * eps)


def default_equiv_tol(eps: float) -> float:
    """Default relative tolerance for equivalence verdicts: ``sqrt(eps)`` of the source dtype.

    1.5e-8 for float64 sources, 3.5e-4 for float32, 8.8e-2 for bfloat16.
    """
    return float(np.sqrt(eps))


def read_user_file(path: Path, what: str) -> str:
    """The UTF-8 text of a user's input file, without a leading byte-order mark (files saved
    by Excel or Notepad start with one); a missing or non-UTF-8 file raises
    :class:`AllOrNoneError` naming it (``what``: "pairs", "labels", "relations", ...)."""
    path = Path(path)
    limit = max_input_lines()
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise AllOrNoneError(f"{what} file {path} is a folder: pass a file")
        if size > MAX_INPUT_BYTES:
            raise AllOrNoneError(
                f"{what} file {path} has {size / 2**20:.0f} MiB; input files are limited to "
                f"{MAX_INPUT_BYTES // 2**20} MiB: pass a sample of it"
            )
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise AllOrNoneError(f"{what} file {path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise AllOrNoneError(f"{what} file {path} is not UTF-8 text: {exc}") from exc
    lines = text.count("\n") + (not text.endswith("\n") and bool(text))
    if lines > limit:
        raise AllOrNoneError(
            f"{what} file {path} has {lines} lines; the audit reads at most {limit} "
            f"(each line is tokenised and embedded): pass a sample, or raise the limit with "
            f"{MAX_LINES_ENV}=N"
        )
    return text


#: Input files larger than this are refused before anything is parsed.
MAX_INPUT_BYTES = 64 * 2**20
#: Default most lines of one input file (pairs, labels, relations); see :func:`max_input_lines`.
MAX_INPUT_LINES = 100_000
MAX_LINES_ENV = "ALLORNONE_MAX_INPUT_LINES"


def max_input_lines() -> int:
    """Most lines an input file may have: ``$ALLORNONE_MAX_INPUT_LINES`` or 100,000."""
    raw = os.environ.get(MAX_LINES_ENV)
    if raw is None:
        return MAX_INPUT_LINES
    try:
        value = int(raw)
    except ValueError as exc:
        raise AllOrNoneError(f"{MAX_LINES_ENV}={raw!r} is not an integer") from exc
    if value < 1:
        raise AllOrNoneError(f"{MAX_LINES_ENV} must be >= 1, got {value}")
    return value
