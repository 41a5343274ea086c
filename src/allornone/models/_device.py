"""Device and dtype options of :func:`allornone.models.load`, checked before any model loads.

``device="cuda"`` on a machine without a GPU (or with a CPU-only torch) would otherwise fail
deep inside torch (``AssertionError: Torch not compiled with CUDA enabled``) after the model
was read; these checks fail first, with the devices that do exist.
"""

from __future__ import annotations

from typing import Any

import torch

from .._validation import AllOrNoneError

__all__ = ["available_devices", "check_device", "resolve_device", "resolve_dtype"]

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_dtype(dtype: Any) -> torch.dtype | None:
    """``None`` | torch dtype | name (``"float32"``, ``"bfloat16"``, ...) -> torch dtype."""
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        if dtype in _DTYPES.values():
            return dtype
    elif isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise AllOrNoneError(f"dtype={dtype!r} is not supported; use one of {sorted(_DTYPES)}")


def available_devices() -> list[str]:
    """The torch devices usable here, e.g. ``["cpu"]`` or ``["cpu", "cuda:0", "cuda:1"]``."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def check_device(device: Any) -> torch.device | None:
    """Validate a device option (None = automatic) without touching any model."""
    if device is None:
        return None
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str | int):
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise AllOrNoneError(
                f"device={device!r} is not a torch device name; available devices here: "
                f"{', '.join(available_devices())}"
            ) from None
    else:
        raise AllOrNoneError(
            f"device is a {type(device).__name__}; pass a name such as 'cpu' or 'cuda'"
        )
    have = available_devices()
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = (
                "this torch build has no CUDA support"
                if torch.version.cuda is None
                else "torch sees no CUDA GPU"
            )
            raise AllOrNoneError(
                f"device={str(device)!r} is not available: {why}; available devices here: "
                f"{', '.join(have)} (omit --device / device= to pick automatically)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise AllOrNoneError(
                f"device={str(device)!r} does not exist; available devices here: {', '.join(have)}"
            )
        return dev
    if dev.type == "mps" and "mps" in have:
        return dev
    raise AllOrNoneError(
        f"device={str(device)!r} is not available; available devices here: {', '.join(have)}"
    )


def resolve_device(device: Any, model: torch.nn.Module | None) -> torch.device:
    """The device to use: the checked option, else the model's, else CUDA when available."""
    dev = check_device(device)
    if dev is not None:
        return dev
    if model is not None:
        try:
            return next(model.parameters()).device
        except StopIteration:  # pragma: no cover - a model without parameters
            pass
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
