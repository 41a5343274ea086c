"""Device and dtype options of :func:`allornone.models.load`, checked before any model loads.

``device="cuda"`` on a machine without a GPU (or with a CPU-only torch) would otherwise fail
deep inside torch (``AssertionError: Torch not compiled with CUDA enabled``) after the model
was read; these checks fail first, with the devices that do exist.
"""

from __future__ import annotations

from typing import Any

import torch

from .._validation import AllOrNoneError

__all__ = [
    "available_devices",
    "check_device",
    "check_device_map",
    "dispatch",
    "input_device",
    "resolve_device",
    "resolve_dtype",
]

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


def check_device_map(device_map: Any) -> str | dict[str, Any] | None:
    """Validate a ``device_map`` option (``None``, ``"auto"`` or a dict) before loading.

    Every device named in a dict must exist here (``"disk"`` offloading is refused: the LM
    head and the embeddings must be readable as tensors)."""
    if device_map is None:
        return None
    if isinstance(device_map, str):
        if device_map == "auto":
            _need_accelerate()
            return "auto"
        raise AllOrNoneError(
            f"device_map={device_map!r}: use 'auto' (CLI: --device-map auto) or a dict "
            "{module name: device}"
        )
    if not isinstance(device_map, dict) or not device_map:
        raise AllOrNoneError(
            f"device_map is a {type(device_map).__name__}; pass 'auto' or a non-empty dict "
            "{module name: device}"
        )
    _need_accelerate()
    out: dict[str, Any] = {}
    for name, dev in device_map.items():
        if not isinstance(name, str):
            raise AllOrNoneError(f"device_map key {name!r} is not a module name (a string)")
        if dev in ("disk", "meta"):
            raise AllOrNoneError(
                f"device_map[{name!r}] = {dev!r}: offloading to {dev} is not supported (the LM "
                "head and every layer must live on a device); use more devices or "
                "dtype='bfloat16'"
            )
        out[name] = check_device(dev)
    return out


def _need_accelerate() -> None:
    try:
        import accelerate  # noqa: F401
    except ImportError:
        raise AllOrNoneError(
            "device_map needs the accelerate package: pip install 'allornone[gpu]' "
            "(or pip install accelerate)"
        ) from None


def dispatch(model: torch.nn.Module, device_map: str | dict[str, Any]) -> torch.nn.Module:
    """Spread ``model`` over devices with accelerate (``"auto"``: fill the GPUs in order,
    then the CPU). Returns the dispatched model (``model.hf_device_map`` is set)."""
    from accelerate import dispatch_model, infer_auto_device_map
    from accelerate.utils import check_device_map as _acc_check

    no_split = list(getattr(model, "_no_split_modules", None) or [])
    if device_map == "auto":
        dmap: dict[str, Any] = infer_auto_device_map(model, no_split_module_classes=no_split)
        bad = sorted(k for k, v in dmap.items() if v in ("disk", "meta"))
        if bad:
            raise AllOrNoneError(
                f"device_map='auto': the model does not fit the memory of "
                f"{', '.join(available_devices())} (would offload {bad[0]} to disk); use "
                "dtype='bfloat16' or more GPUs"
            )
    elif isinstance(device_map, dict):
        dmap = {k: (str(v) if isinstance(v, torch.device) else v) for k, v in device_map.items()}
    else:
        raise AllOrNoneError(f"device_map={device_map!r}: use 'auto' or a dict")
    try:
        _acc_check(model, dmap)
    except ValueError as exc:
        raise AllOrNoneError(
            f"device_map does not place every weight of {type(model).__name__}: {exc}"
        ) from None
    # force_hooks: accelerate's hooks are attached even when every entry names one device,
    # so a map over one kind of device runs through the same code path as a multi-GPU one
    out = dispatch_model(model, device_map=dmap, force_hooks=True)
    if not hasattr(out, "hf_device_map"):
        out.hf_device_map = dmap
    return out


def input_device(model: torch.nn.Module) -> torch.device:
    """Where a (possibly dispatched) model wants its input ids: its input embedding's."""
    get_in = getattr(model, "get_input_embeddings", None)
    emb = get_in() if callable(get_in) else None
    w = getattr(emb, "weight", None)
    if isinstance(w, torch.Tensor) and w.device.type != "meta":
        return w.device
    return next(model.parameters()).device
