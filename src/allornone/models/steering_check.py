"""The forward-pass check of a steering shift on a real Hugging Face model (THEORY.md 5.4).

:func:`allornone.properties.steering` predicts the change of every centred log-odds when
``alpha v`` is added to ``f(x)``: ``alpha v^T g0(y)``. :func:`measured_shift` runs the model
with and without a hook that adds ``alpha v`` at the input of the LM head (last position) and
returns both, so the prediction can be checked. It needs torch, hence it lives in the models
layer and not in :mod:`allornone.properties` (numpy only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import AllOrNoneError, to_numpy


@dataclass(frozen=True, eq=False)
class ShiftCheck:
    """Predicted vs measured log-odds shift of a real model under steering.

    Attributes
    ----------
    predicted : ndarray (V,)
        ``alpha (g(y) - mean g)^T v`` from the LM head.
    measured : ndarray (n, V)
        Change of the centred next-token log-probabilities at the last position per context.
    max_abs_error : float
        ``max |measured - predicted|``.
    rel_error : float
        ``max_abs_error / max |predicted|``.
    hooked : str
        Which module was hooked and how.
    """

    predicted: np.ndarray = field(repr=False)
    measured: np.ndarray = field(repr=False)
    max_abs_error: float
    rel_error: float
    hooked: str


def find_final_norm(hf_model: Any) -> tuple[str, Any] | None:
    """The module whose output feeds the LM head (the final norm), or None when unknown.

    Tries the common attribute paths (``model.norm`` for Llama/Mistral/Qwen/Gemma,
    ``transformer.ln_f`` for GPT-2/GPT-J, ``gpt_neox.final_layer_norm``, ``model.final_layernorm``,
    ``model.decoder.final_layer_norm`` for OPT).
    """
    for path in (
        "model.norm",
        "transformer.ln_f",
        "gpt_neox.final_layer_norm",
        "model.final_layernorm",
        "model.decoder.final_layer_norm",
        "transformer.norm_f",
        "backbone.norm_f",
    ):
        mod = hf_model
        for part in path.split("."):
            mod = getattr(mod, part, None)
            if mod is None:
                break
        if mod is not None:
            return path, mod
    return None


def measured_shift(
    hf_model: Any,
    tokenizer: Any,
    contexts: Sequence[Any],
    v: Any,
    alpha: float,
    *,
    hook: str = "auto",
) -> ShiftCheck:
    """Run ``hf_model`` with and without ``alpha v`` added to ``f`` at the last position.

    Parameters
    ----------
    hf_model : a transformers causal LM (``get_output_embeddings()`` must give the LM head)
    tokenizer : its tokenizer, or None when ``contexts`` are lists of token ids
    contexts : strings (or token-id lists); each is run on its own (no padding issues)
    v : (d,) array or tensor;  alpha : float
    hook : "auto" (forward hook on the final norm when found, else a pre-hook on the LM
        head), "norm" or "lm_head"

    The hook changes exactly the input of the LM head, i.e. ``f``. The predicted shift is
    ``alpha (g(y) - mean_y g)^T v`` with ``g`` the LM-head rows; a disagreement means the head
    is not of the form ``softmax(f^T g + b)`` (softcapping, scaling) or the hook point is wrong.
    """
    import torch

    head = hf_model.get_output_embeddings()
    if head is None:
        raise AllOrNoneError("hf_model has no output embeddings (LM head)")
    if not contexts:
        raise AllOrNoneError("contexts is empty")
    W = head.weight.detach()
    vt = torch.as_tensor(
        np.asarray(to_numpy(v, "v")[0]).reshape(-1), dtype=W.dtype, device=W.device
    )
    if vt.shape[0] != W.shape[1]:
        raise AllOrNoneError(f"v has {vt.shape[0]} entries but the LM head has d={W.shape[1]}")
    add = float(alpha) * vt

    def _add_last(x: Any) -> Any:
        x = x.clone()
        x[:, -1, :] += add.to(x.dtype)
        return x

    target = None
    if hook in ("auto", "norm"):
        found = find_final_norm(hf_model)
        if found is None and hook == "norm":
            raise AllOrNoneError("no final norm module found; use hook='lm_head'")
        target = found
    if target is not None:
        where = f"forward hook on {target[0]} (output)"

        def fwd(_m: Any, _inp: Any, out: Any) -> Any:
            if isinstance(out, tuple):
                return (_add_last(out[0]), *out[1:])
            return _add_last(out)

        register = lambda: target[1].register_forward_hook(fwd)  # noqa: E731
    else:
        where = "forward pre-hook on the LM head (input)"

        def pre(_m: Any, args: Any) -> Any:
            return (_add_last(args[0]), *args[1:])

        register = lambda: head.register_forward_pre_hook(pre)  # noqa: E731

    def run(ids: Any) -> np.ndarray:
        with torch.no_grad():
            out = hf_model(input_ids=ids)
        lp = torch.log_softmax(out.logits[0, -1].double(), dim=-1)
        return (lp - lp.mean()).cpu().numpy()

    before, after = [], []
    device = W.device
    for ctx in contexts:
        if tokenizer is not None and isinstance(ctx, str):
            ids = tokenizer(ctx, return_tensors="pt")["input_ids"]
        else:
            ids = torch.as_tensor(ctx, dtype=torch.long).reshape(1, -1)
        ids = ids.to(device)
        before.append(run(ids))
        handle = register()
        try:
            after.append(run(ids))
        finally:
            handle.remove()
    measured = np.stack(after) - np.stack(before)
    V = measured.shape[1]
    pred = float(alpha) * _centred_times(W, vt.double().cpu().numpy())
    if pred.shape[0] != V:  # LM head padded beyond the logits or vice versa
        m = min(V, pred.shape[0])
        pred, measured = pred[:m], measured[:, :m]
    err = float(np.abs(measured - pred[None, :]).max())
    scale = float(np.abs(pred).max())
    return ShiftCheck(
        predicted=pred,
        measured=measured,
        max_abs_error=err,
        rel_error=err / scale if scale > 0 else err,
        hooked=where,
    )


def _centred_times(W: Any, x: np.ndarray, block: int = 8192) -> np.ndarray:
    """``(W - mean_rows W) @ x`` in float64, streamed over row blocks of the (V x d) head
    weight ``W``: never a V x d float64 copy (2.7 GB at V = 262k)."""
    out = np.empty(W.shape[0])
    total = np.zeros(W.shape[1])
    for i in range(0, W.shape[0], block):
        Wb = W[i : i + block].detach().double().cpu().numpy()
        out[i : i + block] = Wb @ x
        total += Wb.sum(axis=0)
    return out - (total / max(W.shape[0], 1)) @ x
