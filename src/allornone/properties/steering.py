"""Linear steering (THEORY.md 5.4): adding ``alpha v`` to ``f(x)`` at the final representation.

The predicted change of every centred log-odds is ``Delta L[x, y] = alpha v^T g0(y)``, the same
for all contexts. The shift is reproducible in every equivalent model iff ``v in M + N^perp``
<=> ``G0 v in col(L^T)``; then ``v~ = F~^T alpha_ctx`` with ``L^T alpha_ctx = G0 v``.
``condition_size`` is the relative least-squares residual
``min_beta ||G0 (v - M beta)|| / ||G0 v||`` (computed with the R factor of ``G0``; ``L`` is
never formed). The identified statistics are those of the transferable part of the shift,
``G0 P v`` with ``P v = M beta`` (equal to the raw ones when the condition holds).

:func:`measured_shift` checks the prediction against a real Hugging Face model, with a hook
that adds ``alpha v`` to the input of the LM head at the last position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import AllOrNoneError, to_numpy
from ..linalg import r_factor
from ..predictor import Index, NextTokenPredictor, Pivot
from ..structure import Structure, structure
from ._common import check_model, default_tol, resolve_pairs, resolve_tokens
from ._result import PropertyResult


# ---------------------------------------------------------------------- vectors
def vector_from_contexts(model: NextTokenPredictor, positive: Index, negative: Index) -> np.ndarray:
    """Difference of means ``mean f(positive) - mean f(negative)``, shape (d,).

    Always in ``M``, so it always transfers.
    """
    check_model(model)
    p, n = model.row_indices(positive), model.row_indices(negative)
    if len(p) == 0 or len(n) == 0:
        raise AllOrNoneError("positive and negative context sets must both be non-empty")
    return model.F[p].mean(axis=0) - model.F[n].mean(axis=0)


def vector_from_tokens(model: NextTokenPredictor, pairs: Sequence[tuple[Any, Any]]) -> np.ndarray:
    """Mean unembedding difference ``mean_i g(b_i) - g(a_i)`` over token pairs, shape (d,).

    May have a component in ``J_g = N cap M^perp``: check it with :func:`steering`.
    """
    check_model(model)
    idx, excluded = resolve_pairs(model, pairs)
    if len(idx) == 0:
        why = "; ".join(f"{e['item']!r}: {e['reason']}" for e in excluded[:5])
        raise AllOrNoneError(f"no valid token pair ({why})")
    return (model.G[idx[:, 1]] - model.G[idx[:, 0]]).mean(axis=0)


# ---------------------------------------------------------------------- prediction
def _shift_stats(shift: np.ndarray, targets: np.ndarray, off: np.ndarray) -> dict[str, float]:
    t = float(shift[targets].mean())
    o = float(shift[off].mean()) if len(off) else float("nan")
    return {"target_shift": t, "off_target_shift": o, "selectivity": t - o}


def steering(
    model: NextTokenPredictor,
    v: Any,
    *,
    alpha: float = 1.0,
    targets: Any = None,
    off_targets: Any = None,
    name: str = "steering",
    pivot: Pivot = "center",
    tol: float | None = None,
    structure_: Structure | None = None,
) -> PropertyResult:
    """Predicted log-odds shift of steering with ``alpha v`` and whether it transfers.

    Parameters
    ----------
    model : NextTokenPredictor (F n x d, G V x d)
    v : array (d,)
    alpha : float
    targets : tokens (labels or indices) of the concept the vector should promote
        (default: none, then only the per-token shift is reported)
    off_targets : tokens to compare against (default: every token not in ``targets``)

    Returns
    -------
    PropertyResult
        ``raw``: ``target_shift``, ``off_target_shift``, ``selectivity`` (mean shift on targets
        minus off-targets) of ``alpha G0 v``; ``identified``: the same for the transferable
        part ``alpha G0 P v``; ``witness``: ``alpha_ctx`` (n,), with ``transport(eq) =
        F~^T alpha_ctx``; ``details["shift"]``: the per-token predicted shift (V,).
    """
    check_model(model)
    vv, _ = to_numpy(v, "v")
    vv = vv.reshape(-1)
    if vv.shape[0] != model.d:
        raise AllOrNoneError(f"v has {vv.shape[0]} entries but the model has d={model.d}")
    if not np.any(vv):
        raise AllOrNoneError("v is the zero vector")
    st = structure_ if structure_ is not None else structure(model, pivot=pivot)
    G0 = model.G0(pivot)
    shift = alpha * (G0 @ vv)  # (V,)

    R_G = r_factor(model.G, shift=model.pivot_vector(pivot))  # ||G0 x|| = ||R_G x||
    RM = R_G @ st.M
    beta = np.linalg.lstsq(RM, R_G @ vv, rcond=None)[0]
    Pv = st.M @ beta  # transferable part, in M
    den = np.linalg.norm(R_G @ vv)
    size = float(np.linalg.norm(R_G @ vv - RM @ beta) / den) if den > 0 else 0.0
    # alpha_ctx: min-norm solution of F^T a = P v (then L^T a = G0 P v)
    a_ctx = np.linalg.lstsq(model.F.T, Pv, rcond=None)[0]
    shift_id = alpha * (G0 @ Pv)

    if targets is not None:
        tg = resolve_tokens(model, targets, "targets")
        if off_targets is None:
            off = np.setdiff1d(np.arange(model.V), tg)
        else:
            off = resolve_tokens(model, off_targets, "off_targets")
        raw = _shift_stats(shift, tg, off)
        ident = _shift_stats(shift_id, tg, off)
    else:
        tg = off = np.zeros(0, dtype=int)
        raw = {"mean_abs_shift": float(np.abs(shift).mean())}
        ident = {"mean_abs_shift": float(np.abs(shift_id).mean())}
    tol_ = default_tol(model, tol)
    details: dict[str, Any] = {
        "shift": shift,
        "identified_shift": shift_id,
        "alpha": alpha,
        "v": vv,
        "transferable_part": Pv,
        "targets": tg,
        "off_targets": off,
    }
    return PropertyResult(
        property="steering",
        name=name,
        raw=raw,
        identified=ident,
        all_or_none=bool(size <= tol_),
        condition="v in M + N^perp (G0 v in col(L^T)): relative least-squares residual",
        condition_size=size,
        tol=tol_,
        details=details,
        witness=a_ctx,
        _transport=lambda a, eq: eq.structure_b.model.F.T @ a,
    )


# ---------------------------------------------------------------------- measurement
@dataclass(eq=False)
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
    Wd = W.double().cpu().numpy()
    V = measured.shape[1]
    pred = float(alpha) * ((Wd - Wd.mean(axis=0)) @ vt.double().cpu().numpy())
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
