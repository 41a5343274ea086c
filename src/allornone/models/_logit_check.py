"""The load-time check: extracted ``F G^T`` (+ bias, cap) must reproduce the model's logits.

NaN-aware: ``max(0.0, nan)`` is ``0.0`` in Python, so a model whose output is NaN would pass a
naive check with deviation 0. Any NaN or infinity in the extracted ``F``, ``G`` or in the
model's own logits is an error here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .._validation import AllOrNoneError

__all__ = [
    "DEFAULT_CHECK_CONTEXTS",
    "LOGIT_CHECK_RTOL",
    "check_finite",
    "device_deviation",
    "failure_message",
    "logit_deviation",
]

#: Contexts used by :meth:`LanguageModel.check_logits` when none are given.
DEFAULT_CHECK_CONTEXTS = (
    "The capital of France is Paris. The capital of Germany is",
    "Once upon a time, there was a little",
    "import numpy as np\nx = np.",
    "She opened the door and",
)

#: Tolerance of the load-time logits check, relative to the logits' scale: the check fails
#: when ``max |F G^T - logits| > rtol * max(1, max |logits|)``. Set per compute dtype: float32
#: extraction reproduces HF logits to ~1e-6 relative (SmolLM2: 1.6e-5 absolute on logits of
#: size ~20), bfloat16 rounds the logits to 8 significant bits (~4e-3 relative). In units of
#: the dtype's machine epsilon: bfloat16 3e-2 = 3.84 eps (eps = 2^-7), float16 2e-2 = 20 eps
#: (eps = 2^-10; float16's narrow range makes the model's own rounding larger than its eps).
#: The check itself runs on the LM head's device (:func:`device_deviation`).
LOGIT_CHECK_RTOL: dict[torch.dtype, float] = {
    torch.float64: 1e-9,
    torch.float32: 1e-4,
    torch.float16: 2e-2,
    torch.bfloat16: 3e-2,
}

_CHUNK = 32768


def check_finite(name: str, what: str, arr: np.ndarray) -> None:
    """Raise a clear error when ``arr`` has NaN or inf (read in row chunks: no big copy)."""
    bad = 0
    for s in range(0, arr.shape[0], _CHUNK):
        bad += int(arr.shape[1] * len(arr[s : s + _CHUNK])) - int(
            np.isfinite(arr[s : s + _CHUNK]).sum()
        )
    if bad:
        raise AllOrNoneError(
            f"{name}: {what} contains {bad} NaN/inf values of {arr.size}: the model's weights "
            "are damaged or its dtype overflows (try dtype='float32'); refusing the model"
        )


def logit_deviation(
    name: str,
    F: np.ndarray,
    G: np.ndarray,
    model_logits: np.ndarray,
    apply_cap: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[float, float]:
    """``(max |cap(F G^T) - logits|, max |logits|)``, after checking all three are finite."""
    check_finite(name, "the model's own logits on the check contexts", model_logits)
    check_finite(name, "the extracted F (context representations)", F)
    check_finite(name, "the unembedding G (LM-head rows)", G)
    dev = 0.0
    for s in range(0, G.shape[0], _CHUNK):
        lin = torch.from_numpy(F @ G[s : s + _CHUNK].astype(np.float64).T)
        ours = apply_cap(lin).numpy()
        chunk = float(np.abs(ours - model_logits[:, s : s + _CHUNK]).max())
        if not np.isfinite(chunk):  # F G^T overflowed although F and G are finite
            raise AllOrNoneError(
                f"{name}: F G^T overflows on the check contexts: refusing the model"
            )
        dev = max(dev, chunk)
    return dev, float(np.abs(model_logits).max())


def failure_message(
    name: str,
    dev: float,
    bound: float,
    tol: float,
    scale: float,
    *,
    lin: np.ndarray,
    logits: np.ndarray,
    head_scale: float,
    softcap: float | None,
) -> str:
    """Error text for a failed logits check, with a fitted scale when one explains it.

    ``lin`` is ``F G^T`` without cap (n x V) on the check contexts, ``logits`` the model's.
    """
    hint = ""
    denom = float((lin * lin).sum())
    if denom > 0 and softcap is None:
        s = float((lin * logits).sum() / denom)
        if np.abs(s * lin - logits).max() <= bound:
            hint = (
                f" The logits are {s:.6g} x F G^T: the head has a constant logit scale this "
                f"adapter does not know; pass logit_scale={s * head_scale:.6g} to load()"
                " if that is right."
            )
    return (
        f"{name}: F G^T does not reproduce the model's own logits: max abs deviation "
        f"{dev:.3g} > tolerance {bound:.3g} ({tol:g} x logit scale {scale:.3g}). The head is "
        "not of the form softmax(f^T g) this adapter can extract (unknown scale, non-linear "
        f"head, or a base model whose last hidden state is not normed).{hint} Use check=False "
        "to load it anyway (not recommended)."
    )


def _bad_count(t: torch.Tensor) -> torch.Tensor:
    return (~torch.isfinite(t)).sum()


def device_deviation(
    name: str,
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    scale: float,
    model_logits: torch.Tensor,
    apply_cap: Callable[[torch.Tensor], torch.Tensor],
    chunk: int = 8192,
) -> tuple[float, float]:
    """:func:`logit_deviation` computed where the LM head lives, without a host copy of the
    logits or of ``G``: ``h`` (B, hidden) and ``model_logits`` (B, V) are moved to the head's
    device, ``F G^T`` is formed in float64 (float32 on MPS) over row blocks of the weight,
    and only the maxima and NaN/inf counts come back (one synchronisation)."""
    dev = weight.device
    acc = torch.float32 if dev.type == "mps" else torch.float64
    f = h.to(dev, acc) * scale
    logits = model_logits.to(dev)
    bad_w = torch.zeros((), dtype=torch.long, device=dev)
    max_dev = torch.zeros((), dtype=acc, device=dev)
    for s in range(0, weight.shape[0], chunk):
        w = weight[s : s + chunk].to(acc)
        bad_w = bad_w + _bad_count(w)
        lin = f @ w.T
        if bias is not None:
            b = bias[s : s + chunk].to(dev, acc)
            bad_w = bad_w + _bad_count(b)
            lin = lin + b
        diff = (apply_cap(lin) - logits[:, s : s + chunk].to(acc)).abs().amax()
        max_dev = torch.maximum(max_dev, diff)  # NaN propagates
    stats = torch.stack(
        [
            _bad_count(logits).to(acc),
            _bad_count(f).to(acc),
            bad_w.to(acc),
            max_dev,
            torch.nan_to_num(logits.to(acc), nan=0.0, posinf=0.0, neginf=0.0).abs().amax(),
        ]
    ).cpu()
    n_bad_logits, n_bad_f, n_bad_w, dev_v, scale_v = (float(x) for x in stats)
    sizes = (logits.numel(), f.numel(), weight.numel() + (bias.numel() if bias is not None else 0))
    for what, bad, size in (
        ("the model's own logits on the check contexts", n_bad_logits, sizes[0]),
        ("the extracted F (context representations)", n_bad_f, sizes[1]),
        ("the unembedding G (LM-head rows)", n_bad_w, sizes[2]),
    ):
        if bad:
            raise AllOrNoneError(
                f"{name}: {what} contains {int(bad)} NaN/inf values of {size}: the model's "
                "weights are damaged or its dtype overflows (try dtype='float32'); refusing "
                "the model"
            )
    if not np.isfinite(dev_v):  # F G^T overflowed although F and G are finite
        raise AllOrNoneError(f"{name}: F G^T overflows on the check contexts: refusing the model")
    return dev_v, scale_v
