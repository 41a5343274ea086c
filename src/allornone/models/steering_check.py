"""The forward-pass check of a steering shift on a real Hugging Face model (THEORY.md 5.4).

:func:`allornone.properties.steering` predicts the change of every centred log-odds when
``alpha v`` is added to ``f(x)``: ``alpha v^T g0(y)``. :func:`measured_shift` runs the model
with and without a hook that adds ``alpha v`` to ``f`` (last position) and returns both, so the
prediction can be checked. It needs torch, hence it lives in the models layer and not in
:mod:`allornone.properties` (numpy only).

``v`` is given in the coordinates of the predictor's ``G`` (THEORY.md 1): the LM-head rows,
plus the absorbed bias column when the head has a bias, with ``f = s h`` for a constant logit
scale ``s``. It is injected in the head's own coordinates: ``v[:hidden] / s`` is added to the
head's input ``h`` and ``v[hidden] * b`` (the bias entry) to the head's output, so the
measured shift is that of ``f + alpha v`` whatever the head's bias and scale.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import AllOrNoneError, to_numpy
from ._head import HeadSpec, inspect_head


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
    effect : float
        ``max |measured|``: the largest shift the forward pass measured.
    error_vs_effect : float
        ``max_abs_error / effect``: above 1 the check's error is larger than the effect it
        measures (a warning is issued), so the check says nothing about the prediction.
    """

    predicted: np.ndarray = field(repr=False)
    measured: np.ndarray = field(repr=False)
    max_abs_error: float
    rel_error: float
    hooked: str
    effect: float = 0.0
    error_vs_effect: float = 0.0


def find_final_norm(hf_model: Any) -> tuple[str, Any] | None:
    """The module whose output feeds the LM head (the final norm), or None when unknown.

    The registry's :attr:`~.architectures.Adapter.f_module` of the model's ``model_type``
    first, then the common attribute paths (``model.norm`` for Llama/Mistral/Qwen/Gemma,
    ``transformer.ln_f`` for GPT-2/GPT-J, ``gpt_neox.final_layer_norm``, ``model.final_layernorm``,
    ``model.decoder.final_layer_norm`` for OPT).
    """
    from .architectures import REGISTRY

    ad = REGISTRY.get(str(getattr(getattr(hf_model, "config", None), "model_type", "")))
    if ad is not None and ad.kind == "encoder-decoder":
        return None  # f is the LM head's input (T5 scales after its final norm)
    for path in (
        *((ad.f_module,) if ad is not None and ad.supported else ()),
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
    head: HeadSpec | None = None,
) -> ShiftCheck:
    """Run ``hf_model`` with and without ``alpha v`` added to ``f`` at the last position.

    Parameters
    ----------
    hf_model : a transformers causal LM (``get_output_embeddings()`` must give the LM head)
    tokenizer : its tokenizer, or None when ``contexts`` are lists of token ids
    contexts : strings (or token-id lists); each is run on its own (no padding issues)
    v : (d,) array or tensor, in the coordinates of the predictor's ``G``: ``hidden``
        entries, or ``hidden + 1`` when the head has a bias (the last one multiplies it)
    alpha : float
    hook : "auto" (forward hook on the final norm when found, else a pre-hook on the LM
        head), "norm" or "lm_head"
    head : HeadSpec, optional
        The head's adaptation (``LanguageModel.head``); default: read from the model
        (:func:`~allornone.models._head.inspect_head`, a softcap accepted).

    The hook changes exactly the input of the LM head (``v[:hidden] / s``) and, for the bias
    entry, its output. The predicted shift is ``alpha (g(y) - mean_y g)^T v`` with ``g`` the
    rows of ``G`` (bias column included); a disagreement means the head is not of the form
    ``softmax(f^T g)`` (a softcap) or the hook point is wrong. A warning is issued when the
    error is larger than the measured effect.
    """
    import torch

    lm_head = hf_model.get_output_embeddings()
    if lm_head is None:
        raise AllOrNoneError("hf_model has no output embeddings (LM head)")
    if not contexts:
        raise AllOrNoneError("contexts is empty")
    spec = head if head is not None else inspect_head(hf_model, allow_nonlinear_head=True)
    W = lm_head.weight.detach()
    hidden = int(W.shape[1])
    vt = torch.as_tensor(
        np.asarray(to_numpy(v, "v")[0]).reshape(-1), dtype=torch.float64, device=W.device
    )
    has_bias = spec.bias is not None
    if vt.shape[0] not in ((hidden, hidden + 1) if has_bias else (hidden,)):
        want = f"{hidden} or {hidden + 1} (bias column)" if has_bias else str(hidden)
        raise AllOrNoneError(
            f"v has {vt.shape[0]} entries but the LM head's G has {want}: pass a vector in "
            "the coordinates of the predictor built from this model"
        )
    scale = float(spec.scale)
    add = float(alpha) * vt[:hidden] / scale  # f = s h: f + alpha v  <=>  h + alpha v / s
    v_bias = float(vt[hidden]) if vt.shape[0] > hidden else 0.0
    raw_bias = getattr(lm_head, "bias", None)
    if not isinstance(raw_bias, torch.Tensor):  # BART-style: the model's final_logits_bias
        flb = getattr(hf_model, "final_logits_bias", None)
        raw_bias = flb.reshape(-1) if isinstance(flb, torch.Tensor) else None
    if v_bias != 0.0 and not isinstance(raw_bias, torch.Tensor):
        raise AllOrNoneError("v has a bias entry but the LM head module has no bias tensor")
    add_out: Any = None
    if v_bias != 0.0 and isinstance(raw_bias, torch.Tensor):
        add_out = float(alpha) * v_bias * raw_bias.detach()

    at = [-1]  # the position read: the last token (masked LMs: the last mask)

    def _add_last(x: Any) -> Any:
        x = x.clone()
        x[:, at[0], :] += add.to(x.dtype)
        return x

    def _head_out(_m: Any, _inp: Any, out: Any) -> Any:
        out = out.clone()
        out[:, at[0], :] += add_out.to(out.dtype)
        return out

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

        hooks = [lambda: target[1].register_forward_hook(fwd)]
    else:
        where = "forward pre-hook on the LM head (input)"

        def pre(_m: Any, args: Any) -> Any:
            return (_add_last(args[0]), *args[1:])

        hooks = [lambda: lm_head.register_forward_pre_hook(pre)]
    if scale != 1.0:
        where += f", v / {scale:g} (logit scale)"
    if add_out is not None:
        hooks.append(lambda: lm_head.register_forward_hook(_head_out))
        where += " + bias entry on the LM head (output)"

    from ._masked import decoder_start
    from .architectures import REGISTRY

    ad = REGISTRY.get(str(getattr(getattr(hf_model, "config", None), "model_type", "")))
    start = (
        decoder_start(hf_model, type(hf_model).__name__)
        if ad is not None and ad.kind == "encoder-decoder"
        else None
    )

    def run(ids: Any) -> np.ndarray:
        kw: dict[str, Any] = {"input_ids": ids}
        if start is not None:  # encoder-decoder: the source, an empty target prefix
            kw["decoder_input_ids"] = torch.full((1, 1), start, device=ids.device)
        with torch.no_grad():
            out = hf_model(**kw)
        lp = torch.log_softmax(out.logits[0, at[0]].double(), dim=-1)
        return (lp - lp.mean()).cpu().numpy()

    layout = _masked_layout(hf_model, tokenizer)
    before, after = [], []
    device = W.device
    for ctx in contexts:
        if layout is not None:  # masked LM: the context as LanguageModel.encode lays it out
            body = (
                list(tokenizer(ctx, add_special_tokens=False)["input_ids"])
                if isinstance(ctx, str)
                else [int(t) for t in ctx]
            )
            seq = layout.wrap(body) if isinstance(ctx, str) else layout.wrap_ids(body)
            at[0] = len(seq) - 1 - layout.back(seq)
            ids = torch.tensor([seq], dtype=torch.long)
        elif tokenizer is not None and isinstance(ctx, str):
            ids = tokenizer(ctx, return_tensors="pt")["input_ids"]
        else:
            ids = torch.as_tensor(ctx, dtype=torch.long).reshape(1, -1)
        ids = ids.to(device)
        before.append(run(ids))
        handles = [register() for register in hooks]
        try:
            after.append(run(ids))
        finally:
            for handle in handles:
                handle.remove()
    measured = np.stack(after) - np.stack(before)
    V = measured.shape[1]
    vnp = vt.cpu().numpy()
    pred = float(alpha) * _centred_times(W, vnp[:hidden])
    if v_bias != 0.0 and spec.bias is not None:
        b = spec.bias.detach().double().cpu().numpy()  # already times the scale
        pred = pred + float(alpha) * v_bias * (b - b.mean())
    if pred.shape[0] != V:  # LM head padded beyond the logits or vice versa
        m = min(V, pred.shape[0])
        pred, measured = pred[:m], measured[:, :m]
    err = float(np.abs(measured - pred[None, :]).max())
    top = float(np.abs(pred).max())
    effect = float(np.abs(measured).max())
    ratio = err / effect if effect > 0 else float("inf") if err > 0 else 0.0
    if ratio > 1.0:
        warnings.warn(
            f"steering check: the forward pass's error ({err:.3g}) is larger than the shift it "
            f"measures ({effect:.3g}): the check does not confirm the predicted shift "
            f"(hook: {where})",
            UserWarning,
            stacklevel=2,
        )
    return ShiftCheck(
        predicted=pred,
        measured=measured,
        max_abs_error=err,
        rel_error=err / top if top > 0 else err,
        hooked=where,
        effect=effect,
        error_vs_effect=ratio,
    )


def _masked_layout(hf_model: Any, tokenizer: Any) -> Any:
    """The token layout of a masked LM of the registry (None for other models)."""
    from ._masked import MaskedLayout
    from .architectures import REGISTRY
    from .tokens import special_layout

    ad = REGISTRY.get(str(getattr(getattr(hf_model, "config", None), "model_type", "")))
    if ad is None or ad.kind != "masked-lm":
        return None
    if tokenizer is None:
        raise AllOrNoneError("a masked LM's steering check needs its tokenizer (mask token)")
    prefix, n_suffix = special_layout(tokenizer)
    return MaskedLayout(tokenizer, prefix, n_suffix, type(hf_model).__name__)


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
